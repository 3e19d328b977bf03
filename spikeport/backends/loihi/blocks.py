"""Block shapes (one block per Loihi core) set on the lowered model before it is built.

spikeport has one Loihi block planner: the partitioner's Loihi plug-in
(:mod:`spikeport.deploy.targets.loihi`), which counts, for each candidate shape, what
nengo-loihi builds for every block (compartments, input axons, synapse memory, the output
axons of the blocks feeding it) without building anything, and chooses the fewest blocks
(tiles along channels, rows, columns, or runs of consecutive neurons). The backend takes
those shapes as ``block_shapes``; :func:`spikeport.simulate`, :func:`spikeport.validate` and
``spikeport deploy --target loihi`` pass them, so that what is simulated is what is deployed
and counted. Without ``block_shapes`` (the backend called directly) nengo-loihi splits by
itself, in runs of consecutive neurons sized by each population's totals: enough for small
networks, not for LeNet (a run of its conv2 covering two output rows needs 5760 input axons,
a core has 4096).
"""
from __future__ import annotations

import math

import numpy as np

from ...errors import SpikeportError


def shape_str(shape) -> str:
    return "x".join(str(int(d)) for d in shape)


def check_block_shapes(network, names, block_shapes: dict) -> dict:
    """{name: nengo_loihi.BlockShape} of the given dims, or one clear error. ``names``: the
    ensembles on the chip (populations, then relays ``<population>~relay<k>``)."""
    import nengo_loihi
    from nengo_loihi.block import MAX_COMPARTMENTS

    out = {}
    for name, dims in block_shapes.items():
        if name not in names:
            raise SpikeportError(f"block_shapes: no population {name!r} on the chip (populations: "
                                 f"{', '.join(names)})")
        shape = tuple(network.population(name.split("~relay")[0]).shape)
        try:
            dims = tuple(int(d) for d in (dims if isinstance(dims, (list, tuple)) else [dims]))
        except (TypeError, ValueError):
            raise SpikeportError(f"block_shapes[{name!r}]: {dims!r} is not a list of integers") from None
        ens_shape = shape if len(dims) == len(shape) else (int(np.prod(shape)),) if len(dims) == 1 else None
        if ens_shape is None or any(d < 1 for d in dims):
            raise SpikeportError(f"block_shapes[{name!r}]: {list(dims)} must be positive, one per axis of the "
                                 f"population's shape {list(shape)}, or one (runs of consecutive neurons)")
        dims = tuple(min(d, n) for d, n in zip(dims, ens_shape))
        if math.prod(dims) > MAX_COMPARTMENTS:
            raise SpikeportError(f"block_shapes[{name!r}]: blocks of {shape_str(dims)} hold "
                                 f"{math.prod(dims)} neurons, a Loihi core at most {MAX_COMPARTMENTS}")
        out[name] = nengo_loihi.BlockShape(dims, ens_shape)
    return out


def set_block_shapes(lowered, block_shapes: dict | None) -> list:
    """Set the given shapes on the lowered model's ensembles; the names set, in chip order."""
    given = check_block_shapes(lowered.network, lowered.ensembles, dict(block_shapes or {}))
    for name, shape in given.items():
        lowered.net.config[lowered.ensembles[name]].block_shape = shape
    return [name for name in lowered.ensembles if name in given]


def blocks_note(given: list, names) -> str | None:
    """How the blocks were chosen (None where ``block_size`` set them)."""
    if not given:
        return ("blocks: nengo-loihi's own split (no block_shapes given; spikeport.simulate, validate and "
                "deploy pass the partitioner's)")
    rest = [n for n in names if n not in given]
    return ("blocks: the shapes given (block_shapes: spikeport's partitioner chooses them, "
            "spikeport.deploy.targets.loihi.block_shapes)" + (f"; nengo-loihi's own split for {', '.join(rest)}"
                                                               if rest else ""))
