"""Adjustments of a converted network computed from calibration data, and its rate model.

This module is the graph-only half (rate model, L4); the calibrations that simulate the
network (and the choice of the L4 strength) are :mod:`spikeport.passes.calibrate`. All work
on the graph alone (any spiking network of IF/LIF populations,
whether spikeport converted it from PyTorch or imported it from NIR):

- :func:`rate_model`: the rate-coded ANN that the network approximates. Per
  population, the per-step drive z = sum over projections of A(rate of pre)
  (divided by 1 - alpha with a synaptic current) + bias, and the rate in spikes
  per step: IF with threshold theta: clip(z / theta, 0, 1 / (1 + refractory));
  LIF with reset to zero: one spike per k + refractory steps, k the steps a
  membrane starting at 0 needs to reach theta; LIF with reset by subtraction
  (whose residue has no closed form): the neuron simulated alone under the
  constant drive for 400 steps. Input: analog values as they are; Poisson / regular input:
  the spike probability per step, clip(x * max_rate * dt, 0, 1).
- :func:`l4_adjust`: the L4-norm weight adjustment (Allred & Roy, arXiv
  2111.09446). Only the paper's abstract is public; the formula below is OUR
  derivation (../shared/notes/methods.md, docs/conversion.md), not the
  authors'. With rate-coded input the membrane of neuron j is a noisy walk;
  spikes are never taken back, so the count follows the walk's running
  maximum and noise biases it UP, by about sigma_j * sqrt(2 T / pi) spikes near
  zero drift. Per step, sigma_j^2 = sum_i w_ji^2 v_i (v_i = r_i (1 - r_i), the
  variance of a Bernoulli spike train of rate r_i), and by Cauchy-Schwarz
  sigma_j <= ||w_j||_4 * ||v||_2^(1/2) = ||w_j||_4 * s, s shared by a layer.
  Modes:

  - ``scale``: w_j, b_j <- (w_j, b_j) / (1 + alpha * sqrt(2/pi) * sigma_j / (a * sqrt(T))),
    a = the mean positive rate of the population (the paper's multiplicative form,
    alpha_0 = s sqrt(2/pi) / a); per output channel for convolutions (the
    kernel is shared by a channel, so is ||w_j||_4 away from the borders);
  - ``shift``: b_j <- b_j - alpha * sqrt(2/pi) * sigma_j / sqrt(T), per neuron:
    subtracts the expected upward bias of the running maximum at zero drift.

  sigma_j is the L4 bound (``sigma="l4"``: s = mean over samples of
  ||v||_2^(1/2), summed in quadrature over the projections into the
  population) or the exact per-neuron value (``sigma="exact"``: the root mean
  over samples of sum_i w_ji^2 v_i). alpha = 1 is the theory value; ``alpha``
  can also be chosen on labelled calibration data (:func:`spikeport.passes.calibrate.choose_l4_alpha`).
- :func:`spikeport.passes.calibrate.calibrate_bias`: bias calibration (Li et al. 2021, "A free lunch from
  ANN", bias correction): layer by layer in topological order, simulate the
  calibration samples for T steps, and add to every neuron's bias the mean
  (over samples, and over positions within a channel of a convolution) of
  rate-model rate minus measured SNN rate, so that the SNN's expected rate of
  each channel matches the ANN's at that T. Their potential correction
  is ``calibrate_membrane``: the same per-channel error, times T, added once to the
  initial membrane (``Population.v_init``, per neuron) instead of to the bias.
- ``calibrate_weights``: their weight calibration, layer by layer, each layer's
  weights fitted (a convex least-squares problem) so that the drive it gets from the
  SNN's measured input rates matches the drive the ANN's activations give it, then
  its bias calibrated as above.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import SpikeportError
from ..ir.kernels import TORCH_OPS
from .torch_import import weighted_index, scale_chain_channels

L4_MODES = ("scale", "shift")
SIGMAS = ("l4", "exact")


def _torch():
    import torch
    return torch


def ops_cache(net):
    torch = _torch()
    return {"dtype": torch.float64, "device": "cpu", "shapes": {p.name: tuple(p.shape) for p in net.populations}}


def input_rate(pop, x, dt_s):
    if pop.encoding.kind == "analog":
        return x
    return (x * pop.encoding.max_rate_hz * dt_s).clamp(0.0, 1.0)


def neuron_rate(nm, z):
    """Spikes per step of neurons of model ``nm`` under a constant per-step drive ``z`` (a torch tensor)."""
    torch = _torch()
    cap = 1.0 / (1 + nm.refractory_steps)
    theta = float(nm.threshold)
    if nm.model == "if" or nm.decay >= 1.0:
        return (z / theta).clamp(0.0, cap)
    lam = float(nm.decay)
    if nm.reset == "subtract":
        return _simulated_rate(nm, z)
    if lam == 0.0:
        return torch.where(z >= theta, torch.full_like(z, cap), torch.zeros_like(z))
    # z (1 - lam^k) / (1 - lam) >= theta  <=>  lam^k <= 1 - theta (1 - lam) / z
    q = 1.0 - theta * (1.0 - lam) / z.clamp(min=1e-30)
    k = torch.ceil(torch.log(q.clamp(min=1e-30)) / math.log(lam)).clamp(min=1.0)
    return torch.where(q > 0, 1.0 / (k + nm.refractory_steps), torch.zeros_like(z))


LIF_RATE_STEPS = 400


def _simulated_rate(nm, z):
    """LIF with reset by subtraction keeps the residue above threshold, which has no closed form:
    the neuron alone under the constant drive z for LIF_RATE_STEPS steps (exact to 1 / LIF_RATE_STEPS)."""
    torch = _torch()
    v = torch.zeros_like(z)
    left = torch.zeros_like(z)
    count = torch.zeros_like(z)
    theta, lam, ref = float(nm.threshold), float(nm.decay), int(nm.refractory_steps)
    for _ in range(LIF_RATE_STEPS):
        active = left <= 0
        v = torch.where(active, lam * v + z, v)
        spike = active & (v >= theta)
        v = torch.where(spike, v - theta, v)
        count += spike
        left = torch.where(spike, torch.full_like(left, ref), left - 1)
    return count / LIF_RATE_STEPS


def rate_model(net, x, batch_size: int = 256, output_drive: bool = False) -> dict:
    """Per population, the rate-model rates (spikes per step), float64 (samples, size); see the module.
    ``output_drive``: for the output population its per-step drive instead of its rate."""
    torch = _torch()
    x = np.asarray(x, dtype=np.float64)
    inp = net.population(net.input)
    x = x.reshape(len(x), -1)
    if x.shape[1] != inp.size:
        raise SpikeportError(f"calibration samples of size {x.shape[1]} do not fit input population "
                             f"{inp.name!r} of shape {inp.shape}")
    cache = ops_cache(net)
    order = net.order(all_projections=True)
    out = {p.name: [] for p in order}
    with torch.no_grad():
        for s0 in range(0, len(x), batch_size):
            rates = {}
            for pop in order:
                if pop.is_input:
                    r = input_rate(pop, torch.as_tensor(x[s0:s0 + batch_size]), net.dt_s)
                elif output_drive and pop.name == net.output:
                    r = drive(net, pop, rates, len(x[s0:s0 + batch_size]), cache)
                else:
                    r = neuron_rate(pop.neuron, drive(net, pop, rates, len(x[s0:s0 + batch_size]), cache))
                rates[pop.name] = r
                out[pop.name].append(r.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def output_scores(net, x) -> np.ndarray:
    """The rate model's answer per sample and class, (samples, classes): the output population's rates,
    or its drive where the network reads the output's membrane (a non-spiking output: its steady
    membrane ranks the classes as its drive does)."""
    return rate_model(net, x, output_drive=net.reads_output_membrane)[net.output].reshape(len(x), -1)


# ----------------------------------------------------------------------------- per-channel edits

def channels(pop):
    """Number of channels of a population: the first axis of a (C, H, W) shape, else every neuron."""
    return pop.shape[0] if len(pop.shape) == 3 else pop.size


def per_channel(pop, values):
    """The mean of per-neuron ``values`` over each channel's neurons."""
    c = channels(pop)
    return values.reshape(c, -1).mean(axis=1)


