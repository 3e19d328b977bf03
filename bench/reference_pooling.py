"""The reference executor's pooling as strided additions against torch's avg_pool2d, on MNIST LeNet.

    OMP_NUM_THREADS=1 .venv/bin/python bench/reference_pooling.py [--model out/bench/lenet-mnist.pt]
        [--samples 200] [--steps 100] [--repeats 3]

Converts the LeNet as bench/backends.py does (percentile 99.9, v(0) 1/2, analog input) and
runs the reference executor alternately with each pooling, one thread; prints the best wall
time of each, their ratio, and whether every spike count is identical.
"""
import argparse
import time

import numpy as np
import torch

import spikeport
from spikeport.backends import reference
from spikeport.models import convert, load_model


def _torch_avg(op, x, cache):
    return torch.nn.functional.avg_pool2d(x, op.kernel_size, op.stride, op.padding, count_include_pad=True)


def _torch_sum(op, x, cache):
    return torch.nn.functional.avg_pool2d(x, op.kernel_size, op.stride, op.padding, count_include_pad=True,
                                          divisor_override=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="out/bench/lenet-mnist.pt")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model)
    ds = spikeport.load_dataset(model.meta["dataset"])
    net = convert(model.module, ds.x("train"), norm="percentile", v_init="half", encoding="analog")
    x = ds.x("test")[:args.samples]
    variants = {"avg_pool2d": (_torch_avg, _torch_sum),
                "strided additions": (reference.TORCH_OPS["avgpool2d"], reference.TORCH_OPS["sumpool2d"])}
    best, spikes = {}, {}
    try:
        for _ in range(args.repeats):
            for name, (avg, summed) in variants.items():
                reference.TORCH_OPS["avgpool2d"], reference.TORCH_OPS["sumpool2d"] = avg, summed
                t = time.perf_counter()
                act = reference.run(net, x, args.steps, device="cpu")
                best[name] = min(best.get(name, np.inf), time.perf_counter() - t)
                spikes[name] = (act.output_counts, act.population_spikes)
    finally:
        reference.TORCH_OPS["avgpool2d"], reference.TORCH_OPS["sumpool2d"] = variants["strided additions"]
    (c0, p0), (c1, p1) = spikes.values()
    same = np.array_equal(c0, c1) and all(np.array_equal(p0[k], p1[k]) for k in p0)
    for name, t in best.items():
        print(f"{name}: {t:.2f} s ({args.samples} samples x {args.steps} steps, best of {args.repeats})")
    print(f"ratio {best['avg_pool2d'] / best['strided additions']:.2f}x; identical spike counts: {same}")


if __name__ == "__main__":
    main()
