"""Hostile inputs across every entry point (issue 25): the corpus of tests/hostile_corpus.py run as a
user runs the commands, each judged by tests/hostile_run.py (exit 2, one error line naming the
file or limit, no traceback, no hang, nothing written, peak memory under the bound).

    OMP_NUM_THREADS=1 .venv/bin/python bench/hostile.py [--only PREFIX] [--json out/bench/hostile.json]

Prints each case that is not handled cleanly and the totals per entry point: inputs tried,
handled cleanly, tracebacks, hangs, largest peak memory over the warm interpreter.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from hostile_corpus import cases, fill, make_fixtures  # noqa: E402
from hostile_run import MEMORY_BOUND_MB, run_case, warm_up  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="run only the cases whose name starts with this")
    ap.add_argument("--json", default=None)
    ap.add_argument("--fixtures", default=None, help="a directory to keep the good files in (default: temporary)")
    args = ap.parse_args()
    root = Path(args.fixtures or tempfile.mkdtemp(prefix="spikeport-hostile-"))
    fx = make_fixtures(root / "fixtures")
    warm_up()
    rows, t0 = [], time.perf_counter()
    for i, case in enumerate(c for c in cases() if c.name.startswith(args.only)):
        d = root / f"case{i:04d}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        if case.setup is not None:
            case.setup(d, fx)
        name = next((a for a in case.argv if "{f}" in a), None)
        argv = fill(case.argv, d, fx, f=case.expect[0] if name is not None and case.expect else None)
        out = run_case(argv, d)
        faults = out.faults(case.expect)
        rows.append({"name": case.name, "tags": list(case.tags), "rc": out.rc, "faults": faults,
                     "error": out.stderr.strip().splitlines()[-1][:300] if out.stderr.strip() else "",
                     "peak_mb": round(out.peak_mb, 1), "seconds": round(out.seconds, 2)})
        if faults:
            print(f"FAULT {case.name}: {'; '.join(faults)} | {rows[-1]['error'][:160]}", flush=True)
        shutil.rmtree(d, ignore_errors=True)
    by = Counter(r["tags"][0] for r in rows)
    clean = Counter(r["tags"][0] for r in rows if not r["faults"])
    print(f"\n{'entry':<10} {'tried':>6} {'clean':>6}")
    for k in by:
        print(f"{k:<10} {by[k]:>6} {clean[k]:>6}")
    summary = {"tried": len(rows), "clean": sum(not r["faults"] for r in rows),
               "tracebacks": sum("traceback" in r["faults"] for r in rows),
               "hangs": sum(any(f.startswith("hung") for f in r["faults"]) for r in rows),
               "largest_peak_mb": max((r["peak_mb"] for r in rows), default=0.0),
               "memory_bound_mb": MEMORY_BOUND_MB, "seconds": round(time.perf_counter() - t0, 1)}
    print(f"\n{summary}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"summary": summary, "cases": rows}, indent=1) + "\n")
    if not args.fixtures:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
