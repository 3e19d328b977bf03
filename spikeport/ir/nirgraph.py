"""NIR import and export: the graph to and from the Neuromorphic Intermediate Representation.

NIR (the ``nir`` package, 1.0.x, an optional extra: ``pip install spikeport[nir]``)
describes neurons in continuous time; the graph (:mod:`spikeport.ir.neurons`) is
discrete, in steps of ``dt_s``. This module is the only place that maps between
them, and it maps exactly or refuses: a parameter that has no exact spikeport
equivalent is a :class:`~spikeport.errors.GraphError` naming the NIR node and the
parameter, never an approximation. ``import nir`` happens inside the functions,
so ``import spikeport.ir`` works without the package.

Discretization assumed on import
--------------------------------
Forward Euler with steps of ``dt_s``, unless the node's ``metadata["spikeport"]`` says
``"discretization": "exponential"`` or carries a whole spikeport neuron model
(files written by :func:`export_nir`). Per step, with I the sum of the node's
incoming edges (S the same for CubaLIF)::

    IF:      v += dt r I
    LIF:     v += dt/tau (v_leak - v + r I)                 decay = 1 - dt/tau
    CubaLIF: I_s += dt/tau_syn (w_in S - I_s)                syn_decay = 1 - dt/tau_syn
             v += dt/tau_mem (v_leak - v + r I_s)           with the updated I_s
    then     spike where v > v_threshold;  v = v_reset where it spiked
    all state (v, I_s) starts at 0; edges deliver within the same step (delay 0).

``"exponential"`` replaces dt/tau by 1 - exp(-dt/tau) (and decay by exp(-dt/tau)):
the exact LIF step for an input held constant over the step (for CubaLIF, applied
to each of its two equations in turn); IF is the same in both. A LIF or CubaLIF
with tau < dt is refused under forward Euler (its decay would be negative).

How a NIR neuron becomes a spikeport population (exact, per neuron j)
---------------------------------------------------------------------
The discrete NIR membrane is an affine image of spikeport's:
``v_nir = v_reset_j + s_j v_spk`` with a per-neuron scale s_j > 0, so

- input weights are multiplied by g_j / s_j, where g_j is the per-step input gain
  (dt r for IF, dt/tau r for LIF, dt/tau_mem r dt/tau_syn w_in for CubaLIF);
- theta = (v_threshold_j - v_reset_j) / s_j, v_init = -v_reset_j / s_j, reset "zero";
- the population bias is the constant part of the step, divided by s_j: an Affine
  bias b_j feeding the neuron directly gives g_j b_j (IF, LIF), and a leak toward
  v_leak gives dt/tau (v_leak_j - v_reset_j) (LIF, CubaLIF): so v_leak and v_reset
  are exact too.

spikeport has one threshold, decay, syn_decay and v_init per population. s_j = g_j
is tried first (weights untouched); if the resulting thresholds differ across
neurons, s_j = v_threshold_j - v_reset_j folds every neuron's threshold into its
input weights and bias (dividing a neuron's weights, bias and threshold by the
same positive factor changes no spike; theta becomes 1), which needs the last op
of every incoming chain to take a per-neuron factor (Dense rows; Conv2d output
channels when the factor is constant over a channel; otherwise an extra
diagonal Dense or depthwise 1x1 Conv2d) and v_reset / (v_threshold - v_reset)
equal across neurons. What is still not uniform (tau, tau_syn, v_init) is an
error. "Equal across neurons" allows a relative 1e-12: the float64 rounding of
one value computed per neuron. NIR fires on ``v > v_threshold``, spikeport on ``v >= theta``; the
threshold is stored as the next float64 above, which makes the two tests agree
for every float64 membrane value (a float32 simulator such as the reference
executor rounds theta to float32, and so also fires on v == v_threshold exactly).

Other mappings: Affine/Linear -> Dense (a bias only where the node feeds neuron
nodes directly: a bias followed by further linear ops is refused); Scale -> folded
into the previous Dense/Conv2d or a diagonal op; Conv2d (with 'same'/'valid'
padding resolved; its per-channel bias like an Affine bias) -> Conv2d;
SumPool2d -> SumPool2d; AvgPool2d -> AvgPool2d (with padding only when the node's
metadata says ``count_include_pad``); Flatten of all dimensions -> Flatten; the
Input node -> the input population (analog unless its metadata gives an
encoding); the Output node's source -> ``network.output``. Every path of linear
nodes from a population to a neuron node becomes one projection (several edges
into one node add). Refused: Delay, Threshold, I, LI, CubaLI, Conv1d, nested
graphs, cycles, several Inputs or Outputs.

Export
------
:func:`export_nir` writes IF (r = 1/dt), LIF (tau = dt/(1 - decay), r = tau/dt) or
CubaLIF (also tau_syn = dt/(1 - syn_decay), w_in = tau_syn/dt) nodes whose
forward-Euler steps of dt are the population's per-step map, v_threshold = the
float64 just below theta, v_reset = 0; projections become chains of
Linear/Affine, Conv2d, SumPool2d, AvgPool2d and Flatten nodes. The bias rides on
an Affine (or per-channel Conv2d bias) ending a projection into the population,
else on v_leak (LIF, CubaLIF). What NIR cannot express is stored only in
``metadata["spikeport"]`` (a JSON string) of the nodes and the graph, and a
warning lists it: dt_s, reset by subtraction, refractory_steps, v_init, delays,
input encodings, projection and population names, a bias nothing else can carry.
:func:`import_nir` reads that metadata back, so ir -> NIR -> ir is exact (same
arrays bitwise, same neuron models), after checking that the node's NIR
parameters still say what the metadata says.

``export_nir(network, path, library="snntorch" | "norse" | "sinabs" | "rockpool")``
writes instead the form that library's own NIR importer reads as the same discrete
neuron, or refuses naming the population (docs/nir-libraries.md, section 8); the
matching import preset reads such a file back as the same network.
"""
from __future__ import annotations

import base64
import json
import math
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, GraphError, SpikeportError
from .network import Network, Population, Projection
from .neurons import NEURON_FIELDS, InputEncoding, NeuronModel
from .ops import AvgPool2d, Conv2d, Dense, Flatten, SumPool2d

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
META_KEY = "spikeport"
FORMAT = "spikeport-nir"
VERSION = 1
DISCRETIZATIONS = ("forward-euler", "exponential")
MAX_PATHS = 100_000
MAX_DIAGONAL = 4096
RTOL = 1e-9  # metadata against the node's parameters
UNIFORM_RTOL = 1e-12  # "equal across neurons"

