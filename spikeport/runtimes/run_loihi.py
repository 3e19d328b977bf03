#!/usr/bin/env python
"""Run a spikeport network with Nengo-Loihi (written by spikeport deploy --target loihi).

    python run_loihi.py [--target sim|simreal|loihi] [--samples N] [--steps T] [--out FILE]

Reads loihi_meta.json, loihi_network.npz and inputs.npz beside this script, builds the
Nengo network that spikeport's nengo-loihi backend builds for the graph (the same
ensembles of Loihi compartments, transforms, relay populations and block shapes), runs
the stored samples, prints the accuracy when labels are stored and writes the predictions,
each sample's output spike counts and each population's spike totals to predictions.json
beside this script (or to --out). Needs numpy, nengo and nengo-loihi 1.1, not spikeport:
the engine is the folder spikeport_runtime/ beside this script (spikeport's own
spikeport/runtimes, which its backend runs).

--target sim (default; simreal: nengo-loihi's model in floating point): one build on the
emulator; before each sample the state is reset and each population's bias (with an
analog input: W x + b) and v_init are written into its registers at its lag, as spikeport's
backend does: the same predictions as `spikeport validate --backend nengo-loihi`.

--target loihi: nengo_loihi.Simulator(target="loihi") on a board (NxSDK). Registers cannot
be written between runs through nengo-loihi, so each sample is a fresh build with its
input in the bias registers from the first step and its spike trains preloaded;
"rebuild_not_exact" in loihi_meta.json lists what that changes for this network (printed).
--rebuild runs that mode on the emulator.

Exit status: 0 done; 2 a usage error or a missing or unreadable data file; 1 nengo-loihi
cannot build the network; 3 --target loihi with no Loihi board reachable.
"""
import os
import sys


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        import numpy  # noqa: F401
        import nengo  # noqa: F401
        import nengo_loihi  # noqa: F401
    except ImportError as exc:
        sys.stderr.write("run_loihi.py: needs numpy, nengo and nengo-loihi (pip install nengo-loihi): %s\n" % exc)
        return 2
    sys.path.insert(0, here)
    sys.dont_write_bytecode = True      # leave the deployment's folder as it was written
    try:
        from spikeport_runtime import loihi
    except ImportError as exc:
        sys.stderr.write("run_loihi.py: cannot import spikeport_runtime/ beside the script (%s): %s; write the "
                         "deployment again\n" % (here, exc))
        return 2
    return loihi.main(here, description=__doc__.strip().splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
