"""Spike-based backpropagation with a leak-aware derivative (Lee, Sarwar, Panda, Srinivasan, Roy 2020).

The trained module is the spiking network itself, run for T steps per sample, and the
network it converts to is exactly that module (same weights, same arithmetic):

- input: Poisson spikes, s_i[t] = sign(x_i) if U(0, 1) < |x_i| * rate * dt (the authors'
  MNIST code draws with probability |x| / 2: 500 Hz at dt 1 ms, the default
  ``max_rate_hz``). The graph's Poisson encoding takes x in [0, 1]; spikeport's data sets
  are in [0, 1] and are not normalized, so no signed spikes arise;
- every convolution / fully connected layer feeds LIF neurons, per step
  U <- lam U + W o_in (+ b), spike if U >= V_th, then U <- 0 (lam 0.99, V_th 1);
  the code's test is U > V_th: we use the graph's >= so that the network *is* the module;
- every average pooling feeds a population of non-leaky IF neurons (threshold 0.75,
  reset to zero), so pooled outputs are spikes too;
- the output layer integrates without spiking, U_out <- lam U_out + W o, and the class
  scores are out = U_out / (V_th T).

Backward (the authors' code, src/mnist_LeNet.py): backpropagation through the whole
window of T steps, with three rules that make it cheap and, in effect, truncated:

1. d o[t] / d U[t] = 1 where the neuron spiked at t, else 0 (the gradient enters a
   membrane only through its spikes);
2. the reset passes no gradient (dU_after / dU = 1 - o[t]) and the leak is passed as 1,
   so a spike's gradient reaches exactly the input integrated since the previous spike:
   BPTT truncated at every spike, with dI[t] = c * dL/do[t'], t' the first spike at or
   after t (0 after the last spike);
3. c per neuron is the leak-aware derivative of the spike count by the input,
   c = (1 / V_th) (1 + ln(lam) a_leaky / a_total) [Lee et al. 2020; code ``grad_cal``], with
   a_total the spike count and a_leaky the leaky trace a <- lam a + o(t) over the window
   (c = 0 for a silent neuron); pooling neurons pass c = 1, the output layer 1 / (V_th T)
   per step.

The default backward is exactly the code's (a test compares the gradients with a transcription
of its per-step autograd graph), computed in one reverse sweep over the window's stored spike
trains, chunk by chunk, instead of an autograd graph of T x layers nodes (its time per batch
measured: docs/methods.md, section "Measurements behind the design choices").

Two cheaper options, ours: ``backward="rate"`` is the same derivative one level up, one pass
through the window's accumulated quantities (total input current = W x input spike counts,
count = c x current), i.e. rule 2 with "the previous spike" replaced by "the start of the
window": the spiking forward plus an ANN-sized backward, a fraction of the default's time.
``train_precision="bfloat16"`` computes the training currents and their gradients in bfloat16
(spikes are exact in it; weights keep 8 bits of mantissa; membranes stay float32); evaluation
is always float32. Both were as accurate as the default in our paired short MNIST runs; their
times: docs/methods.md, sections "Spike-based backpropagation (Lee, Sarwar, Panda, Srinivasan
& Roy 2020)" and "Measurements behind the design choices".

Options: ``steps`` T (100), ``train_steps`` T in training (0: ``steps``), ``leak`` lam (0.99),
``threshold`` V_th (1), ``pool_threshold`` (0.75), ``max_rate_hz`` (500), ``output_leak``
(True: the output leaks as in the code), ``bias`` (False, as the code), ``backward``
("bptt" or "rate"), ``train_precision`` ("float32", "bfloat16" or "auto": bfloat16 where the
device computes it natively, as proxy's), ``eval_seed`` (0: the
Poisson draws of evaluation are ``spikeport.simulate(..., seed=0)``'s).

Defaults follow the code: no biases, He-normal initialization, MSE summed over the classes,
SGD without momentum (the code parses --momentum but never passes it), weight decay 5e-4
(the code's step decay, x 0.2 at epoch 75 of 125, is cosine decay here: the shared
trainer's schedule). On MNIST and Fashion-MNIST the default is 60 epochs with
``backward="rate"`` and ``train_precision="bfloat16"``, a fraction of the time of the code's
125 epochs of its backward and as accurate in every paired short run (times: docs/methods.md,
section "Spike-based backpropagation (Lee, Sarwar, Panda, Srinivasan & Roy 2020)"; the run:
bench/RESULTS.md, section "spike-bp and proxy: long runs in parts (in progress)"):
``--option backward=bptt --option train_precision=float32 --epochs 125`` is the paper's recipe.
The code sums the loss over the batch at lr 0.0085: we average it
over the batch, so lr 0.544 = 0.0085 x 64 and weight decay 5e-4 / 64 make the code's updates
at batch 64. The code's LeNet pads its convolutions (maps 28-14-14-7, FC 2450-200-10):
that is ``--arch 20c5s-p2-50c5s-p2-200``; spikeport's ``lenet`` (the default) does not
(24-12-8-4, FC 800-200-10). A ReLU model's weights (``train(..., init=...)``) make a working
spiking network at once, but their negative wrong-class outputs do not suit the MSE to one-hot
targets: in short runs spike-bp first lowers that accuracy, so the default starts from scratch
(measured: docs/methods.md, section "Measurements behind the design choices").
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from ...errors import SpikeportError
from .base import PRECISIONS, Method, SpikingSpec, plain_network, retarget, training_precision
from .spiking_window import DT_S, LEAK, classes_of, output_decay, threshold_of, run, train_forward

# an IF output (output_leak False) never spikes for runs up to this many steps
T_MAX_IF_OUTPUT = 100_000
# evaluation runs this many samples at a time
EVAL_SAMPLES = 128
BATCH = 64

METHOD = Method(
    name="spike-bp",
    ann_forward=False,  # no ANN: the module is trained as a spiking network only
    citation="Lee, Sarwar, Panda, Srinivasan, Roy 2020, 'Enabling spike-based backpropagation for training deep "
             "neural network architectures', Front. Neurosci. 14:119 (code: github.com/chan8972/"
             "Enabling_Spikebased_Backpropagation)",
    ann="none: the trained module is the spiking network (every ReLU a LIF population, decay 0.99, threshold 1, "
        "reset to zero; every average pooling followed by IF neurons, threshold 0.75, reset to zero; a leaky "
        "non-spiking output, out = U_out / (V_th T)); no biases, He-normal weights",
    training="T = 100 steps of Poisson input per sample; MSE between out and the one-hot label; backpropagation "
             "through the window, gradient only through spikes, truncated at every reset, scaled by the leak-aware "
             "derivative (1/V_th)(1 + ln(lam) a_leaky / a_total); SGD",
    snn=SpikingSpec(neuron="lif", threshold=1.0, reset="zero", encoding="poisson", dt_s=DT_S, steps=100,
                    tau_rc_s=-DT_S / math.log(LEAK), max_rate_hz=500.0, readout="membrane",
                    notes="average-pooling populations: IF, threshold 0.75, reset to zero; the output population "
                          "(LIF, decay 0.99) has a threshold it provably never reaches, so the graph's readout "
                          "(most spikes, ties to the higher membrane) picks the highest membrane: the integrated "
                          "output"),
    defaults={"optimizer": "sgd", "lr": 0.0085 * BATCH, "momentum": 0.0, "weight_decay": 5e-4 / BATCH,
              "batch_size": BATCH, "schedule": "cosine", "cheap_predict": False,
              # on MNIST the default is 60 epochs of the window-level backward in bfloat16 instead of
              # the paper's 125 with the code's backward: as accurate in every paired short run, a
              # fraction of the time (docs/methods.md, section "Spike-based backpropagation (Lee,
              # Sarwar, Panda, Srinivasan & Roy 2020)")
              "epochs": {"digits": 20, "mnist": 60, "mnist-5k": 30, "fashion-mnist": 60, "default": 20},
              "options_for": {name: {"backward": "rate", "train_precision": "bfloat16"}
                              for name in ("mnist", "mnist-5k", "fashion-mnist")}},
    options={"steps": 100, "train_steps": 0, "leak": LEAK, "threshold": 1.0, "pool_threshold": 0.75,
             "max_rate_hz": 500.0, "output_leak": True, "bias": False, "backward": "bptt", "train_precision": "float32",
             "eval_seed": 0},
    default_arch={"mnist": "lenet", "mnist-5k": "lenet", "fashion-mnist": "lenet", "digits": "mlp",
                  "default": "mlp"},
    convert_options=(),
)


def _torch():
    import torch
    return torch


# ----------------------------------------------------------------------------- the module

def build(spec, options):
    """The spiking module of ``spec``: the architecture's layers, every ReLU a :class:`LIFNeurons`
    population (``lif1``, ...), every average pooling (``avgpool1``, ...) followed by a
    :class:`PoolingNeurons` population (``pool1``, ...). Weighted layers keep the names of the
    ReLU architecture (``conv1``, ``fc1``, ...), so a ReLU model's weights initialize it."""
    from ..architectures import build as build_arch

    torch = _torch()
    nn = torch.nn
    opts = METHOD.resolve_options(options)
    _check_options(opts)
    if spec.batchnorm or spec.arch == "cnn":
        raise SpikeportError(f"spike-bp trains its spiking network without BatchNorm; architecture {spec.arch!r} "
                             f"has it (use lenet, mlp or a layer sequence)")
    lif, pool_neurons, net_class = classes_of()
    ann = build_arch(spec)
    layers, n_act, n_pool = OrderedDict(), 0, 0
    for name, child in ann.named_children():
        if isinstance(child, nn.ReLU):
            n_act += 1
            layers[f"lif{n_act}"] = lif(opts["leak"], opts["threshold"])
        elif isinstance(child, nn.AvgPool2d):
            n_pool += 1
            layers[f"avgpool{n_pool}"] = child
            layers[f"pool{n_pool}"] = pool_neurons(opts["pool_threshold"])
        elif isinstance(child, (nn.Conv2d, nn.Linear)):
            # He-normal, as the code: std sqrt(2 / fan_in), so that spikes reach the last layer from the start
            fan_in = child.weight[0].numel()
            with torch.no_grad():
                child.weight.normal_(0.0, math.sqrt(2.0 / fan_in))
            if not opts["bias"]:
                child.bias = None
            elif child.bias is not None:
                with torch.no_grad():
                    child.bias.zero_()
            layers[name] = child
        elif isinstance(child, nn.Flatten):
            layers[name] = child
        else:
            raise SpikeportError(f"spike-bp: layer {name!r} ({type(child).__name__}) of architecture {spec.arch!r} "
                                 f"has no spiking counterpart")
    return net_class(layers)


