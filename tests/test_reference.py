"""The reference executor against a plain step-by-step numpy simulation of the ir semantics."""
import numpy as np
import pytest

from conftest import conv_network, small_network
from spikeport.backends.reference import _uniform_hash, run
from spikeport.ir import Dense, Projection


def numpy_simulation(net, x, steps, seed=0):
    """The equations of spikeport.ir.neurons, one step and one population at a time, in float64."""
    order = net.order()
    batch = len(x)
    out = {p.name: np.zeros((steps, batch, p.size)) for p in net.populations}
    v = {p.name: np.full((batch, p.size), p.neuron.v_init) for p in net.populations if not p.is_input}
    i_syn = {name: np.zeros_like(a) for name, a in v.items()}
    refractory = {name: np.zeros(a.shape, dtype=int) for name, a in v.items()}
    counts = {name: np.zeros((batch,)) for name in out}
    syn = {p.name: np.zeros(batch) for p in net.populations if not p.is_input}
    # the materialized matrix of every projection, for the brute-force synapse count
    mats = {pr.name: pr.apply_numpy(np.eye(net.population(pr.pre).size).reshape((-1,) + net.population(pr.pre).shape))
            .reshape(net.population(pr.pre).size, -1)
            for pr in net.projections}
    xin = x.reshape(batch, -1).astype(np.float64)
    for t in range(steps):
        for pop in order:
            if pop.is_input:
                enc = pop.encoding
                p = np.clip(xin * enc.max_rate_hz * net.dt_s, 0, 1)
                if enc.kind == "analog":
                    out[pop.name][t] = xin
                elif enc.kind == "regular":
                    out[pop.name][t] = np.floor((t + 1) * p + 1e-9) - np.floor(t * p + 1e-9)
                else:
                    u = _uniform_hash(seed, 0, batch, steps, pop.size, "cpu")[t].numpy()
                    out[pop.name][t] = u < p
                continue
            current = np.zeros((batch, pop.size)) + (0 if pop.bias is None else pop.bias.reshape(-1))
            for pr in net.projections_into(pop.name):
                if t - pr.delay_steps >= 0:
                    pre = out[pr.pre][t - pr.delay_steps]
                    current += pr.apply_numpy(pre.reshape((batch,) + net.population(pr.pre).shape)).reshape(batch, -1)
                    # a spike, or a nonzero analog value, is one event per existing synapse
                    syn[pop.name] += (pre != 0) @ np.count_nonzero(mats[pr.name], axis=1)
            nm = pop.neuron
            bias = 0 if pop.bias is None else pop.bias.reshape(-1)
            current = current - bias  # the synaptic part only
            if nm.syn_decay is not None:
                i_syn[pop.name] = nm.syn_decay * i_syn[pop.name] + current
                current = i_syn[pop.name]
            for b in range(batch):
                for j in range(pop.size):
                    if refractory[pop.name][b, j] > 0:
                        refractory[pop.name][b, j] -= 1
                        out[pop.name][t, b, j] = 0
                        continue
                    vj = nm.decay * v[pop.name][b, j] + current[b, j] + (bias[j] if pop.bias is not None else 0)
                    spike = vj >= nm.threshold
                    if spike:
                        vj = vj - nm.threshold if nm.reset == "subtract" else 0.0
                        refractory[pop.name][b, j] = nm.refractory_steps
                    v[pop.name][b, j] = vj
                    out[pop.name][t, b, j] = spike
            s = out[pop.name][t]
    for name in out:
        if not net.population(name).is_input or net.population(name).encoding.kind != "analog":
            counts[name] = out[name].sum(axis=(0, 2))
    oc = out[net.output].sum(axis=0)
    top = oc.max(axis=1, keepdims=True)
    pred = np.where(oc == top, v[net.output], -np.inf).argmax(axis=1)
    return counts, syn, oc, pred


def with_residual(net):
    rng = np.random.default_rng(5)
    net.projections.append(Projection("input->out", "input", "out", [Dense(rng.normal(0, 0.3, (4, 12)).astype(np.float32))],
                                      delay_steps=2))
    return net.validate()


