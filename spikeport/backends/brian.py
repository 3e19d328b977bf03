"""The Brian2 backend: the graph lowered to Brian2 objects and run by Brian2's runtime.

Lowering
--------
- Every spiking population is one ``NeuronGroup`` holding ``batch`` side-by-side copies
  of the population (copy b, neuron j is Brian2 neuron ``b * size + j``), so several
  samples are simulated at once; every projection is one ``Synapses`` object whose
  synapses are ``Projection.materialize`` (exact for conv/pool/flatten chains), repeated
  for each copy. ``on_pre`` adds the weight to an input accumulator ``J`` of the post
  neuron.
- The neuron is the graph's discrete map, not an ODE: the group has no differential
  equations, and a ``run_regularly`` operation executed once per step applies
  ``spikeport.ir.neurons`` literally (exact by construction)::

      act  = (rr == 0)                                  not refractory
      isyn = alpha * isyn + (J + sum of analog currents)  alpha = 0 without syn_decay
      v    = act * (lam * v + (isyn + b)) + (1 - act) * v   lam = 1 for IF
      rr   = rr - (1 - act);  J = 0
      spike: act and v >= theta;  reset: v = keep * (v - amount) (keep 1: subtract,
      0: to zero; amount = reset_amount or theta), rr = refractory_steps

  ``strict_threshold`` (v > theta) is v >= the next float64 above theta (exact in
  float64); ``reset_amount`` is the ``amount`` subtracted. Several spikes per step
  (``max_spikes_per_step`` > 1) are refused: a Brian2 threshold emits one event.

  The refractory period is an integer step counter, not Brian2's ``refractory`` (whose
  time comparisons would make it a matter of rounding).
- Same-step delivery: Brian2's default schedule evaluates all thresholds before any
  synaptic propagation, which would add one step per layer. Here every update,
  threshold, reset and synaptic pathway runs in one schedule slot, ordered by the
  populations' topological order (all projections): population k's update, threshold
  and reset, then the pathways of its outgoing projections, then population k + 1.
  A zero-delay projection thus delivers in the step its pre population fired (exact,
  nothing to undo); a projection with ``delay_steps = d >= 1`` is a Brian2 synaptic
  delay of d * dt, delivered d steps later, before the post population's update.
- Input: analog input is a per-sample constant current ``proj.apply_numpy(x)`` stored in
  the post group and added every step from step ``delay_steps`` on (exact). Poisson and
  regular input is a ``SpikeGeneratorGroup`` carrying exactly the reference executor's
  trains (``common.input_trains``, same seed), delivered through synapses like any
  other projection.
- The clock's dt is the network's dt_s. All state is float64 (whatever
  ``prefs.core.default_float_dtype`` says); the reference executor computes in float32,
  so the two differ where their roundings fall on either side of a threshold. Measured:
  none on the test networks and a trained digits cnn; on a LeNet (28x28 digits, 16
  samples, 100 steps, analog) 8 of 3.0 million spikes, all from one conv1 neuron whose
  input current is 0.039999990 exactly and 0.040000003 in float32 (Brian2 fires at the
  steps float64 arithmetic gives, 25/50/75; the reference at 24/49/74/99), the
  predictions identical. ``Activity.notes`` says so.
- Samples: the network is built once with ``batch`` copies and all samples run in one
  Brian2 ``run`` (one per 256 MB of recorded output), cut in segments of ``steps + gap``
  steps, one batch of samples each. A ``NetworkOperation`` at each segment's first step
  resets every neuron (v to v_init, synaptic current, refractory counter) and loads the
  batch's analog currents; spiking input is one ``SpikeGeneratorGroup`` schedule for all
  segments. ``gap`` is the longest delay below ``steps``: during it no neuron may fire
  (``t - t0 < tend`` in the update), so every spike still in a delay queue is delivered
  and consumed before the next segment starts. A projection with ``delay_steps >=
  steps`` delivers nothing within a run and is left out. Measured (conv_network,
  64 samples x 50 steps, numpy): one Brian2 ``run`` per sample 11.4 s (each ``run`` costs
  about 0.15 s of set-up, half of it Brian2's ``gc.collect``), one run of 64 one-sample
  segments 1.15 s, one run of 64 copies side by side 0.30 s.
- Synaptic operations of a delayed projection count the pre spikes of the first
  ``steps - d`` steps (counters in the reset), as the reference executor does.
- Code generation: ``codegen="cython"`` (default) or ``"numpy"``. Measured on a LeNet
  (28x28 digits, 7.0 million synapses, 8 samples x 100 steps, one copy, 2 loaded cores):
  simulate 2.9 s cython against 8.7 to 11.9 s numpy with analog input, 3.5 s against 8.4
  to 13.8 s with regular input; so about 0.4 s a sample, some 7 minutes for 1,000 samples,
  against 20 or more. Cython compiles each new object on first use (about a minute for
  a first network; objects are named after the population's rank, so a deeper network
  compiles its extra ones), then Brian2's cache serves it. Small networks and few
  samples run as fast on numpy, without a compiler (the tests use it).
- Wall time is split into build and simulate in ``Activity.notes``.

Nothing global is changed: objects have explicit, deterministic names (so Brian2's
cython cache is reused across networks), live in a private ``brian2.Network`` with its
own ``Clock``, and choose their code generation target through ``codeobj_class``
rather than ``prefs``. Brian2's runtime device is required (standalone devices cannot
run the per-segment Python operation).
"""
from __future__ import annotations

