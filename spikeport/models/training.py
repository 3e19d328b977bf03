"""Training ANNs with PyTorch, and the model file (no pickle on load).

A model file is written with ``torch.save`` and holds only tensors, strings and
numbers: ``{"format": "spikeport-model", "version": 1, "spec": <JSON>,
"meta": <JSON>, "state_dict": {...}}``. It is read with
``torch.load(weights_only=True)``, which refuses arbitrary pickled objects.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FileFormatError, SpikeportError
from .architectures import ArchSpec

MODEL_FORMAT = "spikeport-model"
MODEL_VERSION = 1
CHECKPOINT_FORMAT = "spikeport-checkpoint"
# validation samples held out of the training split, per data set (a fraction elsewhere)
VALIDATION = {"mnist": 5000, "fashion-mnist": 5000, "mnist-5k": 500, "digits": 0.1}
EVAL_BATCH = 500


@dataclass
class TrainedModel:
    """A trained torch module with its architecture spec and what is known about it."""

    module: object
    spec: ArchSpec
    meta: dict = field(default_factory=dict)


def evaluate(module, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Classification accuracy of a plain ANN ``module`` on (x, y)."""
    import torch

    module.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            out = module(torch.as_tensor(x[i:i + batch_size]))
            correct += int((out.argmax(1).numpy() == y[i:i + batch_size]).sum())
    return correct / len(x)


def method_accuracy(method, module, x, y, options, device="cpu", seed=0, batch_size=EVAL_BATCH) -> float:
    """Accuracy of ``method.predict`` (the ANN's scores; spike-bp's own spiking run) on (x, y).

    Ties in the scores count as wrong: the top score must be the label's alone (proxy
    learning's public notebook counted tied spike counts as right; docs/methods.md)."""
    import torch

    from .methods import Context

    module.eval()
    correct = 0
    gen = torch.Generator().manual_seed(_mix(seed, 0x5EED))
    ctx = Context(options=options, device=device, generator=gen, epoch=-1, training=False)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            scores = method.predict(module, torch.as_tensor(x[i:i + batch_size]).to(device), ctx).float().cpu()
            top = scores.max(dim=1, keepdim=True).values
            alone = (scores == top).sum(dim=1) == 1
            label = torch.as_tensor(y[i:i + batch_size])
            correct += int(((scores.argmax(dim=1) == label) & alone).sum())
    return correct / len(x)


def _mix(*values) -> int:
    """A seed from several integers (splitmix64 of their sum with odd multipliers)."""
    z = 0
    for k, v in enumerate(values):
        z = (z + (int(v) + 1) * (0x9E3779B97F4A7C15 + 2 * k)) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) % 2**63


def validation_split(dataset, validation):
    """(train indices, validation indices) of the training split: ``validation`` samples
    (int), a fraction (float), or the data set's default (None); stratified and fixed
    (the same images whatever the seed), never from the test set."""
    from ..datasets import stratified_split

    labels = dataset.y("train")
    if validation is None:
        validation = VALIDATION.get(dataset.name, 0.1)
    if isinstance(validation, bool) or not isinstance(validation, (int, float)) or validation < 0:
        raise SpikeportError(f"--validation must be a number of samples or a fraction, got {validation!r}")
    if validation == 0:
        return np.arange(len(labels)), np.arange(0)
    classes = len(np.unique(labels))
    per_class = validation / len(labels) if isinstance(validation, int) or validation >= 1 else float(validation)
    if isinstance(validation, float) and validation >= 1:
        raise SpikeportError(f"--validation {validation}: a fraction must be below 1")
    if isinstance(validation, int) and validation >= len(labels) - classes:
        raise SpikeportError(f"--validation {validation}: the {dataset.name} training split has only {len(labels)} samples")
    return stratified_split(labels, float(per_class), seed=7)


def per_dataset(value, dataset: str):
    """A default that may differ per data set: a dict {data set: value, "default": value}."""
    if isinstance(value, dict):
        return value.get(dataset, value.get("default"))
    return value


