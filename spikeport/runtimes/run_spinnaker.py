#!/usr/bin/env python
"""Run a spikeport network on SpiNNaker with sPyNNaker (written by spikeport's spinnaker backend).

Reads network.json and network.npz from this script's directory, builds the network with
PyNN standard cells (the engine in spikeport_runtime/ beside this script: the one
spikeport's PyNN lowering builds with), runs each sample for steps + max_lag steps and one
more (the network is set up afresh for each sample), counts each output neuron's spikes in
the output's window [lag, lag + steps) and writes results.npz (counts, predictions, the
tie rule used) and the placements (the cores sPyNNaker used per population) next to this
script.

    python run_spinnaker.py [--samples N] [--neurons-per-core K]

With no samples (or --samples 0) it maps and loads the network once, without input.

The readout: most output spikes; ties to the higher membrane after the last step (recorded),
then the lower index; where the membrane does not come back, ties to the lower index (the
output says which). What differs from the graph's semantics is listed under "not_exact" in
network.json and printed when the script starts. On a virtual board sPyNNaker maps but does
not run: no spikes come back, and the script says so.
"""
import argparse
import os
import sys

PLACEMENTS = "placements.json"  # the file this script writes its placements to


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=None, help="samples to run (default: all)")
    ap.add_argument("--neurons-per-core", type=int, default=None,
                    help="one limit for every population (default: as written, per population where given)")
    args = ap.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from spikeport_runtime import pynn_engine

    return pynn_engine.main(args, here, PLACEMENTS)


if __name__ == "__main__":
    sys.exit(main())
