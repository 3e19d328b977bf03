"""Library presets: a NIR file read with the discrete semantics of the library that wrote it.

:data:`PRESETS` maps a library name to its :class:`Preset` subclass (:mod:`.library_presets` registers
snnTorch, Norse, sinabs and Rockpool). The base class does what all four share: the time step, the file
written by ``export_nir(library=...)`` (:mod:`.targets`), the checks and the description around the
library's own reading of one neuron node (:meth:`Preset.read`).
"""
from __future__ import annotations

import numpy as np

from ...errors import GraphError, SpikeportError
from .common import Registry, uniform
from .libraries import IMPORTERS, LIBRARY_FORMAT, LIBRARY_NAMES
from .metadata import meta_in
from .neuron_nodes import param
from .targets import target_neuron

PRESETS = Registry("NIR library preset")


class NeuronNode:
    """One neuron node as a preset reads it: its parameters broadcast to the population's shape."""

    def __init__(self, imp, name, shape):
        self.node, self.type, self.owner = imp.nodes[name], imp.type[name], imp.owner(name)
        self.name, self.shape = name, shape

    def param(self, field):
        return param(self.node, field, self.shape, self.owner)

    def opt(self, field, default=0.0):
        """The parameter, or ``default`` everywhere where the node has none."""
        return np.full(self.shape, default) if getattr(self.node, field, None) is None else self.param(field)

    def one(self, a, what, per):
        """The single value of a per-neuron quantity, or an error naming it."""
        return uniform(np.asarray(a, np.float64), self.owner, what, per)

    def raw(self, field):  # may hold inf (snnTorch beta = 1)
        a = np.array(getattr(self.node, field, None), dtype=np.float64)
        return np.broadcast_to(a, self.shape)


class Preset:
    """One library's discrete neuron, read from its exporter's NIR nodes (docs/nir-libraries.md)."""

    lib = None  # the library's name, a key of PRESETS
    bias_types = ()  # the neuron node types into which the library's exporter writes an Affine bias
    default_dt = None  # the network's dt_s where none is given
    fixed_dt = None  # the library's own time step where the dt given does not change it (None: it has none)
    dt_is_given = False  # True: the dt given (else default_dt) is the library's time step

    def __init__(self, dt_s, reset, graph, reason):
        library = self.lib
        self.reset_override, self.reason = reset, reason
        self.notes = []
        self.user_dt = dt_s
        gm = meta_in(graph, "graph")
        self.target = gm if gm.get("format") == LIBRARY_FORMAT else None
        if self.target is not None:  # written by export_nir(library=...) for the library's importer
            if gm.get("library") != library:
                raise SpikeportError(f"exported by spikeport for {LIBRARY_NAMES.get(gm.get('library'), '?')}'s "
                                     f"importer, not {LIBRARY_NAMES[library]}'s: import it with library="
                                     f"{gm.get('library')!r}")
            if reset is not None:
                raise SpikeportError(f"reset: a file exported by spikeport for {LIBRARY_NAMES[library]} states its "
                                     f"reset (the library's importer's); give none")
            md_dt = gm.get("dt_s")
            if not isinstance(md_dt, (int, float)) or isinstance(md_dt, bool) or not 0 < md_dt <= 1:
                raise SpikeportError(f"graph: spikeport metadata dt_s {md_dt!r} is not a time step")
            self.dt = self.net_dt = float(md_dt) if dt_s is None else dt_s
            return
        self.time_step(dt_s, graph)

    def time_step(self, dt_s, graph) -> None:
        """Set ``self.dt`` (the library's time step; None where its dynamics have none) and ``self.net_dt``
        (the network's dt_s) from the dt given (or None) and the graph."""
        self.net_dt = self.default_dt if dt_s is None else dt_s
        self.dt = self.net_dt if self.dt_is_given else self.fixed_dt

    def assumptions(self, reset) -> list:
        """What the preset assumed, in words, one part each (``reset``: the reset given, or None)."""
        raise NotImplementedError

    def read(self, n: NeuronNode, theta, v_reset, v_leak, carriers) -> tuple:
        """(NeuronModel, per-neuron weight factor or None, bias or None) of neuron node ``n``."""
        raise NotImplementedError

    def describe(self) -> str:
        lib = self.lib
        head = f"NIR import as {LIBRARY_NAMES[lib]} wrote it ({self.reason})"
        if self.target is not None:
            return (f"NIR import as {LIBRARY_NAMES[lib]}'s importer reads it ({self.reason}): {IMPORTERS[lib]}; "
                    f"neuron models from spikeport metadata, checked against that reading of the parameters; "
                    f"dt_s {self.net_dt:g} s")
        parts = self.assumptions(self.reset_override)
        parts.extend(self.notes)
        return head + ": " + "; ".join(parts)

    # -- one neuron node
    def neuron(self, imp, name, shape, carriers):
        """(NeuronModel, bias, per-neuron weight factor or None, None)."""
        if self.target is not None:
            return target_neuron(self.lib, imp, name, shape, carriers)
        n = NeuronNode(imp, name, shape)
        if carriers and any(np.any(b) for _, b in carriers):
            if n.type not in self.bias_types:
                raise GraphError(f"{n.owner}: an Affine bias into a {LIBRARY_NAMES[self.lib]} neuron is not "
                                 f"supported by this preset (the fixtures' exporters write zero biases); import "
                                 f"with library='nir'")
        theta = n.param("v_threshold")
        v_reset = n.opt("v_reset")
        v_leak = n.opt("v_leak") if n.type != "IF" else np.zeros(shape)
        nm, factor, bias = self.read(n, theta, v_reset, v_leak, carriers)
        nm.validate(n.owner)
        if factor is not None and np.all(factor == 1):
            factor = None
        bias = np.array(bias, np.float64) if bias is not None and np.any(bias) else None
        return nm, bias, factor, None
