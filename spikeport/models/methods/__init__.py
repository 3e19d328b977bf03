"""The training methods: one module per method, registered by name (imported when asked for).

Each module declares its method (``METHOD``, a :class:`base.Method`) and implements
``build``, ``loss``, ``predict`` and ``to_network`` (see :mod:`.base`). Adding a method is
adding a module and one line here; the trainer, the command line and the model file
need no change.
"""
from __future__ import annotations

import importlib

from ...errors import SpikeportError
from .base import Context, Method, SpikingSpec

# name -> module of this package, in the order the command line lists them
REGISTRY = {
    "relu": "relu",
    "qcfs": "qcfs",
    "noisy-softplus": "noisy_softplus",
    "soft-lif": "soft_lif",
    "proxy": "proxy",
    "spike-bp": "spike_bp",
}
METHODS = tuple(REGISTRY)


def get_method(name: str):
    """The module of method ``name``: ``METHOD``, ``build``, ``loss``, ``predict``, ``to_network``."""
    if name not in REGISTRY:
        raise SpikeportError(f"unknown training method {name!r} (known: {', '.join(METHODS)})")
    return importlib.import_module(f"{__name__}.{REGISTRY[name]}")


def describe(name: str) -> dict:
    """The declaration of method ``name`` as plain data (what ``spikeport methods`` prints)."""
    return get_method(name).METHOD.to_dict()


# the methods whose ANN is rate-converted (normalization, L4 and calibration apply), not trained for its own SNN
RATE_CONVERTED = ("relu", "qcfs")

__all__ = ["Context", "METHODS", "Method", "RATE_CONVERTED", "REGISTRY", "SpikingSpec", "describe", "get_method"]
