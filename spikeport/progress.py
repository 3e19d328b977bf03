"""A progress bar on a terminal; silent when stderr is not a tty."""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "simulate") as bar: bar.update(n)``.

    ``set_total(n, done=0)`` restarts the count when the total is known only later (a
    resumed training run starts part-way); ``note(text)`` shows a short status after the
    bar (loss and validation accuracy while training)."""

    def __init__(self, total: int, label: str, stream=None, enabled: bool | None = None):
        self.total, self.label, self.done = max(int(total), 1), label, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()
        self.text = ""

    def set_total(self, total: int, done: int = 0) -> None:
        self.total, self.done = max(int(total), 1), max(0, int(done))
        self._draw()

    def note(self, text: str) -> None:
        self.text = str(text)
        self._draw()

    def update(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        self._draw()

    def _draw(self) -> None:
        if self.enabled:
            frac = self.done / self.total
            bar = "#" * int(30 * frac)
            elapsed = time.perf_counter() - self.start
            tail = f"  {self.text}" if self.text else ""
            self.stream.write(f"\r{self.label:<10} [{bar:<30}] {self.done}/{self.total} {elapsed:5.1f}s{tail}\033[K")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
