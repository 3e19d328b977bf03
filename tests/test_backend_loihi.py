"""The nengo-loihi backend against the reference executor.

On nengo-loihi's floating-point model (target "simreal") the lowering must reproduce the
graph spike for spike: that checks latency removal, relays, biases, inputs, v_init, leak,
synaptic filter and refractory period. On the fixed-point emulator (target "sim") the
differences left are Loihi's precision, and a converted digits network must still agree.
"""
import dataclasses

import numpy as np
import pytest

from conftest import conv_network, small_network
from spikeport.backends import common, get_backend, reference
from spikeport.errors import SpikeportError
from spikeport.ir import (Conv2d, Dense, FixedPoint, Flatten, InputEncoding, Network, NeuronModel, Population,
                          Projection)

loihi = pytest.importorskip("spikeport.backends.loihi")


def zero_reset(net):
    for p in net.populations:
        if not p.is_input:
            p.neuron = dataclasses.replace(p.neuron, reset="zero")
    return net.validate()


def spiking(net):
    return [p.name for p in net.populations if not p.is_input]


def assert_same_spikes(act, ref, net):
    for name in spiking(net):
        np.testing.assert_array_equal(act.spike_trains[name], ref.spike_trains[name], err_msg=name)
    np.testing.assert_array_equal(act.predictions, ref.predictions)
    np.testing.assert_array_equal(act.first_spike_step, ref.first_spike_step)
    if not any(proj.delay_steps for proj in net.projections):
        # (common.activity counts the pre spikes of a delayed projection's last steps too)
        for name in ref.synops:
            np.testing.assert_array_equal(act.synops[name], ref.synops[name], err_msg=name)


SMALL = [dict(encoding="analog"), dict(encoding="poisson"), dict(encoding="regular", neuron="lif"),
         dict(encoding="analog", neuron="lif", syn=0.8), dict(encoding="regular", syn=0.7, refractory=2),
         dict(encoding="analog", refractory=3, delay=2), dict(encoding="poisson", neuron="lif", delay=3),
         dict(encoding="analog", syn=0.9, in_delay=2), dict(encoding="regular", in_delay=2, delay=1)]


