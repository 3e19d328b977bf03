"""Fuzzing every reader of a stranger's file (issue 25): a good file mutated many times (bytes
flipped, runs overwritten, cut short, for text files characters and lines), each mutant read by
the reader. A reader may load the mutant or refuse it with one SpikeportError line naming the
file; anything else (another exception, a message over several lines, a peak allocation far over
what the file's size justifies) is a finding. tests/test_fuzz_readers.py runs 1,000 mutants per
reader; ``python bench/fuzz_readers.py --cases 10000`` runs more for the record. Each mutant is made from
its own random stream, so one can be made again alone (``mutant(raw, seed, case)``); the cases run in a
forked worker, so a hang or a crash is a finding and the run goes on.
"""
from __future__ import annotations

import contextlib
import json
import os
import random
import select
import signal
import time
import tracemalloc
import warnings
from pathlib import Path

from spikeport.errors import SpikeportError


def _bytes_mutant(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    kind = rng.random()
    if kind < 0.45:                                   # flip a few bytes anywhere
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif kind < 0.7:                                  # overwrite a run with one value (zeros, 0xff, ...)
        start = rng.randrange(len(data))
        n = rng.randint(1, 64)
        data[start:start + n] = bytes([rng.choice((0, 0xFF, 0x7F, 0x80, 0x30))]) * len(data[start:start + n])
    elif kind < 0.85:                                 # cut short
        data = data[:rng.randrange(1, len(data))]
    else:                                             # a copied block pasted elsewhere
        a, b = sorted(rng.randrange(len(data)) for _ in range(2))
        at = rng.randrange(len(data))
        data[at:at + (b - a)] = data[a:b]
    return bytes(data)


def _text_mutant(raw: bytes, rng: random.Random) -> bytes:
    lines = raw.decode("utf-8", "replace").splitlines()
    kind = rng.random()
    i = rng.randrange(len(lines))
    if kind < 0.3:                                    # a value replaced
        if "=" in lines[i]:
            key = lines[i].split("=")[0]
            lines[i] = key + "= " + rng.choice(["-1", "0", "1e400", "nan", "inf", '"x"', "[]", "{}", "true",
                                                  "{value = -5, source = \"x\"}", "{unknown = 3}",
                                                  "{value = 1e308, source = \"x\"}", "9" * 400])
    elif kind < 0.5:                                  # a line dropped or duplicated
        if rng.random() < 0.5:
            del lines[i]
        else:
            lines.insert(i, lines[i])
    elif kind < 0.7:                                  # a character changed
        if lines[i]:
            j = rng.randrange(len(lines[i]))
            lines[i] = lines[i][:j] + rng.choice("[]{}=\"'#.,\\x0") + lines[i][j + 1:]
    else:
        return _bytes_mutant(raw, rng)
    return ("\n".join(lines) + "\n").encode()


def mutant(raw: bytes, seed: int, case: int, text: bool = False) -> bytes:
    """Mutant number ``case`` of ``raw`` (its own random stream: any case can be made again alone)."""
    rng = random.Random(f"{seed}:{case}")
    return _text_mutant(raw, rng) if text else _bytes_mutant(raw, rng)


def judge(read, target: Path, slack: int = 64) -> tuple:
    """Read ``target`` once: ("loaded" | "refused" | "finding", what found or None)."""
    size = target.stat().st_size
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    outcome, what = "loaded", None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read(target)
    except SpikeportError as exc:
        msg = str(exc)
        outcome = "refused"
        if "\n" in msg or target.name not in msg:
            outcome, what = "finding", f"message: {msg[:200]!r}"
    except RecursionError:
        outcome, what = "finding", "RecursionError"
    except Exception as exc:  # noqa: BLE001 - any other exception is a finding
        outcome, what = "finding", f"{type(exc).__name__}: {str(exc)[:200]}"
    peak = tracemalloc.get_traced_memory()[1] - base
    if peak > slack * size + 4 * 2**20:
        outcome, what = "finding", f"peak {peak} bytes for a {size}-byte file" + (f"; {what}" if what else "")
    return outcome, what


def _worker(read, raw, target, seed, text, slack, first, cases, out) -> None:
    """In a forked child: judge cases ``first`` .. ``cases`` - 1, one JSON line each on the pipe ``out``."""
    tracemalloc.start()
    for i in range(first, cases):
        target.write_bytes(mutant(raw, seed, i, text))
        outcome, what = judge(read, target, slack)
        os.write(out, (json.dumps([i, outcome, what]) + "\n").encode())


def fuzz(read, good: Path, cases: int, seed: int, text: bool = False, slack: int = 64,
         case_seconds: float = 120.0) -> dict:
    """Read ``cases`` mutants of ``good`` with ``read(path)``, in a forked worker watched case by case: a case
    that takes over ``case_seconds`` is a hang, a worker killed by a signal a crash (both findings; the next
    worker goes on from the case after). Returns {"loaded", "refused", "findings", "slowest"}: findings are
    (case, what) for every mutant not handled cleanly; slowest is (seconds, case)."""
    raw = Path(good).read_bytes()
    target = Path(good).with_name("mutant" + Path(good).suffix)
    out = {"loaded": 0, "refused": 0, "findings": [], "slowest": (0.0, -1)}
    first = 0
    while first < cases:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                os.close(r)
                _worker(read, raw, target, seed, text, slack, first, cases, w)
            except BaseException:  # noqa: BLE001 - the parent records what did not come back
                code = 3
            finally:
                os._exit(code)
        os.close(w)
        buf, started = b"", time.monotonic()
        with os.fdopen(r, "rb", buffering=0) as pipe:
            while first < cases:
                ready, _, _ = select.select([pipe], [], [], max(0.0, case_seconds - (time.monotonic() - started)))
                if not ready:
                    os.kill(pid, signal.SIGKILL)
                    out["findings"].append((first, f"hang: no answer in {case_seconds:g} s"))
                    first += 1
                    break
                chunk = pipe.read(65536)
                if not chunk:  # the worker died
                    _, status = os.waitpid(pid, 0)
                    pid = 0
                    why = f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status) else f"exit {os.WEXITSTATUS(status)}"
                    out["findings"].append((first, f"the reader killed the process ({why})"))
                    first += 1
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    i, outcome, what = json.loads(line)
                    took = time.monotonic() - started
                    out["slowest"] = max(out["slowest"], (round(took, 2), i))
                    started = time.monotonic()
                    if outcome == "finding":
                        out["findings"].append((i, what))
                    else:
                        out[outcome] += 1
                    first = i + 1
        if pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
    return out


def readers(fixtures: dict) -> dict:
    """name -> (read(path), the good file, text?)."""
    from spikeport.datasets import load_user_data
    from spikeport.hardware_profiles import load as load_profile
    from spikeport.ir import load_network
    from spikeport.ir.nir import import_nir
    from spikeport.models import load_model

    return {
        "graph": (load_network, fixtures["graph"], False),
        "nir": (lambda p: import_nir(p, 0.001, library="nir"), fixtures["nir"], False),
        "model": (load_model, fixtures["model"], False),
        "data": (lambda p: load_user_data(p, (12,), classes=4), fixtures["data"], False),
        "profile": (load_profile, fixtures["profile"], True),
    }
