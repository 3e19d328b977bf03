"""ANN architectures that spikeport trains and converts.

An :class:`ArchSpec` is plain JSON-able data; :func:`build` turns it into a torch
module whose layer names (``fc1``, ``fc2``, ...) become the population names of
the converted network.
"""
from __future__ import annotations

import math
import re
from collections import OrderedDict
from dataclasses import asdict, dataclass

from ..errors import SpikeportError

ARCHITECTURES = ("mlp", "lenet", "cnn")
_LAYER = re.compile(r"^(?:(?P<conv>\d+)c(?P<k>\d+)(?P<same>s?)|p(?P<pool>\d+)|(?:fc)?(?P<fc>\d+))$")
MAX_LAYER_SIZE = 1 << 16


def parse_layers(text: str) -> list:
    """A sequence in the papers' notation, e.g. ``16c5-p2-64c5-p2`` or ``32c3s-p2-128``:
    ``NcK`` a K x K convolution to N channels (``s``: zero-padded to keep the size), ``pK``
    K x K average pooling, ``N`` (or ``fcN``) a fully connected layer of N; every
    convolution and fully connected layer is followed by the activation, and a last fully
    connected layer to the classes is added. Returns [(kind, ...)]; errors name the token."""
    layers = []
    for token in str(text).lower().split("-"):
        m = _LAYER.match(token.strip())
        if not m:
            raise SpikeportError(f"architecture {text!r}: cannot read layer {token!r} "
                                 f"(NcK convolution, NcKs padded, pK pooling, N fully connected)")
        if m["conv"]:
            n, k = int(m["conv"]), int(m["k"])
            if not (1 <= n <= MAX_LAYER_SIZE and 1 <= k <= 31) or (m["same"] and k % 2 == 0):
                raise SpikeportError(f"architecture {text!r}: layer {token!r} needs 1..{MAX_LAYER_SIZE} channels and "
                                     f"a kernel of 1..31 (odd when padded)")
            layers.append(("conv", n, k, bool(m["same"])))
        elif m["pool"]:
            k = int(m["pool"])
            if not 1 <= k <= 16:
                raise SpikeportError(f"architecture {text!r}: layer {token!r} needs a pooling window of 1..16")
            layers.append(("pool", k))
        else:
            n = int(m["fc"])
            if not 1 <= n <= MAX_LAYER_SIZE:
                raise SpikeportError(f"architecture {text!r}: layer {token!r} needs 1..{MAX_LAYER_SIZE} neurons")
            layers.append(("fc", n))
    return layers


def is_architecture(name: str) -> bool:
    """A named architecture or a layer sequence (:func:`parse_layers`)."""
    if name in ARCHITECTURES:
        return True
    try:
        parse_layers(name)
    except SpikeportError:
        return False
    return True


@dataclass
class ArchSpec:
    """An architecture by name, for an input shape (C, H, W) and a number of classes.

    - ``mlp``: Flatten - [Linear - ReLU] per ``hidden`` size - Linear to ``classes``.
    - ``lenet`` (LeCun et al. 1998, as in the conversion literature): Conv 20@5x5 - ReLU -
      AvgPool 2 - Conv 50@5x5 - ReLU - AvgPool 2 - FC 200 - ReLU - FC classes, with biases.
    - ``cnn``: 32C3-32C3-P2-64C3-64C3-P2-FC256-classes, 3x3 convolutions padded by 1,
      each followed by BatchNorm and ReLU; average pooling.
    - a layer sequence in the papers' notation (:func:`parse_layers`), e.g. ``16c5-p2-64c5-p2``
      (Liu & Furber's MNIST network); ``bias`` and ``batchnorm`` apply to its hidden layers.
    """

    arch: str
    input_shape: tuple
    classes: int
    hidden: tuple = (256, 128)
    activation: str = "relu"        # "relu", "qcfs" (QCFS with ``qcfs_levels`` steps), or the method's own
    qcfs_levels: int = 8
    bias: bool = True               # layer sequences: biases in convolutions and hidden layers
    batchnorm: bool = False         # layer sequences: BatchNorm after each convolution and hidden layer

    def __post_init__(self):
        if not isinstance(self.arch, str) or not self.arch:
            raise SpikeportError(f"the architecture must be a name or a layer string, got {self.arch!r:.80}")
        self.input_shape = tuple(int(s) for s in self.input_shape)
        self.hidden = tuple(int(h) for h in self.hidden)
        if not is_architecture(self.arch):
            if "-" in self.arch or self.arch[:1].isdigit():
                parse_layers(self.arch)  # a layer sequence: the error names the token
            raise SpikeportError(f"unknown architecture {self.arch!r} (known: {', '.join(ARCHITECTURES)}, "
                                 f"or layers such as 16c5-p2-64c5-p2)")
        if not isinstance(self.activation, str) or not self.activation or not 1 <= int(self.qcfs_levels) <= 256:
            raise SpikeportError(f"architecture {self.arch!r}: bad activation {self.activation!r} "
                                 f"or qcfs_levels {self.qcfs_levels!r}")
        if self.classes < 2 or any(h < 1 for h in self.hidden) or not self.input_shape or min(self.input_shape) < 1:
            raise SpikeportError(f"architecture {self.arch!r}: bad sizes (input {self.input_shape}, "
                                 f"hidden {self.hidden}, classes {self.classes})")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["input_shape"], d["hidden"] = list(self.input_shape), list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ArchSpec":
        try:
            return cls(arch=d["arch"], input_shape=tuple(d["input_shape"]), classes=int(d["classes"]),
                       hidden=tuple(d.get("hidden", ())), activation=d.get("activation", "relu"),
                       qcfs_levels=int(d.get("qcfs_levels", 8)), bias=bool(d.get("bias", True)),
                       batchnorm=bool(d.get("batchnorm", False)))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpikeportError(f"bad architecture spec {d!r}: {exc}") from None


