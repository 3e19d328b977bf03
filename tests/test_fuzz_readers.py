"""Fuzzing every reader of a stranger's file (issue 25): 1,000 hypothesis-made mutants of a good graph file
(a dense and a convolutional one), NIR file, model file, data file, hardware profile and sweep file each
(tests/fuzz_readers.py has the mutations, which know each format), read in a watched worker. Every mutant must be loaded or refused in one SpikeportError
line naming the file, with a bounded peak allocation, no hang and no crash. The cases are seeded: a run
gives the same mutants every time (bench/fuzz_readers.py runs 10,000 per reader with other seeds)."""
import shutil
from pathlib import Path

import pytest

from fuzz_readers import fuzz, readers
from hostile_corpus import make_fixtures

CASES = 1000


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    pytest.importorskip("nir")
    return make_fixtures(tmp_path_factory.mktemp("fuzz") / "fixtures")


@pytest.mark.parametrize("name", ["graph", "graph-conv", "nir", "model", "data", "profile", "sweep"])
def test_a_thousand_mutants_are_each_loaded_or_refused_in_one_line(fixtures, name, tmp_path):
    good = readers(fixtures)[name]
    copy = tmp_path / Path(good).name
    shutil.copy(good, copy)
    result = fuzz(name, copy, CASES, seed=1)
    assert result["findings"] == [], f"{name}: {result['findings'][:5]} (mutants kept in {tmp_path})"
    assert result["loaded"] + result["refused"] == CASES
    assert result["refused"] > 0 and result["loaded"] > 0  # the mutations reach both sides of the reader
