"""Linear ops that make up a projection: the map A from pre spikes to post current.

A projection applies its ops in order to the pre population's per-step output
(shaped like the pre population) and adds the result to the post population's
input current. Each op is a plain dataclass with

- ``out_shape(in_shape)``: shape inference (raises GraphError naming the op),
- ``apply_numpy(x)``: the op on a batch (batch, *in_shape), float64 reference,
- ``materialize(in_shape)``: its exact sparse matrix as COO arrays
  (pre index, post index, weight), C-order flat indices, zero weights dropped,
- ``ann_ops(out_shape)``: (multiply-accumulates, additions) of the op applied once as an
  ANN layer computes it densely (zeros included; padded positions included, as im2col
  does), what the ANN baselines of :mod:`spikeport.deploy.energy` price;
- ``counts(in_shape)``: (entries, fan-out) without materializing: the COO entries
  ``materialize`` enumerates (an upper bound on its synapses; padding counts none) and the
  most outputs one input element reaches, so that a chain's size is known before it is
  built (:meth:`spikeport.ir.network.Projection.synapse_bound`);
- ``gain()``: an upper bound on max_j sum_i |A_ji|, the most one unit of input on every
  element can add to one output (the numeric sanity check of ``Projection.validate``).

``OPS`` maps the type name stored in files to the class, so adding an op never
touches a central if/elif chain. Spatial ops take (channels, height, width).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import GraphError
from .neurons import MAX_MAGNITUDE


def _shape_str(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def _pair(value, name: str, owner: str, minimum: int) -> tuple:
    """An int or a pair of ints, each >= minimum, as a tuple of two ints."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (int(value), int(value))
    try:
        out = tuple(int(v) for v in value)
        ok = len(out) == 2 and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    except (TypeError, ValueError):
        ok = False
    if not ok or min(out) < minimum or max(out) > 2**20:
        raise GraphError(f"{owner}: {name} must be an integer or a pair of integers in [{minimum}, 2**20], got {value!r}")
    return out


def _check_weight(w: np.ndarray, ndim: int, owner: str, what: str) -> None:
    if w.ndim != ndim:
        raise GraphError(f"{owner}: {what} must be {ndim}-D, got shape {_shape_str(w.shape)}")
    if w.dtype.kind != "f":
        raise GraphError(f"{owner}: {what} must be floating point, got {w.dtype}")
    if not np.isfinite(w).all():
        raise GraphError(f"{owner}: {what} holds {int((~np.isfinite(w)).sum())} NaN or infinite values")
    worst = max(abs(float(w.max())), abs(float(w.min()))) if w.size else 0.0
    if worst > MAX_MAGNITUDE:
        raise GraphError(f"{owner}: {what} holds values up to {worst:.3g}, beyond +-{MAX_MAGNITUDE:g} (the float32 "
                         f"state would overflow)")


def _coo(pre, post, weight):
    keep = weight != 0
    return pre[keep].astype(np.int64), post[keep].astype(np.int64), weight[keep]


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
        _check_weight(self.weight, 2, owner, "dense weight (n_out, n_in)")

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
        return x @ self.weight.T.astype(np.float64)

    def ann_ops(self, out_shape: tuple) -> tuple:
        return int(self.weight.shape[0]) * int(self.weight.shape[1]), 0

    def materialize(self, in_shape: tuple):
        post, pre = np.indices(self.weight.shape)
        return _coo(pre.ravel(), post.ravel(), self.weight.ravel())

    def counts(self, in_shape: tuple) -> tuple:
        return int(self.weight.size), int(self.weight.shape[0])

    def scratch_bytes(self, in_shape: tuple) -> int:
        return 16 * int(self.weight.size)  # np.indices

    def gain(self) -> float:
        if not self.weight.size:
            return 0.0
        return float(np.abs(self.weight).sum(axis=1, dtype=np.float64).max())


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

    def ann_ops(self, out_shape: tuple) -> tuple:
        return 0, 0

    def materialize(self, in_shape: tuple):
        n = int(np.prod(in_shape))
        return np.arange(n, dtype=np.int64), np.arange(n, dtype=np.int64), np.ones(n)

    def counts(self, in_shape: tuple) -> tuple:
        return math.prod(int(s) for s in in_shape), 1

    def scratch_bytes(self, in_shape: tuple) -> int:
        return 0

    def gain(self) -> float:
        return 1.0


