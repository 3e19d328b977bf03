"""spikeport.progress: lines with the rate and the time left in a log, silence for short runs and --quiet."""
import io
import re

from spikeport.progress import Progress


class Recorder:
    """A progress object that records what it is told."""

    def __init__(self):
        self.total = self.done = 0
        self.notes = []

    def set_total(self, total, done=0):
        self.total, self.done = total, done

    def update(self, n=1):
        self.done += n

    def note(self, text):
        self.notes.append(text)


def run(**kw):
    buf = io.StringIO()  # not a terminal
    with Progress(40, "simulate", stream=buf, **kw) as bar:
        for i in range(40):
            bar.update(1)
            if i == 20:
                bar.note("epoch 1/2 loss 0.1000")
    return buf.getvalue()


def test_a_log_gets_whole_lines_with_rate_and_time_left():
    lines = run(interval_s=0.0, delay_s=0.0).splitlines()
    assert lines, "no progress line at all"
    pattern = re.compile(r"^simulate: \d+/40 \(\d+ %\), \d\d:\d\d elapsed, .+/s, (\d\d:\d\d|\?) left")
    assert all(pattern.match(line) for line in lines), lines
    assert "\r" not in "".join(lines)


def test_a_short_run_and_quiet_print_nothing():
    assert run(delay_s=60.0) == ""           # shorter than the delay: silent in a log
    assert run(interval_s=0.0, delay_s=0.0, quiet=True) == ""
    buf = io.StringIO()
    with Progress(1, "validate", stream=buf, delay_s=60.0) as bar:
        bar.set_total(4)                       # a total set later draws nothing either
        bar.note("reference")
        bar.update(1)
    assert buf.getvalue() == ""


def test_a_total_known_later_and_a_resumed_run():
    buf = io.StringIO()
    with Progress(1, "train", stream=buf, interval_s=0.0, delay_s=0.0) as bar:
        bar.set_total(100, done=60)            # a resumed run: 60 of 100 steps already done
        bar.update(10)
        assert bar.bar.n == 70 and bar.bar.total == 100


def test_conversion_reports_its_passes_over_the_calibration_data():
    import numpy as np
    import torch

    from spikeport.models.activation_stats import exact_percentiles
    from spikeport.models.torch_import import Importer
    from spikeport.progress import current, reporting

    torch.manual_seed(0)  # weights with positive outputs: an unseeded init can silence every unit
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU())
    x = np.random.default_rng(0).random((1200, 4)).astype(np.float32)
    imp = Importer(module.eval(), (4,)).run()
    bar = Recorder()
    with reporting(bar):
        exact_percentiles(imp.gm, [imp.pops[0].node], x, 99.9, batch_size=500)
    assert current() is None and bar.total == 6 and bar.done == 6  # two passes of 3 batches


def test_validate_reports_the_backend_run_then_the_reference_run():
    import numpy as np
    from conftest import small_network

    from spikeport.api import validate

    x = np.random.default_rng(0).random((6, 12)).astype(np.float32)
    bar = Recorder()
    validate(small_network(), (x, np.zeros(6, np.int64)), 8, samples=None, backend="brian2", codegen="numpy",
             progress=bar)
    assert bar.total == 12 and bar.done == 12 and bar.notes == ["brian2", "reference"]


def test_a_log_gets_one_line_where_two_draws_come_at_once():
    import io

    from spikeport.progress import _Lines

    out = io.StringIO()
    lines = _Lines(out, gap_s=60.0)
    lines.write("\rtrain: 517/8600\n")
    lines.write("\rtrain: 518/8600\n")  # the monitor thread's redraw a moment later
    lines.write("\r   \r")
    assert out.getvalue() == "train: 517/8600\n"
    lines.last -= 61.0
    lines.write("\rtrain: 900/8600\n")
    assert out.getvalue().splitlines() == ["train: 517/8600", "train: 900/8600"]