NEURON_TYPES = ("IF", "LIF", "CubaLIF")
LINEAR_TYPES = ("Affine", "Linear", "Scale", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Identity")
SUPPORTED = ("Input", "Output") + LINEAR_TYPES[:-1] + NEURON_TYPES
REFUSED = {
    "Delay": "continuous-time delays are not supported (spikeport delays are whole steps on projections)",
    "Threshold": "a bare threshold without a membrane has no spikeport neuron",
    "I": "non-spiking integrators are not supported (spikeport populations spike)",
    "LI": "non-spiking leaky integrators are not supported (spikeport populations spike)",
    "CubaLI": "non-spiking leaky integrators are not supported (spikeport populations spike)",
    "Conv1d": "1-D convolutions are not a spikeport op",
    "NIRGraph": "nested subgraphs are not supported",
}


class NIRWarning(UserWarning):
    """What a NIR import assumed, or what a NIR export stored only as metadata."""


def _nir():
    try:
        import nir
    except ImportError:
        raise SpikeportError("NIR support needs the nir package: pip install 'spikeport[nir]'") from None
    return nir


def is_nir_file(path) -> bool:
    """True for a ``.nir`` name or a file that starts with the HDF5 signature."""
    path = Path(path)
    if path.suffix.lower() == ".nir":
        return True
    try:
        with open(path, "rb") as f:
            return f.read(8) == HDF5_SIGNATURE
    except OSError:
        return False


def _listing(names, limit: int = 8) -> str:
    names = [repr(n) for n in names]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ----------------------------------------------------------------------------- metadata

def _meta_out(d: dict) -> dict:
    try:
        return {META_KEY: json.dumps(d, allow_nan=False, sort_keys=True)}
    except (TypeError, ValueError) as exc:
        raise GraphError(f"network: metadata is not plain finite JSON ({exc})") from None


def _meta_in(obj, owner: str) -> dict:
    md = getattr(obj, "metadata", None)
    if not isinstance(md, dict) or META_KEY not in md:
        return {}
    value = md[META_KEY]
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise GraphError(f"{owner}: metadata[{META_KEY!r}] is not valid JSON") from None
    if not isinstance(value, dict):
        raise GraphError(f"{owner}: metadata[{META_KEY!r}] must be a JSON object")
    return value


def _array_to_json(a: np.ndarray) -> dict:
    a = np.ascontiguousarray(a)
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": base64.b64encode(a.tobytes()).decode("ascii")}


def _array_from_json(d, owner: str) -> np.ndarray:
    try:
        dtype = np.dtype(d["dtype"])
        shape = tuple(int(s) for s in d["shape"])
        raw = base64.b64decode(d["data"], validate=True)
    except (KeyError, TypeError, ValueError):
        raise GraphError(f"{owner}: metadata array is malformed") from None
    if dtype.kind != "f" or any(s < 0 for s in shape) or len(raw) != math.prod(shape) * dtype.itemsize:
        raise GraphError(f"{owner}: metadata array is malformed ({dtype}, shape {shape}, {len(raw)} bytes)")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _plain(d: dict) -> dict:
    """numpy scalars to Python numbers, for JSON."""
    out = {}
    for k, v in d.items():
        if isinstance(v, (np.floating, float)) and not isinstance(v, bool):
            v = float(v)
        elif isinstance(v, np.integer):
            v = int(v)
        out[k] = v
    return out


# ----------------------------------------------------------------------------- import

def _float_array(value, owner: str, what: str) -> np.ndarray:
    if value is None:
        raise GraphError(f"{owner}: {what} is missing")
    a = np.array(value)
    if a.dtype.kind in "iub":
        a = a.astype(np.float64)
    if a.dtype.kind != "f":
        raise GraphError(f"{owner}: {what} must be numbers, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise GraphError(f"{owner}: {what} holds {int((~np.isfinite(a)).sum())} NaN or infinite values")
    return a


def _ints(value, owner: str, what: str, n: int = 2) -> tuple:
    a = np.asarray(value).ravel()
    try:
        ok = a.size in (1, n) and a.dtype.kind in "iuf" and np.all(a == np.round(a))
    except TypeError:
        ok = False
    if not ok:
        raise GraphError(f"{owner}: {what} must be an integer or {n} integers, got {value!r}")
    a = [int(v) for v in a]
    return tuple(a * n if len(a) == 1 else a)


def _same(a: np.ndarray) -> bool:
    """All elements equal, up to float64 rounding of one value computed per neuron (relative UNIFORM_RTOL)."""
    return bool(np.allclose(a, a.flat[0], rtol=UNIFORM_RTOL, atol=UNIFORM_RTOL * 1e-3))


def _uniform(a: np.ndarray, owner: str, what: str, per: str) -> float:
    first = a.flat[0]
    if not _same(a):
        raise GraphError(f"{owner}: {what} differs across neurons ({a.min():.9g} to {a.max():.9g}); "
                         f"spikeport has one {per} per population")
    return float(first) + 0.0  # no -0.0


def _append_scale(ops: list, s: np.ndarray, shape: tuple, owner: str, what: str) -> None:
    """Multiply the chain's output elementwise by s (shaped like the output), exactly."""
    if np.all(s == 1):
        return
    s = s.astype(np.float64)
    per_channel = len(shape) == 3 and bool(np.all(s == s[:, :1, :1]))
    last = ops[-1] if ops else None
    if isinstance(last, Dense):
        ops[-1] = Dense(last.weight * s.reshape(-1, 1))
    elif isinstance(last, Conv2d) and per_channel:
        ops[-1] = Conv2d(last.weight * s[:, 0, 0].reshape(-1, 1, 1, 1), stride=last.stride, padding=last.padding,
                         dilation=last.dilation, groups=last.groups)
    elif len(shape) == 1:
        if shape[0] > MAX_DIAGONAL:
            raise GraphError(f"{owner}: {what} on {shape[0]} neurons would need a dense diagonal matrix "
                             f"(limit {MAX_DIAGONAL}); no Dense or Conv2d precedes it to take the factor")
        ops.append(Dense(np.diag(s)))
    elif per_channel:
        ops.append(Conv2d(s[:, 0, 0].reshape(-1, 1, 1, 1).copy(), groups=shape[0]))
    else:
        raise GraphError(f"{owner}: {what} varies within a channel of shape {shape}; no spikeport op scales "
                         f"single neurons of such a population")


def _identity(shape: tuple, owner: str):
    if len(shape) == 1:
        return Flatten()
    if len(shape) == 3:
        return SumPool2d(1)
    raise GraphError(f"{owner}: a direct edge between populations of shape {shape} has no spikeport identity op")


class _Importer:
    """One NIR graph to one Network. Errors name the node; the caller adds the file."""

    def __init__(self, graph, dt: float, preset=None):
        self.g, self.dt, self.preset = graph, dt, preset
        self.nodes = dict(graph.nodes)
        self.kind, self.type = {}, {}
        self.notes = {d: [] for d in DISCRETIZATIONS}
        self.notes.update(metadata=[], folded=[])

    def owner(self, name) -> str:
        return f"node {name!r} ({self.type[name]})"

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
            raise GraphError(f"the edges form a cycle through node(s) {_listing(left)}; spikeport imports "
                             f"feed-forward NIR graphs only")
        inputs = [n for n, k in self.kind.items() if k == "input"]
        outputs = [n for n, k in self.kind.items() if k == "output"]
        if len(inputs) != 1:
            raise GraphError(f"needs exactly one Input node, found {len(inputs)} ({_listing(inputs)})")
        if len(outputs) != 1:
            raise GraphError(f"needs exactly one Output node, found {len(outputs)} ({_listing(outputs)})")
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
        b = _float_array(self.nodes[name].bias, self.owner(name), "bias")
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

    # -- linear chains
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

    def append_node(self, ops: list, name: str, shape: tuple) -> tuple:
        node, t, owner = self.nodes[name], self.type[name], self.owner(name)
        md = _meta_in(node, owner)
        try:
            if t in ("Affine", "Linear"):
                w = _float_array(node.weight, owner, "weight")
                if w.ndim != 2:
                    raise GraphError(f"{owner}: weight must be 2-D (n_out, n_in), got shape {w.shape}")
                op = Dense(w)
            elif t == "Scale":
                s = _float_array(node.scale, owner, "scale")
                try:
                    s = np.broadcast_to(s, shape)
                except ValueError:
                    raise GraphError(f"{owner}: scale of shape {s.shape} does not fit its input {shape}") from None
                _append_scale(ops, s, shape, owner, "scale")
                return shape
            elif t == "Conv2d":
                op = self.conv(node, owner, shape)
            elif t in ("AvgPool2d", "SumPool2d"):
                kernel = _ints(node.kernel_size, owner, "kernel_size")
                stride = kernel if node.stride is None else _ints(node.stride, owner, "stride")
                padding = (0, 0) if node.padding is None else _ints(node.padding, owner, "padding")
                if t == "AvgPool2d" and any(padding) and md.get("count_include_pad") is not True:
                    raise GraphError(f"{owner}: NIR does not say whether padding counts in the average; spikeport's "
                                     f"AvgPool2d counts it (metadata 'count_include_pad': true says so)")
                op = (AvgPool2d if t == "AvgPool2d" else SumPool2d)(kernel, stride, padding)
            elif t == "Flatten":
                op = self.flatten(node, owner, shape)
                if op is None:
                    return shape
            else:  # Identity
                return shape
        except GraphError as exc:
            msg = str(exc)
            raise GraphError(msg if msg.startswith(owner) else f"{owner}: {msg}") from None
        op.validate(owner)
        out = op.out_shape(shape, owner)
        ops.append(op)
        return out

    def conv(self, node, owner, shape):
        w = _float_array(node.weight, owner, "weight")
        if w.ndim != 4:
            raise GraphError(f"{owner}: weight must be 4-D (C_out, C_in/groups, kh, kw), got shape {w.shape}")
        stride = _ints(node.stride, owner, "stride")
        dilation = _ints(node.dilation, owner, "dilation")
        groups = _ints(node.groups, owner, "groups", 1)[0]
        padding = node.padding
        if isinstance(padding, bytes):
            padding = padding.decode()
        if isinstance(padding, str):
            if padding == "valid":
                padding = (0, 0)
            elif padding == "same":
                total = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
                if stride != (1, 1) or any(t % 2 for t in total):
                    raise GraphError(f"{owner}: padding 'same' with stride {stride} and kernel {w.shape[2:]} pads "
                                     f"unevenly, which spikeport's symmetric padding cannot express")
                padding = tuple(t // 2 for t in total)
            else:
                raise GraphError(f"{owner}: unknown padding {padding!r}")
        else:
            padding = _ints(padding, owner, "padding")
        if node.input_shape is not None and len(shape) == 3:
            declared = _ints(node.input_shape, owner, "input_shape")
            if declared != tuple(shape[1:]):
                raise GraphError(f"{owner}: declares input_shape {declared} but receives {tuple(shape)}")
        return Conv2d(w, stride=stride, padding=padding, dilation=dilation, groups=groups)

    def flatten(self, node, owner, shape):
        nd = len(shape)
        start, end = (_ints(v, owner, what, 1)[0] for v, what in ((node.start_dim, "start_dim"),
                                                                    (node.end_dim, "end_dim")))
        s, e = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
        if not 0 <= s <= e < nd:
            raise GraphError(f"{owner}: start_dim {start} / end_dim {end} do not fit its input of shape {shape}")
        out = shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
        if len(out) == 1:
            return Flatten()
        if out == tuple(shape):
            return None
        raise GraphError(f"{owner}: flattens {shape} to {out}; spikeport's Flatten flattens all dimensions")

    # -- neurons
    def param(self, node, field, shape, owner):
        a = _float_array(getattr(node, field, None), owner, field).astype(np.float64)
        try:
            return np.broadcast_to(a, shape)
        except ValueError:
            raise GraphError(f"{owner}: {field} of shape {a.shape} does not fit the population shape {shape}") from None

    def coefficients(self, name, shape, bias_aff, scheme):
        """The node's per-step map in NIR units, about v_reset: u = v - v_reset,
        u[t] = decay u[t-1] + gain (filtered) J[t] + const; spike when u > theta_u; u[-1] = -v_reset."""
        node, t, owner, dt = self.nodes[name], self.type[name], self.owner(name), self.dt
        P = lambda field: self.param(node, field, shape, owner)  # noqa: E731

        def step(tau, what):
            if not np.all(tau > 0):
                raise GraphError(f"{owner}: {what} must be > 0, got {tau.min():g}")
            if scheme == "forward-euler":
                k = dt / tau
                if np.any(k > 1):
                    raise GraphError(f"{owner}: {what} = {tau.min():g} s is shorter than dt = {dt:g} s; a "
                                     f"forward-Euler step would give a negative decay; use a smaller dt")
                return k, 1.0 - k
            return -np.expm1(-dt / tau), np.exp(-dt / tau)

        r = P("r")
        v_reset = np.zeros(shape) if getattr(node, "v_reset", None) is None else P("v_reset")
        syn = None
        if t == "IF":
            decay, gain = 1.0, dt * r
            const = gain * bias_aff
        elif t == "LIF":
            k, lam = step(P("tau"), "tau")
            decay = _uniform(lam, owner, "tau", "membrane decay")
            gain = k * r
            const = k * (P("v_leak") - v_reset) + gain * bias_aff
        else:
            k, lam = step(P("tau_mem"), "tau_mem")
            ks, alpha = step(P("tau_syn"), "tau_syn")
            decay = _uniform(lam, owner, "tau_mem", "membrane decay")
            syn = _uniform(alpha, owner, "tau_syn", "synaptic decay")
            if np.any(bias_aff):
                raise GraphError(f"{owner}: a bias feeding a CubaLIF passes through its synaptic filter, which "
                                 f"spikeport's population bias does not; a constant input is v_leak here")
            gain = k * r * ks * P("w_in")
            const = k * (P("v_leak") - v_reset)
        if not np.all(np.isfinite(gain) & (gain > 0)):
            raise GraphError(f"{owner}: the per-step input gain (r{', w_in' if t == 'CubaLIF' else ''}) must be "
                             f"positive and finite, got {gain.min():g}")
        theta_u = P("v_threshold") - v_reset
        if not np.all(theta_u > 0):
            raise GraphError(f"{owner}: v_threshold must exceed v_reset for every neuron")
        if decay == 1.0 and t != "IF":
            raise GraphError(f"{owner}: the membrane does not decay at dt = {dt:g} s (tau too long)")
        return {"decay": decay, "syn": syn, "gain": gain, "const": const, "theta_u": theta_u, "v_reset": v_reset}

    def neuron(self, name, shape, carriers):
        """(NeuronModel, bias, per-neuron weight factor or None, per-neuron v_init or None) for neuron node ``name``."""
        node, owner = self.nodes[name], self.owner(name)
        if self.preset is not None:
            return self.preset.neuron(self, name, shape, carriers)
        md = _meta_in(node, owner)
        scheme = md.get("discretization", "forward-euler")
        if scheme not in DISCRETIZATIONS:
            raise GraphError(f"{owner}: unknown discretization {scheme!r} in metadata "
                             f"(known: {', '.join(DISCRETIZATIONS)})")
        bias_aff = np.zeros(shape)
        for _, b in carriers:
            bias_aff = bias_aff + b.astype(np.float64)
        co = self.coefficients(name, shape, bias_aff, scheme)
        if "neuron" in md:
            nm, bias, v_init = self.from_metadata(name, md, co, shape)
            return nm, bias, None, v_init
        self.notes[scheme].append(name)
        theta_u, gain, v_reset, const = co["theta_u"], co["gain"], co["v_reset"], co["const"]
        theta, v_init = theta_u / gain, -v_reset / gain
        factor = None
        if _same(theta) and _same(v_init):
            bias = const / gain
        else:  # fold each neuron's threshold into its input weights and bias
            v_init = -v_reset / theta_u
            if not _same(v_init):
                raise GraphError(f"{owner}: v_threshold (or the input gain) differs across neurons, and folding it "
                                 f"into the weights needs v_reset / (v_threshold - v_reset) equal across neurons, "
                                 f"which it is not (spikeport has one threshold and one v_init per population)")
            theta, bias, factor = np.ones(shape), const / theta_u, gain / theta_u
            self.notes["folded"].append(name)
        nm = NeuronModel(model="if" if co["decay"] == 1.0 else "lif", reset="zero",
                         threshold=float(np.nextafter(theta.flat[0], np.inf)),  # v > thr  <=>  v >= next float
                         decay=co["decay"], syn_decay=co["syn"], v_init=float(v_init.flat[0]) + 0.0)
        nm.validate(owner)
        return nm, (np.array(bias, dtype=np.float64) if np.any(bias) else None), factor, None

    def from_metadata(self, name, md, co, shape):
        """A spikeport model stored by export_nir, checked against the node's NIR parameters."""
        owner = self.owner(name)
        fields = md["neuron"]
        known = set(NEURON_FIELDS)
        if not isinstance(fields, dict) or not set(fields) <= known:
            raise GraphError(f"{owner}: metadata 'neuron' must be an object with fields {sorted(known)}")
        nm = NeuronModel(**fields)
        nm.validate(owner)
        spec = md.get("bias")
        if spec is None:
            bias, in_nir = None, True
        elif isinstance(spec, dict) and set(spec) == {"carrier"}:
            p = spec["carrier"]
            if p not in self.pred[name] or self.type[p] not in ("Affine", "Conv2d"):
                raise GraphError(f"{owner}: metadata puts its bias on node {p!r}, which is not an Affine or Conv2d "
                                 f"feeding it")
            bias, in_nir = self.bias_into(p, shape, nonzero=False).copy(), True
        elif isinstance(spec, dict):
            bias, in_nir = _array_from_json(spec, owner + " bias"), bool(spec.get("nir"))
            if bias.shape != tuple(shape):
                raise GraphError(f"{owner}: metadata bias has shape {bias.shape}, the population {shape}")
        else:
            raise GraphError(f"{owner}: metadata 'bias' must be null, a carrier node or an array")
        gain = co["gain"]
        want_const = (bias if bias is not None and in_nir else np.zeros(shape)).astype(np.float64)
        scale = max(1.0, float(np.abs(want_const).max(initial=0)))
        checks = [
            ("v_reset", np.all(co["v_reset"] == 0)),
            ("the input gain (r, tau, w_in)", np.allclose(gain, 1.0, rtol=RTOL, atol=0)),
            ("v_threshold", np.allclose(np.nextafter(co["theta_u"] / gain, np.inf), nm.threshold, rtol=RTOL, atol=0)),
            ("tau (decay)", abs(co["decay"] - nm.decay) <= RTOL),
            ("tau_syn (syn_decay)", (co["syn"] is None) == (nm.syn_decay is None)
             and (co["syn"] is None or abs(co["syn"] - nm.syn_decay) <= RTOL)),
            ("the bias (Affine bias, v_leak)",
             np.allclose(co["const"] / gain, want_const, rtol=RTOL, atol=RTOL * scale)),
        ]
        for what, ok in checks:
            if not ok:
                raise GraphError(f"{owner}: its {what} disagrees with its spikeport metadata (edited after "
                                 f"export?); remove metadata['spikeport'] to import it as plain NIR")
        v_init = md.get("v_init")
        if v_init is not None:
            v_init = _array_from_json(v_init, owner + " v_init") if isinstance(v_init, dict) else None
            if v_init is None or v_init.shape != tuple(shape):
                raise GraphError(f"{owner}: metadata v_init must be an array of the population's shape {tuple(shape)}")
        self.notes["metadata"].append(name)
        return nm, bias, v_init

    # -- the network
    def network(self) -> Network:
        self.classify()
        gm = _meta_in(self.g, "graph")
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
        pop_name, shapes, pops, projs = {}, {}, {}, []
        md = _meta_in(self.nodes[self.input], self.owner(self.input))
        if not md and self.preset is not None and self.preset.target is not None:  # export_nir(library=...)
            md = {"population": self.preset.target.get("input", self.input),
                  "encoding": self.preset.target.get("input_encoding", {})}
        pop_name[self.input] = md.get("population", self.input)
        ishape = self.nodes[self.input].input_type.get("input") if isinstance(
            self.nodes[self.input].input_type, dict) else None
        if ishape is None:
            raise GraphError(f"{self.owner(self.input)}: has no shape")
        shapes[self.input] = _ints(ishape, self.owner(self.input), "shape", n=len(np.ravel(ishape)))
        if self.preset is not None:  # Rockpool types its Input with the sample's batch dimension: (1, 64)
            while len(shapes[self.input]) > 1 and shapes[self.input][0] == 1:
                shapes[self.input] = shapes[self.input][1:]
        enc = md.get("encoding", {})
        if not isinstance(enc, dict) or not set(enc) <= {"kind", "max_rate_hz"}:
            raise GraphError(f"{self.owner(self.input)}: metadata 'encoding' must be an object with kind, max_rate_hz")
        pops[self.input] = Population(pop_name[self.input], shapes[self.input], encoding=InputEncoding(**enc))
        for q in self.topo:
            if self.kind[q] != "neuron":
                continue
            owner = self.owner(q)
            md = _meta_in(self.nodes[q], owner)
            pop_name[q] = md.get("population", q)
            chains, shape = [], None
            for src, chain in self.paths_into(q):
                if src not in shapes:
                    raise GraphError(f"{owner}: internal order error at {src!r}")  # topo order makes this impossible
                ops, out = [], shapes[src]
                for lin in chain:
                    out = self.append_node(ops, lin, out)
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
            carriers = []
            for p in dict.fromkeys(self.pred[q]):
                b = self.bias_into(p, shape) if self.kind[p] == "linear" else None
                if b is not None:
                    carriers.append((p, b))
            nm, bias, factor, v_init = self.neuron(q, shape, carriers)
            pops[q] = Population(pop_name[q], shape, neuron=nm, bias=bias, v_init=v_init)
            for src, chain, ops in chains:
                if factor is not None:
                    _append_scale(ops, factor, shape, owner, "the per-neuron threshold fold (v_threshold differs "
                                  "across neurons)")
                if not ops:
                    ops.append(_identity(shape, owner))
                first = _meta_in(self.nodes[chain[0]], self.owner(chain[0])) if chain else {}
                projs.append({"src": src, "dst": q, "chain": chain, "ops": ops, "name": first.get("projection"),
                              "delay": first.get("delay_steps", 0)})
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
            populations = _reorder(populations, gm.get("populations"), "populations")
            projections = _reorder(projections, gm.get("projections"), "projections")
            metadata, readout = gm.get("metadata", {}), gm.get("readout", "spike_count")
        elif self.preset is not None and self.preset.target is not None:
            tg = self.preset.target
            populations = _reorder(populations, tg.get("populations"), "populations")
            projections = _reorder(projections, tg.get("projections"), "projections")
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
                    parts.append(f"{k} for {_listing(n[scheme])}")
        if n["folded"]:
            parts.append(f"differing thresholds folded into the input weights and bias of {_listing(n['folded'])} "
                         f"(theta = 1)")
        if n["metadata"]:
            parts.append(f"neuron models of {_listing(n['metadata'])} read from spikeport metadata (exported by "
                         f"spikeport; exact)")
        return "NIR import: " + "; ".join(parts) if parts else ""


# ----------------------------------------------------------------------------- library presets

LIBRARIES = ("snntorch", "norse", "sinabs", "rockpool", "nir")
LIBRARY_NAMES = {"snntorch": "snnTorch 1.0", "norse": "Norse 1.1", "sinabs": "sinabs 3.1", "rockpool": "Rockpool 3.1",
                 "nir": "generic NIR"}
SNNTORCH_DT = 1e-4  # snntorch/export_nir.py hard-codes dt = 1e-4
NORSE_DT = 1e-3  # norse.torch.to_nir(..., dt=0.001)
ROCKPOOL_DT = 1e-3  # LIFTorch / LIFNeuronTorch default dt
DEFAULT_STEP_S = 1e-3  # the network's dt_s where the library's dynamics have no time step (sinabs)
SINABS_MAX_SPIKES = 2**24  # MultiSpike is unbounded; counts above 2**24 are not exact in float32 anyway
ROCKPOOL_MAX_SPIKES = 2**16  # LIFTorch max_spikes_per_dt default
SIGNATURE_RTOL = 1e-5  # float32 rounding of a relation the exporter computed (r = tau/dt ...)
_ROCKPOOL_NAME = re.compile(r"^\d+_[A-Za-z]+Torch$")
F32 = np.float32


def _f32(x) -> np.ndarray:
    return np.asarray(x, np.float64).astype(F32)


def _exp32(x) -> np.ndarray:
    """float32 exp as torch computes it on the CPU (correctly rounded; numpy's float32 exp is not)."""
    return np.exp(np.asarray(x, np.float64)).astype(F32)


def _lambert_w(y) -> np.ndarray:
    """W(y) for y > 0 (Newton's method on w e^w = y), float64."""
    y = np.asarray(y, np.float64)
    w = np.log1p(y)
    for _ in range(60):
        ew = np.exp(w)
        w = w - (w * ew - y) / (ew * (w + 1))
    return w


def _arr(node, field):
    v = getattr(node, field, None)
    if v is None:
        return None
    a = np.asarray(v)
    return a.astype(np.float64) if a.dtype.kind in "iufb" else None


def _close(a, b, rtol=SIGNATURE_RTOL) -> bool:
    a = np.asarray(a, np.float64)
    return bool(a.size) and bool(np.all(np.isfinite(a))) and bool(np.allclose(a, b, rtol=rtol, atol=0))


def _rockpool_dt(node):
    """Rockpool writes r = tau exp(-dt/tau) / dt: u = dt/tau solves u e^u = 1/r, dt = tau W(1/r). None if r <= 0."""
    tau = _arr(node, "tau_mem" if type(node).__name__ == "CubaLIF" else "tau")
    r = _arr(node, "r")
    if tau is None or r is None or not (np.all(np.isfinite(tau)) and np.all(tau > 0) and np.all(np.isfinite(r))
                                        and np.all(r > 0)):
        return None
    return tau * _lambert_w(1.0 / r)


def _candidates(name, node, written):
    """The libraries whose exporter writes neuron node ``node`` as it is (a set), and why (words)."""
    t = type(node).__name__
    r, v_leak = _arr(node, "r"), _arr(node, "v_leak")
    leak0 = v_leak is None or not np.any(v_leak)
    out = set()
    if t == "IF":
        if r is not None and np.all(r == 1):
            out |= {"norse", "sinabs"}
        return out
    tau = _arr(node, "tau_mem" if t == "CubaLIF" else "tau")
    if tau is None or r is None:
        return out
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if t == "LIF" and np.all(np.isinf(tau)) and np.all(np.isinf(r)) and leak0:
            out.add("snntorch")  # Leaky(beta=1): tau = r = inf
        elif leak0 and _close(r * SNNTORCH_DT / tau, 1.0) and (
                t == "LIF" or _close(_arr(node, "w_in") * SNNTORCH_DT / _arr(node, "tau_syn"), 1.0)):
            out.add("snntorch")
        w_in = _arr(node, "w_in")
        if np.all(r == 1) and (t == "LIF" or w_in is None or np.all(w_in == 1)) and np.all(np.isfinite(tau)):
            if t == "LIF" and np.all(tau >= 0.5) and leak0:
                out.add("sinabs")  # tau in time steps
            if np.all(tau > 0) and np.all(tau <= 1e-2):
                out.add("norse")  # tau = dt / tau_inv = dt * tau_true: dt^2-small
        dt = _rockpool_dt(node)
        if (dt is not None and _ROCKPOOL_NAME.match(name) and _close(dt, np.median(dt))
                and (t == "LIF" or w_in is None or np.all(w_in == 1))):
            out.add("rockpool")
    return out


def _detect(graph, written=None):
    """(library or None, reason in words)."""
    gm = _meta_in(graph, "graph")
    if gm.get("format") == FORMAT:
        return "nir", "spikeport's own export (graph metadata)"
    if gm.get("format") == LIBRARY_FORMAT and gm.get("library") in EXPORT_LIBRARIES:
        return gm["library"], f"exported by spikeport for {LIBRARY_NAMES[gm['library']]}'s importer (graph metadata)"
    neurons = {n: v for n, v in graph.nodes.items() if type(v).__name__ in NEURON_TYPES}
    if not neurons:
        return None, "no neuron nodes"
    fields = ("tau", "tau_mem", "tau_syn", "r", "w_in", "v_threshold", "v_leak", "v_reset")
    if not all(np.asarray(getattr(v, f)).dtype == np.float32 for v in neurons.values() for f in fields
               if getattr(v, f, None) is not None):
        return None, ("neuron parameters are not float32 (the libraries' exporters write torch's float32 "
                      "tensors)")
    cands = None
    for name, node in neurons.items():
        c = _candidates(str(name), node, written)
        cands = c if cands is None else cands & c
    if "rockpool" in cands and len(cands) > 1:
        cands = {"rockpool"}  # its module names (<i>_<Module>Torch) decide
    types = sorted({type(v).__name__ for v in neurons.values()})
    if cands == {"norse", "sinabs"}:  # IF(r = 1) with Affine: the two exporters write the same nodes
        no_reset = written is not None and all("v_reset" not in written.get(str(n), {"v_reset": True}) for n in neurons)
        if no_reset:
            return "sinabs", ("IF nodes with r = 1 and no v_reset field (written by nir <= 1.0.4, which sinabs 3.1 "
                              "pins; Norse's IF files are otherwise identical)")
        return "norse", ("IF nodes with r = 1 and v_reset written (Norse; sinabs writes the same IF nodes, without "
                         "v_reset under the nir 1.0.4 it pins: pass library='sinabs' if sinabs wrote it)")
    if cands is not None and len(cands) == 1:
        lib = next(iter(cands))
        why = {"snntorch": "r = tau / 1e-4 (snnTorch's exporter dt), or tau = r = inf for beta = 1",
               "norse": "r = 1 and tau = dt / tau_inv (tau <= 1e-2 s)",
               "sinabs": "LIF with r = 1 and tau >= 0.5 (tau in time steps)",
               "rockpool": "node names <i>_<Module>Torch and r = tau exp(-dt/tau) / dt with one dt"}[lib]
        return lib, f"{'/'.join(types)} nodes with {why}"
    return None, f"{'/'.join(types)} nodes fit {'none' if not cands else ' and '.join(sorted(cands))} of the " \
                 f"known exporters"


class _Preset:
    """One library's discrete neuron, read from its exporter's NIR nodes (docs/nir-libraries.md)."""

    def __init__(self, library, dt_s, reset, graph, reason):
        self.lib, self.reset_override, self.reason = library, reset, reason
        self.notes, self.facts = [], {}
        self.user_dt = dt_s
        gm = _meta_in(graph, "graph")
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
        if library == "snntorch":
            self.dt = SNNTORCH_DT
            self.net_dt = SNNTORCH_DT if dt_s is None else dt_s
        elif library == "norse":
            self.dt = NORSE_DT if dt_s is None else dt_s
            self.net_dt = self.dt
        elif library == "sinabs":
            self.dt = None
            self.net_dt = DEFAULT_STEP_S if dt_s is None else dt_s
        else:  # rockpool: dt is written through r
            dts = [d for d in (_rockpool_dt(v) for v in graph.nodes.values()
                               if type(v).__name__ in ("LIF", "CubaLIF")) if d is not None]
            rec = float(np.median(np.concatenate([d.ravel() for d in dts]))) if dts else None
            if dt_s is not None:
                self.dt = dt_s
                if rec is not None and abs(rec / dt_s - 1) > SIGNATURE_RTOL:
                    self.notes.append(f"dt {dt_s:g} s as given, although r says {rec:.9g} s")
            elif rec is None:
                self.dt = ROCKPOOL_DT
            else:
                self.dt = ROCKPOOL_DT if abs(rec / ROCKPOOL_DT - 1) <= SIGNATURE_RTOL else rec
                self.rec = rec
            self.net_dt = self.dt
            self.rec = rec

    def describe(self) -> str:
        lib, dt = self.lib, self.dt
        head = f"NIR import as {LIBRARY_NAMES[lib]} wrote it ({self.reason})"
        if self.target is not None:
            return (f"NIR import as {LIBRARY_NAMES[lib]}'s importer reads it ({self.reason}): {_IMPORTERS[lib]}; "
                    f"neuron models from spikeport metadata, checked against that reading of the parameters; "
                    f"dt_s {self.net_dt:g} s")
        parts = []
        reset = self.reset_override
        if lib == "snntorch":
            parts.append("dt 1e-4 s (its exporter's; the discrete dynamics do not depend on it"
                         + (f"; the network's dt_s is {self.net_dt:g} s as given)" if self.user_dt is not None else
                            ")"))
            parts.append("beta = float32(1 - dt/tau), alpha = float32(1 - dt/tau_syn), tau = inf as IF; input gain "
                         "1 (r dt/tau = 1 to float32 rounding)")
            if reset in (None, "subtract"):
                parts.append("reset by subtraction applied one step late, i.e. theta/beta subtracted in the same step "
                             "(snnTorch does not write the reset" + ("" if reset else "; use reset='zero' for "
                                                                     "reset_mechanism='zero'") + ")")
            else:
                parts.append("reset to zero as given (Leaky: same step; Synaptic: zero and 1 refractory step)")
            parts.append("spike where v > v_threshold (strict); state starts at 0")
        elif lib == "norse":
            parts.append(f"dt {dt:g} s ({'as given' if self.user_dt is not None else 'to_nir default'}; not in the "
                         f"file), k = dt^2/tau because its exporter writes tau = dt/tau_inv")
            parts.append("LIF: v += k (v_leak - v + I); CubaLIF: the current jumps by I, then v += k (v_leak - v + i), "
                         "then i decays by dt^2/tau_syn; IF: v += I (r and dt unused)")
            parts.append("spike where v > v_threshold (strict); " + (
                "reset to v_reset in the same step" if reset in (None, "zero") else "reset by subtracting v_threshold"
                " as given") + "; v starts at v_leak (IF: v_reset)")
        elif lib == "sinabs":
            parts.append(f"tau in time steps (one step = the network's dt_s {self.net_dt:g} s"
                         + (", as given)" if self.user_dt is not None else ", a default: sinabs has no time unit)"))
            parts.append("LIF: v = exp(-1/tau) v + (1 - exp(-1/tau)) I (norm_input=True, its default; not in the "
                         "file); IF: v += I")
            parts.append("MultiSpike: floor(v/theta) spikes where v >= theta, " + (
                "subtract that many theta" if reset in (None, "subtract") else "reset to zero as given")
                + "; state starts at 0")
        else:
            how = ("as given" if self.user_dt is not None else
                   "Rockpool's default 1e-3 s, which r confirms" if self.dt == ROCKPOOL_DT and self.rec is not None
                   else "recovered from r" if self.rec is not None else "Rockpool's default")
            parts.append(f"dt {dt:.9g} s ({how}: r = tau exp(-dt/tau)/dt)")
            parts.append("membrane decay exp(-dt/tau_mem), gain 1; CubaLIF: i = exp(-dt/tau_syn) (i + I) (the jump "
                         "decays in its own step); bias = v_leak")
            parts.append(f"StepPWL: floor(v/theta) spikes (at most {ROCKPOOL_MAX_SPIKES}) where v >= theta, "
                         + ("subtract that many theta" if reset in (None, "subtract") else "reset to zero as given")
                         + "; state starts at 0")
        parts.extend(self.notes)
        return head + ": " + "; ".join(parts)

    # -- one neuron node
    def neuron(self, imp, name, shape, carriers):
        """(NeuronModel, bias, per-neuron weight factor or None, None)."""
        node, t, owner = imp.nodes[name], imp.type[name], imp.owner(name)
        lib = self.lib
        P = lambda f: imp.param(node, f, shape, owner)  # noqa: E731
        if self.target is not None:
            return self.target_neuron(imp, name, shape, carriers)

        def opt(field, default=0.0):
            return np.full(shape, default) if getattr(node, field, None) is None else P(field)

        def one(a, what, per):
            return _uniform(np.asarray(a, np.float64), owner, what, per)

        def raw(field):  # may hold inf (snnTorch beta = 1)
            a = np.array(getattr(node, field, None), dtype=np.float64)
            return np.broadcast_to(a, shape)

        if carriers and any(np.any(b) for _, b in carriers):
            if lib != "rockpool" or t == "CubaLIF":
                raise GraphError(f"{owner}: an Affine bias into a {LIBRARY_NAMES[lib]} neuron is not supported by "
                                 f"this preset (the fixtures' exporters write zero biases); import with library='nir'")
        theta = P("v_threshold")
        v_reset = opt("v_reset")
        v_leak = opt("v_leak") if t != "IF" else np.zeros(shape)
        reset = self.reset_override
        kw = {}
        factor = None
        bias = None
        if lib == "snntorch":
            if np.any(v_leak):
                raise GraphError(f"{owner}: v_leak != 0, which snnTorch's exporter never writes")
            tau = raw("tau_mem" if t == "CubaLIF" else "tau")
            if np.all(np.isinf(tau)):
                lam = 1.0
            else:
                if not (np.all(np.isfinite(tau)) and np.all(tau > SNNTORCH_DT)):
                    raise GraphError(f"{owner}: tau must be > 1e-4 s (snnTorch's dt) or inf, got {tau.min():g}")
                lam = one(_f32(1.0 - SNNTORCH_DT / tau), "tau", "membrane decay")
                if not _close(P("r") * SNNTORCH_DT / tau, 1.0):
                    raise GraphError(f"{owner}: r dt/tau = {float(np.max(P('r') * SNNTORCH_DT / tau)):.9g} is not 1 "
                                     f"(snnTorch's exporter writes r = tau/1e-4); import with library='nir'")
            if t == "IF":
                raise GraphError(f"{owner}: snnTorch's exporter writes no IF node (Leaky(beta=1) is LIF tau = inf)")
            syn = None
            if t == "CubaLIF":
                ts = P("tau_syn")
                if not np.all(ts > SNNTORCH_DT):
                    raise GraphError(f"{owner}: tau_syn must be > 1e-4 s (snnTorch's dt), got {ts.min():g}")
                syn = one(_f32(1.0 - SNNTORCH_DT / ts), "tau_syn", "synaptic decay")
                if not _close(P("w_in") * SNNTORCH_DT / ts, 1.0):
                    raise GraphError(f"{owner}: w_in dt/tau_syn is not 1 (snnTorch's exporter writes w_in = "
                                     f"tau_syn/1e-4); import with library='nir'")
            th = one(theta, "v_threshold", "threshold")
            if reset in (None, "subtract"):
                kw = dict(reset="subtract", reset_amount=None if lam == 1.0 else th / lam)
            else:
                kw = dict(reset="zero", refractory_steps=1 if t == "CubaLIF" else 0)
            nm = NeuronModel(model="if" if lam == 1.0 else "lif", threshold=th, decay=lam, syn_decay=syn,
                             strict_threshold=True, **kw)
        elif lib == "norse":
            if t != "IF" and not np.all(P("r") == 1):
                self.notes.append(f"r of {name!r} ignored (Norse ignores it)")
            if t == "IF":
                lam, syn, k = 1.0, None, None
            else:
                dt = self.dt

                def kk(tau, what):
                    if not np.all(tau > 0):
                        raise GraphError(f"{owner}: {what} must be > 0, got {tau.min():g}")
                    k = (F32(dt) * _f32(dt / tau)).astype(F32).astype(np.float64)
                    if np.any(k > 1):
                        raise GraphError(f"{owner}: dt^2/{what} = {k.max():g} > 1 at dt = {dt:g} s (Norse's step "
                                         f"would overshoot): give the dt Norse's to_nir used")
                    return k
                k = kk(P("tau_mem" if t == "CubaLIF" else "tau"), "tau_mem" if t == "CubaLIF" else "tau")
                lam = one(1.0 - k, "tau", "membrane decay")
                syn = None
                if t == "CubaLIF":
                    if not np.all(opt("w_in", 1.0) == 1):
                        raise GraphError(f"{owner}: w_in != 1, which Norse's exporter never writes")
                    syn = one(1.0 - kk(P("tau_syn"), "tau_syn"), "tau_syn", "synaptic decay")
                factor = k
                bias = k * (v_leak - v_reset)
                if lam == 1.0:
                    raise GraphError(f"{owner}: the membrane does not decay at dt = {dt:g} s")
            th_u = theta - v_reset
            if not np.all(th_u > 0):
                raise GraphError(f"{owner}: v_threshold must exceed v_reset for every neuron")
            th = one(th_u, "v_threshold - v_reset", "threshold")
            v0 = one(np.zeros(shape) if t == "IF" else v_leak - v_reset, "v_leak - v_reset", "v_init")
            if reset in (None, "zero"):
                kw = dict(reset="zero")
            else:
                kw = dict(reset="subtract", reset_amount=None if not np.any(v_reset) else
                          one(theta, "v_threshold", "reset amount"))
            nm = NeuronModel(model="if" if lam == 1.0 else "lif", threshold=th, decay=lam, syn_decay=syn,
                             v_init=v0, strict_threshold=True, **kw)
        elif lib == "sinabs":
            if t == "CubaLIF":
                raise GraphError(f"{owner}: sinabs' exporter writes no CubaLIF node")
            if not np.all(P("r") == 1) or np.any(v_leak) or np.any(v_reset):
                raise GraphError(f"{owner}: r != 1, v_leak != 0 or v_reset != 0, which sinabs' exporter never "
                                 f"writes; import with library='nir'")
            if t == "IF":
                lam = 1.0
            else:
                tau = P("tau")
                if not np.all(tau > 0):
                    raise GraphError(f"{owner}: tau must be > 0 (time steps), got {tau.min():g}")
                a = _exp32((F32(1.0) / _f32(tau)).astype(F32) * F32(-1.0))
                lam = one(a.astype(np.float64), "tau", "membrane decay")
                factor = np.full(shape, float(F32(1.0) - F32(lam)))
                if lam == 1.0:
                    raise GraphError(f"{owner}: tau = {tau.max():g} steps gives no decay in float32")
            th = one(theta, "v_threshold", "threshold")
            nm = NeuronModel(model="if" if lam == 1.0 else "lif", threshold=th, decay=lam,
                             reset="zero" if reset == "zero" else "subtract", max_spikes_per_step=SINABS_MAX_SPIKES)
        else:  # rockpool
            if t == "IF":
                raise GraphError(f"{owner}: Rockpool's exporter writes no IF node")
            dt = self.dt

            def decay(tau, what):
                if not np.all(tau > 0):
                    raise GraphError(f"{owner}: {what} must be > 0, got {tau.min():g}")
                return _exp32((F32(1.0) / _f32(tau)).astype(F32) * F32(-dt)).astype(np.float64)
            lam = one(decay(P("tau_mem" if t == "CubaLIF" else "tau"), "tau"), "tau", "membrane decay")
            syn = None
            if t == "CubaLIF":
                if not np.all(opt("w_in", 1.0) == 1):
                    raise GraphError(f"{owner}: w_in != 1, which Rockpool's exporter never writes")
                syn = one(decay(P("tau_syn"), "tau_syn"), "tau_syn", "synaptic decay")
                factor = np.full(shape, syn)
            if np.any(v_reset):
                raise GraphError(f"{owner}: v_reset != 0, which Rockpool's exporter never writes")
            bias = v_leak.copy()
            for _, b in carriers:
                bias = bias + b.astype(np.float64)
            if lam == 1.0:
                raise GraphError(f"{owner}: the membrane does not decay at dt = {dt:g} s")
            th = one(theta, "v_threshold", "threshold")
            nm = NeuronModel(model="lif", threshold=th, decay=lam, syn_decay=syn,
                             reset="zero" if reset == "zero" else "subtract", max_spikes_per_step=ROCKPOOL_MAX_SPIKES)
        nm.validate(owner)
        if factor is not None and np.all(factor == 1):
            factor = None
        bias = np.array(bias, np.float64) if bias is not None and np.any(bias) else None
        return nm, bias, factor, None

    def target_neuron(self, imp, name, shape, carriers):
        """A node written by export_nir(library=...): the library importer's reading of it (_view) must agree
        with the spikeport model stored beside it, which is then returned exactly."""
        node, t, owner, lib = imp.nodes[name], imp.type[name], imp.owner(name), self.lib
        allowed = {"snntorch": ("LIF", "CubaLIF"), "norse": NEURON_TYPES, "sinabs": ("LIF",), "rockpool": ("CubaLIF",)}
        if t not in allowed[lib]:
            raise GraphError(f"{owner}: export_nir(library={lib!r}) writes no {t} node")
        if carriers and any(np.any(b) for _, b in carriers):
            raise GraphError(f"{owner}: an Affine bias, which export_nir(library={lib!r}) never writes")
        md = _meta_in(node, owner)
        fields = md.get("model")
        if not isinstance(fields, dict) or not set(fields) <= set(NEURON_FIELDS):
            raise GraphError(f"{owner}: no spikeport model in its metadata (a file of export_nir(library={lib!r}) "
                             f"has one)")
        nm = NeuronModel(**fields)
        nm.validate(owner)

        def get(field):
            v = getattr(node, field, None)
            if v is None:
                return F32(0.0) if field == "v_leak" else None
            return np.broadcast_to(np.asarray(v, dtype=np.float64).astype(F32), shape)

        view = _view(lib, t, get)
        scale = np.asarray(view["scale"], np.float64)
        theta = get("v_threshold").astype(np.float64) / scale
        c = get("v_leak").astype(np.float64) / scale if lib == "rockpool" else np.zeros(shape)
        spec = md.get("bias")
        bias = None if spec is None else _array_from_json(spec, owner + " bias")
        if bias is not None and bias.shape != tuple(shape):
            raise GraphError(f"{owner}: metadata bias has shape {bias.shape}, the population {tuple(shape)}")
        want_b = np.zeros(shape) if bias is None else bias.astype(np.float64)

        def near(a, b, tol=TARGET_TOL):
            return bool(np.all(np.abs(np.asarray(a, np.float64) - b) <= tol * max(1.0, abs(float(b)))))

        checks = [
            ("the membrane decay (tau, r)", near(view["decay"], nm.decay)),
            ("the synaptic decay (tau_syn)", (view["syn"] is None) == (nm.syn_decay is None)
             and (view["syn"] is None or near(view["syn"], nm.syn_decay))),
            ("v_threshold", near(theta, nm.threshold)),
            ("v_leak (the bias)", bool(np.allclose(c, want_b, rtol=TARGET_TOL, atol=TARGET_TOL))),
            ("the reset", view["reset"] == nm.reset and view["max_spikes"] == nm.max_spikes_per_step
             and (view["strict"] or not nm.strict_threshold) and nm.refractory_steps == 0 and nm.v_init == 0),
        ]
        for what, ok in checks:
            if not ok:
                raise GraphError(f"{owner}: its {what} disagrees with its spikeport metadata under "
                                 f"{LIBRARY_NAMES[lib]}'s importer (edited after export?)")
        return nm, bias, None, None


def _reorder(items, names, what):
    have = [x.name for x in items]
    if not isinstance(names, list) or sorted(map(str, names)) != sorted(have):
        raise GraphError(f"graph: its spikeport metadata lists {what} {names!r}, the graph has {have!r} (edited "
                         f"after export?); remove metadata['spikeport'] to import it as plain NIR")
    by = {x.name: x for x in items}
    return [by[n] for n in names]


def check_type(name: str, type_name: str) -> None:
    if type_name in SUPPORTED or type_name == "Identity":
        return
    reason = REFUSED.get(type_name, "unknown node type")
    raise GraphError(f"node {name!r}: NIR type {type_name} is not supported ({reason}); spikeport imports "
                     f"{', '.join(SUPPORTED)}")


def _read_file(path: Path):
    from .io import read_magic

    nir = _nir()
    if read_magic(path, 8) != HDF5_SIGNATURE:
        raise FileFormatError(f"{path}: not a NIR file (no HDF5 signature)")
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f["node"]
            top = root["type"][()]
            top = top.decode() if isinstance(top, bytes) else str(top)
            types = {}
            if top == "NIRGraph":
                for name, g in root["nodes"].items():
                    t = g["type"][()]
                    types[name] = t.decode() if isinstance(t, bytes) else str(t)
    except (OSError, KeyError, TypeError, ValueError, AttributeError) as exc:
        msg = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise FileFormatError(f"{path}: not a readable NIR graph ({msg})") from None
    if top != "NIRGraph":
        raise FileFormatError(f"{path}: the NIR file holds a single {top} node, not a graph")
    for name, t in types.items():  # name the node before nir's parser meets a type it may not know
        try:
            check_type(name, t)
        except GraphError as exc:
            raise GraphError(f"{path}: {exc}") from None
    try:
        return nir.read(path, type_check=False)
    except Exception as exc:  # a third-party parser on a user's file: any failure is the file's
        msg = str(exc).splitlines()[0][:160] if str(exc) else ""
        raise FileFormatError(f"{path}: cannot read the NIR graph ({type(exc).__name__}{': ' + msg if msg else ''})") \
            from None


def _source(source):
    """(graph, where, fields written per node or None) for a path or an nir.NIRGraph."""
    nir = _nir()
    if isinstance(source, nir.NIRGraph):
        return source, "NIR graph", None
    if isinstance(source, (str, os.PathLike)):
        graph = _read_file(Path(source))
        return graph, str(source), _written_fields(Path(source))
    raise SpikeportError(f"import_nir: source must be a path or an nir.NIRGraph, got {type(source).__name__}")


def _written_fields(path: Path):
    """{node name: {field: True}} as stored in the HDF5 file (nir fills absent fields on reading), or None."""
    try:
        import h5py

        with h5py.File(path, "r") as f:
            return {name: {k: True for k in g.keys()} for name, g in f["node"]["nodes"].items()
                    if isinstance(g, h5py.Group)}
    except Exception:  # only a hint for detection; the file was read already
        return None


def detect_library(source) -> str | None:
    """Which library's NIR exporter wrote ``source`` (a path or an ``nir.NIRGraph``): "snntorch", "norse",
    "sinabs", "rockpool", "nir" (spikeport's own export), or None when the file does not say reliably.

    Nothing in a NIR file names its writer; the signatures used are those of the exporters
    (docs/nir-libraries.md), on float32 neuron parameters only (all four write torch's float32
    tensors; spikeport and hand-made float64 graphs stay generic): snnTorch r = tau / 1e-4 (tau = r = inf for beta = 1); Norse r = 1 with
    tau = dt / tau_inv (tiny); sinabs LIF r = 1 with tau in steps (>= 0.5), IF r = 1 without v_reset
    (nir 1.0.4); Rockpool node names <i>_<Module>Torch with r = tau exp(-dt/tau) / dt. IF-only graphs
    with r = 1 and v_reset written are Norse's or sinabs' (identical files): read as Norse, said so.
    """
    graph, _, written = _source(source)
    return _detect(graph, written)[0]


def import_nir(source, dt_s: float | None = None, *, library: str | None = None, reset: str | None = None) -> Network:
    """Read a NIR graph (a file path or an ``nir.NIRGraph``) as a validated :class:`Network`.

    library : "snntorch", "norse", "sinabs", "rockpool" or "nir"; None detects it from the file
        (:func:`detect_library`) and falls back to "nir" when the file does not say.
        A library preset applies that library's discrete semantics (docs/nir-libraries.md:
        time step, discretization, reset and its timing, synapse order, strict or non-strict
        threshold, initial membrane, several spikes per step) and states all it assumed in one
        :class:`NIRWarning`. "nir" is NIR's continuous-time semantics discretized with ``dt_s``
        (forward Euler unless node metadata says otherwise: module docstring).
    dt_s : the time step in seconds. "nir" needs it (files exported by spikeport carry their own).
        Norse and Rockpool: the library's own dt (Norse default 1e-3 s, to_nir's; Rockpool
        default the dt written through r), which changes the discrete dynamics. snnTorch (whose
        exporter fixes 1e-4 s) and sinabs (tau in steps): only the network's dt_s (rates, energy),
        the discrete dynamics stay the library's (defaults 1e-4 s and 1e-3 s).
    reset : None (the library's default) or "subtract" / "zero": the reset the library used where the
        file cannot say (snnTorch's reset_mechanism is never written). A library preset only.

    Errors are one-line :class:`SpikeportError` naming the file and the node.
    """
    nir = _nir()
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
    graph, where, written = _source(source)
    reason = "named"
    if library is None:
        library, why = _detect(graph, written)
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
            gm = _meta_in(graph, "graph") if isinstance(graph, nir.NIRGraph) else {}
            md_dt = gm.get("dt_s") if gm.get("format") == FORMAT else None
            if not isinstance(md_dt, (int, float)) or isinstance(md_dt, bool):
                raise SpikeportError(f"{where}: generic NIR import needs dt (the time step its continuous-time "
                                     f"neurons are discretized with)")
            dt = float(md_dt)
        importer = _Importer(graph, dt)
    else:
        if _meta_in(graph, "graph").get("format") == FORMAT:
            raise SpikeportError(f"{where}: exported by spikeport, not by {LIBRARY_NAMES[library]}: import it as "
                                 f"generic NIR (library 'nir')")
        try:
            preset = _Preset(library, dt, reset, graph, reason)
        except SpikeportError as exc:
            raise type(exc)(f"{where}: {exc}") from None
        importer = _Importer(graph, preset.net_dt, preset)
    try:
        net = importer.network()
    except SpikeportError as exc:
        raise type(exc)(f"{where}: {exc}") from None
    msg = importer.warning() if importer.preset is None else importer.preset.describe()
    if msg:
        warnings.warn(msg, NIRWarning, stacklevel=2)
    return net


# ----------------------------------------------------------------------------- export

class _Names:
    def __init__(self):
        self.used = set()

    def take(self, base: str) -> str:
        base = base.replace("/", "_")
        if base in ("", ".", ".."):
            base = "node"
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name


def _bias_carriers(network) -> dict:
    """population -> the projection whose last op (Dense: Affine bias; Conv2d: its per-channel bias) carries
    the population's bias in NIR."""
    out = {}
    for pop in network.populations:
        if pop.bias is None or pop.neuron.syn_decay is not None:
            continue  # a CubaLIF's input passes through its synapse: the bias goes to v_leak
        into = network.projections_into(pop.name)
        dense = [p for p in into if isinstance(p.ops[-1], Dense)]
        b = pop.bias
        conv = [p for p in into if isinstance(p.ops[-1], Conv2d) and len(pop.shape) == 3
                and np.all(b == b[:, :1, :1])]
        if dense or conv:
            out[pop.name] = (dense or conv)[0].name
    return out


def _neuron_node(nir, pop, dt, carrier, stored):
    nm, shape = pop.neuron, pop.shape

    def full(v):
        return np.full(shape, v, dtype=np.float64)

    if nm.syn_decay is not None and nm.model == "if":
        raise GraphError(f"population {pop.name!r}: NIR has no integrate-and-fire neuron with a synaptic current "
                         f"(CubaLIF needs a membrane leak); it cannot be exported")
    zeros = full(0.0)
    v_leak, bias_md = zeros, None
    tau = None if nm.model == "if" else dt / (1.0 - nm.decay)
    if pop.bias is not None:
        if carrier is not None:
            bias_md = {"carrier": carrier}
        elif tau is not None:  # the constant dt/tau * v_leak per step
            v_leak = pop.bias.astype(np.float64).reshape(shape) * (tau / dt)
            bias_md = dict(_array_to_json(pop.bias), nir=True)
        else:
            bias_md = dict(_array_to_json(pop.bias), nir=False)
            stored.setdefault("the bias (no Affine or per-channel Conv2d ends a projection into it)", []).append(
                repr(pop.name))
    extra = {}
    if pop.v_init is not None:
        extra["v_init"] = _array_to_json(pop.v_init)
        stored.setdefault("v_init", []).append(f"{pop.name!r} (per neuron)")
    md = _meta_out({"population": pop.name, "discretization": "forward-euler", "neuron": _plain(nm.to_dict()),
                    "bias": bias_md, **extra})
    thr = full(np.nextafter(float(nm.threshold), -np.inf))
    if nm.reset == "subtract":
        stored.setdefault("reset by subtraction (NIR's node resets to v_reset = 0)", []).append(repr(pop.name))
    if nm.refractory_steps:
        stored.setdefault("refractory_steps", []).append(f"{pop.name!r} ({nm.refractory_steps})")
    if nm.reset_amount is not None:
        stored.setdefault("reset_amount", []).append(f"{pop.name!r} ({nm.reset_amount:.9g})")
    if nm.max_spikes_per_step != 1:
        stored.setdefault("max_spikes_per_step", []).append(f"{pop.name!r} ({nm.max_spikes_per_step})")
    if nm.strict_threshold:
        stored.setdefault("strict_threshold (v > theta)", []).append(repr(pop.name))
    if nm.v_init != 0 and pop.v_init is None:
        stored.setdefault("v_init", []).append(f"{pop.name!r} ({nm.v_init:g})")
    if nm.model == "if":
        return nir.IF(r=full(1.0 / dt), v_threshold=thr, v_reset=zeros, metadata=md)
    if nm.syn_decay is None:
        return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=v_leak, v_threshold=thr, v_reset=zeros, metadata=md)
    tau_syn = dt / (1.0 - nm.syn_decay)
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau), r=full(tau / dt), v_leak=v_leak, v_threshold=thr,
                       v_reset=zeros, w_in=full(tau_syn / dt), metadata=md)


