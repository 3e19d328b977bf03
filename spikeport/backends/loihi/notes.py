"""What a nengo-loihi run says about itself: each block's use of its core, and the notes
naming what the lowering changes, with its size on the network at hand."""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from .blocks import shape_str
from .lowering import BACKEND


def chip_mapping(lowered, chip) -> dict:
    """Blocks (one per core) and their use, per population (relays included), as nengo-loihi built them
    (``lowered``: the :class:`.lowering.Lowered` that ``chip``, a runtime ``Chip``, was built from)."""
    pops = OrderedDict((name, population_mapping(lowered, chip, name)) for name in chip.blocks)
    cores = sum(m["cores"] for m in pops.values())
    out = {"backend": BACKEND, "cores": cores, "blocks": cores, "populations": pops,
           "lag_steps": {k: int(v) for k, v in lowered.lag.items()},
           "conv_transforms": list(lowered.conv_used),
           "utilization_summary": list(chip.sim.model.utilization_summary())}
    if lowered.process is not None:
        spike_input = lowered.process.input
        out["input"] = {"neurons": int(spike_input.n_neurons),
                        "axons": int(sum(a.axon_slots() for a in spike_input.axons))}
    return out


def population_mapping(lowered, chip, name: str) -> dict:
    """One population's blocks and their use (:func:`chip_mapping`)."""
    blocks = []
    for block in chip.blocks[name]:
        util = block.utilization()
        info = block.discretize_info or {}
        blocks.append({"label": str(block.label),
                       **{k.replace("-", "_"): {"used": int(v[0]), "max": int(v[1])} for k, v in util.items()},
                       "weight_exp": int(info.get("w_exp", 0))})
    shape = lowered.net.config[chip.ensembles[name]].block_shape
    if shape is None:                   # nengo-loihi's own split: runs of consecutive neurons
        n = int(chip.ensembles[name].n_neurons)
        block, ens_shape = [max(b["compartments"]["used"] for b in blocks)], [n]
    else:
        block, ens_shape = [int(d) for d in shape.shape], [int(d) for d in shape.ensemble_shape]
    return {"blocks": len(blocks), "cores": len(blocks), "block_shape": block,
            "ensemble_shape": ens_shape, "per_block": blocks,
            "vth_units": sorted({int(v) for v in chip.vth[name]})[:4],
            "units_per_threshold": float(np.median(chip.units[name]))}


def effective_decay(decay: float, offset: int) -> float:
    """The factor Loihi applies for a graph decay: (4096 - offset - round(...)) / 4096 (discretize.py)."""
    delta = np.round((1.0 - decay) * 4095 - offset)
    return float((4096 - offset - np.clip(delta, 0, 4095)) / 4096)


def precision_notes(network, lowered, chip, lost_bits: list) -> list:
    """What the discretization changes, with its size on this network."""
    th = []
    for name in lowered.ens:
        units = float(np.median(chip.units[name]))
        vth = float(np.median(chip.vth[name]))
        th.append(f"{name} {units:.0f} units, register {vth:.0f} ({100 * (vth + 1 - units) / units:+.2f}%)")
    notes = ["threshold: Loihi spikes when v > vth (the graph: v >= theta), vth in steps of 64 units; "
             "theta per population: " + "; ".join(th),
             "precision: weights 7 bits plus sign at a scale set per block by its largest weight (nengo-loihi "
             "scales that weight to 255, then rounds to even steps and clips at 254), biases 12 bits plus "
             "sign with a 3-bit exponent, integer membranes; an analog input is a per-sample bias W x + b in "
             "that format" + (f"; nengo-loihi warned: {'; '.join(lost_bits)}" if lost_bits else "")]
    leaks = []
    for p in network.populations:
        if p.is_input:
            continue
        nm = p.neuron
        if nm.decay != 1.0:
            leaks.append(f"{p.name} leak {nm.decay:g} -> {effective_decay(nm.decay, 0):.6g}")
        if nm.syn_decay is not None:
            leaks.append(f"{p.name} synaptic decay {nm.syn_decay:g} -> {effective_decay(nm.syn_decay, 1):.6g}")
    if leaks:
        notes.append("decays are 12-bit factors, rounded toward zero every step: " + "; ".join(leaks))
    if any(p.neuron.syn_decay is None for p in network.populations if not p.is_input):
        notes.append("no synaptic filter: nengo-loihi keeps 1/4096 of each step's input current for the next "
                     "step (and scales the weights by 4095/4096 to compensate)")
    return notes


