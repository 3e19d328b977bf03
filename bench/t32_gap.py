"""What a plain `spikeport convert` might change to close issue 22's T = 32 gap: trials, not defaults.

    OMP_NUM_THREADS=1 .venv/bin/python bench/t32_gap.py --model out/bench/lenet-mnist.pt
        [--split test|validation] [--channel-percentiles 99.0,99.5,99.9,99.99] [--channel-samples 10000]
        [--peers out/bench/peers.json]

Every configuration is simulated once for 32 steps with analog input and read at T = 4, 8, 16, 32
(reference executor, spike counts with ties to the higher membrane, as spikeport reads them):

- ``default``: exactly `spikeport convert MODEL` (percentile 99.9 per layer over all training
  images, v(0) = theta/2);
- ``channel P``: the default network renormalized per channel (per neuron for fully connected
  layers): each hidden channel's scale is the P-th percentile of its own positive ANN activations
  over the first --channel-samples training images, instead of the layer's. Its incoming weights
  and bias are divided by the channel's factor (its scale over the layer's), the weights leaving
  it multiplied by it, so the rate model is unchanged up to clipping; the output layer stays as
  converted (a per-class scale would change the decision);
- ``max 5000, v(0) 0`` and ``max 5000, v(0) 1/2``: the maximum over the first 5,000 training
  images (the peers' calibration data), per layer.

``--split validation`` scores the 5,001 training images the trainer held out (model selection
without the test set); ``test`` the 10,000 test images. For each configuration the script also
counts, at T = 32, the images it gets right that the default gets wrong and the reverse, and the
same against the ANN: the paired differences that decide whether a gap of a few images is more
than noise (exact two-sided sign test). With ``--peers`` (bench/peers/run_peers.py's JSON, whose
runs keep their predictions) and the test split, each peer configuration gets a row the same way.
"""
import argparse
import dataclasses
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch

import spikeport
from spikeport.backends.reference import run
from spikeport.ir import Conv2d, Dense
from spikeport.models import convert, load_model
from spikeport.models.torch_import import scale_chain_channels
from spikeport.models.training import validation_split

STEPS = (4, 8, 16, 32)


def channel_factors(model, net, images, percentile):
    """Per hidden population: each channel's percentile of its positive activations over the layer's scale."""
    conv = net.metadata["conversion"]
    modules = dict(model.module.named_modules())
    seen = {}
    hooks = [modules[node].register_forward_hook(lambda m, i, o, pop=pop: seen.setdefault(pop, []).append(o.detach()))
             for pop, node in conv["activation_nodes"].items() if pop != net.output]
    with torch.no_grad():
        for i in range(0, len(images), 1000):
            model.module(torch.as_tensor(images[i:i + 1000]))
    for h in hooks:
        h.remove()
    factors = {}
    for pop, parts in seen.items():
        a = torch.cat(parts).transpose(0, 1).reshape(parts[0].shape[1], -1).double()
        f = np.ones(a.shape[0])
        for c in range(a.shape[0]):
            v = a[c][a[c] > 0]
            if v.numel():
                k = max(1, math.ceil(v.numel() * (1 - percentile / 100)))
                f[c] = float(torch.topk(v, k).values[-1]) / conv["scales"][pop]
        factors[pop] = np.maximum(f, 1e-3)
    return factors


