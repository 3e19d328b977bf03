"""Fuzzing every reader of a stranger's file (issue 25) with hypothesis: a good file mutated many times, each
mutant read by the reader. A reader may load the mutant or refuse it with one SpikeportError line naming the
file; anything else (another exception, a message over several lines or not naming the file, a peak
allocation far over what the file's size justifies, a hang, a crash) is a finding.

The mutations know each format as well as its bytes:
- bytes: a few bytes set anywhere, a run overwritten, the file cut short, a block pasted elsewhere;
- zip containers (graph files, npz data): one member mutated and the zip written again with valid CRCs, so
  the mutant reaches the reader's parser: the graph's JSON header (a value replaced by a hostile one, a key
  dropped, a list item repeated), a .npy header (shape, dtype, order) or its data;
- model files: one field of the saved dictionary (the spec's or the meta's JSON, a tensor of another shape,
  type or value), saved again by torch;
- NIR files: one dataset replaced (another shape, type, NaN or huge values, a string) through h5py;
- profiles and sweep files: a TOML value, line or character.

tests/test_fuzz_readers.py runs 1,000 cases per reader; ``python bench/fuzz_readers.py --cases 10000`` runs
more for the record. Each reader's cases run in a forked worker watched case by case: a case over
``case_seconds`` is a hang (the worker is killed and a new one goes on with the next seed), a worker killed
by a signal a crash. Workers are fresh interpreters (a forked one would inherit the caller's thread pools:
torch's OpenMP pool hangs in a child forked after it ran). The mutant of every finding is kept beside the good file (``finding-N.EXT``).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import select
import signal
import subprocess
import sys
import time
import tracemalloc
import warnings
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from spikeport.errors import SpikeportError

HOSTILE = [-1, 0, 1, 2, 255, 2**31, 2**63, 10**30, 10**400, 1e308, -1e308, float("nan"), float("inf"), 0.5, "",
           "x", "../../x", "a" * 5000, None, True, [], {}, [0], [1e308], [-1, -1], [2**40, 2**40], {"x": 1},
           [[[[[[[[[[[]]]]]]]]]]]]
NPY_EDITS = [("'shape': (", "'shape': (-1, "), ("'shape': (", "'shape': (4294967296, "), ("'shape': (", "'shape': (0, "),
             ("<f4", "<f8"), ("<f4", "|O"), ("<f4", "<c8"), ("<f4", "<U4"), ("<i8", "<f4"), ("<i8", "|O"),
             ("'fortran_order': False", "'fortran_order': True"), ("'descr'", "'d'"), ("{", "[")]
TOML_VALUES = ["-1", "0", "1", "1e400", "nan", "inf", '"x"', "[]", "{}", "true", '{value = -5, source = "x"}',
               "{unknown = 3}", '{value = 1e308, source = "x"}', "9" * 400, "[[[[[[[[1]]]]]]]]"]


# ----------------------------------------------------------------------------- mutations

@st.composite
def byte_mutant(draw, raw: bytes) -> bytes:
    data = bytearray(raw)
    n = len(data)
    how = draw(st.sampled_from(["set", "run", "cut", "paste"]))
    if how == "set":
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
    elif how == "run":
        start, length = draw(st.integers(0, n - 1)), draw(st.integers(1, 64))
        value = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80, 0x30]))
        data[start:start + length] = bytes([value]) * len(data[start:start + length])
    elif how == "cut":
        data = data[:draw(st.integers(0, n - 1))]
    else:
        a, b, at = draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))
        a, b = min(a, b), max(a, b)
        data[at:at + (b - a)] = data[a:b]
    return bytes(data)


def _paths(obj, prefix=()):
    """Every (path, value) inside a JSON value, containers included."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def json_mutant(draw, text: str) -> str:
    obj = json.loads(text)
    paths = [p for p, _ in _paths(obj) if p]
    path = draw(st.sampled_from(paths))
    holder = obj
    for key in path[:-1]:
        holder = holder[key]
    key = path[-1]
    how = draw(st.sampled_from(["replace", "replace", "replace", "drop", "repeat"]))
    if how == "drop":
        del holder[key]
    elif how == "repeat" and isinstance(holder, list):
        holder.insert(key, holder[key])
    else:
        holder[key] = draw(st.sampled_from(HOSTILE))
    return json.dumps(obj)


