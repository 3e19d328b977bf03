"""The nengo-loihi backend: the graph on Loihi's fixed-point emulator (``nengo_loihi.Simulator(target="sim")``).

The lowering
------------
Every spiking population is a ``nengo.Ensemble`` of :class:`LoihiIF` neurons: a neuron
type registered with nengo-loihi's builder that configures one Loihi compartment per
neuron. The compartment computes (``nengo_loihi/emulator/interface.py``)::

    u[t] = (1 - delta_u) u[t-1] + q[t]          q: weights of the spikes that arrived
    v[t] = (1 - delta_v) v[t-1] + u[t] + bias;  v clipped to [vmin, vmax]; 0 while refractory
    spike when v[t] > vth (strictly); then v[t] = 0 and the refractory counter starts

with delta_v = 1 - decay (0 for IF), delta_u = 1 - syn_decay (1: no filter), vmin at the
24-bit register's limit (nengo-loihi's stock neurons clip at 0 and drop negative
membranes) and a refractory delay of refractory_steps + 1 (the counter is decremented
in the step of the spike). Gain and bias follow nengo's convention for a threshold of
1/dt: gain = 1 / theta (over 1 - syn_decay, which nengo-loihi's filter normalization
takes back), bias = b / (theta dt). Every projection is a neuron-to-neuron
``nengo.Connection`` with the projection's exact matrix as a ``nengo.transforms.Sparse``,
except (``conv="transform"``, the default) a projection between chip populations that is
one Conv2d once a pooling before it is folded in (:func:`fold_pool_into_conv`: LeNet's
AvgPool2d(2) then Conv2d 5x5 is one Conv2d 10x10 of stride 2, exactly): that is nengo-loihi's
shared-weight ``nengo.Convolution``, spike for spike the same as the matrix, with one input
axon per presynaptic pixel instead of one per neuron and less synapse memory.

Cores. nengo-loihi's own split cuts a population into runs of consecutive neurons sized by
its totals, which fails on LeNet (a run of conv2 covering two output rows needs 5760 input
axons, a core has 4096). Block shapes are therefore given (``block_shapes``): spikeport's
one Loihi block planner, the partitioner's Loihi plug-in (:mod:`spikeport.deploy.targets.loihi`),
chooses them by counting what nengo-loihi builds for each block, and spikeport.simulate,
validate and deploy pass them (:mod:`.blocks`). The emulator's spike delivery, spike by spike in Python in
nengo-loihi, is vectorized (``spikeport.runtimes.loihi_chip.SpikeRouting``: the same integer sums).

Inputs. A spiking input (poisson, regular) is the reference executor's own trains
(:func:`common.input_trains`), put on the chip by :class:`SpikeTrainInput` (nengo-loihi's
``SpikeInput``, as its DVS input): the same input, spike for spike. An analog input x is
a constant current W x per sample: it is written, with the population's own bias, to the
compartments' bias registers before each sample (12 bits plus sign and a 3-bit exponent,
at the scale nengo-loihi chose for the largest such bias of the run); with a synaptic
filter the current register is kicked by -W x / (1 - alpha) so that bias + u follows the
graph's filtered current step for step. nengo-loihi's own path for a ``nengo.Node``
driving neurons is not used: it encodes each value on the host with an on/off pair of
spiking neurons (500 (1 +/- x) Hz at dt = 1 ms, ``OnOffDecodeNeurons``) and filters it on
the chip with a 5 ms lowpass (``Model.decode_tau``) that becomes the filter of every
input of the target block: it miscounts a share of the first layer's spikes that the bias
path does not (docs/ir.md).

Samples run one after another on one built simulator (nengo-loihi cannot reset one):
before each sample the state is reset (membranes, currents, refractory counters, spikes
in flight) and each population's v_init is written to its membranes.

Exact: nothing is lost in the lowering
--------------------------------------
On ``target="simreal"`` (nengo-loihi's model in floating point) every population's
spike trains equal the reference executor's, spike for spike, for IF and LIF neurons,
synaptic filters, refractory periods, per-neuron v_init, delays, residual paths and all
three encodings (tests/test_conformance.py), when the graph resets to zero.

- Latency: Loihi delivers every connection one step after the spike, so a population at
  depth L lags the graph by L steps (``common.lags``). The run lasts steps +
  max lag; each population is read in its own window shifted by its lag, and its bias
  and v_init are written at its first step, so nothing integrates before its window.
- Unequal paths into a population (a residual skipping layers) and delays of 2 steps or
  more (nengo-loihi implements no synaptic delays) are padded by relay populations: one
  neuron per pre neuron, weight 2 thresholds, firing exactly one step after it.
- Blocks: on "simreal" every block shape gives the same spikes (on the emulator each block
  scales its weights by its own largest one); the notes name each population's block shape
  and blocks (one per core), ``mapping()`` each block's use of its core.

Not exact (named in ``Activity.notes`` with its size on the network at hand)
-----------------------------------------------------------------------------
- Reset: Loihi resets to zero; reset by subtraction is not expressible, so every spike
  drops its overshoot v - theta.
- Precision: weights 7 bits plus sign at a per-block scale (nengo-loihi maps the largest
  weight to 255, then rounds to even steps and clips at 254: the largest weights lose
  0.4 %); thresholds in steps of 64 units; biases 12 bits plus sign with a 3-bit
  exponent; integer membranes; 12-bit leak and synaptic-decay factors that round toward
  zero every step. Without a synaptic filter nengo-loihi keeps 1/4096 of each step's
  input current for the next step.
- Threshold: v > vth against the graph's v >= theta: one unit out of the 10**4 to 10**6
  units of a threshold here, below the register's own rounding to 64 units.
- Range: membranes within +-(2**23 - 1), the input per step 21 bits and the current 23
  bits (an overflow wraps around, as on the chip, and is reported with its population,
  register and the number of samples it hit).

Where it runs
-------------
The lowering is described (:class:`Lowered`: arrays and meta) and built by
:mod:`spikeport.runtimes.loihi_nengo`; the chip's registers, the spike delivery and the
overflow tally are :mod:`spikeport.runtimes.loihi_chip`'s, a sample's register writes and
readout :mod:`spikeport.runtimes.loihi`'s: the engine that ``spikeport deploy --target loihi``
copies beside its script. Here: :mod:`.lowering` (the graph as that description, the biases),
:mod:`.blocks` (block shapes set before building), :mod:`.notes` (the mapping and the notes), and :func:`run`
and :func:`mapping`.

Measured: agreement, accuracy, spikes and time on the digits network in docs/backends.md;
on MNIST LeNet (cores, block shapes, agreement, time per image, the vectorized delivery
against nengo-loihi's own) in bench/RESULTS.md, "Backends on MNIST LeNet (issue 10)".
"""
from __future__ import annotations

