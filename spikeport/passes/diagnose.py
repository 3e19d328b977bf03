"""Per-layer diagnosis of a converted network (``validate --diagnose``): run it, then compare each
layer with the ANN it approximates (:mod:`spikeport.models.diagnose` says how)."""
from __future__ import annotations

import numpy as np

from ..backends.reference import run
from ..models.calibrate import rate_model
from ..models.diagnose import ann_rates, compare_layers


def diagnose(network, module, x, steps: int = 128, min_correlation: float = 0.9, activity=None,
             **run_options) -> dict:
    """Compare ``network`` with the ANN it approximates on samples ``x``.

    ``module``: the PyTorch module it was converted from (its activations, scaled
    as converted), or None for the network's own rate model
    (:func:`spikeport.models.calibrate.rate_model`: works for any graph file).
    ``activity``: a run with ``record_counts`` to use (default: a reference run).
    Returns {"layers": [LayerAgreement...], "first_bad": name or None, "steps": steps}.
    """
    x = np.asarray(x, dtype=np.float32)
    if module is None:
        expected = rate_model(network, x)
    else:
        expected = ann_rates(network, module, x)
    if activity is None:
        activity = run(network, x, steps, record_counts=True, **run_options)
    return compare_layers(network, expected, activity.neuron_counts, len(x), activity.steps, min_correlation)
