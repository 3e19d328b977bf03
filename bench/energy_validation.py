"""Predicted against measured: spikeport's energy and time model on published chip measurements (issue 21).

Each workload is rebuilt from what its source states (layer shapes, steps per inference, how
the input reaches the chip) and priced by spikeport's estimator (spikeport.deploy.energy.estimate)
on counts made from the stated firing rates. Where a source does not state the rates, the row
spans a band of rates (low, middle, high) and says so; the figures are the middle rate with
the profile's coefficients at their values, the band the extremes over rates and coefficient
ranges. Every row prints predicted vs measured dynamic energy per inference, static (idle)
power, total energy per inference and inferences/s, the ratio, and whether it is within 2x.
A figure the model cannot predict (a coefficient no source gives) is "n/a" with the reason;
a figure whose coefficient comes from the same measurement is marked "calibrated", not counted
as a validation.

    .venv/bin/python bench/energy_validation.py [--json out/bench/energy-validation.json] [--small]

--small uses fewer rate points (the default tests run it). docs/energy-anchors.md has every
source.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

import numpy as np

# ----------------------------------------------------------------------------- the workloads

KWS_SOURCE = ("Blouw et al. 2019, arXiv 1812.01739, Table 1 (Loihi, Wolf Mountain board, batch 1); "
              "abr/power_benchmarks logs")
PILOTNET_SOURCE = ("lava-dl tutorials/lava/lib/dl/netx/pilotnet_snn/benchmark.ipynb (b9e3691), "
                   "one Loihi 2 chip (oheogulch)")

WORKLOADS = [
    {
        "name": "keyword spotting 390-256-256-29", "chip": "loihi", "source": KWS_SOURCE,
        "layers": [("input", (390,)), ("dense", 256), ("dense", 256), ("dense", 29)],
        "input": "spikes", "steps": 10, "dt_s": 1e-3,
        "stated": "shape, LIF, batch 1, inputs injected as spikes from the host, input layer on 2 cores",
        "assumed": "10 steps of 1 ms per inference (nengo-loihi's keyword-spotting example; the paper does not "
                   "state it); rates 10 / 40 / 100 Hz (not stated)",
        "rates_hz": (10.0, 40.0, 100.0), "chips": 1,
        "measured": {"dynamic_j": 0.081 / 296.0, "static_w": 0.029, "total_j": 0.110 / 296.0,
                     "inferences_per_s": 296.0},
        "calibrated": {"static_w": "the profile's idle power is this paper's measurement"},
    },
    {
        "name": "keyword spotting, arXiv v1 run (NxSDK 0.7.5, 2018)", "chip": "loihi",
        "source": "Blouw et al., arXiv 1812.01739v1 table; abr/power_benchmarks logs at a54c743 (2018-11)",
        "layers": [("input", (390,)), ("dense", 256), ("dense", 256), ("dense", 29)],
        "input": "spikes", "steps": 10, "dt_s": 1e-3,
        "stated": "the same network and board as the 2019 row, with the earlier NxSDK whose data I/O the "
                  "authors say limited throughput 'by up to an order of magnitude'",
        "assumed": "as the 2019 row",
        "rates_hz": (10.0, 40.0, 100.0), "chips": 1,
        "measured": {"dynamic_j": 0.069 / 89.8, "static_w": 0.031, "total_j": 0.100 / 89.8,
                     "inferences_per_s": 89.8},
        "calibrated": {"static_w": "the profile's idle power is the 2019 run's boot idle (0.029 W)"},
    },
    {
        "name": "PilotNet SNN (200x66x3, 5 conv, 100-50-10-1)", "chip": "loihi2", "source": PILOTNET_SOURCE,
        "layers": [("input", (3, 66, 200)), ("bias_neurons", None),
                   ("conv", 24, 3, (2, 2), (0, 0)), ("conv", 36, 3, (2, 2), (0, 0)),
                   ("conv", 48, 3, (2, 2), (0, 0)), ("conv", 64, 3, (2, 1), (1, 0)),  # netx prints (x, y): stride 1,2, pad 0,1
                   ("conv", 64, 3, (1, 1), (0, 0)), ("dense", 100), ("dense", 50), ("dense", 10),
                   ("dense", 1)],
        "input": "analog", "steps": 16, "dt_s": 1e-3,
        "stated": "layer shapes (netx print), 16 steps per inference, the frame written once as the input "
                  "layer's bias (no I/O per inference), 74 cores (conv1 25, input 13)",
        "assumed": "spikes per neuron per step 0.02 / 0.05 / 0.15 (plotted only); cores of the other layers "
                   "at lava's 3072 neurons per core",
        "rates_step": (0.02, 0.05, 0.15), "neurons_per_core": 3072,
        "cores_known": {"bias_neurons": 13, "conv1": 25}, "chips": 1,
        "measured": {"dynamic_j": 1.093544e-3, "static_w": 0.232078, "total_j": 1.661103e-3,
                     "inferences_per_s": 408.91},
        "calibrated": {"static_w": "the profile's static power is this notebook's measurement"},
    },
]

# rows with no network to rebuild: a static (idle) power against an independent measurement, or why not
STATIC_ROWS = [
    {"name": "SpiNN-5 board idle (48 chips)", "chip": "spinnaker", "chips": 48,
     "source": "SNABSuite config_energy/spinnaker_energy_spinn5.json (Ostrau et al. 2022): idle 23.05 W",
     "measured_w": 23.05,
     "note": "the profile's 0.35 W per idle chip is SpiNNMachine's figure, an independent source; its high "
             "end (0.48 W) is this measurement"},
    {"name": "Speck resting", "chip": "speck", "chips": 1,
     "source": "Yao et al. 2024, Nat. Commun. 15:4464 (abstract): processor resting power 0.42 mW",
     "measured_w": 0.42e-3,
     "note": "the profile's idle figure is sinabs' Speck2f devkit measurement (logic + RAM + IO), an "
             "independent source"},
]
NOT_REBUILDABLE = [
    {"name": "Xylo Audio 2 keyword spotting", "chip": "xylo",
     "source": "Bos & Muir 2024, arXiv 2406.15112 (abstract): 291 uW dynamic, 6.6 uJ per inference",
     "why": "the abstract gives no hidden or output sizes, time step, steps per inference or idle power, and the "
            "full text was not reachable: the workload cannot be rebuilt"},
    {"name": "TrueNorth multi-object detection", "chip": "truenorth",
     "source": "Merolla et al. 2014, Science 345:668: 63 mW on 400x240 video at 30 frames/s",
     "why": "the network (cores used, rates, synapses) is not stated in the abstract; the profile's 42 mW idle "
            "(2nd, Akopyan 2015) is below the 63 mW total, as it must be, but that is no validation"},
    {"name": "Speck DVS processing (running)", "chip": "speck",
     "source": "Yao et al. 2024: total real-time power as low as 0.70 mW",
     "why": "the network and event rates behind 0.70 mW are not in the abstract, and no per-event energy of "
            "Speck is published: its dynamic energy cannot be predicted"},
]


# the CPU and GPU rows of the same keyword spotter over batch sizes (abr/power_benchmarks logs; docs/energy-anchors.md
# 10.6): batch -> (inferences/s, dynamic J per inference). The cpu and gpu profiles' time model is fitted to
# batch 1 and 64; the batches between are held out.
BASELINE_SWEEP = {
    "cpu": {1: (1813.6, 6.32e-3), 2: (2278.2, 1.69e-3), 4: (3953.0, 2.01e-3), 8: (5964.3, 7.63e-4),
            16: (11278.5, 7.17e-4), 32: (21375.8, 3.77e-4), 64: (38210.2, 3.48e-4)},
    "gpu": {1: (770.4, 2.97e-2), 2: (1619.8, 1.45e-2), 4: (3190.6, 7.32e-3), 8: (6627.4, 3.60e-3),
            16: (12758.6, 1.87e-3), 32: (23855.7, 1.05e-3), 64: (36150.3, 7.27e-4)},
}
FITTED_BATCHES = (1, 64)

# Network size at batch 1 (the same logs): Blouw et al.'s scaled keyword spotter, N copies of a branch of
# 10 dense layers of 256 between the first hidden layer and the output layers (abr/power_benchmarks
# models.py ScaledModel; N = 0 is the keyword spotter's topology with random weights). N -> (inferences/s,
# dynamic J per inference); Loihi's dynamic is the paper's definition (running - boot idle), 2019 software.
# The cpu and gpu profiles' per-layer time is fitted to N = 10; N = 0-8 are held out. Loihi's are all held out.
SIZE_SWEEP = {
    "cpu": {0: (1729.7, 6.22e-3), 2: (505.9, 1.41e-2), 4: (355.2, 2.62e-2), 6: (286.0, 3.46e-2),
            8: (233.1, 4.53e-2), 10: (185.9, 6.03e-2)},
    "gpu": {0: (767.7, 3.01e-2), 2: (267.0, 9.18e-2), 4: (178.1, 1.41e-1), 6: (134.5, 1.89e-1),
            8: (108.7, 2.35e-1), 10: (93.0, 2.77e-1)},
    "loihi": {0: (125.8, 6.2e-4), 2: (114.4, 7.0e-4), 4: (114.3, 7.3e-4), 6: (114.3, 7.7e-4),
              8: (114.0, 8.0e-4), 10: (114.0, 8.4e-4)},
}
FITTED_SIZE = 10


# ----------------------------------------------------------------------------- building a workload

def build(workload):
    """(network, {layer: cores}) from the stated layer list. Weights are ones: only shapes matter."""
    from spikeport.ir import Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population, Projection

    nm = NeuronModel("if")  # the counts come from the stated rates, not from the neurons' dynamics
    pops, projs = [], []
    shape, prev, n_conv, n_dense = None, None, 0, 0
    for spec in workload["layers"]:
        kind = spec[0]
        if kind == "input":
            shape = spec[1]
            enc = "regular" if workload["input"] == "spikes" else "analog"
            pops.append(Population("input", shape, encoding=InputEncoding(enc, 100.0)))
            prev = "input"
            continue
        if kind == "bias_neurons":  # the frame as the bias of on-chip input neurons: one synapse each
            c = shape[0]
            ops = [Conv2d(np.eye(c, dtype=np.float32).reshape(c, c, 1, 1))]
            name = "bias_neurons"
        elif kind == "conv":
            _, c_out, k, stride, pad = spec
            ops = [Conv2d(np.ones((c_out, shape[0], k, k), np.float32), stride=stride, padding=pad)]
            n_conv += 1
            name = f"conv{n_conv}"
        else:
            dense = Dense(np.ones((spec[1], int(np.prod(shape))), np.float32))
            ops = [dense] if len(shape) == 1 else [Flatten(), dense]
            n_dense += 1
            name = f"fc{n_dense}"
        out_shape = shape
        for o in ops:
            out_shape = o.out_shape(out_shape, name)
        pops.append(Population(name, out_shape, neuron=nm))
        projs.append(Projection(f"{prev}->{name}", prev, name, ops))
        prev, shape = name, out_shape
    net = Network(pops, projs, dt_s=workload["dt_s"], output=prev).validate()
    # stated cores where known; else the stated neurons per core; else one core per layer
    known, per = workload.get("cores_known", {}), workload.get("neurons_per_core")
    cores = {p.name: 0 if p.is_input else known.get(p.name, math.ceil(p.size / per) if per else 1)
             for p in net.populations}
    return net, cores


def build_scaled(n_copies: int, n_layers: int = 10, width: int = 256, n_in: int = 390, n_out: int = 29):
    """Blouw et al.'s scaled keyword spotter (models.py ScaledModel): input -> inp (width) -> n_copies branches
    of n_layers x width -> out (width; its weights over the concatenated branches are one projection per
    branch, summed) -> char (n_out). n_copies = 0 is the keyword spotter's own topology."""
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    nm = NeuronModel("if")
    dense = lambda n_o, n_i: [Dense(np.ones((n_o, n_i), np.float32))]  # noqa: E731 - shapes only
    pops = [Population("input", (n_in,), encoding=InputEncoding("regular", 100.0)),
            Population("inp", (width,), neuron=nm)]
    projs = [Projection("input->inp", "input", "inp", dense(width, n_in))]
    lasts = ["inp"]
    if n_copies:
        lasts = []
        for c in range(n_copies):
            prev = "inp"
            for k in range(n_layers):
                name = f"c{c}_l{k}"
                pops.append(Population(name, (width,), neuron=nm))
                projs.append(Projection(f"{prev}->{name}", prev, name, dense(width, width)))
                prev = name
            lasts.append(prev)
    pops += [Population("out", (width,), neuron=nm), Population("char", (n_out,), neuron=nm)]
    projs += [Projection(f"{last}->out", last, "out", dense(width, width)) for last in lasts]
    projs.append(Projection("out->char", "out", "char", dense(n_out, width)))
    net = Network(pops, projs, dt_s=1e-3, output="char").validate()
    return net, {p.name: 0 if p.is_input else 1 for p in net.populations}


