"""The graph file: versioned, self-describing, free of pickle.

A graph file (``.spk``) is a zip container holding

- ``spikeport.json``: ``{"format": "spikeport-network", "version": N, "writer": ...,
  "network": {...}}``, the whole structure in JSON; every array in it is a
  reference ``{"$array": "arrays/<k>.npy"}``;
- ``arrays/<k>.npy``: the arrays, in numpy's .npy format, stored uncompressed
  (the reader refuses compressed members, so nothing is allocated beyond the bytes on disk).

Version rule: a reader of format version N reads every version 1..N (fields that
a later version added take their documented defaults when absent) and refuses a
newer version, saying so. Any new field or changed meaning bumps the version.

Versions: 1, the first layout; 2 adds the neuron fields ``reset_amount``,
``max_spikes_per_step`` and ``strict_threshold`` (defaults None, 1, false). A
network that uses none of them is still written as version 1, byte for byte as
before, so older readers keep reading it.

Loading checks everything before it builds anything: that the path is a regular
file (a FIFO, device or directory is refused before it is opened, and it is opened
without blocking), the container, the header, each field's type, each array's dtype
and declared size against the bytes actually in the file (nothing is allocated that
the file cannot justify) and against the memory budget (:mod:`spikeport.budget`),
each population's declared neurons against the budget as soon as its shape is read,
finite values within the numeric sanity bound and shapes (through
:meth:`Network.validate`), then the whole network's footprint (state and the synapses
its projections would materialize: :func:`spikeport.ir.network.check_footprint`). Any
fault is a :class:`FileFormatError`, :class:`GraphError` or
:class:`spikeport.budget.BudgetError` whose one-line message names the file and the
object.
"""
from __future__ import annotations

import io
import json
import math
import os
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..budget import BudgetError, Tally, open_regular
from ..budget import check as check_budget
from ..budget import number
from ..errors import FileFormatError, GraphError
from ..outputs import write_file
from .arithmetic import FixedPoint
from .network import STATE_BYTES, Network, Population, Projection, check_footprint
from .neurons import InputEncoding, NeuronModel
from .ops import op_from_parts

FORMAT = "spikeport-network"
VERSION = 2
V2_NEURON_FIELDS = ("reset_amount", "max_spikes_per_step", "strict_threshold")
HEADER = "spikeport.json"
MAX_HEADER_BYTES = 64 * 2**20
# Python objects per byte of JSON at worst ("{}," is a 64-byte dict for 3 bytes): the header's bytes times this
# are checked against the memory budget before it is parsed.
JSON_EXPANSION = 32
# What the zip and JSON layers may raise on a damaged or hostile file; all of it means "corrupt".
CONTAINER_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError,
                    RuntimeError, struct.error, zlib.error, UnicodeDecodeError, KeyError, IndexError, OverflowError,
                    TypeError)
ALLOWED_DTYPES = {np.dtype(t) for t in ("float16", "float32", "float64", "int8", "int16", "int32", "int64",
                                        "uint8", "uint16", "uint32", "bool")}


# ----------------------------------------------------------------------------- writing

def _encode(network: Network) -> tuple[dict, dict]:
    arrays: dict[str, np.ndarray] = {}

    def ref(a: np.ndarray) -> dict:
        key = f"arrays/{len(arrays)}.npy"
        arrays[key] = np.ascontiguousarray(a)
        return {"$array": key}

    pops = []
    for p in network.populations:
        pops.append({
            "name": p.name, "shape": list(p.shape),
            "neuron": p.neuron.to_dict() if p.neuron else None,
            "encoding": p.encoding.to_dict() if p.encoding else None,
            "bias": ref(p.bias) if p.bias is not None else None,
            **({"v_init": ref(p.v_init)} if p.v_init is not None else {}),
        })
    projs = []
    for proj in network.projections:
        ops = [{"type": op.kind, "params": op.params(), "arrays": {k: ref(v) for k, v in op.arrays().items()}}
               for op in proj.ops]
        projs.append({"name": proj.name, "pre": proj.pre, "post": proj.post, "ops": ops,
                      "delay_steps": int(proj.delay_steps)})
    body = {"dt_s": network.dt_s, "input": network.input, "output": network.output,
            "readout": network.readout, "metadata": network.metadata,
            "fixed_point": network.fixed_point.to_dict() if network.fixed_point else None,
            "populations": pops, "projections": projs}
    return body, arrays


