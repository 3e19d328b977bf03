"""NIR import and export (spikeport.ir.nir) with the real nir package (1.0.8)."""
import dataclasses
import json
import subprocess
import sys
import warnings

import h5py
import nir
import numpy as np
import pytest

from conftest import ROOT, conv_network, run_cli, small_network
from test_reference import numpy_simulation
from spikeport.backends.reference import run
from spikeport.errors import FileFormatError, GraphError, SpikeportError
from spikeport.ir import (AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population,
                          Projection, SumPool2d, load_network, save_network)
from spikeport.ir.nir import NIRWarning, export_nir, import_nir

DT = 1e-3


# ----------------------------------------------------------------------------- helpers

def same_array(a, b, what):
    assert (a is None) == (b is None), what
    if a is not None:
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), f"{what}: values differ"


def assert_same_network(a: Network, b: Network):
    assert (a.dt_s, a.input, a.output, a.readout) == (b.dt_s, b.input, b.output, b.readout)
    assert a.metadata == b.metadata
    assert [p.name for p in a.populations] == [p.name for p in b.populations]
    for p, q in zip(a.populations, b.populations):
        assert p.shape == q.shape and p.encoding == q.encoding, p.name
        assert p.neuron == q.neuron, p.name
        if p.neuron is not None:  # the same values and the same Python types, field by field
            for f in dataclasses.fields(NeuronModel):
                x, y = getattr(p.neuron, f.name), getattr(q.neuron, f.name)
                assert type(x) is type(y) and (x == y or x is y), (p.name, f.name, x, y)
        same_array(p.bias, q.bias, f"bias of {p.name}")
        same_array(p.v_init, q.v_init, f"v_init of {p.name}")
    assert [p.name for p in a.projections] == [p.name for p in b.projections]
    for p, q in zip(a.projections, b.projections):
        assert (p.pre, p.post, p.delay_steps) == (q.pre, q.post, q.delay_steps), p.name
        assert [type(o) for o in p.ops] == [type(o) for o in q.ops], p.name
        for k, (o, r) in enumerate(zip(p.ops, q.ops)):
            assert o.params() == r.params(), (p.name, k)
            assert o.arrays().keys() == r.arrays().keys()
            for key in o.arrays():
                same_array(o.arrays()[key], r.arrays()[key], f"{p.name} op {k} {key}")


def odd_network():
    """Grouped, dilated, asymmetrically padded conv; padded avgpool; strided sumpool; a 1-D flatten;
    LIF with decay 0 and syn_decay 0; a population without inputs; names NIR files dislike."""
    rng = np.random.default_rng(11)
    lif0 = NeuronModel("lif", threshold=0.7, reset="zero", decay=0.0, syn_decay=0.0, refractory_steps=1, v_init=-0.2)
    lif = NeuronModel("lif", threshold=1.3, reset="subtract", decay=0.5)
    pops = [Population("in/put", (4, 9, 9), encoding=InputEncoding("poisson", 321.0)),
            Population("c", (6, 5, 5), neuron=NeuronModel("if", threshold=0.5, reset="zero"),
                       bias=np.zeros((6, 5, 5), np.float32)),
            Population("output", (7,), neuron=lif, bias=rng.normal(0, 0.1, 7)),
            Population("tonic", (3,), neuron=lif0, bias=np.array([0.3, 0.9, 1.5], np.float32)),
            Population("fin", (2,), neuron=NeuronModel("if", threshold=2.0))]
    projs = [Projection("in/put->c", "in/put", "c",
                        [Conv2d(rng.normal(0, 0.3, (6, 2, 3, 2)), stride=(2, 2), padding=(1, 2), dilation=(1, 3),
                                groups=2)]),
             Projection("c->output", "c", "output",
                        [AvgPool2d(3, stride=2, padding=1), Flatten(), Dense(rng.normal(0, 1, (7, 54)).astype(np.float32))],
                        delay_steps=3),
             Projection("in/put->output", "in/put", "output",
                        [SumPool2d((3, 2), stride=(3, 3)), Flatten(), Dense(rng.normal(0, 0.05, (7, 36)))]),
             Projection("tonic->output", "tonic", "output", [Flatten(), Dense(rng.normal(0, 1, (7, 3)))]),
             Projection("output->fin", "output", "fin", [Dense(np.ones((2, 7), np.float16))])]
    return Network(pops, projs, dt_s=5e-4, input="in/put", output="output",
                   metadata={"dataset": "none", "nested": {"a": [1, 2.5, None]}}).validate()