def _check_spatial(spec: ArchSpec, minimum: int) -> None:
    if len(spec.input_shape) != 3 or min(spec.input_shape[1:]) < minimum:
        raise SpikeportError(f"architecture {spec.arch!r} needs images (C, H, W) of at least {minimum}x{minimum}, "
                             f"got input shape {spec.input_shape} (use --arch mlp for small inputs)")


# bytes per parameter (float32) of a built module; a spec's parameters times this are checked against the memory
# budget (spikeport.budget) before torch allocates anything
PARAMETER_BYTES = 4


def parameter_count(spec: ArchSpec, weights_only: bool = False) -> int:
    """The parameters (weights, biases, BatchNorm's scales, shifts and running statistics) of ``build(spec)``,
    counted from the spec alone (:func:`plan`), without torch; ``weights_only``: the convolution and fully
    connected weights alone (what every method's module holds: spike-bp's has no biases)."""
    total = 0
    for _, kind, args in plan(spec):
        if kind == "conv":
            c_in, n, k, _, bias = args
            total += c_in * n * k * k + (n if bias and not weights_only else 0)
        elif kind == "linear":
            n_in, n, bias = args
            total += n_in * n + (n if bias and not weights_only else 0)
        elif kind in ("bn2d", "bn1d") and not weights_only:
            total += 4 * args[0]
    return total


def check_size(spec: ArchSpec, where=None) -> int:
    """Refuse a spec whose parameters exceed the memory budget (before anything is built); ``where`` (a file)
    leads the message. Returns the parameter count."""
    from ..budget import check as check_budget
    from ..budget import number

    count = parameter_count(spec)
    check_budget(count * PARAMETER_BYTES, f"architecture {spec.arch!r} (input {spec.input_shape}, "
                 f"{number(spec.classes)} classes) declares {number(count)} parameters", where, of="float32 weights")
    return count


def build(spec: ArchSpec, activation=None):
    """The torch module of ``spec`` (an ``nn.Sequential`` with named layers), its size checked against the
    memory budget first (:func:`check_size`).

    Every ReLU is replaced by ``activation(name)`` when given (a method's own activation
    module); with activation "qcfs" by a QCFS (spikeport.models.activations) of
    ``qcfs_levels`` steps."""
    layers = plan(spec)
    check_size(spec)
    module = _build(layers)
    if activation is None and spec.activation == "qcfs":
        from .activations import qcfs_class
        qcfs = qcfs_class()
        activation = lambda name: qcfs(levels=spec.qcfs_levels, lam=4.0)
    if activation is not None:
        for name, child in list(module.named_children()):
            if type(child).__name__ == "ReLU":
                setattr(module, name, activation(name))
    return module


