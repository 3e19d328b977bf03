"""A broken limit of a chip: the layer, the limit, the value, and what would make it fit."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Violation:
    """``layer`` (a population or projection name) needs ``value`` of ``what`` where the chip has ``limit``.

    ``key`` is the profile key of the limit (``core.fan_in``), ``fix`` what would make it fit
    ("" when nothing in spikeport's power would), ``fatal`` False for what a deployment can work
    around (e.g. split across cores) and True for what it cannot.
    """

    layer: str
    what: str
    limit: object
    value: object
    key: str = ""
    fix: str = ""
    fatal: bool = True

    def line(self) -> str:
        s = f"{self.layer}: {self.what} {self.value} exceeds the limit {self.limit}"
        if self.key:
            s += f" ({self.key})"
        if self.fix:
            s += f"; {self.fix}"
        return s

    def to_dict(self) -> dict:
        return asdict(self)
