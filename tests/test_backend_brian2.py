"""The Brian2 backend's own behaviour: several Brian2 runs, its float64 arithmetic, notes and
progress, Brian2's prefs and global state, its user errors, the cython target.

Spike for spike against the reference executor on every network case (neuron variants,
encodings, delays, convolutions, segments, a trained digits network) and what it refuses:
tests/test_conformance.py. The tests use Brian2's numpy target (no compiler); the cython
target is the slow test.
"""

import numpy as np
import pytest

from conftest import conv_network, small_network
from spikeport.backends import get_backend, reference
from spikeport.errors import SpikeportError

brian = pytest.importorskip("spikeport.backends.brian")


pytestmark = pytest.mark.usefixtures("frozen_heap")  # Brian2 runs many times here (conftest)


def spiking(net):
    return [p.name for p in net.populations if not p.is_input]


def assert_same_spikes(net, x, steps, seed=0, checkpoints=(5, 17), **options):
    """Run both; every population's spike trains, counts, predictions, synops must be equal."""
    names = spiking(net)
    checkpoints = checkpoints if checkpoints == "all" else list(checkpoints)
    ref = reference.run(net, x, steps, checkpoints=checkpoints, seed=seed, record_counts=True,
                        record_trains=names, precision="float64")
    act = brian.run(net, x, steps, checkpoints=checkpoints, seed=seed, record_counts=True,
                    record_trains=names, codegen="numpy", **options)
    assert act.backend == "brian2" and act.checkpoints == ref.checkpoints
    for name in names:
        np.testing.assert_array_equal(act.spike_trains[name], ref.spike_trains[name], err_msg=name)
        np.testing.assert_array_equal(act.neuron_counts[name], ref.neuron_counts[name], err_msg=name)
    for name in ref.population_spikes:
        np.testing.assert_array_equal(act.population_spikes[name], ref.population_spikes[name], err_msg=name)
    for name in ref.synops:
        np.testing.assert_array_equal(act.synops[name], ref.synops[name], err_msg=f"synops into {name}")
    np.testing.assert_array_equal(act.output_counts, ref.output_counts)
    np.testing.assert_array_equal(act.predictions, ref.predictions)
    np.testing.assert_array_equal(act.predictions_index, ref.predictions_index)
    np.testing.assert_array_equal(act.first_spike_step, ref.first_spike_step)
    return act, ref


def test_several_brian2_runs(monkeypatch):
    # a tiny recording budget: one Brian2 run per batch of 2, time going on from run to run
    monkeypatch.setattr(brian, "RUN_BYTES", 1)
    x = np.random.default_rng(11).random((5, 2, 8, 8)).astype(np.float32)
    for encoding in ("poisson", "analog"):
        assert_same_spikes(conv_network(encoding=encoding, delay=1), x, 20, seed=2, batch_size=2)


def test_float64_arithmetic_where_the_float32_reference_rounds():
    # the documented difference, pinned: a current of float32(0.04) = 0.0399999991 reaches theta = 1
    # after 26 steps in float64 (the graph's real-valued map) but after 25 in the reference's float32
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    net = Network([Population("input", (1,), encoding=InputEncoding("analog")),
                   Population("out", (1,), neuron=NeuronModel("if"))],
                  [Projection("p", "input", "out", [Dense(np.array([[0.04]], np.float32))])], output="out").validate()
    x = np.ones((1, 1), np.float32)
    act = brian.run(net, x, 60, codegen="numpy", record_trains=["out"])
    ref = reference.run(net, x, 60, record_trains=["out"])
    assert np.flatnonzero(act.spike_trains["out"][0, :, 0]).tolist() == [25, 50]
    assert np.flatnonzero(ref.spike_trains["out"][0, :, 0]).tolist() == [24, 49]
    assert any("float64" in note for note in act.notes)
    # the reference's conformance precision computes what Brian2 does
    ref64 = reference.run(net, x, 60, record_trains=["out"], precision="float64")
    assert np.flatnonzero(ref64.spike_trains["out"][0, :, 0]).tolist() == [25, 50]


def test_registry_notes_and_progress():
    class Progress:
        n = 0

        def update(self, k):
            self.n += k

    net = small_network()
    x = np.random.default_rng(8).random((5, 12)).astype(np.float32)
    p = Progress()
    act = get_backend("brian2").run(net, x, 20, codegen="numpy", batch_size=2, progress=p)
    assert p.n == 5
    assert act.neuron_counts == {} and act.spike_trains == {}  # not asked for
    assert act.notes[0].startswith("brian2 (numpy): build ") and "simulate" in act.notes[0]
    assert act.seconds > 0 and act.samples == 5


def test_prefs_and_global_state_are_left_alone():
    import brian2

    prefs = brian2.prefs
    before = (prefs.codegen.target, prefs.core.default_float_dtype)
    prefs.codegen.target = "cython"  # a user's settings: the backend must neither need nor change them
    prefs.core.default_float_dtype = np.float32
    try:
        net = small_network(neuron="lif", syn=0.8)
        x = np.random.default_rng(9).random((4, 12)).astype(np.float32)
        assert_same_spikes(net, x, 30)  # float64 state and numpy code whatever the prefs say
        assert prefs.codegen.target == "cython" and prefs.core.default_float_dtype == np.float32
        assert brian2.defaultclock.dt == 0.1 * brian2.ms  # its own clock of dt_s
        assert_same_spikes(small_network(), x, 30)  # a second network in the same process
    finally:
        prefs.codegen.target, prefs.core.default_float_dtype = before


def test_user_errors_are_one_line():
    net = small_network()
    x = np.zeros((2, 12), np.float32)
    # a fixed-point, recurrent or several-spikes-per-step network: tests/test_conformance.py
    cases = [
        (lambda: brian.run(net, x, 5, codegen="c++"), "unknown codegen"),
        (lambda: brian.run(net, x, 5, batch_size=0), "batch_size"),
        (lambda: brian.run(net, x, 0), "steps"),
        (lambda: brian.run(net, np.zeros((2, 5), np.float32), 5), "do not fit"),
        (lambda: brian.run(net, x, 5, record_trains=["input"]), "record_trains"),
    ]
    for call, words in cases:
        with pytest.raises(SpikeportError, match=words) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(TypeError):
        brian.run(net, x, 5, device="cuda")  # an option of the reference executor only


@pytest.mark.slow
def test_cython_target_spike_for_spike():
    # the first use compiles (about a minute on 2 cores), later runs reuse Brian2's cache
    for net in (conv_network(delay=1), small_network(neuron="lif", refractory=2, syn=0.8)):
        x = np.random.default_rng(10).random((4,) + net.population(net.input).shape).astype(np.float32)
        ref = reference.run(net, x, 30, record_counts=True)
        act = brian.run(net, x, 30, record_counts=True, codegen="cython")
        for name in spiking(net):
            np.testing.assert_array_equal(act.neuron_counts[name], ref.neuron_counts[name])
        np.testing.assert_array_equal(act.predictions, ref.predictions)
