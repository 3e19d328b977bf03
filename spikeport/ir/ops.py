"""Linear ops that make up a projection: the map A from pre spikes to post current.

A projection applies its ops in order to the pre population's per-step output
(shaped like the pre population) and adds the result to the post population's
input current. Each op is a plain dataclass; ``OPS`` maps the type name stored in
files to the class, so adding an op never touches a central if/elif chain.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from ..errors import GraphError


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


@dataclass(eq=False)
class Dense:
    """Fully connected: y = W x, with W of shape (n_out, n_in) and x of shape (n_in,).

    A bias is not an op: it belongs to the post population (``Population.bias``).
    """

    weight: np.ndarray
    kind: ClassVar[str] = "dense"

    def __post_init__(self):
        self.weight = np.asarray(self.weight)

    def validate(self, owner: str) -> None:
        w = self.weight
        if w.ndim != 2:
            raise GraphError(f"{owner}: dense weight must be 2-D (n_out, n_in), got shape {_shape_str(w.shape)}")
        if w.dtype.kind != "f":
            raise GraphError(f"{owner}: dense weight must be floating point, got {w.dtype}")
        if not np.isfinite(w).all():
            raise GraphError(f"{owner}: dense weight holds {int((~np.isfinite(w)).sum())} NaN or infinite values")

    def out_shape(self, in_shape: tuple, owner: str) -> tuple:
        if len(in_shape) != 1 or in_shape[0] != self.weight.shape[1]:
            raise GraphError(f"{owner}: dense weight {_shape_str(self.weight.shape)} cannot take input of shape "
                             f"{_shape_str(in_shape)} (needs ({self.weight.shape[1]},); add a flatten op first?)")
        return (int(self.weight.shape[0]),)

    def params(self) -> dict:
        return {}

    def arrays(self) -> dict:
        return {"weight": self.weight}

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        """Apply to a batch x of shape (batch, n_in)."""
        return x @ self.weight.T


@dataclass(eq=False)
class Flatten:
    """Reshape to one dimension (C-order, as torch.flatten and numpy do)."""

    kind: ClassVar[str] = "flatten"

    def validate(self, owner: str) -> None:
        pass

    def out_shape(self, in_shape: tuple, owner: str) -> tuple:
        return (int(np.prod(in_shape)),)

    def params(self) -> dict:
        return {}

    def arrays(self) -> dict:
        return {}

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        return x.reshape(x.shape[0], -1)


OPS = {cls.kind: cls for cls in (Dense, Flatten)}


def op_from_parts(kind: str, params: dict, arrays: dict, owner: str):
    """Rebuild an op from its stored type name, parameters and arrays."""
    cls = OPS.get(kind)
    if cls is None:
        raise GraphError(f"{owner}: unknown op type {kind!r} (known: {', '.join(OPS)})")
    try:
        op = cls(**params, **arrays)
    except TypeError as exc:
        raise GraphError(f"{owner}: bad fields for op {kind!r}: {exc}") from None
    op.validate(owner)
    return op
