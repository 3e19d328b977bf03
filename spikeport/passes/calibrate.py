"""Calibrations of a converted network that simulate it: towards the ANN, layer by layer.

What each does, and the L4-norm adjustment and rate model they build on:
:mod:`spikeport.models.calibrate` (the graph-only half). This half runs the reference
executor, so it sits above ``models`` and ``backends``:

- :func:`choose_l4_alpha`: the L4 strength with the best accuracy on labelled calibration data;
- :func:`calibrate_bias`, :func:`calibrate_membrane`: Li et al. 2021's bias calibration and
  potential correction;
- :func:`calibrate_weights`: their weight calibration, each layer then its bias.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ..backends.reference import run
from ..errors import SpikeportError
from ..models.calibrate import (bias_of, check_steps, drive, input_rate, l4_adjust, l4_statistics, ops_cache,
                                per_channel, rate_model, replace_network, to_population)
from ..models.torch_import import weighted_index


def _torch():
    import torch
    return torch


def choose_l4_alpha(net, x, y, steps: int, *, alphas=(0.0, 0.25, 0.5, 1.0, 2.0, 4.0), mode: str = "scale",
                    sigma: str = "l4", seed: int = 1):
    """The alpha of :func:`l4_adjust` with the best accuracy on labelled calibration data (x, y) at T = steps.

    Simulated with the network's own input encoding and a seed that differs from the
    evaluation's default. Returns (alpha, {alpha: accuracy}); ties go to the smaller alpha.
    """
    scores = {}
    stats = l4_statistics(net, x, sigma)
    for a in alphas:
        adjusted = l4_adjust(net, x, steps, alpha=a, mode=mode, stats=stats)[0] if a else net
        scores[float(a)] = run(adjusted, x, steps, seed=seed).accuracy(y)
    best = max(scores.values())
    return min(a for a, s in scores.items() if s == best), scores


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
    steps = check_steps(steps)
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
    return replace_network(net, note=note), report


def _rate_error(pop, measured, target):
    """Per channel, the mean over samples and positions of target minus measured rate."""
    return per_channel(pop, (target[pop.name] - measured[pop.name]).mean(axis=0))


def _measured_rates(net, x, steps, seed):
    """Per population, the SNN's spikes per step on samples ``x`` over ``steps`` steps (samples, size);
    for analog input the input values themselves."""
    act = run(net, x, steps, seed=seed, record_counts=True)
    out = {k: v.reshape(len(x), -1) / steps for k, v in act.neuron_counts.items()}
    if net.population(net.input).encoding.kind == "analog" or net.input not in out:
        out[net.input] = _input_rates(net, x)
    return out


def _input_rates(net, x):
    """The input population's rate-model rates on samples ``x`` (samples, size), float64."""
    x = _torch().as_tensor(np.asarray(x, dtype=np.float64).reshape(len(x), -1))
    return input_rate(net.population(net.input), x, net.dt_s).numpy()


def _bias_step(net, name, measure, target, steps):
    """Population ``name``'s bias moved by theta times its per-channel rate error."""
    pop = net.population(name)
    per_channel = _rate_error(pop, measure(net), target)
    bias = bias_of(pop) + to_population(pop, per_channel) * float(pop.neuron.threshold)
    new = dataclasses.replace(pop, bias=bias.astype(np.float32))
    net = replace_network(net, [new if p.name == name else p for p in net.populations])
    return net, {"rate_error_before": float(np.abs(per_channel).mean()), "mean_shift": float(per_channel.mean())}


def _membrane_step(net, name, measure, target, steps):
    """Population ``name``'s initial membranes moved by T theta times its per-channel rate error."""
    pop = net.population(name)
    per_channel = _rate_error(pop, measure(net), target)
    v_init = pop.initial_membrane() + to_population(pop, per_channel) * float(pop.neuron.threshold) * steps
    new = dataclasses.replace(pop, v_init=v_init.astype(np.float32))
    net = replace_network(net, [new if p.name == name else p for p in net.populations])
    return net, {"rate_error_before": float(np.abs(per_channel).mean()),
                 "mean_v_init_shift": float(per_channel.mean() * float(pop.neuron.threshold) * steps)}


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


def _fit_weights(net, name, measured, target, ridge, iterations):
    """The weights of the projections into population ``name`` fitted as in :func:`calibrate_weights`."""
    torch = _torch()
    pop = net.population(name)
    projs = [pr for pr in net.projections_into(name) if weighted_index(pr.ops) is not None]
    if not projs:
        return net, {"fitted": False}
    cache = ops_cache(net)
    rows = len(measured[net.input])
    theta = float(pop.neuron.threshold)
    hi = theta / (1 + pop.neuron.refractory_steps)
    original = {pr.name: torch.as_tensor(pr.ops[weighted_index(pr.ops)].weight, dtype=torch.float64) for pr in projs}
    norm = sum(float((w ** 2).sum()) for w in original.values()) or 1.0
    with torch.no_grad():
        z_star = drive(net, pop, target, rows, cache)
    params = {k: w.clone().requires_grad_(True) for k, w in original.items()}

    def objective():
        z = drive(net, pop, measured, rows, cache, params)
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
            i = weighted_index(pr.ops)
            ops = list(pr.ops)
            ops[i] = dataclasses.replace(ops[i], weight=params[pr.name].detach().numpy().astype(np.float32))
            pr = dataclasses.replace(pr, ops=ops)
        new_projs.append(pr)
    change = math.sqrt(sum(float(((params[k].detach() - original[k]) ** 2).sum()) for k in params) / norm)
    return replace_network(net, projections=new_projs), {"fitted": True, "drive_error_before": math.sqrt(before),
                                                  "drive_error_after": math.sqrt(after), "weight_change": change}
