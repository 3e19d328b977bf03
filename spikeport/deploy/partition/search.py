"""Placing each population on the fewest cores within the limits: :class:`Partitioner`."""
from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from ...errors import SpikeportError
from ...ir import NeuronModel, Population
from .analysis import Analysis
from .forms import IdentityForm
from .limits import KEYS, LIMITS, Limits
from .slicing import Slicing, ceil_div, pixel_sums, prefix, tile_candidates

Edge = namedtuple("Edge", "name pre post s")
RELAY_NEURON = NeuronModel("if", threshold=1.0, reset="zero")


@dataclass
class Placed:
    slicing: Slicing
    counts: dict          # limit -> per-core array (None where not counted)
    synapses: np.ndarray
    binding: str | None


class Partitioner:
    """Every spiking population of ``network`` (and every relay the target adds) placed on cores,
    greedily and last layer first (:meth:`run`): ``placed`` {population: :class:`Placed`}."""

    def __init__(self, network, profile, neurons_per_core, block_shapes):
        self.network = network
        self.t = Limits(profile, neurons_per_core)
        self.plugin = self.t.plugin           # how the target's vendor tool counts
        self.an = Analysis(network, profile)
        self.pops = self.an.pops
        self.block_shapes = dict(block_shapes or {})
        inp = self.pops[network.input]
        self.analog = inp.encoding.kind == "analog"
        # projections that are synapses on the chip (sPyNNaker: an analog input is a current)
        self.on_chip = [p for p in network.projections
                        if not (self.plugin.analog_input_is_current and self.analog and p.pre == inp.name)]
        self.relays, self.relay_depth = self.plugin.relays(network, self.analog)
        self.pops = dict(self.an.pops)
        self.edges = []
        for pre, depth in self.relays.items():
            prev = pre
            for k in range(1, depth + 1):
                name = f"{pre}~relay{k}"
                self.pops[name] = Population(name, self.pops[pre].shape, neuron=RELAY_NEURON)
                self.edges.append(Edge(name, prev, name, IdentityForm(self.pops[pre].size)))
                prev = name
        for p in self.on_chip:
            k = self.relay_depth.get(p.name, 0)
            self.edges.append(Edge(p.name, p.pre if k == 0 else f"{p.pre}~relay{k}", p.post, self.an.structures[p.name]))
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

    def _reachprefix(self, name: str, runs: bool):
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
                whole = self.plugin.whole_block_axons and post.slicing.n_cores == 1
                if s.transform:
                    r = np.ones(pop.shape[1] * pop.shape[2], np.int64) if whole else s.pixel_reach(post.slicing)
                    slots = self.plugin.pixel_axon_slots
                    pixel = slots * r if pixel is None else pixel + slots * r
                else:
                    neuron += 1 if whole else s.reach(post.slicing)
            dims = (pop.size,) if runs else pop.shape
            self._reach[key] = (prefix(neuron, dims), None if pixel is None else pixel.reshape(pop.shape[1:]))
        return self._reach[key]

    def _out_axons(self, name, sl):
        neuron, pixel = self._reachprefix(name, sl.runs)
        out = sl.block_sums(neuron)
        if pixel is not None:
            out = out + pixel_sums(pixel, sl)
        return out

    def evaluate(self, name: str, sl: Slicing) -> Placed:
        t = self.t
        counts = {"neurons": sl.sizes(), "input_axons": None, "synapse_memory": None, "output_axons": None}
        if t.input_axons is not None or t.memory is not None:
            axons = np.zeros(sl.n_cores, np.int64)
            bits = np.zeros(sl.n_cores) if t.memory is not None else None
            for e in self._into(name):
                s = e.s
                a, b = s.stats(sl, t.memory)
                axons += s.n_axons_whole if (self.plugin.whole_block_axons and sl.n_cores == 1) else a
                if bits is not None:
                    bits += b
            counts["input_axons"] = axons if t.input_axons is not None else None
            counts["synapse_memory"] = bits
        if t.output_axons is not None:
            counts["output_axons"] = self._out_axons(name, sl)
        key = (name, sl.dims)
        if key not in self._fan_prefix:
            self._fan_prefix[key] = prefix(self.fan(name, "fan_in"), sl.dims)
        return Placed(sl, counts, sl.block_sums(self._fan_prefix[key]), None)

    def _failure(self, placed: Placed, cap: int):
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

    def place(self, name: str) -> Placed:
        pop = self.pops[name]
        shape, n = pop.shape, pop.size
        cap = self.t.cap
        if name in self.block_shapes:
            sl = Slicing(shape, self.block_shapes[name])
            placed = self.evaluate(name, sl)
            fail = self._failure(placed, self.t.core_neurons)
            if fail:
                raise SpikeportError(_fail_line(name, f"blocks of {_dims(sl.block)}", fail))
            return placed
        if self.t.input_axons is not None and self._into(name):
            need = int(self.fan(name, "axon_fan_in").max(initial=0))
            if need > self.t.input_axons:      # one neuron alone: no cut helps
                raise SpikeportError(_fail_line(name, "one neuron per core", ("input_axons", need, self.t.input_axons)))
        k_lo = ceil_div(n, cap)
        if self.plugin.slices or len(shape) == 1:
            return self._search_runs(name, shape, n, cap, k_lo)
        return self._search_tiles(name, shape, cap, k_lo)

    def _search_runs(self, name, shape, n, cap, k_lo):
        """Fewest equal runs (sPyNNaker: first runs of exactly neurons_per_core, its own slices)."""
        tried = {}

        def ev(b):
            if b not in tried:
                sl = Slicing((n,), (b,))
                p = self.evaluate(name, sl)
                tried[b] = (p, self._failure(p, cap))
            return tried[b]

        first = cap if self.plugin.slices else ceil_div(n, k_lo)
        p, fail = ev(first)
        if not fail:
            return p
        last_fail, k_fail = fail, ceil_div(n, first)
        k = k_fail
        while True:                       # grow until a cut fits
            k = min(n, max(k + 1, 2 * k))
            p, fail = ev(ceil_div(n, k))
            if not fail:
                break
            last_fail, k_fail = fail, k
            if k == n:
                raise SpikeportError(_fail_line(name, "one neuron per core", fail))
        k_ok = k
        while k_ok - k_fail > 1:          # then the fewest cores between
            mid = (k_ok + k_fail) // 2
            p2, fail = ev(ceil_div(n, mid))
            if fail:
                k_fail, last_fail = mid, fail
            else:
                k_ok, p = mid, p2
        p = ev(ceil_div(n, k_ok))[0]
        p.binding = last_fail[0]
        return p

    def _search_tiles(self, name, shape, cap, k_lo):
        """Tiles along the axes, fewest cores first (at equal counts the smaller tiles), as
        nengo-loihi's block plan orders them; a tile that fails rules out every tile containing it."""
        cands = tile_candidates(shape, cap)
        ruled = np.zeros((0, len(shape)), np.int64)
        last_fail = None
        for b in cands:
            if len(ruled) and (b[None, :] >= ruled).all(axis=1).any():
                continue
            p = self.evaluate(name, Slicing(shape, tuple(int(x) for x in b)))
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
                self.placed[name] = self.evaluate(name, Slicing(self.pops[name].shape, self.pops[name].shape))
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


def _dims(block) -> str:
    return "x".join(str(int(b)) for b in block)


def _fail_line(name, at, fail) -> str:
    what, v, limit = fail
    return (f"{name}: fits no core even with {at}: {what.replace('_', ' ')} {int(v)} exceeds the limit {int(limit)} "
            f"({KEYS[what]})")
