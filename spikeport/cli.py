"""The command line: a thin shell over the Python API.

Exit status: 0 on success; 2 on a user error, with one line ``error: ...`` on
stderr naming the file, layer or limit; 1 on an internal error (a bug).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from . import __version__
from .backends import BACKENDS
from .errors import SpikeportError
from .units import count, si, si_range

DATASET_NAMES = ("digits", "mnist", "mnist-5k", "fashion-mnist")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage too)
        raise SpikeportError(f"{self.prog}: {message}")


def _number(text: str, ok, expected: str) -> float:
    """A finite float for which ``ok(value)`` holds, else argparse's one-line error."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def _alpha(text: str):
    return text if text == "auto" else _number(text, lambda v: v >= 0, "a number >= 0 or 'auto'")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    return _number(text, lambda v: v > 0, "a number > 0")


def _finite_float(text: str) -> float:
    return _number(text, lambda v: True, "a finite number")


def _arch(text: str) -> str:
    from .models.architectures import ArchSpec

    try:
        ArchSpec(arch=text, input_shape=(1, 28, 28), classes=10)
    except SpikeportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _steps_list(text: str):
    if text.strip() == "all":
        return "all"
    return [_positive(t) for t in text.split(",") if t.strip()]


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time step in seconds, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a time step in (0, 1] seconds, got {text}")
    return value


def _noting_warnings(fn, *args, **kwargs):
    """Run fn; print what it warned (NIR assumptions, metadata-only fields) as 'note:' lines on stderr."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    return result


def _write_text(path, text: str) -> None:
    """``text`` into ``path``, all or nothing."""
    from .ir.io import atomic_write
    atomic_write(Path(path), lambda f: f.write(text.encode()))


def _write_json(path, data) -> None:
    _write_text(path, json.dumps(data, indent=2) + "\n")


def _check_outputs(*paths) -> None:
    """Refuse before any work an output file whose directory does not exist."""
    for path in paths:
        if path and not Path(path).resolve().parent.is_dir():
            raise SpikeportError(f"{path}: directory {Path(path).parent} does not exist")


def _progress(total, label, args=None):
    from .progress import Progress
    return Progress(total, label, quiet=bool(getattr(args, "quiet", False)))


# ----------------------------------------------------------------------------- commands

def _option_value(text: str):
    """KEY=VALUE of --option: a number, true/false, or a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise SpikeportError(f"--option {text!r}: expected KEY=VALUE")
    low = value.strip().lower()
    if low in ("true", "false"):
        return key.strip(), low == "true"
    for kind in (int, float):
        try:
            return key.strip(), kind(value)
        except ValueError:
            pass
    return key.strip(), value


def cmd_train(args) -> int:
    from .datasets import load_dataset
    from .models import save_model, train

    if args.data is not None:
        if args.dataset is not None:
            raise SpikeportError("--data and --dataset both name the training samples: give one")
        from .datasets import user_dataset
        ds = user_dataset(args.data)
    else:
        ds = load_dataset(args.dataset or "digits", args.data_dir)
    options = dict(_option_value(o) for o in args.option)
    checkpoint = args.checkpoint or f"{args.out}.ckpt"
    validation = args.validation
    if validation is not None:
        validation = float(validation) if "." in validation else int(validation)
    with _progress(1, "train", args) as bar:
        model = train(ds, arch=args.arch, method=args.method, epochs=args.epochs, seed=args.seed,
                      batch_size=args.batch_size, lr=args.lr, qcfs_levels=args.qcfs_levels, options=options,
                      device=args.device, validation=validation, checkpoint=checkpoint, resume=args.resume,
                      init=args.init, progress=bar)
    save_model(model, args.out)
    m = model.meta
    val = "" if m["val_accuracy"] is None else f", validation {m['val_accuracy']:.2%} (epoch {m['selected_epoch']})"
    train_acc = "" if "train_accuracy" not in m else f"train accuracy {m['train_accuracy']:.2%}, "
    what = "SNN" if m["method"] in ("proxy", "spike-bp") else "ANN"
    print(f"trained {m['arch']} ({m['method']}) on {ds.name}: {m['epochs']} epochs in {m['train_seconds']:.0f} s, "
          f"{train_acc}{what} test accuracy {m['test_accuracy']:.2%}{val} -> {args.out}")
    return 0


def cmd_fit_nsp(args) -> int:
    from .models.nsp_fit import fit_nsp

    names = ("cm_nf", "tau_m_ms", "tau_refrac_ms", "tau_syn_ms", "v_rest_mv", "v_reset_mv", "v_thresh_mv",
             "i_offset_na", "dt_ms", "duration_s", "trials", "fit_bias", "seed")
    fit = fit_nsp(**{k: getattr(args, k) for k in names})
    grid = f"{fit.means_na.size} mean currents x {fit.sigmas_na.size} noise levels"
    bias = f", b {fit.bias_na:.3f} nA" if args.fit_bias else ""
    print(f"Noisy Softplus fit for IF_curr_exp (cm {args.cm_nf:g} nF, tau_m {args.tau_m_ms:g} ms, tau_syn "
          f"{args.tau_syn_ms:g} ms, tau_refrac {args.tau_refrac_ms:g} ms, threshold {args.v_thresh_mv - args.v_rest_mv:g} mV "
          f"above rest, i_offset {args.i_offset_na:g} nA), {grid}, {args.trials} x {args.duration_s:g} s on a "
          f"{args.dt_ms:g} ms grid:")
    print(f"  k {fit.k:.4f}, S {fit.S_hz_per_na:.2f} Hz/nA{bias} (rms residual {fit.residual_hz:.2f} Hz)")
    print(f"  train with: spikeport train --method noisy-softplus --option k={fit.k:.4f} "
          f"--option S={fit.S_hz_per_na:.2f} --option tau_syn_ms={args.tau_syn_ms:g} ...")
    if args.json:
        _write_json(args.json, {"k": fit.k, "S_hz_per_na": fit.S_hz_per_na, "bias_na": fit.bias_na,
                                "residual_hz": fit.residual_hz, "settings": fit.settings,
                                "means_na": fit.means_na.tolist(), "sigmas_na": fit.sigmas_na.tolist(),
                                "rates_hz": fit.rates_hz.tolist()})
    return 0


