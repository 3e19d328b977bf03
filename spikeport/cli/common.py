"""What the commands share: loading a graph or NIR file, the samples a command runs on, writing outputs,
progress, and printing results."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import SpikeportError
from ..units import si, si_range


DATASET_NAMES = ("digits", "mnist", "mnist-5k", "fashion-mnist")


def noting_warnings(fn, *args, **kwargs):
    """Run fn; print what it warned (NIR assumptions, metadata-only fields) as 'note:' lines on stderr."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = fn(*args, **kwargs)
    for w in caught:
        print(f"note: {w.message}", file=sys.stderr)
    return result


def output(args, option: str, kind, path=None, hint: str = ""):
    """The :class:`~spikeport.outputs.Output` that ``option`` ("--out", "--json", "--html") of ``args``
    names (or ``path``, a default), with the command's --force; None where the option is not given."""
    from ..outputs import Output

    if path is None:
        path = getattr(args, option.lstrip("-").replace("-", "_"), None)
    if path is None:
        return None
    return Output(path, option, kind, bool(getattr(args, "force", False)), hint)


def report_outputs(args) -> list:
    """The --json and --html outputs of ``args`` (where given)."""
    return [o for o in (output(args, "--json", "json"), output(args, "--html", "html")) if o is not None]


def check_outputs(*outputs) -> list:
    """Before any work: every output checked alike (spikeport.outputs: the place, the name, the --force rule;
    stale staging of a killed run removed), and no two naming the same path. Returns the outputs given."""
    import os

    outputs = [o for o in outputs if o is not None]
    seen = {}
    for o in outputs:
        where = os.path.realpath(o.check())
        if where in seen:
            raise SpikeportError(f"{seen[where].label} and {o.label}: the same path; give each output its own")
        seen[where] = o
    return outputs


def write_text(path, text: str) -> None:
    """``text`` into ``path``, all or nothing (staged beside it, then renamed into place)."""
    from ..outputs import write_file
    write_file(path, lambda f: f.write(text.encode()))


def write_json(path, data) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_reports(args, report: dict, html: str | None = None) -> None:
    """--json and --html where asked: ``report`` as JSON, and ``html`` (a function of
    :mod:`spikeport.deploy.report` by name) of it as a self-contained page; each checked again, staged and
    renamed into place."""
    for o in report_outputs(args):
        if o.option == "--json":
            o.write_json(report)
        else:
            from ..deploy import report as reports
            o.write_text(getattr(reports, html)(report))


class _Heartbeat:
    """Keeps a progress display alive while a long step reports nothing (one batch of a long simulation):
    on a terminal the bar is redrawn every second (its elapsed time moves); in a log a line is written
    once the step has run ``delay_s`` and then every ``interval_s`` without a line."""

    def __init__(self, progress, tick_s: float = 1.0):
        import threading

        from ..progress import LINE_DELAY_S, LINE_INTERVAL_S

        self.progress, self.bar = progress, progress.bar
        self.tty = progress.tty
        self.tick_s = 1.0 if self.tty else min(tick_s, 5.0)
        self.delay_s, self.interval_s = LINE_DELAY_S, LINE_INTERVAL_S
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="spikeport-progress", daemon=True)

    def run(self) -> None:
        import time

        start = time.time()
        last = None  # when a line was last written (by this or by the bar itself)
        while not self.stop.wait(self.tick_s):
            now = time.time()
            if self.tty:
                self.bar.refresh()
                continue
            drawn = getattr(self.bar, "last_print_t", start)
            if drawn > start + 1e-3:
                last = max(last or drawn, drawn)
            if now - start >= self.delay_s and (last is None or now - last >= self.interval_s):
                self.bar.refresh()
                last = now


class _Bar:
    """A :class:`~spikeport.progress.Progress` with a heartbeat (the same interface)."""

    def __init__(self, progress):
        self.progress = progress
        self.heart = _Heartbeat(progress) if progress.bar is not None else None

    def __getattr__(self, name):
        return getattr(self.progress, name)

    def __enter__(self):
        self.progress.__enter__()
        if self.heart is not None:
            self.heart.thread.start()
        return self

    def __exit__(self, *exc):
        if self.heart is not None:
            self.heart.stop.set()
            self.heart.thread.join()
        return self.progress.__exit__(*exc)


def progress_bar(total, label, args=None):
    """Progress on stderr (spikeport.progress), kept alive while a long step reports nothing."""
    from ..progress import Progress
    return _Bar(Progress(total, label, quiet=bool(getattr(args, "quiet", False))))


def model_file(args):
    """The spikeport model file MODEL, or None where MODEL is a user's PyTorch file (converted by
    :func:`convert_pytorch`)."""
    from ..models import load_model
    from ..models.user_module import is_torchscript

    if args.model_def is not None or is_torchscript(args.model):
        return None
    try:
        return load_model(args.model)
    except SpikeportError as exc:
        if "not a spikeport model file" in str(exc):  # a PyTorch file of the user's: say what it needs
            from ..models.user_module import load_user_module
            load_user_module(args.model)  # raises the line that says how to convert it
        raise


def calibration_data(path, model=None):
    """The user's own samples as the calibration (training) split convert reads; checked against ``model``'s
    input and classes where it is a spikeport model file."""
    from ..datasets import Dataset, load_user_data

    x, y = load_user_data(path, *((model.spec.input_shape, model.spec.classes) if model is not None else ()))
    return Dataset(name=Path(path).name, train_images=x, train_labels=y, test_images=x[:0],
                   test_labels=None if y is None else y[:0], pixel_max=1.0, source=str(path))


