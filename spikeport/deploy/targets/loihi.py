"""The Loihi plug-in (``backend = "nengo-loihi"``: the profile ``loihi``): counting as nengo-loihi
builds blocks, the Loihi backend's relay populations, and the nengo-loihi script.

Counting. Loihi is counted as nengo-loihi counts a block (checked block by block against
nengo-loihi's own counts in tests/test_partition.py): a projection that the Loihi backend builds
as nengo-loihi's shared-weight convolution (one conv2d after pooling is folded in, no groups or
dilation, padding "valid" or "same", not from the input: :meth:`Loihi.shared_weight_conv`) has
one input axon per presynaptic pixel, 2 output axon slots per pixel and target core (population
axons of type 32), and stores one weight list per distinct (kernel rows in the block, kernel
columns in the block, compartment offset // 256) of the pixels reaching the block, each of
C_in x rows x columns x filters weights with 6..12 index bits (``conv2d_loihi_weights``,
``split_synapse``). Where a block is split from its population, nengo-loihi stores lists of
equal weights and targets once; that is counted for the equal lists that a network's structure
makes (a pooling's neurons, the pixels of one pooling window before a dense layer or folded
into a convolution, kernel rows of equal values as a folded pooling repeats them; the exact
synapse lists compare every list), not for values equal by chance: an upper bound there. A
population on one block has as input axons every presynaptic neuron (or pixel) and gives every
neuron of its inputs an output axon, as nengo-loihi's unsplit synapses do. Input populations
are spike generators off the chip: no cores, but their neurons are input axons (the Loihi
backend feeds an analog input as a bias instead, which needs none). The relay populations the
Loihi backend adds for delays and unequal paths (:meth:`Loihi.relays`, with the relay-lag
formula of :mod:`spikeport.ir.lags` that the backend uses too) are counted as populations of
their own. Not counted: nengo-loihi's limits on configurations per core (32 compartment, 16
synapse configs).

One block planner. The partitioner tries, per population and last layer first, tiles in order
of fewest blocks (``partition/slicing.py`` ``tile_candidates``), and takes the first whose every
block fits; runs of consecutive neurons are counted where given in ``block_shapes`` (except into a
shared-weight convolution), not searched: a run search on large convolutional layers cost up to
70 s where the tiles take 1 (bench/RESULTS.md, "One house (issue 24), second part"), for one
block fewer in rare cases. It counts analytically from the graph, without nengo-loihi and without
materializing large projections (bench/RESULTS.md, "Partitioning at scale"), against the
profile's limits (any profile with this backend, and ``neurons_per_core``), an upper bound where
weights are equal by chance.
These shapes are the ones everything uses (:func:`block_shapes`): ``spikeport deploy --target
loihi`` writes them into the script (:meth:`Loihi.emit`), and the Loihi backend builds with them
when spikeport.simulate or validate runs it (:meth:`Loihi.simulator_options`), so the simulated,
the deployed and the counted network are one; nengo-loihi validates every block again when it
builds.

Quantization is nengo-loihi's discretization (``quantization = "loihi"``:
:mod:`spikeport.deploy.quantize_chips`).
"""
from __future__ import annotations

import numpy as np

from ...errors import GraphError
from ...ir.lags import relay_depths
from .generic import Generic

# nengo-loihi constants without a profile key (nengo_loihi/block.py)
INDEX_BITS = (0, 6, 7, 8, 9, 10, 11, 12)   # SynapseConfig.INDEX_BITS_MAP: population weights' index bits
POP_SLOTS = 2                              # Axon.slots_per_axon of pop_type 32, the default for convolutions
OFFSET_MOD = 256                           # axon compartment bases are taken modulo 256 (split_synapse)


