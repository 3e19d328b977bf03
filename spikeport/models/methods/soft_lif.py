"""Soft-LIF: train with a smoothed LIF rate curve and noise, run with LIF neurons
(Hunsberger & Eliasmith 2015, arXiv 1510.08829; 2016, arXiv 1611.05141).

The ANN. Every activation is the firing rate of a LIF neuron, times ``amp``::

    j = gain * x + neuron_bias                     (x: the layer's output W a + b)
    r(j) = amp / (tau_ref + tau_rc * log(1 + 1 / rho_gamma(j - 1)))
    rho_gamma(u) = gamma * log(1 + exp(u / gamma))  (soft-LIF; gamma -> 0 gives the LIF rate)

``neuron_bias`` = 1 puts the firing threshold at x = 0, as the authors' converter does
(nengo_extras/cuda_convnet.py builds each soft-LIF layer as a nengo ensemble with
gain ``a`` and bias 1). During training Gaussian noise of ``noise_hz`` (10-20 Hz in
the papers) is added to the rate, scaled by ``amp``, where j > 1 only (where the LIF
neuron fires); the last layer is linear and trained with softmax cross-entropy.

The SNN. Each soft-LIF layer becomes a LIF population of the graph
(:mod:`spikeport.ir.neurons`: v[t] = decay v[t-1] + i[t] + b, threshold 1): the
continuous LIF tau_rc dv/dt = J - v integrated exactly over a step is
v[t] = decay v[t-1] + (1 - decay) J with decay = exp(-dt / tau_rc), so the graph's input
per step must be (1 - decay) J. A spike of a neuron whose ANN output is amp * rate
carries amp / dt of that output, and an exponential synapse passes (1 - syn_decay)
of each step's input on per step at steady state, hence (:func:`gains`)::

    weights into a LIF layer:  (1 - decay) * gain * (1 - syn_decay) * (amp / dt, or 1 from the analog input)
    bias of a LIF layer:       (1 - decay) * (gain * b + neuron_bias)
    refractory_steps = tau_ref / dt, reset by subtraction

The output layer is a population of IF neurons (no leak, reset by subtraction, no
synapse): its input per step is z dt / amp (z: the ANN's logit, so one output spike
is worth amp / dt of logit, the hidden layers' code), its spike count is
floor(sum of its inputs), and the readout's order (most spikes, ties to the higher
membrane, which keeps the remainder) is the order of the logits integrated over the run.

The discrete LIF's rate (spikes only at step ends, whole refractory steps) differs
from the formula; :func:`spikeport.passes.lif_rate.graph_lif_rate_hz` measures it. Reset by
subtraction keeps the overshoot that reset to zero drops, so it stays close to the formula up
to the saturation at one spike per 1 + tau_ref / dt steps; reset to zero falls behind as J
grows. Nengo's LIF (the papers' simulator) places spikes inside the step and has no such
error. dt stays 1 ms, the papers'; the measured gaps and the trained LeNet's fastest rates
against the saturation are in docs/methods.md.

The synapse: the papers ran nengo with an alpha synapse of 0-5 ms; the graph has an
exponential one (``tau_syn_s``, 2 ms by default). Without it, spike-by-spike input raises
the mean rate of the layers fed by spikes against the ANN with the hard LIF curve (the
curve is convex near the threshold); the synapse averages the spikes back towards the
rate the ANN assumed. The rates with and without it and the choice of 2 ms are measured
in docs/methods.md, section "Measurements behind the design choices".

The trained LeNet's accuracy, ANN and SNN, is measured in bench/RESULTS.md, section
"Soft-LIF on MNIST LeNet"; on nengo-loihi's emulator in section "Confirmed on the
simulators the papers used (1,000 MNIST test images each)" (an earlier short run:
docs/methods.md, section "Measurements behind the design choices"). Loihi cannot reset
by subtraction, the one thing of this network it does not express (``Activity.notes``):
there it runs with reset to zero.
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import SpikeportError
from .base import Method, SpikingSpec, plain_network, retarget, steps_per

METHOD = Method(
    name="soft-lif",
    citation="Hunsberger & Eliasmith 2015, 'Spiking deep networks with LIF neurons', arXiv 1510.08829; "
             "Hunsberger & Eliasmith 2016, 'Training spiking deep networks for neuromorphic hardware', "
             "arXiv 1611.05141",
    ann="every ReLU replaced by the soft-LIF rate amp / (tau_ref + tau_rc log(1 + 1 / rho_gamma(j - 1))), "
        "j = gain x + neuron_bias, rho_gamma(u) = gamma log(1 + exp(u / gamma)); linear output layer",
    training="softmax cross-entropy on the linear output; Gaussian noise of noise_hz (times amp) on the rates "
             "where j > 1; Adam, cosine learning-rate decay",
    snn=SpikingSpec(neuron="lif", threshold=1.0, reset="subtract", encoding="analog", dt_s=1e-3, steps=100,
                    tau_rc_s=0.022, tau_ref_s=0.002, tau_syn_s=0.002, simulator="nengo-loihi",
                    notes="hidden layers LIF with weights (1 - decay) gain (1 - syn_decay) amp / dt and bias "
                          "(1 - decay)(gain b + neuron_bias); output layer IF (no leak, reset by subtraction, "
                          "no synapse) whose spike counts order like the logits; the image is a constant "
                          "current into the first layer"),
    defaults={"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "arch_flags": {"activation": "soft-lif"},
              "epochs": {"digits": 60, "mnist": 20, "fashion-mnist": 20, "mnist-5k": 30, "default": 10}},
    options={"amp": 0.063, "tau_rc_s": 0.022, "tau_ref_s": 0.002, "gain": 1.0, "neuron_bias": 1.0,
             "gamma": 0.02, "noise_hz": 10.0, "tau_syn_s": 0.002},
    default_arch={"digits": "mlp", "mnist": "lenet", "mnist-5k": "lenet", "fashion-mnist": "lenet", "default": "mlp"},
    # tau_syn_s is a method option (train with options={"tau_syn_s": ...}) and a keyword of
    # to_network, not a convert option: the command line has no flag for it
    convert_options=("dt_s",),
)


# ----------------------------------------------------------------------------- the rate curves

def lif_rate_hz(j, tau_rc_s: float = 0.022, tau_ref_s: float = 0.002) -> np.ndarray:
    """The LIF neuron's firing rate for a constant current ``j`` (threshold 1, reset to 0):
    1 / (tau_ref + tau_rc log(1 + 1 / (j - 1))) for j > 1, else 0."""
    j = np.asarray(j, dtype=np.float64)
    out = np.zeros_like(j)
    above = j > 1
    out[above] = 1.0 / (tau_ref_s + tau_rc_s * np.log1p(1.0 / (j[above] - 1.0)))
    return out


def soft_lif_rate(j, tau_rc_s: float, tau_ref_s: float, gamma: float):
    """The soft-LIF rate in Hz of a torch tensor ``j``, finite with finite gradients for any finite j.

    log(1 + 1 / rho) is computed as softplus(-log rho), and log rho as log gamma +
    log(softplus(u)), u = (j - 1) / gamma, taken as u itself below u = -15 (where
    softplus(u) = exp(u) to float precision), so neither 1 / rho nor log 0 is ever formed.
    The modules use the same numbers with the derivative written out (``SoftLIFRate``)."""
    import torch
    from torch.nn import functional as F

    u = (j - 1.0) / gamma
    log_softplus = torch.where(u > -15.0, torch.log(F.softplus(u.clamp(min=-15.0))), u)
    log_rho = math.log(gamma) + log_softplus
    return 1.0 / (tau_ref_s + tau_rc_s * F.softplus(-log_rho))


# ----------------------------------------------------------------------------- the ANN

def softlif_class():
    """The soft-LIF module class (built lazily so that importing the method does not import torch)."""
    global _SoftLIF
    if _SoftLIF is None:
        import torch
        from torch.nn import functional as F

        class SoftLIFRate(torch.autograd.Function):
            """:func:`soft_lif_rate` of j = gain x + neuron_bias with its derivative written out:
            the same numbers as autograd through the formula to float rounding
            (tests/test_method_soft_lif.py) in a third of the time. Below u = -15,
            log(softplus(u)) is continued as log(softplus(-15)) + (u + 15), within 2e-7 of it."""

            @staticmethod
            def forward(ctx, x, tau_rc_s, tau_ref_s, gain, neuron_bias, gamma):
                u = torch.add((neuron_bias - 1.0) / gamma, x, alpha=gain / gamma)   # (j - 1) / gamma
                a = u.clamp(min=-15.0)
                log_rho = F.softplus(a).log_().add_(u - a).add_(math.log(gamma))
                rate = F.softplus(-log_rho).mul_(tau_rc_s).add_(tau_ref_s).reciprocal_()
                ctx.save_for_backward(rate, a, log_rho)
                ctx.constants = (tau_rc_s, gain, gamma)
                return rate

            @staticmethod
            def backward(ctx, grad):
                rate, a, log_rho = ctx.saved_tensors
                tau_rc_s, gain, gamma = ctx.constants
                # r = 1 / (tau_ref + tau_rc softplus(-log rho)), log rho = log gamma + log softplus(u):
                # dr/du = r^2 tau_rc sigmoid(-log rho) sigmoid(u) / softplus(u)
                slope = torch.sigmoid(a).div_(F.softplus(a)).mul_(torch.sigmoid(-log_rho)).mul_(rate).mul_(rate)
                return grad * slope.mul_(tau_rc_s * gain / gamma), None, None, None, None, None

        class SoftLIF(torch.nn.Module):
            """amp times the soft-LIF rate of j = gain x + neuron_bias (module docstring), plus
            training noise; a population of LIF neurons when converted."""

            spikeport_activation = True

            def __init__(self, amp=0.063, tau_rc_s=0.022, tau_ref_s=0.002, gain=1.0, neuron_bias=1.0, gamma=0.02,
                         noise_hz=10.0):
                super().__init__()
                self.amp, self.tau_rc_s, self.tau_ref_s = float(amp), float(tau_rc_s), float(tau_ref_s)
                self.gain, self.neuron_bias, self.gamma = float(gain), float(neuron_bias), float(gamma)
                self.noise_hz = float(noise_hz)
                self.generator = None  # set by loss() for the batch: the epoch's seeded generator

            def forward(self, x):
                rate = SoftLIFRate.apply(x, self.tau_rc_s, self.tau_ref_s, self.gain, self.neuron_bias, self.gamma)
                if self.training and self.noise_hz > 0:
                    # Gaussian noise on the rate where the LIF neuron fires (j > 1): Hunsberger &
                    # Eliasmith 2015, sec. 2.2; drawn on the CPU so that it depends on the seed only
                    eps = torch.randn(tuple(x.shape), generator=self.generator, dtype=torch.float32)
                    eps = eps.to(device=x.device, dtype=rate.dtype).mul_(self.noise_hz)
                    silent = x.detach() <= (1.0 - self.neuron_bias) / self.gain   # j <= 1 (gain > 0)
                    rate = rate + eps.masked_fill_(silent, 0.0)
                return self.amp * rate

            def extra_repr(self):
                return (f"amp={self.amp:g}, tau_rc={self.tau_rc_s * 1e3:g} ms, tau_ref={self.tau_ref_s * 1e3:g} ms, "
                        f"gain={self.gain:g}, neuron_bias={self.neuron_bias:g}, gamma={self.gamma:g}, "
                        f"noise={self.noise_hz:g} Hz")

        _SoftLIF = SoftLIF
    return _SoftLIF


_SoftLIF = None


def _check(options: dict) -> dict:
    for name in ("amp", "tau_rc_s", "tau_ref_s", "gain", "gamma"):
        if not options[name] > 0:
            raise SpikeportError(f"method 'soft-lif': option {name!r} must be > 0, got {options[name]!r}")
    for name in ("noise_hz", "tau_syn_s"):
        if options[name] < 0:
            raise SpikeportError(f"method 'soft-lif': option {name!r} must be >= 0, got {options[name]!r}")
    return options


def build(spec, options):
    from ..architectures import build as build_arch

    o = _check(dict(options))
    soft_lif = softlif_class()
    return build_arch(spec, activation=lambda name: soft_lif(o["amp"], o["tau_rc_s"], o["tau_ref_s"], o["gain"],
                                                             o["neuron_bias"], o["gamma"], o["noise_hz"]))


def _activations(module):
    soft_lif = softlif_class()
    return [m for m in module.modules() if isinstance(m, soft_lif)]


def loss(module, x, y, ctx):
    import torch

    layers = _activations(module)
    for m in layers:
        m.generator = ctx.generator if ctx.training else None
    try:
        return torch.nn.functional.cross_entropy(module(x), y)
    finally:
        for m in layers:
            m.generator = None


def predict(module, x, ctx):
    return module(x)


# ----------------------------------------------------------------------------- the SNN

def gains(options: dict, dt_s: float, tau_syn_s: float | None) -> dict:
    """The factors that make the graph's neurons fire at the rates the ANN assumes (module docstring)."""
    decay = math.exp(-dt_s / options["tau_rc_s"])
    syn_decay = None if not tau_syn_s else math.exp(-dt_s / tau_syn_s)
    through_synapse = 1.0 if syn_decay is None else 1.0 - syn_decay
    spike = options["amp"] / dt_s  # the ANN value one spike stands for
    lif_in = (1.0 - decay) * options["gain"] * through_synapse
    return {"decay": decay, "syn_decay": syn_decay,
            "lif_from_input": lif_in, "lif_from_spikes": lif_in * spike,
            "lif_bias": (1.0 - decay) * options["gain"], "lif_bias_offset": (1.0 - decay) * options["neuron_bias"],
            "out_from_input": dt_s / options["amp"], "out_from_spikes": 1.0, "out_bias": dt_s / options["amp"]}


