"""Import a PyTorch module into the graph: torch.fx tracing, layer folding, normalization.

Any ``nn.Module`` that ``torch.fx.symbolic_trace`` can trace converts, if it is
made of: Linear, Conv2d (zero padding), BatchNorm1d/2d (folded), ReLU, clipped
ReLU (ReLU6, Hardtanh(0, c), clamp(0, c)), QCFS, AvgPool2d, MaxPool2d (replaced
by average pooling, with a warning: a spiking max needs lateral inhibition that
rate conversion does not model), Flatten / flatten / view / reshape to
(batch, -1), a view/reshape of the input itself to any shape of the same size (the input
population takes that shape), Dropout (removed), Identity, residual additions, multiplication by
a constant, and biases. Anything else is refused naming the module and the op.

How: every traced value is kept as a linear combination of spiking populations,
each through a chain of graph ops, plus an exact bias tensor::

    value = sum_k chain_k(population_k) + bias

A linear layer appends its op to every chain and maps the bias through itself
(so a bias followed by convolutions and pooling stays exact at the borders); an
addition concatenates the terms; an activation turns the value into a new
population (its incoming projections are the chains, its bias the bias tensor);
the module's output becomes the output population. BatchNorm scales the output
channels of the last weighted op of each chain (per-channel scaling commutes
with per-channel pooling), or adds a depthwise 1x1 op where there is none.

Normalization (``norm``), with lambda_input = 1 (inputs in [0, 1]):

- ``percentile`` (Rueckauer et al. 2017, p = 99.9 by default) and ``max`` (p = 100,
  Diehl et al. 2015, data-based): lambda_P = the p-th percentile of population P's
  positive ANN activations over the whole calibration set, computed exactly
  (numpy's linear interpolation between order statistics) in two passes with
  memory for the top (100 - p) % only;
- ``model-max`` (Diehl et al. 2015, model-based): lambda_P = max over neurons of the
  largest input the neuron can receive when every source fires at its maximum:
  sum_j max(0, w_ij lambda_source) + max(0, b_i);
- a clipped ReLU or QCFS population uses its clip level (Deng & Gu 2021; Bu et al.
  2022): lambda_P = c, whatever ``norm`` says;
- ``none``: lambda_P = 1 everywhere, the module's own weights and biases (for methods
  trained for their spiking network, which then set each population's neuron model:
  :mod:`spikeport.models.methods`).

Then every chain into P is scaled by lambda_source / lambda_P and P's bias by
1 / lambda_P; neurons are IF with threshold 1 and reset by subtraction, and
``v_init`` "half" starts membranes at 1/2 (the threshold shift of Deng & Gu 2021
and QCFS).
"""
from __future__ import annotations

import dataclasses
import math
import operator
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import SpikeportError
from ..ir import (AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population, Projection,
                  SumPool2d)
from .activation_stats import exact_percentiles
from .activations import qcfs_class

NORMS = ("percentile", "max", "model-max", "none")


class ConversionWarning(UserWarning):
    """Something was converted by an approximation (e.g. max pooling -> average pooling)."""


@dataclass
class _Term:
    source: str
    ops: list = field(default_factory=list)
    layer: str | None = None  # the last weighted module on the chain, to name populations after


@dataclass
class _Value:
    terms: list
    bias: np.ndarray  # float64, the value's shape (no batch axis)

    @property
    def shape(self):
        return tuple(self.bias.shape)


@dataclass
class _Pop:
    name: str
    node: str            # the fx node whose ANN output is this population's activation
    value: _Value        # the pre-activation, as chains from other populations
    clip: float | None   # clip level of a clipped ReLU / QCFS


class _Batch:
    """The value of ``x.size(0)``: the batch dimension, allowed in view/reshape."""


def _torch():
    import torch
    return torch


def _is_activation(m) -> bool:
    """A training method's activation module (it sets ``spikeport_activation = True``): a
    population of the method's neurons, whose model and scale the method sets after import."""
    return getattr(m, "spikeport_activation", False) is True


# ----------------------------------------------------------------------------- ops on values

def weighted_index(ops):
    for i in range(len(ops) - 1, -1, -1):
        if isinstance(ops[i], (Dense, Conv2d)):
            return i
    return None


def scale_chain(ops, factor, shape):
    """The chain times a scalar: its weighted op's weights, or a new scaling op when it has none."""
    if factor == 1.0:
        return list(ops)
    ops = list(ops)
    i = weighted_index(ops)
    if i is not None:
        ops[i] = dataclasses.replace(ops[i], weight=(ops[i].weight.astype(np.float64) * factor).astype(np.float32))
        return ops
    return ops + [_channel_op(np.full(shape[0], factor), shape)]


