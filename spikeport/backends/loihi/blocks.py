"""Block shapes (one block per Loihi core) chosen before building, by counting.

nengo-loihi's own split cuts a population into runs of consecutive neurons sized by its
totals, which fails on LeNet (a run of conv2 covering two output rows needs 5760 input
axons, a core has 4096). :class:`BlockPlan` chooses each population's block shape instead:
last layer first, the shape with the fewest blocks (tiles along channels, rows, columns, or
runs of neurons) for which every block's compartments, input axons, synapse memory and the
output axons it adds to the blocks feeding it are counted within a core's limits.
"""
from __future__ import annotations

import itertools
import time
import warnings
from collections import OrderedDict

import nengo_loihi
import numpy as np
from nengo_loihi.block import MAX_COMPARTMENTS, MAX_IN_AXONS, MAX_OUT_AXONS, MAX_SYNAPSE_BITS
from nengo_loihi.block import Synapse as LoihiSynapse
from nengo_loihi.builder import Model as LoihiModel
from nengo_loihi.builder.builder import ValidationLevel

from ...errors import SpikeportError

def block_indices(ens_shape: tuple, shape: tuple) -> list:
    """The compartments of each block of ``BlockShape(shape, ens_shape)``, in nengo-loihi's order."""
    full = np.arange(int(np.prod(ens_shape))).reshape(ens_shape)
    return [full[tuple(slice(i, min(i + b, n)) for i, b, n in zip(start, shape, ens_shape))].ravel()
            for start in itertools.product(*(range(0, n, b) for n, b in zip(ens_shape, shape)))]


