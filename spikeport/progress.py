"""Progress of a long step (tqdm): a live bar on a terminal; periodic lines with the rate and the time
left when stderr is a file or a pipe (a log, CI, a batch job); nothing with ``--quiet``.

The interface the training loop and the backends call: ``update(n)``, ``set_total(n, done=0)`` (a
total known only later, or a resumed run starting part-way) and ``note(text)`` (a short status after
the bar: loss and validation accuracy while training). A run shorter than ``delay`` seconds prints
nothing when not on a terminal.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import sys
import time

LINE_INTERVAL_S = 30.0   # at most one line per this many seconds when not on a terminal
LINE_DELAY_S = 10.0      # and none before this: short runs stay silent in logs


class _Lines:
    """A file for tqdm that turns its carriage-return redraws into whole lines."""

    def __init__(self, stream, gap_s: float = 1.0):
        self.stream = stream
        self.gap_s = gap_s
        self.last = -math.inf

    def write(self, text: str) -> None:
        text = text.replace("\r", "").replace("\x1b[A", "")
        now = time.monotonic()
        # an update and tqdm's monitor thread can both draw within a moment: one line of the two
        if text.strip() and now - self.last >= self.gap_s:
            self.last = now
            self.stream.write(text.rstrip("\n") + "\n")

    def flush(self) -> None:
        self.stream.flush()


class Progress:
    """``with Progress(total, "simulate") as bar: bar.update(n)``."""

    def __init__(self, total: int, label: str, stream=None, quiet: bool = False,
                 interval_s: float = LINE_INTERVAL_S, delay_s: float = LINE_DELAY_S):
        stream = stream or sys.stderr
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self.bar = None
        if quiet:
            return
        from tqdm import tqdm

        total = max(int(total), 1)
        if self.tty:
            self.bar = tqdm(total=total, desc=label, file=stream, dynamic_ncols=True, leave=True, mininterval=0.2)
        else:  # maxinterval: tqdm's monitor would otherwise force a line every 10 s
            self.bar = tqdm(total=total, desc=label, file=_Lines(stream), leave=False, ascii=True,
                            mininterval=interval_s, maxinterval=interval_s, delay=delay_s,
                            bar_format="{desc}: {n_fmt}/{total_fmt} ({percentage:.0f} %), {elapsed} elapsed, "
                                       "{rate_fmt}, {remaining} left{postfix}")

    def set_total(self, total: int, done: int = 0) -> None:
        if self.bar is not None:  # set in place: tqdm's reset() would draw at once, before the log's delay
            total = max(int(total), 1)
            done = min(max(int(done), 0), total)
            self.bar.total, self.bar.n, self.bar.last_print_n = total, done, done
            if self.tty:
                self.bar.refresh()

    def note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(str(text), refresh=False)

    def update(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()


_CURRENT = contextvars.ContextVar("spikeport_progress", default=None)


@contextlib.contextmanager
def reporting(bar):
    """Make ``bar`` the progress that deep steps (conversion's passes over the calibration data) report to."""
    token = _CURRENT.set(bar)
    try:
        yield bar
    finally:
        _CURRENT.reset(token)


def current():
    """The progress set by :func:`reporting`, or None."""
    return _CURRENT.get()
