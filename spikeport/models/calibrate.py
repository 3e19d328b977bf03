"""Adjustments of a converted network computed from calibration data, and its rate model.

All three work on the graph alone (any spiking network of IF/LIF populations,
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
  can also be chosen on labelled calibration data (:func:`choose_l4_alpha`).
- :func:`calibrate_bias`: bias calibration (Li et al. 2021, "A free lunch from
  ANN", bias correction): layer by layer in topological order, simulate the
  calibration samples for T steps, and add to every neuron's bias the mean
  (over samples, and over positions within a channel of a convolution) of
  rate-model rate minus measured SNN rate, so that the SNN's expected rate of
  each channel matches the ANN's at that T. Their potential correction
  is :func:`calibrate_membrane`: the same per-channel error, times T, added once to the
  initial membrane (``Population.v_init``, per neuron) instead of to the bias.
- :func:`calibrate_weights`: their weight calibration, layer by layer, each layer's
  weights fitted (a convex least-squares problem) so that the drive it gets from the
  SNN's measured input rates matches the drive the ANN's activations give it, then
  its bias calibrated as above.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..errors import SpikeportError
from .torch_import import _weighted_index, scale_chain_channels

L4_MODES = ("scale", "shift")
SIGMAS = ("l4", "exact")


def _torch():
    import torch
    return torch


def _ops_cache(net):
    torch = _torch()
    return {"dtype": torch.float64, "device": "cpu", "shapes": {p.name: tuple(p.shape) for p in net.populations}}


def _input_rate(pop, x, dt_s):
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


def rate_model(net, x, batch_size: int = 256) -> dict:
    """Per population, the rate-model rates (spikes per step), float64 (samples, size); see the module."""
    torch = _torch()
    x = np.asarray(x, dtype=np.float64)
    inp = net.population(net.input)
    x = x.reshape(len(x), -1)
    if x.shape[1] != inp.size:
        raise SpikeportError(f"calibration samples of size {x.shape[1]} do not fit input population "
                             f"{inp.name!r} of shape {inp.shape}")
    cache = _ops_cache(net)
    order = net.order(all_projections=True)
    out = {p.name: [] for p in order}
    with torch.no_grad():
        for s0 in range(0, len(x), batch_size):
            rates = {}
            for pop in order:
                if pop.is_input:
                    r = _input_rate(pop, torch.as_tensor(x[s0:s0 + batch_size]), net.dt_s)
                else:
                    r = neuron_rate(pop.neuron, _drive(net, pop, rates, len(x[s0:s0 + batch_size]), cache))
                rates[pop.name] = r
                out[pop.name].append(r.numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


# ----------------------------------------------------------------------------- per-channel edits

def _channels(pop):
    """Number of channels of a population: the first axis of a (C, H, W) shape, else every neuron."""
    return pop.shape[0] if len(pop.shape) == 3 else pop.size


def _per_channel(pop, values):
    """The mean of per-neuron ``values`` over each channel's neurons."""
    c = _channels(pop)
    return values.reshape(c, -1).mean(axis=1)


def _to_population(pop, per_channel):
    """A per-channel vector broadcast to the population's shape."""
    if len(pop.shape) == 3:
        return np.broadcast_to(per_channel.reshape(-1, 1, 1), pop.shape)
    return per_channel.reshape(pop.shape)


def _bias(pop):
    return np.zeros(pop.shape) if pop.bias is None else pop.bias.astype(np.float64)


def _replace(net, populations=None, projections=None, note=None):
    meta = dict(net.metadata)
    if note is not None:
        conv = dict(meta.get("conversion", {}))
        conv["adjustments"] = list(conv.get("adjustments", [])) + [note]
        meta["conversion"] = conv
    return dataclasses.replace(net, populations=populations or list(net.populations),
                               projections=projections or list(net.projections), metadata=meta).validate()


def _check_steps(steps):
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
    steps = _check_steps(steps)
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
        bias = _bias(pop)
        if mode == "scale":
            factor = 1.0 + alpha * math.sqrt(2 / math.pi) * _per_channel(pop, sig) / (a * math.sqrt(steps))
            new_bias = bias / _to_population(pop, factor)
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
    out = _replace(net, [pops[p.name] for p in net.populations], projs, note)
    return out, report


def choose_l4_alpha(net, x, y, steps: int, *, alphas=(0.0, 0.25, 0.5, 1.0, 2.0, 4.0), mode: str = "scale",
                    sigma: str = "l4", seed: int = 1):
    """The alpha of :func:`l4_adjust` with the best accuracy on labelled calibration data (x, y) at T = steps.

    Simulated with the network's own input encoding and a seed that differs from the
    evaluation's default. Returns (alpha, {alpha: accuracy}); ties go to the smaller alpha.
    """
    from ..backends.reference import run

    scores = {}
    stats = l4_statistics(net, x, sigma)
    for a in alphas:
        adjusted = l4_adjust(net, x, steps, alpha=a, mode=mode, stats=stats)[0] if a else net
        scores[float(a)] = run(adjusted, x, steps, seed=seed).accuracy(y)
    best = max(scores.values())
    return min(a for a, s in scores.items() if s == best), scores


