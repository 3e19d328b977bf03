"""``deploy(network, target)``: the passes top to bottom, and ``power`` across chips.

    check constraints (the profile's limits; Speck's and Xylo's vendor mapper rules)
    -> quantize to the chip's formats (per-layer error; zeroed weights warned)
    -> partition onto cores and chips (utilization; the vendor tool's settings)
    -> measure: the reference executor runs the float network and the quantized one
       (fixed-point mode) on the same samples: accuracy before and after, and the
       activity counts energy needs
    -> estimate energy (dynamic and static, per layer and in total; CPU/GPU baselines)
    -> emit the artifacts into DIR, atomically

Every stage is a plain function of its own module (check, vendor_rules, quantize_chips,
partition, energy, emit_*); this module only strings them together. A network that
does not fit raises :class:`~spikeport.errors.SpikeportError` naming the layer, the
limit and the value before anything is measured or written.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import __version__
from ..errors import SpikeportError
from ..hardware_profiles import Profile, load as load_profile

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

    def layers(self) -> list:
        """The manifest's per-layer rows: mapping, precision and rounding error."""
        qproj = {p["name"]: p for p in self.quantization.get("projections", [])}
        bits = self.quantization.get("format", {}).get("weight_bits")
        rows = []
        for lay in self.partition.layers:
            into = [p for p in self.network.projections if p.post == lay["name"]]
            errors = [qproj[p.name]["max_abs_error"] for p in into if p.name in qproj]
            rows.append({"name": lay["name"], "kind": lay.get("kind"), "neurons": lay["neurons"],
                         "cores": lay["cores"],
                         "fan_in_max": lay.get("fan_in_max"),
                         "weight_bits": bits if into else None,
                         "quant_max_abs_error": max(errors) if errors else None,
                         "utilization": lay.get("utilization")})
        return rows

    def manifest(self) -> dict:
        part = self.partition.to_dict()
        return {
            "spikeport": __version__, "target": self.profile.name, "title": self.profile.title,
            "profile": self.profile.path, "fits": True, "cores": part["cores"], "chips": part["chips"],
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
    from .quantize_chips import quantize_for, warnings as zero_warnings
    from .vendor_rules import check_vendor

    if not profile.neuromorphic:
        raise SpikeportError(f"target {profile.name!r} is a conventional baseline ({profile.title}); "
                             f"spikeport power reports it beside every chip")
    network.validate()
    violations = list(check(network, profile))
    vendor_violations, vendor_mapping = check_vendor(network, profile)
    violations += list(vendor_violations)
    require_fit(violations, profile)
    deployed, report = quantize_for(network, profile)
    part = partition(network, profile)
    return Fitted([v for v in violations if not v.fatal], vendor_mapping, deployed, report, part,
                  list(zero_warnings(report)))


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


def _priced(network, deployed, profile: Profile, part, x, steps: int, seed: int, float_activity):
    """(activity, energy) of the deployed network: the float run where quantization changed nothing,
    else a run of the chip's formats in the executor's fixed-point mode."""
    from .energy import estimate

    act = float_activity if deployed is network else _measure(deployed, x, steps, seed)
    cores = {}
    for lay in part.layers:  # relays and delay extensions count with the population they serve
        cores[lay["serves"]] = cores.get(lay["serves"], 0) + lay["cores"]
    energy = estimate(deployed, profile, act, cores=cores, chips=part.chips,
                      host_synops=host_synops(deployed, x, steps))
    helpers = sorted({lay["kind"] for lay in part.layers if lay["kind"] in ("relay", "delay_extension")})
    if helpers:
        energy["notes"].append(f"{' and '.join(k.replace('_', ' ') + 's' for k in helpers)} use cores counted "
                               f"in the static energy of the population they serve; the spikes they pass on "
                               f"are not counted in the dynamic energy (a lower bound)")
    return act, energy


def baselines(network) -> dict:
    """The same network as an ANN on the conventional profiles (cpu, gpu)."""
    from .energy import baseline
    return {name: baseline(network, load_profile(name)) for name in BASELINES}


def _samples(data, samples, data_dir=None):
    from ..api import labelled_samples
    return labelled_samples(data, samples, data_dir)


def deploy(network, target, *, data="digits", samples: int | None = 100, steps: int = 100, seed: int = 0,
           out=None, force: bool = False, data_dir=None, progress=None) -> Deployment:
    """Deploy ``network`` to ``target`` (a profile name, path or :class:`Profile`).

    ``data``: a data set name or (x, y) whose test samples measure accuracy and activity;
    ``out``: the directory to write (see :func:`write`).
    """
    profile = target if isinstance(target, Profile) else load_profile(target)
    t0 = time.perf_counter()
    if out is not None:
        _check_out(Path(out), force)
    violations, vmap, deployed, qreport, part, warns = fit(network, profile)
    t_fit = time.perf_counter() - t0
    x, y, name = _samples(data, samples, data_dir)
    float_activity = _measure(network, x, steps, seed, progress)
    q_activity, energy = _priced(network, deployed, profile, part, x, steps, seed, float_activity)
    acc = {"float": float_activity.accuracy(y), "quantized": q_activity.accuracy(y)}
    agree = float((float_activity.predictions[:, -1] == q_activity.predictions[:, -1]).mean())
    dep = Deployment(profile=profile, network=network, deployed=deployed, violations=violations, vendor_mapping=vmap,
                     quantization=qreport, partition=part, accuracy=acc, agreement=agree, energy=energy,
                     baselines=baselines(network), samples=len(x), steps=steps, dataset=name, warnings=warns,
                     seconds={"fit": round(t_fit, 3), "measure": round(time.perf_counter() - t0 - t_fit, 3)})
    if out is not None:
        write(dep, Path(out), x=x, y=y, force=force)
    return dep


# ---------------------------------------------------------------------------- writing DIR

def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise SpikeportError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise SpikeportError(f"{out}: directory exists and is not empty (choose a new one, or --force to replace it)")
    parent = out.resolve().parent
    while not parent.exists():  # created when DIR is written
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise SpikeportError(f"{out}: cannot create it under {parent} (not a writable directory)")


def _emit(dep: Deployment, tmp: Path, x, y) -> list:
    """The target's artifacts into ``tmp``; returns their paths relative to it."""
    from ..ir import save_network
    from .emit_scripts import write_brian2, write_spinnaker

    written = [save_network(dep.deployed, tmp / "network.spk")]
    if dep.deployed is not dep.network:
        written.append(save_network(dep.network, tmp / "network-float.spk"))
    backend = dep.profile.backend
    settings = dep.partition.vendor
    if backend == "nengo-loihi":
        from .emit_loihi import write_loihi
        written += write_loihi(dep.network, tmp, x=x, labels=y, steps=dep.steps,
                               block_shapes=settings.get("block_shape"))
    elif backend == "spinnaker":
        sp = tmp / "spinnaker"
        sp.mkdir()
        written += write_spinnaker(dep.network, sp, x=x, labels=y, steps=dep.steps,
                                   neurons_per_core=settings.get("neurons_per_core"))
    br = tmp / "brian2"
    br.mkdir()
    written += write_brian2(dep.deployed, br, x=x, labels=y, steps=dep.steps)
    return sorted({str(Path(p).relative_to(tmp)) for p in written})


def write(dep: Deployment, out: Path, *, x=None, y=None, force: bool = False) -> Path:
    """Write DIR: manifest.json, report.html and the artifacts, all or nothing.

    Everything goes into a temporary directory beside ``out`` that is renamed into place
    only when complete; a failure leaves ``out`` as it was.
    """
    from .report import html_report

    _check_out(out, force)
    out = out.resolve()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as exc:
        raise SpikeportError(f"{out}: cannot create it ({exc.strerror})") from None
    try:
        dep.artifacts = _emit(dep, tmp, x, y) + ["manifest.json", "report.html"]
        manifest = dep.manifest()
        (tmp / "manifest.json").write_text(json.dumps(_plain(manifest), indent=2) + "\n")
        (tmp / "report.html").write_text(html_report(manifest))
        if out.exists():
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            os.replace(out, old)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except OSError as exc:  # a full disk, a permission: the user's machine, not a bug
        shutil.rmtree(tmp, ignore_errors=True)
        raise SpikeportError(f"{out}: cannot write it ({exc.strerror or exc}); nothing was written") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


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
          data_dir=None, progress=None) -> dict:
    """Energy and power of ``network`` on every chip of ``targets``, side by side (``spikeport power``).

    Every target is checked first: one that the network does not fit stops the whole
    comparison with its reason, before anything is measured. The float network is run
    once; each chip's quantized network once more.
    """
    profiles = [t if isinstance(t, Profile) else load_profile(t) for t in targets]
    if not profiles:
        raise SpikeportError("power: name at least one --target")
    fitted = {}
    for prof in profiles:
        try:
            fitted[prof.name] = fit(network, prof)
        except SpikeportError as exc:
            raise SpikeportError(str(exc) if str(exc).startswith(f"{prof.name}:") else f"{prof.name}: {exc}") from None
    x, y, name = _samples(data, samples, data_dir)
    float_activity = _measure(network, x, steps, seed, progress)
    out = {"samples": len(x), "steps": steps, "dataset": name, "float_accuracy": float_activity.accuracy(y),
           "targets": {}, "baselines": baselines(network)}
    for prof in profiles:
        f = fitted[prof.name]
        act, est = _priced(network, f.deployed, prof, f.partition, x, steps, seed, float_activity)
        est.update({"title": prof.title, "cores": f.partition.cores, "chips": f.partition.chips,
                    "accuracy": act.accuracy(y), "warnings": f.warnings,
                    "unknown_profile_keys": [k for k, _ in prof.unknowns()]})
        out["targets"][prof.name] = est
    return _plain(out)
