"""The graph as the Brian2 engine's description: what the brian2 backend runs and ``deploy``
writes beside ``run_brian2.py`` (``brian2_network.json`` and ``.npz``).

The engine (:mod:`spikeport.runtimes.brian2_engine`, which states the lowering) takes plain
arrays; here they are made from a :class:`~spikeport.ir.Network`: per spiking population
its neuron constants, v_init and bias, per projection between spike-emitting populations
its materialized synapses (``Projection.materialize``: exact for conv/pool/flatten chains),
and per batch of samples the analog input's currents (``apply_numpy`` in float64, per
receiving population and delay) or the spiking input's trains (``common.input_trains``).
Nothing here imports brian2.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpikeportError
from . import common

NAME = "brian2"
SUPPORTS = ("reset_amount", "strict_threshold")  # neuron features beyond plain IF/LIF the lowering realizes
FORMAT = "spikeport-brian2-script"


def require(network, fixed_point_ok: bool = False) -> list:
    """The populations in feed-forward order, or the one-line error of what the Brian2 lowering
    cannot realize (several spikes per step, a recurrent graph), the same for the backend and the
    script. A fixed-point network is refused as by every simulator backend unless
    ``fixed_point_ok`` (the script: a deployed network runs in its chip's integer formats)."""
    if not fixed_point_ok or network.fixed_point is None:
        return common.require_simulable(network, NAME, supports=SUPPORTS)
    network.validate()
    common.require_features(network, NAME, SUPPORTS)
    try:
        return network.order(all_projections=True)
    except SpikeportError as exc:
        raise SpikeportError(f"the {NAME} backend runs feed-forward networks only: {exc}") from None


def _index_dtype(n: int):
    return np.int32 if n < 2**31 else np.int64


def describe(network, steps: int, seed: int = 0, order=None) -> tuple:
    """(meta, arrays): the engine's description of ``network`` for runs of ``steps`` steps, without
    samples (meta["samples"] = 0; :func:`analog_currents` and ``common.input_trains`` give them).
    ``order``: what :func:`require` returned, where the caller has checked the network already."""
    order = require(network, fixed_point_ok=True) if order is None else order
    steps = int(steps)
    if steps < 1:
        raise SpikeportError(f"steps must be at least 1, got {steps}")
    fixed = network.fixed_point
    inp = network.population(network.input)
    analog = inp.encoding.kind == "analog"
    arrays, pops, projs = {}, [], []
    for pop in order:
        if pop.is_input:
            continue
        key = f"pop{len(pops)}"
        nm = pop.neuron
        delays = sorted({pr.delay_steps for pr in network.projections_into(pop.name) if pr.pre == inp.name}) \
            if analog else []
        arrays[f"{key}_v_init"] = pop.initial_membrane().reshape(-1)
        arrays[f"{key}_bias"] = (np.zeros(pop.size) if pop.bias is None
                                 else pop.bias.astype(np.float64).reshape(-1))
        entry = {"name": pop.name, "key": key, "size": pop.size, "shape": list(pop.shape),
                 "model": nm.model, "threshold": float(nm.threshold), "decay": float(nm.decay),
                 "syn_decay": None if nm.syn_decay is None else float(nm.syn_decay), "reset": nm.reset,
                 "refractory_steps": int(nm.refractory_steps), "analog_delays": delays}
        if nm.subtracted != float(nm.threshold):  # only where used: other networks' files stay as they were
            entry["reset_amount"] = nm.subtracted
        if nm.strict_threshold:
            entry["strict_threshold"] = True
        pops.append(entry)
    for m, proj in enumerate(network.projections):
        pre = network.population(proj.pre)
        if pre.is_input and analog:
            continue  # an analog input is a current, given per sample
        syn = proj.materialize(pre.shape)
        weight = np.asarray(syn.weight, np.float64)
        if fixed is not None and not np.array_equal(weight, np.rint(weight)):
            raise SpikeportError(f"brian2 script: projection {proj.name!r} of a fixed-point network has "
                                 "non-integer synapse weights")
        key = f"proj{m}"
        post = network.population(proj.post)
        arrays[f"{key}_pre"] = syn.pre.astype(_index_dtype(pre.size))
        arrays[f"{key}_post"] = syn.post.astype(_index_dtype(post.size))
        arrays[f"{key}_weight"] = weight
        projs.append({"name": proj.name, "key": key, "pre": proj.pre, "post": proj.post,
                      "delay_steps": int(proj.delay_steps), "synapses": int(len(syn))})
    meta = {"format": FORMAT, "version": 1, "dt_s": float(network.dt_s), "steps": steps,
            "samples": 0, "seed": int(seed), "labels": False,
            "input": {"name": inp.name, "size": inp.size, "shape": list(inp.shape), "encoding": inp.encoding.kind},
            "output": network.output, "order": [p.name for p in order], "populations": pops, "projections": projs,
            "fixed_point": None if fixed is None else {
                **fixed.to_dict(), "state_max": fixed.state_max,
                "decay_int": {p["name"]: {"decay": fixed.decay_int(p["decay"]),
                                          "syn_decay": None if p["syn_decay"] is None
                                          else fixed.decay_int(p["syn_decay"])} for p in pops}}}
    return meta, arrays


def analog_currents(network, meta: dict, x: np.ndarray) -> dict:
    """The analog input's current into every population, per delay of its ``analog_delays``:
    {population: [(samples, size) float64, ...]} (empty for spiking input)."""
    inp = network.population(network.input)
    if inp.encoding.kind != "analog":
        return {}
    xs = np.asarray(x).reshape((len(x),) + tuple(inp.shape)).astype(np.float64)
    out = {}
    for p in meta["populations"]:
        into = [pr for pr in network.projections_into(p["name"]) if pr.pre == inp.name]
        out[p["name"]] = []
        for d in p["analog_delays"]:
            current = np.zeros((len(x), p["size"]))
            for pr in into:
                if pr.delay_steps == d:
                    current += pr.apply_numpy(xs).reshape(len(x), -1)
            out[p["name"]].append(current)
    return out
