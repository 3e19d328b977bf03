"""Sweep files (issue 26, first part): the smallest file as the issue writes it gives its grid of points, each
keyed by a digest of its inputs (stable, and changed by any input); [[point]] tables; every bad file one
SweepError line naming the file and the key, before any point is made."""
import os

import pytest

from conftest import small_network
from spikeport.sweeps import Point, SweepError, load_sweep


@pytest.fixture
def files(tmp_path):
    import torch

    from spikeport.ir import save_network

    save_network(small_network(), tmp_path / "net.spk")
    torch.save({"format": "spikeport-model"}, tmp_path / "model.pt")  # a model file by its archive
    return tmp_path


def sweep(files, text: str, name="sweep.toml"):
    path = files / name
    path.write_text(text)
    return load_sweep(path)


SMALLEST = '''
[sweep]
networks = ["net.spk", "model.pt"]
dataset = "digits"
steps = [4, 8]
targets = ["loihi", "spinnaker"]
samples = 100
'''


def test_the_smallest_file_gives_its_grid(files):
    s = sweep(files, SMALLEST + 'norms = ["percentile", "l4"]\nencodings = ["poisson", "regular"]\n')
    assert len(s.points) == 1 * 2 * 2 + 2 * 2 * 2 * 2  # a graph takes no norm nor encoding; the model every one
    graph = [p for p in s.points if p.kind == "graph"]
    assert {(p.steps, p.target) for p in graph} == {(4, "loihi"), (4, "spinnaker"), (8, "loihi"), (8, "spinnaker")}
    assert all(p.norm is None and p.encoding is None and p.backend == "reference" and p.samples == 100
               and p.dataset == "digits" and p.seed == 0 for p in graph)
    assert {(p.norm, p.encoding) for p in s.points if p.kind == "model"} == {
        ("percentile", "poisson"), ("percentile", "regular"), ("l4", "poisson"), ("l4", "regular")}
    assert len({p.key for p in s.points}) == len(s.points)
    assert isinstance(s.points[0], Point) and s.points[0].network == str(files / "net.spk")
    again = sweep(files, SMALLEST + 'norms = ["percentile", "l4"]\nencodings = ["poisson", "regular"]\n')
    assert [p.key for p in again.points] == [p.key for p in s.points]


def test_a_key_changes_with_the_network_and_every_setting(files):
    before = {(p.network, p.steps, p.target): p.key for p in sweep(files, SMALLEST).points}
    from spikeport.ir import save_network
    save_network(small_network(seed=1), files / "net.spk")
    after = {(p.network, p.steps, p.target): p.key for p in sweep(files, SMALLEST).points}
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {k for k in before if k[0].endswith("net.spk")}
    other = sweep(files, SMALLEST.replace("samples = 100", "samples = \"all\"")).points
    assert not {p.key for p in other} & set(after.values()) and other[0].samples is None


def test_points_one_by_one_take_the_sweep_defaults(files):
    s = sweep(files, '''
[sweep]
dataset = "mnist"
samples = 50
seed = 7

[[point]]
network = "model.pt"
steps = 16
target = "speck"
norm = "max"
encoding = "poisson"

[[point]]
network = "net.spk"
steps = 4
target = "cpu"
backend = "brian2"
samples = 10
''')
    a, b = s.points
    assert (a.kind, a.dataset, a.samples, a.seed, a.norm, a.encoding, a.target) == ("model", "mnist", 50, 7, "max",
                                                                                    "poisson", "speck")
    assert (b.kind, b.samples, b.backend, b.norm) == ("graph", 10, "brian2", None)
    assert len(s.points) == 2


@pytest.mark.parametrize("edit, words", [
    (lambda t: t + "bogus = 1\n", "[sweep]: unknown key(s) ['bogus']"),
    (lambda t: t.replace('dataset = "digits"\n', ""), "[sweep]: missing key(s) ['dataset']"),
    (lambda t: t.replace('"spinnaker"]', '"tpu"]'), "[sweep] targets: unknown target 'tpu'"),
    (lambda t: t.replace("[4, 8]", "[4, 0]"), "[sweep] steps: steps must be whole numbers from 1 to 1,000,000, got 0"),
    (lambda t: t.replace("[4, 8]", "[2000000]"), "steps must be whole numbers from 1 to 1,000,000, got 2000000"),
    (lambda t: t.replace("[4, 8]", "[true]"), "got True"),
    (lambda t: t.replace("[4, 8]", "[]"), "[sweep] steps: must be a non-empty list, got []"),
    (lambda t: t.replace("samples = 100", "samples = -1"), "[sweep] samples: must be a whole number >= 1 or \"all\""),
    (lambda t: t.replace('"digits"', '"imagenet"'), "[sweep] dataset: unknown data set 'imagenet'"),
    (lambda t: t.replace('"digits"', '{x = 1}'), "[sweep] dataset: unknown data set {'x': 1}"),  # found by fuzzing
    (lambda t: t + 'norms = ["softmax"]\n', "[sweep] norms: 'softmax' is not one of"),
    (lambda t: t + 'backends = ["spinnaker"]\n', "[sweep] backends: 'spinnaker' is not one of"),
    (lambda t: t + "seed = 18446744073709551616\n", "[sweep] seed: must be a whole number"),
    (lambda t: t.replace('"model.pt"', '"missing.pt"'), "missing.pt: no such file"),
    (lambda t: t.replace('"model.pt"', '"sweep.toml"'), "sweep.toml: neither a spikeport graph file nor a model"),
    (lambda t: t + "[other]\n", "unknown table(s) ['other']"),
    (lambda t: t + '[[point]]\nnetwork = "net.spk"\nsteps = 4\ntarget = "loihi"\nnorm = "max"\n',
     "[[point]] 1: norm 'max' is for model files"),
    (lambda t: t + '[[point]]\nnetwork = "net.spk"\nsteps = 4\ntarget = "loihi"\nencoding = "poisson"\n',
     "[[point]] 1: encoding 'poisson' is for model files"),
    (lambda t: t + '[[point]]\nnetwork = "net.spk"\nsteps = 4\n', "[[point]] 1: missing key 'target'"),
    (lambda t: t + "x = [" * 2000, "not valid TOML"),
    (lambda t: "[sweep\n", "not valid TOML"),
    (lambda t: "", "no points"),
])
def test_a_bad_sweep_file_is_one_line_naming_the_file_and_key(files, edit, words):
    with pytest.raises(SweepError) as exc:
        sweep(files, edit(SMALLEST))
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{files / 'sweep.toml'}: ") and words in msg, msg


def test_a_grid_is_bounded_before_its_points_are_made(files):
    big = SMALLEST.replace("[4, 8]", str(list(range(1, 1001)))).replace('["loihi", "spinnaker"]', str(
        ["loihi"] * 101).replace("'", '"'))
    with pytest.raises(SweepError, match=r"the grid has 202,000 points, over the limit 100,000$"):
        sweep(files, big)


def test_a_fifo_as_a_network_is_refused_without_blocking(files):
    os.mkfifo(files / "pipe.spk")
    with pytest.raises(SweepError, match="networks: .*pipe.spk: is a named pipe"):
        sweep(files, SMALLEST.replace('"model.pt"', '"pipe.spk"'))