def _op_node(nir, op, shape, bias, md, stored, owner):
    if op.kind == "dense":
        if bias is not None:
            return nir.Affine(weight=op.weight, bias=bias.reshape(-1), metadata=md)
        return nir.Linear(weight=op.weight, metadata=md)
    if op.kind == "flatten":
        return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1, metadata=md)
    if op.kind == "conv2d":
        cb = bias[:, 0, 0].copy() if bias is not None else np.zeros(op.weight.shape[0], dtype=op.weight.dtype)
        return nir.Conv2d(input_shape=tuple(shape[1:]), weight=op.weight, stride=tuple(op.stride),
                          padding=tuple(op.padding), dilation=tuple(op.dilation), groups=int(op.groups), bias=cb,
                          metadata=md)
    if op.kind in ("avgpool2d", "sumpool2d"):
        args = dict(kernel_size=np.array(op.kernel_size), stride=np.array(op.stride), padding=np.array(op.padding))
        if op.kind == "sumpool2d":
            return nir.SumPool2d(**args, metadata=md)
        if any(op.padding):
            stored.setdefault("AvgPool2d counting its padding (count_include_pad)", []).append(owner)
        return nir.AvgPool2d(**args, metadata=md)
    raise GraphError(f"{owner}: op {op.kind!r} has no NIR node")


