"""The user's own samples (``--data FILE``): .npz with x and optional labels y, or an .npy of x.

Headers are read and checked (dtype, shape, declared size against the file, against
:data:`MAX_USER_BYTES` and against the memory budget of :mod:`spikeport.budget`) before
anything is allocated (:mod:`.files`); shapes are checked against the network's input.
:func:`evaluation_samples` is the one place every command picks the samples it evaluates on: a
named set's test split, the user's file, or arrays.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..budget import open_regular
from ..errors import DataError, SpikeportError
from ..ir.neurons import MAX_MAGNITUDE
from .files import npz_keys, read_npy_file, read_npz
from .named import Dataset, load_dataset, stratified_split

MAX_USER_BYTES = 1 << 31  # 2 GiB of declared array data per array: refused before anything is allocated
# x comes back as float32: 4 bytes a value beside the array as stored, checked with it against the memory budget
X_COPY_BYTES = 4


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
    path = Path(path)
    where = str(path)
    with open_regular(path, "data file (--data)", DataError) as f:  # a FIFO or device is refused unopened
        head = f.read(6)
    cap = (MAX_USER_BYTES, " for --data; pass fewer samples")
    y = None
    if head.startswith(b"PK"):
        wanted = [k for i, k in enumerate(keys) if not (i == 1 and labels == "ignored")]
        arrays = read_npz(path, wanted, where, required=keys[:1], extra_per_value=X_COPY_BYTES, cap=cap,
                          what="data file (--data)", required_words="an .npz for --data needs an array named")
        x, y = arrays[keys[0]], arrays.get(keys[1])
    elif head == b"\x93NUMPY":
        x = read_npy_file(path, where, extra_per_value=X_COPY_BYTES, what="data file (--data)", cap=cap)
    else:
        raise DataError(f"{where}: neither an .npz nor an .npy file (--data takes an .npz with x and optional y, "
                        f"or an .npy of x)")
    x = _checked_x(x, where, input_shape)
    if y is not None:
        y = _checked_y(y, len(x), where, classes)
    elif labels == "required":
        raise DataError(f"{where}: has no labels; this needs an .npz with x and y")
    return x, y


def _checked_x(x: np.ndarray, where: str, input_shape) -> np.ndarray:
    if x.ndim < 1 or len(x) == 0:
        raise DataError(f"{where}: x holds no samples (shape {x.shape}); samples go along the first axis")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        bad = int((~np.isfinite(x)).sum())
        raise DataError(f"{where}: x holds {bad:,} non-finite values (NaN or infinity)")
    worst = max(abs(float(x.max())), abs(float(x.min()))) if x.dtype.kind in "fiu" and x.size else 0.0
    if worst > MAX_MAGNITUDE:  # (max and min: no copy of x)
        raise DataError(f"{where}: x holds values up to {worst:.3g}, beyond +-{MAX_MAGNITUDE:g} (the float32 state "
                        f"would overflow)")
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
    return key in npz_keys(path)


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