def with_bias(net, pop, bias):
    net.population(pop).bias = bias
    return net.validate()


def with_v_init(net, pop, v_init):
    net.population(pop).v_init = v_init
    return net.validate()


ROUND_TRIP = {
    "if-subtract-bias": lambda: small_network(),
    "cubalif-refractory-regular": lambda: small_network(neuron="lif", syn=0.8, refractory=2, encoding="regular"),
    "lif-zero-delay-poisson": lambda: small_network(neuron="lif", reset="zero", encoding="poisson", delay=2),
    "if-zero-refractory-nobias": lambda: small_network(reset="zero", refractory=3, delay=1, bias=False),
    "conv-pool-residual": lambda: conv_network(),
    "conv-delay-spatial-bias": lambda: with_bias(conv_network(delay=1, encoding="analog"), "c",
                                                 np.random.default_rng(3).normal(0, 0.1, (4, 4, 4))),
    "odd": odd_network,
    "per-neuron-v_init": lambda: with_v_init(conv_network(encoding="analog"), "c",
                                             np.random.default_rng(4).normal(0.5, 0.2, (4, 4, 4)).astype(np.float32)),
}


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRWarning)
        return fn(*args, **kwargs)


# ----------------------------------------------------------------------------- 1. ir -> NIR -> ir

@pytest.mark.parametrize("case", list(ROUND_TRIP))
def test_round_trip_is_exact(case, tmp_path):
    net = ROUND_TRIP[case]()
    path = tmp_path / "net.nir"
    graph = quiet(export_nir, net, path)
    assert isinstance(graph, nir.NIRGraph) and path.is_file()
    assert_same_network(net, quiet(import_nir, graph, net.dt_s))
    assert_same_network(net, quiet(import_nir, path, net.dt_s))
    # and the .spk of the imported network is byte-for-byte the .spk of the original
    save_network(net, tmp_path / "a.spk")
    save_network(quiet(import_nir, path, net.dt_s), tmp_path / "b.spk")
    assert (tmp_path / "a.spk").read_bytes() == (tmp_path / "b.spk").read_bytes()


@pytest.mark.parametrize("case", ["if-subtract-bias", "cubalif-refractory-regular", "conv-pool-residual"])
def test_exported_files_pass_nirs_own_type_checks(case, tmp_path):
    net = ROUND_TRIP[case]()
    graph = quiet(export_nir, net, tmp_path / "net.nir")
    graph.check_types()
    nir.read(tmp_path / "net.nir").check_types()  # the standard reader, with type inference


def test_export_warns_what_is_only_metadata():
    net = small_network(neuron="lif", syn=0.8, refractory=2, encoding="regular", delay=1)
    with pytest.warns(NIRWarning) as rec:
        graph = export_nir(net)
    msg = " ".join(str(w.message) for w in rec)
    for word in ("dt_s = 0.001", "reset by subtraction", "refractory_steps", "v_init", "delay_steps", "regular"):
        assert word in msg, word
    meta = json.loads(graph.nodes["h"].metadata["spikeport"])
    assert meta["neuron"]["reset"] == "subtract" and meta["neuron"]["refractory_steps"] == 2
    with pytest.warns(NIRWarning, match="read from spikeport metadata"):
        import_nir(graph, DT)


def test_exported_parameters_are_the_forward_euler_view():
    """What other NIR readers see: r, tau chosen so that forward-Euler steps of dt give the per-step map."""
    net = small_network(neuron="lif", syn=0.8)
    graph = quiet(export_nir, net)
    h = graph.nodes["h"]
    assert isinstance(h, nir.CubaLIF)
    np.testing.assert_allclose(1 - DT / h.tau_mem, 0.95, rtol=1e-12)
    np.testing.assert_allclose(1 - DT / h.tau_syn, 0.8, rtol=1e-12)
    np.testing.assert_allclose(DT / h.tau_mem * h.r * DT / h.tau_syn * h.w_in, 1.0, rtol=1e-12)
    np.testing.assert_allclose(DT / h.tau_mem * h.v_leak, net.population("h").bias, rtol=1e-12)
    assert np.all(h.v_threshold < 1.0) and np.all(np.nextafter(h.v_threshold, np.inf) == 1.0)
    i = quiet(export_nir, small_network()).nodes
    assert isinstance(i["h"], nir.IF) and np.all(i["h"].r * DT == 1.0) and isinstance(i["input->h.0"], nir.Affine)


