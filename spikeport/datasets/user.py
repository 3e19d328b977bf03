"""The user's own samples (``--data FILE``): .npz with x and optional labels y, or an .npy of x.

Headers are read and checked (dtype, shape, declared size against the file and against
:data:`MAX_USER_BYTES`) before anything is allocated; shapes are checked against the
network's input. :func:`evaluation_samples` is the one place every command picks the
samples it evaluates on: a named set's test split, the user's file, or arrays.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError, SpikeportError
from .named import Dataset, load_dataset, stratified_split

MAX_USER_BYTES = 1 << 31  # 2 GiB of declared array data: refused before anything is allocated
_NUMERIC = "biuf"  # bool, signed and unsigned integers, floats


def _npy_header(stream, where: str) -> tuple:
    """(shape, dtype) from a .npy header, read without loading the data."""
    from numpy.lib import format as npformat

    try:
        version = npformat.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = npformat.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = npformat.read_array_header_2_0(stream)
        else:
            raise ValueError(f"unsupported .npy version {version}")
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{where}: not a readable .npy array ({exc})") from None
    if dtype.kind not in _NUMERIC or dtype.hasobject:
        raise DataError(f"{where}: holds {dtype} values; give numbers (integers or floats)")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
    if nbytes > MAX_USER_BYTES:
        raise DataError(f"{where}: declares {nbytes:,} bytes of data (shape {shape}), over the "
                        f"{MAX_USER_BYTES:,}-byte limit for --data; pass fewer samples")
    return tuple(int(s) for s in shape), dtype, nbytes


def _read_npy(stream, where: str, file_size: int | None = None) -> np.ndarray:
    from numpy.lib import format as npformat

    stream.seek(0)
    shape, dtype, nbytes = _npy_header(stream, where)
    if file_size is not None and nbytes > file_size - stream.tell():
        raise DataError(f"{where}: the header declares {nbytes:,} bytes of data (shape {shape}) but the file "
                        f"holds {max(0, file_size - stream.tell()):,}: truncated")
    stream.seek(0)
    try:
        return npformat.read_array(stream, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{where}: cannot read the array ({exc})") from None


@dataclass
class Samples:
    """The user's own samples (``--data FILE``): x, labels y (None without), and the file's name."""

    x: np.ndarray
    y: np.ndarray | None
    name: str


def load_user_data(path, input_shape: tuple | None = None, classes: int | None = None,
                   labels: str = "optional", keys: tuple = ("x", "y")) -> tuple:
    """The user's own samples: ``(x, y)`` from ``path``, y None when the file has no labels.

    ``path``: ``.npz`` with ``x`` (samples first) and optionally ``y`` (integer class labels, one per
    sample), or ``.npy`` holding x alone. Headers are read first: a file that declares more than
    :data:`MAX_USER_BYTES` or more data than it holds, pickled objects, non-numeric or non-finite values,
    and x whose per-sample shape is neither ``input_shape`` nor its flattened size are refused with one
    line naming the file. x comes back as float32 shaped ``(N, *input_shape)``. ``labels``:
    "optional", "required" or "ignored"; ``keys``: the names of x and y in an .npz.
    """
    import zipfile

    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise DataError(f"{where}: no such file (--data takes an .npz with x and optional y, or an .npy of x)")
    y = None
    with open(path, "rb") as f:
        head = f.read(6)
    if head.startswith(b"PK"):
        try:
            zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise DataError(f"{where}: not a readable .npz archive ({exc})") from None
        with zf:
            members = {n[:-4] if n.endswith(".npy") else n: n for n in zf.namelist()}
            if keys[0] not in members:
                raise DataError(f"{where}: an .npz for --data needs an array named {keys[0]} (it has: "
                                f"{', '.join(sorted(members)) or 'nothing'})")
            arrays = {}
            for key in keys:
                if key not in members or (key == keys[1] and labels == "ignored"):
                    continue
                info = zf.getinfo(members[key])
                if info.file_size > MAX_USER_BYTES + 65536:  # zipfile reads no more than this size
                    raise DataError(f"{where}[{key}]: {info.file_size:,} bytes uncompressed, over the "
                                    f"{MAX_USER_BYTES:,}-byte limit for --data; pass fewer samples")
                with zf.open(info) as member:
                    # read through the header first: a stranger's declared shape sizes nothing
                    _npy_header(member, f"{where}[{key}]")
                with zf.open(info) as member:
                    arrays[key] = _read_npy(_Seekable(member), f"{where}[{key}]")
            x, y = arrays[keys[0]], arrays.get(keys[1])
    elif head == b"\x93NUMPY":
        with open(path, "rb") as f:
            x = _read_npy(f, where, file_size=path.stat().st_size)
    else:
        raise DataError(f"{where}: neither an .npz nor an .npy file (--data takes an .npz with x and optional y, "
                        f"or an .npy of x)")
    x = _checked_x(x, where, input_shape)
    if y is not None:
        y = _checked_y(y, len(x), where, classes)
    elif labels == "required":
        raise DataError(f"{where}: has no labels; this needs an .npz with x and y")
    return x, y


class _Seekable:
    """A zip member read once into memory after its header was checked (zip members do not seek back)."""

    def __init__(self, member):
        self._buf = io.BytesIO(member.read())

    def __getattr__(self, name):
        return getattr(self._buf, name)


def _checked_x(x: np.ndarray, where: str, input_shape) -> np.ndarray:
    if x.ndim < 1 or len(x) == 0:
        raise DataError(f"{where}: x holds no samples (shape {x.shape}); samples go along the first axis")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise DataError(f"{where}: x holds {bad:,} non-finite values (NaN or infinity)")
    if input_shape is not None:
        shape = tuple(int(s) for s in input_shape)
        size = int(np.prod(shape))
        per = tuple(x.shape[1:])
        if per != shape:
            if int(np.prod(per)) != size or len(per) > 1 and len(shape) > 1:
                raise DataError(f"{where}: samples of shape {per} do not fit the network's input of shape {shape} "
                                f"(give x shaped (N, {', '.join(map(str, shape))})"
                                + (f" or (N, {size})" if len(shape) > 1 else "") + ")")
            x = x.reshape((len(x),) + shape)
    return np.ascontiguousarray(x, dtype=np.float32)


def _checked_y(y: np.ndarray, n: int, where: str, classes) -> np.ndarray:
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{where}: y must hold one label per sample ({n}), it has shape {y.shape}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise DataError(f"{where}: y must hold whole class numbers")
    elif y.dtype.kind not in "iub":
        raise DataError(f"{where}: y must hold integer class labels, it holds {y.dtype}")
    y = y.astype(np.int64)
    if len(y) and (y.min() < 0 or (classes is not None and y.max() >= classes)):
        bad = int(y.min()) if y.min() < 0 else int(y.max())
        raise DataError(f"{where}: label {bad} is not a class of the network's output"
                        + ("" if classes is None else f" (0 to {classes - 1})"))
    return y


def user_dataset(path) -> Dataset:
    """A labelled training set from the user's file (``train --data FILE``): ``x`` and ``y``, and the test split
    from ``x_test`` and ``y_test`` where the file has them, else 20 % of each class held out by the same fixed
    hash as the digits split. x is float32 as given (no pixel scaling)."""
    path = Path(path)
    x, y = load_user_data(path, labels="required")
    has_test = path.suffix != ".npy" and _npz_holds(path, "x_test")
    if has_test:
        xt, yt = load_user_data(path, tuple(x.shape[1:]), labels="required", keys=("x_test", "y_test"))
    else:
        if len(np.unique(y)) < 2 or min(np.bincount(y)[np.unique(y)]) < 2:
            raise DataError(f"{path}: needs at least two classes with two samples each to hold out a test split "
                            f"(or give x_test and y_test)")
        train, test = stratified_split(y, 0.2, seed=0)
        x, xt, y, yt = x[train], x[test], y[train], y[test]
    return Dataset(name=path.name, train_images=x, train_labels=y, test_images=xt, test_labels=yt, pixel_max=1.0,
                   source=f"{path} ({'its x_test' if has_test else '20 % of each class held out'} as the test split)")


def _npz_holds(path: Path, key: str) -> bool:
    """Whether the .npz archive at ``path`` has an array ``key`` (its names only; nothing read)."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as zf:
            return f"{key}.npy" in zf.namelist() or key in zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def evaluation_samples(data, samples: int | None = None, data_dir=None, network=None):
    """(x, y, name, whole): the first ``samples`` test samples (default all) of a data set name, a
    Dataset, the user's Samples, or arrays (x, y), (x, None) or x (no labels: y None); ``whole``: they
    are a named data set's whole test set (the one its ANN accuracy was recorded on). Checked against
    ``network``'s input where given."""
    if isinstance(data, str):
        data = load_dataset(data, data_dir)
    user = isinstance(data, Samples)
    if isinstance(data, Dataset):
        x, y, name = data.x("test"), data.y("test"), data.name
    elif user:  # a file of the user's: all of it is the test set, and no ANN accuracy was recorded on it
        x, y, name = data.x, data.y, data.name
    else:  # the caller's own arrays: (x, y), (x, None) or x alone (no labels: no accuracy)
        x, y = (data, None) if isinstance(data, np.ndarray) else data
        x, y, name = np.asarray(x, np.float32), None if y is None else np.asarray(y), None
    if samples is not None:
        if samples < 1:
            raise SpikeportError(f"--samples must be at least 1, got {samples}")
        if samples > len(x):
            raise SpikeportError(f"--samples {samples}: the {name or 'given'} test set has only {len(x)} samples")
        whole = name is not None and not user and samples == len(x)
        x, y = x[:samples], None if y is None else y[:samples]
    else:
        whole = name is not None and not user
    if network is not None:
        inp = network.population(network.input)
        if int(np.prod(x.shape[1:])) != inp.size:
            what = f"data set {name!r}" if name is not None and not user else (name or "the given samples")
            raise SpikeportError(f"the network's input {inp.name!r} takes samples of shape {inp.shape}, {what} has "
                                 f"{tuple(x.shape[1:])}: give your own with --data FILE (.npz with x shaped "
                                 f"(N, {', '.join(map(str, inp.shape))}) and optional labels y, or an .npy of x)")
    return x, y, name, whole
