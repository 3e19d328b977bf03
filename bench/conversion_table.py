"""SNN accuracy per normalization, initial membrane, adjustment and input encoding (issue 9).

    .venv/bin/python bench/conversion_table.py --model M.pt [--dataset D] [--samples N]
        [--configs percentile:zero,percentile:half,...] [--encodings analog,poisson,regular]
        [--steps 4,8,16,32,64,128,256] [--json out/bench/table-NAME.json]

A config is ``default`` (exactly what a plain ``spikeport convert MODEL`` does: the model's
method's defaults, nothing given) or NORM:V_INIT[:ADJUST], NORM one of percentile, max,
model-max; V_INIT zero or half; ADJUST (made for one T, so simulated once per T) one of
  calib            bias calibration (Li et al. 2021) on --calib-samples training images,
                   towards the graph's rate model
  calibann         the same towards the PyTorch model's activations (scaled as converted)
  wcalibann        weight calibration, each layer then its bias, towards the same
  mcalibann        membrane calibration (potential correction) towards the same
  l4scale, l4shift the L4-norm adjustment (ours) with the L4 bound of sigma, alpha 1
  l4scale-exact, l4shift-exact   the same with the exact per-neuron sigma
  l4scale+calib    the L4 adjustment, then bias calibration
Without ADJUST the whole test set is simulated once for max(T) steps and read at
every T. Poisson input uses seed 0 for the test set; calibration runs use seed 1.
Prints a markdown table (both readouts: ties broken by the membrane potential,
spikeport's default, and the plain argmax with ties to the lowest index) and
writes every figure to --json.
"""
import argparse
import json
import platform
import time
from pathlib import Path

import spikeport
from spikeport.backends.reference import run
from spikeport.models import convert, load_model
from spikeport.models.calibrate import l4_adjust, l4_statistics
from spikeport.passes.calibrate import calibrate_bias, calibrate_membrane, calibrate_weights
from spikeport.models.diagnose import ann_rates


def adjusted(net, adjust, calib, steps, module, stats):
    if adjust == "calib":
        return calibrate_bias(net, calib, steps)[0]
    if adjust == "calibann":
        return calibrate_bias(net, calib, steps, target=ann_rates(net, module, calib))[0]
    if adjust == "mcalibann":
        return calibrate_membrane(net, calib, steps, target=ann_rates(net, module, calib))[0]
    if adjust == "wcalibann":
        return calibrate_weights(net, calib, steps, target=ann_rates(net, module, calib))[0]
    if adjust.startswith("l4"):
        name, _, then = adjust.partition("+")
        mode, _, sigma = name[2:].partition("-")
        if "l4" not in stats:  # sigma and the mean rates do not depend on T: once per network
            stats["l4"] = l4_statistics(net, calib, sigma or "l4")
        net = l4_adjust(net, calib, steps, mode=mode, stats=stats["l4"])[0]
        return calibrate_bias(net, calib, steps)[0] if then == "calib" else net
    raise SystemExit(f"unknown adjustment {adjust!r}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--samples", type=int, default=None)
    ap.add_argument("--configs", default="percentile:zero,percentile:half,max:half,model-max:half")
    ap.add_argument("--encodings", default="analog,poisson,regular")
    ap.add_argument("--steps", default="4,8,16,32,64,128,256")
    ap.add_argument("--calib-samples", type=int, default=512)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    model = load_model(args.model)
    ds = spikeport.load_dataset(args.dataset or model.meta["dataset"])
    x, y = ds.x("test")[: args.samples], ds.y("test")[: args.samples]
    calib_all = ds.x("train")
    calib = calib_all[: args.calib_samples]
    ann = model.meta["test_accuracy"]
    print(f"{args.model}: {model.spec.arch} ({model.meta['method']}) on {ds.name}, ANN {ann:.2%}; "
          f"{len(x)} test samples; {platform.node()}, {time.strftime('%Y-%m-%d')}")
    head = "| encoding | config | readout | " + " | ".join(f"T={t}" for t in steps) + " | seconds |"
    print(head + "\n" + "|---" * (head.count("|") - 1) + "|", flush=True)
    rows = []
    for enc in args.encodings.split(","):
        for config in args.configs.split(","):
            t0 = time.perf_counter()
            if config == "default":  # the plain command line: `spikeport convert MODEL`
                if enc != "analog":
                    raise SystemExit("the default config converts with the method's own encoding: --encodings analog")
                net = convert(model, calib_all)
                conv = net.metadata["conversion"]
                norm, v_init, adjust = f"default ({conv['norm']})", f"default ({conv['v_init']})", None
            else:
                norm, v_init, *rest = config.split(":")
                adjust = rest[0] if rest else None
                net = convert(model.module, calib_all, norm=norm, v_init=v_init, encoding=enc)
            if adjust is None:
                act = run(net, x, steps[-1], checkpoints=steps)
                acc = {t: act.accuracy(y, t) for t in steps}
                acc_index = {t: act.accuracy(y, t, ties="index") for t in steps}
            else:
                acc, acc_index, stats = {}, {}, {}
                for t in steps:
                    act = run(adjusted(net, adjust, calib, t, model.module, stats), x, t)
                    acc[t], acc_index[t] = act.accuracy(y), act.accuracy(y, ties="index")
            seconds = time.perf_counter() - t0
            rows.append({"encoding": enc, "norm": norm, "v_init": v_init, "adjust": adjust, "accuracy": acc,
                         "accuracy_ties_to_index": acc_index, "seconds": round(seconds, 1)})
            name = f"{norm}, v(0) {v_init}" + (f", {adjust}" if adjust else "")
            for readout, a in (("membrane ties", acc), ("index ties", acc_index)):
                print(f"| {enc} | {name} | {readout} | " + " | ".join(f"{a[t]:.2%}" for t in steps)
                      + f" | {seconds:.0f} |", flush=True)
            if args.json:
                Path(args.json).parent.mkdir(parents=True, exist_ok=True)
                Path(args.json).write_text(json.dumps({"model": args.model, "dataset": ds.name, "ann_accuracy": ann,
                                                       "samples": len(x), "steps": steps, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
