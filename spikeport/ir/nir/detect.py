"""Which library's NIR exporter wrote a graph: the signatures its neuron nodes carry (docs/nir-libraries.md)."""
from __future__ import annotations

import re

import numpy as np

from .common import FORMAT, NEURON_TYPES
from .libraries import EXPORT_LIBRARIES, LIBRARY_FORMAT, LIBRARY_NAMES, SNNTORCH_DT, close
from .metadata import meta_in
from .reader import read_source

_ROCKPOOL_NAME = re.compile(r"^\d+_[A-Za-z]+Torch$")


def lambert_w(y) -> np.ndarray:
    """W(y) for y > 0 (Newton's method on w e^w = y), float64."""
    y = np.asarray(y, np.float64)
    w = np.log1p(y)
    for _ in range(60):
        ew = np.exp(w)
        w = w - (w * ew - y) / (ew * (w + 1))
    return w


def arr(node, field):
    v = getattr(node, field, None)
    if v is None:
        return None
    a = np.asarray(v)
    return a.astype(np.float64) if a.dtype.kind in "iufb" else None


def rockpool_dt(node):
    """Rockpool writes r = tau exp(-dt/tau) / dt: u = dt/tau solves u e^u = 1/r, dt = tau W(1/r). None if r <= 0."""
    tau = arr(node, "tau_mem" if type(node).__name__ == "CubaLIF" else "tau")
    r = arr(node, "r")
    if tau is None or r is None or not (np.all(np.isfinite(tau)) and np.all(tau > 0) and np.all(np.isfinite(r))
                                        and np.all(r > 0)):
        return None
    return tau * lambert_w(1.0 / r)


def candidates(name, node, written):
    """The libraries whose exporter writes neuron node ``node`` as it is (a set), and why (words)."""
    t = type(node).__name__
    r, v_leak = arr(node, "r"), arr(node, "v_leak")
    leak0 = v_leak is None or not np.any(v_leak)
    out = set()
    if t == "IF":
        if r is not None and np.all(r == 1):
            out |= {"norse", "sinabs"}
        return out
    tau = arr(node, "tau_mem" if t == "CubaLIF" else "tau")
    if tau is None or r is None:
        return out
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if t == "LIF" and np.all(np.isinf(tau)) and np.all(np.isinf(r)) and leak0:
            out.add("snntorch")  # Leaky(beta=1): tau = r = inf
        elif leak0 and close(r * SNNTORCH_DT / tau, 1.0) and (
                t == "LIF" or close(arr(node, "w_in") * SNNTORCH_DT / arr(node, "tau_syn"), 1.0)):
            out.add("snntorch")
        w_in = arr(node, "w_in")
        if np.all(r == 1) and (t == "LIF" or w_in is None or np.all(w_in == 1)) and np.all(np.isfinite(tau)):
            if t == "LIF" and np.all(tau >= 0.5) and leak0:
                out.add("sinabs")  # tau in time steps
            if np.all(tau > 0) and np.all(tau <= 1e-2):
                out.add("norse")  # tau = dt / tau_inv = dt * tau_true: dt^2-small
        dt = rockpool_dt(node)
        if (dt is not None and _ROCKPOOL_NAME.match(name) and close(dt, np.median(dt))
                and (t == "LIF" or w_in is None or np.all(w_in == 1))):
            out.add("rockpool")
    return out


def detect(graph, written=None):
    """(library or None, reason in words)."""
    gm = meta_in(graph, "graph")
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
        c = candidates(str(name), node, written)
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
    graph, _, written = read_source(source)
    return detect(graph, written)[0]
