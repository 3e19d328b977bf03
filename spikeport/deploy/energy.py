"""Energy, power and speed of one inference: on a neuromorphic chip, and of the same network as an ANN.

On a chip (:func:`estimate`), from the counts of a measured run (an
:class:`~spikeport.backends.activity.Activity`), per layer and in total::

    time per step   (the chip's time model, :func:`step_time`, by the profile's ``timing``)
      barrier   (Loihi, Loihi 2): the busiest core's work of the step + the barrier (time.sync_s)
                + the host link's round trip where the host streams input spikes every step
                (time.host_step_s) + the input's transfer;
                --realtime: never faster than the network's dt (an application paced by its sensor)
      realtime  (SpiNNaker, TrueNorth), clocked (Xylo), event (Speck, paced by its sensor):
                the chip's tick time.dt_s; a step whose busiest core needs longer than the tick
                runs late (reported, and the step is that long)
      a core's work = (synops x time.synop_s + neuron updates x time.neuron_s + spikes x time.spike_s
                       + messages received x time.message_s) / the layer's cores, per step
    latency = steps x step;  inferences/s = 1 / latency   (one inference after another, batch 1)

    dynamic = synops x E_synop + neuron updates x E_update + spikes x E_route
              + steps x chips x energy.step_j               (barrier and per-step runtime work)
              + chips x energy.runtime_chip_w x latency     (management cores while running, counted
                                                              as dynamic, as measurements count them)
              + input events x io.input_spike_j  or  input values x io.input_value_j   (the input)
    static  = (cores x P_core + chips x P_chip) x latency   (P_chip: measured idle power where published)
    host    = the work done off the chip (an analog input's first projection, computed on the host
              as currents): its MACs priced as the cpu profile prices them; reported apart, not in
              the chip's total

with the coefficients of the chip's hardware profile. Static power is never left out: an
idle chip still draws it for the whole time an inference takes, so a slow network pays
for every step. A coefficient that the profile marks unknown (or lacks) is never
invented: every term that needs it is null, its key is listed under ``unknown`` and
``complete`` is false; the sums are then over the known terms only, so they are lower
bounds, and say so. A term whose count is zero costs exactly zero whatever its coefficient.
A coefficient with a range (``low``, ``high`` in the profile) gives the result a band: the
whole estimate is priced again with every coefficient at its low end and at its high end.

As an ANN: :mod:`spikeport.deploy.ann_baseline`.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpikeportError

DYNAMIC_TERMS = (("synops", "energy.synop_j", "synop_energy_j"),
                 ("neuron_updates", "energy.neuron_update_j", "update_energy_j"),
                 ("spikes", "energy.spike_j", "route_energy_j"))
# core time per event of a layer: (count, profile key)
CORE_TIME_TERMS = (("synops", "time.synop_s"), ("neuron_updates", "time.neuron_s"), ("spikes", "time.spike_s"))
# the keys of an estimate that get a low-high band where coefficients have ranges
BANDED = ("energy_per_inference_j", "dynamic_j", "static_j", "static_w", "power_w", "inferences_per_s",
          "time_per_inference_s", "step_s")
CORNERS = ("value", "low", "high")

class Coefficients:
    """Looks up profile coefficients at one corner of their ranges ("value", "low" or "high") and
    remembers which were used (sources) or missing (unknown)."""

    def __init__(self, profile, corner: str = "value"):
        self.profile = profile
        self.corner = corner
        self.sources = {}
        self.unknown = {}

    def get(self, key: str, needed: bool = True):
        """The value at ``key``, or None where the profile does not know it (recorded when ``needed``)."""
        q = self.profile.quantity(key)
        if q is not None and q.known:
            self.sources[key] = q.source
            return float(q.at(self.corner))
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


def _layer_counts(network, activity, host_synops) -> list:
    """Per layer, the mean counts per inference the estimate prices (the input layer only where it spikes)."""
    steps = int(activity.steps)
    inp = network.population(network.input)
    input_spiking = inp.name in activity.population_spikes
    spikes = {name: _mean(v, f"population_spikes[{name!r}]") for name, v in activity.population_spikes.items()}
    layers = []
    for pop in network.order():
        if pop.is_input and not input_spiking:
            continue
        host = float((host_synops or {}).get(pop.name, 0.0))
        # spike messages a layer receives: every spike of every population that projects into it
        messages = 0.0 if pop.is_input else sum(spikes.get(pr.pre, 0.0) for pr in network.projections
                                                if pr.post == pop.name)
        layers.append({"name": pop.name, "input": pop.is_input, "neurons": pop.size, "host_synops": host,
                       "synops": 0.0 if pop.is_input else
                       max(0.0, _mean(activity.synops[pop.name], f"synops[{pop.name!r}]") - host),
                       "neuron_updates": 0 if pop.is_input else pop.size * steps,
                       "spikes": spikes[pop.name], "messages": messages})
    return layers


def _input_traffic(network, activity, layers, host_synops) -> dict:
    """What the input brings onto the chip per inference: spikes (a spiking input), or values written
    (an analog input: one current per neuron its projections reach, written once per inference, the
    input being constant over the steps) and the MACs the host computes them with."""
    inp = network.population(network.input)
    if inp.name in activity.population_spikes:
        return {"kind": "spikes", "spikes": next(lay["spikes"] for lay in layers if lay["input"]),
                "values": 0, "host_macs": 0.0}
    targets = {pr.post for pr in network.projections if pr.pre == inp.name}
    values = sum(network.population(t).size for t in targets)
    # the host computes each target's currents once: its events per delivered step
    delivered = {}
    for pr in network.projections:
        if pr.pre == inp.name:
            delivered[pr.post] = max(delivered.get(pr.post, 1), int(activity.steps) - pr.delay_steps)
    macs = sum(float((host_synops or {}).get(post, 0.0)) / d for post, d in delivered.items())
    return {"kind": "values", "spikes": 0.0, "values": values, "host_macs": macs}


def step_time(profile, layers, steps: int, *, cores, traffic, network_dt_s, realtime, coef) -> dict:
    """The chip's time per step from the per-layer counts of one inference (see the module docstring),
    with the coefficients at ``coef``'s corner; on a barrier chip the unknown ones are recorded in ``coef``.

    Returns {``step_s``, ``model`` (the profile's timing), ``busiest_layer``, ``busiest_core_s`` (its
    core's work per step), ``core_s`` {layer: work per step of its busiest core}, ``sync_s``,
    ``host_step_s``, ``input_s`` (the input's transfer per step), ``tick_s`` (real-time chips),
    ``late`` (a real-time chip's core needs longer than its tick), ``complete`` (every time
    coefficient the model needs was known), ``unknown`` [keys]}.
    """
    timing = profile.timing
    barrier = timing == "barrier"
    # on a real-time chip the core times only check that a step fits its tick: not needed for the estimate
    probe = Coefficients(profile, coef.corner) if not barrier else coef
    core_s, missing = {}, set()
    for lay in layers:
        if lay["input"]:
            continue
        n_cores = max(1, (cores or {}).get(lay["name"], 1) or 1)
        t = 0.0
        for count, key in CORE_TIME_TERMS + (("messages", "time.message_s"),):
            v = probe.term(lay[count], key)
            if v is None:
                missing.add(key)
            else:
                t += v
        core_s[lay["name"]] = t / n_cores / steps
    core_known = not missing
    busiest = max(core_s, key=core_s.get) if core_s else None
    busiest_s = core_s[busiest] if busiest else 0.0
    sync = probe.get("time.sync_s", needed=barrier)
    if sync is None:
        sync = 0.0
        if barrier:
            missing.add("time.sync_s")
    streamed = traffic["kind"] == "spikes" and profile.input == "host"  # the host talks to the chip every step
    host = (probe.get("time.host_step_s", needed=False) or 0.0) if streamed else 0.0
    if traffic["kind"] == "spikes":
        per = probe.term(traffic["spikes"], "io.input_spike_s") if profile.input == "host" else 0.0
    else:
        per = probe.term(traffic["values"], "io.input_value_s") if profile.input == "host" else 0.0
    input_s = (per or 0.0) / steps
    if per is None:
        missing.add("io.input_spike_s" if traffic["kind"] == "spikes" else "io.input_value_s")
    out = {"model": timing, "busiest_layer": busiest, "busiest_core_s": busiest_s, "core_s": core_s,
           "sync_s": sync, "host_step_s": host, "input_s": input_s, "tick_s": None, "late": False,
           "paced_by": None}
    if barrier:
        step = busiest_s + sync + host + input_s
        if realtime and network_dt_s > step:
            step, out["paced_by"] = float(network_dt_s), "the network's dt (--realtime)"
        out["complete"] = not missing
    else:
        tick = coef.get("time.dt_s")
        out["tick_s"] = tick
        need = busiest_s + sync
        out["late"] = core_known and need > tick
        step = max(tick, need) if core_known else tick
        out["paced_by"] = "the chip's tick" if timing in ("realtime", "clocked") else "the input's events"
        out["complete"] = True  # the tick is the model; core times only check it
    out["step_s"] = float(step)
    out["unknown"] = sorted(missing)
    return out


def _price(network, profile, activity, layers, traffic, cores, chips, corner, realtime, host_profile) -> dict:
    """One pricing of the counts with every coefficient at ``corner``."""
    coef = Coefficients(profile, corner)
    steps = int(activity.steps)
    timing = step_time(profile, layers, steps, cores=cores, traffic=traffic, network_dt_s=float(network.dt_s),
                       realtime=realtime, coef=coef)
    t_inf = steps * timing["step_s"]
    priced = []
    for lay in layers:
        row = dict(lay, cores=None if cores is None else cores[lay["name"]])
        missing = set()
        for count, key, out in DYNAMIC_TERMS:
            row[out] = coef.term(lay[count], key)
            if row[out] is None:
                missing.add(key)
        row["dynamic_j"] = _sum(row[out] for _, _, out in DYNAMIC_TERMS)
        if cores is None:  # the profile has no per-core static figure (checked by the caller): unknown
            row["static_j"] = None
            missing.add("energy.static_core_w")
            coef.unknown.setdefault("energy.static_core_w", _why(profile, "energy.static_core_w"))
        else:
            row["static_j"] = coef.term(cores[lay["name"]] * t_inf, "energy.static_core_w")
            if row["static_j"] is None:
                missing.add("energy.static_core_w")
        row["energy_j"] = row["dynamic_j"] + (row["static_j"] or 0.0)
        row["complete"] = not missing
        priced.append(row)

    if traffic["kind"] == "spikes":
        input_j = coef.term(traffic["spikes"], "io.input_spike_j")
        input_what = (f"{traffic['spikes']:.6g} input spikes per inference, each brought onto the chip "
                      + ("as a packet from the host" if profile.input == "host" else "from the sensor"))
    else:
        input_j = coef.term(traffic["values"], "io.input_value_j")
        input_what = (f"{traffic['values']} input currents written into the chip once per inference "
                      f"(the analog input's first projection computed on the host)")
    step_j = coef.get("energy.step_j", needed=False)
    step_energy = None if step_j is None else steps * chips * step_j
    runtime_w = coef.get("energy.runtime_chip_w", needed=False)
    runtime_j = None if runtime_w is None else chips * runtime_w * t_inf
    chip_static_j = coef.term(chips * t_inf, "energy.static_chip_w")
    core_static_j = _sum(lay["static_j"] for lay in priced)
    dynamic_j = _sum(lay["dynamic_j"] for lay in priced) + (input_j or 0.0) + (step_energy or 0.0) + (runtime_j or 0.0)
    static_j = core_static_j + (chip_static_j or 0.0)
    energy_j = dynamic_j + static_j
    inferences_per_s = 1.0 / t_inf
    host = None
    if traffic["host_macs"]:
        mac_j = Coefficients(host_profile, corner).get("energy.mac_j", needed=False)
        host = {"macs": traffic["host_macs"], "energy_j": None if mac_j is None else traffic["host_macs"] * mac_j,
                "what": "the analog input's first projection, computed on the host CPU once per inference "
                        "(priced at the cpu profile's energy.mac_j); not in the chip's energy"}
    return {"coef": coef, "timing": timing, "layers": priced, "input_j": input_j, "input_what": input_what,
            "step_energy_j": step_energy, "runtime_j": runtime_j, "chip_static_j": chip_static_j, "core_static_j": core_static_j,
            "dynamic_j": dynamic_j, "static_j": static_j, "energy_per_inference_j": energy_j,
            "inferences_per_s": inferences_per_s, "time_per_inference_s": t_inf, "step_s": timing["step_s"],
            "static_w": static_j * inferences_per_s, "power_w": energy_j * inferences_per_s, "host": host}


def estimate(network, profile, activity, *, cores=None, chips=None, host_synops=None, realtime=False) -> dict:
    """Energy per inference, speed and average power of ``network`` on the chip of ``profile``.

    Parameters
    ----------
    network : the network as deployed (the chip's formats), the one ``activity`` was measured on
    profile : a neuromorphic :class:`~spikeport.hardware_profiles.Profile`
    activity : counts of a run of the reference executor over the measured samples; every
        count is taken as the mean per sample (one sample = one inference)
    cores : {population name: cores it uses}, from the partitioner or the vendor's placements.
        Required when the profile gives ``energy.static_core_w``; the input population may be
        left out (0 cores: its spikes come from the host). Each layer's work is taken as spread
        evenly over its cores.
    chips : chips used (default 1)
    host_synops : {population: mean events per inference} of ``activity.synops`` that came from
        an analog input, which chips realize as currents computed by the host (Loihi's bias
        registers, SpiNNaker's ``i_offset``), not as synaptic events: they are taken out of the
        layer's ``synops``, reported as its ``host_synops``, and priced as host MACs (``host``)
    realtime : on a barrier-synchronized chip, pace the steps by the network's dt (an application
        fed by a sensor in real time) instead of running as fast as the chip can

    Returns
    -------
    dict, JSON-serializable: ``energy_per_inference_j``, ``dynamic_j``, ``static_j``,
    ``static_w`` (the static power: cores and chips), ``power_w``, ``inferences_per_s``, ``time_per_inference_s`` (the latency of one inference),
    ``step_s``, ``steps_per_s``, ``time`` (the time model's findings, :func:`step_time`),
    ``chip_dt_s``, ``network_dt_s``, ``steps``, ``samples``, ``synops``, ``neuron_updates``,
    ``spikes``, ``synop_energy_j``, ``update_energy_j``, ``route_energy_j``, ``step_energy_j``, ``runtime_j``,
    ``input`` {``kind``, ``spikes``, ``values``, ``energy_j``, ``what``, ``path``}, ``host``
    (null, or {``macs``, ``energy_j``, ``what``}), ``core_static_j``, ``chip_static_j``,
    ``cores``, ``chips``, ``band`` {key: [low, high]} for the keys of :data:`BANDED`,
    ``layers`` [{``name``, ``input``, ``neurons``, ``cores``, ``synops``, ``neuron_updates``,
    ``spikes``, ``messages``, ``synop_energy_j``, ``update_energy_j``, ``route_energy_j``,
    ``dynamic_j``, ``static_j``, ``energy_j``, ``complete``}], ``unknown`` [keys],
    ``unknown_why`` {key: why}, ``complete``, ``sources`` {key: source}, ``notes`` [str]. A term
    needing an unknown coefficient is null; sums are over the known terms (lower bounds where
    ``complete`` is false).
    """
    if not profile.neuromorphic:
        raise SpikeportError(f"profile {profile.name!r} is a conventional device; its energy is a baseline "
                             f"(spikeport.deploy.ann_baseline.baseline), not a chip estimate")
    if chips is None:
        chips = 1
    if not isinstance(chips, (int, np.integer)) or isinstance(chips, bool) or chips < 1:
        raise ValueError(f"estimate: chips must be a positive integer, got {chips!r}")
    chips = int(chips)
    _check_activity(network, activity)
    cores = _check_cores(network, cores, needed=Coefficients(profile).get("energy.static_core_w", False) is not None)
    layers = _layer_counts(network, activity, host_synops)
    traffic = _input_traffic(network, activity, layers, host_synops)
    host_profile = None
    if traffic["host_macs"]:
        from ..hardware_profiles import load as load_profile
        host_profile = load_profile("cpu")
    runs = {c: _price(network, profile, activity, layers, traffic, cores, chips, c, realtime, host_profile)
            for c in CORNERS}
    r, coef, timing = runs["value"], runs["value"]["coef"], runs["value"]["timing"]
    steps = int(activity.steps)

    notes = []
    dt_chip = coef.get("time.dt_s")
    if timing["model"] == "barrier":
        notes.append(f"{profile.name} steps as fast as its busiest core ({timing['busiest_layer']}) and the "
                     f"barrier allow: {timing['step_s']:.3g} s per step"
                     + (f", paced by {timing['paced_by']}" if timing["paced_by"] else "")
                     + ("" if timing["complete"] else " (a lower bound: time coefficients unknown: "
                        + ", ".join(timing["unknown"]) + ")"))
    elif timing["late"]:
        notes.append(f"the busiest core ({timing['busiest_layer']}) needs {timing['busiest_core_s']:.3g} s per "
                     f"step, more than the chip's {dt_chip:g} s tick: the chip cannot keep real time and runs "
                     f"slowed down to {timing['step_s']:.3g} s per step")
    elif dt_chip != network.dt_s:
        notes.append(f"the chip steps every {dt_chip:g} s, the network was made for dt = {network.dt_s:g} s: "
                     f"one inference of {steps} steps takes {r['time_per_inference_s']:g} s on the chip")
    inp = network.population(network.input)
    if traffic["kind"] == "values":
        notes.append(f"input {inp.name!r} is analog (not spikes): " + r["input_what"]
                     + ("; its projections reach the chip as currents, not as synaptic events (host_synops)"
                        if host_synops else ""))
    totals = {out: (None if any(lay[out] is None for lay in r["layers"]) else _sum(lay[out] for lay in r["layers"]))
              for _, _, out in DYNAMIC_TERMS}
    band = corner_band(runs, BANDED)
    band["steps_per_s"] = [1.0 / band["step_s"][1], 1.0 / band["step_s"][0]]
    time_info = {k: v for k, v in timing.items() if k != "unknown"}
    return {
        "energy_per_inference_j": r["energy_per_inference_j"], "dynamic_j": r["dynamic_j"],
        "static_j": r["static_j"], "static_w": r["static_w"], "power_w": r["power_w"], "inferences_per_s": r["inferences_per_s"],
        "time_per_inference_s": r["time_per_inference_s"], "step_s": r["step_s"],
        "steps_per_s": 1.0 / r["step_s"], "time": time_info,
        "chip_dt_s": dt_chip, "network_dt_s": float(network.dt_s),
        "steps": steps, "samples": len(np.asarray(activity.population_spikes[network.output])),
        "synops": _sum(lay["synops"] for lay in r["layers"]),
        "neuron_updates": int(sum(lay["neuron_updates"] for lay in r["layers"])),
        "spikes": _sum(lay["spikes"] for lay in r["layers"]),
        **totals, "step_energy_j": r["step_energy_j"], "runtime_j": r["runtime_j"],
        "input": {"kind": traffic["kind"], "spikes": traffic["spikes"], "values": traffic["values"],
                  "energy_j": r["input_j"], "what": r["input_what"], "path": profile.input},
        "host": r["host"],
        "core_static_j": None if any(lay["static_j"] is None for lay in r["layers"]) else r["core_static_j"],
        "chip_static_j": r["chip_static_j"],
        "cores": None if cores is None else int(sum(cores.values())), "chips": chips,
        "band": band, "layers": r["layers"],
        "unknown": sorted(coef.unknown), "unknown_why": dict(sorted(coef.unknown.items())),
        "complete": not coef.unknown, "sources": dict(sorted(coef.sources.items())), "notes": notes,
    }


def corner_band(runs: dict, keys) -> dict:
    """{key: [lowest, highest]} of each key over the pricings at every corner (None where unknown)."""
    band = {}
    for k in keys:
        vals = [runs[c][k] for c in CORNERS if runs[c][k] is not None]
        band[k] = [min(vals), max(vals)] if vals else None
    return band


def _why(profile, key: str) -> str:
    q = profile.quantity(key)
    return q.unknown if q is not None and not q.known else "not given in the profile"