class Loihi(Generic):
    """nengo-loihi's blocks (one per core, one population each), its shared-weight convolutions and
    merged weight lists, the backend's relay populations; ``block_shape`` and ``ensemble_shape`` per
    population as the settings; the nengo-loihi script as the artifact."""

    name = "loihi"
    backend = "nengo-loihi"
    one_population_per_core = True
    shares_lists = True
    whole_block_axons = True
    pixel_axon_slots = POP_SLOTS

    def shared_weight_conv(self, form, ops, pre) -> bool:
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

    def shared_weight_stats(self, conv, sl, memory):
        """nengo-loihi's shared-weight convolution: pixels as axons, weight lists per distinct key."""
        bf, br, bc = sl.bounds
        rows, cols = conv.ax[0].rows(br), conv.ax[1].rows(bc)
        kh, kw = conv.mask.shape[2:]
        if sl.n_cores > 1:
            # split_synapse merges lists of equal weight values (a folded pooling repeats them)
            (vr, vw), (vc, vcw) = _value_codes_of(conv)
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
                if nr * nc <= OFFSET_MOD:
                    ur, uc = np.unique(rcode), np.unique(ccode)
                    taps = np.outer(ur % (kh + 1), uc % (kw + 1)).ravel()
                else:
                    nq = (nr * nc - 1) // OFFSET_MOD + 1
                    q = (rrel[:, None] * nc + crel[None, :]) // OFFSET_MOD
                    mc = int(ccode.max()) + 1
                    keys = np.unique(((rcode[:, None] * mc + ccode[None, :]) * nq + q).ravel())
                    rc_ = keys // nq
                    taps = ((rc_ // mc) % (kh + 1)) * ((rc_ % mc) % (kw + 1))
                # the largest stored index: last filter, last rows and columns, less the base modulo 256
                rmax, cmax = rrel + rcode % (kh + 1) - 1, crel + ccode % (kw + 1) - 1
                spread = (rmax[:, None] * nc + cmax[None, :]
                          - (rrel[:, None] * nc + crel[None, :]) % OFFSET_MOD).max(initial=0)
                for f, fv in enumerate(fvals):
                    idx = _index_bits(int(spread) + (int(fv) - 1) * nr * nc + 1)
                    table[f, i, j] = memory.bits(conv.c_in * taps * int(fv), extra_bits=idx).sum()
        bits = table[fclass[:, None, None], rclass[None, :, None], cclass[None, None, :]].ravel()
        return axons, bits

    def pool_stats(self, conv, sl, memory):
        """A pooling split by nengo-loihi: presynaptic neurons with the same targets in a block
        (the same channel and window cells) share one weight list (split_synapse keys lists by
        weights and indices; a pooling's weights are all equal)."""
        bf, br, bc = sl.bounds
        rows, cols = conv.ax[0].rows(br), conv.ax[1].rows(bc)
        kh, kw = conv.mask.shape[2:]
        axons = np.diff(bf)[:, None, None] * np.array([len(c) for c, _ in rows])[None, :, None] \
            * np.array([len(c) for c, _ in cols])[None, None, :]
        per_r = [np.unique(r * (kh + 1) + c % (kh + 1)) % (kh + 1) for c, r in rows]     # taps per distinct target set
        per_c = [np.unique(r * (kw + 1) + c % (kw + 1)) % (kw + 1) for c, r in cols]
        table = np.array([[memory.bits(np.outer(a, b)).sum() for b in per_c] for a in per_r]).reshape(len(rows), len(cols))
        bits = np.diff(bf)[:, None, None] * table[None, :, :]
        return axons.ravel(), bits.ravel()

    def relays(self, network, analog: bool) -> tuple:
        """({source population: relays}, {projection: relays it comes through}), as the Loihi backend
        pads every path into a population to its lag (:func:`spikeport.ir.lags.relay_depths`, the
        backend's relay plan: projection p leaves from relay ``depth[p]`` of its source, relays chained
        from the source); none for a network with cycles, which that backend cannot run."""
        from ...backends.common import lags

        try:
            lag = lags(network)
        except GraphError:
            return {}, {}
        depth = relay_depths(network, lag, analog)
        out = {}
        for p in network.projections:
            if depth.get(p.name, 0) > 0:
                out[p.pre] = max(out.get(p.pre, 0), depth[p.name])
        return {name: out[name] for name in [q.name for q in network.populations] if name in out}, depth

    def settings(self, slicings: dict) -> dict:
        return {"block_shape": {name: [int(b) for b in sl.block] for name, sl in slicings.items()},
                "ensemble_shape": {name: [int(d) for d in sl.dims] for name, sl in slicings.items()}}

    def notes(self) -> list:
        return ["nengo-loihi counting: blocks (one per core) as nengo-loihi counts them, the Loihi backend's "
                "relay populations (<population>~relay<k>, for delays and unequal paths) included"]

    def simulator_options(self, network, options: dict) -> dict:
        """The nengo-loihi backend's options with the partitioner's ``block_shapes`` added, unless
        the caller set ``block_shapes``, ``block_size`` or a ``conv`` other than the default."""
        if any(k in options for k in ("block_shapes", "block_size")) or options.get("conv", "transform") != "transform":
            return options
        return {**options, "block_shapes": block_shapes(network)}

    def emit(self, dep, out, x, y) -> list:
        """The nengo-loihi script with the partition's block shapes (:mod:`spikeport.deploy.emit_loihi`)."""
        from ..emit_loihi import write_loihi

        return write_loihi(dep.network, out, x=x, labels=y, steps=dep.steps,
                           block_shapes=dep.partition.vendor.get("block_shape"))


def block_shapes(network, given: dict | None = None) -> dict:
    """{population or relay ``<population>~relay<k>``: block dims} on Loihi: the partition's
    (the profile ``loihi``), with the ``given`` shapes kept; what the backend and the script build."""
    from ...hardware_profiles import load
    from ..partition import partition

    return dict(partition(network, load("loihi"), block_shapes=given).vendor["block_shape"])


def _value_codes_of(conv):
    """The value codes of a shared-weight convolution's kernel along rows and columns (cached)."""
    if conv.value_codes is None:
        sh, sw = conv.stride
        conv.value_codes = (_value_codes(conv.kernel, 2, sh), _value_codes(conv.kernel, 3, sw))
    return conv.value_codes


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


def _classes(signatures: list):
    """(class of each item, first item of each class) for hashable signatures."""
    seen, cls, first = {}, [], []
    for i, s in enumerate(signatures):
        if s not in seen:
            seen[s] = len(first)
            first.append(i)
        cls.append(seen[s])
    return np.array(cls, np.int64), first


def _index_bits(n_values: int) -> int:
    """nengo-loihi's index width for indices 0 .. n_values - 1 (Synapse.idx_bits)."""
    need = (max(n_values, 1) - 1).bit_length()
    return next((b for b in INDEX_BITS if b >= need), INDEX_BITS[-1])