def to_network(model, calibration, *, tau_syn_s=None, dt_s=None, metadata=None):
    """The LIF network of a soft-LIF model (module docstring); ``tau_syn_s`` (0: no synapse)
    and ``dt_s`` override the model's synapse and the method's time step."""
    from ...ir import NeuronModel

    opts = _check(METHOD.resolve_options(model.meta.get("options")))
    dt = float(METHOD.snn.dt_s if dt_s is None else dt_s)
    tau_syn = float(opts["tau_syn_s"] if tau_syn_s is None else tau_syn_s)
    if not dt > 0 or tau_syn < 0:
        raise SpikeportError(f"soft-lif conversion needs dt_s > 0 and tau_syn_s >= 0, got {dt_s!r}, {tau_syn_s!r}")
    g = gains(opts, dt, tau_syn)
    net = plain_network(model.module, calibration, dt_s=dt, metadata=metadata)
    out = net.output
    lif = NeuronModel.lif(opts["tau_rc_s"], dt, tau_syn or None, threshold=1.0, reset="subtract",
                          refractory_steps=steps_per(opts["tau_ref_s"], dt))
    integrator = NeuronModel("if", threshold=1.0, reset="subtract")

    def weight_gain(pre, post):
        kind = "out" if post.name == out else "lif"
        return g[f"{kind}_from_input"] if pre.is_input else g[f"{kind}_from_spikes"]

    describe = (f"hidden: LIF, tau_rc {opts['tau_rc_s'] * 1e3:g} ms, refractory {lif.refractory_steps} steps, "
                f"threshold 1, reset by subtraction, "
                + ("no synapse" if lif.syn_decay is None else f"exponential synapse {tau_syn * 1e3:g} ms")
                + f"; output: IF, threshold 1, reset by subtraction, one spike = {opts['amp'] / dt:g} of logit")
    retarget(net, neuron=lambda pop: integrator if pop.name == out else lif, weight_gain=weight_gain,
             bias_gain=lambda pop: g["out_bias"] if pop.name == out else g["lif_bias"], describe=describe)
    for pop in net.populations:
        if pop.is_input or pop.name == out or not g["lif_bias_offset"]:
            continue
        bias = np.zeros(pop.shape) if pop.bias is None else pop.bias.astype(np.float64)
        pop.bias = (bias + g["lif_bias_offset"]).astype(np.float32)
    net.metadata.setdefault("conversion", {}).update(
        {"method": "soft-lif", "dt_s": dt, "tau_syn_s": tau_syn or None,
         "gains": {k: v for k, v in g.items() if v is not None}})
    return net.validate()


__all__ = ["METHOD", "build", "gains", "lif_rate_hz", "loss", "predict", "soft_lif_rate",
           "softlif_class", "to_network"]