@pytest.mark.parametrize("neuron", ["if", "lif"])
def test_exported_file_without_metadata_means_the_same(neuron, tmp_path):
    """For a network NIR can express fully (reset to zero, no v_init, refractory or delay), the NIR
    parameters alone give the same spikes: strip every spikeport metadata and import as plain NIR."""
    net = small_network(neuron=neuron, reset="zero")
    for p in net.populations[1:]:
        p.neuron = dataclasses.replace(p.neuron, v_init=0.0)
    graph = quiet(export_nir, net)
    for node in graph.nodes.values():
        node.metadata = {}
    graph.metadata = {}
    with pytest.warns(NIRWarning, match="forward Euler"):
        plain = import_nir(graph, DT)
    for p, q in zip(net.populations[1:], plain.populations[1:]):
        assert q.neuron.threshold == p.neuron.threshold and q.neuron.reset == "zero"
        assert abs(q.neuron.decay - p.neuron.decay) < 1e-12
        np.testing.assert_allclose(q.bias if q.bias is not None else 0, p.bias if p.bias is not None else 0, rtol=1e-12)
    x = np.random.default_rng(0).random((20, 12)).astype(np.float32)
    a, b = run(net, x, 60), run(plain, x, 60)
    for name in ("h", "out"):
        np.testing.assert_array_equal(a.population_spikes[name], b.population_spikes[name])
    assert a.population_spikes["h"].sum() > 0


# ----------------------------------------------------------------------------- 2. NIR written by nir itself

def nir_simulation(layers, x, steps, dt):
    """NIR's equations stepped by forward Euler with dt, float64, written from nir/ir/neuron.py:
    IF dv/dt = R I; LIF tau dv/dt = (v_leak - v) + R I; CubaLIF tau_syn dI/dt = -I + w_in S,
    tau_mem dv/dt = (v_leak - v) + R I (with the updated I); z = v > v_threshold; v = v_reset where z.
    Every layer is an Affine (W, b) into a neuron node; edges deliver within the step; state starts at 0."""
    batch = len(x)
    v = [np.zeros((batch, len(L["v_threshold"]))) for L in layers]
    cur = [np.zeros_like(a) for a in v]
    counts = [np.zeros((batch, len(L["v_threshold"])), dtype=np.int64) for L in layers]
    for _ in range(steps):
        s = x.astype(np.float64)
        for k, L in enumerate(layers):
            inp = s @ L["W"].astype(np.float64).T + L["b"]
            if L["type"] == "IF":
                v[k] = v[k] + dt * L["r"] * inp
            elif L["type"] == "LIF":
                v[k] = v[k] + dt / L["tau"] * (L["v_leak"] - v[k] + L["r"] * inp)
            else:
                cur[k] = cur[k] + dt / L["tau_syn"] * (L["w_in"] * inp - cur[k])
                v[k] = v[k] + dt / L["tau_mem"] * (L["v_leak"] - v[k] + L["r"] * cur[k])
            z = v[k] > L["v_threshold"]
            v[k] = np.where(z, L["v_reset"], v[k])
            counts[k] += z
            s = z.astype(np.float64)
    return counts


