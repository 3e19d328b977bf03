"""Padding every path into a population to its lag: the relay-lag formula, written once.

A simulator that delivers projection ``p`` after more steps than the graph's ``delay_steps``
(Loihi, NEST, SpiNNaker: one step at least) runs each population ``lag`` steps behind the
graph (the longest realized path into it: ``spikeport.backends.common.lags``). Padding every
projection to :func:`padded_delay` steps makes all paths into a population arrive aligned,
residual connections included. The Loihi backend realizes the padding as relay populations
(:func:`relay_depths`), which deploy's partitioner counts as cores; sPyNNaker as synaptic
delays, with delay extensions where a ring buffer holds too few.
"""
from __future__ import annotations


def padded_delay(proj, lag: dict) -> int:
    """Steps projection ``proj`` takes once padded: ``lag[post] - lag[pre] + delay_steps``."""
    return lag[proj.post] - lag[proj.pre] + proj.delay_steps


def relay_depths(network, lag: dict, analog: bool) -> dict:
    """{projection: relays its spikes pass through} on a chip that delivers every connection one
    step later (Loihi): :func:`padded_delay` less that step. Projection ``p`` leaves from relay
    ``depth[p]`` of its source, relays chained from the source (0: the source itself). With an
    ``analog`` input, the input's projections carry currents, not spikes, and have no entry."""
    return {p.name: padded_delay(p, lag) - 1 for p in network.projections
            if not (analog and p.pre == network.input)}
