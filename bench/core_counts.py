"""Core counts against the vendors' own mappers (issue 11).

    OMP_NUM_THREADS=1 .venv/bin/python bench/core_counts.py [--model out/bench/lenet-mnist.pt]
        [--nets lenet,mlp2000,digits-conv,cnn-digits] [--encoding poisson] [--npc auto,64]
        [--json out/bench/core-counts.json]

Networks (every input spiking, ``--encoding``, so that input axons and spike sources count):

- lenet: the MNIST LeNet of the conversion tables (``--model``, made by ``.venv/bin/spikeport
  train --dataset mnist --arch lenet --method relu --seed 0 --out out/bench/lenet-mnist.pt``),
  converted as bench/backends.py converts it (percentile 99.9, v(0) 1/2): conv 20@5x5 - pool -
  conv 50@5x5 - pool - fc 200 - fc 10, the poolings folded into the projections;
- mlp2000: 784-2000-2000-10 with random dense weights (seed 0, none zero), built directly;
- digits-conv: conv 8@3x3 - avgpool 2 - fc 64 - fc 10 trained on digits (tests/conftest.py's
  digits_conv_snn recipe, 12 epochs) and converted;
- cnn-digits: spikeport's ``cnn`` architecture (32C3-32C3-P2-64C3-64C3-P2-FC256-10) on the
  digits' 1x8x8 input, untrained (torch seed 0), converted.

Loihi: ``partition(net, load("loihi"))`` gives the cores and the block shape of every
population (``vendor["block_shape"]``). The network is then lowered as spikeport's
nengo-loihi backend lowers it (``Lowered``), every ensemble's ``block_shape`` set to
exactly those shapes (as ``emit_loihi.write_loihi(block_shapes=...)`` sets them), and built
by nengo-loihi's own builder (``nengo_loihi.builder.Model.build``: its split, discretization
and validation of every block against a core), then allocated by its ``Greedy`` allocator
(one block per core, 128 cores per chip). Compared: spikeport's cores with nengo-loihi's
blocks (= the allocator's cores), per population too, and the chips. Then the same lowering
is built once more with no ``block_shape`` at all: nengo-loihi's own automatic split, which
either builds (its blocks are reported) or fails (its error line is reported).

SpiNNaker: ``partition(net, load("spinnaker"), neurons_per_core=N)`` and sPyNNaker 7.4's
placements on a virtual SpiNN-5 board (``backends.spinnaker.placements``: the whole mapping
runs, partitioning, placement, routing, data generation) with the same setting: "auto" is
spikeport's own choice (at most core.neurons = 256 per core) passed as the per-population
setting it emits (``vendor["neurons_per_core"]``, ``set_max_atoms_per_core``); a number N
is ``neurons_per_core=N`` on both sides. Counted alike on both sides: application cores,
i.e. each population's slices, the spiking input's ``SpikeSourceArray`` and any delay
extension; not counted on either side: sPyNNaker's system cores (an ExtraMonitor on every
chip of the board and one packet gatherer: 49 on a SpiNN-5 board, whatever the network)
and each chip's SCAMP monitor (not a placed vertex), reported apart.

Timing: spikeport's partition seconds against the vendor's build (nengo-loihi: build and
allocation, not spikeport's lowering into nengo objects; sPyNNaker: its whole mapping).
Prints markdown tables; ``--json`` writes every row.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
import warnings
from collections import OrderedDict
from pathlib import Path

import numpy as np

import spikeport
from spikeport.errors import SpikeportError
from spikeport.hardware_profiles import load

NETS = ("lenet", "mlp2000", "digits-conv", "cnn-digits")


# ---------------------------------------------------------------------------- networks

def lenet(args):
    from spikeport.models import convert, load_model

    if not Path(args.model).is_file():
        raise SystemExit(f"{args.model}: no such file; make it with `.venv/bin/spikeport train --dataset mnist "
                         f"--arch lenet --method relu --seed 0 --out {args.model}` (about 18 min on two cores)")
    model = load_model(args.model)
    ds = spikeport.load_dataset(model.meta["dataset"])
    return convert(model.module, ds.x("train"), norm="percentile", v_init="half", encoding=args.encoding)


def mlp2000(args):
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    rng = np.random.default_rng(0)
    sizes = [784, 2000, 2000, 10]
    nm = NeuronModel("if", threshold=1.0, reset="subtract")
    pops = [Population("input", (784,), encoding=InputEncoding(args.encoding, 1000.0))]
    projs = []
    for i, n in enumerate(sizes[1:], start=1):
        w = rng.normal(0, 1 / np.sqrt(sizes[i - 1]), (n, sizes[i - 1])).astype(np.float32)
        w[w == 0] = 0.01
        pops.append(Population(f"fc{i}", (n,), neuron=nm))
        projs.append(Projection(f"{pops[-2].name}->fc{i}", pops[-2].name, f"fc{i}", [Dense(w)]))
    return Network(pops, projs, input="input", output="fc3").validate()


def digits_conv(args):
    """tests/conftest.py's digits conv network, with the bench's input encoding."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import digits_conv_model

    from spikeport.models import convert

    model, ds = digits_conv_model()
    return convert(model, ds.x("train")[:512], encoding=args.encoding)


