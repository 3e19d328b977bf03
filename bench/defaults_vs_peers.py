"""A plain `spikeport convert` against the peers' defaults on the same LeNet (issue 22's bar).

    .venv/bin/python bench/defaults_vs_peers.py [--peers out/bench/peers.json]
        [--ours out/bench/table-lenet-mnist.json] [--steps 4,8,16,32]

Reads the peers' run (bench/peers/run_peers.py) and spikeport's conversion table
(bench/conversion_table.py, which must hold the ``default`` config: exactly what the plain
command line does), and prints, per T, spikeport's default beside each peer's default
(SpikingJelly: RateCodingRecipe's default mode "max"; sinabs: normalize_weights' default
percentile 99, then from_model) and beside every peer configuration that was run. Exit
status 1 when the default is below a peer's default at any T: `make bench-peers` fails then.
Both readouts of spikeport are shown; the bar is set with spikeport's own (membrane ties),
each peer with its own example's readout.
"""
import argparse
import json
import sys
from pathlib import Path

PEER_DEFAULTS = {"spikingjelly": "max", "sinabs": "p99"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", default="out/bench/peers.json")
    ap.add_argument("--ours", default="out/bench/table-lenet-mnist.json")
    ap.add_argument("--steps", default="4,8,16,32")
    args = ap.parse_args()
    steps = [s.strip() for s in args.steps.split(",")]
    peers = json.loads(Path(args.peers).read_text())
    ours = json.loads(Path(args.ours).read_text())
    rows = [r for r in ours["rows"] if str(r["norm"]).startswith("default")]
    if not rows:
        sys.exit(f"{args.ours}: no 'default' config; run bench/conversion_table.py with --configs default,...")
    mine = rows[0]
    missing = [t for t in steps if t not in {str(k) for k in mine["accuracy"]}]
    if missing:
        sys.exit(f"{args.ours}: the default config has no T={', '.join(missing)}")
    acc = {str(k): v for k, v in mine["accuracy"].items()}
    acc_index = {str(k): v for k, v in mine["accuracy_ties_to_index"].items()}
    columns = []  # (label, {T: accuracy}, is a peer's default)
    for peer, configs in ((p, peers.get(p, {})) for p in ("spikingjelly", "sinabs")):
        for config, entry in configs.items():
            if "accuracy_by_T" not in entry:
                continue
            default = PEER_DEFAULTS[peer] == config
            columns.append((f"{peer} {entry.get('version', '')} {config}" + (" (default)" if default else ""),
                            {str(k): v for k, v in entry["accuracy_by_T"].items()}, default))
    defaults = [c for c in columns if c[2]]
    if len(defaults) != len(PEER_DEFAULTS):
        sys.exit(f"{args.peers}: the run lacks a peer default ({', '.join(f'{p} {c}' for p, c in PEER_DEFAULTS.items())})")
    print(f"LeNet {ours['model']}, {ours['samples']} test images of {ours['dataset']}, ANN {ours['ann_accuracy']:.2%}; "
          f"spikeport default: {mine['norm']}, v(0) {mine['v_init']}")
    head = ["T", "spikeport default (membrane ties)", "(index ties)"] + [c[0] for c in columns] + \
           ["default - best peer default (pp)", "bar"]
    print("| " + " | ".join(head) + " |\n" + "|---" * len(head) + "|")
    failed = []
    for t in steps:
        best = max(c[1][t] for c in defaults)
        gap = 100 * (acc[t] - best)
        ok = acc[t] >= best
        if not ok:
            failed.append(t)
        print(f"| {t} | {acc[t]:.2%} | {acc_index[t]:.2%} | " + " | ".join(f"{c[1][t]:.2%}" for c in columns)
              + f" | {gap:+.2f} | {'met' if ok else 'NOT met'} |")
    if failed:
        print(f"spikeport's default is below a peer's default at T = {', '.join(failed)}", file=sys.stderr)
        return 1
    print("spikeport's default is at least as accurate as every peer's default at every T")
    return 0


if __name__ == "__main__":
    sys.exit(main())
