"""Where the reference executor spends its time on MNIST LeNet (issue 10's 100x-vs-Brian2 target).

    OMP_NUM_THREADS=1 .venv/bin/python bench/reference_profile.py [--model out/bench/lenet-mnist.pt]
        [--samples 100] [--steps 100] [--pooling-ab [--repeats 3]]
        [--mac-bound --brian2-seconds S]

Converts the LeNet as bench/backends.py does (percentile 99.9, v(0) 1/2, analog input),
runs the reference executor once under torch's profiler on one thread, and prints the
operators by self time, the per-layer firing rates, and the share of the time that is
dense linear algebra (convolution, pooling, matrix products).

--pooling-ab instead runs the executor alternately with its pooling (strided additions in
torch's order) and with torch's avg_pool2d, and prints the best wall time of each, their
ratio, and whether every spike count is identical.

--mac-bound instead counts the multiply-accumulates every step needs whatever the spikes
(projections from spiking populations; an analog input's projection is computed once),
measures this CPU's best convolution rate on the network's largest convolution (one
thread, default and channels-last layout), and prints the least time any dense float32
executor needs for --samples x --steps, and so the largest speed-up over a Brian2 run of
--brian2-seconds this CPU allows (on one core and, at twice the rate, on two).
"""
import argparse
import time

import numpy as np
import torch
from torch.profiler import profile

import spikeport
from spikeport.backends import reference
from spikeport.ir import kernels
from spikeport.models import convert, load_model


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="out/bench/lenet-mnist.pt")
    ap.add_argument("--samples", type=int, default=100)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--pooling-ab", action="store_true")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--mac-bound", action="store_true")
    ap.add_argument("--brian2-seconds", type=float, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    ds = spikeport.load_dataset(model.meta["dataset"])
    net = convert(model.module, ds.x("train"), norm="percentile", v_init="half", encoding="analog")
    x = ds.x("test")[:args.samples]
    if args.pooling_ab:
        return pooling_ab(net, x, args.steps, args.repeats, args.samples)
    if args.mac_bound:
        return mac_bound(net, args.samples, args.steps, args.brian2_seconds)
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
                "strided additions": (kernels.TORCH_OPS["avgpool2d"], kernels.TORCH_OPS["sumpool2d"])}
    best, spikes = {}, {}
    try:
        for _ in range(repeats):
            for name, (avg, summed) in variants.items():
                kernels.TORCH_OPS["avgpool2d"], kernels.TORCH_OPS["sumpool2d"] = avg, summed
                t = time.perf_counter()
                act = reference.run(net, x, steps, device="cpu")
                best[name] = min(best.get(name, np.inf), time.perf_counter() - t)
                spikes[name] = (act.output_counts, act.population_spikes)
    finally:
        kernels.TORCH_OPS["avgpool2d"], kernels.TORCH_OPS["sumpool2d"] = variants["strided additions"]
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


def mac_bound(net, samples, steps, brian2_seconds):
    macs, largest = 0, None
    for proj in net.projections:
        shape = tuple(net.population(proj.pre).shape)
        for op in proj.ops:
            out = tuple(op.out_shape(shape, proj.name))
            if op.kind == "conv2d":
                w = np.asarray(op.weight)
                n = int(np.prod(out)) * int(np.prod(w.shape[1:]))
                if proj.pre != net.input:
                    macs += n
                    if largest is None or n > largest[0]:
                        largest = (n, op, shape)
            elif op.kind == "dense" and proj.pre != net.input:
                macs += int(np.prod(np.asarray(op.weight).shape))
            shape = out
    total = macs * samples * steps
    print(f"{macs:,} multiply-accumulates per sample and step; {total / 1e9:.1f} G for {samples} x {steps}")
    n, op, shape = largest
    w = torch.as_tensor(np.asarray(op.weight), dtype=torch.float32)
    x = (torch.rand((2048,) + shape, generator=torch.Generator().manual_seed(0)) < 0.3).float()
    rates = {}
    for name, (xx, ww) in {"default": (x, w), "channels-last": (x.contiguous(memory_format=torch.channels_last),
                                                               w.contiguous(memory_format=torch.channels_last))}.items():
        conv = lambda: torch.nn.functional.conv2d(xx, ww, stride=op.stride, padding=op.padding)  # noqa: E731
        conv()
        best = min(_timed(conv) for _ in range(5))
        rates[name] = 2048 * n / best
        print(f"convolution {tuple(w.shape)} on 2048 x {shape}, {name}: {rates[name] / 1e9:.1f} GMAC/s (one thread)")
    rate = max(rates.values())
    least = total / rate
    print(f"least time at {rate / 1e9:.1f} GMAC/s: {least:.1f} s on one core, {least / 2:.1f} s on two")
    if brian2_seconds:
        print(f"largest reference speed-up over Brian2's {brian2_seconds:.1f} s: {brian2_seconds / least:.0f}x on one "
              f"core, {2 * brian2_seconds / least:.0f}x on two")


def _timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