def cmd_methods(args) -> int:
    from .models.methods import METHODS, describe

    names = [args.name] if args.name else list(METHODS)
    decls = [describe(n) for n in names]
    if args.json:
        _write_json(args.json, {d["name"]: d for d in decls})
    for d in decls:
        from .models.methods.base import SpikingSpec
        print(f"{d['name']}: {d['citation']}")
        print(f"  ANN       {d['ann']}")
        print(f"  training  {d['training']}")
        print(f"  SNN       {SpikingSpec(**d['snn']).describe()}")
        if d["options"]:
            print("  options   " + ", ".join(f"{k}={v}" for k, v in d["options"].items()))
    return 0


def cmd_convert(args) -> int:
    from .datasets import load_dataset
    from .ir import save_network
    from .ir.nirgraph import is_nir_file
    from .models import convert

    if is_nir_file(args.model):
        unused = [opt for opt, value in (("--data", args.data), ("--model-def", args.model_def), ("--norm", args.norm),
                                         ("--percentile", args.percentile), ("--l4", args.l4),
                                         ("--calibrate", args.calibrate), ("--for-steps", args.for_steps))
                  if value is not None]
        if unused:
            raise SpikeportError(f"{args.model}: {', '.join(unused)} {'applies' if len(unused) == 1 else 'apply'} "
                                 f"to model files, not to a NIR file (its options: --dt, --encoding, --max-rate, "
                                 f"--reset, --v-init, --threshold-scale)")
        from .ir.restate import restate
        from .ir.nirgraph import detect_library
        library = args.library or detect_library(args.model)
        preset = library not in (None, "nir", "lava")  # a library's reset is the import's (snnTorch's is late)
        net, notes = restate(_load_graph(args.model, args.dt, args.library, args.reset if preset else None),
                             encoding=args.encoding, max_rate_hz=args.max_rate, reset=None if preset else args.reset,
                             v_init=args.v_init, threshold_scale=args.threshold_scale)
        if args.dataset:
            net.metadata["dataset"] = args.dataset
        out = args.out or Path(args.model).with_suffix(".spk")
        save_network(net, out)
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
    model = _model_file(args)
    if model is None:
        return _convert_pytorch(args)
    method = model.meta.get("method", "relu")
    rate_converted = method in ("relu", "qcfs")
    _check_adjust_options(args, rate_converted, method)
    if args.data is not None:
        if args.dataset is not None:
            raise SpikeportError("--data and --dataset both name the calibration samples: give one")
        ds = _calibration_data(args.data, model)
        dataset = None  # not a data set the later commands could load: they take --data too
    else:
        dataset = args.dataset or _named_data(model.meta.get("dataset", "digits"), args.model)
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
    from .models.methods import get_method
    allowed = get_method(method).METHOD.convert_options
    stray = [flags[k] for k in options if k not in allowed]
    if stray:
        raise SpikeportError(f"{args.model}: a {method} model converts to its own spiking network; "
                             f"{', '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply "
                             f"(its options: {', '.join(flags.get(k, k) for k in allowed) or 'none'})")
    from .progress import reporting
    with _progress(1, "convert", args) as bar, reporting(bar):
        net = _noting_warnings(convert, model, ds.x("train"), metadata=meta, **options)
    net, adjusted = _adjust(net, args, ds, model.module)
    out = args.out or Path(args.model).with_suffix(".spk")
    save_network(net, out)
    conv = net.metadata["conversion"]
    if rate_converted:
        scales = ", ".join(f"{k} {v:.3g}" for k, v in conv["scales"].items())
        p = conv["percentile"]
        print(f"converted {args.model} -> {out} ({conv['norm']} normalization{'' if p is None else f', p = {p:g}'}, "
              f"v(0) = {conv['v_init']}; scales: {scales})")
    else:
        print(f"converted {args.model} ({method}) -> {out}: {conv.get('neuron', '')}")
    for line in adjusted:
        print(f"  {line}")
    return 0


def _model_file(args):
    """The spikeport model file MODEL, or None where MODEL is a user's PyTorch file (converted by
    :func:`_convert_pytorch`)."""
    from .models import load_model
    from .models.user_module import is_torchscript

    if args.model_def is not None or is_torchscript(args.model):
        return None
    try:
        return load_model(args.model)
    except SpikeportError as exc:
        if "not a spikeport model file" in str(exc):  # a PyTorch file of the user's: say what it needs
            from .models.user_module import load_user_module
            load_user_module(args.model)  # raises the line that says how to convert it
        raise


def _convert_pytorch(args) -> int:
    """convert of a user's PyTorch file: a state dict with --model-def module:factory, or TorchScript; rate
    conversion with the relu method's defaults (a plain command gives the best settings we measured)."""
    from .datasets import load_dataset
    from .ir import save_network
    from .models.methods import get_method
    from .models.training import TrainedModel
    from .models.user_module import load_user_module

    _check_adjust_options(args)
    module = load_user_module(args.model, args.model_def)
    if args.data is not None and args.dataset is not None:
        raise SpikeportError("--data and --dataset both name the calibration samples: give one")
    if args.data is None and args.dataset is None:
        raise SpikeportError(f"{args.model}: a PyTorch file needs calibration samples shaped as its input: "
                             f"--data FILE (.npz with x, or .npy) or --dataset D")
    if args.data is not None:
        ds = _calibration_data(args.data)
    else:
        ds = load_dataset(args.dataset, args.data_dir)
    given = {"norm": args.norm, "percentile": args.percentile, "v_init": args.v_init, "encoding": args.encoding,
             "max_rate_hz": args.max_rate, "dt_s": args.dt}
    meta = {"source": {"model": str(args.model), "model_def": args.model_def, "arch": None, "method": "relu"},
            "dataset": args.dataset, "ann_accuracy": None}
    if args.data is not None:
        meta["calibration_data"] = str(args.data)
    from .progress import reporting
    wrapped = TrainedModel(module=module, spec=None, meta={"method": "relu"})
    with _progress(1, "convert", args) as bar, reporting(bar):
        net = _noting_warnings(get_method("relu").to_network, wrapped, ds.x("train"), metadata=meta,
                               **{k: v for k, v in given.items() if v is not None})
    net, adjusted = _adjust(net, args, ds, module)
    out = args.out or Path(args.model).with_suffix(".spk")
    save_network(net, out)
    conv = net.metadata["conversion"]
    p = conv["percentile"]
    print(f"converted {args.model} ({'TorchScript' if args.model_def is None else args.model_def}) -> {out} "
          f"({conv['norm']} normalization{'' if p is None else f', p = {p:g}'}, v(0) = {conv['v_init']}; "
          f"{len(net.populations) - 1} spiking populations)")
    for line in adjusted:
        print(f"  {line}")
    return 0


