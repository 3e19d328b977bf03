"""Ablation of the L4-norm adjustment (ours, docs/conversion.md) against plain percentile normalization.

    .venv/bin/python bench/l4_ablation.py [--model out/demo/model.pt] [--seeds 20] [--steps 4,8,16,32,64]

For each input encoding (Poisson, analog), initial membrane (0, theta/2) and variant
(none; scale or shift with the L4 bound or the exact sigma; alpha 1, the theory
value), the network is converted with percentile 99.9 normalization, adjusted for
each T on 512 training samples, and simulated on the whole test split with
--seeds Poisson seeds (analog input is deterministic: one run). Reports the mean
accuracy over seeds, its standard error, and the gain over the unadjusted
network with the same seeds (paired), so that differences smaller than one test
image are resolved.
"""
import argparse
import math
import time

import numpy as np

import spikeport
from spikeport.backends.reference import run
from spikeport.models import convert, load_model
from spikeport.models.calibrate import l4_adjust, l4_statistics

VARIANTS = [None, ("scale", "l4"), ("scale", "exact"), ("shift", "l4"), ("shift", "exact")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="out/demo/model.pt")
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--steps", default="4,8,16,32,64")
    ap.add_argument("--encodings", default="poisson,analog")
    args = ap.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    model = load_model(args.model)
    ds = spikeport.load_dataset(model.meta["dataset"])
    x, y, calib = ds.x("test"), ds.y("test"), ds.x("train")[:512]
    print(f"{args.model}: {model.spec.arch} on {ds.name}, ANN {model.meta['test_accuracy']:.2%}, "
          f"{len(x)} test samples, {args.seeds} Poisson seeds; {time.strftime('%Y-%m-%d')}")
    print("| encoding | v(0) | variant | " + " | ".join(f"T={t}" for t in steps) + " |")
    print("|---|---|---|" + "---|" * len(steps))
    for enc in args.encodings.split(","):
        seeds = range(args.seeds) if enc == "poisson" else [0]
        for v_init in ("zero", "half"):
            net = convert(model.module, ds.x("train"), v_init=v_init, encoding=enc)
            base = {}
            stats = {sig: l4_statistics(net, calib, sig) for sig in ("l4", "exact")}
            for variant in VARIANTS:
                cells = []
                for t in steps:
                    adj = net if variant is None else l4_adjust(net, calib, t, mode=variant[0], stats=stats[variant[1]])[0]
                    acc = np.array([run(adj, x, t, seed=s).accuracy(y) for s in seeds])
                    if variant is None:
                        base[t] = acc
                        cells.append(f"{acc.mean():.2%}")
                    else:
                        gain = acc - base[t]
                        se = gain.std(ddof=1) / math.sqrt(len(gain)) if len(gain) > 1 else 0.0
                        cells.append(f"{100 * gain.mean():+.2f} ± {100 * se:.2f}")
                name = "none (accuracy)" if variant is None else f"{variant[0]}, sigma {variant[1]} (gain, pp)"
                print(f"| {enc} | {v_init} | {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
