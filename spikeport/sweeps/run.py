"""Running a sweep (issue 26): its points not yet kept in the output directory, as the tasks of
:mod:`.plan`, on an executor (in this process, or dask.distributed: :mod:`.cluster`), each point's row kept as
it arrives; then the table, the summary and the report.

A point is measured as ``spikeport power`` measures one chip: the float network on the point's backend
(accuracy), the network in the chip's formats on the reference executor (accuracy after quantization, and
the activity the energy is priced from), the chip's cores and chips from the partitioner, energy per
inference with its band, power, time per inference and synaptic operations. A conventional target (cpu,
gpu) prices the same network as an ANN (accuracy: the float network's). A network that does not fit the
chip, or a model that does not convert, is a row with its reason.

The output directory ``DIR``:

- ``points/<key>.json``: one row per point, written whole (:mod:`spikeport.outputs`) as soon as the point
  is done; a sweep run again skips the points already there (the key is a digest of the point's inputs);
- ``table.csv``: every point of the sweep in the sweep file's order;
- ``sweep.json``: the run (executor, workers, points kept and run, wall and compute time);
- ``report.html``: the Pareto fronts per chip and the table (:mod:`.report`).

A point whose task failed for a reason outside spikeport's checks (a bug, a worker lost more often than
dask allows) is a row with its error but is not kept: a run again retries it.
"""
from __future__ import annotations

import csv
import io
import json
import os
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import NamedTuple

from ..errors import SpikeportError
from ..outputs import write_file
from .plan import COLUMNS, SHARD_SAMPLES, Failed, Ref, plan

__all__ = ["COLUMNS", "SHARD_SAMPLES", "Serial", "SweepResult", "run_sweep", "read_row", "sweep", "sweep_dir",
           "table_csv"]
FILES = {"points", "table.csv", "sweep.json", "report.html"}


class SweepResult(NamedTuple):
    rows: list
    summary: dict
    out: Path


class Serial:
    """The tasks one after another in this process (``--workers 0``); a value is dropped once no task
    still needs it."""

    name = "serial"

    def __init__(self):
        self.workers = 1
        self.compute_s = 0.0

    def run(self, tasks: list, rows: dict, on_row) -> None:
        need = Counter(key for t in tasks for key in t.refs())
        point_of = {task_key: point_key for point_key, task_key in rows.items()}
        values = {}
        for t in tasks:
            start = time.perf_counter()
            try:
                value = t.func(*[values[a.key] if isinstance(a, Ref) else a for a in t.args])
            except Exception as exc:  # a bug, not the user's input: the point's row says so, the sweep goes on
                value = Failed(internal(exc), lasting=False)
            self.compute_s += time.perf_counter() - start
            for key in t.refs():
                need[key] -= 1
                if not need[key]:
                    del values[key]
            if t.key in point_of:
                on_row(point_of[t.key], value)
            else:
                values[t.key] = value


def internal(exc: BaseException) -> str:
    """The error of a task that failed for a reason outside spikeport's checks, with where it was raised."""
    where = traceback.extract_tb(exc.__traceback__)[-1:] if exc.__traceback__ else []
    at = f" at {Path(where[0].filename).name}:{where[0].lineno}" if where else ""
    return f"internal error: {type(exc).__name__}: {str(exc)[:300]}{at}"


def sweep(sweep_file, out, *, scheduler: str | None = None, workers: int | None = None, force: bool = False,
          data_dir=None, shard_samples: int = SHARD_SAMPLES, progress=None) -> SweepResult:
    """``spikeport sweep``: the points of ``sweep_file`` not yet kept in ``out``, on dask.distributed (a local
    cluster of ``workers`` processes, default one per core, or the cluster of ``scheduler``) or, with
    ``workers=0``, in this process; ``force``: start over (``out``'s kept points discarded)."""
    from .spec import load_sweep

    if isinstance(shard_samples, bool) or not isinstance(shard_samples, int) or shard_samples < 1:
        raise SpikeportError(f"--shard-samples must be a whole number >= 1, got {shard_samples!r}")
    spec = load_sweep(sweep_file)
    if workers == 0 and scheduler is None:
        executor = Serial()
    else:
        from .cluster import Dask

        executor = Dask(scheduler, workers)
    return run_sweep(spec, sweep_dir(out, force), executor=executor, data_dir=data_dir, shard_samples=shard_samples,
                     progress=progress)


