"""The Brian2 engine: a spikeport network described as arrays, built as Brian2 objects and run.

The brian2 backend runs it, and ``spikeport deploy`` copies it beside ``run_brian2.py`` as
``spikeport_runtime/brian2_engine.py``. Imports nothing of spikeport: numpy, and brian2.

The description (``brian2_network.json`` / ``.npz`` of the script, or in memory)
---------------------------------------------------------------------------------
meta: ``dt_s``, ``input`` {name, size, shape, encoding}, ``output``, ``order`` (every
population's name, feed-forward), ``populations`` [{name, key, size, threshold, decay,
syn_decay, reset, refractory_steps, analog_delays, and only where used reset_amount and
strict_threshold}], ``projections`` [{name, key, pre, post, delay_steps, synapses}] between
spike-emitting populations (an analog input's are currents), ``fixed_point`` (None, or the
integer formats with state_max and each population's decay_int). data: ``<pop key>_v_init``,
``_bias``; ``<proj key>_pre``, ``_post``, ``_weight`` (materialized synapses of one copy).
Per run the caller hands over each population's analog currents, one (samples, size) array
per delay of ``analog_delays``, and the spiking input's trains (samples, steps, size).

Lowering
--------
- Every population is one ``NeuronGroup`` of ``batch`` side-by-side copies (copy c, neuron j
  is Brian2 neuron ``c * size + j``); every projection one ``Synapses`` whose ``on_pre``
  adds the weight to the post neuron's input ``J``. The neuron is the graph's discrete map
  (spikeport.ir.neurons), applied once per step by a ``run_regularly`` operation::

      act  = (rr == 0) and (t - t0 < tend)                 not refractory, within the sample
      isyn = alpha * isyn + (J + analog currents)          alpha = 0 without syn_decay
      v    = act * (lam * v + (isyn + b)) + (1 - act) * v  lam = 1 for IF
      rr   = rr - (1 - act);  J = 0
      spike: act and v >= theta;  reset: v = keep * (v - amount), rr = refr

  ``keep`` 1 subtracts ``amount`` (reset_amount, else theta), 0 resets to zero; a strict
  threshold (v > theta) is v >= the next float64 above theta. The refractory period is an
  integer counter, not Brian2's ``refractory`` (time comparisons would round). Every real
  variable is float64, whatever ``prefs.core.default_float_dtype`` says.
- Fixed point (the chip's integer formats, exact in float64 below 2**53): decays truncate
  toward zero, the synaptic current and the membrane saturate (or wrap around, two's
  complement) to the state registers, and an analog input's current is rounded half to
  even, as the reference executor's fixed-point mode computes.
- Same-step delivery: every update, threshold, reset and synaptic pathway runs in one
  schedule slot in the populations' feed-forward order (population k's update, threshold
  and reset, then the pathways of its projections, then population k + 1), so a zero-delay
  projection delivers in the step its pre population fired; a delay of d steps is a
  Brian2 delay of d * dt. A projection with a delay of ``steps`` or more is left out.
- Samples: one Brian2 ``run`` holds many segments of ``steps + gap`` steps, one batch of
  samples each; a ``NetworkOperation`` at a segment's first step resets every neuron and
  loads the batch's analog currents, the spiking input is one ``SpikeGeneratorGroup``
  schedule for all segments. ``gap`` is the longest delay below ``steps``: no neuron fires
  during it, so a spike in a delay queue is consumed before the next segment. Counters in
  the reset keep each population's spikes and, per outgoing delay d, those of the first
  ``steps - d`` steps (what that projection delivered).

Objects have fixed names (Brian2's cython cache is reused across networks), their own
``Clock``, and take ``codeobj_class`` rather than ``prefs``.
"""
import numpy as np