def _check_options(opts):
    if opts["steps"] < 1 or opts["train_steps"] < 0:
        raise SpikeportError(f"spike-bp: steps must be >= 1 and train_steps >= 0 (0: steps), got "
                             f"{opts['steps']}, {opts['train_steps']}")
    if not 0.0 < opts["leak"] <= 1.0:
        raise SpikeportError(f"spike-bp: leak must be in (0, 1], got {opts['leak']}")
    if opts["threshold"] <= 0 or opts["pool_threshold"] <= 0:
        raise SpikeportError("spike-bp: threshold and pool_threshold must be > 0")
    if not 0.0 < opts["max_rate_hz"] * DT_S <= 1.0:
        raise SpikeportError(f"spike-bp: max_rate_hz must be in (0, {1 / DT_S:g}] (at most one spike per "
                             f"{DT_S * 1e3:g} ms step), got {opts['max_rate_hz']}")
    if opts["train_precision"] not in PRECISIONS:
        raise SpikeportError(f"spike-bp: train_precision must be one of {', '.join(map(repr, PRECISIONS))}, got "
                             f"{opts['train_precision']!r}")
    if opts["backward"] not in ("bptt", "rate"):
        raise SpikeportError(f"spike-bp: backward must be 'bptt' or 'rate', got {opts['backward']!r}")


