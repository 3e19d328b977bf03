"""The argument parser (every command, its options and their defaults) and docs/cli.md from it."""
from __future__ import annotations

import argparse
import math

from .. import __version__
from ..backends import BACKENDS, MAPPERS
from ..errors import SpikeportError

from .common import DATASET_NAMES
from .conversion import cmd_convert
from .deployment import cmd_demo, cmd_deploy, cmd_power, cmd_targets
from .running import cmd_export, cmd_simulate, cmd_validate
from .sweeping import cmd_sweep
from .training import cmd_fit_nsp, cmd_methods, cmd_train


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage too)
        raise SpikeportError(f"{self.prog}: {message}")


def number(text: str, ok, expected: str) -> float:
    """A finite float for which ``ok(value)`` holds, else argparse's one-line error."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and ok(value)):
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
    return value


def alpha(text: str):
    return text if text == "auto" else number(text, lambda v: v >= 0, "a number >= 0 or 'auto'")


def whole(text: str, minimum: int, expected: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def positive(text: str) -> int:
    return whole(text, 1, "a positive integer")


def non_negative(text: str) -> int:
    return whole(text, 0, "a whole number >= 0")


def positive_float(text: str) -> float:
    return number(text, lambda v: v > 0, "a number > 0")


def memory_size(text: str) -> int:
    from ..budget import parse_size

    try:
        return parse_size(text)
    except SpikeportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def percentile(text: str) -> float:
    return number(text, lambda v: 0 < v <= 100, "a percentile in (0, 100]")


def finite_float(text: str) -> float:
    return number(text, lambda v: True, "a finite number")


def arch(text: str) -> str:
    from ..models.architectures import ArchSpec

    try:
        ArchSpec(arch=text, input_shape=(1, 28, 28), classes=10)
    except SpikeportError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def steps_list(text: str):
    if text.strip() == "all":
        return "all"
    return [positive(t) for t in text.split(",") if t.strip()]


SEED_MAX = 2**63 - 1


def seed(text: str) -> int:
    """A seed for torch's and numpy's generators and the Poisson input's hash: 0 to 2**63-1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"expected a seed from 0 to 2**63-1 ({SEED_MAX}), got {text}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time step in seconds, got {text!r}") from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a time step in (0, 1] seconds, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    from ..models.architectures import ARCHITECTURES
    from ..models.convert import NORMS
    from ..models.methods import METHODS
    from ..ir.neurons import ENCODINGS

    p = Parser(prog="spikeport", description="Deploy trained neural networks onto neuromorphic hardware.")
    p.add_argument("--version", action="version", version=f"spikeport {__version__}")
    p.add_argument("--max-memory", type=memory_size, default=None, metavar="SIZE",
                   help="the most memory a file may make spikeport allocate, e.g. 2G or 512M (checked from the "
                        "sizes files declare, before anything is allocated; default: half the machine's memory, "
                        "or SPIKEPORT_MAX_MEMORY)")
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
    t.add_argument("--arch", type=arch, default=None,
                   help=f"{', '.join(ARCHITECTURES)}, or layers such as 16c5-p2-64c5-p2 (default: the method's "
                        f"architecture for the data set)")
    t.add_argument("--method", choices=METHODS, default="relu")
    t.add_argument("--epochs", type=positive, default=None, help="default: the method's for the data set")
    t.add_argument("--seed", type=seed, default=0)
    t.add_argument("--batch-size", type=positive, default=None)
    t.add_argument("--lr", type=positive_float, default=None, help="learning rate (default: the method's)")
    t.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a method option (spikeport methods NAME lists them), repeatable")
    t.add_argument("--qcfs-levels", type=positive, default=None, metavar="L",
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
        nf.add_argument(flag, type=finite_float, default=default, help=f"{what} (default {default:g})")
    nf.add_argument("--trials", type=positive, default=10)
    nf.add_argument("--fit-bias", action="store_true", help="also fit an input offset b (the thesis's variant)")
    nf.add_argument("--seed", type=seed, default=0)
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
    c.add_argument("--percentile", type=percentile, default=None, help="in (0, 100]; default 99.9")
    c.add_argument("--v-init", choices=("zero", "half"), default=None,
                   help="initial membrane: 0, or half the threshold (threshold shift; default: the method's)")
    c.add_argument("--encoding", choices=ENCODINGS, default=None, help="default: the method's")
    c.add_argument("--max-rate", type=positive_float, default=None, metavar="HZ",
                   help="rate of a pixel of 1 (spiking encodings; default: the method's)")
    c.add_argument("--for-steps", type=positive, default=None, metavar="T",
                   help="the number of steps --l4 and --calibrate adjust the network for")
    c.add_argument("--l4", choices=("scale", "shift"), default=None,
                   help="L4-norm adjustment against rate-coding noise (ours: docs/conversion.md)")
    c.add_argument("--l4-sigma", choices=("l4", "exact"), default="l4",
                   help="the noise estimate: the L4-norm bound or the exact per-neuron value")
    c.add_argument("--l4-alpha", type=alpha, default=1.0, metavar="A|auto",
                   help="strength (1 = theory; auto: the best of a grid on the calibration samples)")
    c.add_argument("--calibrate", choices=("bias", "membrane", "weights"), default=None,
                   help="calibration towards the ANN for --for-steps (Li et al. 2021): bias, initial "
                        "membrane (potential correction), or each layer's weights then its bias")
    c.add_argument("--calib-samples", type=positive, default=512, metavar="N",
                   help="training samples the adjustments use")
    c.add_argument("--reset", choices=("subtract", "zero"), default=None,
                   help="NIR files: the reset of every spiking population (NIR does not say; default: the "
                        "library's (snnTorch: subtract, one step late, as its default reset_mechanism), the file's "
                        "metadata, else reset to v_reset)")
    c.add_argument("--threshold-scale", type=positive_float, default=None, metavar="S",
                   help="NIR files: multiply every threshold by S")
    c.add_argument("--model-def", default=None, metavar="MODULE:FACTORY",
                   help="MODEL is a state dict of your own PyTorch module: MODULE:FACTORY builds it (imported from "
                        "the working directory; the file gives only weights, read weights-only). TorchScript needs "
                        "none where it is an nn.Sequential of standard layers")
    c.add_argument("--out", default=None, metavar="NET")
    c.add_argument("--dt", type=seconds, default=None, metavar="SECONDS", **dt_help)
    c.add_argument("--from", dest="library", **from_help)
    c.add_argument("--data-dir", **data_dir)
    c.set_defaults(func=cmd_convert)

    def run_outputs_and_inputs(sp) -> None:
        """simulate's and validate's reports, the NIR options and where the samples come from."""
        sp.add_argument("--json", default=None, metavar="FILE")
        sp.add_argument("--html", default=None, metavar="FILE", help="also write a report with plots (one self-contained file)")
        sp.add_argument("--dt", type=seconds, default=None, metavar="SECONDS", **dt_help)
        sp.add_argument("--from", dest="library", **from_help)
        sp.add_argument("--data", **data_file)
        sp.add_argument("--ties", **ties)
        sp.add_argument("--data-dir", **data_dir)

    s = sub.add_parser("simulate", help="run a graph file in the reference executor")
    s.add_argument("net", metavar="NET")
    s.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default: the network's")
    s.add_argument("--steps", type=positive, default=100)
    s.add_argument("--checkpoints", type=steps_list, default=None, metavar="T1,T2,...",
                   help="also report accuracy after these step counts ('all': after every step)")
    s.add_argument("--samples", type=positive, default=None, help="test samples to run (default: all)")
    s.add_argument("--device", choices=("cpu", "cuda"), default=None, help="default: cuda where available")
    s.add_argument("--seed", type=seed, default=0)
    s.add_argument("--weight-bits", type=positive, default=None, metavar="N",
                   help="simulate in fixed point with N-bit weights (default 8 when --state-bits is given)")
    s.add_argument("--state-bits", type=positive, default=None, metavar="N",
                   help="fixed-point membrane and current registers of N bits (default 24)")
    run_outputs_and_inputs(s)
    s.set_defaults(func=cmd_simulate)

    v = sub.add_parser("validate", help="run a graph file on a backend beside the reference executor")
    v.add_argument("net", metavar="NET")
    v.add_argument("--backend", default="reference", metavar="B",
                   help=f"one of {', '.join(BACKENDS)} (each simulator comes with its extra: "
                        f"{', '.join(f'{n}: {e}' for n, (_, e) in BACKENDS.items() if e)}; "
                        f"{', '.join(MAPPERS)} maps but does not simulate: deploy --target)")
    v.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default: the network's")
    v.add_argument("--steps", type=positive, default=100)
    v.add_argument("--samples", type=positive, default=None, help="test samples to run (default: 100, or all if fewer)")
    v.add_argument("--seed", type=seed, default=0)
    v.add_argument("--diagnose", action="store_true",
                   help="compare every layer with the ANN it approximates and name the first that drops")
    v.add_argument("--model", default=None, metavar="MODEL",
                   help="with --diagnose: the trained model the network was converted from (default: the "
                        "network's rate model, which cannot see a wrong scale in the graph itself)")
    for flag, kind, meta, text in (
            ("--batch-samples", positive, "N", "a simulator backend runs in batches of N samples, each in its own "
             "process (default: 1000): a batch that crashes or hangs is reported with its samples; batches done "
             "are kept and the same command again resumes"),
            ("--batch-seconds", positive_float, "S", "the time limit of one batch (default: 3600)")):
        v.add_argument(flag, type=kind, default=None, metavar=meta, help=text)
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
    e.add_argument("--dt", type=seconds, default=None, metavar="SECONDS", **dt_help)
    e.add_argument("--from", dest="library", **from_help)
    e.set_defaults(func=cmd_export)

    def measured_on(sp) -> None:
        """deploy's and power's options: the samples the activity is measured on, and the pace."""
        sp.add_argument("--dataset", choices=DATASET_NAMES, default=None, help="default: the network's")
        sp.add_argument("--samples", type=positive, default=None,
                        help="test samples the accuracy and activity come from (default: 100, or all if fewer)")
        sp.add_argument("--steps", type=positive, default=100)
        sp.add_argument("--seed", type=seed, default=0)
        sp.add_argument("--dt", type=seconds, default=None, metavar="SECONDS", **dt_help)
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

    sw = sub.add_parser("sweep", help="run a grid of networks x conversions x time steps x chips on dask; a table "
                                      "and the accuracy-energy Pareto fronts per chip in DIR")
    sw.add_argument("sweep", metavar="SWEEP.toml",
                    help="the sweep file: [sweep] with networks (graph or model files), dataset, steps, targets, "
                         "samples; optional norms, encodings, backends, seed; or [[point]] tables (docs/sweeps.md)")
    sw.add_argument("--out", required=True, metavar="DIR",
                    help="where the table, the report and a file per point go; an earlier sweep's DIR is gone on "
                         "from, its points kept")
    sw.add_argument("--scheduler", default=None, metavar="ADDRESS",
                    help="a dask scheduler already running (tcp://HOST:PORT, or its scheduler file) whose workers "
                         "run the sweep (default: a local cluster on this machine)")
    sw.add_argument("--workers", type=non_negative, default=None, metavar="N",
                    help="workers of the local cluster, one process each (default: one per core); 0: run in this "
                         "process, without dask")
    sw.add_argument("--shard-samples", type=positive, default=1000, metavar="N",
                    help="samples per task: a point's test set is split into shards of N run on any worker and "
                         "merged exactly")
    sw.add_argument("--data-dir", **data_dir)
    sw.add_argument("--force", action="store_true",
                    help="start over in an earlier sweep's DIR: its kept points are discarded (without it they are "
                         "kept and only the missing points run; a DIR that is not a sweep's is always refused)")
    sw.set_defaults(func=cmd_sweep)

    tg = sub.add_parser("targets", help="list the chips spikeport knows")
    tg.set_defaults(func=cmd_targets)

    d = sub.add_parser("demo", help="the whole story on digits: train, convert, simulate, deploy to loihi and "
                                    "spinnaker, power on every chip; reports in --out")
    d.add_argument("--out", default=None, metavar="DIR",
                   help="where the reports go, written all or nothing (default: out/demo, which a later demo "
                        "replaces when it holds an earlier demo's files; a DIR you name follows --force)")
    d.set_defaults(func=cmd_demo)
    force_help = {
        "train": "replace MODEL (and its --checkpoint) if it exists and is a spikeport model file (checkpoint)",
        "convert": "replace NET if it exists and is a spikeport graph file",
        "simulate": "replace the --json and --html files if they exist and are JSON and HTML",
        "validate": "replace the --json and --html files if they exist and are JSON and HTML",
        "export": "replace FILE if it exists and is a NIR (HDF5) file",
        "deploy": "replace DIR if it exists, is not empty and is an earlier deploy's (its manifest.json)",
        "power": "replace the --json and --html files if they exist and are JSON and HTML",
        "fit-nsp": "replace the --json file if it exists and is JSON",
        "methods": "replace the --json file if it exists and is JSON",
        "demo": "replace DIR if it exists, is not empty and holds only an earlier demo's files",
    }
    for name, what in force_help.items():  # one rule for every output: spikeport.outputs
        sub.choices[name].add_argument("--force", action="store_true",
                                       help=what + "; without it an existing output (other than an empty file "
                                                   "or directory) is refused before any work")
    for name in ("train", "convert", "simulate", "validate", "deploy", "power", "sweep"):
        sub.choices[name].add_argument("--quiet", action="store_true",
                                       help="no progress display (on a terminal a live bar; otherwise a line "
                                            "every 30 s once a step has run 10 s)")
    for sp in sub.choices.values():
        show_defaults(sp)
    return p


def show_defaults(parser) -> None:
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
