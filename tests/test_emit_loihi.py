"""The Loihi deployment artifact: the emitted script runs as written under Nengo-Loihi's emulator
(in a subprocess in which spikeport cannot be imported) and predicts what spikeport's
nengo-loihi backend predicts on the same samples and steps, spike count for spike count."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from conftest import overflow_network, small_network
from spikeport.errors import SpikeportError
from spikeport.ir import (AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population,
                          Projection, SumPool2d)

loihi = pytest.importorskip("spikeport.backends.loihi")
from spikeport.deploy.emit_loihi import write_loihi  # noqa: E402

TIMEOUT = 120
# the engine beside the script: spikeport/runtimes as the script needs it
RUNTIME = [f"spikeport_runtime/{m}.py" for m in ("__init__", "loihi", "loihi_chip", "loihi_nengo", "readout")]


@pytest.fixture(scope="session")
def no_spikeport(tmp_path_factory):
    """A PYTHONPATH entry whose ``spikeport`` package refuses to import: the script must not need it."""
    root = tmp_path_factory.mktemp("no-spikeport")
    (root / "spikeport").mkdir()
    (root / "spikeport" / "__init__.py").write_text("raise ImportError('run_loihi.py must not import spikeport')\n")
    return str(root)


def run_script(out_dir, *args, no_spikeport):
    env = dict(os.environ, PYTHONPATH=no_spikeport, OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "run_loihi.py", *map(str, args)], cwd=out_dir, capture_output=True,
                          text=True, timeout=TIMEOUT, env=env)


def emit_and_run(net, x, steps, out_dir, *args, no_spikeport, **kw):
    paths = write_loihi(net, out_dir, x=x, steps=steps, **kw)
    assert sorted(str(p.relative_to(out_dir)) for p in paths) == ["inputs.npz", "loihi_meta.json", "loihi_network.npz",
                                                                  "run_loihi.py", *RUNTIME]
    assert all(p.is_file() for p in paths)
    r = run_script(out_dir, "--target", "sim", *args, no_spikeport=no_spikeport)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads((out_dir / "predictions.json").read_text()), r


def assert_same_run(out, act):
    """The script's predictions, output counts and every population's spike totals are the backend's."""
    assert out["predictions"] == act.predictions[:, -1].tolist()
    assert out["output_counts"] == act.output_counts.tolist()
    assert out["population_spikes"] == {k: v.tolist() for k, v in act.population_spikes.items() if k != "input"}
    assert sum(map(sum, out["output_counts"])) > 0


