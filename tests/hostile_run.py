"""Running one hostile input through the command line, as a user would, and judging the result.

Each case runs ``spikeport.cli.main(argv)`` in a child forked from a warm parent (torch, the
simulators and spikeport already imported), in the case's own directory, with its own TMPDIR,
stdout and stderr captured, and a time limit. What a case is judged on (issue 25):

- exit status 2 and exactly one stderr line ``error: ...`` containing the expected fragments
  (the file, the object or the limit at fault), no traceback;
- no hang (the time limit), nothing written: the case directory holds afterwards exactly the
  files it held before (no output, no staging leftover), and the private TMPDIR is empty (a
  simulator's debug files would land there; torch's compile cache ``torchinductor_<user>`` aside);
- peak memory: the child's peak resident set less its resident set at the fork (the peak,
  VmHWM, reset through /proc/self/clear_refs; where that is not possible, ``wait4``'s
  ``ru_maxrss`` less the parent's resident set), i.e. what the hostile input made spikeport
  allocate on top of an interpreter that has already imported everything.

bench/hostile.py runs the whole corpus (tests/hostile_corpus.py) and the fuzzers for the record;
tests/test_hostile.py runs it in the default tests.
"""
from __future__ import annotations

import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

MEMORY_BOUND_MB = 200      # the bound on what one hostile file may make spikeport allocate
TIME_LIMIT_S = 30          # a case running longer is a hang (every case is a few steps of a tiny network)


def warm_up() -> None:
    """Import what the commands import, so that a case's memory is what its input costs."""
    import importlib

    for name in ("torch", "spikeport.cli", "spikeport.api", "spikeport.backends.reference", "spikeport.models",
                 "spikeport.deploy.pipeline", "spikeport.ir.nir", "spikeport.hardware_profiles", "spikeport.datasets",
                 "brian2", "nengo_loihi", "spikeport.backends.brian", "spikeport.backends.loihi", "h5py"):
        try:
            importlib.import_module(name)
        except ImportError:
            pass


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def rss_mb() -> float:
    """This process's resident set now, in MB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@dataclass
class Outcome:
    rc: int | None               # None: killed at the time limit
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float               # over the parent's resident set at the fork
    leftovers: list = field(default_factory=list)   # files added or removed in the case dir, or left in TMPDIR

    @property
    def hung(self) -> bool:
        return self.rc is None

    @property
    def traceback(self) -> bool:
        return "Traceback (most recent call last)" in self.stderr

    def faults(self, expect=()) -> list:
        """What is wrong with this outcome for a hostile input (empty: handled cleanly)."""
        out = []
        lines = self.stderr.splitlines()
        if self.hung:
            out.append(f"hung (> {TIME_LIMIT_S} s)")
        elif self.rc != 2:
            out.append(f"exit {self.rc}")
        if self.traceback:
            out.append("traceback")
        if not self.hung and (len(lines) != 1 or not lines[0].startswith("error: ")):
            out.append(f"{len(lines)} stderr lines")
        msg = lines[-1] if lines else ""
        missing = [e for e in expect if e.lower() not in msg.lower()]
        if missing and not self.hung:
            out.append(f"message lacks {missing}")
        if self.leftovers:
            out.append(f"left {self.leftovers[:3]}")
        if self.peak_mb > MEMORY_BOUND_MB:
            out.append(f"peak {self.peak_mb:.0f} MB")
        return out


def _snapshot(d: Path) -> dict:
    out = {}
    for p in sorted(d.rglob("*")):
        try:
            st = p.lstat()
        except OSError:
            continue
        out[str(p.relative_to(d))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


def run_case(argv: list, case_dir: Path, time_limit: float = TIME_LIMIT_S) -> Outcome:
    """Run ``spikeport ARGV`` in a forked child inside ``case_dir`` (see the module docstring)."""
    case_dir = Path(case_dir)
    tmp = case_dir.parent / f"{case_dir.name}.tmpdir"
    tmp.mkdir(exist_ok=True)
    before = _snapshot(case_dir)
    out_path, err_path = tmp.parent / f"{case_dir.name}.out", tmp.parent / f"{case_dir.name}.err"
    mem_path = tmp.parent / f"{case_dir.name}.mem"
    sys.stdout.flush()
    sys.stderr.flush()
    base = rss_mb()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:                                             # the child: never returns
        rc = 1
        start = None
        try:
            # the child inherits the parent's peak (VmHWM): reset it to what is resident now, so that the
            # peak read at exit is this case's own
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            start = _status_mb("VmRSS")
        except OSError:
            pass
        try:
            os.chdir(case_dir)
            os.environ["TMPDIR"] = str(tmp)
            import tempfile
            tempfile.tempdir = None
            fo, fe = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), \
                os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fo, 1)
            os.dup2(fe, 2)
            sys.stdout = os.fdopen(1, "w", buffering=1)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)
            signal.alarm(int(time_limit) + 5)                   # a second guard if the parent is gone
            from spikeport.cli import main
            rc = main([str(a) for a in argv])
            rc = 0 if rc is None else int(rc)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:                                    # what Python would print: a traceback
            traceback.print_exc()
            rc = 1
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
                if start is not None:
                    with open(mem_path, "w") as f:
                        f.write(str(_status_mb("VmHWM") - start))
            finally:
                os._exit(rc)
    rc, usage = None, None
    while True:
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            rc = os.waitstatus_to_exitcode(status)
            if rc < 0:                                          # killed by a signal (the child's own alarm)
                rc = None
            break
        if time.perf_counter() - t0 > time_limit:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            break
        time.sleep(0.005)
    seconds = time.perf_counter() - t0
    try:
        peak = float(mem_path.read_text())                   # the child's own peak over its start
        mem_path.unlink()
    except (OSError, ValueError):                            # killed, or no clear_refs: the kernel's account
        peak = usage.ru_maxrss / 1024 - base if usage is not None else 0.0
    after = _snapshot(case_dir)
    changed = sorted(set(after) ^ set(before)) + sorted(k for k in set(after) & set(before)
                                                          if after[k] != before[k] and not Path(case_dir, k).is_dir())
    # torch's compile cache (torch._dynamo creates TMPDIR/torchinductor_<user> when imported) is torch's
    # own, kept between runs by design; anything else left in TMPDIR is a leftover
    left = [f"TMPDIR/{p.name}" for p in tmp.iterdir() if not p.name.startswith("torchinductor_")]
    read = (lambda p: p.read_text(errors="replace") if p.exists() else "")
    outcome = Outcome(rc=rc, stdout=read(out_path), stderr=read(err_path), seconds=seconds, peak_mb=max(peak, 0.0),
                      leftovers=changed + left)
    for p in (out_path, err_path):
        p.unlink(missing_ok=True)
    import shutil
    shutil.rmtree(tmp, ignore_errors=True)
    return outcome
