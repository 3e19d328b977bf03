"""Numbers with units for people: one formatter for the command line and the reports."""
from __future__ import annotations

_PREFIXES = ((1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"))


def si(value: float, unit: str, digits: int = 4, micro: str = "u") -> str:
    """``value`` in ``unit`` with the SI prefix that keeps 1 <= mantissa < 1000 (J, W, s and the like):
    si(0.0123, "J") -> "12.3 mJ"; 0 -> "0 J". ``micro`` is the micro sign to print ("u" or "µ")."""
    v = float(value)
    if v == 0:
        return f"0 {unit}"
    out = None
    for scale, prefix in reversed(_PREFIXES):  # the smallest prefix whose mantissa, rounded, is below 1000
        mantissa = f"{v / scale:.{digits}g}"
        out = f"{mantissa} {micro if prefix == 'u' else prefix}{unit}"
        if abs(float(mantissa)) < 1000:
            return out
    return out  # 1000 units or more: plain


def si_range(low: float, high: float, unit: str, digits: int = 3, micro: str = "u") -> str:
    """A low-high band in the prefix of its high end: "[12.1-15 mJ]"."""
    top = si(high, unit, digits, micro)
    scale = float(high) / float(top.split()[0]) if float(high) else 1.0
    return f"[{float(low) / scale:.{digits}g}-{top}]"
