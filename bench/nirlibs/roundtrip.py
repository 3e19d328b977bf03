"""Load a NIR file with a library's own NIR importer and run it on constant input.

    .venv-nirlibs/bin/python  bench/nirlibs/roundtrip.py --lib snntorch FILE.nir INPUT.npz OUT.npz
    .venv-nirlibs/bin/python  bench/nirlibs/roundtrip.py --lib norse    FILE.nir INPUT.npz OUT.npz [--dt 1e-3]
    .venv-nirlibs2/bin/python bench/nirlibs/roundtrip.py --lib sinabs   FILE.nir INPUT.npz OUT.npz
    .venv-nirlibs2/bin/python bench/nirlibs/roundtrip.py --lib rockpool FILE.nir INPUT.npz OUT.npz

INPUT.npz needs `x` (B, n_in) and `steps`; every step gets the same x (constant
analog input). OUT.npz gets, for every spiking node of the imported network (in
execution order), `spikes_<node>` (steps, B, n) uint8, plus `counts` (B, n_out) of the
last one, `pred` (argmax of counts, ties to the lowest index) and `meta` (JSON).
With --compare, OUT is also compared with the `spikes_*` / `pred` of INPUT.npz
(the library's own fixture) and the number of differing spikes is printed.

Importers used (their own, unmodified):
  snntorch  snntorch.import_nir.import_from_nir(graph)   (nirtorch.nir_to_torch)
  norse     norse.torch.from_nir(graph, dt=--dt)          (nirtorch.load GraphExecutor; default dt 1e-3)
  sinabs    sinabs.from_nir(graph, batch_size=B)         (IAFSqueeze / LIFSqueeze layers)
  rockpool  rockpool.nn.modules.from_nir(graph)          (nirtorch.load GraphExecutor)
with graph = nir.read(FILE) (type_check=False where the nir version has it: nir 1.0.8
refuses Rockpool's own files otherwise).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

NEURON_CLASSES = {
    "snntorch": {"Leaky", "Synaptic", "RLeaky", "RSynaptic"},
    "norse": {"LIFBoxCell", "LIFCell", "IAFCell", "CubaLIF", "LIBoxCell"},
    "sinabs": {"IAFSqueeze", "LIFSqueeze", "ExpLeakSqueeze", "IAF", "LIF"},
    "rockpool": {"LIFTorch", "LIFNeuronTorch", "ExpSynTorch"},
}


class _Recorder:
    """Forward hooks on the top-level neuron modules of an imported network."""

    def __init__(self, net, classes):
        self.order, self.data, self.handles = [], {}, []
        for name, mod in net.named_children():
            if type(mod).__name__ in classes:
                self.handles.append(mod.register_forward_hook(self._hook(name)))

    def _hook(self, name):
        def hook(_mod, _inp, out):
            if isinstance(out, (tuple, list)):
                out = out[0]
            if getattr(out, "is_sparse", False):
                out = out.to_dense()
            if name not in self.data:
                self.order.append(name)
                self.data[name] = []
            self.data[name].append(out.detach().numpy().astype(np.float64))
        return hook


def _stepwise(net, xt, steps, rec):
    """Call an executor once per step; executors that return (out, state) get their state back."""
    state = None
    for _ in range(steps):
        out = net(xt) if state is None else net(xt, state)
        if isinstance(out, tuple) and len(out) == 2 and not hasattr(out[1], "shape"):
            state = out[1]
    return {n: np.stack(rec.data[n]) for n in rec.order}


def run_graph(lib: str, graph, x: np.ndarray, steps: int, dt: float | None = None):
    """(spikes {node: (steps, B, n)}, node order, note) for a nir graph loaded by the library's importer."""
    import torch

    torch.set_num_threads(1)
    x = np.asarray(x, dtype=np.float32)
    b = len(x)
    if lib == "snntorch":
        from snntorch.import_nir import import_from_nir

        net = import_from_nir(graph)
        rec = _Recorder(net, NEURON_CLASSES[lib])
        with torch.no_grad():
            spikes = _stepwise(net, torch.from_numpy(x), steps, rec)
        note = "snntorch.import_nir.import_from_nir: LIF -> Leaky(reset_mechanism='zero', reset_delay=False)"
    elif lib == "norse":
        import norse.torch as nt

        dt = 1e-3 if dt is None else dt
        net = nt.from_nir(graph, dt=dt)
        rec = _Recorder(net, NEURON_CLASSES[lib])
        with torch.no_grad():
            spikes = _stepwise(net, torch.from_numpy(x), steps, rec)
        note = f"norse.torch.from_nir(graph, dt={dt:g})"
    elif lib == "sinabs":
        from sinabs import from_nir

        net = from_nir(graph, batch_size=b)
        rec = _Recorder(net, NEURON_CLASSES[lib])
        xt = torch.from_numpy(np.repeat(x[:, None], steps, 1).reshape(b * steps, -1))
        with torch.no_grad():
            net(xt)
        spikes = {n: np.stack(rec.data[n])[0].reshape(b, steps, -1).transpose(1, 0, 2) for n in rec.order}
        note = "sinabs.from_nir(graph, batch_size=B), input (B*T, n) batch-major"
    elif lib == "rockpool":
        from rockpool.nn.modules import from_nir

        net = from_nir(graph)
        rec = _Recorder(net, NEURON_CLASSES[lib])
        xt = torch.from_numpy(np.repeat(x[:, None], steps, 1))  # (B, T, n)
        with torch.no_grad():
            net(xt)
        spikes = {n: np.stack(rec.data[n])[0].transpose(1, 0, 2) for n in rec.order}
        note = "rockpool.nn.modules.from_nir(graph), input (B, T, n)"
    else:
        raise ValueError(f"unknown library {lib!r}")
    if not spikes:
        raise RuntimeError("the imported network has no spiking module that could be recorded")
    return spikes, list(spikes), note


