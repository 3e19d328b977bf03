"""Dense-limit ratio of the reference executor (issue 4).

    .venv/bin/python bench/dense_limit.py [--batch 100] [--steps 100] [--device cpu]

ratio = (executor time for one batch over T steps) / (T x time of one forward pass
of the same weights as an ANN on the same batch and device). Networks: an
MNIST LeNet-class net (20C5-P2-50C5-P2-FC200-10) and an MLP (784-500-500-10),
random weights scaled so that every layer fires; real MNIST test images, analog
input. Times are medians of repeated runs in one process.
"""
import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

import spikeport
from spikeport.backends.reference import run
from spikeport.ir import (AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population,
                          Projection)


def lenet(rng):
    w = {"c1": rng.normal(0, 0.25, (20, 1, 5, 5)), "c2": rng.normal(0, 0.06, (50, 20, 5, 5)),
         "f1": rng.normal(0, 0.05, (200, 800)), "f2": rng.normal(0, 0.15, (10, 200))}
    w = {k: v.astype(np.float32) for k, v in w.items()}
    nm = NeuronModel("if", 1.0, "subtract")
    pops = [Population("input", (1, 28, 28), encoding=InputEncoding("analog")),
            Population("c1", (20, 24, 24), neuron=nm), Population("c2", (50, 8, 8), neuron=nm),
            Population("f1", (200,), neuron=nm), Population("f2", (10,), neuron=nm)]
    projs = [Projection("input->c1", "input", "c1", [Conv2d(w["c1"])]),
             Projection("c1->c2", "c1", "c2", [AvgPool2d(2), Conv2d(w["c2"])]),
             Projection("c2->f1", "c2", "f1", [AvgPool2d(2), Flatten(), Dense(w["f1"])]),
             Projection("f1->f2", "f1", "f2", [Dense(w["f2"])])]
    net = Network(pops, projs, output="f2").validate()

    def ann(x):
        x = F.relu(F.conv2d(x, t["c1"]))
        x = F.relu(F.conv2d(F.avg_pool2d(x, 2), t["c2"]))
        x = F.relu(F.avg_pool2d(x, 2).flatten(1) @ t["f1"].T)
        return x @ t["f2"].T
    t = {k: torch.as_tensor(v) for k, v in w.items()}
    return net, ann


def mlp(rng):
    sizes = [784, 500, 500, 10]
    ws = [rng.normal(0, 1.5 / np.sqrt(a), (b, a)).astype(np.float32) for a, b in zip(sizes, sizes[1:])]
    nm = NeuronModel("if", 1.0, "subtract")
    pops = [Population("input", (1, 28, 28), encoding=InputEncoding("analog"))]
    pops += [Population(f"fc{i + 1}", (n,), neuron=nm) for i, n in enumerate(sizes[1:])]
    projs = [Projection(f"{pops[i].name}->{pops[i + 1].name}", pops[i].name, pops[i + 1].name,
                        ([Flatten()] if i == 0 else []) + [Dense(w)]) for i, w in enumerate(ws)]
    net = Network(pops, projs, output="fc3").validate()
    t = [torch.as_tensor(w) for w in ws]

    def ann(x):
        x = x.flatten(1)
        for w in t[:-1]:
            x = F.relu(x @ w.T)
        return x @ t[-1].T
    return net, ann


def median_time(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    x = spikeport.load_dataset("mnist").x("test")[: args.batch]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"batch {args.batch}, T {args.steps}")
    print("| network | batch | ANN forward (ms) | executor, T steps (ms) | ratio | image-steps/s | spikes per image |")
    print("|---|---|---|---|---|---|---|")
    for name, make in (("LeNet 20C5-P2-50C5-P2-FC200-10", lenet), ("MLP 784-500-500-10", mlp)):
        net, ann = make(np.random.default_rng(0))
        xt = torch.as_tensor(x, device=args.device)
        with torch.no_grad():
            ann(xt)
            t_ann = median_time(lambda: ann(xt), args.repeats * 4)
        run(net, x, args.steps, device=args.device, batch_size=args.batch)  # warm-up
        acts = []
        t_snn = median_time(lambda: acts.append(run(net, x, args.steps, device=args.device, batch_size=args.batch)),
                            args.repeats)
        spikes = sum(v.mean() for v in acts[-1].population_spikes.values())
        print(f"| {name} | {args.batch} | {t_ann * 1e3:.2f} | {t_snn * 1e3:.1f} | {t_snn / (args.steps * t_ann):.2f} "
              f"| {args.batch * args.steps / t_snn:.3g} | {spikes:.0f} |", flush=True)


if __name__ == "__main__":
    main()