def cnn_digits(args):
    import torch

    from spikeport.models import ArchSpec, build, convert

    ds = spikeport.load_dataset("digits")
    torch.manual_seed(0)
    module = build(ArchSpec("cnn", tuple(ds.x("train").shape[1:]), 10))
    return convert(module.eval(), ds.x("train")[:512], encoding=args.encoding)


BUILDERS = {"lenet": lenet, "mlp2000": mlp2000, "digits-conv": digits_conv, "cnn-digits": cnn_digits}


# ---------------------------------------------------------------------------- Loihi

def _nengo_loihi_build(net, bias, shapes):
    """nengo-loihi's build of spikeport's lowering with ``shapes`` {name: dims} (None: no block_shape set).
    Returns a dict: built or the error line, blocks per population, chips of the Greedy allocator."""
    import nengo
    from nengo_loihi.builder import Model
    from nengo_loihi.hardware.allocators import Greedy

    from spikeport.backends import loihi
    from spikeport.deploy import emit_loihi

    t0 = time.perf_counter()
    lowered = loihi.Lowered(net, bias, "transform", None)
    names = lowered.ensembles
    if shapes is not None:
        for name, shape in emit_loihi.check_block_shapes(net, names, shapes).items():
            lowered.net.config[names[name]].block_shape = shape
    lower_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model = Model(dt=net.dt_s, label="core counts")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.build(lowered.net)
            board = Greedy()(model, n_chips=10**6)
    except (nengo.exceptions.NengoException, AssertionError, ValueError) as exc:
        return {"built": False, "error": " ".join(str(exc).split()) or type(exc).__name__,
                "seconds": time.perf_counter() - t0, "lower_seconds": lower_s}
    seconds = time.perf_counter() - t0
    per = OrderedDict()
    for name, ens in names.items():
        out = model.objs[ens]["out"]
        per[name] = len(out) if isinstance(out, list) else 1
    shape_of = {str(b.label): s for b, s in model.block_shapes.items()}
    used = {name: [int(d) for d in shape_of[str(ens)].shape] if shape_of.get(str(ens)) is not None else None
            for name, ens in names.items()}
    return {"built": True, "blocks": len(model.blocks), "cores": int(sum(c.n_cores for c in board.chips)),
            "chips": int(board.n_chips), "populations": per, "block_shapes": used,
            "conv_transforms": list(lowered.conv_used), "seconds": seconds, "lower_seconds": lower_s}


def loihi_row(name, net):
    from spikeport.backends import loihi
    from spikeport.deploy.partition import partition

    part = partition(net, load("loihi"))
    shapes = part.vendor["block_shape"]
    bias = loihi.Biases(net, np.zeros((1, net.population(net.input).size), np.float32)).build_bias()
    given = _nengo_loihi_build(net, bias, shapes)
    default = _nengo_loihi_build(net, bias, None)
    ours = {lay["name"]: lay["cores"] for lay in part.layers if lay["kind"] != "input"}
    theirs = given.get("populations", {})
    return {"network": name, "target": "loihi", "neurons": int(sum(p.size for p in net.populations if not p.is_input)),
            "spikeport": {"cores": part.cores, "chips": part.chips, "populations": ours, "block_shapes": shapes,
                          "seconds": part.seconds},
            "nengo_loihi": given, "nengo_loihi_default": default,
            "equal": bool(given["built"] and part.cores == given["blocks"] == given["cores"]),
            "equal_per_population": bool(given["built"] and ours == dict(theirs))}


def _shape(dims):
    return "x".join(str(d) for d in dims)


def print_loihi(row):
    sp, nl, df = row["spikeport"], row["nengo_loihi"], row["nengo_loihi_default"]
    if nl["built"]:
        pops = ", ".join(f"{n} {c}{'=' if nl['populations'].get(n) == c else '≠'}{nl['populations'].get(n)} "
                         f"({_shape(sp['block_shapes'][n])})" for n, c in sp["populations"].items())
        theirs = f"{nl['blocks']} blocks, {nl['cores']} cores on {nl['chips']} chip(s)"
    else:
        pops, theirs = "", f"refused: {nl['error']}"
    own = (f"builds: {df['blocks']} blocks" if df["built"] else f"fails: {df['error'][:150]}") + \
        f" ({df['seconds']:.1f} s)"
    print(f"| {row['network']} | {row['neurons']:,} | {sp['cores']} on {sp['chips']} chip(s) | {theirs} | "
          f"{'yes' if row['equal'] and row['equal_per_population'] else 'NO'} | {pops} | {sp['seconds']:.2f} | "
          f"{nl['seconds']:.1f} | {own} |", flush=True)


# ---------------------------------------------------------------------------- SpiNNaker

