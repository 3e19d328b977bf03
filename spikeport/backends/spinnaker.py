"""The spinnaker backend: the graph on SpiNNaker through sPyNNaker (``pyNN.spiNNaker``).

The network is lowered by :mod:`spikeport.backends.pynn_lowering` with PyNN's standard
cells (:class:`~spikeport.backends.pynn_lowering.StandardCells`: ``IF_curr_delta``, or
``IF_curr_exp`` for a synaptic current) and mapped by sPyNNaker onto a *virtual*
SpiNN-5 board (48 chips): partitioning into cores, placement, routing and routing tables
run; data generation, loading and running do not (:func:`placements` stops sPyNNaker's
run after its mapping phase), so no spike comes back. Hence:

- :func:`placements` maps a network and returns sPyNNaker's own placements: per
  population the cores (chip x, y, processor p, neuron range) and chips it uses, and
  :func:`counts` the chips and cores per population they come to;
- :func:`run` maps the network too, then raises a one-line :class:`SpikeportError`
  saying that the virtual board maps but does not simulate, with the mapping's
  summary: returning an Activity would mean inventing spikes;
- :func:`write_script` writes a standalone PyNN script with the network's weights,
  which runs unchanged on a real SpiNNaker machine (it reads its files relative to its
  own directory and needs only sPyNNaker and numpy).

sPyNNaker reads its configuration from the home directory. Everything here runs with a
private temporary HOME (and XDG_CONFIG_HOME) holding a ``.spynnaker.cfg`` for the virtual
board, in a temporary working directory for sPyNNaker's reports; the user's home is
never read or written.

What the SpiNNaker lowering does not realize exactly (also in the script's docstring):
reset by subtraction (standard cells reset to v_reset: reset to zero); IF neurons leak
with tau_m = 32768 steps (sPyNNaker stores tau_m in s16.15 fixed point); SpiNNaker's
fixed-point arithmetic (s16.15 membranes, weights scaled into 16 bits per synapse type);
constant currents (bias and analog input) flow from the first step of a run, so a
population with lag L > 0 integrates L steps of bias before its input arrives (NEST's
backend starts each population at its own lag; a PyNN script cannot). None of this is
measured here: the virtual board does not run.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import pyNN.spiNNaker as sim  # (the simulator: an ImportError here becomes the install hint)

from ..errors import SpikeportError
from ..ir import Network
from . import common
from .pynn_lowering import STEP_MS, Lowering, StandardCells, create_input, create_populations, create_projections

BACKEND = "spinnaker"
VIRTUAL_BOARD_CFG = "[Machine]\nvirtual_board = True\nversion = 5\n\n[Logging]\ndefault = warning\n"
DEFAULT_NEURONS_PER_CORE = 256  # sPyNNaker's own default (DEFAULT_MAX_ATOMS_PER_CORE), as deploy maps
SCRIPT = "run_spinnaker.py"


_SESSION_DIR = None


def _session_dir() -> Path:
    """One temporary directory per process for every mapping's private home and reports,
    removed at exit. sPyNNaker writes into a run's report directory after ``sim.end()``
    (its global provenance database, and an exit hook), so a directory removed earlier
    reappears; this exit hook is registered before sPyNNaker's and so runs after them."""
    global _SESSION_DIR
    if _SESSION_DIR is None:
        import atexit

        _SESSION_DIR = Path(tempfile.mkdtemp(prefix="spikeport-spinnaker-"))
        atexit.register(shutil.rmtree, str(_SESSION_DIR), True)
    return _SESSION_DIR


