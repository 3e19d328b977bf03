"""spikeport's rows beside the peers' (issue 9): the same LeNet, the same MNIST test set.

    .venv/bin/python bench/spikeport_lenet.py [--model out/bench/lenet-mnist.pt] [--samples N]

Converts the LeNet trained by `make bench-peers` with each normalization and
both initial membranes (analog input), simulates the full official MNIST test
set once for T = 256 with predictions read at T = 4 .. 256 (both readouts: ties in spike counts broken by the
membrane potential, spikeport's default, and by the lowest index, the peers'), and measures the
executor's throughput at batch 100, T = 100 (image-steps per second).
"""
import argparse
import time


import spikeport
from spikeport.backends.reference import run
from spikeport.models import convert, load_model

STEPS = [4, 8, 16, 32, 64, 128, 256]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="out/bench/lenet-mnist.pt")
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--configs", default="percentile:zero,percentile:half,max:zero,max:half,model-max:half")
    args = ap.parse_args()
    model = load_model(args.model)
    ds = spikeport.load_dataset("mnist")
    x, y = ds.x("test")[: args.samples], ds.y("test")[: args.samples]
    calib = ds.x("train")
    print(f"ANN accuracy (model file): {model.meta['test_accuracy']:.4%}")
    print("| spikeport config | " + " | ".join(f"T={t}" for t in STEPS) + " | image-steps/s (batch 100, T 100) |")
    print("|---|" + "---|" * len(STEPS) + "---|")
    for config in args.configs.split(","):
        norm, v_init = config.split(":")
        net = convert(model.module, calib, norm=norm, v_init=v_init)
        act = run(net, x, STEPS[-1], checkpoints=STEPS)
        acc = [act.accuracy(y, t) for t in STEPS]
        acc_index = [act.accuracy(y, t, ties="index") for t in STEPS]
        xb = x[:100]
        run(net, xb, 100, batch_size=100)
        t0 = time.perf_counter()
        run(net, xb, 100, batch_size=100)
        speed = 100 * 100 / (time.perf_counter() - t0)
        print(f"| {norm}, v(0) = {v_init} | " + " | ".join(f"{a:.2%}" for a in acc) + f" | {speed:.3g} |")
        print(f"| {norm}, v(0) = {v_init}, ties to lowest index | " + " | ".join(f"{a:.2%}" for a in acc_index)
              + " | |", flush=True)


if __name__ == "__main__":
    main()
