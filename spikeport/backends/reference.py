"""The reference executor: the graph's semantics in batched PyTorch, CPU or CUDA.

It runs :mod:`spikeport.ir.neurons`' equations literally, batched over samples,
and is the yardstick every other backend is measured against.

How it runs a feed-forward network (recurrent ones are refused for now): time
is cut into chunks of Tc steps. Within a chunk, populations are visited in
topological order; a population's input for the whole chunk depends only on
its pre populations' outputs in that chunk (or, through a delay d, in the d
steps before it, kept in a small history), so each projection is one matrix
product or convolution over Tc x batch rows at once, near the dense limit of
the same network run as an ANN T times. The membrane recurrence then runs over
the chunk's steps, elementwise on (batch, neurons). A constant analog input is
projected once per batch, not once per step. Memory is bounded by the chunk,
not by T: spike trains are never all held unless asked.

Randomness (Poisson input) is drawn on the CPU from a generator seeded by
(seed, sample index, block of 32 steps), so spike trains do not depend on the
batch size, the chunking, the number of steps, or the device.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import SpikeportError
from ..ir import Network
from ..ir.kernels import RANDOM_BLOCK, apply_ops, encode, tensor
from ..runtimes import readout
from .activity import Activity
from .common import check_run

TILE = 1 << 18             # membranes per cache tile of the elementwise update (1 MiB of float32)
DEFAULT_MEMORY_FRACTION = 0.25


def _torch():
    import torch
    return torch


# ---------------------------------------------------------------------------- plan

class _Plan:
    """What does not change between batches: order, projections, fan-outs, chunking."""

    def __init__(self, network, steps, checkpoints, every_step, device, dtype, memory_bytes, record_counts=False,
                 record_trains=()):
        torch = _torch()
        self.record_counts, self.record_trains = record_counts, set(record_trains)
        self.network, self.steps, self.device, self.dtype = network, steps, device, dtype
        try:
            self.order = network.order(all_projections=True)
        except SpikeportError as exc:
            raise SpikeportError(f"the reference executor runs feed-forward networks only: {exc}") from None
        self.into = {p.name: network.projections_into(p.name) for p in network.populations}
        self.max_delay = {p.name: 0 for p in network.populations}
        for pr in network.projections:
            self.max_delay[pr.pre] = max(self.max_delay[pr.pre], pr.delay_steps)
        self.checkpoints = list(range(1, steps + 1)) if every_step else checkpoints
        self.cache = {"dtype": dtype, "device": device, "shapes": {p.name: tuple(p.shape) for p in network.populations}}
        self.fanouts = {pr.name: torch.tensor(pr.synapses_per_pre(network.population(pr.pre).shape).reshape(-1),
                                                 dtype=torch.float64, device=device) for pr in network.projections}
        # bytes per sample and step: every population's output and input current, twice for temporaries
        self.bytes_per_sample_step = 16 * sum(p.size for p in network.populations)
        self.widest_bytes = 4 * max(p.size for p in network.populations)
        self.memory_bytes = memory_bytes

    def batch_and_chunk(self, samples: int, batch_size: int | None):
        """Batch size and steps per chunk.

        On the CPU the elementwise membrane update is memory-bound, so a step of
        the widest population should stay near the caches (``step_cap``) and a chunk
        of it within ``chunk_cap`` (several steps, which the cache-tiled update needs
        to pay); the measurements behind both are in bench/RESULTS.md. On CUDA
        bigger batches pay.
        Chunks are powers of two up to one Poisson block, and everything stays
        within ``memory_bytes``.
        """
        step_cap, chunk_cap = (16 << 20, 128 << 20) if self.device == "cpu" else (1 << 30, 4 << 30)
        if batch_size is None:
            batch_size = min(samples, 256 if self.device == "cpu" else 8192,
                             max(1, step_cap // self.widest_bytes),
                             max(1, self.memory_bytes // self.bytes_per_sample_step))
        chunk = min(self.steps, RANDOM_BLOCK, max(1, chunk_cap // (self.widest_bytes * batch_size)),
                    max(1, self.memory_bytes // (self.bytes_per_sample_step * batch_size)))
        return batch_size, 1 << (int(chunk).bit_length() - 1)


def _available_memory(device) -> int:
    torch = _torch()
    if device == "cuda":
        return int(torch.cuda.mem_get_info()[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


# ---------------------------------------------------------------------------- one batch

class _Neurons:
    """The state of one spiking population over a batch, advanced chunk by chunk."""

    def __init__(self, pop, batch, plan, readout):
        torch = _torch()
        self.neuron_counts = torch.zeros((batch, pop.size), dtype=torch.float64, device=plan.device) \
            if plan.record_counts else None
        self.trains = [] if pop.name in plan.record_trains else None
        nm = pop.neuron
        self.pop, self.nm = pop, nm
        dev, dt = plan.device, plan.dtype
        if pop.v_init is None:
            self.v = torch.full((batch, pop.size), float(nm.v_init), dtype=dt, device=dev)
        else:
            self.v = tensor(plan.cache, ("v_init", pop.name), lambda: pop.v_init.reshape(-1)).expand(batch, -1).clone()
        self.i_syn = torch.zeros_like(self.v) if nm.syn_decay is not None else None
        self.left = torch.zeros((batch, pop.size), dtype=torch.int32, device=dev) if nm.refractory_steps else None
        self.bias = None if pop.bias is None else tensor(plan.cache, ("bias", pop.name), lambda: pop.bias.reshape(-1))
        self.readout = readout
        if readout:
            self.counts = torch.zeros((batch, pop.size), dtype=dt, device=dev)
            self.first = torch.full((batch,), -1, dtype=torch.int64, device=dev)
            self.preds, self.preds_index = [], []
        self.spikes = torch.zeros(batch, dtype=torch.float64, device=dev)
        self.buffer = None  # spikes of the current chunk, reused from chunk to chunk
        self.fixed = plan.network.fixed_point
        # the neuron fields beyond a plain one-spike IF/LIF (spikeport.ir.neurons)
        self.amount = nm.subtracted
        self.fire = torch.gt if nm.strict_threshold else torch.ge
        self.extended = bool(nm.reset_amount is not None or nm.max_spikes_per_step != 1 or nm.strict_threshold)

    def advance(self, kind, current, t0, t1, checkpoints):
        """Run steps t0..t1-1 with input current ("const" (B, N) or "seq" (Tc, B, N)); return spikes (Tc, B, N)."""
        if self.fixed is not None:
            return self._advance_fixed(kind, current, t0, t1, checkpoints)
        torch = _torch()
        nm, v = self.nm, self.v
        lam, theta, alpha, refr = nm.decay, float(nm.threshold), nm.syn_decay, nm.refractory_steps
        bias = self.bias
        if bias is not None and alpha is None and not refr:
            current, bias = current + bias, None  # fold a constant bias into the input once
        out = self._chunk_buffer(t1 - t0)
        amount, fire, multi = self.amount, self.fire, nm.max_spikes_per_step
        if not (refr or alpha is not None or bias is not None or self.readout or self.extended) \
                and v.numel() >= 2 * TILE:
            self._advance_tiled(kind, current, lam, theta, out)
            return self._finish(out)
        for k in range(t1 - t0):
            inp = current if kind == "const" else current[k]
            if alpha is not None:
                inp = self.i_syn.mul_(alpha).add_(inp)
            if bias is not None:
                inp = inp + bias
            s = out[k]
            if refr:
                active = self.left == 0
                v.copy_(torch.where(active, v * lam + inp, v))
                fire(v, theta, out=s)
                s.mul_(active)
                self.left.sub_((~active).to(torch.int32))
            else:
                if lam != 1.0:
                    v.mul_(lam)
                v.add_(inp)
                fire(v, theta, out=s)
            if multi != 1:
                _counts(v, theta, multi, s)
            if nm.reset == "subtract":
                v.sub_(s, alpha=amount)
            else:
                v.addcmul_(v, (s > 0).to(v.dtype), value=-1.0)  # v - v * [s > 0]: exactly 0 where it spiked
            if refr:
                self.left.masked_fill_(s > 0, refr)
            self._readout(s, t0 + k, checkpoints)
        return self._finish(out)

    def _advance_tiled(self, kind, current, lam, theta, out):
        """The plain IF/LIF update, tile by tile: each tile of membranes stays in cache for the
        whole chunk instead of streaming through memory every step (2x at 5.8M neurons per step)."""
        torch = _torch()
        steps, v = out.shape[0], self.v.view(-1)
        flat_out = out.view(steps, -1)
        flat_in = current.reshape(-1) if kind == "const" else current.reshape(steps, -1)
        zero = self.nm.reset == "zero"
        for a in range(0, v.numel(), TILE):
            vt = v[a:a + TILE]
            for k in range(steps):
                if lam != 1.0:
                    vt.mul_(lam)
                vt.add_(flat_in[a:a + TILE] if kind == "const" else flat_in[k, a:a + TILE])
                s = flat_out[k, a:a + TILE]
                torch.ge(vt, theta, out=s)
                if zero:
                    vt.addcmul_(vt, s, value=-1.0)
                else:
                    vt.sub_(s, alpha=theta)

    def _advance_fixed(self, kind, current, t0, t1, checkpoints):
        """The integer arithmetic of spikeport.ir.arithmetic, exact in float64."""
        torch = _torch()
        fp, nm, v = self.fixed, self.nm, self.v
        scale = 2.0 ** fp.decay_bits
        lam = fp.decay_int(nm.decay) / scale
        alpha = None if nm.syn_decay is None else fp.decay_int(nm.syn_decay) / scale
        theta, refr, limit = float(nm.threshold), nm.refractory_steps, float(fp.state_max)

        def sat(x):
            if fp.saturate:
                return x.clamp_(-limit, limit)
            return x.add_(limit + 1).remainder_(2 * (limit + 1)).sub_(limit + 1)

        current = torch.round(current)  # analog inputs give fractional currents; spikes give integers
        out = self._chunk_buffer(t1 - t0)
        for k in range(t1 - t0):
            inp = current if kind == "const" else current[k]
            if alpha is not None:
                inp = sat(self.i_syn.mul_(alpha).trunc_().add_(inp))
            active = None if not refr else self.left == 0
            new_v = v * lam if lam != 1.0 else v.clone()
            new_v = sat(new_v.trunc_().add_(inp) if self.bias is None else new_v.trunc_().add_(inp).add_(self.bias))
            if active is None:
                v.copy_(new_v)
            else:
                v.copy_(torch.where(active, new_v, v))
                self.left.sub_((~active).to(torch.int32))
            s = out[k]
            self.fire(v, theta, out=s)
            if active is not None:
                s.mul_(active)
            if nm.max_spikes_per_step != 1:
                _counts(v, theta, nm.max_spikes_per_step, s)
            if nm.reset == "subtract":
                v.sub_(s, alpha=self.amount)
            else:
                v.addcmul_(v, (s > 0).to(v.dtype), value=-1.0)
            if refr:
                self.left.masked_fill_(s > 0, refr)
            self._readout(s, t0 + k, checkpoints)
        return self._finish(out)

    def _chunk_buffer(self, steps):
        torch = _torch()
        if self.buffer is None or self.buffer.shape[0] < steps:
            self.buffer = torch.empty((steps,) + tuple(self.v.shape), dtype=self.v.dtype, device=self.v.device)
        return self.buffer[:steps]

    def _readout(self, s, t, checkpoints):
        if self.readout:
            self.counts.add_(s)
            self.first.masked_fill_((self.first < 0) & (s.amax(dim=1) > 0), t)
            if t + 1 in checkpoints:
                self.preds.append(readout.predict(self.counts, self.v))
                self.preds_index.append(readout.predict_index(self.counts))

    def _finish(self, out):
        torch = _torch()
        self.spikes += _count_sum(out)
        if self.neuron_counts is not None:
            self.neuron_counts += out.sum(dim=0)  # exact: at most Tc x max_spikes_per_step per neuron
        if self.trains is not None:  # binary spikes as bool, several per step as counts
            train = out.to(torch.bool) if self.nm.max_spikes_per_step == 1 else out.to(torch.int32)
            self.trains.append(train.transpose(0, 1).cpu())
        return out


def _counts(v, theta, most, s):
    """Several spikes per step: where s fired, s = min(most, floor(v / theta)) (at least 1: v >= theta)."""
    torch = _torch()
    n = torch.floor(v / theta).clamp_(1, most)
    s.copy_(torch.where(s > 0, n, torch.zeros_like(n)))


def _count_sum(spikes):
    """Spikes per sample of a (Tc, B, N) chunk, exact: float32 sums over neurons (exact below 2**24),
    then float64 over steps, without copying the chunk to float64."""
    torch = _torch()
    if spikes.shape[2] < 2**24:
        return spikes.sum(dim=2).sum(dim=0, dtype=torch.float64)
    return spikes.sum(dim=(0, 2), dtype=torch.float64)


def _delayed(kind, chunk, history, d, t0, t1):
    """The pre output at steps t0-d .. t1-d-1: from this chunk and the history of the previous steps."""
    torch = _torch()
    if d == 0:
        return kind, chunk
    if kind == "const":  # an analog input is x from step 0 on, nothing before
        if t0 >= d:
            return "const", chunk
        seq = chunk.unsqueeze(0).repeat(t1 - t0, 1, 1)
        seq[: min(d - t0, t1 - t0)] = 0
        return "seq", seq
    full = torch.cat([history, chunk]) if history is not None else chunk
    start = full.shape[0] - (t1 - t0) - d
    if start < 0:  # before step 0 nothing was emitted
        pad = torch.zeros((-start,) + tuple(chunk.shape[1:]), dtype=chunk.dtype, device=chunk.device)
        full, start = torch.cat([pad, full]), 0
    return "seq", full[start:start + (t1 - t0)]


def _run_batch(plan, x, sample0, seed, chunk):
    torch = _torch()
    net, steps = plan.network, plan.steps
    batch = x.shape[0]
    neurons = {p.name: _Neurons(p, batch, plan, p.name == net.output) for p in plan.order if not p.is_input}
    input_spikes = torch.zeros(batch, dtype=torch.float64, device=x.device)
    synops = {name: torch.zeros(batch, dtype=torch.float64, device=x.device) for name in neurons}
    history = {}
    const_current = {}  # a projection of a constant analog input, computed once per batch
    checkpoints = set(plan.checkpoints)
    for t0 in range(0, steps, chunk):
        t1 = min(steps, t0 + chunk)
        outputs = {}
        for pop in plan.order:
            if pop.is_input:
                kind, out = encode(pop, x, t0, t1, net.dt_s, sample0, seed, plan.dtype)
                if kind == "seq":
                    input_spikes += _count_sum(out)
                outputs[pop.name] = (kind, out)
                continue
            current_kind, current = "const", None
            for proj in plan.into[pop.name]:
                pre_kind, pre = outputs[proj.pre]
                kind, pre = _delayed(pre_kind, pre, history.get(proj.pre), proj.delay_steps, t0, t1)
                fan = plan.fanouts[proj.name]
                if kind == "const":
                    # an analog value is one event per existing synapse per step when nonzero
                    delivered = t1 - max(t0, proj.delay_steps)
                    synops[pop.name] += ((pre != 0).to(torch.float64) @ fan) * delivered
                    c = const_current.get(proj.name)
                    if c is None:
                        c = const_current[proj.name] = apply_ops(proj, pre, plan.cache)
                else:
                    events = pre if pre_kind == "seq" else (pre != 0).to(plan.dtype)  # a delayed analog input
                    # per neuron over the chunk's steps: exact in float32 while steps < 2**24
                    synops[pop.name] += events.sum(dim=0).to(torch.float64) @ fan
                    c = apply_ops(proj, pre.reshape(-1, pre.shape[-1]), plan.cache).reshape(pre.shape[0], batch, -1)
                if current is None:
                    current_kind, current = kind, c
                else:
                    current = current + c
                    current_kind = "const" if current_kind == kind == "const" else "seq"
            if current is None:
                current = torch.zeros((batch, pop.size), dtype=plan.dtype, device=x.device)
            outputs[pop.name] = ("seq", neurons[pop.name].advance(current_kind, current, t0, t1, checkpoints))
        for name, d in plan.max_delay.items():  # keep the last d steps of every delayed pre population
            if d and outputs[name][0] == "seq":
                prev = history.get(name)
                seq = outputs[name][1] if prev is None else torch.cat([prev, outputs[name][1]])
                history[name] = seq[-d:].clone()  # the chunk's buffer is reused
    out = neurons[net.output]
    spikes = {name: n.spikes for name, n in neurons.items()}
    recorded = {"counts": {name: n.neuron_counts for name, n in neurons.items() if n.neuron_counts is not None},
                "trains": {name: torch.cat(n.trains, dim=1) for name, n in neurons.items() if n.trains is not None}}
    if net.population(net.input).encoding.kind != "analog":
        spikes[net.input] = input_spikes
    preds = (torch.stack(out.preds, dim=1), torch.stack(out.preds_index, dim=1))
    return preds, out.counts, out.first, spikes, synops, recorded


# ---------------------------------------------------------------------------- the entry point

def run(network: Network, x, steps: int, *, checkpoints=None, device=None, batch_size=None, seed: int = 0,
        memory_bytes: int | None = None, chunk_steps: int | None = None, record_counts: bool = False,
        record_trains=(), progress=None, precision: str = "float32", sample0: int = 0) -> Activity:
    """Simulate ``network`` on samples ``x`` for ``steps`` steps.

    Parameters
    ----------
    x : array of shape (samples, *input_shape) (any shape with the same size per sample)
    steps : number of time steps T
    checkpoints : step counts at which to record predictions (default: [steps]);
        "all" records the prediction after every step
    device : "cpu", "cuda" or None (CUDA when available)
    batch_size : samples per batch (default: chosen from the memory budget)
    seed : seed of Poisson input
    memory_bytes : budget for intermediate tensors (default: a quarter of the
        memory available on the device)
    chunk_steps : steps per chunk (default: from the budget); results do not depend on it
    record_counts : also return every neuron's spike count per sample (``Activity.neuron_counts``)
    record_trains : names of populations whose whole spike trains to return
        (``Activity.spike_trains[name]``: bool (samples, steps, *shape), or int32 spike
        counts per step for a population with max_spikes_per_step > 1); nothing else
        is held beyond one chunk
    progress : an object with ``update(n)`` called after each batch
    precision : "float32" (the default: fast) or "float64", the arithmetic of the
        conformance runs beside a double-precision simulator (Brian2, NEST): a
        membrane that lands within float32 rounding of its threshold then spikes
        or not as the simulator's does. Poisson and regular trains are the same
        in both. A fixed-point network is always run exactly in float64.
    sample0 : the index of ``x[0]`` in a larger run: Poisson trains as that run's (the batches of a
        guarded run, :mod:`spikeport.backends.batches`)

    Example
    -------
    >>> act = run(net, dataset.x("test"), steps=64, checkpoints=[8, 16, 32])   # doctest: +SKIP
    >>> act.accuracy(dataset.y("test"), steps=16)                             # doctest: +SKIP
    """
    torch = _torch()
    every_step = checkpoints == "all"
    x, steps, checkpoints = check_run(network, x, steps, checkpoints, record_trains)
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise SpikeportError(f"unknown device {device!r} (cpu or cuda)")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpikeportError("--device cuda: no CUDA device is available")
    inp = network.population(network.input)
    samples = len(x)
    if memory_bytes is None:
        memory_bytes = int(_available_memory(device) * DEFAULT_MEMORY_FRACTION)
    if precision not in ("float32", "float64"):
        raise SpikeportError(f"unknown precision {precision!r} (float32 or float64)")
    # fixed point: integers of up to 53 bits are exact in float64
    dtype = torch.float64 if network.fixed_point is not None or precision == "float64" else torch.float32
    plan = _Plan(network, steps, checkpoints, every_step, device, dtype, memory_bytes, record_counts, record_trains)
    bs, chunk = plan.batch_and_chunk(samples, batch_size)
    if chunk_steps is not None:
        chunk = max(1, min(steps, int(chunk_steps)))
    parts = {"preds": [], "preds_index": [], "counts": [], "first": []}
    neuron_counts = {p.name: [] for p in network.populations}
    trains = {name: [] for name in record_trains}
    pop_spikes = {p.name: [] for p in network.populations}
    syn = {p.name: [] for p in network.populations if not p.is_input}
    start = time.perf_counter()
    with torch.no_grad():
        for s0 in range(0, samples, bs):
            xb = torch.as_tensor(x[s0:s0 + bs].reshape(-1, inp.size), dtype=dtype, device=device)
            preds, counts, first, spikes, synops, recorded = _run_batch(plan, xb, sample0 + s0, seed, chunk)
            for k, v in recorded["counts"].items():
                neuron_counts[k].append(np.rint(v.cpu().numpy()).astype(np.int32).reshape((len(xb),) + network.population(k).shape))
            for k, v in recorded["trains"].items():
                trains[k].append(v.numpy().reshape((len(xb), steps) + network.population(k).shape))
            parts["preds"].append(preds[0].cpu().numpy())
            parts["preds_index"].append(preds[1].cpu().numpy())
            parts["counts"].append(counts.cpu().numpy().astype(np.int64))
            parts["first"].append(first.cpu().numpy())
            for k, v in spikes.items():
                pop_spikes[k].append(np.rint(v.cpu().numpy()).astype(np.int64))
            for k, v in synops.items():
                syn[k].append(np.rint(v.cpu().numpy()).astype(np.int64))
            if progress is not None:
                progress.update(len(xb))
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return Activity(backend="reference", steps=steps, dt_s=network.dt_s, checkpoints=checkpoints,
                    predictions=np.concatenate(parts["preds"]), output_counts=np.concatenate(parts["counts"]),
                    population_spikes={k: np.concatenate(v) for k, v in pop_spikes.items() if v},
                    synops={k: np.concatenate(v) for k, v in syn.items()},
                    neurons={p.name: p.size for p in network.populations}, seconds=seconds, device=device,
                    first_spike_step=np.concatenate(parts["first"]),
                    predictions_index=np.concatenate(parts["preds_index"]),
                    neuron_counts={k: np.concatenate(v) for k, v in neuron_counts.items() if v},
                    spike_trains={k: np.concatenate(v) for k, v in trains.items()})
