"""Deployment artifacts for the brian2 and spinnaker targets: standalone scripts and their data.

:func:`write_brian2` writes ``run_brian2.py`` with ``brian2_network.json`` (structure)
and ``brian2_network.npz`` (arrays). The script needs Brian2 and numpy only, not
spikeport::

    python run_brian2.py [--samples N] [--steps T] [--out predictions.json]
                         [--batch B] [--codegen auto|numpy|cython]

It builds what :mod:`spikeport.backends.brian` builds: one ``NeuronGroup`` per spiking
population running the graph's step map in a ``run_regularly`` operation (IF/LIF, reset
by subtraction or to zero, refractory steps as an integer counter, bias, per-neuron
v_init, synaptic current), one ``Synapses`` per projection from its materialized
synapses (``Projection.materialize``: exact for conv/pool/flatten chains), and the same
same-step schedule (population k's update, threshold and reset, then the pathways of its
outgoing projections, then population k + 1; a delay of d steps is a Brian2 delay of d
dt). Analog input is each receiving population's constant current (``apply_numpy`` in
float64, as the backend computes it), stored per sample and per delay; Poisson and
regular input are the reference executor's own trains (``common.input_trains``, stored
as arrays), so a run is deterministic and spike for spike equal to the backend's.
``batch`` samples run side by side as copies of the network; the network is built once,
stored with Brian2's ``Network.store`` and restored before every batch.

A fixed-point network (a chip's integer formats, :mod:`spikeport.ir.arithmetic`) runs
its integer arithmetic in float64 (exact below 2**53): truncating decays, saturation or
two's-complement wrap-around, and an analog input current rounded half to even, as the
reference executor's fixed-point mode computes it.

The script writes predictions.json: per sample the predicted class (most output spikes;
ties to the higher final membrane, then the lower index, as the reference executor
breaks them), the output spike counts and the label if stored, plus the accuracy.

:func:`write_spinnaker` writes the PyNN script of
:func:`spikeport.backends.spinnaker.write_script` (``run_spinnaker.py``, ``network.json``,
``network.npz``) and ``placements.json``: sPyNNaker's own placements on a virtual SpiNN-5
board (:func:`spikeport.backends.spinnaker.placements`). When the script runs on a
machine it records that machine's placements in ``placements_run.json``, so the two
never overwrite each other.

Nothing here imports brian2, PyNN or sPyNNaker at import time.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import SpikeportError

BRIAN2_SCRIPT = "run_brian2.py"
BRIAN2_JSON = "brian2_network.json"
BRIAN2_NPZ = "brian2_network.npz"
BRIAN2_FORMAT = "spikeport-brian2-script"
PLACEMENTS = "placements.json"
PLACEMENTS_RUN = "placements_run.json"


# ---------------------------------------------------------------------------- brian2

def _index_dtype(n: int):
    return np.int32 if n < 2**31 else np.int64


def write_brian2(network, out_dir, *, x=None, labels=None, steps: int = 100, seed: int = 0) -> list[Path]:
    """Write a standalone Brian2 script and its data into ``out_dir``; returns the paths written.

    x : samples (samples, *input_shape) stored with the script (analog: each receiving
        population's current; spiking: the reference executor's input trains for ``seed``)
    labels : their classes, stored so the script reports accuracy
    steps : the default number of steps of a run (a spiking input's trains are stored
        for this many steps, the most a run of the script can use)
    """
    from ..backends import common

    network.validate()
    try:
        order = network.order(all_projections=True)
    except SpikeportError as exc:
        raise SpikeportError(f"brian2 script: feed-forward networks only: {exc}") from None
    steps = int(steps)
    if steps < 1:
        raise SpikeportError(f"steps must be at least 1, got {steps}")
    fixed = network.fixed_point
    inp = network.population(network.input)
    analog = inp.encoding.kind == "analog"
    arrays, pops, projs = {}, [], []
    for pop in order:
        if pop.is_input:
            continue
        key = f"pop{len(pops)}"
        nm = pop.neuron
        delays = sorted({pr.delay_steps for pr in network.projections_into(pop.name) if pr.pre == inp.name}) \
            if analog else []
        arrays[f"{key}_v_init"] = pop.initial_membrane().reshape(-1)
        arrays[f"{key}_bias"] = (np.zeros(pop.size) if pop.bias is None
                                 else pop.bias.astype(np.float64).reshape(-1))
        pops.append({"name": pop.name, "key": key, "size": pop.size, "shape": list(pop.shape),
                     "model": nm.model, "threshold": float(nm.threshold), "decay": float(nm.decay),
                     "syn_decay": None if nm.syn_decay is None else float(nm.syn_decay), "reset": nm.reset,
                     "refractory_steps": int(nm.refractory_steps), "analog_delays": delays})
    for m, proj in enumerate(network.projections):
        pre = network.population(proj.pre)
        if pre.is_input and analog:
            continue  # an analog input is a current, stored per sample below
        syn = proj.materialize(pre.shape)
        weight = np.asarray(syn.weight, np.float64)
        if fixed is not None and not np.array_equal(weight, np.rint(weight)):
            raise SpikeportError(f"brian2 script: projection {proj.name!r} of a fixed-point network has "
                                 "non-integer synapse weights")
        key = f"proj{m}"
        post = network.population(proj.post)
        arrays[f"{key}_pre"] = syn.pre.astype(_index_dtype(pre.size))
        arrays[f"{key}_post"] = syn.post.astype(_index_dtype(post.size))
        arrays[f"{key}_weight"] = weight
        projs.append({"name": proj.name, "key": key, "pre": proj.pre, "post": proj.post,
                      "delay_steps": int(proj.delay_steps), "synapses": int(len(syn))})
    samples = 0
    if x is not None:
        x, steps, _ = common.check_run(network, x, steps)
        samples = len(x)
        if analog:
            xs = x.reshape((samples,) + tuple(inp.shape)).astype(np.float64)
            for p in pops:
                into = [pr for pr in network.projections_into(p["name"]) if pr.pre == inp.name]
                for k, d in enumerate(p["analog_delays"]):
                    current = np.zeros((samples, p["size"]))
                    for pr in into:
                        if pr.delay_steps == d:
                            current += pr.apply_numpy(xs).reshape(samples, -1)
                    arrays[f"{p['key']}_analog{k}"] = current
        else:
            arrays["input_trains"] = common.input_trains(network, x, steps, seed=seed)
        if labels is not None:
            lab = np.asarray(labels).reshape(-1)
            if len(lab) < samples:
                raise SpikeportError(f"labels: {len(lab)} for {samples} samples")
            arrays["labels"] = lab[:samples].astype(np.int64)
    meta = {"format": BRIAN2_FORMAT, "version": 1, "dt_s": float(network.dt_s), "steps": steps,
            "samples": samples, "seed": int(seed), "labels": "labels" in arrays,
            "input": {"name": inp.name, "size": inp.size, "shape": list(inp.shape), "encoding": inp.encoding.kind},
            "output": network.output, "order": [p.name for p in order], "populations": pops, "projections": projs,
            "fixed_point": None if fixed is None else {
                **fixed.to_dict(), "state_max": fixed.state_max,
                "decay_int": {p["name"]: {"decay": fixed.decay_int(p["decay"]),
                                          "syn_decay": None if p["syn_decay"] is None
                                          else fixed.decay_int(p["syn_decay"])} for p in pops}}}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / BRIAN2_SCRIPT, out / BRIAN2_JSON, out / BRIAN2_NPZ]
    paths[1].write_text(json.dumps(meta, indent=1) + "\n")
    np.savez_compressed(paths[2], **arrays)
    paths[0].write_text(BRIAN2_SCRIPT_TEXT)
    paths[0].chmod(0o755)
    return paths


# ---------------------------------------------------------------------------- spinnaker

def write_spinnaker(network, out_dir, *, x=None, labels=None, steps: int = 100, neurons_per_core=None,
                    seed: int = 0, placements: dict | None = None) -> list[Path]:
    """Write the SpiNNaker artifacts into ``out_dir``; returns the paths written.

    ``run_spinnaker.py``, ``network.json`` and ``network.npz``: the standalone PyNN script of
    :func:`spikeport.backends.spinnaker.write_script` for a real machine (it records the
    machine's placements in ``placements_run.json`` when run); ``placements.json``:
    sPyNNaker's placements of the network on a virtual SpiNN-5 board, per population its
    cores (x, y, p, first neuron, last neuron) and chips, and the totals.

    neurons_per_core : None (sPyNNaker's default for spikeport, 255), one int for every
        population, or {population: n} (others get the default)
    placements : the result of :func:`spikeport.backends.spinnaker.placements` for this network,
        ``neurons_per_core`` and ``steps``, where the caller has mapped it already (the deploy
        pipeline counts cores and chips with it); None: mapped here
    """
    from ..backends import spinnaker

    if neurons_per_core is None:
        neurons_per_core = spinnaker.DEFAULT_NEURONS_PER_CORE
    steps = int(steps)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    placed = placements
    if placed is None:
        placed = spinnaker.placements(network, neurons_per_core=neurons_per_core, steps=steps)
    script = spinnaker.write_script(network, out, x, steps, labels=labels, seed=seed,
                                    neurons_per_core=neurons_per_core, placements_file=PLACEMENTS_RUN)
    pops = placed["populations"]
    body = {"format": "spikeport-spinnaker-placements", "version": 1, "source": "sPyNNaker (virtual board mapping)",
            "board": placed["board"], "neurons_per_core": placed["neurons_per_core"],
            "total_cores": placed["total_cores"], "total_chips": placed["total_chips"],
            "population_cores": sum(e["cores"] for e in pops.values()),
            "populations": {name: {"neurons": e["neurons"], "cores": e["cores"], "chips": e["chips"],
                                   "placements": [{"x": c[0], "y": c[1], "p": c[2], "first": c[3], "last": c[4]}
                                                  for c in e["placements"]]}
                            for name, e in pops.items()},
            "other": {name: {"cores": e["cores"], "chips": e["chips"]} if name == "system" else
                      {"cores": e["cores"], "chips": e["chips"],
                       **({"serves": e["serves"]} if "serves" in e else {}),
                       "placements": [{"x": c[0], "y": c[1], "p": c[2]} for c in e["placements"]]}
                      for name, e in placed["other"].items()},
            "summary": spinnaker.summary(placed),
            "note": "total_cores counts the populations' cores and the other application cores (delay "
                    "extensions); sPyNNaker's system cores are listed under other.system, not counted"}
    path = out / PLACEMENTS
    path.write_text(json.dumps(body, indent=1) + "\n")
    return [script, out / "network.json", out / "network.npz", path]


# ---------------------------------------------------------------------------- the brian2 script

BRIAN2_SCRIPT_TEXT = r'''#!/usr/bin/env python
"""Run a spikeport network with Brian2 (written by spikeport deploy); needs brian2 and numpy only.

Reads brian2_network.json and brian2_network.npz from this script's directory, builds one
NeuronGroup per spiking population (the graph's discrete neuron map, applied once per step)
and one Synapses object per projection, runs the stored samples for --steps steps each,
prints the accuracy when labels are stored and writes predictions.json: per sample the
predicted class (most output spikes; ties to the higher final membrane, then the lower
index), the output spike counts and the label.

    python run_brian2.py [--samples N] [--steps T] [--out predictions.json]

Same-step delivery: every update, threshold, reset and synaptic pathway runs in one
schedule slot in the populations' topological order, so a spike reaches the next
population in the step it was fired (a projection with a delay of d steps delivers d
steps later). Spiking input is stored as the exact trains spikeport's reference executor
generates; analog input as each receiving population's constant current.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
JSON_FILE, NPZ_FILE = "brian2_network.json", "brian2_network.npz"
FORMAT = "spikeport-brian2-script"
SLOT = "groups"  # the schedule slot holding every update, threshold, reset and pathway
SYNAPSE_BUDGET = 4000000  # synapses held at once over all copies of the network
MAX_BATCH = 64
THRESHOLD = "act == 1 and v >= theta"
RESET = "v = keep * (v - theta)\nrr = refr\nn_spk += 1"
MODEL = """v : 1
isyn : 1
J : 1
act : integer
rr : integer
n_spk : integer
b : 1 (constant)
theta : 1 (shared, constant)
lam : 1 (shared, constant)
alpha : 1 (shared, constant)
keep : 1 (shared, constant)
refr : integer (shared, constant)"""


class UsageError(Exception):
    """A problem with the files or the options: one line on stderr, exit status 2."""


def load():
    """The network's structure and arrays from this script's directory."""
    paths = [os.path.join(HERE, name) for name in (JSON_FILE, NPZ_FILE)]
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError("missing data file %s (it must lie next to this script)" % path)
    try:
        with open(paths[0]) as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise UsageError("cannot read %s: %s" % (paths[0], exc))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UsageError("%s is not a spikeport brian2 network description" % paths[0])
    try:
        data = np.load(paths[1])
        data = {name: data[name] for name in data.files}
    except Exception as exc:
        raise UsageError("cannot read %s: %s" % (paths[1], exc))
    keys = ["%s_v_init" % p["key"] for p in meta["populations"]]
    keys += ["%s_%s" % (q["key"], a) for q in meta["projections"] for a in ("pre", "post", "weight")]
    if meta["samples"]:
        keys += (["input_trains"] if meta["input"]["encoding"] != "analog" else
                 ["%s_analog%d" % (p["key"], k) for p in meta["populations"] for k in range(len(p["analog_delays"]))])
    missing = [k for k in keys if k not in data]
    if missing:
        raise UsageError("%s lacks the array %r: rewrite it with spikeport" % (paths[1], missing[0]))
    return meta, data


def trunc(expr):
    """Rounding toward zero, exact on float64."""
    return "sign(%s) * floor(abs(%s))" % (expr, expr)


def fixed_sat(expr, fp):
    """Saturation, or two's-complement wrap-around, to the state registers."""
    if fp["saturate"]:
        return "clip(%s, -smax, smax)" % expr
    return "((%s) - smod * floor(((%s) + shalf) / smod))" % (expr, expr)


def update_code(pop, fp):
    """The graph's neuron map for one step, run before the threshold (see spikeport.ir.neurons)."""
    delays = pop["analog_delays"]
    drive = " + ".join(["J"] + ["Ia%d * int(t >= ta%d)" % (k, k) for k in range(len(delays))])
    lines = ["act = int(rr == 0)"]
    if fp is None:
        lines += ["isyn = alpha * isyn + (%s)" % drive,
                  "v = act * (lam * v + (isyn + b)) + (1 - act) * v"]
    else:
        if delays:  # an analog current is fractional: the total input is rounded half to even
            lines += ["y = %s" % drive, "yf = floor(y)", "yd = y - yf",
                      "drive = yf + int(yd > 0.5) + int(yd == 0.5) * (yf - 2 * floor(yf / 2))"]
            drive = "drive"
        if pop["syn_decay"] is None:
            lines.append("isyn = %s" % drive)
        else:
            lines.append("isyn = %s" % fixed_sat("%s + %s" % (trunc("alpha * isyn"), drive), fp))
        lines.append("v = act * %s + (1 - act) * v" % fixed_sat("%s + isyn + b" % trunc("lam * v"), fp))
    lines += ["rr = rr - (1 - act)", "J = 0"]
    return "\n".join(lines)


class Lowered:
    """The Brian2 objects of the network with ``batch`` copies side by side (copy c, neuron j
    is Brian2 neuron c * size + j), stored right after building so every batch starts afresh."""

    def __init__(self, b2, meta, data, batch, steps):
        self.b2, self.meta, self.data, self.batch, self.steps = b2, meta, data, batch, steps
        fp = meta["fixed_point"]
        self.dt = meta["dt_s"] * b2.second
        clock = b2.Clock(dt=self.dt, name="spikeport_clock")
        rank = {name: k for k, name in enumerate(meta["order"])}
        inp = self.input = meta["input"]
        objects, self.groups = [], {}
        self.input_group = None
        if inp["encoding"] != "analog":
            self.input_group = b2.SpikeGeneratorGroup(batch * inp["size"], np.zeros(0, np.int64),
                                                      np.zeros(0) * b2.second, clock=clock, when=SLOT,
                                                      order=4 * rank[inp["name"]] + 1, sorted=True,
                                                      name="spikeport_input")
            objects.append(self.input_group)
        for pop in meta["populations"]:
            k = rank[pop["name"]]
            model = MODEL + "".join("\nIa%d : 1\nta%d : second (shared, constant)" % (i, i)
                                    for i in range(len(pop["analog_delays"])))
            namespace = {}
            if fp is not None:
                half = float(fp["state_max"] + 1)
                namespace = {"smax": float(fp["state_max"]), "shalf": half, "smod": 2 * half}
            g = b2.NeuronGroup(batch * pop["size"], model, threshold=THRESHOLD, reset=RESET, clock=clock,
                               namespace=namespace, name="spikeport_pop%d" % k)
            scale = None if fp is None else 2.0 ** fp["decay_bits"]
            ints = None if fp is None else fp["decay_int"][pop["name"]]
            g.theta = pop["threshold"]
            g.lam = pop["decay"] if fp is None else ints["decay"] / scale
            if pop["syn_decay"] is None:
                g.alpha = 0.0
            else:
                g.alpha = pop["syn_decay"] if fp is None else ints["syn_decay"] / scale
            g.keep = 1.0 if pop["reset"] == "subtract" else 0.0
            g.refr = pop["refractory_steps"]
            for i, d in enumerate(pop["analog_delays"]):
                setattr(g, "ta%d" % i, (d - 0.5) * self.dt)
            g.b = np.tile(data[pop["key"] + "_bias"].astype(np.float64), batch)
            g.v = np.tile(data[pop["key"] + "_v_init"].astype(np.float64), batch)
            upd = g.run_regularly(update_code(pop, fp), when=SLOT, order=4 * k, name="spikeport_update%d" % k)
            g.thresholder["spike"].when, g.thresholder["spike"].order = SLOT, 4 * k + 1
            g.resetter["spike"].when, g.resetter["spike"].order = SLOT, 4 * k + 2
            self.groups[pop["name"]] = g
            objects += [g, upd]
        sizes = {p["name"]: p["size"] for p in meta["populations"]}
        sizes[inp["name"]] = inp["size"]
        self.synapses = 0
        copies = np.arange(batch, dtype=np.int64)[:, None]
        for m, q in enumerate(meta["projections"]):
            if q["delay_steps"] >= steps:
                continue  # delivers nothing within a run
            pre, post, w = (data[q["key"] + s] for s in ("_pre", "_post", "_weight"))
            source = self.input_group if q["pre"] == inp["name"] else self.groups[q["pre"]]
            s = b2.Synapses(source, self.groups[q["post"]], model="w : 1 (constant)", on_pre="J_post += w",
                            delay=q["delay_steps"] * self.dt if q["delay_steps"] else None, clock=clock,
                            name="spikeport_syn%d" % m)
            if len(pre):
                s.connect(i=(pre.astype(np.int64)[None, :] + copies * sizes[q["pre"]]).ravel(),
                          j=(post.astype(np.int64)[None, :] + copies * sizes[q["post"]]).ravel())
                s.w = np.tile(w.astype(np.float64), batch)
            s.pre.when, s.pre.order = SLOT, 4 * rank[q["pre"]] + 3
            self.synapses += len(pre) * batch
            objects.append(s)
        self.net = b2.Network(*objects, name="spikeport_network")
        self.net.store("initial")

    def run(self, first, n):
        """Samples first .. first + n - 1 (n <= batch) from the initial state; returns per population
        the spike counts (n, size) and the output's final membrane (n, classes)."""
        b2, meta, data, steps = self.b2, self.meta, self.data, self.steps
        self.net.restore("initial")
        for pop in meta["populations"]:
            g = self.groups[pop["name"]]
            for i in range(len(pop["analog_delays"])):
                current = np.zeros((self.batch, pop["size"]))
                current[:n] = data["%s_analog%d" % (pop["key"], i)][first:first + n]
                setattr(g, "Ia%d" % i, current.reshape(-1))
        if self.input_group is not None:
            trains = data["input_trains"][first:first + n, :steps]
            sample, step, neuron = np.nonzero(trains)
            index = sample * self.input["size"] + neuron
            order = np.lexsort((index, step))
            self.input_group.set_spikes(index[order], step[order] * self.dt, sorted=True)
        self.net.run(steps * self.dt, namespace={})
        counts = {name: np.asarray(g.n_spk[:]).reshape(self.batch, -1)[:n].astype(np.int64)
                  for name, g in self.groups.items()}
        # copies: Brian2 may hand out views of its state, which the next restore overwrites
        v = np.array(self.groups[meta["output"]].v[:], dtype=np.float64).reshape(self.batch, -1)[:n].copy()
        return counts, v


def predictions(counts, v):
    """Most spikes wins; ties go to the higher final membrane, then the lower index."""
    top = counts.max(axis=1, keepdims=True)
    return np.where(counts == top, v, -np.inf).argmax(axis=1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Reads %s and %s next to this script." % (JSON_FILE, NPZ_FILE))
    ap.add_argument("--samples", type=int, default=None, help="samples to run (default: all stored)")
    ap.add_argument("--steps", type=int, default=None, help="steps per sample (default: as written)")
    ap.add_argument("--out", default="predictions.json", help="where to write the predictions "
                    "(default: predictions.json in the current directory)")
    ap.add_argument("--batch", type=int, default=None, help="samples simulated side by side (default: as many "
                    "as fit in %d synapses, at most %d)" % (SYNAPSE_BUDGET, MAX_BATCH))
    ap.add_argument("--codegen", choices=("auto", "numpy", "cython"), default="auto",
                    help="Brian2's code generation target (default: auto, Brian2's choice)")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        print("run_brian2.py: error: %s" % exc, file=sys.stderr)
        return 2


def run(args):
    meta, data = load()
    stored = meta["samples"]
    if not stored:
        raise UsageError("no samples are stored with this script (spikeport wrote it without input samples)")
    samples = stored if args.samples is None else args.samples
    if not 1 <= samples <= stored:
        raise UsageError("--samples must be in [1, %d] (the samples stored), got %d" % (stored, samples))
    steps = meta["steps"] if args.steps is None else args.steps
    if steps < 1:
        raise UsageError("--steps must be at least 1, got %d" % steps)
    if meta["input"]["encoding"] != "analog" and steps > meta["steps"]:
        raise UsageError("--steps: the input trains are stored for %d steps, got %d" % (meta["steps"], steps))
    if args.batch is not None and args.batch < 1:
        raise UsageError("--batch must be at least 1, got %d" % args.batch)
    per_copy = sum(q["synapses"] for q in meta["projections"] if q["delay_steps"] < steps)
    batch = args.batch or max(1, min(MAX_BATCH, SYNAPSE_BUDGET // max(per_copy, 1)))
    batch = min(batch, samples)
    try:
        import brian2 as b2
    except ImportError as exc:
        raise UsageError("this script needs Brian2 (pip install brian2): %s" % exc)
    b2.prefs.codegen.target = args.codegen
    b2.prefs.core.default_float_dtype = np.float64
    t0 = time.perf_counter()
    lowered = Lowered(b2, meta, data, batch, steps)
    t1 = time.perf_counter()
    out_counts, v_out = [], []
    totals = {name: [] for name in lowered.groups}
    for first in range(0, samples, batch):
        n = min(batch, samples - first)
        counts, v = lowered.run(first, n)
        out_counts.append(counts[meta["output"]])
        v_out.append(v)
        for name, c in counts.items():
            totals[name].append(c.sum(axis=1))
    t2 = time.perf_counter()
    counts = np.concatenate(out_counts)
    predicted = predictions(counts, np.concatenate(v_out))
    labels = data["labels"][:samples] if meta["labels"] else None
    result = {"samples": samples, "steps": steps, "dt_s": meta["dt_s"], "output": meta["output"],
              "codegen": args.codegen, "batch": batch,
              "seconds": {"build": round(t1 - t0, 3), "simulate": round(t2 - t1, 3)},
              "population_spikes": {name: np.concatenate(t).tolist() for name, t in totals.items()},
              "predictions": [{"sample": i, "predicted": int(predicted[i]), "output_counts": counts[i].tolist()}
                              for i in range(samples)]}
    if labels is not None:
        for i, rec in enumerate(result["predictions"]):
            rec["label"] = int(labels[i])
        result["accuracy"] = float((predicted == labels).mean())
    out = os.path.abspath(args.out)
    try:
        with open(out, "w") as f:
            json.dump(result, f, indent=1)
    except OSError as exc:
        raise UsageError("cannot write %s: %s" % (out, exc))
    print("brian2 (%s): %d samples x %d steps, %d side by side (%d synapses): build %.2f s, simulate %.2f s"
          % (args.codegen, samples, steps, batch, lowered.synapses, t1 - t0, t2 - t1))
    if labels is not None:
        print("accuracy: %.4f" % result["accuracy"])
    print("predictions written to %s" % out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
'''