def _channel_op(scale, shape):
    """A per-channel (or per-feature) scaling op for values of ``shape``."""
    if len(shape) == 1:
        return Dense(np.diag(scale).astype(np.float32))
    return Conv2d(np.asarray(scale, dtype=np.float32).reshape(-1, 1, 1, 1), groups=shape[0])


def scale_chain_channels(ops, scale, shape):
    """A chain of graph ops whose output (of ``shape``) is multiplied per channel by ``scale``.

    Folded into the output channels of the last weighted op when only per-channel
    pooling follows it (per-channel scaling commutes with it); otherwise a
    per-channel scaling op is appended. Returns a new list; ``ops`` is not changed.
    """
    ops = list(ops)
    i = weighted_index(ops)
    if i is not None and all(isinstance(op, (AvgPool2d, SumPool2d)) for op in ops[i + 1:]):
        w = ops[i].weight.astype(np.float64)
        ops[i] = dataclasses.replace(ops[i], weight=(w * scale.reshape((-1,) + (1,) * (w.ndim - 1))).astype(np.float32))
    else:
        ops.append(_channel_op(scale, shape))
    return ops


def _scale_channels(value, scale, shift, owner):
    """A per-channel affine map (eval BatchNorm) folded into every chain of ``value``."""
    shape = value.shape
    per = (-1,) + (1,) * (len(shape) - 1)
    terms = [dataclasses.replace(t, ops=scale_chain_channels(t.ops, scale, shape)) for t in value.terms]
    return _Value(terms, value.bias * scale.reshape(per) + shift.reshape(per))


def _apply(value, op, layer=None, extra_bias=None):
    """A linear op on a value: appended to every chain, the bias mapped through it."""
    bias = op.apply_numpy(value.bias[None])[0]
    if extra_bias is not None:
        bias = bias + extra_bias
    terms = [dataclasses.replace(t, ops=t.ops + [op], layer=layer or t.layer) for t in value.terms]
    return _Value(terms, bias)


# ----------------------------------------------------------------------------- tracing

