"""spikeport train, fit-nsp and methods."""
from __future__ import annotations

from ..errors import SpikeportError

from .common import check_outputs, output, progress_bar


def option_value(text: str):
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
    from ..datasets import load_dataset
    from ..models import save_model, train
    from ..outputs import Output

    checkpoint = args.checkpoint or f"{args.out}.ckpt"
    # continuing a run (--resume) replaces its own earlier model; the kind is still checked
    out = Output(args.out, "--out", "model", bool(args.force or args.resume))
    if args.resume:  # the checkpoint is read: its place is checked, what it holds is training's to judge
        ckpt = Output(checkpoint, "--checkpoint", "file", True)
    else:
        ckpt = output(args, "--checkpoint", "checkpoint", checkpoint,
                      hint=", or --resume to continue from it")
    check_outputs(out, ckpt)  # before the data and an hour of training
    if args.data is not None:
        if args.dataset is not None:
            raise SpikeportError("--data and --dataset both name the training samples: give one")
        from ..datasets import user_dataset
        ds = user_dataset(args.data)
    else:
        ds = load_dataset(args.dataset or "digits", args.data_dir)
    options = dict(option_value(o) for o in args.option)
    validation = args.validation
    if validation is not None:
        validation = float(validation) if "." in validation else int(validation)
    with progress_bar(1, "train", args) as bar:
        model = train(ds, arch=args.arch, method=args.method, epochs=args.epochs, seed=args.seed,
                      batch_size=args.batch_size, lr=args.lr, qcfs_levels=args.qcfs_levels, options=options,
                      device=args.device, validation=validation, checkpoint=checkpoint, resume=args.resume,
                      init=args.init, progress=bar)
    out.check()  # again: the place may have changed while it trained
    save_model(model, args.out)
    m = model.meta
    val = "" if m["val_accuracy"] is None else f", validation {m['val_accuracy']:.2%} (epoch {m['selected_epoch']})"
    train_acc = "" if "train_accuracy" not in m else f"train accuracy {m['train_accuracy']:.2%}, "
    what = "SNN" if m["method"] in ("proxy", "spike-bp") else "ANN"
    print(f"trained {m['arch']} ({m['method']}) on {ds.name}: {m['epochs']} epochs in {m['train_seconds']:.0f} s, "
          f"{train_acc}{what} test accuracy {m['test_accuracy']:.2%}{val} -> {args.out}")
    return 0


def cmd_fit_nsp(args) -> int:
    from ..models.nsp_fit import fit_nsp

    names = ("cm_nf", "tau_m_ms", "tau_refrac_ms", "tau_syn_ms", "v_rest_mv", "v_reset_mv", "v_thresh_mv",
             "i_offset_na", "dt_ms", "duration_s", "trials", "fit_bias", "seed")
    json_out = output(args, "--json", "json")
    check_outputs(json_out)
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
    if json_out is not None:
        json_out.write_json({"k": fit.k, "S_hz_per_na": fit.S_hz_per_na, "bias_na": fit.bias_na,
                                "residual_hz": fit.residual_hz, "settings": fit.settings,
                                "means_na": fit.means_na.tolist(), "sigmas_na": fit.sigmas_na.tolist(),
                                "rates_hz": fit.rates_hz.tolist()})
    return 0


def cmd_methods(args) -> int:
    from ..models.methods import METHODS, describe

    json_out = output(args, "--json", "json")
    check_outputs(json_out)
    names = [args.name] if args.name else list(METHODS)
    decls = [describe(n) for n in names]
    if json_out is not None:
        json_out.write_json({d["name"]: d for d in decls})
    for d in decls:
        from ..models.methods.base import SpikingSpec
        print(f"{d['name']}: {d['citation']}")
        print(f"  ANN       {d['ann']}")
        print(f"  training  {d['training']}")
        print(f"  SNN       {SpikingSpec(**d['snn']).describe()}")
        if d["options"]:
            print("  options   " + ", ".join(f"{k}={v}" for k, v in d["options"].items()))
    return 0
