"""How long partitioning takes, at three sizes up to 1,000,000 neurons and 100,000,000 synapses.

    OMP_NUM_THREADS=1 python bench/partition_scale.py [--nets mixed,dense] [--scales 0.25,0.5,1]
                                                      [--targets loihi,spinnaker,truenorth] [--json FILE]

Two networks (random weights, none zero; built outside the timing), both linear in the scale:

- mixed: a spiking input (4, S, S) -> conv 3x3 pad 1 (42 channels) -> conv 3x3 stride 2 (16)
  -> conv 3x3 pad 1 (48) -> avgpool 8 -> dense 4096 -> dense 4096 * scale -> dense 10, with
  S = 128 * sqrt(scale): at scale 1 1.02 M neurons and 102 M synapses (76 M of them in
  convolutions, which are counted in closed form);
- dense: a spiking input of n -> six fully connected layers of n neurons -> one layer of n
  connected within halves only (block-diagonal weights) -> dense 10, with n = 4096 *
  sqrt(scale): at scale 1 about 109 M synapses, all stored as dense weight matrices (440 MB of
  float32) and counted from their nonzero entries.

Each target is
partitioned with :func:`spikeport.deploy.partition.partition` in this process, single-threaded,
with the profile's ``chip.chips_max`` dropped (one SpiNN-5 board holds 768 cores, the scale-1
network needs about 4,000): ``chips`` is what the mapping needs. A target the network does not
fit reports why (TrueNorth: 256 input axons per core, the dense layers need up to 4096). Prints a
markdown table; ``--json`` writes the rows.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time

import numpy as np


def build(scale: float, seed: int = 0):
    from spikeport.ir import AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population, \
        Projection

    rng = np.random.default_rng(seed)
    side = int(round(128 * math.sqrt(scale)))
    nm = NeuronModel("if", threshold=1.0, reset="zero")

    def w(*shape):
        x = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.1)
        x[x == 0] = np.float32(0.1)
        return x

    C1 = 42  # at scale 1: 1.02 M neurons, 102 M synapses
    s2 = (side - 3) // 2 + 1
    p3 = s2 // 8
    f2 = max(16, int(round(4096 * scale)))
    pops = [Population("input", (4, side, side), encoding=InputEncoding("poisson", 400.0)),
            Population("c1", (C1, side, side), neuron=nm),
            Population("c2", (16, s2, s2), neuron=nm),
            Population("c3", (48, s2, s2), neuron=nm),
            Population("p3", (48, p3, p3), neuron=nm),
            Population("fc1", (4096,), neuron=nm),
            Population("fc2", (f2,), neuron=nm),
            Population("out", (10,), neuron=nm)]
    projs = [Projection("input->c1", "input", "c1", [Conv2d(w(C1, 4, 3, 3), padding=1)]),
             Projection("c1->c2", "c1", "c2", [Conv2d(w(16, C1, 3, 3), stride=2)]),
             Projection("c2->c3", "c2", "c3", [Conv2d(w(48, 16, 3, 3), padding=1)]),
             Projection("c3->p3", "c3", "p3", [AvgPool2d(8)]),
             Projection("p3->fc1", "p3", "fc1", [Flatten(), Dense(w(4096, 48 * p3 * p3))]),
             Projection("fc1->fc2", "fc1", "fc2", [Dense(w(f2, 4096))]),
             Projection("fc2->out", "fc2", "out", [Dense(w(10, f2))])]
    return Network(pops, projs, input="input", output="out").validate()


def build_dense(scale: float, seed: int = 0):
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    rng = np.random.default_rng(seed)
    nm = NeuronModel("if", threshold=1.0, reset="zero")
    n, layers = int(round(4096 * math.sqrt(scale))) // 2 * 2, 7
    full = layers - 1
    pops = [Population("input", (n,), encoding=InputEncoding("poisson", 400.0))]
    projs = []
    for k in range(layers):
        w = rng.standard_normal((n, n), dtype=np.float32) * np.float32(0.02)
        w[w == 0] = np.float32(0.02)
        if k >= full:                          # block-diagonal: two halves of 2048
            w[: n // 2, n // 2:] = 0
            w[n // 2:, : n // 2] = 0
        pops.append(Population(f"d{k + 1}", (n,), neuron=nm))
        projs.append(Projection(f"{pops[-2].name}->d{k + 1}", pops[-2].name, f"d{k + 1}", [Dense(w)]))
    pops.append(Population("out", (10,), neuron=nm))
    projs.append(Projection(f"d{layers}->out", f"d{layers}", "out",
                            [Dense(rng.standard_normal((10, n), dtype=np.float32) + np.float32(5))]))
    return Network(pops, projs, input="input", output="out").validate()


def count(net) -> tuple:
    from spikeport.deploy.partition import analyze

    an = analyze(net)
    neurons = sum(p.size for p in net.populations)
    synapses = sum(int(an.fan_in(p.name).sum()) for p in net.populations if not p.is_input)
    return neurons, synapses


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nets", default="mixed,dense")
    ap.add_argument("--scales", default="0.25,0.5,1")
    ap.add_argument("--targets", default="loihi,spinnaker,truenorth")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    from spikeport import hardware_profiles
    from spikeport.deploy.partition import partition
    from spikeport.errors import SpikeportError

    known = hardware_profiles.names()
    targets = [t for t in args.targets.split(",") if t in known]
    rows = []
    builders = {"mixed": build, "dense": build_dense}
    for kind, scale in ((k, float(s)) for k in args.nets.split(",") for s in args.scales.split(",")):
        t0 = time.perf_counter()
        net = builders[kind](scale)
        neurons, synapses = count(net)
        built = time.perf_counter() - t0
        for target in targets:
            profile = hardware_profiles.load(target)
            profile = dataclasses.replace(profile, quantities={k: q for k, q in profile.quantities.items()
                                                               if k != "chip.chips_max"})
            t1 = time.perf_counter()
            try:
                part = partition(net, profile)
                row = {"net": kind, "scale": scale, "target": target, "neurons": neurons, "synapses": synapses,
                       "seconds": round(time.perf_counter() - t1, 3), "cores": part.cores, "chips": part.chips,
                       "fits": True, "why": ""}
            except SpikeportError as exc:
                row = {"net": kind, "scale": scale, "target": target, "neurons": neurons, "synapses": synapses,
                       "seconds": round(time.perf_counter() - t1, 3), "cores": None, "chips": None, "fits": False,
                       "why": str(exc)}
            row["build_s"] = round(built, 2)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    print("| net | scale | neurons | synapses | target | partition s | cores | chips |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['net']} | {r['scale']:g} | {r['neurons']:,} | {r['synapses']:,} | {r['target']} | {r['seconds']:.2f} | "
              + (f"{r['cores']:,} | {r['chips']} |" if r["fits"] else f"does not fit | {r['why'][:90]} |"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
