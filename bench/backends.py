"""Every simulator backend on the same graph and samples, beside the reference executor (issue 10).

    .venv/bin/python bench/backends.py [--model out/bench/lenet-mnist.pt | --net NET.spk]
        [--samples 1000] [--steps 100] [--backends brian2,nengo-loihi,pynn-nest,spinnaker]
        [--encoding analog] [--json out/bench/backends.json]

For each backend: accuracy, agreement with the reference executor (fraction of samples
with the same predicted class), per-layer rate correlation with the reference, wall
time, and the reference executor's speed-up over it (ratios from the same run, the
reference timed right after each backend on the same samples and steps). The
spinnaker backend's virtual board maps but does not simulate: its row is the mapping
(placements), not an accuracy. The default network is the MNIST LeNet the conversion
benchmark uses, converted with percentile normalization and v(0) = theta / 2.
"""
import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

import spikeport
from spikeport.api import validate
from spikeport.errors import SpikeportError
from spikeport.models import convert, load_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="out/bench/lenet-mnist.pt")
    ap.add_argument("--net", default=None, help="a graph file instead of converting --model")
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--backends", default="brian2,nengo-loihi,pynn-nest,spinnaker")
    ap.add_argument("--encoding", default="analog")
    ap.add_argument("--json", default=None)
    ap.add_argument("--nengo-loihi-own-routing", action="store_true",
                    help="run the emulator's spike delivery as nengo-loihi ships it (a Python loop per spike) "
                         "instead of spikeport's vectorized one (the same spikes)")
    args = ap.parse_args()
    if args.nengo_loihi_own_routing:
        from spikeport.backends import loihi

        loihi.FAST_ROUTING = False
    dataset = args.dataset
    if args.net:
        try:
            net = spikeport.load_network(args.net)
        except SpikeportError as exc:
            ap.error(str(exc))
        source = args.net
    else:
        model = load_model(args.model)
        dataset = dataset or model.meta["dataset"]
        ds = spikeport.load_dataset(model.meta["dataset"])
        net = convert(model.module, ds.x("train"), norm="percentile", v_init="half",
                       encoding=args.encoding)
        source = f"{args.model} (percentile 99.9, v(0) 1/2, {args.encoding} input)"
    dataset = dataset or net.metadata.get("dataset") or "digits"
    print(f"{source} on {dataset}: {args.samples} test samples, T = {args.steps}; {platform.node()}, "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    print("| backend | accuracy | agreement | min layer rate corr. | wall (s) | reference (s) | reference speed-up |")
    print("|---|---|---|---|---|---|---|", flush=True)
    rows = []

    def save():
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(
                {"source": source, "dataset": dataset, "samples": args.samples, "steps": args.steps,
                 "machine": platform.node(), "date": time.strftime("%Y-%m-%d"), "numpy": np.__version__,
                 "rows": rows}, indent=2) + "\n")

    for backend in args.backends.split(","):
        try:
            val = validate(net, dataset, args.steps, samples=args.samples, backend=backend)
        except SpikeportError as exc:  # e.g. the virtual board: a mapping, not a simulation
            rows.append({"backend": backend, "error": str(exc)})
            print(f"| {backend} | {exc} | | | | | |", flush=True)
            save()
            continue
        rep = val.report()
        corr = rep["rate_correlation"]
        row = {"backend": backend, "accuracy": rep["accuracy"], "agreement": rep["agreement"],
               "rate_correlation": corr, "seconds": rep["seconds"], "reference_seconds": rep["reference_seconds"],
               "speedup": rep["seconds"] / rep["reference_seconds"] if rep["reference_seconds"] else 1.0, "notes": rep["notes"]}
        rows.append(row)
        save()
        print(f"| {backend} | {row['accuracy']:.2%} | {row['agreement']:.2%} | "
              f"{min(corr.values()) if corr else float('nan'):.4f} | {row['seconds']:.1f} | "
              f"{row['reference_seconds'] or row['seconds']:.2f} | {row['speedup']:,.0f}x |", flush=True)
        for note in rep["notes"]:
            print(f"    note ({backend}): {note}", flush=True)

if __name__ == "__main__":
    main()