import time
import warnings

import numpy as np

from ...errors import SpikeportError
from ...ir import Network
from ...runtimes import loihi as engine
from ...runtimes.loihi_chip import V_LIMIT, Chip, OverflowTally
from ...runtimes.loihi_nengo import LoihiIF, NotBuilt, SpikeTrainInput, simulator  # ImportError without nengo-loihi
from .. import common
from .blocks import blocks_note, set_block_shapes
from .lowering import BACKEND, CONV_MODES, TARGETS, Biases, Lowered, check, fold_pool_into_conv
from .notes import chip_mapping, run_notes

FAST_ROUTING = True      # the emulator's spike delivery vectorized (SpikeRouting); False: nengo-loihi's own loop

__all__ = ["BACKEND", "CONV_MODES", "FAST_ROUTING", "TARGETS", "V_LIMIT", "Biases", "LoihiIF",
           "Lowered", "SpikeTrainInput", "build", "check", "fold_pool_into_conv", "mapping", "run"]


def build(network: Network, bias: dict, conv: str, block_size, target: str = "sim", block_shapes=None):
    """Lower, set the block shapes and build; returns (lowered, simulator, {"lost_bits": [...],
    "blocks": how the blocks were chosen, None where ``block_size`` set them}).

    ``block_shapes`` {population or relay: block dims}: the partitioner's choice
    (:mod:`.blocks`); populations without one are split by nengo-loihi itself.
    nengo-loihi's build errors become one line.
    """
    lowered = Lowered(network, bias, conv, block_size)
    given = set_block_shapes(lowered, block_shapes)
    note = None if block_size is not None and not given else blocks_note(given, lowered.ensembles)
    try:
        sim, caught = simulator(lowered.net, network.dt_s, target)
    except NotBuilt as exc:
        raise SpikeportError(f"nengo-loihi cannot map this network: {exc}") from None
    lost = sorted({m for m in caught if "Lost" in m})
    return lowered, sim, {"lost_bits": lost, "blocks": note}


