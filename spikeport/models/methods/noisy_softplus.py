"""Noisy Softplus: train an ANN whose units are the firing rates of LIF neurons under noisy
synaptic current, and run its weights unchanged on those neurons (Liu & Furber 2016;
Liu, Chen & Furber 2017; Liu 2018, thesis ch. 4).

The ANN (in physical units). A unit's input x_i is the rate of its source times tau_syn
(a pixel of value v is a Poisson train of v * input_rate_hz, so x = v * input_rate_hz *
tau_syn: 1 for a white pixel at 200 Hz and 5 ms); weights are synaptic efficacies in nA.
Each unit j receives a noisy current of mean and variance (La Camera et al. 2008)::

    x_j = sum_i w_ij x_i (+ b_j)          sigma_j^2 = sum_i 0.5 w_ij^2 x_i

and outputs y_j = p * f(x_j, sigma_j), p = S * tau_syn, with Noisy Softplus::

    f(x, sigma) = k sigma log(1 + exp(x / (k sigma)))

so S * f is the unit's rate in Hz and y its rate times tau_syn, the next layer's input.
In backpropagation sigma is a constant: df/dx = logistic(x / (k sigma)) (the paper's
Eq.; sigma is computed without gradient). sigma is floored at SIGMA_FLOOR_NA, where f is
ReLU to within k * 1e-3 * log 2 nA: a unit all of whose sources are silent.

Every layer is a population of neurons, the output layer and the pooling layers
included (the paper's 784-16c-16p-64c-64p-10fc has 16p and 64p populations; the
authors' cnnff.m gives each pooling unit weights 1 / (s^2 p) from its s x s window). A
pooling unit thus gets x = avg(y) / p and sigma^2 = 0.5 avg(y) / (s^2 p^2), and passes
the average on (p f(avg / p) ~ avg when the noise is small) with the LIF's own
nonlinearity where it is not; ``pool_neurons`` False instead folds the pooling into the
next layer's synapses (sigma then counts the pooled weights w / s^2).

Training [code]: mean squared error to one-hot labels times target_rate_hz * tau_syn
(1: 200 Hz for the right class, 0 for the others), no biases in layer sequences (the
paper's; ``mlp``'s biases are constant currents, added to i_offset). Optional
fine-tuning (thesis sec. 4.3.4): train first with any PAF, e.g. ``activation`` "relu"
(y = p max(0, x), the paper's best result), then one more epoch with Noisy Softplus and
labels shifted by ``label_offset`` (+0.01: LIF neurons seldom fall silent under noise) -
a second ``train(..., options={"fine_tune": True}, epochs=1, init=first_model)``.

The SNN: PyNN IF_curr_exp (cm 0.25 nF, tau_m 20 ms, tau_refrac 1 ms, tau_syn 5 ms,
v_rest = v_reset = -65 mV, v_thresh -50 mV, i_offset 0.1 nA [code: scnn_test_NS.py])
on NEST's 1 ms grid, Poisson input of 200 Hz per white pixel [code: K = 200 Hz], spike
counts read out. In the graph (membrane in mV above rest): threshold 15, reset "zero",
decay exp(-dt / tau_m), syn_decay exp(-dt / tau_syn), 1 refractory step; a weight of w
nA becomes w * P21 (mV per nA of synaptic current over one step: NEST iaf_psc_exp's exact
propagator), a constant current of c nA (i_offset plus any bias) c * P20 per step,
P20 = tau_m / cm (1 - exp(-dt / tau_m)). The graph is then what NEST's iaf_psc_exp
computes with those weights, step for step (the pynn-nest backend reproduces it spike
for spike; the authors' network had 1 ms delays per layer, which change latencies only).

k and S: (0.30, 201) are the authors' fit for these neurons at tau_syn 5 ms, which
:func:`spikeport.models.nsp_fit.fit_nsp` reproduces (0.296, 200.8); refit them for other
neuron parameters and pass both as options.
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ...errors import SpikeportError
from .base import Method, SpikingSpec, plain_network, retarget, steps_per

SIGMA_FLOOR_NA = 1e-3   # sigma -> 0 when every source is silent: f is then ReLU (see module docstring)
DT_S = 1e-3             # NEST's grid in the paper, and the step the NSP fit is made on

METHOD = Method(
    name="noisy-softplus",
    citation="Liu & Furber 2016, 'Noisy Softplus: a biology inspired activation function', ICONIP, LNCS 9950; "
             "Liu, Chen & Furber 2017, 'Noisy Softplus: an activation function that enables SNNs to be trained "
             "as ANNs', arXiv 1706.03609; Liu 2018, PhD thesis, University of Manchester, ch. 4",
    ann="every convolution, pooling and fully connected layer (output included) is a population of Noisy Softplus "
        "units y = S tau_syn k sigma log(1 + exp(x / (k sigma))), x = sum w x_i, sigma^2 = sum 0.5 w^2 x_i "
        "(x_i: source rate times tau_syn, w in nA); pooling units weigh 1 / (s^2 S tau_syn); no biases",
    training="squared error to one-hot labels times target_rate_hz * tau_syn (sigma constant in backprop); "
             "Adam, cosine learning-rate decay; optional fine-tuning: Noisy Softplus with labels + label_offset",
    snn=SpikingSpec(neuron="lif", threshold=15.0, reset="zero", encoding="poisson", dt_s=DT_S, steps=300,
                    tau_rc_s=0.02, tau_ref_s=0.001, tau_syn_s=0.005, max_rate_hz=200.0, simulator="pynn-nest",
                    notes="PyNN IF_curr_exp (cm 0.25 nF, v_thresh 15 mV above v_rest = v_reset), i_offset 0.1 nA; "
                          "weights in nA times NEST's propagator P21; the paper shows each image for 1 s and is "
                          "near its best after 300 ms"),
    defaults={"optimizer": "adam", "lr": 1e-3, "batch_size": 50, "arch_flags": {"bias": False},
              "epochs": {"digits": 40, "mnist-5k": 30, "mnist": 20, "fashion-mnist": 20, "default": 20}},
    options={"k": 0.30, "S": 201.0, "tau_syn_ms": 5.0, "cm_nf": 0.25, "tau_m_ms": 20.0, "tau_refrac_ms": 1.0,
             "v_rest_mv": -65.0, "v_thresh_mv": -50.0, "i_offset_na": 0.1, "input_rate_hz": 200.0,
             "target_rate_hz": 200.0, "activation": "nsp", "pool_neurons": True, "fine_tune": False,
             "label_offset": 0.01},
    default_arch={"mnist": "16c5-p2-64c5-p2", "mnist-5k": "16c5-p2-64c5-p2", "fashion-mnist": "16c5-p2-64c5-p2",
                  "digits": "mlp", "default": "mlp"},
    convert_options=("encoding",),
)

ACTIVATIONS = ("nsp", "relu")


def check_options(opts: dict) -> dict:
    """``opts`` (resolved) if its values make a neuron; one-line errors name the option."""
    positive = ("k", "S", "tau_syn_ms", "cm_nf", "tau_m_ms", "input_rate_hz", "target_rate_hz")
    for name in positive:
        if not opts[name] > 0:
            raise SpikeportError(f"noisy-softplus: option {name!r} must be > 0, got {opts[name]!r}")
    if opts["input_rate_hz"] > 1.0 / DT_S:
        raise SpikeportError(f"noisy-softplus: input_rate_hz {opts['input_rate_hz']:g} exceeds one spike per "
                             f"{DT_S * 1e3:g} ms step")
    if not opts["v_thresh_mv"] > opts["v_rest_mv"]:
        raise SpikeportError(f"noisy-softplus: v_thresh_mv ({opts['v_thresh_mv']:g}) must be above v_rest_mv "
                             f"({opts['v_rest_mv']:g})")
    if opts["tau_refrac_ms"] < 0 or opts["label_offset"] < 0:
        raise SpikeportError("noisy-softplus: tau_refrac_ms and label_offset must be >= 0")
    steps_per(opts["tau_refrac_ms"] * 1e-3, DT_S)
    if opts["activation"] not in ACTIVATIONS:
        raise SpikeportError(f"noisy-softplus: option 'activation' must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {opts['activation']!r}")
    return opts


def paf_scale(opts: dict) -> float:
    """p = S * tau_syn: a unit's output (rate times tau_syn) per unit of Noisy Softplus (nA)."""
    return opts["S"] * opts["tau_syn_ms"] * 1e-3