def _conv_out(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _taps(size: int, k: int, s: int, p: int, d: int, out: int, start: int = 0, stop: int | None = None):
    """For kernel taps u in [start, stop): (u, first i, count) of the output positions i in [0, out) whose tap u
    lands inside the input, 0 <= i*s + u*d - p < size (padding creates no synapse)."""
    u = np.arange(start, k if stop is None else stop, dtype=np.int64)
    lo = np.maximum(0, -((u * d - p) // s))              # ceil((p - u d) / s)
    hi = np.minimum(out - 1, (size - 1 + p - u * d) // s)
    return u, lo, np.maximum(0, hi - lo + 1)


def _axis_count(size: int, k: int, s: int, p: int, d: int, out: int) -> int:
    """How many (i, u) pairs of one axis land inside the input (in chunks: nothing of size k is held)."""
    total = 0
    for start in range(0, k, 1 << 14):
        total += int(_taps(size, k, s, p, d, out, start, min(k, start + (1 << 14)))[2].sum())
    return total


def _axis_fan(k: int, s: int, d: int, out: int) -> int:
    """The most (i, u) pairs of one axis that land on one input position: i s + u d = y + p has at most one
    u per i, and its u lie in one residue class modulo s / gcd(s, d)."""
    return max(1, min(out, k, -(-k * math.gcd(s, d) // s)))


def _axis_pairs(size: int, k: int, s: int, p: int, d: int, out: int):
    """(i, u, y) of every pair of one axis that lands inside the input, y = i s + u d - p."""
    u, lo, n = _taps(size, k, s, p, d, out)
    uu, start = np.repeat(u, n), np.repeat(lo, n)
    i = start + (np.arange(int(n.sum()), dtype=np.int64) - np.repeat(np.cumsum(n) - n, n))
    return i, uu, i * s + uu * d - p


@dataclass(eq=False)
class _Spatial:
    """Shared geometry of 2-D convolutions and poolings over (C, H, W) inputs::

        y[c_out, i, j] = sum_{c, u, v} K[c_out, c, u, v] * x_pad[c, i*sh + u*dh, j*sw + v*dw]

    with x zero-padded by (ph, pw) on each side; padding creates no synapses.
    """

    def _geometry(self, in_shape, owner):
        if len(in_shape) != 3:
            raise GraphError(f"{owner}: needs input of shape (channels, height, width), got {_shape_str(in_shape)}")
        kh, kw = self.kernel_shape()
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        ho = _conv_out(in_shape[1], kh, sh, ph, dh)
        wo = _conv_out(in_shape[2], kw, sw, pw, dw)
        if ho < 1 or wo < 1:
            raise GraphError(f"{owner}: kernel {(kh, kw)} with dilation {self.dilation} and padding {self.padding} "
                             f"does not fit input {_shape_str(in_shape)}")
        return ho, wo

    def _windows(self, x: np.ndarray, in_shape: tuple):
        """Yield (u, v, x_slice) with x_slice[n, c, i, j] = x_pad[n, c, i*sh + u*dh, j*sw + v*dw]."""
        kh, kw = self.kernel_shape()
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        ho, wo = self._geometry(in_shape, self.kind)
        xp = np.pad(x.reshape((x.shape[0],) + tuple(in_shape)).astype(np.float64), ((0, 0), (0, 0), (ph, ph), (pw, pw)))
        for u in range(kh):
            for v in range(kw):
                yield u, v, xp[:, :, u * dh: u * dh + sh * (ho - 1) + 1: sh, v * dw: v * dw + sw * (wo - 1) + 1: sw]

    def _coo_of(self, in_shape, kernel, groups: int):
        """COO of a (grouped) correlation with ``kernel`` (C_out, C_in/groups, kh, kw): the taps of each axis
        that land inside the input first, so that nothing is allocated for padded positions."""
        c_in, h, w = in_shape
        ho, wo = self._geometry(in_shape, self.kind)
        c_out, cig, kh, kw = kernel.shape
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        cog = c_out // groups
        i, u, y = _axis_pairs(h, kh, sh, ph, dh, ho)
        j, v, x = _axis_pairs(w, kw, sw, pw, dw, wo)
        co = np.arange(c_out, dtype=np.int64).reshape(-1, 1, 1, 1)
        ci = np.arange(cig, dtype=np.int64).reshape(1, -1, 1, 1)
        c = (co // cog) * cig + ci
        shape = (c_out, cig, len(i), len(j))
        pre = np.broadcast_to((c * h + y.reshape(1, 1, -1, 1)) * w + x.reshape(1, 1, 1, -1), shape).ravel()
        post = np.broadcast_to((co * ho + i.reshape(1, 1, -1, 1)) * wo + j.reshape(1, 1, 1, -1), shape).ravel()
        weight = np.broadcast_to(kernel[co, ci, u.reshape(1, 1, -1, 1), v.reshape(1, 1, 1, -1)], shape).ravel()
        return _coo(pre, post, weight)

    def _counts_of(self, in_shape, c_out: int, cig: int, groups: int) -> tuple:
        """(entries, fan-out) of :meth:`_coo_of` on ``in_shape``, counted without building anything."""
        _, h, w = in_shape
        ho, wo = self._geometry(in_shape, self.kind)
        kh, kw = self.kernel_shape()
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        entries = c_out * cig * _axis_count(h, kh, sh, ph, dh, ho) * _axis_count(w, kw, sw, pw, dw, wo)
        fan = (c_out // groups) * _axis_fan(kh, sh, dh, ho) * _axis_fan(kw, sw, dw, wo)
        return entries, fan

    def _scratch_of(self, in_shape, c_out: int, cig: int) -> int:
        """Bytes :meth:`_coo_of` holds beside its entries: the per-axis taps (a few arrays of kernel size each)."""
        kh, kw = self.kernel_shape()
        return 64 * (kh + kw) + 8 * c_out * cig


@dataclass(eq=False)
class Conv2d(_Spatial):
    """2-D convolution (cross-correlation, as torch.nn.Conv2d) without bias.

    weight: (C_out, C_in / groups, kh, kw); stride, padding (zeros), dilation:
    pairs; groups divides C_in and C_out.
    """

    weight: np.ndarray
    stride: tuple = (1, 1)
    padding: tuple = (0, 0)
    dilation: tuple = (1, 1)
    groups: int = 1
    kind: ClassVar[str] = "conv2d"

    def __post_init__(self):
        self.weight = np.asarray(self.weight)
        self.stride = _pair(self.stride, "stride", self.kind, 1)
        self.padding = _pair(self.padding, "padding", self.kind, 0)
        self.dilation = _pair(self.dilation, "dilation", self.kind, 1)

    def kernel_shape(self):
        return tuple(int(s) for s in self.weight.shape[2:])

    def validate(self, owner: str) -> None:
        _check_weight(self.weight, 4, owner, "conv2d weight (C_out, C_in/groups, kh, kw)")
        if not isinstance(self.groups, (int, np.integer)) or isinstance(self.groups, bool) or self.groups < 1 \
                or self.weight.shape[0] % self.groups:
            raise GraphError(f"{owner}: groups must be a positive integer dividing C_out = {self.weight.shape[0]}, "
                             f"got {self.groups!r}")
        self.groups = int(self.groups)

    def out_shape(self, in_shape: tuple, owner: str) -> tuple:
        ho, wo = self._geometry(in_shape, owner)
        if in_shape[0] != self.weight.shape[1] * self.groups:
            raise GraphError(f"{owner}: conv2d weight {_shape_str(self.weight.shape)} with groups {self.groups} "
                             f"needs {self.weight.shape[1] * self.groups} input channels, got {in_shape[0]}")
        return (int(self.weight.shape[0]), ho, wo)

    def params(self) -> dict:
        return {"stride": list(self.stride), "padding": list(self.padding), "dilation": list(self.dilation),
                "groups": self.groups}

    def arrays(self) -> dict:
        return {"weight": self.weight}

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        in_shape = x.shape[1:]
        out = None
        g, cig, cog = self.groups, self.weight.shape[1], self.weight.shape[0] // self.groups
        w = self.weight.astype(np.float64)
        for u, v, xs in self._windows(x, in_shape):
            parts = [np.einsum("nchw,oc->nohw", xs[:, k * cig:(k + 1) * cig], w[k * cog:(k + 1) * cog, :, u, v])
                     for k in range(g)]
            term = np.concatenate(parts, axis=1)
            out = term if out is None else out + term
        return out

    def ann_ops(self, out_shape: tuple) -> tuple:
        kh, kw = self.kernel_shape()
        return int(np.prod(out_shape)) * int(self.weight.shape[1]) * kh * kw, 0

    def materialize(self, in_shape: tuple):
        return self._coo_of(in_shape, self.weight, self.groups)

    def counts(self, in_shape: tuple) -> tuple:
        return self._counts_of(in_shape, int(self.weight.shape[0]), int(self.weight.shape[1]), int(self.groups))

    def scratch_bytes(self, in_shape: tuple) -> int:
        return self._scratch_of(in_shape, int(self.weight.shape[0]), int(self.weight.shape[1]))

    def gain(self) -> float:
        if not self.weight.size:
            return 0.0
        return float(np.abs(self.weight).reshape(self.weight.shape[0], -1).sum(axis=1, dtype=np.float64).max())


@dataclass(eq=False)
class SumPool2d(_Spatial):
    """Per-channel sum over kernel windows: y[c, i, j] = sum_{u, v} x_pad[c, i*sh + u, j*sw + v].

    stride defaults to the kernel size; padding adds zeros (no synapses).
    """

    kernel_size: tuple
    stride: tuple | None = None
    padding: tuple = (0, 0)
    kind: ClassVar[str] = "sumpool2d"
    scale: ClassVar[str] = "sum"

    dilation = (1, 1)

    def __post_init__(self):
        self.kernel_size = _pair(self.kernel_size, "kernel_size", self.kind, 1)
        self.stride = _pair(self.kernel_size if self.stride is None else self.stride, "stride", self.kind, 1)
        self.padding = _pair(self.padding, "padding", self.kind, 0)

    def kernel_shape(self):
        return self.kernel_size

    def validate(self, owner: str) -> None:
        pass  # parameters are checked on construction

    def factor(self) -> float:
        return 1.0 if self.scale == "sum" else 1.0 / (self.kernel_size[0] * self.kernel_size[1])

    def out_shape(self, in_shape: tuple, owner: str) -> tuple:
        ho, wo = self._geometry(in_shape, owner)
        return (int(in_shape[0]), ho, wo)

    def params(self) -> dict:
        return {"kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}

    def arrays(self) -> dict:
        return {}

    def depthwise_kernel(self, channels: int) -> np.ndarray:
        """The equivalent grouped-convolution kernel (C, 1, kh, kw) of constant weights."""
        return np.full((channels, 1) + tuple(self.kernel_size), self.factor())

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        out = 0.0
        for _, _, xs in self._windows(x, x.shape[1:]):
            out = out + xs
        return out * self.factor()

    def ann_ops(self, out_shape: tuple) -> tuple:
        """kh x kw accumulations per output, and one scaling per output for a mean."""
        kh, kw = self.kernel_size
        out = int(np.prod(out_shape))
        return 0, out * kh * kw + (out if self.scale == "mean" else 0)

    def materialize(self, in_shape: tuple):
        kernel = np.broadcast_to(np.float64(self.factor()), (int(in_shape[0]), 1) + tuple(self.kernel_size))
        return self._coo_of(in_shape, kernel, in_shape[0])  # a view: nothing of kernel size is allocated

    def counts(self, in_shape: tuple) -> tuple:
        return self._counts_of(in_shape, int(in_shape[0]), 1, int(in_shape[0]))

    def scratch_bytes(self, in_shape: tuple) -> int:
        return self._scratch_of(in_shape, int(in_shape[0]), 1)

    def gain(self) -> float:
        return self.factor() * self.kernel_size[0] * self.kernel_size[1]


@dataclass(eq=False)
class AvgPool2d(SumPool2d):
    """Per-channel mean over kernel windows, padding counted (torch's count_include_pad=True):
    y = SumPool2d(x) / (kh * kw)."""

    kind: ClassVar[str] = "avgpool2d"
    scale: ClassVar[str] = "mean"


OPS = {cls.kind: cls for cls in (Dense, Flatten, Conv2d, SumPool2d, AvgPool2d)}


def op_from_parts(kind: str, params: dict, arrays: dict, owner: str):
    """Rebuild an op from its stored type name, parameters and arrays."""
    cls = OPS.get(kind)
    if cls is None:
        raise GraphError(f"{owner}: unknown op type {kind!r} (known: {', '.join(OPS)})")
    try:
        op = cls(**params, **arrays)
    except TypeError as exc:
        raise GraphError(f"{owner}: bad fields for op {kind!r}: {exc}") from None
    except GraphError as exc:
        raise GraphError(f"{owner}: {exc}") from None
    op.validate(owner)
    return op
