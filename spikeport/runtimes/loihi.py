"""The Nengo-Loihi engine: samples on one built emulator, and the standalone script's ``main``.

What spikeport's nengo-loihi backend (``spikeport.backends.loihi``) and the script that
``spikeport deploy --target loihi`` writes (``run_loihi.py``) both run:

- :mod:`.loihi_nengo`: the network's Nengo objects built from its description (arrays
  and meta: every ensemble, spike input, connection and probe), the ``LoihiIF`` neuron type
  and the spike input, and the simulator (nengo and nengo-loihi are imported there);
- :mod:`.loihi_chip`: the built emulator's registers (biases, membranes and currents
  written between samples), the vectorized spike delivery and the overflow tally;
- here: a sample's register writes (:func:`events`, :func:`run_sample`), the bias each
  ensemble is built with (:func:`build_bias`), each population's lag-shifted window
  (:func:`spikes`, :func:`membrane`), and :func:`main`, the script's command line. The
  readout's tie rule is :mod:`.readout`'s.

Samples run one after another on one built simulator (nengo-loihi cannot reset one):
before each sample the state is reset (membranes, currents, refractory counters, spikes
in flight), and each population's bias (with an analog input: W x + b) and v_init are
written into its registers at its lag.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

import numpy as np

from . import readout, write_json
from .loihi_chip import Chip, OverflowTally, block_units, compartments

META, NETWORK = "loihi_meta.json", "loihi_network.npz"
FORMAT, VERSION = "spikeport-loihi-script", 1
MODULES = ("loihi", "loihi_chip", "loihi_nengo")   # this engine's modules: what deploy copies beside run_loihi.py


# ---------------------------------------------------------------------------- one sample

def build_bias(changes, samples: int, chunk: int = 256) -> dict:
    """The bias (thresholds per step) each ensemble is built with: per neuron the level of
    largest magnitude its bias register holds over the samples, taken ``chunk`` samples at a
    time (``changes(k0, k1)``: {population: [(delay, level (k1 - k0, n), kick)]}), so that
    nengo-loihi's discretization picks a scale at which every sample's bias fits."""
    out = {}
    for k0 in range(0, max(samples, 1), chunk):
        for name, stages in changes(k0, min(k0 + chunk, samples)).items():
            levels = np.concatenate([level for _, level, _ in stages] + ([out[name][None]] if name in out else []))
            out[name] = levels[np.abs(levels).argmax(axis=0), np.arange(levels.shape[1])]
    return out


def events(stages: dict, lag: dict, total: int) -> dict:
    """{chip step: [(population, bias level, current kick or None, write v_init)]} within the
    run of one sample; ``stages`` {population: [(steps after its lag, level (1, n), kick (1, n)
    or None)]}, the first stage at the population's lag, where v_init is written too."""
    out = {}
    for name, st in stages.items():
        for j, (d, level, kick) in enumerate(st):
            c = lag[name] + d
            if c < total:
                out.setdefault(c, []).append((name, level[0], None if kick is None else kick[0], j == 0))
    return out


def run_sample(chip: Chip, sample_events: dict, total: int, v_init: dict, trains=None) -> None:
    """Run one sample of ``total`` chip steps from a reset state, the registers written at the
    steps of :func:`events`; ``trains`` (steps, n): the spike input's."""
    chip.reset()
    if trains is not None:
        chip.queue_input(trains)
    cuts = sorted(set(sample_events) | {0, total})
    for a, b in zip(cuts[:-1], cuts[1:]):
        for name, level, kick, first in sample_events.get(a, []):
            chip.write(name, bias=level, voltage=v_init[name] if first else None, current=kick)
        chip.sim.run_steps(b - a)


def spikes(sim, probe, lag: int, steps: int) -> np.ndarray:
    """A population's spikes (steps, n) in its window: the chip steps lag .. lag + steps - 1
    (Loihi delivers a connection one step later: a population at depth L lags by L)."""
    return np.asarray(sim.data[probe])[lag:lag + steps] > 0


def membrane(sim, probe, rows, units) -> np.ndarray:
    """The probed membrane in thresholds (``units`` of one threshold) at the chip steps ``rows``."""
    return np.asarray(sim.data[probe], dtype=np.float64)[rows] / units


# ---------------------------------------------------------------------------- the script

class Fail(Exception):
    """One line for the user, and an exit status."""

    def __init__(self, message, status=2):
        super().__init__(message)
        self.status = status


def load(here):
    """(meta, network arrays, inputs or None), or Fail naming the missing or unreadable file."""
    def path(name):
        p = os.path.join(here, name)
        if not os.path.isfile(p):
            raise Fail("missing data file %s beside the script (%s): write the deployment again" % (name, here))
        return p

    try:
        with open(path(META)) as f:
            meta = json.load(f)
        if meta.get("format") != FORMAT or meta.get("version") != VERSION:
            raise Fail("%s: not a spikeport Loihi script description (version 1)" % META)
        net = dict(np.load(path(NETWORK), allow_pickle=False))
        inputs = dict(np.load(path(meta["inputs"]), allow_pickle=False)) if meta["inputs"] else None
    except Fail:
        raise
    except Exception as exc:
        raise Fail("cannot read the data files: %s: %s" % (type(exc).__name__, " ".join(str(exc).split())))
    return meta, net, inputs