def export_nir(network: Network, path=None, *, library: str | None = None):
    """The network as an ``nir.NIRGraph`` (module docstring); written with ``nir.write`` when ``path`` is given.

    library : None (or "nir"): generic NIR plus spikeport metadata; a :class:`NIRWarning` lists what NIR
        cannot express and was stored only as ``metadata["spikeport"]`` (which :func:`import_nir` reads
        back exactly). "snntorch", "norse", "sinabs" or "rockpool": the parameters in the form that
        library's own NIR importer reads back as the same discrete dynamics (docs/nir-libraries.md,
        section 8), or a one-line :class:`GraphError` naming the population and what that importer
        cannot take. ``import_nir(file, library=X)`` reads such a file back as the same network.
    """
    nir = _nir()
    if library == "nir":
        library = None
    if library is not None and library not in EXPORT_LIBRARIES:
        raise SpikeportError(f"unknown NIR export library {library!r} (known: {', '.join(EXPORT_LIBRARIES)}, "
                             f"or None for generic NIR)")
    network.validate()
    if network.fixed_point is not None:
        raise GraphError("NIR export of a fixed-point network is not supported: NIR has no number formats "
                         "(export the floating-point network)")
    try:
        network.order(all_projections=True)
    except GraphError as exc:
        raise GraphError(f"NIR export of recurrent networks is not supported: {exc}") from None
    if library is not None:
        graph, note = _export_library(nir, network, library)
        warnings.warn(note, NIRWarning, stacklevel=2)
        if path is not None:
            _write(nir, graph, Path(path), drop_v_reset=library == "sinabs")
        return graph
    dt = float(network.dt_s)
    names = _Names()
    node_of = {p.name: names.take(p.name) for p in network.populations}
    out_name = names.take("output")
    stored = {f"dt_s = {dt:g} s (the neuron parameters are for forward-Euler steps of it)": []}
    op_names = {proj.name: [names.take(f"{proj.name}.{i}") for i in range(len(proj.ops))]
                for proj in network.projections}
    carriers = {pop: op_names[proj][-1] for pop, proj in _bias_carriers(network).items()}
    nodes, edges, types = {}, [], {}
    for pop in network.populations:
        if pop.is_input:
            enc = pop.encoding
            if enc.kind != "analog":
                stored.setdefault("input encoding", []).append(f"{pop.name!r} ({enc.kind}, {enc.max_rate_hz:g} Hz)")
            nodes[node_of[pop.name]] = nir.Input(input_type={"input": np.array(pop.shape)}, metadata=_meta_out(
                {"population": pop.name, "encoding": _plain(enc.to_dict())}))
        else:
            nodes[node_of[pop.name]] = _neuron_node(nir, pop, dt, carriers.get(pop.name), stored)
    for proj in network.projections:
        post = network.population(proj.post)
        bias = post.bias if carriers.get(proj.post) == op_names[proj.name][-1] else None
        shape, prev = network.population(proj.pre).shape, node_of[proj.pre]
        for i, op in enumerate(proj.ops):
            name = op_names[proj.name][i]
            md = {"projection": proj.name, "delay_steps": int(proj.delay_steps)} if i == 0 else {}
            if op.kind == "avgpool2d":
                md["count_include_pad"] = True
            last = i == len(proj.ops) - 1
            out_shape = op.out_shape(shape, f"projection {proj.name!r}")
            nodes[name] = _op_node(nir, op, shape, bias if last else None, _meta_out(md) if md else {}, stored,
                                   f"projection {proj.name!r}")
            types[name] = (shape, out_shape)
            edges.append((prev, name))
            prev, shape = name, out_shape
        edges.append((prev, node_of[proj.post]))
        if proj.delay_steps:
            stored.setdefault("delay_steps", []).append(f"{proj.name!r} ({proj.delay_steps})")
    nodes[out_name] = nir.Output(output_type={"output": np.array(network.population(network.output).shape)})
    edges.append((node_of[network.output], out_name))
    graph_md = {"format": FORMAT, "version": VERSION, "dt_s": dt, "input": network.input, "output": network.output,
                "readout": network.readout, "metadata": network.metadata,
                "populations": [p.name for p in network.populations],
                "projections": [p.name for p in network.projections]}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=_meta_out(graph_md), type_check=False)
    for name, (i, o) in types.items():  # the shapes NIR cannot infer (pooling) or gets wrong (grouped conv)
        nodes[name].input_type = {"input": np.array(i)}
        nodes[name].output_type = {"output": np.array(o)}
    listed = [what + (" of " + ", ".join(who[:6]) + (f" and {len(who) - 6} more" if len(who) > 6 else "")
                      if who else "") for what, who in stored.items()]
    warnings.warn("NIR export: stored only as spikeport metadata (NIR has no field for it; other NIR readers "
                  "ignore it): " + "; ".join(listed), NIRWarning, stacklevel=2)
    if path is not None:
        _write(nir, graph, Path(path))
    return graph


