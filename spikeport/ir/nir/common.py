"""What every part of the NIR package shares: constants, the warning class, the lazy ``import nir``, the
registry that maps a type name to its handler, and the checks on numbers read from NIR nodes."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...budget import open_regular
from ...errors import GraphError, SpikeportError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
FORMAT = "spikeport-nir"
VERSION = 1
DISCRETIZATIONS = ("forward-euler", "exponential")
MAX_PATHS = 100_000
MAX_DIAGONAL = 4096
RTOL = 1e-9  # metadata against the node's parameters
UNIFORM_RTOL = 1e-12  # "equal across neurons"

NEURON_TYPES = ("IF", "LIF", "CubaLIF")
LINEAR_TYPES = ("Affine", "Linear", "Scale", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten", "Identity")
SUPPORTED = ("Input", "Output") + LINEAR_TYPES[:-1] + NEURON_TYPES


class NIRWarning(UserWarning):
    """What a NIR import assumed, or what a NIR export stored only as metadata."""


class Registry(dict):
    """A type name -> its handler, filled by the :meth:`register` decorator (in the style of Nengo's
    ``Builder.register``), so that supporting one more type adds a function and touches no if/elif chain."""

    def __init__(self, what: str):
        super().__init__()
        self.what = what

    def register(self, *names):
        def decorate(handler):
            for name in names:
                if name in self:
                    raise ValueError(f"{self.what} {name!r} is registered twice")
                self[name] = handler
            return handler

        return decorate


def load_nir():
    """The ``nir`` module, imported only when NIR is used (an optional extra)."""
    try:
        import nir
    except ImportError:
        raise SpikeportError("NIR support needs the nir package: pip install 'spikeport[nir]'") from None
    return nir


def is_nir_file(path) -> bool:
    """True for a ``.nir`` name or a regular file that starts with the HDF5 signature (anything else, a FIFO
    or a device included, is not looked into: the loader refuses it by name)."""
    path = Path(path)
    if path.suffix.lower() == ".nir":
        return True
    try:
        with open_regular(path) as f:
            return f.read(8) == HDF5_SIGNATURE
    except (SpikeportError, OSError):
        return False


def listing(names, limit: int = 8) -> str:
    names = [repr(n) for n in names]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


class Names:
    """Unique node names, from the names of populations and projections."""

    def __init__(self):
        self.used = set()

    def take(self, base: str) -> str:
        base = base.replace("/", "_")
        if base in ("", ".", ".."):
            base = "node"
        name, k = base, 1
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name


# ----------------------------------------------------------------------------- numbers read from NIR nodes

def float_array(value, owner: str, what: str) -> np.ndarray:
    if value is None:
        raise GraphError(f"{owner}: {what} is missing")
    a = np.array(value)
    if a.dtype.kind in "iub":
        a = a.astype(np.float64)
    if a.dtype.kind != "f":
        raise GraphError(f"{owner}: {what} must be numbers, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise GraphError(f"{owner}: {what} holds {int((~np.isfinite(a)).sum())} NaN or infinite values")
    return a


def ints(value, owner: str, what: str, n: int = 2) -> tuple:
    a = np.asarray(value).ravel()
    try:
        ok = a.size in (1, n) and a.dtype.kind in "iuf" and np.all(np.isfinite(a)) and np.all(a == np.round(a))
    except TypeError:
        ok = False
    if not ok:
        raise GraphError(f"{owner}: {what} must be an integer or {n} integers, got {value!r}")
    a = [int(v) for v in a]
    return tuple(a * n if len(a) == 1 else a)


def same(a: np.ndarray) -> bool:
    """All elements equal, up to float64 rounding of one value computed per neuron (relative UNIFORM_RTOL)."""
    return bool(np.allclose(a, a.flat[0], rtol=UNIFORM_RTOL, atol=UNIFORM_RTOL * 1e-3))


def uniform(a: np.ndarray, owner: str, what: str, per: str) -> float:
    first = a.flat[0]
    if not same(a):
        raise GraphError(f"{owner}: {what} differs across neurons ({a.min():.9g} to {a.max():.9g}); "
                         f"spikeport has one {per} per population")
    return float(first) + 0.0  # no -0.0
