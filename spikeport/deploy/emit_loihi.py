"""The Loihi deployment artifact: a runnable Nengo-Loihi script, its network and its inputs.

:func:`write_loihi` writes into a directory:

- ``run_loihi.py``: ``python run_loihi.py [--target sim|simreal|loihi] [--samples N] [--steps T]
  [--out FILE]``. It builds the Nengo network, runs the stored samples, prints the accuracy
  when labels are stored and writes the predictions (and per-sample output counts and
  spike totals) to ``predictions.json`` beside itself, or to ``--out``.
- ``loihi_meta.json`` and ``loihi_network.npz``: the Nengo network that spikeport's
  nengo-loihi backend (:mod:`spikeport.backends.loihi`) builds for the graph, object by
  object: every ensemble (its neuron parameters, gains, block shape), the spike input
  node, every connection (a ``Sparse`` matrix's indices and weights, or a
  ``Convolution``'s parameters and kernel; its synapse) and every probe, in the order the
  backend created them; plus each population's lag, v_init and bias stages.
- ``inputs.npz`` (when samples are given): the samples ``x``, ``labels`` if given, and
  what the chip receives per sample: the spiking input's trains
  (:func:`spikeport.backends.common.input_trains`, with ``seed``), or for an analog input
  the bias levels (and current kicks, with a synaptic filter) that the backend writes into
  each population's registers (``_Biases`` of the backend). Running new samples therefore
  needs a new ``write_loihi`` (``spikeport deploy``): the script does not compute the
  analog input's projections.

The network is not lowered twice: it is serialized from the backend's own lowering
(``_Lowered``, with the block shapes its ``_BlockPlan`` chose, or the ``block_shapes`` a
partitioner gives), so the script builds the same ensembles, transforms, relays and block
shapes. On ``--target sim`` (the default) it runs as the backend runs: one build, and
before each sample the emulator's state is reset and each population's bias and v_init
written into its registers at its lag, with the backend's vectorized spike routing
(``--slow-routing``: nengo-loihi's own, identical spikes); its predictions equal
``spikeport validate --backend nengo-loihi`` on the same samples and steps (the test runs
it). ``--target loihi`` builds ``nengo_loihi.Simulator(target="loihi")``; a board's
registers cannot be written between runs through nengo-loihi, so there each sample is a
fresh build with its input in the bias registers from the first step and its spike
trains preloaded. What that changes for the network at hand is listed in
``loihi_meta.json`` ("rebuild_not_exact") and printed; ``--rebuild`` runs that mode on the
emulator to see it.

Does the script need spikeport? No. It needs Python 3, numpy, nengo and nengo-loihi 1.1.
The few pieces of the backend it runs are copied into its text when it is written
(``inspect.getsource``, :data:`EMBEDDED`): the ``LoihiIF`` neuron type and its
nengo-loihi builder, ``_tau_syn``, the vectorized spike routing and the overflow tally
(so predictions.json and the run's output name where registers wrapped); the rest of the
script (building from the data files, the register writes, the readout) is its own.
This module imports nengo and nengo-loihi only when :func:`write_loihi` runs.
"""
from __future__ import annotations

import inspect
import json
import math
import textwrap
import warnings
from pathlib import Path

import numpy as np

from ..errors import SpikeportError

SCRIPT = "run_loihi.py"
META = "loihi_meta.json"
NETWORK = "loihi_network.npz"
INPUTS = "inputs.npz"
FORMAT = "spikeport-loihi-script"
#: what the script copies from :mod:`spikeport.backends.loihi`, in this order
EMBEDDED = ("_tau_syn", "LoihiIF", "_build_loihi_if", "_clear_compartments", "_full_voltage_range", "_ranges",
            "_SpikeRouting", "_OverflowTally")


