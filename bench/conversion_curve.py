"""Accuracy of converted MLPs against time steps, analog and Poisson input.

    .venv/bin/python bench/conversion_curve.py [--datasets digits,mnist] [--samples N]

Trains the `mlp` (relu, seed 0, default epochs), converts it with percentile
normalization (p = 99.9), simulates the test split in the reference executor
with checkpoints at T = 4..128, and prints a markdown table with the ANN's
accuracy, the SNN's at each T, and the wall times.
"""
import argparse
import platform
import time

import spikeport
from spikeport.models import convert

STEPS = [4, 8, 16, 32, 64, 128]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", default="digits,mnist")
    ap.add_argument("--samples", type=int, default=None)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {platform.processor() or 'cpu'}, python {platform.python_version()}")
    print("| data set | encoding | ANN | " + " | ".join(f"T={t}" for t in STEPS) + " | train s | simulate s |")
    print("|---|---|---|" + "---|" * len(STEPS) + "---|---|")
    for name in args.datasets.split(","):
        ds = spikeport.load_dataset(name)
        t0 = time.perf_counter()
        model = spikeport.train(ds, arch="mlp", method="relu", seed=0)
        train_s = time.perf_counter() - t0
        for encoding in ("analog", "poisson"):
            net = convert(model.module, ds.x("train"), encoding=encoding, max_rate_hz=1000.0,
                          metadata={"dataset": name, "ann_accuracy": model.meta["test_accuracy"]})
            sim = spikeport.simulate(net, ds, steps=STEPS[-1], checkpoints=STEPS, samples=args.samples)
            acc = sim.accuracy_by_steps()
            print(f"| {name} | {encoding} | {model.meta['test_accuracy']:.2%} | "
                  + " | ".join(f"{acc[t]:.2%}" for t in STEPS)
                  + f" | {train_s:.1f} | {sim.activity.seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
