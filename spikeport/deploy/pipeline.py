"""``deploy(network, target)``: the passes top to bottom, and ``power`` across chips.

    check constraints (the profile's limits; Speck's and Xylo's vendor mapper rules)
    -> quantize to the chip's formats (per-layer error; zeroed weights warned)
    -> partition onto cores and chips (utilization; the vendor tool's settings)
    -> count: where the vendor's own mapper runs here, its placements are the cores and
       chips that the manifest and the energy use (SpiNNaker: sPyNNaker's placements on a
       virtual SpiNN-5 board, computed once and written as spinnaker/placements.json);
       elsewhere, and where sPyNNaker is not installed, the partition's (``counts_source``
       says which; the partition stays in the manifest either way)
    -> measure: the reference executor runs the float network and the quantized one
       (fixed-point mode) on the same samples: accuracy before and after, and the
       activity counts energy needs
    -> estimate energy (dynamic and static, per layer and in total; CPU/GPU baselines)
    -> emit the artifacts into DIR, atomically

Every stage is a plain function of its own module (check, quantize_chips, partition, energy,
emit_*); what differs per chip family (its vendor rules, quantizer, counting and artifacts) is
its plug-in's (:mod:`spikeport.deploy.targets`); this module only strings them together. A
network that does not fit raises :class:`~spikeport.errors.SpikeportError` naming the layer, the
limit and the value before anything is measured or written.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import __version__
from ..datasets import evaluation_samples
from ..budget import check_run_size
from ..errors import SpikeportError
from ..hardware_profiles import Profile, load as load_profile
from ..outputs import Output
from .targets import plugin_for

BASELINES = ("cpu", "gpu")

@dataclass
class Deployment:
    """Everything one deployment found; ``manifest()`` is DIR/manifest.json."""

    profile: Profile
    network: object                    # the float network
    deployed: object                   # the network in the chip's formats (the float one for "none")
    violations: list                   # non-fatal ones (fatal ones stop the deployment)
    vendor_mapping: object
    quantization: dict
    partition: object
    accuracy: dict                     # {"float": a, "quantized": a} on the measured samples
    agreement: float                   # quantized vs float predictions
    energy: dict
    baselines: dict
    samples: int
    steps: int
    dataset: str | None
    warnings: list = field(default_factory=list)
    artifacts: list = field(default_factory=list)
    seconds: dict = field(default_factory=dict)
    counts: Counts | None = None       # the cores and chips reported (None: the partition's)

    def layers(self) -> list:
        """The manifest's per-layer rows: mapping (cores as counted by ``counts``), precision and
        rounding error."""
        qproj = {p["name"]: p for p in self.quantization.get("projections", [])}
        bits = self.quantization.get("format", {}).get("weight_bits")
        counted = self.counts or partition_counts(self.partition)
        rows = []
        for lay in self.partition.layers:
            into = [p for p in self.network.projections if p.post == lay["name"]]
            errors = [qproj[p.name]["max_abs_error"] for p in into if p.name in qproj]
            rows.append({"name": lay["name"], "kind": lay.get("kind"), "neurons": lay["neurons"],
                         "cores": counted.layers.get(lay["name"], 0),
                         "fan_in_max": lay.get("fan_in_max"),
                         "weight_bits": bits if into else None,
                         "quant_max_abs_error": max(errors) if errors else None,
                         "utilization": lay.get("utilization")})
        known = {lay["name"] for lay in self.partition.layers}
        for name, cores in counted.layers.items():  # a helper the vendor added and the partition did not count
            if name not in known:
                rows.append({"name": name, "kind": "delay_extension", "neurons": 0, "cores": cores,
                             "fan_in_max": None, "weight_bits": None, "quant_max_abs_error": None,
                             "utilization": None})
        return rows

    def manifest(self) -> dict:
        part = self.partition.to_dict()
        counted = self.counts or partition_counts(self.partition)
        return {
            "spikeport": __version__, "target": self.profile.name, "title": self.profile.title,
            "profile": self.profile.path, "fits": True, "cores": counted.cores, "chips": counted.chips,
            "counts_source": counted.source,
            "layers": self.layers(), "energy": self.energy, "baselines": self.baselines,
            "accuracy": self.accuracy, "agreement_quantized_vs_float": self.agreement,
            "samples": self.samples, "steps": self.steps, "dataset": self.dataset,
            "quantization": self.quantization, "partition": part,
            "vendor_mapping": self.vendor_mapping, "violations_worked_around": [v.to_dict() for v in self.violations],
            "warnings": self.warnings, "unknown": [{"key": k, "why": why} for k, why in self.profile.unknowns()],
            "artifacts": self.artifacts, "seconds": self.seconds,
        }


# ---------------------------------------------------------------------------- stages

class Fitted(NamedTuple):
    """What :func:`fit` found: the limits worked around, the vendor mapper's mapping, the network
    in the chip's formats with its quantization report and warnings, and the partition."""

    violations: list
    vendor_mapping: object
    deployed: object
    quantization: dict
    partition: object
    warnings: list


