"""NIR graph -> :class:`Network`: :func:`import_nir` and the :class:`Importer` it runs.

The importer checks the graph's structure, walks every path of linear nodes into each neuron node
(:mod:`.linear_nodes`) and reads the neuron nodes either with generic NIR semantics (:mod:`.neuron_nodes`)
or through a library preset (:mod:`.presets`).
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ...budget import check as check_budget
from ...budget import number
from ...errors import GraphError, SpikeportError
from ..network import Network, Population, Projection, check_footprint
from ..neurons import InputEncoding
from . import library_presets  # noqa: F401  (registers the four library presets in PRESETS)
from .common import (DISCRETIZATIONS, FORMAT, MAX_PATHS, NEURON_TYPES, VERSION, NIRWarning, float_array, ints,
                     listing, load_nir)
from .detect import detect
from .libraries import LIBRARIES, LIBRARY_NAMES
from .linear_nodes import append_node, append_scale, identity_op
from .metadata import meta_in, reorder
from .neuron_nodes import nir_neuron
from .presets import PRESETS
from .reader import check_type, read_source

# float64 arrays shaped like a population that reading one neuron node builds (parameters, gain, bias, threshold,
# v_init, their folds): its neurons times this are checked against the memory budget before the node is read
IMPORT_BYTES_PER_NEURON = 16 * 8


class Importer:
    """One NIR graph to one Network. Errors name the node; the caller adds the file."""

    def __init__(self, graph, dt: float, preset=None):
        self.g, self.dt, self.preset = graph, dt, preset
        self.nodes = dict(graph.nodes)
        self.kind, self.type = {}, {}
        self.notes = {d: [] for d in DISCRETIZATIONS}
        self.notes.update(metadata=[], folded=[])

    def owner(self, name) -> str:
        return f"node {name!r} ({self.type[name]})"

    def check_shape(self, name, shape) -> None:
        """The neurons node ``name`` declares, against the memory budget, before anything of its shape is built."""
        n = math.prod(int(s) for s in shape)
        check_budget(n * IMPORT_BYTES_PER_NEURON, f"{self.owner(name)} declares {number(n)} neurons",
                     of="parameters while it is read")

    # -- structure
    def classify(self):
        for name, node in self.nodes.items():
            if not isinstance(name, str) or not name:
                raise GraphError(f"node {name!r}: node names must be non-empty strings")
            t = type(node).__name__
            self.type[name] = t
            check_type(name, t)
            self.kind[name] = ("input" if t == "Input" else "output" if t == "Output" else
                               "neuron" if t in NEURON_TYPES else "linear")
        self.succ = {n: [] for n in self.nodes}
        self.pred = {n: [] for n in self.nodes}
        seen = set()
        for edge in self.g.edges:
            try:
                a, b = (e.decode() if isinstance(e, bytes) else str(e) for e in edge)
            except (TypeError, ValueError):
                raise GraphError(f"edge {edge!r} is not a pair of node names") from None
            for end in (a, b):
                if end not in self.nodes:
                    raise GraphError(f"edge ({a!r}, {b!r}): node {end!r} does not exist")
            if (a, b) in seen:
                raise GraphError(f"edge ({a!r}, {b!r}) appears twice")
            seen.add((a, b))
            self.succ[a].append(b)
            self.pred[b].append(a)
        # cycles: Kahn's algorithm over every node
        indeg = {n: len(p) for n, p in self.pred.items()}
        ready = [n for n in self.nodes if indeg[n] == 0]
        self.topo = []
        while ready:
            n = ready.pop(0)
            self.topo.append(n)
            for m in self.succ[n]:
                indeg[m] -= 1
                if indeg[m] == 0:
                    ready.append(m)
        if len(self.topo) != len(self.nodes):
            left = [n for n in self.nodes if n not in set(self.topo)]
            raise GraphError(f"the edges form a cycle through node(s) {listing(left)}; spikeport imports "
                             f"feed-forward NIR graphs only")
        self.check_ends()

    def check_ends(self):
        """One Input, one Output fed by a neuron node, and linear nodes that lead from somewhere to a neuron."""
        inputs = [n for n, k in self.kind.items() if k == "input"]
        outputs = [n for n, k in self.kind.items() if k == "output"]
        if len(inputs) != 1:
            raise GraphError(f"needs exactly one Input node, found {len(inputs)} ({listing(inputs)})")
        if len(outputs) != 1:
            raise GraphError(f"needs exactly one Output node, found {len(outputs)} ({listing(outputs)})")
        self.input, out = inputs[0], outputs[0]
        if self.pred[self.input]:
            raise GraphError(f"{self.owner(self.input)}: an Input node takes no edges in")
        if self.succ[out] or len(self.pred[out]) != 1 or self.kind[self.pred[out][0]] != "neuron":
            src = self.pred[out][0] if len(self.pred[out]) == 1 else None
            what = f"is fed by {self.owner(src)}" if src else f"has {len(self.pred[out])} edges in"
            raise GraphError(f"{self.owner(out)}: {what}; spikeport reads out spike counts, so the Output "
                             f"must be fed by exactly one neuron node (IF, LIF, CubaLIF) and feed nothing")
        self.output_node = self.pred[out][0]
        for n, k in self.kind.items():
            if k != "linear":
                continue
            if not self.pred[n]:
                raise GraphError(f"{self.owner(n)}: has no edge in")
            if not self.succ[n]:
                raise GraphError(f"{self.owner(n)}: leads nowhere (no edge out to a neuron node)")
            for m in self.succ[n]:
                if self.kind[m] == "output":
                    raise GraphError(f"{self.owner(n)}: feeds the Output node directly; spikeport reads out a "
                                     f"spiking population, so the Output must be fed by a neuron node")
            b = self.raw_bias(n)
            if b is not None:
                later = [m for m in self.succ[n] if self.kind[m] != "neuron"]
                if later:
                    raise GraphError(f"{self.owner(n)}: its bias is followed by further linear ops (node "
                                     f"{later[0]!r}), which spikeport cannot represent exactly; only a bias on a "
                                     f"node that feeds neuron nodes directly becomes a population bias")

    def raw_bias(self, name, nonzero=True):
        """The node's bias array as stored (Affine, Conv2d), or None (none, or all zero when ``nonzero``)."""
        t = self.type[name]
        if t not in ("Affine", "Conv2d"):
            return None
        b = float_array(self.nodes[name].bias, self.owner(name), "bias")
        if b.size == 0 or (nonzero and not np.any(b)):
            return None
        return np.array(self.nodes[name].bias)

    def bias_into(self, p, shape, nonzero=True):
        """Node p's bias shaped like the population it feeds (a Conv2d's per channel), or None."""
        b = self.raw_bias(p, nonzero)
        if b is None:
            return None
        if self.type[p] == "Conv2d":
            if b.ndim > 1 or b.size not in (1, shape[0]) or len(shape) != 3:
                raise GraphError(f"{self.owner(p)}: bias of shape {b.shape} is not one value per output channel")
            return np.broadcast_to(b.reshape(-1, 1, 1), shape)
        try:
            return np.broadcast_to(b, shape)
        except ValueError:
            raise GraphError(f"{self.owner(p)}: bias of shape {b.shape} does not fit {shape}") from None

    def paths_into(self, q) -> list:
        """Every (source population, [linear nodes in order]) path that ends at neuron node q."""
        out = []

        def walk(node, suffix):
            for p in self.pred[node]:
                if self.kind[p] in ("input", "neuron"):
                    out.append((p, suffix))
                else:
                    walk(p, [p] + suffix)
                if len(out) > MAX_PATHS:
                    raise GraphError(f"{self.owner(q)}: more than {MAX_PATHS} paths of linear nodes lead into it")

        walk(q, [])
        return out

    def neuron(self, name, shape, carriers):
        """(NeuronModel, bias, per-neuron weight factor or None, per-neuron v_init or None) for neuron node ``name``."""
        if self.preset is not None:
            return self.preset.neuron(self, name, shape, carriers)
        return nir_neuron(self, name, shape, carriers)

    # -- the network
    def graph_metadata(self) -> dict:
        """The graph's spikeport metadata (a file exported by spikeport), checked; {} for other files."""
        gm = meta_in(self.g, "graph")
        if gm and gm.get("format") != FORMAT:
            gm = {}
        if gm:
            version = gm.get("version")
            if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
                raise GraphError(f"graph: spikeport metadata version {version!r} is not one this spikeport reads "
                                 f"(1 to {VERSION}; a newer spikeport may)")
            if gm.get("dt_s") != self.dt:
                raise GraphError(f"graph: exported by spikeport with dt = {gm.get('dt_s')!r} s; import it with that "
                                 f"dt (got {self.dt!r})")
        return gm

    def input_population(self, pop_name, shapes) -> Population:
        md = meta_in(self.nodes[self.input], self.owner(self.input))
        if not md and self.preset is not None and self.preset.target is not None:  # export_nir(library=...)
            md = {"population": self.preset.target.get("input", self.input),
                  "encoding": self.preset.target.get("input_encoding", {})}
        pop_name[self.input] = md.get("population", self.input)
        ishape = self.nodes[self.input].input_type.get("input") if isinstance(
            self.nodes[self.input].input_type, dict) else None
        if ishape is None:
            raise GraphError(f"{self.owner(self.input)}: has no shape")
        shapes[self.input] = ints(ishape, self.owner(self.input), "shape", n=len(np.ravel(ishape)))
        if self.preset is not None:  # Rockpool types its Input with the sample's batch dimension: (1, 64)
            while len(shapes[self.input]) > 1 and shapes[self.input][0] == 1:
                shapes[self.input] = shapes[self.input][1:]
        self.check_shape(self.input, shapes[self.input])
        enc = md.get("encoding", {})
        if not isinstance(enc, dict) or not set(enc) <= {"kind", "max_rate_hz"}:
            raise GraphError(f"{self.owner(self.input)}: metadata 'encoding' must be an object with kind, max_rate_hz")
        return Population(pop_name[self.input], shapes[self.input], encoding=InputEncoding(**enc))

    def neuron_population(self, q, pop_name, shapes, projs) -> Population:
        owner = self.owner(q)
        md = meta_in(self.nodes[q], owner)
        pop_name[q] = md.get("population", q)
        chains, shape = [], None
        for src, chain in self.paths_into(q):
            if src not in shapes:
                raise GraphError(f"{owner}: internal order error at {src!r}")  # topo order makes this impossible
            ops, out = [], shapes[src]
            for lin in chain:
                out = append_node(ops, self.nodes[lin], self.type[lin], self.owner(lin), out)
            if shape is not None and out != shape:
                raise GraphError(f"{owner}: its inputs have different shapes {shape} and {out}")
            shape = out
            chains.append((src, chain, ops))
        if shape is None:
            thr = np.asarray(self.nodes[q].v_threshold)
            if thr.ndim == 0:
                raise GraphError(f"{owner}: no edges in and scalar parameters: its shape is unknown")
            shape = tuple(int(s) for s in thr.shape)
        shapes[q] = shape
        self.check_shape(q, shape)
        carriers = []
        for p in dict.fromkeys(self.pred[q]):
            b = self.bias_into(p, shape) if self.kind[p] == "linear" else None
            if b is not None:
                carriers.append((p, b))
        nm, bias, factor, v_init = self.neuron(q, shape, carriers)
        pop = Population(pop_name[q], shape, neuron=nm, bias=bias, v_init=v_init)
        for src, chain, ops in chains:
            if factor is not None:
                append_scale(ops, factor, shape, owner, "the per-neuron threshold fold (v_threshold differs "
                             "across neurons)")
            if not ops:
                ops.append(identity_op(shape, owner))
            first = meta_in(self.nodes[chain[0]], self.owner(chain[0])) if chain else {}
            projs.append({"src": src, "dst": q, "chain": chain, "ops": ops, "name": first.get("projection"),
                          "delay": first.get("delay_steps", 0)})
        return pop

    def network(self) -> Network:
        self.classify()
        gm = self.graph_metadata()
        pop_name, shapes, pops, projs = {}, {}, {}, []
        pops[self.input] = self.input_population(pop_name, shapes)
        for q in self.topo:
            if self.kind[q] == "neuron":
                pops[q] = self.neuron_population(q, pop_name, shapes, projs)
        # names: metadata, else pre->post (with the path when several lead from pre to post)
        pairs = {}
        for p in projs:
            pairs[(p["src"], p["dst"])] = pairs.get((p["src"], p["dst"]), 0) + 1
        used, projections = set(), []
        for p in projs:
            a, b = pop_name[p["src"]], pop_name[p["dst"]]
            name = p["name"] or (f"{a}->{b}" if pairs[(p["src"], p["dst"])] == 1 else "->".join([a, *p["chain"], b]))
            base, k = name[:190], 1
            while name in used:
                name, k = f"{base}#{k}", k + 1
            used.add(name)
            projections.append(Projection(name, a, b, p["ops"], delay_steps=p["delay"]))
        populations = [pops[self.input]] + [pops[n] for n in self.topo if n in pops and n != self.input]
        if gm:
            populations = reorder(populations, gm.get("populations"), "populations")
            projections = reorder(projections, gm.get("projections"), "projections")
            metadata, readout = gm.get("metadata", {}), gm.get("readout", "spike_count")
        elif self.preset is not None and self.preset.target is not None:
            tg = self.preset.target
            populations = reorder(populations, tg.get("populations"), "populations")
            projections = reorder(projections, tg.get("projections"), "projections")
            metadata, readout = tg.get("metadata", {}), tg.get("readout", "spike_count")
        elif self.preset is not None:
            metadata, readout = {"source": {"format": "nir", "library": self.preset.lib}}, "spike_count"
        else:
            metadata, readout = {"source": {"format": "nir"}}, "spike_count"
        net = Network(populations, projections, dt_s=self.dt, input=pop_name[self.input],
                      output=pop_name[self.output_node], readout=readout, metadata=metadata)
        return net.validate()

    def warning(self) -> str:
        dt, n = self.dt, self.notes
        parts = []
        if n["forward-euler"] or n["exponential"]:
            parts.append(
                "NIR's continuous-time neurons stepped with dt = %g s: IF v += dt*r*I; LIF v += k*(v_leak - v + r*I); "
                "CubaLIF I_s += k_syn*(w_in*S - I_s), then v += k*(v_leak - v + r*I_s); spike where v > v_threshold "
                "(spikeport theta = the next float64 above), then v = v_reset; state starts at 0" % dt)
            for scheme, k in (("forward-euler", "k = dt/tau (forward Euler)"),
                              ("exponential", "k = 1 - exp(-dt/tau) (from node metadata)")):
                if n[scheme]:
                    parts.append(f"{k} for {listing(n[scheme])}")
        if n["folded"]:
            parts.append(f"differing thresholds folded into the input weights and bias of {listing(n['folded'])} "
                         f"(theta = 1)")
        if n["metadata"]:
            parts.append(f"neuron models of {listing(n['metadata'])} read from spikeport metadata (exported by "
                         f"spikeport; exact)")
        return "NIR import: " + "; ".join(parts) if parts else ""


