"""Proxy learning: an IF network trained through a ReLU network that shares its weights.

Kheradpisheh, Mirsadeghi & Masquelier 2022 (IEEE Access 10:70769; arXiv 2109.13208;
public notebook github.com/SRKH/ProxyLearning). Two networks, one set of weights: an
ANN with ReLU and an SNN with IF neurons (threshold 2, reset to zero, T = 15 steps, the
image as a constant current into the first layer every step, spike counts out). Each
batch the SNN runs without gradients; its output spike counts replace the ANN's output
values while the ANN's graph is kept,

    out = ann + (counts - ann).detach()        (the notebook's ``outputs.data.copy_(counts)``)

and the mean squared error of ``out`` to the one-hot label is backpropagated through the
ANN into the shared weights. The raw counts are the outputs [code]: the target is one
spike for the label's neuron and none for the others.

BatchNorm (after every convolution, [code]) is a per-channel affine map in the deployed
network, folded into the weights with fixed statistics. The SNN keeps its own
statistics (``snn_mean``, ``snn_var`` on every BatchNorm), of the currents its spikes
drive, as the notebook's SNN does (its BatchNorm modules share gamma and beta with the
ANN's, not their running statistics): with the ANN's statistics the SNN's currents,
about 1/threshold of the ANN's activations, would be shifted by the wrong mean. Until
epoch ``bn_freeze_epoch`` (1, [code]) both sets of statistics are learned; here the SNN
already runs with the folded form (the statistics before the batch, updated after it:
the deployed network of that moment) where the notebook normalized each step by the
batch's statistics. From then on BatchNorm is frozen in both networks (the ANN's in eval
mode, as [code]) and the SNN trained is exactly the converted network.

Where this differs from the notebook, because the graph has no spiking max: pooling is
average pooling (a 2x2 average of spikes is a current of 1/4 per spike) in both
networks, not max pooling.

Options (paper values unless said): ``T`` steps and ``threshold``; ``count_scale``, the
factor on the counts before the loss (1 [code]: the label's target is one spike, which leaves
many samples with tied counts; 0.25, the default here, asks for four spikes, which leaves far
fewer ties and scores higher with ties counted wrong; measured: docs/methods.md, section
"Proxy learning (Kheradpisheh, Mirsadeghi & Masquelier 2022)", paragraph "Ties");
``shift_pixels`` (1 [code], images of at least 16 x 16 only: an 8 x 8 digit would lose its
outer ring); ``bn_freeze_epoch`` (counted from the first proxy epoch); ``ann_epochs`` (ours, 0
by default, 10 for MNIST and Fashion-MNIST): epochs of the ANN alone with cross-entropy before
the proxy starts, cheaper per batch than proxy epochs (no SNN passes), at ``ann_lr_scale`` (10)
times the learning rate (epoch times measured: bench/RESULTS.md, section "spike-bp and proxy:
long runs in parts (in progress)"); ``train_precision`` (ours): "float32", "bfloat16" (the ANN's
forward and backward under autocast, the SNN's currents W s in bfloat16: spikes are exact in it,
weights keep 8 bits of mantissa, membranes and counts stay float32) or "auto" (the default:
bfloat16 where the device computes it natively, i.e. a CPU with AMX or AVX512-BF16 or a CUDA
GPU that supports it, else float32). Evaluation (validation, ``predict``, the converted network)
is always float32. On this project's CPU bfloat16 makes a training step of the paper's network
2.4x as fast (measured: docs/methods.md, section "Proxy learning ...", paragraph "Precision").

Ties: the public notebook's final score counted a sample right when the label's count
equalled the maximum, tied or not. ``predict`` returns the counts as they are; the
trainer scores ties as wrong, and the graph's readout breaks them by the higher
membrane potential (``simulate`` returns both).
"""
from __future__ import annotations

import copy
import math

from ...errors import SpikeportError
from .base import Method, SpikingSpec, plain_network, retarget, training_precision