def fit(network, profile: Profile) -> Fitted:
    """Check, quantize and partition; raise one line where the network cannot fit."""
    from .check import check, require_fit
    from .partition import partition
    from .quantize_chips import warnings as zero_warnings

    if not profile.neuromorphic:
        raise SpikeportError(f"target {profile.name!r} is a conventional baseline ({profile.title}); "
                             f"spikeport power reports it beside every chip")
    network.validate()
    violations = list(check(network, profile))
    target = plugin_for(profile)
    vendor_violations, vendor_mapping = target.vendor_rules(network, profile)
    violations += list(vendor_violations)
    require_fit(violations, profile)
    deployed, report = target.quantize(network, profile)
    part = partition(network, profile)
    return Fitted([v for v in violations if not v.fatal], vendor_mapping, deployed, report, part,
                  list(zero_warnings(report)))


PARTITIONER = "spikeport partitioner"
SPYNNAKER = "sPyNNaker placements (virtual SpiNN-5 board)"


class Counts(NamedTuple):
    """The cores and chips that a deployment reports and prices, and where they come from."""

    source: str               # PARTITIONER, SPYNNAKER, or PARTITIONER with the reason the vendor's was not used
    cores: int
    chips: int
    per_population: dict      # {population: cores}, relays and delay extensions with the population they serve
    layers: dict              # {layer (population, relay, delay extension): cores}: the manifest's rows
    helpers: tuple            # kinds of helper cores counted ("relay", "delay_extension")
    placements: dict | None   # the vendor's placements (sPyNNaker's: spinnaker/placements.json), if used


def partition_counts(part, source: str = PARTITIONER) -> Counts:
    """The counts of spikeport's own partition."""
    per_pop = {}
    for lay in part.layers:  # relays and delay extensions count with the population they serve
        per_pop[lay["serves"]] = per_pop.get(lay["serves"], 0) + lay["cores"]
    helpers = tuple(sorted({lay["kind"] for lay in part.layers if lay["kind"] in ("relay", "delay_extension")}))
    return Counts(source, int(part.cores), int(part.chips), per_pop, {lay["name"]: int(lay["cores"])
                                                                      for lay in part.layers}, helpers, None)


def _spinnaker_backend():
    """spikeport.backends.spinnaker, or the ImportError where sPyNNaker cannot be imported."""
    import importlib

    try:
        return importlib.import_module("spikeport.backends.spinnaker")
    except ImportError as exc:
        return exc


