"""Simulator runtimes: the engines the backends run and ``deploy`` copies beside its scripts.

Every module of this package imports nothing of spikeport (only numpy, and the simulator
it drives, imported where used), and imports its siblings relatively, so that the whole
folder works both as ``spikeport.runtimes`` and as a copy named ``spikeport_runtime`` next
to an emitted script on a machine without spikeport.

- :mod:`.readout`: the readout's tie rule, the one place it is written.
"""
