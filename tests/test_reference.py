"""The reference executor against a plain step-by-step numpy simulation of the ir semantics."""
import numpy as np
import pytest

from conftest import conv_network, small_network
from spikeport.backends import reference
from spikeport.backends.reference import run
from spikeport.ir.kernels import TORCH_OPS, uniforms
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
                    u = uniforms(seed, 0, batch, t, t + 1, pop.size)[0].numpy()
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
@pytest.mark.parametrize("residual, chunk, tile", [(False, None, None), (True, None, None), (True, 1, None),
                                                   (True, 7, None), (True, 6, 16)])
def test_counts_equal_numpy_simulation(case, residual, chunk, tile, monkeypatch):
    if tile:  # the cache-tiled update (wide populations) on a small network
        monkeypatch.setattr(reference, "TILE", tile)
    net = small_network(seed=1, **case)
    if residual:
        net = with_residual(net)
    x = np.random.default_rng(2).random((17, 12)).astype(np.float32)
    x[:, :2] = 0.0  # some silent inputs: they create no synaptic events
    steps = 40
    act = run(net, x, steps, device="cpu", batch_size=5, chunk_steps=chunk)
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


@pytest.mark.parametrize("encoding, delay, chunk", [("regular", 0, None), ("poisson", 2, 3), ("analog", 1, 4),
                                                    ("analog", 5, 2)])
def test_conv_pool_residual_counts_equal_numpy_simulation(encoding, delay, chunk, monkeypatch):
    monkeypatch.setattr(reference, "TILE", 32)  # 4 x 64 membranes of population c: tiled in pieces
    net = conv_network(encoding=encoding, delay=delay)
    x = np.random.default_rng(7).random((6, 2, 8, 8)).astype(np.float32)
    act = run(net, x, 30, batch_size=4, chunk_steps=chunk)
    counts, syn, oc, pred = numpy_simulation(net, x, 30)
    for name in ("c", "out"):
        np.testing.assert_array_equal(act.population_spikes[name], counts[name])
        np.testing.assert_array_equal(act.synops[name], syn[name])
    np.testing.assert_array_equal(act.predictions[:, -1], pred)
    assert act.population_spikes["c"].sum() > 0 and act.population_spikes["out"].sum() > 0


def test_every_step_readout_and_first_spike_latency():
    net = small_network(encoding="regular")
    x = np.random.default_rng(8).random((10, 12)).astype(np.float32)
    act = run(net, x, 40, checkpoints="all", chunk_steps=6)
    assert act.checkpoints == list(range(1, 41)) and act.predictions.shape == (10, 40)
    for t in (1, 13, 40):
        np.testing.assert_array_equal(act.predictions[:, t - 1], run(net, x, t).predictions[:, -1])
    # the first output spike: the first step at which the cumulative output count is nonzero
    for s in range(10):
        counts = [run(net, x[s:s + 1], t).output_counts.sum() for t in range(1, 41)]
        expected = next((t - 1 for t, c in enumerate(counts, start=1) if c > 0), -1)
        assert act.first_spike_step[s] == expected


def test_recorded_counts_and_trains_agree_with_totals():
    net = conv_network(encoding="poisson", delay=1)
    x = np.random.default_rng(9).random((5, 2, 8, 8)).astype(np.float32)
    act = run(net, x, 24, chunk_steps=5, record_counts=True, record_trains=["c"])
    assert act.neuron_counts["c"].shape == (5, 4, 4, 4) and act.spike_trains["c"].shape == (5, 24, 4, 4, 4)
    np.testing.assert_array_equal(act.spike_trains["c"].sum(axis=1), act.neuron_counts["c"])
    np.testing.assert_array_equal(act.neuron_counts["c"].reshape(5, -1).sum(1), act.population_spikes["c"])
    np.testing.assert_array_equal(act.neuron_counts["out"], act.output_counts)
    assert "out" not in act.spike_trains


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("encoding", ["analog", "poisson"])
def test_cuda_counts_equal_cpu(encoding):
    net = conv_network(encoding=encoding)
    x = np.random.default_rng(10).random((64, 2, 8, 8)).astype(np.float32)
    cpu, gpu = run(net, x, 50, device="cpu"), run(net, x, 50, device="cuda")
    for name in cpu.population_spikes:
        np.testing.assert_array_equal(cpu.population_spikes[name], gpu.population_spikes[name])
    np.testing.assert_array_equal(cpu.predictions, gpu.predictions)


