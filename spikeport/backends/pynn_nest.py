"""The pynn-nest backend: the graph on NEST through PyNN (``pyNN.nest``).

The network is lowered by :mod:`spikeport.backends.pynn_lowering` (read it first: time,
units, copies, signs, lags) with NEST's native cells (:class:`.nest_cells.NestCells`), built as PyNN
populations, and run by driving the NEST kernel directly: samples are simulated
``copies`` at a time side by side (independent replicas of the network), batch after
batch in one simulation, each population's membrane and constant current set at the
start of its own window and held silent (far below threshold) outside it. Nothing is
reset by ``sim.reset()``: pyNN.nest's reset flushes by simulating on (neurons keep
spiking, spikes in flight arrive after it), and is slower (bench/RESULTS.md).

What is exact (spike for spike against the reference executor, every neuron's count,
the predictions at every checkpoint with the membrane tie rule, first spikes and
synaptic operations; tests/test_conformance.py):

- IF and LIF neurons, reset to zero (``iaf_psc_delta``, exact integration with tau_m =
  -1/ln(decay) steps), refractory steps (NEST holds v at V_reset and drops input, as the
  graph does), per-neuron bias and v_init, analog input (a constant current ``I_e`` per
  sample from the population's first step, or from step d for a projection with delay
  d), poisson and regular input (the reference executor's own trains, from
  ``spike_generator`` devices). NEST has no IF cell: IF neurons get tau_m = 2**44 steps, a
  decay of 1 - 5.7e-14 per step (named in the notes; far below the reference's float32
  rounding). NEST's own propagators are measured once per run (:meth:`.nest_cells.NestCells.finalize`)
  and currents and weights scaled by them, so one step adds the graph's current to one
  rounding (NEST 3.10 computes iaf_psc_delta's current factor as tau (1 - exp(-1/tau)),
  which is 0 for tau = 1e30).
- Zero-delay projections: NEST's minimum delay is one step; every population runs
  ``lag`` steps behind the graph (the lowering pads delays so that every path, residual
  ones included, arrives aligned) and its spikes are read in its own window, so the
  counts are those of same-step delivery. Delays >= 1 are delivered exactly.
- A synaptic current (``syn_decay``): ``iaf_psc_exp``. NEST adds an arriving spike to
  the current after the membrane update of its step and integrates the current into the
  membrane exactly with a propagator P21; with weights scaled by 1/P21 and one more step
  of lag this is the graph's map v[t] = lam v[t-1] + i[t] + b. The analog input into
  such a population goes through the synapse as weighted spikes (one per step from a
  ``spike_generator`` with ``spike_weights``), as the graph filters it. NEST cannot set
  a synaptic current: between batches it is left to decay below 2**-54 of its value
  (named in the notes; one batch when all samples fit side by side).
- Reset by subtraction: NEST's iaf models reset to V_reset; the e-prop model
  ``eprop_iaf`` (NEST >= 3.7) subtracts the threshold from v at a spike, the graph's rule,
  and is used for it (it reads its constant current one step late: the schedule sets it
  a step early; its per-step e-prop history bounds how many samples one kernel runs).

Tested on the shared digits conv + dense network (IF, reset by subtraction, analog input)
and small networks of every neuron variant above, several batches: every neuron's count
equal to the reference's; timings in bench/RESULTS.md.

What is not exact (named in ``Activity.notes`` when it applies):

- reset by subtraction *and* a synaptic current: no NEST cell has both; lowered to reset
  to zero (NEST then equals the reference's reset-to-zero network spike for spike);
- reset by subtraction with refractory steps: eprop_iaf keeps integrating during the
  refractory steps (the graph holds v);
- arithmetic: NEST computes in double precision, the reference executor in float32; a
  neuron whose membrane lands within float32 rounding of its threshold may differ (not
  seen in the tests).

Options: ``copies`` (samples simulated side by side; default: about 2,048 neurons' worth,
see :func:`choose_copies`), ``connect`` ("nest": ``nest.Connect`` with arrays, about 20x
faster to build; "pynn": PyNN ``Projection`` objects with ``FromListConnector``, the shared
lowering's own path; the same synapses, the same spikes), ``threads`` (NEST threads,
default 1).
"""
from __future__ import annotations

import logging
import math
import os
import time
import warnings

import numpy as np

