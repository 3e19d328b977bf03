"""A sweep as a graph of tasks (issue 26): what every executor runs, so that a serial run and a dask run
compute the same values from the same functions.

The tasks of a sweep, each named by a digest of its inputs so that points share what they have in common:

- ``data``: a data set's test samples (once per data set and sample count);
- ``net``: a network, read from the bytes of its file (sent with the task: workers need no shared file
  system) and converted where it is a model file (once per file, norm and encoding);
- ``chip``: the network fitted to a chip (checked, quantized, partitioned; once per network and target);
- ``float``: a shard of the samples run on the float network (once per network, steps, backend, seed and
  shard: the targets of a network share it);
- ``quant``: a shard run on the network in the chip's formats (once per network, target, steps, seed, shard);
- ``model``: a model file's trained ANN (once per file; none for a graph file, or a method that trains no ANN);
- ``ann``: a shard's correct answers of the network as an ANN, what cpu and gpu run (once per network and
  shard): the model file's trained ANN, else the graph's rate model
  (:func:`spikeport.models.calibrate.rate_model`);
- ``row``: the point's row, from the shards merged sample by sample (counts, never averages of averages).

A task whose input failed with a :class:`~spikeport.errors.SpikeportError` (a model that does not convert, a
network that does not fit the chip) returns a :class:`Failed` with that line instead of raising; the row of
every point that needs it carries the line as its error. Every task is a plain module-level function of
plain, picklable arguments.
"""
from __future__ import annotations

import copy
import functools
import hashlib
import os
import tempfile
from typing import NamedTuple

import numpy as np

from ..errors import SpikeportError
from .spec import Point

SHARD_SAMPLES = 1000
COLUMNS = ("key", "network", "kind", "dataset", "samples", "steps", "target", "norm", "encoding", "backend", "seed",
           "fits", "accuracy", "ann_accuracy", "chip_accuracy", "energy_per_inference_j", "energy_low_j", "energy_high_j",
           "power_w", "time_per_inference_s", "synops", "cores", "chips", "complete", "error")


class Ref(NamedTuple):
    """An argument that is the value of the task ``key``."""

    key: str


class Failed(NamedTuple):
    """A task that could not be done, with the one line saying why; ``lasting``: the same inputs fail again
    (a SpikeportError), else (a bug, a lost worker) the point is retried when the sweep runs again."""

    error: str
    lasting: bool = True


class Task(NamedTuple):
    key: str
    func: object
    args: tuple

    def refs(self) -> list:
        return [a.key for a in self.args if isinstance(a, Ref)]


class Samples(NamedTuple):
    x: np.ndarray
    y: np.ndarray


class Chip(NamedTuple):
    """A network on a chip: the chip's profile and the fit (None on a conventional target, cpu or gpu)."""

    profile: object
    fitted: object


def guarded(func):
    """The task ``func``, passing on a :class:`Failed` input and turning a SpikeportError into one."""
    @functools.wraps(func)
    def task(*args):
        for a in args:
            if isinstance(a, Failed):
                return a
        try:
            return func(*args)
        except SpikeportError as exc:
            return Failed(str(exc))
    return task


@guarded
def load_samples(dataset: str, samples, data_dir) -> Samples:
    """The first ``samples`` (None: all) test samples of ``dataset``."""
    from ..datasets import load_dataset

    ds = load_dataset(dataset, data_dir)
    n = len(ds.test_labels) if samples is None else min(samples, len(ds.test_labels))
    return Samples(np.ascontiguousarray(ds.x("test")[:n]), np.asarray(ds.test_labels[:n]))


