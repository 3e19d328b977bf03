"""spikeport simulate, validate and export."""
from __future__ import annotations

from ..errors import SpikeportError

from .common import (check_outputs, load_graph, noting_warnings, output, print_simulation, progress_bar, quantized,
                     report_outputs, samples_for, write_reports)


def cmd_simulate(args) -> int:
    from ..api import simulate

    check_outputs(*report_outputs(args))
    net = load_graph(args.net, args.dt, args.library)
    if args.weight_bits or args.state_bits:
        net = quantized(net, args)
    if args.html and args.checkpoints is None:  # the report's accuracy curve: powers of two up to --steps
        args.checkpoints = sorted({2 ** k for k in range(args.steps.bit_length()) if 2 ** k <= args.steps}
                                  | {args.steps})
    with progress_bar(1, "simulate", args) as bar:
        sim = simulate(net, samples_for(args, net), args.steps, samples=args.samples, checkpoints=args.checkpoints,
                       device=args.device, seed=args.seed, progress=bar, ties=args.ties)
    write_reports(args, sim.report(), "simulate_html")  # first: a closed stdout must not lose the run
    print_simulation(sim)
    return 0


def cmd_validate(args) -> int:
    from ..api import validate

    check_outputs(*report_outputs(args))
    net = load_graph(args.net, args.dt, args.library)
    data = samples_for(args, net)
    module = None
    if args.model is not None:
        if not args.diagnose:
            raise SpikeportError("--model is the ANN that --diagnose compares with: add --diagnose")
        from ..models import load_model
        module = load_model(args.model).module
    with progress_bar(args.samples, "validate", args) as bar:
        val = validate(net, data, args.steps, samples=args.samples, backend=args.backend, seed=args.seed,
                       diagnose=args.diagnose, module=module, progress=bar, ties=args.ties,
                       batch_samples=args.batch_samples, batch_seconds=args.batch_seconds)
    rep = val.report()
    write_reports(args, rep, "validate_html")  # first: a closed stdout must not lose the run
    print_simulation(val.simulation)
    if val.reference is None:
        ref = "is the reference"
    else:
        ratio = rep["seconds"] / max(rep["reference_seconds"], 1e-9)
        ref = f"the reference ran in {rep['reference_seconds']:.2f} s, {ratio:,.0f}x faster than {rep['backend']}"
    print(f"  agreement with the reference executor: {rep['agreement']:.2%} of samples ({ref})")
    if val.reference is not None:
        corr = ", ".join(f"{k} {v:.4f}" for k, v in rep["rate_correlation"].items())
        print(f"  per-layer rate correlation with the reference: {corr}")
    for note in rep["notes"]:
        print(f"  note: {note}")
    if val.diagnosis is not None:
        print(f"  diagnosis: each layer's rates against {rep['diagnosis']['compared_with']}")
        print(f"  {'layer':<12}{'correlation':>12}{'mean |error|':>14}{'ANN rate':>10}{'SNN rate':>10}")
        for layer in val.diagnosis["layers"]:
            print(f"  {layer.name:<12}{layer.correlation:>12.4f}{layer.mean_abs_error:>14.4f}"
                  f"{layer.ann_mean_rate:>10.4f}{layer.snn_mean_rate:>10.4f}")
        bad = val.diagnosis["first_bad"]
        print("  every layer follows the ANN" if bad is None else
              f"  first layer where agreement drops: {bad} (the layers before it follow the ANN)")
    return 0


def cmd_export(args) -> int:
    from ..ir.nir import export_nir

    check_outputs(output(args, "--out", "nir"))
    net = load_graph(args.net, args.dt, args.library)
    try:
        noting_warnings(export_nir, net, args.out, library=args.for_library)
    except SpikeportError as exc:  # in the command line's words
        raise SpikeportError(str(exc).replace("with library=None (generic NIR)", "without --for (generic NIR)")) from None
    print(f"exported {args.net} -> {args.out} ({args.to.upper()}"
          + ("" if args.for_library is None else f" for {args.for_library}'s importer")
          + f": {len(net.populations)} populations, {len(net.projections)} projections)")
    return 0