@pytest.mark.parametrize("kw", SMALL, ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_lowering_is_the_graph_spike_for_spike_without_discretization(kw):
    kw = dict(kw)
    in_delay = kw.pop("in_delay", 0)
    net = small_network(**kw)
    net.projections[0].delay_steps = in_delay            # input -> h
    net = zero_reset(net)
    x = np.random.default_rng(1).random((4, 12)).astype(np.float32)
    names = spiking(net)
    ref = reference.run(net, x, 30, checkpoints=[10, 20], seed=3, record_trains=names)
    act = loihi.run(net, x, 30, checkpoints=[10, 20], seed=3, record_trains=names, target="simreal")
    assert act.backend == "nengo-loihi" and act.checkpoints == [10, 20, 30]
    assert ref.population_spikes["out"].sum() > 20
    assert_same_spikes(act, ref, net)
    assert any(n.startswith("target simreal") for n in act.notes)


@pytest.mark.parametrize("encoding", ["regular", "analog"])
def test_relays_equalize_a_residual_path(encoding):
    # input -> out skips c: on spiking input the direct path is padded by a relay population
    net = zero_reset(conv_network(encoding=encoding))
    x = np.random.default_rng(2).random((3, 2, 8, 8)).astype(np.float32)
    ref = reference.run(net, x, 30, record_trains=["c", "out"])
    act = loihi.run(net, x, 30, record_trains=["c", "out"], target="simreal")
    assert_same_spikes(act, ref, net)
    relays = [n for n in act.notes if n.startswith("delays:")]
    assert bool(relays) == (encoding == "regular")


def test_initial_membrane_is_written_not_left_random():
    net = zero_reset(small_network(encoding="regular"))
    x = np.random.default_rng(4).random((3, 12)).astype(np.float32)
    net.population("h").v_init = np.linspace(-0.5, 0.9, 9).astype(np.float32)
    ref = reference.run(net, x, 20, record_trains=["h", "out"])
    act = loihi.run(net, x, 20, record_trains=["h", "out"], target="simreal")
    assert_same_spikes(act, ref, net)
    # on the chip too: the per-neuron v_init changes first spikes as the graph says
    fixed = loihi.run(net, x, 20, record_trains=["h"])
    first_ref = ref.spike_trains["h"].argmax(axis=1)
    assert (fixed.spike_trains["h"].argmax(axis=1) == first_ref).mean() >= 0.95


@pytest.mark.parametrize("kw", [dict(encoding="analog"), dict(encoding="regular", neuron="lif", syn=0.8),
                                dict(encoding="poisson", refractory=2)], ids=["analog", "lif-syn", "refractory"])
def test_fixed_point_emulator_is_close_and_says_why(kw):
    net = zero_reset(small_network(**kw))
    x = np.random.default_rng(5).random((8, 12)).astype(np.float32)
    ref = reference.run(net, x, 40, record_counts=True)
    act = loihi.run(net, x, 40)
    for name in spiking(net):
        diff = np.abs(act.neuron_counts[name] - ref.neuron_counts[name]).sum()
        assert diff <= 0.02 * ref.neuron_counts[name].sum() + 2, name
    notes = " ".join(act.notes)
    for what in ("nengo-loihi mapping:", "latency:", "threshold:", "precision:", "time: build"):
        assert what in notes
    assert "reset:" not in notes  # reset to zero is Loihi's own


def test_subtractive_reset_is_named_and_changes_counts():
    net = small_network(encoding="analog")            # reset by subtraction, strongly driven
    x = np.random.default_rng(1).random((5, 12)).astype(np.float32)
    ref = reference.run(net, x, 40, record_counts=True)
    act = loihi.run(net, x, 40, target="simreal")
    assert any(n.startswith("reset: Loihi resets the membrane to 0") for n in act.notes)
    assert act.neuron_counts["h"].sum() < ref.neuron_counts["h"].sum()  # overshoots are lost
    same = loihi.run(zero_reset(small_network(encoding="analog")), x, 40, target="simreal")
    np.testing.assert_array_equal(same.neuron_counts["h"], act.neuron_counts["h"])


def two_convs(encoding="regular"):
    rng = np.random.default_rng(0)
    nm = NeuronModel("if", threshold=1.0, reset="zero")
    pops = [Population("input", (1, 8, 8), encoding=InputEncoding(encoding, 300.0)),
            Population("a", (4, 8, 8), neuron=nm, bias=np.full((4, 8, 8), 0.01, np.float32)),
            Population("b", (3, 6, 6), neuron=nm), Population("out", (5,), neuron=nm)]
    projs = [Projection("in->a", "input", "a", [Conv2d(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), padding=1)]),
             Projection("a->b", "a", "b", [Conv2d(rng.normal(0.05, 0.4, (3, 4, 3, 3)).astype(np.float32))]),
             Projection("b->out", "b", "out", [Flatten(), Dense(rng.normal(0.05, 0.3, (5, 108)).astype(np.float32))])]
    return Network(pops, projs, input="input", output="out").validate()


def test_convolution_transform_equals_the_sparse_matrix_and_uses_less_memory():
    net = two_convs()
    x = np.random.default_rng(3).random((3, 1, 8, 8)).astype(np.float32)
    sparse = loihi.run(net, x, 30)
    shared = loihi.run(net, x, 30, conv="transform")
    for name in spiking(net):
        np.testing.assert_array_equal(shared.neuron_counts[name], sparse.neuron_counts[name], err_msg=name)
    m_sparse, m_shared = loihi.mapping(net), loihi.mapping(net, conv="transform")
    assert m_shared["conv_transforms"] == ["a->b"] and m_sparse["conv_transforms"] == []
    used = lambda m: m["populations"]["b"]["per_block"][0]["synapses"]["used"]
    assert used(m_shared) < used(m_sparse)


def test_split_populations_keep_their_neurons_in_order():
    net = two_convs()
    x = np.random.default_rng(6).random((2, 1, 8, 8)).astype(np.float32)
    ref = reference.run(net, x, 25, record_trains=spiking(net))
    act = loihi.run(net, x, 25, record_trains=spiking(net), block_size=48, target="simreal")
    assert_same_spikes(act, ref, net)
    assert common.added_latency(net)[0] == loihi.mapping(net)["lag_steps"]


