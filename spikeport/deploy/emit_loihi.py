"""The Loihi deployment artifact: a runnable Nengo-Loihi script, its engine, its network and its inputs.

:func:`write_loihi` writes into a directory:

- ``run_loihi.py``: ``python run_loihi.py [--target sim|simreal|loihi] [--samples N] [--steps T]
  [--out FILE]``. It builds the Nengo network, runs the stored samples, prints the accuracy
  when labels are stored and writes the predictions (and per-sample output counts and
  spike totals) to ``predictions.json`` beside itself, or to ``--out``. It is
  ``spikeport/runtimes/run_loihi.py``, copied as it is: a few lines that call the engine.
- ``spikeport_runtime/``: the engine, spikeport's own :mod:`spikeport.runtimes` (``__init__.py``,
  ``readout.py`` and ``loihi*.py``), copied as they are: the modules that spikeport's
  nengo-loihi backend (:mod:`spikeport.backends.loihi`) runs, which import nothing of
  spikeport.
- ``loihi_meta.json`` and ``loihi_network.npz``: the Nengo network that the backend builds
  for the graph, object by object (the description :mod:`spikeport.runtimes.loihi_nengo`
  builds from): every ensemble (its neuron parameters, gains, block shape), the spike input
  node, every connection (a ``Sparse`` matrix's indices and weights, or a ``Convolution``'s
  parameters and kernel; its synapse) and every probe, in the order the backend created
  them; plus each population's lag, v_init and bias stages.
- ``inputs.npz`` (when samples are given): the samples ``x``, ``labels`` if given, and
  what the chip receives per sample: the spiking input's trains
  (:func:`spikeport.backends.common.input_trains`, with ``seed``), or for an analog input
  the bias levels (and current kicks, with a synaptic filter) that the backend writes into
  each population's registers (the backend's ``Biases``). Running new samples therefore
  needs a new ``write_loihi`` (``spikeport deploy``): the script does not compute the
  analog input's projections.

The network is not lowered twice: it is the description of the backend's own lowering
(``Lowered``, with the block shapes of spikeport's partitioner,
:func:`spikeport.deploy.targets.loihi.block_shapes`), so the script builds the same ensembles, transforms, relays and block
shapes, with the same code. On ``--target sim`` (the default) it runs as the backend runs:
one build, and before each sample the emulator's state is reset and each population's bias
and v_init written into its registers at its lag, with the vectorized spike routing
(``--slow-routing``: nengo-loihi's own, identical spikes); its predictions equal
``spikeport validate --backend nengo-loihi`` on the same samples and steps (the test runs
it). ``--target loihi`` builds ``nengo_loihi.Simulator(target="loihi")``; a board's
registers cannot be written between runs through nengo-loihi, so there each sample is a
fresh build with its input in the bias registers from the first step and its spike
trains preloaded. What that changes for the network at hand is listed in
``loihi_meta.json`` ("rebuild_not_exact") and printed; ``--rebuild`` runs that mode on the
emulator to see it.

Does the script need spikeport? No. It needs Python 3, numpy, nengo and nengo-loihi 1.1,
and ``spikeport_runtime/`` beside it. This module imports nengo and nengo-loihi only when
:func:`write_loihi` runs.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from ..errors import SpikeportError
from ..runtimes import install, script_text
from ..runtimes.loihi import FORMAT, META, MODULES, NETWORK, VERSION

PLANNED_NOTE = ("blocks: the shapes spikeport's partitioner chose for the Loihi profile "
                "(spikeport.deploy.targets.loihi.block_shapes: the fewest blocks that fit a core as nengo-loihi "
                "counts them)")

SCRIPT = "run_loihi.py"
INPUTS = "inputs.npz"


def write_loihi(network, out_dir, *, x=None, steps: int = 100, block_shapes: dict | None = None, labels=None,
                seed: int = 0, conv: str = "transform") -> list:
    """Write the Loihi artifact of ``network`` into the existing directory ``out_dir``.

    x : samples (samples, *input shape) to store with the chip's inputs, or None (the
        script then only builds the model)
    steps : steps per sample (the script's default; a spiking input's trains have this length)
    block_shapes : {population: block dims} overriding the block shapes the partitioner
        chooses for the rest (dims as long as the population's shape: tiles; one dim for a
        multi-dimensional population: runs of consecutive neurons); relay populations are
        named ``<population>~relay<k>`` as in ``loihi.mapping()``. The model is built once
        here, so that a shape nengo-loihi cannot map is refused now
    labels : the samples' labels (the script prints its accuracy)
    seed : the spiking input's generator seed (as ``run(..., seed=)``)
    conv : as ``loihi.run``

    Returns the paths written: run_loihi.py, loihi_meta.json, loihi_network.npz,
    inputs.npz when ``x`` is given, and the engine's files in spikeport_runtime/.
    """
    from .. import __version__
    from ..backends import common, loihi
    from ..backends.loihi.blocks import set_block_shapes
    from .targets.loihi import block_shapes as plan_blocks

    out = Path(out_dir)
    if not out.is_dir():
        raise SpikeportError(f"{out}: not a directory")
    loihi.check(network, conv, "sim")
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
    biases = loihi.Biases(network, x if x is not None else np.zeros((1, inp.size), np.float32))
    built = biases.build_bias()
    lowered = loihi.Lowered(network, built, conv, None)
    given = set_block_shapes(lowered, block_shapes)
    planned = None
    if set(given) < set(lowered.ensembles):
        planned = plan_blocks(network, {name: block_shapes[name] for name in given})
        set_block_shapes(lowered, planned)
    _verify_build(lowered, network.dt_s)

    arrays, meta = lowered.describe()
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
        "format": FORMAT, "version": VERSION, "spikeport_version": __version__, "dt_s": float(network.dt_s),
        "steps": steps, "samples": samples, "seed": int(seed), "inputs": INPUTS if x is not None else None,
        "labels": labels is not None and x is not None,
        "input": {"name": inp.name, "size": inp.size, "shape": list(inp.shape), "encoding": inp.encoding.kind},
        "output": network.output, "populations": pops, "lag": {k: int(v) for k, v in lowered.lag.items()},
        "max_lag": int(max(lowered.lag.values())), "conv_transforms": list(lowered.conv_used),
        "block_plan": None if planned is None else PLANNED_NOTE, "block_shapes_given": sorted(given),
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
    (out / SCRIPT).write_text(script_text(SCRIPT))
    return paths + install(out, *MODULES)


# ---------------------------------------------------------------------------- the network's files

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
