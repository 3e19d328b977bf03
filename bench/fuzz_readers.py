"""Fuzz every reader of a stranger's file (issue 25): graph, NIR, model, user data, profile.

    OMP_NUM_THREADS=1 .venv/bin/python bench/fuzz_readers.py [--cases 10000] [--seed 1] [--json FILE]

Per reader: mutants loaded, refused in one line naming the file, and findings (any other exception,
a message over several lines or not naming the file, a peak allocation over the reader's bound
(fuzz_readers.BOUNDS: 20x the file's size + 1 MB for graph files, 64x + 4 MB for the others), a hang,
a crash); tests/fuzz_readers.py has the mutations (hypothesis strategies that know each format). --keep keeps the working directory (the mutants of the findings).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fuzz_readers import fuzz, readers  # noqa: E402
from hostile_corpus import make_fixtures  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--only", default=None, help="one reader: graph, nir, model, data or profile")
    ap.add_argument("--case-seconds", type=float, default=120.0, help="a case taking longer is a hang")
    ap.add_argument("--json", default=None)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="spikeport-fuzz-"))
    fx = make_fixtures(root / "fixtures")
    rows = {}
    for name, good in readers(fx).items():
        if args.only and name != args.only:
            continue
        d = root / name
        d.mkdir()
        g = d / Path(good).name
        shutil.copy(good, g)
        r = fuzz(name, g, args.cases, args.seed, case_seconds=args.case_seconds)
        rows[name] = {"cases": args.cases, "loaded": r["loaded"], "refused": r["refused"],
                      "findings": len(r["findings"]), "first_findings": r["findings"][:10],
                      "slowest_case_s": r["slowest"][0], "slowest_case": r["slowest"][1],
                      "seconds": r["seconds"]}
        print(f"{name:<8} {args.cases} cases: {r['loaded']} loaded, {r['refused']} refused, "
              f"{len(r['findings'])} findings ({rows[name]['seconds']} s, slowest case {r['slowest'][0]} s) "
              f"{r['findings'][:3]}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