@contextlib.contextmanager
def virtual_board(config: str = VIRTUAL_BOARD_CFG):
    """Run the body with a private HOME (and XDG_CONFIG_HOME) holding ``.spynnaker.cfg``
    = ``config``, in a temporary working directory (sPyNNaker writes ``reports/`` there);
    restores the environment and the working directory afterwards. Yields the directory
    (home/ and work/ inside), which lives in a per-process temporary directory removed
    when the process exits."""
    saved = {k: os.environ.get(k) for k in ("HOME", "XDG_CONFIG_HOME")}
    cwd = os.getcwd()
    tmp = Path(tempfile.mkdtemp(prefix="map-", dir=_session_dir()))
    try:
        home = tmp / "home"
        (home / ".config").mkdir(parents=True)
        (home / ".spynnaker.cfg").write_text(config)
        work = tmp / "work"
        work.mkdir()
        os.environ["HOME"], os.environ["XDG_CONFIG_HOME"] = str(home), str(home / ".config")
        os.chdir(work)
        yield tmp
    finally:
        os.chdir(cwd)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def private_env(tmp: str | Path, config: str = VIRTUAL_BOARD_CFG) -> dict:
    """Environment variables for a subprocess (e.g. the script of :func:`write_script`) that
    should use a virtual board: a copy of os.environ with HOME and XDG_CONFIG_HOME inside
    ``tmp``, where the configuration is written."""
    home = Path(tmp, "home")
    (home / ".config").mkdir(parents=True, exist_ok=True)
    (home / ".spynnaker.cfg").write_text(config)
    env = dict(os.environ)
    env["HOME"], env["XDG_CONFIG_HOME"] = str(home), str(home / ".config")
    return env


def _read_placements(labels: dict) -> tuple:
    """sPyNNaker's placements of the current mapping, grouped by application vertex label, and
    {label: population} for the delay extensions (the population whose spikes each delays)."""
    from spinn_front_end_common.data import FecDataView

    out, serves = {}, {}
    for pl in FecDataView.iterate_placemements():
        vertex = pl.vertex
        app = getattr(vertex, "app_vertex", None)
        label = getattr(app, "label", None) or vertex.label or "?"
        vslice = getattr(vertex, "vertex_slice", None)
        lo = getattr(vslice, "lo_atom", None)
        hi = getattr(vslice, "hi_atom", None)
        key = labels.get(label, label if not str(label).startswith("SYSTEM") else "system")
        source = getattr(app, "source_vertex", None)  # a DelayExtensionVertex delays its source's spikes
        if key not in labels.values() and getattr(source, "label", None) in labels:
            serves[key] = labels[source.label]
        out.setdefault(key, []).append([int(pl.x), int(pl.y), int(pl.p),
                                        None if lo is None else int(lo), None if hi is None else int(hi)])
    return out, serves


_MISSING = object()


@contextlib.contextmanager
def _mapping_only():
    """While the body runs, ``sim.run`` stops after sPyNNaker's mapping phase (splitting into
    cores, delay extensions, placement, routing, routing tables): its load phase (data
    generation, i.e. every synaptic matrix written for the board, then loading) and its run
    phase are skipped. On a virtual board they load and run nothing, but writing the data
    takes most of the time (a 784-2000-2000-10 MLP on a busy two-core machine: 61 of 66 s).
    The placements are those of the full run: they are made before the load phase and not
    changed by it."""
    from spynnaker.pyNN.spinnaker import SpiNNaker

    names = ("_do_load", "_do_run")
    saved = {name: SpiNNaker.__dict__.get(name, _MISSING) for name in names}

    def skipped(self, *args, **kwargs):
        return None

    for name in names:
        setattr(SpiNNaker, name, skipped)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                delattr(SpiNNaker, name)
            else:
                setattr(SpiNNaker, name, value)


