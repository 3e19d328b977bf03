"""Numbers with units for people: one formatter for the command line and the reports."""
from __future__ import annotations

_PREFIXES = ((1e-12, "p"), (1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, ""))


def _scaled(value: float, digits: int) -> tuple:
    """(mantissa text, scale, prefix): the smallest prefix whose rounded mantissa stays below 1000."""
    for scale, prefix in _PREFIXES:
        mantissa = f"{value / scale:.{digits}g}"
        if abs(float(mantissa)) < 1000:
            return mantissa, scale, prefix
    return mantissa, scale, prefix  # 1000 units or more: plain


def si(value: float, unit: str, digits: int = 4, micro: str = "u") -> str:
    """``value`` in ``unit`` with the SI prefix that keeps 1 <= mantissa < 1000 (J, W, s and the like):
    si(0.0123, "J") -> "12.3 mJ"; 0 -> "0 J". ``micro`` is the micro sign to print ("u" or "µ")."""
    v = float(value)
    if v == 0:
        return f"0 {unit}"
    mantissa, _, prefix = _scaled(v, digits)
    return f"{mantissa} {micro if prefix == 'u' else prefix}{unit}"


def si_range(low: float, high: float, unit: str, digits: int = 3, micro: str = "u") -> str:
    """A low-high band in the prefix of its high end: "[12.1-15 mJ]"."""
    mantissa, scale, prefix = _scaled(float(high), digits)
    return f"[{float(low) / scale:.{digits}g}-{mantissa} {micro if prefix == 'u' else prefix}{unit}]"


def count(n: int, word: str) -> str:
    """"1 chip", "4 chips"."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"