# ----------------------------------------------------------------------------- export for a library's importer

EXPORT_LIBRARIES = ("snntorch", "norse", "sinabs", "rockpool")
LIBRARY_FORMAT = "spikeport-nir-library"  # graph metadata of a file written for a library's importer
IF_TAU_SNNTORCH = 1e4  # s: fl32(1 - 1e-4/1e4) == 1, a Leaky with beta exactly 1 (snnTorch has no usable IF import)
IF_TAU_STEPS = 2.0**30  # steps (sinabs) or dt (Rockpool): fl32(exp(-2**-30)) == 1, a LIF that does not leak
TARGET_TOL = 1e-6  # a library file's parameters against the spikeport model stored beside them (float32 rounding)
SEARCH_ULPS = 64


def _prev32(x) -> np.float32:
    return np.nextafter(F32(x), F32(-np.inf))


def _search32(guess, f, target):
    """The float32 nearest ``guess`` (within SEARCH_ULPS) for which f(value) == target, else fl32(guess)."""
    x0 = F32(guess)
    up = down = x0
    for _ in range(SEARCH_ULPS + 1):
        for x in (down, up):
            with np.errstate(all="ignore"):
                if np.isfinite(x) and f(x) == target:
                    return x
        up, down = np.nextafter(up, F32(np.inf)), np.nextafter(down, F32(-np.inf))
    return x0