def level(inputs, key, k0, k1, n):
    """A stage's stored bias level (thresholds per step) for samples k0..k1-1: (k1 - k0, n)."""
    a = inputs[key]
    return np.broadcast_to(a, (k1 - k0, n)) if a.ndim == 1 else a[k0:k1]


def stored_changes(meta, inputs, k0, k1):
    """{population: [(delay, level (k1 - k0, n), kick or None)]} of samples k0..k1-1, as stored."""
    out = {}
    for p in meta["populations"]:
        out[p["name"]] = [(st["delay"], level(inputs, "%s_s%d_level" % (p["key"], j), k0, k1, p["size"]),
                           inputs["%s_s%d_kick" % (p["key"], j)][k0:k1] if st["kick"] else None)
                          for j, st in enumerate(p["stages"])]
    return out


def stored_build_bias(meta, inputs, samples):
    """The bias each ensemble is built with: as spikeport computed it for all stored samples,
    else taken over the samples run (:func:`build_bias`)."""
    if samples == meta["samples"]:
        return {p["name"]: inputs[p["key"] + "_build_bias"] for p in meta["populations"]}
    return build_bias(lambda k0, k1: stored_changes(meta, inputs, k0, k1), samples)


def simulate(net, dt, target, report, hardware_options=None):
    """(simulator, its build's warnings), or Fail: the network does not map (1), no board is reachable (3)."""
    from .loihi_nengo import NotBuilt, simulator

    try:
        sim, caught = simulator(net, dt, target, hardware_options)
    except NotBuilt as exc:
        if target == "loihi" and exc.blocks and not exc.build_error:
            raise Fail("target loihi: nengo-loihi built the model (%d blocks, one per core) but no Loihi board "
                       "is reachable: %s" % (exc.blocks, exc), 3)
        raise Fail("nengo-loihi cannot map this network: %s" % exc, 1)
    report["blocks"] = len(sim.model.blocks)
    return sim, caught


def read_sample(meta, sim, probes, units_out, steps):
    """(output counts (classes,), spike totals {population: n}, output membrane in thresholds)."""
    totals, counts = {}, None
    for p in meta["populations"]:
        s = spikes(sim, probes[p["name"]], p["lag"], steps)
        totals[p["name"]] = int(s.sum())
        if p["name"] == meta["output"]:
            counts = s.sum(axis=0)
    return counts, totals, membrane(sim, probes["voltage"], meta["lag"][meta["output"]] + steps - 1, units_out)


def run_registers(meta, data, inputs, samples, steps, target, fast, report):
    """One build; every sample from a reset state, biases and v_init written at each population's lag."""
    from .loihi_nengo import build_network

    dt, total = meta["dt_s"], steps + meta["max_lag"]
    net, names, probes, process = build_network(meta, data, dt, stored_build_bias(meta, inputs, samples))
    sim, caught = simulate(net, dt, target, report)
    report["warnings"] += sorted(set(caught))
    try:
        chip = Chip(sim, names, dt, process, fast, report["overflows"])
        v_init = {p["name"]: data[p["key"] + "_v_init"] for p in meta["populations"]}
        results = []
        for k in range(samples):
            trains = inputs["input_trains"][k][:steps] if process is not None else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the emulator warns at every overflow: tallied instead
                run_sample(chip, events(stored_changes(meta, inputs, k, k + 1), meta["lag"], total), total,
                           v_init, trains)
            report["overflows"].end_sample()
            results.append(read_sample(meta, sim, probes, chip.units[meta["output"]], steps))
            sim.clear_probes()
    finally:
        sim.close()
    return results


def run_rebuild(meta, data, inputs, samples, steps, target, report, hardware_options):
    """A fresh build per sample, its input in the bias registers from the first step (a board's mode)."""
    import nengo

    from .loihi_nengo import build_network

    dt, total = meta["dt_s"], steps + meta["max_lag"]
    results = []
    for k in range(samples):
        bias = {p["name"]: level(inputs, "%s_s%d_level" % (p["key"], len(p["stages"]) - 1), k, k + 1,
                                 p["size"])[0] for p in meta["populations"]}
        trains = inputs["input_trains"][k][:steps] if "input_trains" in inputs else None
        net, names, probes, _ = build_network(meta, data, dt, bias, trains)
        sim, built = simulate(net, dt, target, report, hardware_options)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            emulator = sim.sims.get("emulator")
            if emulator is not None and emulator.compartment.voltage.dtype.kind == "i":
                report["overflows"].attach(emulator.compartment, compartments(sim, names, dt)[0])
            try:
                try:
                    sim.run_steps(total)
                except nengo.exceptions.SimulationError as exc:
                    if target != "loihi":
                        raise
                    raise Fail("target loihi: the board did not run: %s" % " ".join(str(exc).split()), 3)
                _, _, units = block_units(sim, names[meta["output"]], dt)
                results.append(read_sample(meta, sim, probes, units, steps))
            finally:
                sim.close()
        report["overflows"].end_sample()
        messages = set(built) | {str(w.message) for w in caught}
        report["warnings"] += sorted({m for m in messages if not m.startswith("Overflow")} - set(report["warnings"]))
    return results