# ----------------------------------------------------------------------------- bias calibration

def calibrate_bias(net, x, steps: int, *, seed: int = 1, target: dict | None = None):
    """Bias calibration for T = ``steps`` (module docstring), layer by layer. Returns (network, report).

    ``target``: per population, the rates to calibrate towards, (samples, size) for the
    samples ``x``; default the network's rate model. Pass the ANN's own activations
    (:func:`spikeport.models.diagnose.ann_rates`) where the ANN is not the rate model
    of its graph, e.g. a QCFS network, whose quantization the rate model does not have.
    """
    return _calibrate_layers(net, x, steps, seed, target, {"method": "bias-calibration"}, _bias_step)


def calibrate_membrane(net, x, steps: int, *, seed: int = 1, target: dict | None = None):
    """Potential correction (Li et al. 2021) for T = ``steps``, layer by layer. Returns (network, report).

    Each neuron's initial membrane moves by T * theta times its channel's mean (over
    samples and positions) of target minus measured rate: the charge of the spikes the
    channel misses over T steps, given once at the start, where bias calibration spreads
    it over the steps. ``target`` as in :func:`calibrate_bias`.
    """
    return _calibrate_layers(net, x, steps, seed, target, {"method": "membrane-calibration"}, _membrane_step)


def _calibrate_layers(net, x, steps, seed, target, note, step):
    """Layer by layer in topological order, ``step(net, name, measure, target, steps)`` edits the
    population, ``measure(net)`` giving the SNN's rates with the layers before already edited."""
    steps = _check_steps(steps)
    target_is_model = target is None
    target = dict(rate_model(net, x) if target is None else target)
    target.setdefault(net.input, _input_rates(net, x))

    def measure(n):
        return _measured_rates(n, x, steps, seed)

    report = []
    for pop in net.order(all_projections=False):
        if pop.is_input:
            continue
        net, change = step(net, pop.name, measure, target, steps)
        report.append({"population": pop.name, **change})
    note = {**note, "steps": steps, "calibration_samples": int(len(x)), "seed": seed,
            "target": "rate model" if target_is_model else "given"}
    return _replace(net, note=note), report


def _rate_error(pop, measured, target):
    """Per channel, the mean over samples and positions of target minus measured rate."""
    return _per_channel(pop, (target[pop.name] - measured[pop.name]).mean(axis=0))


def _measured_rates(net, x, steps, seed):
    """Per population, the SNN's spikes per step on samples ``x`` over ``steps`` steps (samples, size);
    for analog input the input values themselves."""
    from ..backends.reference import run

    act = run(net, x, steps, seed=seed, record_counts=True)
    out = {k: v.reshape(len(x), -1) / steps for k, v in act.neuron_counts.items()}
    if net.population(net.input).encoding.kind == "analog" or net.input not in out:
        out[net.input] = _input_rates(net, x)
    return out


def _input_rates(net, x):
    """The input population's rate-model rates on samples ``x`` (samples, size), float64."""
    x = _torch().as_tensor(np.asarray(x, dtype=np.float64).reshape(len(x), -1))
    return _input_rate(net.population(net.input), x, net.dt_s).numpy()


def _bias_step(net, name, measure, target, steps):
    """Population ``name``'s bias moved by theta times its per-channel rate error."""
    pop = net.population(name)
    per_channel = _rate_error(pop, measure(net), target)
    bias = _bias(pop) + _to_population(pop, per_channel) * float(pop.neuron.threshold)
    new = dataclasses.replace(pop, bias=bias.astype(np.float32))
    net = _replace(net, [new if p.name == name else p for p in net.populations])
    return net, {"rate_error_before": float(np.abs(per_channel).mean()), "mean_shift": float(per_channel.mean())}


def _membrane_step(net, name, measure, target, steps):
    """Population ``name``'s initial membranes moved by T theta times its per-channel rate error."""
    pop = net.population(name)
    per_channel = _rate_error(pop, measure(net), target)
    v_init = pop.initial_membrane() + _to_population(pop, per_channel) * float(pop.neuron.threshold) * steps
    new = dataclasses.replace(pop, v_init=v_init.astype(np.float32))
    net = _replace(net, [new if p.name == name else p for p in net.populations])
    return net, {"rate_error_before": float(np.abs(per_channel).mean()),
                 "mean_v_init_shift": float(per_channel.mean() * float(pop.neuron.threshold) * steps)}


# ----------------------------------------------------------------------------- weight calibration

