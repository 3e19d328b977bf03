"""Fixed-point mode: quantization arithmetic, integer semantics, saturation."""
import numpy as np
import pytest

from conftest import conv_network, small_network
from spikeport.backends.reference import run
from spikeport.deploy import quantize
from spikeport.errors import SpikeportError
from spikeport.ir import (Dense, FixedPoint, InputEncoding, Network, NeuronModel, Population, Projection,
                          load_network, save_network)


def one_layer(weight, neuron=None, fixed=None, encoding="regular"):
    w = np.asarray(weight, dtype=np.float32)
    pops = [Population("input", (w.shape[1],), encoding=InputEncoding(encoding, 1000.0)),
            Population("out", (w.shape[0],), neuron=neuron or NeuronModel("if", 1.0, "subtract"))]
    return Network(pops, [Projection("input->out", "input", "out", [Dense(w)])], output="out", fixed_point=fixed)


def test_quantization_arithmetic_by_hand():
    net = one_layer([[0.5, -0.25], [1.0, 0.1]])
    q, rep = quantize(net, FixedPoint(weight_bits=3, state_bits=8))
    # LSB = max |w| / (2**2 - 1) = 1/3; w / LSB = [1.5, -0.75, 3, 0.3] -> [2, -1, 3, 0] (round half to even)
    np.testing.assert_array_equal(q.projections[0].ops[0].weight, [[2, -1], [3, 0]])
    p = rep["projections"][0]
    assert p["lsb"] == pytest.approx(1 / 3)
    assert p["max_abs_error"] == pytest.approx(2 / 3 - 0.5)
    assert p["zeroed_fraction"] == pytest.approx(1 / 4)
    assert rep["populations"][0]["threshold_int"] == 3 and q.population("out").neuron.threshold == 3.0


def test_per_neuron_initial_membrane_is_quantized_like_the_threshold():
    net = one_layer([[0.5, -0.25], [1.0, 0.1]])
    net.population("out").v_init = np.array([0.5, -0.2], np.float32)
    q, _ = quantize(net.validate(), FixedPoint(weight_bits=3, state_bits=8))
    # LSB 1/3: 0.5 / LSB = 1.5 -> 2, -0.2 / LSB = -0.6 -> -1
    np.testing.assert_array_equal(q.population("out").v_init, [2, -1])
    q.validate()


def test_threshold_beyond_state_bits_is_refused():
    net = one_layer([[0.001, 0.0]])
    with pytest.raises(SpikeportError, match="population 'out': threshold 1 is 127000 LSBs, which needs 18 state bits"):
        quantize(net, FixedPoint(weight_bits=8, state_bits=16))


@pytest.mark.parametrize("saturate, expected", [(True, [0, 1, 1, 2, 2, 3, 3, 4]), (False, [0, 0, 0, 0, 0, 0, 0, 0])])
def test_saturation_and_wrap_around(saturate, expected):
    # weight 100 per step, threshold 127, 8-bit state (limit 127):
    # saturating: 100, 200 -> 127 spike -> 0, 100, 127 spike ...; wrapping: 100, 200 -> -56, 44, 144 -> -112, ...
    fp = FixedPoint(weight_bits=8, state_bits=8, saturate=saturate)
    net = one_layer([[100.0]], NeuronModel("if", 127.0, "subtract"), fixed=fp, encoding="analog")
    counts = [int(run(net, np.ones((1, 1), np.float32), t).output_counts[0, 0]) for t in range(1, 9)]
    assert counts == expected


def integer_simulation(net, x, steps):
    """spikeport.ir.arithmetic written out in numpy: two-layer nets with spike (regular) input."""
    fp = net.fixed_point
    limit = 2 ** (fp.state_bits - 1) - 1
    pops = [p for p in net.order() if not p.is_input]
    xin = x.reshape(len(x), -1).astype(np.float64)
    prob = np.clip(xin * net.population("input").encoding.max_rate_hz * net.dt_s, 0, 1)
    state = {p.name: dict(v=np.full((len(x), p.size), p.neuron.v_init), i=np.zeros((len(x), p.size)),
                          left=np.zeros((len(x), p.size), int), n=np.zeros((len(x), p.size))) for p in pops}
    out = {}
    for t in range(steps):
        out["input"] = np.floor((t + 1) * prob + 1e-9) - np.floor(t * prob + 1e-9)
        for p in pops:
            nm, st = p.neuron, state[p.name]
            J = sum(pr.apply_numpy(out[pr.pre]).reshape(len(x), -1) for pr in net.projections_into(p.name))
            J = np.round(J)
            if nm.syn_decay is not None:
                st["i"] = np.clip(np.trunc(st["i"] * fp.decay_int(nm.syn_decay) / 2**fp.decay_bits) + J, -limit, limit)
                J = st["i"]
            b = 0 if p.bias is None else p.bias.reshape(-1)
            new_v = np.clip(np.trunc(st["v"] * fp.decay_int(nm.decay) / 2**fp.decay_bits) + J + b, -limit, limit)
            active = st["left"] == 0
            st["v"] = np.where(active, new_v, st["v"])
            st["left"] = np.where(active, st["left"], st["left"] - 1)
            s = (st["v"] >= nm.threshold) & active
            st["v"] = st["v"] - nm.threshold * s if nm.reset == "subtract" else np.where(s, 0.0, st["v"])
            st["left"] = np.where(s, nm.refractory_steps, st["left"])
            st["n"] += s
            out[p.name] = s.astype(np.float64)
    return {p.name: state[p.name]["n"] for p in pops}


@pytest.mark.parametrize("kw", [dict(), dict(neuron="lif", reset="zero", syn=0.8, refractory=2),
                                dict(neuron="lif", reset="subtract")])
def test_fixed_point_executor_equals_integer_simulation(kw):
    net = small_network(seed=3, encoding="regular", **kw)
    q, _ = quantize(net, FixedPoint(weight_bits=6, state_bits=16, decay_bits=8))
    x = np.random.default_rng(4).random((7, 12)).astype(np.float32)
    act = run(q, x, 60, chunk_steps=9, record_counts=True)
    expected = integer_simulation(q, x, 60)
    for name, counts in expected.items():
        np.testing.assert_array_equal(act.neuron_counts[name], counts)
    assert act.population_spikes["h"].sum() > 0


def test_high_precision_agrees_with_float_and_round_trips(tmp_path):
    net = conv_network(encoding="analog")
    q, rep = quantize(net, FixedPoint(weight_bits=24, state_bits=40, decay_bits=12))
    assert {p["name"] for p in rep["projections"]} == {"input->c", "c->out", "input->out"}
    assert max(p["max_abs_error"] for p in rep["projections"]) < 1e-5
    assert [op.kind for op in q.projections[1].ops][0] == "sumpool2d"  # the average's 1/4 went into the weights
    x = np.random.default_rng(5).random((40, 2, 8, 8)).astype(np.float32)
    a, b = run(net, x, 40), run(q, x, 40)
    assert (a.predictions == b.predictions).mean() >= 0.95
    assert abs(int(a.population_spikes["c"].sum()) - int(b.population_spikes["c"].sum())) <= 0.01 * a.population_spikes["c"].sum()
    save_network(q, tmp_path / "q.spk")
    back = load_network(tmp_path / "q.spk")
    assert back.fixed_point == q.fixed_point
    np.testing.assert_array_equal(run(back, x, 40).predictions, b.predictions)


def test_a_non_integer_weight_is_refused_in_a_fixed_point_network():
    with pytest.raises(SpikeportError, match="projection 'input->out': weights must be integers"):
        one_layer([[0.5]], fixed=FixedPoint()).validate()
