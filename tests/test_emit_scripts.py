"""The deployment artifacts of spikeport.deploy.emit_scripts, run as a user runs them.

brian2: ``run_brian2.py`` runs as a subprocess from another directory, with ``import
spikeport`` made to fail (it needs brian2 and numpy only), and its output spike counts,
predictions and per-population spike totals must equal the reference executor's, spike
for spike: float networks (analog, regular and Poisson input, IF/LIF, both resets,
refractory steps, synaptic current, delays, conv/pool chains, several batches) and
fixed-point ones (rounding half to even, saturation, wrap-around). Usage problems are one
line on stderr and exit status 2.

spinnaker: the PyNN script, its data and placements.json (sPyNNaker's placements on a
virtual SpiNN-5 board, per-population core limits honoured); the script runs on the
virtual board, maps and exits 0.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, conv_network, small_network
from spikeport.backends import reference
from spikeport.deploy.emit_scripts import (BRIAN2_JSON, BRIAN2_NPZ, BRIAN2_SCRIPT, PLACEMENTS, PLACEMENTS_RUN,
                                           write_brian2)
from spikeport.errors import SpikeportError

# run a script with spikeport unimportable: it must stand alone
STANDALONE = ("import runpy, sys; sys.modules['spikeport'] = None; sys.argv = sys.argv[1:]; "
              "runpy.run_path(sys.argv[0], run_name='__main__')")


def run_script(script, *args, cwd, timeout=240):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env.pop("PYTHONPATH", None)
    return subprocess.run([sys.executable, "-c", STANDALONE, str(script), *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def emit_and_run(net, x, steps, tmp_path, *args, labels=None, seed=0):
    """Write the brian2 artifacts, move them to another directory, run them there (numpy codegen);
    returns (predictions.json as a dict, the process)."""
    written = write_brian2(net, tmp_path / "emitted", x=x, labels=labels, steps=steps, seed=seed)
    assert [p.name for p in written[:3]] == [BRIAN2_SCRIPT, BRIAN2_JSON, BRIAN2_NPZ]
    assert [p.name for p in written[3:]] == ["__init__.py", "readout.py", "brian2_engine.py"]
    assert all(p.is_file() for p in written)
    moved = tmp_path / "moved"
    shutil.copytree(tmp_path / "emitted", moved)
    shutil.rmtree(tmp_path / "emitted")
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    out = tmp_path / "predictions.json"
    proc = run_script(moved / BRIAN2_SCRIPT, "--codegen", "numpy", "--out", out, *args, cwd=work)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text()), proc


def assert_equal_to_reference(res, ref, net):
    """Counts, predictions (membrane tie rule included) and every population's spikes per sample."""
    counts = np.array([r["output_counts"] for r in res["predictions"]])
    np.testing.assert_array_equal(counts, ref.output_counts)
    np.testing.assert_array_equal([r["predicted"] for r in res["predictions"]], ref.predictions[:, -1])
    assert [r["sample"] for r in res["predictions"]] == list(range(len(ref.output_counts)))
    spiking = [p.name for p in net.populations if not p.is_input]
    assert set(res["population_spikes"]) == set(spiking)
    for name in spiking:
        np.testing.assert_array_equal(res["population_spikes"][name], ref.population_spikes[name], err_msg=name)


# ---------------------------------------------------------------------------- brian2, float networks

def test_brian2_script_runs_the_digits_conv_network_spike_for_spike(digits_conv_snn, tmp_path):
    net, ds = digits_conv_snn
    x, y = ds.x("test")[:5], ds.y("test")[:5]
    res, proc = emit_and_run(net, x, 25, tmp_path, labels=y)
    ref = reference.run(net, x, 25, precision="float64")  # Brian2's precision: a trained net's ties
    assert ref.population_spikes["fc2"].sum() > 50  # not two silent networks
    assert_equal_to_reference(res, ref, net)
    assert res["samples"] == 5 and res["steps"] == 25
    assert [r["label"] for r in res["predictions"]] == y.tolist()
    assert res["accuracy"] == pytest.approx(ref.accuracy(y))
    assert f"accuracy: {ref.accuracy(y):.4f}" in proc.stdout