def calibrate_weights(net, x, steps: int, *, seed: int = 1, target: dict | None = None, ridge: float = 1e-3,
                      iterations: int = 50, bias: bool = True):
    """Weight calibration for T = ``steps``, layer by layer, each layer followed by bias calibration.

    Li et al. 2021's "advanced pipeline" calibrates each layer's weights so that the
    SNN's layer output follows the ANN's. Ours, per population in topological order:
    simulate the calibration samples with the layers before it already calibrated,
    measure the rates r of the populations that project into it, and choose the
    weights W' of the weighted op (dense or conv2d) of each projection into it to minimize

        mean over samples and neurons of h(z'(W', r), z*)^2 / theta^2
        + ridge * ||W' - W||^2 / ||W||^2

    where z' = sum A_W'(r) + b is the drive the population gets from the SNN's
    measured input and z* the drive the target rates (the ANN's activations, or the
    rate model) give it through the original weights; h is the error that matters to
    an IF neuron of threshold theta: none where both drives lie below 0 or both above
    the saturating drive theta / (1 + refractory), else z' - z* (with the clipped side
    measured to its edge). The objective is convex in W' (a sum of squared hinges of
    linear maps); it is minimized with L-BFGS from W. Then (``bias``) the population's
    bias is calibrated as in :func:`calibrate_bias`. Returns (network, report).
    """
    if not (math.isfinite(ridge) and ridge >= 0):
        raise SpikeportError(f"ridge must be a finite number >= 0, got {ridge}")

    def step(net, name, measure, target, steps):
        net, fit = _fit_weights(net, name, measure(net), target, ridge, iterations)
        if bias:
            net, change = _bias_step(net, name, measure, target, steps)
            fit.update(change)
        return net, fit

    return _calibrate_layers(net, x, steps, seed, target, {"method": "weight-calibration", "ridge": float(ridge),
                                                            "bias": bool(bias)}, step)


def _drive(net, pop, rates, rows, cache, weights=None):
    """The per-step drive of ``pop`` (rows, size), float64, from ``rates`` of its pre populations:
    sum over projections of A(rate) (divided by 1 - alpha with a synaptic current) + bias.
    ``weights``: per projection name, a torch tensor to use for its weighted op instead of the graph's."""
    from ..backends.reference import TORCH_OPS

    torch = _torch()
    z = torch.zeros((rows, pop.size), dtype=torch.float64)
    for proj in net.projections_into(pop.name):
        h = torch.as_tensor(rates[proj.pre], dtype=torch.float64).reshape((rows,) + tuple(net.population(proj.pre).shape))
        w = (weights or {}).get(proj.name)
        i = _weighted_index(proj.ops) if w is not None else None
        for j, op in enumerate(proj.ops):
            if j != i:
                h = TORCH_OPS[op.kind](op, h, cache)
            elif op.kind == "dense":
                h = h.reshape(rows, -1) @ w.T
            else:
                h = torch.nn.functional.conv2d(h, w, stride=op.stride, padding=op.padding, dilation=op.dilation,
                                               groups=op.groups)
        z = z + h.reshape(rows, -1)
    if pop.neuron.syn_decay is not None:
        z = z / (1.0 - pop.neuron.syn_decay)
    if pop.bias is not None:
        z = z + torch.as_tensor(pop.bias.reshape(1, -1), dtype=torch.float64)
    return z


def _fit_weights(net, name, measured, target, ridge, iterations):
    """The weights of the projections into population ``name`` fitted as in :func:`calibrate_weights`."""
    torch = _torch()
    pop = net.population(name)
    projs = [pr for pr in net.projections_into(name) if _weighted_index(pr.ops) is not None]
    if not projs:
        return net, {"fitted": False}
    cache = _ops_cache(net)
    rows = len(measured[net.input])
    theta = float(pop.neuron.threshold)
    hi = theta / (1 + pop.neuron.refractory_steps)
    original = {pr.name: torch.as_tensor(pr.ops[_weighted_index(pr.ops)].weight, dtype=torch.float64) for pr in projs}
    norm = sum(float((w ** 2).sum()) for w in original.values()) or 1.0
    with torch.no_grad():
        z_star = _drive(net, pop, target, rows, cache)
    params = {k: w.clone().requires_grad_(True) for k, w in original.items()}

    def objective():
        z = _drive(net, pop, measured, rows, cache, params)
        err = torch.where(z_star <= 0, torch.relu(z), torch.where(z_star >= hi, -torch.relu(hi - z), z - z_star))
        fit = (err ** 2).mean() / theta ** 2
        return fit, fit + ridge * sum(((params[k] - original[k]) ** 2).sum() for k in params) / norm

    opt = torch.optim.LBFGS(list(params.values()), max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = objective()[1]
        loss.backward()
        return loss

    with torch.no_grad():
        before = float(objective()[0])
    opt.step(closure)
    with torch.no_grad():
        after = float(objective()[0])
    new_projs = []
    for pr in net.projections:
        if pr.name in params:
            i = _weighted_index(pr.ops)
            ops = list(pr.ops)
            ops[i] = dataclasses.replace(ops[i], weight=params[pr.name].detach().numpy().astype(np.float32))
            pr = dataclasses.replace(pr, ops=ops)
        new_projs.append(pr)
    change = math.sqrt(sum(float(((params[k].detach() - original[k]) ** 2).sum()) for k in params) / norm)
    return _replace(net, projections=new_projs), {"fitted": True, "drive_error_before": math.sqrt(before),
                                                  "drive_error_after": math.sqrt(after), "weight_change": change}
