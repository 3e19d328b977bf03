"""The reference executor: the graph's semantics in batched PyTorch, CPU or CUDA.

It runs :mod:`spikeport.ir.neurons`' equations literally, batched over samples,
and is the yardstick every other backend is measured against. For a
feed-forward network (recurrent ones are refused for now) each population's whole
input over all T steps depends only on its pre populations' whole outputs, so
the executor works population by population: one matrix product per projection
over all T steps at once (or a single one when the pre side is a constant
analog input), then the membrane recurrence over T, which is elementwise.

Randomness (Poisson input) comes from a counter-based hash of (seed, sample
index, step, neuron), so spike trains do not depend on batch size or device.
"""
from __future__ import annotations

import time

import numpy as np

from ..errors import SpikeportError
from ..ir import Network
from .activity import Activity

DEFAULT_MEMORY_BYTES = 1 << 30


def _torch():
    import torch
    return torch


# ---------------------------------------------------------------------------- ops

def _tensor(cache, key, make):
    t = cache.get(key)
    if t is None:
        t = cache[key] = _torch().as_tensor(np.ascontiguousarray(make()), dtype=cache["dtype"], device=cache["device"])
    return t


def _dense(op, x, cache):
    return x @ _tensor(cache, id(op), lambda: op.weight).T


def _flatten(op, x, cache):
    return x.reshape(x.shape[0], -1)


def _conv2d(op, x, cache):
    w = _tensor(cache, id(op), lambda: op.weight)
    return _torch().nn.functional.conv2d(x, w, stride=op.stride, padding=op.padding, dilation=op.dilation,
                                         groups=op.groups)


def _pool2d(op, x, cache):
    # a grouped convolution with constant weights: the same products as the materialized matrix
    channels = x.shape[1]
    w = _tensor(cache, (id(op), channels), lambda: op.depthwise_kernel(channels))
    return _torch().nn.functional.conv2d(x, w, stride=op.stride, padding=op.padding, groups=channels)


TORCH_OPS = {"dense": _dense, "flatten": _flatten, "conv2d": _conv2d, "sumpool2d": _pool2d, "avgpool2d": _pool2d}


def _apply_ops(proj, x, cache):
    """A applied to flat pre outputs (rows, N_pre); returns flat post currents (rows, N_post)."""
    x = x.reshape((x.shape[0],) + cache["shapes"][proj.pre])
    for op in proj.ops:
        x = TORCH_OPS[op.kind](op, x, cache)
    return x.reshape(x.shape[0], -1)


# ---------------------------------------------------------------------------- encodings

def _uniform_hash(seed: int, sample0: int, batch: int, steps: int, n: int, device):
    """U[0,1) of shape (steps, batch, n) from splitmix64 of (seed, sample, step, neuron)."""
    torch = _torch()
    t = torch.arange(steps, device=device, dtype=torch.int64).view(-1, 1, 1)
    s = torch.arange(sample0, sample0 + batch, device=device, dtype=torch.int64).view(1, -1, 1)
    i = torch.arange(n, device=device, dtype=torch.int64).view(1, 1, -1)
    z = ((s * steps + t) * n + i) + seed * 0x5851F42D4C957F2D + 0x1E3779B97F4A7C15
    mask30, mask27, mask31 = (1 << 34) - 1, (1 << 37) - 1, (1 << 33) - 1
    # logical right shifts on int64: shift, then mask off the sign extension
    z = (z ^ ((z >> 30) & mask30)) * -4658895280553007687   # 0xBF58476D1CE4E5B9 as int64
    z = (z ^ ((z >> 27) & mask27)) * -7723592293110705685   # 0x94D049BB133111EB as int64
    z = z ^ ((z >> 31) & mask31)
    return ((z >> 11) & ((1 << 53) - 1)).to(torch.float64) * (1.0 / (1 << 53))


def _encode(pop, x, steps, dt_s, sample0, seed, dtype):
    """The input population's output: ('const', (B, N)) for analog, ('seq', (T, B, N)) for spikes."""
    torch = _torch()
    enc = pop.encoding
    if enc.kind == "analog":
        return "const", x
    p = (x.to(torch.float64) * enc.max_rate_hz * dt_s).clamp(0.0, 1.0)
    if enc.kind == "regular":
        t = torch.arange(steps + 1, device=x.device, dtype=torch.float64).view(-1, 1, 1)
        cum = torch.floor(t * p.unsqueeze(0) + 1e-9)  # spikes by the end of each step (closed form of the phase)
        return "seq", (cum[1:] - cum[:-1]).to(dtype)
    u = _uniform_hash(seed, sample0, x.shape[0], steps, x.shape[1], x.device)
    return "seq", (u < p.unsqueeze(0)).to(dtype)


# ---------------------------------------------------------------------------- dynamics