def main(here, argv=None, description="Run a spikeport network with Nengo-Loihi."):
    """The command line of run_loihi.py, its data files in the directory ``here``; the exit status."""
    ap = argparse.ArgumentParser(description=description,
                                 epilog="Exit status: 0 done; 2 usage or data file; 1 nengo-loihi cannot build "
                                        "the network; 3 no Loihi board reachable (--target loihi).")
    ap.add_argument("--target", choices=("sim", "simreal", "loihi"), default="sim",
                    help="sim: nengo-loihi's emulator (default); simreal: its floating-point model; loihi: a board")
    ap.add_argument("--samples", type=int, default=None, help="run the first N stored samples (default: all)")
    ap.add_argument("--steps", type=int, default=None, help="steps per sample (default: as written)")
    ap.add_argument("--out", default=None, help="predictions file (default: predictions.json beside the script)")
    ap.add_argument("--rebuild", action="store_true",
                    help="one fresh build per sample, input in the biases from the first step (as on a board)")
    ap.add_argument("--slow-routing", action="store_true",
                    help="the emulator's own spike-by-spike delivery instead of the vectorized one (same spikes)")
    ap.add_argument("--n-chips", type=int, default=None, help="--target loihi: chips on the board")
    args = ap.parse_args(argv)
    try:
        return run(args, here)
    except Fail as exc:
        sys.stderr.write("run_loihi.py: %s\n" % exc)
        return exc.status


def run(args, here):
    """Run the stored samples as ``args`` say; write the predictions; 0, or Fail."""
    from .loihi_nengo import build_network

    meta, data, inputs = load(here)
    stored = meta["samples"]
    steps = meta["steps"] if args.steps is None else args.steps
    samples = stored if args.samples is None else args.samples
    if steps < 1:
        raise Fail("--steps must be at least 1, got %d" % steps)
    if "input_trains" in (inputs or {}) and steps > meta["steps"]:
        raise Fail("--steps %d: the spiking input's trains are stored for %d steps" % (steps, meta["steps"]))
    if inputs is None:
        if args.samples:
            raise Fail("no samples are stored with this network (it was written without inputs)")
        net, _, _, _ = build_network(meta, data, meta["dt_s"])
        report = {"warnings": []}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            simulate(net, meta["dt_s"], "sim" if args.target == "loihi" else args.target, report)[0].close()
        print("no samples stored: built the model (%d blocks, one per core)" % report["blocks"])
        return 0
    if not 1 <= samples <= stored:
        raise Fail("--samples must be in [1, %d] (the samples stored), got %d" % (stored, samples))
    rebuild = args.rebuild or args.target == "loihi"
    for line in meta["not_exact"]:
        print("not exact:", line)
    if rebuild:
        for line in meta["rebuild_not_exact"] or ["nothing: this network has no bias that a lag delays, no v_init "
                                                  "and no analog input that varies"]:
            print("rebuild per sample, not exact:", line)
    report = {"warnings": [], "overflows": OverflowTally()}
    start = time.perf_counter()
    if rebuild:
        options = {} if args.n_chips is None else {"n_chips": args.n_chips}
        results = run_rebuild(meta, data, inputs, samples, steps, args.target, report,
                              options if args.target == "loihi" else None)
    else:
        results = run_registers(meta, data, inputs, samples, steps, args.target, not args.slow_routing, report)
    seconds = time.perf_counter() - start
    counts = np.stack([r[0] for r in results]).astype(np.int64)
    predictions = readout.predict(counts, np.stack([r[2] for r in results]))
    accuracy = None
    if "labels" in inputs:
        accuracy = float((predictions == inputs["labels"][:samples]).mean())
    out = {"target": args.target, "mode": "rebuild per sample" if rebuild else "registers",
           "samples": samples, "steps": steps, "run_steps": steps + meta["max_lag"],
           "predictions": predictions.tolist(), "accuracy": accuracy, "output_counts": counts.tolist(),
           "population_spikes": {p["name"]: [r[1][p["name"]] for r in results] for p in meta["populations"]},
           "blocks": report["blocks"], "overflows": report["overflows"].total(),
           "overflow_note": report["overflows"].note(samples), "warnings": report["warnings"],
           "seconds": round(seconds, 3)}
    path = args.out or os.path.join(here, "predictions.json")
    write_json(path, out, Fail)
    print("nengo-loihi %s (%s): %d samples of %d steps on %d blocks in %.2f s"
          % (args.target, out["mode"], samples, steps, report["blocks"], seconds))
    if out["overflow_note"]:
        print(out["overflow_note"])
    if accuracy is not None:
        print("accuracy: %.4f (%d/%d)" % (accuracy, int(round(accuracy * samples)), samples))
    print("predictions written to", path)
    return 0