def spinnaker_row(name, net, setting):
    from spikeport.backends import spinnaker
    from spikeport.deploy.partition import partition

    part = partition(net, load("spinnaker"), neurons_per_core=None if setting == "auto" else int(setting))
    given = part.vendor["neurons_per_core"] if setting == "auto" else int(setting)
    row = {"network": name, "target": "spinnaker", "setting": setting, "neurons_per_core_given": given,
           "spikeport": {"cores": part.cores, "chips": part.chips, "seconds": part.seconds,
                         "populations": {lay["name"]: lay["cores"] for lay in part.layers}}}
    try:
        placed = spinnaker.placements(net, neurons_per_core=given, mapping_only=False)  # as recorded: with data generation
    except SpikeportError as exc:
        row.update(spynnaker={"error": str(exc)}, equal=False, equal_per_population=False)
        return row
    theirs = {k: v["cores"] for k, v in placed["populations"].items()}
    theirs.update({k: v["cores"] for k, v in placed["other"].items() if k != "system"})
    system = placed["other"].get("system", {}).get("cores", 0)
    per_chip = {}
    for k, entry in list(placed["populations"].items()) + list(placed["other"].items()):
        for x, y, *_ in entry["placements"]:
            per_chip.setdefault(f"{x},{y}", {"application": 0, "system": 0})[
                "system" if k == "system" else "application"] += 1
    row["spynnaker"] = {"cores": placed["total_cores"], "chips": placed["total_chips"], "populations": theirs,
                        "system_cores": system, "seconds": placed["seconds"],
                        "cores_per_chip": {c: v for c, v in sorted(per_chip.items()) if v["application"]}}
    row["equal"] = part.cores == placed["total_cores"]
    row["equal_per_population"] = row["spikeport"]["populations"] == theirs
    return row


def print_spinnaker(row):
    sp, sy = row["spikeport"], row["spynnaker"]
    setting = row["setting"]
    if "error" in sy:
        print(f"| {row['network']} | {setting} | {sp['cores']} | refused: {sy['error']} | NO | | | | |", flush=True)
        return
    names = list(dict.fromkeys(list(sp["populations"]) + list(sy["populations"])))
    ours, theirs = sp["populations"], sy["populations"]
    pops = ", ".join(f"{n} {ours.get(n, 0)}{'=' if ours.get(n, 0) == theirs.get(n, 0) else '≠'}{theirs.get(n, 0)}"
                     for n in names)
    print(f"| {row['network']} | {setting} | {sp['cores']} | {sy['cores']} (+{sy['system_cores']} system) | "
          f"{'yes' if row['equal'] and row['equal_per_population'] else 'NO'} | {pops} | "
          f"{sp['chips']} / {sy['chips']} | {sp['seconds']:.3f} | {sy['seconds']:.1f} |", flush=True)


# ---------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="out/bench/lenet-mnist.pt")
    ap.add_argument("--nets", default=",".join(NETS))
    ap.add_argument("--encoding", default="poisson", help="the input's encoding (poisson, regular or analog)")
    ap.add_argument("--npc", default="auto,64", help="SpiNNaker neurons-per-core settings: auto and/or numbers")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    nets = args.nets.split(",")
    unknown = [n for n in nets if n not in BUILDERS]
    if unknown:
        ap.error(f"unknown network {unknown[0]!r} (known: {', '.join(NETS)})")
    settings = [s if s == "auto" else int(s) for s in args.npc.split(",") if s]
    print(f"{platform.node()}, {time.strftime('%Y-%m-%d %H:%M')}; input encoding {args.encoding}", flush=True)
    built = OrderedDict()
    for name in nets:
        t0 = time.perf_counter()
        built[name] = BUILDERS[name](args)
        print(f"{name}: " + ", ".join(f"{p.name} {_shape(p.shape)}" for p in built[name].populations)
              + f" (made in {time.perf_counter() - t0:.1f} s)", flush=True)
    rows = []

    def save():
        if args.json:
            Path(args.json).parent.mkdir(parents=True, exist_ok=True)
            Path(args.json).write_text(json.dumps(
                {"machine": platform.node(), "date": time.strftime("%Y-%m-%d"), "encoding": args.encoding,
                 "rows": rows}, indent=1, default=str) + "\n")

    print("\nLoihi: spikeport's partition against nengo-loihi built with the block shapes it emits\n")
    print("| network | neurons | spikeport cores | nengo-loihi, spikeport's block shapes | equal | per population "
          "(spikeport=nengo-loihi, block shape) | partition (s) | nengo-loihi build (s) | nengo-loihi's own split |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    for name, net in built.items():
        rows.append(loihi_row(name, net))
        save()
        print_loihi(rows[-1])
    print("\nSpiNNaker: spikeport's partition against sPyNNaker's placements (virtual SpiNN-5 board)\n")
    print("| network | neurons per core | spikeport cores | sPyNNaker cores | equal | per population "
          "(spikeport=sPyNNaker) | chips spikeport / sPyNNaker | partition (s) | sPyNNaker mapping (s) |")
    print("|---|---|---|---|---|---|---|---|---|", flush=True)
    for name, net in built.items():
        for setting in settings:
            rows.append(spinnaker_row(name, net, setting))
            save()
            print_spinnaker(rows[-1])


if __name__ == "__main__":
    main()
