"""NIR's linear nodes as spikeport ops, one handler per NIR node type in :data:`LINEAR_NODES`.

A handler takes (ops, node, owner, input shape, node metadata) and returns the op to append, or
None when the node changes nothing the chain must append (Identity, a Flatten of one dimension, or a Scale,
which folds itself into ``ops``).
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import GraphError
from ..ops import AvgPool2d, Conv2d, Dense, Flatten, SumPool2d
from .common import MAX_DIAGONAL, Registry, float_array, ints
from .metadata import meta_in

LINEAR_NODES = Registry("NIR linear node type")
# spikeport op kind -> fold(op, s, per_channel): the op with its outputs multiplied by s, or None where it cannot
# take the factor (a Conv2d, unless s is constant over each channel)
SCALE_FOLDS = Registry("spikeport op kind")


def append_node(ops: list, node, t: str, owner: str, shape: tuple) -> tuple:
    """Append NIR node ``node`` (of type ``t``) to the chain ``ops`` that receives ``shape``; its output shape."""
    md = meta_in(node, owner)
    try:
        op = LINEAR_NODES[t](ops, node, owner, shape, md)
        if op is None:
            return shape
    except GraphError as exc:
        msg = str(exc)
        raise GraphError(msg if msg.startswith(owner) else f"{owner}: {msg}") from None
    op.validate(owner)
    out = op.out_shape(shape, owner)
    ops.append(op)
    return out


def append_scale(ops: list, s: np.ndarray, shape: tuple, owner: str, what: str) -> None:
    """Multiply the chain's output elementwise by s (shaped like the output), exactly."""
    if np.all(s == 1):
        return
    s = s.astype(np.float64)
    per_channel = len(shape) == 3 and bool(np.all(s == s[:, :1, :1]))
    fold = SCALE_FOLDS.get(ops[-1].kind) if ops else None
    folded = fold(ops[-1], s, per_channel) if fold is not None else None
    if folded is not None:
        ops[-1] = folded
    elif len(shape) == 1:
        if shape[0] > MAX_DIAGONAL:
            raise GraphError(f"{owner}: {what} on {shape[0]} neurons would need a dense diagonal matrix "
                             f"(limit {MAX_DIAGONAL}); no Dense or Conv2d precedes it to take the factor")
        ops.append(Dense(np.diag(s)))
    elif per_channel:
        ops.append(Conv2d(s[:, 0, 0].reshape(-1, 1, 1, 1).copy(), groups=shape[0]))
    else:
        raise GraphError(f"{owner}: {what} varies within a channel of shape {shape}; no spikeport op scales "
                         f"single neurons of such a population")


@SCALE_FOLDS.register(Dense.kind)
def scaled_dense(op, s, per_channel):
    return Dense(op.weight * s.reshape(-1, 1))


@SCALE_FOLDS.register(Conv2d.kind)
def scaled_conv2d(op, s, per_channel):
    if not per_channel:
        return None
    return Conv2d(op.weight * s[:, 0, 0].reshape(-1, 1, 1, 1), stride=op.stride, padding=op.padding,
                  dilation=op.dilation, groups=op.groups)


def identity_op(shape: tuple, owner: str):
    """The op of a direct edge between two populations of the same shape."""
    if len(shape) == 1:
        return Flatten()
    if len(shape) == 3:
        return SumPool2d(1)
    raise GraphError(f"{owner}: a direct edge between populations of shape {shape} has no spikeport identity op")


@LINEAR_NODES.register("Affine", "Linear")
def dense(ops, node, owner, shape, md):
    """Affine and Linear: a Dense op (an Affine's bias becomes the population's, in the importer)."""
    w = float_array(node.weight, owner, "weight")
    if w.ndim != 2:
        raise GraphError(f"{owner}: weight must be 2-D (n_out, n_in), got shape {w.shape}")
    return Dense(w)


