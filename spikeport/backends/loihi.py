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
axons, a core has 4096). Block shapes are chosen before building instead (:class:`_BlockPlan`):
last layer first, each population gets the shape with the fewest blocks (tiles along
channels, rows, columns, or runs of neurons) for which every block's compartments, input
axons, synapse memory and the output axons it adds to the blocks feeding it are counted
within a core's limits. The emulator's spike delivery, spike by spike in Python in
nengo-loihi, is vectorized (:class:`_SpikeRouting`: the same integer sums).

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
input of the target block. Measured on the digits network below it miscounts 9.9 % of
the first layer's spikes (the bias path: 0.007 %) and agrees with the reference on
98.05 % of the test images (the bias path: 98.33 %), at 2.5x the run time.

Samples run one after another on one built simulator (nengo-loihi cannot reset one):
before each sample the state is reset (membranes, currents, refractory counters, spikes
in flight) and each population's v_init is written to its membranes.

Exact: nothing is lost in the lowering
--------------------------------------
On ``target="simreal"`` (nengo-loihi's model in floating point) every population's
spike trains equal the reference executor's, spike for spike, for IF and LIF neurons,
synaptic filters, refractory periods, per-neuron v_init, delays, residual paths and all
three encodings (tests/test_backend_loihi.py), when the graph resets to zero.

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

Measured (digits, conv 8@3x3 - pool - fc 64 - fc 10 converted with reset by subtraction,
359 test images, T = 32, analog input): 98.33 % of predictions agree with the reference
(T = 16: 98.33 %, T = 64: 99.16 %; Poisson input at 1 kHz: 98.89 %), accuracy 94.7 % against 95.5 %.
The reference with reset to zero agrees with the reference on 98.33 % too, and with this
backend on 99.44 %: the reset and the precision cost about the same. Reset to zero cuts the
spikes by 14 % (conv1), 35 % (fc1) and 62 % (fc2). With nengo-loihi's stock vmin = 0 the
agreement falls to 96.94 %. About 10 ms per image (34 steps; 35 ms with nengo-loihi's own
spike-by-spike delivery) on one core; build 0.1 s.

Measured (MNIST LeNet: conv 20@5x5 - avgpool 2 - conv 50@5x5 - avgpool 2 - fc 200 - fc 10,
converted with percentile normalization and v(0) = theta / 2, analog input, T = 100; 20 test
images, ``bench/backends.py``): 28 cores (conv1 12 blocks of 10x4x24, conv2 13 of 4x8x8 over
its 50x8x8, fc1 2 of 100, fc2 1; nengo-loihi's own split cannot map it); all 20 predictions
agree with the reference, per-layer rate correlation >= 0.985; 0.69 s per image (103 steps;
nengo-loihi's spike-by-spike delivery: 7.7 s), build 3.7 s of which 1 s chooses the blocks.
One conv2 input of one step in those 20 images exceeded the chip's 21-bit input (reported).
With conv="sparse": 35 cores (conv2 in tiles of 25x2x4 channels x rows x columns, up to 3840
input axons each), build 20 s.
"""
from __future__ import annotations

import itertools
import math
import time
import warnings
from collections import OrderedDict

import nengo
import nengo_loihi
import numpy as np
from nengo.params import IntParam, NumberParam
from nengo_loihi.block import MAX_COMPARTMENTS, MAX_IN_AXONS, MAX_OUT_AXONS, MAX_SYNAPSE_BITS
from nengo_loihi.block import Synapse as LoihiSynapse
from nengo_loihi.builder import Builder as LoihiBuilder
from nengo_loihi.builder import Model as LoihiModel
from nengo_loihi.builder.builder import ValidationLevel
from nengo_loihi.builder.discretize import BIAS_MAX, bias_to_manexp, overflow_signed
from nengo_loihi.inputs import ChipProcess, SpikeInput

from ..errors import SpikeportError
from ..ir import Network
from . import common

BACKEND = "nengo-loihi"
V_LIMIT = 2**23 - 1      # Loihi's membrane is a 24-bit signed register
TARGETS = ("sim", "simreal")
CONV_MODES = ("sparse", "transform")
FAST_ROUTING = True      # the emulator's spike delivery vectorized (_SpikeRouting); False: nengo-loihi's own loop


# ---------------------------------------------------------------------------- nengo objects

class LoihiIF(nengo.neurons.NeuronType):
    """An integrate-and-fire neuron as one Loihi compartment (module docstring).

    Nengo's conventions: input J in units where a constant J = 1/dt reaches the
    threshold in one step (spikes are 1/dt high), threshold 1 on v = sum of J dt.
    ``decay`` is the per-step membrane factor (1: IF), ``refractory_steps`` the steps a
    neuron is held at 0 after a spike; ``v_min`` the lowest membrane (in thresholds,
    -inf: the chip's limit). ``syn_decay`` is the compartment's current decay (None: no
    filter); on Loihi it belongs to the compartment, so it is set here even for neurons
    no connection reaches (connections into them must use the same ``nengo.Lowpass``).
    """

    state = {"voltage": nengo.dists.Choice([0.0]), "refractory": nengo.dists.Choice([0.0])}
    spiking = True
    negative = False

    decay = NumberParam("decay", low=0, high=1)
    syn_decay = NumberParam("syn_decay", low=0, high=1, high_open=True, optional=True)
    refractory_steps = IntParam("refractory_steps", low=0)
    v_min = NumberParam("v_min", high=0)

    def __init__(self, decay=1.0, syn_decay=None, refractory_steps=0, v_min=-np.inf, initial_state=None):
        super().__init__(initial_state)
        self.decay = decay
        self.syn_decay = syn_decay
        self.refractory_steps = refractory_steps
        self.v_min = v_min

    def max_rates_intercepts(self, gain, bias):
        # gain and bias are always given: nengo's rate search (which simulates a second
        # of a step function) would only waste build time
        nan = np.full_like(np.asarray(gain, dtype=float), np.nan)
        return nan, nan.copy()

    def step(self, dt, J, output, voltage, refractory):
        """The compartment in floating point (nengo's reference simulator)."""
        held = refractory > 0
        voltage[:] = np.where(held, 0.0, np.maximum(self.decay * voltage + J * dt, self.v_min))
        refractory[held] -= 1
        spiked = voltage > 1.0
        output[:] = spiked / dt
        voltage[spiked] = 0.0
        refractory[spiked] = self.refractory_steps


@LoihiBuilder.register(LoihiIF)
def _build_loihi_if(model, neuron_type, neurons, block):
    comp = block.compartment
    comp.configure_relu(vth=1.0 / model.dt, dt=model.dt)    # integrate, vth = 1/dt, reset to 0
    # without this, a compartment that no connection reaches keeps nengo-loihi's default 5 ms filter
    comp.configure_filter(_tau_syn(neuron_type.syn_decay, model.dt), dt=model.dt)
    comp.decay_v[:] = 1.0 - neuron_type.decay
    comp.scale_v = False                                     # the graph's v += i + b: no (1 - decay) input scale
    comp.refract_delay[:] = neuron_type.refractory_steps + 1
    comp.vmin = neuron_type.v_min / model.dt


def _tau_syn(syn_decay, dt: float) -> float:
    """The lowpass time constant whose per-step decay is syn_decay (0: no filter)."""
    return 0.0 if syn_decay is None else (-dt / math.log(syn_decay) if syn_decay > 0 else 1e-9 * dt)


def _synapse(syn_decay, dt: float):
    return None if syn_decay is None else nengo.Lowpass(_tau_syn(syn_decay, dt))


class SpikeTrainInput(ChipProcess):
    """Spikes given step by step, injected on the chip (nengo-loihi's ``SpikeInput``).

    ``input`` (the built ``SpikeInput``) is set by the builder; spikes added with
    :meth:`queue` reach their targets like spikes of a chip population.
    """

    def __init__(self, size):
        super().__init__(default_size_in=0, default_size_out=size)
        self.input = None

    def make_step(self, shape_in, shape_out, dt, rng, state):  # pragma: no cover - runs on the chip only
        raise SpikeportError("SpikeTrainInput runs on the Loihi emulator only")


@LoihiBuilder.register(SpikeTrainInput)
def _build_spike_train_input(model, process, node=None):
    spike_input = SpikeInput(process.default_size_out, label=getattr(node, "label", None))
    model.add_input(spike_input)
    process.input = spike_input
    return spike_input


# ---------------------------------------------------------------------------- the plan

def _plan(network: Network, analog: bool):
    """Chip-step lag of every population (:func:`common.lags`: Loihi delivers a connection
    one step later) and relays per spiking projection, which pad every path into a
    population to its lag. An analog projection is a bias switched on at the post
    population's step ``delay_steps``."""
    lag = common.lags(network)
    relays = {p.name: lag[p.post] - lag[p.pre] + p.delay_steps - 1 for p in network.projections
              if not (analog and p.pre == network.input)}
    return lag, relays


def _check(network: Network, conv: str, target: str):
    common.require_simulable(network, BACKEND)  # refuses reset_amount, several spikes per step, v > theta
    if conv not in CONV_MODES:
        raise SpikeportError(f"conv must be one of {', '.join(CONV_MODES)}, got {conv!r}")
    if target not in TARGETS:
        raise SpikeportError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")


def _sparse(proj, pre_shape, n_pre, n_post, scale=1.0):
    syn = proj.materialize(pre_shape)
    return nengo.transforms.Sparse((n_post, n_pre), indices=np.stack([syn.post, syn.pre], axis=1),
                                   init=syn.weight * scale)


def fold_pool_into_conv(ops: list) -> list:
    """``ops`` with every pooling that a convolution follows folded into that convolution: exact.

    SumPool2d or AvgPool2d (window k, stride s, no padding) followed by Conv2d (weights W with
    kernel K, stride t, no padding or dilation, any groups) is one Conv2d with kernel (K - 1) s + k,
    stride s t and weights

        W'[o, c, u s + a, v s + b] += f W[o, c, u, v]     for every pooling offset a, b in the window

    (f = 1 / (kh kw) for the average, 1 for the sum), because
    y[o, i, j] = sum_{c,u,v} W[o,c,u,v] f sum_{a,b} x[c, (i t + u) s + a, (j t + v) s + b]
               = sum_{c,U,V} W'[o,c,U,V] x[c, i s t + U, j s t + V],
    with the same output size. For non-overlapping windows (s = k, as AvgPool2d(2)) each weight
    is repeated over its k x k cell and divided by k*k: AvgPool2d(2) then Conv2d 5x5 is one
    Conv2d 10x10 with stride 2. Other ops, and pools that no foldable convolution follows, are
    kept as they are; the ops given are not changed.
    """
    out = []
    for op in ops:
        prev = out[-1] if out else None
        if (op.kind == "conv2d" and prev is not None and prev.kind in ("sumpool2d", "avgpool2d")
                and prev.padding == (0, 0) and op.padding == (0, 0) and op.dilation == (1, 1)):
            (kh, kw), (sh, sw) = prev.kernel_size, prev.stride
            w = op.weight.astype(np.float64) * prev.factor()
            co, cig, uh, uw = w.shape
            folded = np.zeros((co, cig, (uh - 1) * sh + kh, (uw - 1) * sw + kw))
            for a in range(kh):
                for b in range(kw):
                    folded[:, :, a:a + (uh - 1) * sh + 1:sh, b:b + (uw - 1) * sw + 1:sw] += w
            out[-1] = type(op)(folded.astype(op.weight.dtype), stride=(sh * op.stride[0], sw * op.stride[1]),
                               groups=op.groups)
        else:
            out.append(op)
    return out


def _conv_transform(proj, pre_shape):
    """A nengo.Convolution equal to the projection, or None where nengo cannot express it.

    The projection must be one Conv2d after pooling is folded into it
    (:func:`fold_pool_into_conv`), without groups or dilation, padding "valid" or "same".
    """
    ops = fold_pool_into_conv(proj.ops)
    if len(ops) != 1 or ops[0].kind != "conv2d":
        return None
    op = ops[0]
    kh, kw = op.kernel_shape()
    if op.groups != 1 or op.dilation != (1, 1):
        return None
    if op.padding == (0, 0):
        padding = "valid"
    elif op.stride == (1, 1) and kh % 2 and kw % 2 and op.padding == ((kh - 1) // 2, (kw - 1) // 2):
        padding = "same"
    else:
        return None
    kernel = np.transpose(op.weight.astype(np.float64), (2, 3, 1, 0))     # (kh, kw, C_in, C_out)
    return nengo.Convolution(op.weight.shape[0], tuple(pre_shape), kernel_size=(kh, kw), strides=op.stride,
                             padding=padding, channels_last=False, init=kernel)


class _Lowered:
    """The nengo network of a graph and what the run needs to drive and read it."""

    def __init__(self, network: Network, bias: dict, conv: str, block_size):
        self.network = network
        dt = network.dt_s
        inp = network.population(network.input)
        self.analog = inp.encoding.kind == "analog"
        self.lag, self.relays = _plan(network, self.analog)
        self.ens, self.probes, self.relay_ens = OrderedDict(), {}, OrderedDict()
        self.conv_used, self.conv_folded = [], {}
        self.net = nengo.Network(label="spikeport", seed=0)
        nengo_loihi.add_params(self.net)
        with self.net:
            self.spike_source = None
            if not self.analog:
                self.process = SpikeTrainInput(inp.size)
                self.spike_source = nengo.Node(self.process, label=inp.name)
            for pop in network.populations:
                if pop.is_input:
                    continue
                nm = pop.neuron
                gain = 1.0 / nm.threshold / (1.0 - nm.syn_decay if nm.syn_decay is not None else 1.0)
                ens = nengo.Ensemble(pop.size, 1, label=pop.name,
                                     neuron_type=LoihiIF(nm.decay, nm.syn_decay, nm.refractory_steps),
                                     gain=np.full(pop.size, gain), bias=bias[pop.name] / dt)
                if block_size is not None:
                    self.net.config[ens].block_shape = nengo_loihi.BlockShape((min(block_size, pop.size),),
                                                                              (pop.size,))
                self.ens[pop.name] = ens
                self.probes[pop.name] = nengo.Probe(ens.neurons, "output")
            self.probes["voltage"] = nengo.Probe(self.ens[network.output].neurons, "voltage")
            for proj in network.projections:
                if self.analog and proj.pre == network.input:
                    continue
                self._connect(proj, conv)

    def _source(self, name):
        return self.spike_source if name == self.network.input else self.ens[name].neurons

    def _relay(self, name: str, depth: int):
        """The depth-th relay of population ``name``: fires exactly ``depth`` steps after it."""
        key = (name, depth)
        if key not in self.relay_ens:
            n = self.network.population(name).size
            prev = self._source(name) if depth == 1 else self._relay(name, depth - 1)
            ens = nengo.Ensemble(n, 1, label=f"{name}~relay{depth}", neuron_type=LoihiIF(),
                                 gain=np.ones(n), bias=np.zeros(n))
            # weight 2 thresholds: one spike always crosses, the reset empties the neuron
            nengo.Connection(prev, ens.neurons, transform=nengo.transforms.Sparse((n, n), indices=np.stack(
                [np.arange(n), np.arange(n)], axis=1), init=np.full(n, 2.0)), synapse=None)
            self.relay_ens[key] = ens
        return self.relay_ens[key].neurons

    def _connect(self, proj, conv: str):
        net = self.network
        pre, post = net.population(proj.pre), net.population(proj.post)
        k = self.relays[proj.name]
        source = self._source(proj.pre) if k == 0 else self._relay(proj.pre, k)
        nm = post.neuron
        synapse = _synapse(nm.syn_decay, net.dt_s)
        # nengo-loihi's convolution takes neurons as pre, not a chip input process (an assert in its builder)
        transform = _conv_transform(proj, pre.shape) if conv == "transform" and not pre.is_input else None
        if transform is not None:
            self.conv_used.append(proj.name)
            if len(proj.ops) > 1:
                kh, kw = transform.kernel_size
                self.conv_folded[proj.name] = (f"{'+'.join(op.kind for op in proj.ops)} as one conv2d "
                                               f"{kh}x{kw} stride {transform.strides[0]}x{transform.strides[1]}")
        else:
            transform = _sparse(proj, pre.shape, pre.size, post.size)
            if transform.init.size == 0:
                return
        nengo.Connection(source, self.ens[proj.post].neurons, transform=transform, synapse=synapse)


# ---------------------------------------------------------------------------- the chip's registers

class _Chip:
    """The built emulator, seen through the registers a host writes between samples.

    Per population: the global compartment index of every neuron and the integer
    membrane units of one threshold (``units``: vth_float * v_scale of its block, before
    vth's own rounding), from which biases and membranes convert exactly as
    nengo-loihi's discretization converts them (``builder/discretize.py``).
    """

    def __init__(self, sim, lowered: _Lowered):
        self.sim, self.lowered = sim, lowered
        self.emu = sim.sims["emulator"]
        comp = self.emu.compartment
        slices = self.emu.block_info.slices
        self.index, self.units, self.blocks, self.ens = {}, {}, OrderedDict(), {}
        dt = lowered.network.dt_s
        for name, ens in list(lowered.ens.items()) + [(f"{k[0]}~relay{k[1]}", e) for k, e in
                                                        lowered.relay_ens.items()]:
            index = np.empty(ens.n_neurons, dtype=np.int64)
            units = np.empty(ens.n_neurons)
            blocks = sim.model.objs[ens]["out"]
            blocks = blocks if isinstance(blocks, list) else [blocks]
            for block in blocks:
                idx = np.asarray(sim.model.block_comp_map.get(block, np.arange(block.n_neurons)))
                sl = slices[block]
                index[idx] = np.arange(sl.start, sl.stop)
                info = block.discretize_info           # None on "simreal": float units, threshold 1/dt
                units[idx] = (1.0 if info is None else info["v_scale"]) / dt
            self.index[name], self.units[name], self.blocks[name] = index, units, blocks
            self.ens[name] = ens
        self.discrete = comp.voltage.dtype.kind == "i"
        if self.discrete:
            _full_voltage_range(comp, self.blocks.values())
        self.vth = {name: comp.vth[index].astype(np.float64) for name, index in self.index.items()}
        self.routing = _SpikeRouting(self.emu) if self.discrete and FAST_ROUTING else None
        self.overflows = _OverflowTally().attach(comp, self.index) if self.discrete else None

    def bias_int(self, name: str, bias_thresholds: np.ndarray) -> np.ndarray:
        """A bias in thresholds per step as the chip's register value (mantissa * 2**exponent)."""
        if not self.discrete:
            return bias_thresholds * self.units[name]
        value = np.clip(np.round(bias_thresholds * self.units[name]), -BIAS_MAX, BIAS_MAX)  # float32 build slack
        man, exp = bias_to_manexp(value)
        return man * 2**exp

    def reset(self):
        """Every compartment's state to zero, no bias, no spike in flight: the state before a sample."""
        if self.lowered.spike_source is not None:
            self.lowered.process.input.spikes.clear()     # the last steps' input would arrive after the run
        _clear_compartments(self.emu.compartment)

    def write(self, name: str, bias=None, voltage=None, current=None):
        """Write a population's bias and/or membrane, or add to its current (all in thresholds)."""
        comp, index = self.emu.compartment, self.index[name]
        if bias is not None:
            comp.bias[index] = self.bias_int(name, bias)
        if current is not None:
            comp.current[index] += self._units(name, current)
        if voltage is not None:
            comp.voltage[index] = np.clip(self._units(name, voltage), -V_LIMIT, V_LIMIT)

    def _units(self, name, thresholds):
        value = thresholds * self.units[name]
        return np.round(value).astype(np.int64) if self.discrete else value

    def queue_input(self, trains: np.ndarray):
        """Input spikes (steps, n): step s's spikes arrive as if sent at chip step s of this sample."""
        spike_input, t0 = self.lowered.process.input, self.emu.t
        for s in range(len(trains)):
            idx = np.flatnonzero(trains[s])
            if idx.size:
                spike_input.add_spikes(t0 + s + 1, idx)


class _OverflowTally:
    """Where the emulator's registers wrap: counts per (population, register) and the samples hit.

    :meth:`attach` replaces an emulator's own check (the same ``overflow_signed`` wrap and the
    same warning) with one that also records which compartments wrapped, so a run can name the
    layer; one tally may follow several emulators (a build per sample). Registers: q0 the
    21-bit input of one step, current and u2 (current plus bias) 23 bits.
    """

    BITS = {"q0": "21-bit input", "current": "23-bit current", "u2": "23-bit current + bias"}

    def __init__(self):
        self.counts, self.samples_hit, self._hit = {}, 0, False

    def attach(self, comp, index: dict):
        """Tally ``comp``'s overflows by population (``index``: {population: compartment indices})."""
        names = list(index) + ["(other)"]
        owner = np.full(len(comp.voltage), len(index), dtype=np.int64)
        for k, idx in enumerate(index.values()):
            owner[idx] = k

        def overflow(x, bits, name=None):
            _, wrapped = overflow_signed(x, bits=bits, out=x)
            if wrapped.any():
                for k, c in zip(*np.unique(owner[wrapped], return_counts=True)):
                    key = (names[k], name)
                    self.counts[key] = self.counts.get(key, 0) + int(c)
                self._hit = True
                comp.error("Overflow" + (" in %s" % name if name else ""))

        comp._overflow = overflow
        return self

    def end_sample(self):
        self.samples_hit += self._hit
        self._hit = False

    def total(self) -> int:
        return sum(self.counts.values())

    def note(self, samples: int):
        """One line naming where values wrapped, or None where none did."""
        if not self.counts:
            return None
        parts = ", ".join("%s %s %d" % (pop, self.BITS.get(reg, reg), c) for (pop, reg), c in
                          sorted(self.counts.items(), key=lambda kv: -kv[1]))
        return ("overflow: %d register values wrapped around as on the chip (%s), in %d of %d samples "
                "(a wrapped value is that step's input or current of that neuron)"
                % (self.total(), parts, self.samples_hit, samples))


def _clear_compartments(comp) -> None:
    """Every compartment's input, current, membrane, spike, refractory count and bias to zero."""
    comp.input[:] = 0
    comp.current[:] = 0
    comp.voltage[:] = 0
    comp.spiked[:] = False
    comp.ref_count[:] = 0
    comp.bias[:] = 0


def _full_voltage_range(comp, block_lists) -> None:
    """Give the emulator's membranes the chip's full 24-bit range below zero (nengo-loihi rounds
    vmin to a power of two)."""
    comp.vmin[:] = -V_LIMIT
    comp.vmax[:] = np.minimum(comp.vmax, V_LIMIT)
    for blocks in block_lists:
        for block in blocks:
            block.compartment.vmin = -V_LIMIT


def _ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[k], starts[k] + lens[k])."""
    ends = np.cumsum(lens)
    return np.repeat(starts - ends + lens, lens) + np.arange(int(ends[-1]) if lens.size else 0)


class _SpikeRouting:
    """Spike delivery of the emulator's discrete target in a few numpy operations per step.

    nengo-loihi's emulator delivers spikes one at a time in Python (``SynapseState``: a
    ``Spike`` object per spike and target synapse, then that axon's weights added to the input
    of its compartments): about 0.1 s a step on LeNet. This computes the same sums: for every
    (axon, source compartment) the weight row (axon's weights for the compartment's atom) and
    the compartment base are tabled once; each step the rows of the spiking compartments and
    of the input spikes are gathered and added with one ``bincount``. Integer weights: the sums
    do not depend on the order, so the result is the emulator's own, bit for bit (on "simreal"
    float32 sums would depend on it; there nengo-loihi's own loop runs). No learning rules.
    """

    def __init__(self, emu):
        syn_state, n = emu.synapses, emu.block_info.n_compartments
        weights, indices, ptr, row0, n_atoms = [], [], [0], {}, {}
        for syn, sl in syn_state.items():
            assert not syn.learning, "spike routing without learning only"
            row0[syn], n_atoms[syn] = len(ptr) - 1, syn.weights[0].shape[0]
            for w, i in zip(syn.weights, syn.indices):
                for atom in range(w.shape[0]):
                    weights.append(np.asarray(w[atom], np.float64))
                    indices.append(np.asarray(i[atom], np.int64))
                    ptr.append(ptr[-1] + w.shape[1])
        self.weights = np.concatenate(weights or [np.zeros(0)])
        self.indices = np.concatenate(indices or [np.zeros(0, np.int64)])
        self.ptr = np.asarray(ptr, np.int64)
        self.n, self.slices = n, syn_state.slices
        self.row0, self.n_atoms = row0, n_atoms
        self.blocks = self._table([(axon, sl.start, sl.stop - sl.start) for axon, sl in emu.axons.items()], n)
        self.inputs = {id(inp): self._table([(axon, 0, inp.n_neurons) for axon in inp.axons], inp.n_neurons)
                       for inp in emu.inputs}
        self.q = None
        emu.synapses.inject_current = self.inject_current
        emu.synapses.update_input = self.update_input

    def _table(self, axons, n_sources):
        """Per source compartment (CSR): the weight row and the target base of each of its axons."""
        src, rows, bases = [], [], []
        for axon, offset, n_local in axons:
            syn = axon.target
            local = np.arange(n_local)
            ids = np.asarray(axon.map_axon(local), np.int64)
            atoms = np.asarray(axon.map_atoms(local), np.int64)
            keep = ids >= 0
            if syn.axon_compartment_bases is not None:
                keep &= np.where(keep, np.asarray(syn.axon_compartment_bases)[np.maximum(ids, 0)], -1) >= 0
            local, ids, atoms = local[keep], ids[keep], atoms[keep]
            wi = ids if syn.axon_to_weight_map is None else np.asarray(syn.axon_to_weight_map)[ids]
            base = 0 if syn.axon_compartment_bases is None else np.asarray(syn.axon_compartment_bases)[ids]
            src.append(offset + local)
            rows.append(self.row0[syn] + wi * self.n_atoms[syn] + atoms)
            bases.append(self.slices[syn].start + base + np.zeros_like(ids))
        src = np.concatenate(src or [np.zeros(0, np.int64)])
        order = np.argsort(src, kind="stable")
        ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n_sources))])
        return (ptr, np.concatenate(rows or [np.zeros(0, np.int64)])[order],
                np.concatenate(bases or [np.zeros(0, np.int64)])[order])

    @staticmethod
    def _entries(table, sources):
        ptr, rows, bases = table
        k = _ranges(ptr[sources], ptr[sources + 1] - ptr[sources])
        return rows[k], bases[k]

    def inject_current(self, t, spike_inputs, all_axons, spiked):
        parts = [self._entries(self.blocks, np.flatnonzero(spiked))]
        if t >= 2:  # input spikes take one step to arrive (as nengo-loihi's inject_current)
            for inp in spike_inputs:
                idx = np.asarray(inp.spike_idxs(t - 1), np.int64)
                if idx.size:
                    parts.append(self._entries(self.inputs[id(inp)], idx))
        rows = np.concatenate([r for r, _ in parts])
        bases = np.concatenate([b for _, b in parts])
        starts = self.ptr[rows]
        lens = self.ptr[rows + 1] - starts
        k = _ranges(starts, lens)
        self.q = np.bincount(np.repeat(bases, lens) + self.indices[k], weights=self.weights[k], minlength=self.n)

    def update_input(self, input):
        input[0] += np.rint(self.q).astype(input.dtype)


# ---------------------------------------------------------------------------- building

class _Biases:
    """Every population's bias during a sample: its own b plus, for an analog input, W x.

    :meth:`changes` gives, per population, [(steps after its lag, level, kick)]: the level
    (thresholds per step, (samples, n)) is b / theta plus the current of every analog
    projection that has started (after its ``delay_steps``). With a synaptic filter alpha
    the graph filters an analog current J too (i[t] = alpha i[t-1] + J): the bias then takes
    the filtered current's final value J / (1 - alpha) and the compartment's current u,
    which decays by alpha, is kicked by -J / (1 - alpha) (the kick), so that u + bias =
    J (1 - alpha**(t+1)) / (1 - alpha): the graph's i[t], step for step.
    """

    def __init__(self, network: Network, x: np.ndarray):
        self.network, self.x = network, x
        inp = network.population(network.input)
        analog = inp.encoding.kind == "analog"
        self.parts = {}
        for pop in network.populations:
            if pop.is_input:
                continue
            projs = [p for p in network.projections_into(pop.name) if analog and p.pre == inp.name]
            self.parts[pop.name] = sorted(projs, key=lambda p: p.delay_steps)

    def changes(self, k0: int, k1: int) -> dict:
        """{population: [(delay, level (k1 - k0, n), kick or None)]} for samples k0..k1-1."""
        net, out = self.network, {}
        inp = net.population(net.input)
        xs = self.x[k0:k1].reshape((k1 - k0,) + inp.shape).astype(np.float64)
        for name, projs in self.parts.items():
            pop = net.population(name)
            nm = pop.neuron
            own = np.zeros(pop.size) if pop.bias is None else pop.bias.reshape(-1).astype(np.float64)
            level = np.broadcast_to(own / nm.threshold, (k1 - k0, pop.size))
            stages = [(0, level, None)]
            for proj in projs:
                cur = proj.apply_numpy(xs).reshape(k1 - k0, -1) / nm.threshold
                if nm.syn_decay is not None:
                    cur = cur / (1.0 - nm.syn_decay)
                d, level, kick = stages[-1]
                new_kick = None if nm.syn_decay is None else -cur
                if proj.delay_steps == d:
                    stages[-1] = (d, level + cur, new_kick if kick is None else kick + new_kick)
                else:
                    stages.append((proj.delay_steps, level + cur, new_kick))
            out[name] = stages
        return out

    def build_bias(self, chunk: int = 256) -> dict:
        """The bias (thresholds per step) each ensemble is built with: per neuron the value of
        largest magnitude its bias register holds during the run, so that nengo-loihi's
        discretization picks a scale at which every sample's bias fits."""
        out = {}
        for k0 in range(0, max(len(self.x), 1), chunk):
            for name, stages in self.changes(k0, min(k0 + chunk, len(self.x))).items():
                levels = np.concatenate([level for _, level, _ in stages] + ([out[name][None]] if name in out else []))
                out[name] = levels[np.abs(levels).argmax(axis=0), np.arange(levels.shape[1])]
        return out


# ---------------------------------------------------------------------------- blocks (cores)

def _block_indices(ens_shape: tuple, shape: tuple) -> list:
    """The compartments of each block of ``BlockShape(shape, ens_shape)``, in nengo-loihi's order."""
    full = np.arange(int(np.prod(ens_shape))).reshape(ens_shape)
    return [full[tuple(slice(i, min(i + b, n)) for i, b, n in zip(start, shape, ens_shape))].ravel()
            for start in itertools.product(*(range(0, n, b) for n, b in zip(ens_shape, shape)))]


def _candidate_shapes(shape: tuple) -> list:
    """[(ensemble shape, block shape)] of at most 1024 compartments, fewest blocks first: tiles
    along the population's own axes (channels, rows, columns; at equal counts the smallest
    tiles), then runs of consecutive neurons."""
    n = int(np.prod(shape))
    out = []
    for b in itertools.product(*(sorted({-(-d // k) for k in range(1, d + 1)}) for d in shape)):
        if np.prod(b) <= MAX_COMPARTMENTS:
            out.append((int(np.prod([-(-d // s) for d, s in zip(shape, b)])), 0, int(np.prod(b)), tuple(shape), b))
    if len(shape) > 1:
        for b in {-(-n // k) for k in range(-(-n // MAX_COMPARTMENTS), n + 1)}:
            out.append((-(-n // b), 1, b, (n,), (b,)))
    return [(ens, b) for *_, ens, b in sorted(out)]


def _shape_str(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


class _BlockPlan:
    """Block shapes chosen before building, by counting what each block of a candidate needs.

    The nengo model is built once without splitting (every ensemble one block, nothing
    validated). Then, last layer first, each ensemble gets the candidate shape with the fewest
    blocks (:func:`_candidate_shapes`) for which every block fits a core as nengo-loihi counts it:
    at most 1024 compartments; input axons (per connection the presynaptic neurons, for a
    convolution the presynaptic pixels, that reach the block) at most 4096; synapse memory
    (what nengo-loihi's ``split_synapse`` builds for the block, :meth:`_synapse_bits`) at most
    2**20 bits; output axons (one per neuron per block of each target that it reaches, two
    for 32-bit population axons) at most 4096, with the targets' shapes already chosen. A
    shape whose first block does not fit rules out every shape that contains that block
    (a larger block reaches at least the same axons; for synapse memory this is assumed, and
    can only cost a block, never a block that does not fit). nengo-loihi validates the result
    again when it builds. The chosen shapes are set as each ensemble's ``block_shape``;
    ``shapes`` {name: (ensemble shape, block shape, blocks)}. LeNet: 59 shapes in about 1 s.
    """

    def __init__(self, lowered: _Lowered):
        self.t0 = time.perf_counter()
        net, config = lowered.network, lowered.net.config
        ens_shape = OrderedDict((ens, net.population(name).shape) for name, ens in lowered.ens.items())
        names = {ens: name for name, ens in lowered.ens.items()}
        for (name, depth), ens in lowered.relay_ens.items():
            ens_shape[ens], names[ens] = net.population(name).shape, f"{name}~relay{depth}"
        for ens, shape in ens_shape.items():
            config[ens].block_shape = nengo_loihi.BlockShape(tuple(shape), tuple(shape))
        model = LoihiModel(dt=net.dt_s, label="spikeport block plan")
        model.validation_level = ValidationLevel.NONE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.build(lowered.net, discretize=False)
        # (nengo-loihi's split ran, with one block per ensemble: each is its list of one block)
        block_of = {ens: (lambda out: out[0] if isinstance(out, list) else out)(model.objs[ens]["out"])
                    for ens in ens_shape}
        owner = {id(syn): block for block in model.blocks for syn in block.synapses}
        self.targets = {}          # id(synapse): (axon ids, compartments) of every used synapse entry
        self.axon_weights = {}     # id(synapse): see _axon_weights
        self.post_masks = {}       # id(synapse): (blocks of its owner, axons) reached, None: one block
        self.tried, self.shapes = 0, OrderedDict()
        chosen = {}
        for ens in self._posts_first(list(ens_shape), block_of, owner):
            name, block = names[ens], block_of[ens]
            chosen[ens] = self._choose(name, block, ens_shape[ens])
            ens_full, shape, blocks = chosen[ens]
            self.shapes[name] = (tuple(ens_full), tuple(shape), len(blocks))
        for ens, (ens_full, shape, _) in chosen.items():
            config[ens].block_shape = nengo_loihi.BlockShape(tuple(int(d) for d in shape),
                                                            tuple(int(d) for d in ens_full))
        self.seconds = time.perf_counter() - self.t0
        self.shapes = OrderedDict((names[e], self.shapes[names[e]]) for e in ens_shape)
        self.natural = {names[e]: tuple(shape) for e, shape in ens_shape.items()}

    @staticmethod
    def _posts_first(ensembles, block_of, owner) -> list:
        """Ensembles ordered so that every target of an ensemble's axons comes before it."""
        ens_of = {id(block): ens for ens, block in block_of.items()}
        order, seen = [], set()

        def visit(ens):
            if ens in seen:
                return
            seen.add(ens)
            for axon in block_of[ens].axons:
                post = owner.get(id(axon.target))
                if post is not None and id(post) in ens_of:
                    visit(ens_of[id(post)])
            order.append(ens)

        for ens in ensembles:
            visit(ens)
        return order

    def _synapse_targets(self, syn):
        if id(syn) not in self.targets:
            axons, comps = [], []
            for a in range(syn.n_axons):
                base = syn.axon_compartment_base(a)
                if base is None:
                    continue
                idx = base + np.asarray(syn.indices[syn.axon_weight_idx(a)][0], dtype=np.int64)
                axons.append(np.full(idx.size, a, dtype=np.int64))
                comps.append(idx)
            self.targets[id(syn)] = (np.concatenate(axons or [np.zeros(0, np.int64)]),
                                     np.concatenate(comps or [np.zeros(0, np.int64)]))
        return self.targets[id(syn)]

    def _reached(self, syn, label: np.ndarray, n_blocks: int) -> np.ndarray:
        """(blocks, axons) bool: which of the synapse's axons reach which block."""
        axons, comps = self._synapse_targets(syn)
        reached = np.zeros((n_blocks, syn.n_axons), bool)
        reached[label[comps], axons] = True
        return reached

    def _out_axons(self, block, ids: np.ndarray) -> int:
        """Output axons of the compartments ``ids`` of ``block``, its targets split as chosen."""
        total = 0
        for axon in block.axons:
            idx = np.asarray(axon.map_axon(ids))
            used = np.unique(idx[idx >= 0])
            masks = self.post_masks.get(id(axon.target))
            total += axon.slots_per_axon * (used.size if masks is None else int(masks[:, used].sum()))
        return total

    def _axon_weights(self, syn):
        """[(weight index, its canonical id, target compartments)] of every used axon of ``syn``."""
        if id(syn) not in self.axon_weights:
            canon = {}
            ids = [canon.setdefault((w.shape, w.tobytes()), len(canon)) for w in syn.weights]
            rows = []
            for a in range(syn.n_axons):
                base = syn.axon_compartment_base(a)
                if base is not None:
                    wi = syn.axon_weight_idx(a)
                    rows.append((wi, ids[wi], base + np.asarray(syn.indices[wi][0], dtype=np.int64)))
            self.axon_weights[id(syn)] = rows
        return self.axon_weights[id(syn)]

    def _synapse_bits(self, block, ids: np.ndarray) -> int:
        """Synapse memory bits of the block holding compartments ``ids`` of ``block``.

        What nengo-loihi's ``split_synapse`` builds for that block (each axon's weights
        restricted to the block, indices renumbered, a population axon's base taken modulo
        256), counted by nengo-loihi's own ``Synapse.bits``; weights are shared where they come
        from equal weight rows with equal restriction and indices (nengo-loihi shares where the
        values are equal: never more bits than it uses).
        """
        inside = np.zeros(block.n_neurons, bool)
        inside[ids] = True
        pos = np.full(block.n_neurons, -1, np.int64)
        pos[ids] = np.arange(len(ids))
        bits = 0
        for syn in block.synapses:
            shared = syn.axon_to_weight_map is not None
            seen, weights, indices = set(), [], []
            for wi, canon, comps in self._axon_weights(syn):
                valid = inside[comps]
                if not valid.any():
                    continue
                new = pos[comps[valid]]
                if shared:
                    new = new - new[np.argmin(comps[valid])] % 256
                key = (canon, np.packbits(valid).tobytes(), new.tobytes())
                if key not in seen:
                    seen.add(key)
                    w = syn.weights[wi][:, valid]
                    weights.append(w)
                    indices.append(np.tile(new, (w.shape[0], 1)))
            if weights:
                part = LoihiSynapse(len(weights))
                part._set_weights_indices(weights, indices, weight_dtype=weights[0].dtype,
                                          compression=syn.synapse_cfg.compression)
                bits += part.bits()
        return bits

    def _choose(self, name, block, shape):
        ruled_out = []
        why = "no candidate"
        for ens_full, b in _candidate_shapes(shape):
            if any(len(r) == len(b) and all(x >= y for x, y in zip(b, r)) for r in ruled_out):
                continue
            self.tried += 1
            blocks = _block_indices(ens_full, b)
            label = np.empty(block.n_neurons, np.int64)
            for k, ids in enumerate(blocks):
                label[ids] = k
            reached = [self._reached(syn, label, len(blocks)) for syn in block.synapses]
            whole = len(blocks) == 1
            ok = True
            for k, ids in enumerate(blocks):
                out_axons = self._out_axons(block, ids)
                if whole:
                    in_axons = sum(s.n_axons for s in block.synapses)
                else:
                    in_axons = sum(int(r[k].sum()) for r in reached)
                bits = None
                if out_axons <= MAX_OUT_AXONS and in_axons <= MAX_IN_AXONS:
                    bits = sum(s.bits() for s in block.synapses) if whole else self._synapse_bits(block, ids)
                for what, used, limit in (("output axons", out_axons, MAX_OUT_AXONS),
                                          ("input axons", in_axons, MAX_IN_AXONS),
                                          ("synapse bits", bits, MAX_SYNAPSE_BITS)):
                    if used is not None and used > limit:
                        ok = False
                        why = f"blocks of {_shape_str(b)}: {what} {used} > {limit}"
                        break
                if not ok:
                    if k == 0:
                        ruled_out.append(b)
                    break
            if ok:
                for syn, r in zip(block.synapses, reached):
                    self.post_masks[id(syn)] = None if whole else r
                return ens_full, b, blocks
        raise SpikeportError(f"nengo-loihi cannot map this network: population {name} fits no core even in "
                             f"the smallest blocks ({why})")

    def note(self) -> str:
        return ("blocks: shapes chosen before building, last layer first, each population in the fewest blocks "
                "that fit a core as nengo-loihi counts them (compartments; input axons: the presynaptic neurons, "
                "or pixels of a convolution, that reach the block; synapse memory from nengo-loihi's own split; "
                "the output axons its inputs' blocks then need): "
                + "; ".join(f"{name} {n} x {_shape_str(b)}"
                            + (" consecutive" if len(b) < len(self.natural[name]) else "")
                            for name, (e, b, n) in self.shapes.items())
                + f" ({self.tried} shapes counted in {self.seconds:.1f} s)")


def _simulator(lowered: _Lowered, target: str = "sim"):
    """nengo_loihi.Simulator on the emulator, and nengo-loihi's warnings about lost weight bits."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = nengo_loihi.Simulator(lowered.net, dt=lowered.network.dt_s, target=target, seed=0, progress_bar=False)
    lost = sorted({str(w.message) for w in caught if "Lost" in str(w.message)})
    return sim, lost


def _build(network: Network, bias: dict, conv: str, block_size, target: str = "sim"):
    """Lower, choose block shapes and build; returns (lowered, simulator, {"lost_bits": [...],
    "plan": the :class:`_BlockPlan`, or None where ``block_size`` set the blocks}).

    nengo-loihi's own split cuts a population into runs of consecutive neurons, sized by the
    whole population's totals; it fails where a run needs more than a core holds (a block of
    LeNet's conv2 covering two output rows needs 5760 input axons; a layer's extra output axons
    when its target is split are not counted). Blocks are therefore chosen by
    :class:`_BlockPlan`, which counts each candidate block before anything is built.
    nengo-loihi's build errors become one line.
    """
    lowered = _Lowered(network, bias, conv, block_size)
    plan = _BlockPlan(lowered) if block_size is None else None
    try:
        sim, lost = _simulator(lowered, target)
    except (nengo.exceptions.NengoException, AssertionError, ValueError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise SpikeportError(f"nengo-loihi cannot map this network: {msg}") from None
    return lowered, sim, {"lost_bits": lost, "plan": plan}


def _mapping(chip: _Chip) -> dict:
    """Blocks (one per core) and their use, per population (relays included), as nengo-loihi built them."""
    pops = OrderedDict((name, _population_mapping(chip, name)) for name in chip.blocks)
    cores = sum(m["cores"] for m in pops.values())
    out = {"backend": BACKEND, "cores": cores, "blocks": cores, "populations": pops,
           "lag_steps": {k: int(v) for k, v in chip.lowered.lag.items()},
           "conv_transforms": list(chip.lowered.conv_used),
           "utilization_summary": list(chip.sim.model.utilization_summary())}
    if chip.lowered.spike_source is not None:
        spike_input = chip.lowered.process.input
        out["input"] = {"neurons": int(spike_input.n_neurons),
                        "axons": int(sum(a.axon_slots() for a in spike_input.axons))}
    return out


def _population_mapping(chip: _Chip, name: str) -> dict:
    blocks = []
    for block in chip.blocks[name]:
        util = block.utilization()
        info = block.discretize_info or {}
        blocks.append({"label": str(block.label),
                       **{k.replace("-", "_"): {"used": int(v[0]), "max": int(v[1])} for k, v in util.items()},
                       "weight_exp": int(info.get("w_exp", 0))})
    shape = chip.lowered.net.config[chip.ens[name]].block_shape
    return {"blocks": len(blocks), "cores": len(blocks), "block_shape": [int(d) for d in shape.shape],
            "ensemble_shape": [int(d) for d in shape.ensemble_shape], "per_block": blocks,
            "vth_units": sorted({int(v) for v in chip.vth[name]})[:4],
            "units_per_threshold": float(np.median(chip.units[name]))}


def _events(changes: dict, lowered: _Lowered, total: int) -> dict:
    """{chip step: [(population, bias level, current kick, write v_init)]} within the run of one sample."""
    events = {}
    for name, stages in changes.items():
        for j, (d, level, kick) in enumerate(stages):
            c = lowered.lag[name] + d
            if c < total:
                events.setdefault(c, []).append((name, level[0], None if kick is None else kick[0], j == 0))
    return events


def run(network: Network, x, steps: int, *, checkpoints=None, seed: int = 0, record_counts: bool = False,
        record_trains=(), progress=None, conv: str = "transform", block_size: int | None = None,
        target: str = "sim"):
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
        population (default: block shapes chosen per population by counting, see :class:`_BlockPlan`)
    target : "sim" (the Loihi emulator, fixed point) or "simreal" (the same model in
        floating point, without discretization: isolates the lowering from the chip's precision)

    Returns the :class:`Activity`, with what the lowering changes in ``notes``.

    Example
    -------
    >>> act = run(net, dataset.x("test")[:100], 32)             # doctest: +SKIP
    >>> act.accuracy(dataset.y("test")[:100]), act.notes[0]      # doctest: +SKIP
    """
    start_time = time.perf_counter()
    _check(network, conv, target)
    x, steps, checkpoints = common.check_run(network, x, steps, checkpoints, record_trains)
    biases = _Biases(network, x)
    lowered, sim, built = _build(network, biases.build_bias(), conv, block_size, target)
    build_s = time.perf_counter() - start_time
    try:
        chip = _Chip(sim, lowered)
        trains = common.input_trains(network, x, steps, seed=seed)
        run_start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the emulator warns at every overflow: tallied per layer instead
            counts, recorded, out_v = _present(chip, biases, trains, len(x), steps, checkpoints,
                                               set(record_trains) | {network.output}, progress)
        overflow = chip.overflows.note(len(x)) if chip.overflows is not None else None
        run_s = time.perf_counter() - run_start
        notes = _notes(network, lowered, chip, build_s, run_s, len(x), steps, built, overflow)
        act = common.activity(network, BACKEND, x, steps, checkpoints, counts, recorded[network.output],
                              time.perf_counter() - start_time, output_v=out_v, inputs=trains, notes=notes)
    finally:
        sim.close()
    act.spike_trains = {name: recorded[name] for name in record_trains}
    return act


def _present(chip: _Chip, biases: _Biases, trains, samples: int, steps: int, checkpoints: list, record: set,
             progress):
    """Run every sample from a reset state; read each population in its lag-shifted window.

    Returns per-neuron counts {name: (samples, *shape)}, spike trains {name: (samples, steps,
    *shape)} of the populations in ``record``, and the output membrane (in thresholds) after
    each checkpoint (samples, checkpoints, n).
    """
    lowered, sim = chip.lowered, chip.sim
    network = lowered.network
    total = steps + max(lowered.lag.values())
    spiking = [p for p in network.populations if not p.is_input]
    v_init = {p.name: p.initial_membrane().reshape(-1) / p.neuron.threshold for p in spiking}
    counts = {p.name: np.zeros((samples,) + p.shape, np.int64) for p in spiking}
    recorded = {p.name: np.zeros((samples, steps) + p.shape, bool) for p in spiking if p.name in record}
    out = network.population(network.output)
    out_v = np.zeros((samples, len(checkpoints), out.size))
    for k in range(samples):
        chip.reset()
        if trains is not None:
            chip.queue_input(trains[k])
        events = _events(biases.changes(k, k + 1), lowered, total)
        cuts = sorted(set(events) | {0, total})
        for a, b in zip(cuts[:-1], cuts[1:]):
            for name, level, kick, first in events.get(a, []):
                chip.write(name, bias=level, voltage=v_init[name] if first else None, current=kick)
            sim.run_steps(b - a)
        for p in spiking:
            lag = lowered.lag[p.name]
            s = (np.asarray(sim.data[lowered.probes[p.name]])[lag:lag + steps] > 0).reshape((steps,) + p.shape)
            counts[p.name][k] = s.sum(axis=0)
            if p.name in recorded:
                recorded[p.name][k] = s
        v = np.asarray(sim.data[lowered.probes["voltage"]], dtype=np.float64)
        out_v[k] = v[[lowered.lag[out.name] + c - 1 for c in checkpoints]] / chip.units[out.name]
        sim.clear_probes()
        if chip.overflows is not None:
            chip.overflows.end_sample()
        if progress is not None:
            progress.update(1)
    return counts, recorded, out_v


def _effective_decay(decay: float, offset: int) -> float:
    """The factor Loihi applies for a graph decay: (4096 - offset - round(...)) / 4096 (discretize.py)."""
    delta = np.round((1.0 - decay) * 4095 - offset)
    return float((4096 - offset - np.clip(delta, 0, 4095)) / 4096)


def _precision_notes(network, lowered, chip, lost_bits: list) -> list:
    """What the discretization changes, with its size on this network."""
    th = []
    for name in lowered.ens:
        units = float(np.median(chip.units[name]))
        vth = float(np.median(chip.vth[name]))
        th.append(f"{name} {units:.0f} units, register {vth:.0f} ({100 * (vth + 1 - units) / units:+.2f}%)")
    notes = ["threshold: Loihi spikes when v > vth (the graph: v >= theta), vth in steps of 64 units; "
             "theta per population: " + "; ".join(th),
             "precision: weights 7 bits plus sign at a scale set per block by its largest weight (nengo-loihi "
             "scales that weight to 255, then rounds to even steps and clips at 254), biases 12 bits plus "
             "sign with a 3-bit exponent, integer membranes; an analog input is a per-sample bias W x + b in "
             "that format" + (f"; nengo-loihi warned: {'; '.join(lost_bits)}" if lost_bits else "")]
    leaks = []
    for p in network.populations:
        if p.is_input:
            continue
        nm = p.neuron
        if nm.decay != 1.0:
            leaks.append(f"{p.name} leak {nm.decay:g} -> {_effective_decay(nm.decay, 0):.6g}")
        if nm.syn_decay is not None:
            leaks.append(f"{p.name} synaptic decay {nm.syn_decay:g} -> {_effective_decay(nm.syn_decay, 1):.6g}")
    if leaks:
        notes.append("decays are 12-bit factors, rounded toward zero every step: " + "; ".join(leaks))
    if any(p.neuron.syn_decay is None for p in network.populations if not p.is_input):
        notes.append("no synaptic filter: nengo-loihi keeps 1/4096 of each step's input current for the next "
                     "step (and scales the weights by 4095/4096 to compensate)")
    return notes


def _notes(network, lowered, chip, build_s, run_s, samples, steps, built: dict, overflow) -> list:
    notes = []
    total = steps + max(lowered.lag.values())
    mp = _mapping(chip)
    parts = []
    for name, m in mp["populations"].items():
        worst = {k: max(b[k]["used"] / b[k]["max"] for b in m["per_block"])
                 for k in ("compartments", "in_axons", "out_axons", "synapses")}
        shape = _shape_str(m["block_shape"]) + (" consecutive" if len(m["block_shape"]) == 1
                                                and len(m["ensemble_shape"]) == 1 and "~" not in name
                                                and len(network.population(name).shape) > 1 else "")
        parts.append(f"{name} {m['blocks']} block{'s' * (m['blocks'] > 1)} of {shape} (max use: "
                     + ", ".join(f"{100 * v:.0f}% {k.replace('_', '-')}" for k, v in worst.items()) + ")")
    notes.append(f"nengo-loihi mapping: {mp['cores']} cores (one block per core): " + "; ".join(parts))
    if built["plan"] is not None:
        notes.append(built["plan"].note())
    if lowered.conv_used:
        notes.append("convolutions: " + ", ".join(
            name + (f" ({lowered.conv_folded[name]}, exact)" if name in lowered.conv_folded else "")
            for name in lowered.conv_used) + " as nengo-loihi's shared-weight convolution (population axons: "
            "one input axon per presynaptic pixel)")
    lag = {k: v for k, v in lowered.lag.items() if k != network.input}
    notes.append(f"latency: Loihi delivers each connection one step later; populations lag by {lag} steps, "
                 f"so {total} steps ran per sample and each population was read in its own shifted window "
                 "(exact: nothing integrates before its window)")
    n_relay = sum(e.n_neurons for e in lowered.relay_ens.values())
    if n_relay:
        notes.append(f"delays: {len(lowered.relay_ens)} relay populations ({n_relay} neurons, "
                     f"{sum(len(chip.blocks[f'{k[0]}~relay{k[1]}']) for k in lowered.relay_ens)} cores) delay "
                     "spikes exactly to equalize unequal paths and realize delays >= 2 (nengo-loihi has no "
                     "synaptic delays)")
    subtract = [p.name for p in network.populations if not p.is_input and p.neuron.reset == "subtract"]
    if subtract:
        notes.append("reset: Loihi resets the membrane to 0 after a spike; the graph's reset by subtraction "
                     f"(populations {', '.join(subtract)}) is not expressible, so each spike drops its "
                     "overshoot v - theta (fewer spikes for strongly driven neurons)")
    if chip.discrete:
        notes.extend(_precision_notes(network, lowered, chip, built["lost_bits"]))
    else:
        notes.append("target simreal: nengo-loihi's model in floating point, without the chip's discretization "
                     "(not what Loihi computes: a check of the lowering alone)")
    if overflow:
        notes.append(overflow)
    notes.append(f"time: build {build_s:.2f} s, run {run_s:.2f} s for {samples} samples "
                 f"({1e3 * run_s / samples:.0f} ms per sample of {total} steps)")
    return notes


def mapping(network: Network, *, conv: str = "transform", block_size: int | None = None) -> dict:
    """How nengo-loihi splits and places ``network``, without running it.

    Returns ``{"cores", "blocks", "populations": {name: {"blocks", "cores", "block_shape",
    "ensemble_shape", "per_block": [{"label", "compartments", "in_axons", "out_axons", "synapses"
    (synapse memory bits): {"used", "max"}, "weight_exp"}, ...], "vth_units",
    "units_per_threshold"}}, "lag_steps", "conv_transforms", "utilization_summary", "input",
    "split"}``: one block per core (nengo-loihi's allocators), relay populations named
    ``<population>~relay<k>``; each population is cut into blocks of ``block_shape`` over
    ``ensemble_shape`` (nengo-loihi's ``BlockShape``: the population's own shape, or its neurons
    in a row for runs of consecutive neurons); "split" says how the shapes were chosen (None where
    ``block_size`` set them). Biases are taken without input (they set no resources).
    """
    _check(network, conv, "sim")
    x = np.zeros((1, network.population(network.input).size), np.float32)
    lowered, sim, built = _build(network, _Biases(network, x).build_bias(), conv, block_size)
    try:
        plan = built["plan"]
        return {**_mapping(_Chip(sim, lowered)), "split": None if plan is None else plan.note()}
    finally:
        sim.close()