def _integrate(pop, current, bias, steps, checkpoints, want_readout):
    """Run the neuron equations; return spikes (T, B, N) and, for the output, the readout."""
    torch = _torch()
    kind, J = current
    nm = pop.neuron
    lam, theta, alpha, refr = nm.decay, nm.threshold, nm.syn_decay, nm.refractory_steps
    batch, n = J.shape[-2], J.shape[-1]
    v = torch.full((batch, n), float(nm.v_init), dtype=J.dtype, device=J.device)
    i_syn = torch.zeros_like(v) if alpha is not None else None
    left = torch.zeros((batch, n), dtype=torch.int32, device=J.device) if refr else None
    spikes = torch.empty((steps, batch, n), dtype=J.dtype, device=J.device)
    counts = torch.zeros((batch, n), dtype=torch.int64, device=J.device) if want_readout else None
    preds, cp = [], set(checkpoints)
    for t in range(steps):
        inp = J if kind == "const" else J[t]
        if alpha is not None:
            inp = i_syn.mul_(alpha).add_(inp)
        if bias is not None:
            inp = inp + bias
        if refr:
            active = left == 0
            v = torch.where(active, v * lam + inp, v)
            s = (v >= theta) & active
            left = torch.where(active, left, left - 1)
        else:
            if lam != 1.0:
                v.mul_(lam)
            v.add_(inp)
            s = v >= theta
        spikes[t] = s
        if nm.reset == "subtract":
            v.sub_(s * theta)
        else:
            v.masked_fill_(s, 0.0)
        if refr:
            left.masked_fill_(s, refr)
        if want_readout:
            counts += s
            if t + 1 in cp:
                preds.append(_predict(counts, v))
    return spikes, counts, preds


def _predict(counts, v):
    """Most spikes wins; ties go to the higher membrane potential, then the lower index."""
    torch = _torch()
    top = counts.max(dim=1, keepdim=True).values
    return torch.where(counts == top, v, torch.full_like(v, -float("inf"))).argmax(dim=1)


def _delay(kind, c, d, steps):
    """Shift a current by d steps: nothing arrives before step d."""
    torch = _torch()
    if d == 0:
        return kind, c
    seq = c.unsqueeze(0).expand(steps, *c.shape) if kind == "const" else c
    out = torch.zeros((steps,) + tuple(seq.shape[1:]), dtype=seq.dtype, device=seq.device)
    if d < steps:
        out[d:] = seq[: steps - d]
    return "seq", out


def _count(events, fan):
    """Events per pre neuron (B, N_pre) times fan-out (N_pre,): exact integers via float64."""
    return (events.to(_torch().float64) @ fan).round().to(_torch().int64)


def _add(a, b):
    if a is None:
        return b
    (ka, ca), (kb, cb) = a, b
    return ("const" if ka == kb == "const" else "seq"), ca + cb


def _run_batch(network, order, x, steps, checkpoints, sample0, seed, cache):
    torch = _torch()
    dt = network.dt_s
    outputs, spikes_per_sample, synops = {}, {}, {}
    fanouts = cache["fanouts"]
    for pop in order:
        if pop.is_input:
            outputs[pop.name] = _encode(pop, x, steps, dt, sample0, seed, cache["dtype"])
            if outputs[pop.name][0] == "seq":
                spikes_per_sample[pop.name] = outputs[pop.name][1].sum(dim=(0, 2)).to(torch.int64)
            continue
        current = None
        syn = torch.zeros(x.shape[0], dtype=torch.int64, device=x.device)
        for proj in cache["into"][pop.name]:
            kind, pre = outputs[proj.pre]
            fan = fanouts[proj.name]
            d = proj.delay_steps
            delivered = max(steps - d, 0)  # spikes emitted in the last d steps arrive after the run
            if kind == "const":
                # an analog value is one event per step per existing synapse when nonzero
                syn += _count(pre != 0, fan) * delivered
                c = _apply_ops(proj, pre, cache)
            else:
                if delivered:
                    syn += _count(pre[:delivered].sum(dim=0), fan)
                c = _apply_ops(proj, pre.reshape(steps * pre.shape[1], -1), cache)
                c = c.reshape(steps, pre.shape[1], -1)
            current = _add(current, _delay(kind, c, d, steps))
        bias = None
        if pop.bias is not None:
            bias = _tensor(cache, ("bias", pop.name), lambda: pop.bias.reshape(-1))
        if current is None:
            current = ("const", torch.zeros((x.shape[0], pop.size), dtype=cache["dtype"], device=x.device))
        elif bias is not None and pop.neuron.syn_decay is None and not pop.neuron.refractory_steps:
            current, bias = (current[0], current[1] + bias), None  # fold the bias in once
        is_out = pop.name == network.output
        spk, counts, preds = _integrate(pop, current, bias, steps, checkpoints, is_out)
        outputs[pop.name] = ("seq", spk)
        spikes_per_sample[pop.name] = spk.sum(dim=(0, 2)).to(torch.int64)
        synops[pop.name] = syn
        if is_out:
            out_counts, out_preds = counts, torch.stack(preds, dim=1)
        # free what no later population needs
        for name in [n for n in outputs if n not in cache["needed_after"][pop.name]]:
            del outputs[name]
    return out_preds, out_counts, spikes_per_sample, synops