def candidate_shapes(shape: tuple) -> list:
    """[(ensemble shape, block shape)] of at most 1024 compartments, fewest blocks first: tiles
    along the population's own axes (channels, rows, columns; at equal counts the smallest
    tiles), then runs of consecutive neurons."""
    n = int(np.prod(shape))
    out = []
    for b in itertools.product(*(sorted({-(-d // k) for k in range(1, d + 1)}) for d in shape)):
        if np.prod(b) <= MAX_COMPARTMENTS:
            out.append((int(np.prod([-(-d // s) for d, s in zip(shape, b)])), 0, int(np.prod(b)), tuple(shape), b))
    if len(shape) > 1:
        for b in {-(-n // k) for k in range(-(-n // MAX_COMPARTMENTS), n + 1)}:
            out.append((-(-n // b), 1, b, (n,), (b,)))
    return [(ens, b) for *_, ens, b in sorted(out)]


def shape_str(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


class BlockPlan:
    """Block shapes chosen before building, by counting what each block of a candidate needs.

    The nengo model is built once without splitting (every ensemble one block, nothing
    validated). Then, last layer first, each ensemble gets the candidate shape with the fewest
    blocks (:func:`candidate_shapes`) for which every block fits a core as nengo-loihi counts it:
    at most 1024 compartments; input axons (per connection the presynaptic neurons, for a
    convolution the presynaptic pixels, that reach the block) at most 4096; synapse memory
    (what nengo-loihi's ``split_synapse`` builds for the block, :meth:`_synapse_bits`) at most
    2**20 bits; output axons (one per neuron per block of each target that it reaches, two
    for 32-bit population axons) at most 4096, with the targets' shapes already chosen. A
    shape whose first block does not fit rules out every shape that contains that block
    (a larger block reaches at least the same axons; for synapse memory this is assumed, and
    can only cost a block, never a block that does not fit). nengo-loihi validates the result
    again when it builds. The chosen shapes are set as each ensemble's ``block_shape``;
    ``shapes`` {name: (ensemble shape, block shape, blocks)}; :meth:`note` says what was chosen,
    how many shapes were counted and in how long (LeNet's: bench/RESULTS.md, "Backends on
    MNIST LeNet").
    """

    def __init__(self, lowered):
        self.t0 = time.perf_counter()
        net, config = lowered.network, lowered.net.config
        ens_shape = OrderedDict((ens, net.population(name).shape) for name, ens in lowered.ens.items())
        names = {ens: name for name, ens in lowered.ens.items()}
        for (name, depth), ens in lowered.relay_ens.items():
            ens_shape[ens], names[ens] = net.population(name).shape, f"{name}~relay{depth}"
        for ens, shape in ens_shape.items():
            config[ens].block_shape = nengo_loihi.BlockShape(tuple(shape), tuple(shape))
        model = LoihiModel(dt=net.dt_s, label="spikeport block plan")
        model.validation_level = ValidationLevel.NONE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.build(lowered.net, discretize=False)
        # (nengo-loihi's split ran, with one block per ensemble: each is its list of one block)
        block_of = {ens: (lambda out: out[0] if isinstance(out, list) else out)(model.objs[ens]["out"])
                    for ens in ens_shape}
        owner = {id(syn): block for block in model.blocks for syn in block.synapses}
        self.targets = {}          # id(synapse): (axon ids, compartments) of every used synapse entry
        self.axon_weights = {}     # id(synapse): see _axon_weights
        self.post_masks = {}       # id(synapse): (blocks of its owner, axons) reached, None: one block
        self.tried, self.shapes = 0, OrderedDict()
        chosen = {}
        for ens in self._posts_first(list(ens_shape), block_of, owner):
            name, block = names[ens], block_of[ens]
            chosen[ens] = self._choose(name, block, ens_shape[ens])
            ens_full, shape, blocks = chosen[ens]
            self.shapes[name] = (tuple(ens_full), tuple(shape), len(blocks))
        for ens, (ens_full, shape, _) in chosen.items():
            config[ens].block_shape = nengo_loihi.BlockShape(tuple(int(d) for d in shape),
                                                            tuple(int(d) for d in ens_full))
        self.seconds = time.perf_counter() - self.t0
        self.shapes = OrderedDict((names[e], self.shapes[names[e]]) for e in ens_shape)
        self.natural = {names[e]: tuple(shape) for e, shape in ens_shape.items()}

    @staticmethod
    def _posts_first(ensembles, block_of, owner) -> list:
        """Ensembles ordered so that every target of an ensemble's axons comes before it."""
        ens_of = {id(block): ens for ens, block in block_of.items()}
        order, seen = [], set()

        def visit(ens):
            if ens in seen:
                return
            seen.add(ens)
            for axon in block_of[ens].axons:
                post = owner.get(id(axon.target))
                if post is not None and id(post) in ens_of:
                    visit(ens_of[id(post)])
            order.append(ens)

        for ens in ensembles:
            visit(ens)
        return order

    def _synapse_targets(self, syn):
        if id(syn) not in self.targets:
            axons, comps = [], []
            for a in range(syn.n_axons):
                base = syn.axon_compartment_base(a)
                if base is None:
                    continue
                idx = base + np.asarray(syn.indices[syn.axon_weight_idx(a)][0], dtype=np.int64)
                axons.append(np.full(idx.size, a, dtype=np.int64))
                comps.append(idx)
            self.targets[id(syn)] = (np.concatenate(axons or [np.zeros(0, np.int64)]),
                                     np.concatenate(comps or [np.zeros(0, np.int64)]))
        return self.targets[id(syn)]

    def _reached(self, syn, label: np.ndarray, n_blocks: int) -> np.ndarray:
        """(blocks, axons) bool: which of the synapse's axons reach which block."""
        axons, comps = self._synapse_targets(syn)
        reached = np.zeros((n_blocks, syn.n_axons), bool)
        reached[label[comps], axons] = True
        return reached

    def _out_axons(self, block, ids: np.ndarray) -> int:
        """Output axons of the compartments ``ids`` of ``block``, its targets split as chosen."""
        total = 0
        for axon in block.axons:
            idx = np.asarray(axon.map_axon(ids))
            used = np.unique(idx[idx >= 0])
            masks = self.post_masks.get(id(axon.target))
            total += axon.slots_per_axon * (used.size if masks is None else int(masks[:, used].sum()))
        return total

    def _axon_weights(self, syn):
        """[(weight index, its canonical id, target compartments)] of every used axon of ``syn``."""
        if id(syn) not in self.axon_weights:
            canon = {}
            ids = [canon.setdefault((w.shape, w.tobytes()), len(canon)) for w in syn.weights]
            rows = []
            for a in range(syn.n_axons):
                base = syn.axon_compartment_base(a)
                if base is not None:
                    wi = syn.axon_weight_idx(a)
                    rows.append((wi, ids[wi], base + np.asarray(syn.indices[wi][0], dtype=np.int64)))
            self.axon_weights[id(syn)] = rows
        return self.axon_weights[id(syn)]

    def _synapse_bits(self, block, ids: np.ndarray) -> int:
        """Synapse memory bits of the block holding compartments ``ids`` of ``block``.

        What nengo-loihi's ``split_synapse`` builds for that block (each axon's weights
        restricted to the block, indices renumbered, a population axon's base taken modulo
        256), counted by nengo-loihi's own ``Synapse.bits``; weights are shared where they come
        from equal weight rows with equal restriction and indices (nengo-loihi shares where the
        values are equal: never more bits than it uses).
        """
        inside = np.zeros(block.n_neurons, bool)
        inside[ids] = True
        pos = np.full(block.n_neurons, -1, np.int64)
        pos[ids] = np.arange(len(ids))
        bits = 0
        for syn in block.synapses:
            shared = syn.axon_to_weight_map is not None
            seen, weights, indices = set(), [], []
            for wi, canon, comps in self._axon_weights(syn):
                valid = inside[comps]
                if not valid.any():
                    continue
                new = pos[comps[valid]]
                if shared:
                    new = new - new[np.argmin(comps[valid])] % 256
                key = (canon, np.packbits(valid).tobytes(), new.tobytes())
                if key not in seen:
                    seen.add(key)
                    w = syn.weights[wi][:, valid]
                    weights.append(w)
                    indices.append(np.tile(new, (w.shape[0], 1)))
            if weights:
                part = LoihiSynapse(len(weights))
                part._set_weights_indices(weights, indices, weight_dtype=weights[0].dtype,
                                          compression=syn.synapse_cfg.compression)
                bits += part.bits()
        return bits

    def _choose(self, name, block, shape):
        ruled_out = []
        why = "no candidate"
        for ens_full, b in candidate_shapes(shape):
            if any(len(r) == len(b) and all(x >= y for x, y in zip(b, r)) for r in ruled_out):
                continue
            self.tried += 1
            blocks = block_indices(ens_full, b)
            label = np.empty(block.n_neurons, np.int64)
            for k, ids in enumerate(blocks):
                label[ids] = k
            reached = [self._reached(syn, label, len(blocks)) for syn in block.synapses]
            whole = len(blocks) == 1
            ok = True
            for k, ids in enumerate(blocks):
                out_axons = self._out_axons(block, ids)
                if whole:
                    in_axons = sum(s.n_axons for s in block.synapses)
                else:
                    in_axons = sum(int(r[k].sum()) for r in reached)
                bits = None
                if out_axons <= MAX_OUT_AXONS and in_axons <= MAX_IN_AXONS:
                    bits = sum(s.bits() for s in block.synapses) if whole else self._synapse_bits(block, ids)
                for what, used, limit in (("output axons", out_axons, MAX_OUT_AXONS),
                                          ("input axons", in_axons, MAX_IN_AXONS),
                                          ("synapse bits", bits, MAX_SYNAPSE_BITS)):
                    if used is not None and used > limit:
                        ok = False
                        why = f"blocks of {shape_str(b)}: {what} {used} > {limit}"
                        break
                if not ok:
                    if k == 0:
                        ruled_out.append(b)
                    break
            if ok:
                for syn, r in zip(block.synapses, reached):
                    self.post_masks[id(syn)] = None if whole else r
                return ens_full, b, blocks
        raise SpikeportError(f"nengo-loihi cannot map this network: population {name} fits no core even in "
                             f"the smallest blocks ({why})")

    def note(self) -> str:
        return ("blocks: shapes chosen before building, last layer first, each population in the fewest blocks "
                "that fit a core as nengo-loihi counts them (compartments; input axons: the presynaptic neurons, "
                "or pixels of a convolution, that reach the block; synapse memory from nengo-loihi's own split; "
                "the output axons its inputs' blocks then need): "
                + "; ".join(f"{name} {n} x {shape_str(b)}"
                            + (" consecutive" if len(b) < len(self.natural[name]) else "")
                            for name, (e, b, n) in self.shapes.items())
                + f" ({self.tried} shapes counted in {self.seconds:.1f} s)")

