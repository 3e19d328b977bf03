"""Constraint checks of a network against a chip's profile: ``check(network, profile) -> [Violation]``.

Per population and projection, for every limit the profile gives (an absent or unknown limit
is not checked; reports list the unknown ones):

- neurons per core (``core.neurons``): not fatal, partitioning splits the layer;
- fan-in, synapses into one neuron from all its projections (``core.fan_in``), and the input
  axons one neuron alone needs (``core.input_axons``: its presynaptic neurons, or on
  nengo-loihi's shared-weight convolution its presynaptic pixels): fatal, no split helps;
- fan-out, synapses out of one neuron over all its projections (``core.fan_out``): fatal;
- delays above ``precision.delay_steps_max``: fatal;
- convolution kernels above ``core.kernel_max``, strides not in ``core.strides``, channels
  above ``core.channels_max``: fatal;
- chip totals: the input population against ``chip.inputs``, the output population against
  ``chip.outputs`` and the other spiking neurons (all of them where the chip has no separate
  outputs) against ``chip.neurons``, each times the chips of the system (``chip.chips_max``;
  one chip for a profile with a vendor mapper such as Xylo or Speck); fatal;
- a population, or the whole network, needing more cores than ``chip.chips_max`` chips of
  ``chip.cores`` cores of ``core.neurons`` neurons hold: fatal, with the chips it needs. A chip
  of one core (Xylo) holds every layer on that core: its neurons are checked as a total
  against ``chip.neurons`` (or ``core.neurons``), not per layer.

Weight and state precision are the quantization pass's (:mod:`spikeport.deploy.quantize_chips`);
the vendor mappers' own rules are the Speck and Xylo plug-ins' (:mod:`spikeport.deploy.targets`).
Fan-in and fan-out are counted without materializing large projections
(:func:`spikeport.deploy.partition.analyze`).
``require_fit(violations)`` raises one line naming the fatal ones.

Spikes per step: every chip emits at most one spike per neuron per step, so a population
with ``max_spikes_per_step`` > 1 (a sinabs or Rockpool import) is a fatal violation naming it.
"""
from __future__ import annotations

import math

from ..errors import SpikeportError
from ..hardware_profiles import Profile
from .partition import analyze, chips_in_system, shares_one_core
from .violation import Violation

SHOWN = 3          # fatal violations spelled out in require_fit's line


def check(network, profile: Profile) -> list:
    """Every violation of ``profile``'s limits by ``network`` (fatal first, in network order)."""
    v = profile.value
    an = analyze(network, profile)
    pops = {p.name: p for p in network.populations}
    out = []
    core_neurons = v("core.neurons")
    chip_cores = v("chip.cores")
    chips = chips_in_system(profile)
    system_cores = None if chips is None or chip_cores is None else chips * chip_cores
    single = shares_one_core(profile)       # then its totals are checked in _chip_totals
    total_cores = 0
    for pop in network.populations:
        if pop.is_input:
            continue
        n = pop.size
        need = math.ceil(n / core_neurons) if core_neurons else 1
        total_cores += need
        if core_neurons and n > core_neurons and not single:
            fatal = system_cores is not None and need > system_cores
            out.append(Violation(pop.name, "neurons", core_neurons, n, "core.neurons",
                                 f"needs {math.ceil(need / chip_cores)} chips at {chip_cores} cores of "
                                 f"{core_neurons} neurons, the system has {chips} (chip.chips_max): make the "
                                 f"layer smaller" if fatal else
                                 f"split across at least {need} cores (partitioning does)", fatal=fatal))
        _fan_checks(out, an, pop, profile)
        if pop.neuron.max_spikes_per_step != 1:  # every chip profile emits one spike per neuron per step
            out.append(Violation(pop.name, "spikes per neuron per step", 1, pop.neuron.max_spikes_per_step, "",
                                 "the chip emits one spike per step: a multi-spike (sinabs MultiSpike, Rockpool "
                                 "StepPWL) layer has no equivalent; retrain or re-export with one spike per step",
                                 fatal=True))
    if system_cores is not None and total_cores > system_cores and not single:
        out.append(Violation("network", "cores", system_cores, total_cores, "chip.chips_max",
                             f"needs at least {math.ceil(total_cores / chip_cores)} chips at {chip_cores} cores "
                             f"of {core_neurons} neurons, the system has {chips}"))
    for proj in network.projections:
        _projection_checks(out, proj, pops, profile)
    _chip_totals(out, network, profile)
    return sorted(out, key=lambda x: not x.fatal)


def _fan_checks(out, an, pop, profile):
    """Fan-in, input axons and fan-out of ``pop``'s neurons against the core's limits."""
    for key, counts, violation in (("core.fan_in", an.fan_in, _fan_in_violation),
                                   ("core.input_axons", an.axon_fan_in, _axons_violation),
                                   ("core.fan_out", an.fan_out, _fan_out_violation)):
        limit = profile.value(key)
        if limit is None:
            continue
        values = counts(pop.name)
        if values.size and int(values.max()) > limit:
            out.append(violation(pop.name, values, limit))