def to_population(pop, per_channel):
    """A per-channel vector broadcast to the population's shape."""
    if len(pop.shape) == 3:
        return np.broadcast_to(per_channel.reshape(-1, 1, 1), pop.shape)
    return per_channel.reshape(pop.shape)


def bias_of(pop):
    return np.zeros(pop.shape) if pop.bias is None else pop.bias.astype(np.float64)


def replace_network(net, populations=None, projections=None, note=None):
    meta = dict(net.metadata)
    if note is not None:
        conv = dict(meta.get("conversion", {}))
        conv["adjustments"] = list(conv.get("adjustments", [])) + [note]
        meta["conversion"] = conv
    return dataclasses.replace(net, populations=populations or list(net.populations),
                               projections=projections or list(net.projections), metadata=meta).validate()


def check_steps(steps):
    steps = int(steps)
    if steps < 1:
        raise SpikeportError(f"the adjustment needs the number of steps T >= 1 it is made for, got {steps}")
    return steps


# ----------------------------------------------------------------------------- L4 adjustment

def _spike_variance(pop, rates):
    """Per-step variance of each source neuron's output: r (1 - r) for spikes, 0 for analog values."""
    if pop.is_input and pop.encoding.kind == "analog":
        return np.zeros_like(rates)
    r = np.clip(rates, 0.0, 1.0)
    return r * (1.0 - r)


