"""The same network as an ANN on a conventional device (cpu, gpu): the baselines a chip is
compared with.

:func:`ann_macs`: the multiply-accumulates and additions of one pass, counted from the ops'
shapes (each op's ``ann_ops``; never materialized); :func:`baseline`: those operations times
``energy.mac_j`` of the device's profile, plus its static power over the time of one pass
(a time model per call, per layer, per byte moved and per MAC, from the profile).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import SpikeportError
from .energy import CORNERS, Coefficients, corner_band


def ann_macs(network) -> dict:
    """Multiply-accumulates and additions of one pass of ``network`` run as an ANN.

    Counted from the ops' shapes (fast on any size; nothing is materialized): see
    each op's ``ann_ops`` (:mod:`spikeport.ir.ops`). Besides the ops, one add per neuron for a bias, and one add per
    neuron for every incoming projection beyond the first (residual sums). Activation
    functions (a comparison per neuron) are not counted.

    Returns
    -------
    dict: ``macs``, ``adds`` (totals), ``weights`` (parameters: the ops' weights and the
    biases), ``values`` (activations of one pass: every population's outputs, input included),
    ``projections`` [{``name``, ``pre``, ``post``, ``macs``, ``adds``}], ``layers``
    [{``name``, ``neurons``, ``macs``, ``adds``}] (per receiving population: its projections,
    its bias and its residual sums).
    """
    shapes = {p.name: tuple(p.shape) for p in network.populations}
    projections, weights = [], 0
    per_post = {p.name: [0, 0] for p in network.populations if not p.is_input}
    for proj in network.projections:
        shape, macs, adds = shapes[proj.pre], 0, 0
        for op in proj.ops:
            out = op.out_shape(shape, f"projection {proj.name!r} op {op.kind}")
            m, a = op.ann_ops(out)
            macs, adds, shape = macs + m, adds + a, out
            w = getattr(op, "weight", None)
            weights += 0 if w is None else math.prod(w.shape)
        projections.append({"name": proj.name, "pre": proj.pre, "post": proj.post, "macs": macs, "adds": adds})
        per_post[proj.post][0] += macs
        per_post[proj.post][1] += adds
    layers = []
    for pop in network.populations:
        if pop.is_input:
            continue
        into = sum(1 for proj in network.projections if proj.post == pop.name)
        extra = pop.size * max(0, into - 1) + (pop.size if pop.bias is not None else 0)
        macs, adds = per_post[pop.name][0], per_post[pop.name][1] + extra
        layers.append({"name": pop.name, "neurons": pop.size, "macs": macs, "adds": adds})
    weights += sum(pop.size for pop in network.populations if pop.bias is not None)
    return {"macs": sum(lay["macs"] for lay in layers), "adds": sum(lay["adds"] for lay in layers),
            "weights": weights, "values": sum(pop.size for pop in network.populations),
            "projections": projections, "layers": layers}


def baseline(network, profile, batch: int = 1) -> dict:
    """Energy, speed and power of ``network`` run as an ANN on the conventional device of ``profile``,
    ``batch`` inferences per call.

    Where the profile gives the device's time model (``time.call_s``, ``time.layer_s``,
    ``time.byte_s``, ``time.op_s``) and its power while busy (``energy.active_w``)::

        time per call      = call_s                              (framework overhead, input and output)
                           + layers x layer_s                     (each layer's kernels and their dispatch)
                           + bytes x byte_s                       (memory traffic at the memory's bandwidth)
                           + batch x (MACs + adds) x op_s         (the arithmetic)
        bytes              = 4 x weights (read once per call) + batch x 8 x values (every activation
                             written once and read once, float32)
        time per inference = time per call / batch;  inferences/s = 1 / that
        dynamic            = active_w x time per inference      (power above idle while busy)
        static             = idle power (static_chip_w) x time per inference

    which is how devices spend energy at small batches: waiting on overhead, not multiplying.
    ``layers`` counts the populations that receive projections. A profile without
    ``layer_s`` or ``byte_s`` leaves that term out and lists it as unknown.
    Otherwise the older per-operation model: dynamic = (MACs + adds) x ``energy.mac_j``, static
    = idle power x ``time.dt_s`` (the time of one pass, an assumption the profile names).

    Returns
    -------
    dict: ``batch``, ``macs``, ``adds``, ``ops_charged``, ``energy_per_inference_j``, ``dynamic_j``,
    ``overhead_j`` (the dynamic energy of the per-call overhead), ``static_j``, ``power_w``,
    ``inferences_per_s``, ``time_per_inference_s``, ``time_per_call_s``, ``model``, ``layers``
    [{``name``, ``neurons``, ``macs``, ``adds``, ``dynamic_j``}], ``band`` {key: [low, high]},
    ``unknown``, ``unknown_why``, ``complete``, ``sources``. A term needing an unknown coefficient
    is null; sums are over the known terms.
    """
    if profile.neuromorphic:
        raise SpikeportError(f"profile {profile.name!r} is a neuromorphic chip; a baseline needs a conventional "
                             f"device (cpu, gpu); use spikeport.deploy.energy.estimate for a chip")
    if not isinstance(batch, (int, np.integer)) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"baseline: batch must be a positive integer, got {batch!r}")
    counts = ann_macs(network)
    ops = counts["macs"] + counts["adds"]
    n_layers = len(counts["layers"])
    traffic = 4 * counts["weights"] + batch * 8 * counts["values"]
    timed = all(profile.value(k) is not None for k in ("time.call_s", "time.op_s", "energy.active_w"))
    runs = {}
    for corner in CORNERS:
        coef = Coefficients(profile, corner)
        if timed:
            call_s, op_s, active_w = coef.get("time.call_s"), coef.get("time.op_s"), coef.get("energy.active_w")
            t_call = (call_s + (coef.term(n_layers, "time.layer_s") or 0.0)
                      + (coef.term(traffic, "time.byte_s") or 0.0) + batch * ops * op_s)
            t_inf = t_call / batch
            layers = [{**lay, "dynamic_j": active_w * (lay["macs"] + lay["adds"]) * op_s} for lay in counts["layers"]]
            overhead_j = active_w * (t_call - batch * ops * op_s) / batch
            dynamic_j = active_w * t_inf
        else:
            t_inf = coef.get("time.dt_s")
            t_call = t_inf * batch
            layers = [{**lay, "dynamic_j": coef.term(lay["macs"] + lay["adds"], "energy.mac_j")}
                      for lay in counts["layers"]]
            overhead_j = 0.0
            dynamic_j = coef.term(ops, "energy.mac_j")
        static_j = coef.term(t_inf, "energy.static_chip_w")
        energy_j = (dynamic_j or 0.0) + (static_j or 0.0)
        runs[corner] = {"coef": coef, "layers": layers, "dynamic_j": dynamic_j, "overhead_j": overhead_j,
                        "static_j": static_j, "energy_per_inference_j": energy_j, "power_w": energy_j / t_inf,
                        "inferences_per_s": 1.0 / t_inf, "time_per_inference_s": t_inf, "time_per_call_s": t_call}
    r, coef = runs["value"], runs["value"]["coef"]
    band = corner_band(runs, ("energy_per_inference_j", "dynamic_j", "static_j", "power_w", "inferences_per_s",
                        "time_per_inference_s"))
    return {
        "batch": int(batch), "model": "overhead + arithmetic at the measured busy power" if timed
        else "per-operation energy over an assumed pass time",
        "macs": counts["macs"], "adds": counts["adds"], "ops_charged": ops, "weights": counts["weights"],
        "layers_timed": n_layers, "bytes_per_call": traffic,
        **{k: r[k] for k in ("energy_per_inference_j", "dynamic_j", "overhead_j", "static_j", "power_w",
                             "inferences_per_s", "time_per_inference_s", "time_per_call_s")},
        "layers": r["layers"], "band": band, "unknown": sorted(coef.unknown),
        "unknown_why": dict(sorted(coef.unknown.items())), "complete": not coef.unknown,
        "sources": dict(sorted(coef.sources.items())),
    }
