"""The method x chip table (issue 20): every training method's network, from training to chips.

For each model file (one per method, trained by `spikeport train --method M`), the script
converts it to its method's spiking network (no hand edits: `spikeport.convert(model)`),
and reports

- the ANN's test accuracy (for proxy the ReLU twin's; spike-bp trains its SNN directly: none),
- the SNN's test accuracy at the method's T (reference executor, the whole test set or --samples),
- steps to a decision: the mean first step from which a sample's prediction no longer changes,
  and the first checkpoint within 0.5 pp of the accuracy at T,
- per chip (loihi, spinnaker, speck): whether it fits (else the reason), accuracy after the chip's
  quantization, synaptic operations and energy per inference (spikeport's deploy pipeline on
  --chip-samples test images),
- the CPU and GPU baselines (the same network run once as an ANN).

    .venv/bin/python bench/methods_table.py out/bench/methods/*.pt --json out/bench/methods-table.json

It prints a markdown table for bench/RESULTS.md. The table can be built in parts, as the long
training runs finish: rows already in --json for other model files are kept (a model given again
is measured again), each row records the commit, machine and date it was measured on, and with
no model files the script only prints the table of --json. Rows are ordered as the methods are
registered (relu, qcfs, noisy-softplus, soft-lif, proxy, spike-bp).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHIPS = ("loihi", "spinnaker", "speck")


def decision_steps(predictions: np.ndarray) -> float:
    """Mean over samples of the first step (1-based) from which the prediction stays the final one."""
    final = predictions[:, -1:]
    differs = predictions != final
    # last step at which it differed, +1 (0 if it never differed) -> first settled step, 1-based
    last_diff = np.where(differs.any(axis=1), predictions.shape[1] - np.argmax(differs[:, ::-1], axis=1), 0)
    return float((last_diff + 1).mean())


def ann_accuracy(model, ds):
    """The ANN's test accuracy, or None where the method has no ANN of its own."""
    from spikeport.models import evaluate

    method = model.meta.get("method")
    if method == "spike-bp":
        return None
    if method == "proxy":  # the ReLU twin: the module's plain forward
        return evaluate(model.module, ds.x("test"), ds.y("test"))
    return model.meta.get("test_accuracy")


