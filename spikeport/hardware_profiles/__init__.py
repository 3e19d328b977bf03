"""Hardware profiles: one TOML data file per chip, every number with its source.

A profile is data, not code. Every quantity is an inline table, either

    neurons = { value = 1024, source = "src: nengo-loihi nengo_loihi/block.py (MAX_COMPARTMENTS)" }

or, where the chip has the property but no public source gives its value,

    synop_j = { unknown = "per-op energy not published; only whole-chip figures" }

A key that is absent means the chip has no such limit (TrueNorth has no kernel
size limit); ``unknown`` means it has one that nobody has published, and reports
say so instead of inventing a number. A source starts with its kind: ``src:``
(read in a project's source code), ``doc:`` (documentation), ``paper:`` (the
publication), ``2nd:`` (quoted by a third party), ``derived:`` (computed from
other cited figures, the computation stated), ``measured:`` (a measurement, with
where it was made) or ``assumed:`` (a stated assumption, for baselines).

Top-level strings: ``name``, ``title``, ``kind`` (``neuromorphic`` or
``conventional``), ``quantization`` (``loihi``: weights of ``weight_bits`` with a
shared exponent per synapse config, threshold mantissa and exponent;
``spinnaker``: 16-bit weights with a power-of-two shift per synapse type;
``per-layer``: ``weight_bits`` with one scale per post layer; ``none``: floating
point), ``backend`` (the spikeport backend that emulates it: one of
:data:`BACKENDS`, or ``""``), and optionally ``mapper`` (``speck`` or ``xylo``: that
vendor mapper's extra rules). The tables and their keys are :data:`SCHEMA`.
``load(name_or_path)`` reads and validates one; every fault is one line naming the
file and the key. A profile file must be a regular file (a FIFO or device is refused
before it is opened) of at most :data:`MAX_PROFILE_BYTES`.
"""
from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..budget import read_regular
from ..errors import SpikeportError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
SOURCE_KINDS = ("src", "doc", "paper", "2nd", "derived", "measured", "assumed")
KINDS = ("neuromorphic", "conventional")
QUANTIZATIONS = ("loihi", "spinnaker", "per-layer", "none")
MAPPERS = ("speck", "xylo")
# The backends and mappers a profile's ``backend`` may name: the keys of spikeport.backends.BACKENDS and MAPPERS
# (hardware_profiles sits below backends, so the list is kept here; tests/test_readers_hostile.py checks it).
BACKENDS = ("reference", "brian2", "nengo-loihi", "pynn-nest", "spinnaker")
MAX_PROFILE_BYTES = 1 << 20
# How a chip advances time (the time model, spikeport.deploy.energy.step_time):
TIMINGS = ("barrier", "realtime", "clocked", "event")
# How input reaches the chip: from the host over its I/O link, or from a sensor on the chip's own interface.
INPUT_PATHS = ("host", "sensor")

# key: (type, meaning), per table: schema/keys.toml (types: "int" positive integer, "int0" integer >= 0,
# "num" positive number, "num0" number >= 0, "ints" list of positive integers).
def _read_schema() -> dict:
    with open(HERE / "schema" / "keys.toml", "rb") as f:
        return {table: {k: tuple(v) for k, v in keys.items()} for table, keys in tomllib.load(f).items()}


SCHEMA: dict[str, dict[str, tuple[str, str]]] = _read_schema()
# Every profile states these, as a value or as unknown, so that reports can name what is missing.
REQUIRED = ("time.dt_s", "energy.synop_j", "energy.neuron_update_j", "energy.spike_j",
            "energy.static_core_w", "energy.static_chip_w")
REQUIRED_NEUROMORPHIC = ("core.neurons", "chip.cores", "precision.weight_bits")
REQUIRED_CONVENTIONAL = ("energy.mac_j",)


class ProfileError(SpikeportError):
    """A hardware profile that cannot be read or is not valid: names the file and the key."""


@dataclass(frozen=True)
class Quantity:
    """One number of a profile: ``value`` and ``source``, or ``unknown`` (why it is not known)."""

    value: object = None
    source: str | None = None
    unknown: str | None = None
    low: float | None = None          # the range the value is uncertain within (numbers only)
    high: float | None = None

    @property
    def known(self) -> bool:
        return self.unknown is None

    def at(self, corner: str = "value"):
        """The value, or the low or high end of its range (the value itself where no range is given)."""
        if corner == "low" and self.low is not None:
            return self.low
        if corner == "high" and self.high is not None:
            return self.high
        return self.value

    def to_dict(self) -> dict:
        if not self.known:
            return {"unknown": self.unknown}
        out = {"value": self.value, "source": self.source}
        if self.low is not None:
            out.update(low=self.low, high=self.high)
        return out


