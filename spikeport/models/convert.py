"""ANN -> SNN conversion into the graph.

The converter is :func:`spikeport.models.torch_import.import_torch` (torch.fx
tracing, layer folding, normalization; its docstring states the method). This
module keeps the short names of the public API.
"""
from __future__ import annotations

from .torch_import import NORMS, exact_percentiles, import_torch

convert = import_torch


def layer_scales(module, calibration, percentile: float = 99.9) -> dict:
    """lambda per population (named after its last weighted layer): the ``percentile`` of its
    positive ANN activations over ``calibration``, as the converter computes them."""
    net = import_torch(module, calibration, norm="max" if percentile == 100 else "percentile", percentile=percentile)
    scales = dict(net.metadata["conversion"]["scales"])
    scales.pop("input")
    return scales


__all__ = ["NORMS", "convert", "exact_percentiles", "import_torch", "layer_scales"]
