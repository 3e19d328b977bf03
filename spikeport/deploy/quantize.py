"""Quantization: a floating-point network -> the same network in a chip's integer formats.

``quantize(network, FixedPoint(...))`` returns a network whose ``fixed_point`` is
set (its integer semantics: :mod:`spikeport.ir.arithmetic`) and a per-projection
report of what rounding did. Per post population P, every incoming
projection's effective weights (an average pooling's 1/k**2 folded into the
weighted op; a projection of pooling alone becomes the equivalent depthwise
convolution) share one LSB::

    q_P = max |w_eff| / (2**(weight_bits - 1) - 1)
    w_int = round(w_eff / q_P);  theta, bias, v_init -> round(x / q_P)

so the largest weight uses the whole range. The report gives, per projection,
the largest and mean absolute weight error (in the float network's units) and
the fraction of nonzero weights that became zero, and per population q_P and
the integer threshold. A threshold or bias that does not fit the state bits is
refused naming the population and the bits it would need.
"""
from __future__ import annotations

import copy
import dataclasses
import math

import numpy as np

from ..errors import GraphError
from ..ir import AvgPool2d, Conv2d, FixedPoint, Network, SumPool2d


def effective_ops(proj, pre_shape):
    """Ops of ``proj`` with sums instead of averages, the 1/k**2 factors folded into one weighted op."""
    factor, ops = 1.0, []
    for op in proj.ops:
        if isinstance(op, AvgPool2d):
            factor *= op.factor()
            op = SumPool2d(op.kernel_size, op.stride, op.padding)
        ops.append(copy.copy(op))
    weighted = [i for i, op in enumerate(ops) if "weight" in op.arrays()]
    if len(weighted) > 1:
        raise GraphError(f"projection {proj.name!r}: a chain with {len(weighted)} weighted ops cannot be quantized "
                         f"(put a population between them)")
    if not weighted:  # pooling alone: the equivalent depthwise convolution, weights = the pooling's factor
        shape, new_ops = tuple(pre_shape), []
        for op in ops:
            if isinstance(op, SumPool2d):
                kernel = op.depthwise_kernel(shape[0]) * factor
                op = Conv2d(kernel, stride=op.stride, padding=op.padding, groups=shape[0])
                factor = 1.0
            new_ops.append(op)
            shape = op.out_shape(shape, proj.name)
        ops, weighted = new_ops, [i for i, op in enumerate(new_ops) if "weight" in op.arrays()]
        if not weighted:  # a bare flatten: an identity of weight 1
            raise GraphError(f"projection {proj.name!r}: has no weights to quantize")
    i = weighted[0]
    ops[i] = dataclasses.replace(ops[i], weight=np.asarray(ops[i].weight, dtype=np.float64) * factor)
    return ops, i


def _state_integers(pop, what, values, q, smax, bits):
    """A per-neuron state array (bias, v_init) in LSBs of ``q``, or None; refused beyond the state bits."""
    if values is None:
        return None
    out = np.rint(values.astype(np.float64) / q)
    if np.abs(out).max() > smax:
        raise GraphError(f"population {pop.name!r}: {what} needs more than {bits} state bits")
    return out.astype(np.float32)


def quantize(network: Network, fmt: FixedPoint) -> tuple[Network, dict]:
    """Round ``network`` to the integer formats ``fmt``; return (fixed-point network, report)."""
    network.validate()
    fmt.validate("fixed point")
    if network.fixed_point is not None:
        raise GraphError("network: already fixed-point")
    wmax, smax = fmt.weight_max, fmt.state_max
    shapes = {p.name: p.shape for p in network.populations}
    effective = {pr.name: effective_ops(pr, shapes[pr.pre]) for pr in network.projections}
    lsb = {}
    for pop in network.populations:
        if pop.is_input:
            continue
        largest = max((float(np.abs(effective[pr.name][0][effective[pr.name][1]].weight).max())
                       for pr in network.projections_into(pop.name)), default=0.0)
        # no incoming weights: let the threshold use the weight range
        lsb[pop.name] = largest / wmax if largest > 0 else pop.neuron.threshold / wmax
    report = {"format": fmt.to_dict(), "projections": [], "populations": []}
    weights = {}
    for pr in network.projections:
        ops, i = effective[pr.name]
        q = lsb[pr.post]
        w = ops[i].weight
        w_int = weights[pr.name] = np.clip(np.rint(w / q), -wmax, wmax)
        err = np.abs(w_int * q - w)
        nonzero = w != 0
        report["projections"].append({
            "name": pr.name, "lsb": q, "weights": int(w.size),
            "max_abs_error": float(err.max()) if err.size else 0.0,
            "mean_abs_error": float(err.mean()) if err.size else 0.0,
            "zeroed_fraction": float(((w_int == 0) & nonzero).sum() / max(int(nonzero.sum()), 1))})
    states = {}
    for pop in network.populations:
        if pop.is_input:
            continue
        q, nm = lsb[pop.name], pop.neuron
        theta = round(nm.threshold / q)
        need = math.ceil(math.log2(max(abs(theta), 1) + 1)) + 1
        if theta > smax:
            raise GraphError(f"population {pop.name!r}: threshold {nm.threshold:g} is {theta} LSBs, which needs "
                             f"{need} state bits (the format has {fmt.state_bits})")
        bias, v_init = (_state_integers(pop, what, getattr(pop, what), q, smax, fmt.state_bits)
                        for what in ("bias", "v_init"))
        theta_int, v0 = float(max(theta, 1)), float(round(nm.v_init / q))
        report["populations"].append({"name": pop.name, "lsb": q, "threshold_int": int(theta_int),
                                      "threshold_error": abs(theta_int * q - nm.threshold)})
        states[pop.name] = (theta_int, v0, bias, v_init)
    return assemble(network, effective, weights, states, fmt, report), report


def integers(a) -> np.ndarray:
    """Integer values as float32 where that is exact, else float64 (the graph's array types)."""
    a = np.asarray(a, dtype=np.float64)
    f = a.astype(np.float32)
    return f if np.array_equal(f.astype(np.float64), a) else a


def assemble(network: Network, effective: dict, weights: dict, states: dict, fmt: FixedPoint,
             report: dict) -> Network:
    """The fixed-point network every quantizer returns.

    effective: {projection: (ops, index of the weighted op)}, the ops with averages folded
    (:func:`effective_ops`); weights: {projection: integer weights of that op}; states:
    {population: (threshold, scalar v_init, bias array or None, v_init array or None)}, all
    integers in the population's units; the report goes into the metadata.
    """
    projections = []
    for pr in network.projections:
        ops, i = effective[pr.name]
        ops = list(ops)
        ops[i] = dataclasses.replace(ops[i], weight=integers(weights[pr.name]))
        projections.append(dataclasses.replace(pr, ops=ops))
    populations = []
    for pop in network.populations:
        if pop.is_input:
            populations.append(pop)
            continue
        theta, v0, bias, v_init = states[pop.name]
        neuron = dataclasses.replace(pop.neuron, threshold=float(theta), v_init=float(v0))
        populations.append(dataclasses.replace(pop, neuron=neuron, bias=None if bias is None else integers(bias),
                                               v_init=None if v_init is None else integers(v_init)))
    meta = dict(network.metadata, quantization=report)
    return Network(populations, projections, dt_s=network.dt_s, input=network.input, output=network.output,
                   readout=network.readout, metadata=meta, fixed_point=fmt).validate()