def counts(network, profile: Profile, part, steps: int) -> tuple:
    """(Counts, warnings) for ``network`` partitioned as ``part`` on ``profile``.

    SpiNNaker (``backend = "spinnaker"``): sPyNNaker maps the network onto a virtual SpiNN-5
    board with the partition's ``neurons_per_core`` (:func:`spikeport.backends.spinnaker.placements`,
    its mapping phase only: seconds); chips are the distinct chips of its application cores,
    cores per population its distinct cores plus those of the delay extensions serving it
    (system cores not counted, as the partition does not count them). A warning names both
    counts where they differ from the partition's. Where sPyNNaker cannot be imported, and
    on every other target: the partition's counts. A network that sPyNNaker cannot map raises
    its one-line SpikeportError.
    """
    if not plugin_for(profile).vendor_placements:
        return partition_counts(part), []
    backend = _spinnaker_backend()
    if isinstance(backend, ImportError):
        return partition_counts(part, f"{PARTITIONER} (sPyNNaker is not installed: {backend})"), []
    placed = backend.placements(network, neurons_per_core=part.vendor.get("neurons_per_core")
                                or backend.DEFAULT_NEURONS_PER_CORE, steps=steps)
    got = backend.counts(placed)
    per_pop = {p.name: int(got["per_population"].get(p.name, 0)) for p in network.populations}
    layers = {}
    for name, entry in placed["populations"].items():
        layers[name] = int(entry["cores"])
    for name, cores in got["delay_extensions"].items():
        layers[f"{name}_delayed"] = int(cores)
    for lay in part.layers:  # the partition's layers that sPyNNaker placed nothing for (an analog input)
        layers.setdefault(lay["name"], 0)
    mine = partition_counts(part)
    vendor = Counts(SPYNNAKER, int(got["cores"]), int(got["chips"]), per_pop, layers,
                    ("delay_extension",) if got["delay_extensions"] else (), placed)
    warns = []
    differ = [name for name in sorted(layers) if mine.layers.get(name, 0) != layers[name]]
    if (mine.cores, mine.chips) != (vendor.cores, vendor.chips) or differ:
        warns.append(f"sPyNNaker placed the network on {vendor.cores} cores on {vendor.chips} chip(s) of a virtual "
                     f"SpiNN-5 board, spikeport's partitioner counts {mine.cores} cores on {mine.chips} chip(s)"
                     + (f" (they differ on {', '.join(differ)})" if differ else "")
                     + "; cores, chips and energy use sPyNNaker's placements")
    return vendor, warns


def _measure(network, x, steps: int, seed: int, progress=None):
    from ..backends import reference
    return reference.run(network, x, steps, seed=seed, record_counts=False, progress=progress)


def host_synops(network, x, steps: int) -> dict:
    """{population: mean per sample of the events the reference counts for projections out of an analog
    input}: one per existing synapse per step for every nonzero input value. Chips receive these as
    currents the host computes (Loihi's bias registers, SpiNNaker's i_offset), not as synaptic events."""
    inp = network.population(network.input)
    if inp.encoding.kind != "analog":
        return {}
    nonzero = (np.asarray(x, np.float32).reshape(len(x), -1) != 0).astype(np.float64)
    out = {}
    for pr in network.projections:
        if pr.pre == inp.name:
            delivered = max(0, steps - pr.delay_steps)
            fan = pr.synapses_per_pre(inp.shape).astype(np.float64)
            out[pr.post] = out.get(pr.post, 0.0) + float((nonzero @ fan).mean()) * delivered
    return out


def _priced(network, deployed, profile: Profile, counted: Counts, x, steps: int, seed: int, float_activity,
            realtime: bool = False):
    """(activity, energy) of the deployed network: the float run where quantization changed nothing,
    else a run of the chip's formats in the executor's fixed-point mode; priced with the cores and
    chips of ``counted``."""
    from .energy import estimate

    act = float_activity if deployed is network else _measure(deployed, x, steps, seed)
    energy = estimate(deployed, profile, act, cores=dict(counted.per_population), chips=counted.chips,
                      host_synops=host_synops(deployed, x, steps), realtime=realtime)
    energy["counts_source"] = counted.source
    helpers = counted.helpers
    if helpers:
        energy["notes"].append(f"{' and '.join(k.replace('_', ' ') + 's' for k in helpers)} use cores counted "
                               f"in the static energy of the population they serve; the spikes they pass on "
                               f"are not counted in the dynamic energy (a lower bound)")
    return act, energy


