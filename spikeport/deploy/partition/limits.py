"""The per-core and per-chip limits of a profile that partitioning uses, and its synapse memory model."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import SpikeportError
from ...hardware_profiles import Profile
from ..targets import plugin_for

LIMITS = ("neurons", "input_axons", "synapse_memory", "output_axons")
KEYS = {"neurons": "core.neurons", "input_axons": "core.input_axons", "synapse_memory": "core.synapse_memory_bits",
        "output_axons": "core.output_axons"}


@dataclass(frozen=True)
class Memory:
    """Synapse memory of one input axon's ``c`` synapses into one core (the package docstring)."""

    limit: int
    weight_bits: int
    entry_bits: int
    overhead: float
    block: int | None
    word: int | None

    def bits(self, c, extra_bits: int = 0) -> np.ndarray:
        c = np.asarray(c, dtype=np.int64)
        per = self.weight_bits + self.entry_bits + extra_bits

        def words(x):
            return np.ceil(x / self.word) * self.word if self.word else x

        if self.block is None:
            return np.where(c > 0, words(c * per + self.overhead), 0.0)
        full, rem = c // self.block, c % self.block
        return full * words(self.block * per + self.overhead) + np.where(rem > 0, words(rem * per + self.overhead), 0.0)


def shares_one_core(profile: Profile) -> bool:
    """A chip of one core (Xylo) holds every population on that core, its output neurons apart where
    it has some; not so where the vendor tool places one population per core (nengo-loihi's blocks,
    sPyNNaker's vertices: the plug-in's ``one_population_per_core``), whatever the profile's core count."""
    return profile.value("chip.cores") == 1 and not plugin_for(profile).one_population_per_core


def chips_in_system(profile: Profile):
    """``chip.chips_max``; one chip for a profile with a vendor mapper (Speck, Xylo: the plug-in's
    ``one_chip``), whose mapper maps onto one chip; None for no limit."""
    n = profile.value("chip.chips_max")
    return 1 if n is None and plugin_for(profile).one_chip else n


class Limits:
    """The limits of a profile that partitioning uses, and its target plug-in (``plugin``: how its
    vendor tool counts)."""

    def __init__(self, profile: Profile, neurons_per_core=None):
        v = profile.value
        self.profile = profile
        self.name = profile.name
        self.plugin = plugin_for(profile)
        self.core_neurons = int(v("core.neurons"))
        self.cap = self.core_neurons
        if neurons_per_core is not None:
            npc = int(neurons_per_core)
            if npc < 1 or npc > self.core_neurons:
                raise SpikeportError(f"neurons_per_core must be in [1, {self.core_neurons}] on {profile.name} "
                                     f"(core.neurons), got {neurons_per_core}")
            self.cap = npc
        self.input_axons = v("core.input_axons")
        self.output_axons = v("core.output_axons")
        mem = v("core.synapse_memory_bits")
        self.memory = None if mem is None else Memory(
            int(mem), int(v("precision.weight_bits") or 0), int(v("core.synapse_entry_bits") or 0),
            float(v("core.synapse_overhead_bits") or 0.0), v("core.synapse_block"), v("core.synapse_word_bits"))
        self.chip_cores = int(v("chip.cores"))
        self.chip_neurons = v("chip.neurons")
        self.shared = shares_one_core(profile)
        self.readout = self.shared and v("chip.outputs") is not None
        self.chips_max = chips_in_system(profile)

    def limit(self, what: str):
        return {"neurons": self.core_neurons, "input_axons": self.input_axons,
                "synapse_memory": None if self.memory is None else self.memory.limit,
                "output_axons": self.output_axons}[what]