def _rezip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@st.composite
def npy_mutant(draw, raw: bytes) -> bytes:
    header_end = raw.index(b"\n") + 1
    header, body = raw[:header_end].decode("latin1"), raw[header_end:]
    if draw(st.booleans()):
        old, new = draw(st.sampled_from([e for e in NPY_EDITS if e[0] in header] or NPY_EDITS[:1]))
        edited = header.replace(old, new, 1).rstrip("\n")
        pad = -(len(edited) + 1) % 64
        return (edited + " " * pad + "\n").encode("latin1") + body
    return draw(byte_mutant(raw))


@st.composite
def zip_mutant(draw, raw: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        members = {name: z.read(name) for name in z.namelist()}
    name = draw(st.sampled_from(sorted(members)))
    data = members[name]
    if name.endswith(".json"):
        members[name] = draw(json_mutant(data.decode())).encode()
    elif name.endswith(".npy"):
        members[name] = draw(npy_mutant(data))
    else:
        members[name] = draw(byte_mutant(data))
    if draw(st.integers(0, 9)) == 0:  # now and then a member dropped or a stray one added
        if draw(st.booleans()) and len(members) > 1:
            del members[name]
        else:
            members[draw(st.sampled_from(["../../x.npy", "arrays/99.npy", "x/", "spikeport.json.bak"]))] = data
    return _rezip(members)


@st.composite
def text_mutant(draw, raw: bytes) -> bytes:
    lines = raw.decode("utf-8", "replace").splitlines()
    i = draw(st.integers(0, len(lines) - 1))
    how = draw(st.sampled_from(["value", "drop", "repeat", "char", "bytes"]))
    if how == "bytes":
        return draw(byte_mutant(raw))
    if how == "value" and "=" in lines[i]:
        lines[i] = lines[i].split("=")[0] + "= " + draw(st.sampled_from(TOML_VALUES))
    elif how == "drop":
        del lines[i]
    elif how == "repeat":
        lines.insert(i, lines[i])
    elif lines[i]:
        j = draw(st.integers(0, len(lines[i]) - 1))
        lines[i] = lines[i][:j] + draw(st.sampled_from(list("[]{}=\"'#.,\\0"))) + lines[i][j + 1:]
    return ("\n".join(lines) + "\n").encode()


def _hostile_tensor(draw, torch, like):
    how = draw(st.sampled_from(["shape", "dtype", "nan", "huge", "empty", "scalar"]))
    if how == "shape":
        return torch.zeros(tuple(s + 1 for s in like.shape) or (2,))
    if how == "dtype":
        return like.to(draw(st.sampled_from([torch.float64, torch.int64, torch.bool, torch.float16, torch.complex64])))
    if how == "nan":
        return torch.full_like(like, draw(st.sampled_from([float("nan"), float("inf"), -float("inf")])))
    if how == "huge":
        return torch.full_like(like, 3e38)
    if how == "empty":
        return torch.zeros((0,) + tuple(like.shape[1:]))
    return torch.tensor(1.0)


@st.composite
def model_mutant(draw, raw: bytes) -> bytes:
    import torch

    payload = torch.load(io.BytesIO(raw), weights_only=True)
    field = draw(st.sampled_from(["spec", "meta", "state_dict", "state_dict", "format", "version", "bytes", "zip"]))
    if field == "bytes":
        return draw(byte_mutant(raw))
    if field == "zip":
        return draw(zip_mutant(raw))
    if field in ("spec", "meta"):
        payload[field] = draw(json_mutant(payload[field]))
    elif field == "state_dict":
        state = payload["state_dict"]
        key = draw(st.sampled_from(sorted(state)))
        if draw(st.integers(0, 4)) == 0:
            del state[key]
        else:
            state[key] = _hostile_tensor(draw, torch, state[key])
    else:
        payload[field] = draw(st.sampled_from(HOSTILE[:20]))
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


@st.composite
def nir_mutant(draw, raw: bytes) -> bytes:
    if draw(st.integers(0, 2)) == 0:
        return draw(byte_mutant(raw))
    import h5py
    import numpy as np

    buf = io.BytesIO(raw)
    with h5py.File(buf, "r+") as f:
        names = []
        f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        name = draw(st.sampled_from(sorted(names)))
        old = f[name]
        shape, dtype = old.shape, old.dtype
        del f[name]
        how = draw(st.sampled_from(["shape", "nan", "huge", "string", "scalar", "empty", "int", "drop"]))
        if how == "shape":
            f[name] = np.zeros(tuple(s + 1 for s in shape) or (3,), dtype="f4")
        elif how in ("nan", "huge"):
            value = draw(st.sampled_from([np.nan, np.inf])) if how == "nan" else 3e38
            f[name] = np.full(shape, value, dtype="f8" if dtype.kind not in "fiu" else dtype if dtype.kind == "f" else "f8")
        elif how == "string":
            f[name] = draw(st.sampled_from(["NIRGraph", "Conv1d", "x", "", "LIF"]))
        elif how == "scalar":
            f[name] = np.float64(draw(st.sampled_from([-1.0, 0.0, 1e308, 2.0**40])))
        elif how == "empty":
            f[name] = np.zeros((0,), dtype="f4")
        elif how == "int":
            f[name] = np.full(shape or (), -1, dtype="i8")
    return buf.getvalue()


MUTANTS = {"bytes": byte_mutant, "zip": lambda raw: st.one_of(byte_mutant(raw), zip_mutant(raw), zip_mutant(raw)),
           "model": model_mutant, "nir": nir_mutant, "text": text_mutant}


# ----------------------------------------------------------------------------- judging and running

def judge(read, target: Path, bound: tuple = (64, 4 * 2**20)) -> tuple:
    """Read ``target`` once: ("loaded" | "refused" | "finding", what was found or None); ``bound``: (factor,
    bytes): the peak allocation may be at most factor x the file's size + bytes."""
    size = target.stat().st_size
    outcome, what = "loaded", None
    tracemalloc.start()  # only around the read: tracing slows every allocation, hypothesis's too
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            read(target)
    except SpikeportError as exc:
        msg = str(exc)
        outcome = "refused"
        if "\n" in msg or target.name not in msg:
            outcome, what = "finding", f"message: {msg[:300]!r}"
    except RecursionError:
        outcome, what = "finding", "RecursionError"
    except Exception as exc:  # noqa: BLE001 - any other exception is a finding
        outcome, what = "finding", f"{type(exc).__name__}: {str(exc)[:300]}"
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    factor, base = bound
    if peak > factor * size + base:
        outcome, what = "finding", f"peak {peak:,} bytes for a {size:,}-byte file" + (f"; {what}" if what else "")
    return outcome, what


def _worker(name: str, good: Path, cases: int, seed: int) -> None:
    """The worker process: ``cases`` hypothesis examples of reader ``name``, one JSON line each on stdout."""
    read, kind = reader(name), KINDS[name]
    raw = good.read_bytes()
    target = good.with_name("mutant" + good.suffix)
    count = [0]

    @hypothesis_seed(seed)
    @settings(max_examples=cases, database=None, deadline=None, phases=[Phase.generate], derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(MUTANTS[kind](raw))
    def case(data):
        count[0] += 1
        target.write_bytes(data)
        outcome, what = judge(read, target, BOUNDS.get(name, (64, 4 * 2**20)))
        if outcome == "finding":
            target.with_name(f"finding-{seed}-{count[0]}{target.suffix}").write_bytes(data)
        print(json.dumps([outcome, what]), flush=True)

    case()


def fuzz(name: str, good: Path, cases: int, seed: int, case_seconds: float = 120.0) -> dict:
    """Read ``cases`` mutants of ``good`` with reader ``name`` (:data:`KINDS`), in a worker process (a fresh
    interpreter: a forked one would inherit the caller's thread pools) watched case by case. Returns
    {"loaded", "refused", "findings", "slowest", "seconds"}: findings are (case, what) for every mutant not
    handled cleanly; slowest is (seconds, case)."""
    good = Path(good)
    target = good.with_name("mutant" + good.suffix)
    out = {"loaded": 0, "refused": 0, "findings": [], "slowest": (0.0, -1)}
    done, start_all = 0, time.monotonic()
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    while done < cases:
        proc = subprocess.Popen([sys.executable, __file__, name, str(good), str(cases - done), str(seed + done)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env,
                                start_new_session=True)
        buf, started, before, limit = b"", time.monotonic(), done, case_seconds + 60  # the first case: imports too
        fd = proc.stdout.fileno()
        try:
            while done < cases:
                ready, _, _ = select.select([fd], [], [], max(0.0, limit - (time.monotonic() - started)))
                if not ready:
                    os.killpg(proc.pid, signal.SIGKILL)
                    with contextlib.suppress(OSError):
                        target.replace(target.with_name(f"finding-hang-{done}{target.suffix}"))
                    out["findings"].append((done, f"hang: no answer in {limit:g} s"))
                    done += 1
                    break
                chunk = os.read(fd, 65536)
                if not chunk:  # the worker ended: killed, or hypothesis gave fewer examples than asked
                    code = proc.wait()
                    if code:
                        err = proc.stderr.read().decode("utf-8", "replace").strip().splitlines()
                        why = f"signal {-code}" if code < 0 else f"exit {code}: {err[-1] if err else ''}"
                        out["findings"].append((done, f"the worker died ({why})"))
                        done += 1
                    elif done == before:
                        raise RuntimeError("hypothesis generated no example")
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    outcome, what = json.loads(line)
                    took = time.monotonic() - started
                    out["slowest"] = max(out["slowest"], (round(took, 3), done))
                    started, limit = time.monotonic(), case_seconds
                    if outcome == "finding":
                        out["findings"].append((done, what))
                    else:
                        out[outcome] += 1
                    done += 1
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            proc.stdout.close()
            proc.stderr.close()
    out["seconds"] = round(time.monotonic() - start_all, 1)
    return out


KINDS = {"graph": "zip", "graph-conv": "zip", "nir": "nir", "model": "model", "data": "zip", "profile": "text",
         "sweep": "text"}
# the peak allocation a mutant may cause: factor x its size + bytes (a graph's JSON objects and array copies:
# its own bytes a few times over; NIR and torch files go through h5py and torch, which allocate more)
BOUNDS = {"graph": (20, 2**20), "graph-conv": (20, 2**20)}


def reader(name: str):
    """The reader a user's file of kind ``name`` meets."""
    if name in ("graph", "graph-conv"):
        from spikeport.ir import load_network
        return load_network
    if name == "nir":
        from spikeport.ir.nir import import_nir
        return lambda p: import_nir(p, 0.001, library="nir")
    if name == "model":
        from spikeport.models import load_model
        return load_model
    if name == "data":
        from spikeport.datasets import load_user_data
        return lambda p: load_user_data(p, (12,), classes=4)
    if name == "sweep":
        from spikeport.sweeps import load_sweep
        return load_sweep
    from spikeport.hardware_profiles import load as load_profile
    return load_profile


def readers(fixtures: dict) -> dict:
    """name -> the good file of that reader in ``fixtures`` (tests/hostile_corpus.make_fixtures)."""
    return {name: fixtures[name] for name in KINDS}


if __name__ == "__main__":
    _worker(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