def _sigma(net, pop, rates, sigma):
    """Per neuron of ``pop``: the per-step standard deviation of its input current (module docstring)."""
    torch = _torch()
    total = np.zeros(pop.size)
    for proj in net.projections_into(pop.name):
        pre = net.population(proj.pre)
        syn = proj.materialize(pre.shape)
        var = _spike_variance(pre, rates[pre.name])  # (samples, n_pre)
        if sigma == "l4":
            s2 = float(np.mean(np.sqrt(np.sqrt((var ** 2).sum(axis=1))))) ** 2   # (mean ||v||_2^(1/2))^2
            l4sq = np.sqrt(np.bincount(syn.post, weights=syn.weight ** 4, minlength=pop.size))  # ||w_j||_4^2
            total += s2 * l4sq
        else:
            w2 = torch.sparse_coo_tensor(np.vstack([syn.post, syn.pre]), syn.weight ** 2, (pop.size, pre.size),
                                         check_invariants=False)
            per_sample = torch.sparse.mm(w2, torch.as_tensor(var.T)).numpy()  # (n_post, samples)
            total += per_sample.mean(axis=1)
    return np.sqrt(total)


def l4_statistics(net, x, sigma: str = "l4") -> dict:
    """What the L4 adjustment needs and does not depend on T: per spiking population,
    sigma_j (per neuron) and a (its mean positive rate), from calibration samples ``x``."""
    if sigma not in SIGMAS:
        raise SpikeportError(f"unknown sigma {sigma!r} (known: {', '.join(SIGMAS)})")
    rates = rate_model(net, x)
    stats = {"sigma": sigma, "samples": int(len(x)), "populations": {}}
    for pop in net.order(all_projections=True):
        if pop.is_input:
            continue
        r = rates[pop.name]
        positive = r[r > 0]
        stats["populations"][pop.name] = (_sigma(net, pop, rates, sigma), float(positive.mean()) if positive.size else 1.0)
    return stats


def l4_adjust(net, x, steps: int, *, alpha: float = 1.0, mode: str = "scale", sigma: str = "l4", stats=None):
    """The L4-norm adjustment for T = ``steps`` (module docstring). Returns (network, report).

    ``stats``: :func:`l4_statistics` of ``net`` (to adjust one network for several T
    without recomputing them); ``x`` is then not used.
    """
    steps = check_steps(steps)
    if mode not in L4_MODES:
        raise SpikeportError(f"unknown L4 adjustment mode {mode!r} (known: {', '.join(L4_MODES)})")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise SpikeportError(f"alpha must be a finite number >= 0, got {alpha}")
    stats = l4_statistics(net, x, sigma) if stats is None else stats
    pops, projs = {p.name: p for p in net.populations}, list(net.projections)
    report = []
    for pop in net.order(all_projections=True):
        if pop.is_input:
            continue
        sig, a = stats["populations"][pop.name]
        bias = bias_of(pop)
        if mode == "scale":
            factor = 1.0 + alpha * math.sqrt(2 / math.pi) * per_channel(pop, sig) / (a * math.sqrt(steps))
            new_bias = bias / to_population(pop, factor)
            projs = [dataclasses.replace(pr, ops=scale_chain_channels(pr.ops, 1.0 / factor, pop.shape))
                     if pr.post == pop.name else pr for pr in projs]
            change = {"factor_mean": float(factor.mean()), "factor_max": float(factor.max())}
        else:
            shift = alpha * math.sqrt(2 / math.pi) * sig / math.sqrt(steps)
            new_bias = bias - shift.reshape(pop.shape)
            change = {"shift_mean": float(shift.mean()), "shift_max": float(shift.max())}
        pops[pop.name] = dataclasses.replace(pop, bias=new_bias.astype(np.float32) if np.any(new_bias) else None)
        report.append({"population": pop.name, "sigma_mean": float(sig.mean()), "mean_positive_rate": a, **change})
    note = {"method": "l4", "mode": mode, "sigma": stats["sigma"], "alpha": float(alpha), "steps": steps,
            "calibration_samples": stats["samples"]}
    out = replace_network(net, [pops[p.name] for p in net.populations], projs, note)
    return out, report


def drive(net, pop, rates, rows, cache, weights=None):
    """The per-step drive of ``pop`` (rows, size), float64, from ``rates`` of its pre populations:
    sum over projections of A(rate) (divided by 1 - alpha with a synaptic current) + bias.
    ``weights``: per projection name, a torch tensor to use for its weighted op instead of the graph's."""
    torch = _torch()
    z = torch.zeros((rows, pop.size), dtype=torch.float64)
    for proj in net.projections_into(pop.name):
        h = torch.as_tensor(rates[proj.pre], dtype=torch.float64).reshape((rows,) + tuple(net.population(proj.pre).shape))
        ops_cache = cache
        w = (weights or {}).get(proj.name)
        if w is not None:  # the weighted op's kernel reads its weights from the cache: give it w there
            ops_cache = {**cache, id(proj.ops[weighted_index(proj.ops)]): w}
        for op in proj.ops:
            h = TORCH_OPS[op.kind](op, h, ops_cache)
        z = z + h.reshape(rows, -1)
    if pop.neuron.syn_decay is not None:
        z = z / (1.0 - pop.neuron.syn_decay)
    if pop.bias is not None:
        z = z + torch.as_tensor(pop.bias.reshape(1, -1), dtype=torch.float64)
    return z