def _calibration_data(path, model=None):
    """The user's own samples as the calibration (training) split convert reads; checked against ``model``'s
    input and classes where it is a spikeport model file."""
    from .datasets import Dataset, load_user_data

    x, y = load_user_data(path, *((model.spec.input_shape, model.spec.classes) if model is not None else ()))
    return Dataset(name=Path(path).name, train_images=x, train_labels=y, test_images=x[:0],
                   test_labels=None if y is None else y[:0], pixel_max=1.0, source=str(path))


def _check_adjust_options(args, rate_converted: bool = True, method: str = "relu") -> None:
    """Before any work: the adjustment options make sense together (and with the model's method)."""
    if args.norm == "l4":  # the design's NORM list: percentile normalization with the L4 adjustment
        args.norm, args.l4 = "percentile", args.l4 or "scale"
    if (args.l4 or args.calibrate) and not rate_converted:
        raise SpikeportError(f"--l4 and --calibrate adjust rate-converted networks (relu, qcfs); a {method} model "
                             f"was trained for its own spiking network")
    if args.l4 or args.calibrate:
        if args.for_steps is None:
            raise SpikeportError("--l4 and --calibrate are made for one number of steps: give --for-steps T")
        return
    stray = [opt for opt, value, default in (("--for-steps", args.for_steps, None),
                                             ("--l4-sigma", args.l4_sigma, "l4"),
                                             ("--l4-alpha", args.l4_alpha, 1.0),
                                             ("--calib-samples", args.calib_samples, 512)) if value != default]
    if stray:
        raise SpikeportError(f"{', '.join(stray)} {'applies' if len(stray) == 1 else 'apply'} to --l4 and "
                             f"--calibrate, and neither is given")


def _adjust(net, args, ds, module):
    """The L4 adjustment and bias calibration asked for on the convert command line."""
    from .models.calibrate import calibrate_bias, calibrate_membrane, calibrate_weights, choose_l4_alpha, l4_adjust
    from .models.diagnose import ann_rates

    if not (args.l4 or args.calibrate):
        return net, []
    n = min(args.calib_samples, len(ds.x("train")))
    x = ds.x("train")[:n]
    if ds.train_labels is None and args.l4_alpha == "auto":
        raise SpikeportError(f"--l4-alpha auto chooses by accuracy on the calibration samples: {ds.name} has no "
                             f"labels y")
    y = None if ds.train_labels is None else ds.y("train")[:n]
    lines = []
    if args.l4:
        alpha = args.l4_alpha
        if alpha == "auto":
            alpha, scores = choose_l4_alpha(net, x, y, args.for_steps, mode=args.l4, sigma=args.l4_sigma)
            lines.append("L4 alpha chosen on the calibration samples: " +
                         ", ".join(f"{a:g}: {s:.2%}" for a, s in scores.items()) + f" -> {alpha:g}")
        net, rep = l4_adjust(net, x, args.for_steps, alpha=float(alpha), mode=args.l4, sigma=args.l4_sigma)
        key = "factor_mean" if args.l4 == "scale" else "shift_mean"
        lines.append(f"L4 adjustment ({args.l4}, sigma {args.l4_sigma}, alpha {float(alpha):g}, T = {args.for_steps}, "
                     f"{n} samples): " + ", ".join(f"{r['population']} {r[key]:.4g}" for r in rep))
    if args.calibrate:
        # towards the ANN's own activations (Li et al.): right also where the ANN is not the
        # graph's rate model (QCFS quantizes)
        target = ann_rates(net, module, x)
        if args.calibrate == "weights":
            net, rep = calibrate_weights(net, x, args.for_steps, target=target)
            lines.append(f"weight calibration towards the ANN (T = {args.for_steps}, {n} samples), relative drive "
                         "error before -> after: " + ", ".join(
                             f"{r['population']} {r['drive_error_before']:.4f} -> {r['drive_error_after']:.4f}"
                             for r in rep if r["fitted"]))
        elif args.calibrate == "membrane":
            net, rep = calibrate_membrane(net, x, args.for_steps, target=target)
        else:
            net, rep = calibrate_bias(net, x, args.for_steps, target=target)
        what = "initial membrane" if args.calibrate == "membrane" else "bias"
        lines.append(f"{what} calibration towards the ANN (T = {args.for_steps}, {n} samples), mean |rate error| before: " +
                     ", ".join(f"{r['population']} {r['rate_error_before']:.4f}" for r in rep))
    return net, lines


