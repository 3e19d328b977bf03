"""Speck's layers as sinabs builds them, and their memory and per-core limits.

One Speck core holds one spiking population: the convolution into it (a dense op counts as the
convolution whose kernel is its whole input), its neurons and the pooling towards each
destination. Each rule below names where it was read: a function of sinabs
(``synsense/sinabs``, ``sinabs/backend/dynapcnn/``) or, where sinabs leaves the check to its
closed ``samna`` validator, sinabs' documentation. The code here is spikeport's own; sinabs is
not imported. The numbers come from the profile where it has a key for them
(``core.kernel_max``, ``core.strides``, ``core.channels_max``); the few the schema has no key
for are the module constants below, each with its source. The rules on the whole network and
the placement are :func:`spikeport.deploy.targets.speck.check_speck`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...hardware_profiles import Profile
from ...ir.ops import AvgPool2d, Conv2d, Dense, Flatten, SumPool2d
from ..violation import Violation

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

POOLS = (SumPool2d, AvgPool2d)


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


def as_chw(shape: tuple) -> tuple:
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
    shape = as_chw(pre_shape)
    while i < len(ops) and isinstance(ops[i], POOLS):
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


def layer_limits(profile: Profile, layer: SpeckLayer, out: list) -> None:
    """One layer against a core's kernel, stride, padding, channel and side limits; violations
    appended to ``out``."""
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
