"""Cutting a population into cores: equal tiles along its axes, or runs of consecutive neurons."""
from __future__ import annotations

import math

import numpy as np

from ...errors import SpikeportError


def ceil_div(a, b):
    return -(-a // b)


class Slicing:
    """A population cut into cores: equal tiles along its axes (``block`` has one entry per
    axis) or runs of ``block[0]`` consecutive neurons (C order). Cores are numbered in C
    order over the tile grid (nengo-loihi's ``BlockShape`` order)."""

    def __init__(self, shape, block):
        self.shape = tuple(int(d) for d in shape)
        n = math.prod(self.shape)
        block = tuple(int(b) for b in block)
        if len(block) == 1 and len(self.shape) > 1:
            block = _runs_as_tiles(self.shape, block[0]) or block
        if len(block) == len(self.shape):
            self.block = tuple(min(b, d) for b, d in zip(block, self.shape))
            self.dims = self.shape
        elif len(block) == 1:
            self.block = (min(block[0], n),)
            self.dims = (n,)
        else:
            raise SpikeportError(f"block shape {list(block)} must have one entry per axis of {list(self.shape)}, or one")
        self.runs = len(self.dims) == 1
        self.bounds = [np.append(np.arange(0, d, b), d) for d, b in zip(self.dims, self.block)]
        self.grid = tuple(len(bd) - 1 for bd in self.bounds)
        self.n_cores = math.prod(self.grid)

    def key(self):
        return self.dims, self.block

    def sizes(self) -> np.ndarray:
        out = np.ones(self.grid, np.int64)
        for ax, bd in enumerate(self.bounds):
            out = out * np.diff(bd).reshape([-1 if a == ax else 1 for a in range(len(self.grid))])
        return out.ravel()

    def labels(self) -> np.ndarray:
        lab = np.zeros(self.dims, np.int64)
        for ax, (bd, d) in enumerate(zip(self.bounds, self.dims)):
            idx = np.searchsorted(bd, np.arange(d), "right") - 1
            lab = lab * self.grid[ax] + idx.reshape([-1 if a == ax else 1 for a in range(len(self.dims))])
        return lab.ravel()

    def block_sums(self, prefix: np.ndarray) -> np.ndarray:
        """Per core, the sum of a per-neuron quantity, from its prefix sums (:func:`prefix` over ``dims``)."""
        corners = prefix[np.ix_(*self.bounds)]
        for ax in range(len(self.bounds)):
            corners = np.diff(corners, axis=ax)
        return corners.ravel()


def _runs_as_tiles(shape: tuple, b: int):
    """Runs of b consecutive neurons as the equal tiles they are, where they are (whole trailing axes)."""
    if b >= math.prod(shape):
        return tuple(shape)
    for a in range(len(shape) - 1, -1, -1):
        inner = math.prod(shape[a + 1:])
        if b % inner == 0 and shape[a] % (b // inner) == 0 and b // inner >= 1:
            return (1,) * a + (b // inner,) + tuple(shape[a + 1:])
    return None


def prefix(values: np.ndarray, dims: tuple) -> np.ndarray:
    """Prefix sums over every axis of ``values`` shaped ``dims``, with a leading zero on each axis."""
    a = np.asarray(values).reshape(dims)
    a = a.astype(np.float64 if a.dtype.kind == "f" else np.int64)
    out = np.zeros(tuple(d + 1 for d in dims), a.dtype)
    out[tuple(slice(1, None) for _ in dims)] = a
    for ax in range(len(dims)):
        np.cumsum(out, axis=ax, out=out)
    return out


def pixel_sums(pixel: np.ndarray, sl: Slicing) -> np.ndarray:
    """Per core of a (C, H, W) population, the sum over the distinct pixels its neurons occupy."""
    h, w = pixel.shape
    if not sl.runs:
        _, br, bc = sl.bounds
        p = prefix(pixel, (h, w))[np.ix_(br, bc)]
        per = np.diff(np.diff(p, axis=0), axis=1)
        return np.broadcast_to(per[None], sl.grid).ravel()
    flat = np.concatenate([[0], np.cumsum(pixel.ravel())])
    hw = h * w
    b = sl.bounds[0]
    s, e = b[:-1], b[1:]
    whole = (e - s) >= hw
    a0, a1 = s % hw, e % hw
    wrapped = np.where(a1 > a0, flat[a1] - flat[a0], flat[hw] - flat[a0] + flat[a1])
    return np.where(whole, flat[hw], np.where(a1 == a0, flat[hw], wrapped))


def tile_candidates(shape, cap) -> list:
    """Tiles along the axes of at most ``cap`` neurons, fewest cores first, at equal counts the
    smaller tiles."""
    per_axis = [np.array(sorted({ceil_div(d, k) for k in range(1, d + 1)}), np.int64) for d in shape]
    grid = np.stack([g.ravel() for g in np.meshgrid(*per_axis, indexing="ij")], axis=1)
    grid = grid[np.prod(grid, axis=1) <= cap]
    blocks = np.prod(-(-np.asarray(shape)[None, :] // grid), axis=1)
    order = np.lexsort((np.prod(grid, axis=1), blocks))
    return list(grid[order])