def nir_graph(layers, n_in):
    nodes, edges, prev = {"in": nir.Input(input_type={"input": np.array([n_in])})}, [], "in"
    for k, L in enumerate(layers):
        fields = {f: L[f] for f in ("r", "v_threshold", "v_reset", "tau", "v_leak", "tau_mem", "tau_syn", "w_in")
                  if f in L}
        nodes[f"fc{k}"] = nir.Affine(weight=L["W"], bias=L["b"])
        nodes[f"n{k}"] = getattr(nir, L["type"])(**fields)
        edges += [(prev, f"fc{k}"), (f"fc{k}", f"n{k}")]
        prev = f"n{k}"
    nodes["out"] = nir.Output(output_type={"output": np.array([len(layers[-1]["v_threshold"])])})
    edges.append((prev, "out"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def if_layer(rng, n_out, n_in, r, thr, v_reset=0.0, w=0.5):
    full = lambda v: np.broadcast_to(np.asarray(v, np.float64), (n_out,)).copy()  # noqa: E731
    return {"type": "IF", "W": rng.normal(0, w, (n_out, n_in)).astype(np.float32),
            "b": rng.normal(0.05, 0.05, n_out).astype(np.float32), "r": full(r), "v_threshold": full(thr),
            "v_reset": full(v_reset)}


def two_if_layers(variant):
    rng = np.random.default_rng(21)
    if variant == "uniform":  # r = 1/dt: the NIR numbers are spikeport's per step
        return [if_layer(rng, 9, 12, 1000.0, 1.0), if_layer(rng, 5, 9, 1000.0, 1.0, w=0.7)]
    # gain 0.7 and threshold 0.9 (s = gain); then per-neuron r, thresholds and a negative v_reset (folded)
    thr = rng.uniform(0.6, 1.4, 5)
    return [if_layer(rng, 9, 12, 700.0, 0.9),
            if_layer(rng, 5, 9, rng.uniform(600, 1400, 5), thr, v_reset=-0.25 * thr, w=0.7)]


@pytest.mark.parametrize("variant", ["uniform", "per-neuron"])
def test_nir_if_file_matches_numpy_simulation_of_nir(variant, tmp_path):
    layers = two_if_layers(variant)
    path = tmp_path / "two_if.nir"
    nir.write(path, nir_graph(layers, 12))
    with pytest.warns(NIRWarning, match="forward Euler") as rec:
        net = import_nir(path, dt_s=DT)
    if variant == "per-neuron":
        assert "folded" in str(rec[0].message) and net.population("n1").neuron.threshold > 1.0
        assert net.population("n1").neuron.v_init != 0  # v_reset = -0.25 thr: spikeport's v starts above 0
    assert [p.name for p in net.populations] == ["in", "n0", "n1"] and net.output == "n1"
    x = np.random.default_rng(5).random((16, 12)).astype(np.float32)
    steps = 50
    want = nir_simulation(layers, x, steps, DT)
    act = run(net, x, steps, device="cpu")
    np.testing.assert_array_equal(act.population_spikes["n0"], want[0].sum(axis=1))
    np.testing.assert_array_equal(act.population_spikes["n1"], want[1].sum(axis=1))
    np.testing.assert_array_equal(act.output_counts, want[1])
    assert 0 < want[0].mean() < steps / 2 and want[1].sum() > 0  # the case spikes, and not at every step


def leaky_layers(kind):
    rng = np.random.default_rng(8)
    n = (9, 5)
    layers = []
    for k, (n_out, n_in) in enumerate([(n[0], 12), (n[1], n[0])]):
        L = {"type": kind, "W": rng.normal(0, 0.8, (n_out, n_in)), "v_threshold": np.full(n_out, 0.8),
             "v_reset": np.full(n_out, -0.1), "v_leak": rng.normal(0.2, 0.1, n_out), "r": np.full(n_out, 3.0)}
        if kind == "LIF":
            L.update(tau=np.full(n_out, 0.004), b=rng.normal(0, 0.2, n_out))
        else:  # a CubaLIF's Affine carries no bias (it would be filtered): v_leak is its constant input
            L.update(tau_mem=np.full(n_out, 0.005), tau_syn=np.full(n_out, 0.002), w_in=np.full(n_out, 1.5),
                     b=np.zeros(n_out))
        layers.append(L)
    return layers


@pytest.mark.parametrize("kind", ["LIF", "CubaLIF"])
def test_nir_leaky_file_with_v_leak_and_v_reset_matches_numpy(kind, tmp_path):
    layers = leaky_layers(kind)
    path = tmp_path / "leaky.nir"
    nir.write(path, nir_graph(layers, 12))
    net = quiet(import_nir, path, DT)
    nm = net.population("n0").neuron
    tau = layers[0]["tau"][0] if kind == "LIF" else layers[0]["tau_mem"][0]
    assert nm.model == "lif" and nm.decay == 1 - DT / tau and nm.reset == "zero"
    assert (nm.syn_decay is None) == (kind == "LIF")
    x = np.random.default_rng(6).random((12, 12)).astype(np.float32)
    want = nir_simulation(layers, x, 80, DT)
    counts, _, oc, _ = numpy_simulation(net, x, 80)  # spikeport's own float64 semantics
    act = run(net, x, 80, device="cpu")
    for k in (0, 1):
        np.testing.assert_array_equal(counts[f"n{k}"], want[k].sum(axis=1))
        np.testing.assert_array_equal(act.population_spikes[f"n{k}"], want[k].sum(axis=1))
    assert want[0].sum() > 0 and want[1].sum() > 0


def test_exponential_discretization_from_node_metadata():
    """Node metadata may ask for exp(-dt/tau) instead of forward Euler; the warning says which node got which."""
    tau, r = 0.004, 2.0
    neu = lif(tau=np.full(4, tau), r=np.full(4, r), v_leak=np.full(4, 0.3),
              metadata={"spikeport": json.dumps({"discretization": "exponential"})})
    with pytest.warns(NIRWarning, match=r"1 - exp\(-dt/tau\) \(from node metadata\) for 'neu'"):
        net = import_nir(graph_with(neuron=neu), DT)
    nm, k = net.population("neu").neuron, -np.expm1(-DT / tau)
    assert nm.decay == np.exp(-DT / tau) and nm.threshold == np.nextafter(1.0 / (k * r), np.inf)
    np.testing.assert_allclose(net.population("neu").bias, k * 0.3 / (k * r), rtol=1e-15)
    euler = quiet(import_nir, graph_with(neuron=lif(tau=np.full(4, tau), r=np.full(4, r))), DT)
    assert euler.population("neu").neuron.decay == 1 - DT / tau


def test_foreign_conv_scale_pool_graph(tmp_path):
    """Conv2d with 'same' padding, Scale folded into the op before it, a residual pooled path with a bias."""
    rng = np.random.default_rng(4)
    kernel, w1, w2 = rng.normal(0, 0.5, (4, 2, 3, 3)), rng.normal(0, 0.6, (5, 144)), rng.normal(0, 0.3, (5, 18))
    ch_scale, out_scale, b2 = rng.uniform(0.5, 2, 4), rng.uniform(0.5, 2, 5), rng.normal(0, 0.1, 5)
    nodes = {"in": nir.Input(input_type={"input": np.array([2, 6, 6])}),
             "conv": nir.Conv2d(input_shape=(6, 6), weight=kernel, stride=1, padding="same", dilation=1, groups=1,
                                bias=np.zeros(4)),
             "sc": nir.Scale(scale=np.broadcast_to(ch_scale.reshape(4, 1, 1), (4, 6, 6)).copy()),
             "c": nir.IF(r=np.full((4, 6, 6), 1000.0), v_threshold=np.ones((4, 6, 6))),
             "fl": nir.Flatten(input_type={"input": np.array([4, 6, 6])}, start_dim=0),
             "lin": nir.Linear(weight=w1), "sc1": nir.Scale(scale=out_scale),
             "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
             "fl2": nir.Flatten(input_type={"input": np.array([2, 3, 3])}, start_dim=0),
             "aff": nir.Affine(weight=w2, bias=b2),
             "o": nir.IF(r=np.full(5, 1000.0), v_threshold=np.ones(5)),
             "out": nir.Output(output_type={"output": np.array([5])})}
    edges = [("in", "conv"), ("conv", "sc"), ("sc", "c"), ("c", "fl"), ("fl", "lin"), ("lin", "sc1"), ("sc1", "o"),
             ("in", "pool"), ("pool", "fl2"), ("fl2", "aff"), ("aff", "o"), ("o", "out")]
    nir.write(tmp_path / "g.nir", nir.NIRGraph(nodes=nodes, edges=edges, type_check=False))
    net = quiet(import_nir, tmp_path / "g.nir", DT)
    ops = {p.name: p.ops for p in net.projections}
    assert set(ops) == {"in->c", "c->o", "in->o"}
    (conv,), (fl, dense), (pool, fl2, aff) = ops["in->c"], ops["c->o"], ops["in->o"]
    assert isinstance(fl2, Flatten)
    assert conv.padding == (1, 1) and np.array_equal(conv.weight, kernel * ch_scale.reshape(4, 1, 1, 1))
    assert isinstance(fl, Flatten) and np.array_equal(dense.weight, w1 * out_scale.reshape(5, 1))
    assert isinstance(pool, SumPool2d) and pool.kernel_size == (2, 2) and np.array_equal(aff.weight, w2)
    assert np.array_equal(net.population("o").bias, b2) and net.population("c").bias is None
    x = rng.random((6, 2, 6, 6)).astype(np.float32)
    act = run(net, x, 30, device="cpu")
    counts = numpy_simulation(net, x, 30)[0]
    assert act.population_spikes["c"].sum() > 0 and act.population_spikes["o"].sum() > 0
    np.testing.assert_array_equal(act.population_spikes["o"], counts["o"])


def test_strict_threshold_is_kept_in_float64():
    """NIR fires on v > v_threshold: with w = 0.5, v reaches 1.0 exactly and must not fire there."""
    graph = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([1])}),
                                "w": nir.Linear(weight=np.array([[0.5]])),
                                "n": nir.IF(r=np.array([1000.0]), v_threshold=np.array([1.0])),
                                "out": nir.Output(output_type={"output": np.array([1])})},
                         edges=[("in", "w"), ("w", "n"), ("n", "out")])
    net = quiet(import_nir, graph, DT)
    assert net.population("n").neuron.threshold == np.nextafter(1.0, 2.0)
    x = np.ones((1, 1), np.float32)
    one = lambda v: np.array([v])  # noqa: E731
    layers = [{"type": "IF", "W": np.array([[0.5]]), "b": one(0.0), "r": one(1000.0), "v_threshold": one(1.0),
               "v_reset": one(0.0)}]
    want = nir_simulation(layers, x, 9, DT)[0].sum()
    assert want == 3  # v = 0.5, 1.0, 1.5 (spike), 0.5, 1.0, 1.5 (spike), ...
    assert numpy_simulation(net, x, 9)[0]["n"][0] == want


