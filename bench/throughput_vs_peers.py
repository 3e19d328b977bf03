"""Throughput of spikeport's executor and of the peers' simulations, measured in one run (issue 9).

    .venv/bin/python bench/throughput_vs_peers.py [--rounds 3]

Alternates, round by round: the peers (SpikingJelly 2.0.0, sinabs 3.1.3, in their own
venv .venv-peers: bench/peers/run_peers.py --throughput-only) and spikeport's reference
executor in this venv, on the same LeNet (out/bench/lenet-mnist.pt and its state dict),
the first 100 MNIST test images, analog input, batch 100, T = 100: image-steps per
second, best of 3 timed runs after a warm-up, each side as run_peers.py times its
peers. Reports the best over the rounds per configuration and spikeport's ratio to each.
"""
import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import spikeport
from spikeport.backends.reference import run
from spikeport.models import convert, load_model

REPO = Path(__file__).resolve().parents[1]


def spikeport_throughput(net, xb, T=100, repeats=3):
    run(net, xb, 5, batch_size=len(xb))  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run(net, xb, T, batch_size=len(xb))
        times.append(time.perf_counter() - t0)
    return len(xb) * T / min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="out/bench/lenet-mnist.pt")
    args = ap.parse_args()
    model = load_model(args.model)
    ds = spikeport.load_dataset("mnist")
    xb = ds.x("test")[:100]
    nets = {f"{n}, v(0) {v}": convert(model.module, ds.x("train"), norm=n, v_init=v)
            for n, v in (("percentile", "half"), ("max", "zero"))}
    best = {}
    for r in range(args.rounds):
        out = subprocess.run([str(REPO / ".venv-peers/bin/python"), "bench/peers/run_peers.py", "--throughput-only"],
                             cwd=REPO, capture_output=True, text=True, check=True)
        peers = json.loads(out.stdout.strip().splitlines()[-1])
        for peer, configs in peers.items():
            for config, res in configs.items():
                key = f"{peer} {config}"
                best[key] = max(best.get(key, 0.0), res["image_steps_per_s"])
        for name, net in nets.items():
            key = f"spikeport {name}"
            best[key] = max(best.get(key, 0.0), spikeport_throughput(net, xb))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:,.0f}" for k, v in best.items()), file=sys.stderr, flush=True)
    ours = max(v for k, v in best.items() if k.startswith("spikeport"))
    print("| simulator, config | image-steps/s (B=100, T=100, best of the rounds) | spikeport's best / this |")
    print("|---|---|---|")
    for k, v in best.items():
        print(f"| {k} | {v:,.0f} | {ours / v:.2f} |")
    print(f"\nnumpy {np.__version__}; {args.rounds} rounds alternating peers and spikeport")


if __name__ == "__main__":
    main()