def write_loihi(network, out_dir, *, x=None, steps: int = 100, block_shapes: dict | None = None, labels=None,
                seed: int = 0, conv: str = "transform") -> list:
    """Write the Loihi artifact of ``network`` into the existing directory ``out_dir``.

    x : samples (samples, *input shape) to store with the chip's inputs, or None (the
        script then only builds the model)
    steps : steps per sample (the script's default; a spiking input's trains have this length)
    block_shapes : {population: block dims} overriding the block shapes the backend's
        block plan chooses (dims as long as the population's shape: tiles; one dim for a
        multi-dimensional population: runs of consecutive neurons); relay populations are
        named ``<population>~relay<k>`` as in ``loihi.mapping()``. With overrides the model
        is built once here, so that a shape nengo-loihi cannot map is refused now
    labels : the samples' labels (the script prints its accuracy)
    seed : the spiking input's generator seed (as ``run(..., seed=)``)
    conv : as ``loihi.run``

    Returns the paths written: run_loihi.py, loihi_meta.json, loihi_network.npz, and
    inputs.npz when ``x`` is given.
    """
    from .. import __version__
    from ..backends import common, loihi

    out = Path(out_dir)
    if not out.is_dir():
        raise SpikeportError(f"{out}: not a directory")
    loihi._check(network, conv, "sim")
    steps = int(steps)
    if steps < 1:
        raise SpikeportError(f"steps must be at least 1, got {steps}")
    inp = network.population(network.input)
    if x is not None:
        x, steps, _ = common.check_run(network, x, steps)
        if labels is not None:
            labels = np.asarray(labels).reshape(-1)
            if len(labels) != len(x):
                raise SpikeportError(f"{len(labels)} labels for {len(x)} samples")
    biases = loihi._Biases(network, x if x is not None else np.zeros((1, inp.size), np.float32))
    built = biases.build_bias()
    lowered = loihi._Lowered(network, built, conv, None)
    names = _ensemble_names(lowered)
    given = _check_block_shapes(network, names, block_shapes or {})
    plan = None if set(given) >= set(names) else loihi._BlockPlan(lowered)
    for name, shape in given.items():
        lowered.net.config[names[name]].block_shape = shape
    if given:
        _verify_build(lowered, network.dt_s)

    arrays, meta = _serialize(lowered, names)
    stages = _per_sample_stages(biases, len(x)) if x is not None else None
    spiking = [p for p in network.populations if not p.is_input]
    inputs = {}
    pops = []
    for k, pop in enumerate(spiking):
        key = f"pop{k}"
        v_init = pop.initial_membrane().reshape(-1) / pop.neuron.threshold
        arrays[f"{key}_v_init"] = v_init
        entry = {"name": pop.name, "key": key, "size": pop.size, "shape": list(pop.shape),
                 "lag": int(lowered.lag[pop.name]), "stages": []}
        for j, (d, level, kick) in enumerate(stages[pop.name] if stages is not None else []):
            level = np.asarray(level, np.float64)
            per_sample = bool(len(level) > 1 and np.any(level != level[0]))
            inputs[f"{key}_s{j}_level"] = level if per_sample else level[0]
            if kick is not None:
                inputs[f"{key}_s{j}_kick"] = np.asarray(kick, np.float64)
            entry["stages"].append({"delay": int(d), "per_sample": per_sample, "kick": kick is not None})
        if x is not None:
            inputs[f"{key}_build_bias"] = np.asarray(built[pop.name], np.float64)
        pops.append(entry)
    samples = 0 if x is None else len(x)
    if x is not None:
        inputs["x"] = x
        if labels is not None:
            inputs["labels"] = labels
        trains = common.input_trains(network, x, steps, seed=seed)
        if trains is not None:
            inputs["input_trains"] = trains
    subtract = [p.name for p in spiking if p.neuron.reset == "subtract"]
    meta.update({
        "format": FORMAT, "version": 1, "spikeport_version": __version__, "dt_s": float(network.dt_s),
        "steps": steps, "samples": samples, "seed": int(seed), "inputs": INPUTS if x is not None else None,
        "labels": labels is not None and x is not None,
        "input": {"name": inp.name, "size": inp.size, "shape": list(inp.shape), "encoding": inp.encoding.kind},
        "output": network.output, "populations": pops, "lag": {k: int(v) for k, v in lowered.lag.items()},
        "max_lag": int(max(lowered.lag.values())), "conv_transforms": list(lowered.conv_used),
        "block_plan": None if plan is None else plan.note(), "block_shapes_given": sorted(given),
        "not_exact": (["reset: Loihi resets to zero; populations " + ", ".join(subtract) + " reset by subtraction "
                       "in the graph (each spike drops its overshoot)"] if subtract else []) + [
            "precision: weights 7 bits plus sign per block, biases 12 bits plus sign with a 3-bit exponent, "
            "thresholds in steps of 64 units, integer membranes (spikeport.backends.loihi's notes measure it)"],
        "rebuild_not_exact": _rebuild_notes(network, lowered, stages, arrays),
    })
    paths = [out / SCRIPT, out / META, out / NETWORK]
    (out / META).write_text(json.dumps(meta, indent=1) + "\n")
    np.savez_compressed(out / NETWORK, **arrays)
    if x is not None:
        np.savez_compressed(out / INPUTS, **inputs)
        paths.append(out / INPUTS)
    (out / SCRIPT).write_text(script_text())
    return paths