os.environ.setdefault("PYNEST_QUIET", "1")  # no banner on import

with warnings.catch_warnings():  # pyNN.nest warns about nest-config and NEST's old verbosity call on import
    warnings.simplefilter("ignore")
    import nest  # noqa: E402  (the simulator: an ImportError here becomes the registry's install hint)
    import pyNN.nest as sim  # noqa: E402

from ..errors import SpikeportError  # noqa: E402
from ..ir import Network  # noqa: E402
from . import common  # noqa: E402
from .activity import Activity  # noqa: E402
try:  # the kernel interface under nest.NodeCollection.set, for setting many nodes fast
    from nest.lib.hl_api_types import nestkernel as _nestkernel  # noqa: E402
except ImportError:  # pragma: no cover - another NEST layout
    _nestkernel = None

from ..runtimes import pynn_engine as engine  # noqa: E402
from .nest_cells import NestCells  # noqa: E402
from .pynn_lowering import STEP_MS, Lowering, create_populations, create_projections  # noqa: E402

BACKEND = "pynn-nest"
BATCH_NEURONS = 2048  # default copies: about this many neurons side by side (module docstring)
EPROP_HISTORY_BUDGET = 50_000_000  # neuron-steps of eprop_iaf per kernel (it keeps a per-step history)
CHUNK_SPIKE_BUDGET = 50_000_000    # neuron-steps of spike trains held per kernel


# ---------------------------------------------------------------------------- helpers

def _quiet_setup(threads: int, max_delay: int):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim.setup(timestep=STEP_MS, min_delay=STEP_MS, max_delay=STEP_MS * max(2, max_delay),
                  spike_precision="on_grid", threads=threads, verbosity="error")


def _gids(nc) -> np.ndarray:
    """The node ids of a NodeCollection (PyNN creates each population in one contiguous block)."""
    first, last = nc[0].global_id, nc[-1].global_id
    if last - first + 1 != len(nc):
        raise AssertionError("NEST node ids of a population are not contiguous")
    return np.arange(first, last + 1, dtype=np.int64)


def _set(nc, **values):
    """Set per-node values (arrays of len(nc)) or common ones (scalars) on a NodeCollection
    through the kernel call with one dictionary per node (NodeCollection.set first reads every
    node's status, several times slower on large populations)."""
    if _nestkernel is None:
        nc.set(**values)
        return
    if all(np.ndim(v) == 0 for v in values.values()):
        params = [{k: float(v) for k, v in values.items()}]
    else:
        cols = {k: (np.broadcast_to(np.asarray(v, np.float64), (len(nc),)).tolist()) for k, v in values.items()}
        keys = list(cols)
        params = [dict(zip(keys, row)) for row in zip(*(cols[k] for k in keys))]
    _nestkernel.llapi_set_nc_status(nc._datum, params)


def _set_each(nc, params: list):
    """Set one dictionary per node (e.g. the spike times of spike generators)."""
    if _nestkernel is None:
        nest.SetStatus(nc, params)
    else:
        _nestkernel.llapi_set_nc_status(nc._datum, params)


def _silence(lowering: Lowering) -> dict:
    """Per population, a potential S (mV) such that v = -S with a current of -S per step keeps
    every neuron below threshold whatever spikes arrive: S > theta + |v_init| + the largest
    input a neuron can receive in one step (divided by 1 - alpha for a synaptic current)."""
    fan = {name: np.zeros(lp.size) for name, lp in lowering.populations.items()}
    for lp in lowering.projections:
        np.add.at(fan[lp.post], lp.post_index, np.abs(lp.weight) / lowering.populations[lp.post].cell.weight_scale)
    out = {}
    net = lowering.network
    for name, lp in lowering.populations.items():
        alpha = net.population(name).neuron.syn_decay
        bound = float(fan[name].max(initial=0.0)) / (1.0 - (alpha or 0.0))
        out[name] = 10.0 * (lp.threshold + float(np.abs(lp.v_init).max(initial=0.0)) + bound
                            + float(np.abs(lp.bias).max(initial=0.0)) + 1.0)
    return out


def _per_step(by_delay: dict, samples: int, size: int, steps: int) -> np.ndarray:
    """The analog input current of every graph step: (samples, steps, size), the current of
    delay d flowing from step d on."""
    out = np.zeros((samples, steps, size))
    for d, cur in by_delay.items():
        if d < steps:
            out[:, d:, :] += cur[:, None, :]
    return out


