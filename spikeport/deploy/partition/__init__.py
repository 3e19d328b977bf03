"""Partitioning onto cores and chips: ``partition(network, profile) -> Partition``.

Every spiking population is cut into cores, greedily and last layer first: each gets the
fewest cores (equal runs of consecutive neurons, or for a population of several axes equal
tiles along its axes: channels, rows, columns) for which every core is within the
profile's per-core limits, as far as the profile gives them:

- ``core.neurons`` (or the ``neurons_per_core`` setting, if smaller);
- ``core.input_axons``: the distinct presynaptic neurons that reach the core (summed over
  its projections);
- ``core.synapse_memory_bits``: per input axon and core, its ``c`` synapses into the core are
  stored in blocks of ``core.synapse_block`` synapses (one block where the profile gives
  none), each ``n * (precision.weight_bits + core.synapse_entry_bits) +
  core.synapse_overhead_bits`` bits rounded up to whole ``core.synapse_word_bits`` words
  (no rounding where it gives none): nengo-loihi's ``SynapseConfig.bits_per_axon`` with
  Loihi's profile;
- ``core.output_axons``: per neuron, one per core of each target population that it reaches.

A population whose single neuron needs more input axons than a core has fails at once. Then
cores are packed onto chips in population order (next-fit, by ``chip.cores`` and
``chip.neurons``); more chips than ``chip.chips_max`` is a :class:`SpikeportError` saying how
many are needed. A profile with a vendor mapper (Speck, Xylo) is one chip. A chip of one core
(Xylo: ``chip.cores = 1``) holds every spiking population on that core, its output
population apart where the chip has ``chip.outputs``.

Where the target's vendor tool counts otherwise, its plug-in (:mod:`spikeport.deploy.targets`)
says how: Loihi (nengo-loihi's blocks, shared-weight convolutions and relay populations,
``targets/loihi.py``), SpiNNaker (sPyNNaker's slices, spike-source cores and delay extensions,
``targets/spinnaker.py``); every other profile is counted as above.

Counting without materializing
------------------------------
A projection is analyzed once (:func:`analyze`) into one of three forms:

- dense: ``[flatten..., dense]``, also behind poolings whose windows do not overlap
  (``[avgpool, flatten, dense]``: every presynaptic pixel feeds one pooled value, so its
  synapses into a core are those of its pooled column). Per-core counts come from
  cumulative nonzero counts of the weight columns: exact.
- convolution: one ``conv2d`` (padding, stride, dilation, groups), one pooling, or a pooling
  followed by a convolution (folded into one convolution, as the Loihi backend folds it).
  Fan-in and fan-out per neuron are exact (per-tap nonzero counts times the taps that land
  inside the input). Per core (a tile of channels x rows x columns) the synapses of a
  presynaptic neuron are counted as (filters of the tile in its group) x (kernel rows that
  reach it) x (kernel columns that reach it), with a tap row (column) counted where any
  weight in it is nonzero: exact for kernels without zero taps, an upper bound otherwise
  (never fewer axons or bits than the chip needs).
- anything else: the projection's exact synapse list (``Projection.materialize``).

Modules: ``limits`` (the profile's limits, the synapse memory model), ``slicing`` (tiles and
runs), ``forms`` and ``conv`` (the countable forms), ``analysis`` (a network's forms, fan-in
and fan-out), ``search`` (the fewest cores per population), ``result`` (the rows, chips and
vendor settings of :class:`Partition`).
"""
from .analysis import Analysis, analyze
from .limits import chips_in_system, shares_one_core
from .result import Partition, partition

__all__ = ["Analysis", "Partition", "analyze", "chips_in_system", "partition", "shares_one_core"]