def renormalize(net, factors):
    """The network with each hidden channel c of population P rescaled by factors[P][c] (module docstring)."""
    pops = {p.name: p for p in net.populations}
    projections = []
    for pr in net.projections:
        ops = list(pr.ops)
        if pr.post in factors:
            ops = scale_chain_channels(ops, 1.0 / factors[pr.post], pops[pr.post].shape)
        if pr.pre in factors:
            f = factors[pr.pre]
            i = next(k for k, op in enumerate(ops) if isinstance(op, (Conv2d, Dense)))  # pooling/flatten before it
            w = ops[i].weight.astype(np.float64)
            along = f.reshape(1, -1, 1, 1) if isinstance(ops[i], Conv2d) else np.repeat(f, w.shape[1] // f.size)[None]
            ops[i] = dataclasses.replace(ops[i], weight=(w * along).astype(np.float32))
        projections.append(dataclasses.replace(pr, ops=ops))
    populations = []
    for p in net.populations:
        if p.name in factors and p.bias is not None:
            per = (-1,) + (1,) * (len(p.shape) - 1)
            p = dataclasses.replace(p, bias=(p.bias / factors[p.name].reshape(per)).astype(np.float32))
        populations.append(p)
    return dataclasses.replace(net, populations=populations, projections=projections).validate()


def sign_test(b, c):
    """Exact two-sided binomial test of b against c discordant pairs (McNemar's exact form)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(0, min(b, c) + 1)) / 2 ** n
    return min(1.0, 2 * tail)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="out/bench/lenet-mnist.pt")
    ap.add_argument("--split", choices=("test", "validation"), default="test")
    ap.add_argument("--channel-percentiles", default="99.0,99.5,99.9,99.99")
    ap.add_argument("--channel-samples", type=int, default=10000)
    ap.add_argument("--peers", default=None, help="run_peers.py's JSON: compare its predictions too (test split)")
    args = ap.parse_args()
    model = load_model(args.model)
    ds = spikeport.load_dataset(model.meta["dataset"])
    train = ds.x("train")
    if args.split == "test":
        x, y = ds.x("test"), ds.y("test")
    else:
        _, val = validation_split(ds, None)
        x, y = train[val], ds.y("train")[val]
    with torch.no_grad():
        ann = model.module.eval()(torch.as_tensor(x)).argmax(1).numpy()
    print(f"{args.model} on {len(x)} {args.split} images of {ds.name}, ANN {np.mean(ann == y):.2%}; "
          f"{platform.node()}, {time.strftime('%Y-%m-%d')}")
    default = convert(model, train)
    configs = [("default", lambda: default)]
    for p in args.channel_percentiles.split(","):
        configs.append((f"channel {p}", lambda p=float(p): renormalize(
            default, channel_factors(model, default, train[:args.channel_samples], p))))
    for v in ("zero", "half"):
        configs.append((f"max 5000, v(0) {'0' if v == 'zero' else '1/2'}",
                        lambda v=v: convert(model.module, train[:5000], norm="max", v_init=v)))
    print("| config | " + " | ".join(f"T={t}" for t in STEPS)
          + " | T=32: right only here / only in default (p) | right only here / only in the ANN (p) |")
    print("|---" * (len(STEPS) + 3) + "|")
    base = None

    def row(name, predicted):  # predicted: (samples, len(STEPS))
        nonlocal base
        right = predicted[:, -1] == y
        base = right if base is None else base
        b, c = int((right & ~base).sum()), int((~right & base).sum())
        b2, c2 = int((right & (ann != y)).sum()), int((~right & (ann == y)).sum())
        print(f"| {name} | " + " | ".join(f"{np.mean(predicted[:, k] == y):.2%}" for k in range(len(STEPS)))
              + f" | {b} / {c} ({sign_test(b, c):.2f}) | {b2} / {c2} ({sign_test(b2, c2):.2f}) |", flush=True)

    for name, build in configs:
        row(name, run(build(), x, STEPS[-1], checkpoints=list(STEPS)).predicted())
    if args.peers:
        if args.split != "test":
            raise SystemExit("--peers: the peers ran on the test split")
        peers = json.loads(Path(args.peers).read_text())
        for peer in ("spikingjelly", "sinabs"):
            for config, entry in peers.get(peer, {}).items():
                by_t = entry.get("predictions_by_T")
                if by_t and all(str(t) in by_t for t in STEPS):
                    row(f"{peer} {entry['version']} {config}",
                        np.stack([np.array(by_t[str(t)].split(), dtype=int) for t in STEPS], axis=1))


if __name__ == "__main__":
    main()