def sweep_dir(out, force: bool = False) -> Path:
    """The sweep's output directory, checked before any work: a new or empty directory, or an earlier sweep's
    (only a sweep's files in it), which the sweep goes on from; ``force``: its kept points discarded first.
    Anything else is refused with one line."""
    out = Path(out)
    if not out.exists() and not out.is_symlink():
        try:
            out.mkdir()
        except OSError as exc:
            raise SpikeportError(f"--out {out}: cannot create ({exc.strerror or exc})") from None
        return out
    if not out.is_dir():
        raise SpikeportError(f"--out {out}: exists and is not a directory")
    try:
        names = {e.name for e in out.iterdir() if not e.name.startswith(".")}  # staging entries: .NAME...
        points = out / "points"
        ours = names <= FILES and (not points.exists() or (points.is_dir() and all(
            e.suffix == ".json" or e.name.startswith(".") for e in points.iterdir())))
    except OSError as exc:
        raise SpikeportError(f"--out {out}: cannot read ({exc.strerror or exc})") from None
    if names and not ours:
        raise SpikeportError(f"--out {out}: not empty and not an earlier sweep's directory (which holds only "
                             f"{', '.join(sorted(FILES))}); name a new or empty directory")
    if force and points.is_dir():
        for e in points.iterdir():
            if e.suffix == ".json":
                e.unlink()
    return out


def run_sweep(sweep, out, *, executor=None, data_dir=None, shard_samples: int = SHARD_SAMPLES, progress=None,
              report: bool = True) -> SweepResult:
    """Every point of ``sweep`` not yet kept in ``out``, on ``executor`` (default: :class:`Serial`); writes
    ``out``/table.csv, sweep.json and (``report``) report.html and returns the rows in the sweep's order."""
    out = Path(out)
    executor = executor or Serial()
    (out / "points").mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    by_key = {p.key: p for p in sweep.points}
    rows = {k: r for k, r in ((p.key, read_row(out / "points" / f"{p.key}.json")) for p in sweep.points) if r}
    todo = [p for p in sweep.points if p.key not in rows]
    kept, failed = len(rows), 0
    if progress is not None:
        progress.set_total(len(sweep.points), done=kept)

    def on_row(key: str, value) -> None:
        nonlocal failed
        row = value if isinstance(value, dict) else error_row(by_key[key], value)
        retry = row.pop("retry", False)
        if not retry:
            write_file(out / "points" / f"{key}.json", lambda f: f.write((json.dumps(row, indent=1) + "\n").encode()))
        failed += bool(row.get("error"))
        rows[key] = row
        if progress is not None:
            progress.update(1)

    if todo:
        tasks, row_tasks = plan(todo, data_dir=data_dir, shard_samples=shard_samples)
        executor.run(tasks, row_tasks, on_row)
    else:
        tasks = []
    ordered = [rows[p.key] for p in sweep.points]
    wall = time.perf_counter() - start
    summary = {"spikeport": _version(), "sweep": str(sweep.path), "points": len(sweep.points), "kept": kept,
               "ran": len(todo), "failed": failed, "tasks": len(tasks), "executor": executor.name,
               "workers": executor.workers, "wall_s": round(wall, 3), "compute_s": round(executor.compute_s, 3),
               "overhead_per_point_s": round(max(0.0, wall * executor.workers - executor.compute_s) / len(todo), 4)
               if todo else None, "shard_samples": shard_samples}
    write_file(out / "table.csv", lambda f: f.write(table_csv(ordered).encode()))
    write_file(out / "sweep.json", lambda f: f.write((json.dumps(summary, indent=1) + "\n").encode()))
    if report:
        from .report import sweep_html

        html = sweep_html(ordered, summary)
        write_file(out / "report.html", lambda f: f.write(html.encode()))
    return SweepResult(ordered, summary, out)


def error_row(point, value) -> dict:
    """The row of a point whose row task did not return one: ``value`` a :class:`Failed` or an exception."""
    row = dict.fromkeys(COLUMNS) | {k: v for k, v in point.row().items() if k in COLUMNS}
    lasting = isinstance(value, Failed) and value.lasting
    error = value.error if isinstance(value, Failed) else (str(value) if isinstance(value, SpikeportError)
                                                           else internal(value))
    row.update(fits=False, error=error, retry=not lasting)
    return row


def _version() -> str:
    from .. import __version__
    return __version__


def read_row(path: Path):
    """A kept row, or None (absent, or damaged: the point runs again)."""
    try:
        if os.path.getsize(path) > 1 << 20:
            return None
        row = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return row if isinstance(row, dict) and row.get("key") == Path(path).stem else None


def table_csv(rows: list) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for row in rows:
        w.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in COLUMNS})
    return buf.getvalue()