def _print_simulation(sim, stream=sys.stdout) -> None:
    rep = sim.report()
    ann = rep["ann_accuracy"]
    print(f"{rep['samples']} samples of {rep['dataset'] or 'the given data'} ({rep['encoding']} input), "
          f"{rep['backend']} on {rep['device']}, {rep['seconds']:.2f} s", file=stream)
    if ann is not None:
        print(f"  ANN accuracy         {ann:.2%}", file=stream)
    elif rep.get("rate_model_accuracy") is not None:
        print(f"  as an ANN            {rep['rate_model_accuracy']:.2%} (the network's rate model, on the same "
              f"samples)", file=stream)
    if ann is None and rep.get("ann_accuracy_test_set") is not None:
        print(f"  (the ANN scored {rep['ann_accuracy_test_set']:.2%} on the whole test set when converted; these "
              f"are {rep['samples']} of its samples)", file=stream)
    by_steps = list(rep["accuracy_by_steps"].items())
    if len(by_steps) > 12:  # every step: show a sample of the curve
        by_steps = by_steps[:: max(1, len(by_steps) // 8)] + [by_steps[-1]]
    for t, acc in dict(by_steps).items():
        print(f"  SNN accuracy T={t:<5} {_pct(acc)}" + (" (ties to the lowest class)" if rep.get("ties") == "index"
                                                       else ""), file=stream)
    if rep["first_spike_step_mean"] is not None:
        print(f"  first output spike   step {rep['first_spike_step_mean']:.1f} on average "
              f"({rep['no_output_spike_fraction']:.1%} of samples never spike)", file=stream)
    print(f"  {'layer':<12}{'neurons':>9}{'spikes':>12}{'rate (Hz)':>11}{'synops':>14}   per inference", file=stream)
    for l in rep["layers"]:
        spikes = "-" if l["spikes"] is None else f"{l['spikes']:.1f}"
        rate = "-" if l["rate_hz"] is None else f"{l['rate_hz']:.1f}"
        print(f"  {l['name']:<12}{l['neurons']:>9}{spikes:>12}{rate:>11}{l['synops']:>14.0f}", file=stream)
    _print_warnings(rep.get("warnings", []), stream)


LAVA = ("lava-dl has no released NIR export (its NIR code is unreleased, on GitHub main only, and every release "
        "needs Python < 3.11): export the network from lava-dl's source to NIR yourself and import it with --from nir")


def _load_graph(path, dt=None, library=None, reset=None):
    """A graph file, or a NIR file: a library's export (its conventions, detected or --from) or generic NIR
    (which needs --dt: its neurons are continuous-time)."""
    from .ir import load_network
    from .ir.nirgraph import import_nir, is_nir_file

    if is_nir_file(path):
        if library == "lava":
            raise SpikeportError(f"{path}: --from lava: {LAVA}")
        if library == "nir" and dt is None:
            raise SpikeportError(f"{path}: generic NIR (--from nir) needs --dt SECONDS, the time step its "
                                 f"continuous-time neurons are discretized with")
        try:
            return _noting_warnings(import_nir, path, dt, library=library, reset=reset)
        except SpikeportError as exc:
            if "cannot tell which library" in str(exc):  # in the command line's words
                raise SpikeportError(f"{path}: cannot tell which library wrote this NIR file: give --from "
                                     f"snntorch|norse|sinabs|rockpool, or --dt SECONDS for generic NIR") from None
            raise
    given = [flag for flag, value in (("--dt", dt), ("--from", library)) if value is not None]
    if given:
        raise SpikeportError(f"{path}: {' and '.join(given)} {'is' if len(given) == 1 else 'are'} for NIR files; a "
                             f"graph file has its own time step and semantics")
    return load_network(path)


def _samples(args, net):
    """Where a command's samples come from: the user's ``--data FILE`` (checked against the network's input
    and output), else a data set (``--dataset``, the network's, or digits) whose input must fit."""
    from .datasets import Samples, load_dataset, load_user_data

    inp, out = net.population(net.input), net.population(net.output)
    if args.data is not None:
        if args.dataset is not None:
            raise SpikeportError("--data and --dataset both name the samples: give one")
        x, y = load_user_data(args.data, inp.shape, classes=out.size)
        _default_samples(args, len(x))
        return Samples(x, y, Path(args.data).name)
    ds = load_dataset(args.dataset or _named_data(net.metadata.get("dataset") or "digits", args.net), args.data_dir)
    _default_samples(args, len(ds.test_labels))
    return ds  # its shape is checked against the network's input where the samples are taken


def _named_data(name: str, path) -> str:
    """The data set a file came from, or a line saying to give the samples where it came from the user's own."""
    if name not in DATASET_NAMES:
        raise SpikeportError(f"{path}: comes from your own data ({name}): give samples with --data FILE")
    return name


def _default_samples(args, available: int) -> None:
    """validate, deploy and power measure 100 samples unless told otherwise (all of them if fewer)."""
    if args.samples is None and args.command in ("validate", "deploy", "power"):
        args.samples = min(100, available)


def _pct(v) -> str:
    """An accuracy for the terminal; None (samples without labels) as such."""
    return "n/a (no labels)" if v is None else f"{v:.2%}"


def _print_warnings(warnings, stream=sys.stdout) -> None:
    for w in warnings:
        print(f"  WARNING: {w}", file=stream)


def cmd_simulate(args) -> int:
    from .api import simulate

    _check_outputs(args.json, args.html)
    net = _load_graph(args.net, args.dt, args.library)
    if args.weight_bits or args.state_bits:
        net = _quantized(net, args)
    if args.html and args.checkpoints is None:  # the report's accuracy curve: powers of two up to --steps
        args.checkpoints = sorted({2 ** k for k in range(args.steps.bit_length()) if 2 ** k <= args.steps}
                                  | {args.steps})
    with _progress(1, "simulate", args) as bar:
        sim = simulate(net, _samples(args, net), args.steps, samples=args.samples, checkpoints=args.checkpoints,
                       device=args.device, seed=args.seed, progress=bar, ties=args.ties)
    _print_simulation(sim)
    if args.json:
        _write_json(args.json, sim.report())
    if args.html:
        from .deploy.report import simulate_html
        _write_text(args.html, simulate_html(sim.report()))
    return 0


def cmd_validate(args) -> int:
    from .api import validate

    _check_outputs(args.json, args.html)
    net = _load_graph(args.net, args.dt, args.library)
    data = _samples(args, net)
    module = None
    if args.model is not None:
        if not args.diagnose:
            raise SpikeportError("--model is the ANN that --diagnose compares with: add --diagnose")
        from .models import load_model
        module = load_model(args.model).module
    with _progress(args.samples, "validate", args) as bar:
        val = validate(net, data, args.steps, samples=args.samples, backend=args.backend, seed=args.seed,
                       diagnose=args.diagnose, module=module, progress=bar, ties=args.ties)
    _print_simulation(val.simulation)
    rep = val.report()
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
    if args.json:
        _write_json(args.json, rep)
    if args.html:
        from .deploy.report import validate_html
        _write_text(args.html, validate_html(rep))
    return 0


def _quantized(net, args):
    """The network in integer formats (--weight-bits/--state-bits), with a one-line-per-layer report."""
    from .deploy import quantize
    from .ir import FixedPoint

    fmt = FixedPoint(weight_bits=args.weight_bits or 8, state_bits=args.state_bits or 24)
    qnet, report = quantize(net, fmt)
    print(f"fixed point: {fmt.weight_bits}-bit weights, {fmt.state_bits}-bit state, saturating")
    for p in report["projections"]:
        warn = "   WARNING: many weights became zero" if p["zeroed_fraction"] > 0.05 else ""
        print(f"  {p['name']:<16} max |error| {p['max_abs_error']:.3g}, mean {p['mean_abs_error']:.3g}, "
              f"zeroed {p['zeroed_fraction']:.1%}{warn}")
    return qnet


def cmd_export(args) -> int:
    from .ir.nirgraph import export_nir

    net = _load_graph(args.net, args.dt, args.library)
    try:
        _noting_warnings(export_nir, net, args.out, library=args.for_library)
    except SpikeportError as exc:  # in the command line's words
        raise SpikeportError(str(exc).replace("with library=None (generic NIR)", "without --for (generic NIR)")) from None
    print(f"exported {args.net} -> {args.out} ({args.to.upper()}"
          + ("" if args.for_library is None else f" for {args.for_library}'s importer")
          + f": {len(net.populations)} populations, {len(net.projections)} projections)")
    return 0


def cmd_demo(args) -> int:
    from .api import simulate
    from .datasets import load_dataset
    from .ir import save_network
    from .models import convert, save_model, train

    out = Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpikeportError(f"{out}: cannot create the output directory ({exc.strerror})") from None
    ds = load_dataset("digits")
    print(f"spikeport demo: train an MLP on digits ({len(ds.train_labels)} train / {len(ds.test_labels)} test), "
          f"convert it to IF neurons, simulate it, deploy it to Loihi and SpiNNaker, compare every chip's energy")
    model = train(ds, arch="mlp", method="relu", seed=0)
    save_model(model, out / "model.pt")
    print(f"  trained mlp {model.spec.hidden}: ANN test accuracy {model.meta['test_accuracy']:.2%} "
          f"({model.meta['train_seconds']:.1f} s)")
    net = convert(model.module, ds.x("train"), metadata={"source": {"model": "model.pt", "arch": "mlp", "method": "relu"},
                                                         "dataset": "digits", "ann_accuracy": model.meta["test_accuracy"]})
    save_network(net, out / "net.spk")
    print("  converted with percentile normalization (p = 99.9), analog input, IF neurons, reset by subtraction")
    sim = simulate(net, ds, 128, checkpoints=[1, 2, 4, 8, 16, 32, 64, 128])
    _print_simulation(sim)
    _write_json(out / "simulate.json", sim.report())
    from .deploy.report import power_html, simulate_html
    _write_text(out / "simulate.html", simulate_html(sim.report()))

    from .deploy.pipeline import deploy, power
    from .hardware_profiles import names
    print("deploy (100 samples, T = 100): check, quantize into the chip's formats, map, estimate energy")
    for chip in ("loihi", "spinnaker"):
        m = deploy(net, chip, data=ds, samples=100, steps=100, out=out / chip, force=True).manifest()
        e = m["energy"]
        print(f"  {chip}: {count(m['cores'], 'core')} on {count(m['chips'], 'chip')} ({m['counts_source']}), accuracy in its formats "
              f"{m['accuracy']['quantized']:.2%}; {'' if e['complete'] else '>= '}"
              f"{si(e['energy_per_inference_j'], 'J')} per inference at {e['inferences_per_s']:.4g} inferences/s "
              f"-> {out / chip / 'report.html'}")
    result = power(net, names(), data=ds, samples=100, steps=100)
    _write_json(out / "power.json", result)
    _write_text(out / "power.html", power_html(result))
    print("power on every chip (100 samples, T = 100), energy per inference:")
    for name, e in result["targets"].items():
        if not e["fits"]:
            print(f"  {name:<11} does not fit: {e['reason'][:90]}{'...' if len(e['reason']) > 90 else ''}")
        else:
            print(f"  {name:<11} {'' if e['complete'] else '>= '}{si(e['energy_per_inference_j'], 'J')}"
                  f" ({'complete' if e['complete'] else 'unknown: ' + ', '.join(e['unknown'])})")
    for name, b in result["baselines"].items():
        print(f"  {name:<11} {si(b['energy_per_inference_j'], 'J')} (the same network as an ANN, batch 1)")
    print(f"wrote {out}/: model.pt, net.spk, simulate.json, simulate.html, loihi/, spinnaker/, power.json, "
          f"power.html (open the .html files in a browser)")
    return 0


def _print_energy(name, e, stream=sys.stdout) -> None:
    at_least = "" if e.get("complete", True) else ">= "  # unknown terms left out: a lower bound
    band = e.get("band") or {}

    def j(v, key=None):
        if v is None:
            return "unknown"
        lo_hi = band.get(key)
        rng = f" {si_range(lo_hi[0], lo_hi[1], 'J')}" if lo_hi and lo_hi[0] != lo_hi[1] else ""
        return f"{at_least}{si(v, 'J')}{rng}"
    speed = f" at {e.get('inferences_per_s', 0):.4g} inferences/s"
    if e.get("steps_per_s"):
        speed += f" ({e['steps_per_s']:.4g} steps/s, latency {si(e['time_per_inference_s'], 's')})"
    print(f"  {name}: {j(e.get('energy_per_inference_j'), 'energy_per_inference_j')} per inference "
          f"(dynamic {j(e.get('dynamic_j'), 'dynamic_j')}, static {j(e.get('static_j'), 'static_j')}); "
          + ("unknown power" if e.get("power_w") is None else f"{at_least}{si(e['power_w'], 'W')}")
          + speed
          + ("" if e.get("complete", True) else f" (incomplete: unknown {', '.join(e.get('unknown', []))})"),
          file=stream)
    host = e.get("host")
    if host:
        print(f"    host side (not in the chip's figures): {host['macs']:.4g} MACs"
              + ("" if host.get("energy_j") is None else f", {si(host['energy_j'], 'J')}")
              + " for the analog input's first projection", file=stream)


def cmd_deploy(args) -> int:
    from .deploy.pipeline import deploy

    net = _load_graph(args.net, args.dt, args.library)
    data = _samples(args, net)
    with _progress(args.samples, "deploy", args) as bar:
        dep = deploy(net, args.target, data=data, samples=args.samples, steps=args.steps, seed=args.seed,
                     out=args.out, force=args.force, progress=bar, realtime=args.realtime)
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
    print(f"  accuracy on {m['samples']} samples, T = {m['steps']}: float {_pct(acc['float'])}, "
          f"in the chip's formats {_pct(acc['quantized'])}")
    _print_energy("energy", m["energy"])
    for name, b in m["baselines"].items():
        _print_energy(f"{name} baseline (ANN)", b)
    if m["unknown"]:
        print(f"  not known for {m['target']}: {', '.join(u['key'] for u in m['unknown'])}")
    print(f"wrote {args.out}/ ({', '.join(m['artifacts'])})")
    return 0


def cmd_power(args) -> int:
    from .deploy.pipeline import power
    from .deploy.report import power_html

    net = _load_graph(args.net, args.dt, args.library)
    data = _samples(args, net)
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    if "all" in targets:
        from .hardware_profiles import names
        targets = [t for t in targets if t != "all"] + names()
    _check_outputs(args.json, args.html)
    with _progress(args.samples, "power", args) as bar:
        result = power(net, targets, data=data, samples=args.samples, steps=args.steps, seed=args.seed,
                       progress=bar, realtime=args.realtime)
    print(f"{args.net}: {result['samples']} samples of {result['dataset']}, T = {result['steps']} "
          f"(float accuracy {_pct(result['float_accuracy'])})")
    _print_warnings(result.get("warnings", []))
    for name, e in result["targets"].items():
        if not e["fits"]:
            print(f"  {name}: does not fit: {e['reason']}")
            continue
        _print_energy(f"{name} ({count(e['cores'], 'core')}, {count(e['chips'], 'chip')}, "
                      f"accuracy {_pct(e['accuracy'])})", e)
    for name, b in result["baselines"].items():
        _print_energy(f"{name} baseline (ANN)", b)
    if args.json:
        _write_json(args.json, result)
    if args.html:
        _write_text(args.html, power_html(result))
    return 0


def cmd_targets(args) -> int:
    from .hardware_profiles import load_all

    for prof in load_all():
        if prof.neuromorphic:
            what = (f"{prof.value('core.neurons'):,} neurons/core, {prof.value('chip.cores'):,} cores/chip, "
                    f"{prof.value('precision.weight_bits')}-bit weights")
        else:
            what = "conventional baseline (ANN)"
        unknown = len(prof.unknowns())
        print(f"{prof.name:<11} {prof.title:<38} {what}" + (f"; {unknown} figures unknown" if unknown else ""))
    return 0


# ----------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    from .models.architectures import ARCHITECTURES
    from .models.convert import NORMS
    from .models.methods import METHODS
    from .ir.neurons import ENCODINGS

    p = _Parser(prog="spikeport", description="Deploy trained neural networks onto neuromorphic hardware.")
    p.add_argument("--version", action="version", version=f"spikeport {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data_dir = dict(metavar="DIR", default=None, help="directory searched first for data set files")
    dt_help = dict(help="time step of a NIR file (MODEL or NET): needed for generic NIR (--from nir), whose neurons "
                        "are continuous-time; with a library's file, the library's own (see --from; default for a "
                        "model file: 0.001)")
    from_help = dict(choices=("snntorch", "norse", "sinabs", "rockpool", "lava", "nir"), default=None, metavar="LIB",
                     help="the library that exported a NIR file: snntorch, norse, sinabs, rockpool (its time step, "
                          "reset and threshold conventions, exact: docs/nir-libraries.md), lava, or nir (generic, "
                          "needs --dt); default: detected from the file where it can be")

    data_file = dict(default=None, metavar="FILE",
                     help="your own samples instead of a data set: .npz with x (N, *input shape) and optional "
                          "integer labels y, or an .npy of x")
    ties = dict(choices=("membrane", "index"), default="membrane",
                help="a tie in output spikes goes to the higher membrane potential (spikeport) or to the lowest "
                     "class (plain argmax, as snnTorch, Norse, sinabs)")
    t = sub.add_parser("train", help="train a network with one of the training methods (spikeport methods)")
    t.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="a data set (default: digits)")
    t.add_argument("--data", default=None, metavar="FILE",
                   help="your own labelled samples instead of a data set: .npz with x and integer labels y, and "
                        "x_test / y_test (else 20 %% of each class is held out as the test split)")
    t.add_argument("--arch", type=_arch, default=None,
                   help=f"{', '.join(ARCHITECTURES)}, or layers such as 16c5-p2-64c5-p2 (default: the method's "
                        f"architecture for the data set)")
    t.add_argument("--method", choices=METHODS, default="relu")
    t.add_argument("--epochs", type=_positive, default=None, help="default: the method's for the data set")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--batch-size", type=_positive, default=None)
    t.add_argument("--lr", type=_positive_float, default=None, help="learning rate (default: the method's)")
    t.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option (spikeport methods NAME lists them), repeatable")
    t.add_argument("--qcfs-levels", type=_positive, default=None, metavar="L",
                   help="quantization steps of the QCFS activation (--method qcfs; about the T you will run)")
    t.add_argument("--validation", default=None, metavar="N|FRACTION",
                   help="training samples held out to choose the epoch (default: 5000 for MNIST and Fashion-MNIST, "
                        "10 %% otherwise; 0: none)")
    t.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    t.add_argument("--checkpoint", default=None, metavar="FILE", help="written after every epoch (default: MODEL.ckpt)")
    t.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    t.add_argument("--init", default=None, metavar="MODEL", help="start from the weights of a trained model")
    t.add_argument("--out", required=True, metavar="MODEL")
    t.add_argument("--data-dir", **data_dir)
    t.set_defaults(func=cmd_train)

    nf = sub.add_parser("fit-nsp", help="fit Noisy Softplus' k and S to simulated rates of your LIF neurons")
    for flag, default, what in (("--cm-nf", 0.25, "membrane capacitance, nF"), ("--tau-m-ms", 20.0, "membrane time constant"),
                                ("--tau-refrac-ms", 1.0, "refractory period"), ("--tau-syn-ms", 5.0, "synaptic time constant"),
                                ("--v-rest-mv", -65.0, "resting potential"), ("--v-reset-mv", -65.0, "reset potential"),
                                ("--v-thresh-mv", -50.0, "threshold"), ("--i-offset-na", 0.1, "constant input current"),
                                ("--dt-ms", 1.0, "simulation step (the SNN's)"), ("--duration-s", 10.0, "seconds per trial")):
        nf.add_argument(flag, type=_finite_float, default=default, help=f"{what} (default {default:g})")
    nf.add_argument("--trials", type=_positive, default=10)
    nf.add_argument("--fit-bias", action="store_true", help="also fit an input offset b (the thesis's variant)")
    nf.add_argument("--seed", type=int, default=0)
    nf.add_argument("--json", default=None, metavar="FILE")
    nf.set_defaults(func=cmd_fit_nsp)

    me = sub.add_parser("methods", help="list the training methods and what each trains and converts to")
    me.add_argument("name", nargs="?", choices=METHODS, default=None)
    me.add_argument("--json", default=None, metavar="FILE")
    me.set_defaults(func=cmd_methods)

    c = sub.add_parser("convert", help="convert a trained model, or import a NIR file, into a spiking graph file")
    c.add_argument("model", metavar="MODEL", help="a model file, or a NIR file (.nir / HDF5; needs --dt)")
    c.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="calibration data (default: the model's)")
    c.add_argument("--data", default=None, metavar="FILE",
                   help="your own calibration samples instead of a data set's training split: .npz with x "
                        "(N, *input shape) and optional labels y, or an .npy of x")
    c.add_argument("--norm", choices=NORMS + ("l4",), default=None,
                   help="relu and qcfs models (default percentile); l4: percentile, then --l4 scale (needs --for-steps)")
    c.add_argument("--percentile", type=float, default=None, help="default 99.9")
    c.add_argument("--v-init", choices=("zero", "half"), default=None,
                   help="initial membrane: 0, or half the threshold (threshold shift; default: the method's)")
    c.add_argument("--encoding", choices=ENCODINGS, default=None, help="default: the method's")
    c.add_argument("--max-rate", type=float, default=None, metavar="HZ",
                   help="rate of a pixel of 1 (spiking encodings; default: the method's)")
    c.add_argument("--for-steps", type=_positive, default=None, metavar="T",
                   help="the number of steps --l4 and --calibrate adjust the network for")
    c.add_argument("--l4", choices=("scale", "shift"), default=None,
                   help="L4-norm adjustment against rate-coding noise (ours: docs/conversion.md)")
    c.add_argument("--l4-sigma", choices=("l4", "exact"), default="l4",
                   help="the noise estimate: the L4-norm bound or the exact per-neuron value")
    c.add_argument("--l4-alpha", type=_alpha, default=1.0, metavar="A|auto",
                   help="strength (1 = theory; auto: the best of a grid on the calibration samples)")
    c.add_argument("--calibrate", choices=("bias", "membrane", "weights"), default=None,
                   help="calibration towards the ANN for --for-steps (Li et al. 2021): bias, initial "
                        "membrane (potential correction), or each layer's weights then its bias")
    c.add_argument("--calib-samples", type=_positive, default=512, metavar="N",
                   help="training samples the adjustments use")
    c.add_argument("--reset", choices=("subtract", "zero"), default=None,
                   help="NIR files: the reset of every spiking population (NIR does not say; default: the "
                        "library's (snnTorch: subtract, one step late, as its default reset_mechanism), the file's "
                        "metadata, else reset to v_reset)")
    c.add_argument("--threshold-scale", type=_positive_float, default=None, metavar="S",
                   help="NIR files: multiply every threshold by S")
    c.add_argument("--model-def", default=None, metavar="MODULE:FACTORY",
                   help="MODEL is a state dict of your own PyTorch module: MODULE:FACTORY builds it (imported from "
                        "the working directory; the file gives only weights, read weights-only). TorchScript needs "
                        "none where it is an nn.Sequential of standard layers")
    c.add_argument("--out", default=None, metavar="NET")
    c.add_argument("--dt", type=_seconds, default=None, metavar="SECONDS", **dt_help)
    c.add_argument("--from", dest="library", **from_help)
    c.add_argument("--data-dir", **data_dir)
    c.set_defaults(func=cmd_convert)

    def run_outputs_and_inputs(sp) -> None:
        """simulate's and validate's reports, the NIR options and where the samples come from."""
        sp.add_argument("--json", default=None, metavar="FILE")
        sp.add_argument("--html", default=None, metavar="FILE", help="also write a report with plots (one self-contained file)")
        sp.add_argument("--dt", type=_seconds, default=None, metavar="SECONDS", **dt_help)
        sp.add_argument("--from", dest="library", **from_help)
        sp.add_argument("--data", **data_file)
        sp.add_argument("--ties", **ties)
        sp.add_argument("--data-dir", **data_dir)

    s = sub.add_parser("simulate", help="run a graph file in the reference executor")
    s.add_argument("net", metavar="NET")
    s.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default: the network's")
    s.add_argument("--steps", type=_positive, default=100)
    s.add_argument("--checkpoints", type=_steps_list, default=None, metavar="T1,T2,...",
                   help="also report accuracy after these step counts ('all': after every step)")
    s.add_argument("--samples", type=_positive, default=None, help="test samples to run (default: all)")
    s.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda where available")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--weight-bits", type=_positive, default=None, metavar="N",
                   help="simulate in fixed point with N-bit weights (default 8 when --state-bits is given)")
    s.add_argument("--state-bits", type=_positive, default=None, metavar="N",
                   help="fixed-point membrane and current registers of N bits (default 24)")
    run_outputs_and_inputs(s)
    s.set_defaults(func=cmd_simulate)

    v = sub.add_parser("validate", help="run a graph file on a backend beside the reference executor")
    v.add_argument("net", metavar="NET")
    v.add_argument("--backend", default="reference", metavar="B",
                   help=f"one of {', '.join(BACKENDS)} (each simulator comes with its extra: "
                        f"{', '.join(f'{n}: {e}' for n, (_, e) in BACKENDS.items() if e)})")
    v.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default: the network's")
    v.add_argument("--steps", type=_positive, default=100)
    v.add_argument("--samples", type=_positive, default=None, help="test samples to run (default: 100, or all if fewer)")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--diagnose", action="store_true",
                   help="compare every layer with the ANN it approximates and name the first that drops")
    v.add_argument("--model", default=None, metavar="MODEL",
                   help="with --diagnose: the trained model the network was converted from (default: the "
                        "network's rate model, which cannot see a wrong scale in the graph itself)")
    run_outputs_and_inputs(v)
    v.set_defaults(func=cmd_validate)

    e = sub.add_parser("export", help="write a graph file in another format (NIR)")
    e.add_argument("net", metavar="NET")
    e.add_argument("--to", choices=("nir",), required=True)
    e.add_argument("--out", required=True, metavar="FILE")
    e.add_argument("--for", dest="for_library", choices=("snntorch", "norse", "sinabs", "rockpool"), default=None,
                   metavar="LIB", help="write NIR that LIB's own importer (snntorch, norse, sinabs, rockpool) reads back "
                                       "as the same network, or refuse naming the layer it cannot take (default: "
                                       "generic NIR with spikeport's metadata)")
    e.add_argument("--dt", type=_seconds, default=None, metavar="SECONDS", **dt_help)
    e.add_argument("--from", dest="library", **from_help)
    e.set_defaults(func=cmd_export)

    def measured_on(sp) -> None:
        """deploy's and power's options: the samples the activity is measured on, and the pace."""
        sp.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default: the network's")
        sp.add_argument("--samples", type=_positive, default=None,
                        help="test samples the accuracy and activity come from (default: 100, or all if fewer)")
        sp.add_argument("--steps", type=_positive, default=100)
        sp.add_argument("--seed", type=int, default=0)
        sp.add_argument("--dt", type=_seconds, default=None, metavar="SECONDS", **dt_help)
        sp.add_argument("--from", dest="library", **from_help)
        sp.add_argument("--data", **data_file)
        sp.add_argument("--data-dir", **data_dir)
        sp.add_argument("--realtime", action="store_true",
                        help="pace a barrier-synchronized chip (Loihi) by the network's dt, as an application fed "
                             "by its sensor in real time (default: as fast as the chip can step)")

    dp = sub.add_parser("deploy", help="check, quantize, map and estimate energy for one chip; write DIR")
    dp.add_argument("net", metavar="NET")
    dp.add_argument("--target", required=True, metavar="CHIP", help="a chip (spikeport targets) or a profile .toml")
    dp.add_argument("--out", required=True, metavar="DIR")
    dp.add_argument("--force", action="store_true", help="replace DIR if it exists and is not empty")
    measured_on(dp)
    dp.set_defaults(func=cmd_deploy)

    pw = sub.add_parser("power", help="energy per inference and power on several chips, side by side")
    pw.add_argument("net", metavar="NET")
    pw.add_argument("--target", default="all", metavar="CHIP[,CHIP...]",
                    help="chips (spikeport targets) or profile .toml files, comma-separated; 'all' for every chip "
                         "spikeport knows (default: all). cpu and gpu are always shown as the baselines")
    measured_on(pw)
    pw.add_argument("--json", default=None, metavar="FILE")
    pw.add_argument("--html", default=None, metavar="FILE")
    pw.set_defaults(func=cmd_power)

    tg = sub.add_parser("targets", help="list the chips spikeport knows")
    tg.set_defaults(func=cmd_targets)

    d = sub.add_parser("demo", help="the whole story on digits: train, convert, simulate, deploy to loihi and "
                                    "spinnaker, power on every chip; reports in --out")
    d.add_argument("--out", default="out/demo", metavar="DIR")
    d.set_defaults(func=cmd_demo)
    for name in ("train", "convert", "simulate", "validate", "deploy", "power"):
        sub.choices[name].add_argument("--quiet", action="store_true",
                                       help="no progress display (on a terminal a live bar; otherwise a line "
                                            "every 30 s once a step has run 10 s)")
    for sp in sub.choices.values():
        _show_defaults(sp)
    return p