def activity(net, steps: int, rate_step: float):
    """Counts of one inference at ``rate_step`` spikes per neuron per step in every layer (and the input
    where it spikes): spikes = neurons x rate x steps; synops = the synapses of each projection x the
    rate of its pre layer x steps (an analog input: every synapse every step, as the reference counts)."""
    from spikeport.backends.activity import Activity
    from spikeport.deploy.ann_baseline import ann_macs

    synapses = {p["name"]: p["macs"] for p in ann_macs(net)["projections"]}
    inp = net.population(net.input)
    spiking_input = inp.encoding.kind != "analog"
    spikes, synops = {}, {p.name: 0.0 for p in net.populations if not p.is_input}
    for p in net.populations:
        if not p.is_input or spiking_input:
            spikes[p.name] = p.size * rate_step * steps
    for pr in net.projections:
        pre_rate = 1.0 if (pr.pre == inp.name and not spiking_input) else rate_step
        synops[pr.post] += synapses[pr.name] * pre_rate * steps
    n = {p.name: p.size for p in net.populations}
    one = lambda v: np.array([v], np.float64)  # noqa: E731 - one sample
    return Activity(backend="workload", steps=steps, dt_s=net.dt_s, checkpoints=[steps],
                    predictions=np.zeros((1, 1), np.int64), output_counts=np.zeros((1, n[net.output]), np.int64),
                    population_spikes={k: one(v) for k, v in spikes.items()},
                    synops={k: one(v) for k, v in synops.items()}, neurons=n, seconds=0.0), synops


