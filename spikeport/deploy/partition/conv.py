"""The countable form of a convolution or pooling over (C, H, W) (the package docstring)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import SpikeportError
from .forms import SparseForm

@dataclass
class Axis:
    """One spatial axis of a convolution: output i, tap u reads input y = i s + u d - p."""

    n_in: int
    n_out: int
    k: int
    s: int
    p: int
    d: int
    taps: np.ndarray      # (k,) bool: a tap that holds a nonzero weight somewhere

    def __post_init__(self):
        i = np.arange(self.n_out)[:, None]
        u = np.arange(self.k)[None, :]
        self.y = i * self.s + u * self.d - self.p
        self.geo = (self.y >= 0) & (self.y < self.n_in)
        self._cache = {}

    def out_taps(self) -> np.ndarray:
        """(n_in, k): 1 where input y is read by tap u of some output."""
        out = np.zeros((self.n_in, self.k))
        ii, uu = np.nonzero(self.geo)
        out[self.y[ii, uu], uu] = 1.0
        return out

    def reached(self, bounds: np.ndarray, all_taps: bool = False) -> np.ndarray:
        """(tiles, n_in): per tile of outputs [bounds[t], bounds[t+1]), how many (output, tap)
        pairs of nonzero taps (every tap with ``all_taps``) read input y."""
        key = (bounds.tobytes(), all_taps)
        if key not in self._cache:
            ii, uu = np.nonzero(self.geo & (True if all_taps else self.taps[None, :]))
            t = np.searchsorted(bounds, ii, "right") - 1
            nt = len(bounds) - 1
            self._cache[key] = np.bincount(t * self.n_in + self.y[ii, uu], minlength=nt * self.n_in).reshape(
                nt, self.n_in)
        return self._cache[key]

    def rows(self, bounds: np.ndarray):
        """Per tile: the inputs reached (ascending), each with (first tap, taps) as one code and
        its first output relative to the tile, as nengo-loihi keys a shared-weight list
        (every tap; stride and padding as given, no dilation)."""
        ii, uu = np.nonzero(self.geo)
        y = self.y[ii, uu]
        t = np.searchsorted(bounds, ii, "right") - 1
        key = t * self.n_in + y
        order = np.lexsort((uu, key))
        key, uu, ii = key[order], uu[order], ii[order]
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        ends = np.r_[starts[1:], len(key)]
        tt = key[starts] // self.n_in
        code = uu[starts] * (self.k + 1) + (ends - starts)     # taps run from the first in steps of s
        rel = ii[ends - 1] - bounds[tt]                         # the largest tap reads the first output
        cut = np.searchsorted(tt, np.arange(len(bounds)))
        return [(code[a:b], rel[a:b]) for a, b in zip(cut[:-1], cut[1:])]


class ConvForm:
    """One convolution or pooling over (C, H, W), possibly a pooling folded into a convolution.

    Counted per tile of channels x rows x columns (the package docstring); where the target's vendor
    tool builds it otherwise (nengo-loihi's shared-weight convolution, ``kernel`` given; a split pooling
    whose equal lists it merges, ``shared_pool``) the plug-in counts it."""

    form = "conv"

    def __init__(self, proj, pre, post, mask, groups, geometry, plugin, kernel=None, shared_pool=False,
                 cells=None):
        self.name, self.proj, self.pre, self.post = proj.name, proj, pre, post
        self.plugin = plugin              # the target plug-in: counts what its vendor tool builds differently
        self.n_pre, self.n_post = pre.size, post.size
        self.mask = mask                                   # (C_out, C_in/groups, kh, kw) bool
        self.c_out, self.cig, kh, kw = mask.shape
        self.groups = groups
        self.cog = self.c_out // groups
        self.c_in = self.cig * groups
        (sh, sw), (ph, pw), (dh, dw) = geometry
        _, h, w = pre.shape
        _, ho, wo = post.shape
        self.ax = (Axis(h, ho, kh, sh, ph, dh, mask.any(axis=(0, 1, 3))),
                   Axis(w, wo, kw, sw, pw, dw, mask.any(axis=(0, 1, 2))))
        self.ci_mask = mask.any(axis=(0, 2, 3))            # (C_in/groups,) input channels with a synapse
        self.cia = int(self.ci_mask.sum())
        self.transform = kernel is not None       # nengo-loihi's shared-weight convolution of this kernel
        self.kernel, self.stride = kernel, (sh, sw)
        self.value_codes = None          # the plug-in's, computed when first counted
        self.shared_pool = shared_pool   # nengo-loihi merges a split pooling's equal weight lists
        self.cells = cells               # (sh, sw): a disjoint pooling folded in; nengo-loihi merges its cells' lists
        self.n_axons_whole = h * w if self.transform else pre.size
        self._sparse = None

    def _fan(self, n, a, b):
        """einsum('cuv,iu,jv->cij', n, a, b) as two matrix products."""
        t = np.matmul(np.transpose(n, (0, 2, 1)).astype(np.float64), a.T)     # (c, kw, I)
        return np.rint(np.matmul(np.transpose(t, (0, 2, 1)), b.T)).astype(np.int64).ravel()

    def fan_in(self) -> np.ndarray:
        return self._fan(self.mask.sum(axis=1), self.ax[0].geo.astype(np.float64), self.ax[1].geo.astype(np.float64))

    def fan_out(self) -> np.ndarray:
        kh, kw = self.mask.shape[2:]
        per_group = self.mask.reshape(self.groups, self.cog, self.cig, kh, kw).sum(axis=1)
        return self._fan(per_group.reshape(self.c_in, kh, kw), self.ax[0].out_taps(), self.ax[1].out_taps())

    def axon_fan_in(self) -> np.ndarray:
        """Input axons one neuron needs: its synapses, or on the shared-weight path its pixels."""
        if not self.transform:
            return self.fan_in()
        px = np.outer(self.ax[0].geo.sum(axis=1), self.ax[1].geo.sum(axis=1))
        return np.broadcast_to(px, (self.c_out,) + px.shape).ravel().astype(np.int64)

    def sparse(self):
        if self._sparse is None:
            self._sparse = SparseForm(self.proj, self.pre, self.post, dedup=self.plugin.shares_lists)
        return self._sparse

    def _channel_classes(self, bf):
        """Per channel tile: groups touched, and up to 3 (filters per group, groups) classes."""
        f0, f1, cog = bf[:-1], bf[1:], self.cog
        g0, g1 = f0 // cog, (f1 - 1) // cog
        same = g0 == g1
        nfv = np.stack([np.where(same, f1 - f0, (g0 + 1) * cog - f0), np.full_like(f0, cog),
                        np.where(same, 0, f1 - g1 * cog)], axis=1)
        ngc = np.stack([np.ones_like(f0), np.where(same, 0, g1 - g0 - 1), (~same).astype(f0.dtype)], axis=1)
        return g1 - g0 + 1, nfv, ngc

    def stats(self, sl, memory):
        if sl.runs and self.transform:
            self.pixel_reach(sl)          # refuses runs, as for the pre side
        if sl.runs:
            return self.sparse().stats(sl, memory)
        if self.transform:
            return self.plugin.shared_weight_stats(self, sl, memory)
        if self.shared_pool and sl.n_cores > 1 and memory is not None:
            return self.plugin.pool_stats(self, sl, memory)
        bf, br, bc = sl.bounds
        rr, rc = self.ax[0].reached(br), self.ax[1].reached(bc)
        ng, nfv, ngc = self._channel_classes(bf)
        axons = (ng * self.cia)[:, None, None] * (rr > 0).sum(axis=1)[None, :, None] \
            * (rc > 0).sum(axis=1)[None, None, :]
        bits = None
        if memory is not None:
            if self.cells is not None and sl.n_cores > 1:    # one list per pooling cell: count one pixel of each
                rr, rc = rr[:, ::self.cells[0]], rc[:, ::self.cells[1]]
            hr, hc = _hist(rr), _hist(rc)
            a, b = np.arange(hr.shape[1]), np.arange(hc.shape[1])
            syn = nfv[:, :, None, None] * a[None, None, :, None] * b[None, None, None, :]
            table = self.cia * (ngc[:, :, None, None] * memory.bits(syn)).sum(axis=1)     # (tiles f, A, B)
            bits = np.einsum("ra,cb,fab->frc", hr, hc, table).ravel()
        return axons.ravel(), bits

    def reach(self, sl) -> np.ndarray:
        """Per pre neuron, the cores of ``sl`` (this projection's post) it reaches."""
        if sl.runs:
            return self.sparse().reach(sl)
        bf, br, bc = sl.bounds
        nr = (self.ax[0].reached(br) > 0).sum(axis=0)
        nc = (self.ax[1].reached(bc) > 0).sum(axis=0)
        g = np.arange(self.groups)
        nf = np.searchsorted(bf[:-1], (g + 1) * self.cog, "left") - np.searchsorted(bf[1:], g * self.cog, "right")
        per_ci = (nf[:, None] * self.ci_mask[None, :]).ravel()
        return (per_ci[:, None, None] * nr[None, :, None] * nc[None, None, :]).ravel()

    def pixel_reach(self, sl) -> np.ndarray:
        """(H * W,): per presynaptic pixel (a population axon), the cores of ``sl`` it reaches."""
        if sl.runs:
            raise SpikeportError(f"{self.post.name}: runs of consecutive neurons are not modelled for "
                                 f"nengo-loihi's convolution {self.name}; give a block per axis")
        bf, br, bc = sl.bounds
        nr = (self.ax[0].reached(br, all_taps=True) > 0).sum(axis=0)
        nc = (self.ax[1].reached(bc, all_taps=True) > 0).sum(axis=0)
        return (len(bf) - 1) * np.outer(nr, nc).ravel()


def _hist(r: np.ndarray) -> np.ndarray:
    """(tiles, max + 1): per tile, how many inputs have each count (column 0 unused)."""
    m = int(r.max(initial=0)) + 1
    t = np.repeat(np.arange(r.shape[0]), r.shape[1])
    return np.bincount(t * m + r.ravel(), minlength=r.shape[0] * m).reshape(r.shape[0], m).astype(np.float64)

