"""spikeport demo, deploy, power and targets."""
from __future__ import annotations

from pathlib import Path

from ..errors import SpikeportError
from ..units import count, si

from .common import (check_outputs, load_graph, output, pct, print_energy, print_simulation, print_warnings,
                     progress_bar, report_outputs, samples_for, write_json, write_reports, write_text)

DEMO_DIR = Path("out/demo")
DEMO_FILES = ("model.pt", "net.spk", "simulate.json", "simulate.html", "loihi", "spinnaker", "power.json",
              "power.html")


def _is_demo_dir(path) -> bool:
    """An earlier demo's DIR: nothing in it but the demo's own files (all of them or some)."""
    try:
        return {e.name for e in Path(path).iterdir()} <= set(DEMO_FILES)
    except OSError:
        return False


def demo_output(args):
    """The demo's DIR: --out as every output; its default out/demo (its parent made where missing) is the
    demo's own place, replaced when it holds an earlier demo's files and nothing else."""
    from ..outputs import Kind, Output

    kind = Kind("demo", "an earlier demo's directory (only its files: " + ", ".join(DEMO_FILES) + ")",
                directory=True, recognise=_is_demo_dir)
    if args.out is not None:
        return Output(args.out, "--out", kind, args.force)
    try:
        DEMO_DIR.parent.mkdir(exist_ok=True)
    except OSError as exc:
        raise SpikeportError(f"--out {DEMO_DIR} (the default): cannot create {DEMO_DIR.parent} "
                             f"({exc.strerror})") from None
    return Output(DEMO_DIR, "--out", kind, True)


def cmd_demo(args) -> int:
    target = demo_output(args)
    check_outputs(target)
    with target.staged() as out:  # everything, or nothing: a demo killed half-way leaves the earlier one
        demo_into(out, Path(target.path))
    print(f"wrote {target.path}/: model.pt, net.spk, simulate.json, simulate.html, loihi/, spinnaker/, power.json, "
          f"power.html (open the .html files in a browser)")
    return 0


def demo_into(out: Path, shown: Path) -> None:
    """The demo's story, its files written into ``out`` (the staged DIR that becomes ``shown``)."""
    from ..api import convert, simulate
    from ..datasets import load_dataset
    from ..ir import save_network
    from ..models import save_model, train

    ds = load_dataset("digits")
    print(f"spikeport demo: train an MLP on digits ({len(ds.train_labels)} train / {len(ds.test_labels)} test), "
          f"convert it to IF neurons, simulate it, deploy it to Loihi and SpiNNaker, compare every chip's energy")
    model = train(ds, arch="mlp", method="relu", seed=0)
    save_model(model, out / "model.pt")
    print(f"  trained mlp {model.spec.hidden}: ANN test accuracy {model.meta['test_accuracy']:.2%} "
          f"({model.meta['train_seconds']:.1f} s)")
    net = convert(model, ds.x("train"), metadata={"source": {"model": "model.pt", "arch": "mlp", "method": "relu"},
                                                  "dataset": "digits", "ann_accuracy": model.meta["test_accuracy"]})
    save_network(net, out / "net.spk")
    conv = net.metadata["conversion"]
    print(f"  converted as `spikeport convert` does: {conv['norm']} normalization (p = {conv['percentile']:g}), "
          f"v(0) = {conv['v_init']}, {net.population(net.input).encoding.kind} input, IF neurons, reset by subtraction")
    sim = simulate(net, ds, 128, checkpoints=[1, 2, 4, 8, 16, 32, 64, 128])
    print_simulation(sim)
    write_json(out / "simulate.json", sim.report())
    from ..deploy.report import power_html, simulate_html
    write_text(out / "simulate.html", simulate_html(sim.report()))

    from ..deploy.pipeline import deploy, power
    from ..hardware_profiles import names
    print("deploy (100 samples, T = 100): check, quantize into the chip's formats, map, estimate energy")
    for chip in ("loihi", "spinnaker"):
        m = deploy(net, chip, data=ds, samples=100, steps=100, out=out / chip, force=True).manifest()
        e = m["energy"]
        print(f"  {chip}: {count(m['cores'], 'core')} on {count(m['chips'], 'chip')} ({m['counts_source']}), accuracy in its formats "
              f"{m['accuracy']['quantized']:.2%}; {'' if e['complete'] else '>= '}"
              f"{si(e['energy_per_inference_j'], 'J')} per inference at {e['inferences_per_s']:.4g} inferences/s "
              f"-> {shown / chip / 'report.html'}")
    result = power(net, names(), data=ds, samples=100, steps=100)
    write_json(out / "power.json", result)
    write_text(out / "power.html", power_html(result))
    print("power on every chip (100 samples, T = 100), energy per inference:")
    for name, e in result["targets"].items():
        if not e["fits"]:
            print(f"  {name:<11} does not fit: {e['reason'][:90]}{'...' if len(e['reason']) > 90 else ''}")
        else:
            print(f"  {name:<11} {'' if e['complete'] else '>= '}{si(e['energy_per_inference_j'], 'J')}"
                  f" ({'complete' if e['complete'] else 'unknown: ' + ', '.join(e['unknown'])})")
    for name, b in result["baselines"].items():
        print(f"  {name:<11} {si(b['energy_per_inference_j'], 'J')} (the same network as an ANN, batch 1)")