def _optimizer(module, defaults, lr, total_steps, steps_per_epoch, lr_factor=None):
    """The method's optimizer and schedule. ``lr_factor(epoch) -> float``, when the method
    has one, multiplies the learning rate epoch by epoch (proxy: its ANN-only epochs)."""
    import torch

    kind = defaults.get("optimizer", "adam")
    wd = float(defaults.get("weight_decay", 0.0))
    if kind == "sgd":
        opt = torch.optim.SGD(module.parameters(), lr=lr, momentum=float(defaults.get("momentum", 0.9)), weight_decay=wd)
    else:
        opt = torch.optim.Adam(module.parameters(), lr=lr, weight_decay=wd,
                               betas=tuple(defaults.get("betas", (0.9, 0.999))))
    if defaults.get("schedule", "cosine") == "cosine" and lr_factor is None:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total_steps))
    elif defaults.get("schedule", "cosine") == "cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda step: 0.5 * (1 + math.cos(math.pi * step / max(1, total_steps))) * lr_factor(step // steps_per_epoch))
    else:
        factor = lr_factor or (lambda epoch: 1.0)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: factor(step // steps_per_epoch))
    return opt, sched


def train(dataset, arch: str | None = None, method: str = "relu", epochs: int | None = None, seed: int = 0,
          batch_size: int | None = None, lr: float | None = None, hidden=None, qcfs_levels: int | None = None,
          options: dict | None = None, device: str = "cpu", validation=None, checkpoint=None, resume: bool = False,
          init=None, progress=None) -> TrainedModel:
    """Train ``arch`` with training method ``method`` on ``dataset`` (a :class:`spikeport.datasets.Dataset`).

    Everything a method needs comes from its declaration (``spikeport.models.methods``):
    the ANN it builds, its loss, its optimizer, learning rate, batch size and epochs per
    data set, and its own ``options`` (paper defaults; give any of them to override).
    ``arch`` defaults to the method's paper architecture for the data set.

    - ``validation``: samples held out of the training split (count, fraction, or None for
      the data set's default; 0: train on all). The model returned is the epoch with the
      best validation accuracy (the last one without a validation split); the test set is
      only scored, never used to choose.
    - ``checkpoint``: a file written after every epoch (model, optimizer, schedule, history);
      with ``resume`` training continues from it and ends exactly where an uninterrupted
      run would (every epoch's batch order and noise come from (seed, epoch)).
    - ``init``: a model file or :class:`TrainedModel` whose weights start the training
      (every tensor of the same name and shape; e.g. spike-bp from a ReLU LeNet).
    - ``device``: "cpu" or "cuda"; ``progress``: an object with ``update(n)`` and optionally
      ``note(text)``, called per batch.

    Deterministic for a given seed on a given machine (and thread count).
    """
    import torch

    from .methods import Context, get_method

    m = get_method(method)
    decl = m.METHOD
    if device not in ("cpu", "cuda"):
        raise SpikeportError(f"unknown device {device!r} (cpu or cuda)")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpikeportError("--device cuda: no CUDA device is available")
    options = dict(options or {})
    if qcfs_levels is not None:
        if method != "qcfs":
            raise SpikeportError("--qcfs-levels applies to --method qcfs")
        options["levels"] = int(qcfs_levels)
    # the method's measured best for this data set, then what the caller gives
    opts = decl.resolve_options({**decl.defaults.get("options_for", {}).get(dataset.name, {}), **options})
    epochs = decl.epochs_for(dataset.name) if epochs is None else int(epochs)
    if epochs < 1:
        raise SpikeportError(f"--epochs must be at least 1, got {epochs}")
    batch_size = int(per_dataset(decl.defaults.get("batch_size", 64), dataset.name) if batch_size is None else batch_size)
    lr = float(per_dataset(decl.defaults.get("lr", 1e-3), dataset.name) if lr is None else lr)
    if batch_size < 1:
        raise SpikeportError(f"--batch-size must be at least 1, got {batch_size}")
    arch = arch or decl.arch_for(dataset.name)
    flags = dict(decl.defaults.get("arch_flags", {}))
    spec = ArchSpec(arch=arch, input_shape=dataset.input_shape, classes=dataset.classes,
                    qcfs_levels=int(opts.get("levels", 8)), **flags, **({"hidden": tuple(hidden)} if hidden else {}))
    train_idx, val_idx = validation_split(dataset, validation)
    x_all, y_all = dataset.x("train"), dataset.y("train")
    x, y = torch.as_tensor(x_all[train_idx]), torch.as_tensor(y_all[train_idx])
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size

    torch.manual_seed(seed)
    module = m.build(spec, opts)
    if init is not None:
        _init_from(module, init)
    module.to(device)
    lr_factor = (lambda epoch: m.lr_factor(epoch, opts)) if hasattr(m, "lr_factor") else None
    opt, sched = _optimizer(module, decl.defaults, lr, epochs * steps_per_epoch, steps_per_epoch, lr_factor)
    settings = {"method": method, "arch": arch, "dataset": dataset.name, "seed": seed, "epochs": epochs,
                "batch_size": batch_size, "lr": lr, "options": opts, "validation": int(len(val_idx))}
    history, best, start_epoch, seconds = [], None, 0, 0.0
    ckpt_path = None if checkpoint is None else Path(checkpoint)
    if resume:
        if ckpt_path is None or not ckpt_path.is_file():
            raise SpikeportError(f"--resume: no checkpoint file {ckpt_path}")
        state = _read_checkpoint(ckpt_path, settings)
        module.load_state_dict(state["state_dict"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, start_epoch, seconds = state["history"], int(state["epoch"]), float(state["seconds"])
        best = None if state["best_state_dict"] is None else (float(state["best_accuracy"]), state["best_state_dict"],
                                                              int(state["best_epoch"]))
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(epochs * steps_per_epoch, done=start_epoch * steps_per_epoch)
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        module.train()
        gen = torch.Generator().manual_seed(_mix(seed, epoch))
        ctx = Context(options=opts, device=device, generator=gen, epoch=epoch, training=True)
        order = torch.randperm(len(x), generator=gen)
        total, count = 0.0, 0
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            loss = m.loss(module, x[idx].to(device), y[idx].to(device), ctx)
            if not torch.isfinite(loss):
                raise SpikeportError(f"training {method} diverged at epoch {epoch + 1} (loss {float(loss)}): "
                                     f"try a smaller --lr than {lr:g}")
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
            if progress is not None:
                progress.update(1)
                if hasattr(progress, "note"):
                    progress.note(f"epoch {epoch + 1}/{epochs} loss {total / count:.4f}"
                                  + (f" val {history[-1]['val_accuracy']:.2%}" if history and
                                     history[-1]["val_accuracy"] is not None else ""))
        val_acc = None
        if len(val_idx):
            val_acc = method_accuracy(m, module, x_all[val_idx], y_all[val_idx], opts, device, seed)
            if best is None or val_acc >= best[0]:  # ties: the later, more converged epoch
                best = (val_acc, {k: v.detach().clone().cpu() for k, v in module.state_dict().items()}, epoch + 1)
        seconds += time.perf_counter() - t0
        history.append({"epoch": epoch + 1, "loss": round(total / max(count, 1), 6), "val_accuracy": val_acc,
                        "seconds": round(time.perf_counter() - t0, 2)})
        if progress is not None and hasattr(progress, "note"):
            progress.note(f"epoch {epoch + 1}/{epochs} loss {history[-1]['loss']:.4f}"
                          + ("" if val_acc is None else f" val {val_acc:.2%}"))
        if ckpt_path is not None:
            _write_checkpoint(ckpt_path, settings, spec, module, opt, sched, epoch + 1, history, best, seconds)
    if best is not None:
        module.load_state_dict(best[1])
    module.eval()
    meta = _model_meta(decl, settings, history, seconds, best, epochs)
    if hasattr(m, "resolved_options"):  # what an option such as "auto" became on this machine
        meta["resolved_options"] = m.resolved_options(opts, torch.device(device))
    if init is not None:
        meta["init"] = str(init) if not isinstance(init, TrainedModel) else init.meta.get("source", "a trained model")
    if decl.defaults.get("cheap_predict", True):
        meta["train_accuracy"] = method_accuracy(m, module, x_all[train_idx], y_all[train_idx], opts, device, seed)
    meta["test_accuracy"] = method_accuracy(m, module, dataset.x("test"), dataset.y("test"), opts, device, seed)
    module.to("cpu")
    return TrainedModel(module=module, spec=spec, meta=meta)


def _model_meta(decl, settings, history, seconds, best, epochs) -> dict:
    """What a model file says of its training: the settings, the history, the epoch chosen (``best``:
    (validation accuracy, weights, epoch), or None: the last of ``epochs``), the method's SNN and citation."""
    return {**settings, "train_seconds": round(float(seconds), 3), "history": history,
            "selected_epoch": best[2] if best is not None else epochs,
            "val_accuracy": best[0] if best is not None else None,
            "snn": decl.snn.to_dict(), "citation": decl.citation,
            **({"qcfs_levels": int(settings["options"]["levels"])} if settings["method"] == "qcfs" else {})}


def model_from_checkpoint(path) -> TrainedModel:
    """The model a running training would return if it ended now: its checkpoint's best validation
    epoch so far (the last epoch without a validation split), with the meta ``train`` writes, less the
    accuracies it measures at the end, and ``partial`` saying how far the run had got. Only reads ``path``."""
    from .methods import get_method

    path = Path(path)
    state = _read_checkpoint(path)
    try:
        settings, spec = state["settings"], ArchSpec.from_dict(json.loads(state["spec"]))
        decl = get_method(settings["method"]).METHOD
        weights = state["best_state_dict"] if state["best_state_dict"] is not None else state["state_dict"]
        _check_tensors(path, weights)
        module = build_for(settings, spec)
        module.load_state_dict(weights, strict=True)
        best = None if state["best_state_dict"] is None else (state["best_accuracy"], None, int(state["best_epoch"]))
        meta = _model_meta(decl, settings, state["history"], state["seconds"], best, int(state["epoch"]))
    except FileFormatError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, SpikeportError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(f"{path}: checkpoint is inconsistent ({first})") from None
    meta["partial"] = f"from the checkpoint after epoch {state['epoch']} of {settings['epochs']}"
    module.eval()
    return TrainedModel(module=module, spec=spec, meta=meta)


def _init_from(module, init) -> None:
    """Copy every tensor of ``init`` whose name and shape match; refuse when none do."""
    source = init if isinstance(init, TrainedModel) else load_model(init)
    theirs = source.module.state_dict()
    mine = module.state_dict()
    taken = {k: v for k, v in theirs.items() if k in mine and tuple(mine[k].shape) == tuple(v.shape)}
    weights = [k for k in mine if k.endswith("weight")]
    if not weights or not any(k in taken for k in weights):
        raise SpikeportError(f"--init {init}: none of its weights fits this architecture "
                             f"({source.spec.arch} -> the model's layers)")
    missing = [k for k in weights if k not in taken]
    if missing:
        raise SpikeportError(f"--init {init}: no matching weights for {', '.join(missing[:4])}")
    mine.update(taken)
    module.load_state_dict(mine)


def _write_checkpoint(path, settings, spec, module, opt, sched, epoch, history, best, seconds) -> None:
    import torch

    from ..outputs import write_file

    payload = {"format": CHECKPOINT_FORMAT, "version": 1, "settings": json.dumps(settings),
               "spec": json.dumps(spec.to_dict()), "epoch": epoch, "history": json.dumps(history),
               "seconds": float(seconds), "state_dict": module.state_dict(), "optimizer": opt.state_dict(),
               "scheduler": sched.state_dict(),
               "best_state_dict": None if best is None else best[1],
               "best_accuracy": None if best is None else float(best[0]),
               "best_epoch": None if best is None else int(best[2])}
    write_file(Path(path), lambda f: torch.save(payload, f))


def _read_checkpoint(path, settings=None) -> dict:
    """A checkpoint's payload with ``settings`` and ``history`` parsed; with ``settings``, refused unless
    it was written for the same ones (``--resume``)."""
    import torch

    from ..budget import open_regular

    path = Path(path)
    with open_regular(path, "checkpoint", FileFormatError) as f:
        _check_container(path, f, "checkpoint")
        try:
            state = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise FileFormatError(f"{path}: not a spikeport checkpoint readable with weights-only loading "
                                  f"({first})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise FileFormatError(f"{path}: not a spikeport checkpoint")
    try:
        saved = state["settings"] = json.loads(state["settings"])
        state["history"] = json.loads(state["history"])
    except (KeyError, TypeError, ValueError):
        raise FileFormatError(f"{path}: checkpoint is inconsistent") from None
    if not isinstance(saved, dict):
        raise FileFormatError(f"{path}: checkpoint is inconsistent (settings must be a JSON object)")
    if settings is None:
        return state
    differ = [k for k in settings if json.dumps(saved.get(k), sort_keys=True) != json.dumps(settings[k], sort_keys=True)]
    if differ:
        k = differ[0]
        raise SpikeportError(f"--resume: {path} was written for {k} {saved.get(k)!r}, not {settings[k]!r}; "
                             f"resume with the same settings")
    return state


def save_model(model: TrainedModel, path) -> Path:
    """Write a model file atomically (staged beside ``path`` and renamed into place: spikeport.outputs)."""
    import torch

    from ..outputs import write_file

    payload = {"format": MODEL_FORMAT, "version": MODEL_VERSION, "spec": json.dumps(model.spec.to_dict()),
               "meta": json.dumps(model.meta), "state_dict": model.module.state_dict()}
    return write_file(Path(path), lambda f: torch.save(payload, f))


# what a model file's meta may hold under the keys spikeport reads (other keys are free JSON)
META_TYPES = {"method": (str,), "options": (dict, type(None)), "dataset": (str,), "arch": (str,),
              "qcfs_levels": (int,), "test_accuracy": (int, float, type(None)),
              "val_accuracy": (int, float, type(None)), "train_accuracy": (int, float, type(None))}
# a compressed member of a model file may declare at most this many times its stored bytes (torch.save stores)
MAX_EXPANSION = 100


def _check_container(path: Path, f, what: str = "model file") -> None:
    """A model file is a zip archive as ``torch.save`` writes it: every member's declared size is checked
    against the bytes it stores and the memory budget before torch reads any of it."""
    import os
    import zipfile

    from ..budget import Tally

    disk = os.fstat(f.fileno()).st_size
    try:
        with zipfile.ZipFile(f) as z:
            infos = z.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, RuntimeError,
            NotImplementedError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(f"{path}: not a spikeport {what} (not the zip archive torch.save writes: "
                              f"{first})") from None
    if any(info.filename == "spikeport.json" for info in infos):
        raise FileFormatError(f"{path}: is a spikeport graph file (NET), not a model file (MODEL)")
    tally = Tally(path, "the tensors it declares")
    for info in infos:
        stored = info.compress_type == zipfile.ZIP_STORED
        if (stored and (info.file_size != info.compress_size or info.file_size > disk)) \
                or (not stored and info.file_size > MAX_EXPANSION * max(1, info.compress_size)):
            raise FileFormatError(f"{path}: member {info.filename[:80]!r} declares {info.file_size:,} bytes, more "
                                  f"than the file stores")
        tally.add(info.file_size, f"member {info.filename[:80]!r}")
    f.seek(0)


def _check_tensors(path: Path, state) -> None:
    """Every tensor of a state dict finite and within the numeric sanity bound, named with the file."""
    import torch

    from ..ir.neurons import MAX_MAGNITUDE

    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise FileFormatError(f"{path}: model file is inconsistent (state_dict must map names to tensors)")
    for name, t in state.items():
        if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
            continue
        bad = int(t.numel() - torch.isfinite(t).sum())
        if bad:
            raise FileFormatError(f"{path}: tensor {name!r} holds {bad:,} NaN or infinite value"
                                  f"{'s' if bad > 1 else ''}")
        worst = float(t.abs().max())
        if worst > MAX_MAGNITUDE:
            raise FileFormatError(f"{path}: tensor {name!r} holds values up to {worst:.3g}, beyond "
                                  f"+-{MAX_MAGNITUDE:g} (float32 arithmetic would overflow)")


def load_model(path) -> TrainedModel:
    """Read a model file with weights-only loading; errors name the file.

    Checked before anything is built: a regular file (a FIFO or device is refused unopened), a zip archive
    whose members declare no more than they store and than the memory budget, the header, ``spec`` and
    ``meta`` (JSON objects), the architecture's parameter count against the budget, and every tensor finite
    and within the numeric sanity bound (``spikeport.ir.neurons.MAX_MAGNITUDE``)."""
    import torch

    from ..budget import number, open_regular
    from .architectures import check_size, parameter_count, plan

    path = Path(path)
    with open_regular(path, "model file", FileFormatError) as f:
        _check_container(path, f)
        try:
            payload = torch.load(f, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a bad file; all mean "not a model file"
            from .user_module import plain
            first = plain(exc, 160) or type(exc).__name__
            raise FileFormatError(f"{path}: not a spikeport model file readable with weights-only loading "
                                  f"({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise FileFormatError(f"{path}: not a spikeport model file (no '{MODEL_FORMAT}' header)")
    version = payload.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= MODEL_VERSION:
        raise FileFormatError(f"{path}: model format version {version!r} is not readable by this spikeport")
    try:
        spec, meta = json.loads(payload["spec"]), json.loads(payload["meta"])
    except (KeyError, TypeError, ValueError, RecursionError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FileFormatError(f"{path}: model file is inconsistent (spec and meta must be JSON text: {first})") \
            from None
    for what, value in (("spec", spec), ("meta", meta)):
        if not isinstance(value, dict):
            raise FileFormatError(f"{path}: model file is inconsistent ({what} must be a JSON object, got "
                                  f"{type(value).__name__})")
    for key, types in META_TYPES.items():
        if key in meta and (not isinstance(meta[key], types) or isinstance(meta[key], bool)):
            raise FileFormatError(f"{path}: model file is inconsistent (meta {key!r} must be "
                                  f"{' or '.join('null' if t is type(None) else t.__name__ for t in types)}, "
                                  f"got {type(meta[key]).__name__})")
    try:
        spec = ArchSpec.from_dict(spec)
        plan(spec)  # the layers fit the input
    except (KeyError, TypeError, ValueError, OverflowError, SpikeportError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise FileFormatError(f"{path}: model file is inconsistent ({first})") from None
    check_size(spec, path)  # the parameters it declares, before torch allocates any
    state = payload.get("state_dict")
    _check_tensors(path, state)
    weights = parameter_count(spec, weights_only=True)
    held = sum(t.numel() for t in state.values() if t.is_floating_point())
    if weights > held:  # what the spec would make torch allocate must be in the file
        raise FileFormatError(f"{path}: model file is inconsistent (its spec declares {number(weights)} weights, "
                              f"its state_dict holds {held:,} values)")
    try:
        module = build_for(meta, spec)
        module.load_state_dict(payload["state_dict"], strict=True)
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, SpikeportError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise FileFormatError(f"{path}: model file is inconsistent ({first})") from None
    module.eval()
    return TrainedModel(module=module, spec=spec, meta=meta)


def build_for(meta: dict, spec: ArchSpec):
    """The module a model file's method builds for ``spec`` (with the options it was trained with)."""
    from .methods import get_method

    m = get_method(meta.get("method", "relu"))
    return m.build(spec, m.METHOD.resolve_options(meta.get("options")))