# ----------------------------------------------------------------------------- 3. refusals

def graph_with(middle=None, neuron=None, extra_edges=(), n=4, fc_bias=0.0):
    nodes = {"in": nir.Input(input_type={"input": np.array([n])}),
             "fc": nir.Affine(weight=np.eye(n), bias=np.full(n, fc_bias)),
             "mid": middle if middle is not None else nir.Linear(weight=np.eye(n)),
             "neu": neuron if neuron is not None else nir.IF(r=np.full(n, 1000.0), v_threshold=np.ones(n)),
             "out": nir.Output(output_type={"output": np.array([n])})}
    edges = [("in", "fc"), ("fc", "mid"), ("mid", "neu"), ("neu", "out"), *extra_edges]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


REFUSED = {
    "Delay": lambda: graph_with(middle=nir.Delay(delay=np.ones(4))),
    "Threshold": lambda: graph_with(middle=nir.Threshold(threshold=np.ones(4))),
    "LI": lambda: graph_with(neuron=nir.LI(tau=np.ones(4), r=np.ones(4), v_leak=np.zeros(4))),
    "CubaLI": lambda: graph_with(neuron=nir.CubaLI(tau_syn=np.ones(4), tau_mem=np.ones(4), r=np.ones(4),
                                                     v_leak=np.zeros(4))),
    "I": lambda: graph_with(neuron=nir.I(r=np.ones(4))),
    "Conv1d": lambda: graph_with(middle=nir.Conv1d(input_shape=4, weight=np.ones((1, 1, 1)), stride=1, padding=0,
                                                   dilation=1, groups=1, bias=np.zeros(1))),
}


