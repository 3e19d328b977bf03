"""The PyNN backends' own behaviour: pynn-nest's options (PyNN projections, copies), the shared
PyNN lowering on pyNN.nest, its user errors, and the spinnaker backend's mapping on a virtual
SpiNN-5 board (placements, the standalone script).

pynn-nest against the reference executor on every network case (neuron variants, encodings,
delays, residual paths, batches, a trained digits network), what it realizes approximately
(reset by subtraction with a synaptic current or refractory steps) and what it refuses:
tests/test_conformance.py."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import conv_network, small_network

pynn_nest = pytest.importorskip("spikeport.backends.pynn_nest")

from spikeport.backends import get_backend, reference  # noqa: E402
from spikeport.errors import SpikeportError  # noqa: E402


def assert_same(net, x, steps, checkpoints=None, **kw):
    """pynn-nest and the reference executor give the same spikes of every neuron, the same
    predictions at every checkpoint (membrane tie rule included) and the same first spikes."""
    cps = checkpoints or [steps // 2, steps]
    ref = reference.run(net, x, steps, checkpoints=cps, record_counts=True, seed=3, precision="float64")
    act = pynn_nest.run(net, x, steps, checkpoints=cps, record_counts=True, seed=3, **kw)
    assert set(act.neuron_counts) == set(ref.neuron_counts)
    for name in ref.neuron_counts:
        np.testing.assert_array_equal(act.neuron_counts[name], ref.neuron_counts[name], err_msg=name)
    np.testing.assert_array_equal(act.output_counts, ref.output_counts)
    np.testing.assert_array_equal(act.predictions, ref.predictions)
    np.testing.assert_array_equal(act.first_spike_step, ref.first_spike_step)
    for name in ref.synops:
        np.testing.assert_array_equal(act.synops[name], ref.synops[name], err_msg=name)
    assert sum(int(c.sum()) for c in ref.neuron_counts.values()) > 50  # the networks do spike
    return ref, act


def test_pynn_projections_build_the_same_network():
    x = np.random.default_rng(3).random((4, 2, 8, 8)).astype(np.float32)
    ref, act = assert_same(conv_network(encoding="poisson"), x, 25, copies=2, connect="pynn")


def test_the_generic_pynn_path_reproduces_the_reference_on_pynn_nest():
    """The shared lowering through PyNN alone (Populations with initialize, a SpikeSourceArray,
    FromListConnector projections, PyNN's own run: what the SpiNNaker script does), on
    pyNN.nest: every spike of every population where the graph has it, once shifted by the
    population's lag (and by 2 ms: pyNN.nest moves source spikes a min_delay earlier and NEST
    refuses a spike at 0 ms). Bias-free, since constant currents flow from the run's start."""
    import warnings

    from spikeport.backends import common
    from spikeport.backends.pynn_lowering import Lowering, create_input, create_populations, create_projections

    net = small_network(bias=False, encoding="poisson", reset="zero")
    x = np.random.default_rng(7).random((1, 12)).astype(np.float32)
    steps, offset = 30, 2
    ref = reference.run(net, x, steps, record_trains=["h", "out"])
    low = Lowering(net, pynn_nest.NestCells())
    sim = pynn_nest.sim
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sim.setup(timestep=1.0, min_delay=1.0, max_delay=4.0, spike_precision="on_grid", verbosity="error")
        pops = create_populations(sim, low, 1)
        pops["input"] = create_input(sim, low, common.input_trains(net, x, steps), 1, offset=offset)
        create_projections(sim, low, pops, 1)
        for name in low.populations:
            pops[name].record("spikes")
        sim.run(steps + low.max_lag + offset + 1)
        for name, lp in low.populations.items():
            trains = np.zeros((steps, lp.size), bool)
            for j, st in enumerate(pops[name].get_data("spikes").segments[0].spiketrains):
                t = np.rint(np.asarray(st.times)).astype(int) - offset - lp.lag
                trains[t[(t >= 0) & (t < steps)], j] = True
            np.testing.assert_array_equal(trains, ref.spike_trains[name][0], err_msg=name)
            assert trains.any()
        sim.end()


def test_copies_do_not_change_the_result():
    net = small_network(reset="subtract")
    x = np.random.default_rng(4).random((6, 12)).astype(np.float32)
    one = pynn_nest.run(net, x, 30, copies=1, record_counts=True)
    six = pynn_nest.run(net, x, 30, copies=6, record_counts=True)
    for name in one.neuron_counts:
        np.testing.assert_array_equal(one.neuron_counts[name], six.neuron_counts[name])


# the converted digits network: tests/test_backends.py (analog input, through validate) and
# tests/test_conformance.py (regular and poisson input), on every backend


# ---------------------------------------------------------------------------- errors

def test_user_errors_are_one_line():
    # a fixed-point, recurrent or unrealizable network (reset_amount, v > theta, several spikes per
    # step): tests/test_conformance.py
    net = small_network()
    x = np.zeros((1, 12), np.float32)
    with pytest.raises(SpikeportError, match="connect must be"):
        pynn_nest.run(net, x, 5, connect="fast")
    with pytest.raises(SpikeportError, match="copies must be"):
        pynn_nest.run(net, x, 5, copies=0)
    with pytest.raises(TypeError):
        pynn_nest.run(net, x, 5, device="cuda")


