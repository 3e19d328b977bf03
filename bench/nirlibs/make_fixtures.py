"""Build NIR fixtures with the third-party SNN libraries' own exporters and simulators.

    .venv-nirlibs/bin/python  bench/nirlibs/make_fixtures.py --lib snntorch
    .venv-nirlibs/bin/python  bench/nirlibs/make_fixtures.py --lib norse
    .venv-nirlibs2/bin/python bench/nirlibs/make_fixtures.py --lib sinabs
    .venv-nirlibs2/bin/python bench/nirlibs/make_fixtures.py --lib rockpool

For every fixture (one neuron type per network, 64 -> 32 -> 10, the weights of the
ReLU MLP in tests/data/nir/mlp_weights.npz times a per-layer gain) it writes into
tests/data/nir/:

    <lib>_<neuron>.nir           the file written by the library's own exporter (nir.write)
    <lib>_<neuron>.npz           the library's own simulation on x (constant input, `steps` steps)
    <lib>_<neuron>.reimport.npz  the same, run by the network the library's own importer
                                 builds from the .nir file (roundtrip.py), where that works

npz keys: x (B, 64) float32, y, steps, spikes_<layer> (steps, B, n) uint8 (spike counts
per step: 0/1, more for sinabs/rockpool multi-spike), pred (argmax of the output
layer's counts, ties to the lowest index), meta (JSON: library, version, neuron,
layers, the NIR node of each layer, the library parameters, the gains).
The per-layer gains are chosen by bisection on the library's own simulation of 64
training samples so that the hidden layer spikes at about 0.2 and the output layer at
about 0.1 spikes/neuron/step (TARGETS).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

TARGETS = (0.2, 0.1)  # spikes per neuron per step: hidden, output (the output saturates near 0.15-0.2
#                       with reset-to-zero neurons, so it gets the lower target)
H, O = 32, 10  # hidden and output sizes
THR = (0.8, 1.0)  # per-layer thresholds (per-neuron tensors: the exporters' type inference needs them)


def gain_search(rate_of, target, lo=1e-3, hi=1e3, iters=22):
    """Geometric bisection for the gain whose rate is closest to target (rate_of is nondecreasing in g)."""
    best = None
    for _ in range(iters):
        g = math.sqrt(lo * hi)
        r = rate_of(g)
        if best is None or abs(r - target) < abs(best[1] - target):
            best = (g, r)
        if r < target:
            lo = g
        else:
            hi = g
    return float(np.float32(best[0]))


def calibrate(sim, layers):
    """sim(g1, g2, x) -> {layer: spikes (T, B, n)}; returns (g1, g2)."""
    xc = common.calibration_inputs()
    g1 = gain_search(lambda g: float(np.mean(sim(g, 1.0, xc)[layers[0]])), TARGETS[0])
    g2 = gain_search(lambda g: float(np.mean(sim(g1, g, xc)[layers[1]])), TARGETS[1])
    return g1, g2


def weights(g1, g2):
    w1, w2 = common.train_mlp()
    return (w1 * np.float32(g1)).astype(np.float32), (w2 * np.float32(g2)).astype(np.float32)


def finish(lib, name, version, sim, export, layers, nodes, params, extra_meta=None):
    """Calibrate, simulate the fixture inputs, export, write the npz files; print a summary."""
    import nir

    g1, g2 = calibrate(sim, layers)
    x, y = common.fixture_inputs()
    spikes = sim(g1, g2, x)
    stem = f"{lib}_{name}"
    out = common.OUT
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{stem}.nir"
    graph = export(g1, g2, x)
    write_nir(nir, path, graph)
    meta = {"library": lib, "version": version, "neuron": name, "nir_nodes": dict(zip(layers, nodes)),
            "params": params, "gains": [g1, g2], "input": "constant analog: x at every step",
            "nir_version": _version("nir"), "nirtorch_version": _version("nirtorch"),
            "torch_version": _version("torch"), "target_rates": list(TARGETS), **(extra_meta or {})}
    common.save_run(out / f"{stem}.npz", x, y, common.STEPS, spikes, meta, layers[-1])
    summary = {"fixture": stem, "gains": [round(g1, 5), round(g2, 5)], "rates": common.rates(spikes),
               "acc": float((common.pred_from_counts(spikes[layers[-1]].sum(0)) == y).mean())}
    # the library's own importer on its own file
    import roundtrip

    try:
        re_spikes, re_layers, note = roundtrip.run_file(lib, path, x, common.STEPS)
        rmeta = dict(meta, reimported=True, importer_note=note, layers_reimported=re_layers)
        common.save_run(out / f"{stem}.reimport.npz", x, y, common.STEPS, re_spikes, rmeta, re_layers[-1])
        same = {a: int(np.sum(np.asarray(re_spikes[b], np.int64) != np.asarray(spikes[a], np.int64)))
                for a, b in zip(layers, re_layers)}
        summary["reimport"] = {"differing_spikes": same, "note": note}
    except Exception as exc:  # the importer's failure is a finding, not a crash
        (out / f"{stem}.reimport.npz").unlink(missing_ok=True)
        msg = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        summary["reimport"] = {"error": msg}
    print(json.dumps(summary))
    return summary


def write_nir(nir, path, graph):
    """nir.write, unchanged graph. nir >= 1.0.5 gzips every dataset by default, which doubles the file (HDF5
    chunk indexes) for these tiny arrays: there the datasets are stored uncompressed (compression=None, the
    layout nir 1.0.4 always writes). nir.read reads both layouts."""
    import inspect

    if "compression" in inspect.signature(nir.write).parameters:
        nir.write(str(path), graph, compression=None)
    else:
        nir.write(str(path), graph)


def _version(mod):
    from importlib.metadata import version

    try:
        return version(mod)
    except Exception:
        return None


def _full(n, v):
    import torch

    return torch.full((n,), float(v), dtype=torch.float32)


def _linear(w):
    import torch

    lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
    lin.weight.data = torch.from_numpy(w.copy())
    return lin


def _u8(ts):
    return np.stack([t.detach().numpy() for t in ts]).astype(np.float64)


# ----------------------------------------------------------------------------- snnTorch

def build_snntorch(only=None):
    import snntorch as snn
    import torch
    from snntorch.export_nir import export_to_nir

    variants = {
        # name: (class, kwargs per layer)
        "leaky_subtract": (snn.Leaky, [dict(beta=0.9, reset_mechanism="subtract"),
                                       dict(beta=0.8, reset_mechanism="subtract")]),
        "leaky_zero": (snn.Leaky, [dict(beta=0.9, reset_mechanism="zero"), dict(beta=0.8, reset_mechanism="zero")]),
        "leaky_if": (snn.Leaky, [dict(beta=1.0, reset_mechanism="subtract"), dict(beta=1.0, reset_mechanism="subtract")]),
        "synaptic_subtract": (snn.Synaptic, [dict(alpha=0.7, beta=0.9, reset_mechanism="subtract"),
                                             dict(alpha=0.6, beta=0.8, reset_mechanism="subtract")]),
        "synaptic_zero": (snn.Synaptic, [dict(alpha=0.7, beta=0.9, reset_mechanism="zero"),
                                         dict(alpha=0.6, beta=0.8, reset_mechanism="zero")]),
    }
    for name, (cls, kws) in variants.items():
        if only and name not in only:
            continue

        def make(g1, g2, cls=cls, kws=kws):
            w1, w2 = weights(g1, g2)
            neurons = []
            for n, thr, kw, last in ((H, THR[0], kws[0], False), (O, THR[1], kws[1], True)):
                kw = dict(kw)
                for p in ("alpha", "beta"):
                    if p in kw:
                        kw[p] = _full(n, kw[p])
                neurons.append(cls(threshold=_full(n, thr), init_hidden=True, output=last, **kw))
            return torch.nn.Sequential(_linear(w1), neurons[0], _linear(w2), neurons[1])

        def sim(g1, g2, x, make=make):
            net = make(g1, g2)
            xt = torch.from_numpy(x)
            s1, s2 = [], []
            with torch.no_grad():
                for _ in range(common.STEPS):
                    a = net[1](net[0](xt))
                    b = net[3](net[2](a))[0]
                    s1.append(a)
                    s2.append(b)
            return {"hidden": _u8(s1), "output": _u8(s2)}

        def export(g1, g2, x, make=make):
            net = make(g1, g2)
            return export_to_nir(net, torch.from_numpy(x[:1]), ignore_dims=[0])

        params = {"class": cls.__name__, "layers": [dict(kw, threshold=t) for kw, t in zip(kws, THR)],
                  "reset_delay": True, "spike_grad": "atan (forward: mem - threshold > 0)"}
        finish("snntorch", name, snn.__version__, sim, export, ["hidden", "output"], ["1", "3"], params)


# ----------------------------------------------------------------------------- Norse

NORSE_DT = 1e-3


def build_norse(only=None):
    import norse
    import norse.torch as nt
    import torch

    tau_mem_inv = (100.0, 125.0)  # 1/s: tau_mem = 10 ms, 8 ms
    tau_syn_inv = (200.0, 250.0)

    def params(kind, i, n):
        if kind == "lifbox":
            return nt.LIFBoxParameters(tau_mem_inv=_full(n, tau_mem_inv[i]), v_th=_full(n, THR[i]),
                                       v_leak=_full(n, 0.0), v_reset=_full(n, 0.0))
        if kind == "lif":
            return nt.LIFParameters(tau_syn_inv=_full(n, tau_syn_inv[i]), tau_mem_inv=_full(n, tau_mem_inv[i]),
                                    v_th=_full(n, THR[i]), v_leak=_full(n, 0.0), v_reset=_full(n, 0.0))
        return nt.IAFParameters(v_th=_full(n, THR[i]), v_reset=_full(n, 0.0))

    cells = {"lifbox": nt.LIFBoxCell, "lif": nt.LIFCell, "iaf": nt.IAFCell}
    for kind, cell in cells.items():
        if only and kind not in only:
            continue

        def make(g1, g2, kind=kind, cell=cell):
            w1, w2 = weights(g1, g2)
            return nt.SequentialState(_linear(w1), cell(params(kind, 0, H), dt=NORSE_DT), _linear(w2),
                                      cell(params(kind, 1, O), dt=NORSE_DT))

        def sim(g1, g2, x, make=make):
            net = make(g1, g2)
            xt = torch.from_numpy(x)
            st1 = st2 = None
            s1, s2 = [], []
            with torch.no_grad():
                for _ in range(common.STEPS):
                    a, st1 = net[1](net[0](xt), st1)
                    b, st2 = net[3](net[2](a), st2)
                    s1.append(a.to_dense() if a.is_sparse else a)
                    s2.append(b.to_dense() if b.is_sparse else b)
            return {"hidden": _u8(s1), "output": _u8(s2)}

        def export(g1, g2, x, make=make):
            return nt.to_nir(make(g1, g2), torch.from_numpy(x[0]), dt=NORSE_DT)

        p = {"cell": cell.__name__, "dt": NORSE_DT, "thresholds": list(THR), "v_leak": 0.0, "v_reset": 0.0}
        if kind != "iaf":
            p["tau_mem_inv"] = list(tau_mem_inv)
        if kind == "lif":
            p["tau_syn_inv"] = list(tau_syn_inv)
        finish("norse", kind, norse.__version__, sim, export, ["hidden", "output"], ["1", "3"], p,
               {"dt": NORSE_DT})


# ----------------------------------------------------------------------------- sinabs

def build_sinabs(only=None):
    import sinabs
    import sinabs.layers as sl
    import torch
    from sinabs.nir import to_nir

    T = common.STEPS
    tau = (10.0, 8.0)  # in time steps

    def layer(kind, i, n, num_timesteps):
        if kind == "iaf":
            return sl.IAFSqueeze(num_timesteps=num_timesteps, spike_threshold=_full(n, THR[i]))
        return sl.LIFSqueeze(tau_mem=_full(n, tau[i]), num_timesteps=num_timesteps, spike_threshold=_full(n, THR[i]))

    for kind in ("iaf", "lif"):
        if only and kind not in only:
            continue

        def make(g1, g2, kind=kind):
            w1, w2 = weights(g1, g2)
            return torch.nn.Sequential(_linear(w1), layer(kind, 0, H, T), _linear(w2), layer(kind, 1, O, T))

        def sim(g1, g2, x, make=make):
            net = make(g1, g2)
            b = len(x)
            xt = torch.from_numpy(np.repeat(x[:, None], T, 1).reshape(b * T, 64))  # (B*T, 64), batch-major
            with torch.no_grad():
                a = net[1](net[0](xt))
                o = net[3](net[2](a))
            f = lambda s: s.reshape(b, T, -1).transpose(0, 1).numpy().astype(np.float64)  # noqa: E731
            return {"hidden": f(a), "output": f(o)}

        def export(g1, g2, x, make=make):
            net = make(g1, g2)
            xt = torch.from_numpy(np.repeat(x[:1], T, 0))  # one sample: (T, 64)
            return to_nir(net, xt)

        p = {"class": "IAFSqueeze" if kind == "iaf" else "LIFSqueeze", "thresholds": list(THR),
             "spike_fn": "MultiSpike (default)", "reset_fn": "MembraneSubtract() (default)", "min_v_mem": None}
        if kind == "lif":
            p.update(tau_mem=list(tau), norm_input=True, tau_syn=None)
        finish("sinabs", kind, sinabs.__version__, sim, export, ["hidden", "output"], ["1", "3"], p)


# ----------------------------------------------------------------------------- Rockpool

ROCKPOOL_DT = 1e-3


def build_rockpool(only=None):
    import rockpool
    import torch
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFNeuronTorch, LIFTorch, LinearTorch
    from rockpool.nn.modules import to_nir

    tau_mem = (0.010, 0.008)
    tau_syn = (0.005, 0.004)

    def neuron(kind, i, n):
        if kind == "liftorch":
            return LIFTorch(n, tau_mem=_full(n, tau_mem[i]), tau_syn=_full(n, tau_syn[i]),
                            threshold=_full(n, THR[i]), dt=ROCKPOOL_DT)
        return LIFNeuronTorch(n, tau_mem=_full(n, tau_mem[i]), threshold=_full(n, THR[i]), dt=ROCKPOOL_DT)

    for kind in ("liftorch", "lifneurontorch"):
        if only and kind not in only:
            continue

        def make(g1, g2, kind=kind):
            w1, w2 = weights(g1, g2)
            return Sequential(LinearTorch((64, H), weight=torch.from_numpy(w1.T.copy()), has_bias=False),
                              neuron(kind, 0, H),
                              LinearTorch((H, O), weight=torch.from_numpy(w2.T.copy()), has_bias=False),
                              neuron(kind, 1, O))

        def sim(g1, g2, x, make=make):
            net = make(g1, g2)
            mods = list(net.modules().values())
            xt = torch.from_numpy(np.repeat(x[:, None], common.STEPS, 1))  # (B, T, 64)
            with torch.no_grad():
                h = mods[0](xt)[0]
                a = mods[1](h)[0]
                o = mods[3](mods[2](a)[0])[0]
            f = lambda s: s.transpose(0, 1).numpy().astype(np.float64)  # noqa: E731
            return {"hidden": f(a), "output": f(o)}

        def export(g1, g2, x, make=make):
            return to_nir(make(g1, g2))  # the library's default sample data: zeros (1, size_in)

        names = ["1_LIFTorch", "3_LIFTorch"] if kind == "liftorch" else ["1_LIFNeuronTorch", "3_LIFNeuronTorch"]
        p = {"class": "LIFTorch" if kind == "liftorch" else "LIFNeuronTorch", "dt": ROCKPOOL_DT,
             "tau_mem": list(tau_mem), "thresholds": list(THR), "bias": 0.0,
             "spike_generation_fn": "StepPWL (default; multi-spike floor(v/thr) where v >= thr)"}
        if kind == "liftorch":
            p["tau_syn"] = list(tau_syn)
        finish("rockpool", kind, rockpool.__version__, sim, export, ["hidden", "output"], names, p,
               {"dt": ROCKPOOL_DT})


BUILDERS = {"snntorch": build_snntorch, "norse": build_norse, "sinabs": build_sinabs, "rockpool": build_rockpool}


def main():
    if os.environ.get("PYTHONHASHSEED") != "0":  # nirtorch collects the edges in a set: fix their order in the file
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, PYTHONHASHSEED="0"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True, choices=sorted(BUILDERS) + ["mlp"])
    ap.add_argument("--only", nargs="*", help="neuron variants to build (default: all of the library's)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    torch.manual_seed(common.SEED)
    torch.set_num_threads(1)
    common.train_mlp()
    if args.lib != "mlp":
        BUILDERS[args.lib](args.only)


if __name__ == "__main__":
    main()
