"""The nengo-loihi backend's own behaviour: relays, convolutions (shared weights, pooling folded
in), block shapes and the mapping, the vectorized spike routing, register overflow, user errors.

Against the reference executor on every network case: tests/test_conformance.py (on nengo-loihi's
floating-point model, target "simreal", spike for spike with reset to zero: latency removal,
relays, biases, inputs, v_init, leak, synaptic filter, refractory period, delays; on the chip
emulator, target "sim", within the bar of Loihi's precision; what it refuses).
"""
import dataclasses

import numpy as np
import pytest

from conftest import conv_network, overflow_network, small_network
from spikeport.backends import get_backend, reference
from spikeport.deploy.partition import partition
from spikeport.deploy.targets.loihi import block_shapes as plan_blocks
from spikeport.errors import SpikeportError
from spikeport.hardware_profiles import load as load_profile
from spikeport.ir import (AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel,
                          Population, Projection, SumPool2d)

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


def conv_chain(encoding, rate, size, in_conv, ab_ops, b_shape, out_w):
    """input (1, size, size) -in_conv-> a (4, 8, 8) -ab_ops-> b (b_shape) -dense out_w-> out."""
    nm = NeuronModel("if", threshold=1.0, reset="zero")
    pops = [Population("input", (1, size, size), encoding=InputEncoding(encoding, rate)),
            Population("a", (4, 8, 8), neuron=nm, bias=np.full((4, 8, 8), 0.01, np.float32)),
            Population("b", b_shape, neuron=nm), Population("out", (out_w.shape[0],), neuron=nm)]
    projs = [Projection("in->a", "input", "a", [in_conv]), Projection("a->b", "a", "b", ab_ops),
             Projection("b->out", "b", "out", [Flatten(), Dense(out_w)])]
    return Network(pops, projs, input="input", output="out").validate()


def two_convs(encoding="regular"):
    rng = np.random.default_rng(0)
    return conv_chain(encoding, 300.0, 8, Conv2d(rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32), padding=1),
                      [Conv2d(rng.normal(0.05, 0.4, (3, 4, 3, 3)).astype(np.float32))], (3, 6, 6),
                      rng.normal(0.05, 0.3, (5, 108)).astype(np.float32))


def test_convolution_transform_equals_the_sparse_matrix_and_uses_less_memory():
    net = two_convs()
    x = np.random.default_rng(3).random((3, 1, 8, 8)).astype(np.float32)
    sparse = loihi.run(net, x, 30, conv="sparse")
    shared = loihi.run(net, x, 30)                           # the default
    for name in spiking(net):
        np.testing.assert_array_equal(shared.neuron_counts[name], sparse.neuron_counts[name], err_msg=name)
    m_sparse, m_shared = loihi.mapping(net, conv="sparse"), loihi.mapping(net)
    assert m_shared["conv_transforms"] == ["a->b"] and m_sparse["conv_transforms"] == []
    used = lambda m: m["populations"]["b"]["per_block"][0]["synapses"]["used"]
    assert used(m_shared) < used(m_sparse)


def test_split_populations_keep_their_neurons_in_order():
    net = two_convs()
    x = np.random.default_rng(6).random((2, 1, 8, 8)).astype(np.float32)
    ref = reference.run(net, x, 25, record_trains=spiking(net))
    act = loihi.run(net, x, 25, record_trains=spiking(net), block_size=48, target="simreal")
    assert_same_spikes(act, ref, net)
    assert loihi.mapping(net)["lag_steps"] == {"input": 0, "a": 1, "b": 2, "out": 3}  # one step per connection


def test_mapping_names_every_population_blocks_and_cores():
    net = two_convs()
    m = loihi.mapping(net, block_size=100)
    assert list(m["populations"]) == ["a", "b", "out"]
    a = m["populations"]["a"]
    assert a["block_shape"] == [100] and a["ensemble_shape"] == [256] and m["split"] is None
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
    assert "a 3 blocks of 100 consecutive" in note and "b 2 blocks" in note and "out 1 block of 5" in note