def _show_defaults(parser) -> None:
    """Every option whose help does not say its default gets "(default: X)", where X means something."""
    for action in parser._actions:
        meaningless = action.default is None or action.default is False or action.default == [] \
            or action.default is argparse.SUPPRESS
        if action.option_strings and not meaningless and "default" not in (action.help or "") \
                and action.help != argparse.SUPPRESS:
            action.help = (f"{action.help} " if action.help else "") + "(default: %(default)s)"


def reference_markdown() -> str:
    """docs/cli.md: every command's help, as the parser prints it at 100 columns."""
    import os

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        p = build_parser()
        sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
        helps = {c.dest: c.help for c in sub._choices_actions}
        parts = ["# Command-line reference", "",
                 "Generated from the parser (`python -m spikeport.cli --reference > docs/cli.md`); a test keeps it "
                 "in step with the code. Each command's options, with their defaults.", "",
                 "```", p.format_help().rstrip(), "```", ""]
        for name, sp in sub.choices.items():
            parts += [f"## spikeport {name}", "", helps.get(name) or "", "", "```", sp.format_help().rstrip(), "```",
                      ""]
        return "\n".join(parts)
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except SpikeportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    if sys.argv[1:] == ["--reference"]:
        print(reference_markdown(), end="")
        sys.exit(0)
    sys.exit(main())
