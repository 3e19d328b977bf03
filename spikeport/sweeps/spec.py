"""A sweep file (``spikeport sweep SWEEP.toml``, issue 26): what to run, read and checked before anything runs.

The smallest file that works::

    [sweep]
    networks = ["lenet.spk", "lenet-qcfs.pt"]   # graph files, or model files (converted per point)
    dataset = "mnist"
    steps = [4, 8, 16, 32, 64]
    targets = ["loihi", "spinnaker", "speck", "cpu"]
    samples = 10000                            # or "all"

Optional keys of ``[sweep]``: ``norms`` (conversion normalizations for model files: percentile, max,
model-max, none, l4; default: the method's own, as a plain ``spikeport convert``; rate-converted methods only) and ``encodings`` (analog, poisson, regular), both for model files; ``backends`` (where
accuracy is measured: reference, brian2, nengo-loihi, pynn-nest), ``seed``. The grid is every combination; a
model file takes every norm and encoding, a graph file none (it is converted already, with its own). ``[[point]]`` tables instead (or as well) name
points one by one with the same keys, one value each.

Each :class:`Point` has a ``key``: a digest of everything its result depends on (the network file's bytes,
the data set, samples, steps, target, norm, encoding, backend, seed and spikeport's version), which names its
result in the sweep's output directory: a sweep run again skips the points already there.

Bad input is one line naming the file and the key: unknown keys, wrong types, a network that is not a
regular file, an unknown data set, target or backend, steps beyond the run bound, and a grid of more than
:data:`MAX_POINTS` points (its size computed before any point is made).
"""
from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..budget import MAX_STEPS, open_regular
from ..errors import SpikeportError

MAX_SWEEP_BYTES = 1 << 20
MAX_POINTS = 100_000
NORMS = ("percentile", "max", "model-max", "none", "l4")
ENCODINGS = ("analog", "poisson", "regular")
BACKENDS = ("reference", "brian2", "nengo-loihi", "pynn-nest")
GRID_KEYS = ("networks", "steps", "targets", "norms", "encodings", "backends")
KEYS = {"networks", "dataset", "steps", "targets", "samples", "norms", "encodings", "backends", "seed"}
POINT_KEYS = {"network", "dataset", "steps", "target", "samples", "norm", "encoding", "backend", "seed"}


class SweepError(SpikeportError):
    """A sweep file that cannot be run as written."""


@dataclass(frozen=True)
class Point:
    """One configuration of a sweep: ``network`` (a path), its ``kind`` ("graph" or "model"), ``dataset``,
    ``samples`` (None: all), ``steps``, ``target``, ``norm`` (model files; None: the method's own), ``encoding``
    (None: the network's own), ``backend``, ``seed``, ``key``, and ``digest`` (of the network file's bytes)."""

    network: str
    kind: str
    dataset: str
    samples: int | None
    steps: int
    target: str
    norm: str | None
    encoding: str | None
    backend: str
    seed: int
    key: str = ""
    digest: str = ""

    def row(self) -> dict:
        """The point's settings as a row of the sweep's table."""
        return asdict(self)


@dataclass(frozen=True)
class Sweep:
    path: Path
    points: tuple


def load_sweep(path) -> Sweep:
    """The sweep file at ``path``, checked, as its points (grid first, then explicit points; duplicates once)."""
    from ..hardware_profiles import read_toml

    path = Path(path)
    data = read_toml(path, "sweep file", SweepError, MAX_SWEEP_BYTES)
    unknown = set(data) - {"sweep", "point"}
    if unknown:
        raise SweepError(f"{path}: unknown table(s) {sorted(unknown)} (a sweep file has [sweep] and [[point]])")
    grid = data.get("sweep", {})
    explicit = data.get("point", [])
    if not isinstance(grid, dict) or not isinstance(explicit, list):
        raise SweepError(f"{path}: [sweep] must be a table and [[point]] an array of tables")
    reader = _Reader(path)
    points = reader.grid(grid) if "networks" in grid else reader.defaults(grid)
    for i, table in enumerate(explicit):
        points.append(reader.point(table, f"[[point]] {i + 1}", grid))
    if not points:
        raise SweepError(f"{path}: no points (give [sweep] with networks, dataset, steps, targets and samples, "
                         f"or [[point]] tables)")
    seen, unique = set(), []
    for p in points:
        if p.key not in seen:
            seen.add(p.key)
            unique.append(p)
    return Sweep(path, tuple(unique))


