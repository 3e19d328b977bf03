"""The readout of a spike-count network: the one place its tie rule is written.

The predicted class is the output neuron with the most spikes; among neurons tied on
spikes, the one with the higher membrane potential; among those, the lower index
(``argmax`` returns the first maximum). The plain argmax of spike counts (ties to the
lower index, as snnTorch, Norse and sinabs read out) is :func:`predict_index`.

Works on numpy arrays and on torch tensors (any device) without importing torch.
"""
from __future__ import annotations

import numpy as np


def _is_torch(a) -> bool:
    return type(a).__module__.split(".", 1)[0] == "torch"


def predict(counts, v):
    """predicted[s]: most spikes in ``counts[s, :]``, ties to the higher ``v[s, :]``, then the lower index."""
    if _is_torch(counts):
        top = counts.max(dim=1, keepdim=True).values
        return v.masked_fill(counts != top, -float("inf")).argmax(dim=1)
    counts, v = np.asarray(counts), np.asarray(v)
    top = counts.max(axis=1, keepdims=True)
    return np.where(counts == top, v, -np.inf).argmax(axis=1)


def predict_index(counts):
    """predicted[s]: most spikes in ``counts[s, :]``, ties to the lower index."""
    if _is_torch(counts):
        return counts.argmax(dim=1)
    return np.asarray(counts).argmax(axis=1)
