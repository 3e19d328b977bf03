"""The built Loihi emulator seen through its registers: writes between samples, the
vectorized spike delivery and the overflow tally.

numpy only at import; nengo-loihi's discretization is imported where it is used.
"""
from __future__ import annotations

import numpy as np

V_LIMIT = 2**23 - 1      # Loihi's membrane is a 24-bit signed register


def block_units(sim, ensemble, dt):
    """(blocks, per block the ensemble's neurons in it, membrane units of one threshold per neuron)."""
    blocks = sim.model.objs[ensemble]["out"]
    blocks = blocks if isinstance(blocks, list) else [blocks]
    units = np.empty(ensemble.n_neurons)
    ids = []
    for block in blocks:
        idx = np.asarray(sim.model.block_comp_map.get(block, np.arange(block.n_neurons)))
        info = block.discretize_info           # None on "simreal": float units, threshold 1/dt
        units[idx] = (1.0 if info is None else info["v_scale"]) / dt
        ids.append(idx)
    return blocks, ids, units


def compartments(sim, ensembles, dt):
    """Per ensemble ({name: ensemble}): the emulator's compartment index of each neuron, its
    units of one threshold, and its blocks."""
    slices = sim.sims["emulator"].block_info.slices
    index, units, blocks = {}, {}, {}
    for name, ensemble in ensembles.items():
        blocks[name], ids, units[name] = block_units(sim, ensemble, dt)
        index[name] = np.empty(ensemble.n_neurons, dtype=np.int64)
        for block, idx in zip(blocks[name], ids):
            index[name][idx] = np.arange(slices[block].start, slices[block].stop)
    return index, units, blocks


class Chip:
    """The built emulator, seen through the registers a host writes between samples.

    Per ensemble ({name: ensemble}, populations and relays): the global compartment index of
    every neuron and the integer membrane units of one threshold (``units``: vth_float *
    v_scale of its block, before vth's own rounding), from which biases and membranes convert
    exactly as nengo-loihi's discretization converts them (``builder/discretize.py``).
    ``process``: the spike input (None for an analog input); ``fast``: the vectorized spike
    delivery (:class:`SpikeRouting`); ``overflows``: an :class:`OverflowTally` to attach.
    """

    def __init__(self, sim, ensembles, dt, process=None, fast=True, overflows=None):
        self.sim, self.process, self.ensembles = sim, process, ensembles
        self.emu = sim.sims["emulator"]
        comp = self.emu.compartment
        self.index, self.units, self.blocks = compartments(sim, ensembles, dt)
        self.discrete = comp.voltage.dtype.kind == "i"
        if self.discrete:
            full_voltage_range(comp, self.blocks.values())
        self.vth = {name: comp.vth[index].astype(np.float64) for name, index in self.index.items()}
        self.routing = SpikeRouting(self.emu) if self.discrete and fast else None
        self.overflows = overflows.attach(comp, self.index) if self.discrete and overflows is not None else None

    def bias_int(self, name: str, bias_thresholds: np.ndarray) -> np.ndarray:
        """A bias in thresholds per step as the chip's register value (mantissa * 2**exponent)."""
        if not self.discrete:
            return bias_thresholds * self.units[name]
        from nengo_loihi.builder.discretize import BIAS_MAX, bias_to_manexp

        value = np.clip(np.round(bias_thresholds * self.units[name]), -BIAS_MAX, BIAS_MAX)  # float32 build slack
        man, exp = bias_to_manexp(value)
        return man * 2**exp

    def reset(self):
        """Every compartment's state to zero, no bias, no spike in flight: the state before a sample."""
        if self.process is not None:
            self.process.input.spikes.clear()     # the last steps' input would arrive after the run
        clear_compartments(self.emu.compartment)

    def write(self, name: str, bias=None, voltage=None, current=None):
        """Write a population's bias and/or membrane, or add to its current (all in thresholds)."""
        comp, index = self.emu.compartment, self.index[name]
        if bias is not None:
            comp.bias[index] = self.bias_int(name, bias)
        if current is not None:
            comp.current[index] += self._units(name, current)
        if voltage is not None:
            comp.voltage[index] = np.clip(self._units(name, voltage), -V_LIMIT, V_LIMIT)

    def _units(self, name, thresholds):
        value = thresholds * self.units[name]
        return np.round(value).astype(np.int64) if self.discrete else value

    def queue_input(self, trains: np.ndarray):
        """Input spikes (steps, n): step s's spikes arrive as if sent at chip step s of this sample."""
        spike_input, t0 = self.process.input, self.emu.t
        for s in range(len(trains)):
            idx = np.flatnonzero(trains[s])
            if idx.size:
                spike_input.add_spikes(t0 + s + 1, idx)


