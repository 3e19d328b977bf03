"""Where the reference executor spends its time on MNIST LeNet (issue 10's 100x-vs-Brian2 target).

    OMP_NUM_THREADS=1 .venv/bin/python bench/reference_profile.py [--model out/bench/lenet-mnist.pt]
        [--samples 100] [--steps 100]

Converts the LeNet as bench/backends.py does (percentile 99.9, v(0) 1/2, analog input),
runs the reference executor once under torch's profiler on one thread, and prints the
operators by self time, the per-layer firing rates, and the share of the time that is
dense linear algebra (convolution, pooling, matrix products).
"""
import argparse
import time

import numpy as np
import torch
from torch.profiler import profile

import spikeport
from spikeport.backends import reference
from spikeport.models import convert, load_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="out/bench/lenet-mnist.pt")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    ds = spikeport.load_dataset(model.meta["dataset"])
    net = convert(model.module, ds.x("train"), norm="percentile", v_init="half", encoding="analog")
    x = ds.x("test")[:args.samples]
    act = reference.run(net, x, args.steps, device="cpu", record_counts=True)
    for name, counts in act.neuron_counts.items():
        c = np.asarray(counts, np.float64)
        print(f"{name}: mean rate {c.mean() / args.steps:.4f} spikes/step, {np.mean(c > 0):.1%} of neurons spike")
    t = time.perf_counter()
    with profile() as prof:
        reference.run(net, x, args.steps, device="cpu")
    wall = time.perf_counter() - t
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
    total = sum(e.self_cpu_time_total for e in rows)
    print(f"{args.samples} samples x {args.steps} steps: {wall:.2f} s under the profiler, "
          f"{total / 1e6:.2f} s of operator time")
    print("| operator | self time (s) | share |")
    print("|---|---|---|")
    for e in rows[:10]:
        print(f"| {e.key} | {e.self_cpu_time_total / 1e6:.3f} | {e.self_cpu_time_total / total:.1%} |")
    dense = sum(e.self_cpu_time_total for e in rows
                if any(k in e.key for k in ("convolution", "avg_pool2d", "aten::mm", "addmm", "addmv")))
    print(f"dense linear algebra (convolution, pooling, matrix products): {dense / total:.1%}; "
          f"the rest bounds the speed-up any sparse or event-driven path could give: "
          f"{total / max(total - dense, 1):.1f}x")


if __name__ == "__main__":
    main()