def _from_blob(read, name: str, blob: bytes, suffix: str):
    """``read`` (a reader of a path) applied to a file's bytes, through a temporary file; its messages name
    ``name``, the file the bytes came from."""
    fd, tmp = tempfile.mkstemp(prefix="spikeport-sweep-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(blob)
        return read(tmp)
    except SpikeportError as exc:
        raise SpikeportError(str(exc).replace(tmp, name)) from None
    finally:
        os.unlink(tmp)


@guarded
def load_network(name: str, blob: bytes, kind: str, norm, encoding, data_dir):
    """The network of a file's bytes (``name``: its path, for messages): a graph file as it is, a model file
    converted as a plain ``spikeport convert`` would with ``norm`` and ``encoding``."""
    if kind == "graph":
        from ..ir import load_network as read_graph

        return _from_blob(read_graph, name, blob, ".spk")
    from ..api import convert
    from ..models import load_model

    model = _from_blob(load_model, name, blob, ".pt")
    options = {} if encoding is None else {"encoding": encoding}
    if norm == "l4":  # as `spikeport convert --norm l4`: percentile normalization with the L4 adjustment
        options.update(norm="percentile", l4="scale")
    elif norm is not None:
        options["norm"] = norm
    return convert(model, data_dir=data_dir, **options)


@guarded
def fit_chip(network, target: str) -> Chip:
    """The network fitted to ``target``; a network that does not fit raises its one line."""
    from ..deploy.pipeline import fit
    from ..hardware_profiles import load as load_profile

    profile = load_profile(target)
    return Chip(profile, fit(network, profile) if profile.neuromorphic else None)


@guarded
def run_float(network, samples: Samples, a: int, b: int, steps: int, backend: str, seed: int):
    """Samples ``a:b`` run on the float network on ``backend`` (Poisson trains from sample ``a`` on, as in
    one run of all the samples)."""
    from ..backends import get_backend

    return get_backend(backend).run(network, samples.x[a:b], steps, seed=seed, sample0=a, record_counts=False)


@guarded
def run_quantized(chip: Chip, samples: Samples, a: int, b: int, steps: int, seed: int):
    """Samples ``a:b`` run on the network in the chip's formats (reference executor)."""
    from ..backends import get_backend

    return get_backend("reference").run(chip.fitted.deployed, samples.x[a:b], steps, seed=seed, sample0=a,
                                        record_counts=False)


@guarded
def load_ann(name: str, blob: bytes):
    """The trained ANN of a model file's bytes, in float64 (so that how a shard's samples are batched does not
    move an argmax: float32 sums can differ in the last bit between batch sizes); None where the method trains
    no ANN (spike-bp)."""
    from ..models import load_model
    from ..models.methods import get_method

    model = _from_blob(load_model, name, blob, ".pt")
    if not get_method(model.meta.get("method", "relu")).METHOD.ann_forward:
        return None
    return copy.deepcopy(model.module).cpu().double().eval()


@guarded
def ann_correct(network, ann, samples: Samples, a: int, b: int):
    """How many of samples ``a:b`` the network as an ANN classifies correctly: ``ann``, a model file's trained
    ANN, or else the graph's rate model; None where the rate model has no closed form for the network's
    neurons (LIF with reset by subtraction: its rate is simulated, far slower than the network's own run) or
    does not know them."""
    y = samples.y[a:b]
    if ann is not None:
        import torch

        with torch.no_grad():
            out = torch.cat([ann(torch.as_tensor(samples.x[i:min(i + 250, b)], dtype=torch.float64))
                             for i in range(a, b, 250)])
        return int((out.argmax(dim=1).numpy() == y).sum())
    from ..models.calibrate import output_scores

    if any(p.neuron is not None and p.neuron.model != "if" and p.neuron.decay < 1.0 and p.neuron.reset == "subtract"
           for p in network.populations):
        return None
    try:
        rates = output_scores(network, samples.x[a:b])
    except SpikeportError:
        return None
    return int((rates.reshape(b - a, -1).argmax(axis=1) == y).sum())


def make_row(point: Point, network, chip, samples, shards: int, quantized: int, *parts) -> dict:
    """The point's row from its shards, in sample order: ``shards`` float activities, then ``quantized``
    activities on the chip, then ``shards`` ANN counts."""
    row = dict.fromkeys(COLUMNS) | {k: v for k, v in point.row().items() if k in COLUMNS}
    failed = next((a for a in (network, chip, samples, *parts) if isinstance(a, Failed)), None)
    if failed is not None:
        row.update(fits=False, error=failed.error, retry=not failed.lasting)
        return row
    floats, chips, anns = parts[:shards], parts[shards:shards + quantized], parts[shards + quantized:]
    try:
        row.update(_measure(point, network, chip, samples, floats, chips))
    except SpikeportError as exc:
        row.update(fits=False, error=str(exc))
    if row["fits"] and anns and all(c is not None for c in anns):
        row["ann_accuracy"] = sum(anns) / len(samples.y)
    return row


def _measure(point, network, chip, samples, floats, quantized) -> dict:
    from ..backends.activity import merge_activities
    from ..deploy.energy import estimate
    from ..deploy.pipeline import baselines, counts, host_synops

    row = {"fits": True, "error": None, "accuracy": merge_activities(list(floats)).accuracy(samples.y)}
    if chip.fitted is None:
        base = baselines(network)[chip.profile.name]
        low, high = _band(base)
        return row | {"energy_per_inference_j": base["energy_per_inference_j"], "energy_low_j": low,
                      "energy_high_j": high, "power_w": base["power_w"],
                      "time_per_inference_s": base["time_per_inference_s"], "complete": bool(base["complete"])}
    deployed, prof = chip.fitted.deployed, chip.profile
    counted, _ = counts(network, prof, chip.fitted.partition, point.steps)
    act = merge_activities(list(quantized))
    energy = estimate(deployed, prof, act, cores=dict(counted.per_population), chips=counted.chips,
                      host_synops=host_synops(deployed, samples.x, point.steps))
    low, high = _band(energy)
    return row | {"chip_accuracy": act.accuracy(samples.y), "energy_per_inference_j": energy["energy_per_inference_j"],
                  "energy_low_j": low, "energy_high_j": high, "power_w": energy["power_w"],
                  "time_per_inference_s": energy["time_per_inference_s"], "synops": energy["synops"],
                  "cores": counted.cores, "chips": counted.chips, "complete": bool(energy["complete"])}


def _band(energy: dict) -> tuple:
    """(low, high) of the energy per inference where the estimate gives its band."""
    band = (energy.get("band") or {}).get("energy_per_inference_j")
    return (float(band[0]), float(band[1])) if band else (None, None)


def shards(total: int, size: int = SHARD_SAMPLES) -> list:
    return [(a, min(a + size, total)) for a in range(0, total, size)]


def _name(kind: str, *parts) -> str:
    return f"{kind}-{hashlib.sha256(repr(parts).encode()).hexdigest()[:20]}"


def plan(points, *, data_dir=None, shard_samples: int = SHARD_SAMPLES, sizes=None) -> tuple:
    """(tasks in an order that runs every task after its inputs, {point key: its row task's key}) for
    ``points``. ``sizes``: {(dataset, samples): number of test samples} where known (else read here)."""
    from ..datasets import load_dataset
    from ..hardware_profiles import load as load_profile

    tasks, rows, blobs = {}, {}, {}
    sizes = dict(sizes or {})

    def add(key, func, *args):
        if key not in tasks:
            tasks[key] = Task(key, func, args)
        return Ref(key)

    for p in points:
        if p.network not in blobs:
            blobs[p.network] = _read(p)
        blob, digest = blobs[p.network]
        data = add(_name("data", p.dataset, p.samples), load_samples, p.dataset, p.samples, data_dir)
        net_key = (digest, p.kind, p.norm, p.encoding)
        net = add(_name("net", *net_key), load_network, p.network, blob, p.kind, p.norm, p.encoding, data_dir)
        chip = add(_name("chip", *net_key, p.target), fit_chip, net, p.target)
        if (p.dataset, p.samples) not in sizes:
            total = len(load_dataset(p.dataset, data_dir).test_labels)
            sizes[(p.dataset, p.samples)] = total if p.samples is None else min(p.samples, total)
        parts = shards(sizes[(p.dataset, p.samples)], shard_samples)
        floats = [add(_name("float", *net_key, p.dataset, p.samples, p.steps, p.backend, p.seed, a, b),
                      run_float, net, data, a, b, p.steps, p.backend, p.seed) for a, b in parts]
        quantized = []
        if load_profile(p.target).neuromorphic:
            quantized = [add(_name("quant", *net_key, p.target, p.dataset, p.samples, p.steps, p.seed, a, b),
                             run_quantized, chip, data, a, b, p.steps, p.seed) for a, b in parts]
        ann = add(_name("model", digest), load_ann, p.network, blob) if p.kind == "model" else None
        anns = [add(_name("ann", *net_key, p.dataset, p.samples, a, b), ann_correct, net, ann, data, a, b)
                for a, b in parts]
        rows[p.key] = add(f"row-{p.key}", make_row, p, net, chip, data, len(floats), len(quantized), *floats,
                          *quantized, *anns).key
    return list(tasks.values()), rows


def _read(point: Point) -> tuple:
    """(bytes, digest) of the point's network file; a file changed since the sweep was read is refused."""
    from ..budget import read_regular

    blob = read_regular(point.network, "network file")
    digest = hashlib.sha256(blob).hexdigest()
    if point.digest and digest != point.digest:
        raise SpikeportError(f"{point.network}: changed since the sweep file was read")
    return blob, digest
