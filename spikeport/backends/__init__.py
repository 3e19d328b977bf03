"""Backend adapters: one per simulator, each consuming the graph.

Contract: ``run(network, x, steps, ...) -> Activity``. The registry maps a
backend's name to its module, imported only when asked for, so the core never
imports a simulator it does not use.
"""
from __future__ import annotations

import importlib

from ..errors import SpikeportError
from .activity import Activity

# name -> (module, the extra that installs its simulator)
BACKENDS = {
    "reference": ("spikeport.backends.reference", None),
    "brian2": ("spikeport.backends.brian", "brian2"),
    "nengo-loihi": ("spikeport.backends.loihi", "loihi"),
    "pynn-nest": ("spikeport.backends.pynn_nest", "pynn"),
    "spinnaker": ("spikeport.backends.spinnaker", "spinnaker"),
}


# the arithmetic of each simulator: a conformance run of the reference executor beside it
# uses the same precision (reference.run(precision=...)), so that only real differences show
PRECISION = {"reference": "float32", "brian2": "float64", "nengo-loihi": "float32", "pynn-nest": "float64",
             "spinnaker": "float32"}


def get_backend(name: str):
    """The backend module registered as ``name``; its ``run`` follows the contract."""
    if name not in BACKENDS:
        raise SpikeportError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)})")
    module, extra = BACKENDS[name]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SpikeportError(f"backend {name!r} needs its simulator: pip install 'spikeport[{extra}]' ({exc})") from None


__all__ = ["Activity", "BACKENDS", "PRECISION", "get_backend"]
