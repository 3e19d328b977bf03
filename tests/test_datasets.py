"""Offline data sets: fixed splits, IDX reading, clear errors for missing data."""
import gzip
import hashlib

import numpy as np
import pytest

from spikeport import datasets
from spikeport.datasets import load_dataset, read_idx, stratified_split
from spikeport.errors import DataError


def test_digits_split_is_fixed_and_stratified():
    d = load_dataset("digits")
    assert d.train_images.shape == (1438, 1, 8, 8) and d.test_images.shape == (359, 1, 8, 8)
    assert d.x("test").max() == 1.0 and d.x("test").dtype == np.float32
    # 20 % of each class in test; the split is documented as fixed forever: pin it
    with np.load(datasets.named.Path(datasets.named.__file__).parent.parent / "data" / "digits.npz") as z:
        labels = z["labels"]
    train, test = stratified_split(labels, 0.2, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 1797
    assert hashlib.sha256(test.astype(np.int64).tobytes()).hexdigest()[:16] == "d32a8589aae1dfdd"
    np.testing.assert_array_equal(d.y("test"), labels[test])


def test_official_mnist_splits():
    m = load_dataset("mnist")
    assert m.train_images.shape == (60000, 1, 28, 28) and m.test_images.shape == (10000, 1, 28, 28)
    assert np.bincount(m.test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    small = load_dataset("mnist-5k")
    assert small.train_images.shape[0] == 4000 and np.bincount(small.test_labels).tolist() == [100] * 10


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(s).to_bytes(4, "big") for s in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_from_a_data_directory(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 7), ("t10k", 3)):
        write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    d = load_dataset("fashion-mnist", data_dir=tmp_path)
    assert d.train_images.shape == (7, 1, 28, 28) and d.test_labels.shape == (3,)


def test_idx_header_that_lies_names_the_file(tmp_path):
    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + (100).to_bytes(4, "big") + b"\x01" * 5)
    with pytest.raises(DataError, match="x.gz: header declares shape"):
        read_idx(path, 1)


def test_missing_fashion_says_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets.named, "FASHION_DIR", tmp_path / "absent")
    with pytest.raises(DataError, match="make data"):
        load_dataset("fashion-mnist")


@pytest.mark.skipif(not datasets.named.FASHION_DIR.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_installed_fashion_mnist():
    d = load_dataset("fashion-mnist")
    assert d.train_images.shape == (60000, 1, 28, 28) and np.bincount(d.test_labels).tolist() == [1000] * 10