def script_text() -> str:
    """The text of run_loihi.py: :data:`_SCRIPT` with the backend's pieces (:data:`EMBEDDED`) copied in."""
    from .. import __version__
    from ..backends import loihi

    parts = [textwrap.dedent(inspect.getsource(getattr(loihi, name))).rstrip() for name in EMBEDDED]
    return (_SCRIPT.replace("@@VERSION@@", __version__)
            .replace("@@EMBEDDED@@", "\n\n\n".join(parts).replace("(module docstring)", "(spikeport.backends.loihi)")))


# ---------------------------------------------------------------------------- the network's files

def _ensemble_names(lowered) -> dict:
    """{name: ensemble}: populations by name, relays as ``<population>~relay<k>`` (loihi.mapping's names)."""
    names = dict(lowered.ens)
    names.update({f"{k[0]}~relay{k[1]}": ens for k, ens in lowered.relay_ens.items()})
    return names


def _check_block_shapes(network, names: dict, block_shapes: dict) -> dict:
    """{name: nengo_loihi.BlockShape} of the given dims, or one clear error."""
    import nengo_loihi
    from nengo_loihi.block import MAX_COMPARTMENTS

    out = {}
    for name, dims in block_shapes.items():
        if name not in names:
            raise SpikeportError(f"block_shapes: no population {name!r} on the chip (populations: "
                                 f"{', '.join(names)})")
        shape = tuple(network.population(name.split("~relay")[0]).shape)
        try:
            dims = tuple(int(d) for d in (dims if isinstance(dims, (list, tuple)) else [dims]))
        except (TypeError, ValueError):
            raise SpikeportError(f"block_shapes[{name!r}]: {dims!r} is not a list of integers") from None
        ens_shape = shape if len(dims) == len(shape) else (int(np.prod(shape)),) if len(dims) == 1 else None
        if ens_shape is None or any(d < 1 for d in dims):
            raise SpikeportError(f"block_shapes[{name!r}]: {list(dims)} must be positive, one per axis of the "
                                 f"population's shape {list(shape)}, or one (runs of consecutive neurons)")
        dims = tuple(min(d, n) for d, n in zip(dims, ens_shape))
        if math.prod(dims) > MAX_COMPARTMENTS:
            raise SpikeportError(f"block_shapes[{name!r}]: blocks of {'x'.join(map(str, dims))} hold "
                                 f"{math.prod(dims)} neurons, a Loihi core at most {MAX_COMPARTMENTS}")
        out[name] = nengo_loihi.BlockShape(dims, ens_shape)
    return out


