"""The vendors' own mapper rules for Speck (sinabs) and Xylo (rockpool), as fatal violations.

A profile with ``mapper = "speck"`` or ``"xylo"`` gets these checks on top of the generic
limits. Each rule below names where it was read: a function of sinabs
(``synsense/sinabs``, ``sinabs/backend/dynapcnn/``) or rockpool (``synsense/rockpool``,
``rockpool/devices/xylo/``), or, where the vendor's code leaves the check to its closed
``samna`` validator, the vendor's documentation. The code here is spikeport's own; none of
those packages is imported. The numbers come from the profile where it has a key for them
(``core.kernel_max``, ``core.strides``, ``core.channels_max``, ``core.destinations``,
``core.weight_words``, ``core.neuron_words``, ``chip.cores``, ``chip.inputs``,
``chip.neurons``, ``chip.outputs``, ``core.fan_out``); the few the schema has no key for are
the module constants below, each with its source.

Where a vendor mapper only warns (rockpool: more input channels than Xylo has), spikeport
refuses, naming the limit.

``check_vendor(network, profile) -> (violations, mapping)``; the mapping is None unless the
network fits:

- Speck: ``{population: core index}``, every spiking population on its own core;
- Xylo: ``{"inputs": [0, n], "hidden": {population: [start, stop]}, "outputs": [0, n],
  "output_population": name, "unrolled": [projection names whose convolution or pooling
  becomes a dense matrix]}``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..hardware_profiles import Profile, ProfileError
from ..ir.ops import AvgPool2d, Conv2d, Dense, Flatten, SumPool2d
from .violation import Violation

# Speck limits the profile schema has no key for.
POOL_SIZES = (1, 2, 4)
"""Sum-pooling sides a Speck destination (and the DVS pre-processing layer) supports.
doc: sinabs docs/speck/overview.md, "DYNAP-CNN Layer / Feature": "Sumpooling: 1x1, 2x2, 4x4"."""
PADDING_MAX = 7
"""Largest convolution padding. doc: sinabs docs/speck/overview.md: "Padding: [0,1,2,3,4,5,6,7]"."""
INPUT_SIDE_MAX = 128
"""Largest input height or width of a core and of the chip's input.
doc: sinabs docs/speck/overview.md "Max input dimension for the layer: 128x128";
docs/speck/faqs/available_network_arch.md "Feature Map Size Constrains"."""
NEURON_SIDE_MAX = 64
"""Largest output feature map (neuron array) height or width of a core.
doc: sinabs docs/speck/overview.md "Max output feature map size: 64x64"; faq as above."""
DVS_CHANNELS_MAX = 2
"""Channels of an input that the DVS pre-processing layer pools (polarities).
src: sinabs dvs_layer.py DVSLayer.from_layers ("Only 1 and 2 channels are supported")."""

_POOLS = (SumPool2d, AvgPool2d)


def _ceil_log2(n: int) -> int:
    """ceil(log2(n)) for an integer n >= 1, exactly (sinabs computes it in floating point)."""
    return (int(n) - 1).bit_length()


def kernel_memory(in_channels: int, out_channels: int, kh: int, kw: int) -> int:
    """Kernel memory words of one Speck layer.

    src: sinabs dynapcnn_layer.py DynapcnnLayer.memory_summary:
    ``c * 2 ** (ceil(log2(kh * kw)) + ceil(log2(f)))`` with (f, c, kh, kw) the weight shape:
    the kernel area and the output channels are each rounded up to a power of two (the
    address encoding), the input channels are not.
    """
    return int(in_channels) * 2 ** (_ceil_log2(kh * kw) + _ceil_log2(out_channels))


def neuron_memory(out_channels: int, height: int, width: int) -> int:
    """Neuron memory words of one Speck layer.

    src: sinabs dynapcnn_layer.py DynapcnnLayer.memory_summary:
    ``f * 2 ** (ceil(log2(h)) + ceil(log2(w)))`` with (f, h, w) the convolution's output (the
    neurons, before pooling): each side is rounded up to a power of two.
    """
    return int(out_channels) * 2 ** (_ceil_log2(height) + _ceil_log2(width))


@dataclass
class SpeckLayer:
    """One Speck core's worth of network: the convolution into a spiking population.

    ``in_shape`` is the core's input (channels of all sources together, after each source's
    pooling), ``neurons`` the population as (f, h, w); ``kernel`` and ``stride`` are (h, w)
    pairs, ``padding`` too. ``sources`` maps each incoming projection to its pooling side.
    """

    name: str
    in_shape: tuple
    neurons: tuple
    kernel: tuple
    stride: tuple
    padding: tuple
    sources: dict = field(default_factory=dict)

    @property
    def kernel_memory(self) -> int:
        return kernel_memory(self.in_shape[0], self.neurons[0], *self.kernel)

    @property
    def neuron_memory(self) -> int:
        return neuron_memory(*self.neurons)


def _as_chw(shape: tuple) -> tuple:
    """A population shape as (channels, height, width): sinabs treats a vector as (n, 1, 1)."""
    return tuple(shape) if len(shape) == 3 else (int(np.prod(shape)), 1, 1)


def _speck_projection(proj, pre_shape: tuple, out: list):
    """One projection as sinabs would build its layer: pooling at the source, then one
    convolution (a dense op as the convolution whose kernel is its whole input).

    Returns (pool side, in_shape after pooling, kernel, stride, padding, neurons (f, h, w)) or
    None, with
    violations appended to ``out``. src: sinabs utils.py construct_next_pooling_layer and
    construct_next_dynapcnn_layer, dynapcnn_layer.py DynapcnnLayer._convert_linear_to_conv.
    """
    name, post = proj.name, proj.post
    ops = list(proj.ops)
    i, pool = 0, 1
    shape = _as_chw(pre_shape)
    while i < len(ops) and isinstance(ops[i], _POOLS):
        op = ops[i]
        kh, kw = op.kernel_size
        where = f"pooling in projection {name!r}"
        if kh != kw:
            # src: sinabs dynapcnn_layer.py DynapcnnLayer.__init__ ("Only square kernels are supported")
            out.append(Violation(post, f"{where}: kernel height and width must be equal", "square",
                                 f"{kh}x{kw}", fix="use a square pooling kernel"))
        if tuple(op.stride) != tuple(op.kernel_size):
            # src: sinabs utils.py construct_next_pooling_layer ("Stride length ... should be the same as
            # pooling kernel size")
            out.append(Violation(post, f"{where}: stride must equal the kernel size", f"{kh}x{kw}",
                                 "x".join(map(str, op.stride)), fix="pool with stride = kernel size"))
        if any(op.padding):
            # src: sinabs utils.py construct_next_pooling_layer ("Padding is not supported for the pooling layers")
            out.append(Violation(post, f"{where}: padding", 0, max(op.padding),
                                 fix="pool without padding (pad the convolution instead)"))
        pool *= kh
        shape = op.out_shape(shape, where)
        i += 1
    if pool not in POOL_SIZES:
        # doc: sinabs docs/speck/overview.md "Sumpooling: 1x1, 2x2, 4x4"; consecutive pools multiply
        # (src: utils.py construct_next_pooling_layer, cumulative_pooling)
        out.append(Violation(post, f"sum-pooling side of projection {name!r}", max(POOL_SIZES), pool,
                             fix=f"pool by one of {', '.join(map(str, POOL_SIZES))} (several pools multiply)"))
    flatten = False
    while i < len(ops) and isinstance(ops[i], Flatten):
        flatten, i = True, i + 1
    weighted = ops[i] if i < len(ops) and isinstance(ops[i], (Conv2d, Dense)) else None
    rest = ops[i + 1:] if weighted is not None else ops[i:]
    if weighted is None or any(not isinstance(op, Flatten) for op in rest):
        # src: sinabs utils.py construct_next_dynapcnn_layer (a layer is Conv2d/Linear -> spiking -> pooling);
        # doc: docs/speck/faqs/available_network_arch.md "cascaded convolution ... is not allowed"
        kinds = "->".join(op.kind for op in ops)
        out.append(Violation(post, f"ops of projection {name!r} (a core is pooling at the source, then one "
                                   f"convolution or dense op)", "[pool]* [flatten] conv2d|dense", kinds,
                             fix="give every spiking population one convolution or dense op per projection; "
                                 "a pooling after it belongs to the next projection"))
        return None
    if isinstance(weighted, Dense):
        # src: sinabs dynapcnn_layer.py DynapcnnLayer._convert_linear_to_conv: kernel = (in_h, in_w) of the input
        c, h, w = shape
        f = int(weighted.weight.shape[0])
        return pool, (c, h, w), (h, w), (1, 1), (0, 0), (f, 1, 1)
    if flatten:
        out.append(Violation(post, f"ops of projection {name!r}", "no flatten before a convolution", "flatten",
                             fix="remove the flatten"))
        return None
    conv = weighted
    if tuple(conv.dilation) != (1, 1):
        # src: sinabs dynapcnn.py DynapcnnConfigBuilder.get_dynapcnn_layer_config_dict writes no dilation
        # (the chip's dimensions are kernel_size, stride, padding only)
        out.append(Violation(post, f"convolution dilation in projection {name!r}", 1, max(conv.dilation),
                             fix="use an undilated kernel (spread the taps into a larger kernel with zeros)"))
    if conv.groups != 1:
        # src: as above: the chip's weights are (f, c, k, k) over all input channels
        out.append(Violation(post, f"convolution groups in projection {name!r}", 1, conv.groups,
                             fix="expand the grouped kernel to a full one with zero blocks"))
    return (pool, shape, conv.kernel_shape(), tuple(conv.stride), tuple(conv.padding),
            conv.out_shape(shape, f"projection {name!r}"))


def speck_layers(network) -> tuple:
    """The network as Speck layers (one per spiking population) and the structural violations.

    Returns (list of :class:`SpeckLayer`, list of :class:`Violation`). Several projections into
    one population share its core: their channels are concatenated (each source's events are
    shifted past the others' channels), so they must agree on the input size and on the kernel,
    stride and padding. doc: sinabs docs/speck/faqs/available_network_arch.md (items 3 and 5:
    several cores may target one core; a destination's feature shift concatenates channels).
    """
    pops = {p.name: p for p in network.populations}
    violations, layers = [], []
    for pop in network.populations:
        if pop.is_input:
            continue
        into = network.projections_into(pop.name)
        if not into:
            violations.append(Violation(pop.name, "incoming projections (a core computes a convolution of its "
                                                  "input)", ">= 1", 0, fix="connect the population or remove it"))
            continue
        parts = []
        for proj in into:
            got = _speck_projection(proj, pops[proj.pre].shape, violations)
            if got is not None:
                parts.append((proj.name, got))
        if len(parts) != len(into):
            continue
        geometry = {(g[1][1:], g[2], g[3], g[4], g[5]) for _, g in parts}
        if len(geometry) > 1:
            desc = "; ".join(f"{n}: input {g[1][1]}x{g[1][2]} kernel {g[2]} stride {g[3]} padding {g[4]}"
                             for n, g in parts)
            violations.append(Violation(pop.name, "incoming projections with different input size, kernel, stride "
                                                  "or padding (one core has one convolution geometry)", 1,
                                        len(geometry), fix=f"make them agree ({desc})"))
            continue
        _, (_, (_, h, w), kernel, stride, padding, neurons) = parts[0]
        channels = sum(g[1][0] for _, g in parts)
        layers.append(SpeckLayer(pop.name, (channels, h, w), tuple(int(x) for x in neurons), kernel, stride,
                                 padding, {n: g[0] for n, g in parts}))
    return layers, violations


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


def _speck_limits(profile: Profile, layer: SpeckLayer, out: list) -> None:
    name = layer.name
    kmax = profile.value("core.kernel_max")
    kh, kw = layer.kernel
    if kh != kw:
        # src: sinabs dynapcnn.py DynapcnnConfigBuilder.get_dynapcnn_layer_config_dict
        # ("Conv2d: Kernel must have same height and width.")
        out.append(Violation(name, "kernel height and width must be equal", "square", f"{kh}x{kw}",
                             fix="use a square kernel (for a dense layer: pool or crop its input to a square)"))
    if kmax is not None and max(kh, kw) > kmax:
        # doc: sinabs docs/speck/overview.md "Max convolutional kernel size 16x16" (checked by samna's
        # validate_configuration, which sinabs calls in DynapcnnNetwork.make_config)
        out.append(Violation(name, "kernel side", kmax, max(kh, kw), key="core.kernel_max",
                             fix="use a smaller kernel (for a dense layer: pool its input down first)"))
    strides = profile.value("core.strides")
    if strides is not None:
        for s in sorted(set(layer.stride)):
            if s not in strides:
                # doc: sinabs docs/speck/overview.md "Stride step:1,2,4,8"
                out.append(Violation(name, "convolution stride (allowed: " + ", ".join(map(str, strides)) + ")",
                                     max(strides), s, key="core.strides",
                                     fix=f"use a stride in {{{', '.join(map(str, strides))}}}"))
    if max(layer.padding) > PADDING_MAX:
        out.append(Violation(name, "convolution padding", PADDING_MAX, max(layer.padding),
                             fix=f"pad by at most {PADDING_MAX}"))
    cmax = profile.value("core.channels_max")
    if cmax is not None:
        # doc: sinabs docs/speck/overview.md "Max channel number: 1024"
        for what, value in (("input channels", layer.in_shape[0]), ("output channels", layer.neurons[0])):
            if value > cmax:
                out.append(Violation(name, what, cmax, value, key="core.channels_max",
                                     fix="split the layer's channels"))
    if max(layer.in_shape[1:]) > INPUT_SIDE_MAX:
        out.append(Violation(name, "input side (height or width) of the core", INPUT_SIDE_MAX,
                             max(layer.in_shape[1:]), fix="pool or stride down before this layer"))
    if max(layer.neurons[1:]) > NEURON_SIDE_MAX:
        out.append(Violation(name, "output feature map side (height or width)", NEURON_SIDE_MAX,
                             max(layer.neurons[1:]), fix="use a stride or pool the input down"))


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
    c, h, w = _as_chw(inp.shape)
    if max(h, w) > INPUT_SIDE_MAX:
        violations.append(Violation(inp.name, "input side (height or width)", INPUT_SIDE_MAX, max(h, w),
                                    fix="crop or downsample the input"))
    for proj in network.projections:
        if proj.pre == inp.name and proj.ops and isinstance(proj.ops[0], _POOLS) and c > DVS_CHANNELS_MAX:
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
        _speck_limits(profile, layer, violations)

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


def check_vendor(network, profile: Profile) -> tuple:
    """The vendor mapper's rules for ``profile.mapper``: (violations, mapping); ([], None) without one."""
    if profile.mapper == "":
        return [], None
    if profile.mapper not in ("speck", "xylo"):
        raise ProfileError(f"{profile.path}: mapper: unknown vendor mapper {profile.mapper!r}")
    violations, mapping = (check_speck if profile.mapper == "speck" else check_xylo)(network, profile)
    spiking = _spike_input(network, profile)
    return (violations + spiking, None if spiking else mapping)


def _spike_input(network, profile: Profile) -> list:
    """Speck and Xylo take events only: sinabs feeds Speck DVS events or spike rasters
    (``DynapcnnNetwork`` converts input tensors to events), rockpool's Xylo modules take
    spike counts per time step on their input channels. An analog (constant current)
    input has no realization on either chip."""
    inp = network.population(network.input)
    if inp.encoding.kind != "analog":
        return []
    return [Violation(layer=inp.name, what="input encoding", limit="spike events", value="analog",
                      key="mapper", fix=f"{profile.title} takes spike events only: convert with --encoding "
                                        f"regular or poisson")]
