"""Training ANNs with PyTorch, and the model file (no pickle on load).

A model file is written with ``torch.save`` and holds only tensors, strings and
numbers: ``{"format": "spikeport-model", "version": 1, "spec": <JSON>,
"meta": <JSON>, "state_dict": {...}}``. It is read with
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, SpikeportError
from .architectures import ArchSpec, build

METHODS = ("relu", "qcfs")
MODEL_FORMAT = "spikeport-model"
MODEL_VERSION = 1
DEFAULT_EPOCHS = {"digits": 60, "mnist-5k": 30, "mnist": 10, "fashion-mnist": 15}


@dataclass
class TrainedModel:
    """A trained torch module with its architecture spec and what is known about it."""

    module: object
    spec: ArchSpec
    meta: dict = field(default_factory=dict)


def evaluate(module, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Classification accuracy of ``module`` on (x, y)."""
    import torch

    module.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = module(torch.as_tensor(x[i:i + batch_size]))
            correct += int((out.argmax(1).numpy() == y[i:i + batch_size]).sum())
    return correct / len(x)


def train(dataset, arch: str = "mlp", method: str = "relu", epochs: int | None = None, seed: int = 0,
          batch_size: int = 64, lr: float = 1e-3, hidden=None, qcfs_levels: int = 8, progress=None) -> TrainedModel:
    """Train ``arch`` with ``method`` on ``dataset`` (a :class:`spikeport.datasets.Dataset`).

    Adam with a cosine learning-rate decay, cross-entropy loss, deterministic for
    a given seed on a given machine. ``relu``: ReLU activations. ``qcfs``: every
    ReLU is a QCFS activation (Bu et al. 2022; L = ``qcfs_levels`` steps, clip level lam
    initialized to 4 and trained with the weights), whose SNN twin is an IF
    neuron with threshold lam and v(0) = lam / 2 (convert with --v-init half).
    """
    import torch
    from torch import nn

    if method not in METHODS:
        raise SpikeportError(f"unknown training method {method!r} (known: {', '.join(METHODS)})")
    epochs = DEFAULT_EPOCHS.get(dataset.name, 10) if epochs is None else int(epochs)
    if epochs < 1:
        raise SpikeportError(f"--epochs must be at least 1, got {epochs}")
    spec = ArchSpec(arch=arch, input_shape=dataset.input_shape, classes=dataset.classes,
                    activation="qcfs" if method == "qcfs" else "relu", qcfs_levels=qcfs_levels,
                    **({"hidden": tuple(hidden)} if hidden else {}))
    torch.manual_seed(seed)
    module = build(spec)
    x, y = torch.as_tensor(dataset.x("train")), torch.as_tensor(dataset.y("train"))
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        module.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            loss = loss_fn(module(x[idx]), y[idx])
            loss.backward()
            opt.step()
            sched.step()
        if progress is not None:
            progress.update(1)
    meta = {"dataset": dataset.name, "method": method, "epochs": epochs, "seed": seed,
            **({"qcfs_levels": int(qcfs_levels)} if method == "qcfs" else {}),
            "train_seconds": round(time.perf_counter() - start, 3),
            "train_accuracy": evaluate(module, dataset.x("train"), dataset.y("train")),
            "test_accuracy": evaluate(module, dataset.x("test"), dataset.y("test"))}
    return TrainedModel(module=module, spec=spec, meta=meta)


def save_model(model: TrainedModel, path) -> Path:
    """Write a model file atomically."""
    import torch

    from ..ir.io import atomic_write

    payload = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "spec": json.dumps(model.spec.to_dict()),
               "meta": json.dumps(model.meta), "state_dict": model.module.state_dict()}
    return atomic_write(Path(path), lambda f: torch.save(payload, f))


def load_model(path) -> TrainedModel:
    """Read a model file with weights-only loading; errors name the file."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"{path}: no such file")
    import zipfile
    try:
        with zipfile.ZipFile(path) as z:
            is_graph = "spikeport.json" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        is_graph = False
    if is_graph:
        raise FileFormatError(f"{path}: is a spikeport graph file (NET), not a model file (MODEL)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file; all mean "not a model file"
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(f"{path}: not a spikeport model file readable with weights-only loading ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise FileFormatError(f"{path}: not a spikeport model file (no '{MODEL_FORMAT}' header)")
    if not isinstance(payload.get("version"), int) or payload["version"] > MODEL_VERSION:
        raise FileFormatError(f"{path}: model format version {payload.get('version')!r} is not readable by this spikeport")
    try:
        spec = ArchSpec.from_dict(json.loads(payload["spec"]))
        meta = json.loads(payload["meta"])
        module = build(spec)
        module.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, SpikeportError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise FileFormatError(f"{path}: model file is inconsistent ({first})") from None
    module.eval()
    return TrainedModel(module=module, spec=spec, meta=meta)
