"""A network's projections in countable form: ``analyze(network, profile) -> Analysis``."""
from __future__ import annotations

import math

import numpy as np

from ...hardware_profiles import Profile
from ..targets import GENERIC, plugin_for
from .conv import ConvForm
from .forms import DenseForm, SparseForm

POOLS = ("sumpool2d", "avgpool2d")


def _pool_map(ops, shape):
    """Column of the dense weight each pre neuron feeds through flattens and poolings with
    disjoint windows: None for the identity, False where the chain is not of that form."""
    colmap = None
    for op in ops:
        if op.kind == "flatten":
            shape = (math.prod(shape),)
            continue
        if op.kind not in POOLS or len(shape) != 3 or any(s < k for s, k in zip(op.stride, op.kernel_size)):
            return False
        c, h, w = shape
        ho, wo = op.out_shape(shape, op.kind)[1:]
        per_axis = []
        for n, k, s, p, no in zip((h, w), op.kernel_size, op.stride, op.padding, (ho, wo)):
            t = np.arange(n) + p
            i = t // s
            per_axis.append(np.where((t - i * s < k) & (i < no), i, -1))
        iy, ix = per_axis
        m = (np.arange(c)[:, None, None] * ho + iy[None, :, None]) * wo + ix[None, None, :]
        m = np.where((iy[None, :, None] >= 0) & (ix[None, None, :] >= 0), m, -1).ravel()
        colmap = m if colmap is None else np.where(colmap >= 0, m[np.maximum(colmap, 0)], -1)
        shape = (c, ho, wo)
    return colmap


def _conv_form(ops):
    """(kernel values, nonzero mask, groups, geometry) of one convolution, of one pooling
    (values and mask None), or of a pooling folded into the convolution after it, exactly as
    backends/loihi/lowering.py folds it; None for other chains."""
    if len(ops) == 1 and ops[0].kind == "conv2d":
        op = ops[0]
        return op.weight, op.weight != 0, op.groups, (op.stride, op.padding, op.dilation)
    if len(ops) == 1 and ops[0].kind in POOLS:
        op = ops[0]
        return None, None, "pool", (op.stride, op.padding, (1, 1))
    if (len(ops) == 2 and ops[0].kind in POOLS and ops[1].kind == "conv2d" and ops[0].padding == (0, 0)
            and ops[1].padding == (0, 0) and ops[1].dilation == (1, 1)):
        pool, op = ops
        (kh, kw), (sh, sw) = pool.kernel_size, pool.stride
        w = op.weight.astype(np.float64) * pool.factor()
        co, cig, uh, uw = w.shape
        shape = (co, cig, (uh - 1) * sh + kh, (uw - 1) * sw + kw)
        values, mask = np.zeros(shape), np.zeros(shape, bool)
        for a in range(kh):
            for b in range(kw):
                cell = (slice(None), slice(None), slice(a, a + (uh - 1) * sh + 1, sh), slice(b, b + (uw - 1) * sw + 1, sw))
                values[cell] += w
                mask[cell] |= w != 0
        return values, mask, op.groups, ((sh * op.stride[0], sw * op.stride[1]), (0, 0), (1, 1))
    return None


def _disjoint_cells(ops):
    """The pooling cell (sh, sw) of a pooling with disjoint windows folded into a convolution, else None."""
    if len(ops) == 2 and ops[0].kind in POOLS and tuple(ops[0].stride) == tuple(ops[0].kernel_size):
        return tuple(ops[0].stride)
    return None


def structure(proj, pre, post, plugin):
    """The countable form of ``proj`` on a target counted by ``plugin``: its equal weight lists
    stored once where the plug-in ``shares_lists`` (nengo-loihi's ``split_synapse``), a convolution
    built as its tool's shared-weight convolution where ``shared_weight_conv`` says so."""
    ops = list(proj.ops)
    shares = plugin.shares_lists
    if ops[-1].kind == "dense":
        colmap = _pool_map(ops[:-1], pre.shape)
        if colmap is not False:
            return DenseForm(proj, pre, post, ops[-1].weight, colmap, shared_cols=shares)
    form = _conv_form(ops) if len(pre.shape) == 3 and len(post.shape) == 3 else None
    if form is not None:
        values, mask, groups, geometry = form
        transform = plugin.shared_weight_conv(form, ops, pre)
        if groups == "pool":
            c = pre.shape[0]
            mask = np.ones((c, 1) + tuple(ops[0].kernel_size), bool)
            groups = c
        return ConvForm(proj, pre, post, mask, groups, geometry, plugin, kernel=values if transform else None,
                        shared_pool=shares and len(ops) == 1 and ops[0].kind in POOLS,
                        cells=_disjoint_cells(ops) if shares and not transform else None)
    return SparseForm(proj, pre, post, dedup=shares)


class Analysis:
    """The projections of a network in countable form, and per-neuron fan-in and fan-out.

    ``structures`` {projection name: form}; ``fan_in(pop)`` synapses into each neuron (all
    projections), ``fan_out(pop)`` synapses out of each neuron, ``axon_fan_in(pop)`` input
    axons one neuron needs on ``profile``'s target (pixels on nengo-loihi's convolution path);
    ``plugin`` the target's plug-in (the generic one without a profile).
    """

    def __init__(self, network, profile: Profile | None = None):
        self.network = network
        self.plugin = GENERIC if profile is None else plugin_for(profile)
        self.pops = {p.name: p for p in network.populations}
        self.structures = {proj.name: structure(proj, self.pops[proj.pre], self.pops[proj.post], self.plugin)
                           for proj in network.projections}
        self._fan = {}

    def _sum(self, what: str, name: str, side: str) -> np.ndarray:
        key = (what, name)
        if key not in self._fan:
            out = np.zeros(self.pops[name].size, np.int64)
            for proj in self.network.projections:
                if getattr(proj, side) == name:
                    out += getattr(self.structures[proj.name], what)()
            self._fan[key] = out
        return self._fan[key]

    def fan_in(self, name: str) -> np.ndarray:
        return self._sum("fan_in", name, "post")

    def fan_out(self, name: str) -> np.ndarray:
        return self._sum("fan_out", name, "pre")

    def axon_fan_in(self, name: str) -> np.ndarray:
        return self._sum("axon_fan_in", name, "post")


def analyze(network, profile: Profile | None = None) -> Analysis:
    """The network's projections in countable form (see :class:`Analysis`)."""
    return Analysis(network, profile)
