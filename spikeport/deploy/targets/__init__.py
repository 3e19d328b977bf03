"""Per-target plug-ins: what deploy does differently per chip family, registered by profile.

A plug-in (:class:`~spikeport.deploy.targets.generic.Generic` and its subclasses) gives the
pipeline, for one chip family, its quantizer, how its vendor tool places and counts (the
partitioner's capability flags and counting hooks: blocks, slices, relays, helper cores, the
tool's settings), its vendor mapper's rules, and its artifacts (every target also gets the
Brian2 script from the pipeline):

- ``loihi``: ``backend = "nengo-loihi"`` (the profile ``loihi``): nengo-loihi's blocks, the
  Loihi backend's relays, the nengo-loihi script;
- ``spinnaker``: ``backend = "spinnaker"`` (the profile ``spinnaker``): sPyNNaker's slices,
  spike-source cores and delay extensions, its placements, the sPyNNaker script;
- ``speck``: ``mapper = "speck"``: sinabs' rules and core placement (``speck``, ``speck_layers``);
- ``xylo``: ``mapper = "xylo"``: rockpool's rules and neuron ranges;
- ``generic``: every other profile (TrueNorth, Loihi 2, SpiNNaker 2, cpu, gpu, one's own).

:func:`plugin_for` looks a profile up by its ``mapper`` first (a profile with a vendor mapper is
that mapper's family), then by its ``backend``; a new family is a subclass of ``Generic``
passed to :func:`register`. A plug-in is not a backend: backends run networks
(:mod:`spikeport.backends`), plug-ins map them onto a chip's cores.
"""
from __future__ import annotations

from ...hardware_profiles import Profile, ProfileError
from .generic import GENERIC, Generic, events_only
from .loihi import Loihi
from .speck import Speck, check_speck
from .speck_layers import kernel_memory, neuron_memory, speck_layers
from .spinnaker import SpiNNaker
from .xylo import Xylo, check_xylo

BY_MAPPER: dict = {}      # profile.mapper -> plug-in
BY_BACKEND: dict = {}     # profile.backend -> plug-in


def register(plugin: Generic) -> Generic:
    """Register ``plugin`` under its ``mapper`` or ``backend`` (one of them, not empty)."""
    if bool(plugin.mapper) == bool(plugin.backend):
        raise ValueError(f"plug-in {plugin.name!r}: give exactly one of mapper and backend")
    (BY_MAPPER if plugin.mapper else BY_BACKEND)[plugin.mapper or plugin.backend] = plugin
    return plugin


for plugin in (Loihi(), SpiNNaker(), Speck(), Xylo()):
    register(plugin)
del plugin


def plugin_for(profile: Profile) -> Generic:
    """The plug-in of ``profile``'s chip family: its vendor mapper's, else its backend's, else generic."""
    if profile.mapper:
        if profile.mapper not in BY_MAPPER:
            raise ProfileError(f"{profile.path}: mapper: unknown vendor mapper {profile.mapper!r}")
        return BY_MAPPER[profile.mapper]
    return BY_BACKEND.get(profile.backend, GENERIC)


def simulator_options(backend: str, network, options: dict) -> dict:
    """``options`` for running ``network`` on the simulator backend ``backend``, with what its
    chip family's plug-in decides (the Loihi backend builds the partitioner's block shapes)."""
    plugin = BY_BACKEND.get(backend)
    return options if plugin is None else plugin.simulator_options(network, options)


def check_vendor(network, profile: Profile) -> tuple:
    """The vendor mapper's rules for ``profile.mapper``: (violations, mapping); ([], None) without one."""
    return plugin_for(profile).vendor_rules(network, profile)


__all__ = ["BY_BACKEND", "BY_MAPPER", "GENERIC", "Generic", "Loihi", "SpiNNaker", "Speck", "Xylo", "check_speck",
           "check_vendor", "check_xylo", "events_only", "kernel_memory", "neuron_memory", "plugin_for", "register",
           "simulator_options", "speck_layers"]