# ----------------------------------------------------------------------------- the method interface

def resolved_options(options, device) -> dict:
    """The precision ``train_precision`` stood for on this device (kept in the model file)."""
    return {"train_precision": training_precision("spike-bp", options["train_precision"], device)}


def loss(module, x, y, ctx):
    """MSE between out and the one-hot label, summed over the classes, averaged over the batch."""
    torch = _torch()
    o = ctx.options
    steps = o["train_steps"] or o["steps"]
    out = train_forward(module, x, steps, max_rate_hz=o["max_rate_hz"], output_leak=o["output_leak"],
                        generator=ctx.generator, backward=o["backward"],
                        precision=training_precision("spike-bp", o["train_precision"], x.device))
    target = torch.nn.functional.one_hot(y, out.shape[1]).to(out.dtype)
    return ((out - target) ** 2).sum(dim=1).mean()


def predict(module, x, ctx):
    """out = U_out / (V_th T) of the module's own spiking run over ``steps``.

    In evaluation the Poisson input is the reference executor's: sample k of the data
    being scored (counted over the calls with this ``ctx``, as ``method_accuracy`` makes
    them, batch after batch from sample 0) gets ``reference.uniforms(eval_seed, k, ...)``,
    so the predictions equal the converted network's under ``spikeport.simulate(...,
    seed=eval_seed)`` on the same samples. In training the draws come from ``ctx.generator``."""
    torch = _torch()
    from ...ir.kernels import uniforms

    o = ctx.options
    steps = o["steps"]
    n = x[0].numel()
    if ctx.training:
        draw = lambda t0, t1, b=x.shape[0]: torch.rand((t1 - t0, b, n), generator=ctx.generator)
        return run(module, x, steps, max_rate_hz=o["max_rate_hz"], output_leak=o["output_leak"], uniforms=draw)
    first = getattr(ctx, "spike_bp_sample0", 0)
    outs = []
    for i in range(0, x.shape[0], EVAL_SAMPLES):
        xb = x[i:i + EVAL_SAMPLES]
        draw = lambda t0, t1, s0=first + i, b=xb.shape[0]: uniforms(int(o["eval_seed"]), s0, b, t0, t1, n)
        outs.append(run(module, xb, steps, max_rate_hz=o["max_rate_hz"], output_leak=o["output_leak"], uniforms=draw))
    ctx.spike_bp_sample0 = first + x.shape[0]
    return torch.cat(outs)


