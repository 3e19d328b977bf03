"""Rebuild each library's discrete neuron from a fixture's NIR file alone and replay its spikes (numpy only).

    .venv-nirlibs/bin/python bench/nirlibs/check_semantics.py [tests/data/nir/*.nir] [--json OUT]

For every fixture tests/data/nir/<lib>_<neuron>.nir (with its .npz beside it) this
reads the graph with ``nir.read``, maps every neuron node to the library's discrete
update with the formulas of docs/nir-libraries.md (the "preset" of the library), runs
the network on the npz's x for its `steps` (constant input) and counts the spikes that
differ from the library's own simulation stored in the npz:

  preset/f32   the preset, in float32 with the library's order of operations
               (what an exact importer preset must reproduce);
  preset/f64   the same formulas in float64 (how robust the agreement is to rounding);
  generic      spikeport's current import semantics (forward Euler with dt = the
               library's time step, reset to v_reset in the same step, v > v_threshold,
               one spike per step, all state from 0), in float64;
  spikeport    the library's neuron written as spikeport's NeuronModel as it is today
               (decay, syn_decay, weight gain, bias, theta, reset subtract/zero,
               refractory_steps, v_init; one spike per step), in float64: 0 where a preset
               can map the library exactly onto the current graph, else the cost of what
               is missing (listed).

What the file does not say is taken from the library's documented default (never
from the fixture's spikes): the time step (snnTorch 1e-4 s hard-coded in its exporter,
Norse 1e-3 s the default of to_nir, Rockpool from r by the Lambert W function, sinabs
one step), the reset (snnTorch "subtract" unless the fixture was built with "zero",
which is not in the file: it is read from the npz meta and reported), the spike
function (sinabs MultiSpike, Rockpool StepPWL: several spikes per step).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

F32 = np.float32
SNNTORCH_DT = 1e-4  # snntorch/export_nir.py and import_nir.py: dt = 1e-4
NORSE_DT = 1e-3  # norse.torch.to_nir(..., dt=0.001) and from_nir(..., dt=0.001) defaults
ROCKPOOL_DT = 1e-3  # LIFTorch / LIFNeuronTorch default dt


def exp32(x):
    """float32 exp as torch computes it on CPU (correctly rounded for these inputs; numpy's float32 exp is not)."""
    return np.exp(np.asarray(x, np.float64)).astype(F32)


def lambert_w(y):
    """W(y) for y > 0, float64: spikeport's own (numpy only; the repository is on the path)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from spikeport.ir.nir.detect import lambert_w as spikeport_lambert_w

    return spikeport_lambert_w(y)


def rockpool_dt(node):
    """Rockpool writes r = tau * exp(-dt/tau) / dt: u = dt/tau solves u e^u = 1/r."""
    tau = np.asarray(node.tau_mem if hasattr(node, "tau_mem") else node.tau, np.float64)
    dt = tau * lambert_w(1.0 / np.asarray(node.r, np.float64))
    return float(np.median(dt)), float(np.max(np.abs(dt / np.median(dt) - 1)))


# ----------------------------------------------------------------------------- graph

def layers_of(graph):
    """[(neuron node name, node, W float32 (n_out, n_in), bias or None)] along the chain from the Input."""
    succ = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    name = next(n for n, v in graph.nodes.items() if type(v).__name__ == "Input")
    out, w, bias = [], None, None
    while succ.get(name):
        (name,) = succ[name]
        node = graph.nodes[name]
        t = type(node).__name__
        if t in ("Linear", "Affine"):
            w = np.asarray(node.weight, F32)
            bias = np.asarray(node.bias, F32) if t == "Affine" else None
            if bias is not None and not np.any(bias):
                bias = None
        elif t in ("IF", "LIF", "CubaLIF"):
            out.append((name, node, w, bias))
        elif t == "Output":
            break
        else:
            raise ValueError(f"node {name}: {t} not handled by this check")
    return out


def P(node, field, dtype=np.float64):
    v = getattr(node, field, None)
    return None if v is None else np.asarray(v, dtype)


# ----------------------------------------------------------------------------- the presets

class Neuron:
    """One population's discrete update; step(I) -> spike counts. dtype float32 or float64."""

    def __init__(self, lib, node, n, B, dt_, reset, dtype):
        self.lib, self.t, self.dtype = lib, type(node).__name__, dtype
        c = lambda v: np.broadcast_to(np.asarray(v, np.float64), (n,)).astype(dtype)  # noqa: E731
        self.thr = c(P(node, "v_threshold"))
        self.v_reset = c(P(node, "v_reset") if P(node, "v_reset") is not None else 0.0)
        self.reset = reset
        self.v = np.zeros((B, n), dtype)
        self.syn = np.zeros((B, n), dtype)
        self.one = dtype(1.0)
        t = self.t
        if lib == "snntorch":
            # beta = 1 - dt/tau, alpha = 1 - dt/tau_syn (tau = inf -> 1); the gains r dt/tau and w_in dt/tau_syn
            # are 1 for snnTorch's own files (snnTorch has no input gain; its importer divides the threshold by it)
            def decay(tau):
                return c(np.where(np.isinf(tau), 1.0, 1.0 - SNNTORCH_DT / tau))
            tau = P(node, "tau_mem" if t == "CubaLIF" else "tau")
            self.beta = decay(tau)
            with np.errstate(invalid="ignore"):
                g = np.where(np.isinf(tau), 1.0, P(node, "r") * SNNTORCH_DT / tau)
            self.gain = None if np.allclose(g, 1, rtol=1e-5) else c(g)
            if t == "CubaLIF":
                ts = P(node, "tau_syn")
                self.alpha = decay(ts)
                gs = P(node, "w_in") * SNNTORCH_DT / ts
                self.gain_syn = None if np.allclose(gs, 1, rtol=1e-5) else c(gs)
            self.prev_spk = np.zeros((B, n), bool)
        elif lib == "norse":
            # to_nir writes tau = dt / tau_inv, so dt * tau_inv = dt^2 / tau (computed as fl(dt) * fl(dt / tau))
            k = lambda tau: (dtype(NORSE_DT) * (NORSE_DT / tau).astype(dtype)).astype(dtype)  # noqa: E731
            self.v_leak = c(P(node, "v_leak") if P(node, "v_leak") is not None else 0.0)
            if t == "LIF":
                self.k = c(k(P(node, "tau")))
            elif t == "CubaLIF":
                self.k = c(k(P(node, "tau_mem")))
                self.k_syn = c(dtype(-NORSE_DT) * (NORSE_DT / P(node, "tau_syn")).astype(dtype))
            # initial state: LIF/CubaLIF v = v_leak, IAF v = v_reset (norse initial_state)
            self.v[:] = self.v_reset if t == "IF" else self.v_leak
        elif lib == "sinabs":
            if t == "LIF":  # alpha = exp(-1/tau), tau in steps; norm_input=True: gain 1 - alpha
                self.a = c(exp32((F32(1.0) / P(node, "tau", F32)) * F32(-1.0)) if dtype == F32
                           else np.exp(-1.0 / P(node, "tau")))
                self.g = (self.one - self.a).astype(dtype)
        elif lib == "rockpool":
            tau_m = P(node, "tau_mem" if t == "CubaLIF" else "tau")
            self.a = c(self.decay(tau_m, dt_))
            if t == "CubaLIF":
                self.b = c(self.decay(P(node, "tau_syn"), dt_))
            self.bias = c(P(node, "v_leak"))  # rockpool's importer: bias = v_leak (its exporter writes 0)

    def decay(self, tau, dt_):
        if self.dtype == F32:  # torch.exp(-dt / tau) = exp(reciprocal(tau) * (-dt)) in float32
            return exp32((F32(1.0) / tau.astype(F32)) * F32(-dt_))
        return np.exp(-dt_ / tau)

    def step(self, I):
        d, one = self.dtype, self.one
        I = I.astype(d)
        lib, t = self.lib, self.t
        if lib == "snntorch":
            reset = self.v > self.thr  # from the previous step's (un-reset) membrane: the reset is one step late
            if self.gain is not None:
                I = I * self.gain
            if t == "CubaLIF":
                if self.gain_syn is not None:
                    I = I * self.gain_syn
                self.syn = self.alpha * self.syn + I
                m = self.beta * self.v + self.syn
                if self.reset == "subtract":
                    m = m - reset * self.thr
                else:  # Synaptic zero: the whole membrane is 0 in the step after the spike
                    m = np.where(reset, d(0), m)
            else:
                if self.reset == "subtract":
                    m = self.beta * self.v + I - reset * self.thr
                else:  # Leaky zero: the previous membrane is zeroed, then beta * 0 + I
                    m = self.beta * np.where(reset, d(0), self.v) + I
            self.v = m.astype(d)
            return (self.v > self.thr).astype(np.int64)
        if lib == "norse":
            if t == "IF":
                v = self.v + I
            elif t == "LIF":
                v = self.v + self.k * ((I + self.v_leak) - self.v)
            else:
                i_new = self.syn + I
                v = self.v + self.k * ((self.v_leak - self.v) + i_new)
                self.syn = i_new + self.k_syn * i_new
            z = v > self.thr
            self.v = np.where(z, self.v_reset, v).astype(d)
            return z.astype(np.int64)
        if lib == "sinabs":
            v = self.v + I if t == "IF" else self.a * self.v + self.g * I
            n = np.where(v > 0, np.trunc(v / self.thr), 0)  # MultiSpike
            self.v = (v - n * self.thr).astype(d)  # MembraneSubtract
            return n.astype(np.int64)
        if lib == "rockpool":
            if t == "CubaLIF":
                self.syn = (self.syn + I) * self.b
                v = self.v * self.a + self.syn + self.bias
            else:
                v = self.v * self.a + I + self.bias
            n = np.where(v >= self.thr, np.floor(v / self.thr), 0)  # StepPWL
            self.v = (v - n * self.thr).astype(d)
            return n.astype(np.int64)
        raise ValueError(lib)


class Generic:
    """spikeport's current NIR import semantics (spikeport/ir/nir/__init__.py docstring), float64."""

    def __init__(self, node, n, B, dt):
        self.t = type(node).__name__
        g = lambda f, dflt=0.0: np.broadcast_to(P(node, f) if P(node, f) is not None else dflt, (n,))  # noqa: E731
        self.thr, self.v_reset, self.r = g("v_threshold"), g("v_reset"), g("r")
        params = [self.thr, self.r]
        if self.t == "LIF":
            self.k = dt / g("tau")
            self.v_leak = g("v_leak")
            params.append(self.k)
        elif self.t == "CubaLIF":
            self.k, self.ks, self.w_in, self.v_leak = dt / g("tau_mem"), dt / g("tau_syn"), g("w_in", 1.0), g("v_leak")
            params += [self.k, self.ks, self.w_in]
        self.dt = dt
        self.refused = None
        if not all(np.all(np.isfinite(p)) for p in params):
            self.refused = "non-finite parameters"
        elif any(np.any(p > 1) for p in (getattr(self, "k", 0), getattr(self, "ks", 0))):
            self.refused = f"tau < dt = {dt:g} (negative forward-Euler decay)"
        self.v = np.zeros((B, n))
        self.s = np.zeros((B, n))

    def step(self, I):
        if self.t == "IF":
            v = self.v + self.dt * self.r * I
        elif self.t == "LIF":
            v = self.v + self.k * (self.v_leak - self.v + self.r * I)
        else:
            self.s = self.s + self.ks * (self.w_in * I - self.s)
            v = self.v + self.k * (self.v_leak - self.v + self.r * self.s)
        z = v > self.thr
        self.v = np.where(z, self.v_reset, v)
        return z.astype(np.int64)


class SpikeportForm:
    """The library's neuron written as spikeport's NeuronModel (spikeport/ir/neurons.py), float64:

        i = alpha i + J  (syn_decay alpha, when there is a synapse);  J = gain * (W s)
        if refractory: r -= 1, v kept, no spike
        else: v = lam v + i + b;  s = v >= theta;  reset "subtract": v -= theta,  "zero": v = 0;  r = refractory
        v(-1) = v_init

    with what spikeport has today only: one spike per step, a subtractive reset of exactly theta, reset
    in the same step. `missing` lists what the library does that this form cannot express (so the
    spikes may differ). NIR's `v > v_threshold` becomes theta = the next float64 above, as in
    spikeport's importer; sinabs' and Rockpool's `>=` keep theta = v_threshold.
    """

    def __init__(self, lib, node, n, B, dt_, reset):
        t = type(node).__name__
        g = lambda f, dflt=0.0: np.broadcast_to(P(node, f) if P(node, f) is not None else dflt, (n,))  # noqa: E731
        thr, v_reset = g("v_threshold"), g("v_reset")
        self.alpha, self.gain, self.b, self.refractory, self.v_init = None, 1.0, 0.0, 0, 0.0
        self.missing = []
        gt = True  # the library fires on v > theta
        if lib == "snntorch":
            tau = g("tau_mem" if t == "CubaLIF" else "tau")
            self.lam = np.where(np.isinf(tau), 1.0, 1.0 - SNNTORCH_DT / tau)
            if t == "CubaLIF":
                self.alpha = 1.0 - SNNTORCH_DT / g("tau_syn")
            if reset == "subtract":
                self.reset = "subtract"
                if np.any(self.lam != 1):
                    self.missing.append("reset one step late (= same-step subtraction of theta/beta, not theta)")
            else:
                self.reset = "zero"
                if t == "CubaLIF":
                    self.refractory = 1  # Synaptic "zero": the membrane is 0 in the step after the spike
        elif lib == "norse":
            self.reset = "zero"
            if t == "IF":
                self.lam, self.v_init = 1.0, v_reset
            else:
                k = NORSE_DT * (NORSE_DT / g("tau_mem" if t == "CubaLIF" else "tau"))
                self.lam, self.gain, self.b, self.v_init = 1.0 - k, k, k * g("v_leak"), g("v_leak")
                if t == "CubaLIF":
                    self.alpha = 1.0 - NORSE_DT * (NORSE_DT / g("tau_syn"))
            if np.any(v_reset != 0):
                self.missing.append("v_reset != 0")
        elif lib in ("sinabs", "rockpool"):
            gt, self.reset = False, "subtract"
            self.missing.append("several spikes per step (MultiSpike / StepPWL)")
            if lib == "sinabs":
                self.lam = 1.0 if t == "IF" else np.exp(-1.0 / g("tau"))
                self.gain = 1.0 if t == "IF" else 1.0 - self.lam  # norm_input=True (LIF's default)
            else:
                self.lam = np.exp(-dt_ / g("tau_mem" if t == "CubaLIF" else "tau"))
                if t == "CubaLIF":
                    self.alpha = np.exp(-dt_ / g("tau_syn"))
                    self.gain = self.alpha  # the jump is decayed in its own step
                self.b = g("v_leak")
        self.theta = np.nextafter(thr, np.inf) if gt else thr
        self.v = np.zeros((B, n)) + self.v_init
        self.i = np.zeros((B, n))
        self.r = np.zeros((B, n), int)

    def step(self, I):
        J = self.gain * I
        self.i = J if self.alpha is None else self.alpha * self.i + J
        ref = self.r > 0
        v = np.where(ref, self.v, self.lam * self.v + self.i + self.b)
        s = (v >= self.theta) & ~ref
        v = np.where(s, v - self.theta, v) if self.reset == "subtract" else np.where(s, 0.0, v)
        self.r = np.where(ref, self.r - 1, np.where(s, self.refractory, 0))
        self.v = v
        return s.astype(np.int64)


def simulate(graph, x, steps, make):
    layers = layers_of(graph)
    B = len(x)
    neurons = [make(node, w.shape[0], B) for _, node, w, _ in layers]
    out = {name: [] for name, *_ in layers}
    x64 = np.asarray(x, np.float64)
    for _ in range(steps):
        s = x64
        for (name, node, w, bias), neuron in zip(layers, neurons):
            I = s @ w.astype(np.float64).T  # float64 sums rounded once: torch's float32 GEMM order is unknown
            if bias is not None:
                I = I + bias
            spk = neuron.step(I.astype(np.float32) if getattr(neuron, "dtype", None) == F32 else I)
            out[name].append(spk)
            s = spk.astype(np.float64)
    return {k: np.stack(v) for k, v in out.items()}, neurons


def read_nir(path):
    """nir.read without the type check where nir has one (nir 1.0.8 refuses Rockpool's files: its Input is
    typed [1, 64] but feeds a Linear typed [64])."""
    import inspect

    import nir

    if "type_check" in inspect.signature(nir.read).parameters:
        return nir.read(str(path), type_check=False)
    return nir.read(str(path))


def check(path: Path):
    import nir

    d = np.load(path.with_suffix(".npz"))
    meta = common.load_meta(d)
    lib = meta["library"]
    graph = read_nir(path)
    x, steps = d["x"], int(d["steps"])
    theirs = {node: d[f"spikes_{layer}"].astype(np.int64) for layer, node in meta["nir_nodes"].items()}
    resets = {}
    if lib == "snntorch":  # not in the file: the only input taken from the fixture's meta
        for (layer, node), p in zip(meta["nir_nodes"].items(), meta["params"]["layers"]):
            resets[node] = p.get("reset_mechanism", "subtract")
    dt_lib = {"snntorch": SNNTORCH_DT, "norse": NORSE_DT, "sinabs": 1.0, "rockpool": ROCKPOOL_DT}[lib]
    notes = []
    if lib == "rockpool":
        for name, node, *_ in layers_of(graph):
            dt_rec, spread = rockpool_dt(node)
            notes.append(f"{name}: dt from r = {dt_rec:.9g} (spread {spread:.1e})")
            if abs(dt_rec / ROCKPOOL_DT - 1) > 1e-5:
                dt_lib = dt_rec
    result = {"fixture": path.stem, "library": lib, "version": meta["version"], "notes": notes}
    names = iter([])
    for label, dtype in (("preset/f32", F32), ("preset/f64", np.float64)):
        order = [n for n, *_ in layers_of(graph)]
        names = iter(order)
        mine, _ = simulate(graph, x, steps,
                           lambda node, n, B, dtype=dtype, names=names:
                           Neuron(lib, node, n, B, dt_lib, resets.get(next(names), "subtract"), dtype))
        result[label] = {k: int(np.sum(mine[k] != theirs[k])) for k in theirs}
    with np.errstate(invalid="ignore", over="ignore"):  # refused (inf) parameters still run, unreported
        mine, neurons = simulate(graph, x, steps, lambda node, n, B: Generic(node, n, B, dt_lib))
    refused = [nu.refused for nu in neurons if nu.refused]
    result["generic"] = {"dt": dt_lib, **({"refused": refused[0]} if refused else
                                          {k: int(np.sum(mine[k] != theirs[k])) for k in theirs})}
    names = iter([n for n, *_ in layers_of(graph)])
    mine, neurons = simulate(graph, x, steps,
                             lambda node, n, B: SpikeportForm(lib, node, n, B, dt_lib,
                                                              resets.get(next(names), "subtract")))
    result["spikeport"] = {k: int(np.sum(mine[k] != theirs[k])) for k in theirs}
    result["spikeport_missing"] = sorted({m for nu in neurons for m in nu.missing})
    result["spikes"] = {k: int(v.sum()) for k, v in theirs.items()}
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    files = args.files or sorted(p for p in common.OUT.glob("*.nir"))
    results = []
    print(f"{'fixture':28s} {'spikes':>10s} {'preset/f32':>11s} {'preset/f64':>11s} "
          f"{'generic (dt)':>18s} {'spikeport':>10s}")
    for p in files:
        r = check(p)
        results.append(r)
        f = lambda dd: "refused" if "refused" in dd else "+".join(str(dd[k]) for k in r["spikes"])  # noqa: E731
        print(f"{r['fixture']:28s} {'+'.join(str(v) for v in r['spikes'].values()):>10s} {f(r['preset/f32']):>11s} "
              f"{f(r['preset/f64']):>11s} {f(r['generic']) + ' (' + format(r['generic']['dt'], 'g') + ')':>18s} "
              f"{f(r['spikeport']):>10s}" + ("  missing: " + "; ".join(r["spikeport_missing"])
                                             if r["spikeport_missing"] else ""))
        for note in r["notes"]:
            print(f"{'':28s} {note}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    bad = [r["fixture"] for r in results if any(r["preset/f32"].values())]
    print(f"{len(results) - len(bad)} of {len(results)} fixtures reproduced exactly by their preset in float32"
          + (f"; not: {', '.join(bad)}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
