"""ANN architectures that spikeport trains and converts.

An :class:`ArchSpec` is plain JSON-able data; :func:`build` turns it into a torch
module whose layer names (``fc1``, ``fc2``, ...) become the population names of
the converted network.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass

from ..errors import SpikeportError

ARCHITECTURES = ("mlp", "lenet", "cnn")


@dataclass
class ArchSpec:
    """An architecture by name, for an input shape (C, H, W) and a number of classes.

    - ``mlp``: Flatten - [Linear - ReLU] per ``hidden`` size - Linear to ``classes``.
    - ``lenet`` (LeCun et al. 1998, as in the conversion literature): Conv 20@5x5 - ReLU -
      AvgPool 2 - Conv 50@5x5 - ReLU - AvgPool 2 - FC 200 - ReLU - FC classes, with biases.
    - ``cnn``: 32C3-32C3-P2-64C3-64C3-P2-FC256-classes, 3x3 convolutions padded by 1,
      each followed by BatchNorm and ReLU; average pooling.
    """

    arch: str
    input_shape: tuple
    classes: int
    hidden: tuple = (256, 128)
    activation: str = "relu"        # "relu", or "qcfs" (QCFS with ``qcfs_levels`` steps, trainable clip)
    qcfs_levels: int = 8

    def __post_init__(self):
        self.input_shape = tuple(int(s) for s in self.input_shape)
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.arch not in ARCHITECTURES:
            raise SpikeportError(f"unknown architecture {self.arch!r} (known: {', '.join(ARCHITECTURES)})")
        if self.activation not in ("relu", "qcfs") or not 1 <= int(self.qcfs_levels) <= 256:
            raise SpikeportError(f"architecture {self.arch!r}: unknown activation {self.activation!r} "
                                 f"or bad qcfs_levels {self.qcfs_levels!r}")
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
                       qcfs_levels=int(d.get("qcfs_levels", 8)))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpikeportError(f"bad architecture spec {d!r}: {exc}") from None


def _check_spatial(spec: ArchSpec, minimum: int) -> None:
    if len(spec.input_shape) != 3 or min(spec.input_shape[1:]) < minimum:
        raise SpikeportError(f"architecture {spec.arch!r} needs images (C, H, W) of at least {minimum}x{minimum}, "
                             f"got input shape {spec.input_shape} (use --arch mlp for small inputs)")


def build(spec: ArchSpec):
    """The torch module of ``spec`` (an ``nn.Sequential`` with named layers); with activation
    "qcfs" every ReLU is a QCFS (spikeport.models.activations) of ``qcfs_levels`` steps."""
    module = _build(spec)
    if spec.activation == "qcfs":
        from .activations import qcfs_class
        qcfs = qcfs_class()
        for name, child in list(module.named_children()):
            if type(child).__name__ == "ReLU":
                setattr(module, name, qcfs(levels=spec.qcfs_levels, lam=4.0))
    return module


def _build(spec: ArchSpec):
    from torch import nn

    if spec.arch == "lenet":
        _check_spatial(spec, 16)
        c, h, w = spec.input_shape
        side = lambda n: ((n - 4) // 2 - 4) // 2
        return nn.Sequential(OrderedDict(
            conv1=nn.Conv2d(c, 20, 5), relu1=nn.ReLU(), pool1=nn.AvgPool2d(2),
            conv2=nn.Conv2d(20, 50, 5), relu2=nn.ReLU(), pool2=nn.AvgPool2d(2), flatten=nn.Flatten(),
            fc1=nn.Linear(50 * side(h) * side(w), 200), relu3=nn.ReLU(), fc2=nn.Linear(200, spec.classes)))
    if spec.arch == "cnn":
        _check_spatial(spec, 4)
        c, h, w = spec.input_shape
        layers = OrderedDict()
        for i, (cin, cout) in enumerate([(c, 32), (32, 32), (32, 64), (64, 64)], start=1):
            layers[f"conv{i}"] = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
            layers[f"bn{i}"] = nn.BatchNorm2d(cout)
            layers[f"relu{i}"] = nn.ReLU()
            if i % 2 == 0:
                layers[f"pool{i // 2}"] = nn.AvgPool2d(2)
        layers["flatten"] = nn.Flatten()
        layers["fc1"] = nn.Linear(64 * (h // 4) * (w // 4), 256)
        layers["relu5"] = nn.ReLU()
        layers["fc2"] = nn.Linear(256, spec.classes)
        return nn.Sequential(layers)
    layers = OrderedDict(flatten=nn.Flatten())
    width = math.prod(spec.input_shape)
    sizes = list(spec.hidden) + [spec.classes]
    for i, size in enumerate(sizes, start=1):
        layers[f"fc{i}"] = nn.Linear(width, size)
        if i < len(sizes):
            layers[f"relu{i}"] = nn.ReLU()
        width = size
    return nn.Sequential(layers)