def output_threshold(net, decay):
    """A threshold the output population provably never reaches.

    Every pre population sends at most one spike (|s| <= 1) per step, so the output's input
    per step is at most M = max_j (sum_i |w_ji| + |b_j|), and |U[t]| <= M sum_k decay**k:
    below M / (1 - decay) forever when it leaks, below M T_MAX_IF_OUTPUT for the first
    T_MAX_IF_OUTPUT steps when it does not. Twice that bound (float rounding) is returned."""
    pops = {p.name: p for p in net.populations}
    out = pops[net.output]
    total = np.zeros(out.size)
    for proj in net.projections_into(net.output):
        syn = proj.materialize(pops[proj.pre].shape)
        total += np.bincount(syn.post, weights=np.abs(syn.weight), minlength=out.size)
    if out.bias is not None:
        total += np.abs(out.bias.astype(np.float64).reshape(-1))
    m = float(total.max()) if total.size else 0.0
    bound = m / (1.0 - decay) if decay < 1.0 else m * T_MAX_IF_OUTPUT
    return max(2.0 * bound, 1.0)


def to_network(model, calibration, *, metadata=None):
    """The network the module is: the same populations, weights and biases; LIF (decay lam,
    threshold V_th, reset to zero) where the module has LIF neurons, IF (threshold 0.75, reset
    to zero) after every average pooling, Poisson input at the trained ``max_rate_hz`` and dt
    1 ms. The output population is LIF with the output's decay (IF without ``output_leak``)
    and :func:`output_threshold`: it never spikes (for any T when it leaks, for T up to
    T_MAX_IF_OUTPUT otherwise), every spike count is 0, and the graph's readout (most spikes,
    ties to the higher membrane) predicts the argmax of U_out: the module's out."""
    torch = _torch()
    from ...ir import NeuronModel

    module = model.module
    opts = METHOD.resolve_options(model.meta.get("options"))
    calibration = np.asarray(calibration, dtype=np.float32)
    if calibration.size and float(calibration.min()) < 0:
        raise SpikeportError("spike-bp: the graph's Poisson input takes values in [0, 1]; these samples go below 0 "
                             "(the module would send signed spikes): do not normalize the data")
    plain = torch.nn.Sequential(OrderedDict(module.named_children()))  # the same layers, traced as an ANN
    net = plain_network(plain, calibration, encoding="poisson", max_rate_hz=opts["max_rate_hz"], dt_s=DT_S,
                        metadata=metadata)
    nodes = net.metadata["conversion"]["activation_nodes"]
    children = dict(module.named_children())
    out_decay = output_decay(module, opts["output_leak"])
    out_theta = output_threshold(net, out_decay)

    def model_of(decay, threshold):
        if decay == 1.0:
            return NeuronModel("if", threshold=threshold, reset="zero")
        return NeuronModel("lif", threshold=threshold, reset="zero", decay=decay)

    def neuron(pop):
        if pop.name == net.output:
            return model_of(out_decay, out_theta)
        child = children[nodes[pop.name]]
        return model_of(child.decay, child.threshold)

    th = threshold_of(module)
    describe = (f"spike-bp: LIF decay {opts['leak']:g}, threshold {th:g}, reset to zero; pooling IF threshold "
                f"{opts['pool_threshold']:g}, reset to zero; output {'LIF' if out_decay < 1 else 'IF'} with "
                f"threshold {out_theta:.6g} (never reached{'' if out_decay < 1 else f' in {T_MAX_IF_OUTPUT} steps'}): "
                f"read by its membrane; Poisson input up to {opts['max_rate_hz']:g} Hz")
    net = retarget(net, neuron=neuron, weight_gain=lambda pre, post: 1.0, describe=describe)
    net.metadata.setdefault("conversion", {})["output_threshold"] = out_theta  # Network.reads_output_membrane
    return net
