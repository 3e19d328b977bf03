"""The partition of a network onto cores and chips: ``partition(network, profile) -> Partition``."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ...errors import SpikeportError
from ...hardware_profiles import Profile
from .limits import LIMITS, Limits
from .search import Partitioner
from .slicing import ceil_div


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


def partition(network, profile: Profile, *, neurons_per_core: int | None = None,
              block_shapes: dict | None = None) -> Partition:
    """Cut every population of ``network`` into cores within ``profile``'s per-core limits,
    and pack the cores onto chips (the package docstring for the counting models, the target
    plug-ins, :mod:`spikeport.deploy.targets`, for what their vendor tools count otherwise).

    neurons_per_core : at most this many neurons per core (default: ``core.neurons``); on
        SpiNNaker the slice size given to sPyNNaker (``ceil(n / neurons_per_core)`` cores per
        population, fewer neurons per core only where another limit needs it)
    block_shapes : {population: block dims} to count as given instead of searching (one entry
        per axis: tiles; one entry: runs of consecutive neurons); a core over a limit raises

    Raises :class:`SpikeportError` (one line: the layer, the limit, the value) where a
    population fits no core or the cores need more chips than ``chip.chips_max``.
    """
    t0 = time.perf_counter()
    part = Partitioner(network, profile, neurons_per_core, block_shapes)
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
            cores, placement = t.plugin.input_placement(part.analog)
            row.update(cores=cores, neurons_per_core=int(pop.size) if cores else 0, block_shape=None,
                       input_axons_max=None, output_axons_max=None, synapse_bits_max=None, utilization={},
                       binding=None, placement=placement)
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
    for name, serves, kind, cores, placement in t.plugin.helper_layers(network, part, placed):
        rows.append({"name": name, "kind": kind, "serves": serves, "neurons": 0, "cores": cores,
                     "neurons_per_core": 0, "block_shape": None, "fan_in_max": None, "fan_out_max": None,
                     "synapses": 0, "input_axons_max": None, "output_axons_max": None, "synapse_bits_max": None,
                     "utilization": {}, "binding": None, "placement": placement})
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
    spiking = [p for p in all_pops if not p.is_input]
    vendor = t.plugin.settings({p.name: placed[p.name].slicing for p in spiking})
    notes = list(t.plugin.notes())
    limits = {"neurons": t.core_neurons, "neurons_per_core": t.cap, "input_axons": t.input_axons,
              "output_axons": t.output_axons, "synapse_memory_bits": None if t.memory is None else t.memory.limit,
              "chip_cores": t.chip_cores, "chip_neurons": t.chip_neurons, "chips_max": t.chips_max}
    table = {"layer": np.asarray(core_layer, np.int64),
             **{k: np.asarray(v, np.float64) for k, v in core_counts.items()}}
    return Partition(target=profile.name, layers=rows, cores=cores, chips=chips, per_core=per_core, vendor=vendor,
                     limits=limits, notes=notes, seconds=time.perf_counter() - t0, core_table=table)


def _pack(core_neurons: np.ndarray, t: Limits) -> int:
    """Chips for the cores in order: next-fit by chip.cores and chip.neurons."""
    n = len(core_neurons)
    if n == 0:
        return 0
    if t.chip_neurons is None:
        return ceil_div(n, t.chip_cores)
    neurons = np.nan_to_num(core_neurons)
    cum = np.concatenate([[0.0], np.cumsum(neurons)])
    chips, i = 0, 0
    while i < n:
        j = min(n, i + t.chip_cores)
        j = max(i + 1, min(j, int(np.searchsorted(cum, cum[i] + t.chip_neurons, "right")) - 1))
        chips, i = chips + 1, j
    return chips
