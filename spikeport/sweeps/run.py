"""Running a sweep's points (issue 26): each point's samples in shards, the shards merged exactly, one row per
point, the rows kept in the output directory by the point's key.

A point is measured as ``spikeport power`` measures one chip: the float network on the reference executor
(accuracy), the network in the chip's formats (accuracy after quantization, and the activity the energy is
priced from), the chip's cores and chips from the partitioner, energy per inference with its band, power,
time per inference and synaptic operations. A conventional target (cpu, gpu) prices the same network as an
ANN (accuracy: the float network's). A network that does not fit the chip is a row with its reason.

Shards: :func:`run_shard` runs samples ``a`` .. ``b`` - 1 of a point (Poisson trains from sample ``a`` on, as in
one run) and returns the two activities; :func:`finish` merges the shards' activities sample by sample
(counts, never averages of averages: :func:`spikeport.backends.activity.merge_activities`) and prices the
merged run. Both are plain functions of plain arguments, so any executor can run them: :func:`run_sweep`
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


def shards(point: Point, total: int, size: int = SHARD_SAMPLES) -> list:
    return [(a, min(a + size, total)) for a in range(0, total, size)]


def run_shard(point: Point, a: int, b: int, data_dir=None) -> tuple:
    """(float activity, chip activity or None) of samples ``a`` .. ``b`` - 1 of ``point``."""
    from ..backends import get_backend
    from ..hardware_profiles import load as load_profile

    network = network_of(point, data_dir)
    x, _ = samples_of(point, data_dir)
    x = x[a:b]
    prof = load_profile(point.target)
    run = get_backend(point.backend).run
    float_act = run(network, x, point.steps, seed=point.seed, sample0=a, record_counts=True)
    if not prof.neuromorphic:
        return float_act, None
    from ..deploy.pipeline import fit

    deployed = fit(network, prof).deployed
    chip_act = float_act if deployed is network else get_backend("reference").run(
        deployed, x, point.steps, seed=point.seed, sample0=a, record_counts=True)
    return float_act, chip_act


def finish(point: Point, parts: list, seconds: float, data_dir=None) -> dict:
    """The point's row from its shards' activities (in sample order)."""
    from ..backends.activity import merge_activities
    from ..deploy.pipeline import baselines, counts, fit, host_synops
    from ..hardware_profiles import load as load_profile

    row = dict.fromkeys(COLUMNS) | point.row()
    network = network_of(point, data_dir)
    x, y = samples_of(point, data_dir)
    float_act = merge_activities([p[0] for p in parts])
    row.update(fits=True, accuracy=float_act.accuracy(y), seconds=round(seconds, 3), error=None)
    prof = load_profile(point.target)
    if not prof.neuromorphic:
        base = baselines(network)[prof.name]
        low, high = _band(base)
        row.update(chip_accuracy=None, energy_per_inference_j=base["energy_per_inference_j"], energy_low_j=low,
                   energy_high_j=high, power_w=base["power_w"], time_per_inference_s=base["time_per_inference_s"],
                   complete=bool(base["complete"]))
        return row
    from ..deploy.energy import estimate

    fitted = fit(network, prof)
    counted, _ = counts(network, prof, fitted.partition, point.steps)
    chip_act = merge_activities([p[1] for p in parts])
    energy = estimate(fitted.deployed, prof, chip_act, cores=dict(counted.per_population), chips=counted.chips,
                      host_synops=host_synops(fitted.deployed, x, point.steps))
    low, high = _band(energy)
    row.update(chip_accuracy=chip_act.accuracy(y), energy_per_inference_j=energy["energy_per_inference_j"],
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
        x, _ = samples_of(point, data_dir)
        parts = [run_shard(point, a, b, data_dir) for a, b in shards(point, len(x), shard_samples)]
        return finish(point, parts, time.perf_counter() - start, data_dir)
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
