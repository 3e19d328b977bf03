#!/usr/bin/env python
"""Run a spikeport network with Brian2 (written by spikeport deploy); needs brian2 and numpy only.

Reads brian2_network.json and brian2_network.npz from this script's directory and runs the
stored samples for --steps steps each with the engine in spikeport_runtime/ beside it (the
brian2 backend's own: one NeuronGroup per spiking population applying the graph's discrete
neuron map once per step, one Synapses object per projection, same-step delivery); prints
the accuracy when labels are stored and writes predictions.json: per sample the predicted
class (most output spikes; ties to the higher final membrane, then the lower index), the
output spike counts and the label.

    python run_brian2.py [--samples N] [--steps T] [--out predictions.json]
                         [--batch B] [--codegen auto|numpy|cython]
"""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
JSON_FILE, NPZ_FILE = "brian2_network.json", "brian2_network.npz"
FORMAT = "spikeport-brian2-script"


class UsageError(Exception):
    """A problem with the files or the options: one line on stderr, exit status 2."""


def load():
    """The network's description and arrays from this script's directory."""
    import numpy as np

    paths = [os.path.join(HERE, name) for name in (JSON_FILE, NPZ_FILE)]
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError("missing data file %s (it must lie next to this script)" % path)
    try:
        with open(paths[0]) as f:
            meta = json.load(f)
    except (OSError, ValueError) as exc:
        raise UsageError("cannot read %s: %s" % (paths[0], exc))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UsageError("%s is not a spikeport brian2 network description" % paths[0])
    try:
        with np.load(paths[1]) as npz:
            data = {name: npz[name] for name in npz.files}
    except Exception as exc:
        raise UsageError("cannot read %s: %s" % (paths[1], exc))
    keys = ["%s_%s" % (p["key"], a) for p in meta["populations"] for a in ("v_init", "bias")]
    keys += ["%s_%s" % (q["key"], a) for q in meta["projections"] for a in ("pre", "post", "weight")]
    if meta["samples"]:
        keys += (["input_trains"] if meta["input"]["encoding"] != "analog" else
                 ["%s_analog%d" % (p["key"], k) for p in meta["populations"] for k in range(len(p["analog_delays"]))])
    missing = [k for k in keys if k not in data]
    if missing:
        raise UsageError("%s lacks the array %r: rewrite it with spikeport" % (paths[1], missing[0]))
    return meta, data


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 epilog="Reads %s and %s next to this script." % (JSON_FILE, NPZ_FILE))
    ap.add_argument("--samples", type=int, default=None, help="samples to run (default: all stored)")
    ap.add_argument("--steps", type=int, default=None, help="steps per sample (default: as written)")
    ap.add_argument("--out", default="predictions.json", help="where to write the predictions "
                    "(default: predictions.json in the current directory)")
    ap.add_argument("--batch", type=int, default=None, help="samples simulated side by side (default: as many "
                    "as fit in 4000000 synapses, at most 64)")
    ap.add_argument("--codegen", choices=("auto", "numpy", "cython"), default="auto",
                    help="Brian2's code generation target (default: auto, Brian2's choice)")
    args = ap.parse_args(argv)
    try:
        meta, data = load()
        sys.path.insert(0, HERE)
        try:
            from spikeport_runtime import brian2_engine
        except ImportError as exc:
            raise UsageError("cannot import the engine in spikeport_runtime/ (it must lie next to this script): %s"
                             % exc)
        try:
            return brian2_engine.main(args, meta, data)
        except brian2_engine.UsageError as exc:
            raise UsageError(str(exc))
    except UsageError as exc:
        print("%s: error: %s" % (os.path.basename(__file__), exc), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
