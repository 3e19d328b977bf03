"""spikeport convert: a model file, a user's PyTorch file or a NIR file to a graph file."""
from __future__ import annotations

from pathlib import Path

from ..errors import SpikeportError
from ..models.methods import RATE_CONVERTED

from .common import (calibration_data, check_outputs, model_file, named_data, noting_warnings, output, progress_bar,
                     read_nir)


def net_output(args):
    """--out NET (default: MODEL with the suffix .spk), checked before any work."""
    path = args.out
    if path is None:
        try:
            path = Path(args.model).with_suffix(".spk")
        except ValueError:  # a MODEL such as "." or "/" has no name to take a suffix
            raise SpikeportError(f"{args.model}: not a model file; give --out NET") from None
    out = output(args, "--out", "graph", path)
    check_outputs(out)
    return out


def cmd_convert(args) -> int:
    from ..datasets import load_dataset
    from ..ir import write_network
    from ..ir.nir import is_nir_file

    if is_nir_file(args.model):
        unused = [opt for opt, value in (("--data", args.data), ("--model-def", args.model_def), ("--norm", args.norm),
                                         ("--percentile", args.percentile), ("--l4", args.l4),
                                         ("--calibrate", args.calibrate), ("--for-steps", args.for_steps))
                  if value is not None]
        if unused:
            raise SpikeportError(f"{args.model}: {', '.join(unused)} {'applies' if len(unused) == 1 else 'apply'} "
                                 f"to model files, not to a NIR file (its options: --dt, --encoding, --max-rate, "
                                 f"--reset, --v-init, --threshold-scale)")
        from ..api import convert_nir

        args.output = net_output(args)  # before the import
        notes = []
        net = read_nir(args.model, args.dt, args.library, convert_nir, args.model, args.dt, library=args.library,
                       encoding=args.encoding, max_rate_hz=args.max_rate, reset=args.reset, v_init=args.v_init,
                       threshold_scale=args.threshold_scale, notes=notes)
        if args.dataset:
            net.metadata["dataset"] = args.dataset
        out = args.output.path
        args.output.write(lambda f: write_network(net, f))
        print(f"imported NIR file {args.model} -> {out} ({len(net.populations)} populations, "
              f"{len(net.projections)} projections, dt {net.dt_s * 1e3:g} ms)")
        for note in notes:
            print(f"  {note}")
        return 0
    nir_only = [opt for opt, value in (("--reset", args.reset), ("--threshold-scale", args.threshold_scale),
                                       ("--from", args.library)) if value is not None]
    if nir_only:
        raise SpikeportError(f"{args.model}: {', '.join(nir_only)} {'applies' if len(nir_only) == 1 else 'apply'} to "
                             f"NIR files (a converted network's reset and thresholds are the conversion's)")
    model = model_file(args)  # MODEL first: a graph file given as MODEL is named as such, not as --out
    if model is None:
        return convert_pytorch(args)
    args.output = net_output(args)  # before the data and the conversion
    method = model.meta.get("method", "relu")
    check_adjust_options(args, method)
    if args.data is not None:
        if args.dataset is not None:
            raise SpikeportError("--data and --dataset both name the calibration samples: give one")
        ds = calibration_data(args.data, model)
        dataset = None  # not a data set the later commands could load: they take --data too
    else:
        dataset = args.dataset or named_data(model.meta.get("dataset", "digits"), args.model)
        ds = load_dataset(dataset, args.data_dir)
    if ds.input_shape != model.spec.input_shape:
        raise SpikeportError(f"{args.model}: the model takes input {model.spec.input_shape}, "
                             f"but data set {dataset!r} has {ds.input_shape}")
    meta = {"source": {"model": str(args.model), "arch": model.spec.arch, "method": method},
            "dataset": dataset, "ann_accuracy": model.meta.get("test_accuracy") if dataset == model.meta.get("dataset") else None}
    if args.data is not None:
        meta["calibration_data"] = str(args.data)
    given = {"norm": args.norm, "percentile": args.percentile, "v_init": args.v_init, "encoding": args.encoding,
             "max_rate_hz": args.max_rate, "dt_s": args.dt}
    options = {k: v for k, v in given.items() if v is not None}
    flags = {"norm": "--norm", "percentile": "--percentile", "v_init": "--v-init", "encoding": "--encoding",
             "max_rate_hz": "--max-rate", "dt_s": "--dt"}
    from ..models.methods import get_method
    allowed = get_method(method).METHOD.convert_options
    stray = [flags[k] for k in options if k not in allowed]
    if stray:
        raise SpikeportError(f"{args.model}: a {method} model converts to its own spiking network; "
                             f"{', '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply "
                             f"(its options: {', '.join(flags.get(k, k) for k in allowed) or 'none'})")
    net, out, adjusted = convert_and_save(args, model, ds, meta, options)
    conv = net.metadata["conversion"]
    if method in RATE_CONVERTED:
        scales = ", ".join(f"{k} {v:.3g}" for k, v in conv["scales"].items())
        p = conv["percentile"]
        print(f"converted {args.model} -> {out} ({conv['norm']} normalization{'' if p is None else f', p = {p:g}'}, "
              f"v(0) = {conv['v_init']}; scales: {scales})")
    else:
        print(f"converted {args.model} ({method}) -> {out}: {conv.get('neuron', '')}")
    for line in adjusted:
        print(f"  {line}")
    return 0


