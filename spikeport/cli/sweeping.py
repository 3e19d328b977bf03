"""spikeport sweep."""
from __future__ import annotations

from ..units import si

from .common import progress_bar


def cmd_sweep(args) -> int:
    from ..sweeps import sweep
    from ..sweeps.report import chip_accuracy, config, pareto_front

    with progress_bar(1, "sweep", args) as bar:
        result = sweep(args.sweep, args.out, scheduler=args.scheduler, workers=args.workers, force=args.force,
                       data_dir=args.data_dir, shard_samples=args.shard_samples, progress=bar)
    s = result.summary
    where = "in this process" if s["executor"] == "serial" else f"on dask ({s['workers']} workers)"
    print(f"swept {s['points']:,} points of {args.sweep}: {s['ran']:,} run {where} in {s['wall_s']:,.1f} s, "
          f"{s['kept']:,} kept from an earlier run, {s['failed']:,} did not fit or failed (their reasons in the "
          f"table's error column)")
    done = [r for r in result.rows if not r.get("error")]
    for chip in dict.fromkeys(r["target"] for r in done):
        front = pareto_front([r for r in done if r["target"] == chip], "energy_per_inference_j")
        shown = "; ".join(f"{config(r)} T={r['steps']}: {chip_accuracy(r):.2%} at "
                          f"{si(r['energy_per_inference_j'], 'J')}" for r in front)
        print(f"  {chip}: accuracy-energy front: {shown}")
    print(f"wrote {result.out}/: table.csv, report.html, sweep.json, points/ (one file per point)")
    return 0