def neurons_per_core_limits(network: Network, neurons_per_core) -> tuple:
    """(one limit for every cell type, {population: limit}) from one int or a dict {population: n}
    (populations it does not name get DEFAULT_NEURONS_PER_CORE); each limit in [1, 256]."""
    if isinstance(neurons_per_core, dict):
        names = {p.name for p in network.populations}
        unknown = sorted(set(map(str, neurons_per_core)) - names)
        if unknown:
            raise SpikeportError(f"neurons_per_core: no population named {unknown[0]!r}")
        default, per_pop = DEFAULT_NEURONS_PER_CORE, {str(k): int(v) for k, v in neurons_per_core.items()}
    else:
        default, per_pop = int(neurons_per_core), {}
    for n in [default, *per_pop.values()]:
        if not 1 <= n <= 256:
            raise SpikeportError(f"neurons_per_core must be in [1, 256] (a SpiNNaker core), got {n}")
    return default, per_pop


def placements(network: Network, *, neurons_per_core: int | dict = DEFAULT_NEURONS_PER_CORE,
               steps: int = 100, mapping_only: bool = True) -> dict:
    """Map ``network`` onto a virtual SpiNN-5 board and return sPyNNaker's placements.

    The network is built as :func:`write_script`'s script builds it for one sample
    (spiking input as a ``SpikeSourceArray``; an analog input has no population: its
    current is each receiving population's ``i_offset``), recording the output
    population's spikes for ``steps`` steps plus the lowering's lag.

    Returns {"board": ..., "neurons_per_core": ..., "total_cores", "total_chips",
    "populations": {name: {"neurons", "cores", "chips": [[x, y], ...],
    "placements": [[x, y, p, first, last], ...]}}, "other": {label: {..., "serves"}}} where
    "other" holds vertices that are no population of the graph (delay extensions, with
    "serves": the population whose spikes they delay; sPyNNaker's system cores), and
    "seconds" the mapping time. ``neurons_per_core`` is one limit for every population or
    {population: limit} (others: the default), set with ``Population.set_max_atoms_per_core``.

    ``mapping_only`` (default): sPyNNaker's run stops after its mapping phase, so that the
    placements cost seconds, not the minutes that writing every synaptic matrix for the
    virtual board takes on a large network (the placements are the same); an error that only
    sPyNNaker's data generation raises then shows only where the script runs. False runs
    sPyNNaker's whole virtual-board workflow, data generation included.
    """
    default, per_pop = neurons_per_core_limits(network, neurons_per_core)
    neurons_per_core = dict(per_pop) if isinstance(neurons_per_core, dict) else default
    lowering = Lowering(network, StandardCells())
    start = time.perf_counter()
    with virtual_board(), _quiet():
        sim.setup(timestep=STEP_MS)
        try:
            for model in {lp.cell.model for lp in lowering.populations.values()}:
                sim.set_number_of_neurons_per_core(getattr(sim, model), default)
            pops = create_populations(sim, lowering, 1)
            run_steps = int(steps) + lowering.max_lag
            inp = create_input(sim, lowering, None, 1, placeholder=run_steps + 1)  # a spike after the run
            if inp is not None:
                pops[lowering.input] = inp
            for name, n in per_pop.items():
                if name in pops:  # an analog input has no population
                    pops[name].set_max_atoms_per_core(n)
            create_projections(sim, lowering, pops, 1)
            pops[network.output].record("spikes")
            try:
                with _mapping_only() if mapping_only else contextlib.nullcontext():
                    sim.run(run_steps * STEP_MS)
            except Exception as exc:  # a network the board cannot hold is the user's to change
                first = (str(exc).strip().splitlines() or [""])[0]
                raise SpikeportError(f"sPyNNaker could not map the network onto a virtual SpiNN-5 board "
                                     f"({neurons_per_core} neurons per core): {type(exc).__name__}: {first}") from None
            raw, serves = _read_placements({name: name for name in pops})
        finally:
            sim.end()
            _detach_log_store()
    result = {"board": "SpiNN-5 (virtual, 48 chips)", "neurons_per_core": neurons_per_core, "populations": {},
              "other": {}, "mapping_only": bool(mapping_only), "seconds": time.perf_counter() - start}
    sizes = {p.name: p.size for p in network.populations}
    for name, cores in raw.items():
        cores = sorted(cores)
        entry = {"cores": len(cores), "chips": sorted({(c[0], c[1]) for c in cores}), "placements": cores}
        if name in sizes:
            entry["neurons"] = sizes[name]
            entry["chips"] = [list(c) for c in entry["chips"]]
            result["populations"][name] = entry
        else:
            entry["chips"] = [list(c) for c in entry["chips"]]
            if name in serves:
                entry["serves"] = serves[name]
            result["other"][name] = entry
    used = [c for e in result["populations"].values() for c in e["placements"]]
    used += [c for k, e in result["other"].items() if k != "system" for c in e["placements"]]
    result["total_cores"] = len(used)
    result["total_chips"] = len({(c[0], c[1]) for c in used})
    return result