def read_nir(path):
    """nir.read, without nir 1.0.8's type check (it refuses Rockpool's own files: Input typed [1, n])."""
    import inspect

    import nir

    if "type_check" in inspect.signature(nir.read).parameters:
        return nir.read(str(path), type_check=False)
    return nir.read(str(path))


def run_file(lib: str, path, x, steps, dt=None):
    return run_graph(lib, read_nir(path), x, steps, dt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lib", required=True, choices=sorted(NEURON_CLASSES))
    ap.add_argument("nir_file")
    ap.add_argument("input_npz")
    ap.add_argument("out_npz")
    ap.add_argument("--dt", type=float, default=None, help="time step passed to the importer (norse only)")
    ap.add_argument("--compare", action="store_true", help="compare with the spikes stored in INPUT.npz")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    d = np.load(args.input_npz)
    x, steps = d["x"], int(d["steps"])
    spikes, order, note = run_file(args.lib, args.nir_file, x, steps, args.dt)
    meta = {"library": args.lib, "nir_file": str(args.nir_file), "importer": note, "layers": order}
    counts = np.asarray(spikes[order[-1]]).sum(0).astype(np.int64)
    np.savez_compressed(args.out_npz, x=x, steps=np.int64(steps), counts=counts,
                        pred=common.pred_from_counts(counts), meta=np.array(json.dumps(meta)),
                        **{f"spikes_{n}": np.asarray(s).astype(np.uint8) for n, s in spikes.items()})
    result = {"file": str(args.nir_file), "layers": order, "rates": common.rates(spikes)}
    if args.compare:
        mine = [k for k in d.files if k.startswith("spikes_")]
        theirs = [f"spikes_{n}" for n in order]
        result["differing_spikes"] = {a: int(np.sum(d[a].astype(np.int64) != np.asarray(spikes[b[7:]], np.int64)))
                                      for a, b in zip(mine, theirs)}
        pred = common.pred_from_counts(counts)
        result["same_pred"] = int(np.sum(d["pred"] == pred)) if "pred" in d.files else None
        result["pred"] = pred.tolist()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