# ---------------------------------------------------------------------------- spinnaker

spinnaker_available = True
try:
    import spikeport.backends.spinnaker as spinnaker
except ImportError:  # pragma: no cover
    spinnaker_available = False

needs_spinnaker = pytest.mark.skipif(not spinnaker_available, reason="sPyNNaker is not installed")


def _real_home_configs():
    home = Path(os.path.expanduser("~"))
    return {p: p.exists() for p in (home / ".spynnaker.cfg", home / ".config" / ".spynnaker.cfg")}


@pytest.fixture(scope="module")
def digits_spiking(digits_conv_snn):
    """The shared digits network with a regular spiking input (a SpikeSourceArray on SpiNNaker)."""
    import dataclasses

    from spikeport.ir import InputEncoding, Network

    net, ds = digits_conv_snn
    pops = [dataclasses.replace(p, encoding=InputEncoding("regular", 500.0)) if p.is_input else p
            for p in net.populations]
    return ds, Network(pops, net.projections, dt_s=net.dt_s, input=net.input, output=net.output).validate()


@needs_spinnaker
def test_spinnaker_places_every_population(digits_spiking):
    _, net = digits_spiking
    before = _real_home_configs()
    placed = spinnaker.placements(net, neurons_per_core=64)
    assert set(placed["populations"]) == {p.name for p in net.populations}  # the input's spike source too
    for pop in net.populations:
        entry = placed["populations"][pop.name]
        assert entry["neurons"] == pop.size and entry["cores"] >= 1
        covered = sorted((c[3], c[4]) for c in entry["placements"])
        assert covered[0][0] == 0 and covered[-1][1] == pop.size - 1  # every neuron is on a core
        if not pop.is_input:
            assert entry["cores"] == -(-pop.size // 64)
    assert placed["total_cores"] >= len(net.populations) and placed["total_chips"] >= 1
    assert _real_home_configs() == before  # the user's home is never touched


@needs_spinnaker
def test_spinnaker_is_a_mapper_not_a_backend():
    """The virtual board maps but returns no spikes: no run, a mapper registered apart, and asking
    for it as a backend says so in one line."""
    from spikeport.backends import BACKENDS, MAPPERS, get_mapper

    assert "spinnaker" in MAPPERS and "spinnaker" not in BACKENDS
    assert get_mapper("spinnaker") is spinnaker and not hasattr(spinnaker, "run")
    with pytest.raises(SpikeportError, match="mapper, not a simulator backend: .*does not simulate") as err:
        get_backend("spinnaker")
    assert "deploy NET --target spinnaker" in str(err.value) and "\n" not in str(err.value)
    assert "h: 1 core" in spinnaker.summary(spinnaker.placements(small_network()))


@needs_spinnaker
def test_written_script_maps_on_the_virtual_board(digits_spiking, tmp_path):
    ds, net = digits_spiking
    before = _real_home_configs()
    script = spinnaker.write_script(net, tmp_path / "deploy", ds.x("test")[:3], steps=20, labels=ds.y("test")[:3],
                                    neurons_per_core=64)
    # run it as written, elsewhere, with a private HOME configured for a virtual board
    env = spinnaker.private_env(tmp_path / "board")
    env["OMP_NUM_THREADS"] = "1"
    work = tmp_path / "board" / "work"
    work.mkdir()
    proc = subprocess.run([sys.executable, str(script), "--samples", "1"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "maps but does not run" in proc.stdout
    placed = json.loads((script.parent / "placements.json").read_text())
    assert set(placed["populations"]) == {p.name for p in net.populations}
    assert all(len(cores) >= 1 for cores in placed["populations"].values())
    results = np.load(script.parent / "results.npz")
    assert results["counts"].shape == (1, 10)
    assert _real_home_configs() == before


@needs_spinnaker
def test_validate_and_deploy_map_the_same_cores_per_layer():
    """One SpiNNaker mapping: the mapper's placements and deploy both map 256 neurons per core, sPyNNaker's
    default, so a 256-neuron layer is one core in both."""
    from spikeport.deploy.pipeline import counts, fit
    from spikeport.hardware_profiles import load

    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    nm, rng = NeuronModel("if"), np.random.default_rng(0)
    net = Network([Population("input", (64,), encoding=InputEncoding("analog", 100.0)),
                   Population("fc1", (256,), neuron=nm), Population("fc2", (10,), neuron=nm)],
                  [Projection("input->fc1", "input", "fc1", [Dense(rng.normal(0, 0.1, (256, 64)))]),
                   Projection("fc1->fc2", "fc1", "fc2", [Dense(rng.normal(0, 0.1, (10, 256)))])],
                  output="fc2").validate()
    mapped = spinnaker.summary(spinnaker.placements(net, steps=10))
    prof = load("spinnaker")
    c, _ = counts(net, prof, fit(net, prof).partition, 10)
    assert c.layers["fc1"] == 1 and c.layers["fc2"] == 1
    assert "fc1: 1 core, fc2: 1 core" in mapped, mapped