def _view(lib, t, get):
    """How ``lib``'s own NIR importer reads a neuron node written for it (docs/nir-libraries.md, section 8), in
    spikeport's terms: decay, syn_decay (None), scale (v_library = scale v_spikeport, so theta = v_threshold /
    scale and bias = v_leak / scale), strict (its spike test), reset, max_spikes. ``get(field)`` gives the node's
    field as a float32 array or None. float32 arithmetic in the library's order."""
    one = F32(1.0)
    out = {"syn": None, "scale": np.float64(1.0)}
    with np.errstate(all="ignore"):
        if lib == "snntorch":
            dt = F32(SNNTORCH_DT)
            tau = get("tau_mem" if t == "CubaLIF" else "tau")
            out["decay"] = (one - dt / tau).astype(np.float64)
            if t == "CubaLIF":
                out["syn"] = (one - dt / get("tau_syn")).astype(np.float64)
            out.update(strict=True, reset="zero", max_spikes=1)
        elif lib == "norse":
            dt = F32(NORSE_DT)
            if t == "IF":
                out["decay"] = np.float64(1.0)
            else:
                k = (dt * (one / get("tau_mem" if t == "CubaLIF" else "tau"))).astype(np.float64)
                out["decay"], out["scale"] = 1.0 - k, k
                if t == "CubaLIF":
                    ks = (dt * (one / get("tau_syn"))).astype(np.float64)
                    out["syn"] = 1.0 - ks
                    out["scale"] = k * ks * get("w_in").astype(np.float64) * get("r").astype(np.float64)
            out.update(strict=True, reset="zero", max_spikes=1)
        elif lib == "sinabs":
            out["decay"] = _exp32(F32(-1.0) / get("tau")).astype(np.float64)
            out.update(strict=False, reset="subtract", max_spikes=SINABS_MAX_SPIKES)
        else:  # rockpool: LIFTorch(dt = min(tau_mem / (1 + r))), q = beta (q + I), v = alpha v + q + bias
            tau = get("tau_mem")
            dt = F32(np.min(tau / (one + get("r"))))
            out["decay"] = _exp32(-dt / tau).astype(np.float64)
            out["syn"] = _exp32(-dt / get("tau_syn")).astype(np.float64)
            out["scale"] = out["syn"]
            out.update(strict=False, reset="subtract", max_spikes=ROCKPOOL_MAX_SPIKES, dt=float(dt))
    return out


