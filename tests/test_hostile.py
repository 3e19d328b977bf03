"""Every case of the hostile-input corpus (tests/hostile_corpus.py), run through the command line as
a user runs it: exit 2, one line naming the file or limit, no traceback, no hang, nothing written,
and the memory the input makes spikeport allocate under the bound (tests/hostile_run.py)."""
import shutil

import numpy as np
import pytest

from hostile_corpus import cases, fill, make_fixtures
from hostile_run import MEMORY_BOUND_MB, Outcome, run_case, warm_up

CASES = list(cases())


@pytest.fixture(scope="module")
def fixtures(tmp_path_factory):
    fx = make_fixtures(tmp_path_factory.mktemp("hostile") / "fixtures")
    warm_up()
    return fx


def test_the_corpus_covers_every_entry_point_and_the_issues_count():
    kinds = {c.tags[0] for c in CASES}
    assert kinds == {"file", "graph", "model", "nir", "profile", "data", "cli", "output"}
    assert len(CASES) >= 219 + 100 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input_is_one_clean_error(case, fixtures, tmp_path):
    d = tmp_path / "case"
    d.mkdir()
    if case.setup is not None:
        case.setup(d, fixtures)
    takes_file = any("{f}" in a for a in case.argv)
    out = run_case(fill(case.argv, d, fixtures, f=case.expect[0] if takes_file else None), d)
    assert out.faults(case.expect) == [], (out.stderr[-2000:], out.stdout[-500:])
    shutil.rmtree(d, ignore_errors=True)


def test_the_judge_sees_tracebacks_extra_lines_leftovers_and_memory():
    ok = Outcome(rc=2, stdout="", stderr="error: x.spk: bad\n", seconds=0.1, peak_mb=1.0)
    assert ok.faults(("x.spk",)) == []
    assert "exit 1" in Outcome(1, "", "error: x\n", 0.1, 0.0).faults()
    tb = Outcome(1, "", "Traceback (most recent call last):\n  File x\nValueError: y\n", 0.1, 0.0).faults()
    assert "traceback" in tb and "3 stderr lines" in tb
    assert Outcome(None, "", "", 30.0, 0.0).faults()[0].startswith("hung")
    assert Outcome(2, "", "error: y\n", 0.1, 0.0).faults(("x.spk",)) == ["message lacks ['x.spk']"]
    assert Outcome(2, "", "error: x\n", 0.1, 0.0, leftovers=[".out.tmp"]).faults() == ["left ['.out.tmp']"]
    assert Outcome(2, "", "error: x\n", 0.1, MEMORY_BOUND_MB + 1.0).faults() == [f"peak {MEMORY_BOUND_MB + 1:.0f} MB"]


def test_the_runner_measures_what_the_child_allocates(tmp_path, monkeypatch):
    """The peak is the child's own: 300 MB allocated in the child shows, the parent's memory does not."""
    import spikeport.cli

    def allocating_main(argv):
        block = np.ones(300 * 2**20 // 8)           # touched: resident
        print(f"error: allocated {block.nbytes}", file=__import__("sys").stderr)
        return 2

    monkeypatch.setattr(spikeport.cli, "main", allocating_main)
    out = run_case(["anything"], tmp_path)
    assert out.rc == 2 and 250 < out.peak_mb < 400, out.peak_mb
    monkeypatch.setattr(spikeport.cli, "main", lambda argv: 2)
    assert run_case(["anything"], tmp_path).peak_mb < 50
