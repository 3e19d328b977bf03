"""The SpiNNaker plug-in (``backend = "spinnaker"``: the profile ``spinnaker``, SpiNNaker 1):
counting as sPyNNaker places the network, its placements, and the sPyNNaker script.

SpiNNaker is counted as sPyNNaker 7.4 places the Loihi-free PyNN lowering of spikeport
(:mod:`spikeport.backends.pynn_lowering`): one core per slice of at most ``neurons_per_core``
consecutive neurons of each population (``SplitterPopulationVertexFixed``); a spiking input is
one ``SpikeSourceArray`` core whatever its size (``SplitterFixedLegacy``, no atom limit); an
analog input is a current, with no core and no synapses; a delay extension
(``DelayExtensionVertex``, as many cores as its source population) for each population with a
projection whose delay (after the lowering pads paths to equal lags:
:func:`spikeport.ir.lags.padded_delay`) exceeds what its target's ring buffer holds,
2**(14 - bits(neurons per core) - 1) steps capped by the next power of two of its longest
delay; delays beyond 9 times that are refused. Chips are packed by ``chip.cores``; sPyNNaker's
placer may spread cores over more chips, and its system cores (one monitor per chip) are not
counted.

Where sPyNNaker is installed, the pipeline reports sPyNNaker's own placements instead
(``vendor_placements``: :func:`spikeport.deploy.pipeline.counts`). Quantization is sPyNNaker's
ring-buffer shifts (``quantization = "spinnaker"``: :mod:`spikeport.deploy.quantize_chips`).
SpiNNaker 2 (``spinnaker2``) names no backend: sPyNNaker does not target it, it is counted by
the generic plug-in.
"""
from __future__ import annotations

import math

from ...errors import SpikeportError
from ...ir.lags import padded_delay
from .generic import Generic

# sPyNNaker constants (spynnaker/pyNN/utilities/constants.py, delay_extension_vertex.py)
RING_BUFFER_BITS = 14                  # MAX_RING_BUFFER_BITS
SYNAPSE_TYPE_BITS = 1                  # get_n_bits(2): excitatory and inhibitory
DELAY_SLOTS = 8                        # DelayExtensionVertex.MAX_SLOTS


def _n_bits(n: int) -> int:
    """sPyNNaker's get_n_bits: bits to tell n values apart."""
    return 0 if n <= 0 else 1 if n == 1 else math.ceil(math.log2(n))


class SpiNNaker(Generic):
    """sPyNNaker's vertices: slices of ``neurons_per_core`` neurons (one population per core), a
    core for a spiking input, delay extensions; ``neurons_per_core`` per population as the
    settings; the sPyNNaker script (and its placements) as the artifact."""

    name = "spinnaker"
    backend = "spinnaker"
    one_population_per_core = True
    analog_input_is_current = True
    slices = True
    vendor_placements = True

    def input_placement(self, analog: bool) -> tuple:
        """A spiking input is one SpikeSourceArray core; an analog one is a current, off chip."""
        return (0, "off chip") if analog else (1, "one SpikeSourceArray core")

    def helper_layers(self, network, part, placed) -> list:
        """sPyNNaker's delay extensions, one per source population that needs one."""
        return [(f"{name}_delayed", name, "delay_extension", cores, "sPyNNaker delay extension")
                for name, cores in _delay_extensions(network, part, placed).items()]

    def settings(self, slicings: dict) -> dict:
        return {"neurons_per_core": {name: int(sl.block[0]) for name, sl in slicings.items()}}

    def notes(self) -> list:
        return ["sPyNNaker counting: one core per slice of neurons_per_core neurons, one SpikeSourceArray "
                "core for a spiking input, delay extensions; system cores not counted. Chips are packed "
                "densely, a lower bound: sPyNNaker's placer keeps one more core free on the Ethernet chip and "
                "starts populations on fresh chips (bench/RESULTS.md: up to one chip more on four networks)"]

    def emit(self, dep, out, x, y) -> list:
        """``spinnaker/``: the sPyNNaker script with the partition's ``neurons_per_core`` and the counts'
        own placements where sPyNNaker made them (:func:`spikeport.deploy.emit_scripts.write_spinnaker`)."""
        from ..emit_scripts import write_spinnaker

        sp = out / "spinnaker"
        sp.mkdir()
        placed = dep.counts.placements if dep.counts is not None else None  # the counts' own: mapped once
        return write_spinnaker(dep.network, sp, x=x, labels=y, steps=dep.steps,
                               neurons_per_core=dep.partition.vendor.get("neurons_per_core"), placements=placed)


def _delay_extensions(network, part, placed: dict) -> dict:
    """{pre population: cores} of sPyNNaker's delay extensions (the module docstring)."""
    from ...backends.common import lags

    lag = lags(network, lambda proj: max(proj.delay_steps, 1))
    delay = {p.name: padded_delay(p, lag) for p in part.on_chip}
    out = {}
    for post in {p.post for p in part.on_chip}:
        into = [p for p in part.on_chip if p.post == post]
        longest = max(delay[p.name] for p in into)
        n_post = part.pops[post].size
        npc = placed[post].slicing.block[0]
        slots = 2 ** (RING_BUFFER_BITS - _n_bits(min(n_post, npc)) - SYNAPSE_TYPE_BITS)
        support = min(2 ** _n_bits(longest), slots)
        for p in into:
            if delay[p.name] <= support:
                continue
            if delay[p.name] > (DELAY_SLOTS + 1) * support:
                raise SpikeportError(f"{p.name}: delay {delay[p.name]} steps (after equalizing path lags) exceeds "
                                     f"the limit {(DELAY_SLOTS + 1) * support} that sPyNNaker supports into "
                                     f"{post} with a delay extension; shorten it or use fewer neurons per core")
            pre = part.pops[p.pre]
            out[p.pre] = 1 if pre.is_input else placed[p.pre].slicing.n_cores
    return {name: out[name] for name in [p.name for p in network.populations] if name in out}