import time

import brian2 as b2
import numpy as np
from brian2.devices.device import RuntimeDevice

from ..errors import SpikeportError
from . import common

NAME = "brian2"
CODEGEN_TARGETS = ("numpy", "cython")
DEFAULT_CODEGEN = "cython"
SYNAPSE_BUDGET = 4_000_000  # synapses held at once over all copies (Brian2 keeps ~40 bytes each)
MAX_BATCH = 64
RUN_BYTES = 256 << 20  # recorded output membrane and input trains held per Brian2 run

_SLOT = "groups"  # the schedule slot holding all neuron updates, thresholds, resets and pathways


def _model(analog: int, cuts: int) -> str:
    """Variables of a population's NeuronGroup: the state (v, isyn, J, rr, act), per-neuron bias, the
    neuron's constants, the segment's start t0 and end tend, ``analog`` constant input currents Ia*
    (each from step ta* of the segment on) and ``cuts`` spike counters ec* of steps before tc*."""
    lines = ["v : 1", "isyn : 1", "J : 1", "act : integer", "rr : integer", "n_spk : integer", "b : 1 (constant)",
             "theta : 1 (shared, constant)", "lam : 1 (shared, constant)", "alpha : 1 (shared, constant)",
             "keep : 1 (shared, constant)", "amount : 1 (shared, constant)", "refr : integer (shared, constant)", "t0 : second (shared)",
             "tend : second (shared, constant)"]
    lines += [f"Ia{k} : 1\nta{k} : second (shared, constant)" for k in range(analog)]
    lines += [f"ec{k} : integer\ntc{k} : second (shared, constant)" for k in range(cuts)]
    return "\n".join(lines)


def _float64(model: str) -> dict:
    """float64 for every real variable, whatever ``prefs.core.default_float_dtype`` says."""
    names = [line.split(":")[0].strip() for line in model.splitlines()]
    return {n: np.float64 for n, line in zip(names, model.splitlines()) if "integer" not in line}


def _update(analog: int) -> str:
    """The graph's neuron map for one step (spikeport.ir.neurons), run before the threshold."""
    drive = " + ".join(["J"] + [f"Ia{k} * int(t - t0 >= ta{k})" for k in range(analog)])
    return "\n".join(["act = int(rr == 0) * int(t - t0 < tend)",
                      f"isyn = alpha * isyn + ({drive})",
                      "v = act * (lam * v + (isyn + b)) + (1 - act) * v",
                      "rr = rr - (1 - act)",
                      "J = 0"])


THRESHOLD = "act == 1 and v >= theta"


def _reset(cuts: int) -> str:
    return "\n".join(["v = keep * (v - amount)", "rr = refr", "n_spk += 1"]
                     + [f"ec{k} += int(t - t0 < tc{k})" for k in range(cuts)])


def _codeobj_class(codegen: str):
    if codegen not in CODEGEN_TARGETS:
        raise SpikeportError(f"brian2: unknown codegen {codegen!r} (known: {', '.join(CODEGEN_TARGETS)})")
    if codegen == "numpy":
        from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
        return NumpyCodeObject
    try:
        from brian2.codegen.runtime.cython_rt import CythonCodeObject
        import Cython  # noqa: F401
    except ImportError as exc:
        raise SpikeportError(f"brian2: codegen 'cython' needs Cython and a C compiler ({exc}); "
                             "use codegen='numpy'") from None
    return CythonCodeObject


