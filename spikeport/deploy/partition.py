"""Partitioning onto cores and chips: ``partition(network, profile) -> Partition``.

Every spiking population is cut into cores, greedily and last layer first: each gets the
fewest cores (equal runs of consecutive neurons, or for a population of several axes equal
tiles along its axes: channels, rows, columns) for which every core is within the
profile's per-core limits, as far as the profile gives them:

- ``core.neurons`` (or the ``neurons_per_core`` setting, if smaller);
- ``core.input_axons``: the distinct presynaptic neurons that reach the core (summed over
  its projections);
- ``core.synapse_memory_bits``: per input axon and core, its ``c`` synapses into the core are
  stored in blocks of ``core.synapse_block`` synapses (one block where the profile gives
  none), each ``n * (precision.weight_bits + core.synapse_entry_bits) +
  core.synapse_overhead_bits`` bits rounded up to whole ``core.synapse_word_bits`` words
  (no rounding where it gives none): nengo-loihi's ``SynapseConfig.bits_per_axon`` with
  Loihi's profile;
- ``core.output_axons``: per neuron, one per core of each target population that it reaches.

A population whose single neuron needs more input axons than a core has fails at once. Then
cores are packed onto chips in population order (next-fit, by ``chip.cores`` and
``chip.neurons``); more chips than ``chip.chips_max`` is a :class:`SpikeportError` saying how
many are needed. A profile with a vendor mapper (Speck, Xylo) is one chip. A chip of one core
(Xylo: ``chip.cores = 1``) holds every spiking population on that core, its output
population apart where the chip has ``chip.outputs``.

Counting without materializing
------------------------------
A projection is analyzed once (:func:`analyze`) into one of three forms:

- dense: ``[flatten..., dense]``, also behind poolings whose windows do not overlap
  (``[avgpool, flatten, dense]``: every presynaptic pixel feeds one pooled value, so its
  synapses into a core are those of its pooled column). Per-core counts come from
  cumulative nonzero counts of the weight columns: exact.
- convolution: one ``conv2d`` (padding, stride, dilation, groups), one pooling, or a pooling
  followed by a convolution (folded into one convolution, as the Loihi backend folds it).
  Fan-in and fan-out per neuron are exact (per-tap nonzero counts times the taps that land
  inside the input). Per core (a tile of channels x rows x columns) the synapses of a
  presynaptic neuron are counted as (filters of the tile in its group) x (kernel rows that
  reach it) x (kernel columns that reach it), with a tap row (column) counted where any
  weight in it is nonzero: exact for kernels without zero taps, an upper bound otherwise
  (never fewer axons or bits than the chip needs).
- anything else: the projection's exact synapse list (``Projection.materialize``).

Loihi (``backend = "nengo-loihi"``) is counted as nengo-loihi counts a block (checked block by
block against nengo-loihi's own counts in tests/test_partition.py): a projection that the
Loihi backend builds as nengo-loihi's shared-weight convolution (one conv2d after pooling is
folded in, no groups or dilation, padding "valid" or "same", not from the input) has one input
axon per presynaptic pixel, 2 output axon slots per pixel and target core (population axons
of type 32), and stores one weight list per distinct (kernel rows in the block, kernel columns
in the block, compartment offset // 256) of the pixels reaching the block, each of C_in x rows
x columns x filters weights with 6..12 index bits (``conv2d_loihi_weights``,
``split_synapse``). Where a block is split from its population, nengo-loihi stores lists of
equal weights and targets once; that is counted for the equal lists that a network's structure
makes (a pooling's neurons, the pixels of one pooling window before a dense layer or folded
into a convolution, kernel rows of equal values as a folded pooling repeats them; the exact
synapse lists compare every list), not for values equal by chance: an upper bound there. A
population on one block has as input axons every presynaptic neuron (or pixel) and gives every
neuron of its inputs an output axon, as nengo-loihi's unsplit synapses do. Input populations
are spike generators off the chip: no cores, but their neurons are input axons (the Loihi
backend feeds an analog input as a bias instead, which needs none). Not counted: the relay
populations the Loihi backend adds for delays and unequal paths, and nengo-loihi's limits on
configurations per core (32 compartment, 16 synapse configs). Tiles are tried in nengo-loihi's
order of fewest blocks, without its runs of consecutive neurons for populations of several
axes (runs given in ``block_shapes`` are counted, except into a shared-weight convolution).

SpiNNaker (``backend = "spinnaker"``) is counted as sPyNNaker 7.4 places the Loihi-free PyNN
lowering of spikeport (:mod:`spikeport.backends.pynn_lowering`): one core per slice of at
most ``neurons_per_core`` consecutive neurons of each population (``SplitterPopulationVertexFixed``);
a spiking input is one ``SpikeSourceArray`` core whatever its size (``SplitterFixedLegacy``,
no atom limit); an analog input is a current, with no core and no synapses; a delay
extension (``DelayExtensionVertex``, as many cores as its source population) for each
population with a projection whose delay (after the lowering pads paths to equal lags)
exceeds what its target's ring buffer holds, 2**(14 - bits(neurons per core) - 1) steps
capped by the next power of two of its longest delay; delays beyond 9 times that are refused.
Chips are packed by ``chip.cores``; sPyNNaker's placer may spread cores over more chips, and
its system cores (one monitor per chip) are not counted.
"""
from __future__ import annotations

import math
import time
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np

from ..errors import GraphError, SpikeportError
from ..hardware_profiles import Profile
from ..ir import NeuronModel, Population

# nengo-loihi constants without a profile key (nengo_loihi/block.py)
LOIHI_INDEX_BITS = (0, 6, 7, 8, 9, 10, 11, 12)   # SynapseConfig.INDEX_BITS_MAP: population weights' index bits
LOIHI_POP_SLOTS = 2                              # Axon.slots_per_axon of pop_type 32, the default for convolutions
LOIHI_OFFSET_MOD = 256                           # axon compartment bases are taken modulo 256 (split_synapse)
# sPyNNaker constants (spynnaker/pyNN/utilities/constants.py, delay_extension_vertex.py)
SPINNAKER_RING_BUFFER_BITS = 14                  # MAX_RING_BUFFER_BITS
SPINNAKER_SYNAPSE_TYPE_BITS = 1                  # get_n_bits(2): excitatory and inhibitory
SPINNAKER_DELAY_SLOTS = 8                        # DelayExtensionVertex.MAX_SLOTS
LIMITS = ("neurons", "input_axons", "synapse_memory", "output_axons")
KEYS = {"neurons": "core.neurons", "input_axons": "core.input_axons", "synapse_memory": "core.synapse_memory_bits",
        "output_axons": "core.output_axons"}