def residual_steps(alpha: float) -> int:
    """Steps after which a synaptic current decaying by ``alpha`` per step has fallen below
    2**-54 of its value (under the rounding of a double-precision membrane)."""
    return 0 if alpha <= 0 else int(math.ceil(-54 * math.log(2) / math.log(alpha)))


def choose_copies(lowering: Lowering, samples: int, copies=None) -> int:
    """Samples simulated side by side: ``copies`` if given, else about BATCH_NEURONS neurons' worth.

    Building costs grow with the copies (PyNN creates cells one by one), while the simulation
    costs the same neuron-steps either way and a batch adds only a few kernel calls: copies
    pay for tiny networks, where per-batch calls dominate (timings: bench/RESULTS.md)."""
    if copies is not None:
        copies = int(copies)
        if copies < 1:
            raise SpikeportError(f"copies must be at least 1, got {copies}")
        return min(copies, samples)
    return max(1, min(samples, BATCH_NEURONS // max(1, lowering.neurons())))


# ---------------------------------------------------------------------------- the run

class _Schedule:
    """Set-up and read-out events of a chunk of batches, at simulator step boundaries."""

    def __init__(self):
        self.events = {}

    def add(self, t: int, order: int, fn):
        if t < 0:
            raise AssertionError(f"event before the start: {t}")
        self.events.setdefault(int(t), []).append((order, fn))

    def run(self, end: int):
        now = 0
        for t in sorted(self.events):
            if t > now:
                nest.Simulate(float(t - now) * STEP_MS)
                now = t
            for _, fn in sorted(self.events[t], key=lambda e: e[0]):
                fn()
        if end > now:
            nest.Simulate(float(end - now) * STEP_MS)


def _run_chunk(lowering, trains_chunk, analog_chunk, samples, steps, checkpoints, copies, window, origin, connect,
               threads):
    """Build the network for ``copies`` side-by-side replicas and simulate the chunk's samples
    (a multiple of ``copies``, padded). ``analog_chunk``: {name: {delay: (samples, size)}} graph
    currents of an analog input. Returns (spikes {name: (samples, steps, size) bool}, output
    membrane (samples, checkpoints, classes))."""
    net = lowering.network
    batches = samples // copies
    _quiet_setup(threads, lowering.max_delay + 1)
    pynn_logger = logging.getLogger("PyNN")
    level = pynn_logger.level
    pynn_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pops = create_populations(sim, lowering, copies, initialize=False)
            if connect == "pynn":
                create_projections(sim, lowering, pops, copies, only=lambda lp: lp.pre != lowering.input)
    finally:
        pynn_logger.setLevel(level)
    nodes = {name: p.node_collection for name, p in pops.items()}
    gids = {name: _gids(nc) for name, nc in nodes.items()}
    # spiking input: one spike_generator per input neuron and copy, holding every batch's spikes
    n_in = net.population(lowering.input).size
    if trains_chunk is not None:
        gen = nest.Create("spike_generator", copies * n_in)
        times = [[] for _ in range(copies * n_in)]
        for b in range(batches):
            base = origin + b * window
            s_idx, t_idx, i_idx = np.nonzero(trains_chunk[b * copies:(b + 1) * copies])
            for s, t, i in zip(s_idx, t_idx, i_idx):
                times[s * n_in + i].append(float(base + t + 1) * STEP_MS)  # a spike stamped k+1 is sent at step k
        _set_each(gen, [{"spike_times": sorted(ts)} for ts in times])
        gids[lowering.input] = _gids(gen)
    for lp in lowering.projections:
        if connect == "pynn" and lp.pre != lowering.input:
            continue
        n_pre = net.population(lp.pre).size
        pre, post, w = lp.tiled(copies, n_pre, lowering.populations[lp.post].size)
        nest.Connect(gids[lp.pre][pre], gids[lp.post][post], "one_to_one",
                     {"synapse_model": "static_synapse", "weight": w, "delay": np.full(len(w), lp.delay * STEP_MS)})
    # analog input into a population with a synaptic current: weighted spikes every step through the synapse
    for name, by_delay in analog_chunk.items():
        lp = lowering.populations[name]
        if lp.cell.latency == 0:
            continue
        per_step = _per_step(by_delay, samples, lp.size, steps)  # (samples, steps, size), 0 where nothing flows
        gen = nest.Create("spike_generator", copies * lp.size)
        params = []
        for k in range(copies * lp.size):
            c, j = divmod(k, lp.size)
            ts, ws = [], []
            for b in range(batches):
                # a spike sent at step base + lag - 2 + t arrives (delay 1) at step base + lag - 1 + t: the
                # synaptic input of graph step t (the cell adds it to the current after its membrane update)
                start = origin + b * window + lp.lag - 1
                values = per_step[b * copies + c, :, j]
                for t in np.flatnonzero(values):
                    ts.append(float(start + t) * STEP_MS)
                    ws.append(float(values[t]))
            params.append({"spike_times": ts, "spike_weights": ws})
        _set_each(gen, params)
        nest.Connect(gen, nodes[name], "one_to_one",
                     {"synapse_model": "static_synapse", "weight": lp.cell.weight_scale, "delay": STEP_MS})
    recorder = nest.Create("spike_recorder")
    for nc in nodes.values():
        nest.Connect(nc, recorder)

    silence = _silence(lowering)
    sched = _Schedule()
    out_name = net.output
    out_v = np.zeros((samples, len(checkpoints), lowering.populations[out_name].size))

    def setter(name, **values):
        return lambda: _set(nodes[name], **values)

    def reader(b, k):
        def read():
            v = np.asarray(nodes[out_name].get("V_m"), dtype=np.float64)
            out_v[b * copies:(b + 1) * copies, k] = v.reshape(copies, -1)
        return read

    for name, lp in lowering.populations.items():
        cell = lp.cell
        s = silence[name]
        quiet_i, quiet_v = -s * cell.current_scale, -s
        _set(nodes[name], V_m=-s, I_e=-s * cell.current_scale)  # silent until its first window
        v0 = np.tile(lp.v_init, copies) if np.ptp(lp.v_init) else float(lp.v_init[0])
        for b in range(batches):
            start = origin + b * window + lp.lag
            # the constant current: the bias, plus (for a delta synapse) the analog input of delay d from step d on
            rows = slice(b * copies, (b + 1) * copies)
            by_delay = {} if cell.latency else analog_chunk.get(name, {})
            current = np.broadcast_to(lp.bias, (copies, lp.size))
            for d in [0] + sorted(k for k in by_delay if 0 < k < steps):
                if d in by_delay:
                    current = current + by_delay[d][rows]
                if d == 0 or d in by_delay:
                    sched.add(start + d - cell.current_lead, 2,
                              setter(name, I_e=np.ascontiguousarray(current).reshape(-1) * cell.current_scale))
            sched.add(start, 2, setter(name, V_m=v0))
            sched.add(start + steps - cell.current_lead, 1, setter(name, I_e=quiet_i))
            sched.add(start + steps, 1, setter(name, V_m=quiet_v))
    for b in range(batches):
        for k, cp in enumerate(checkpoints):
            sched.add(origin + b * window + lowering.populations[out_name].lag + cp, 0, reader(b, k))
    end = origin + batches * window + lowering.max_lag + 1
    sched.run(end)

    ev = recorder.get("events")
    senders, stamps = np.asarray(ev["senders"], np.int64), np.asarray(ev["times"], np.float64)
    step = np.rint(stamps / STEP_MS).astype(np.int64) - 1
    spikes = {}
    for name, lp in lowering.populations.items():
        g0 = gids[name]  # contiguous (_gids)
        sel = (senders >= g0[0]) & (senders <= g0[-1])
        spikes[name] = engine.windows(senders[sel] - g0[0], step[sel], lp.size, lp.lag, steps, batches, copies,
                                      window, origin)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim.end()
    return spikes, out_v


def run(network: Network, x, steps: int, *, checkpoints=None, seed: int = 0, record_counts: bool = False,
        progress=None, copies: int | None = None, connect: str = "nest", threads: int = 1, sample0: int = 0) -> Activity:
    """Simulate ``network`` on samples ``x`` for ``steps`` steps on NEST (via PyNN).

    Same arguments as :func:`spikeport.backends.reference.run` where they apply
    (``checkpoints``, ``seed`` of Poisson input, ``record_counts``, ``progress``), plus
    ``copies`` (samples side by side per batch), ``connect`` ("nest" or "pynn") and
    ``threads`` (module docstring), ``sample0`` (the index of ``x[0]`` in a larger run: Poisson trains as
    that run's, for guarded batches). Returns the :class:`Activity` of the run, with the
    semantic differences of this network's lowering in ``notes``.
    """
    x, steps, checkpoints = common.check_run(network, x, steps, checkpoints)
    if connect not in ("nest", "pynn"):
        raise SpikeportError(f"connect must be 'nest' or 'pynn', got {connect!r}")
    threads = int(threads)
    if threads < 1:
        raise SpikeportError(f"threads must be at least 1, got {threads}")
    lowering = Lowering(network, NestCells())
    samples = len(x)
    copies = choose_copies(lowering, samples, copies)
    trains = common.input_trains(network, x, steps, seed, sample0=sample0)
    analog = lowering.analog_by_delay(x)
    refr = max(network.population(n).neuron.refractory_steps for n in lowering.populations)
    max_d = max([p.delay_steps for p in network.projections], default=0)
    window = steps + max(1, max_d + 1, refr + 1)
    alphas = [network.population(n).neuron.syn_decay for n in lowering.populations]
    alpha = max([a for a in alphas if a is not None], default=None)
    if alpha is not None and samples > copies:
        # NEST cannot set a synaptic current: between batches it decays to below 2**-54 of its value
        window += residual_steps(alpha)
    origin = 2
    # one NEST kernel simulates a chunk of samples; a chunk's spike trains are held, and eprop_iaf keeps a
    # history of every step: both bound the chunk
    eprop = sum(lp.size for lp in lowering.populations.values() if lp.cell.model == "eprop_iaf")
    per_build = max(1, CHUNK_SPIKE_BUDGET // max(1, copies * steps * lowering.neurons()))
    if eprop:
        per_build = min(per_build, max(1, EPROP_HISTORY_BUDGET // max(1, eprop * copies * window)))
    chunk = copies * per_build
    # kept per chunk: spike counts, what delayed projections delivered, the output's trains
    delayed = sorted({(p.pre, p.delay_steps) for p in network.projections
                      if p.pre in lowering.populations and 1 <= p.delay_steps < steps})
    counts = {name: [] for name in lowering.populations}
    delivered = {key: [] for key in delayed}
    out_trains, out_v = [], []
    start = time.perf_counter()
    for s0 in range(0, samples, chunk):
        n = min(chunk, samples - s0)
        padded = -(-n // copies) * copies
        pad = padded - n

        def padrows(a):
            a = np.asarray(a)
            return np.concatenate([a, np.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a

        tr_c = None if trains is None else padrows(trains[s0:s0 + n])
        analog_c = {k: {d: padrows(c[s0:s0 + n]) for d, c in by.items()} for k, by in analog.items()}
        sp, v = _run_chunk(lowering, tr_c, analog_c, padded, steps, checkpoints, copies, window, origin, connect,
                           threads)
        for k in counts:
            counts[k].append(sp[k][:n].sum(axis=1))
        for pre, d in delayed:
            delivered[pre, d].append(sp[pre][:n, :steps - d].sum(axis=1))
        out_trains.append(sp[network.output][:n])
        out_v.append(v[:n])
        if progress is not None:
            progress.update(n)
    seconds = time.perf_counter() - start
    counts = {k: np.concatenate(v).reshape((samples,) + network.population(k).shape) for k, v in counts.items()}
    delivered = {k: np.concatenate(v) for k, v in delivered.items()}
    if alpha is not None and samples > copies:
        lowering.notes.append(f"NEST cannot reset a synaptic current: between batches of {copies} samples it decays "
                              f"for {residual_steps(alpha)} steps, to below 2**-54 of its value")
    notes = [f"pynn-nest: zero-delay projections run with NEST's one-step minimum delay; each population runs "
             f"lag steps behind (max {lowering.max_lag}) and is read in its own window, which restores same-step "
             f"counts exactly"] + lowering.notes
    act = common.activity(network, BACKEND, x, steps, checkpoints, counts, np.concatenate(out_trains), seconds,
                          output_v=np.concatenate(out_v), inputs=trains, delivered=delivered, notes=notes,
                          device="cpu (NEST)", record_counts=record_counts)
    return act