@pytest.mark.parametrize("kind", list(REFUSED))
def test_unsupported_node_types_are_named(kind, tmp_path):
    graph = REFUSED[kind]()
    bad = "mid" if kind in ("Delay", "Threshold", "Conv1d") else "neu"
    with pytest.raises(GraphError, match=rf"NIR graph: node '{bad}': NIR type {kind} is not supported"):
        import_nir(graph, DT)
    path = tmp_path / "g.nir"
    nir.write(path, graph)
    with pytest.raises(SpikeportError) as exc:
        import_nir(path, DT)
    msg = str(exc.value)
    assert msg.startswith(f"{path}: ") and f"'{bad}'" in msg and kind in msg and "\n" not in msg


def test_unknown_node_type_in_a_file_is_named(tmp_path):
    path = tmp_path / "g.nir"
    nir.write(path, graph_with())
    with h5py.File(path, "r+") as f:
        del f["node"]["nodes"]["mid"]["type"]
        f["node"]["nodes"]["mid"].create_dataset("type", data="Banana", dtype=h5py.string_dtype())
    with pytest.raises(GraphError, match=r"g\.nir: node 'mid': NIR type Banana is not supported \(unknown node type\)"):
        import_nir(path, DT)


def test_unreadable_files_are_one_line_errors(tmp_path):
    text = tmp_path / "text.nir"
    text.write_text("hello\n")
    good = tmp_path / "good.nir"
    nir.write(good, graph_with())
    trunc = tmp_path / "trunc.nir"
    trunc.write_bytes(good.read_bytes()[:600])
    for path, words in [(tmp_path / "absent.nir", "no such file"), (text, "not a NIR file"),
                        (trunc, "not a readable NIR graph")]:
        with pytest.raises(FileFormatError) as exc:
            import_nir(path, DT)
        assert str(exc.value).startswith(f"{path}: ") and words in str(exc.value) and "\n" not in str(exc.value)
    quiet(import_nir, good, DT)  # the intact file imports