def row_for(path, samples, chip_samples, seed, data_dir):
    import spikeport
    from spikeport.backends import reference
    from spikeport.deploy.pipeline import baselines, deploy
    from spikeport.errors import SpikeportError
    from spikeport.models import convert, get_method, load_model
    from spikeport.models.methods.base import steps_for

    model = load_model(path)
    method = model.meta["method"]
    decl = get_method(method).METHOD
    ds = spikeport.load_dataset(model.meta["dataset"], data_dir)
    net = convert(model)
    steps = steps_for(model)
    x, y = ds.x("test"), ds.y("test")
    if samples:
        x, y = x[:samples], y[:samples]
    t0 = time.perf_counter()
    act = reference.run(net, x, steps, checkpoints="all", seed=seed)
    sim_s = time.perf_counter() - t0
    acc_by_t = [act.accuracy(y, t) for t in range(1, steps + 1)]
    snn = acc_by_t[-1]
    within = next(t for t, a in enumerate(acc_by_t, start=1) if a >= snn - 0.005)
    row = {"method": method, "model": str(path), "arch": model.spec.arch, "dataset": ds.name,
           "neuron": dataclasses.replace(decl.snn, steps=steps).describe(), "steps": steps, "samples": len(x),
           "ann_accuracy": ann_accuracy(model, ds), "snn_accuracy": snn,
           "decision_step_mean": decision_steps(act.predictions), "steps_within_half_pp": within,
           "train_seconds": model.meta.get("train_seconds"), "simulate_seconds": round(sim_s, 1), "chips": {}}
    for chip in CHIPS:
        try:
            dep = deploy(net, chip, data=ds, samples=chip_samples, steps=steps, seed=seed)
        except SpikeportError as exc:
            row["chips"][chip] = {"fits": False, "reason": str(exc)}
            continue
        e = dep.energy
        row["chips"][chip] = {"fits": True, "accuracy": dep.accuracy["quantized"], "float_accuracy": dep.accuracy["float"],
                              "synops": e["synops"], "energy_j": e["energy_per_inference_j"],
                              "dynamic_j": e["dynamic_j"], "static_j": e["static_j"], "complete": e["complete"],
                              "cores": e["cores"], "chips": e["chips"], "samples": dep.samples}
    row["baselines"] = {k: {"energy_j": v["energy_per_inference_j"], "macs": v["macs"]}
                        for k, v in baselines(net).items()}
    row["measured"] = {"commit": _commit(), "machine": platform.node(), "date": time.strftime("%Y-%m-%d")}
    return row


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=Path(__file__).resolve().parent).stdout.strip()
        return out + ("+edits" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def ordered(rows):
    """Rows in the order the methods are registered, then by model file."""
    from spikeport.models import METHODS

    rank = {m: k for k, m in enumerate(METHODS)}
    return sorted(rows, key=lambda r: (rank.get(r["method"], len(rank)), r["model"]))


def pct(v):
    return "-" if v is None else f"{100 * v:.2f}%"


def joules(v):
    if v is None:
        return "-"
    for unit, scale in (("J", 1), ("mJ", 1e-3), ("uJ", 1e-6), ("nJ", 1e-9)):
        if abs(v) >= scale:
            return f"{v / scale:.3g} {unit}"
    return f"{v:.3g} J"


def markdown(rows) -> str:
    head = ["method", "network", "SNN", "ANN", f"SNN at T", "decision step", "within 0.5 pp"]
    for chip in CHIPS:
        head += [f"{chip} acc", f"{chip} synops", f"{chip} energy"]
    head += ["CPU energy", "GPU energy"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["method"], f"{r['arch']} ({r['dataset']})", r["neuron"], pct(r["ann_accuracy"]),
                 f"{pct(r['snn_accuracy'])} (T={r['steps']})", f"{r['decision_step_mean']:.1f}",
                 str(r["steps_within_half_pp"])]
        for chip in CHIPS:
            c = r["chips"][chip]
            if not c["fits"]:
                cells += ["does not fit", "-", "-"]
            else:
                mark = "" if c["complete"] else " (>=)"
                cells += [pct(c["accuracy"]), f"{c['synops']:.3g}", joules(c["energy_j"]) + mark]
        cells += [joules(r["baselines"]["cpu"]["energy_j"]), joules(r["baselines"]["gpu"]["energy_j"])]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [f"- {r['method']} on {chip}: {r['chips'][chip]['reason']}" for r in rows for chip in CHIPS
             if not r["chips"][chip]["fits"]]
    return "\n".join(lines + ([""] + notes if notes else []))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", help="model files, one per method (none: print the table of --json)")
    ap.add_argument("--samples", type=int, default=None, help="test samples for the SNN accuracy (default: all)")
    ap.add_argument("--chip-samples", type=int, default=1000, help="test samples per chip deployment")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    out = Path(args.json) if args.json else None
    if not args.models and not (out and out.exists()):
        ap.error("give model files, or --json FILE of an earlier run to print its table")
    rows = json.loads(out.read_text()) if out and out.exists() else []
    for path in args.models:
        t0 = time.perf_counter()
        row = row_for(path, args.samples, args.chip_samples, args.seed, args.data_dir)
        rows = ordered([r for r in rows if r["model"] != row["model"]] + [row])
        print(f"{path}: {row['method']} done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        if out:  # after every model, atomically: a long run leaves what it finished
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(out.name + ".tmp")
            tmp.write_text(json.dumps(rows, indent=2) + "\n")
            tmp.replace(out)
    print(markdown(ordered(rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
