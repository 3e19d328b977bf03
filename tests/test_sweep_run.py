"""Running a sweep's points in this process (issue 26): rows as `spikeport power` measures one chip, the
same whether a point's samples run in one shard or many (activities merged sample by sample, Poisson trains
from each shard's first sample), kept per point so that a sweep run again runs nothing, a point that does
not fit its chip a row with its reason, points sharing their tasks, and a task that fails for a reason
outside spikeport's checks a row with its error that is not kept. The dask executor: test_sweep_cluster.py."""
import json

import numpy as np
import pytest

from spikeport.sweeps import load_sweep
from spikeport.sweeps.run import COLUMNS, run_sweep


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory):
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection, save_network

    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(0)
    nm = NeuronModel("if", threshold=1.0, reset="subtract")
    net = Network([Population("input", (64,), encoding=InputEncoding("poisson", 1000.0)),
                   Population("h", (32,), neuron=nm), Population("out", (10,), neuron=nm)],
                  [Projection("input->h", "input", "h", [Dense(rng.normal(0.05, 0.3, (32, 64)).astype(np.float32))]),
                   Projection("h->out", "h", "out", [Dense(rng.normal(0.05, 0.3, (10, 32)).astype(np.float32))])],
                  output="out", metadata={"dataset": "digits"}).validate()
    save_network(net, root / "net.spk")
    analog = Network([Population("input", (64,), encoding=InputEncoding("analog")), *net.populations[1:]],
                     net.projections, output="out", metadata={"dataset": "digits"}).validate()
    save_network(analog, root / "analog.spk")
    (root / "sweep.toml").write_text('[sweep]\nnetworks = ["net.spk"]\ndataset = "digits"\nsteps = [8, 16]\n'
                                     'targets = ["loihi", "spinnaker", "cpu", "speck"]\nsamples = 50\n\n'
                                     '[[point]]\nnetwork = "analog.spk"\nsteps = 8\ntarget = "speck"\n')
    return root / "sweep.toml"


def test_shards_merge_exactly_and_a_rerun_runs_nothing(sweep_file, tmp_path, monkeypatch):
    sweep = load_sweep(sweep_file)
    whole = run_sweep(sweep, tmp_path / "one", shard_samples=1000).rows
    sharded = run_sweep(sweep, tmp_path / "many", shard_samples=7).rows  # 8 shards of a point's 50 samples
    assert whole == sharded
    by = {(r["steps"], r["target"]): r for r in whole[:8]}
    assert len(whole) == 9 and set(whole[0]) == set(COLUMNS)
    loihi = by[(16, "loihi")]
    assert loihi["fits"] and loihi["cores"] >= 2 and loihi["synops"] > 0 and 0 <= loihi["chip_accuracy"] <= 1
    assert loihi["energy_low_j"] <= loihi["energy_per_inference_j"] <= loihi["energy_high_j"]
    assert by[(16, "loihi")]["energy_per_inference_j"] > by[(8, "loihi")]["energy_per_inference_j"]
    assert by[(8, "cpu")]["chip_accuracy"] is None and by[(8, "cpu")]["energy_per_inference_j"] > 0
    # the network as an ANN (what cpu runs): its rate model on the same samples, the same at every T
    assert by[(8, "cpu")]["ann_accuracy"] == by[(16, "cpu")]["ann_accuracy"] == loihi["ann_accuracy"] is not None
    assert by[(8, "speck")]["fits"] and by[(8, "speck")]["cores"] >= 2  # spikes in: Speck takes it
    refused = whole[-1]  # the same network with analog input: Speck takes only events
    assert refused["network"].endswith("analog.spk") and not refused["fits"] and refused["accuracy"] is None
    assert refused["error"].startswith("does not fit speck: input: input encoding analog exceeds the limit")
    kept = sorted((tmp_path / "one" / "points").iterdir())
    assert [p.stem for p in kept] == sorted(p.key for p in sweep.points)
    assert json.loads(kept[0].read_text())["key"] == kept[0].stem

    from spikeport.sweeps import run as runner
    monkeypatch.setattr(runner, "plan", lambda *a, **k: pytest.fail("a kept point ran again"))
    assert run_sweep(sweep, tmp_path / "one").rows == whole
    table = (tmp_path / "one" / "table.csv").read_text().splitlines()
    assert table[0] == ",".join(COLUMNS) and len(table) == 10


def test_points_share_their_tasks(sweep_file):
    from spikeport.sweeps.plan import plan

    points = load_sweep(sweep_file).points[:8]  # net.spk: steps 8 and 16 x four targets, 50 samples
    tasks, rows = plan(points, shard_samples=20)  # 3 shards
    kinds = [t.key.split("-")[0] for t in tasks]
    # one data set, one network, four fits; float shards once per steps (not per target); quantized shards
    # per steps and chip (cpu has none); the network as an ANN once per shard; one row per point
    assert {k: kinds.count(k) for k in set(kinds)} == {"data": 1, "net": 1, "chip": 4, "float": 2 * 3,
                                                       "quant": 2 * 3 * 3, "ann": 3, "row": 8}
    done = set()
    for t in tasks:  # every task after its inputs
        assert set(t.refs()) <= done
        done.add(t.key)
    assert sorted(rows) == sorted(p.key for p in points)


