"""Backend adapters: one per simulator, each consuming the graph; and the mappers.

Contract: ``run(network, x, steps, ...) -> Activity``. The registry maps a
backend's name to its module, imported only when asked for, so the core never
imports a simulator it does not use.

A mapper is not a backend: ``spinnaker`` (sPyNNaker on a virtual SpiNN-5 board) partitions,
places and routes a network but returns no spikes, so it has no ``run`` and is registered
apart (:data:`MAPPERS`): ``spikeport deploy --target spinnaker`` uses it. Asking for it as a
backend is one clear error saying so.
"""
from __future__ import annotations

import importlib

from ..errors import SpikeportError
from .activity import Activity

# simulator backends: name -> (module, the extra that installs its simulator)
BACKENDS = {
    "reference": ("spikeport.backends.reference", None),
    "brian2": ("spikeport.backends.brian", "brian2"),
    "nengo-loihi": ("spikeport.backends.loihi", "loihi"),
    "pynn-nest": ("spikeport.backends.pynn_nest", "pynn"),
}

# mappers without a simulator: name -> (module, extra, what they give instead of spikes)
MAPPERS = {
    "spinnaker": ("spikeport.backends.spinnaker", "spinnaker",
                  "sPyNNaker maps onto a virtual SpiNN-5 board, which does not simulate (no spikes come back); "
                  "`spikeport deploy NET --target spinnaker` maps it there and writes the script for a real "
                  "SpiNNaker machine"),
}


# the arithmetic of each simulator: a conformance run of the reference executor beside it
# uses the same precision (reference.run(precision=...)), so that only real differences show
PRECISION = {"reference": "float32", "brian2": "float64", "nengo-loihi": "float32", "pynn-nest": "float64"}


def _load(name: str, module: str, extra: str | None):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise SpikeportError(f"{name!r} needs its simulator: pip install 'spikeport[{extra}]' ({exc})") from None


def get_backend(name: str):
    """The backend module registered as ``name``; its ``run`` follows the contract."""
    if name in MAPPERS:
        raise SpikeportError(f"{name} is a mapper, not a simulator backend: {MAPPERS[name][2]}")
    if name not in BACKENDS:
        raise SpikeportError(f"unknown backend {name!r} (known: {', '.join(BACKENDS)}; mappers without a "
                             f"simulator: {', '.join(MAPPERS)})")
    return _load(name, *BACKENDS[name])


def get_mapper(name: str):
    """The mapper module registered as ``name`` (``placements``, ``counts``, ``write_script``)."""
    if name not in MAPPERS:
        raise SpikeportError(f"unknown mapper {name!r} (known: {', '.join(MAPPERS)})")
    return _load(name, *MAPPERS[name][:2])


__all__ = ["Activity", "BACKENDS", "MAPPERS", "PRECISION", "get_backend", "get_mapper"]