_IMPORTERS = {
    "snntorch": "snntorch.import_nir.import_from_nir (dt 1e-4 s; LIF -> Leaky, CubaLIF -> Synaptic, reset_mechanism "
                "'zero', reset_delay False; spike where v > threshold)",
    "norse": "norse.torch.from_nir (its default dt 1e-3 s and reset_value; IF -> IAFCell, LIF -> LIFBoxCell with "
             "tau_mem_inv = 1/tau, CubaLIF -> LIBoxCell + LIFBoxCell; spike where v > v_th)",
    "sinabs": "sinabs.from_nir (LIF -> LIFSqueeze, norm_input False, MultiSpike, MembraneSubtract; nir 1.0.4)",
    "rockpool": "rockpool.nn.modules.from_nir (CubaLIF -> LIFTorch with dt = min(tau_mem / (1 + r)), bias = "
                "v_leak, StepPWL at most 2**16 spikes per step, subtractive reset)",
}


def _lib_refuse(pop, lib, what, why=""):
    raise GraphError(f"population {pop.name!r}: {what}, which {LIBRARY_NAMES[lib]}'s NIR importer cannot take"
                     f"{' (' + why + ')' if why else ''}; export it with library=None (generic NIR)")


def _lib_neuron(nir, pop, lib, dt_s, md):
    """The NIR node of ``pop`` for ``lib``'s importer, or a refusal naming the population."""
    nm, shape, name = pop.neuron, pop.shape, LIBRARY_NAMES[lib]
    n = math.prod(shape)
    if pop.v_init is not None or nm.v_init != 0:
        _lib_refuse(pop, lib, f"an initial membrane potential v_init = {nm.v_init:g}", "its neurons start at 0")
    if nm.refractory_steps:
        _lib_refuse(pop, lib, f"refractory_steps = {nm.refractory_steps}", "no refractory period")
    if nm.reset_amount is not None and nm.reset_amount != nm.threshold:
        _lib_refuse(pop, lib, f"a subtractive reset of {nm.reset_amount:.9g} instead of theta (reset_amount)")
    if pop.bias is not None and lib != "rockpool":
        _lib_refuse(pop, lib, "a bias", "spikeport's import preset reads no bias for it")
    syn = nm.syn_decay
    if lib in ("snntorch", "norse"):
        if nm.reset != "zero":
            _lib_refuse(pop, lib, "reset by subtraction", "it imports every neuron as a reset to zero in the "
                        "same step" if lib == "snntorch" else "from_nir resets to v_reset unless called with "
                        "reset_method=reset_subtract, which the file cannot say")
        if nm.max_spikes_per_step != 1:
            _lib_refuse(pop, lib, f"up to {nm.max_spikes_per_step} spikes per step", "one spike per step")
    else:
        want = SINABS_MAX_SPIKES if lib == "sinabs" else ROCKPOOL_MAX_SPIKES
        if nm.reset != "subtract":
            _lib_refuse(pop, lib, "reset to zero", "it always subtracts the threshold")
        if nm.max_spikes_per_step != want:
            _lib_refuse(pop, lib, f"max_spikes_per_step = {nm.max_spikes_per_step}",
                        f"it emits floor(v/theta) spikes per step{' (uncapped)' if lib == 'sinabs' else ''}; "
                        f"max_spikes_per_step = {want} is its model")
        if nm.strict_threshold:
            _lib_refuse(pop, lib, "the strict threshold test v > theta", "it fires on v >= theta")
    if lib == "sinabs" and syn is not None:
        _lib_refuse(pop, lib, "a synaptic current (syn_decay)", "from_nir builds LIFSqueeze with tau_syn=None and "
                    "refuses CubaLIF")
    if lib == "rockpool" and (syn is None or syn == 0):
        _lib_refuse(pop, lib, "a neuron without a synaptic current" if syn is None else "syn_decay = 0",
                    "it imports only CubaLIF as LIFTorch, whose synapse multiplies the input by exp(-dt/tau_syn)")
    if lib == "norse" and syn is not None and nm.model == "if":
        _lib_refuse(pop, lib, "an integrate-and-fire membrane with a synaptic current", "its CubaLIF leaks")
    if lib in ("sinabs", "rockpool") and nm.decay == 0:
        _lib_refuse(pop, lib, "decay = 0", "tau would be 0")

    def full(v):
        return np.full(n, v, dtype=F32).reshape(shape)

    d32 = F32(nm.decay)
    s32 = None if syn is None else F32(syn)
    theta = float(nm.threshold)
    thr32 = F32(theta) if nm.strict_threshold else _prev32(theta)  # strict importers: v >= theta <=> v > prev
    zeros = full(0.0)
    if lib == "snntorch":
        dt = F32(SNNTORCH_DT)
        if nm.model == "if":
            tau = F32(IF_TAU_SNNTORCH)
        else:
            tau = _search32(SNNTORCH_DT / (1.0 - nm.decay), lambda x: F32(1.0) - dt / x, d32)
        args = dict(v_leak=zeros, v_threshold=full(thr32), v_reset=zeros)
        if syn is None:
            node = nir.LIF(tau=full(tau), r=full(tau / dt), **args, metadata=md)
        else:
            ts = _search32(SNNTORCH_DT / (1.0 - syn), lambda x: F32(1.0) - dt / x, s32)
            node = nir.CubaLIF(tau_mem=full(tau), tau_syn=full(ts), r=full(tau / dt), w_in=full(ts / dt), **args,
                               metadata=md)
        how = (f"tau = 1e-4/(1 - decay), r = tau/1e-4 (beta = 1 - 1e-4/tau in float32 = the decay"
               f"{'; IF as tau = 1e4 s, beta exactly 1' if nm.model == 'if' else ''})")
    elif lib == "norse":
        if nm.model == "if":
            node = nir.IF(r=full(1.0), v_threshold=full(thr32), v_reset=zeros, metadata=md)
            how = "IF r = 1 (IAFCell: v += I)"
        else:
            tau = F32(NORSE_DT / (1.0 - nm.decay))
            k = float(F32(NORSE_DT) * (F32(1.0) / tau))
            scale = k
            args = dict(v_leak=zeros, v_reset=zeros, metadata=md)
            if syn is None:
                node_kw = dict(tau=full(tau), r=full(1.0))
            else:
                ts = F32(NORSE_DT / (1.0 - syn))
                scale = k * float(F32(NORSE_DT) * (F32(1.0) / ts))
                node_kw = dict(tau_mem=full(tau), tau_syn=full(ts), r=full(1.0), w_in=full(1.0))
            thr = full(F32(scale * theta))
            node = (nir.LIF if syn is None else nir.CubaLIF)(**node_kw, v_threshold=thr, **args)
            how = ("tau = 1e-3/(1 - decay) (its importer: k = dt/tau at dt 1e-3 s), r = 1, v_threshold = k theta"
                   + (" k_syn (its CubaLIF low-pass scales the current by k_syn)" if syn is not None else "")
                   + " since its membrane takes k I per step")
    elif lib == "sinabs":
        if nm.model == "if":
            tau = F32(IF_TAU_STEPS)
        else:
            tau = _search32(-1.0 / math.log(nm.decay), lambda x: _exp32(F32(-1.0) / x), d32)
        node = nir.LIF(tau=full(tau), r=full(1.0), v_leak=zeros, v_threshold=full(F32(theta)), v_reset=zeros,
                       metadata=md)
        how = ("LIF tau = -1/ln(decay) steps, r = 1, no v_reset (LIFSqueeze norm_input=False: v = exp(-1/tau) v + I"
               + ("; IF as tau = 2**30 steps, exp(-1/tau) exactly 1 in float32, since its IF import clips v at "
                  "-theta" if nm.model == "if" else "") + ")")
    else:  # rockpool
        dt = F32(dt_s)
        one = F32(1.0)

        def mem_decay(x):
            r = F32(x / dt - one)
            return _exp32(-F32(x / (one + r)) / x)

        tau = F32(IF_TAU_STEPS * float(dt)) if nm.model == "if" else _search32(-float(dt) / math.log(nm.decay),
                                                                                mem_decay, d32)
        r = F32(tau / dt - one)
        dt_eff = F32(tau / (one + r))
        ts = _search32(-float(dt_eff) / math.log(syn), lambda x: _exp32(-dt_eff / x), s32)
        beta = float(_exp32(-dt_eff / ts))
        v_leak = zeros if pop.bias is None else (pop.bias.astype(np.float64) * beta).astype(F32).reshape(shape)
        node = nir.CubaLIF(tau_mem=full(tau), tau_syn=full(ts), r=full(r), w_in=full(1.0), v_leak=v_leak,
                           v_threshold=full(F32(beta * theta)), v_reset=zeros, metadata=md)
        how = (f"CubaLIF with r = tau_mem/dt - 1 (its dt = tau_mem/(1 + r) = {float(dt_eff):.9g} s), "
               f"v_threshold and v_leak times exp(-dt/tau_syn) (its synapse scales the input by it)")
    return node, how


