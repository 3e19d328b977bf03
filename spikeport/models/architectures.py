"""ANN architectures that spikeport trains and converts.

An :class:`ArchSpec` is plain JSON-able data; :func:`build` turns it into a torch
module whose layer names (``fc1``, ``fc2``, ...) become the population names of
the converted network.
"""
from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import asdict, dataclass, field

from ..errors import SpikeportError

ARCHITECTURES = ("mlp",)


@dataclass
class ArchSpec:
    """``arch`` "mlp": Flatten - [Linear - ReLU] per hidden size - Linear to ``classes``."""

    arch: str
    input_shape: tuple
    classes: int
    hidden: tuple = (256, 128)

    def __post_init__(self):
        self.input_shape = tuple(int(s) for s in self.input_shape)
        self.hidden = tuple(int(h) for h in self.hidden)
        if self.arch not in ARCHITECTURES:
            raise SpikeportError(f"unknown architecture {self.arch!r} (known: {', '.join(ARCHITECTURES)})")
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
                       hidden=tuple(d.get("hidden", ())))
        except (KeyError, TypeError, ValueError) as exc:
            raise SpikeportError(f"bad architecture spec {d!r}: {exc}") from None


def build(spec: ArchSpec):
    """The torch module of ``spec`` (an ``nn.Sequential`` with named layers)."""
    from torch import nn

    layers = OrderedDict(flatten=nn.Flatten())
    width = math.prod(spec.input_shape)
    sizes = list(spec.hidden) + [spec.classes]
    for i, size in enumerate(sizes, start=1):
        layers[f"fc{i}"] = nn.Linear(width, size)
        if i < len(sizes):
            layers[f"relu{i}"] = nn.ReLU()
        width = size
    return nn.Sequential(layers)