def test_block_shapes_count_the_output_axons_of_the_layer_before():
    # a 1x1 convolution to 5 channels: b needs 5 blocks, and then each of a's neurons an axon
    # into each of them: a's 1024 neurons need 5120 > 4096 output axons on one core
    nm = NeuronModel("if", threshold=1.0, reset="zero")
    pops = [Population("input", (1, 32, 32), encoding=InputEncoding("regular", 200.0)),
            Population("a", (1, 32, 32), neuron=nm), Population("b", (5, 32, 32), neuron=nm)]
    projs = [Projection("in->a", "input", "a", [Conv2d(np.full((1, 1, 1, 1), 1.5, np.float32))]),
             Projection("a->b", "a", "b", [Conv2d(np.linspace(0.3, 1.7, 5).reshape(5, 1, 1, 1).astype(np.float32))])]
    net = Network(pops, projs, input="input", output="b").validate()
    # as a sparse matrix, b in 5 blocks: a's 1024 neurons in 2 blocks of 512 need 2560 output axons each
    m = loihi.mapping(net, conv="sparse", block_shapes={"a": [1, 16, 32], "b": [1, 32, 32]})
    b, a = m["populations"]["b"], m["populations"]["a"]
    assert b["blocks"] == 5 and m["cores"] == 7 and "the shapes given" in m["split"]
    assert [blk["out_axons"]["used"] for blk in a["per_block"]] == [2560, 2560]   # 512 neurons x 5 blocks
    # a convolution's population axons take two slots each: the partitioner gives a 3 blocks, and
    # nengo-loihi builds them within its 4096 output axons, the cores the partitioner counts
    shapes = plan_blocks(net)
    m = loihi.mapping(net, block_shapes=shapes)
    assert m["conv_transforms"] == ["a->b"] and m["populations"]["a"]["blocks"] == 3
    assert max(blk["out_axons"]["used"] for blk in m["populations"]["a"]["per_block"]) <= 4096
    assert m["cores"] == partition(net, load_profile("loihi")).cores == 8
    with pytest.raises(SpikeportError, match="nengo-loihi cannot map this network: .*Output axons"):
        loihi.mapping(net, block_size=1024)


def test_pooling_folds_into_the_next_convolution_exactly():
    rng = np.random.default_rng(0)
    for pool, conv, shape in [(AvgPool2d(2), Conv2d(rng.normal(size=(3, 4, 3, 3))), (4, 12, 10)),
                              (SumPool2d((2, 3)), Conv2d(rng.normal(size=(2, 2, 2, 3)), stride=(2, 1)), (2, 13, 17)),
                              (AvgPool2d(3, stride=2), Conv2d(rng.normal(size=(4, 1, 2, 2)), groups=2), (2, 11, 11))]:
        folded = loihi.fold_pool_into_conv([pool, conv, Flatten()])
        assert [op.kind for op in folded] == ["conv2d", "flatten"]
        x = rng.random((3,) + shape)
        np.testing.assert_allclose(folded[0].apply_numpy(x), conv.apply_numpy(pool.apply_numpy(x)), rtol=1e-12)
    # LeNet's AvgPool2d(2) then a 5x5 convolution: one 10x10 convolution of stride 2, each weight
    # repeated over its 2x2 cell and divided by 4
    w = rng.normal(size=(50, 20, 5, 5)).astype(np.float32)
    (op,) = loihi.fold_pool_into_conv([AvgPool2d(2), Conv2d(w)])
    assert op.kernel_shape() == (10, 10) and op.stride == (2, 2) and op.out_shape((20, 24, 24), "") == (50, 8, 8)
    np.testing.assert_array_equal(op.weight, np.repeat(np.repeat(w, 2, axis=2), 2, axis=3) / 4)
    # nothing to fold: a padded pooling, or a pooling before a dense layer
    for ops in ([AvgPool2d(2, padding=1), Conv2d(w)], [AvgPool2d(2), Flatten(), Dense(np.ones((2, 20)))]):
        assert [op.kind for op in loihi.fold_pool_into_conv(ops)] == [op.kind for op in ops]


def pool_conv(encoding="regular"):
    """input (1, 10, 10) -conv 3x3-> a (4, 8, 8) -[avgpool 2, conv 3x3]-> b (3, 2, 2) -dense-> out (4)."""
    rng = np.random.default_rng(1)
    return conv_chain(encoding, 400.0, 10, Conv2d(rng.normal(0.1, 0.6, (4, 1, 3, 3)).astype(np.float32)),
                      [AvgPool2d(2), Conv2d(rng.normal(0.1, 0.8, (3, 4, 3, 3)).astype(np.float32))], (3, 2, 2),
                      rng.normal(0.2, 0.6, (4, 12)).astype(np.float32))


def test_pooled_convolution_as_one_convolution_is_the_graph_spike_for_spike():
    net = pool_conv()
    x = np.random.default_rng(2).random((3, 1, 10, 10)).astype(np.float32)
    ref = reference.run(net, x, 30, record_trains=spiking(net))
    act = loihi.run(net, x, 30, record_trains=spiking(net), target="simreal")
    assert ref.population_spikes["b"].sum() > 20
    assert_same_spikes(act, ref, net)
    note = next(n for n in act.notes if n.startswith("convolutions:"))
    assert "a->b (avgpool2d+conv2d as one conv2d 6x6 stride 2x2, exact)" in note
    # on the chip's fixed point too, the same spikes as the sparse matrix
    fixed, sparse = loihi.run(net, x, 30), loihi.run(net, x, 30, conv="sparse")
    for name in spiking(net):
        np.testing.assert_array_equal(fixed.neuron_counts[name], sparse.neuron_counts[name], err_msg=name)


