"""Running a sweep's points serially (issue 26, second part): rows as `spikeport power` measures one chip, the
same whether a point's samples run in one shard or many (activities merged sample by sample, Poisson trains
from each shard's first sample), kept per point so that a sweep run again runs nothing, and a point that does
not fit its chip a row with its reason. The dask executor and its tests come next."""
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
    whole = run_sweep(sweep, tmp_path / "one", shard_samples=1000)
    sharded = run_sweep(sweep, tmp_path / "many", shard_samples=7)  # 8 shards of a point's 50 samples
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in whole]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in sharded]
    by = {(r["steps"], r["target"]): r for r in whole[:8]}
    assert len(whole) == 9 and set(whole[0]) == set(COLUMNS)
    loihi = by[(16, "loihi")]
    assert loihi["fits"] and loihi["cores"] >= 2 and loihi["synops"] > 0 and 0 <= loihi["chip_accuracy"] <= 1
    assert loihi["energy_low_j"] <= loihi["energy_per_inference_j"] <= loihi["energy_high_j"]
    assert by[(16, "loihi")]["energy_per_inference_j"] > by[(8, "loihi")]["energy_per_inference_j"]
    assert by[(8, "cpu")]["chip_accuracy"] is None and by[(8, "cpu")]["energy_per_inference_j"] > 0
    assert by[(8, "speck")]["fits"] and by[(8, "speck")]["cores"] >= 2  # spikes in: Speck takes it
    refused = whole[-1]  # the same network with analog input: Speck takes only events
    assert refused["network"].endswith("analog.spk") and not refused["fits"] and refused["accuracy"] is None
    assert refused["error"].startswith("does not fit speck: input: input encoding analog exceeds the limit")
    kept = sorted((tmp_path / "one" / "points").iterdir())
    assert [p.stem for p in kept] == sorted(p.key for p in sweep.points)
    assert json.loads(kept[0].read_text())["key"] == kept[0].stem

    from spikeport.sweeps import run as runner
    monkeypatch.setattr(runner, "run_point", lambda *a, **k: pytest.fail("a kept point ran again"))
    assert run_sweep(sweep, tmp_path / "one") == whole
    table = (tmp_path / "one" / "table.csv").read_text().splitlines()
    assert table[0] == ",".join(COLUMNS) and len(table) == 10