def _export_library(nir, network, lib):
    """(graph, warning) for ``lib``'s own NIR importer (docs/nir-libraries.md, section 8)."""
    name = LIBRARY_NAMES[lib]
    names = _Names()

    def safe(base):
        return names.take(re.sub(r"[^A-Za-z0-9_]", "_", base) or "node")

    for proj in network.projections:
        post = network.population(proj.post)
        bad = [op.kind for op in proj.ops if op.kind != "dense"]
        if bad:
            _lib_refuse(post, lib, f"its projection {proj.name!r} uses a {bad[0]} op",
                        "this export writes Dense projections only (Linear/Affine nodes)")
        if proj.delay_steps:
            _lib_refuse(post, lib, f"its projection {proj.name!r} has a delay of {proj.delay_steps} steps",
                        "no delays")
    for pop in network.populations:
        if not pop.is_input and len(network.projections_into(pop.name)) != 1:
            _lib_refuse(pop, lib, f"{len(network.projections_into(pop.name))} projections into it",
                        "this export writes one Linear chain into each neuron layer")
    node_of = {p.name: safe(p.name) for p in network.populations}
    out_name = safe("output")
    nodes, edges, hows, stored = {}, [], {}, []
    for pop in network.populations:
        if pop.is_input:
            enc = pop.encoding
            if enc.kind != "analog":
                stored.append(f"the input encoding of {pop.name!r} ({enc.kind}, {enc.max_rate_hz:g} Hz: the library "
                              f"receives x as an analog current every step)")
            # no Input metadata: nir 1.0.4's Input (sinabs) takes none; the graph metadata names it
            nodes[node_of[pop.name]] = nir.Input(input_type={"input": np.array(pop.shape)})
            continue
        md = _meta_out({"population": pop.name, "model": _plain(pop.neuron.to_dict()),
                        "bias": None if pop.bias is None else _array_to_json(pop.bias)})
        node, how = _lib_neuron(nir, pop, lib, float(network.dt_s), md)
        nodes[node_of[pop.name]] = node
        hows.setdefault(how, []).append(repr(pop.name))
    for proj in network.projections:
        prev = node_of[proj.pre]
        for i, op in enumerate(proj.ops):
            nn = safe(f"{proj.name}_{i}")
            w = np.asarray(op.weight).astype(F32)
            md = _meta_out({"projection": proj.name, "delay_steps": 0}) if i == 0 else {}
            if lib in ("norse", "sinabs"):  # their exporters write Affine; sinabs' importer takes no Linear
                nodes[nn] = nir.Affine(weight=w, bias=np.zeros(w.shape[0], F32), metadata=md)
            else:
                nodes[nn] = nir.Linear(weight=w, metadata=md)
            edges.append((prev, nn))
            prev = nn
        edges.append((prev, node_of[proj.post]))
    nodes[out_name] = nir.Output(output_type={"output": np.array(network.population(network.output).shape)})
    edges.append((node_of[network.output], out_name))
    dt = float(network.dt_s)
    graph_md = {"format": LIBRARY_FORMAT, "version": VERSION, "library": lib, "dt_s": dt, "input": network.input,
                "input_encoding": _plain(network.population(network.input).encoding.to_dict()),
                "output": network.output, "readout": network.readout, "metadata": network.metadata,
                "populations": [p.name for p in network.populations],
                "projections": [p.name for p in network.projections]}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=_meta_out(graph_md), type_check=False)
    parts = [f"{how} for {', '.join(who)}" for how, who in hows.items()]
    parts.append("weights as float32 Linear" + ("/Affine (zero bias)" if lib in ("norse", "sinabs") else "")
                 + " nodes, float32 per-neuron parameters")
    if lib == "sinabs":
        parts.append("no v_reset field (written so that sinabs' nir 1.0.4 reads the file)")
    if lib in ("norse", "rockpool"):
        parts.append("exact in real arithmetic; the library's float32 order of operations differs from spikeport's, "
                     "so a membrane within rounding of the threshold can fire differently")
    parts.append("stored only as spikeport metadata (for import_nir(file, library=%r)): dt_s = %g s, names, the "
                 "neuron models%s" % (lib, dt, "; " + "; ".join(stored) if stored else ""))
    return graph, f"NIR export for {name}'s importer {_IMPORTERS[lib]}: " + "; ".join(parts)


def _write(nir, graph, path: Path, drop_v_reset: bool = False) -> None:
    """nir.write to a temporary file beside ``path``, then rename it into place. ``drop_v_reset``: delete the
    neuron nodes' v_reset datasets (nir <= 1.0.4, which sinabs pins, cannot read a node that has one)."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise SpikeportError(f"{path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise SpikeportError(f"{path}: cannot write ({exc.strerror})") from None
    os.close(fd)
    try:
        nir.write(tmp, graph)
        if drop_v_reset:
            import h5py

            with h5py.File(tmp, "r+") as f:
                for g in f["node"]["nodes"].values():
                    if "v_reset" in g:
                        del g["v_reset"]
        from .io import user_mode
        os.chmod(tmp, user_mode())
        os.replace(tmp, path)
    except OSError as exc:
        raise SpikeportError(f"{path}: cannot write ({exc.strerror or exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