class Importer:
    def __init__(self, module, input_shape):
        torch = _torch()
        import torch.fx as fx

        qcfs = qcfs_class()

        class Tracer(fx.Tracer):
            def is_leaf_module(self, m, qualname):
                return isinstance(m, qcfs) or _is_activation(m) or super().is_leaf_module(m, qualname)

        try:
            graph = Tracer().trace(module)
        except Exception as exc:  # fx raises many types for untraceable code
            raise SpikeportError(f"the model cannot be traced by torch.fx ({type(exc).__name__}: "
                                 f"{str(exc).splitlines()[0][:160]})") from None
        self.gm = fx.GraphModule(module, graph)
        self.input_shape = tuple(input_shape)
        self.pops: list[_Pop] = []
        self.values = {}
        self.output = None
        self.F = torch.nn.functional
        self.torch = torch

    def run(self):
        for node in self.gm.graph.nodes:
            self.values[node.name] = self._node(node)
        return self

    def fail(self, node, what):
        where = f"module {node.target!r}" if node.op == "call_module" else f"op {node.op} {getattr(node.target, '__name__', node.target)!s}"
        raise SpikeportError(f"{where} (node {node.name!r}): {what}")

    def _arg(self, a):
        if hasattr(a, "name") and hasattr(a, "op"):
            return self.values[a.name]
        if isinstance(a, (tuple, list)):
            return type(a)(self._arg(x) for x in a)
        return a

    def _node(self, node):
        if node.op == "placeholder":
            if any(isinstance(v, _Value) for v in self.values.values()):
                self.fail(node, "a second input is not supported")
            return _Value([_Term("input")], np.zeros(self.input_shape))
        if node.op == "output":
            value = self._arg(node.args[0])
            if not isinstance(value, _Value):
                self.fail(node, "the model's output must be one tensor")
            self.output = self._population(node, value, clip=None, name_hint="output")
            return None
        if node.op == "call_module":
            return self._module(node, self.gm.get_submodule(node.target))
        if node.op in ("call_function", "call_method"):
            return self._function(node)
        self.fail(node, "is not supported (parameters used directly in the forward pass)")

    def _population(self, node, value, clip, name_hint=None):
        if not value.terms:
            self.fail(node, "an activation of a constant")
        layer = value.terms[0].layer or name_hint or node.name
        name, k = layer, 2
        while any(p.name == name for p in self.pops):
            name, k = f"{layer}_{k}", k + 1
        self.pops.append(_Pop(name=name, node=node.name, value=value, clip=clip))
        return _Value([_Term(name)], np.zeros(value.shape))

    def _value(self, node, x):
        if not isinstance(x, _Value):
            self.fail(node, "expects a tensor computed from the input")
        return x

    def _module(self, node, m):
        nn = self.torch.nn
        x = self._value(node, self._arg(node.args[0])) if node.args else None
        name = node.target
        if isinstance(m, qcfs_class()):
            return self._population(node, x, clip=float(m.lam.detach()))
        if _is_activation(m):  # a training method's own activation: its population, scaled by the method
            return self._population(node, x, clip=None)
        if isinstance(m, nn.ReLU):
            return self._population(node, x, clip=None)
        if isinstance(m, nn.ReLU6):
            return self._population(node, x, clip=6.0)
        if isinstance(m, nn.Hardtanh):
            if m.min_val != 0.0:
                self.fail(node, f"Hardtanh({m.min_val}, {m.max_val}) is not a clipped ReLU (min must be 0)")
            return self._population(node, x, clip=float(m.max_val))
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Identity)):
            return x
        if isinstance(m, nn.Linear):
            if len(x.shape) != 1 or x.shape[0] != m.in_features:
                self.fail(node, f"Linear({m.in_features}, {m.out_features}) cannot take input of shape {x.shape}")
            w = m.weight.detach().cpu().numpy().astype(np.float32)
            b = None if m.bias is None else m.bias.detach().cpu().numpy().astype(np.float64)
            return _apply(x, Dense(w), layer=name, extra_bias=b)
        if isinstance(m, nn.Conv2d):
            if m.padding_mode != "zeros":
                self.fail(node, f"padding_mode {m.padding_mode!r} is not supported (zeros only)")
            padding = m.padding
            if isinstance(padding, str):
                if padding == "valid":
                    padding = (0, 0)
                else:  # "same" with stride 1: symmetric when the total padding is even
                    total = [d * (k - 1) for d, k in zip(m.dilation, m.kernel_size)]
                    if any(t % 2 for t in total):
                        self.fail(node, "padding 'same' with an even kernel is asymmetric, which is not supported")
                    padding = tuple(t // 2 for t in total)
            op = Conv2d(m.weight.detach().cpu().numpy().astype(np.float32), stride=m.stride, padding=padding,
                        dilation=m.dilation, groups=m.groups)
            self._check_shape(node, op, x.shape)
            b = None if m.bias is None else m.bias.detach().cpu().numpy().astype(np.float64)[:, None, None]
            return _apply(x, op, layer=name, extra_bias=b)
        if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d)):
            return self._pool(node, x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                              getattr(m, "count_include_pad", True), getattr(m, "divisor_override", None),
                              isinstance(m, nn.MaxPool2d), getattr(m, "dilation", 1))
        if isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                self.fail(node, "only Flatten(start_dim=1, end_dim=-1) is supported")
            return _apply(x, Flatten()) if len(x.shape) > 1 else x
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.running_mean is None or m.running_var is None:
                self.fail(node, "BatchNorm without running statistics cannot be folded")
            if x.shape[0] != m.num_features or (isinstance(m, nn.BatchNorm1d) and len(x.shape) != 1):
                self.fail(node, f"BatchNorm over {m.num_features} features cannot take shape {x.shape}")
            var = m.running_var.detach().cpu().numpy().astype(np.float64)
            mean = m.running_mean.detach().cpu().numpy().astype(np.float64)
            gamma = np.ones_like(var) if m.weight is None else m.weight.detach().cpu().numpy().astype(np.float64)
            beta = np.zeros_like(var) if m.bias is None else m.bias.detach().cpu().numpy().astype(np.float64)
            scale = gamma / np.sqrt(var + m.eps)
            return _scale_channels(x, scale, beta - mean * scale, name)
        self.fail(node, f"{type(m).__name__} is not supported by the converter")

    def _check_shape(self, node, op, shape):
        try:
            op.out_shape(shape, node.name)
        except SpikeportError as exc:
            self.fail(node, str(exc))

    def _pool(self, node, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor, is_max, dilation=1):
        if ceil_mode:
            self.fail(node, "ceil_mode=True pooling is not supported")
        if divisor is not None:
            self.fail(node, "divisor_override is not supported")
        if dilation not in (1, (1, 1)):
            self.fail(node, "dilated pooling is not supported")
        if is_max:
            warnings.warn(f"{node.target if isinstance(node.target, str) else node.name}: max pooling is converted "
                          f"to average pooling (rate conversion has no spiking max)", ConversionWarning, stacklevel=4)
        if not count_include_pad and padding not in (0, (0, 0)):
            self.fail(node, "average pooling with count_include_pad=False and padding is not supported")
        op = AvgPool2d(kernel, stride=stride if stride not in (None, ()) else None, padding=padding)
        self._check_shape(node, op, x.shape)
        return _apply(x, op)

    def _function(self, node):
        torch, F = self.torch, self.F
        target = node.target
        args = [self._arg(a) for a in node.args]
        kwargs = {k: self._arg(v) for k, v in node.kwargs.items()}
        method = node.op == "call_method"
        if method and target == "size":
            if args[1:] == [0] or kwargs.get("dim") == 0:
                return _Batch()
            self.fail(node, "only x.size(0) is supported")
        if target in (torch.relu, F.relu) or (method and target == "relu"):
            return self._population(node, self._value(node, args[0]), clip=None)
        if target in (F.relu6,):
            return self._population(node, self._value(node, args[0]), clip=6.0)
        if target in (F.hardtanh,) or target in (torch.clamp, torch.clip) or (method and target in ("clamp", "clip")):
            lo = kwargs.get("min", kwargs.get("min_val", args[1] if len(args) > 1 else (-1.0 if target is F.hardtanh else None)))
            hi = kwargs.get("max", kwargs.get("max_val", args[2] if len(args) > 2 else (1.0 if target is F.hardtanh else None)))
            if lo != 0 or hi is None or not isinstance(hi, (int, float)):
                self.fail(node, f"clamp({lo}, {hi}) is not a clipped ReLU (min 0 and a numeric max)")
            return self._population(node, self._value(node, args[0]), clip=float(hi))
        if target in (F.dropout, torch.dropout) or (method and target in ("contiguous",)):
            return self._value(node, args[0])
        if target in (operator.add, torch.add) or (method and target == "add"):
            a, b = args[0], args[1]
            if isinstance(a, _Value) and isinstance(b, _Value):
                if a.shape != b.shape:
                    self.fail(node, f"adds shapes {a.shape} and {b.shape}")
                return _Value(a.terms + b.terms, a.bias + b.bias)
            value, const = (a, b) if isinstance(a, _Value) else (b, a)
            if isinstance(value, _Value) and isinstance(const, (int, float)):
                return _Value(value.terms, value.bias + const)
            self.fail(node, "adds something that is neither a traced tensor nor a number")
        if target in (operator.mul, torch.mul) or (method and target == "mul"):
            a, b = args[0], args[1]
            value, const = (a, b) if isinstance(a, _Value) else (b, a)
            if isinstance(value, _Value) and isinstance(const, (int, float)):
                shape = value.shape
                return _Value([dataclasses.replace(t, ops=scale_chain(t.ops, float(const), shape))
                               for t in value.terms], value.bias * const)
            self.fail(node, "multiplies by something that is not a number")
        if target in (torch.flatten,) or (method and target == "flatten"):
            start = kwargs.get("start_dim", args[1] if len(args) > 1 else 0)
            end = kwargs.get("end_dim", args[2] if len(args) > 2 else -1)
            if start != 1 or end != -1:
                self.fail(node, "only flatten(x, 1) is supported")
            x = self._value(node, args[0])
            return _apply(x, Flatten()) if len(x.shape) > 1 else x
        if method and target in ("view", "reshape") or target is torch.reshape:
            x = self._value(node, args[0])
            shape = args[1] if len(args) == 2 and isinstance(args[1], (tuple, list)) else args[1:]
            shape = list(shape)
            if len(shape) == 2 and (isinstance(shape[0], _Batch) or shape[0] == -1 or isinstance(shape[0], int)) and \
                    shape[1] in (-1, math.prod(x.shape)):
                return _apply(x, Flatten()) if len(x.shape) > 1 else x
            if getattr(node.args[0], "op", None) == "placeholder" and len(shape) >= 2 and all(isinstance(d, int) and d > 0 for d in shape[1:]) \
                    and math.prod(shape[1:]) == math.prod(x.shape):
                # the samples reshaped on the way in (x.view(-1, 1, 8, 8)): the input population takes that shape
                self.input_shape = tuple(shape[1:])
                return _Value([_Term("input")], np.zeros(self.input_shape))
            self.fail(node, f"{target} to a shape other than (batch, -1) is not supported")
        if target in (F.avg_pool2d, F.max_pool2d):
            x = self._value(node, args[0])
            kernel = kwargs.get("kernel_size", args[1] if len(args) > 1 else None)
            stride = kwargs.get("stride", args[2] if len(args) > 2 else None)
            padding = kwargs.get("padding", args[3] if len(args) > 3 else 0)
            return self._pool(node, x, kernel, stride, padding, kwargs.get("ceil_mode", False),
                              kwargs.get("count_include_pad", True), kwargs.get("divisor_override"), target is F.max_pool2d)
        name = getattr(target, "__name__", str(target))
        self.fail(node, f"{name} is not supported by the converter")