def lif(n=4, **kw):
    p = dict(tau=np.full(n, 0.01), r=np.full(n, 100.0), v_leak=np.zeros(n), v_threshold=np.ones(n))
    p.update(kw)
    return nir.LIF(**p)


BAD = {
    "cycle": (lambda: graph_with(extra_edges=[("neu", "mid")]), r"cycle through node\(s\) 'mid', 'neu'"),
    "per-neuron tau": (lambda: graph_with(neuron=lif(tau=np.array([0.01, 0.01, 0.02, 0.01]))),
                       r"node 'neu' \(LIF\): tau differs across neurons"),
    "tau shorter than dt": (lambda: graph_with(neuron=lif(tau=np.full(4, 5e-4))),
                            r"node 'neu' \(LIF\): tau = 0.0005 s is shorter than dt"),
    "reset above threshold": (lambda: graph_with(neuron=lif(v_reset=np.full(4, 1.0))),
                              r"node 'neu' \(LIF\): v_threshold must exceed v_reset"),
    "per-neuron tau_syn": (lambda: graph_with(neuron=nir.CubaLIF(
        tau_syn=np.array([0.002, 0.003, 0.002, 0.002]), tau_mem=np.full(4, 0.01), r=np.ones(4), v_leak=np.zeros(4),
        v_threshold=np.ones(4))), r"node 'neu' \(CubaLIF\): tau_syn differs across neurons"),
    "filtered bias": (lambda: graph_with(middle=nir.Affine(weight=np.eye(4), bias=np.full(4, 0.1)),
                                         neuron=nir.CubaLIF(tau_syn=np.full(4, 0.002), tau_mem=np.full(4, 0.01),
                                                            r=np.ones(4), v_leak=np.zeros(4), v_threshold=np.ones(4))),
                      r"node 'neu' \(CubaLIF\): a bias feeding a CubaLIF passes through its synaptic filter"),
    "bias before more ops": (lambda: graph_with(fc_bias=0.5),
                             r"node 'fc' \(Affine\): its bias is followed by further linear ops \(node 'mid'\)"),
    "v_reset not proportional": (lambda: graph_with(neuron=nir.IF(r=np.full(4, 1000.0), v_threshold=np.arange(1.0, 5),
                                                                  v_reset=np.full(4, -0.5))),
                                 r"node 'neu' \(IF\): v_threshold \(or the input gain\) differs across neurons"),
    "output from a linear node": (lambda: nir.NIRGraph(
        nodes={"in": nir.Input(input_type={"input": np.array([2])}), "fc": nir.Linear(weight=np.eye(2)),
               "out": nir.Output(output_type={"output": np.array([2])})},
        edges=[("in", "fc"), ("fc", "out")], type_check=False), r"node 'out' \(Output\): is fed by node 'fc'"),
    "partial flatten": (lambda: graph_with(middle=nir.Flatten(input_type={"input": np.array([4])}, start_dim=1)),
                        r"node 'mid' \(Flatten\): start_dim 1 / end_dim -1 do not fit its input of shape \(4,\)"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_unmappable_graphs_name_node_and_parameter(case):
    make, pattern = BAD[case]
    with pytest.raises(SpikeportError, match=pattern) as exc:
        import_nir(make(), DT)
    assert "\n" not in str(exc.value)


def test_thresholds_that_cannot_be_folded_are_refused():
    """Per-neuron thresholds after a sum pool of a (C, H, W) input: no op scales single neurons there."""
    thr = np.arange(1.0, 5.0).reshape(1, 2, 2)
    graph = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([1, 4, 4])}),
                                "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                                                      padding=np.array([0, 0])),
                                "neu": nir.IF(r=np.full((1, 2, 2), 1000.0), v_threshold=thr),
                                "out": nir.Output(output_type={"output": np.array([1, 2, 2])})},
                         edges=[("in", "pool"), ("pool", "neu"), ("neu", "out")], type_check=False)
    with pytest.raises(GraphError, match=r"node 'neu' \(IF\): the per-neuron threshold fold .* varies within a channel"):
        import_nir(graph, DT)
    # the same thresholds after a dense layer fold exactly into its rows
    quiet(import_nir, graph_with(neuron=nir.IF(r=np.full(4, 1000.0), v_threshold=np.arange(1.0, 5.0))), DT)