def noisy_softplus(x, sigma, k: float):
    """f(x, sigma) = k sigma log(1 + exp(x / (k sigma))) (torch), sigma >= SIGMA_FLOOR_NA.

    Its gradient in x is logistic(x / (k sigma)); pass sigma without gradient for the
    paper's backward pass."""
    import torch.nn.functional as F

    ks = k * sigma.clamp_min(SIGMA_FLOOR_NA)
    return ks * F.softplus(x / ks)


# ----------------------------------------------------------------------------- the ANN

def _classes():
    """(NoisySoftplus, NoisySoftplusNet), built on first use so that importing this module
    (``spikeport methods``) does not import torch."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    import torch
    import torch.nn.functional as F
    from torch import nn

    class NoisySoftplus(nn.Module):
        """A population of Noisy Softplus units: y = p f(x, sigma) (module docstring).

        ``pool_area`` > 0: pooling units behind an average pooling of that many inputs,
        with weights 1 / (pool_area p): they take the pooled average and compute their own
        x and sigma. Otherwise the caller passes the noise variance of x."""

        spikeport_activation = True  # a population of the method's neurons when converted

        def __init__(self, k, p, activation="nsp", pool_area=0):
            super().__init__()
            self.k, self.p, self.activation, self.pool_area = float(k), float(p), activation, int(pool_area)

        def forward(self, x, var=None):
            if self.pool_area:
                avg = x
                x = avg / self.p
                with torch.no_grad():
                    var = 0.5 * avg.clamp_min(0.0) / (self.pool_area * self.p ** 2)
            if self.activation == "relu":
                return self.p * F.relu(x)
            if var is None:
                raise SpikeportError("a Noisy Softplus layer needs the noise of its input: run it inside the "
                                     "noisy-softplus network")
            return self.p * noisy_softplus(x, var.sqrt(), self.k)

        def extra_repr(self):
            pool = f", pool_area={self.pool_area}" if self.pool_area else ""
            return f"k={self.k:g}, p={self.p:g}, activation={self.activation}{pool}"

    class NoisySoftplusNet(nn.Sequential):
        """The architecture with Noisy Softplus populations; its forward computes each
        population's noise from the previous weighted layer's squared weights and input.

        ``plain()`` is the same layers as a traceable ``nn.Sequential`` (shared
        parameters) without the input scaling and the output population's activation:
        what the converter reads (the output layer's neurons are its output population)."""

        def __init__(self, layers, input_scale):
            super().__init__(layers)
            self.input_scale = float(input_scale)

        def forward(self, x):
            x = x.clamp_min(0.0) * self.input_scale  # pixel -> rate * tau_syn (Poisson rates are >= 0)
            source, weighted, var_gain = x, None, 1.0
            for m in self:
                if isinstance(m, NoisySoftplus) and not m.pool_area:
                    var = None
                    if m.activation == "nsp":
                        with torch.no_grad():
                            var = 0.5 * var_gain * _squared(weighted, source.clamp_min(0.0))
                    x = m(x, var)
                elif isinstance(m, (nn.Linear, nn.Conv2d)):
                    source, weighted = x, m
                    x = m(x)
                else:
                    if isinstance(m, nn.AvgPool2d):
                        # pooling folded into the next synapses (no pooling neurons): each input
                        # reaches the next layer with weight w / s^2, so sigma^2 takes (w / s^2)^2
                        # times the window's sum: w^2 / s^2 times the average the layer receives
                        var_gain = var_gain / _area(m)
                    x = m(x)
                if isinstance(m, NoisySoftplus):
                    var_gain = 1.0  # a population: the next layer's sources are its neurons
            return x

        def plain(self):
            children = list(self.named_children())
            if children and isinstance(children[-1][1], NoisySoftplus):
                children = children[:-1]
            return nn.Sequential(OrderedDict(children))

    def _squared(layer, source):
        if isinstance(layer, nn.Conv2d):
            return F.conv2d(source, layer.weight ** 2, None, layer.stride, layer.padding, layer.dilation,
                            layer.groups)
        return F.linear(source, layer.weight ** 2)

    def _area(pool):
        k = pool.kernel_size if isinstance(pool.kernel_size, tuple) else (pool.kernel_size,) * 2
        stride = pool.stride if isinstance(pool.stride, tuple) else (pool.stride or pool.kernel_size,) * 2
        if tuple(k) != tuple(stride) or pool.padding not in (0, (0, 0)):
            raise SpikeportError("noisy-softplus: only non-overlapping average pooling without padding is supported")
        return k[0] * k[1]

    _CLASSES = (NoisySoftplus, NoisySoftplusNet, _area)
    return _CLASSES


_CLASSES = None


def build(spec, options):
    """The architecture with every ReLU a Noisy Softplus population, a pooling population
    after every average pooling (``pool_neurons``) and the output layer's population."""
    from torch import nn

    from ..architectures import build as build_arch

    opts = check_options(METHOD.resolve_options(options))
    NoisySoftplus, NoisySoftplusNet, area = _classes()
    activation = "nsp" if opts["fine_tune"] else opts["activation"]
    p = paf_scale(opts)
    base = build_arch(spec, activation=lambda name: NoisySoftplus(opts["k"], p, activation))
    layers = OrderedDict()
    for name, child in base.named_children():
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise SpikeportError(f"noisy-softplus: architecture {spec.arch!r} has BatchNorm ({name}), which has no "
                                 f"counterpart in a unit's noise; use a layer sequence such as 16c5-p2-64c5-p2")
        if isinstance(child, nn.MaxPool2d):
            raise SpikeportError(f"noisy-softplus: max pooling ({name}) is not a population of LIF neurons")
        layers[name] = child
        if isinstance(child, nn.AvgPool2d) and opts["pool_neurons"]:
            layers[f"{name}_nsp"] = NoisySoftplus(opts["k"], p, activation, pool_area=area(child))
    layers["output_nsp"] = NoisySoftplus(opts["k"], p, activation)
    return NoisySoftplusNet(layers, input_scale=opts["input_rate_hz"] * opts["tau_syn_ms"] * 1e-3)


def targets(y, classes: int, opts: dict, dtype=None):
    """The labels as output activations: one-hot times target_rate_hz * tau_syn, plus
    label_offset when fine-tuning."""
    import torch

    t = torch.nn.functional.one_hot(y, classes).to(dtype or torch.float32)
    t = t * (opts["target_rate_hz"] * opts["tau_syn_ms"] * 1e-3)
    return t + opts["label_offset"] if opts["fine_tune"] else t


def loss(module, x, y, ctx):
    """Half the squared error summed over classes, averaged over the batch (cnnbp.m)."""
    out = module(x)
    t = targets(y, out.shape[1], ctx.options, out.dtype)
    return 0.5 * ((out - t) ** 2).sum(dim=1).mean()


def predict(module, x, ctx):
    return module(x)


# ----------------------------------------------------------------------------- the SNN

def neuron_constants(opts: dict) -> dict:
    """The graph's LIF and the nA -> graph scales for ``opts`` (module docstring):
    threshold (mV above rest), decay, syn_decay, refractory_steps, p21 (mV per nA of
    synaptic current per step), p20 (mV per nA of constant current per step)."""
    from ..nsp_fit import psc_exp_propagators

    dt_ms = DT_S * 1e3
    p11, p22, p21, p20 = psc_exp_propagators(opts["tau_m_ms"], opts["tau_syn_ms"], opts["cm_nf"], dt_ms)
    return {"threshold": opts["v_thresh_mv"] - opts["v_rest_mv"], "decay": p22, "syn_decay": p11,
            "refractory_steps": steps_per(opts["tau_refrac_ms"] * 1e-3, DT_S), "p21": p21, "p20": p20}


def to_network(model, calibration, *, encoding=None, metadata=None):
    """The trained weights on LIF neurons unchanged, in the graph's units (module docstring).

    ``encoding``: "poisson" (the paper's) or "regular" (the same rates, no input noise)."""
    from ...ir import NeuronModel

    opts = check_options(METHOD.resolve_options(model.meta.get("options")))
    encoding = encoding or METHOD.snn.encoding
    if encoding not in ("poisson", "regular"):
        raise SpikeportError(f"noisy-softplus: encoding must be poisson or regular (input rates), got {encoding!r}")
    NoisySoftplus, _, _ = _classes()
    module = model.module
    pool_nodes = {name for name, m in module.named_children() if isinstance(m, NoisySoftplus) and m.pool_area}
    net = plain_network(module.plain(), calibration, encoding=encoding, max_rate_hz=opts["input_rate_hz"],
                        dt_s=DT_S, metadata=metadata)
    nodes = net.metadata["conversion"]["activation_nodes"]
    pools = {pop for pop, node in nodes.items() if node in pool_nodes}
    c = neuron_constants(opts)
    p = paf_scale(opts)
    neuron = NeuronModel(model="lif", threshold=c["threshold"], reset="zero", decay=c["decay"],
                         syn_decay=c["syn_decay"], refractory_steps=c["refractory_steps"])
    describe = (f"LIF as PyNN IF_curr_exp (cm {opts['cm_nf']:g} nF, tau_m {opts['tau_m_ms']:g} ms, tau_syn "
                f"{opts['tau_syn_ms']:g} ms, tau_refrac {opts['tau_refrac_ms']:g} ms, threshold {c['threshold']:g} mV "
                f"above rest, reset to rest, i_offset {opts['i_offset_na']:g} nA); weights nA x P21 = "
                f"{c['p21']:.5g} mV/nA, currents nA x P20 = {c['p20']:.5g} mV/nA")
    # a pooling unit's weights are 1 / (s^2 p) nA: the average pooling op holds 1 / s^2
    retarget(net, neuron=lambda pop: neuron,
             weight_gain=lambda pre, post: c["p21"] / p if post.name in pools else c["p21"], describe=describe)
    for pop in net.populations:
        if pop.is_input:
            continue
        bias_na = np.zeros(pop.shape) if pop.bias is None else pop.bias.astype(np.float64)
        pop.bias = ((bias_na + opts["i_offset_na"]) * c["p20"]).astype(np.float32)
    net.metadata["conversion"]["noisy_softplus"] = {
        "k": opts["k"], "S_hz_per_na": opts["S"], "p": p, "p21_mv_per_na": c["p21"], "p20_mv_per_na": c["p20"],
        "pool_populations": sorted(pools), "input_rate_hz": opts["input_rate_hz"]}
    return net.validate()
