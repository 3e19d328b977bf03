"""The PyNN engine: a spikeport network described as arrays, built as PyNN populations, spike
sources and projections, and read back as spike counts in each population's window.

The PyNN lowering (:mod:`spikeport.backends.pynn_lowering`, which states what becomes what:
time, units, copies, signs, lags) builds with it for the pynn-nest and spinnaker backends,
and ``run_spinnaker.py``, the standalone script the spinnaker backend writes, runs
:func:`main` (this file is copied beside it as ``spikeport_runtime/pynn_engine.py``).
Imports nothing of spikeport: numpy, and the PyNN simulator module the caller hands over
(``sim``: ``pyNN.nest``, ``pyNN.spiNNaker``, ...) or :func:`main` imports.

The description (``network.json`` / ``network.npz`` of the script)
----------------------------------------------------------------
meta: ``steps``, ``samples``, ``step_ms``, ``max_lag``, ``input`` {name, size, encoding},
``output``, ``populations`` [{name, key, size, model (a PyNN standard cell), params, lag}],
``projections`` [{name, key, pre, post, receptor, delay_steps (simulator steps)}],
``neurons_per_core``, ``neurons_per_population``, ``not_exact`` (what differs from the graph,
one line each). data: ``<pop key>_v_init``, ``_bias`` (the constant current, in the cell's
units), ``_analog`` (per sample, the analog input's current), ``<proj key>_pre``, ``_post``,
``_weight``; ``input_trains`` (samples, steps, size) for spiking input; ``labels``.
"""
import numpy as np

STEP_MS = 1.0  # one graph step in simulator milliseconds


def population(sim, size, celltype, label, v=None, current=None, v_name="v", current_name="i_offset"):
    """One PyNN Population of ``size`` cells of ``celltype``, its constant current set to ``current``
    (per cell, in the cell's units; left alone where all zero) and its membrane initialized to ``v``
    (None: both left to the caller)."""
    pop = sim.Population(size, celltype, label=label)
    if current is not None and np.any(current != 0):
        pop.set(**{current_name: current})
    if v is not None:
        pop.initialize(**{v_name: v})
    return pop


def spike_times(trains, copies, n, offset=0, placeholder=None, step_ms=STEP_MS):
    """Spike times (ms) of ``copies * n`` sources (copy c, neuron i at c * n + i) at the steps of
    ``trains`` (bool (copies, steps, n), or None: no spike) shifted by ``offset`` steps. Without any
    spike, ``placeholder`` (a step, e.g. after the run's end) gives the first source one spike:
    sPyNNaker 7.4 cannot build a SpikeSourceArray that never spikes."""
    times = []
    for c in range(copies):
        for i in range(n):
            steps = np.flatnonzero(trains[c, :, i]) if trains is not None else np.array([], int)
            times.append([float((s + offset) * step_ms) for s in steps])
    if not any(times) and placeholder is not None:
        times[0] = [float(placeholder) * step_ms]
    return times


def projection(sim, source, target, pre, post, weight, delay_steps, receptor, label, step_ms=STEP_MS):
    """A static PyNN Projection of the synapses (pre, post, weight) with a delay of ``delay_steps``
    steps (``FromListConnector``: sPyNNaker sizes its rows from the list's order, so sort by source)."""
    conns = np.column_stack([pre, post, weight, np.full(len(pre), delay_steps * step_ms)])
    return sim.Projection(source, target, sim.FromListConnector(conns), synapse_type=sim.StaticSynapse(),
                          receptor_type=receptor, label=label)


def windows(index, step, size, lag, steps, batches=1, copies=1, window=0, origin=0):
    """Spikes in each sample's window: bool (batches * copies, steps, size) from the spikes of cells
    ``index`` (copy c, neuron j is cell c * size + j) at simulator steps ``step``, where batch b
    simulates graph step t at simulator step ``origin + b * window + lag + t``."""
    index, step = np.asarray(index, np.int64), np.asarray(step, np.int64)
    copy, neuron = np.divmod(index, size)
    rel = step - origin - lag
    batch = np.floor_divide(rel, window) if window else np.zeros_like(rel)
    t = rel - batch * window
    keep = (t >= 0) & (t < steps) & (batch >= 0) & (batch < batches)
    out = np.zeros((batches * copies, steps, size), dtype=bool)
    out[batch[keep] * copies + copy[keep], t[keep], neuron[keep]] = True
    return out