def print_simulation(sim, stream=None) -> None:
    stream = stream or sys.stdout  # the stdout of the moment (not the one at import)
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
        print(f"  SNN accuracy T={t:<5} {pct(acc)}" + (" (ties to the lowest class)" if rep.get("ties") == "index"
                                                       else ""), file=stream)
    if rep["first_spike_step_mean"] is not None:
        print(f"  first output spike   step {rep['first_spike_step_mean']:.1f} on average "
              f"({rep['no_output_spike_fraction']:.1%} of samples never spike)", file=stream)
    print(f"  {'layer':<12}{'neurons':>9}{'spikes':>12}{'rate (Hz)':>11}{'synops':>14}   per inference", file=stream)
    for l in rep["layers"]:
        spikes = "-" if l["spikes"] is None else f"{l['spikes']:.1f}"
        rate = "-" if l["rate_hz"] is None else f"{l['rate_hz']:.1f}"
        print(f"  {l['name']:<12}{l['neurons']:>9}{spikes:>12}{rate:>11}{l['synops']:>14.0f}", file=stream)
    print_warnings(rep.get("warnings", []), stream)


LAVA = ("lava-dl has no released NIR export (its NIR code is unreleased, on GitHub main only, and every release "
        "needs Python < 3.11): export the network from lava-dl's source to NIR yourself and import it with --from nir")


def load_graph(path, dt=None, library=None, reset=None):
    """A graph file, or a NIR file: a library's export (its conventions, detected or --from) or generic NIR
    (which needs --dt: its neurons are continuous-time)."""
    from ..ir import load_network
    from ..ir.nir import import_nir, is_nir_file

    if is_nir_file(path):
        return read_nir(path, dt, library, import_nir, path, dt, library=library, reset=reset)
    given = [flag for flag, value in (("--dt", dt), ("--from", library)) if value is not None]
    if given:
        raise SpikeportError(f"{path}: {' and '.join(given)} {'is' if len(given) == 1 else 'are'} for NIR files; a "
                             f"graph file has its own time step and semantics")
    return load_network(path)


def read_nir(path, dt, library, fn, /, *args, **kwargs):
    """``fn(*args, **kwargs)`` reading the NIR file ``path``, its warnings printed as notes, with the
    command line's checks of --from and --dt first and its words in the errors."""
    if library == "lava":
        raise SpikeportError(f"{path}: --from lava: {LAVA}")
    if library == "nir" and dt is None:
        raise SpikeportError(f"{path}: generic NIR (--from nir) needs --dt SECONDS, the time step its "
                             f"continuous-time neurons are discretized with")
    try:
        return noting_warnings(fn, *args, **kwargs)
    except SpikeportError as exc:
        if "cannot tell which library" in str(exc):  # in the command line's words
            raise SpikeportError(f"{path}: cannot tell which library wrote this NIR file: give --from "
                                 f"snntorch|norse|sinabs|rockpool, or --dt SECONDS for generic NIR") from None
        raise


def samples_for(args, net):
    """Where a command's samples come from: the user's ``--data FILE`` (checked against the network's input
    and output), else a data set (``--dataset``, the network's, or digits) whose input must fit."""
    from ..datasets import Samples, load_dataset, load_user_data

    inp, out = net.population(net.input), net.population(net.output)
    if args.data is not None:
        if args.dataset is not None:
            raise SpikeportError("--data and --dataset both name the samples: give one")
        x, y = load_user_data(args.data, inp.shape, classes=out.size)
        default_samples(args, len(x))
        return Samples(x, y, Path(args.data).name)
    ds = load_dataset(args.dataset or named_data(net.metadata.get("dataset") or "digits", args.net), args.data_dir)
    default_samples(args, len(ds.test_labels))
    return ds  # its shape is checked against the network's input where the samples are taken


def named_data(name: str, path) -> str:
    """The data set a file came from, or a line saying to give the samples where it came from the user's own."""
    if name not in DATASET_NAMES:
        raise SpikeportError(f"{path}: comes from your own data ({name}): give samples with --data FILE")
    return name


def default_samples(args, available: int) -> None:
    """validate, deploy and power measure 100 samples unless told otherwise (all of them if fewer)."""
    if args.samples is None and args.command in ("validate", "deploy", "power"):
        args.samples = min(100, available)


def pct(v) -> str:
    """An accuracy for the terminal; None (samples without labels) as such."""
    return "n/a (no labels)" if v is None else f"{v:.2%}"


def print_warnings(warnings, stream=None) -> None:
    stream = stream or sys.stdout  # the stdout of the moment (not the one at import)
    for w in warnings:
        print(f"  WARNING: {w}", file=stream)


def quantized(net, args):
    """The network in integer formats (--weight-bits/--state-bits), with a one-line-per-layer report."""
    from ..deploy import quantize
    from ..ir import FixedPoint

    fmt = FixedPoint(weight_bits=args.weight_bits or 8, state_bits=args.state_bits or 24)
    qnet, report = quantize(net, fmt)
    print(f"fixed point: {fmt.weight_bits}-bit weights, {fmt.state_bits}-bit state, saturating")
    for p in report["projections"]:
        warn = "   WARNING: many weights became zero" if p["zeroed_fraction"] > 0.05 else ""
        print(f"  {p['name']:<16} max |error| {p['max_abs_error']:.3g}, mean {p['mean_abs_error']:.3g}, "
              f"zeroed {p['zeroed_fraction']:.1%}{warn}")
    return qnet


def print_energy(name, e, stream=None) -> None:
    stream = stream or sys.stdout  # the stdout of the moment (not the one at import)
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
