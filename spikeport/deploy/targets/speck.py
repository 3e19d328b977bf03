"""The Speck plug-in (``mapper = "speck"``): sinabs' mapper rules as fatal violations, and the
placement of each layer on a core.

A profile with ``mapper = "speck"`` gets these checks on top of the generic limits; its cores
and chips are counted by the generic partitioner (one chip: the mapper maps onto one). The
layers, their memories and per-core limits are :mod:`spikeport.deploy.targets.speck_layers`;
here are the rules on the whole network and the placement. Each rule names where it was read
in sinabs (``synsense/sinabs``, ``sinabs/backend/dynapcnn/``) or its documentation; sinabs is
not imported. The numbers come from the profile where it has a key for them
(``core.destinations``, ``core.weight_words``, ``core.neuron_words``, ``chip.cores``).

``check_speck(network, profile) -> (violations, mapping)``; the mapping is None unless the
network fits, else ``{population: core index}``, every spiking population on its own core.
"""
from __future__ import annotations

import numpy as np

from ...hardware_profiles import Profile, ProfileError
from ..violation import Violation
from .generic import Generic
from .speck_layers import DVS_CHANNELS_MAX, INPUT_SIDE_MAX, POOLS, as_chw, layer_limits, speck_layers


def _per_core(profile: Profile, key: str, cores: int):
    values = profile.value(key)
    if values is None:
        return None
    if len(values) == 1:
        return list(values) * cores
    if len(values) != cores:
        raise ProfileError(f"{profile.path}: {key}: {len(values)} values for {cores} cores (chip.cores); give one "
                           f"value for all cores or one per core")
    return list(values)


def _match(candidates: list) -> list:
    """A maximum bipartite matching by augmenting paths (Kuhn's algorithm).

    ``candidates[i]`` lists the cores layer i fits. Returns ``owner``: for each core the layer
    on it or None. sinabs solves the same problem as a max flow (mapping.py get_valid_mapping:
    make_flow_graph, edmonds, recover_mapping); any maximum matching places every layer when
    some placement exists, which first-fit does not.
    """
    cores = 1 + max((c for cand in candidates for c in cand), default=-1)
    owner = [None] * cores

    def augment(i, seen):
        for c in candidates[i]:
            if c in seen:
                continue
            seen.add(c)
            if owner[c] is None or augment(owner[c], seen):
                owner[c] = i
                return True
        return False

    for i in range(len(candidates)):
        augment(i, set())
    return owner


def _deficient_set(candidates: list, owner: list, start: int) -> tuple:
    """The layers reachable from unplaced layer ``start`` by alternating paths and the cores they
    can use: fewer cores than layers (Hall's condition fails for exactly this set)."""
    layers, cores, todo = {start}, set(), [start]
    while todo:
        i = todo.pop()
        for c in candidates[i]:
            if c not in cores:
                cores.add(c)
                j = owner[c] if c < len(owner) else None
                if j is not None and j not in layers:
                    layers.add(j)
                    todo.append(j)
    return layers, cores