def run_notes(network, lowered, chip, build_s, run_s, samples, steps, built: dict, overflow) -> list:
    """The notes of a run (``Activity.notes``): mapping, blocks, convolutions, latency, relays, reset,
    precision (or simreal), overflows and time."""
    notes = []
    total = steps + max(lowered.lag.values())
    mp = chip_mapping(lowered, chip)
    parts = []
    for name, m in mp["populations"].items():
        worst = {k: max(b[k]["used"] / b[k]["max"] for b in m["per_block"])
                 for k in ("compartments", "in_axons", "out_axons", "synapses")}
        shape = shape_str(m["block_shape"]) + (" consecutive" if len(m["block_shape"]) == 1
                                               and len(m["ensemble_shape"]) == 1 and "~" not in name
                                               and len(network.population(name).shape) > 1 else "")
        parts.append(f"{name} {m['blocks']} block{'s' * (m['blocks'] > 1)} of {shape} (max use: "
                     + ", ".join(f"{100 * v:.0f}% {k.replace('_', '-')}" for k, v in worst.items()) + ")")
    notes.append(f"nengo-loihi mapping: {mp['cores']} cores (one block per core): " + "; ".join(parts))
    if built["blocks"] is not None:
        notes.append(built["blocks"])
    if lowered.conv_used:
        notes.append("convolutions: " + ", ".join(
            name + (f" ({lowered.conv_folded[name]}, exact)" if name in lowered.conv_folded else "")
            for name in lowered.conv_used) + " as nengo-loihi's shared-weight convolution (population axons: "
            "one input axon per presynaptic pixel)")
    lag = {k: v for k, v in lowered.lag.items() if k != network.input}
    notes.append(f"latency: Loihi delivers each connection one step later; populations lag by {lag} steps, "
                 f"so {total} steps ran per sample and each population was read in its own shifted window "
                 "(exact: nothing integrates before its window)")
    n_relay = sum(e.n_neurons for e in lowered.relay_ens.values())
    if n_relay:
        notes.append(f"delays: {len(lowered.relay_ens)} relay populations ({n_relay} neurons, "
                     f"{sum(len(chip.blocks[f'{k[0]}~relay{k[1]}']) for k in lowered.relay_ens)} cores) delay "
                     "spikes exactly to equalize unequal paths and realize delays >= 2 (nengo-loihi has no "
                     "synaptic delays)")
    subtract = [p.name for p in network.populations if not p.is_input and p.neuron.reset == "subtract"]
    if subtract:
        notes.append("reset: Loihi resets the membrane to 0 after a spike; the graph's reset by subtraction "
                     f"(populations {', '.join(subtract)}) is not expressible, so each spike drops its "
                     "overshoot v - theta (fewer spikes for strongly driven neurons)")
    if chip.discrete:
        notes.extend(precision_notes(network, lowered, chip, built["lost_bits"]))
    else:
        notes.append("target simreal: nengo-loihi's model in floating point, without the chip's discretization "
                     "(not what Loihi computes: a check of the lowering alone)")
    if overflow:
        notes.append(overflow)
    notes.append(f"time: build {build_s:.2f} s, run {run_s:.2f} s for {samples} samples "
                 f"({1e3 * run_s / samples:.0f} ms per sample of {total} steps)")
    return notes