class _Lowered:
    """The Brian2 objects of one network with ``batch`` copies, and the segments that run samples through it."""

    def __init__(self, network, batch: int, steps: int, codegen: str):
        cls = _codeobj_class(codegen)
        self.network, self.batch, self.steps, self.codegen = network, batch, steps, codegen
        self.cls = cls
        self.dt = network.dt_s * b2.second
        self.clock = b2.Clock(dt=self.dt, name="spikeport_clock")
        order = network.order(all_projections=True)
        rank = {p.name: k for k, p in enumerate(order)}
        inp = self.input = network.population(network.input)
        self.spiking_input = inp.encoding.kind != "analog"
        spiking_pre = [pr for pr in network.projections
                       if (self.spiking_input or pr.pre != inp.name) and pr.delay_steps < steps]
        # steps after a segment during which no neuron may fire, so that no spike is still in a delay queue
        # when the next segment starts
        self.gap = max([pr.delay_steps for pr in spiking_pre] + [0])
        self.length = steps + self.gap
        objects, self.groups, self.analog, self.cuts = [], {}, {}, {}
        self.input_group = None
        if self.spiking_input:
            self.input_group = b2.SpikeGeneratorGroup(batch * inp.size, np.zeros(0, np.int64), np.zeros(0) * b2.second,
                                                      clock=self.clock, when=_SLOT, order=4 * rank[inp.name] + 1,
                                                      sorted=True, codeobj_class=cls, name="spikeport_input")
            objects.append(self.input_group)
        for pop in order:
            if pop.is_input:
                continue
            k = rank[pop.name]
            # analog input projections into pop, merged by delay; the first steps - d spikes of pop, for
            # the synaptic operations of its outgoing projections of delay d
            self.analog[pop.name] = sorted({pr.delay_steps for pr in network.projections_into(pop.name)
                                            if pr.pre == inp.name and not self.spiking_input})
            self.cuts[pop.name] = sorted({pr.delay_steps for pr in spiking_pre
                                          if pr.pre == pop.name and 0 < pr.delay_steps < steps})
            na, nc = len(self.analog[pop.name]), len(self.cuts[pop.name])
            g = b2.NeuronGroup(batch * pop.size, _model(na, nc), threshold=THRESHOLD, reset=_reset(nc),
                               clock=self.clock, dtype=_float64(_model(na, nc)), codeobj_class=cls,
                               name=f"spikeport_pop{k}")
            nm = pop.neuron
            # strict_threshold: v > theta is v >= the next float64 above theta (Brian2 runs float64): exact
            g.theta = float(np.nextafter(nm.threshold, np.inf)) if nm.strict_threshold else float(nm.threshold)
            g.amount = nm.subtracted
            g.lam = float(nm.decay)
            g.alpha = 0.0 if nm.syn_decay is None else float(nm.syn_decay)
            g.keep = 1.0 if nm.reset == "subtract" else 0.0
            g.refr = int(nm.refractory_steps)
            g.tend = (steps - 0.5) * self.dt
            for i, d in enumerate(self.analog[pop.name]):
                setattr(g, f"ta{i}", (d - 0.5) * self.dt)
            for i, d in enumerate(self.cuts[pop.name]):
                setattr(g, f"tc{i}", (steps - d - 0.5) * self.dt)
            if pop.bias is not None:
                g.b = np.tile(pop.bias.astype(np.float64).reshape(-1), batch)
            upd = g.run_regularly(_update(na), when=_SLOT, order=4 * k, name=f"spikeport_update{k}")
            g.thresholder["spike"].when, g.thresholder["spike"].order = _SLOT, 4 * k + 1
            g.resetter["spike"].when, g.resetter["spike"].order = _SLOT, 4 * k + 2
            self.groups[pop.name] = g
            objects += [g, upd]
        self.v_init = {name: np.tile(network.population(name).initial_membrane().reshape(-1), batch)
                       for name in self.groups}
        self.synapse_count = 0
        for m, proj in enumerate(network.projections):
            pre = network.population(proj.pre)
            if pre.is_input and not self.spiking_input:
                continue  # an analog input is a current, applied with apply_numpy per segment
            if proj not in spiking_pre:
                continue  # delivers nothing within the run
            post = network.population(proj.post)
            syn = proj.materialize(pre.shape)
            source = self.input_group if pre.is_input else self.groups[pre.name]
            s = b2.Synapses(source, self.groups[post.name], model="w : 1 (constant)", on_pre="J_post += w",
                            delay=proj.delay_steps * self.dt if proj.delay_steps else None, clock=self.clock,
                            dtype={"w": np.float64}, codeobj_class=cls, name=f"spikeport_syn{m}")
            copies = np.arange(batch, dtype=np.int64)[:, None]
            if len(syn):
                s.connect(i=(syn.pre[None, :] + copies * pre.size).ravel(),
                          j=(syn.post[None, :] + copies * post.size).ravel())
                s.w = np.tile(syn.weight, batch)
            s.pre.when, s.pre.order = _SLOT, 4 * rank[pre.name] + 3
            self.synapse_count += len(syn) * batch
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

    def _load(self, seg: int):
        """Reset every neuron and load the analog currents of segment ``seg``'s samples."""
        x = self._x[seg * self.batch:(seg + 1) * self.batch]
        t0 = float(self.net.t_)  # this step's t, as the generated code sees it
        for name, g in self.groups.items():
            pop = self.network.population(name)
            g.variables["v"].set_value(self.v_init[name])
            for var in ("isyn", "J", "rr", "n_spk") + tuple(f"ec{i}" for i in range(len(self.cuts[name]))):
                g.variables[var].set_value(0)
            g.t0 = t0 * b2.second
            for i, d in enumerate(self.analog[name]):
                current = np.zeros((self.batch, pop.size))
                for pr in self.network.projections_into(name):
                    if pr.pre == self.input.name and pr.delay_steps == d:
                        current[:len(x)] += pr.apply_numpy(
                            x.reshape((len(x),) + self.input.shape).astype(np.float64)).reshape(len(x), -1)
                g.variables[f"Ia{i}"].set_value(current.reshape(-1))

    def _finish(self, seg: int):
        """Read the spike counts of segment ``seg``."""
        n = min(self.batch, len(self._x) - seg * self.batch)
        for name, g in self.groups.items():
            self._counts[name].append(np.asarray(g.variables["n_spk"].get_value()).reshape(self.batch, -1)[:n].copy())
            for i, d in enumerate(self.cuts[name]):
                self._early[name, d].append(
                    np.asarray(g.variables[f"ec{i}"].get_value()).reshape(self.batch, -1)[:n].copy())
        if self._progress is not None:
            self._progress.update(n)

    def run(self, x: np.ndarray, sample0: int, seed: int, checkpoints: list, record_trains=(), progress=None):
        """Simulate samples ``x`` (n, input size) in segments of ``batch`` side by side, in one Brian2 run.

        Returns (counts {population: (n, size)}, early counts {(population, d): (n, size)} (spikes of the
        first steps - d steps), spike trains {population: (n, steps, size) bool} of the output and of
        ``record_trains``, output v after each checkpoint (n, len(checkpoints), classes), input trains
        (n, steps, input size) or None).
        """
        network, b, steps, length = self.network, self.batch, self.steps, self.length
        n = len(x)
        self._x, self._segments, self._step, self._progress = x, -(-n // b), 0, progress
        self._counts = {name: [] for name in self.groups}
        self._early = {(name, d): [] for name, ds in self.cuts.items() for d in ds}
        start = int(round(float(self.net.t_) / float(self.dt)))  # the step this run starts at
        trains = None
        if self.spiking_input:
            trains = common.input_trains(network, x, steps, seed=seed, sample0=sample0)
            sample, step, neuron = np.nonzero(trains)
            when = start + (sample // b) * length + step
            index = (sample % b) * self.input.size + neuron
            order = np.lexsort((index, when))
            self.input_group.set_spikes(index[order], when[order] * self.dt, sorted=True)
        out = self.groups[network.output]
        monitors = {name: b2.SpikeMonitor(self.groups[name], record=True, when="end", codeobj_class=self.cls,
                                          name=self.groups[name].name.replace("pop", "trains"))
                    for name in dict.fromkeys([network.output, *record_trains])}
        v = b2.StateMonitor(out, "v", record=True, when="end", codeobj_class=self.cls, name="spikeport_out_v")
        self.net.add(*monitors.values(), v)
        try:
            self.net.run(self._segments * length * self.dt, namespace={})
            self._finish(self._segments - 1)
        finally:
            self.net.remove(*monitors.values(), v)
        trains_out = {}
        for name, mon in monitors.items():
            size = network.population(name).size
            full = np.zeros((self._segments, b, length, size), dtype=bool)
            idx = np.asarray(mon.i[:])
            when = np.rint(np.asarray(mon.t_[:]) / network.dt_s).astype(np.int64) - start
            full[when // length, idx // size, when % length, idx % size] = True
            trains_out[name] = full.reshape(-1, length, size)[:n, :steps]
        size = network.population(network.output).size
        # v[neuron, step] over the whole run -> (segment, step, copy, neuron) -> samples
        vs = np.asarray(v.v[:]).reshape(b, size, self._segments, length).transpose(2, 0, 3, 1)
        out_v = vs.reshape(-1, length, size)[:n][:, [c - 1 for c in checkpoints]]
        counts = {name: np.concatenate(c) for name, c in self._counts.items()}
        early = {key: np.concatenate(c) for key, c in self._early.items()}
        return counts, early, trains_out, out_v, trains


def _batch_size(network, samples: int) -> int:
    spiking_input = network.population(network.input).encoding.kind != "analog"
    per_sample = 0
    for proj in network.projections:
        pre = network.population(proj.pre)
        if pre.is_input and not spiking_input:
            continue
        per_sample += int(proj.synapses_per_pre(pre.shape).sum())
    return int(max(1, min(samples, MAX_BATCH, SYNAPSE_BUDGET // max(per_sample, 1))))


def run(network, x, steps: int, *, checkpoints=None, seed: int = 0, record_counts: bool = False, progress=None,
        record_trains=(), codegen: str = DEFAULT_CODEGEN, batch_size: int | None = None):
    """Simulate ``network`` on samples ``x`` for ``steps`` steps with Brian2.

    Parameters
    ----------
    x, steps, checkpoints, seed, record_counts, record_trains, progress : as
        :func:`spikeport.backends.reference.run` (Poisson input uses the reference's trains for
        ``seed``, so both see the same spikes)
    codegen : Brian2's code generation target, "cython" (the default: about 3x faster on a LeNet;
        compiled on first use, about a minute, then cached in Brian2's cache directory) or "numpy"
        (no compiler; faster for small networks and few samples, as in the tests)
    batch_size : samples simulated side by side as copies of the network (default: as many as
        fit in about 4 million synapses, at most 64)

    Exact: the neuron map (IF/LIF, both resets, refractory steps, bias, per-neuron v_init,
    synaptic current), same-step zero-delay delivery, delays, the three encodings. The
    arithmetic is float64 against the reference executor's float32: see the module docstring.
    """
    t_start = time.perf_counter()
    common.require_simulable(network, NAME, supports=("reset_amount", "strict_threshold"))
    if not isinstance(b2.get_device(), RuntimeDevice):
        raise SpikeportError(f"the brian2 backend needs Brian2's runtime device, not {type(b2.get_device()).__name__} "
                             "(call brian2.set_device('runtime'))")
    record_trains = list(record_trains)
    x, steps, checkpoints = common.check_run(network, x, steps, checkpoints, record_trains)
    samples = len(x)
    if batch_size is None:
        batch_size = _batch_size(network, samples)
    elif int(batch_size) < 1:
        raise SpikeportError(f"batch_size must be at least 1, got {batch_size}")
    batch = min(int(batch_size), samples)
    lowered = _Lowered(network, batch, steps, codegen)
    t_built = time.perf_counter()
    out = network.population(network.output)
    # samples per Brian2 run: bounded by the recorded output membrane and spike trains, and the input trains
    per_sample = lowered.length * (out.size * 8 + sum(network.population(n).size for n in {*record_trains, out.name}))
    per_sample += steps * lowered.input.size if lowered.spiking_input else 0
    per_run = batch * max(1, RUN_BYTES // (batch * per_sample))
    parts = []
    for s0 in range(0, samples, per_run):
        parts.append(lowered.run(x[s0:s0 + per_run], s0, seed, checkpoints, record_trains, progress))
    t_end = time.perf_counter()
    counts = {name: np.concatenate([p[0][name] for p in parts]).reshape((samples,) + network.population(name).shape)
              for name in lowered.groups}
    early = {key: np.concatenate([p[1][key] for p in parts]) for key in parts[0][1]}
    inputs = np.concatenate([p[4] for p in parts]) if lowered.spiking_input else None
    side = "one sample at a time" if batch == 1 else f"{batch} copies of the network side by side"
    notes = [f"brian2 ({codegen}): build {t_built - t_start:.2f} s ({lowered.synapse_count:,} synapses: {side}), "
             f"simulate {t_end - t_built:.2f} s",
             "brian2 computes in float64, the reference executor in float32: a spike can differ where a membrane "
             "lands within rounding of the threshold"]
    trains = {name: np.concatenate([p[2][name] for p in parts]) for name in parts[0][2]}
    act = common.activity(network, NAME, x, steps, checkpoints, counts, trains[network.output], t_end - t_start,
                          output_v=np.concatenate([p[3] for p in parts]), inputs=inputs, notes=notes,
                          delivered=early, record_counts=record_counts)
    act.spike_trains = {name: trains[name].reshape((samples, steps) + network.population(name).shape)
                        for name in record_trains}
    return act