def test_memory_stays_bounded_over_long_runs(tmp_path):
    """1,000 samples x T = 256 of a 784-500-500-10 net: all spike trains would take 1.8 GB as float32."""
    import subprocess
    import sys
    code = """
import resource, numpy as np
from spikeport.ir import Dense, Flatten, InputEncoding, Network, NeuronModel, Population, Projection
from spikeport.backends.reference import run
rng = np.random.default_rng(0)
sizes = [784, 500, 500, 10]
nm = NeuronModel("if", 1.0, "subtract")
pops = [Population("input", (784,), encoding=InputEncoding("poisson", 500.0))]
pops += [Population(f"l{i}", (n,), neuron=nm) for i, n in enumerate(sizes[1:])]
projs = [Projection(f"p{i}", pops[i].name, pops[i + 1].name,
                    [Dense(rng.normal(0, 2 / np.sqrt(a), (b, a)).astype(np.float32))]) for i, (a, b) in
         enumerate(zip(sizes, sizes[1:]))]
net = Network(pops, projs, output="l2").validate()
x = rng.random((1000, 784)).astype(np.float32)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
act = run(net, x, 256)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((after - before) // 1024, int(act.population_spikes["l0"].mean()))
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    grown_mb, spikes = map(int, r.stdout.split())
    assert spikes > 1000  # the network is active
    assert grown_mb < 400, f"peak memory grew by {grown_mb} MB"


def test_per_neuron_initial_membrane():
    # drive 0.2 per step for 4 steps, v(0) = 0, 0.1125, ..., 0.9 per neuron (IF, reset by subtraction):
    # v(0) + 0.8 reaches the threshold 1 from v(0) = 0.225 on: counts 0, 0, 1, ..., 1
    net = small_network(bias=False)
    h = net.population("h")
    net.projections[0] = Projection("input->h", "input", "h", [Dense(np.full((9, 12), 0.2 / 12, np.float32))])
    h.v_init = np.linspace(0.0, 0.9, 9).astype(np.float32)
    act = run(net.validate(), np.ones((1, 12), np.float32), 4, record_counts=True)
    np.testing.assert_array_equal(act.neuron_counts["h"][0], [0, 0, 1, 1, 1, 1, 1, 1, 1])


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, None, 0), (2, 1, 0), (2, None, 1)])
def test_pooling_is_bit_identical_to_torch(kernel, stride, padding):
    """The strided-addition pooling adds in torch's order: the same floats, not just close ones."""
    import torch
    from spikeport.ir import AvgPool2d, SumPool2d
    x = torch.from_numpy(np.random.default_rng(3).random((5, 3, 13, 11)).astype(np.float32))
    ref = torch.nn.functional.avg_pool2d
    s = stride or kernel
    got = TORCH_OPS["avgpool2d"](AvgPool2d(kernel, stride, padding), x, None)
    assert torch.equal(got, ref(x, kernel, s, padding, count_include_pad=True))
    got = TORCH_OPS["sumpool2d"](SumPool2d(kernel, stride, padding), x, None)
    assert torch.equal(got, ref(x, kernel, s, padding, count_include_pad=True, divisor_override=1))
    assert not torch.equal(got, ref(x, kernel, s, padding, count_include_pad=True))  # the two differ


def test_float64_precision_runs_the_same_trains_in_double_precision():
    # Poisson and regular trains do not depend on the precision; a float32(0.04) current reaches
    # theta = 1 a step later in float64 (the double-precision simulators' arithmetic)
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    for encoding in ("poisson", "regular"):
        net = small_network(encoding=encoding)
        x = np.random.default_rng(0).random((4, 12)).astype(np.float32)
        a = reference.run(net, x, 30, seed=3, record_trains=["h"])
        b = reference.run(net, x, 30, seed=3, record_trains=["h"], precision="float64")
        assert a.population_spikes["input"].sum() > 0
        np.testing.assert_array_equal(a.population_spikes["input"], b.population_spikes["input"])
    net = Network([Population("input", (1,), encoding=InputEncoding("analog")),
                   Population("out", (1,), neuron=NeuronModel("if"))],
                  [Projection("p", "input", "out", [Dense(np.array([[0.04]], np.float32))])], output="out").validate()
    x = np.ones((1, 1), np.float32)
    single = reference.run(net, x, 30, record_trains=["out"]).spike_trains["out"][0, :, 0]
    double = reference.run(net, x, 30, record_trains=["out"], precision="float64").spike_trains["out"][0, :, 0]
    assert np.flatnonzero(single).tolist() == [24] and np.flatnonzero(double).tolist() == [25]
    from spikeport.errors import SpikeportError
    with pytest.raises(SpikeportError, match="precision"):
        reference.run(net, x, 5, precision="half")