SLOT = "groups"  # the schedule slot holding all neuron updates, thresholds, resets and pathways
THRESHOLD = "act == 1 and v >= theta"
SYNAPSE_BUDGET = 4000000  # synapses held at once over all copies (Brian2 keeps ~40 bytes each)
MAX_BATCH = 64
RUN_BYTES = 256 << 20  # recorded output membrane, spike trains and input trains held per Brian2 run


def model(analog, cuts):
    """Variables of a population's NeuronGroup: the state, per-neuron bias, the neuron's constants,
    the segment's start t0 and end tend, ``analog`` input currents Ia* (each from step ta* of the
    segment on) and ``cuts`` spike counters ec* of the steps before tc*."""
    lines = ["v : 1", "isyn : 1", "J : 1", "act : integer", "rr : integer", "n_spk : integer", "b : 1 (constant)",
             "theta : 1 (shared, constant)", "lam : 1 (shared, constant)", "alpha : 1 (shared, constant)",
             "keep : 1 (shared, constant)", "amount : 1 (shared, constant)", "refr : integer (shared, constant)",
             "t0 : second (shared)", "tend : second (shared, constant)"]
    lines += ["Ia%d : 1\nta%d : second (shared, constant)" % (k, k) for k in range(analog)]
    lines += ["ec%d : integer\ntc%d : second (shared, constant)" % (k, k) for k in range(cuts)]
    return "\n".join(lines)


def float64(text):
    """{variable: float64} for every real variable of ``model``'s text."""
    return {line.split(":")[0].strip(): np.float64 for line in text.splitlines() if "integer" not in line}


def trunc(expr):
    """Rounding toward zero, exact on float64."""
    return "sign(%s) * floor(abs(%s))" % (expr, expr)


def fixed_sat(expr, fp):
    """Saturation, or two's-complement wrap-around, to the state registers."""
    if fp["saturate"]:
        return "clip(%s, -smax, smax)" % expr
    return "((%s) - smod * floor(((%s) + shalf) / smod))" % (expr, expr)


def update_code(pop, fp):
    """The graph's neuron map for one step, run before the threshold (float, or fixed point ``fp``)."""
    analog = len(pop["analog_delays"])
    drive = " + ".join(["J"] + ["Ia%d * int(t - t0 >= ta%d)" % (k, k) for k in range(analog)])
    lines = ["act = int(rr == 0) * int(t - t0 < tend)"]
    if fp is None:
        lines += ["isyn = alpha * isyn + (%s)" % drive, "v = act * (lam * v + (isyn + b)) + (1 - act) * v"]
    else:
        if analog:  # an analog current is fractional: the total input is rounded half to even
            lines += ["y = %s" % drive, "yf = floor(y)", "yd = y - yf",
                      "drive = yf + int(yd > 0.5) + int(yd == 0.5) * (yf - 2 * floor(yf / 2))"]
            drive = "drive"
        if pop["syn_decay"] is None:
            lines.append("isyn = %s" % drive)
        else:
            lines.append("isyn = %s" % fixed_sat("%s + %s" % (trunc("alpha * isyn"), drive), fp))
        lines.append("v = act * %s + (1 - act) * v" % fixed_sat("%s + isyn + b" % trunc("lam * v"), fp))
    return "\n".join(lines + ["rr = rr - (1 - act)", "J = 0"])


def reset_code(cuts):
    return "\n".join(["v = keep * (v - amount)", "rr = refr", "n_spk += 1"]
                     + ["ec%d += int(t - t0 < tc%d)" % (k, k) for k in range(cuts)])