def placed():
    """sPyNNaker's placements of the current mapping: one (label of the application vertex, or of
    the vertex, x, y, p, first atom, last atom, label of the vertex it serves) per core."""
    from spinn_front_end_common.data import FecDataView

    out = []
    for pl in FecDataView.iterate_placemements():
        vertex = pl.vertex
        app = getattr(vertex, "app_vertex", None)
        vslice = getattr(vertex, "vertex_slice", None)
        lo, hi = getattr(vslice, "lo_atom", None), getattr(vslice, "hi_atom", None)
        source = getattr(app, "source_vertex", None)  # a DelayExtensionVertex delays its source's spikes
        out.append((getattr(app, "label", None) or vertex.label, int(pl.x), int(pl.y), int(pl.p),
                    None if lo is None else int(lo), None if hi is None else int(hi), getattr(source, "label", None)))
    return out


# ---------------------------------------------------------------------------- run_spinnaker.py

def build(sim, meta, data, neurons_per_core, sample=None, per_pop=None, record="spikes"):
    """The network of ``meta`` / ``data`` for one sample (None: no input) in a set-up simulator:
    per-cell-type limit ``neurons_per_core``, ``per_pop`` {population: neurons per core} overriding
    it, the output population recording ``record``. Returns {name: Population}."""
    step_ms = meta["step_ms"]
    for model in sorted({p["model"] for p in meta["populations"]}):  # before any Population exists
        sim.set_number_of_neurons_per_core(getattr(sim, model), neurons_per_core)
    pops = {}
    for p in meta["populations"]:
        current = data[p["key"] + "_bias"]
        if sample is not None and p["key"] + "_analog" in data:
            current = current + data[p["key"] + "_analog"][sample]
        pops[p["name"]] = population(sim, p["size"], getattr(sim, p["model"])(**p["params"]), p["name"],
                                     v=data[p["key"] + "_v_init"], current=current)
    inp = meta["input"]
    if inp["encoding"] != "analog":
        trains = None
        if sample is not None and "input_trains" in data and sample < len(data["input_trains"]):
            trains = data["input_trains"][sample][None]
        times = spike_times(trains, 1, inp["size"], placeholder=meta["steps"] + meta["max_lag"] + 1, step_ms=step_ms)
        pops[inp["name"]] = sim.Population(inp["size"], sim.SpikeSourceArray(spike_times=times), label=inp["name"])
    for name, n in (per_pop or {}).items():
        if name in pops:
            pops[name].set_max_atoms_per_core(int(n))
    for q in meta["projections"]:
        k = q["key"]
        projection(sim, pops[q["pre"]], pops[q["post"]], data[k + "_pre"], data[k + "_post"], data[k + "_weight"],
                   q["delay_steps"], q["receptor"], q["name"], step_ms)
    pops[meta["output"]].record(record)
    return pops


def read_output(pop, size, lag, steps, step_ms):
    """(spike counts in the window [lag, lag + steps), whether any spike came back, the membrane
    after the window's last step or None). sPyNNaker records a membrane at the start of a step,
    before its update: the one after step lag + steps - 1 is the record of step lag + steps."""
    v = None
    try:
        sig = pop.get_data("v").segments[-1].filter(name="v")[0]
        if sig.shape[0] > lag + steps:
            v = np.asarray(sig.magnitude, np.float64)[lag + steps]
    except Exception:  # a board that does not run, or a simulator that cannot record it
        v = None
    seg = pop.get_data("spikes", clear=True).segments[-1]
    index, step = [], []
    for i, train in enumerate(seg.spiketrains):
        t = np.rint(np.asarray(train.times.rescale("ms")) / step_ms).astype(np.int64)
        index.append(np.full(len(t), i))
        step.append(t)
    index = np.concatenate(index) if index else np.zeros(0, np.int64)
    step = np.concatenate(step) if step else np.zeros(0, np.int64)
    counts = windows(index, step, size, lag, steps)[0].sum(axis=0)
    return counts, len(step) > 0, v