def _batch_size(network, steps, samples, memory_bytes, itemsize):
    # the widest live spike train dominates: (T, B, N) for a population and its current
    widest = max(p.size for p in network.populations)
    per_sample = 3 * steps * widest * itemsize
    return int(max(1, min(samples, memory_bytes // max(per_sample, 1))))


def run(network: Network, x, steps: int, *, checkpoints=None, device=None, batch_size=None, seed: int = 0,
        memory_bytes: int = DEFAULT_MEMORY_BYTES, progress=None) -> Activity:
    """Simulate ``network`` on samples ``x`` for ``steps`` steps.

    Parameters
    ----------
    x : array of shape (samples, *input_shape) (any shape with the same size per sample)
    steps : number of time steps T
    checkpoints : step counts at which to record predictions (default: [steps])
    device : "cpu", "cuda" or None (CUDA when available)
    batch_size : samples per batch (default: chosen from ``memory_bytes``)
    seed : seed of Poisson input
    progress : an object with ``update(n)`` called after each batch

    Example
    -------
    >>> act = run(net, dataset.x("test"), steps=64)          # doctest: +SKIP
    >>> act.accuracy(dataset.y("test"))                      # doctest: +SKIP
    """
    torch = _torch()
    network.validate()
    steps = int(steps)
    if steps < 1:
        raise SpikeportError(f"steps must be at least 1, got {steps}")
    checkpoints = sorted({int(c) for c in (checkpoints or [])} | {steps})
    if checkpoints[0] < 1 or checkpoints[-1] > steps:
        raise SpikeportError(f"checkpoints must lie in [1, {steps}], got {checkpoints}")
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SpikeportError("--device cuda: no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise SpikeportError(f"unknown device {device!r} (cpu or cuda)")
    x = np.asarray(x, dtype=np.float32)
    inp = network.population(network.input)
    if x.ndim < 1 or (x.size and x[0].size != inp.size):
        raise SpikeportError(f"input samples of shape {x.shape[1:]} do not fit input population "
                             f"{inp.name!r} of shape {inp.shape}")
    samples = len(x)
    if samples == 0:
        raise SpikeportError("no samples to simulate")
    try:
        order = network.order(all_projections=True)
    except SpikeportError as exc:
        raise SpikeportError(f"the reference executor runs feed-forward networks only: {exc}") from None
    dtype = torch.float32
    cache = {"dtype": dtype, "device": device, "shapes": {p.name: tuple(p.shape) for p in network.populations},
             "into": {p.name: network.projections_into(p.name) for p in network.populations},
             "fanouts": {pr.name: torch.as_tensor(pr.synapses_per_pre(network.population(pr.pre).shape).reshape(-1),
                                                  dtype=torch.float64, device=device) for pr in network.projections}}
    # which outputs must stay alive after each population is computed
    needed_after = {}
    for k, pop in enumerate(order):
        later = order[k + 1:]
        needed_after[pop.name] = {pr.pre for q in later for pr in cache["into"][q.name]}
    cache["needed_after"] = needed_after
    bs = batch_size or _batch_size(network, steps, samples, memory_bytes, 4)
    preds, counts = [], []
    pop_spikes = {p.name: [] for p in network.populations}
    syn = {p.name: [] for p in network.populations if not p.is_input}
    start = time.perf_counter()
    with torch.no_grad():
        for s0 in range(0, samples, bs):
            xb = torch.as_tensor(x[s0:s0 + bs].reshape(-1, inp.size), device=device)
            p, c, sp, sy = _run_batch(network, order, xb, steps, checkpoints, s0, seed, cache)
            preds.append(p.cpu().numpy())
            counts.append(c.cpu().numpy())
            for k, v in sp.items():
                pop_spikes[k].append(v.cpu().numpy())
            for k, v in sy.items():
                syn[k].append(v.cpu().numpy())
            if progress is not None:
                progress.update(len(xb))
    if device == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return Activity(backend="reference", steps=steps, dt_s=network.dt_s, checkpoints=checkpoints,
                    predictions=np.concatenate(preds), output_counts=np.concatenate(counts),
                    population_spikes={k: np.concatenate(v) for k, v in pop_spikes.items() if v},
                    synops={k: np.concatenate(v) for k, v in syn.items()},
                    neurons={p.name: p.size for p in network.populations}, seconds=seconds, device=device)
