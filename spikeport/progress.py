"""A progress bar on a terminal; silent when stderr is not a tty."""
from __future__ import annotations

import sys
import time


class Progress:
    """``with Progress(total, "simulate") as bar: bar.update(n)``."""

    def __init__(self, total: int, label: str, stream=None, enabled: bool | None = None):
        self.total, self.label, self.done = max(int(total), 1), label, 0
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.start = time.perf_counter()

    def update(self, n: int = 1) -> None:
        self.done = min(self.total, self.done + n)
        if self.enabled:
            frac = self.done / self.total
            bar = "#" * int(30 * frac)
            elapsed = time.perf_counter() - self.start
            self.stream.write(f"\r{self.label:<10} [{bar:<30}] {self.done}/{self.total} {elapsed:5.1f}s")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()
