"""Fuzzing every reader of a stranger's file (issue 25): a good file mutated many times (bytes
flipped, runs overwritten, cut short, for text files characters and lines), each mutant read by
the reader. A reader may load the mutant or refuse it with one SpikeportError line naming the
file; anything else (another exception, a message over several lines, a peak allocation far over
what the file's size justifies) is a finding. tests/test_fuzz_readers.py runs 1,000 mutants per
reader; ``python bench/fuzz_readers.py --cases 10000`` runs more for the record.
"""
from __future__ import annotations

import random
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


def fuzz(read, good: Path, cases: int, seed: int, text: bool = False, slack: int = 64) -> dict:
    """Read ``cases`` mutants of ``good`` with ``read(path)``. Returns {"loaded", "refused", "findings"}:
    findings are (case, what) for every mutant not handled cleanly."""
    rng = random.Random(seed)
    raw = Path(good).read_bytes()
    target = Path(good).with_name("mutant" + Path(good).suffix)
    out = {"loaded": 0, "refused": 0, "findings": []}
    tracemalloc.start()
    try:
        for i in range(cases):
            data = _text_mutant(raw, rng) if text else _bytes_mutant(raw, rng)
            target.write_bytes(data)
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    read(target)
            except SpikeportError as exc:
                msg = str(exc)
                if "\n" in msg or target.name not in msg:
                    out["findings"].append((i, f"message: {msg[:200]!r}"))
                out["refused"] += 1
            except RecursionError:
                out["findings"].append((i, "RecursionError"))
            except Exception as exc:  # noqa: BLE001 - any other exception is a finding
                out["findings"].append((i, f"{type(exc).__name__}: {str(exc)[:200]}"))
            else:
                out["loaded"] += 1
            peak = tracemalloc.get_traced_memory()[1] - base
            if peak > slack * len(data) + 4 * 2**20:
                out["findings"].append((i, f"peak {peak} bytes for a {len(data)}-byte file"))
    finally:
        tracemalloc.stop()
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