def test_mapping_names_every_population_blocks_and_cores():
    net = two_convs()
    m = loihi.mapping(net, block_size=100)
    assert list(m["populations"]) == ["a", "b", "out"]
    a = m["populations"]["a"]
    assert a["blocks"] == a["cores"] == 3 and [b["compartments"]["used"] for b in a["per_block"]] == [100, 100, 56]
    assert m["populations"]["b"]["blocks"] == 2 and m["populations"]["out"]["blocks"] == 1
    assert m["cores"] == 6 and len(m["utilization_summary"]) == 7  # a line per block and the average
    assert m["lag_steps"] == {"input": 0, "a": 1, "b": 2, "out": 3}
    assert m["input"]["neurons"] == 64
    for block in a["per_block"]:
        assert 0 < block["synapses"]["used"] <= block["synapses"]["max"]
    x = np.random.default_rng(3).random((2, 1, 8, 8)).astype(np.float32)
    act = loihi.run(net, x, 20, block_size=100)
    note = next(n for n in act.notes if n.startswith("nengo-loihi mapping: 6 cores"))
    assert "a 3 blocks" in note and "b 2 blocks" in note and "out 1 block" in note


def test_when_nengo_loihi_split_fails_smaller_blocks_are_tried():
    # a 1x1 convolution to 5 channels: each of a's 1024 neurons needs an axon into each of
    # b's 5 blocks, 5120 > 4096 out-axons on a's core, which nengo-loihi's own split misses
    nm = NeuronModel("if", threshold=1.0, reset="zero")
    pops = [Population("input", (1, 32, 32), encoding=InputEncoding("regular", 200.0)),
            Population("a", (1, 32, 32), neuron=nm), Population("b", (5, 32, 32), neuron=nm)]
    projs = [Projection("in->a", "input", "a", [Conv2d(np.full((1, 1, 1, 1), 1.5, np.float32))]),
             Projection("a->b", "a", "b", [Conv2d(np.linspace(0.3, 1.7, 5).reshape(5, 1, 1, 1).astype(np.float32))])]
    net = Network(pops, projs, input="input", output="b").validate()
    m = loihi.mapping(net)
    assert "Output axons (5120) exceeded max (4096)" in m["split"] and "512 compartments" in m["split"]
    assert m["populations"]["a"]["blocks"] == 2 and m["populations"]["b"]["blocks"] == 10
    assert max(b["out_axons"]["used"] for b in m["populations"]["a"]["per_block"]) <= 4096
    with pytest.raises(SpikeportError, match="nengo-loihi cannot map this network: .*Output axons"):
        loihi.mapping(net, block_size=1024)


def test_user_errors_are_one_line():
    net = small_network()
    x = np.zeros((2, 12), np.float32)
    fixed = dataclasses.replace(net, fixed_point=FixedPoint())
    with pytest.raises(SpikeportError, match="floating-point networks only"):
        loihi.run(fixed, x, 10)
    rec = small_network(delay=1)
    rec.projections.append(Projection("out->h", "out", "h", [Dense(np.ones((9, 4), np.float32))], delay_steps=1))
    with pytest.raises(SpikeportError, match="feed-forward networks only"):
        loihi.run(rec, x, 10)
    with pytest.raises(SpikeportError, match="conv must be one of"):
        loihi.run(net, x, 10, conv="dense")
    with pytest.raises(SpikeportError, match="no spiking population named 'input'"):
        loihi.run(net, x, 10, record_trains=["input"])
    with pytest.raises(SpikeportError, match="do not fit input population"):
        loihi.run(net, np.zeros((2, 5)), 10)
    with pytest.raises(TypeError):
        loihi.run(net, x, 10, device="cuda")
    assert get_backend("nengo-loihi") is loihi


# ---------------------------------------------------------------------------- a trained network

# the converted digits network's agreement with the reference: tests/test_backends.py (every backend)


def test_converted_digits_network_with_poisson_input(digits_conv_snn):
    net, ds = digits_conv_snn
    net = dataclasses.replace(net, populations=[dataclasses.replace(p, encoding=InputEncoding("poisson", 1000.0))
                                                if p.is_input else p for p in net.populations])
    x = ds.x("test")[:60]
    ref = reference.run(net.validate(), x, 32, seed=7)
    act = loihi.run(net, x, 32, seed=7)
    assert (act.predictions[:, -1] == ref.predictions[:, -1]).mean() >= 0.9
    # the input spikes are the reference's, spike for spike
    np.testing.assert_array_equal(act.population_spikes["input"], ref.population_spikes["input"])
