"""The Nengo objects of a network on Loihi, built from its description (arrays and meta).

This module imports nengo and nengo-loihi (it defines a neuron type and an input process
for their builders); :mod:`.loihi` imports it only where a network is built.

The description
---------------
``meta`` (JSON-able) and ``data`` (named numpy arrays) list every object of the Nengo
network, in the order it was created:

- ``meta["ensembles"]``: ``{"name", "label", "key", "n_neurons", "population" (None for a
  relay), "neuron": {"decay", "syn_decay", "refractory_steps", "v_min" (None: the
  register's limit)}, "block_shape", "ensemble_shape" (None: nengo-loihi's own split)}``;
  arrays ``<key>_gain`` and ``<key>_bias`` (nengo's units: bias in thresholds / dt);
- ``meta["nodes"]``: ``{"label", "kind": "spike_input", "size"}``;
- ``meta["connections"]``: ``{"key", "pre", "post" ({"ensemble": i} or {"node": i}),
  "transform": {"type": "sparse", "shape"} (arrays ``<key>_indices``, ``<key>_weights``) or
  {"type": "convolution", "n_filters", "input_shape", "kernel_size", "strides", "padding",
  "channels_last"} (array ``<key>_kernel``), "synapse_tau" (None: no filter)}``;
- ``meta["probes"]``: ``{"ensemble", "attr"}`` ("output": spikes; "voltage").
"""
from __future__ import annotations

import math
import warnings

import nengo
import nengo_loihi
import numpy as np
from nengo.params import IntParam, NumberParam
from nengo_loihi.builder import Builder as LoihiBuilder
from nengo_loihi.builder import Model as LoihiModel
from nengo_loihi.inputs import ChipProcess, SpikeInput


