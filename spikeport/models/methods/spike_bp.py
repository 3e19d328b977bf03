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
trains, chunk by chunk, instead of an autograd graph of T x layers nodes: on MNIST LeNet at
T = 100, 2.2 to 2.5 s of one CPU core per batch of 64 (docs/methods.md).

Two cheaper options, ours: ``backward="rate"`` is the same derivative one level up, one pass
through the window's accumulated quantities (total input current = W x input spike counts,
count = c x current), i.e. rule 2 with "the previous spike" replaced by "the start of the
window": the spiking forward plus an ANN-sized backward, 40 % of the default's time, and as
accurate in our short MNIST runs. ``train_precision="bfloat16"`` computes the training
currents and their gradients in bfloat16 (spikes are exact in it; weights keep 8 bits of
mantissa; membranes stay float32), 0.55 to 0.8 x the time; evaluation is always float32.

Options: ``steps`` T (100), ``train_steps`` T in training (0: ``steps``), ``leak`` lam (0.99),
``threshold`` V_th (1), ``pool_threshold`` (0.75), ``max_rate_hz`` (500), ``output_leak``
(True: the output leaks as in the code), ``bias`` (False, as the code), ``backward``
("bptt" or "rate"), ``train_precision`` ("float32" or "bfloat16"), ``eval_seed`` (0: the
Poisson draws of evaluation are ``spikeport.simulate(..., seed=0)``'s).

Defaults follow the code: no biases, He-normal initialization, MSE summed over the classes,
SGD without momentum (the code parses --momentum but never passes it), weight decay 5e-4
(the code's step decay, x 0.2 at epoch 75 of 125, is cosine decay here: the shared
trainer's schedule). On MNIST and Fashion-MNIST the default is 60 epochs with
``backward="rate"`` and ``train_precision="bfloat16"`` (about 12 h of one core here, against
about 75 h for the code's 125 epochs of its backward; as accurate in every paired short run):
``--option backward=bptt --option train_precision=float32 --epochs 125`` is the paper's recipe. The code sums the loss over the batch at lr 0.0085: we average it
over the batch, so lr 0.544 = 0.0085 x 64 and weight decay 5e-4 / 64 make the code's updates
at batch 64. The code's LeNet pads its convolutions (maps 28-14-14-7, FC 2450-200-10):
that is ``--arch 20c5s-p2-50c5s-p2-200``; spikeport's ``lenet`` (the default) does not
(24-12-8-4, FC 800-200-10). A ReLU model's weights (``train(..., init=...)``) make a working
spiking network at once (a 3-epoch ReLU LeNet: 98.4 % on 2,000 MNIST test images before any
spike-bp step), but their negative wrong-class outputs do not suit the MSE to one-hot targets:
in short runs spike-bp first lowers that accuracy (97.2 to 97.6 % after 16,000 to 32,000
images at lr 0.005 to 0.1), while from scratch reaches 96.0 % after 32,000 images.
"""
from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from ...errors import SpikeportError
from .base import Method, SpikingSpec, plain_network, retarget

DT_S = 1e-3
LEAK = 0.99
# an IF output (output_leak False) never spikes for runs up to this many steps
T_MAX_IF_OUTPUT = 100_000
# evaluation runs this many samples at a time
EVAL_SAMPLES = 128
# the widest layer's input current per chunk of steps stays below this (see _chunk_steps)
CHUNK_BYTES = 16 << 20
BATCH = 64

METHOD = Method(
    name="spike-bp",
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
              # the paper's 125 epochs with the code's backward are about 75 h of one core here; on
              # MNIST the default is 60 epochs of the window-level backward in bfloat16 (as accurate
              # in every paired short run, 0.3 of the time: about 12 h)
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
    lif, pool_neurons, net_class = _classes()
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
    if opts["train_precision"] not in ("float32", "bfloat16"):
        raise SpikeportError(f"spike-bp: train_precision must be 'float32' or 'bfloat16', got "
                             f"{opts['train_precision']!r}")
    if opts["backward"] not in ("bptt", "rate"):
        raise SpikeportError(f"spike-bp: backward must be 'bptt' or 'rate', got {opts['backward']!r}")


_CLASSES = None


def _classes():
    """(LIFNeurons, PoolingNeurons, SpikingNet), built lazily so that importing spikeport does not import torch."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    torch = _torch()
    nn = torch.nn

    class LIFNeurons(nn.Module):
        """A LIF population: U <- decay U + I; spike if U >= threshold; U <- 0 where it spiked.
        Its forward is a ReLU placeholder, used only when the module is traced for conversion."""

        spikeport_activation = True

        def __init__(self, decay: float, threshold: float):
            super().__init__()
            self.decay, self.threshold = float(decay), float(threshold)

        def forward(self, x):
            return torch.relu(x)

        def extra_repr(self):
            return f"decay={self.decay:g}, threshold={self.threshold:g}, reset=zero"

    class PoolingNeurons(LIFNeurons):
        """The IF population after an average pooling (a population: it spikes, it has a membrane)."""

        def __init__(self, threshold: float):
            super().__init__(1.0, threshold)

    class SpikingNet(nn.Sequential):
        """The spiking network; ``forward(x)`` runs it for its option's steps (see :func:`run`)."""

        def forward(self, x, steps: int = 100, max_rate_hz: float = 500.0, output_leak: bool = True):
            return run(self, x, steps, max_rate_hz=max_rate_hz, output_leak=output_leak)

    _CLASSES = (LIFNeurons, PoolingNeurons, SpikingNet)
    return _CLASSES


def _plan(module):
    """[(kind, name, child)] in order; kind: weighted, lif, pool, avgpool, flatten, output (the last weighted)."""
    lif, pool_neurons, _ = _classes()
    nn = _torch().nn
    plan = []
    for name, child in module.named_children():
        if isinstance(child, pool_neurons):
            plan.append(("pool", name, child))
        elif isinstance(child, lif):
            plan.append(("lif", name, child))
        elif isinstance(child, (nn.Conv2d, nn.Linear)):
            plan.append(("weighted", name, child))
        elif isinstance(child, nn.AvgPool2d):
            plan.append(("avgpool", name, child))
        else:
            plan.append(("flatten", name, child))
    last = max(i for i, p in enumerate(plan) if p[0] == "weighted")
    plan[last] = ("output",) + plan[last][1:]
    return plan


# ----------------------------------------------------------------------------- the spiking run

def _current(layer, h, bias_scale=1.0, dtype=None):
    """W h (+ b), as the reference executor computes a projection, then adds the population's bias.
    ``dtype`` (training only): W h in that precision (bfloat16: spikes are exact in it, the
    weights are rounded to 8 bits of mantissa), returned in h's."""
    torch = _torch()
    w = layer.weight
    conv = isinstance(layer, torch.nn.Conv2d)
    low = dtype is not None and dtype != h.dtype
    x, w = (h.to(dtype), w.to(dtype)) if low else (h, w)
    if conv:
        out = torch.nn.functional.conv2d(x, w, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    else:
        out = x @ w.T
    if low:
        out = out.to(h.dtype)
    bias = layer.bias
    if bias is not None:
        bias = bias.view(-1, 1, 1) if conv else bias
        out = out + (bias if bias_scale == 1.0 else bias * bias_scale)
    return out


def _simple_pool(child):
    """The window (k, k) of a non-overlapping, unpadded average pooling, else None."""
    k, st = _pair(child.kernel_size), _pair(child.stride or child.kernel_size)
    if k == st and k[0] == k[1] and _pair(child.padding) == [0, 0] and not child.ceil_mode:
        return k[0]
    return None


def _avgpool(child, h):
    """Average pooling as the reference executor computes it (strided sums in its order, then the
    division: 2x faster than avg_pool2d here; exact anyway on spikes)."""
    from ...backends.reference import window_sum

    k = _simple_pool(child)
    if k is None:
        return child(h)
    return window_sum(h, k, k).div_(k * k)


def _avgpool_backward(child, g, in_shape):
    """d(avg pool)/d(input) applied to g: each window's gradient / k^2 over the window
    (repeat_interleave: 2.5x faster than avg_pool2d_backward here)."""
    torch = _torch()
    k = _simple_pool(child)
    if k is None:
        like = torch.empty((g.shape[0],) + tuple(in_shape), dtype=g.dtype, device=g.device)
        return torch.ops.aten.avg_pool2d_backward(g, like, _pair(child.kernel_size),
                                                  _pair(child.stride or child.kernel_size), _pair(child.padding),
                                                  child.ceil_mode, child.count_include_pad, child.divisor_override)
    out = (g / (k * k)).repeat_interleave(k, dim=-1).repeat_interleave(k, dim=-2)
    short_h, short_w = in_shape[-2] - out.shape[-2], in_shape[-1] - out.shape[-1]
    if short_h or short_w:  # rows and columns the pooling drops get no gradient
        out = torch.nn.functional.pad(out, (0, short_w, 0, short_h))
    return out


def _advance(v, current, decay, threshold, out):
    """Steps of the graph's neuron, op for op as the reference executor (so the results are
    bit-identical): v <- decay v + I[t]; s[t] = v >= threshold; v <- v - v s[t]."""
    torch = _torch()
    for k in range(current.shape[0]):
        if decay != 1.0:
            v.mul_(decay)
        v.add_(current[k])
        torch.ge(v, threshold, out=out[k])
        v.addcmul_(v, out[k], value=-1.0)
    return out


def _integrate(v, current, decay):
    """The output population: it never spikes, so only v <- decay v + I[t]."""
    for k in range(current.shape[0]):
        if decay != 1.0:
            v.mul_(decay)
        v.add_(current[k])
    return v


def scale_from_totals(total, leaky, decay, threshold):
    """The leak-aware derivative per neuron, c = (1 / V_th) (1 + ln(decay) a_leaky / a_total),
    0 where a_total = 0 [Lee et al. 2020; code ``grad_cal``], from the window's spike
    count a_total and leaky trace a_leaky = sum_t decay**(T-1-t) o[t] (a <- decay a + o(t))."""
    torch = _torch()
    if decay == 1.0:
        return (total > 0).to(total.dtype) / threshold
    scale = (1.0 + math.log(decay) * leaky / total.clamp(min=1.0)) / threshold
    return torch.where(total > 0, scale, torch.zeros_like(scale))


def poisson_probability(x, max_rate_hz, dt_s=DT_S):
    """p = clip(|x| rate dt, 0, 1) per sample (B, N) in float32, computed as the reference executor computes it."""
    torch = _torch()
    return (x.abs().reshape(x.shape[0], -1).to(torch.float64) * max_rate_hz * dt_s).clamp(0.0, 1.0).to(torch.float32)


def _chunk_steps(batch, module, x, steps):
    """Steps per chunk: the widest layer's chunk within CHUNK_BYTES (fresh allocations above
    glibc's mmap threshold of 32 MB page-fault on every call: 3x slower on this VM)."""
    widest = x[0].numel()
    shape = tuple(x.shape[1:])
    for kind, _, child in _plan(module):
        if kind in ("weighted", "output"):
            shape = _out_shape(child, shape)
        elif kind == "avgpool":
            (kh, kw), (sh, sw), (ph, pw) = (_pair(child.kernel_size), _pair(child.stride or child.kernel_size),
                                            _pair(child.padding))
            shape = (shape[0], (shape[1] + 2 * ph - kh) // sh + 1, (shape[2] + 2 * pw - kw) // sw + 1)
        elif kind == "flatten":
            shape = (math.prod(shape),)
        widest = max(widest, math.prod(shape))
    return max(1, min(steps, CHUNK_BYTES // (4 * batch * widest)))


def _out_shape(layer, shape):
    nn = _torch().nn
    if isinstance(layer, nn.Linear):
        return (layer.out_features,)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    return (layer.out_channels, (shape[1] + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
            (shape[2] + 2 * pw - dw * (kw - 1) - 1) // sw + 1)


class _Window:
    """One spiking run of a batch, chunk by chunk through the whole network (time-major, as the
    reference executor): the output membrane, every population's spike counts and leaky
    traces, and with ``save`` every population's spike trains (bool (T, B, N), for BPTT)."""

    def __init__(self, module, x, steps, draw, *, max_rate_hz, output_leak, chunk=None, save=False, stats=True,
                 precision=None):
        torch = _torch()
        self.plan, self.steps, self.batch = _plan(module), steps, x.shape[0]
        self.chunk = chunk or _chunk_steps(self.batch, module, x, steps)
        self.threshold = _threshold_of(module)
        self.trains, self.counts, self.traces, self.shapes, self.sources = {}, {}, {}, {"input": tuple(x.shape[1:])}, {}
        p = poisson_probability(x, max_rate_hz)
        signed = bool((x < 0).any())
        sign = torch.sign(x.reshape(self.batch, -1)) if signed else None
        out_decay = _output_decay(module, output_leak)
        dtype = _params(module)[0].dtype  # float32; float64 where a test asks for it
        states, self.stats = {}, stats
        self.precision = None if precision in (None, "float32") else getattr(torch, precision)
        B = self.batch
        with torch.no_grad():
            for t0 in range(0, steps, self.chunk):
                t1 = min(steps, t0 + self.chunk)
                tc = t1 - t0
                s = (draw(t0, t1).to(x.device) < p.unsqueeze(0)).to(dtype)
                if signed:
                    s = s * sign.unsqueeze(0)  # the code's signed spikes, for inputs below 0
                self._keep("input", s, t0, t1, 1.0, save, torch.int8 if signed else torch.bool)
                h, source, shape = s.reshape((tc * B,) + self.shapes["input"]), "input", self.shapes["input"]
                for kind, name, child in self.plan:
                    if kind in ("weighted", "output"):
                        self.sources[name] = (source, shape)
                        h = _current(child, h, dtype=self.precision)
                        shape = tuple(h.shape[1:])
                        if kind == "output":
                            v = states.setdefault(name, torch.zeros((B, h.shape[1]), dtype=h.dtype, device=h.device))
                            _integrate(v, h.reshape(tc, B, -1), out_decay)
                    elif kind in ("lif", "pool"):
                        self.sources[name] = (source, shape)
                        cur = h.reshape(tc, B, -1)
                        v = states.setdefault(name, torch.zeros_like(cur[0]))
                        spikes = _advance(v, cur, child.decay, child.threshold, torch.empty_like(cur))
                        self._keep(name, spikes, t0, t1, child.decay, save, torch.bool)
                        self.shapes[name] = shape
                        h, source = spikes.reshape((tc * B,) + shape), name
                    elif kind == "avgpool":
                        self.sources[name] = (source, shape)
                        h = _avgpool(child, h)
                        shape = tuple(h.shape[1:])
                    else:
                        h = h.reshape(h.shape[0], -1)
                        shape = (math.prod(shape),)
        self.output = _output_name(self.plan)
        self.out = states[self.output] / (self.threshold * steps)

    def _keep(self, name, spikes, t0, t1, decay, save, dtype):
        torch = _torch()
        if save:
            if name not in self.trains:
                self.trains[name] = torch.empty((self.steps,) + tuple(spikes.shape[1:]), dtype=dtype,
                                                device=spikes.device)
            self.trains[name][t0:t1] = spikes
        if not self.stats:
            return
        n = spikes.sum(0)
        w = torch.tensor([decay ** (t1 - 1 - t) for t in range(t0, t1)], dtype=spikes.dtype, device=spikes.device)
        a = torch.tensordot(w, spikes, dims=1)
        if name in self.counts:
            # the trace at t1 - 1: the earlier chunks' trace decays over t1 - t0 more steps
            self.counts[name] += n
            self.traces[name] = self.traces[name] * decay ** (t1 - t0) + a
        else:
            self.counts[name], self.traces[name] = n, a

    def scale(self, name, child, leak_aware):
        if leak_aware:
            return scale_from_totals(self.counts[name], self.traces[name], child.decay, child.threshold)
        return (self.counts[name] > 0).to(self.counts[name].dtype)

    def backward(self, grad_out):
        """Gradients of every weighted layer (name -> (dW, db)) for dL/dout = ``grad_out``, by the
        code's BPTT rules (module docstring), one reverse sweep over the chunks: every tensor
        is one chunk's, and the reverse scans carry per-neuron state between chunks."""
        torch = _torch()
        B, steps = self.batch, self.steps
        grads = {}
        layers = {name: child for _, name, child in self.plan}
        # the output: dL/dI_out[t] = dL/dout / (V_th T) at every step (the code passes the leak as 1)
        g_step = grad_out / (self.threshold * steps)
        out_layer = layers[self.output]
        source, _ = self.sources[self.output]
        counts = self.counts[source].reshape(B, -1)
        grads[self.output] = (g_step.T @ counts, None if out_layer.bias is None else g_step.sum(0) * steps)
        g_source = g_step @ out_layer.weight  # dL/ds[t] of the last hidden population, the same every step
        after = {name: torch.zeros_like(self.counts[name]) for kind, name, _ in self.plan if kind in ("lif", "pool")}
        scales = {name: self.scale(name, child, True) for kind, name, child in self.plan if kind == "lif"}
        hidden = [entry for entry in self.plan if entry[0] != "output"]
        starts = list(range(0, steps, self.chunk))
        for t0 in reversed(starts):
            t1 = min(steps, t0 + self.chunk)
            tc = t1 - t0
            g = g_source.unsqueeze(0).expand((tc,) + tuple(g_source.shape))
            for kind, name, child in reversed(hidden):
                if kind in ("lif", "pool"):
                    spikes = self.trains[name][t0:t1]
                    g = g.reshape(spikes.shape)
                    d_current = torch.empty(spikes.shape, dtype=g.dtype, device=g.device)
                    a = after[name]
                    for k in range(tc - 1, -1, -1):  # dI[t] = dL/ds[t'], t' the next spike at or after t
                        a = torch.where(spikes[k], g[k], a, out=d_current[k])
                    after[name] = a.clone()
                    if name in scales:  # LIF: the leak-aware derivative; pooling neurons pass 1
                        d_current.mul_(scales[name])
                    source, shape = self.sources[name]
                    g = d_current.reshape((tc * B,) + shape)
                elif kind == "weighted":
                    source, shape = self.sources[name]
                    low = self.precision or g.dtype
                    h = self.trains[source][t0:t1].to(low).reshape((tc * B,) + shape)
                    need_input = source != "input"
                    w, gl = child.weight.to(low), g.to(low)
                    if isinstance(child, torch.nn.Conv2d):
                        gb = None if child.bias is None else g.sum((0, 2, 3))
                        if need_input:  # channels-last: 2x faster here when the input gradient is needed too
                            gl = gl.contiguous(memory_format=torch.channels_last)
                            h = h.contiguous(memory_format=torch.channels_last)
                        gi, gw, _ = torch.ops.aten.convolution_backward(
                            gl, h, w, None, list(child.stride), list(child.padding), list(child.dilation), False,
                            [0, 0], child.groups, [need_input, True, False])
                    else:
                        gw = gl.T @ h
                        gb = None if child.bias is None else g.sum(0)
                        gi = gl @ w if need_input else None
                    gw = gw.to(g.dtype).contiguous()
                    gi = None if gi is None else gi.to(g.dtype)
                    dw, db = grads.get(name, (None, None))
                    grads[name] = (gw if dw is None else dw + gw,
                                   None if gb is None else (gb if db is None else db + gb))
                    if not need_input:
                        break
                    g = gi
                elif kind == "avgpool":
                    g = _avgpool_backward(child, g, self.sources[name][1])
                # flatten: the population before it reshapes g to its own shape
        return grads


def _pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [int(v), int(v)]


def run(module, x, steps, *, max_rate_hz=500.0, output_leak=True, uniforms=None, chunk=None):
    """out = U_out / (V_th T) (B, classes) of the spiking network on ``x`` (B, ...) for
    ``steps`` steps, without gradients. ``uniforms(t0, t1) -> (t1 - t0, B, N)`` gives the
    U[0, 1) draws of the Poisson input (default torch.rand)."""
    torch = _torch()
    if uniforms is None:
        uniforms = lambda t0, t1: torch.rand((t1 - t0, x.shape[0], x[0].numel()))
    return _Window(module, x, steps, uniforms, max_rate_hz=max_rate_hz, output_leak=output_leak, chunk=chunk,
                   stats=False).out


def _output_name(plan):
    return next(name for kind, name, _ in plan if kind == "output")


def _output_decay(module, output_leak):
    """The output's leak: the hidden layers' (the code leaks the output membrane too) or none."""
    if not output_leak:
        return 1.0
    lif, pool_neurons, _ = _classes()
    decays = [m.decay for m in module.children() if isinstance(m, lif) and not isinstance(m, pool_neurons)]
    return decays[0] if decays else LEAK


def _threshold_of(module):
    lif, pool_neurons, _ = _classes()
    ths = [m.threshold for m in module.children() if isinstance(m, lif) and not isinstance(m, pool_neurons)]
    return ths[0] if ths else 1.0


def _bptt_function():
    global _BPTT
    if _BPTT is not None:
        return _BPTT
    torch = _torch()

    class WindowBPTT(torch.autograd.Function):
        """out of one spiking run; backward: :meth:`_Window.backward` into every weight and bias."""

        @staticmethod
        def forward(ctx, x, run_args, *params):
            module, steps, draw, max_rate_hz, output_leak, precision, chunk = run_args
            window = _Window(module, x, steps, draw, max_rate_hz=max_rate_hz, output_leak=output_leak, save=True,
                             precision=precision, chunk=chunk)
            ctx.window, ctx.module = window, module
            return window.out

        @staticmethod
        def backward(ctx, grad_out):
            grads = ctx.window.backward(grad_out)
            ctx.window = None  # free the spike trains
            out = []
            for kind, name, child in _plan(ctx.module):
                if kind in ("weighted", "output"):
                    dw, db = grads.get(name, (None, None))
                    out.append(dw)
                    if child.bias is not None:
                        out.append(db)
            return (None, None, *out)

    _BPTT = WindowBPTT
    return _BPTT


_BPTT = None


def _params(module):
    """Every weight and bias of the weighted layers, in plan order (WindowBPTT's gradient order)."""
    out = []
    for kind, name, child in _plan(module):
        if kind in ("weighted", "output"):
            out.append(child.weight)
            if child.bias is not None:
                out.append(child.bias)
    return out


def train_forward(module, x, steps, *, max_rate_hz, output_leak, generator=None, backward="bptt",
                  precision="float32"):
    """out (B, classes) of one spiking run, with the gradient of ``backward`` (module docstring)."""
    torch = _torch()
    n = x[0].numel()
    draw = lambda t0, t1: torch.rand((t1 - t0, x.shape[0], n), generator=generator)
    if backward == "bptt":
        return _bptt_function().apply(x, (module, steps, draw, max_rate_hz, output_leak, precision, None),
                                      *_params(module))
    # "rate": the run without gradients, then one differentiable pass through the window's totals:
    # current = W counts_in + T b; counts = counts.detach() + c (current - current.detach())
    window = _Window(module, x, steps, draw, max_rate_hz=max_rate_hz, output_leak=output_leak, precision=precision)
    h = window.counts["input"].reshape(x.shape)
    for kind, name, child in window.plan:
        if kind in ("weighted", "output"):
            h = _current(child, h, bias_scale=float(steps))
            if kind == "output":
                return window.out + (h - h.detach()) / (window.threshold * steps)
        elif kind in ("lif", "pool"):
            count = window.counts[name].reshape(h.shape)
            h = count + window.scale(name, child, kind == "lif").reshape(h.shape) * (h - h.detach())
        elif kind == "avgpool":
            h = _avgpool(child, h)
        else:
            h = h.reshape(h.shape[0], -1)
    raise SpikeportError("spike-bp: the module has no output layer")


# ----------------------------------------------------------------------------- the method interface

def loss(module, x, y, ctx):
    """MSE between out and the one-hot label, summed over the classes, averaged over the batch."""
    torch = _torch()
    o = ctx.options
    steps = o["train_steps"] or o["steps"]
    out = train_forward(module, x, steps, max_rate_hz=o["max_rate_hz"], output_leak=o["output_leak"],
                        generator=ctx.generator, backward=o["backward"], precision=o["train_precision"])
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
    from ...backends.reference import uniforms

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
    out_decay = _output_decay(module, opts["output_leak"])
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

    th = _threshold_of(module)
    describe = (f"spike-bp: LIF decay {opts['leak']:g}, threshold {th:g}, reset to zero; pooling IF threshold "
                f"{opts['pool_threshold']:g}, reset to zero; output {'LIF' if out_decay < 1 else 'IF'} with "
                f"threshold {out_theta:.6g} (never reached{'' if out_decay < 1 else f' in {T_MAX_IF_OUTPUT} steps'}): "
                f"read by its membrane; Poisson input up to {opts['max_rate_hz']:g} Hz")
    net = retarget(net, neuron=neuron, weight_gain=lambda pre, post: 1.0, describe=describe)
    net.metadata.setdefault("conversion", {})["output_threshold"] = out_theta
    return net
