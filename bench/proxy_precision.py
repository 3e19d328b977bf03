"""Proxy learning's cost per batch in float32 and bfloat16 (the ``train_precision`` option).

    OMP_NUM_THREADS=1 .venv/bin/python bench/proxy_precision.py [--dataset fashion-mnist] [--repeats 3]

On the method's network for the data set (the notebook's 19.6 M-parameter network for MNIST and
Fashion-MNIST), batch 100 of random images, one thread: the ANN's training step (forward, cross-
entropy, backward, Adam) and the SNN's pass (T = 15 steps, no gradients, the proxy's simulate),
each in both precisions, alternating, best of --repeats after a warm-up. Prints the seconds and
the ratios, measured in one run.
"""
import argparse
import platform
import time

import torch

from spikeport.models.architectures import ArchSpec
from spikeport.models.methods import get_method


def best(fn, repeats):
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default="fashion-mnist")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.manual_seed(0)
    proxy = get_method("proxy")
    opts = proxy.METHOD.resolve_options({})
    spec = ArchSpec(arch=proxy.METHOD.arch_for(args.dataset), input_shape=(1, 28, 28), classes=10,
                    **proxy.METHOD.defaults["arch_flags"])
    module = proxy.build(spec, opts)
    adam = torch.optim.Adam(module.parameters(), 1e-4)
    x, y = torch.rand(100, 1, 28, 28), torch.randint(0, 10, (100,))

    def step(low):
        module.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
            loss = torch.nn.functional.cross_entropy(module(x).float(), y)
        adam.zero_grad()
        loss.backward()
        adam.step()

    def snn(low):
        module.eval()
        proxy.simulate(module, x, int(opts["T"]), float(opts["threshold"]), dtype=torch.bfloat16 if low else None)

    print(f"{spec.arch}: {sum(p.numel() for p in module.parameters()):,} parameters; batch 100, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}, {platform.node()}, "
          f"{time.strftime('%Y-%m-%d')}; native bfloat16 here: "
          f"{proxy.low_precision({'train_precision': 'auto'}, torch.device('cpu'))}")
    print("| part | float32 | bfloat16 | ratio |\n|---|---|---|---|")
    for name, fn in (("ANN training step", step), (f"SNN pass (T = {opts['T']})", snn)):
        full = best(lambda: fn(False), args.repeats)
        low = best(lambda: fn(True), args.repeats)
        print(f"| {name} | {full:.2f} s | {low:.2f} s | {full / low:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