class LoihiIF(nengo.neurons.NeuronType):
    """An integrate-and-fire neuron as one Loihi compartment (spikeport.backends.loihi).

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
def build_loihi_if(model, neuron_type, neurons, block):
    """nengo-loihi's builder of :class:`LoihiIF`: the compartment's registers."""
    comp = block.compartment
    comp.configure_relu(vth=1.0 / model.dt, dt=model.dt)    # integrate, vth = 1/dt, reset to 0
    # without this, a compartment that no connection reaches keeps nengo-loihi's default 5 ms filter
    comp.configure_filter(tau_syn(neuron_type.syn_decay, model.dt), dt=model.dt)
    comp.decay_v[:] = 1.0 - neuron_type.decay
    comp.scale_v = False                                     # the graph's v += i + b: no (1 - decay) input scale
    comp.refract_delay[:] = neuron_type.refractory_steps + 1
    comp.vmin = neuron_type.v_min / model.dt


def tau_syn(syn_decay, dt: float) -> float:
    """The lowpass time constant whose per-step decay is syn_decay (0: no filter)."""
    return 0.0 if syn_decay is None else (-dt / math.log(syn_decay) if syn_decay > 0 else 1e-9 * dt)


class SpikeTrainInput(ChipProcess):
    """Spikes injected on the chip (nengo-loihi's ``SpikeInput``, as its DVS input).

    Spikes queued with the built ``SpikeInput`` (``input``, set by the builder) reach their
    targets like spikes of a chip population; ``trains`` (steps, n), if given, are preloaded
    when the model is built (a board, where nothing can be queued between runs).
    """

    def __init__(self, size, trains=None):
        super().__init__(default_size_in=0, default_size_out=size)
        self.input = None
        self.trains = trains

    def make_step(self, shape_in, shape_out, dt, rng, state):  # pragma: no cover - runs on the chip only
        raise RuntimeError("SpikeTrainInput runs on the Loihi emulator or chip only")


@LoihiBuilder.register(SpikeTrainInput)
def build_spike_train_input(model, process, node=None):
    """nengo-loihi's builder of :class:`SpikeTrainInput`: a ``SpikeInput``, its trains preloaded."""
    spike_input = SpikeInput(process.default_size_out, label=getattr(node, "label", None))
    if process.trains is not None:
        for s, row in enumerate(process.trains):
            idx = np.flatnonzero(row)
            if idx.size:
                spike_input.add_spikes(s + 1, idx, permanent=True)
    model.add_input(spike_input)
    process.input = spike_input
    return spike_input


def build_network(meta, data, dt, pop_bias=None, trains=None):
    """The Nengo network of the description (module docstring).

    ``pop_bias`` {population: thresholds per step} replaces the stored biases of the
    populations' ensembles; ``trains`` are preloaded into the spike input. Returns (network,
    ensembles by name, probes by population (and "voltage"), the spike input process or None).
    """
    net = nengo.Network(label="spikeport", seed=0)
    nengo_loihi.add_params(net)
    ens, nodes, probes, process = [], [], {}, None
    with net:
        for e in meta["ensembles"]:
            nm = e["neuron"]
            bias = data[e["key"] + "_bias"]
            if pop_bias is not None and e["population"] is not None:
                bias = pop_bias[e["population"]] / dt
            obj = nengo.Ensemble(e["n_neurons"], 1, label=e["label"], gain=data[e["key"] + "_gain"], bias=bias,
                                 neuron_type=LoihiIF(nm["decay"], nm["syn_decay"], nm["refractory_steps"],
                                                     -np.inf if nm["v_min"] is None else nm["v_min"]))
            if e["block_shape"] is not None:
                net.config[obj].block_shape = nengo_loihi.BlockShape(tuple(e["block_shape"]),
                                                                     tuple(e["ensemble_shape"]))
            ens.append(obj)
        for n in meta["nodes"]:
            process = SpikeTrainInput(n["size"], trains)
            nodes.append(nengo.Node(process, label=n["label"]))

        def end(ref):
            return ens[ref["ensemble"]].neurons if "ensemble" in ref else nodes[ref["node"]]

        for c in meta["connections"]:
            t, k = c["transform"], c["key"]
            if t["type"] == "sparse":
                transform = nengo.transforms.Sparse(tuple(t["shape"]), indices=data[k + "_indices"],
                                                    init=data[k + "_weights"])
            else:
                transform = nengo.Convolution(t["n_filters"], tuple(t["input_shape"]),
                                              kernel_size=tuple(t["kernel_size"]), strides=tuple(t["strides"]),
                                              padding=t["padding"], channels_last=t["channels_last"],
                                              init=data[k + "_kernel"])
            synapse = None if c["synapse_tau"] is None else nengo.Lowpass(c["synapse_tau"])
            nengo.Connection(end(c["pre"]), end(c["post"]), transform=transform, synapse=synapse)
        names = {e["name"]: ens[i] for i, e in enumerate(meta["ensembles"])}
        for p in meta["probes"]:
            e = meta["ensembles"][p["ensemble"]]
            probe = nengo.Probe(ens[p["ensemble"]].neurons, p["attr"])
            probes["voltage" if p["attr"] == "voltage" else e["population"]] = probe
    return net, names, probes, process


class NotBuilt(Exception):
    """nengo-loihi could not build the network: ``message`` (one line), the blocks it had
    built when it stopped, and whether its builder refused the network (a ``BuildError``)."""

    def __init__(self, message, blocks, build_error):
        super().__init__(message)
        self.blocks, self.build_error = blocks, build_error


def simulator(net, dt, target="sim", hardware_options=None):
    """(``nengo_loihi.Simulator`` of ``net`` with seed 0, the warnings of its build), or
    :class:`NotBuilt`."""
    model = LoihiModel(dt=dt, label="spikeport")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            sim = nengo_loihi.Simulator(net, dt=dt, target=target, seed=0, model=model, progress_bar=False,
                                        hardware_options=hardware_options)
        except (nengo.exceptions.NengoException, AssertionError, ImportError, ValueError) as exc:
            raise NotBuilt(" ".join(str(exc).split()) or type(exc).__name__, len(model.blocks),
                           isinstance(exc, nengo.exceptions.BuildError)) from None
    return sim, [str(w.message) for w in caught]