@LINEAR_NODES.register("Scale")
def scale(ops, node, owner, shape, md):
    """Scale: folded into the previous Dense/Conv2d, else a diagonal op."""
    s = float_array(node.scale, owner, "scale")
    try:
        s = np.broadcast_to(s, shape)
    except ValueError:
        raise GraphError(f"{owner}: scale of shape {s.shape} does not fit its input {shape}") from None
    append_scale(ops, s, shape, owner, "scale")
    return None


@LINEAR_NODES.register("Conv2d")
def conv2d(ops, node, owner, shape, md):
    """Conv2d, with NIR's 'same' / 'valid' padding resolved to spikeport's symmetric padding."""
    w = float_array(node.weight, owner, "weight")
    if w.ndim != 4:
        raise GraphError(f"{owner}: weight must be 4-D (C_out, C_in/groups, kh, kw), got shape {w.shape}")
    stride = ints(node.stride, owner, "stride")
    dilation = ints(node.dilation, owner, "dilation")
    groups = ints(node.groups, owner, "groups", 1)[0]
    padding = node.padding
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):
        if padding == "valid":
            padding = (0, 0)
        elif padding == "same":
            total = [d * (k - 1) for d, k in zip(dilation, w.shape[2:])]
            if stride != (1, 1) or any(t % 2 for t in total):
                raise GraphError(f"{owner}: padding 'same' with stride {stride} and kernel {w.shape[2:]} pads "
                                 f"unevenly, which spikeport's symmetric padding cannot express")
            padding = tuple(t // 2 for t in total)
        else:
            raise GraphError(f"{owner}: unknown padding {padding!r}")
    else:
        padding = ints(padding, owner, "padding")
    if node.input_shape is not None and len(shape) == 3:
        declared = ints(node.input_shape, owner, "input_shape")
        if declared != tuple(shape[1:]):
            raise GraphError(f"{owner}: declares input_shape {declared} but receives {tuple(shape)}")
    return Conv2d(w, stride=stride, padding=padding, dilation=dilation, groups=groups)


def pool_args(node, owner) -> tuple:
    """(kernel, stride, padding) of a pooling node; the stride defaults to the kernel."""
    kernel = ints(node.kernel_size, owner, "kernel_size")
    stride = kernel if node.stride is None else ints(node.stride, owner, "stride")
    padding = (0, 0) if node.padding is None else ints(node.padding, owner, "padding")
    return kernel, stride, padding


@LINEAR_NODES.register("SumPool2d")
def sum_pool(ops, node, owner, shape, md):
    return SumPool2d(*pool_args(node, owner))


@LINEAR_NODES.register("AvgPool2d")
def avg_pool(ops, node, owner, shape, md):
    """AvgPool2d; with padding only when the node's metadata says the padding counts (spikeport's does)."""
    kernel, stride, padding = pool_args(node, owner)
    if any(padding) and md.get("count_include_pad") is not True:
        raise GraphError(f"{owner}: NIR does not say whether padding counts in the average; spikeport's "
                         f"AvgPool2d counts it (metadata 'count_include_pad': true says so)")
    return AvgPool2d(kernel, stride, padding)


@LINEAR_NODES.register("Flatten")
def flatten(ops, node, owner, shape, md):
    """Flatten of all dimensions; one that changes no shape is dropped; any other is refused."""
    nd = len(shape)
    start, end = (ints(v, owner, what, 1)[0] for v, what in ((node.start_dim, "start_dim"),
                                                              (node.end_dim, "end_dim")))
    s, e = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
    if not 0 <= s <= e < nd:
        raise GraphError(f"{owner}: start_dim {start} / end_dim {end} do not fit its input of shape {shape}")
    out = shape[:s] + (math.prod(shape[s:e + 1]),) + shape[e + 1:]
    if len(out) == 1:
        return Flatten()
    if out == tuple(shape):
        return None
    raise GraphError(f"{owner}: flattens {shape} to {out}; spikeport's Flatten flattens all dimensions")


@LINEAR_NODES.register("Identity")
def identity(ops, node, owner, shape, md):
    return None
