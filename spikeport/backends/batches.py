"""Simulator runs in guarded batches: a simulator that crashes or hangs on one batch is reported with the batch
and its error, under a time limit per batch; the batches done are kept and a rerun of the same command resumes.

:func:`run_batches` splits the samples into batches of at most ``batch_samples`` and runs each in its own
process (``python -m spikeport.backends.batch_worker``), a new one per batch: a simulator that segfaults
(NEST, a compiled Brian2 kernel) or loops takes its process down, not the caller's, and is killed when its
batch runs over ``batch_seconds``. The process gets a private temporary directory (TMPDIR), removed after the
batch whatever happened, so the debug files a simulator leaves on a crash (Brian2's brian_debug_*.log and
brian_script_*.py) go with it.

Each finished batch is kept as an .npz of plain arrays (:func:`spikeport.backends.activity.save_activity`) in
a directory named by a digest of everything the run depends on (the network, the samples, the backend and
its options, steps, seed, batch size) under ``$XDG_CACHE_HOME/spikeport/runs`` (``SPIKEPORT_RUNS_DIR`` to
move it). A rerun with the same inputs finds those batches and runs only the rest; the directory is removed
once every batch is merged. Poisson input is the same as in one run: each batch's trains start at its first
sample (``sample0``), so the merged activity equals an unbatched run's (tests/test_batches.py).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from ..errors import SpikeportError
from ..outputs import write_file
from .activity import load_activity, merge_activities

BATCH_SAMPLES = 1000        # samples per guarded batch: a new process each costs some seconds of imports
BATCH_SECONDS = 3600.0      # the time limit of one batch (--batch-seconds)
RUNS_ENV = "SPIKEPORT_RUNS_DIR"


def runs_root() -> Path:
    """Where kept batches live: SPIKEPORT_RUNS_DIR, else $XDG_CACHE_HOME/spikeport/runs (~/.cache/...)."""
    given = os.environ.get(RUNS_ENV)
    if given:
        return Path(given)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikeport" / "runs"


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise SpikeportError(f"a guarded run passes plain values to its batches; got {type(value).__name__}")


def run_key(graph: bytes, x: np.ndarray, settings: dict) -> str:
    """The digest naming a run's directory: the graph file's bytes, the samples and the settings."""
    h = hashlib.sha256()
    h.update(graph)
    h.update(json.dumps([list(x.shape), str(x.dtype)]).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()[:32]


def check_limits(batch_samples, batch_seconds) -> tuple:
    """(samples per batch, seconds per batch) checked: one line naming the option otherwise."""
    samples = BATCH_SAMPLES if batch_samples is None else batch_samples
    seconds = BATCH_SECONDS if batch_seconds is None else batch_seconds
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise SpikeportError(f"--batch-samples must be a whole number of samples >= 1, got {samples!r}")
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        seconds = float("nan")
    if not (0 < seconds < float("inf")):
        raise SpikeportError(f"--batch-seconds must be a number of seconds > 0, got {batch_seconds!r}")
    return int(samples), seconds


def run_batches(backend: str, network, x, steps: int, *, seed: int = 0, options: dict | None = None,
                batch_samples: int | None = None, batch_seconds: float | None = None, progress=None):
    """``backends.get_backend(backend).run(network, x, steps, seed=seed, record_counts=True, **options)`` in
    guarded batches (module docstring); returns the merged Activity. A batch that fails, crashes or runs over
    its time limit raises one SpikeportError naming the backend, the batch, its samples and the error, and
    where the batches done are kept."""
    from ..ir.io import write_network

    per, limit = check_limits(batch_samples, batch_seconds)
    x = np.asarray(x)
    options = _jsonable(dict(options or {}))
    buf = io.BytesIO()
    write_network(network, buf)
    graph = buf.getvalue()
    settings = {"backend": backend, "steps": int(steps), "seed": int(seed), "options": options, "batch": per}
    where = runs_root() / run_key(graph, x, settings)
    bounds = [(a, min(a + per, len(x))) for a in range(0, len(x), per)] or [(0, 0)]
    parts, staged = [], False
    try:
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise SpikeportError(f"cannot keep the batches of a {backend} run in {where} ({exc.strerror}); set "
                             f"{RUNS_ENV} to a writable directory") from None
    for k, (a, b) in enumerate(bounds):
        done = where / f"batch-{a:09d}-{b:09d}.npz"
        part = _kept(done)
        if part is None:
            if not staged:  # the inputs of the worker, once per run
                _stage_inputs(where, graph, x, settings)
                staged = True
            try:
                part = _run_one(backend, where, done, k, len(bounds), a, b, limit, progress)
            except BaseException:
                if not any(where.glob("batch-*.npz")):  # nothing to resume: nothing left behind
                    shutil.rmtree(where, ignore_errors=True)
                raise
        elif progress is not None:
            progress.update(b - a)
        parts.append(part)
    activity = merge_activities(parts)
    shutil.rmtree(where, ignore_errors=True)
    return activity


def _kept(path: Path):
    """The Activity of a batch kept by an earlier run, or None (absent, or unreadable: run again)."""
    if not path.is_file():
        return None
    try:
        return load_activity(path)
    except Exception:  # noqa: BLE001 - a damaged batch file is only run again
        return None


def _stage_inputs(where: Path, graph: bytes, x: np.ndarray, settings: dict) -> None:
    write_file(where / "network.spk", lambda f: f.write(graph))
    write_file(where / "x.npy", lambda f: np.save(f, x, allow_pickle=False))
    write_file(where / "settings.json", lambda f: f.write(json.dumps(settings).encode()))


def _run_one(backend: str, where: Path, done: Path, k: int, n: int, a: int, b: int, limit: float, progress):
    """Run batch ``k`` of ``n`` (samples ``a`` .. ``b`` - 1) in a new process, passing on its progress; its
    Activity, or one line."""
    tmp = where / f"tmp-{a}-{b}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(mode=0o700)
    env = dict(os.environ, TMPDIR=str(tmp), TEMP=str(tmp), TMP=str(tmp))
    cmd = [sys.executable, "-m", "spikeport.backends.batch_worker", str(where), str(a), str(b), str(done)]
    what = f"{backend}: batch {k + 1} of {n} (samples {a} to {b - 1})"
    kept = sum(1 for _ in where.glob("batch-*.npz"))
    resume = (f"; {kept} batch{'es' if kept != 1 else ''} done {'are' if kept != 1 else 'is'} kept in {where}: run "
              f"the same command again to resume" if kept else "")
    reported = 0
    try:
        with open(tmp / "stderr.txt", "wb") as errors:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors, env=env,
                                    start_new_session=True)
            try:
                deadline = time.monotonic() + limit
                while True:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise SpikeportError(f"{what} did not finish in {limit:g} s (--batch-seconds){resume}")
                    if not select.select([proc.stdout], [], [], left)[0]:
                        continue
                    line = proc.stdout.readline()
                    if not line:
                        break
                    if line.startswith(b"progress ") and progress is not None:
                        step = int(line.split()[1])
                        progress.update(step)
                        reported += step
                proc.wait()
            finally:
                _kill_group(proc)  # on a timeout or an interrupt; else anything the simulator left running
                proc.stdout.close()
        err = (tmp / "stderr.txt").read_bytes()[-20000:]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name if -proc.returncode in signal.Signals._value2member_map_ \
            else str(-proc.returncode)
        raise SpikeportError(f"{what}: the simulator crashed ({name}){resume}")
    if proc.returncode != 0:
        lines = [ln for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
        why = lines[-1].removeprefix("error: ") if lines else f"exit status {proc.returncode}"
        raise SpikeportError(f"{what}: {why[:500]}{resume}")
    part = _kept(done)
    if part is None:
        raise SpikeportError(f"{what}: the batch's process ended without its result{resume}")
    if progress is not None and reported < b - a:
        progress.update(b - a - reported)
    return part


def _kill_group(proc) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