def test_a_task_that_breaks_is_a_row_with_its_error_and_not_kept(sweep_file, tmp_path, monkeypatch):
    from spikeport.sweeps import plan as planner

    def broken(*args):
        raise RuntimeError("a bug")

    sweep = load_sweep(sweep_file)
    monkeypatch.setattr(planner, "run_quantized", broken)  # before plan() binds it into the tasks
    rows = run_sweep(sweep, tmp_path / "out").rows
    cpu = [r for r in rows if r["target"] == "cpu"]
    chips = [r for r in rows if r["target"] in ("loihi", "spinnaker") and r["network"].endswith("net.spk")]
    assert cpu and all(r["error"] is None and r["accuracy"] is not None for r in cpu)
    assert chips and all(r["error"].startswith("internal error: RuntimeError: a bug at") for r in chips)
    kept = {p.stem for p in (tmp_path / "out" / "points").iterdir()}
    assert {r["key"] for r in cpu} <= kept and not {r["key"] for r in chips} & kept  # retried by a run again
    monkeypatch.undo()
    again = run_sweep(sweep, tmp_path / "out").rows
    assert all(r["error"] is None for r in again if r["target"] != "speck" or r["network"].endswith("net.spk"))


def test_a_named_backend_measures_the_float_accuracy(tmp_path, digits_model):
    """backends = ["brian2", "reference"]: the float accuracy from Brian2 equals the reference executor's on a
    network whose arithmetic is exact (conftest on_dyadic_grid); the chip's accuracy comes from the reference
    executor on the quantized network either way."""
    pytest.importorskip("brian2")
    from conftest import on_dyadic_grid
    from spikeport.api import convert
    from spikeport.ir import save_network

    save_network(on_dyadic_grid(convert(digits_model, encoding="regular")), tmp_path / "net.spk")
    (tmp_path / "s.toml").write_text('[sweep]\nnetworks = ["net.spk"]\ndataset = "digits"\nsteps = [8]\n'
                                     'targets = ["loihi"]\nsamples = 12\nbackends = ["brian2", "reference"]\n')
    brian, ref = run_sweep(load_sweep(tmp_path / "s.toml"), tmp_path / "out", shard_samples=5).rows
    assert (brian["backend"], ref["backend"]) == ("brian2", "reference") and brian["error"] is None
    assert brian["accuracy"] == ref["accuracy"] > 0.5
    assert brian["chip_accuracy"] == ref["chip_accuracy"] and brian["key"] != ref["key"]


def test_a_model_files_ann_accuracy_is_its_trained_ann(tmp_path):
    """cpu and gpu run the trained ANN: a model file's row scores it, not the converted graph's rate model. A QCFS
    MLP with 2 levels is far from its rate model (the activation without its levels), so the two differ (here 91.4 and 84.7 %)."""
    import torch

    from spikeport.datasets import load_dataset
    from spikeport.models import load_model, save_model, train
    from spikeport.models.calibrate import rate_model
    from spikeport.sweeps.plan import ann_correct, load_ann, load_network, load_samples

    ds = load_dataset("digits")
    save_model(train(ds, arch="mlp", method="qcfs", seed=4, hidden=(32,), qcfs_levels=2),
               tmp_path / "q.pt")
    (tmp_path / "s.toml").write_text('[sweep]\nnetworks = ["q.pt"]\ndataset = "digits"\nsteps = [4]\n'
                                     'targets = ["cpu"]\nsamples = "all"\n')
    row = run_sweep(load_sweep(tmp_path / "s.toml"), tmp_path / "out", shard_samples=100).rows[0]
    x, y = ds.x("test"), ds.y("test")
    module = load_model(tmp_path / "q.pt").module.double().eval()
    with torch.no_grad():
        trained = float((module(torch.as_tensor(x, dtype=torch.float64)).argmax(1).numpy() == y).mean())
    net = load_network("q.pt", (tmp_path / "q.pt").read_bytes(), "model", None, None, None)
    rates = float((rate_model(net, x)[net.output].argmax(1) == y).mean())
    assert row["ann_accuracy"] == pytest.approx(trained, abs=1e-12) and abs(trained - rates) > 0.01
    # a graph file (or a method that trains no ANN) has the rate model
    samples = load_samples("digits", None, None)
    assert ann_correct(net, None, samples, 0, len(y)) == round(rates * len(y))
    assert ann_correct(net, load_ann("q.pt", (tmp_path / "q.pt").read_bytes()), samples, 0, len(y)) == \
        round(trained * len(y))
    from spikeport.models.methods import METHODS, get_method

    assert [m for m in METHODS if not get_method(m).METHOD.ann_forward] == ["spike-bp"]  # trained as an SNN only
