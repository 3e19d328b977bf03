"""Running a sweep's points (issue 26): each point's samples in shards, the shards merged exactly, one row per
point, the rows kept in the output directory by the point's key.

A point is measured as ``spikeport power`` measures one chip: the float network on the reference executor
(accuracy), the network in the chip's formats (accuracy after quantization, and the activity the energy is
priced from), the chip's cores and chips from the partitioner, energy per inference with its band, power,
time per inference and synaptic operations. A conventional target (cpu, gpu) prices the same network as an
ANN (accuracy: the float network's). A network that does not fit the chip is a row with its reason.

Shards: :func:`prepare` makes what a point's shards share once (the network, converted where it is a model;
the chip's fit; the samples); :func:`run_shard` runs a slice of the samples (Poisson trains from its first
sample on, as in one run) and returns the two activities; :func:`finish` merges the shards' activities sample
by sample (counts, never averages of averages: :func:`spikeport.backends.activity.merge_activities`) and
prices the merged run. Both are plain functions of plain arguments, so any executor can run them: :func:`run_sweep`
runs them one after another; the dask.distributed executor is the next step of issue 26.

Kept results: ``DIR/points/<key>.json`` per point (written whole, through :mod:`spikeport.outputs`); a sweep
run again skips the points already there, and ``DIR/table.csv`` is written from every point's row.
"""
from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import SpikeportError
from ..outputs import write_file
from .spec import Point

SHARD_SAMPLES = 1000
COLUMNS = ("key", "network", "kind", "dataset", "samples", "steps", "target", "norm", "encoding", "backend", "seed",
           "fits", "accuracy", "chip_accuracy", "energy_per_inference_j", "energy_low_j", "energy_high_j",
           "power_w", "time_per_inference_s", "synops", "cores", "chips", "complete", "error", "seconds")


def network_of(point: Point, data_dir=None):
    """The point's network: its graph file, or its model file converted with the point's norm and encoding."""
    if point.kind == "graph":
        from ..ir import load_network

        return load_network(point.network)
    from ..api import convert
    from ..models import load_model

    options = {"norm": point.norm}
    if point.encoding is not None:
        options["encoding"] = point.encoding
    return convert(load_model(point.network), data_dir=data_dir, **options)


def samples_of(point: Point, data_dir=None):
    """(x, y) of the point's test samples (the first ``samples`` of the data set's test split)."""
    from ..datasets import load_dataset

    ds = load_dataset(point.dataset, data_dir)
    n = len(ds.test_labels) if point.samples is None else min(point.samples, len(ds.test_labels))
    return ds.x("test")[:n], ds.test_labels[:n]


class Prepared(NamedTuple):
    """What every shard of a point shares, made once per point: the network, the chip's profile, the network
    fitted to the chip (None on a conventional target) and the point's samples."""

    network: object
    profile: object
    fitted: object
    x: np.ndarray
    y: np.ndarray


def prepare(point: Point, data_dir=None) -> Prepared:
    """The point's network (converted where it is a model), profile, fit and samples; a network that does not
    fit the chip raises its one line here, before any shard runs."""
    from ..deploy.pipeline import fit
    from ..hardware_profiles import load as load_profile

    network = network_of(point, data_dir)
    profile = load_profile(point.target)
    x, y = samples_of(point, data_dir)
    return Prepared(network, profile, fit(network, profile) if profile.neuromorphic else None, x, y)


def shards(total: int, size: int = SHARD_SAMPLES) -> list:
    return [(a, min(a + size, total)) for a in range(0, total, size)]


def run_shard(point: Point, network, deployed, x, sample0: int) -> tuple:
    """(float activity, chip activity or None) of the samples ``x``, which start at sample ``sample0`` of the
    point: ``network`` on the point's backend, ``deployed`` (the network in the chip's formats; None on a
    conventional target) on the reference executor. Plain arguments: what an executor sends to a worker."""
    from ..backends import get_backend

    float_act = get_backend(point.backend).run(network, x, point.steps, seed=point.seed, sample0=sample0,
                                               record_counts=True)
    if deployed is None:
        return float_act, None
    chip_act = float_act if deployed is network else get_backend("reference").run(
        deployed, x, point.steps, seed=point.seed, sample0=sample0, record_counts=True)
    return float_act, chip_act