def blocks_of(meta) -> int:
    return sum(int(np.prod([-(-n // b) for n, b in zip(e["ensemble_shape"], e["block_shape"])]))
               for e in meta["ensembles"])


def test_digits_conv_script_agrees_with_validate(digits_conv_snn, tmp_path, no_spikeport):
    from spikeport.api import validate

    net, ds = digits_conv_snn
    x, y = ds.x("test")[:10], ds.y("test")[:10]
    out, r = emit_and_run(net, x, 30, tmp_path, labels=y, no_spikeport=no_spikeport)
    val = validate(net, ds, steps=30, samples=10, backend="nengo-loihi")
    act = val.simulation.activity
    assert_same_run(out, act)                                     # 100 % agreement, count for count
    assert out["mode"] == "registers" and out["samples"] == 10 and out["steps"] == 30 and out["run_steps"] == 32
    assert out["accuracy"] == pytest.approx(float((act.predictions[:, -1] == y).mean()))
    assert f"accuracy: {out['accuracy']:.4f}" in r.stdout
    meta = json.loads((tmp_path / "loihi_meta.json").read_text())
    assert out["blocks"] == blocks_of(meta) == 3
    assert [e["name"] for e in meta["ensembles"]] == ["conv1", "fc1", "fc2"]
    assert meta["lag"] == {"input": 0, "conv1": 0, "fc1": 1, "fc2": 2}
    # what a fresh build per sample (a board's mode) changes here: fc1 and fc2's biases flow before their lags
    assert any(n.startswith("fc2: its bias flows from the first step instead of step 2")
               for n in meta["rebuild_not_exact"])
    # the script is standalone: the backend's own engine is copied beside it, spikeport is never imported
    assert "class LoihiIF(" in (tmp_path / "spikeport_runtime" / "loihi_nengo.py").read_text()
    for path in [tmp_path / "run_loihi.py", *(tmp_path / "spikeport_runtime").glob("*.py")]:
        assert not re.search(r"^\s*(import|from)\s+spikeport\b", path.read_text(), re.M), path


@pytest.mark.parametrize("kw", [dict(encoding="poisson", neuron="lif", syn=0.8, refractory=1, delay=2),
                                dict(encoding="analog", syn=0.9, in_delay=2, slow=True)],
                         ids=["poisson-lif-filter-delay", "analog-filter-input-delay-slow-routing"])
def test_dense_nets_agree_with_the_backend(kw, tmp_path, no_spikeport):
    kw = dict(kw)
    in_delay, slow = kw.pop("in_delay", 0), kw.pop("slow", False)
    net = small_network(**kw)
    net.projections[0].delay_steps = in_delay
    x = np.random.default_rng(4).random((6, 12)).astype(np.float32)
    out, _ = emit_and_run(net, x, 25, tmp_path, *(["--slow-routing"] if slow else []), seed=5,
                          no_spikeport=no_spikeport)
    act = loihi.run(net, x, 25, seed=5)
    assert act.population_spikes["out"].sum() > 10
    assert_same_run(out, act)
    # fewer samples and steps than stored: the build's bias scale is taken over the samples run, as the backend's
    r = run_script(tmp_path, "--samples", 3, "--steps", 15, no_spikeport=no_spikeport)
    assert r.returncode == 0, r.stderr
    assert_same_run(json.loads((tmp_path / "predictions.json").read_text()), loihi.run(net, x[:3], 15, seed=5))
    meta = json.loads((tmp_path / "loihi_meta.json").read_text())
    relays = [e["name"] for e in meta["ensembles"] if e["population"] is None]
    assert relays == (["h~relay1"] if kw["encoding"] == "poisson" else [])        # delay 2: one relay step
    assert [s["delay"] for s in meta["populations"][0]["stages"]] == ([0] if kw["encoding"] == "poisson" else [0, 2])
    taus = [c["synapse_tau"] for c in meta["connections"]]
    assert all(t == pytest.approx(-1e-3 / np.log(kw["syn"])) for t in taus if t is not None)
    assert taus.count(None) == len(relays)                       # the filter travels; the relays have none


def conv_chain():
    """input (1, 10, 10) regular -conv 3x3-> a (4, 8, 8) -[avgpool 2, conv 3x3]-> b (3, 2, 2) -dense-> out (4),
    plus a -[sumpool 4, flatten, dense]-> out: a chip-to-chip convolution and a residual path (a relay)."""
    rng = np.random.default_rng(1)
    nm = NeuronModel("if", threshold=1.0, reset="zero")
    pops = [Population("input", (1, 10, 10), encoding=InputEncoding("regular", 400.0)),
            Population("a", (4, 8, 8), neuron=nm, bias=np.full((4, 8, 8), 0.01, np.float32)),
            Population("b", (3, 2, 2), neuron=NeuronModel("if", threshold=1.0, reset="zero", syn_decay=0.5)),
            Population("out", (4,), neuron=nm)]
    projs = [Projection("in->a", "input", "a", [Conv2d(rng.normal(0.1, 0.6, (4, 1, 3, 3)).astype(np.float32))]),
             Projection("a->b", "a", "b",
                        [AvgPool2d(2), Conv2d(rng.normal(0.1, 0.8, (3, 4, 3, 3)).astype(np.float32))]),
             Projection("b->out", "b", "out", [Flatten(), Dense(rng.normal(0.2, 0.6, (4, 12)).astype(np.float32))]),
             Projection("a->out", "a", "out",
                        [SumPool2d(4), Flatten(), Dense(rng.normal(0.0, 0.05, (4, 16)).astype(np.float32))])]
    return Network(pops, projs, input="input", output="out").validate()


def test_convolution_transform_and_relays_agree_with_the_backend(tmp_path, no_spikeport):
    net = conv_chain()
    x = np.random.default_rng(2).random((5, 1, 10, 10)).astype(np.float32)
    out, _ = emit_and_run(net, x, 25, tmp_path, no_spikeport=no_spikeport)
    act = loihi.run(net, x, 25)
    assert act.population_spikes["b"].sum() > 20
    assert_same_run(out, act)
    meta = json.loads((tmp_path / "loihi_meta.json").read_text())
    assert meta["conv_transforms"] == ["a->b"]
    conv = [c for c in meta["connections"] if c["transform"]["type"] == "convolution"]
    assert len(conv) == 1 and conv[0]["transform"]["kernel_size"] == [6, 6] and conv[0]["transform"]["strides"] == [2, 2]
    assert "a~relay1" in [e["name"] for e in meta["ensembles"]]


def test_block_shapes_of_a_partitioner_are_built(tmp_path, no_spikeport):
    net = small_network(encoding="analog")
    x = np.random.default_rng(3).random((4, 12)).astype(np.float32)
    out, _ = emit_and_run(net, x, 20, tmp_path, block_shapes={"h": [5], "out": [5]}, no_spikeport=no_spikeport)
    meta = json.loads((tmp_path / "loihi_meta.json").read_text())
    assert [(e["block_shape"], e["ensemble_shape"]) for e in meta["ensembles"]] == [([5], [9]), ([4], [4])]
    assert meta["block_shapes_given"] == ["h", "out"] and meta["block_plan"] is None
    assert out["blocks"] == 3                                    # h in two blocks, out in one
    assert_same_run(out, loihi.run(net, x, 20, block_size=5))   # the backend's runs of 5 neurons: the same


@pytest.mark.parametrize("shapes, match", [({"nope": [4]}, "no population 'nope'"),
                                           ({"h": [3, 3]}, "one per axis"),
                                           ({"h": [0]}, "must be positive"),
                                           ({"h": "many"}, "not a list of integers")])
def test_bad_block_shapes_are_one_clear_error(shapes, match, tmp_path):
    with pytest.raises(SpikeportError, match=match):
        write_loihi(small_network(), tmp_path, block_shapes=shapes)
    assert not any(tmp_path.iterdir())


def test_a_core_too_small_for_the_given_blocks_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    nm = NeuronModel("if", threshold=1.0)
    pops = [Population("input", (64,), encoding=InputEncoding("regular", 400.0)),
            Population("a", (4200,), neuron=nm), Population("b", (2,), neuron=nm)]
    projs = [Projection("in->a", "input", "a", [Dense(rng.normal(size=(4200, 64)).astype(np.float32))]),
             Projection("a->b", "a", "b", [Dense(rng.normal(size=(2, 4200)).astype(np.float32))])]
    net = Network(pops, projs, input="input", output="b").validate()
    # b in one block would need 4200 input axons, a core has 4096
    with pytest.raises(SpikeportError, match="cannot map this network with the given block shapes.*axons"):
        write_loihi(net, tmp_path, block_shapes={"a": [1024], "b": [2]})


def test_rebuild_per_sample_is_exact_without_delayed_biases_or_v_init(tmp_path, no_spikeport):
    import dataclasses

    net = small_network(encoding="regular", bias=False)
    for p in net.populations[1:]:
        p.neuron = dataclasses.replace(p.neuron, v_init=0.0)
    x = np.random.default_rng(6).random((4, 12)).astype(np.float32)
    out, r = emit_and_run(net, x, 25, tmp_path, "--rebuild", no_spikeport=no_spikeport)
    assert json.loads((tmp_path / "loihi_meta.json").read_text())["rebuild_not_exact"] == []
    assert out["mode"] == "rebuild per sample" and "rebuild per sample, not exact: nothing" in r.stdout
    assert_same_run(out, loihi.run(net, x, 25))


def test_target_loihi_builds_the_model_then_needs_a_board(digits_conv_snn, tmp_path, no_spikeport):
    net, ds = digits_conv_snn
    write_loihi(net, tmp_path, x=ds.x("test")[:2], steps=10)
    r = run_script(tmp_path, "--target", "loihi", no_spikeport=no_spikeport)
    try:
        import nxsdk  # noqa: F401
    except ImportError:
        assert r.returncode == 3, r.stdout + r.stderr
        line = r.stderr.strip()
        assert "\n" not in line and line.startswith("run_loihi.py: target loihi: nengo-loihi built the model (3 blocks")
        assert "NxSDK" in line
        assert not (tmp_path / "predictions.json").exists()
    else:  # pragma: no cover - a machine with Loihi's SDK
        assert r.returncode in (0, 3)


def test_usage_help_and_missing_data_files(tmp_path, no_spikeport):
    net = small_network(encoding="poisson")
    write_loihi(net, tmp_path, x=np.random.default_rng(0).random((3, 12)), steps=15)
    r = run_script(tmp_path, "--help", no_spikeport=no_spikeport)
    assert r.returncode == 0 and "--target {sim,simreal,loihi}" in r.stdout and "--samples" in r.stdout
    for args, match in [(["--samples", "4"], "--samples must be in [1, 3]"), (["--steps", "0"], "at least 1"),
                        (["--steps", "16"], "trains are stored for 15 steps"), (["--target", "truenorth"], "invalid choice")]:
        r = run_script(tmp_path, *args, no_spikeport=no_spikeport)
        assert r.returncode == 2 and match in r.stderr, (args, r.stderr)
    for name in ("loihi_network.npz", "inputs.npz", "loihi_meta.json"):
        (tmp_path / name).rename(tmp_path / "moved")
        r = run_script(tmp_path, no_spikeport=no_spikeport)
        (tmp_path / "moved").rename(tmp_path / name)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.strip() == f"run_loihi.py: missing data file {name} beside the script ({tmp_path}): " \
                                   "write the deployment again"
    (tmp_path / "inputs.npz").write_bytes(b"not a zip")
    r = run_script(tmp_path, no_spikeport=no_spikeport)
    assert r.returncode == 2 and r.stderr.startswith("run_loihi.py: cannot read the data files") \
        and r.stderr.count("\n") == 1


def test_without_samples_the_script_builds_only(tmp_path, no_spikeport):
    paths = write_loihi(small_network(), tmp_path, steps=10)
    assert sorted(str(p.relative_to(tmp_path)) for p in paths) == ["loihi_meta.json", "loihi_network.npz",
                                                                   "run_loihi.py", *RUNTIME]
    r = run_script(tmp_path, no_spikeport=no_spikeport)
    assert r.returncode == 0 and "no samples stored: built the model (2 blocks" in r.stdout
    r = run_script(tmp_path, "--samples", "1", no_spikeport=no_spikeport)
    assert r.returncode == 2 and "no samples are stored" in r.stderr


def test_write_errors_and_no_simulator_import_at_module_load(tmp_path):
    with pytest.raises(SpikeportError, match="not a directory"):
        write_loihi(small_network(), tmp_path / "missing")
    with pytest.raises(SpikeportError, match="3 labels for 2 samples"):
        write_loihi(small_network(), tmp_path, x=np.zeros((2, 12)), labels=[0, 1, 2])
    code = "import sys, spikeport.deploy.emit_loihi; print(any(m.split('.')[0] in ('nengo', 'nengo_loihi') for m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


@pytest.mark.parametrize("mode", [(), ("--rebuild",)], ids=["registers", "rebuild"])
def test_the_script_names_register_overflows_as_the_backend_does(mode, tmp_path, no_spikeport):
    net, x = overflow_network()
    out, r = emit_and_run(net, x, 10, tmp_path, *mode, no_spikeport=no_spikeport)
    note = next(n for n in loihi.run(net, x, 10).notes if n.startswith("overflow:"))
    assert out["overflows"] == 20 and out["overflow_note"] == note and note in r.stdout