def _plan_layers(spec: ArchSpec) -> list:
    """A layer sequence (:func:`parse_layers`): conv1, relu1, pool1, ..., fc1, relu, ..., output."""
    layers = []
    shape = spec.input_shape
    spatial = len(shape) == 3
    n_conv = n_fc = n_pool = n_act = 0
    for layer in parse_layers(spec.arch):
        if layer[0] in ("conv", "pool") and (not spatial or len(shape) != 3):
            raise SpikeportError(f"architecture {spec.arch!r}: a {layer[0]} layer needs images (C, H, W) before any "
                                 f"fully connected layer, got input shape {spec.input_shape}")
        if layer[0] == "conv":
            _, n, k, same = layer
            pad = k // 2 if same else 0
            side = [s + 2 * pad - k + 1 for s in shape[1:]]
            if min(side) < 1:
                raise SpikeportError(f"architecture {spec.arch!r}: a {k}x{k} convolution does not fit a "
                                     f"{shape[1]}x{shape[2]} map")
            n_conv += 1
            layers.append((f"conv{n_conv}", "conv", (shape[0], n, k, pad, spec.bias and not spec.batchnorm)))
            if spec.batchnorm:
                layers.append((f"bn{n_conv}", "bn2d", (n,)))
            n_act += 1
            layers.append((f"relu{n_act}", "relu", ()))
            shape = (n, *side)
        elif layer[0] == "pool":
            k = layer[1]
            if min(shape[1:]) < k:
                raise SpikeportError(f"architecture {spec.arch!r}: pooling {k}x{k} does not fit a "
                                     f"{shape[1]}x{shape[2]} map")
            n_pool += 1
            layers.append((f"pool{n_pool}", "pool", (k,)))
            shape = (shape[0], shape[1] // k, shape[2] // k)
        else:
            if len(shape) > 1:
                layers.append(("flatten", "flatten", ()))
                shape = (math.prod(shape),)
            n_fc += 1
            layers.append((f"fc{n_fc}", "linear", (shape[0], layer[1], spec.bias and not spec.batchnorm)))
            if spec.batchnorm:
                layers.append((f"bnf{n_fc}", "bn1d", (layer[1],)))
            n_act += 1
            layers.append((f"relu{n_act}", "relu", ()))
            shape = (layer[1],)
    if len(shape) > 1:
        layers.append(("flatten", "flatten", ()))
        shape = (math.prod(shape),)
    layers.append((f"fc{n_fc + 1}", "linear", (shape[0], spec.classes, spec.bias)))
    return layers


def plan(spec: ArchSpec) -> list:
    """The layers of ``build(spec)`` as (name, kind, arguments), kind one of conv (c_in, c_out, k, padding,
    bias), bn2d (channels), relu, pool (k: average pooling), flatten, linear (n_in, n_out, bias), bn1d (n):
    the shapes worked out without torch, every misfit a one-line error."""
    if spec.arch not in ARCHITECTURES:
        return _plan_layers(spec)
    if spec.arch == "lenet":
        _check_spatial(spec, 16)
        c, h, w = spec.input_shape
        side = lambda n: ((n - 4) // 2 - 4) // 2
        return [("conv1", "conv", (c, 20, 5, 0, True)), ("relu1", "relu", ()), ("pool1", "pool", (2,)),
                ("conv2", "conv", (20, 50, 5, 0, True)), ("relu2", "relu", ()), ("pool2", "pool", (2,)),
                ("flatten", "flatten", ()), ("fc1", "linear", (50 * side(h) * side(w), 200, True)),
                ("relu3", "relu", ()), ("fc2", "linear", (200, spec.classes, True))]
    if spec.arch == "cnn":
        _check_spatial(spec, 4)
        c, h, w = spec.input_shape
        layers = []
        for i, (cin, cout) in enumerate([(c, 32), (32, 32), (32, 64), (64, 64)], start=1):
            layers += [(f"conv{i}", "conv", (cin, cout, 3, 1, False)), (f"bn{i}", "bn2d", (cout,)),
                       (f"relu{i}", "relu", ())]
            if i % 2 == 0:
                layers.append((f"pool{i // 2}", "pool", (2,)))
        return layers + [("flatten", "flatten", ()), ("fc1", "linear", (64 * (h // 4) * (w // 4), 256, True)),
                         ("relu5", "relu", ()), ("fc2", "linear", (256, spec.classes, True))]
    layers = [("flatten", "flatten", ())]
    width = math.prod(spec.input_shape)
    sizes = list(spec.hidden) + [spec.classes]
    for i, size in enumerate(sizes, start=1):
        layers.append((f"fc{i}", "linear", (width, size, True)))
        if i < len(sizes):
            layers.append((f"relu{i}", "relu", ()))
        width = size
    return layers


def _build(layers: list):
    """The ``nn.Sequential`` of a :func:`plan`."""
    from torch import nn

    make = {"conv": lambda c_in, n, k, pad, bias: nn.Conv2d(c_in, n, k, padding=pad, bias=bias),
            "bn2d": nn.BatchNorm2d, "relu": nn.ReLU, "pool": nn.AvgPool2d, "flatten": nn.Flatten,
            "linear": lambda n_in, n, bias: nn.Linear(n_in, n, bias=bias), "bn1d": nn.BatchNorm1d}
    return nn.Sequential(OrderedDict((name, make[kind](*args)) for name, kind, args in layers))