def finish(point: Point, prep: Prepared, parts: list, seconds: float) -> dict:
    """The point's row from its shards' activities (in sample order)."""
    from ..backends.activity import merge_activities
    from ..deploy.energy import estimate
    from ..deploy.pipeline import baselines, counts, host_synops

    row = dict.fromkeys(COLUMNS) | point.row()
    float_act = merge_activities([p[0] for p in parts])
    row.update(fits=True, accuracy=float_act.accuracy(prep.y), seconds=round(seconds, 3), error=None)
    if prep.fitted is None:
        base = baselines(prep.network)[prep.profile.name]
        low, high = _band(base)
        row.update(chip_accuracy=None, energy_per_inference_j=base["energy_per_inference_j"], energy_low_j=low,
                   energy_high_j=high, power_w=base["power_w"], time_per_inference_s=base["time_per_inference_s"],
                   complete=bool(base["complete"]))
        return row
    deployed, prof = prep.fitted.deployed, prep.profile
    counted, _ = counts(prep.network, prof, prep.fitted.partition, point.steps)
    chip_act = merge_activities([p[1] for p in parts])
    energy = estimate(deployed, prof, chip_act, cores=dict(counted.per_population), chips=counted.chips,
                      host_synops=host_synops(deployed, prep.x, point.steps))
    low, high = _band(energy)
    row.update(chip_accuracy=chip_act.accuracy(prep.y), energy_per_inference_j=energy["energy_per_inference_j"],
               energy_low_j=low, energy_high_j=high, power_w=energy["power_w"],
               time_per_inference_s=energy["time_per_inference_s"], synops=energy["synops"], cores=counted.cores,
               chips=counted.chips, complete=bool(energy["complete"]))
    return row


def _band(energy: dict) -> tuple:
    """(low, high) of the energy per inference where the estimate gives its band."""
    band = (energy.get("band") or {}).get("energy_per_inference_j")
    return (band[0], band[1]) if band else (None, None)


def run_point(point: Point, data_dir=None, shard_samples: int = SHARD_SAMPLES) -> dict:
    """One point, its shards one after another: its row, or a row with its error (a network that does not
    fit the chip, a simulator that refuses the network)."""
    start = time.perf_counter()
    try:
        prep = prepare(point, data_dir)
        deployed = None if prep.fitted is None else prep.fitted.deployed
        parts = [run_shard(point, prep.network, deployed, prep.x[a:b], a)
                 for a, b in shards(len(prep.x), shard_samples)]
        return finish(point, prep, parts, time.perf_counter() - start)
    except SpikeportError as exc:
        row = dict.fromkeys(COLUMNS) | point.row()
        row.update(fits=False, error=str(exc), seconds=round(time.perf_counter() - start, 3))
        return row


def run_sweep(sweep, out, *, data_dir=None, shard_samples: int = SHARD_SAMPLES, progress=None) -> list:
    """Every point of ``sweep`` not yet in ``out``/points, one after another; writes ``out``/table.csv and
    returns the rows in the sweep's order."""
    out = Path(out)
    (out / "points").mkdir(parents=True, exist_ok=True)
    rows = []
    for point in sweep.points:
        kept = out / "points" / f"{point.key}.json"
        row = read_row(kept)
        if row is None:
            row = run_point(point, data_dir, shard_samples)
            write_file(kept, lambda f: f.write((json.dumps(row, indent=1) + "\n").encode()))
        rows.append(row)
        if progress is not None:
            progress.update(1)
    write_file(out / "table.csv", lambda f: f.write(table_csv(rows).encode()))
    return rows


def read_row(path: Path):
    """A kept row, or None (absent, or damaged: the point runs again)."""
    try:
        row = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and "key" in row else None


def table_csv(rows: list) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
    return buf.getvalue()