@dataclass(frozen=True)
class Profile:
    name: str
    title: str
    kind: str
    quantization: str
    backend: str
    path: str
    mapper: str = ""
    timing: str = "realtime"
    input: str = "host"
    quantities: dict = field(default_factory=dict)  # "table.key" -> Quantity

    def quantity(self, key: str) -> Quantity | None:
        """The quantity at ``table.key``; None where the chip has no such limit."""
        _check_key(key)
        return self.quantities.get(key)

    def value(self, key: str):
        """The value at ``table.key``; None where it is absent or unknown."""
        q = self.quantity(key)
        return None if q is None or not q.known else q.value

    def is_unknown(self, key: str) -> bool:
        q = self.quantity(key)
        return q is not None and not q.known

    @property
    def neuromorphic(self) -> bool:
        return self.kind == "neuromorphic"

    def unknowns(self) -> list:
        """Keys the chip has but no source gives, with why."""
        return [(k, q.unknown) for k, q in self.quantities.items() if not q.known]

    def to_dict(self) -> dict:
        return {"name": self.name, "title": self.title, "kind": self.kind, "quantization": self.quantization,
                "backend": self.backend, "mapper": self.mapper, "timing": self.timing, "input": self.input,
                "path": self.path,
                "quantities": {k: q.to_dict() for k, q in self.quantities.items()}}


def _check_key(key: str) -> None:
    table, _, name = key.partition(".")
    if name not in SCHEMA.get(table, {}):
        raise KeyError(f"no profile key {key!r}")


def _quantity(where: str, kind: str, raw) -> Quantity:
    if not isinstance(raw, dict):
        raise ProfileError(f"{where}: must be an inline table {{ value = ..., source = \"...\" }} or "
                           f"{{ unknown = \"why\" }}, got {raw!r}")
    extra = set(raw) - {"value", "source", "unknown", "low", "high"}
    if extra:
        raise ProfileError(f"{where}: unknown field(s) {', '.join(sorted(extra))} "
                           f"(allowed: value, source, unknown, low, high)")
    if "unknown" in raw:
        if set(raw) != {"unknown"} or not isinstance(raw["unknown"], str) or not raw["unknown"].strip():
            raise ProfileError(f"{where}: an unknown quantity is {{ unknown = \"why it is not known\" }} alone")
        return Quantity(unknown=raw["unknown"].strip())
    if "value" not in raw or "source" not in raw:
        raise ProfileError(f"{where}: needs both value and source (or unknown = \"why\")")
    source = raw["source"]
    if not isinstance(source, str) or source.split(":", 1)[0].strip() not in SOURCE_KINDS or ":" not in source \
            or not source.split(":", 1)[1].strip():
        raise ProfileError(f"{where}: source must read '<kind>: <where>' with kind one of "
                           f"{', '.join(SOURCE_KINDS)}, got {source!r}")
    v = raw["value"]

    def number(x):
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if kind in ("int", "int0"):
        ok = isinstance(v, int) and not isinstance(v, bool) and (v > 0 or (kind == "int0" and v == 0))
        want = "a positive integer" if kind == "int" else "an integer >= 0"
    elif kind == "num":
        ok, want = number(v) and v > 0, "a positive number"
    elif kind == "num0":
        ok, want = number(v) and v >= 0, "a number >= 0"
    else:  # ints
        ok = isinstance(v, list) and bool(v) and all(isinstance(x, int) and not isinstance(x, bool) and x > 0
                                                      for x in v)
        want = "a non-empty list of positive integers"
    if not ok:
        raise ProfileError(f"{where}: value must be {want}, got {v!r}")
    low, high = raw.get("low"), raw.get("high")
    if (low is None) != (high is None):
        raise ProfileError(f"{where}: give both low and high (the range of an uncertain value), or neither")
    if low is not None:
        if not kind.startswith("num"):
            raise ProfileError(f"{where}: low/high are for numbers, not {want}")
        if not (number(low) and number(high) and 0 <= low <= v <= high):
            raise ProfileError(f"{where}: low and high must be numbers with 0 <= low <= value <= high, "
                               f"got low={low!r}, value={v!r}, high={high!r}")
        low, high = float(low), float(high)
    return Quantity(value=float(v) if kind.startswith("num") else v, source=source.strip(), low=low, high=high)