def cmd_deploy(args) -> int:
    from ..deploy.pipeline import deploy

    out = output(args, "--out", "deploy")
    check_outputs(out)
    net = load_graph(args.net, args.dt, args.library)
    data = samples_for(args, net)
    with progress_bar(args.samples, "deploy", args) as bar:
        dep = deploy(net, args.target, data=data, samples=args.samples, steps=args.steps, seed=args.seed,
                     out=out, progress=bar, realtime=args.realtime)
    m = dep.manifest()
    print(f"{args.net} -> {m['title']}: fits on {count(m['cores'], 'core')}, {count(m['chips'], 'chip')} "
          f"({m['counts_source']})")
    for lay in m["layers"]:
        err = lay["quant_max_abs_error"]
        print(f"  {lay['name']:<14}{lay['neurons']:>9,} neurons {lay['cores']:>6} {'core ' if lay['cores'] == 1 else 'cores'}"
              + ("" if err is None else f"   max |weight error| {err:.3g}"))
    for w in m["warnings"]:
        print(f"  WARNING: {w}")
    acc = m["accuracy"]
    print(f"  accuracy on {m['samples']} samples, T = {m['steps']}: float {pct(acc['float'])}, "
          f"in the chip's formats {pct(acc['quantized'])}")
    print_energy("energy", m["energy"])
    for name, b in m["baselines"].items():
        print_energy(f"{name} baseline (ANN)", b)
    if m["unknown"]:
        print(f"  not known for {m['target']}: {', '.join(u['key'] for u in m['unknown'])}")
    print(f"wrote {args.out}/ ({', '.join(m['artifacts'])})")
    return 0


def cmd_power(args) -> int:
    from ..deploy.pipeline import power

    check_outputs(*report_outputs(args))
    net = load_graph(args.net, args.dt, args.library)
    data = samples_for(args, net)
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    if "all" in targets:
        from ..hardware_profiles import names
        targets = [t for t in targets if t != "all"] + names()
    with progress_bar(args.samples, "power", args) as bar:
        result = power(net, targets, data=data, samples=args.samples, steps=args.steps, seed=args.seed,
                       progress=bar, realtime=args.realtime)
    write_reports(args, result, "power_html")  # first: a closed stdout must not lose the run
    print(f"{args.net}: {result['samples']} samples of {result['dataset']}, T = {result['steps']} "
          f"(float accuracy {pct(result['float_accuracy'])})")
    print_warnings(result.get("warnings", []))
    for name, e in result["targets"].items():
        if not e["fits"]:
            print(f"  {name}: does not fit: {e['reason']}")
            continue
        print_energy(f"{name} ({count(e['cores'], 'core')}, {count(e['chips'], 'chip')}, "
                      f"accuracy {pct(e['accuracy'])})", e)
    for name, b in result["baselines"].items():
        print_energy(f"{name} baseline (ANN)", b)
    return 0


def cmd_targets(args) -> int:
    from ..hardware_profiles import load_all

    for prof in load_all():
        if prof.neuromorphic:
            what = (f"{prof.value('core.neurons'):,} neurons/core, {prof.value('chip.cores'):,} cores/chip, "
                    f"{prof.value('precision.weight_bits')}-bit weights")
        else:
            what = "conventional baseline (ANN)"
        unknown = len(prof.unknowns())
        print(f"{prof.name:<11} {prof.title:<38} {what}" + (f"; {unknown} figures unknown" if unknown else ""))
    return 0