def _header_and_arrays(network: Network) -> tuple:
    """The validated network as the header's JSON text and its arrays."""
    from .. import __version__

    network.validate()
    body, arrays = _encode(network)
    uses_v2 = any(p["neuron"] and set(p["neuron"]) & set(V2_NEURON_FIELDS) for p in body["populations"])
    header = {"format": FORMAT, "version": VERSION if uses_v2 else 1, "writer": f"spikeport {__version__}",
              "network": body}
    try:
        text = json.dumps(header, indent=1, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise GraphError(f"network: metadata is not plain finite JSON ({exc})") from None
    return text, arrays


def write_network(network: Network, f) -> None:
    """Validate ``network`` and write it as a graph file to the binary file object ``f`` (the commands'
    outputs: ``Output.write(lambda f: write_network(net, f))``)."""
    text, arrays = _header_and_arrays(network)
    _write_zip(f, text, arrays)


def save_network(network: Network, path) -> Path:
    """Validate and write ``network`` to ``path`` through the one output writer
    (:func:`spikeport.outputs.write_file`: staged, renamed into place; a failure leaves no partial file)."""
    text, arrays = _header_and_arrays(network)
    return write_file(path, lambda f: _write_zip(f, text, arrays))


def _write_zip(f, text: str, arrays: dict) -> None:
    def entry(name):  # a fixed date: the same network always gives the same bytes
        info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
        info.compress_type, info.external_attr = zipfile.ZIP_STORED, 0o644 << 16
        return info

    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(entry(HEADER), text)
        for key, a in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a, allow_pickle=False)
            z.writestr(entry(key), buf.getvalue())


# ----------------------------------------------------------------------------- reading

class _Reader:
    """Reads one graph file; every failure names the file and the object."""

    def __init__(self, path: Path, z: zipfile.ZipFile, disk_bytes: int):
        self.path, self.z, self.disk_bytes = path, z, disk_bytes
        self.version = 1
        self.members = {info.filename: info for info in z.infolist()}
        self.tally = Tally(path, "the arrays it declares")

    def member(self, name: str, owner: str) -> zipfile.ZipInfo:
        """A member that is stored uncompressed and claims no more bytes than the file has."""
        info = self.members.get(name)
        if info is None:
            self.fail(f"{owner}: {name!r} is missing from the file")
        if info.compress_type != zipfile.ZIP_STORED:
            self.fail(f"{owner}: {name!r} is compressed; graph files store members uncompressed")
        if info.file_size != info.compress_size or info.file_size > self.disk_bytes:
            self.fail(f"{owner}: {name!r} declares {info.file_size} bytes, more than the file holds")
        return info

    def fail(self, msg: str):
        raise FileFormatError(f"{self.path}: {msg}")

    def array(self, spec, owner: str) -> np.ndarray:
        if not (isinstance(spec, dict) and set(spec) == {"$array"} and isinstance(spec["$array"], str)):
            self.fail(f"{owner}: expected an array reference, got {str(spec)[:80]}")
        key = spec["$array"]
        info = self.member(key, f"{owner}: array")
        try:
            with self.z.open(info) as f:
                try:
                    version = np.lib.format.read_magic(f)
                    read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                                   (2, 0): np.lib.format.read_array_header_2_0}.get(version)
                    if read_header is None:
                        self.fail(f"{owner}: array {key!r} has unsupported .npy version {version}")
                    # numpy parses the header with ast.literal_eval: garbage may raise anything
                    shape, fortran, dtype = read_header(f)
                except FileFormatError:
                    raise
                except Exception as exc:
                    self.fail(f"{owner}: array {key!r} has a corrupt .npy header ({type(exc).__name__})")
                if dtype not in ALLOWED_DTYPES:
                    self.fail(f"{owner}: array {key!r} has dtype {dtype}, which is not allowed")
                count = int(np.prod(shape, dtype=np.int64)) if shape else 1
                if any(s < 0 for s in shape) or count * dtype.itemsize != info.file_size - f.tell():
                    self.fail(f"{owner}: array {key!r} declares shape {shape} of {dtype}, "
                              f"which does not match the {info.file_size - f.tell()} bytes stored")
                # allocate only after the size was checked against the stored bytes and the memory budget
                self.tally.add(count * dtype.itemsize, f"{owner}: array {key!r} of shape {tuple(shape)}")
                a = np.empty(count, dtype=dtype)
                got = f.readinto(memoryview(a).cast("B")) if a.nbytes else 0
        except (FileFormatError, BudgetError):
            raise
        except CONTAINER_ERRORS as exc:
            self.fail(f"{owner}: array {key!r} is corrupt ({_short(exc)})")
        if got != a.nbytes:
            self.fail(f"{owner}: array {key!r} is truncated")
        if fortran:
            return np.ascontiguousarray(a.reshape(shape[::-1]).T)
        return a.reshape(shape)


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__


