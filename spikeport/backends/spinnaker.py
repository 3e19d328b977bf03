"""The spinnaker mapper: the graph on SpiNNaker through sPyNNaker (``pyNN.spiNNaker``).

The network is lowered by :mod:`spikeport.backends.pynn_lowering` with PyNN's standard
cells (:class:`~spikeport.backends.pynn_lowering.StandardCells`: ``IF_curr_delta``, or
``IF_curr_exp`` for a synaptic current) and mapped by sPyNNaker onto a *virtual*
SpiNN-5 board (48 chips): partitioning into cores, placement, routing and routing tables
run; data generation, loading and running do not (:func:`placements` stops sPyNNaker's
run after its mapping phase), so no spike comes back. Hence:

- :func:`placements` maps a network and returns sPyNNaker's own placements: per
  population the cores (chip x, y, processor p, neuron range) and chips it uses, and
  :func:`counts` the chips and cores per population they come to;
- there is no ``run``: returning an Activity would mean inventing spikes. It is therefore
  registered as a mapper, not a backend (:data:`spikeport.backends.MAPPERS`), and
  ``get_backend("spinnaker")`` (``validate --backend spinnaker``) says so in one line;
- :func:`write_script` writes a standalone PyNN script with the network's weights,
  which runs unchanged on a real SpiNNaker machine (it reads its files relative to its
  own directory and needs only sPyNNaker and numpy).

sPyNNaker reads its configuration from the home directory. Everything here runs with a
private temporary HOME (and XDG_CONFIG_HOME) holding a ``.spynnaker.cfg`` for the virtual
board, in a temporary working directory for sPyNNaker's reports; the user's home is
never read or written.

What the SpiNNaker lowering does not realize exactly (also under "not_exact" in the
script's network.json, which it prints):
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
from ..runtimes import install, script_text
from ..runtimes import pynn_engine as engine
from . import common
from .pynn_lowering import STEP_MS, Lowering, StandardCells

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
    out, serves = {}, {}
    for label, x, y, p, lo, hi, source in engine.placed():
        label = label or "?"
        key = labels.get(label, label if not str(label).startswith("SYSTEM") else "system")
        if key not in labels.values() and source in labels:
            serves[key] = labels[source]
        out.setdefault(key, []).append([x, y, p, lo, hi])
    return out, serves


_MISSING = object()


@contextlib.contextmanager
def _mapping_only():
    """While the body runs, ``sim.run`` stops after sPyNNaker's mapping phase (splitting into
    cores, delay extensions, placement, routing, routing tables): its load phase (data
    generation, i.e. every synaptic matrix written for the board, then loading) and its run
    phase are skipped. On a virtual board they load and run nothing, but writing the data
    takes most of the time on a large network (bench/RESULTS.md).
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

    The network is built by the engine :func:`write_script`'s script builds with
    (:func:`spikeport.runtimes.pynn_engine.build`), for no sample (spiking input as a
    ``SpikeSourceArray``; an analog input has no population: its current is each receiving
    population's ``i_offset``), recording the output population's spikes for ``steps``
    steps plus the lowering's lag (the script records its membrane too, one step more).

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
    meta, arrays = describe(network, None, steps)
    start = time.perf_counter()
    with virtual_board(), _quiet():
        sim.setup(timestep=STEP_MS)
        try:
            pops = engine.build(sim, meta, arrays, default, None, per_pop)
            try:
                with _mapping_only() if mapping_only else contextlib.nullcontext():
                    sim.run((meta["steps"] + meta["max_lag"]) * STEP_MS)
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

def describe(network: Network, x=None, steps: int = 100, *, labels=None, seed: int = 0,
             neurons_per_core: int | dict = DEFAULT_NEURONS_PER_CORE) -> tuple:
    """(meta, arrays): the PyNN engine's description of ``network`` with standard cells
    (:mod:`spikeport.runtimes.pynn_engine`), and of the samples ``x`` (the analog input's currents
    or the spiking input's trains of :func:`common.input_trains` with ``seed``; ``labels``)."""
    default_per_core, per_pop = neurons_per_core_limits(network, neurons_per_core)
    lowering = Lowering(network, StandardCells())
    steps = int(steps)
    if steps < 1:
        raise SpikeportError(f"steps must be at least 1, got {steps}")
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
    return meta, arrays


def write_script(network: Network, out_dir, x=None, steps: int = 100, *, labels=None, seed: int = 0,
                 neurons_per_core: int | dict = DEFAULT_NEURONS_PER_CORE,
                 placements_file: str = "placements.json") -> Path:
    """Write a standalone PyNN script for a real SpiNNaker machine into ``out_dir``.

    Files: ``run_spinnaker.py`` (the script, :mod:`spikeport.runtimes.run_spinnaker`),
    ``network.json`` (populations, cells, projections, lags, what is not exact),
    ``network.npz`` (synapses per projection, v_init and bias per population, and the
    samples: the analog input's currents or the spiking input's trains of
    :func:`common.input_trains` with ``seed``, for ``x``; ``labels`` if given) and
    ``spikeport_runtime/`` (the PyNN engine, :mod:`spikeport.runtimes.pynn_engine`). The
    script reads them relative to its own directory, runs every sample for ``steps`` steps
    plus the lowering's lag and one more (setting the network up afresh for each sample:
    sPyNNaker 7.4 cannot change a spike source's times after a run), counts the output
    spikes in the output's window, breaks ties by the membrane after its last step where it
    comes back (else by index, and says so), and writes ``results.npz`` (counts,
    predictions, the tie rule) and ``placements.json`` next to itself. Run it with ``python
    run_spinnaker.py [--samples N]`` where sPyNNaker is configured for the machine.
    ``neurons_per_core``: one limit, or {population: limit} (as :func:`placements`);
    ``placements_file``: the name the script gives its placements.
    Returns the script's path.
    """
    neurons_per_core_limits(network, neurons_per_core)
    if not placements_file or Path(placements_file).name != placements_file:
        raise SpikeportError(f"placements_file must be a file name, got {placements_file!r}")
    meta, arrays = describe(network, x, steps, labels=labels, seed=seed, neurons_per_core=neurons_per_core)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "network.json").write_text(json.dumps(meta, indent=1))
    np.savez(out / "network.npz", **arrays)
    text = script_text(SCRIPT)
    line = 'PLACEMENTS = "placements.json"'
    assert line in text, "run_spinnaker.py names its placements file in one line"
    script = out / SCRIPT
    script.write_text(text.replace(line, f"PLACEMENTS = {json.dumps(placements_file)}"))
    install(out, "pynn_engine")
    return script