def predict(workload, rate_step):
    from spikeport.deploy.energy import estimate
    from spikeport.hardware_profiles import load

    net, cores = build(workload)
    act, synops = activity(net, workload["steps"], rate_step)
    inp = net.population(net.input)
    host = {pr.post: synops[pr.post] for pr in net.projections
            if pr.pre == inp.name and inp.encoding.kind == "analog" and pr.post != "bias_neurons"}
    return estimate(net, load(workload["chip"]), act, cores=cores, chips=workload["chips"], host_synops=host)


# ----------------------------------------------------------------------------- comparing

# the compared figures: {row: the estimate's key}
FIGURES = {"dynamic_j": "dynamic_j", "static_w": "static_w", "total_j": "energy_per_inference_j",
           "inferences_per_s": "inferences_per_s"}
ENERGIES = ("dynamic_j", "total_j")

def _within(pred, meas):
    if pred is None or not meas:
        return None
    return 0.5 <= pred / meas <= 2.0


def compare(workload, small=False):
    rates = workload.get("rates_step") or tuple(r * workload["dt_s"] for r in workload["rates_hz"])
    if small:
        rates = (rates[1],)
    runs = [predict(workload, r) for r in rates]
    mid = runs[len(runs) // 2]
    meas = workload["measured"]
    # an energy needing a per-op energy no source gives is not predicted (a total without it means nothing)
    per_op_unknown = [k for k in mid["unknown"] if k.startswith("energy.")]
    rows = []
    for key, field in FIGURES.items():
        m, p, band, why = meas.get(key), mid[field], None, None
        if key in ENERGIES and per_op_unknown:
            p, why = None, f"per-op energies of {workload['chip']} are not published: {', '.join(per_op_unknown)}"
        else:
            band = [min(e["band"][field][0] for e in runs), max(e["band"][field][1] for e in runs)]
        rows.append({"quantity": key, "predicted": p, "band": band, "measured": m,
                     "ratio": None if p is None else p / m, "within_2x": _within(p, m),
                     "calibrated": workload.get("calibrated", {}).get(key), "why_not": why})
    return {"workload": workload["name"], "chip": workload["chip"], "source": workload["source"],
            "stated": workload["stated"], "assumed": workload["assumed"], "rates_per_step": list(rates),
            "steps": workload["steps"], "step_s": mid["step_s"], "busiest_layer": mid["time"]["busiest_layer"],
            "unknown": mid["unknown"], "notes": mid["notes"], "rows": rows}


def static_rows():
    from spikeport.hardware_profiles import load

    out = []
    for r in STATIC_ROWS:
        q = load(r["chip"]).quantity("energy.static_chip_w")
        p = r["chips"] * q.value
        band = [r["chips"] * q.at("low"), r["chips"] * q.at("high")]
        out.append({**r, "predicted_w": p, "band_w": band, "ratio": p / r["measured_w"],
                    "within_2x": _within(p, r["measured_w"])})
    return out


def baseline_rows():
    """The keyword spotter as an ANN on the cpu and gpu profiles at every batch size Blouw et al. measured."""
    from spikeport.deploy.ann_baseline import baseline
    from spikeport.hardware_profiles import load

    net, _ = build(WORKLOADS[0])
    rows = []
    for device, sweep in BASELINE_SWEEP.items():
        prof = load(device)
        for batch, (inf_s, dyn_j) in sweep.items():
            b = baseline(net, prof, batch=batch)
            rows.append({"device": device, "batch": batch, "fitted": batch in FITTED_BATCHES,
                         **_speed_and_energy(b, inf_s, dyn_j)})
    return rows


def _speed_and_energy(predicted: dict, inf_s: float, dyn_j: float) -> dict:
    """A row's predicted and measured inferences/s and dynamic J per inference, their ratios and the verdict."""
    p_inf, p_dyn = predicted["inferences_per_s"], predicted["dynamic_j"]
    return {"predicted_inferences_per_s": p_inf, "measured_inferences_per_s": inf_s,
            "predicted_dynamic_j": p_dyn, "dynamic_band": predicted["band"]["dynamic_j"], "measured_dynamic_j": dyn_j,
            "ratio_inferences_per_s": p_inf / inf_s, "ratio_dynamic_j": p_dyn / dyn_j,
            "within_2x": _within(p_inf, inf_s) and _within(p_dyn, dyn_j)}


def fit_baseline(device: str) -> dict:
    """The cpu or gpu profile's call_s, layer_s and op_s, solved from three measurements of Blouw et al.:
    the keyword spotter at batch 1 and 64 and the scaled network (N = 10) at batch 1, each time per call
    less its memory traffic at the profile's byte_s (the memory's bandwidth, not fitted)."""
    from spikeport.deploy.ann_baseline import ann_macs
    from spikeport.hardware_profiles import load

    byte_s = load(device).value("time.byte_s")
    kws, _ = build(WORKLOADS[0])
    big, _ = build_scaled(FITTED_SIZE)
    rows, rhs = [], []
    for net, batch, inf_s in ((kws, 1, BASELINE_SWEEP[device][1][0]), (kws, 64, BASELINE_SWEEP[device][64][0]),
                              (big, 1, SIZE_SWEEP[device][FITTED_SIZE][0])):
        c = ann_macs(net)
        traffic = 4 * c["weights"] + batch * 8 * c["values"]
        rows.append([1.0, len(c["layers"]), batch * (c["macs"] + c["adds"])])
        rhs.append(batch / inf_s - traffic * byte_s)
    call_s, layer_s, op_s = np.linalg.solve(np.array(rows), np.array(rhs))
    return {"call_s": float(call_s), "layer_s": float(layer_s), "op_s": float(op_s)}


def size_rows():
    """The scaled keyword spotter (N = 0-10 copies) at batch 1 on cpu, gpu (ANN baselines) and loihi (the SNN
    at the keyword-spotting rows' assumed steps and middle rate): inferences/s and dynamic J per inference."""
    from spikeport.deploy.ann_baseline import baseline
    from spikeport.deploy.energy import estimate
    from spikeport.hardware_profiles import load

    kws = WORKLOADS[0]
    rate = kws["rates_hz"][1] * kws["dt_s"]
    rows = []
    for device, sweep in SIZE_SWEEP.items():
        prof = load(device)
        for n, (inf_s, dyn_j) in sweep.items():
            net, cores = build_scaled(n)
            if prof.neuromorphic:
                act, _ = activity(net, kws["steps"], rate)
                r = estimate(net, prof, act, cores=cores, chips=1)
                fitted = False
            else:
                r = baseline(net, prof, batch=1)
                fitted = n == FITTED_SIZE
            rows.append({"device": device, "copies": n, "fitted": fitted, **_speed_and_energy(r, inf_s, dyn_j)})
    return rows


def baseline_markdown(rows, key="batch") -> str:
    lines = [f"| device | {key} | inferences/s predicted / measured (ratio) | dynamic J per inference predicted "
             "[band] / measured (ratio) | within 2x |", "|---|---|---|---|---|"]
    for r in rows:
        band = r["dynamic_band"]
        lines.append(f"| {r['device']} | {r[key]} | {r['predicted_inferences_per_s']:.4g} / "
                     f"{r['measured_inferences_per_s']:.4g} ({r['ratio_inferences_per_s']:.2f}) | "
                     f"{_fmt(r['predicted_dynamic_j'], 'J')} [{_fmt(band[0], 'J')} - {_fmt(band[1], 'J')}] / "
                     f"{_fmt(r['measured_dynamic_j'], 'J')} ({r['ratio_dynamic_j']:.2f}) | "
                     + ("calibrated (the fit's end)" if r["fitted"] else ("yes" if r["within_2x"] else "**no**"))
                     + " |")
    return "\n".join(lines)


def _fmt(v, unit):
    if v is None:
        return "n/a"
    scale = {"J": (1e-3, "mJ", 1e-6, "uJ"), "W": (1.0, "W", 1e-3, "mW")}.get(unit)
    if scale:
        if abs(v) >= scale[0]:
            return f"{v / scale[0]:.3g} {scale[1]}"
        return f"{v / scale[2]:.3g} {scale[3]}"
    return f"{v:.4g}"


def markdown(results, statics) -> str:
    lines = ["| workload (chip) | quantity | predicted | band | measured | ratio | within 2x |",
             "|---|---|---|---|---|---|---|"]
    units = {"dynamic_j": "J", "total_j": "J", "static_w": "W", "inferences_per_s": ""}
    for r in results:
        for row in r["rows"]:
            u = units[row["quantity"]]
            band = "" if row["band"] is None else f"{_fmt(row['band'][0], u)} - {_fmt(row['band'][1], u)}"
            verdict = ("calibrated: " + row["calibrated"]) if row["calibrated"] else \
                (row["why_not"] if row["within_2x"] is None else ("yes" if row["within_2x"] else "**no**"))
            ratio = "" if row["ratio"] is None else f"{row['ratio']:.2f}"
            lines.append(f"| {r['workload']} ({r['chip']}) | {row['quantity']} | {_fmt(row['predicted'], u)} | "
                         f"{band} | {_fmt(row['measured'], u)} | {ratio} | {verdict} |")
    for s in statics:
        lines.append(f"| {s['name']} ({s['chip']}) | static_w | {_fmt(s['predicted_w'], 'W')} | "
                     f"{_fmt(s['band_w'][0], 'W')} - {_fmt(s['band_w'][1], 'W')} | {_fmt(s['measured_w'], 'W')} | "
                     f"{s['ratio']:.2f} | {'yes' if s['within_2x'] else '**no**'} |")
    for n in NOT_REBUILDABLE:
        lines.append(f"| {n['name']} ({n['chip']}) | - | n/a | | | | {n['why']} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", default=None)
    ap.add_argument("--small", action="store_true", help="the middle rate only (fast)")
    args = ap.parse_args(argv)
    results = [compare(w, small=args.small) for w in WORKLOADS]
    statics = static_rows()
    base = baseline_rows()
    sizes = size_rows()
    print(markdown(results, statics))
    print()
    print(baseline_markdown(base))
    print()
    print(baseline_markdown(sizes, key="copies"))
    print()
    for device in ("cpu", "gpu"):
        print(f"{device} time model refitted (byte_s from the profile): "
              + ", ".join(f"{k} = {v:.5g}" for k, v in fit_baseline(device).items()))
    for r in results:
        print(f"\n{r['workload']} on {r['chip']}: {r['step_s'] * 1e6:.3g} us per step (busiest: "
              f"{r['busiest_layer']}); stated: {r['stated']}; assumed: {r['assumed']}")
        for n in r["notes"]:
            print(f"  note: {n}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"workloads": results, "static": statics, "baselines": base, "sizes": sizes,
                       "not_rebuildable": NOT_REBUILDABLE}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