def check_speck(network, profile: Profile) -> tuple:
    """Speck's rules, as sinabs' DynapcnnNetwork maps a network; returns (violations, mapping).

    Rules and where they were read (sinabs, ``sinabs/backend/dynapcnn/``):

    - one core per spiking population: its incoming convolution (a dense op counts as the
      convolution whose kernel is its whole input), its neurons and the pooling towards each
      destination: utils.py construct_next_dynapcnn_layer, dynapcnn_layer.py DynapcnnLayer;
    - kernel memory ``c * 2^(ceil log2(kh*kw) + ceil log2 f)`` and neuron memory
      ``f * 2^(ceil log2 h + ceil log2 w)``: dynapcnn_layer.py DynapcnnLayer.memory_summary;
    - each layer needs a core whose kernel and neuron memory both hold it, each core holds one
      layer, placement by maximum bipartite matching: mapping.py LayerConstraints.fits,
      get_valid_mapping (make_flow_graph, edmonds, recover_mapping); per-core memories from
      the profile (chips/dynapcnn.py DynapcnnConfigBuilder.get_constraints);
    - no more layers than cores: implied by the matching (chip.cores);
    - square kernels: chips/dynapcnn.py get_dynapcnn_layer_config_dict; kernel side, strides,
      channels, padding, pooling sizes, 64x64 neurons and 128x128 inputs: docs/speck/overview.md
      (samna validates them; its code is closed);
    - pooling with stride = kernel and no padding, consecutive pools multiplied:
      utils.py construct_next_pooling_layer; square pooling: DynapcnnLayer.__init__;
    - at most ``core.destinations`` target layers per core: docs/speck/faqs/available_network_arch.md
      (item 2); the graph version refuses more (get_dynapcnnlayers_destinations,
      MaxDestinationsReached) and two layers targeting each other (InvalidLayerLoop);
    - pooling the network input happens in the DVS layer, which takes 1 or 2 channels:
      dvs_layer.py DVSLayer.from_layers;
    - bias one value per output channel (the convolution's bias; bias memory ``len(conv.bias)``):
      DynapcnnLayer.memory_summary;
    - IAF neurons without a synaptic filter: utils.py construct_next_dynapcnn_layer expects a
      spiking layer (IAF), docs/speck/faqs (only the IAF activation is supported).
    """
    layers, violations = speck_layers(network)
    cores = int(profile.value("chip.cores"))
    pops = {p.name: p for p in network.populations}

    inp = pops[network.input]
    c, h, w = as_chw(inp.shape)
    if max(h, w) > INPUT_SIDE_MAX:
        violations.append(Violation(inp.name, "input side (height or width)", INPUT_SIDE_MAX, max(h, w),
                                    fix="crop or downsample the input"))
    for proj in network.projections:
        if proj.pre == inp.name and proj.ops and isinstance(proj.ops[0], POOLS) and c > DVS_CHANNELS_MAX:
            violations.append(Violation(inp.name, f"channels of a pooled input (projection {proj.name!r}: the DVS "
                                                  f"layer pools 1 or 2 polarity channels)", DVS_CHANNELS_MAX, c,
                                        fix="pool inside the network instead, or feed at most 2 channels"))

    targets = {}
    for proj in network.projections:
        targets.setdefault(proj.pre, []).append(proj.post)
    dmax = profile.value("core.destinations")
    for pre, posts in targets.items():
        distinct = sorted(set(posts), key=posts.index)
        if dmax is not None and len(distinct) > dmax:
            violations.append(Violation(pre, f"destination layers ({', '.join(distinct)})", dmax, len(distinct),
                                        key="core.destinations",
                                        fix="route through fewer layers (chain them or merge targets)"))
        for post in distinct:
            if post == pre or pre in targets.get(post, ()) and pre < post:
                violations.append(Violation(pre, f"a loop between layers {pre!r} and {post!r} (a core cannot "
                                                 f"target a core that targets it)", "no loop", "loop",
                                            fix="remove the recurrent projection"))

    for layer in layers:
        pop = pops[layer.name]
        nm = pop.neuron
        if nm.model != "if" or nm.syn_decay is not None:
            what = "leak" if nm.model != "if" else "synaptic current filter"
            violations.append(Violation(layer.name, f"neuron model (Speck neurons are non-leaky IAF without a "
                                                    f"synaptic filter; this one has a {what})", "if",
                                        nm.model + (" with syn_decay" if nm.syn_decay is not None else ""),
                                        fix="convert with IF neurons and no synaptic filter"))
        if pop.bias is not None:
            per_channel = np.asarray(pop.bias, dtype=np.float64).reshape(layer.neurons[0], -1)
            varying = int((per_channel.max(axis=1) != per_channel.min(axis=1)).sum())
            if varying:
                violations.append(Violation(layer.name, "output channels whose bias varies across positions (a "
                                                        "core has one bias per output channel)", 0, varying,
                                            fix="use one bias per channel"))
        layer_limits(profile, layer, violations)

    weights = _per_core(profile, "core.weight_words", cores)
    neurons = _per_core(profile, "core.neuron_words", cores)
    fits = []
    for layer in layers:
        k, n = layer.kernel_memory, layer.neuron_memory
        cand = [i for i in range(cores)
                if (weights is None or k <= weights[i]) and (neurons is None or n <= neurons[i])]
        fits.append(cand)
        if cand:
            continue
        if weights is not None and k > max(weights):
            violations.append(Violation(layer.name, f"kernel memory (words; channels {layer.in_shape[0]} x "
                                                    f"2^ceil(log2 {layer.kernel[0]}*{layer.kernel[1]}) x "
                                                    f"2^ceil(log2 {layer.neurons[0]}))", max(weights), k,
                                        key="core.weight_words", fix="reduce channels or kernel size"))
        if neurons is not None and n > max(neurons):
            violations.append(Violation(layer.name, f"neuron memory (words; {layer.neurons[0]} channels x "
                                                    f"2^ceil(log2 {layer.neurons[1]}) x "
                                                    f"2^ceil(log2 {layer.neurons[2]}))", max(neurons), n,
                                        key="core.neuron_words", fix="reduce channels or the feature map"))
        if (weights is None or k <= max(weights)) and (neurons is None or n <= max(neurons)):
            pairs = ", ".join(f"{i}: {weights[i]}/{neurons[i]}" for i in range(cores))
            violations.append(Violation(layer.name, f"kernel/neuron memory together (no core holds both; cores' "
                                                    f"kernel/neuron words: {pairs})", "one core", f"{k}/{n}",
                                        key="core.weight_words", fix="trade channels against feature map size"))

    if len(layers) > cores:
        violations.append(Violation("network", "spiking layers (one core each)", cores, len(layers), key="chip.cores",
                                    fix="merge or remove layers"))
    elif all(fits):
        owner = _match(fits)
        placed = {i for i in owner if i is not None}
        reported = set()
        for i in range(len(layers)):
            if i in placed or i in reported:
                continue
            group, usable = _deficient_set(fits, owner, i)
            reported |= group
            names = [layers[j].name for j in sorted(group)]
            violations.append(Violation(", ".join(names), f"layers that fit only cores {sorted(usable)}", len(usable),
                                        len(group), key="core.weight_words",
                                        fix="shrink one of them so that it fits another core"))
        if not violations:
            core_of = {i: core for core, i in enumerate(owner) if i is not None}
            return [], {layer.name: core_of[i] for i, layer in enumerate(layers)}
    return violations, None


class Speck(Generic):
    """sinabs' rules for Speck (:func:`check_speck`); one chip; counted generically."""

    name = mapper = "speck"
    one_chip = True
    mapper_rules = staticmethod(check_speck)