METHOD = Method(
    name="proxy",
    citation="Kheradpisheh, Mirsadeghi, Masquelier 2022, 'Spiking neural networks trained via proxy', "
             "IEEE Access 10:70769-70778 (arXiv 2109.13208; code github.com/SRKH/ProxyLearning)",
    ann="the architecture with ReLU, no biases, BatchNorm after each convolution (none after fully connected "
        "layers), average pooling; it shares every weight with the SNN",
    training="each batch the SNN (IF, T steps, no gradients) runs too; its output spike counts (times count_scale) "
             "replace the ANN's output values (out = ann + (counts - ann).detach()); MSE to the one-hot label "
             "through the ANN; Adam lr 1e-4, batch 100, 100 epochs [code]; images shifted by up to 1 pixel "
             "(RandomCrop(H-2) + Pad(1) [code]); BatchNorm statistics learned in the first proxy epoch (the SNN's "
             "own), frozen after; optionally ann_epochs of the ANN alone first",
    snn=SpikingSpec(neuron="if", threshold=2.0, reset="zero", encoding="analog", dt_s=1e-3, steps=15,
                    notes="the trained weights unchanged (no normalization); BatchNorm folded with the SNN's own "
                          "statistics; readout: output spike counts"),
    # the paper's Adam 1e-4, batch 100 [code]; on a 2-core CPU its 100 epochs are replaced by
    # ANN-only epochs at 10x the rate and fewer proxy epochs (epoch times measured: bench/RESULTS.md,
    # section "spike-bp and proxy: long runs in parts (in progress)"); digits: a higher rate and
    # smaller batches, as the paper's settings learn too slowly there (measured: docs/methods.md,
    # section "Measurements behind the design choices")
    defaults={"optimizer": "adam", "lr": {"digits": 3e-3, "default": 1e-4},
              "batch_size": {"digits": 25, "default": 100}, "weight_decay": 1e-6, "schedule": "constant",
              "arch_flags": {"bias": False, "batchnorm": True}, "cheap_predict": False,
              "epochs": {"fashion-mnist": 20, "mnist": 20, "mnist-5k": 30, "digits": 10, "default": 20},
              "options_for": {"fashion-mnist": {"ann_epochs": 10}, "mnist": {"ann_epochs": 10},
                              "mnist-5k": {"ann_epochs": 10}, "digits": {"ann_epochs": 1, "ann_lr_scale": 1.0}}},
    options={"T": 15, "threshold": 2.0, "count_scale": 0.25, "shift_pixels": 1, "bn_freeze_epoch": 1, "ann_epochs": 0,
             "ann_lr_scale": 10.0, "train_precision": "auto"},
    default_arch={"fashion-mnist": "128c3s-128c3s-p2-128c3s-p2-2560-1152-256",
                  "mnist": "128c3s-128c3s-p2-128c3s-p2-2560-1152-256",
                  "mnist-5k": "128c3s-128c3s-p2-128c3s-p2-2560-1152-256",
                  "digits": "16c3s-p2-32c3s-p2-64", "default": "128c3s-128c3s-p2-128c3s-p2-2560-1152-256"},
    convert_options=("dt_s",),
)

# the largest float32 tensor (current or spikes of one population) a simulation holds at once
MAX_ELEMENTS = 1 << 25
TILE = 1 << 18  # membranes updated together over a chunk's steps (1 MiB of float32)


def _torch():
    import torch
    return torch


def lr_factor(epoch: int, options: dict) -> float:
    """The learning rate's factor in ``epoch``: ``ann_lr_scale`` during the ANN-only epochs."""
    return float(options["ann_lr_scale"]) if epoch < int(options["ann_epochs"]) else 1.0


def build(spec, options):
    """The ANN of ``spec`` with BatchNorm after convolutions only (the paper's fully connected
    layers have none), and on every BatchNorm the SNN's own statistics."""
    from collections import OrderedDict

    from ..architectures import build as build_arch

    torch = _torch()
    module = build_arch(spec)
    module = torch.nn.Sequential(OrderedDict((n, m) for n, m in module.named_children()
                                             if not (n.startswith("bnf") and isinstance(m, torch.nn.BatchNorm1d))))
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.register_buffer("snn_mean", torch.zeros_like(m.running_mean))
            m.register_buffer("snn_var", torch.ones_like(m.running_var))
    return module


# ----------------------------------------------------------------------------- the SNN

class _Stage:
    """The ops from one spiking population (or the input) to the next: pooling and
    flattening, one weighted layer, at most one BatchNorm."""

    def __init__(self, name):
        self.name, self.pre, self.layer, self.norm = name, [], None, None

    def add(self, name, m):
        nn = _torch().nn
        if isinstance(m, (nn.Identity, nn.Dropout)):
            return
        if isinstance(m, (nn.AvgPool2d, nn.Flatten)) and self.layer is None:
            self.pre.append(m)
        elif isinstance(m, (nn.Conv2d, nn.Linear)) and self.layer is None:
            self.layer = m
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) and self.layer is not None and self.norm is None:
            self.norm = m
        else:
            raise SpikeportError(f"proxy learning: layer {name!r} ({type(m).__name__}) cannot be simulated here "
                                 f"(pooling, flatten, one Conv2d or Linear and a BatchNorm between activations)")

    def fold(self, statistics):
        """(weight, bias) float32 as the converter folds them: in float64, then rounded once."""
        torch = _torch()
        w, b = self.layer.weight.detach(), self.layer.bias
        b = torch.zeros(w.shape[0], dtype=torch.float32, device=w.device) if b is None else b.detach()
        if self.norm is None:
            return w.to(torch.float32).contiguous(), b.to(torch.float32)
        scale, shift = _affine(self.norm, statistics)
        w = w.to(torch.float64) * scale.view((-1,) + (1,) * (w.dim() - 1))
        b = b.to(torch.float64) * scale + shift
        return w.to(torch.float32).contiguous(), b.to(torch.float32)