def _ceil(a, b):
    return -(-a // b)


def _n_bits(n: int) -> int:
    """sPyNNaker's get_n_bits: bits to tell n values apart."""
    return 0 if n <= 0 else 1 if n == 1 else math.ceil(math.log2(n))


# ---------------------------------------------------------------------------- the target

@dataclass(frozen=True)
class _Memory:
    """Synapse memory of one input axon's ``c`` synapses into one core (module docstring)."""

    limit: int
    weight_bits: int
    entry_bits: int
    overhead: float
    block: int | None
    word: int | None

    def bits(self, c, extra_bits: int = 0) -> np.ndarray:
        c = np.asarray(c, dtype=np.int64)
        per = self.weight_bits + self.entry_bits + extra_bits

        def words(x):
            return np.ceil(x / self.word) * self.word if self.word else x

        if self.block is None:
            return np.where(c > 0, words(c * per + self.overhead), 0.0)
        full, rem = c // self.block, c % self.block
        return full * words(self.block * per + self.overhead) + np.where(rem > 0, words(rem * per + self.overhead), 0.0)


def shares_one_core(profile: Profile) -> bool:
    """A chip of one core (Xylo) holds every population on that core, its output neurons apart where
    it has some; not so where the vendor tool places one population per core (nengo-loihi's blocks,
    sPyNNaker's vertices), whatever the profile's core count."""
    return profile.value("chip.cores") == 1 and profile.backend not in ("nengo-loihi", "spinnaker")


def chips_in_system(profile: Profile):
    """``chip.chips_max``; one chip for a profile with a vendor mapper (Speck, Xylo), whose mapper
    maps onto one chip; None for no limit."""
    n = profile.value("chip.chips_max")
    return 1 if n is None and profile.mapper else n


class _Target:
    """The limits of a profile that partitioning uses, and how its backend counts."""

    def __init__(self, profile: Profile, neurons_per_core=None):
        v = profile.value
        self.profile = profile
        self.name = profile.name
        self.loihi = profile.backend == "nengo-loihi"
        self.spinnaker = profile.backend == "spinnaker"
        self.core_neurons = int(v("core.neurons"))
        self.cap = self.core_neurons
        if neurons_per_core is not None:
            npc = int(neurons_per_core)
            if npc < 1 or npc > self.core_neurons:
                raise SpikeportError(f"neurons_per_core must be in [1, {self.core_neurons}] on {profile.name} "
                                     f"(core.neurons), got {neurons_per_core}")
            self.cap = npc
        self.input_axons = v("core.input_axons")
        self.output_axons = v("core.output_axons")
        mem = v("core.synapse_memory_bits")
        self.memory = None if mem is None else _Memory(
            int(mem), int(v("precision.weight_bits") or 0), int(v("core.synapse_entry_bits") or 0),
            float(v("core.synapse_overhead_bits") or 0.0), v("core.synapse_block"), v("core.synapse_word_bits"))
        self.chip_cores = int(v("chip.cores"))
        self.chip_neurons = v("chip.neurons")
        self.chips_max = v("chip.chips_max")
        self.shared = shares_one_core(profile)
        self.readout = self.shared and v("chip.outputs") is not None
        self.chips_max = chips_in_system(profile)

    def limit(self, what: str):
        return {"neurons": self.core_neurons, "input_axons": self.input_axons,
                "synapse_memory": None if self.memory is None else self.memory.limit,
                "output_axons": self.output_axons}[what]


# ---------------------------------------------------------------------------- slicings

class _Slicing:
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
        """Per core, the sum of a per-neuron quantity, from its prefix sums (:func:`_prefix` over ``dims``)."""
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


def _prefix(values: np.ndarray, dims: tuple) -> np.ndarray:
    """Prefix sums over every axis of ``values`` shaped ``dims``, with a leading zero on each axis."""
    a = np.asarray(values).reshape(dims)
    a = a.astype(np.float64 if a.dtype.kind == "f" else np.int64)
    out = np.zeros(tuple(d + 1 for d in dims), a.dtype)
    out[tuple(slice(1, None) for _ in dims)] = a
    for ax in range(len(dims)):
        np.cumsum(out, axis=ax, out=out)
    return out


# ---------------------------------------------------------------------------- projection forms

class _Dense:
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


@dataclass
class _Axis:
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


class _Conv:
    """One convolution or pooling over (C, H, W), possibly a pooling folded into a convolution."""

    form = "conv"

    def __init__(self, proj, pre, post, mask, groups, geometry, kernel=None, shared_pool=False, cells=None,
                 loihi=False):
        self.name, self.proj, self.pre, self.post = proj.name, proj, pre, post
        self.loihi = loihi
        self.n_pre, self.n_post = pre.size, post.size
        self.mask = mask                                   # (C_out, C_in/groups, kh, kw) bool
        self.c_out, self.cig, kh, kw = mask.shape
        self.groups = groups
        self.cog = self.c_out // groups
        self.c_in = self.cig * groups
        (sh, sw), (ph, pw), (dh, dw) = geometry
        _, h, w = pre.shape
        _, ho, wo = post.shape
        self.ax = (_Axis(h, ho, kh, sh, ph, dh, mask.any(axis=(0, 1, 3))),
                   _Axis(w, wo, kw, sw, pw, dw, mask.any(axis=(0, 1, 2))))
        self.ci_mask = mask.any(axis=(0, 2, 3))            # (C_in/groups,) input channels with a synapse
        self.cia = int(self.ci_mask.sum())
        self.transform = kernel is not None       # nengo-loihi's shared-weight convolution of this kernel
        if self.transform:
            self.value_codes = (_value_codes(kernel, 2, sh), _value_codes(kernel, 3, sw))
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
            self._sparse = _Sparse(self.proj, self.pre, self.post, dedup=self.loihi)
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
            return self._transform_stats(sl, memory)
        if self.shared_pool and sl.n_cores > 1 and memory is not None:
            return self._pool_stats(sl, memory)
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

    def _transform_stats(self, sl, memory):
        """nengo-loihi's shared-weight convolution: pixels as axons, weight lists per distinct key."""
        bf, br, bc = sl.bounds
        rows, cols = self.ax[0].rows(br), self.ax[1].rows(bc)
        kh, kw = self.mask.shape[2:]
        if sl.n_cores > 1:
            # split_synapse merges lists of equal weight values (a folded pooling repeats them)
            (vr, vw), (vc, vcw) = self.value_codes
            rows = [(vr[c // (kh + 1), c % (kh + 1)] * (kh + 1) + c % (kh + 1), r) for c, r in rows]
            cols = [(vc[c // (kw + 1), c % (kw + 1)] * (kw + 1) + c % (kw + 1), r) for c, r in cols]
        npx = np.array([len(c) for c, _ in rows])[None, :, None] * np.array([len(c) for c, _ in cols])[None, None, :]
        axons = np.broadcast_to(npx, sl.grid).ravel()
        if memory is None:
            return axons, None
        fb = np.diff(bf)
        rb, cb = np.diff(br), np.diff(bc)
        rclass, rsig = _classes([(int(n), c.tobytes(), r.tobytes()) for n, (c, r) in zip(rb, rows)])
        cclass, csig = _classes([(int(n), c.tobytes(), r.tobytes()) for n, (c, r) in zip(cb, cols)])
        fvals, fclass = np.unique(fb, return_inverse=True)
        table = np.zeros((len(fvals), len(rsig), len(csig)))
        for i, ri in enumerate(rsig):
            rcode, rrel = rows[ri]
            for j, ci in enumerate(csig):
                ccode, crel = cols[ci]
                nr, nc = int(rb[ri]), int(cb[ci])
                if nr * nc <= LOIHI_OFFSET_MOD:
                    ur, uc = np.unique(rcode), np.unique(ccode)
                    taps = np.outer(ur % (kh + 1), uc % (kw + 1)).ravel()
                else:
                    nq = (nr * nc - 1) // LOIHI_OFFSET_MOD + 1
                    q = (rrel[:, None] * nc + crel[None, :]) // LOIHI_OFFSET_MOD
                    mc = int(ccode.max()) + 1
                    keys = np.unique(((rcode[:, None] * mc + ccode[None, :]) * nq + q).ravel())
                    rc_ = keys // nq
                    taps = ((rc_ // mc) % (kh + 1)) * ((rc_ % mc) % (kw + 1))
                # the largest stored index: last filter, last rows and columns, less the base modulo 256
                rmax, cmax = rrel + rcode % (kh + 1) - 1, crel + ccode % (kw + 1) - 1
                spread = (rmax[:, None] * nc + cmax[None, :]
                          - (rrel[:, None] * nc + crel[None, :]) % LOIHI_OFFSET_MOD).max(initial=0)
                for f, fv in enumerate(fvals):
                    idx = _loihi_index_bits(int(spread) + (int(fv) - 1) * nr * nc + 1)
                    table[f, i, j] = memory.bits(self.c_in * taps * int(fv), extra_bits=idx).sum()
        bits = table[fclass[:, None, None], rclass[None, :, None], cclass[None, None, :]].ravel()
        return axons, bits

    def _pool_stats(self, sl, memory):
        """A pooling split by nengo-loihi: presynaptic neurons with the same targets in a block
        (the same channel and window cells) share one weight list (split_synapse keys lists by
        weights and indices; a pooling's weights are all equal)."""
        bf, br, bc = sl.bounds
        rows, cols = self.ax[0].rows(br), self.ax[1].rows(bc)
        kh, kw = self.mask.shape[2:]
        axons = np.diff(bf)[:, None, None] * np.array([len(c) for c, _ in rows])[None, :, None] \
            * np.array([len(c) for c, _ in cols])[None, None, :]
        per_r = [np.unique(r * (kh + 1) + c % (kh + 1)) % (kh + 1) for c, r in rows]     # taps per distinct target set
        per_c = [np.unique(r * (kw + 1) + c % (kw + 1)) % (kw + 1) for c, r in cols]
        table = np.array([[memory.bits(np.outer(a, b)).sum() for b in per_c] for a in per_r]).reshape(len(rows), len(cols))
        bits = np.diff(bf)[:, None, None] * table[None, :, :]
        return axons.ravel(), bits.ravel()

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


def _value_codes(kernel: np.ndarray, axis: int, stride: int):
    """(k, k + 1) ids: for a run of n taps from u0 in steps of ``stride`` along ``axis`` of the
    kernel, an id equal for runs whose kernel slices hold equal values (taps are classed by
    their whole slice: exact for folded poolings and for kernels without repeated slices)."""
    k = kernel.shape[axis]
    _, cls = np.unique(np.moveaxis(kernel, axis, 0).reshape(k, -1), axis=0, return_inverse=True)
    cls = np.asarray(cls).ravel()
    ids, table = {}, np.zeros((k, k + 1), np.int64)
    for u0 in range(k):
        for n in range(1, k + 1):
            taps = u0 + stride * np.arange(n)
            if taps[-1] < k:
                table[u0, n] = ids.setdefault(tuple(cls[taps]), len(ids))
    return table, len(ids)


def _hist(r: np.ndarray) -> np.ndarray:
    """(tiles, max + 1): per tile, how many inputs have each count (column 0 unused)."""
    m = int(r.max(initial=0)) + 1
    t = np.repeat(np.arange(r.shape[0]), r.shape[1])
    return np.bincount(t * m + r.ravel(), minlength=r.shape[0] * m).reshape(r.shape[0], m).astype(np.float64)


def _classes(signatures: list):
    """(class of each item, first item of each class) for hashable signatures."""
    seen, cls, first = {}, [], []
    for i, s in enumerate(signatures):
        if s not in seen:
            seen[s] = len(first)
            first.append(i)
        cls.append(seen[s])
    return np.array(cls, np.int64), first


def _loihi_index_bits(n_values: int) -> int:
    """nengo-loihi's index width for indices 0 .. n_values - 1 (Synapse.idx_bits)."""
    need = (max(n_values, 1) - 1).bit_length()
    return next((b for b in LOIHI_INDEX_BITS if b >= need), LOIHI_INDEX_BITS[-1])


class _Sparse:
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


class _Identity:
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


_Edge = namedtuple("_Edge", "name pre post s")
_RELAY_NEURON = NeuronModel("if", threshold=1.0, reset="zero")


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on uint64 (wrapping)."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


# ---------------------------------------------------------------------------- analysis

_POOLS = ("sumpool2d", "avgpool2d")


def _pool_map(ops, shape):
    """Column of the dense weight each pre neuron feeds through flattens and poolings with
    disjoint windows: None for the identity, False where the chain is not of that form."""
    colmap = None
    for op in ops:
        if op.kind == "flatten":
            shape = (math.prod(shape),)
            continue
        if op.kind not in _POOLS or len(shape) != 3 or any(s < k for s, k in zip(op.stride, op.kernel_size)):
            return False
        c, h, w = shape
        ho, wo = op.out_shape(shape, op.kind)[1:]
        per_axis = []
        for n, k, s, p, no in zip((h, w), op.kernel_size, op.stride, op.padding, (ho, wo)):
            t = np.arange(n) + p
            i = t // s
            per_axis.append(np.where((t - i * s < k) & (i < no), i, -1))
        iy, ix = per_axis
        m = (np.arange(c)[:, None, None] * ho + iy[None, :, None]) * wo + ix[None, None, :]
        m = np.where((iy[None, :, None] >= 0) & (ix[None, None, :] >= 0), m, -1).ravel()
        colmap = m if colmap is None else np.where(colmap >= 0, m[np.maximum(colmap, 0)], -1)
        shape = (c, ho, wo)
    return colmap


def _conv_form(ops):
    """(kernel values, nonzero mask, groups, geometry) of one convolution, of one pooling
    (values and mask None), or of a pooling folded into the convolution after it, exactly as
    backends/loihi/lowering.py folds it; None for other chains."""
    if len(ops) == 1 and ops[0].kind == "conv2d":
        op = ops[0]
        return op.weight, op.weight != 0, op.groups, (op.stride, op.padding, op.dilation)
    if len(ops) == 1 and ops[0].kind in _POOLS:
        op = ops[0]
        return None, None, "pool", (op.stride, op.padding, (1, 1))
    if (len(ops) == 2 and ops[0].kind in _POOLS and ops[1].kind == "conv2d" and ops[0].padding == (0, 0)
            and ops[1].padding == (0, 0) and ops[1].dilation == (1, 1)):
        pool, op = ops
        (kh, kw), (sh, sw) = pool.kernel_size, pool.stride
        w = op.weight.astype(np.float64) * pool.factor()
        co, cig, uh, uw = w.shape
        shape = (co, cig, (uh - 1) * sh + kh, (uw - 1) * sw + kw)
        values, mask = np.zeros(shape), np.zeros(shape, bool)
        for a in range(kh):
            for b in range(kw):
                cell = (slice(None), slice(None), slice(a, a + (uh - 1) * sh + 1, sh), slice(b, b + (uw - 1) * sw + 1, sw))
                values[cell] += w
                mask[cell] |= w != 0
        return values, mask, op.groups, ((sh * op.stride[0], sw * op.stride[1]), (0, 0), (1, 1))
    return None


def _disjoint_cells(ops):
    """The pooling cell (sh, sw) of a pooling with disjoint windows folded into a convolution, else None."""
    if len(ops) == 2 and ops[0].kind in _POOLS and tuple(ops[0].stride) == tuple(ops[0].kernel_size):
        return tuple(ops[0].stride)
    return None


def _loihi_transform(form, ops, pre) -> bool:
    """Whether the Loihi backend builds this projection as nengo-loihi's shared-weight
    convolution (backends/loihi/lowering.py ``conv_transform``)."""
    if pre.is_input or form is None or form[2] == "pool":
        return False
    _, mask, groups, (stride, padding, dilation) = form
    kh, kw = mask.shape[2:]
    if groups != 1 or tuple(dilation) != (1, 1):
        return False
    return tuple(padding) == (0, 0) or (tuple(stride) == (1, 1) and kh % 2 == 1 and kw % 2 == 1
                                         and tuple(padding) == ((kh - 1) // 2, (kw - 1) // 2))


def _structure(proj, pre, post, loihi: bool):
    ops = list(proj.ops)
    if ops[-1].kind == "dense":
        colmap = _pool_map(ops[:-1], pre.shape)
        if colmap is not False:
            return _Dense(proj, pre, post, ops[-1].weight, colmap, shared_cols=loihi)
    form = _conv_form(ops) if len(pre.shape) == 3 and len(post.shape) == 3 else None
    if form is not None:
        values, mask, groups, geometry = form
        transform = loihi and _loihi_transform(form, ops, pre)
        if groups == "pool":
            c = pre.shape[0]
            mask = np.ones((c, 1) + tuple(ops[0].kernel_size), bool)
            groups = c
        return _Conv(proj, pre, post, mask, groups, geometry, kernel=values if transform else None,
                     shared_pool=loihi and len(ops) == 1 and ops[0].kind in _POOLS,
                     cells=_disjoint_cells(ops) if loihi and not transform else None, loihi=loihi)
    return _Sparse(proj, pre, post, dedup=loihi)


class Analysis:
    """The projections of a network in countable form, and per-neuron fan-in and fan-out.

    ``structures`` {projection name: form}; ``fan_in(pop)`` synapses into each neuron (all
    projections), ``fan_out(pop)`` synapses out of each neuron, ``axon_fan_in(pop)`` input
    axons one neuron needs on ``profile``'s backend (pixels on nengo-loihi's convolution path).
    """

    def __init__(self, network, profile: Profile | None = None):
        self.network = network
        self.loihi = profile is not None and profile.backend == "nengo-loihi"
        self.pops = {p.name: p for p in network.populations}
        self.structures = {proj.name: _structure(proj, self.pops[proj.pre], self.pops[proj.post], self.loihi)
                           for proj in network.projections}
        self._fan = {}

    def _sum(self, what: str, name: str, side: str) -> np.ndarray:
        key = (what, name)
        if key not in self._fan:
            out = np.zeros(self.pops[name].size, np.int64)
            for proj in self.network.projections:
                if getattr(proj, side) == name:
                    out += getattr(self.structures[proj.name], what)()
            self._fan[key] = out
        return self._fan[key]

    def fan_in(self, name: str) -> np.ndarray:
        return self._sum("fan_in", name, "post")

    def fan_out(self, name: str) -> np.ndarray:
        return self._sum("fan_out", name, "pre")

    def axon_fan_in(self, name: str) -> np.ndarray:
        return self._sum("axon_fan_in", name, "post")


def analyze(network, profile: Profile | None = None) -> Analysis:
    """The network's projections in countable form (see :class:`Analysis`)."""
    return Analysis(network, profile)


# ---------------------------------------------------------------------------- the result

@dataclass
class Partition:
    """Cores and chips of a network on one target.

    ``layers``: one dict per population (and per nengo-loihi relay and sPyNNaker delay extension):
    ``name``, ``kind`` ("spiking", "input", "relay", "delay_extension"), ``serves`` (the population
    whose spikes it carries: its own name for a population), ``neurons``, ``cores``, ``neurons_per_core`` (the
    largest core), ``block_shape`` (tile per axis, or one entry: runs of consecutive neurons),
    ``fan_in_max``, ``fan_out_max``, ``synapses`` (into the layer), ``input_axons_max``,
    ``output_axons_max``, ``synapse_bits_max`` (None where the chip has no such limit),
    ``utilization`` {limit: largest fraction over the layer's cores} and ``binding`` (the
    limit that made the layer take more cores than its neurons need; None if none did).
    ``per_core``: count and mean/max utilization of each limit over all cores; ``vendor``:
    the settings that make the vendor tool build this mapping (nengo-loihi: ``block_shape``
    and ``ensemble_shape`` per population; sPyNNaker: ``neurons_per_core`` per population).
    """

    target: str
    layers: list
    cores: int
    chips: int
    per_core: dict
    vendor: dict
    limits: dict
    notes: list
    seconds: float
    core_table: dict = field(default_factory=dict, repr=False)   # per-core arrays: layer index, counts

    def layer(self, name: str) -> dict:
        for lay in self.layers:
            if lay["name"] == name:
                return lay
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"target": self.target, "cores": int(self.cores), "chips": int(self.chips), "layers": self.layers,
                "per_core": self.per_core, "vendor": self.vendor, "limits": self.limits, "notes": list(self.notes),
                "seconds": round(float(self.seconds), 4)}


@dataclass
class _Placed:
    slicing: _Slicing
    counts: dict          # limit -> per-core array (None where not counted)
    synapses: np.ndarray
    binding: str | None


# ---------------------------------------------------------------------------- partitioning

class _Partitioner:
    def __init__(self, network, profile, neurons_per_core, block_shapes):
        self.network = network
        self.t = _Target(profile, neurons_per_core)
        self.an = Analysis(network, profile)
        self.pops = self.an.pops
        self.block_shapes = dict(block_shapes or {})
        inp = self.pops[network.input]
        self.analog = inp.encoding.kind == "analog"
        # projections that are synapses on the chip (sPyNNaker: an analog input is a current)
        self.on_chip = [p for p in network.projections if not (self.t.spinnaker and self.analog and p.pre == inp.name)]
        self.relays, self.relay_depth = _loihi_relays(network, self.analog) if self.t.loihi else ({}, {})
        self.pops = dict(self.an.pops)
        self.edges = []
        for pre, depth in self.relays.items():
            prev = pre
            for k in range(1, depth + 1):
                name = f"{pre}~relay{k}"
                self.pops[name] = Population(name, self.pops[pre].shape, neuron=_RELAY_NEURON)
                self.edges.append(_Edge(name, prev, name, _Identity(self.pops[pre].size)))
                prev = name
        for p in self.on_chip:
            k = self.relay_depth.get(p.name, 0)
            self.edges.append(_Edge(p.name, p.pre if k == 0 else f"{p.pre}~relay{k}", p.post, self.an.structures[p.name]))
        # every population on the chip in update order, each source's relays after it
        self.names = []
        for pop in network.order():
            self.names.append(pop.name)
            self.names += [f"{pop.name}~relay{k}" for k in range(1, self.relays.get(pop.name, 0) + 1)]
        self.placed = {}
        self._reach = {}
        self._fan_prefix = {}
        self._fans = {}

    def _into(self, name):
        return [e for e in self.edges if e.post == name]

    def _out_of(self, name):
        return [e for e in self.edges if e.pre == name]

    def fan(self, name: str, what: str) -> np.ndarray:
        """Per neuron of ``name``, the sum of ``what`` (fan_in, axon_fan_in: over its inputs on the
        chip; fan_out: over its outputs)."""
        key = (name, what)
        if key not in self._fans:
            edges = self._out_of(name) if what == "fan_out" else self._into(name)
            out = np.zeros(self.pops[name].size, np.int64)
            for e in edges:
                out += getattr(e.s, what)()
            self._fans[key] = out
        return self._fans[key]

    def _reach_prefix(self, name: str, runs: bool):
        """Prefix sums of each neuron's output axons (and, on nengo-loihi's convolution path,
        each pixel's axon slots), from the cores its targets are cut into."""
        key = (name, runs)
        if key not in self._reach:
            pop = self.pops[name]
            neuron = np.zeros(pop.size, np.int64)
            pixel = None
            for e in self._out_of(name):
                s, post = e.s, self.placed.get(e.post)
                if post is None:
                    continue
                whole = self.t.loihi and post.slicing.n_cores == 1
                if s.transform:
                    r = np.ones(pop.shape[1] * pop.shape[2], np.int64) if whole else s.pixel_reach(post.slicing)
                    pixel = LOIHI_POP_SLOTS * r if pixel is None else pixel + LOIHI_POP_SLOTS * r
                else:
                    neuron += 1 if whole else s.reach(post.slicing)
            dims = (pop.size,) if runs else pop.shape
            self._reach[key] = (_prefix(neuron, dims), None if pixel is None else pixel.reshape(pop.shape[1:]))
        return self._reach[key]

    def _out_axons(self, name, sl):
        neuron, pixel = self._reach_prefix(name, sl.runs)
        out = sl.block_sums(neuron)
        if pixel is not None:
            out = out + _pixel_sums(pixel, sl)
        return out

    def evaluate(self, name: str, sl: _Slicing) -> _Placed:
        t = self.t
        counts = {"neurons": sl.sizes(), "input_axons": None, "synapse_memory": None, "output_axons": None}
        if t.input_axons is not None or t.memory is not None:
            axons = np.zeros(sl.n_cores, np.int64)
            bits = np.zeros(sl.n_cores) if t.memory is not None else None
            for e in self._into(name):
                s = e.s
                a, b = s.stats(sl, t.memory)
                axons += s.n_axons_whole if (t.loihi and sl.n_cores == 1) else a
                if bits is not None:
                    bits += b
            counts["input_axons"] = axons if t.input_axons is not None else None
            counts["synapse_memory"] = bits
        if t.output_axons is not None:
            counts["output_axons"] = self._out_axons(name, sl)
        key = (name, sl.dims)
        if key not in self._fan_prefix:
            self._fan_prefix[key] = _prefix(self.fan(name, "fan_in"), sl.dims)
        return _Placed(sl, counts, sl.block_sums(self._fan_prefix[key]), None)

    def _failure(self, placed: _Placed, cap: int):
        """(limit, worst value, its limit) of the most exceeded limit, or None if the cores fit."""
        worst = None
        for what, arr in placed.counts.items():
            limit = cap if what == "neurons" else self.t.limit(what)
            if arr is None or limit is None or arr.size == 0:
                continue
            v = float(arr.max())
            if v > limit and (worst is None or v / limit > worst[1] / worst[2]):
                worst = (what, v, limit)
        return worst

    def place(self, name: str) -> _Placed:
        pop = self.pops[name]
        shape, n = pop.shape, pop.size
        cap = self.t.cap
        if name in self.block_shapes:
            sl = _Slicing(shape, self.block_shapes[name])
            placed = self.evaluate(name, sl)
            fail = self._failure(placed, self.t.core_neurons)
            if fail:
                raise SpikeportError(_fail_line(name, f"blocks of {_dims(sl.block)}", fail))
            return placed
        if self.t.input_axons is not None and self._into(name):
            need = int(self.fan(name, "axon_fan_in").max(initial=0))
            if need > self.t.input_axons:      # one neuron alone: no cut helps
                raise SpikeportError(_fail_line(name, "one neuron per core", ("input_axons", need, self.t.input_axons)))
        k_lo = _ceil(n, cap)
        if self.t.spinnaker or len(shape) == 1:
            return self._search_runs(name, shape, n, cap, k_lo)
        return self._search_tiles(name, shape, cap, k_lo)

    def _search_runs(self, name, shape, n, cap, k_lo):
        """Fewest equal runs (sPyNNaker: first runs of exactly neurons_per_core, its own slices)."""
        tried = {}

        def ev(b):
            if b not in tried:
                sl = _Slicing((n,), (b,))
                p = self.evaluate(name, sl)
                tried[b] = (p, self._failure(p, cap))
            return tried[b]

        first = cap if self.t.spinnaker else _ceil(n, k_lo)
        p, fail = ev(first)
        if not fail:
            return p
        last_fail, k_fail = fail, _ceil(n, first)
        k = k_fail
        while True:                       # grow until a cut fits
            k = min(n, max(k + 1, 2 * k))
            p, fail = ev(_ceil(n, k))
            if not fail:
                break
            last_fail, k_fail = fail, k
            if k == n:
                raise SpikeportError(_fail_line(name, "one neuron per core", fail))
        k_ok = k
        while k_ok - k_fail > 1:          # then the fewest cores between
            mid = (k_ok + k_fail) // 2
            p2, fail = ev(_ceil(n, mid))
            if fail:
                k_fail, last_fail = mid, fail
            else:
                k_ok, p = mid, p2
        p = ev(_ceil(n, k_ok))[0]
        p.binding = last_fail[0]
        return p

    def _search_tiles(self, name, shape, cap, k_lo):
        """Tiles along the axes, fewest cores first (at equal counts the smaller tiles), as
        nengo-loihi's block plan orders them; a tile that fails rules out every tile containing it."""
        cands = _tile_candidates(shape, cap)
        ruled = np.zeros((0, len(shape)), np.int64)
        last_fail = None
        for b in cands:
            if len(ruled) and (b[None, :] >= ruled).all(axis=1).any():
                continue
            p = self.evaluate(name, _Slicing(shape, tuple(int(x) for x in b)))
            fail = self._failure(p, cap)
            if not fail:
                if p.slicing.n_cores > k_lo and last_fail is not None:
                    p.binding = last_fail[0]
                return p
            last_fail = fail
            ruled = np.vstack([ruled, b[None, :]])
        raise SpikeportError(_fail_line(name, "the smallest tiles", last_fail))

    def on_shared_core(self) -> list:
        """The populations sharing a one-core chip's core (all spiking ones, less the readout)."""
        return [p.name for p in self.network.populations
                if not p.is_input and not (self.t.readout and p.name == self.network.output)]

    def run(self):
        order = [name for name in reversed(self.names) if not self.pops[name].is_input]
        if self.t.shared:
            for name in order:
                self.placed[name] = self.evaluate(name, _Slicing(self.pops[name].shape, self.pops[name].shape))
            names = self.on_shared_core()
            for what in LIMITS:
                limit = self.t.limit(what)
                arrs = [self.placed[n].counts[what] for n in names]
                if limit is not None and arrs and all(a is not None for a in arrs) and sum(a[0] for a in arrs) > limit:
                    raise SpikeportError(f"{', '.join(names)}: {what.replace('_', ' ')} {int(sum(a[0] for a in arrs))} "
                                         f"exceeds the limit {int(limit)} of the chip's one core ({KEYS[what]})")
            return self.placed
        for name in order:
            self.placed[name] = self.place(name)
        # a delayed projection back to a population placed earlier: recount once every target is placed
        rank = {name: i for i, name in enumerate(order)}
        late = [name for name in order if any(rank[e.post] > rank[name] for e in self._out_of(name))]
        for attempt in range(4):
            if self.t.output_axons is None or not late:
                break
            self._reach = {}
            bad = []
            for name in late:
                p = self.placed[name]
                p.counts["output_axons"] = self._out_axons(name, p.slicing)
                if self._failure(p, self.t.core_neurons):
                    bad.append(name)
            if not bad:
                break
            if attempt == 3:
                raise SpikeportError(_fail_line(bad[0], "any cut", self._failure(self.placed[bad[0]],
                                                                                   self.t.core_neurons)))
            for name in bad:
                self._reach = {}
                self.placed[name] = self.place(name)
        return self.placed


def _loihi_relays(network, analog: bool):
    """({source population: relays}, {projection: relays it comes through}), as the Loihi backend
    pads every path into a population to its lag (the Loihi backend's relay plan: projection p
    leaves from the relay lag[post] - lag[pre] + delay_steps - 1 of its source, relays chained
    from the source); none for a network with cycles, which that backend cannot run."""
    from ..backends.common import lags

    try:
        lag = lags(network)
    except GraphError:
        return {}, {}
    depth = {p.name: lag[p.post] - lag[p.pre] + p.delay_steps - 1 for p in network.projections
             if not (analog and p.pre == network.input)}
    out = {}
    for p in network.projections:
        if depth.get(p.name, 0) > 0:
            out[p.pre] = max(out.get(p.pre, 0), depth[p.name])
    return {name: out[name] for name in [q.name for q in network.populations] if name in out}, depth


def _pixel_sums(pixel: np.ndarray, sl: _Slicing) -> np.ndarray:
    """Per core of a (C, H, W) population, the sum over the distinct pixels its neurons occupy."""
    h, w = pixel.shape
    if not sl.runs:
        _, br, bc = sl.bounds
        p = _prefix(pixel, (h, w))[np.ix_(br, bc)]
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


def _tile_candidates(shape, cap) -> list:
    per_axis = [np.array(sorted({_ceil(d, k) for k in range(1, d + 1)}), np.int64) for d in shape]
    grid = np.stack([g.ravel() for g in np.meshgrid(*per_axis, indexing="ij")], axis=1)
    grid = grid[np.prod(grid, axis=1) <= cap]
    blocks = np.prod(-(-np.asarray(shape)[None, :] // grid), axis=1)
    order = np.lexsort((np.prod(grid, axis=1), blocks))
    return list(grid[order])


def _dims(block) -> str:
    return "x".join(str(int(b)) for b in block)


def _fail_line(name, at, fail) -> str:
    what, v, limit = fail
    return (f"{name}: fits no core even with {at}: {what.replace('_', ' ')} {int(v)} exceeds the limit {int(limit)} "
            f"({KEYS[what]})")


# ---------------------------------------------------------------------------- entry point

def partition(network, profile: Profile, *, neurons_per_core: int | None = None,
              block_shapes: dict | None = None) -> Partition:
    """Cut every population of ``network`` into cores within ``profile``'s per-core limits,
    and pack the cores onto chips (module docstring for the counting models).

    neurons_per_core : at most this many neurons per core (default: ``core.neurons``); on
        SpiNNaker the slice size given to sPyNNaker (``ceil(n / neurons_per_core)`` cores per
        population, fewer neurons per core only where another limit needs it)
    block_shapes : {population: block dims} to count as given instead of searching (one entry
        per axis: tiles; one entry: runs of consecutive neurons); a core over a limit raises

    Raises :class:`SpikeportError` (one line: the layer, the limit, the value) where a
    population fits no core or the cores need more chips than ``chip.chips_max``.
    """
    t0 = time.perf_counter()
    part = _Partitioner(network, profile, neurons_per_core, block_shapes)
    for name in part.block_shapes:
        if name not in part.pops or part.pops[name].is_input:
            raise SpikeportError(f"block_shapes: no spiking population {name!r}")
    placed = part.run()
    t = part.t
    an = part.an
    rows, core_layer, core_counts = [], [], {k: [] for k in LIMITS}
    all_pops = []                                  # the network's populations, each source's relays after it
    for pop in network.populations:
        all_pops.append(pop)
        all_pops += [part.pops[f"{pop.name}~relay{k}"] for k in range(1, part.relays.get(pop.name, 0) + 1)]
    for idx, pop in enumerate(all_pops):
        relay = pop.name not in an.pops
        fan_out = part.fan(pop.name, "fan_out") if relay else an.fan_out(pop.name)
        row = {"name": pop.name, "kind": "input" if pop.is_input else "relay" if relay else "spiking",
               "serves": pop.name.split("~relay")[0], "neurons": int(pop.size),
               "fan_in_max": None, "fan_out_max": int(fan_out.max(initial=0)), "synapses": 0}
        if pop.is_input:
            cores = 1 if (t.spinnaker and not part.analog) else 0
            row.update(cores=cores, neurons_per_core=int(pop.size) if cores else 0, block_shape=None,
                       input_axons_max=None, output_axons_max=None, synapse_bits_max=None, utilization={},
                       binding=None, placement="one SpikeSourceArray core" if cores else "off chip")
            for _ in range(cores):
                core_layer.append(idx)
                core_counts["neurons"].append(np.nan)
                for k in LIMITS[1:]:
                    core_counts[k].append(np.nan)
            rows.append(row)
            continue
        p = placed[pop.name]
        sl = p.slicing
        util = {}
        maxes = {}
        counts = dict(p.counts)
        n_cores = sl.n_cores
        if t.shared:
            shared = part.on_shared_core()
            if pop.name not in shared:
                n_cores, row["placement"] = 0, "the chip's output neurons"
            else:
                if pop.name != shared[0]:
                    n_cores, row["placement"] = 0, f"shares the chip's one core with {shared[0]}"
                else:
                    row["placement"] = "the chip's one core, with " + (", ".join(shared[1:]) or "no other layer")
                counts = {w: None if any(placed[n].counts[w] is None for n in shared)
                          else sum(placed[n].counts[w] for n in shared) for w in LIMITS}
        for what in LIMITS:
            arr = counts[what]
            limit = t.limit(what)
            maxes[what] = None if arr is None else float(arr.max())
            if arr is not None and limit is not None:
                util[what] = round(maxes[what] / limit, 4)
            if n_cores:
                core_counts[what].extend(np.full(n_cores, np.nan) if arr is None else arr.astype(np.float64))
        core_layer.extend([idx] * n_cores)
        row.update(cores=n_cores, neurons_per_core=int(p.counts["neurons"].max()),
                   block_shape=[int(b) for b in sl.block],
                   fan_in_max=int((part.fan(pop.name, "fan_in") if relay else an.fan_in(pop.name)).max(initial=0)),
                   synapses=int(p.synapses.sum()),
                   input_axons_max=None if maxes["input_axons"] is None else int(maxes["input_axons"]),
                   output_axons_max=None if maxes["output_axons"] is None else int(maxes["output_axons"]),
                   synapse_bits_max=None if maxes["synapse_memory"] is None else int(maxes["synapse_memory"]),
                   utilization=util, binding=p.binding)
        rows.append(row)
    notes = []
    if t.spinnaker:
        for name, cores in _spinnaker_delay_extensions(network, part, placed).items():
            rows.append({"name": f"{name}_delayed", "kind": "delay_extension", "serves": name, "neurons": 0,
                         "cores": cores,
                         "neurons_per_core": 0, "block_shape": None, "fan_in_max": None, "fan_out_max": None,
                         "synapses": 0, "input_axons_max": None, "output_axons_max": None, "synapse_bits_max": None,
                         "utilization": {}, "binding": None, "placement": "sPyNNaker delay extension"})
            core_layer.extend([len(rows) - 1] * cores)
            for k in LIMITS:
                core_counts[k].extend([np.nan] * cores)
    cores = len(core_layer)
    core_neurons = np.asarray(core_counts["neurons"], np.float64)
    chips = _pack(core_neurons, t)
    if t.chips_max is not None and chips > t.chips_max:
        raise SpikeportError(f"network: needs {chips} chips ({cores} cores, at most {t.chip_cores} per chip), "
                             f"the system has {t.chips_max} (chip.chips_max); fewer or smaller layers would fit")
    per_core = {"count": cores}
    for what in LIMITS:
        arr = np.asarray(core_counts[what], np.float64)
        limit = t.limit(what)
        arr = arr[~np.isnan(arr)]
        per_core[what] = None if limit is None or arr.size == 0 else {
            "mean": round(float(arr.mean() / limit), 4), "max": round(float(arr.max() / limit), 4)}
    vendor = {}
    spiking = [p for p in all_pops if not p.is_input]
    if t.loihi:
        vendor = {"block_shape": {p.name: [int(b) for b in placed[p.name].slicing.block] for p in spiking},
                  "ensemble_shape": {p.name: [int(d) for d in placed[p.name].slicing.dims] for p in spiking}}
        notes.append("nengo-loihi counting: blocks (one per core) as nengo-loihi counts them, the Loihi backend's "
                     "relay populations (<population>~relay<k>, for delays and unequal paths) included")
    elif t.spinnaker:
        vendor = {"neurons_per_core": {p.name: int(placed[p.name].slicing.block[0]) for p in spiking}}
        notes.append("sPyNNaker counting: one core per slice of neurons_per_core neurons, one SpikeSourceArray "
                     "core for a spiking input, delay extensions; system cores not counted. Chips are packed "
                     "densely, a lower bound: sPyNNaker's placer keeps one more core free on the Ethernet chip and "
                     "starts populations on fresh chips (bench/RESULTS.md: up to one chip more on four networks)")
    limits = {"neurons": t.core_neurons, "neurons_per_core": t.cap, "input_axons": t.input_axons,
              "output_axons": t.output_axons, "synapse_memory_bits": None if t.memory is None else t.memory.limit,
              "chip_cores": t.chip_cores, "chip_neurons": t.chip_neurons, "chips_max": t.chips_max}
    table = {"layer": np.asarray(core_layer, np.int64),
             **{k: np.asarray(v, np.float64) for k, v in core_counts.items()}}
    return Partition(target=profile.name, layers=rows, cores=cores, chips=chips, per_core=per_core, vendor=vendor,
                     limits=limits, notes=notes, seconds=time.perf_counter() - t0, core_table=table)


def _pack(core_neurons: np.ndarray, t: _Target) -> int:
    """Chips for the cores in order: next-fit by chip.cores and chip.neurons."""
    n = len(core_neurons)
    if n == 0:
        return 0
    if t.chip_neurons is None:
        return _ceil(n, t.chip_cores)
    neurons = np.nan_to_num(core_neurons)
    cum = np.concatenate([[0.0], np.cumsum(neurons)])
    chips, i = 0, 0
    while i < n:
        j = min(n, i + t.chip_cores)
        j = max(i + 1, min(j, int(np.searchsorted(cum, cum[i] + t.chip_neurons, "right")) - 1))
        chips, i = chips + 1, j
    return chips


def _spinnaker_delay_extensions(network, part: _Partitioner, placed: dict) -> dict:
    """{pre population: cores} of sPyNNaker's delay extensions (module docstring)."""
    from ..backends.common import lags

    lag = lags(network, lambda proj: max(proj.delay_steps, 1))
    delay = {p.name: lag[p.post] - lag[p.pre] + p.delay_steps for p in part.on_chip}
    out = {}
    for post in {p.post for p in part.on_chip}:
        into = [p for p in part.on_chip if p.post == post]
        longest = max(delay[p.name] for p in into)
        n_post = part.pops[post].size
        npc = placed[post].slicing.block[0]
        slots = 2 ** (SPINNAKER_RING_BUFFER_BITS - _n_bits(min(n_post, npc)) - SPINNAKER_SYNAPSE_TYPE_BITS)
        support = min(2 ** _n_bits(longest), slots)
        for p in into:
            if delay[p.name] <= support:
                continue
            if delay[p.name] > (SPINNAKER_DELAY_SLOTS + 1) * support:
                raise SpikeportError(f"{p.name}: delay {delay[p.name]} steps (after equalizing path lags) exceeds "
                                     f"the limit {(SPINNAKER_DELAY_SLOTS + 1) * support} that sPyNNaker supports into "
                                     f"{post} with a delay extension; shorten it or use fewer neurons per core")
            pre = part.pops[p.pre]
            out[p.pre] = 1 if pre.is_input else placed[p.pre].slicing.n_cores
    return {name: out[name] for name in [p.name for p in network.populations] if name in out}
