"""Deployment artifacts for the brian2 and spinnaker targets: standalone scripts and their data.

:func:`write_brian2` writes ``run_brian2.py`` with ``brian2_network.json`` (structure),
``brian2_network.npz`` (arrays) and ``spikeport_runtime/`` (the Brian2 engine the brian2
backend runs, :mod:`spikeport.runtimes.brian2_engine`, with its readout). The script is
:mod:`spikeport.runtimes.run_brian2` as it is; it needs Brian2 and numpy, not spikeport::

    python run_brian2.py [--samples N] [--steps T] [--out predictions.json]
                         [--batch B] [--codegen auto|numpy|cython]

It builds what :mod:`spikeport.backends.brian` builds, with the same engine (its lowering is
stated there), from the same arrays (:mod:`spikeport.backends.brian_lowering`): analog input
as each receiving population's constant current (``apply_numpy`` in float64), stored per
sample and per delay; Poisson and regular input as the reference executor's own trains
(``common.input_trains``, stored), so a run is deterministic and spike for spike equal to
the backend's. It refuses what the backend refuses, with the same message (several spikes
per step, a recurrent graph), except a fixed-point network (a chip's integer formats,
:mod:`spikeport.ir.arithmetic`): a deployed network is one, and the engine runs its integer
arithmetic in float64 (exact below 2**53) as the reference executor's fixed-point mode does.

The script writes predictions.json: per sample the predicted class (the readout of
:mod:`spikeport.runtimes.readout`: most output spikes, ties to the higher final membrane,
then the lower index), the output spike counts and the label if stored, plus the accuracy.

:func:`write_spinnaker` writes the PyNN script of
:func:`spikeport.backends.spinnaker.write_script` (``run_spinnaker.py``, ``network.json``,
``network.npz``, ``spikeport_runtime/``) and ``placements.json``: sPyNNaker's own placements
on a virtual SpiNN-5 board (:func:`spikeport.backends.spinnaker.placements`). When the
script runs on a machine it records that machine's placements in ``placements_run.json``,
so the two never overwrite each other.

Nothing here imports brian2, PyNN or sPyNNaker at import time.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import SpikeportError
from ..runtimes import install, installed, script_text

BRIAN2_SCRIPT = "run_brian2.py"
BRIAN2_JSON = "brian2_network.json"
BRIAN2_NPZ = "brian2_network.npz"
PLACEMENTS = "placements.json"
PLACEMENTS_RUN = "placements_run.json"


# ---------------------------------------------------------------------------- brian2

def write_brian2(network, out_dir, *, x=None, labels=None, steps: int = 100, seed: int = 0) -> list[Path]:
    """Write a standalone Brian2 script and its data into ``out_dir``; returns the paths of the
    script, its two data files and ``spikeport_runtime/`` (the engine) beside them.

    x : samples (samples, *input_shape) stored with the script (analog: each receiving
        population's current; spiking: the reference executor's input trains for ``seed``)
    labels : their classes, stored so the script reports accuracy
    steps : the default number of steps of a run (a spiking input's trains are stored
        for this many steps, the most a run of the script can use)
    """
    from ..backends import brian_lowering, common

    meta, arrays = brian_lowering.describe(network, steps, seed)
    steps = meta["steps"]
    if x is not None:
        x, steps, _ = common.check_run(network, x, steps)
        samples = len(x)
        keys = {p["name"]: p["key"] for p in meta["populations"]}
        for name, currents in brian_lowering.analog_currents(network, meta, x).items():
            for k, current in enumerate(currents):
                arrays[f"{keys[name]}_analog{k}"] = current
        if meta["input"]["encoding"] != "analog":
            arrays["input_trains"] = common.input_trains(network, x, steps, seed=seed)
        if labels is not None:
            lab = np.asarray(labels).reshape(-1)
            if len(lab) < samples:
                raise SpikeportError(f"labels: {len(lab)} for {samples} samples")
            arrays["labels"] = lab[:samples].astype(np.int64)
        meta.update(samples=samples, labels="labels" in arrays)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / BRIAN2_SCRIPT, out / BRIAN2_JSON, out / BRIAN2_NPZ]
    paths[1].write_text(json.dumps(meta, indent=1) + "\n")
    np.savez_compressed(paths[2], **arrays)
    paths[0].write_text(script_text(BRIAN2_SCRIPT))
    paths[0].chmod(0o755)
    return paths + install(out, "brian2_engine")


# ---------------------------------------------------------------------------- spinnaker

def write_spinnaker(network, out_dir, *, x=None, labels=None, steps: int = 100, neurons_per_core=None,
                    seed: int = 0, placements: dict | None = None) -> list[Path]:
    """Write the SpiNNaker artifacts into ``out_dir``; returns the paths written (the runtime
    :func:`spikeport.backends.spinnaker.write_script` copies included).

    ``run_spinnaker.py``, ``network.json`` and ``network.npz``: the standalone PyNN script of
    :func:`spikeport.backends.spinnaker.write_script` for a real machine (it records the
    machine's placements in ``placements_run.json`` when run); ``placements.json``:
    sPyNNaker's placements of the network on a virtual SpiNN-5 board, per population its
    cores (x, y, p, first neuron, last neuron) and chips, and the totals.

    neurons_per_core : None (sPyNNaker's default for spikeport, 255), one int for every
        population, or {population: n} (others get the default)
    placements : the result of :func:`spikeport.backends.spinnaker.placements` for this network,
        ``neurons_per_core`` and ``steps``, where the caller has mapped it already (the deploy
        pipeline counts cores and chips with it); None: mapped here
    """
    from ..backends import spinnaker

    if neurons_per_core is None:
        neurons_per_core = spinnaker.DEFAULT_NEURONS_PER_CORE
    steps = int(steps)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    placed = placements
    if placed is None:
        placed = spinnaker.placements(network, neurons_per_core=neurons_per_core, steps=steps)
    script = spinnaker.write_script(network, out, x, steps, labels=labels, seed=seed,
                                    neurons_per_core=neurons_per_core, placements_file=PLACEMENTS_RUN)
    pops = placed["populations"]
    body = {"format": "spikeport-spinnaker-placements", "version": 1, "source": "sPyNNaker (virtual board mapping)",
            "board": placed["board"], "neurons_per_core": placed["neurons_per_core"],
            "total_cores": placed["total_cores"], "total_chips": placed["total_chips"],
            "population_cores": sum(e["cores"] for e in pops.values()),
            "populations": {name: {"neurons": e["neurons"], "cores": e["cores"], "chips": e["chips"],
                                   "placements": [{"x": c[0], "y": c[1], "p": c[2], "first": c[3], "last": c[4]}
                                                  for c in e["placements"]]}
                            for name, e in pops.items()},
            "other": {name: {"cores": e["cores"], "chips": e["chips"]} if name == "system" else
                      {"cores": e["cores"], "chips": e["chips"],
                       **({"serves": e["serves"]} if "serves" in e else {}),
                       "placements": [{"x": c[0], "y": c[1], "p": c[2]} for c in e["placements"]]}
                      for name, e in placed["other"].items()},
            "summary": spinnaker.summary(placed),
            "note": "total_cores counts the populations' cores and the other application cores (delay "
                    "extensions); sPyNNaker's system cores are listed under other.system, not counted"}
    path = out / PLACEMENTS
    path.write_text(json.dumps(body, indent=1) + "\n")
    return [script, out / "network.json", out / "network.npz", path] + installed(out, "pynn_engine")