class _Reader:
    def __init__(self, path: Path):
        self.path = path
        self.digests = {}

    def fail(self, where: str, why: str):
        raise SweepError(f"{self.path}: {where}: {why}")

    def grid(self, table: dict) -> list:
        unknown = set(table) - KEYS
        if unknown:
            self.fail("[sweep]", f"unknown key(s) {sorted(unknown)} (known: {', '.join(sorted(KEYS))})")
        missing = [k for k in ("networks", "dataset", "steps", "targets", "samples") if k not in table]
        if missing:
            self.fail("[sweep]", f"missing key(s) {missing}")
        lists = {k: self.listed(table, k) for k in GRID_KEYS if k in table}
        size = math.prod(len(v) for v in lists.values())
        if size > MAX_POINTS:
            self.fail("[sweep]", f"the grid has {size:,} points, over the limit {MAX_POINTS:,}")
        networks = [self.network(n, "[sweep] networks") for n in lists["networks"]]
        steps = [self.steps(s, "[sweep] steps") for s in lists["steps"]]
        targets = [self.target(t, "[sweep] targets") for t in lists["targets"]]
        norms = [None if n is None else self.choice(n, NORMS, "[sweep] norms") for n in lists.get("norms", [None])]
        encodings = [None if e is None else self.choice(e, ENCODINGS, "[sweep] encodings")
                     for e in lists.get("encodings", [None])]
        backends = [self.choice(b, BACKENDS, "[sweep] backends") for b in lists.get("backends", ["reference"])]
        dataset, samples, seed = self.common(table, "[sweep]")
        out = []
        for net, kind, digest in networks:  # a graph file is converted already: no norm, no encoding
            conversions = list(itertools.product(norms, encodings)) if kind == "model" else [(None, None)]
            for (norm, enc), backend, t, target in itertools.product(conversions, backends, steps, targets):
                out.append(self.make(net, kind, digest, dataset, samples, t, target, norm, enc, backend, seed))
        return out

    def defaults(self, table: dict) -> list:
        """[sweep] without networks: only defaults for the [[point]] tables (dataset, samples, seed)."""
        unknown = set(table) - {"dataset", "samples", "seed"}
        if unknown:
            self.fail("[sweep]", f"unknown key(s) {sorted(unknown)} (without networks, [sweep] holds only the "
                                 f"defaults dataset, samples and seed of the [[point]] tables)")
        return []

    def point(self, table, where: str, defaults: dict) -> Point:
        if not isinstance(table, dict):
            self.fail(where, "must be a table")
        unknown = set(table) - POINT_KEYS
        if unknown:
            self.fail(where, f"unknown key(s) {sorted(unknown)} (known: {', '.join(sorted(POINT_KEYS))})")
        merged = {k: v for k, v in defaults.items() if k in ("dataset", "samples", "seed")} | table
        for key in ("network", "steps", "target"):
            if key not in table:
                self.fail(where, f"missing key {key!r}")
        net, kind, digest = self.network(table["network"], where)
        norm = table.get("norm")
        for key in ("norm", "encoding"):
            if kind == "graph" and table.get(key) is not None:
                self.fail(where, f"{key} {table[key]!r} is for model files; {net} is a graph file (converted "
                                 f"already)")
        if "dataset" not in merged or "samples" not in merged:
            self.fail(where, "missing key 'dataset' or 'samples' (here or in [sweep])")
        dataset, samples, seed = self.common(merged, where)
        return self.make(net, kind, digest, dataset, samples, self.steps(table["steps"], where),
                         self.target(table["target"], where),
                         None if norm is None else self.choice(norm, NORMS, where),
                         None if table.get("encoding") is None else self.choice(table["encoding"], ENCODINGS, where),
                         self.choice(table.get("backend", "reference"), BACKENDS, where), seed)

    def listed(self, table: dict, key: str) -> list:
        value = table[key]
        if not isinstance(value, list) or not value:
            self.fail(f"[sweep] {key}", f"must be a non-empty list, got {value!r:.80}")
        return value

    def common(self, table: dict, where: str) -> tuple:
        from ..datasets import DATASETS

        dataset = table["dataset"]
        if not isinstance(dataset, str) or dataset not in DATASETS:
            self.fail(f"{where} dataset", f"unknown data set {dataset!r:.80} (known: {', '.join(DATASETS)})")
        samples = table["samples"]
        if samples == "all":
            samples = None
        elif isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            self.fail(f"{where} samples", f"must be a whole number >= 1 or \"all\", got {samples!r:.80}")
        seed = table.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
            self.fail(f"{where} seed", f"must be a whole number from 0 to 2**63 - 1, got {seed!r:.80}")
        return dataset, samples, seed

    def steps(self, value, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_STEPS:
            self.fail(where, f"steps must be whole numbers from 1 to {MAX_STEPS:,}, got {value!r:.80}")
        return value

    def target(self, value, where: str) -> str:
        from ..hardware_profiles import names

        if not isinstance(value, str) or value not in names():
            self.fail(where, f"unknown target {value!r:.80} (known: {', '.join(names())})")
        return value

    def choice(self, value, allowed, where: str) -> str:
        if not isinstance(value, str) or value not in allowed:
            self.fail(where, f"{value!r:.80} is not one of {', '.join(allowed)}")
        return value

    def network(self, value, where: str) -> tuple:
        """(path, "graph" or "model", digest of its bytes): a regular file, its kind from its zip members."""
        if not isinstance(value, str) or not value:
            self.fail(where, f"a network is a path, got {value!r:.80}")
        path = Path(value) if Path(value).is_absolute() else self.path.parent / value
        if value not in self.digests:
            digest = hashlib.sha256()
            try:
                with open_regular(path, "network file", SweepError) as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        digest.update(chunk)
                    f.seek(0)
                    names = _members(f)
            except SweepError as exc:
                self.fail(where, str(exc))
            if any(n == "spikeport.json" for n in names):
                kind = "graph"
            elif any(n.endswith("/data.pkl") for n in names):
                kind = "model"
            else:
                self.fail(where, f"{value}: neither a spikeport graph file nor a model file")
            self.digests[value] = (str(path), kind, digest.hexdigest())
        return self.digests[value]

    def make(self, net, kind, digest, dataset, samples, steps, target, norm, encoding, backend, seed) -> Point:
        from .. import __version__

        parts = [digest, kind, dataset, samples, steps, target, norm, encoding, backend, seed, __version__]
        key = hashlib.sha256(repr(parts).encode()).hexdigest()[:24]
        return Point(net, kind, dataset, samples, steps, target, norm, encoding, backend, seed, key, digest)


def _members(f) -> list:
    """The member names of the zip file ``f`` (a graph file or torch.save's archive), [] if it is not one."""
    import zipfile

    try:
        with zipfile.ZipFile(f) as z:
            return z.namelist()
    except (zipfile.BadZipFile, ValueError, EOFError, OSError):
        return []