def _fan_in_violation(name, fan_in, limit):
    return Violation(name, "fan-in", limit, int(fan_in.max()), "core.fan_in",
                     f"{int((fan_in > limit).sum())} neurons receive more than {limit} synapses: reduce "
                     f"each neuron's inputs to {limit} (a smaller kernel, fewer input channels, a sparser "
                     f"or narrower previous layer), or split the sum over an extra layer")


def _axons_violation(name, axons, limit):
    return Violation(name, "input axons of one neuron", limit, int(axons.max()), "core.input_axons",
                     f"a core receives at most {limit} presynaptic neurons and no split of the layer "
                     f"lowers one neuron's inputs: reduce them to {limit} or split the sum over an "
                     f"extra layer")


def _fan_out_violation(name, fan_out, limit):
    return Violation(name, "fan-out", limit, int(fan_out.max()), "core.fan_out",
                     f"{int((fan_out > limit).sum())} neurons send to more than {limit} targets: reduce each "
                     f"neuron's targets to {limit} (fewer output channels, a smaller next layer), or relay "
                     f"through copies of the layer")


def _projection_checks(out, proj, pops, profile):
    v = profile.value
    limit = v("precision.delay_steps_max")
    if limit is not None and proj.delay_steps > limit:
        out.append(Violation(proj.name, "delay (steps)", limit, int(proj.delay_steps), "precision.delay_steps_max",
                             f"shorten the delay to at most {limit} steps, or relay it through intermediate "
                             f"populations"))
    kernel_max, strides, channels_max = v("core.kernel_max"), v("core.strides"), v("core.channels_max")
    shape = pops[proj.pre].shape
    for op in proj.ops:
        if op.kind == "conv2d":
            k = max(op.kernel_shape())
            if kernel_max is not None and k > kernel_max:
                out.append(Violation(proj.name, "kernel side", kernel_max, k, "core.kernel_max",
                                     f"reduce the kernel to {kernel_max}x{kernel_max}"))
            if strides is not None:
                bad = [s for s in op.stride if s not in strides]
                if bad:
                    out.append(Violation(proj.name, "stride", strides, max(bad), "core.strides",
                                         f"use a stride in {', '.join(map(str, strides))}"))
            if channels_max is not None:
                c = max(int(op.weight.shape[0]), int(shape[0]))
                if c > channels_max:
                    out.append(Violation(proj.name, "channels", channels_max, c, "core.channels_max",
                                         f"reduce the layer to {channels_max} channels, or split it by channels "
                                         f"into several layers"))
        shape = op.out_shape(shape, proj.name)


def _chip_totals(out, network, profile):
    v = profile.value
    chips = chips_in_system(profile)
    per = 1 if chips is None else chips
    inp = network.population(network.input)
    outp = network.population(network.output)
    limit = v("chip.inputs")
    if limit is not None and inp.size > limit * per:
        out.append(Violation(inp.name, "input channels", limit * per, inp.size, "chip.inputs",
                             f"reduce the input to {limit * per} channels (pool, select or encode features)"))
    outputs = v("chip.outputs")
    if outputs is not None and outp.size > outputs * per:
        out.append(Violation(outp.name, "output neurons", outputs * per, outp.size, "chip.outputs",
                             f"reduce the output layer to {outputs * per} neurons"))
    limit = v("chip.neurons")
    if limit is None and shares_one_core(profile):
        limit = v("core.neurons")          # one core holds every layer
    if limit is None:
        return
    hidden = [p for p in network.populations if not p.is_input and (outputs is None or p.name != outp.name)]
    total = sum(p.size for p in hidden)
    what = "hidden neurons" if outputs is not None else "neurons"
    if chips is None:
        if total > limit:
            out.append(Violation("network", what, limit, total, "chip.neurons",
                                 f"needs {math.ceil(total / limit)} chips (partitioning packs them)", fatal=False))
        return
    if total > limit * chips:
        layer = hidden[0].name if len(hidden) == 1 else "network (" + ", ".join(p.name for p in hidden) + ")"
        need = math.ceil(total / limit)
        out.append(Violation(layer, what, limit * chips, total, "chip.neurons",
                             f"reduce the {what} to {limit * chips}"
                             + (f" (needs {need} chips, the system has {chips})" if need > chips else "")))


def require_fit(violations, profile: Profile | None = None) -> None:
    """Raise :class:`SpikeportError` with one line naming the fatal violations (the first few,
    then how many more) if there is any; duplicates (same layer, limit and value) count once."""
    seen, fatal = set(), []
    for x in violations:
        key = (x.layer, x.key, str(x.limit), str(x.value))
        if x.fatal and key not in seen:
            seen.add(key)
            fatal.append(x)
    if not fatal:
        return
    where = f"does not fit {profile.name}" if profile is not None else "does not fit the chip"
    text = "; ".join(x.line() for x in fatal[:SHOWN])
    more = len(fatal) - SHOWN
    raise SpikeportError(f"{where}: {text}" + (f"; and {more} more" if more > 0 else ""))