def parse(data: dict, path: str) -> Profile:
    """A profile from parsed TOML ``data`` (``path`` names it in errors)."""
    strings = {}
    defaults = {"backend": "", "mapper": "", "timing": "realtime", "input": "host"}
    if not isinstance(data, dict):
        raise ProfileError(f"{path}: a profile is a TOML table, got {type(data).__name__}")
    for key, allowed in (("name", None), ("title", None), ("kind", KINDS), ("quantization", QUANTIZATIONS),
                         ("backend", BACKENDS + ("",)), ("mapper", MAPPERS + ("",)), ("timing", TIMINGS),
                         ("input", INPUT_PATHS)):
        v = data.get(key, defaults.get(key))
        if not isinstance(v, str) or (key in ("name", "title") and not v.strip()):
            raise ProfileError(f"{path}: {key}: must be a string" + (" (not empty)" if key in ("name", "title")
                                                                    else ""))
        if allowed is not None and v not in allowed:
            raise ProfileError(f"{path}: {key}: must be one of {', '.join(repr(a) for a in allowed)}, got {v!r}")
        strings[key] = v
    quantities = {}
    for table, raw in data.items():
        if table in strings:
            continue
        if table not in SCHEMA:
            raise ProfileError(f"{path}: unknown key or table {table!r} (tables: {', '.join(SCHEMA)})")
        if not isinstance(raw, dict):
            raise ProfileError(f"{path}: {table}: must be a table")
        for key, q in raw.items():
            if key not in SCHEMA[table]:
                raise ProfileError(f"{path}: {table}.{key}: unknown key (known in [{table}]: "
                                   f"{', '.join(SCHEMA[table])})")
            quantities[f"{table}.{key}"] = _quantity(f"{path}: {table}.{key}", SCHEMA[table][key][0], q)
    required = REQUIRED + (REQUIRED_NEUROMORPHIC if strings["kind"] == "neuromorphic" else REQUIRED_CONVENTIONAL)
    for key in required:
        if key not in quantities:
            raise ProfileError(f"{path}: {key}: missing (give its value and source, or unknown = \"why\")")
    for key in ("time.dt_s",) + (REQUIRED_NEUROMORPHIC if strings["kind"] == "neuromorphic" else ()):
        if not quantities[key].known:
            raise ProfileError(f"{path}: {key}: must be known, a deployment needs it")
    if strings["quantization"] in ("loihi", "per-layer") and "precision.state_bits" not in quantities:
        raise ProfileError(f"{path}: precision.state_bits: missing (quantization {strings['quantization']!r} "
                           f"needs it)")
    return Profile(name=strings["name"], title=strings["title"], kind=strings["kind"],
                   quantization=strings["quantization"], backend=strings["backend"], mapper=strings["mapper"],
                   timing=strings["timing"], input=strings["input"], path=path, quantities=quantities)


def names() -> list:
    """The names of the profiles shipped with spikeport."""
    return sorted(p.stem for p in HERE.glob("*.toml"))


def load(target) -> Profile:
    """A shipped profile by name (``loihi``) or a user's profile by path (``own.toml``)."""
    target = str(target)
    if target.endswith(".toml") or "/" in target or "\\" in target:
        path = Path(target)
        if not os.path.lexists(path):
            raise ProfileError(f"{target}: no such profile file")  # anything else but a regular file: read_regular
    else:
        path = HERE / f"{target}.toml"
        if not path.is_file():
            raise ProfileError(f"unknown target {target!r} (known: {', '.join(names())}; or a path to a .toml "
                               f"profile)")
    data = read_toml(path, "profile", ProfileError, MAX_PROFILE_BYTES, shown=target)
    return parse(data, target if not path.is_relative_to(HERE) else path.name)


def read_toml(path, what: str, error, limit_bytes: int, shown=None) -> dict:
    """The TOML file at ``path`` (a regular file of at most ``limit_bytes``) as a dict; every fault one ``error``
    line naming the file (``shown``: as the user gave it): not UTF-8, not TOML, nested too deeply."""
    shown = path if shown is None else shown
    raw = read_regular(path, what, error, limit_bytes=limit_bytes)
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{shown}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{shown}: not valid TOML: {str(exc).splitlines()[0] if str(exc) else exc}") from None
    except RecursionError:
        raise error(f"{shown}: not valid TOML: nested too deeply") from None


def load_all() -> list:
    return [load(n) for n in names()]