def _verify_build(lowered, dt: float):
    """Build the model once (nengo-loihi validates every block against a core's limits)."""
    import nengo
    from nengo_loihi.builder import Model

    model = Model(dt=dt, label="spikeport deploy check")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.build(lowered.net)
    except (nengo.exceptions.NengoException, AssertionError, ValueError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        raise SpikeportError(f"nengo-loihi cannot map this network with the given block shapes: {msg}") from None


def _serialize(lowered, names: dict):
    """(arrays, meta) describing every object of the backend's Nengo network, in creation order."""
    import nengo
    from nengo.transforms import SparseMatrix

    from ..backends import loihi

    net = lowered.net
    arrays = {}
    label_of = {ens: name for name, ens in names.items()}
    pop_names = set(lowered.ens)
    ens_index = {ens: i for i, ens in enumerate(net.ensembles)}
    node_index = {node: i for i, node in enumerate(net.nodes)}
    if net.networks:
        raise SpikeportError("internal: the nengo-loihi lowering made subnetworks, which the script cannot rebuild")
    ensembles = []
    for i, ens in enumerate(net.ensembles):
        nt = ens.neuron_type
        if not isinstance(nt, loihi.LoihiIF) or ens not in label_of:
            raise SpikeportError(f"internal: ensemble {ens.label!r} is not one the script can rebuild")
        block = net.config[ens].block_shape
        key = f"ens{i}"
        arrays[f"{key}_gain"] = np.asarray(ens.gain)
        arrays[f"{key}_bias"] = np.asarray(ens.bias)
        ensembles.append({
            "name": label_of[ens], "label": ens.label, "key": key, "n_neurons": int(ens.n_neurons),
            "population": label_of[ens] if label_of[ens] in pop_names else None,
            "neuron": {"decay": float(nt.decay), "syn_decay": None if nt.syn_decay is None else float(nt.syn_decay),
                       "refractory_steps": int(nt.refractory_steps),
                       "v_min": None if math.isinf(nt.v_min) else float(nt.v_min)},
            "block_shape": None if block is None else [int(d) for d in block.shape],
            "ensemble_shape": None if block is None else [int(d) for d in block.ensemble_shape]})
    nodes = []
    for node in net.nodes:
        if not isinstance(node.output, loihi.SpikeTrainInput):
            raise SpikeportError(f"internal: node {node.label!r} is not a spike input")
        nodes.append({"label": node.label, "kind": "spike_input", "size": int(node.size_out)})

    def ref(obj):
        if isinstance(obj, nengo.ensemble.Neurons) and obj.ensemble in ens_index:
            return {"ensemble": ens_index[obj.ensemble]}
        if isinstance(obj, nengo.Node) and obj in node_index:
            return {"node": node_index[obj]}
        raise SpikeportError(f"internal: connection end {obj!r} is not one the script can rebuild")

    connections = []
    for j, conn in enumerate(net.connections):
        key = f"con{j}"
        t, syn = conn.transform, conn.synapse
        if conn.function is not None or conn.learning_rule_type is not None:
            raise SpikeportError(f"internal: connection {conn} has a function or learning rule")
        if isinstance(t, nengo.transforms.Sparse):
            init = t.init
            if isinstance(init, SparseMatrix):
                indices, data = np.asarray(init.indices), np.asarray(init.data)
            else:  # a scipy.sparse matrix
                coo = init.tocoo()
                indices, data = np.stack([coo.row, coo.col], axis=1), coo.data
            arrays[f"{key}_indices"], arrays[f"{key}_weights"] = indices, data
            transform = {"type": "sparse", "shape": [int(d) for d in t.shape]}
        elif isinstance(t, nengo.Convolution):
            arrays[f"{key}_kernel"] = np.asarray(t.init)
            transform = {"type": "convolution", "n_filters": int(t.n_filters),
                         "input_shape": [int(d) for d in t.input_shape.shape],
                         "kernel_size": [int(d) for d in t.kernel_size], "strides": [int(d) for d in t.strides],
                         "padding": t.padding, "channels_last": bool(t.channels_last)}
        else:
            raise SpikeportError(f"internal: transform {type(t).__name__} is not one the script can rebuild")
        if syn is not None and type(syn) is not nengo.Lowpass:
            raise SpikeportError(f"internal: synapse {syn} is not a lowpass")
        connections.append({"key": key, "pre": ref(conn.pre_obj), "post": ref(conn.post_obj),
                            "transform": transform, "synapse_tau": None if syn is None else float(syn.tau)})
    probes = []
    for probe in net.probes:
        target = probe.target
        if not isinstance(target, nengo.ensemble.Neurons) or probe.synapse is not None:
            raise SpikeportError(f"internal: probe {probe} is not an unfiltered neuron probe")
        probes.append({"ensemble": ens_index[target.ensemble], "attr": probe.attr})
    return arrays, {"ensembles": ensembles, "nodes": nodes, "connections": connections, "probes": probes}


def _per_sample_stages(biases, samples: int) -> dict:
    """{population: [(delay, level (samples, n), kick or None)]}, each sample's row computed alone,
    as the backend computes the values it writes before each sample (``changes(k, k + 1)``: a
    batch of one can round differently from a larger batch in the last bit)."""
    rows = [biases.changes(k, k + 1) for k in range(samples)]
    return {name: [(d, np.concatenate([r[name][j][1] for r in rows]),
                    None if kick is None else np.concatenate([r[name][j][2] for r in rows]))
                   for j, (d, _, kick) in enumerate(stages)]
            for name, stages in rows[0].items()}


def _rebuild_notes(network, lowered, stages, arrays) -> list:
    """What a fresh build per sample (``--target loihi``, ``--rebuild``) changes against the register writes."""
    notes, varying = [], False
    for k, pop in enumerate(p for p in network.populations if not p.is_input):
        lag, name = lowered.lag[pop.name], pop.name
        ps = stages[name] if stages is not None else []
        nonzero = any(np.any(np.asarray(level) != 0) for _, level, _ in ps)
        varying |= any(np.any(np.asarray(level) != np.asarray(level)[:1]) for _, level, _ in ps)
        if len(ps) > 1:
            notes.append(f"{name}: its bias changes within a sample (analog input with delays "
                         f"{[d for d, _, _ in ps[1:]]}); the build holds its final value from the first step")
        elif nonzero and ps and lag + ps[0][0] > 0:
            notes.append(f"{name}: its bias flows from the first step instead of step {lag + ps[0][0]} (its lag), "
                         f"so it integrates {lag + ps[0][0]} step{'s' * (lag + ps[0][0] > 1)} of bias early")
        if any(kick is not None for _, _, kick in ps):
            notes.append(f"{name}: synaptic filter: the analog input's current is at its filtered value from the "
                         "first step instead of rising step by step")
        if np.any(arrays[f"pop{k}_v_init"] != 0):
            notes.append(f"{name}: v_init is not written (nengo-loihi starts every membrane at 0)")
    if varying:
        notes.append("biases vary between samples: each build discretizes its own sample's biases (and the "
                     "weights of their blocks) at its own scale, not at one scale for all samples")
    return notes


# ---------------------------------------------------------------------------- the script

_SCRIPT = r'''#!/usr/bin/env python
"""Run a spikeport network with Nengo-Loihi (written by spikeport @@VERSION@@: spikeport.deploy.emit_loihi).

    python run_loihi.py [--target sim|simreal|loihi] [--samples N] [--steps T] [--out FILE]

Reads loihi_meta.json, loihi_network.npz and inputs.npz beside this script, builds the
Nengo network that spikeport's nengo-loihi backend builds for the graph (the same
ensembles of Loihi compartments, transforms, relay populations and block shapes), runs
the stored samples, prints the accuracy when labels are stored and writes the predictions,
each sample's output spike counts and each population's spike totals to predictions.json
beside this script (or to --out). Needs numpy, nengo and nengo-loihi 1.1, not spikeport.

--target sim (default; simreal: nengo-loihi's model in floating point): one build on the
emulator; before each sample the state is reset and each population's bias (with an
analog input: W x + b) and v_init are written into its registers at its lag, as spikeport's
backend does: the same predictions as `spikeport validate --backend nengo-loihi`.

--target loihi: nengo_loihi.Simulator(target="loihi") on a board (NxSDK). Registers cannot
be written between runs through nengo-loihi, so each sample is a fresh build with its
input in the bias registers from the first step and its spike trains preloaded;
"rebuild_not_exact" in loihi_meta.json lists what that changes for this network (printed).
--rebuild runs that mode on the emulator.

Exit status: 0 done; 2 a usage error or a missing or unreadable data file; 1 nengo-loihi
cannot build the network; 3 --target loihi with no Loihi board reachable.
"""
import argparse
import json
import math
import os
import sys
import time
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
META, NETWORK = "loihi_meta.json", "loihi_network.npz"
V_LIMIT = 2**23 - 1      # Loihi's membrane is a 24-bit signed register

try:
    import numpy as np
    import nengo
    import nengo_loihi
    from nengo.params import IntParam, NumberParam
    from nengo_loihi.builder import Builder as LoihiBuilder
    from nengo_loihi.builder import Model as LoihiModel
    from nengo_loihi.builder.discretize import BIAS_MAX, bias_to_manexp, overflow_signed
    from nengo_loihi.inputs import ChipProcess, SpikeInput
except ImportError as exc:
    sys.stderr.write("run_loihi.py: needs numpy, nengo and nengo-loihi (pip install nengo-loihi): %s\n" % exc)
    sys.exit(2)


# ------------------------------------------- copied from spikeport.backends.loihi by spikeport @@VERSION@@

@@EMBEDDED@@


# ------------------------------------------- the script's own

class Fail(Exception):
    """One line for the user, and an exit status."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


class SpikeTrainInput(ChipProcess):
    """Spikes injected on the chip (nengo-loihi's SpikeInput): queued before each sample
    (``input``, set when built), or ``trains`` (steps, n) preloaded when built."""

    def __init__(self, size, trains=None):
        super().__init__(default_size_in=0, default_size_out=size)
        self.input = None
        self.trains = trains

    def make_step(self, shape_in, shape_out, dt, rng, state):
        raise RuntimeError("SpikeTrainInput runs on the Loihi emulator or chip only")


@LoihiBuilder.register(SpikeTrainInput)
def _build_spike_train_input(model, process, node=None):
    spike_input = SpikeInput(process.default_size_out, label=getattr(node, "label", None))
    if process.trains is not None:
        for s, row in enumerate(process.trains):
            idx = np.flatnonzero(row)
            if idx.size:
                spike_input.add_spikes(s + 1, idx, permanent=True)
    model.add_input(spike_input)
    process.input = spike_input
    return spike_input


def load():
    """(meta, network arrays, inputs or None), or Fail naming the missing or unreadable file."""
    def path(name):
        p = os.path.join(HERE, name)
        if not os.path.isfile(p):
            raise Fail("missing data file %s beside the script (%s): write the deployment again" % (name, HERE))
        return p

    try:
        with open(path(META)) as f:
            meta = json.load(f)
        if meta.get("format") != "spikeport-loihi-script" or meta.get("version") != 1:
            raise Fail("%s: not a spikeport Loihi script description (version 1)" % META)
        net = dict(np.load(path(NETWORK), allow_pickle=False))
        inputs = dict(np.load(path(meta["inputs"]), allow_pickle=False)) if meta["inputs"] else None
    except Fail:
        raise
    except Exception as exc:
        raise Fail("cannot read the data files: %s: %s" % (type(exc).__name__, " ".join(str(exc).split())))
    return meta, net, inputs


def level(inputs, key, k0, k1, n):
    """A stage's bias level (thresholds per step) for samples k0..k1-1: (k1 - k0, n)."""
    a = inputs[key]
    return np.broadcast_to(a, (k1 - k0, n)) if a.ndim == 1 else a[k0:k1]


def build_bias(meta, inputs, samples, chunk=256):
    """Per population the bias each ensemble is built with: per neuron the level of largest
    magnitude over the samples run (so that nengo-loihi's scale fits every sample): as
    spikeport computed it for all stored samples, else taken chunk by chunk in its order."""
    if samples == meta["samples"]:
        return {p["name"]: inputs[p["key"] + "_build_bias"] for p in meta["populations"]}
    out = {}
    for k0 in range(0, max(samples, 1), chunk):
        k1 = min(k0 + chunk, samples)
        for p in meta["populations"]:
            name = p["name"]
            levels = [level(inputs, "%s_s%d_level" % (p["key"], j), k0, k1, p["size"])
                      for j in range(len(p["stages"]))]
            levels = np.concatenate(levels + ([out[name][None]] if name in out else []))
            out[name] = levels[np.abs(levels).argmax(axis=0), np.arange(levels.shape[1])]
    return out


def build_network(meta, data, pop_bias=None, trains=None):
    """The Nengo network of the description; ``pop_bias`` {population: thresholds per step}
    replaces the stored biases of the populations' ensembles. Returns (network, ensembles
    by name, probes by population (and "voltage"), the spike input process or None)."""
    dt = meta["dt_s"]
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


def block_units(sim, ensemble, dt):
    """(blocks, per block the ensemble's neurons in it, membrane units of one threshold per neuron)."""
    blocks = sim.model.objs[ensemble]["out"]
    blocks = blocks if isinstance(blocks, list) else [blocks]
    units = np.empty(ensemble.n_neurons)
    ids = []
    for block in blocks:
        idx = np.asarray(sim.model.block_comp_map.get(block, np.arange(block.n_neurons)))
        info = block.discretize_info           # None on "simreal": float units, threshold 1/dt
        units[idx] = (1.0 if info is None else info["v_scale"]) / dt
        ids.append(idx)
    return blocks, ids, units


def compartments(sim, names, dt):
    """Per population: the emulator's compartment index of each neuron, its units of one threshold,
    and its blocks."""
    slices = sim.sims["emulator"].block_info.slices
    index, units, blocks = {}, {}, {}
    for name, ensemble in names.items():
        blocks[name], ids, units[name] = block_units(sim, ensemble, dt)
        index[name] = np.empty(ensemble.n_neurons, dtype=np.int64)
        for block, idx in zip(blocks[name], ids):
            index[name][idx] = np.arange(slices[block].start, slices[block].stop)
    return index, units, blocks


class Chip:
    """The built emulator through the registers a host writes between samples."""

    def __init__(self, sim, names, process, dt, fast, overflows):
        self.sim, self.process = sim, process
        self.emu = sim.sims["emulator"]
        comp = self.emu.compartment
        self.index, self.units, self.blocks = compartments(sim, names, dt)
        self.discrete = comp.voltage.dtype.kind == "i"
        if self.discrete:
            _full_voltage_range(comp, self.blocks.values())
            overflows.attach(comp, self.index)
        self.routing = _SpikeRouting(self.emu) if self.discrete and fast else None

    def reset(self):
        if self.process is not None:
            self.process.input.spikes.clear()
        _clear_compartments(self.emu.compartment)

    def _units(self, name, thresholds):
        value = thresholds * self.units[name]
        return np.round(value).astype(np.int64) if self.discrete else value

    def write(self, name, bias=None, voltage=None, current=None):
        comp, index = self.emu.compartment, self.index[name]
        if bias is not None:
            if self.discrete:
                value = np.clip(np.round(bias * self.units[name]), -BIAS_MAX, BIAS_MAX)
                man, exp = bias_to_manexp(value)
                comp.bias[index] = man * 2**exp
            else:
                comp.bias[index] = bias * self.units[name]
        if current is not None:
            comp.current[index] += self._units(name, current)
        if voltage is not None:
            comp.voltage[index] = np.clip(self._units(name, voltage), -V_LIMIT, V_LIMIT)

    def queue_input(self, trains):
        spike_input, t0 = self.process.input, self.emu.t
        for s in range(len(trains)):
            idx = np.flatnonzero(trains[s])
            if idx.size:
                spike_input.add_spikes(t0 + s + 1, idx)


def readout(meta, sim, probes, units_out, steps):
    """(output counts (classes,), spike totals {population: n}, output membrane in thresholds)."""
    totals, counts = {}, None
    for p in meta["populations"]:
        lag = p["lag"]
        s = np.asarray(sim.data[probes[p["name"]]])[lag:lag + steps] > 0
        totals[p["name"]] = int(s.sum())
        if p["name"] == meta["output"]:
            counts = s.sum(axis=0)
    v = np.asarray(sim.data[probes["voltage"]], dtype=np.float64)
    return counts, totals, v[meta["lag"][meta["output"]] + steps - 1] / units_out


def events(meta, inputs, k, total):
    """{chip step: [(population, bias level, current kick or None, write v_init)]} of sample k."""
    out = {}
    for p in meta["populations"]:
        for j, st in enumerate(p["stages"]):
            c = p["lag"] + st["delay"]
            if c < total:
                key = "%s_s%d_" % (p["key"], j)
                kick = inputs[key + "kick"][k] if st["kick"] else None
                out.setdefault(c, []).append((p["name"], level(inputs, key + "level", k, k + 1, p["size"])[0],
                                              kick, j == 0))
    return out


def run_registers(meta, data, inputs, samples, steps, target, fast, report):
    """One build; every sample from a reset state, biases and v_init written at each population's lag."""
    dt, total = meta["dt_s"], steps + meta["max_lag"]
    net, names, probes, process = build_network(meta, data, build_bias(meta, inputs, samples))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sim = simulator(net, dt, target, report)
    report["warnings"] += sorted({str(w.message) for w in caught})
    try:
        chip = Chip(sim, names, process, dt, fast, report["overflows"])
        v_init = {p["name"]: data[p["key"] + "_v_init"] for p in meta["populations"]}
        results = []
        for k in range(samples):
            chip.reset()
            if process is not None:
                chip.queue_input(inputs["input_trains"][k][:steps])
            ev = events(meta, inputs, k, total)
            cuts = sorted(set(ev) | {0, total})
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the emulator warns at every overflow: tallied instead
                for a, b in zip(cuts[:-1], cuts[1:]):
                    for name, bias, kick, first in ev.get(a, []):
                        chip.write(name, bias=bias, voltage=v_init[name] if first else None, current=kick)
                    sim.run_steps(b - a)
            report["overflows"].end_sample()
            results.append(readout(meta, sim, probes, chip.units[meta["output"]], steps))
            sim.clear_probes()
    finally:
        sim.close()
    return results


def run_rebuild(meta, data, inputs, samples, steps, target, report, hardware_options):
    """A fresh build per sample, its input in the bias registers from the first step (a board's mode)."""
    dt, total = meta["dt_s"], steps + meta["max_lag"]
    results = []
    for k in range(samples):
        bias = {p["name"]: level(inputs, "%s_s%d_level" % (p["key"], len(p["stages"]) - 1), k, k + 1,
                                 p["size"])[0] for p in meta["populations"]}
        trains = inputs["input_trains"][k][:steps] if "input_trains" in inputs else None
        net, names, probes, _ = build_network(meta, data, bias, trains)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            sim = simulator(net, dt, target, report, hardware_options)
            emulator = sim.sims.get("emulator")
            if emulator is not None and emulator.compartment.voltage.dtype.kind == "i":
                report["overflows"].attach(emulator.compartment, compartments(sim, names, dt)[0])
            try:
                try:
                    sim.run_steps(total)
                except nengo.exceptions.SimulationError as exc:
                    if target != "loihi":
                        raise
                    raise Fail("target loihi: the board did not run: %s" % " ".join(str(exc).split()), 3)
                _, _, units = block_units(sim, names[meta["output"]], dt)
                results.append(readout(meta, sim, probes, units, steps))
            finally:
                sim.close()
        report["overflows"].end_sample()
        report["warnings"] += sorted({str(w.message) for w in caught if not str(w.message).startswith("Overflow")}
                                     - set(report["warnings"]))
    return results


def simulator(net, dt, target, report, hardware_options=None):
    """nengo_loihi.Simulator, or Fail: the network does not map (1), no board is reachable (3)."""
    model = LoihiModel(dt=dt, label="spikeport")
    try:
        sim = nengo_loihi.Simulator(net, dt=dt, target=target, seed=0, model=model, progress_bar=False,
                                    hardware_options=hardware_options)
    except (nengo.exceptions.NengoException, AssertionError, ImportError, ValueError) as exc:
        msg = " ".join(str(exc).split()) or type(exc).__name__
        if target == "loihi" and model.blocks and not isinstance(exc, nengo.exceptions.BuildError):
            raise Fail("target loihi: nengo-loihi built the model (%d blocks, one per core) but no Loihi board "
                       "is reachable: %s" % (len(model.blocks), msg), 3)
        raise Fail("nengo-loihi cannot map this network: %s" % msg, 1)
    report["blocks"] = len(model.blocks)
    return sim


def predict(counts, v):
    """Most spikes wins; ties go to the higher membrane, then the lower index (as spikeport)."""
    top = counts.max(axis=1, keepdims=True)
    return np.where(counts == top, v, -np.inf).argmax(axis=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0],
                                 epilog="Exit status: 0 done; 2 usage or data file; 1 nengo-loihi cannot build "
                                        "the network; 3 no Loihi board reachable (--target loihi).")
    ap.add_argument("--target", choices=("sim", "simreal", "loihi"), default="sim",
                    help="sim: nengo-loihi's emulator (default); simreal: its floating-point model; loihi: a board")
    ap.add_argument("--samples", type=int, default=None, help="run the first N stored samples (default: all)")
    ap.add_argument("--steps", type=int, default=None, help="steps per sample (default: as written)")
    ap.add_argument("--out", default=None, help="predictions file (default: predictions.json beside the script)")
    ap.add_argument("--rebuild", action="store_true",
                    help="one fresh build per sample, input in the biases from the first step (as on a board)")
    ap.add_argument("--slow-routing", action="store_true",
                    help="the emulator's own spike-by-spike delivery instead of the vectorized one (same spikes)")
    ap.add_argument("--n-chips", type=int, default=None, help="--target loihi: chips on the board")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except Fail as exc:
        sys.stderr.write("run_loihi.py: %s\n" % exc)
        return exc.status


def run(args):
    meta, data, inputs = load()
    stored = meta["samples"]
    steps = meta["steps"] if args.steps is None else args.steps
    samples = stored if args.samples is None else args.samples
    if steps < 1:
        raise Fail("--steps must be at least 1, got %d" % steps)
    if "input_trains" in (inputs or {}) and steps > meta["steps"]:
        raise Fail("--steps %d: the spiking input's trains are stored for %d steps" % (steps, meta["steps"]))
    if inputs is None:
        if args.samples:
            raise Fail("no samples are stored with this network (it was written without inputs)")
        net, _, _, _ = build_network(meta, data)
        report = {"warnings": []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            simulator(net, meta["dt_s"], "sim" if args.target == "loihi" else args.target, report).close()
        print("no samples stored: built the model (%d blocks, one per core)" % report["blocks"])
        return 0
    if not 1 <= samples <= stored:
        raise Fail("--samples must be in [1, %d] (the samples stored), got %d" % (stored, samples))
    rebuild = args.rebuild or args.target == "loihi"
    for line in meta["not_exact"]:
        print("not exact:", line)
    if rebuild:
        for line in meta["rebuild_not_exact"] or ["nothing: this network has no bias that a lag delays, no v_init "
                                                  "and no analog input that varies"]:
            print("rebuild per sample, not exact:", line)
    report = {"warnings": [], "overflows": _OverflowTally()}
    start = time.perf_counter()
    if rebuild:
        options = {} if args.n_chips is None else {"n_chips": args.n_chips}
        results = run_rebuild(meta, data, inputs, samples, steps, args.target, report,
                              options if args.target == "loihi" else None)
    else:
        results = run_registers(meta, data, inputs, samples, steps, args.target, not args.slow_routing, report)
    seconds = time.perf_counter() - start
    counts = np.stack([r[0] for r in results]).astype(np.int64)
    predictions = predict(counts, np.stack([r[2] for r in results]))
    accuracy = None
    if "labels" in inputs:
        accuracy = float((predictions == inputs["labels"][:samples]).mean())
    out = {"target": args.target, "mode": "rebuild per sample" if rebuild else "registers",
           "samples": samples, "steps": steps, "run_steps": steps + meta["max_lag"],
           "predictions": predictions.tolist(), "accuracy": accuracy, "output_counts": counts.tolist(),
           "population_spikes": {p["name"]: [r[1][p["name"]] for r in results] for p in meta["populations"]},
           "blocks": report["blocks"], "overflows": report["overflows"].total(),
           "overflow_note": report["overflows"].note(samples), "warnings": report["warnings"],
           "seconds": round(seconds, 3)}
    path = args.out or os.path.join(HERE, "predictions.json")
    try:
        with open(path, "w") as f:
            json.dump(out, f, indent=1)
    except OSError as exc:
        raise Fail("cannot write %s: %s" % (path, exc))
    print("nengo-loihi %s (%s): %d samples of %d steps on %d blocks in %.2f s"
          % (args.target, out["mode"], samples, steps, report["blocks"], seconds))
    if out["overflow_note"]:
        print(out["overflow_note"])
    if accuracy is not None:
        print("accuracy: %.4f (%d/%d)" % (accuracy, int(round(accuracy * samples)), samples))
    print("predictions written to", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
