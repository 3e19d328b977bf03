"""Per-layer diagnosis of a converted network: where does the SNN stop following the ANN?

For each spiking population, the ANN's activation at the node it was converted
from, divided by the population's scale lambda and clipped to [0, 1] (the rate
the conversion promises), is compared with the SNN's measured rate (spikes per
step) on the same samples: Pearson correlation over all neurons and samples,
and the mean absolute error. The first population whose correlation falls
below ``min_correlation`` (or, for the output, whose class agreement falls) is
named: the layers before it are fine, the problem starts there.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpikeportError
from .torch_import import _Importer, _record


@dataclass
class LayerAgreement:
    name: str
    correlation: float
    mean_abs_error: float
    ann_mean_rate: float
    snn_mean_rate: float


def diagnose(network, module, x, steps: int = 128, min_correlation: float = 0.9, **run_options) -> dict:
    """Compare ``network`` (converted from ``module``) with the ANN on samples ``x``.

    Returns {"layers": [LayerAgreement...], "first_bad": name or None, "steps": steps}.
    """
    from ..backends.reference import run

    conv = network.metadata.get("conversion", {})
    nodes, scales = conv.get("activation_nodes"), conv.get("scales")
    if not nodes or not scales:
        raise SpikeportError("the network has no conversion record (activation nodes and scales): "
                             "diagnosis needs a network converted by this spikeport")
    import torch

    x = np.asarray(x, dtype=np.float32)
    imp = _Importer(module.eval(), x.shape[1:])
    wanted = {node if node != "output" else "output" for node in nodes.values()}
    ann = {name: [] for name in nodes}
    batches = (torch.as_tensor(x[i:i + 500]) for i in range(0, len(x), 500))
    for seen in _record(imp.gm, wanted, batches):
        for name, node in nodes.items():
            ann[name].append(seen[node].reshape(seen[node].shape[0], -1).numpy())
    act = run(network, x, steps, record_counts=True, **run_options)
    layers, first_bad = [], None
    for pop in network.order():
        if pop.is_input or pop.name not in nodes:
            continue
        expected = np.clip(np.concatenate(ann[pop.name]) / scales[pop.name], 0.0, 1.0).ravel()
        measured = (act.neuron_counts[pop.name].reshape(len(x), -1) / steps).ravel()
        if expected.std() == 0 or measured.std() == 0:
            corr = 1.0 if np.allclose(expected, measured, atol=1.0 / steps) else 0.0
        else:
            corr = float(np.corrcoef(expected, measured)[0, 1])
        layers.append(LayerAgreement(pop.name, corr, float(np.abs(expected - measured).mean()),
                                     float(expected.mean()), float(measured.mean())))
        if first_bad is None and corr < min_correlation:
            first_bad = pop.name
    return {"layers": layers, "first_bad": first_bad, "steps": steps}