def _chip(sim, lowered: Lowered) -> Chip:
    """The built emulator through its registers, spike delivery as :data:`FAST_ROUTING` says, overflows tallied."""
    return Chip(sim, lowered.ensembles, lowered.network.dt_s, lowered.process, FAST_ROUTING, OverflowTally())


def run(network: Network, x, steps: int, *, checkpoints=None, seed: int = 0, record_counts: bool = False,
        record_trains=(), progress=None, conv: str = "transform", block_size: int | None = None,
        target: str = "sim", block_shapes: dict | None = None, sample0: int = 0):
    """Simulate ``network`` on Loihi's fixed-point emulator, one sample after another.

    Parameters
    ----------
    x, steps, checkpoints, seed, record_trains, progress : as :func:`spikeport.backends.reference.run`
    record_counts : accepted for the common contract; every neuron's count is always recorded
    conv : "transform" (default: a projection between chip populations that is one Conv2d,
        after pooling is folded into it by :func:`fold_pool_into_conv`, as nengo-loihi's
        shared-weight convolution where nengo can express it (no groups or dilation, padding
        "valid" or "same"); every other projection a sparse matrix) or "sparse" (every
        projection a sparse matrix). Spike for spike the same; the convolution needs one input
        axon per presynaptic pixel instead of one per neuron, and shares its weights, which is
        what lets a LeNet map at all
    block_size : most compartments per block (core), in runs of consecutive neurons, for every
        population without a ``block_shapes`` entry
    block_shapes : {population (or relay ``<population>~relay<k>``): block dims}, one entry per
        axis (tiles) or one (runs of consecutive neurons): the partitioner's shapes
        (``spikeport.deploy.targets.loihi.block_shapes(network)``, which spikeport.simulate and
        validate pass); default: nengo-loihi's own split
    sample0 : the index of ``x[0]`` in a larger run (Poisson trains as that run's: guarded batches)
    target : "sim" (the Loihi emulator, fixed point) or "simreal" (the same model in
        floating point, without discretization: isolates the lowering from the chip's precision)

    Returns the :class:`Activity`, with what the lowering changes in ``notes``.

    Example
    -------
    >>> act = run(net, dataset.x("test")[:100], 32)             # doctest: +SKIP
    >>> act.accuracy(dataset.y("test")[:100]), act.notes[0]      # doctest: +SKIP
    """
    start_time = time.perf_counter()
    check(network, conv, target)
    x, steps, checkpoints = common.check_run(network, x, steps, checkpoints, record_trains)
    biases = Biases(network, x)
    lowered, sim, built = build(network, biases.build_bias(), conv, block_size, target, block_shapes)
    build_s = time.perf_counter() - start_time
    try:
        chip = _chip(sim, lowered)
        trains = common.input_trains(network, x, steps, seed=seed, sample0=sample0)
        run_start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the emulator warns at every overflow: tallied per layer instead
            counts, recorded, out_v = _present(chip, lowered, biases, trains, len(x), steps, checkpoints,
                                               set(record_trains) | {network.output}, progress)
        overflow = chip.overflows.note(len(x)) if chip.overflows is not None else None
        run_s = time.perf_counter() - run_start
        notes = run_notes(network, lowered, chip, build_s, run_s, len(x), steps, built, overflow)
        act = common.activity(network, BACKEND, x, steps, checkpoints, counts, recorded[network.output],
                              time.perf_counter() - start_time, output_v=out_v, inputs=trains, notes=notes)
    finally:
        sim.close()
    act.spike_trains = {name: recorded[name] for name in record_trains}
    return act