def _field(d: dict, key: str, types, owner: str, reader: _Reader, default=...):
    if key not in d:
        if default is ...:
            reader.fail(f"{owner}: missing field {key!r}")
        return default
    value = d[key]
    if types is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            reader.fail(f"{owner}: field {key!r} is an integer of {value.bit_length()} bits, beyond a float")
    if not isinstance(value, types) or (isinstance(value, bool) and types in (int, float)):
        reader.fail(f"{owner}: field {key!r} has the wrong type ({type(value).__name__})")
    return value


def _check_keys(d, allowed: set, owner: str, reader: _Reader) -> dict:
    if not isinstance(d, dict):
        reader.fail(f"{owner}: expected an object, got {type(d).__name__}")
    unknown = set(d) - allowed
    if unknown:
        reader.fail(f"{owner}: unknown field(s) {sorted(unknown)}")
    return d


def _named(d, allowed: set, what: str, index: int, r: _Reader) -> tuple:
    """Check a population's or projection's keys; return its name and how errors call it."""
    _check_keys(d, allowed, f"{what} {index}", r)
    name = _field(d, "name", str, f"{what} {index}", r)
    return name, f"{what} {name!r}"


def _decode(body, r: _Reader) -> Network:
    _check_keys(body, {"dt_s", "input", "output", "readout", "metadata", "fixed_point", "populations", "projections"},
                "network", r)
    fixed = body.get("fixed_point")
    if fixed is not None:
        fd = _check_keys(fixed, {"weight_bits", "state_bits", "decay_bits", "saturate"}, "network fixed_point", r)
        fixed = FixedPoint(**{k: _field(fd, k, bool if k == "saturate" else int, "network fixed_point", r)
                              for k in ("weight_bits", "state_bits", "decay_bits", "saturate")})
    pops = []
    for i, pd in enumerate(_field(body, "populations", list, "network", r)):
        name, owner = _named(pd, {"name", "shape", "neuron", "encoding", "bias", "v_init"}, "population", i, r)
        shape = _field(pd, "shape", list, owner, r)
        if len(shape) > 8 or not all(isinstance(s, int) and not isinstance(s, bool) for s in shape):
            r.fail(f"{owner}: shape must be a list of at most 8 integers")
        if all(s > 0 for s in shape):  # the state it declares, before anything of it is read or built
            n = math.prod(shape)
            check_budget(n * STATE_BYTES, f"{owner} declares {number(n)} neurons", r.path, of="state")
        neuron = pd.get("neuron")
        if neuron is not None:
            nd = _check_keys(neuron, {"model", "threshold", "reset", "decay", "syn_decay", "refractory_steps",
                                      "v_init", *(V2_NEURON_FIELDS if r.version >= 2 else ())}, owner + " neuron", r)
            neuron = NeuronModel(
                model=_field(nd, "model", str, owner, r), threshold=_field(nd, "threshold", float, owner, r),
                reset=_field(nd, "reset", str, owner, r), decay=_field(nd, "decay", float, owner, r, 1.0),
                syn_decay=_field(nd, "syn_decay", (float, int, type(None)), owner, r, None),
                refractory_steps=_field(nd, "refractory_steps", int, owner, r, 0),
                v_init=_field(nd, "v_init", float, owner, r, 0.0),
                reset_amount=_field(nd, "reset_amount", (float, int, type(None)), owner, r, None),
                max_spikes_per_step=_field(nd, "max_spikes_per_step", int, owner, r, 1),
                strict_threshold=_field(nd, "strict_threshold", bool, owner, r, False))
        encoding = pd.get("encoding")
        if encoding is not None:
            ed = _check_keys(encoding, {"kind", "max_rate_hz"}, owner + " encoding", r)
            encoding = InputEncoding(kind=_field(ed, "kind", str, owner, r),
                                     max_rate_hz=_field(ed, "max_rate_hz", float, owner, r))
        bias = pd.get("bias")
        bias = r.array(bias, owner + " bias") if bias is not None else None
        v_init = pd.get("v_init")
        v_init = r.array(v_init, owner + " v_init") if v_init is not None else None
        pops.append(Population(name=name, shape=tuple(shape), neuron=neuron, encoding=encoding, bias=bias,
                               v_init=v_init))
    projs = []
    for i, jd in enumerate(_field(body, "projections", list, "network", r)):
        name, owner = _named(jd, {"name", "pre", "post", "ops", "delay_steps"}, "projection", i, r)
        ops = []
        for k, od in enumerate(_field(jd, "ops", list, owner, r)):
            oowner = f"{owner} op {k}"
            _check_keys(od, {"type", "params", "arrays"}, oowner, r)
            arrays = {key: r.array(spec, f"{oowner} {key}")
                      for key, spec in _field(od, "arrays", dict, oowner, r).items()}
            ops.append(op_from_parts(_field(od, "type", str, oowner, r), _field(od, "params", dict, oowner, r),
                                     arrays, oowner))
        projs.append(Projection(name=name, pre=_field(jd, "pre", str, owner, r), post=_field(jd, "post", str, owner, r),
                                ops=ops, delay_steps=_field(jd, "delay_steps", int, owner, r, 0)))
    return Network(populations=pops, projections=projs, dt_s=_field(body, "dt_s", float, "network", r),
                   input=_field(body, "input", str, "network", r), output=_field(body, "output", str, "network", r),
                   readout=_field(body, "readout", str, "network", r, "spike_count"),
                   metadata=_field(body, "metadata", dict, "network", r, {}), fixed_point=fixed)