def baselines(network) -> dict:
    """The same network as an ANN on the conventional profiles (cpu, gpu)."""
    from .ann_baseline import baseline
    return {name: baseline(network, load_profile(name)) for name in BASELINES}


def _samples(data, samples, data_dir=None, network=None):
    return evaluation_samples(data, samples, data_dir, network)[:3]


def deploy(network, target, *, data="digits", samples: int | None = 100, steps: int = 100, seed: int = 0,
           out=None, force: bool = False, data_dir=None, progress=None, realtime: bool = False) -> Deployment:
    """Deploy ``network`` to ``target`` (a profile name, path or :class:`Profile`).

    ``data``: a data set name, a Dataset, (x, y) or x alone (no labels: accuracy None) whose test samples
    measure accuracy and activity;
    ``out``: the directory to write (see :func:`write`; a path, or a :class:`spikeport.outputs.Output`
    that carries its own ``force``); ``realtime``: a barrier chip paced by the network's dt (an application
    fed by its sensor in real time), not as fast as it can. ``steps`` and the run's size are bounded
    (:func:`check_run_size`).
    """
    check_run_size(network, steps)
    if out is not None:
        out = _output(out, force)
        out.check()
    profile = target if isinstance(target, Profile) else load_profile(target)
    t0 = time.perf_counter()
    violations, vmap, deployed, qreport, part, warns = fit(network, profile)
    t_fit = time.perf_counter() - t0
    missing = _spinnaker_backend() if out is not None and plugin_for(profile).vendor_placements else None
    if isinstance(missing, ImportError):  # before minutes of measuring: the artifacts could not be written
        raise SpikeportError(f"target {profile.name!r} writes a sPyNNaker script and needs sPyNNaker: "
                             f"pip install 'spikeport[spinnaker]' ({missing})")
    counted, count_warns = counts(network, profile, part, steps)  # the same network write_spinnaker emits
    t_counts = time.perf_counter() - t0 - t_fit
    x, y, name = _samples(data, samples, data_dir, network)
    check_run_size(network, steps, len(x))
    float_activity = _measure(network, x, steps, seed, progress)
    q_activity, energy = _priced(network, deployed, profile, counted, x, steps, seed, float_activity, realtime)
    acc = {"float": float_activity.accuracy(y), "quantized": q_activity.accuracy(y)}
    agree = float((float_activity.predictions[:, -1] == q_activity.predictions[:, -1]).mean())
    seconds = {"fit": round(t_fit, 3)}
    if counted.placements is not None:
        seconds["placements"] = round(t_counts, 3)
    seconds["measure"] = round(time.perf_counter() - t0 - t_fit - t_counts, 3)
    dep = Deployment(profile=profile, network=network, deployed=deployed, violations=violations, vendor_mapping=vmap,
                     quantization=qreport, partition=part, accuracy=acc, agreement=agree, energy=energy,
                     baselines=baselines(network), samples=len(x), steps=steps, dataset=name,
                     warnings=float_activity.silent(network) + warns + count_warns, seconds=seconds,
                     counts=counted)
    if out is not None:
        write(dep, out, x=x, y=y, force=force)
    return dep


# ---------------------------------------------------------------------------- writing DIR

def _output(out, force: bool) -> Output:
    """DIR as an output (spikeport.outputs: the checks, the --force rule, the staging every command shares)."""
    return out if isinstance(out, Output) else Output(out, None, "deploy", force)


def _emit(dep: Deployment, tmp: Path, x, y) -> list:
    """The target's artifacts into ``tmp``; returns their paths relative to it."""
    from ..ir import save_network
    from .emit_scripts import write_brian2

    written = [save_network(dep.deployed, tmp / "network.spk")]
    if dep.deployed is not dep.network:
        written.append(save_network(dep.network, tmp / "network-float.spk"))
    written += plugin_for(dep.profile).emit(dep, tmp, x, y)  # the target's own: nengo-loihi, sPyNNaker
    br = tmp / "brian2"
    br.mkdir()
    written += write_brian2(dep.deployed, br, x=x, labels=y, steps=dep.steps)
    return sorted({str(Path(p).relative_to(tmp)) for p in written})