def test_metadata_must_match_the_file():
    net = small_network()
    graph = quiet(export_nir, net)
    with pytest.raises(GraphError, match=r"exported by spikeport with dt = 0.001 s; import it with that dt"):
        import_nir(graph, 2e-3)
    graph.nodes["out"].v_threshold = graph.nodes["out"].v_threshold * 1.5
    with pytest.raises(GraphError, match=r"node 'out' \(IF\): its v_threshold disagrees with its spikeport metadata"):
        import_nir(graph, DT)


def test_bad_arguments():
    with pytest.raises(SpikeportError, match="dt must be in"):
        import_nir(graph_with(), 0.0)
    with pytest.raises(SpikeportError, match="source must be a path or an nir.NIRGraph"):
        import_nir(42, DT)
    net = small_network(neuron="if", syn=0.5)
    with pytest.raises(GraphError, match="population 'h': NIR has no integrate-and-fire neuron with a synaptic"):
        export_nir(net)


def test_core_import_does_not_import_nir():
    code = "import sys, spikeport.ir, spikeport.ir.nir, spikeport.cli; print('nir' in sys.modules, 'h5py' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "False"]


# ----------------------------------------------------------------------------- CLI

def test_cli_nir_needs_dt(tmp_path):
    path = tmp_path / "x.nir"
    nir.write(path, graph_with())
    for args in (["convert", path], ["simulate", path], ["export", path, "--to", "nir", "--out", tmp_path / "y.nir"]):
        r = run_cli(*args)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert lines[0].startswith("error: ") and str(path) in lines[0] and "--dt" in lines[0]
    r = run_cli("convert", path, "--dt", "0.001", "--norm", "max")
    assert r.returncode == 2 and "--norm applies to model files" in r.stderr
    r = run_cli("convert", path, "--dt", "0.001", "--out", tmp_path / "x.spk")
    assert r.returncode == 0, r.stderr
    assert "forward Euler" in r.stderr  # the assumption is said, not hidden
    assert load_network(tmp_path / "x.spk").population("neu").neuron.model == "if"


def test_cli_export_then_simulate_nir_equals_spk(tmp_path):
    assert run_cli("train", "--epochs", "1", "--out", tmp_path / "m.pt").returncode == 0
    assert run_cli("convert", tmp_path / "m.pt", "--out", tmp_path / "n.spk").returncode == 0
    r = run_cli("export", tmp_path / "n.spk", "--to", "nir", "--out", tmp_path / "n.nir")
    assert r.returncode == 0, r.stderr
    assert "reset by subtraction" in r.stderr and (tmp_path / "n.nir").read_bytes()[:4] == b"\x89HDF"
    reports = {}
    for name, extra in (("spk", []), ("nir", ["--dt", "0.001"])):
        r = run_cli("simulate", tmp_path / f"n.{name}", *extra, "--steps", "24", "--checkpoints", "8,16",
                    "--samples", "80", "--json", tmp_path / f"{name}.json")
        assert r.returncode == 0, r.stderr
        reports[name] = json.loads((tmp_path / f"{name}.json").read_text())
    a, b = reports["spk"], reports["nir"]
    assert a["accuracy_by_steps"] == b["accuracy_by_steps"] and a["accuracy"] == b["accuracy"]
    assert a["layers"] == b["layers"] and a["layers"][1]["spikes"] > 0
    r = run_cli("simulate", tmp_path / "n.spk", "--dt", "0.001")
    assert r.returncode == 2 and "--dt is for NIR files" in r.stderr
    # and back: convert the NIR file to a graph file equal to the original
    assert run_cli("convert", tmp_path / "n.nir", "--dt", "0.001", "--out", tmp_path / "back.spk").returncode == 0
    assert_same_network(load_network(tmp_path / "n.spk"), load_network(tmp_path / "back.spk"))