def counts(placed: dict) -> dict:
    """The counts that :func:`placements`' result comes to: {"chips": distinct (x, y) of the
    application cores, "cores": distinct (x, y, p) of the application cores, "per_population":
    {population: its distinct cores plus those of the delay extensions that serve it},
    "delay_extensions": {population: cores of the delay extensions serving it}}. Application
    cores are the populations' and the delay extensions'; sPyNNaker's system cores (a monitor on
    every chip of the board) are not counted. A delay extension whose population is not known
    (another sPyNNaker's labels) counts in the totals only."""
    per_pop, ext, used = {}, {}, set()
    for name, entry in placed["populations"].items():
        cores = {tuple(c[:3]) for c in entry["placements"]}
        per_pop[name] = len(cores)
        used |= cores
    for name, entry in placed["other"].items():
        if name == "system":
            continue
        cores = {tuple(c[:3]) for c in entry["placements"]}
        used |= cores
        served = entry.get("serves")
        if served in per_pop:
            ext[served] = ext.get(served, 0) + len(cores)
            per_pop[served] += len(cores)
    return {"chips": len({c[:2] for c in used}), "cores": len(used), "per_population": per_pop,
            "delay_extensions": ext}


def summary(placed: dict) -> str:
    """One line: cores per population and the totals."""
    parts = [f"{name}: {e['cores']} core{'s' * (e['cores'] != 1)}" for name, e in placed["populations"].items()]
    chips = placed["total_chips"]
    return (f"{placed['total_cores']} cores on {chips} chip{'s' * (chips != 1)} of a {placed['board']} board, "
            f"{placed['neurons_per_core']} neurons per core ({', '.join(parts)})")


def run(network: Network, x, steps: int, *, checkpoints=None, seed: int = 0, record_counts: bool = False,
        progress=None, neurons_per_core: int = DEFAULT_NEURONS_PER_CORE):
    """Map ``network`` on a virtual SpiNN-5 board, then raise a one-line SpikeportError: the
    virtual board maps but does not simulate, so there are no spikes to report. The message
    carries the mapping (cores per population) and says how to get results from a real
    machine (:func:`write_script`)."""
    common.check_run(network, x, steps, checkpoints)
    placed = placements(network, neurons_per_core=neurons_per_core, steps=int(steps))
    raise SpikeportError(
        "the spinnaker backend maps onto a virtual SpiNN-5 board, which does not simulate (no spikes come back): "
        f"mapped {summary(placed)}; to run on a real SpiNNaker machine, write a script with "
        "spikeport.backends.spinnaker.write_script(network, out_dir, x) and run it there")


def _detach_log_store():
    """sPyNNaker keeps its warnings in the run's report directory and, at exit, reads them
    back and repeats them on stderr ("Data from a virtual run will be empty"): that would
    recreate the removed directory and repeat what :func:`run` already says. Detach it."""
    try:
        from spinn_utilities.log import FormatAdapter
    except ImportError:  # pragma: no cover - another sPyNNaker layout
        return
    FormatAdapter.set_log_store(None)
    pop = getattr(FormatAdapter, "_pop_not_stored_messages", None)
    if pop is not None:
        pop()


