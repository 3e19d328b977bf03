"""Conversion options applied to a network that was not converted by spikeport (an imported NIR file).

``spikeport convert GRAPH.nir`` takes the options a model file takes where they mean something
for a ready spiking network: the input encoding and its rate, the reset, the initial membrane
and a threshold scale. Each is applied to every population it concerns and said in a note.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ..errors import SpikeportError
from .network import Network
from .neurons import InputEncoding


def restate(network: Network, *, encoding: str | None = None, max_rate_hz: float | None = None,
            reset: str | None = None, v_init: str | None = None, threshold_scale: float | None = None) -> tuple:
    """(network, notes): ``network`` with the options given (None: as it is).

    encoding, max_rate_hz: the input population's :class:`InputEncoding`; reset: "subtract" or
    "zero" for every spiking population; v_init: "zero" (membranes start at the reset level 0) or
    "half" (at half the threshold: the threshold shift of Deng & Gu 2021), replacing any per-neuron
    initial membrane; threshold_scale: every threshold multiplied by this positive factor.
    """
    notes = []
    pops = list(network.populations)
    inp = network.population(network.input)
    if encoding is not None or max_rate_hz is not None:
        old = inp.encoding or InputEncoding()
        enc = InputEncoding(encoding or old.kind, float(max_rate_hz) if max_rate_hz is not None else old.max_rate_hz)
        enc.validate(inp.name)
        pops = [dataclasses.replace(p, encoding=enc) if p.name == inp.name else p for p in pops]
        notes.append(f"input {inp.name!r}: {enc.kind} encoding" + ("" if enc.kind == "analog" else
                                                                    f", {enc.max_rate_hz:g} Hz for a value of 1"))
    if threshold_scale is not None and not (np.isfinite(threshold_scale) and threshold_scale > 0):
        raise SpikeportError(f"--threshold-scale must be a positive number, got {threshold_scale}")
    if reset is not None and reset not in ("subtract", "zero"):
        raise SpikeportError(f"--reset must be 'subtract' or 'zero', got {reset!r}")
    if v_init is not None and v_init not in ("zero", "half"):
        raise SpikeportError(f"--v-init must be 'zero' or 'half', got {v_init!r}")
    changed = []
    for i, p in enumerate(pops):
        if p.neuron is None:
            continue
        nm = p.neuron
        if threshold_scale is not None:
            nm = dataclasses.replace(nm, threshold=float(nm.threshold * threshold_scale))
        if reset is not None:
            nm = dataclasses.replace(nm, reset=reset)
        per_neuron = p.v_init
        if v_init is not None:
            nm = dataclasses.replace(nm, v_init=0.5 * nm.threshold if v_init == "half" else 0.0)
            per_neuron = None
        if nm != p.neuron or per_neuron is not p.v_init:
            pops[i] = dataclasses.replace(p, neuron=nm, v_init=per_neuron)
            changed.append(p.name)
    if changed:
        what = ", ".join(part for part in (
            None if threshold_scale is None else f"thresholds x {threshold_scale:g}",
            None if reset is None else f"reset {'by subtraction' if reset == 'subtract' else 'to zero'}",
            None if v_init is None else f"v(0) = {'threshold / 2' if v_init == 'half' else '0'}") if part)
        notes.append(f"{what} in {', '.join(changed)}")
    net = dataclasses.replace(network, populations=pops, projections=list(network.projections),
                              metadata=dict(network.metadata)).validate()
    return net, notes