def write(dep: Deployment, out: Path, *, x=None, y=None, force: bool = False) -> Path:
    """Write DIR: manifest.json, report.html and the artifacts, all or nothing.

    Everything goes into a staging directory beside ``out`` (:class:`spikeport.outputs.Output`)
    that is renamed into place only when complete (an earlier DIR, replaced only with ``force``, is
    swapped out in one step); a failure, or a run killed at any moment, leaves ``out`` as it was.
    """
    from .report import html_report

    out = _output(out, force)
    with out.staged() as tmp:  # checked again, written beside DIR, renamed into place when complete
        dep.artifacts = _emit(dep, tmp, x, y) + ["manifest.json", "report.html"]
        manifest = dep.manifest()
        (tmp / "manifest.json").write_text(json.dumps(_plain(manifest), indent=2) + "\n")
        (tmp / "report.html").write_text(html_report(manifest))
    return out.target


def _plain(obj):
    """JSON-safe: numpy scalars and arrays to Python, tuples to lists."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


# ---------------------------------------------------------------------------- power

def power(network, targets, *, data="digits", samples: int | None = 100, steps: int = 100, seed: int = 0,
          data_dir=None, progress=None, realtime: bool = False) -> dict:
    """Energy and power of ``network`` on every chip of ``targets``, side by side (``spikeport power``);
    ``realtime`` as :func:`deploy`'s.

    Every target is checked first, before anything is measured. A chip the network does not fit
    is a row of its own, ``{"fits": false, "reason": ...}``; the comparison fails only when the
    network fits none of the chips named. A conventional device (cpu, gpu) is accepted as a target:
    both are always reported, under ``baselines``. The float network is run once; each chip's
    quantized network once more.
    """
    check_run_size(network, steps)
    profiles = [t if isinstance(t, Profile) else load_profile(t) for t in targets]
    if not profiles:
        raise SpikeportError("power: name at least one --target")
    chips = list({p.name: p for p in profiles if p.neuromorphic}.values())  # each chip once, in the order given
    fitted, counted, refused = {}, {}, {}
    for prof in chips:
        try:
            fitted[prof.name] = fit(network, prof)
            counted[prof.name] = counts(network, prof, fitted[prof.name].partition, steps)
        except SpikeportError as exc:
            reason = str(exc)
            for prefix in (f"{prof.name}: ", f"does not fit {prof.name}: "):  # the row names the chip already
                reason = reason[len(prefix):] if reason.startswith(prefix) else reason
            refused[prof.name] = reason
    if chips and not fitted:
        raise SpikeportError("power: the network fits none of the targets: "
                             + "; ".join(f"{name}: {why}" for name, why in refused.items()))
    x, y, name = _samples(data, samples, data_dir, network)
    check_run_size(network, steps, len(x))
    float_activity = _measure(network, x, steps, seed, progress)
    out = {"samples": len(x), "steps": steps, "dataset": name, "float_accuracy": float_activity.accuracy(y),
           "realtime": bool(realtime), "warnings": float_activity.silent(network), "targets": {},
           "baselines": baselines(network)}
    for prof in chips:
        if prof.name in refused:
            out["targets"][prof.name] = {"title": prof.title, "fits": False, "reason": refused[prof.name]}
            continue
        f = fitted[prof.name]
        c, count_warns = counted[prof.name]
        act, est = _priced(network, f.deployed, prof, c, x, steps, seed, float_activity, realtime)
        est.update({"title": prof.title, "fits": True, "cores": c.cores, "chips": c.chips,
                    "counts_source": c.source, "accuracy": act.accuracy(y), "warnings": f.warnings + count_warns,
                    "unknown_profile_keys": [k for k, _ in prof.unknowns()]})
        out["targets"][prof.name] = est
    return _plain(out)