class OverflowTally:
    """Where the emulator's registers wrap: counts per (population, register) and the samples hit.

    :meth:`attach` replaces an emulator's own check (the same ``overflow_signed`` wrap and the
    same warning) with one that also records which compartments wrapped, so a run can name the
    layer; one tally may follow several emulators (a build per sample). Registers: q0 the
    21-bit input of one step, current and u2 (current plus bias) 23 bits.
    """

    BITS = {"q0": "21-bit input", "current": "23-bit current", "u2": "23-bit current + bias"}

    def __init__(self):
        self.counts, self.samples_hit, self._hit = {}, 0, False

    def attach(self, comp, index: dict):
        """Tally ``comp``'s overflows by population (``index``: {population: compartment indices})."""
        from nengo_loihi.builder.discretize import overflow_signed

        names = list(index) + ["(other)"]
        owner = np.full(len(comp.voltage), len(index), dtype=np.int64)
        for k, idx in enumerate(index.values()):
            owner[idx] = k

        def overflow(x, bits, name=None):
            _, wrapped = overflow_signed(x, bits=bits, out=x)
            if wrapped.any():
                for k, c in zip(*np.unique(owner[wrapped], return_counts=True)):
                    key = (names[k], name)
                    self.counts[key] = self.counts.get(key, 0) + int(c)
                self._hit = True
                comp.error("Overflow" + (" in %s" % name if name else ""))

        comp._overflow = overflow
        return self

    def end_sample(self):
        self.samples_hit += self._hit
        self._hit = False

    def total(self) -> int:
        return sum(self.counts.values())

    def note(self, samples: int):
        """One line naming where values wrapped, or None where none did."""
        if not self.counts:
            return None
        parts = ", ".join("%s %s %d" % (pop, self.BITS.get(reg, reg), c) for (pop, reg), c in
                          sorted(self.counts.items(), key=lambda kv: -kv[1]))
        return ("overflow: %d register values wrapped around as on the chip (%s), in %d of %d samples "
                "(a wrapped value is that step's input or current of that neuron)"
                % (self.total(), parts, self.samples_hit, samples))


def clear_compartments(comp) -> None:
    """Every compartment's input, current, membrane, spike, refractory count and bias to zero."""
    comp.input[:] = 0
    comp.current[:] = 0
    comp.voltage[:] = 0
    comp.spiked[:] = False
    comp.ref_count[:] = 0
    comp.bias[:] = 0


def full_voltage_range(comp, block_lists) -> None:
    """Give the emulator's membranes the chip's full 24-bit range below zero (nengo-loihi rounds
    vmin to a power of two)."""
    comp.vmin[:] = -V_LIMIT
    comp.vmax[:] = np.minimum(comp.vmax, V_LIMIT)
    for blocks in block_lists:
        for block in blocks:
            block.compartment.vmin = -V_LIMIT