def read_magic(path: Path, n: int, what: str = "input file") -> bytes:
    """The first ``n`` bytes of a regular file; a missing, unreadable or irregular file (a FIFO, a device, a
    directory: refused before it is opened) is a one-line error."""
    with open_regular(path, what, FileFormatError) as f:
        try:
            return f.read(n)
        except OSError as exc:
            raise FileFormatError(f"{path}: cannot read ({_short(exc)})") from None


def load_network(path) -> Network:
    """Read and fully check a graph file. Errors name the file and the object at fault."""
    path = Path(path)
    with open_regular(path, "graph file", FileFormatError) as f:
        try:
            magic = f.read(4)
            f.seek(0)
            disk_bytes = os.fstat(f.fileno()).st_size
        except OSError as exc:
            raise FileFormatError(f"{path}: cannot read ({_short(exc)})") from None
        if magic[:2] != b"PK":
            hint = " (it looks like a pickle, which spikeport never loads)" if magic[:1] == b"\x80" else ""
            raise FileFormatError(f"{path}: not a spikeport graph file{hint}")
        return _load_zip(path, f, disk_bytes)


def _load_zip(path: Path, f, disk_bytes: int) -> Network:
    try:
        z = zipfile.ZipFile(f)
    except CONTAINER_ERRORS as exc:
        raise FileFormatError(f"{path}: truncated or corrupt container ({_short(exc)})") from None
    with z:
        r = _Reader(path, z, disk_bytes)
        if HEADER not in r.members:
            torch_file = any(name.endswith("/data.pkl") for name in r.members)
            r.fail("not a spikeport graph file" + (" (it is a PyTorch file: convert it first with "
                                                    "`spikeport convert`)" if torch_file else f" (no {HEADER} inside)"))
        info = r.member(HEADER, "header")
        if info.file_size > MAX_HEADER_BYTES:
            r.fail(f"{HEADER} declares {info.file_size} bytes (limit {MAX_HEADER_BYTES})")
        check_budget(info.file_size * JSON_EXPANSION, f"{HEADER} of {info.file_size:,} bytes", path,
                     of="parsed JSON at most")
        try:
            header = json.loads(z.read(info).decode("utf-8"))
        except CONTAINER_ERRORS as exc:  # RecursionError (deep nesting) is a RuntimeError
            r.fail(f"{HEADER} is corrupt ({_short(exc)})")
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            r.fail(f"not a spikeport graph file (format is not {FORMAT!r})")
        version = header.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            r.fail(f"invalid format version {version!r}")
        if version > VERSION:
            r.fail(f"format version {version} is newer than this spikeport reads ({VERSION}); upgrade spikeport")
        _check_keys(header, {"format", "version", "writer", "network"}, "header", r)
        r.version = version
        try:
            network = _decode(_field(header, "network", dict, "header", r), r)
            network.validate()
        except GraphError as exc:
            raise GraphError(f"{path}: {exc}") from None
        check_footprint(network, path)
        return network
