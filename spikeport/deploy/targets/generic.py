"""The generic target plug-in, and the interface every target plug-in implements.

:class:`Generic` is what deploy does on a chip whose vendor tool spikeport does not model:
TrueNorth, Loihi 2, SpiNNaker 2 (their profiles name no backend: nengo-loihi does not target
Loihi 2, sPyNNaker not SpiNNaker 2), a profile of one's own, and the conventional cpu and gpu
profiles where they reach deploy. Each hook's default below is the generic behaviour; a chip
family's plug-in (``loihi``, ``spinnaker``, ``speck``, ``xylo``) overrides what its vendor tool
does otherwise. The partitioner (:mod:`spikeport.deploy.partition`) reads the capability flags
and calls the counting hooks; :func:`spikeport.deploy.pipeline.fit` the rules and the quantizer;
the pipeline's writer :meth:`Generic.emit`.
"""
from __future__ import annotations

from ..violation import Violation


class Generic:
    """Generic counting (the partition package's docstring), no vendor rules, no artifacts of
    its own (every target gets the Brian2 script from the pipeline)."""

    name = "generic"
    backend = ""                      # the profile's ``backend`` that selects this plug-in
    mapper = ""                       # the profile's ``mapper`` that selects it (checked first)

    # how the vendor tool places and counts (read by the partitioner)
    one_population_per_core = False   # one population per core even on a chip of one core
    one_chip = False                  # its mapper maps onto one chip (where chip.chips_max is absent)
    shares_lists = False              # a split block stores equal (weights, targets) lists once
    whole_block_axons = False         # a population on one core: every presynaptic neuron an input
    #                                   axon, every neuron of its inputs an output axon
    pixel_axon_slots = 1              # output axon slots per presynaptic pixel of a shared-weight convolution
    analog_input_is_current = False   # an analog input's projections are currents, not synapses
    slices = False                    # cores are slices of neurons_per_core consecutive neurons, no tiles
    vendor_placements = False         # the vendor's own placer runs here and its counts are reported

    # ------------------------------------------------------------------ counting

    def shared_weight_conv(self, form, ops, pre) -> bool:
        """Whether the vendor tool builds this convolution with shared weights (counted by
        :meth:`shared_weight_stats`); ``form`` is (values, mask, groups, geometry)."""
        return False

    def shared_weight_stats(self, conv, sl, memory):
        """(input axons, synapse bits) per core of a shared-weight convolution."""
        raise NotImplementedError(f"{self.name}: no shared-weight convolutions")

    def pool_stats(self, conv, sl, memory):
        """(input axons, synapse bits) per core of a pooling whose equal lists the tool merges."""
        raise NotImplementedError(f"{self.name}: no merged pooling lists")

    def relays(self, network, analog: bool) -> tuple:
        """({source population: relays}, {projection: relays it comes through}) the target adds
        to pad paths to equal lags; none here."""
        return {}, {}

    def input_placement(self, analog: bool) -> tuple:
        """(cores, placement) of the input population: off chip."""
        return 0, "off chip"

    def helper_layers(self, network, part, placed) -> list:
        """[(name, serves, kind, cores, placement)] of cores the vendor tool adds besides the
        populations and relays; none here."""
        return []

    def simulator_options(self, network, options: dict) -> dict:
        """The options of this family's simulator backend (``backend``) with what the mapping
        decides added (the Loihi backend's block shapes); unchanged here."""
        return options

    def settings(self, slicings: dict) -> dict:
        """The vendor tool's settings that build this mapping, from {population: Slicing}."""
        return {}

    def notes(self) -> list:
        """Lines for the partition's notes: how this target was counted."""
        return []

    # ------------------------------------------------------------------ rules, formats, artifacts

    def mapper_rules(self, network, profile):
        """The vendor mapper's own rules: (violations, mapping); None without a vendor mapper."""
        return None

    def vendor_rules(self, network, profile) -> tuple:
        """(violations, mapping) of the vendor mapper (:meth:`mapper_rules`), with its input
        taking spike events only (:func:`events_only`); ([], None) without a mapper."""
        got = self.mapper_rules(network, profile)
        if got is None:
            return [], None
        violations, mapping = got
        events = events_only(network, profile)
        return violations + events, None if events else mapping

    def quantize(self, network, profile) -> tuple:
        """(network in the chip's formats, report): the scheme the profile's ``quantization``
        names (:func:`spikeport.deploy.quantize_chips.quantize_for`; Loihi's and SpiNNaker's
        schemes are their tools' discretizations, any profile may choose per-layer instead)."""
        from ..quantize_chips import quantize_for

        return quantize_for(network, profile)

    def emit(self, dep, out, x, y) -> list:
        """The target's own artifacts written into ``out`` (paths); none here."""
        return []


def events_only(network, profile) -> list:
    """Speck and Xylo take events only: sinabs feeds Speck DVS events or spike rasters
    (``DynapcnnNetwork`` converts input tensors to events), rockpool's Xylo modules take
    spike counts per time step on their input channels. An analog (constant current)
    input has no realization on either chip."""
    inp = network.population(network.input)
    if inp.encoding.kind != "analog":
        return []
    return [Violation(layer=inp.name, what="input encoding", limit="spike events", value="analog",
                      key="mapper", fix=f"{profile.title} takes spike events only: convert with --encoding "
                                        f"regular or poisson")]


GENERIC = Generic()