def ranges(starts: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """Concatenated aranges [starts[k], starts[k] + lens[k])."""
    ends = np.cumsum(lens)
    return np.repeat(starts - ends + lens, lens) + np.arange(int(ends[-1]) if lens.size else 0)


class SpikeRouting:
    """Spike delivery of the emulator's discrete target in a few numpy operations per step.

    nengo-loihi's emulator delivers spikes one at a time in Python (``SynapseState``: a
    ``Spike`` object per spike and target synapse, then that axon's weights added to the input
    of its compartments); its speed against this one on LeNet: bench/RESULTS.md
    ("Backends on MNIST LeNet"). This computes the same sums: for every (axon, source
    compartment) the weight row (axon's weights for the compartment's atom) and the
    compartment base are tabled once; each step the rows of the spiking compartments and of
    the input spikes are gathered and added with one ``bincount``. Integer weights: the sums
    do not depend on the order, so the result is the emulator's own, bit for bit (on "simreal"
    float32 sums would depend on it; there nengo-loihi's own loop runs). No learning rules.
    """

    def __init__(self, emu):
        syn_state, n = emu.synapses, emu.block_info.n_compartments
        weights, indices, ptr, row0, n_atoms = [], [], [0], {}, {}
        for syn, sl in syn_state.items():
            assert not syn.learning, "spike routing without learning only"
            row0[syn], n_atoms[syn] = len(ptr) - 1, syn.weights[0].shape[0]
            for w, i in zip(syn.weights, syn.indices):
                for atom in range(w.shape[0]):
                    weights.append(np.asarray(w[atom], np.float64))
                    indices.append(np.asarray(i[atom], np.int64))
                    ptr.append(ptr[-1] + w.shape[1])
        self.weights = np.concatenate(weights or [np.zeros(0)])
        self.indices = np.concatenate(indices or [np.zeros(0, np.int64)])
        self.ptr = np.asarray(ptr, np.int64)
        self.n, self.slices = n, syn_state.slices
        self.row0, self.n_atoms = row0, n_atoms
        self.blocks = self._table([(axon, sl.start, sl.stop - sl.start) for axon, sl in emu.axons.items()], n)
        self.inputs = {id(inp): self._table([(axon, 0, inp.n_neurons) for axon in inp.axons], inp.n_neurons)
                       for inp in emu.inputs}
        self.q = None
        emu.synapses.inject_current = self.inject_current
        emu.synapses.update_input = self.update_input

    def _table(self, axons, n_sources):
        """Per source compartment (CSR): the weight row and the target base of each of its axons."""
        src, rows, bases = [], [], []
        for axon, offset, n_local in axons:
            syn = axon.target
            local = np.arange(n_local)
            ids = np.asarray(axon.map_axon(local), np.int64)
            atoms = np.asarray(axon.map_atoms(local), np.int64)
            keep = ids >= 0
            if syn.axon_compartment_bases is not None:
                keep &= np.where(keep, np.asarray(syn.axon_compartment_bases)[np.maximum(ids, 0)], -1) >= 0
            local, ids, atoms = local[keep], ids[keep], atoms[keep]
            wi = ids if syn.axon_to_weight_map is None else np.asarray(syn.axon_to_weight_map)[ids]
            base = 0 if syn.axon_compartment_bases is None else np.asarray(syn.axon_compartment_bases)[ids]
            src.append(offset + local)
            rows.append(self.row0[syn] + wi * self.n_atoms[syn] + atoms)
            bases.append(self.slices[syn].start + base + np.zeros_like(ids))
        src = np.concatenate(src or [np.zeros(0, np.int64)])
        order = np.argsort(src, kind="stable")
        ptr = np.concatenate([[0], np.cumsum(np.bincount(src, minlength=n_sources))])
        return (ptr, np.concatenate(rows or [np.zeros(0, np.int64)])[order],
                np.concatenate(bases or [np.zeros(0, np.int64)])[order])

    @staticmethod
    def _entries(table, sources):
        ptr, rows, bases = table
        k = ranges(ptr[sources], ptr[sources + 1] - ptr[sources])
        return rows[k], bases[k]

    def inject_current(self, t, spike_inputs, all_axons, spiked):
        parts = [self._entries(self.blocks, np.flatnonzero(spiked))]
        if t >= 2:  # input spikes take one step to arrive (as nengo-loihi's inject_current)
            for inp in spike_inputs:
                idx = np.asarray(inp.spike_idxs(t - 1), np.int64)
                if idx.size:
                    parts.append(self._entries(self.inputs[id(inp)], idx))
        rows = np.concatenate([r for r, _ in parts])
        bases = np.concatenate([b for _, b in parts])
        starts = self.ptr[rows]
        lens = self.ptr[rows + 1] - starts
        k = ranges(starts, lens)
        self.q = np.bincount(np.repeat(bases, lens) + self.indices[k], weights=self.weights[k], minlength=self.n)

    def update_input(self, input):
        input[0] += np.rint(self.q).astype(input.dtype)