@contextlib.contextmanager
def _quiet():
    """sPyNNaker prints progress bars (on stderr) and reports (on stdout): keep them out of
    the caller's output, and show their tail if the mapping fails."""
    import io
    import sys

    buf = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        warnings.simplefilter("ignore")
        try:
            yield
        except SpikeportError:
            raise  # one line says it all
        except BaseException:
            sys.__stderr__.write(buf.getvalue()[-4000:])
            raise


# ---------------------------------------------------------------------------- the standalone script

def write_script(network: Network, out_dir, x=None, steps: int = 100, *, labels=None, seed: int = 0,
                 neurons_per_core: int | dict = DEFAULT_NEURONS_PER_CORE,
                 placements_file: str = "placements.json") -> Path:
    """Write a standalone PyNN script for a real SpiNNaker machine into ``out_dir``.

    Files: ``run_spinnaker.py`` (the script), ``network.json`` (populations, cells,
    projections, lags, what is not exact), ``network.npz`` (synapses per projection,
    v_init and bias per population, and the samples: the analog input's currents or the
    spiking input's trains of :func:`common.input_trains` with ``seed``, for ``x``;
    ``labels`` if given). The script reads them relative to its own directory, runs every
    sample for ``steps`` steps plus the lowering's lag (setting the network up afresh for
    each sample: sPyNNaker 7.4 cannot change a spike source's times after a run), counts
    the output spikes in the output's window, and writes ``results.npz`` (counts,
    predictions) and ``placements.json`` next to itself. Run it with ``python
    run_spinnaker.py [--samples N]`` where sPyNNaker is configured for the machine.
    ``neurons_per_core``: one limit, or {population: limit} (as :func:`placements`);
    ``placements_file``: the name the script gives its placements.
    Returns the script's path.
    """
    default_per_core, per_pop = neurons_per_core_limits(network, neurons_per_core)
    if not placements_file or Path(placements_file).name != placements_file:
        raise SpikeportError(f"placements_file must be a file name, got {placements_file!r}")
    lowering = Lowering(network, StandardCells())
    steps = int(steps)
    if steps < 1:
        raise SpikeportError(f"steps must be at least 1, got {steps}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays, pops, projs = {}, [], []
    for name, lp in lowering.populations.items():
        key = f"pop{len(pops)}"
        arrays[f"{key}_v_init"] = lp.v_init
        arrays[f"{key}_bias"] = lp.bias * lp.cell.current_scale
        pops.append({"name": name, "key": key, "size": lp.size, "shape": list(lp.shape), "model": lp.cell.model,
                     "params": lp.cell.params, "lag": lp.lag, "current_scale": lp.cell.current_scale})
    for k, lp in enumerate(lowering.projections):
        key = f"proj{k}"
        arrays[f"{key}_pre"], arrays[f"{key}_post"], arrays[f"{key}_weight"] = lp.tiled(
            1, network.population(lp.pre).size, lowering.populations[lp.post].size)
        projs.append({"name": lp.name, "key": key, "pre": lp.pre, "post": lp.post, "receptor": lp.receptor,
                      "delay_steps": lp.delay})
    samples = 0
    if x is not None:
        x, steps, _ = common.check_run(network, x, steps)
        samples = len(x)
        if lowering.encoding == "analog":
            cur = lowering.analog_current(x)
            for p in pops:
                if p["name"] in cur:
                    arrays[f"{p['key']}_analog"] = cur[p["name"]] * p["current_scale"]
        else:
            arrays["input_trains"] = common.input_trains(network, x, steps, seed)
        if labels is not None:
            arrays["labels"] = np.asarray(labels).reshape(-1)[:samples]
    inp = network.population(network.input)
    meta = {"format": "spikeport-spinnaker-script", "version": 1, "steps": steps, "samples": samples,
            "input": {"name": inp.name, "size": inp.size, "encoding": inp.encoding.kind},
            "output": network.output, "populations": pops, "projections": projs,
            "neurons_per_core": default_per_core, "neurons_per_population": per_pop,
            "max_lag": lowering.max_lag, "step_ms": STEP_MS,
            "dt_s": network.dt_s, "not_exact": lowering.notes + [
                f"the analog input's projection {p.name!r} has a delay of {p.delay_steps} steps but its current "
                "flows from the first step" for p in lowering.analog if p.delay_steps] + [
                "SpiNNaker computes in fixed point (s16.15 membranes, weights in 16 bits per synapse type)",
                "bias and analog currents flow from the first step: a population with lag L > 0 integrates L steps "
                "of bias before its input arrives"]}
    (out / "network.json").write_text(json.dumps(meta, indent=1))
    np.savez(out / "network.npz", **arrays)
    script = out / SCRIPT
    script.write_text(_SCRIPT_TEXT.replace("placements.json", placements_file))
    return script


_SCRIPT_TEXT = '''#!/usr/bin/env python
"""Run a spikeport network on SpiNNaker with sPyNNaker (written by spikeport's spinnaker backend).

Reads network.json and network.npz from this script's directory, builds the network with
PyNN standard cells, runs each sample for steps + max_lag steps (the network is set up
afresh for each sample), counts each output neuron's spikes in the output's window
[lag, lag + steps) and writes results.npz (counts, predictions) and placements.json (the
cores sPyNNaker used per population) next to this script.

    python run_spinnaker.py [--samples N] [--neurons-per-core K]

With no samples (or --samples 0) it maps and loads the network once, without input.

What differs from the graph's semantics is listed under "not_exact" in network.json and
printed when the script starts. On a virtual board sPyNNaker maps but does not run:
no spikes come back, and the script says so.
"""
import argparse
import json
import os
import sys

import numpy as np
import pyNN.spiNNaker as sim

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    with open(os.path.join(HERE, "network.json")) as f:
        meta = json.load(f)
    data = np.load(os.path.join(HERE, "network.npz"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=meta["samples"], help="samples to run (default: all)")
    ap.add_argument("--neurons-per-core", type=int, default=None,
                    help="one limit for every population (default: as written, per population where given)")
    args = ap.parse_args()
    per_pop = meta.get("neurons_per_population", {}) if args.neurons_per_core is None else {}
    per_core = meta["neurons_per_core"] if args.neurons_per_core is None else args.neurons_per_core
    samples = min(args.samples, meta["samples"])
    steps, step_ms = meta["steps"], meta["step_ms"]
    for line in meta["not_exact"]:
        print("not exact:", line)

    inp = meta["input"]
    out_lag = [p["lag"] for p in meta["populations"] if p["name"] == meta["output"]][0]
    counts = np.zeros((samples, [p["size"] for p in meta["populations"] if p["name"] == meta["output"]][0]),
                      dtype=np.int64)
    empty = True
    pops = None
    # The network is set up afresh for every sample: sPyNNaker 7.4 cannot set a
    # SpikeSourceArray's spike times after the first run (it indexes a list with an array),
    # and on a virtual board reading spikes after sim.reset() fails in neo. Slower (one
    # mapping per sample), but every sample starts from the graph's initial state.
    for s in range(max(samples, 1)):
        sample = s if samples else None
        if pops is not None:
            sim.end()
        pops = build(meta, data, per_core, sample, per_pop)
        sim.run((steps + meta["max_lag"]) * step_ms)
        if s == 0:
            write_placements(pops)
        if sample is None:
            break
        seg = pops[meta["output"]].get_data("spikes", clear=True).segments[-1]
        for i, train in enumerate(seg.spiketrains):
            t = np.rint(np.asarray(train.times.rescale("ms")) / step_ms).astype(int) - out_lag
            counts[s, i] = int(((t >= 0) & (t < steps)).sum())
            empty &= len(train) == 0
    sim.end()
    predictions = counts.argmax(axis=1)
    result = {"counts": counts, "predictions": predictions}
    if "labels" in data and samples:
        acc = float((predictions == data["labels"][:samples]).mean())
        result["accuracy"] = acc
    np.savez(os.path.join(HERE, "results.npz"), **result)
    if empty and samples:
        print("no output spikes came back: on a virtual board sPyNNaker maps but does not run")
    elif samples:
        print("predictions:", predictions.tolist())
        if "accuracy" in result:
            print("accuracy: %.4f" % result["accuracy"])
    return 0


def build(meta, data, neurons_per_core, sample, per_pop=None):
    """Set up sPyNNaker and build the network for one sample (None: no input); per_pop:
    {population: neurons per core} overriding the cell type's limit."""
    step_ms = meta["step_ms"]
    sim.setup(timestep=step_ms)
    for model in sorted({p["model"] for p in meta["populations"]}):  # before any Population exists
        sim.set_number_of_neurons_per_core(getattr(sim, model), neurons_per_core)
    pops = {}
    for p in meta["populations"]:
        celltype = getattr(sim, p["model"])
        pop = sim.Population(p["size"], celltype(**p["params"]), label=p["name"])
        pop.initialize(v=data[p["key"] + "_v_init"])
        pops[p["name"]] = pop
    set_currents(meta, data, pops, sample)
    inp = meta["input"]
    if inp["encoding"] != "analog":
        source = sim.SpikeSourceArray(spike_times=input_times(data, meta, sample))
        pops[inp["name"]] = sim.Population(inp["size"], source, label=inp["name"])
    for name, n in (per_pop or {}).items():
        if name in pops:
            pops[name].set_max_atoms_per_core(int(n))
    for q in meta["projections"]:
        k = q["key"]
        conns = np.column_stack([data[k + "_pre"], data[k + "_post"], data[k + "_weight"],
                                 np.full(len(data[k + "_pre"]), q["delay_steps"] * step_ms)])
        sim.Projection(pops[q["pre"]], pops[q["post"]], sim.FromListConnector(conns.tolist()),
                       synapse_type=sim.StaticSynapse(), receptor_type=q["receptor"], label=q["name"])
    pops[meta["output"]].record("spikes")
    return pops


def set_currents(meta, data, pops, sample):
    """i_offset of every population: its bias, plus the analog input's current of the sample."""
    for p in meta["populations"]:
        current = data[p["key"] + "_bias"]
        if sample is not None and p["key"] + "_analog" in data:
            current = current + data[p["key"] + "_analog"][sample]
        pops[p["name"]].set(i_offset=current)


def input_times(data, meta, s):
    """Spike times (ms) of every input source for sample s. sPyNNaker cannot build a spike
    source array without any spike: a silent sample gets one spike after the run's end."""
    step_ms, size = meta["step_ms"], meta["input"]["size"]
    if s is None or "input_trains" not in data or s >= len(data["input_trains"]):
        times = [[] for _ in range(size)]
    else:
        trains = data["input_trains"][s]
        times = [[float(t * step_ms) for t in np.flatnonzero(trains[:, i])] for i in range(size)]
    if not any(times):
        times[0] = [float((meta["steps"] + meta["max_lag"] + 1) * step_ms)]
    return times


def write_placements(pops):
    """The cores sPyNNaker placed each population on, as placements.json."""
    try:
        from spinn_front_end_common.data import FecDataView
        placed = {}
        for pl in FecDataView.iterate_placemements():
            app = getattr(pl.vertex, "app_vertex", None)
            label = getattr(app, "label", None) or pl.vertex.label
            placed.setdefault(str(label), []).append([pl.x, pl.y, pl.p])
        with open(os.path.join(HERE, "placements.json"), "w") as f:
            json.dump({"populations": {name: placed.get(name, []) for name in pops},
                       "other": {k: v for k, v in placed.items() if k not in pops}}, f, indent=1)
    except Exception as exc:  # placements are a report: never fail the run for them
        print("could not read placements:", exc, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
'''
