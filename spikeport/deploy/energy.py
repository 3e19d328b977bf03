"""Energy and power of one inference: on a neuromorphic chip, and of the same network as an ANN.

On a chip (:func:`estimate`), from the counts of a measured run (an
:class:`~spikeport.backends.activity.Activity`), per layer and in total::

    dynamic = synops x E_synop + neuron updates x E_update + spikes x E_route
    static  = sum over layers of cores x P_core x t_inf  +  chips x P_chip x t_inf
    t_inf   = steps x dt_chip                (the chip runs one network step per dt_chip, in real time)
    energy per inference = dynamic + static;  inferences/s = 1 / t_inf;  power = energy x inferences/s

with the coefficients of the chip's hardware profile (``energy.synop_j``,
``energy.neuron_update_j``, ``energy.spike_j``, ``energy.static_core_w``,
``energy.static_chip_w``, ``time.dt_s``). Static power is never left out: an
idle chip still draws it for the whole time an inference takes, so a slow
network pays for every step (peers that count only events report a chip as
cheaper than it is). A coefficient that the profile marks unknown (or lacks) is
never invented: every term that needs it is null, its key is listed under
``unknown`` and ``complete`` is false; the sums are then over the known terms
only, so they are lower bounds, and say so. A term whose count is zero costs
exactly zero whatever its coefficient.

As an ANN (:func:`ann_macs`, :func:`baseline`): the multiply-accumulates of one
pass of the same network, counted from the ops' shapes (never materialized),
times ``energy.mac_j`` of a conventional profile (cpu, gpu), plus that device's
static power over the time of one pass.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import SpikeportError

DYNAMIC_TERMS = (("synops", "energy.synop_j", "synop_energy_j"),
                 ("neuron_updates", "energy.neuron_update_j", "update_energy_j"),
                 ("spikes", "energy.spike_j", "route_energy_j"))


class _Coefficients:
    """Looks up profile coefficients and remembers which were used (sources) or missing (unknown)."""

    def __init__(self, profile):
        self.profile = profile
        self.sources = {}
        self.unknown = {}

    def get(self, key: str, needed: bool = True):
        """The value at ``key``, or None where the profile does not know it (recorded when ``needed``)."""
        q = self.profile.quantity(key)
        if q is not None and q.known:
            self.sources[key] = q.source
            return float(q.value)
        if needed:
            self.unknown[key] = q.unknown if q is not None else "not given in the profile"
        return None

    def term(self, count, key: str):
        """count x coefficient; exactly 0 for a zero count; None where the coefficient is unknown."""
        if count == 0:
            self.get(key, needed=False)
            return 0.0
        c = self.get(key)
        return None if c is None else count * c


def _sum(values) -> float:
    """The sum of the known values (None are unknown terms, left out)."""
    return float(sum(v for v in values if v is not None))


def _mean(a, what: str) -> float:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"activity {what}: expected one count per sample, got shape {a.shape}")
    return float(a.mean())


def _check_activity(network, activity) -> None:
    if not isinstance(activity.steps, (int, np.integer)) or isinstance(activity.steps, bool) or activity.steps < 1:
        raise ValueError(f"activity.steps must be a positive integer, got {activity.steps!r}")
    for pop in network.populations:
        n = activity.neurons.get(pop.name)
        if n is not None and int(n) != pop.size:
            raise ValueError(f"activity has {n} neurons for population {pop.name!r}, the network {pop.size}: "
                             f"the activity is of another network")
        if pop.is_input:
            continue
        for what in ("population_spikes", "synops"):
            if pop.name not in getattr(activity, what):
                raise ValueError(f"activity.{what} has no entry for population {pop.name!r}: "
                                 f"the activity is of another network")


def _check_cores(network, cores, needed: bool) -> dict | None:
    names = {p.name for p in network.populations}
    if cores is None:
        if needed:
            raise ValueError("estimate: cores={population: cores used} is required (from the partitioner) "
                             "when the profile gives energy.static_core_w")
        return None
    unknown = sorted(set(cores) - names)
    if unknown:
        raise ValueError(f"estimate: cores names populations the network does not have: {unknown}")
    out = {}
    for p in network.populations:
        c = cores.get(p.name, 0 if p.is_input else None)
        if c is None:
            raise ValueError(f"estimate: cores has no entry for population {p.name!r}")
        if not isinstance(c, (int, np.integer)) or isinstance(c, bool) or c < 0:
            raise ValueError(f"estimate: cores[{p.name!r}] must be an integer >= 0, got {c!r}")
        out[p.name] = int(c)
    return out


def estimate(network, profile, activity, *, cores=None, chips=None, host_synops=None) -> dict:
    """Energy per inference and average power of ``network`` on the chip of ``profile``.

    Parameters
    ----------
    network : the network as deployed (the chip's formats), the one ``activity`` was measured on
    profile : a neuromorphic :class:`~spikeport.hardware_profiles.Profile`
    activity : counts of a run of the reference executor over the measured samples; every
        count is taken as the mean per sample (one sample = one inference)
    cores : {population name: cores it uses}, from the partitioner. Required when the profile
        gives ``energy.static_core_w``; the input population may be left out (0 cores: its
        spikes come from the host), or given where the chip spends cores on spike sources.
    chips : chips used (default 1)
    host_synops : {population: mean events per inference} of ``activity.synops`` that came from
        an analog input, which chips realize as currents computed by the host (Loihi's bias
        registers, SpiNNaker's ``i_offset``), not as synaptic events: they are taken out of the
        layer's ``synops`` and reported as its ``host_synops``

    The time of one inference is ``activity.steps`` x the chip's time step (the profile's
    ``time.dt_s``), not the network's ``dt_s``: the chip advances one step per its own dt in
    real time, whatever dt the network was converted for. Both are reported
    (``chip_dt_s``, ``network_dt_s``), with a note where they differ.

    Counted per layer (every spiking population, and a spiking input population's spikes):
    ``synops`` (spikes delivered over existing synapses into the layer), ``neuron_updates``
    (neurons x steps: every neuron is updated every step), ``spikes`` (the layer's own
    spikes; each leaves its core, to the next layer or, from the output layer, to the host).

    Returns
    -------
    dict, JSON-serializable: ``energy_per_inference_j``, ``dynamic_j``, ``static_j``,
    ``power_w``, ``inferences_per_s``, ``time_per_inference_s``, ``chip_dt_s``,
    ``network_dt_s``, ``steps``, ``samples``, ``synops``, ``neuron_updates``, ``spikes``,
    ``synop_energy_j``, ``update_energy_j``, ``route_energy_j``, ``core_static_j``,
    ``chip_static_j``, ``cores``, ``chips``, ``layers`` [{``name``, ``input``, ``neurons``,
    ``cores``, ``synops``, ``neuron_updates``, ``spikes``, ``synop_energy_j``,
    ``update_energy_j``, ``route_energy_j``, ``dynamic_j``, ``static_j``, ``energy_j``,
    ``complete``}], ``unknown`` [keys], ``unknown_why`` {key: why}, ``complete``,
    ``sources`` {key: source}, ``notes`` [str]. A term needing an unknown coefficient is
    null; sums are over the known terms (lower bounds where ``complete`` is false).
    """
    if not profile.neuromorphic:
        raise SpikeportError(f"profile {profile.name!r} is a conventional device; its energy is a baseline "
                             f"(spikeport.deploy.energy.baseline), not a chip estimate")
    if chips is None:
        chips = 1
    if not isinstance(chips, (int, np.integer)) or isinstance(chips, bool) or chips < 1:
        raise ValueError(f"estimate: chips must be a positive integer, got {chips!r}")
    chips = int(chips)
    _check_activity(network, activity)
    coef = _Coefficients(profile)
    static_core_w = coef.get("energy.static_core_w", needed=False)
    cores = _check_cores(network, cores, needed=static_core_w is not None)

    steps = int(activity.steps)
    dt_chip = coef.get("time.dt_s")
    t_inf = steps * dt_chip
    notes = []
    if dt_chip != network.dt_s:
        notes.append(f"the chip steps every {dt_chip:g} s, the network was made for dt = {network.dt_s:g} s: "
                     f"one inference of {steps} steps takes {t_inf:g} s on the chip")
    inp = network.population(network.input)
    input_spiking = inp.name in activity.population_spikes
    if not input_spiking:
        notes.append(f"input {inp.name!r} is analog (not spikes): sending its values to the chip is not counted"
                     + ("; its projections reach the chip as currents computed by the host, not as synaptic "
                        "events (host_synops)" if host_synops else ""))

    layers = []
    for pop in network.order():
        if pop.is_input and not input_spiking:
            continue
        host = float((host_synops or {}).get(pop.name, 0.0))
        counts = {"synops": 0.0 if pop.is_input else
                  max(0.0, _mean(activity.synops[pop.name], f"synops[{pop.name!r}]") - host),
                  "neuron_updates": 0 if pop.is_input else pop.size * steps,
                  "spikes": _mean(activity.population_spikes[pop.name], f"population_spikes[{pop.name!r}]")}
        row = {"name": pop.name, "input": pop.is_input, "neurons": pop.size, "host_synops": host,
               "cores": None if cores is None else cores[pop.name], **counts}
        missing = set()
        for count, key, out in DYNAMIC_TERMS:
            row[out] = coef.term(counts[count], key)
            if row[out] is None:
                missing.add(key)
        row["dynamic_j"] = _sum(row[out] for _, _, out in DYNAMIC_TERMS)
        if cores is None:  # the profile has no per-core static figure (checked above): unknown
            row["static_j"] = None
            missing.add("energy.static_core_w")
            coef.unknown.setdefault("energy.static_core_w", _why(profile, "energy.static_core_w"))
        else:
            row["static_j"] = coef.term(cores[pop.name] * t_inf, "energy.static_core_w")
            if row["static_j"] is None:
                missing.add("energy.static_core_w")
        row["energy_j"] = row["dynamic_j"] + (row["static_j"] or 0.0)
        row["complete"] = not missing
        layers.append(row)

    chip_static_j = coef.term(chips * t_inf, "energy.static_chip_w")
    core_static_j = _sum(lay["static_j"] for lay in layers)
    dynamic_j = _sum(lay["dynamic_j"] for lay in layers)
    static_j = core_static_j + (chip_static_j or 0.0)
    energy_j = dynamic_j + static_j
    inferences_per_s = 1.0 / t_inf
    totals = {out: (None if any(lay[out] is None for lay in layers) else _sum(lay[out] for lay in layers))
              for _, _, out in DYNAMIC_TERMS}
    return {
        "energy_per_inference_j": energy_j, "dynamic_j": dynamic_j, "static_j": static_j,
        "power_w": energy_j * inferences_per_s, "inferences_per_s": inferences_per_s,
        "time_per_inference_s": t_inf, "chip_dt_s": dt_chip, "network_dt_s": float(network.dt_s),
        "steps": steps, "samples": len(np.asarray(activity.population_spikes[network.output])),
        "synops": _sum(lay["synops"] for lay in layers),
        "neuron_updates": int(sum(lay["neuron_updates"] for lay in layers)),
        "spikes": _sum(lay["spikes"] for lay in layers),
        **totals,
        "core_static_j": None if any(lay["static_j"] is None for lay in layers) else core_static_j,
        "chip_static_j": chip_static_j,
        "cores": None if cores is None else int(sum(cores.values())), "chips": chips,
        "layers": layers,
        "unknown": sorted(coef.unknown), "unknown_why": dict(sorted(coef.unknown.items())),
        "complete": not coef.unknown, "sources": dict(sorted(coef.sources.items())), "notes": notes,
    }


def _why(profile, key: str) -> str:
    q = profile.quantity(key)
    return q.unknown if q is not None and not q.known else "not given in the profile"


# ---------------------------------------------------------------------------- the ANN baseline

def _op_counts(op, out_shape: tuple) -> tuple:
    """(MACs, adds) of one op applied once, as an ANN layer computes it densely.

    Dense: every weight, zeros included (a GEMM does not skip them). Conv2d: every output
    x (C_in / groups) x kh x kw (padded positions included, as im2col does). Pooling: kh x kw
    accumulations per output, plus one scaling per output for an average. Flatten: nothing.
    """
    kind = op.kind
    if kind == "dense":
        return int(op.weight.shape[0]) * int(op.weight.shape[1]), 0
    if kind == "conv2d":
        kh, kw = op.kernel_shape()
        return math.prod(out_shape) * int(op.weight.shape[1]) * kh * kw, 0
    if kind in ("sumpool2d", "avgpool2d"):
        kh, kw = op.kernel_size
        out = math.prod(out_shape)
        return 0, out * kh * kw + (out if kind == "avgpool2d" else 0)
    if kind == "flatten":
        return 0, 0
    raise ValueError(f"ann_macs: no operation count for op type {kind!r}")


def ann_macs(network) -> dict:
    """Multiply-accumulates and additions of one pass of ``network`` run as an ANN.

    Counted from the ops' shapes (fast on any size; nothing is materialized): see
    :func:`_op_counts`. Besides the ops, one add per neuron for a bias, and one add per
    neuron for every incoming projection beyond the first (residual sums). Activation
    functions (a comparison per neuron) are not counted.

    Returns
    -------
    dict: ``macs``, ``adds`` (totals), ``projections`` [{``name``, ``pre``, ``post``,
    ``macs``, ``adds``}], ``layers`` [{``name``, ``neurons``, ``macs``, ``adds``}] (per
    receiving population: its projections, its bias and its residual sums).
    """
    shapes = {p.name: tuple(p.shape) for p in network.populations}
    projections = []
    per_post = {p.name: [0, 0] for p in network.populations if not p.is_input}
    for proj in network.projections:
        shape, macs, adds = shapes[proj.pre], 0, 0
        for op in proj.ops:
            out = op.out_shape(shape, f"projection {proj.name!r} op {op.kind}")
            m, a = _op_counts(op, out)
            macs, adds, shape = macs + m, adds + a, out
        projections.append({"name": proj.name, "pre": proj.pre, "post": proj.post, "macs": macs, "adds": adds})
        per_post[proj.post][0] += macs
        per_post[proj.post][1] += adds
    layers = []
    for pop in network.populations:
        if pop.is_input:
            continue
        into = sum(1 for proj in network.projections if proj.post == pop.name)
        extra = pop.size * max(0, into - 1) + (pop.size if pop.bias is not None else 0)
        macs, adds = per_post[pop.name][0], per_post[pop.name][1] + extra
        layers.append({"name": pop.name, "neurons": pop.size, "macs": macs, "adds": adds})
    return {"macs": sum(lay["macs"] for lay in layers), "adds": sum(lay["adds"] for lay in layers),
            "projections": projections, "layers": layers}


def baseline(network, profile) -> dict:
    """Energy and power of ``network`` run once as an ANN on the conventional device of ``profile``.

    dynamic = (MACs + adds) x ``energy.mac_j``: an add is charged as a whole MAC, which
    overstates the baseline slightly (a float add costs about a fifth of a MAC, Horowitz
    ISSCC 2014) but never flatters the chip. static = ``energy.static_chip_w`` x
    ``time.dt_s``, where the profile's ``time.dt_s`` states the time of one ANN pass on the
    device (an assumption the profile names); inferences/s = 1 / ``time.dt_s``. The per-core
    static figure is not used: how many cores a pass keeps busy is not modelled.

    Returns
    -------
    dict: ``macs``, ``adds``, ``ops_charged``, ``energy_per_inference_j``, ``dynamic_j``,
    ``static_j``, ``power_w``, ``inferences_per_s``, ``time_per_inference_s``, ``layers``
    [{``name``, ``neurons``, ``macs``, ``adds``, ``dynamic_j``}], ``unknown``,
    ``unknown_why``, ``complete``, ``sources``. A term needing an unknown coefficient is
    null; sums are over the known terms.
    """
    if profile.neuromorphic:
        raise SpikeportError(f"profile {profile.name!r} is a neuromorphic chip; a baseline needs a conventional "
                             f"device (cpu, gpu); use spikeport.deploy.energy.estimate for a chip")
    counts = ann_macs(network)
    coef = _Coefficients(profile)
    dt = coef.get("time.dt_s")
    layers = [{**lay, "dynamic_j": coef.term(lay["macs"] + lay["adds"], "energy.mac_j")} for lay in counts["layers"]]
    ops = counts["macs"] + counts["adds"]
    dynamic_j = coef.term(ops, "energy.mac_j")
    static_j = coef.term(dt, "energy.static_chip_w")
    energy_j = (dynamic_j or 0.0) + (static_j or 0.0)
    return {
        "macs": counts["macs"], "adds": counts["adds"], "ops_charged": ops,
        "energy_per_inference_j": energy_j, "dynamic_j": dynamic_j, "static_j": static_j,
        "power_w": energy_j / dt, "inferences_per_s": 1.0 / dt, "time_per_inference_s": dt,
        "layers": layers, "unknown": sorted(coef.unknown), "unknown_why": dict(sorted(coef.unknown.items())),
        "complete": not coef.unknown, "sources": dict(sorted(coef.sources.items())),
    }