CASES = [
    dict(neuron="if", reset="subtract", encoding="analog"),
    dict(neuron="lif", reset="subtract", encoding="regular", syn=0.8, refractory=2),
    dict(neuron="if", reset="zero", encoding="poisson", refractory=3, delay=1),
    dict(neuron="if", reset="zero", encoding="regular"),
    dict(neuron="lif", reset="subtract", encoding="poisson"),
    dict(neuron="lif", reset="zero", encoding="analog", delay=3),
    dict(neuron="if", reset="subtract", encoding="poisson", delay=1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(str(v) for v in c.values()))
@pytest.mark.parametrize("residual", [False, True])
def test_counts_equal_numpy_simulation(case, residual):
    net = small_network(seed=1, **case)
    if residual:
        net = with_residual(net)
    x = np.random.default_rng(2).random((17, 12)).astype(np.float32)
    x[:, :2] = 0.0  # some silent inputs: they create no synaptic events
    steps = 40
    act = run(net, x, steps, device="cpu", batch_size=5)
    counts, syn, oc, pred = numpy_simulation(net, x, steps)
    for name in ("h", "out"):
        np.testing.assert_array_equal(act.population_spikes[name], counts[name])
        np.testing.assert_array_equal(act.synops[name], syn[name])
    if case["encoding"] != "analog":
        np.testing.assert_array_equal(act.population_spikes["input"], counts["input"])
    np.testing.assert_array_equal(act.output_counts, oc)
    np.testing.assert_array_equal(act.predictions[:, -1], pred)
    assert act.population_spikes["h"].sum() > 0  # the case exercises spiking


def test_poisson_does_not_depend_on_batch_size_and_has_the_asked_rate():
    net = small_network(encoding="poisson")
    x = np.full((6, 12), 0.5, dtype=np.float32)
    a = run(net, x, 200, batch_size=1)
    b = run(net, x, 200, batch_size=6)
    np.testing.assert_array_equal(a.population_spikes["input"], b.population_spikes["input"])
    np.testing.assert_array_equal(a.output_counts, b.output_counts)
    # p = 0.5 * 400 Hz * 1 ms = 0.2 per step: 12 * 200 * 0.2 = 480 expected input spikes per sample
    assert abs(a.population_spikes["input"].mean() - 480) < 4 * np.sqrt(480 * 0.8 / 6)
    c = run(net, x, 200, seed=1)
    assert not np.array_equal(a.population_spikes["input"], c.population_spikes["input"])


def test_checkpoints_match_separate_runs():
    net = small_network(encoding="analog")
    x = np.random.default_rng(3).random((30, 12)).astype(np.float32)
    full = run(net, x, 50, checkpoints=[10, 25])
    for k, t in enumerate([10, 25, 50]):
        np.testing.assert_array_equal(full.predictions[:, k], run(net, x, t).predictions[:, 0])


def test_rates_and_neuron_updates_in_layers():
    net = small_network()
    x = np.random.default_rng(4).random((8, 12)).astype(np.float32)
    act = run(net, x, 100)
    layers = {l["name"]: l for l in act.layers()}
    assert layers["h"]["neuron_updates"] == 9 * 100
    assert layers["h"]["rate_hz"] == pytest.approx(act.population_spikes["h"].mean() / (9 * 0.1))


def test_bad_input_shape_is_a_user_error():
    from spikeport.errors import SpikeportError
    with pytest.raises(SpikeportError, match="do not fit input population 'input'"):
        run(small_network(), np.zeros((3, 13), np.float32), 10)


@pytest.mark.parametrize("encoding, delay", [("regular", 0), ("poisson", 2), ("analog", 1)])
def test_conv_pool_residual_counts_equal_numpy_simulation(encoding, delay):
    net = conv_network(encoding=encoding, delay=delay)
    x = np.random.default_rng(7).random((6, 2, 8, 8)).astype(np.float32)
    act = run(net, x, 30, batch_size=4)
    counts, syn, oc, pred = numpy_simulation(net, x, 30)
    for name in ("c", "out"):
        np.testing.assert_array_equal(act.population_spikes[name], counts[name])
        np.testing.assert_array_equal(act.synops[name], syn[name])
    np.testing.assert_array_equal(act.predictions[:, -1], pred)
    assert act.population_spikes["c"].sum() > 0 and act.population_spikes["out"].sum() > 0
