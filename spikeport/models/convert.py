"""ANN -> SNN conversion into the graph, with data-based weight normalization.

Rate-based conversion (Diehl et al. 2015; Rueckauer et al. 2017): a ReLU unit's
activation a maps to the firing rate of an IF neuron with reset by subtraction
and threshold 1, if every layer's activations are scaled into [0, 1]:

    lambda_l = p-th percentile of layer l's positive activations on calibration data
    W_l <- W_l * lambda_{l-1} / lambda_l,   b_l <- b_l / lambda_l,   lambda_0 = 1

(p = 99.9 by default, Rueckauer 2017; p = 100 is the data-based max of Diehl
2015). lambda_0 = 1 because inputs are already in [0, 1]. The percentile is
computed exactly over the whole calibration set (numpy's linear interpolation),
not as a running average of batch maxima. The output layer is normalized the
same way, from the positive part of the ANN's logits.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpikeportError
from ..ir import Dense, Flatten, InputEncoding, Network, NeuronModel, Population, Projection

NORMS = ("percentile", "max")


def _layers(module):
    """The (name, Linear) stages of a Flatten/Linear/ReLU Sequential, checking its shape."""
    from torch import nn

    stages, pending_relu = [], False
    for name, layer in module.named_children():
        if isinstance(layer, nn.Flatten):
            if stages:
                raise SpikeportError(f"layer {name!r}: Flatten is supported only before the first Linear")
        elif isinstance(layer, nn.Linear):
            if stages and not pending_relu:
                raise SpikeportError(f"layer {name!r}: two Linear layers without a ReLU between them")
            stages.append((name, layer))
            pending_relu = False
        elif isinstance(layer, nn.ReLU):
            if not stages or pending_relu:
                raise SpikeportError(f"layer {name!r}: ReLU must follow a Linear layer")
            pending_relu = True
        else:
            raise SpikeportError(f"layer {name!r}: module {type(layer).__name__} is not supported by this converter")
    if not stages:
        raise SpikeportError("the model has no Linear layer")
    if pending_relu:
        raise SpikeportError("the model ends in a ReLU; the last layer must be a Linear readout")
    return stages


def layer_scales(module, calibration: np.ndarray, percentile: float = 99.9, batch_size: int = 2000) -> dict:
    """lambda_l per Linear layer: the ``percentile`` of its positive (post-ReLU) activations."""
    import torch

    if not 0 < percentile <= 100:
        raise SpikeportError(f"percentile must be in (0, 100], got {percentile}")
    stages = _layers(module)
    positives = {name: [] for name, _ in stages}
    module.eval()
    with torch.no_grad():
        for i in range(0, len(calibration), batch_size):
            a = torch.as_tensor(calibration[i:i + batch_size]).flatten(1)
            for name, linear in stages:
                a = torch.relu(linear(a))  # the last layer's positive logits, for its scale
                positives[name].append(a[a > 0].numpy())
    scales = {}
    for name, _ in stages:
        values = np.concatenate(positives[name])
        scales[name] = float(np.percentile(values, percentile)) if values.size else 1.0
    return scales


def convert(module, calibration: np.ndarray, norm: str = "percentile", percentile: float = 99.9,
            dt_s: float = 1e-3, encoding: str = "analog", max_rate_hz: float = 1000.0,
            metadata: dict | None = None) -> Network:
    """Convert a Flatten/Linear/ReLU ``module`` into a network of IF neurons.

    ``calibration`` holds input samples (e.g. the training set) shaped like the
    model's input; ``norm`` "percentile" uses ``percentile``, "max" uses 100.
    """
    if norm not in NORMS:
        raise SpikeportError(f"unknown normalization {norm!r} (known: {', '.join(NORMS)})")
    p = 100.0 if norm == "max" else float(percentile)
    stages = _layers(module)
    scales = layer_scales(module, calibration, p)
    input_shape = tuple(int(s) for s in calibration.shape[1:])
    pops = [Population("input", input_shape, encoding=InputEncoding(encoding, max_rate_hz))]
    projs = []
    pre, pre_scale = "input", 1.0
    for name, linear in stages:
        w = linear.weight.detach().cpu().numpy().astype(np.float32)
        b = linear.bias.detach().cpu().numpy().astype(np.float32) if linear.bias is not None else None
        lam = scales[name]
        ops = ([Flatten()] if pre == "input" and len(input_shape) > 1 else []) + [Dense(w * np.float32(pre_scale / lam))]
        pops.append(Population(name, (w.shape[0],), neuron=NeuronModel("if", 1.0, "subtract"),
                               bias=None if b is None else b / np.float32(lam)))
        projs.append(Projection(f"{pre}->{name}", pre, name, ops))
        pre, pre_scale = name, lam
    meta = dict(metadata or {})
    meta["conversion"] = {"norm": norm, "percentile": p, "scales": scales, "calibration_samples": int(len(calibration)),
                          "encoding": encoding, "neuron": "IF, threshold 1, reset by subtraction, v(0) = 0"}
    return Network(pops, projs, dt_s=dt_s, input="input", output=pre, metadata=meta).validate()