def _model_max(pop, scales, shapes):
    """The largest input a neuron of ``pop`` can get when every source fires at most once per step."""
    total = np.zeros(int(np.prod(pop.value.shape)))
    for t in pop.value.terms:
        proj = Projection("p", t.source, pop.name, scale_chain(t.ops, scales[t.source], shapes[t.source]))
        syn = proj.materialize(shapes[t.source])
        total += np.bincount(syn.post, weights=np.maximum(syn.weight, 0.0), minlength=total.size)
    total += np.maximum(pop.value.bias.reshape(-1), 0.0)
    return float(total.max())


# ----------------------------------------------------------------------------- the entry point

def import_torch(module, calibration, *, norm: str = "percentile", percentile: float = 99.9, v_init: str = "zero",
                 encoding: str = "analog", max_rate_hz: float = 1000.0, dt_s: float = 1e-3,
                 metadata: dict | None = None) -> Network:
    """Convert ``module`` into a network of IF neurons (module docstring).

    ``calibration``: input samples (e.g. training images) shaped like the model's
    input, for data-based normalization and to learn the input shape.
    """
    if norm not in NORMS:
        raise SpikeportError(f"unknown normalization {norm!r} (known: {', '.join(NORMS)})")
    if not 0 < percentile <= 100:
        raise SpikeportError(f"percentile must be in (0, 100], got {percentile}")
    if v_init not in ("zero", "half"):
        raise SpikeportError(f"v_init must be 'zero' or 'half', got {v_init!r}")
    calibration = np.asarray(calibration, dtype=np.float32)
    module = module.eval()
    imp = Importer(module, calibration.shape[1:]).run()
    pops = imp.pops
    p = 100.0 if norm == "max" else percentile
    data_based = [q for q in pops if q.clip is None] if norm not in ("model-max", "none") else []
    stats = exact_percentiles(imp.gm, [q.node for q in data_based], calibration, p) if data_based else {}
    scales = {"input": 1.0}
    shapes = {"input": imp.input_shape}  # the samples' shape, or what the module reshapes them to first
    for q in pops:
        shapes[q.name] = q.value.shape
        if norm == "none":
            lam = 1.0
        elif q.clip is not None:
            lam = q.clip
        elif norm == "model-max":
            lam = _model_max(q, scales, shapes)
        else:
            lam = stats[q.node]
        scales[q.name] = lam if lam and lam > 0 else 1.0  # a silent population passes nothing on anyway
    neuron = NeuronModel("if", 1.0, "subtract", v_init=0.5 if v_init == "half" else 0.0)
    populations = [Population("input", shapes["input"], encoding=InputEncoding(encoding, max_rate_hz))]
    projections = []
    for q in pops:
        lam = scales[q.name]
        bias = (q.value.bias / lam).astype(np.float32)
        populations.append(Population(q.name, q.value.shape, neuron=neuron, bias=bias if np.any(bias) else None))
        for k, t in enumerate(q.value.terms):
            ops = scale_chain(t.ops, scales[t.source] / lam, shapes[t.source])
            if not ops:  # an identity (a residual shortcut at equal scales)
                shape = shapes[t.source]
                ops = [Flatten()] if len(shape) == 1 else [_channel_op(np.ones(shape[0]), shape)]
            suffix = "" if len(q.value.terms) == 1 else f"#{k}"
            projections.append(Projection(f"{t.source}->{q.name}{suffix}", t.source, q.name, ops))
    meta = dict(metadata or {})
    meta["conversion"] = {"norm": norm, "percentile": p if norm not in ("model-max", "none") else None, "scales": scales,
                          "calibration_samples": int(len(calibration)), "encoding": encoding,
                          "v_init": v_init, "clipped": [q.name for q in pops if q.clip is not None],
                          "activation_nodes": {q.name: q.node for q in pops},
                          "neuron": f"IF, threshold 1, reset by subtraction, v(0) = {neuron.v_init:g}"}
    return Network(populations, projections, dt_s=dt_s, input="input", output=pops[-1].name, metadata=meta).validate()