def _present(chip: Chip, lowered: Lowered, biases: Biases, trains, samples: int, steps: int, checkpoints: list,
             record: set, progress):
    """Run every sample from a reset state; read each population in its lag-shifted window.

    Returns per-neuron counts {name: (samples, *shape)}, spike trains {name: (samples, steps,
    *shape)} of the populations in ``record``, and the output membrane (in thresholds) after
    each checkpoint (samples, checkpoints, n).
    """
    sim, network = chip.sim, lowered.network
    total = steps + max(lowered.lag.values())
    spiking = [p for p in network.populations if not p.is_input]
    v_init = {p.name: p.initial_membrane().reshape(-1) / p.neuron.threshold for p in spiking}
    counts = {p.name: np.zeros((samples,) + p.shape, np.int64) for p in spiking}
    recorded = {p.name: np.zeros((samples, steps) + p.shape, bool) for p in spiking if p.name in record}
    out = network.population(network.output)
    out_v = np.zeros((samples, len(checkpoints), out.size))
    for k in range(samples):
        sample_events = engine.events(biases.changes(k, k + 1), lowered.lag, total)
        engine.run_sample(chip, sample_events, total, v_init, None if trains is None else trains[k])
        for p in spiking:
            s = engine.spikes(sim, lowered.probes[p.name], lowered.lag[p.name], steps).reshape((steps,) + p.shape)
            counts[p.name][k] = s.sum(axis=0)
            if p.name in recorded:
                recorded[p.name][k] = s
        out_v[k] = engine.membrane(sim, lowered.probes["voltage"],
                                   [lowered.lag[out.name] + c - 1 for c in checkpoints], chip.units[out.name])
        sim.clear_probes()
        if chip.overflows is not None:
            chip.overflows.end_sample()
        if progress is not None:
            progress.update(1)
    return counts, recorded, out_v


def mapping(network: Network, *, conv: str = "transform", block_size: int | None = None,
            block_shapes: dict | None = None) -> dict:
    """How nengo-loihi splits and places ``network``, without running it.

    Returns ``{"cores", "blocks", "populations": {name: {"blocks", "cores", "block_shape",
    "ensemble_shape", "per_block": [{"label", "compartments", "in_axons", "out_axons", "synapses"
    (synapse memory bits): {"used", "max"}, "weight_exp"}, ...], "vth_units",
    "units_per_threshold"}}, "lag_steps", "conv_transforms", "utilization_summary", "input",
    "split"}``: one block per core (nengo-loihi's allocators), relay populations named
    ``<population>~relay<k>``; each population is cut into blocks of ``block_shape`` over
    ``ensemble_shape`` (nengo-loihi's ``BlockShape``: the population's own shape, or its neurons
    in a row for runs of consecutive neurons); "split" says how the shapes were chosen (None where
    ``block_size`` alone set them; ``block_size`` and ``block_shapes`` as in :func:`run`). Biases are taken without input (they set no resources).
    """
    check(network, conv, "sim")
    x = np.zeros((1, network.population(network.input).size), np.float32)
    lowered, sim, built = build(network, Biases(network, x).build_bias(), conv, block_size, block_shapes=block_shapes)
    try:
        return {**chip_mapping(lowered, _chip(sim, lowered)), "split": built["blocks"]}
    finally:
        sim.close()