def write_placements(path, pops):
    """The cores sPyNNaker placed each population on, as JSON at ``path``."""
    import json
    import sys

    try:
        cores = {}
        for label, x, y, p, *_ in placed():
            cores.setdefault(str(label), []).append([x, y, p])
        with open(path, "w") as f:
            json.dump({"populations": {name: cores.get(name, []) for name in pops},
                       "other": {k: v for k, v in cores.items() if k not in pops}}, f, indent=1)
    except Exception as exc:  # placements are a report: never fail the run for them
        print("could not read placements:", exc, file=sys.stderr)


def main(args, here, placements_file="placements.json"):
    """What ``run_spinnaker.py`` does: run the samples (``args.samples``, ``args.neurons_per_core``)
    on the machine sPyNNaker is configured for, one fresh network per sample; write results.npz
    and the placements next to the script (``here``). Returns the exit status."""
    import json
    import os

    import pyNN.spiNNaker as sim

    from .readout import predict, predict_index

    with open(os.path.join(here, "network.json")) as f:
        meta = json.load(f)
    data = np.load(os.path.join(here, "network.npz"))
    per_pop = meta.get("neurons_per_population", {}) if args.neurons_per_core is None else {}
    per_core = meta["neurons_per_core"] if args.neurons_per_core is None else args.neurons_per_core
    samples = meta["samples"] if args.samples is None else min(args.samples, meta["samples"])
    steps, step_ms = meta["steps"], meta["step_ms"]
    for line in meta["not_exact"]:
        print("not exact:", line)
    out = [p for p in meta["populations"] if p["name"] == meta["output"]][0]
    counts = np.zeros((samples, out["size"]), dtype=np.int64)
    v_end = np.zeros((samples, out["size"]))
    spiked, membranes = False, samples > 0
    pops = None
    # The network is set up afresh for every sample: sPyNNaker 7.4 cannot set a
    # SpikeSourceArray's spike times after the first run (it indexes a list with an array),
    # and on a virtual board reading spikes after sim.reset() fails in neo. Slower (one
    # mapping per sample), but every sample starts from the graph's initial state. One step
    # more than the window: the membrane after its last step is recorded at the next one.
    for s in range(max(samples, 1)):
        sample = s if samples else None
        if pops is not None:
            sim.end()
        sim.setup(timestep=step_ms)
        pops = build(sim, meta, data, per_core, sample, per_pop, record=["spikes", "v"])
        sim.run((steps + meta["max_lag"] + 1) * step_ms)
        if s == 0:
            write_placements(os.path.join(here, placements_file), pops)
        if sample is None:
            break
        counts[s], any_spike, v = read_output(pops[meta["output"]], out["size"], out["lag"], steps, step_ms)
        spiked |= any_spike
        if v is None:
            membranes = False
        else:
            v_end[s] = v
    sim.end()
    if membranes:
        predictions, ties = predict(counts, v_end), "ties to the higher membrane, then the lower index"
    else:
        predictions, ties = predict_index(counts), "ties to the lower index (the membrane did not come back)"
    result = {"counts": counts, "predictions": predictions, "ties": np.array(ties)}
    if "labels" in data and samples:
        result["accuracy"] = float((predictions == data["labels"][:samples]).mean())
    np.savez(os.path.join(here, "results.npz"), **result)
    if not spiked and samples:
        print("no output spikes came back: on a virtual board sPyNNaker maps but does not run")
    elif samples:
        print("predictions:", predictions.tolist())
        print("readout: most output spikes,", ties)
        if "accuracy" in result:
            print("accuracy: %.4f" % result["accuracy"])
    return 0