def import_nir(source, dt_s: float | None = None, *, library: str | None = None, reset: str | None = None) -> Network:
    """Read a NIR graph (a file path or an ``nir.NIRGraph``) as a validated :class:`Network`.

    library : "snntorch", "norse", "sinabs", "rockpool" or "nir"; None detects it from the file
        (:func:`detect_library`) and falls back to "nir" when the file does not say.
        A library preset applies that library's discrete semantics (docs/nir-libraries.md:
        time step, discretization, reset and its timing, synapse order, strict or non-strict
        threshold, initial membrane, several spikes per step) and states all it assumed in one
        :class:`NIRWarning`. "nir" is NIR's continuous-time semantics discretized with ``dt_s``
        (forward Euler unless node metadata says otherwise: the docstring of :mod:`spikeport.ir.nir`).
    dt_s : the time step in seconds. "nir" needs it (files exported by spikeport carry their own).
        Norse and Rockpool: the library's own dt (Norse default 1e-3 s, to_nir's; Rockpool
        default the dt written through r), which changes the discrete dynamics. snnTorch (whose
        exporter fixes 1e-4 s) and sinabs (tau in steps): only the network's dt_s (rates, energy),
        the discrete dynamics stay the library's (defaults 1e-4 s and 1e-3 s).
    reset : None (the library's default) or "subtract" / "zero": the reset the library used where the
        file cannot say (snnTorch's reset_mechanism is never written). A library preset only.

    Errors are one-line :class:`SpikeportError` naming the file and the node.
    """
    nir = load_nir()
    dt = None
    if dt_s is not None:
        try:
            dt = float(dt_s)
        except (TypeError, ValueError):
            raise SpikeportError(f"dt must be a number of seconds, got {dt_s!r}") from None
        if not (math.isfinite(dt) and 0 < dt <= 1):
            raise SpikeportError(f"dt must be in (0, 1] seconds, got {dt_s!r}")
    if library is not None and library not in LIBRARIES:
        raise SpikeportError(f"unknown NIR library {library!r} (known: {', '.join(LIBRARIES)})")
    if reset is not None and reset not in ("subtract", "zero"):
        raise SpikeportError(f"reset must be 'subtract' or 'zero', got {reset!r}")
    graph, where, written = read_source(source)
    reason = "named"
    if library is None:
        library, why = detect(graph, written)
        if library is None:
            if dt is None:
                raise SpikeportError(f"{where}: cannot tell which library wrote this NIR file ({why}); give the "
                                     f"library (snntorch, norse, sinabs, rockpool) or a dt for generic NIR "
                                     f"import (library 'nir')")
            library, reason = "nir", f"generic NIR: not recognized as a library's export ({why})"
        else:
            reason = f"detected: {why}"
    if library == "nir":
        if reset is not None:
            raise SpikeportError("reset applies to a library preset (snntorch, norse, sinabs, rockpool); generic "
                                 "NIR import resets to v_reset")
        if dt is None:
            gm = meta_in(graph, "graph") if isinstance(graph, nir.NIRGraph) else {}
            md_dt = gm.get("dt_s") if gm.get("format") == FORMAT else None
            if not isinstance(md_dt, (int, float)) or isinstance(md_dt, bool):
                raise SpikeportError(f"{where}: generic NIR import needs dt (the time step its continuous-time "
                                     f"neurons are discretized with)")
            dt = float(md_dt)
        importer = Importer(graph, dt)
    else:
        if meta_in(graph, "graph").get("format") == FORMAT:
            raise SpikeportError(f"{where}: exported by spikeport, not by {LIBRARY_NAMES[library]}: import it as "
                                 f"generic NIR (library 'nir')")
        try:
            preset = PRESETS[library](dt, reset, graph, reason)
        except SpikeportError as exc:
            raise type(exc)(f"{where}: {exc}") from None
        importer = Importer(graph, preset.net_dt, preset)
    try:
        net = importer.network()
        check_footprint(net)
    except SpikeportError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    msg = importer.warning() if importer.preset is None else importer.preset.describe()
    if msg:
        warnings.warn(msg, NIRWarning, stacklevel=2)
    return net