CASES = {
    # analog input; LIF with a synaptic current, refractory steps and a delayed hidden projection
    "dense-analog": (lambda: small_network(neuron="lif", syn=0.8, refractory=1, delay=2), (5, 12)),
    # regular input, reset to zero, refractory steps
    "dense-regular": (lambda: small_network(encoding="regular", reset="zero", refractory=2), (5, 12)),
    # Poisson input (the reference's own trains), conv / avgpool / residual sumpool, a delay
    "conv-poisson": (lambda: conv_network(encoding="poisson", delay=2), (5, 2, 8, 8)),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_brian2_script_equals_the_reference_executor(case, tmp_path):
    make, shape = CASES[case]
    net = make()
    x = np.random.default_rng(5).random(shape).astype(np.float32)
    # 2 side by side: three batches, the last one padded, each from the restored initial state
    res, proc = emit_and_run(net, x, 30, tmp_path, "--batch", 2, seed=7)
    ref = reference.run(net, x, 30, seed=7, precision="float64")
    assert ref.population_spikes[net.output].sum() > 10
    assert_equal_to_reference(res, ref, net)
    assert res["batch"] == 2 and "accuracy" not in res and "accuracy" not in proc.stdout
    if case == "dense-analog":  # fewer samples and other steps than written: an analog input allows both
        out = tmp_path / "short.json"
        proc = run_script(tmp_path / "moved" / BRIAN2_SCRIPT, "--codegen", "numpy", "--samples", 3, "--steps", 45,
                          "--out", out, cwd=tmp_path / "work")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert_equal_to_reference(json.loads(out.read_text()), reference.run(net, x[:3], 45, precision="float64"), net)


# ---------------------------------------------------------------------------- brian2, fixed point

def fixed_network(saturate: bool):
    """A fixed-point network whose membranes reach the 8-bit register's limits (-127: a strong negative
    analog current for 8 steps, then a delayed positive one), with analog currents on .5 (rounded half
    to even), IF and LIF with a synaptic current, both resets, refractory steps."""
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection
    from spikeport.ir.arithmetic import FixedPoint

    w_neg = np.array([[-30, -10, 0], [-7, -25, -3], [-40, 0, -1], [-5, -5, -5]], np.float32)
    w_pos = np.array([[45, 10, 3], [9, 33, 5], [50, 1, 1], [11, 7, 21]], np.float32)
    pops = [Population("input", (3,), encoding=InputEncoding("analog", 100.0)),
            Population("h", (4,), neuron=NeuronModel("if", threshold=20.0, reset="subtract"),
                       bias=np.array([1, 0, -1, 2], np.float32)),
            Population("out", (2,), neuron=NeuronModel("lif", threshold=9.0, reset="zero", decay=0.9, syn_decay=0.5,
                                                       refractory_steps=1))]
    projs = [Projection("neg", "input", "h", [Dense(w_neg)]),
             Projection("pos", "input", "h", [Dense(w_pos)], delay_steps=8),
             Projection("h->out", "h", "out", [Dense(np.array([[5, -3, 4, 1], [-2, 6, 1, 5]], np.float32))])]
    return Network(pops, projs, input="input", output="out",
                   fixed_point=FixedPoint(weight_bits=8, state_bits=8, decay_bits=12, saturate=saturate)).validate()


FIXED_X = np.array([[1, 0.5, 0.25], [0.5, 0.75, 0.5], [0.25, 1, 0.75], [0.9, 0.3, 0.6], [0.5, 0.5, 0.5]], np.float32)


@pytest.mark.parametrize("saturate", [True, False], ids=["saturate", "wrap"])
def test_brian2_script_runs_fixed_point_arithmetic_exactly(saturate, tmp_path):
    net = fixed_network(saturate)
    res, _ = emit_and_run(net, FIXED_X, 30, tmp_path)
    ref = reference.run(net, FIXED_X, 30)
    assert ref.population_spikes["out"].sum() > 20
    assert_equal_to_reference(res, ref, net)
    # the registers matter here: the same network in the other overflow mode spikes differently
    other = reference.run(fixed_network(not saturate), FIXED_X, 30)
    assert not np.array_equal(other.population_spikes["h"], ref.population_spikes["h"])
    meta = json.loads((tmp_path / "moved" / BRIAN2_JSON).read_text())
    assert meta["fixed_point"]["saturate"] is saturate and meta["fixed_point"]["state_max"] == 127


def test_brian2_script_runs_the_quantized_digits_network(digits_conv_snn, tmp_path):
    # what `spikeport deploy` emits for a chip: the network in the chip's integer formats
    from spikeport.deploy import quantize
    from spikeport.ir.arithmetic import FixedPoint

    net, ds = digits_conv_snn
    fixed, _ = quantize(net, FixedPoint(weight_bits=8, state_bits=16))
    x, y = ds.x("test")[5:10], ds.y("test")[5:10]
    res, _ = emit_and_run(fixed, x, 25, tmp_path, labels=y)
    ref = reference.run(fixed, x, 25)
    assert ref.population_spikes["fc2"].sum() > 50
    assert_equal_to_reference(res, ref, fixed)


# ---------------------------------------------------------------------------- brian2, usage

def test_brian2_script_help_and_usage_errors(tmp_path):
    net = small_network(encoding="regular")
    x = np.random.default_rng(0).random((2, 12)).astype(np.float32)
    d = tmp_path / "d"
    write_brian2(net, d, x=x, steps=10)
    work = tmp_path / "work"
    work.mkdir()
    # --help needs neither the data files nor brian2
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(d / BRIAN2_SCRIPT, alone)
    proc = run_script(alone / BRIAN2_SCRIPT, "--help", cwd=work)
    assert proc.returncode == 0, proc.stderr
    for opt in ("--samples", "--steps", "--out"):
        assert opt in proc.stdout

    def one_line_error(proc, *parts):
        assert proc.returncode == 2, (proc.stdout, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("run_brian2.py: error:"), proc.stderr
        for part in parts:
            assert part in lines[0], lines[0]
        assert not (work / "predictions.json").exists()

    one_line_error(run_script(alone / BRIAN2_SCRIPT, cwd=work), "missing data file", BRIAN2_JSON)
    shutil.copy(d / BRIAN2_JSON, alone)
    one_line_error(run_script(alone / BRIAN2_SCRIPT, cwd=work), "missing data file", BRIAN2_NPZ)
    # the stored trains cover 10 steps; 2 samples are stored
    one_line_error(run_script(d / BRIAN2_SCRIPT, "--steps", 11, cwd=work), "--steps", "10 steps")
    one_line_error(run_script(d / BRIAN2_SCRIPT, "--samples", 3, cwd=work), "--samples", "[1, 2]")
    one_line_error(run_script(d / BRIAN2_SCRIPT, "--batch", 0, cwd=work), "--batch")
    (alone / BRIAN2_NPZ).write_bytes(b"not a zip file")
    one_line_error(run_script(alone / BRIAN2_SCRIPT, cwd=work), "cannot read", BRIAN2_NPZ)
    empty = write_brian2(net, tmp_path / "empty", steps=10)[0]  # written without samples
    one_line_error(run_script(empty, cwd=work), "no samples")
    proc = run_script(d / BRIAN2_SCRIPT, "--steps", "x", cwd=work)  # argparse's own usage error
    assert proc.returncode == 2 and "--steps" in proc.stderr


def test_write_brian2_refuses_what_it_cannot_write(tmp_path):
    net = small_network()
    x = np.zeros((3, 12), np.float32)
    with pytest.raises(SpikeportError, match="steps must be at least 1"):
        write_brian2(net, tmp_path / "a", x=x, steps=0)
    with pytest.raises(SpikeportError, match="labels: 2 for 3 samples"):
        write_brian2(net, tmp_path / "b", x=x, labels=[1, 2], steps=5)
    with pytest.raises(SpikeportError, match="do not fit input population"):
        write_brian2(net, tmp_path / "c", x=np.zeros((3, 5), np.float32), steps=5)


def test_emit_scripts_imports_no_simulator():
    code = ("import sys, spikeport.deploy.emit_scripts; "
            "print(sorted(m for m in ('brian2', 'pyNN', 'spynnaker') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


# ---------------------------------------------------------------------------- spinnaker

def _real_home_configs():
    home = Path(os.path.expanduser("~"))
    return {p: p.exists() for p in (home / ".spynnaker.cfg", home / ".config" / ".spynnaker.cfg")}


def test_spinnaker_artifacts_map_and_run_on_the_virtual_board(tmp_path):
    pytest.importorskip("spynnaker")
    from spikeport.backends import spinnaker
    from spikeport.deploy.emit_scripts import write_spinnaker

    before = _real_home_configs()
    net = small_network(encoding="regular", delay=2)  # a spiking input: a population on the board too
    x = np.random.default_rng(3).random((2, 12)).astype(np.float32)
    with pytest.raises(SpikeportError, match="no population named 'nope'"):
        write_spinnaker(net, tmp_path / "bad", x=x, steps=20, neurons_per_core={"nope": 4})
    with pytest.raises(SpikeportError, match=r"\[1, 256\]"):
        write_spinnaker(net, tmp_path / "bad", x=x, steps=20, neurons_per_core={"h": 300})
    out = tmp_path / "deploy"
    written = write_spinnaker(net, out, x=x, labels=[1, 3], steps=20, neurons_per_core={"h": 4})
    assert [p.name for p in written[:4]] == ["run_spinnaker.py", "network.json", "network.npz", PLACEMENTS]
    assert [p.name for p in written[4:]] == ["__init__.py", "readout.py", "pynn_engine.py"]
    assert all(p.is_file() for p in written)
    placed_text = (out / PLACEMENTS).read_text()
    placed = json.loads(placed_text)
    pops = placed["populations"]
    assert set(pops) == {p.name for p in net.populations}
    for pop in net.populations:
        entry = pops[pop.name]
        assert entry["neurons"] == pop.size and entry["cores"] == len(entry["placements"]) >= 1
        spans = sorted((c["first"], c["last"]) for c in entry["placements"])
        assert spans[0][0] == 0 and spans[-1][1] == pop.size - 1  # every neuron is on a core
        assert all(spans[k][1] + 1 == spans[k + 1][0] for k in range(len(spans) - 1))
        assert sorted(map(tuple, entry["chips"])) == sorted({(c["x"], c["y"]) for c in entry["placements"]})
    assert pops["h"]["cores"] == 3 and pops["out"]["cores"] == 1  # 9 neurons at 4 a core; the default 255
    cores = [(c["x"], c["y"], c["p"]) for e in pops.values() for c in e["placements"]]
    cores += [(c["x"], c["y"], c["p"]) for k, e in placed["other"].items() if k != "system" for c in e["placements"]]
    assert len(set(cores)) == len(cores)  # no core holds two vertices
    assert placed["population_cores"] == sum(e["cores"] for e in pops.values())
    assert placed["total_cores"] == len(cores) >= placed["population_cores"]
    assert placed["total_chips"] == len({c[:2] for c in cores}) >= 1
    assert placed["neurons_per_core"] == {"h": 4}
    meta = json.loads((out / "network.json").read_text())
    assert meta["neurons_per_population"] == {"h": 4} and meta["samples"] == 2

    # the script as written, elsewhere, with a private HOME configured for a virtual board
    env = spinnaker.private_env(tmp_path / "board")
    env["OMP_NUM_THREADS"] = "1"
    work = tmp_path / "board" / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, str(written[0]), "--samples", "1"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "maps but does not run" in proc.stdout
    run_placed = json.loads((out / PLACEMENTS_RUN).read_text())
    assert set(run_placed["populations"]) == {p.name for p in net.populations}
    assert len(run_placed["populations"]["h"]) == 3  # the per-population limit reached the script
    assert all(len(c) >= 1 for c in run_placed["populations"].values())
    assert (out / PLACEMENTS).read_text() == placed_text  # the run did not overwrite the deploy's placements
    assert np.load(out / "results.npz")["counts"].shape == (1, 4)
    assert _real_home_configs() == before  # the user's home is never touched
