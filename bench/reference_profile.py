"""Where the reference executor spends its time on MNIST LeNet (issue 10's 100x-vs-Brian2 target).

    OMP_NUM_THREADS=1 .venv/bin/python bench/reference_profile.py [--model out/bench/lenet-mnist.pt]
        [--samples 100] [--steps 100] [--pooling-ab [--repeats 3]]

Converts the LeNet as bench/backends.py does (percentile 99.9, v(0) 1/2, analog input),
runs the reference executor once under torch's profiler on one thread, and prints the
operators by self time, the per-layer firing rates, and the share of the time that is
dense linear algebra (convolution, pooling, matrix products).

--pooling-ab instead runs the executor alternately with its pooling (strided additions in
torch's order) and with torch's avg_pool2d, and prints the best wall time of each, their
ratio, and whether every spike count is identical.
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
    ap.add_argument("--pooling-ab", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    ds = spikeport.load_dataset(model.meta["dataset"])
    net = convert(model.module, ds.x("train"), norm="percentile", v_init="half", encoding="analog")
    x = ds.x("test")[:args.samples]
    if args.pooling_ab:
        return pooling_ab(net, x, args.steps, args.repeats, args.samples)
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


def _torch_avg(op, x, cache):
    return torch.nn.functional.avg_pool2d(x, op.kernel_size, op.stride, op.padding, count_include_pad=True)


def _torch_sum(op, x, cache):
    return torch.nn.functional.avg_pool2d(x, op.kernel_size, op.stride, op.padding, count_include_pad=True,
                                          divisor_override=1)


def pooling_ab(net, x, steps, repeats, samples):
    variants = {"avg_pool2d": (_torch_avg, _torch_sum),
                "strided additions": (reference.TORCH_OPS["avgpool2d"], reference.TORCH_OPS["sumpool2d"])}
    best, spikes = {}, {}
    try:
        for _ in range(repeats):
            for name, (avg, summed) in variants.items():
                reference.TORCH_OPS["avgpool2d"], reference.TORCH_OPS["sumpool2d"] = avg, summed
                t = time.perf_counter()
                act = reference.run(net, x, steps, device="cpu")
                best[name] = min(best.get(name, np.inf), time.perf_counter() - t)
                spikes[name] = (act.output_counts, act.population_spikes)
    finally:
        reference.TORCH_OPS["avgpool2d"], reference.TORCH_OPS["sumpool2d"] = variants["strided additions"]
    # the pooling alone, on spike maps of conv1's shape at its 8 % rate
    maps = (torch.rand((1024, 20, 24, 24), generator=torch.Generator().manual_seed(0)) < 0.08).float()
    op = next(op for pr in net.projections for op in pr.ops if op.kind == "avgpool2d")
    for name, (avg, _) in variants.items():
        avg(op, maps, None)
        t = time.perf_counter()
        for _ in range(10):
            avg(op, maps, None)
        print(f"{name} alone on 1024 x 20 x 24 x 24 spike maps: {(time.perf_counter() - t) / 10 * 1e3:.1f} ms")
    (c0, p0), (c1, p1) = spikes.values()
    same = np.array_equal(c0, c1) and all(np.array_equal(p0[k], p1[k]) for k in p0)
    for name, t in best.items():
        print(f"{name}: {t:.2f} s ({samples} samples x {steps} steps, best of {repeats})")
    print(f"ratio {best['avg_pool2d'] / best['strided additions']:.2f}x; identical spike counts: {same}")


if __name__ == "__main__":
    main()