def _affine(bn, statistics):
    """Eval-mode BatchNorm as scale, shift (float64) with the SNN's or the ANN's statistics."""
    torch = _torch()
    mean, var = (bn.snn_mean, bn.snn_var) if statistics == "snn" else (bn.running_mean, bn.running_var)
    mean, var = mean.detach().to(torch.float64), var.detach().to(torch.float64)
    gamma = torch.ones_like(var) if bn.weight is None else bn.weight.detach().to(torch.float64)
    beta = torch.zeros_like(var) if bn.bias is None else bn.bias.detach().to(torch.float64)
    scale = gamma / torch.sqrt(var + bn.eps)
    return scale, beta - mean * scale


def _stages(module):
    nn = _torch().nn
    stages, stage = [], _Stage("input")
    for name, m in module.named_children():
        if isinstance(m, nn.ReLU):
            if stage.layer is None:
                raise SpikeportError(f"proxy learning: activation {name!r} follows no weighted layer")
            stages.append(stage)
            stage = _Stage(name)
        else:
            stage.add(name, m)
    if stage.layer is None:
        raise SpikeportError("proxy learning: the network must end with a weighted layer (the output neurons)")
    stages.append(stage)
    return stages


def _apply(stage, x, weight, dtype=None):
    """The stage's ops on ``x`` (rows, *shape) with ``weight`` as the reference executor runs them;
    ``dtype`` (training only): the weighted op in that precision, the result in float32."""
    torch = _torch()
    F = torch.nn.functional
    for m in stage.pre:
        x = _pool(m, x) if isinstance(m, torch.nn.AvgPool2d) else x.reshape(x.shape[0], -1)
    layer = stage.layer
    if not isinstance(layer, torch.nn.Linear) and (layer.padding_mode != "zeros" or isinstance(layer.padding, str)):
        raise SpikeportError(f"proxy learning: convolution padding {layer.padding!r}/{layer.padding_mode!r} "
                             f"is not supported (numeric zero padding)")
    low = dtype is not None
    if low:  # the weights come in that precision already (converted once per simulation)
        x, weight = x.to(dtype), weight.to(dtype)
    if isinstance(layer, torch.nn.Linear):
        out = x @ weight.T
    else:
        out = F.conv2d(x, weight, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    return out.to(torch.float32) if low else out


def low_precision(options, device) -> bool:
    """Whether training runs in bfloat16 (``train_precision``, module docstring)."""
    return training_precision("proxy", options["train_precision"], device) == "bfloat16"


def _pool(m, x):
    """Average pooling; non-overlapping windows as strided sums (the reference executor's
    order, faster than avg_pool2d on spike maps; measured: bench/RESULTS.md, section
    "Re-measured after two changes, 2026-11-24, dev-2core")."""
    torch = _torch()
    k, st, pad = (torch.nn.modules.utils._pair(a) for a in (m.kernel_size, m.stride or m.kernel_size, m.padding))
    if k != st or pad != (0, 0) or m.ceil_mode or m.divisor_override:
        return torch.nn.functional.avg_pool2d(x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                              m.count_include_pad, m.divisor_override)
    ho, wo = x.shape[-2] // k[0], x.shape[-1] // k[1]
    out = None
    for u in range(k[0]):
        for w in range(k[1]):
            part = x[..., u:u + k[0] * ho:k[0], w:w + k[1] * wo:k[1]]
            out = part.clone() if out is None else out.add_(part)
    return out.div_(k[0] * k[1])


def resolved_options(options, device) -> dict:
    """The precision ``train_precision`` stood for on this device (kept in the model file)."""
    return {"train_precision": training_precision("proxy", options["train_precision"], device)}


def simulate(module, x, steps, threshold, *, statistics="snn", learn_statistics=False, max_elements=MAX_ELEMENTS,
             dtype=None):
    """The SNN of ``module`` on images ``x``: (output spike counts, output membranes) after ``steps``.

    IF neurons, threshold ``threshold``, reset to zero, the image a constant current into the
    first layer every step, every projection without delay: the graph's semantics
    (spikeport.ir.neurons), with BatchNorm folded as the converter folds it, so the counts
    are those of the converted network run by the reference executor. The first layer's
    current is computed once; every other layer's for several steps and samples at once.

    ``statistics``: BatchNorm with the SNN's own statistics ("snn", the deployed network) or
    the ANN's running ones ("ann", for comparison). ``learn_statistics``: the BatchNorm
    layers normalize with the statistics as they are and add this batch's to the SNN's
    (pooled over steps, samples and positions; momentum as the ANN's) afterwards. ``dtype``
    (training only): the currents W s in that precision (bfloat16), membranes in float32.
    """
    torch = _torch()
    stages = _stages(module)
    with torch.no_grad():
        x = x.to(torch.float32)
        shapes = _shapes(stages, x.shape[1:])
        widest = max(math.prod(s) for s in shapes)
        rows = max(1, max_elements // widest)
        batch = min(len(x), rows)
        chunk = max(1, min(steps, rows // batch))
        sums = {id(s.norm): [0.0, 0.0, 0] for s in stages if learn_statistics and s.norm is not None}
        plans = []  # (weight, scale, bias): scale None where BatchNorm is folded into the weight
        for s in stages:
            if id(s.norm) in sums:
                scale, shift = (t.to(torch.float32) for t in _affine(s.norm, statistics))
                weight = s.layer.weight.detach()
                plans.append((weight if dtype is None else weight.to(dtype), scale, shift))
            else:
                weight, bias = s.fold(statistics)
                plans.append((weight if dtype is None else weight.to(dtype), None, bias))
        counts, membranes = [], []
        for s0 in range(0, len(x), batch):
            c, v = _run(stages, plans, shapes, x[s0:s0 + batch], steps, float(threshold), chunk, sums, dtype)
            counts.append(c)
            membranes.append(v)
        for s in stages:
            if id(s.norm) in sums:
                _update(s.norm, *sums[id(s.norm)])
    return torch.cat(counts), torch.cat(membranes)


def _shapes(stages, input_shape):
    torch = _torch()
    x, out = torch.zeros((1,) + tuple(input_shape)), []
    for s in stages:
        x = _apply(s, x, s.layer.weight.detach().cpu().float())
        out.append(tuple(x.shape[1:]))
    return out


def _run(stages, plans, shapes, x, steps, theta, chunk, sums, dtype=None):
    torch = _torch()
    batch = len(x)
    v = [None] * len(stages)
    counts = None
    first = None  # the first layer's current: the image is constant
    for t0 in range(0, steps, chunk):
        tc = min(steps, t0 + chunk) - t0
        spikes = None
        for k, (s, (w, scale, b)) in enumerate(zip(stages, plans)):
            if k == 0:
                if first is None:
                    first = _current(s, x, w, scale, b, sums, dtype)
                    first = first.reshape(batch, -1)
                current, const = first, True
            else:
                pre = spikes.reshape((tc * batch,) + spikes.shape[2:])
                current, const = _current(s, pre, w, scale, b, sums, dtype).reshape(tc, batch, -1), False
            if v[k] is None:
                v[k] = torch.zeros((batch, current.shape[-1]), dtype=torch.float32, device=x.device)
            out = torch.empty((tc,) + tuple(v[k].shape), dtype=torch.float32, device=x.device)
            _integrate(v[k], current, const, theta, out)
            spikes = out.view((tc, batch) + shapes[k])
        c = spikes.reshape(tc, batch, -1).sum(dim=0)
        counts = c if counts is None else counts + c
    return counts, v[-1]


def _integrate(v, current, const, theta, out):
    """IF steps with reset to zero, as spikeport.ir.neurons states them: v += i; s = v >= theta;
    v = v - v * s (exactly 0 where it spiked). Tile by tile, so that a tile of membranes
    stays in cache over the chunk's steps (as the reference executor's tiled update)."""
    torch = _torch()
    steps, n = out.shape[0], v.numel()
    flat_v, flat_out = v.view(-1), out.view(steps, -1)
    flat_in = current.reshape(-1) if const else current.reshape(steps, -1)
    for a in range(0, n, TILE):
        vt = flat_v[a:a + TILE]
        for k in range(steps):
            s = flat_out[k, a:a + TILE]
            vt.add_(flat_in[a:a + TILE] if const else flat_in[k, a:a + TILE])
            torch.ge(vt, theta, out=s)
            vt.addcmul_(vt, s, value=-1.0)


def _current(stage, pre, w, scale, b, sums, dtype=None):
    """A stage's input current (rows, *shape): folded weights plus bias, or (learning the
    statistics) the raw layer, its statistics noted, then the affine map."""
    out = _apply(stage, pre, w, dtype)
    per = (-1,) + (1,) * (out.dim() - 2)
    if scale is None:
        return out.add_(b.view(per))
    torch = _torch()
    flat = out.view(out.shape[0], out.shape[1], -1)  # per-sample sums first: faster than var_mean
    acc = sums[id(stage.norm)]
    acc[0] = acc[0] + flat.sum(2).sum(0, dtype=torch.float64)
    acc[1] = acc[1] + (flat * flat).sum(2).sum(0, dtype=torch.float64)
    acc[2] += flat.shape[0] * flat.shape[2]
    return out.mul_(scale.view(per)).add_(b.view(per))


def _update(bn, total, squares, n):
    """The SNN's statistics moved toward this batch's, as BatchNorm moves its running ones."""
    if n < 2:
        return
    mean = total / n
    var = (squares / n - mean * mean).clamp(min=0.0) * (n / (n - 1))
    m = 0.1 if bn.momentum is None else float(bn.momentum)
    bn.snn_mean.mul_(1 - m).add_(mean.to(bn.snn_mean.dtype), alpha=m)
    bn.snn_var.mul_(1 - m).add_(var.to(bn.snn_var.dtype), alpha=m)


# ----------------------------------------------------------------------------- training

def _shift(x, pixels, generator):
    """RandomCrop(H - 2p) then Pad(p) [code]: each image moved by up to p pixels, its border p zero."""
    torch = _torch()
    p = int(pixels)
    h, w = x.shape[-2], x.shape[-1]
    if p <= 0 or min(h, w) < 16:  # made for 28 x 28; an 8 x 8 digit would lose its outer ring
        return x
    offset = torch.randint(0, 2 * p + 1, (len(x), 2), generator=generator).to(x.device)
    out = torch.zeros_like(x)
    for i in range(2 * p + 1):
        for j in range(2 * p + 1):
            sel = (offset[:, 0] == i) & (offset[:, 1] == j)
            if bool(sel.any()):
                out[sel, ..., p:h - p, p:w - p] = x[sel, ..., i:i + h - 2 * p, j:j + w - 2 * p]
    return out


def _freeze_batchnorm(module, frozen):
    torch = _torch()
    for m in module.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.train(not frozen and module.training)


def loss(module, x, y, ctx):
    torch = _torch()
    o = ctx.options
    x = _shift(x, o["shift_pixels"], ctx.generator)
    low = low_precision(o, x.device)
    with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=low):
        if ctx.epoch < int(o["ann_epochs"]):  # the ANN alone first (ours, to save time): cross-entropy
            _freeze_batchnorm(module, frozen=False)
            return torch.nn.functional.cross_entropy(module(x).float(), y)
        learn = ctx.epoch < int(o["ann_epochs"]) + int(o["bn_freeze_epoch"])
        _freeze_batchnorm(module, frozen=not learn)
        ann = module(x).float()
    counts, _ = simulate(module, x, int(o["T"]), float(o["threshold"]), learn_statistics=learn,
                         dtype=torch.bfloat16 if low else None)
    out = ann + (counts * float(o["count_scale"]) - ann).detach()
    return torch.nn.functional.mse_loss(out, torch.nn.functional.one_hot(y, ann.shape[1]).to(ann.dtype))


def predict(module, x, ctx):
    """The SNN's output spike counts (ties are left as ties)."""
    return simulate(module, x, int(ctx.options["T"]), float(ctx.options["threshold"]))[0]


def to_network(model, calibration, *, dt_s=None, metadata=None):
    """The SNN: the trained weights unchanged, BatchNorm folded with the SNN's statistics,
    every population IF with the trained threshold and reset to zero, analog input."""
    from ...ir import NeuronModel

    opts = METHOD.resolve_options(model.meta.get("options"))
    module = copy.deepcopy(model.module).cpu().eval()
    torch = _torch()
    with torch.no_grad():
        for m in module.modules():
            if hasattr(m, "snn_mean"):
                m.running_mean.copy_(m.snn_mean)
                m.running_var.copy_(m.snn_var)
    net = plain_network(module, calibration, encoding="analog", dt_s=dt_s or METHOD.snn.dt_s, metadata=metadata)
    theta = float(opts["threshold"])
    neuron = NeuronModel("if", threshold=theta, reset="zero")
    return retarget(net, neuron=lambda pop: neuron, weight_gain=lambda pre, post: 1.0,
                    describe=f"IF, threshold {theta:g}, reset to zero, analog input (proxy learning)")
