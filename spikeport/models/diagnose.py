"""Per-layer diagnosis of a converted network: where does the SNN stop following the ANN?

For each spiking population, the ANN's activation at the node it was converted
from, divided by the population's scale lambda and clipped to [0, 1] (the rate
the conversion promises), is compared with the SNN's measured rate (spikes per
step) on the same samples: Pearson correlation over all neurons and samples,
and the mean absolute error. The first population whose correlation falls
below ``min_correlation`` (or, for the output, whose class agreement falls) is
named: the layers before it are fine, the problem starts there.

This module compares; :func:`spikeport.passes.diagnose.diagnose` runs the network and compares.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpikeportError
from .activation_stats import record
from .torch_import import Importer


@dataclass
class LayerAgreement:
    name: str
    correlation: float
    mean_abs_error: float
    ann_mean_rate: float
    snn_mean_rate: float


def rate_agreement(expected, measured, steps):
    """Pearson correlation of two rate vectors; where one is constant, 1 if they agree within one spike in T."""
    if expected.std() == 0 or measured.std() == 0:
        return 1.0 if np.allclose(expected, measured, atol=1.0 / steps) else 0.0
    return float(np.corrcoef(expected, measured)[0, 1])


def compare_layers(network, expected: dict, counts: dict, samples: int, steps: int,
                   min_correlation: float = 0.9) -> dict:
    """Per spiking population: expected rates (samples, size) against measured spike counts over ``steps``."""
    layers, first_bad = [], None
    for pop in network.order():
        if pop.is_input or pop.name not in expected or pop.name not in counts:
            continue
        exp = np.asarray(expected[pop.name], dtype=np.float64).reshape(samples, -1).ravel()
        measured = (np.asarray(counts[pop.name]).reshape(samples, -1) / steps).ravel()
        corr = rate_agreement(exp, measured, steps)
        layers.append(LayerAgreement(pop.name, corr, float(np.abs(exp - measured).mean()),
                                     float(exp.mean()), float(measured.mean())))
        if first_bad is None and corr < min_correlation:
            first_bad = pop.name
    return {"layers": layers, "first_bad": first_bad, "steps": steps}


def ann_rates(network, module, x) -> dict:
    """The ANN's activations at the nodes ``network`` was converted from, scaled as converted, clipped to [0, 1]."""
    conv = network.metadata.get("conversion", {})
    nodes, scales = conv.get("activation_nodes"), conv.get("scales")
    if not nodes or not scales:
        raise SpikeportError("the network has no conversion record (activation nodes and scales): "
                             "diagnosis against a module needs a network converted by this spikeport")
    import torch

    imp = Importer(module.eval(), x.shape[1:])
    missing = sorted(set(nodes.values()) - {n.name for n in imp.gm.graph.nodes} - {"output"})
    if missing:
        raise SpikeportError(f"the model is not the one the network was converted from: it has no node {missing[0]!r}")
    ann = {name: [] for name in nodes}
    batches = (torch.as_tensor(x[i:i + 500]) for i in range(0, len(x), 500))
    try:
        for seen in record(imp.gm, set(nodes.values()), batches):
            for name, node in nodes.items():
                ann[name].append(seen[node].reshape(seen[node].shape[0], -1).numpy())
    except RuntimeError as exc:
        raise SpikeportError(f"the model does not run on the network's samples: {str(exc).splitlines()[0]}") from None
    out = {name: np.clip(np.concatenate(v) / scales[name], 0.0, 1.0) for name, v in ann.items()}
    for pop in network.populations:
        if pop.name in out and out[pop.name].shape[1] != pop.size:
            raise SpikeportError(f"the model is not the one the network was converted from: its activation for "
                                 f"{pop.name!r} has {out[pop.name].shape[1]} values, the population {pop.size} neurons")
    return out