def convert_pytorch(args) -> int:
    """convert of a user's PyTorch file: a state dict with --model-def module:factory, or TorchScript; rate
    conversion with the relu method's defaults (a plain command gives the best settings we measured)."""
    from ..datasets import load_dataset
    from ..models.training import TrainedModel
    from ..models.user_module import load_user_module

    check_adjust_options(args)
    module = load_user_module(args.model, args.model_def)
    args.output = net_output(args)  # before the data and the conversion
    if args.data is not None and args.dataset is not None:
        raise SpikeportError("--data and --dataset both name the calibration samples: give one")
    if args.data is None and args.dataset is None:
        raise SpikeportError(f"{args.model}: a PyTorch file needs calibration samples shaped as its input: "
                             f"--data FILE (.npz with x, or .npy) or --dataset D")
    if args.data is not None:
        ds = calibration_data(args.data)
    else:
        ds = load_dataset(args.dataset, args.data_dir)
    given = {"norm": args.norm, "percentile": args.percentile, "v_init": args.v_init, "encoding": args.encoding,
             "max_rate_hz": args.max_rate, "dt_s": args.dt}
    meta = {"source": {"model": str(args.model), "model_def": args.model_def, "arch": None, "method": "relu"},
            "dataset": args.dataset, "ann_accuracy": None}
    if args.data is not None:
        meta["calibration_data"] = str(args.data)
    wrapped = TrainedModel(module=module, spec=None, meta={"method": "relu"})
    net, out, adjusted = convert_and_save(args, wrapped, ds, meta, {k: v for k, v in given.items() if v is not None})
    conv = net.metadata["conversion"]
    p = conv["percentile"]
    print(f"converted {args.model} ({'TorchScript' if args.model_def is None else args.model_def}) -> {out} "
          f"({conv['norm']} normalization{'' if p is None else f', p = {p:g}'}, v(0) = {conv['v_init']}; "
          f"{len(net.populations) - 1} spiking populations)")
    for line in adjusted:
        print(f"  {line}")
    return 0


def check_adjust_options(args, method: str = "relu") -> None:
    """Before any work: the adjustment options make sense together (and with the model's method)."""
    from ..api import check_adjustments

    if args.norm == "l4":  # the design's NORM list: percentile normalization with the L4 adjustment
        args.norm, args.l4 = "percentile", args.l4 or "scale"
    if args.l4 or args.calibrate:
        check_adjustments(method, for_steps=args.for_steps, l4=args.l4, l4_sigma=args.l4_sigma,
                          l4_alpha=args.l4_alpha, calibrate=args.calibrate, calib_samples=args.calib_samples)
        return
    stray = [opt for opt, value, default in (("--for-steps", args.for_steps, None),
                                             ("--l4-sigma", args.l4_sigma, "l4"),
                                             ("--l4-alpha", args.l4_alpha, 1.0),
                                             ("--calib-samples", args.calib_samples, 512)) if value != default]
    if stray:
        raise SpikeportError(f"{', '.join(stray)} {'applies' if len(stray) == 1 else 'apply'} to --l4 and "
                             f"--calibrate, and neither is given")


def convert_and_save(args, model, ds, meta: dict, options: dict):
    """``spikeport.convert`` of ``model`` on ``ds``'s training samples with the command line's L4 and
    calibration options, saved to --out (default MODEL.spk). Returns (network, path, adjustment lines)."""
    from ..api import convert
    from ..ir import write_network
    from ..progress import reporting

    adjusted = []
    with progress_bar(1, "convert", args) as bar, reporting(bar):
        net = noting_warnings(convert, model, ds.x("train"), metadata=meta,
                              labels=None if ds.train_labels is None else ds.y("train"), for_steps=args.for_steps,
                              l4=args.l4, l4_sigma=args.l4_sigma, l4_alpha=args.l4_alpha, calibrate=args.calibrate,
                              calib_samples=args.calib_samples, notes=adjusted, **options)
    args.output.write(lambda f: write_network(net, f))
    return net, args.output.path, adjusted
