"""Shared pieces of the NIR library fixtures: data, the tiny ReLU MLP, the npz layout.

Imported by make_fixtures.py, roundtrip.py and check_semantics.py (run from any of
the .venv-nirlibs* venvs; numpy only here, torch imported lazily).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "spikeport" / "data" / "digits.npz"
OUT = ROOT / "tests" / "data" / "nir"
MLP = OUT / "mlp_weights.npz"

N_TRAIN = 1400  # digits.npz has no split: the first 1400 samples train, the rest test
B = 16  # fixture batch: test samples N_TRAIN .. N_TRAIN + B - 1
STEPS = 25
SEED = 0


def digits():
    """(x, y) of all 1797 samples; x float32 in [0, 1], shape (n, 64)."""
    d = np.load(DATA)
    x = d["images"].reshape(len(d["images"]), 64).astype(np.float32) / np.float32(16.0)
    return x, d["labels"].astype(np.int64)


def fixture_inputs():
    x, y = digits()
    return x[N_TRAIN:N_TRAIN + B].copy(), y[N_TRAIN:N_TRAIN + B].copy()


def calibration_inputs(n=64):
    """Training samples used to choose weight gains (never the fixture samples)."""
    x, _ = digits()
    return x[:n].copy()


def train_mlp(path: Path = MLP):
    """Train the 64-32-10 ReLU MLP (no biases) once and store its weights; later calls load them.

    Every library's network uses these same weights (times a per-layer gain), so the
    file is shared by all venvs.
    """
    if path.exists():
        d = np.load(path)
        return d["w1"], d["w2"]
    import torch

    torch.manual_seed(SEED)
    torch.set_num_threads(1)  # bitwise reproducible (the summation order of a GEMM depends on the threads)
    x, y = digits()
    xt, yt = torch.from_numpy(x[:N_TRAIN]), torch.from_numpy(y[:N_TRAIN])
    net = torch.nn.Sequential(torch.nn.Linear(64, 32, bias=False), torch.nn.ReLU(),
                              torch.nn.Linear(32, 10, bias=False))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):  # full batch, about a second on one core
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (net(torch.from_numpy(x[N_TRAIN:])).argmax(1).numpy() == y[N_TRAIN:]).mean()
    w1 = net[0].weight.detach().numpy().astype(np.float32)
    w2 = net[2].weight.detach().numpy().astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, w1=w1, w2=w2, test_accuracy=np.float64(acc), n_train=N_TRAIN, seed=SEED)
    print(f"trained MLP 64-32-10: test accuracy {acc:.3f} -> {path}")
    return w1, w2


def pred_from_counts(counts: np.ndarray) -> np.ndarray:
    """argmax of the output spike counts, ties to the lowest index."""
    return np.argmax(counts, axis=-1).astype(np.int64)


def save_run(path: Path, x, y, steps, spikes: dict, meta: dict, output_layer: str):
    """spikes: layer name -> array (steps, B, n) of spike counts per step (0/1, or more for multi-spike)."""
    arrays = {}
    for name, s in spikes.items():
        s = np.asarray(s)
        if s.min() < 0 or s.max() > 255 or np.any(s != np.round(s)):
            raise ValueError(f"{name}: spikes must be integers in [0, 255]")
        arrays[f"spikes_{name}"] = s.astype(np.uint8)
    counts = arrays[f"spikes_{output_layer}"].sum(0, dtype=np.int64)
    meta = dict(meta, output_layer=output_layer, layers=list(spikes))
    np.savez_compressed(path, x=np.asarray(x, np.float32), y=np.asarray(y, np.int64), steps=np.int64(steps),
                        pred=pred_from_counts(counts), meta=np.array(json.dumps(meta, sort_keys=True)), **arrays)
    return arrays


def load_meta(npz) -> dict:
    return json.loads(str(npz["meta"]))


def rates(spikes: dict) -> dict:
    """Mean spikes per neuron per step, and the fraction of neurons that spiked at least once."""
    out = {}
    for name, s in spikes.items():
        s = np.asarray(s, dtype=np.float64)
        out[name] = {"rate": round(float(s.mean()), 4), "active": round(float((s.sum((0, 1)) > 0).mean()), 3),
                     "max_per_step": int(s.max())}
    return out
