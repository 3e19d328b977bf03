"""Countable forms of a projection without a convolution: dense (behind flattens and poolings with
disjoint windows), the exact synapse list, and a relay's identity (the package docstring)."""
from __future__ import annotations

import numpy as np

class DenseForm:
    """``[pooling with disjoint windows..., flatten..., dense]``: per pre neuron the column of
    the dense weight it feeds (``colmap``, -1 for none) and ``mult`` pre neurons per column."""

    form = "dense"
    transform = False

    def __init__(self, proj, pre, post, weight, colmap=None, shared_cols=False):
        self.name, self.n_pre, self.n_post = proj.name, pre.size, post.size
        # nengo-loihi, split: the pre neurons of one pooling window have equal weights and targets, one list
        self.shared_cols = shared_cols and colmap is not None
        self.nz = np.asarray(weight) != 0
        m = self.nz.shape[1]
        self.identity = colmap is None
        self.colmap = np.arange(m) if colmap is None else colmap
        self.mult = np.bincount(self.colmap[self.colmap >= 0], minlength=m).astype(np.int64)
        self.colnz = self.nz.sum(axis=0, dtype=np.int64)
        self.n_axons_whole = pre.size
        self._cum = None

    def fan_in(self) -> np.ndarray:
        if self.identity:
            return self.nz.sum(axis=1, dtype=np.int64)
        out = np.empty(self.n_post, np.int64)
        mult = self.mult.astype(np.float64)
        for r in range(0, self.n_post, 4096):      # bounded temporaries for wide layers
            out[r:r + 4096] = np.rint(self.nz[r:r + 4096] @ mult)
        return out

    def fan_out(self) -> np.ndarray:
        return self._per_pre(self.colnz)

    def axon_fan_in(self) -> np.ndarray:
        return self.fan_in()

    def _per_pre(self, per_col):
        return np.where(self.colmap >= 0, per_col[np.maximum(self.colmap, 0)], 0)

    def _counts(self, sl) -> np.ndarray:
        """(cores, columns): nonzero entries of each column within each core's rows."""
        if self._cum is None:
            dtype = np.uint16 if self.n_post < 2**16 else np.uint32 if self.n_post < 2**32 else np.uint64
            self._cum = np.zeros((self.n_post + 1, self.nz.shape[1]), dtype)
            np.cumsum(self.nz, axis=0, dtype=dtype, out=self._cum[1:])
        b = sl.bounds[0]
        return self._cum[b[1:]].astype(np.int64) - self._cum[b[:-1]]

    def stats(self, sl, memory):
        cnt = self._counts(sl)
        used = cnt > 0
        axons = used.sum(axis=1) if self.identity else used.astype(np.int64) @ self.mult
        bits = None
        if memory is not None:
            per = memory.bits(cnt)
            shared = self.identity or (self.shared_cols and sl.n_cores > 1)
            bits = per.sum(axis=1) if shared else per @ self.mult.astype(np.float64)
        return axons, bits

    def reach(self, sl) -> np.ndarray:
        return self._per_pre((self._counts(sl) > 0).sum(axis=0))


class SparseForm:
    """Any other chain: the exact synapse list (materialized once). With ``dedup`` (nengo-loihi)
    a split block stores one list per distinct (weights, block-local targets), as
    ``split_synapse`` does (lists told apart by a 64-bit hash of their entries)."""

    form = "sparse"
    transform = False

    def __init__(self, proj, pre, post, dedup=False):
        syn = proj.materialize(pre.shape)
        self.name, self.n_pre, self.n_post = proj.name, pre.size, post.size
        self.pre, self.post = syn.pre, syn.post
        self.weight = syn.weight if dedup else None
        self.n_axons_whole = pre.size
        self._pairs = {}

    def fan_in(self):
        return np.bincount(self.post, minlength=self.n_post).astype(np.int64)

    def fan_out(self):
        return np.bincount(self.pre, minlength=self.n_pre).astype(np.int64)

    def axon_fan_in(self):
        return self.fan_in()

    def pairs(self, sl):
        """(pre, core, synapses, first of its kind) per (pre neuron, core) pair with synapses."""
        key = sl.key()
        if key not in self._pairs:
            nc = sl.n_cores
            labels = sl.labels()
            pair = self.pre * nc + labels[self.post]
            order = np.argsort(pair, kind="stable")
            keys, starts, cnt = np.unique(pair[order], return_index=True, return_counts=True)
            first = np.ones(len(keys), bool)
            if self.weight is not None and nc > 1:
                rank = np.argsort(np.argsort(labels, kind="stable"), kind="stable")
                local = rank - np.concatenate([[0], np.cumsum(np.bincount(labels, minlength=nc))])[labels]
                entry = _mix(local[self.post].astype(np.uint64) * np.uint64(0x100000001B3)
                             ^ self.weight.astype(np.float64).view(np.uint64))
                digest = np.add.reduceat(entry[order], starts) if len(order) else entry[:0]
                sig = np.stack([keys % nc, digest.view(np.int64), cnt], axis=1)
                _, firsts = np.unique(sig, axis=0, return_index=True)
                first = np.zeros(len(keys), bool)
                first[firsts] = True
            self._pairs = {key: (keys // nc, keys % nc, cnt, first)}
        return self._pairs[key]

    def stats(self, sl, memory):
        pre, core, cnt, first = self.pairs(sl)
        axons = np.bincount(core, minlength=sl.n_cores)
        bits = None if memory is None else np.bincount(core, weights=memory.bits(cnt) * first, minlength=sl.n_cores)
        return axons, bits

    def reach(self, sl):
        return np.bincount(self.pairs(sl)[0], minlength=self.n_pre).astype(np.int64)


class IdentityForm:
    """A relay's input: neuron k of the source drives neuron k of the relay (one synapse each),
    as the Loihi backend connects its relays (a sparse identity of weight 2)."""

    form = "identity"
    transform = False

    def __init__(self, n: int):
        self.n_pre = self.n_post = self.n_axons_whole = n

    def fan_in(self):
        return np.ones(self.n_post, np.int64)

    fan_out = axon_fan_in = fan_in

    def stats(self, sl, memory):
        sizes = sl.sizes()
        return sizes, None if memory is None else sizes * float(memory.bits(1))

    def reach(self, sl):
        return np.ones(self.n_pre, np.int64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 (wrapping)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))

