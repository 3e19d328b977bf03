"""Peak memory of simulating the whole MNIST test set at T = 256 (issue 4).

    .venv/bin/python bench/memory_bound.py [--net mlp|lenet] [--samples 10000] [--steps 256]

Prints the growth of the process's peak resident memory during the run, and
what holding every spike train as float32 would have taken.
"""
import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from dense_limit import lenet, mlp  # noqa: E402

import spikeport  # noqa: E402
from spikeport.backends.reference import run  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--net", choices=("mlp", "lenet"), default="mlp")
    ap.add_argument("--samples", type=int, default=10000)
    ap.add_argument("--steps", type=int, default=256)
    args = ap.parse_args()
    x = spikeport.load_dataset("mnist").x("test")[: args.samples]
    net, _ = {"mlp": mlp, "lenet": lenet}[args.net](np.random.default_rng(0))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    act = run(net, x, args.steps)
    seconds = time.perf_counter() - t0
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    all_trains = len(x) * args.steps * sum(p.size for p in net.populations) * 4 / 2**20
    print(f"{args.net}: {len(x)} samples x T = {args.steps}: {seconds:.1f} s, "
          f"{len(x) * args.steps / seconds:.3g} image-steps/s, peak RSS grew {grown:.0f} MiB "
          f"(all spike trains as float32: {all_trains:.0f} MiB); mean spikes/image {sum(v.mean() for v in act.population_spikes.values()):.0f}")


if __name__ == "__main__":
    main()