@pytest.mark.parametrize("make", [pool_conv, lambda: zero_reset(conv_network(encoding="regular"))],
                         ids=["conv-transform", "relays-input-spikes"])
def test_vectorized_spike_routing_is_the_emulators_own(make, monkeypatch):
    net = make()
    x = np.random.default_rng(4).random((2,) + net.population("input").shape).astype(np.float32)
    fast = loihi.run(net, x, 30, record_trains=spiking(net))
    monkeypatch.setattr(loihi, "FAST_ROUTING", False)       # nengo-loihi's spike-by-spike delivery
    slow = loihi.run(net, x, 30, record_trains=spiking(net))
    for name in spiking(net):
        np.testing.assert_array_equal(fast.spike_trains[name], slow.spike_trains[name], err_msg=name)
    np.testing.assert_array_equal(fast.predictions, slow.predictions)


def test_a_layer_too_wide_for_one_core_is_tiled_by_counting_its_input_axons():
    # LeNet's conv2 in small: [avgpool 2, conv 5x5] from a (12, 24, 24) into b (8, 8, 8). Each of
    # b's neurons reads 12 x 10 x 10 of a's neurons; nengo-loihi's own split (runs of neurons,
    # every run covering whole rows of every channel) needs all 6912 as input axons (> 4096).
    # Counted: tiles of 3 output rows read 14 rows of a, 12 x 14 x 24 = 4032 neurons
    rng = np.random.default_rng(3)
    nm = NeuronModel("if", threshold=1.0, reset="zero")
    pops = [Population("input", (1, 28, 28), encoding=InputEncoding("analog")),
            Population("a", (12, 24, 24), neuron=nm), Population("b", (8, 8, 8), neuron=nm)]
    projs = [Projection("in->a", "input", "a", [Conv2d(rng.normal(size=(12, 1, 5, 5)).astype(np.float32))]),
             Projection("a->b", "a", "b", [AvgPool2d(2), Conv2d(rng.normal(size=(8, 12, 5, 5)).astype(np.float32))])]
    net = Network(pops, projs, input="input", output="b").validate()
    # as a sparse matrix, tiles of 3 output rows of b: 3 blocks; nengo-loihi's own split does not fit
    m = loihi.mapping(net, conv="sparse", block_shapes={"a": [988], "b": [8, 3, 8]})
    b = m["populations"]["b"]
    assert b["blocks"] == 3 and m["populations"]["a"]["blocks"] == 7 and m["cores"] == 10
    assert [blk["in_axons"]["used"] for blk in b["per_block"]] == [4032, 4032, 3456]
    with pytest.raises(SpikeportError, match="nengo-loihi cannot map this network: .*exceeded max"):
        loihi.mapping(net, conv="sparse")
    # as a shared-weight convolution (the partitioner's shapes: a in 8 tiles of its own shape; 7 runs of
    # 988 neurons would do, runs are counted only where given): one input axon per pixel of a, 576;
    # synapse memory sets 2 blocks
    shapes = plan_blocks(net)
    assert shapes == {"a": [3, 12, 24], "b": [4, 8, 8]}
    m = loihi.mapping(net, block_shapes=shapes)
    b = m["populations"]["b"]
    assert b["blocks"] == 2 and m["cores"] == 10 == partition(net, load_profile("loihi")).cores
    assert loihi.mapping(net, block_shapes={"a": [988], "b": [4, 8, 8]})["cores"] == 9
    assert all(blk["in_axons"]["used"] == 576 and blk["synapses"]["used"] <= blk["synapses"]["max"]
               for blk in b["per_block"])


def test_user_errors_are_one_line():
    # a fixed-point, recurrent or unrealizable network (reset_amount, v > theta, several spikes per
    # step): tests/test_conformance.py
    net = small_network()
    x = np.zeros((2, 12), np.float32)
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

# the converted digits network: tests/test_backends.py (analog input, through validate) and
# tests/test_conformance.py (regular and poisson input), on every backend


# ---------------------------------------------------------------------------- overflow

def test_register_overflow_is_named_with_its_layer_and_samples():
    net, x = overflow_network()
    act = loihi.run(net, x, 10)
    note = next(n for n in act.notes if n.startswith("overflow:"))
    assert "(h 21-bit input 20)" in note and "in 2 of 3 samples" in note, note
    quiet = loihi.run(net, x[1:2], 10)
    assert not any(n.startswith("overflow:") for n in quiet.notes)