def default_batch(meta, samples, steps):
    """Samples side by side: as many copies as fit in SYNAPSE_BUDGET synapses, at most MAX_BATCH."""
    per_copy = sum(q["synapses"] for q in meta["projections"] if q["delay_steps"] < steps)
    return int(max(1, min(samples, MAX_BATCH, SYNAPSE_BUDGET // max(per_copy, 1))))


class Lowered:
    """The Brian2 objects of one network with ``batch`` copies, and the segments that run samples
    through it. ``b2``: the brian2 module; ``codeobj_class``: the code generation target's class
    (None: Brian2's preferences)."""

    def __init__(self, b2, meta, data, batch, steps, codeobj_class=None):
        self.b2, self.meta, self.batch, self.steps, self.cls = b2, meta, batch, steps, codeobj_class
        fp = meta["fixed_point"]
        cls = codeobj_class
        self.dt = meta["dt_s"] * b2.second
        self.clock = b2.Clock(dt=self.dt, name="spikeport_clock")
        rank = {name: k for k, name in enumerate(meta["order"])}
        inp = self.input = meta["input"]
        self.spiking_input = inp["encoding"] != "analog"
        self.sizes = {p["name"]: p["size"] for p in meta["populations"]}
        self.sizes[inp["name"]] = inp["size"]
        projs = [q for q in meta["projections"] if q["delay_steps"] < steps]  # the others deliver nothing
        # steps after a segment during which no neuron may fire, so that no spike is still in a delay queue
        # when the next segment starts
        self.gap = max([q["delay_steps"] for q in projs] + [0])
        self.length = steps + self.gap
        objects, self.groups, self.analog, self.cuts, self.v_init = [], {}, {}, {}, {}
        self.input_group = None
        if self.spiking_input:
            self.input_group = b2.SpikeGeneratorGroup(batch * inp["size"], np.zeros(0, np.int64),
                                                      np.zeros(0) * b2.second, clock=self.clock, when=SLOT,
                                                      order=4 * rank[inp["name"]] + 1, sorted=True,
                                                      codeobj_class=cls, name="spikeport_input")
            objects.append(self.input_group)
        namespace = None
        if fp is not None:
            half = float(fp["state_max"] + 1)
            namespace = {"smax": float(fp["state_max"]), "shalf": half, "smod": 2 * half}
        for pop in meta["populations"]:
            name, k = pop["name"], rank[pop["name"]]
            self.analog[name] = pop["analog_delays"]
            # the first steps - d spikes of pop, for the synaptic operations of its projections of delay d
            self.cuts[name] = sorted({q["delay_steps"] for q in projs if q["pre"] == name and q["delay_steps"] > 0})
            na, nc = len(self.analog[name]), len(self.cuts[name])
            text = model(na, nc)
            g = b2.NeuronGroup(batch * pop["size"], text, threshold=THRESHOLD, reset=reset_code(nc),
                               clock=self.clock, dtype=float64(text), codeobj_class=cls, namespace=namespace,
                               name="spikeport_pop%d" % k)
            theta = float(pop["threshold"])
            # strict threshold: v > theta is v >= the next float64 above theta (Brian2 runs float64): exact
            g.theta = float(np.nextafter(theta, np.inf)) if pop.get("strict_threshold") else theta
            g.amount = float(pop.get("reset_amount", theta))
            if fp is None:
                g.lam = float(pop["decay"])
                g.alpha = 0.0 if pop["syn_decay"] is None else float(pop["syn_decay"])
            else:
                scale, ints = 2.0 ** fp["decay_bits"], fp["decay_int"][name]
                g.lam = ints["decay"] / scale
                g.alpha = 0.0 if pop["syn_decay"] is None else ints["syn_decay"] / scale
            g.keep = 1.0 if pop["reset"] == "subtract" else 0.0
            g.refr = int(pop["refractory_steps"])
            g.tend = (steps - 0.5) * self.dt
            for i, d in enumerate(self.analog[name]):
                setattr(g, "ta%d" % i, (d - 0.5) * self.dt)
            for i, d in enumerate(self.cuts[name]):
                setattr(g, "tc%d" % i, (steps - d - 0.5) * self.dt)
            g.b = np.tile(np.asarray(data[pop["key"] + "_bias"], np.float64), batch)
            upd = g.run_regularly(update_code(pop, fp), when=SLOT, order=4 * k, name="spikeport_update%d" % k)
            g.thresholder["spike"].when, g.thresholder["spike"].order = SLOT, 4 * k + 1
            g.resetter["spike"].when, g.resetter["spike"].order = SLOT, 4 * k + 2
            self.groups[name] = g
            self.v_init[name] = np.tile(np.asarray(data[pop["key"] + "_v_init"], np.float64), batch)
            objects += [g, upd]
        self.synapse_count = 0
        copies = np.arange(batch, dtype=np.int64)[:, None]
        for q in projs:
            pre, post, w = (np.asarray(data[q["key"] + s]) for s in ("_pre", "_post", "_weight"))
            source = self.input_group if q["pre"] == inp["name"] else self.groups[q["pre"]]
            s = b2.Synapses(source, self.groups[q["post"]], model="w : 1 (constant)", on_pre="J_post += w",
                            delay=q["delay_steps"] * self.dt if q["delay_steps"] else None, clock=self.clock,
                            dtype={"w": np.float64}, codeobj_class=cls, name="spikeport_syn" + q["key"][4:])
            if len(pre):
                s.connect(i=(pre.astype(np.int64)[None, :] + copies * self.sizes[q["pre"]]).ravel(),
                          j=(post.astype(np.int64)[None, :] + copies * self.sizes[q["post"]]).ravel())
                s.w = np.tile(w.astype(np.float64), batch)
            s.pre.when, s.pre.order = SLOT, 4 * rank[q["pre"]] + 3
            self.synapse_count += len(pre) * batch
            objects.append(s)
        objects.append(b2.NetworkOperation(self._tick, clock=self.clock, when="start", name="spikeport_segments"))
        self.net = b2.Network(*objects, name="spikeport_network")

    # ------------------------------------------------------------------ segments

    def _tick(self):
        """Called before every step: at a segment boundary, finish the last segment and load the next."""
        k, self._step = self._step, self._step + 1
        if k % self.length:
            return
        seg = k // self.length
        if seg:
            self._finish(seg - 1)
        if seg < self._segments:
            self._load(seg)

    def _load(self, seg):
        """Reset every neuron and load the analog currents of segment ``seg``'s samples."""
        rows = slice(seg * self.batch, (seg + 1) * self.batch)
        t0 = float(self.net.t_)  # this step's t, as the generated code sees it
        for name, g in self.groups.items():
            g.variables["v"].set_value(self.v_init[name])
            for var in ("isyn", "J", "rr", "n_spk") + tuple("ec%d" % i for i in range(len(self.cuts[name]))):
                g.variables[var].set_value(0)
            g.t0 = t0 * self.b2.second
            given = self._currents.get(name, ())
            for i in range(len(self.analog[name])):
                full = np.zeros((self.batch, self.sizes[name]))
                if i < len(given):
                    part = np.asarray(given[i][rows], np.float64)
                    full[:len(part)] = part.reshape(len(part), -1)
                g.variables["Ia%d" % i].set_value(full.reshape(-1))

    def _finish(self, seg):
        """Read the spike counts of segment ``seg``."""
        n = min(self.batch, self._n - seg * self.batch)
        for name, g in self.groups.items():
            self._counts[name].append(np.asarray(g.variables["n_spk"].get_value()).reshape(self.batch, -1)[:n].copy())
            for i, d in enumerate(self.cuts[name]):
                self._early[name, d].append(
                    np.asarray(g.variables["ec%d" % i].get_value()).reshape(self.batch, -1)[:n].copy())
        if self._progress is not None:
            self._progress.update(n)

    def run(self, n, currents, trains, checkpoints, record_trains=(), progress=None):
        """Simulate ``n`` samples in segments of ``batch`` side by side, in one Brian2 run.

        currents: {population: [(n, size) per analog delay]}; trains: the spiking input's
        (n, steps, input size) bool, or None. Returns (counts {population: (n, size)}, early
        counts {(population, d): (n, size)} (spikes of the first steps - d steps), spike trains
        {population: (n, steps, size) bool} of the output and of ``record_trains``, the output's
        membrane after each checkpoint (n, len(checkpoints), size)).
        """
        b2, b, steps, length = self.b2, self.batch, self.steps, self.length
        self._n, self._currents, self._segments, self._step, self._progress = n, currents, -(-n // b), 0, progress
        self._counts = {name: [] for name in self.groups}
        self._early = {(name, d): [] for name, ds in self.cuts.items() for d in ds}
        start = int(round(float(self.net.t_) / float(self.dt)))  # the step this run starts at
        if self.spiking_input:
            sample, step, neuron = np.nonzero(np.asarray(trains)[:n, :steps])
            when = start + (sample // b) * length + step
            index = (sample % b) * self.input["size"] + neuron
            order = np.lexsort((index, when))
            self.input_group.set_spikes(index[order], when[order] * self.dt, sorted=True)
        out_name = self.meta["output"]
        monitors = {name: b2.SpikeMonitor(self.groups[name], record=True, when="end", codeobj_class=self.cls,
                                          name=self.groups[name].name.replace("pop", "trains"))
                    for name in dict.fromkeys([out_name, *record_trains])}
        v = b2.StateMonitor(self.groups[out_name], "v", record=True, when="end", codeobj_class=self.cls,
                            name="spikeport_out_v")
        self.net.add(*monitors.values(), v)
        try:
            self.net.run(self._segments * length * self.dt, namespace={})
            self._finish(self._segments - 1)
        finally:
            self.net.remove(*monitors.values(), v)
        trains_out = {}
        for name, mon in monitors.items():
            size = self.sizes[name]
            full = np.zeros((self._segments, b, length, size), dtype=bool)
            idx = np.asarray(mon.i[:])
            when = np.rint(np.asarray(mon.t_[:]) / float(self.dt)).astype(np.int64) - start
            full[when // length, idx // size, when % length, idx % size] = True
            trains_out[name] = full.reshape(-1, length, size)[:n, :steps]
        size = self.sizes[out_name]
        # v[neuron, step] over the whole run -> (segment, step, copy, neuron) -> samples
        vs = np.asarray(v.v[:]).reshape(b, size, self._segments, length).transpose(2, 0, 3, 1)
        out_v = vs.reshape(-1, length, size)[:n][:, [c - 1 for c in checkpoints]]
        counts = {name: np.concatenate(c) for name, c in self._counts.items()}
        early = {key: np.concatenate(c) for key, c in self._early.items()}
        return counts, early, trains_out, out_v


def simulate(lowered, samples, inputs, checkpoints, record_trains=(), progress=None, run_bytes=RUN_BYTES):
    """Run ``samples`` samples through ``lowered``, as many per Brian2 run as ``run_bytes`` of
    recordings allow.

    inputs(first, n) -> (currents, trains) of samples first .. first + n - 1 (see
    :meth:`Lowered.run`). Returns {"counts", "early", "trains", "output_v", "inputs"} over all
    samples, as :meth:`Lowered.run` returns them ("inputs": the trains, or None).
    """
    meta, batch, steps = lowered.meta, lowered.batch, lowered.steps
    out = lowered.sizes[meta["output"]]
    per_sample = lowered.length * (out * 8 + sum(lowered.sizes[n] for n in {*record_trains, meta["output"]}))
    per_sample += steps * lowered.input["size"] if lowered.spiking_input else 0
    per_run = batch * max(1, run_bytes // (batch * per_sample))
    parts, trains = [], []
    for first in range(0, samples, per_run):
        n = min(per_run, samples - first)
        currents, tr = inputs(first, n)
        parts.append(lowered.run(n, currents, tr, checkpoints, record_trains, progress))
        trains.append(tr)
    return {"counts": {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]},
            "early": {k: np.concatenate([p[1][k] for p in parts]) for k in parts[0][1]},
            "trains": {k: np.concatenate([p[2][k] for p in parts]) for k in parts[0][2]},
            "output_v": np.concatenate([p[3] for p in parts]),
            "inputs": np.concatenate([np.asarray(t)[:, :steps] for t in trains]) if lowered.spiking_input else None}


# ---------------------------------------------------------------------------- run_brian2.py

class UsageError(Exception):
    """A problem with the options: one line on stderr, exit status 2."""


def main(args, meta, data):
    """What ``run_brian2.py`` does once it has read its files (``meta``, ``data``: the description
    with the stored samples): run the samples with the options ``args`` (samples, steps, out,
    batch, codegen), write predictions.json and print a summary. Returns the exit status."""
    import os
    import time

    from . import write_json
    from .readout import predict

    stored = meta["samples"]
    if not stored:
        raise UsageError("no samples are stored with this script (spikeport wrote it without input samples)")
    samples = stored if args.samples is None else args.samples
    if not 1 <= samples <= stored:
        raise UsageError("--samples must be in [1, %d] (the samples stored), got %d" % (stored, samples))
    steps = meta["steps"] if args.steps is None else args.steps
    if steps < 1:
        raise UsageError("--steps must be at least 1, got %d" % steps)
    spiking = meta["input"]["encoding"] != "analog"
    if spiking and steps > meta["steps"]:
        raise UsageError("--steps: the input trains are stored for %d steps, got %d" % (meta["steps"], steps))
    if args.batch is not None and args.batch < 1:
        raise UsageError("--batch must be at least 1, got %d" % args.batch)
    batch = min(args.batch or default_batch(meta, samples, steps), samples)
    try:
        import brian2 as b2
    except ImportError as exc:
        raise UsageError("this script needs Brian2 (pip install brian2): %s" % exc)
    b2.prefs.codegen.target = args.codegen
    b2.prefs.core.default_float_dtype = np.float64
    t0 = time.perf_counter()
    lowered = Lowered(b2, meta, data, batch, steps)
    t1 = time.perf_counter()

    def inputs(first, n):
        currents = {p["name"]: [data["%s_analog%d" % (p["key"], k)][first:first + n]
                                for k in range(len(p["analog_delays"]))] for p in meta["populations"]}
        return currents, data["input_trains"][first:first + n, :steps] if spiking else None

    res = simulate(lowered, samples, inputs, [steps])
    t2 = time.perf_counter()
    counts = res["counts"][meta["output"]].astype(np.int64)
    predicted = predict(counts, res["output_v"][:, -1])
    labels = data["labels"][:samples] if meta["labels"] else None
    result = {"samples": samples, "steps": steps, "dt_s": meta["dt_s"], "output": meta["output"],
              "codegen": args.codegen, "batch": batch,
              "seconds": {"build": round(t1 - t0, 3), "simulate": round(t2 - t1, 3)},
              "population_spikes": {p["name"]: res["counts"][p["name"]].sum(axis=1).astype(np.int64).tolist()
                                    for p in meta["populations"]},
              "predictions": [{"sample": i, "predicted": int(predicted[i]), "output_counts": counts[i].tolist()}
                              for i in range(samples)]}
    if labels is not None:
        for i, rec in enumerate(result["predictions"]):
            rec["label"] = int(labels[i])
        result["accuracy"] = float((predicted == labels).mean())
    out = os.path.abspath(args.out)
    write_json(out, result, UsageError)
    print("brian2 (%s): %d samples x %d steps, %d side by side (%d synapses): build %.2f s, simulate %.2f s"
          % (args.codegen, samples, steps, batch, lowered.synapse_count, t1 - t0, t2 - t1))
    if labels is not None:
        print("accuracy: %.4f" % result["accuracy"])
    print("predictions written to %s" % out)
    return 0
