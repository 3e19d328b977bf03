"""The Xylo plug-in (``mapper = "xylo"``): rockpool's Xylo mapper rules as fatal violations, and
the neuron ranges it maps.

A profile with ``mapper = "xylo"`` gets these checks on top of the generic limits; its one core
holds every hidden layer (the generic partitioner: ``chip.cores = 1``), on one chip. Each rule
names where it was read in rockpool (``synsense/rockpool``, ``rockpool/devices/xylo/``) or its
documentation, where rockpool leaves the check to its closed ``samna`` validator; rockpool is
not imported. The numbers come from the profile (``chip.inputs``, ``chip.neurons``,
``chip.outputs``, ``core.fan_out``). Where rockpool only warns (more input channels than Xylo
has), spikeport refuses, naming the limit.

``check_xylo(network, profile) -> (violations, mapping)``; the mapping is None unless the
network fits, else ``{"inputs": [0, n], "hidden": {population: [start, stop]}, "outputs":
[0, n], "output_population": name, "unrolled": [projection names whose convolution or pooling
becomes a dense matrix]}``.
"""
from __future__ import annotations

import numpy as np

from ...hardware_profiles import Profile
from ...ir.ops import Dense, Flatten
from ..violation import Violation
from .generic import Generic


def check_xylo(network, profile: Profile) -> tuple:
    """Xylo's rules, as rockpool's Xylo mappers place a network; returns (violations, mapping).

    Rules and where they were read (rockpool, ``rockpool/devices/xylo/``):

    - at most ``chip.inputs`` input channels: syns61300/xylo_mapper.py le_16_input_channels
      (used by syns61201/xylo_mapper.py, Xylo Audio 2) only *warns* (DRCWarning); spikeport
      refuses;
    - at most ``chip.outputs`` output neurons and ``chip.neurons`` hidden neurons:
      syns61201/xylo_mapper.py mapper (max_hidden_neurons=1000, max_output_neurons=8) through
      syns61300/xylo_mapper.py assign_ids_to_class ("Failed to allocate HW resources");
      le_8_output_channels warns as well;
    - the input goes through weights into hidden neurons only (the input weight matrix indexes
      hidden neurons): first_module_is_a_weight and mapper (w_in);
    - the output neurons are a separate set fed by hidden neurons only, and send nothing:
      output_neurons_cannot_be_recurrent, mapper (w_out rows are hidden neurons, w_rec has no
      output neuron);
    - at least one hidden and one output layer: at_least_two_neuron_layers_needed;
    - only linear weights (LinearWeights): every spikeport op is linear, so a convolution or
      pooling is unrolled into its dense matrix (listed in the mapping's ``unrolled``);
      rockpool's mapper itself accepts no convolution module;
    - fan-out: the synapses (nonzero weights) leaving one hidden neuron, to hidden and output
      neurons together, at most ``core.fan_out``: doc: rockpool docs/devices/xylo-overview.ipynb
      ("Max. fanout 64" for Xylo Audio 2; samna's validator enforces it, rockpool's code does
      not); input channels are limited by the hidden count ("Max. input projection to 1000
      hidden neurons"), not by this;
    - reset by subtraction: doc: xylo-overview.ipynb ("Subtractive reset").
    """
    violations = []
    pops = {p.name: p for p in network.populations}
    inp, out = pops[network.input], pops[network.output]
    hidden = [p for p in network.populations if not p.is_input and p.name != out.name]

    n_in, n_out = inp.size, out.size
    n_hidden = sum(p.size for p in hidden)
    max_in = profile.value("chip.inputs")
    if max_in is not None and n_in > max_in:
        violations.append(Violation(inp.name, "input channels (rockpool only warns; the chip has no more)", max_in,
                                    n_in, key="chip.inputs", fix="reduce the input features (e.g. fewer filter bands)"))
    max_out = profile.value("chip.outputs")
    if max_out is not None and n_out > max_out:
        violations.append(Violation(out.name, "output neurons", max_out, n_out, key="chip.outputs",
                                    fix="reduce the classes or read out from hidden neurons"))
    max_hidden = profile.value("chip.neurons")
    key_hidden = "chip.neurons"
    if max_hidden is None:
        max_hidden, key_hidden = profile.value("core.neurons"), "core.neurons"
    if max_hidden is not None and n_hidden > max_hidden:
        violations.append(Violation(", ".join(p.name for p in hidden), "hidden neurons", max_hidden, n_hidden,
                                    key=key_hidden, fix="shrink the hidden layers"))
    if not hidden:
        violations.append(Violation("network", "hidden layers (Xylo maps an input layer, hidden neurons and "
                                               "separate output neurons)", ">= 1", 0,
                                    fix="add a hidden layer between input and output"))

    fan_max = profile.value("core.fan_out")
    fan = {p.name: np.zeros(p.size, dtype=np.int64) for p in hidden}
    unrolled = []
    for proj in network.projections:
        if proj.pre == out.name:
            violations.append(Violation(out.name, f"projections out of the output neurons ({proj.name!r} to "
                                                  f"{proj.post!r}; Xylo output neurons send nothing and may not "
                                                  f"be recurrent)", 0, 1, fix="read out from a separate population"))
        if proj.pre == inp.name and proj.post == out.name:
            violations.append(Violation(out.name, f"input projected straight to the output neurons ({proj.name!r}; "
                                                  f"Xylo's input weights reach hidden neurons only)", 0, 1,
                                        fix="add a hidden layer between input and output"))
        if any(not isinstance(op, (Dense, Flatten)) for op in proj.ops):
            unrolled.append(proj.name)
        if proj.pre in fan:
            fan[proj.pre] += proj.synapses_per_pre(pops[proj.pre].shape)
    for p in hidden:
        nm = p.neuron
        if nm.reset != "subtract":
            violations.append(Violation(p.name, "reset mode (Xylo resets by subtraction)", "subtract", nm.reset,
                                        fix="convert with reset 'subtract'"))
        if fan_max is not None and fan[p.name].size and int(fan[p.name].max()) > fan_max:
            worst = int(fan[p.name].argmax())
            over = int((fan[p.name] > fan_max).sum())
            violations.append(Violation(p.name, f"fan-out of neuron {worst} (synapses to hidden and output "
                                                f"neurons; {over} neuron(s) over)", fan_max,
                                        int(fan[p.name][worst]), key="core.fan_out",
                                        fix="prune the weakest outgoing weights"))
    if out.neuron.reset != "subtract":
        violations.append(Violation(out.name, "reset mode (Xylo resets by subtraction)", "subtract",
                                    out.neuron.reset, fix="convert with reset 'subtract'"))
    if violations:
        return violations, None
    ranges, start = {}, 0
    for p in hidden:
        ranges[p.name] = [start, start + p.size]
        start += p.size
    return [], {"inputs": [0, n_in], "hidden": ranges, "outputs": [0, n_out], "output_population": out.name,
                "unrolled": unrolled}


class Xylo(Generic):
    """rockpool's rules for Xylo (:func:`check_xylo`); one chip; counted generically."""

    name = mapper = "xylo"
    one_chip = True
    mapper_rules = staticmethod(check_xylo)
