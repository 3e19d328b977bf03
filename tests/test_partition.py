"""Constraint checks and partitioning onto cores and chips (spikeport.deploy.check, .partition).

Per-core counts are recounted here independently from each projection's materialized
synapses; the Loihi counting is compared block for block with nengo-loihi's own, and the
SpiNNaker core count with sPyNNaker's placements on its virtual board.
"""
import json
import math

import numpy as np
import pytest
from conftest import conv_network, small_network

from spikeport import hardware_profiles
from spikeport.deploy.check import check, require_fit
from spikeport.deploy.partition import analyze, partition
from spikeport.errors import SpikeportError
from spikeport.ir import (AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population,
                          Projection, SumPool2d)

NM = NeuronModel("if", threshold=1.0, reset="zero")


def make_profile(limits: dict, name="test", backend="", mapper="") -> hardware_profiles.Profile:
    """A neuromorphic test profile with the given {"table.key": value} limits."""
    data = {"name": name, "title": f"{name} (test)", "kind": "neuromorphic", "quantization": "none",
            "backend": backend, "mapper": mapper, "time": {"dt_s": {"value": 0.001, "source": "assumed: test"}},
            "energy": {k: {"value": 1e-12, "source": "assumed: test"}
                       for k in ("synop_j", "neuron_update_j", "spike_j", "static_core_w", "static_chip_w")}}
    limits = {"core.neurons": 256, "chip.cores": 1024, "precision.weight_bits": 8, **limits}
    for key, value in limits.items():
        table, k = key.split(".")
        data.setdefault(table, {})[k] = {"value": value, "source": "assumed: test"}
    return hardware_profiles.parse(data, f"{name}.toml")


def loihi_profile():
    return hardware_profiles.load("loihi")


def mlp(sizes, encoding="poisson", seed=0, density=1.0):
    rng = np.random.default_rng(seed)
    pops = [Population("input", (sizes[0],), encoding=InputEncoding(encoding, 400.0))]
    projs = []
    for i, n in enumerate(sizes[1:]):
        name = f"h{i + 1}" if i < len(sizes) - 2 else "out"
        w = rng.normal(0, 0.1, (n, sizes[i])).astype(np.float32)
        w[w == 0] = 0.1
        if density < 1:
            w *= rng.random(w.shape) < density
        pops.append(Population(name, (n,), neuron=NM))
        projs.append(Projection(f"{pops[-2].name}->{name}", pops[-2].name, name, [Dense(w)]))
    return Network(pops, projs, input="input", output="out").validate()


def conv_chain(seed=0, zeros=False):
    """input (2, 12, 12) -conv 3x3 pad 1-> a (6, 12, 12) -conv 3x3 stride 2 groups 2-> b (4, 5, 5)
    -avgpool 2, conv 2x2 stride 2-> c (3, 3, 3)... plus pooling and dense heads and a dilated conv."""
    rng = np.random.default_rng(seed)

    def w(*shape):
        x = rng.normal(0, 0.3, shape).astype(np.float32)
        x[x == 0] = 0.3
        if zeros:
            x *= rng.random(shape) < 0.6
        return x

    pops = [Population("input", (2, 12, 12), encoding=InputEncoding("poisson", 400.0)),
            Population("a", (6, 12, 12), neuron=NM), Population("b", (4, 5, 5), neuron=NM),
            Population("p", (6, 6, 6), neuron=NM), Population("c", (3, 3, 3), neuron=NM),
            Population("g", (4, 8, 8), neuron=NM), Population("out", (7,), neuron=NM)]
    projs = [Projection("input->a", "input", "a", [Conv2d(w(6, 2, 3, 3), padding=1)]),
             Projection("a->b", "a", "b", [Conv2d(w(4, 3, 3, 3), stride=2, groups=2)]),
             Projection("a->p", "a", "p", [SumPool2d(2)]),
             Projection("a->c", "a", "c", [AvgPool2d(2), Conv2d(w(3, 6, 2, 2), stride=2)]),
             Projection("a->g", "a", "g", [Conv2d(w(4, 6, 3, 3), dilation=2)]),
             Projection("p->out", "p", "out", [AvgPool2d(3), Flatten(), Dense(w(7, 24))]),
             Projection("b->out", "b", "out", [Flatten(), Dense(w(7, 100))]),
             Projection("c->out", "c", "out", [Flatten(), Dense(w(7, 27))]),
             Projection("g->out", "g", "out", [AvgPool2d(2, stride=1), Flatten(), Dense(w(7, 196))])]
    return Network(pops, projs, input="input", output="out").validate()


# ---------------------------------------------------------------------------- independent recount

def core_labels(shape, block) -> np.ndarray:
    """The core of every neuron (C order) for tiles (one dim per axis) or runs (one dim)."""
    shape = tuple(shape)
    if len(block) == 1:
        return np.arange(math.prod(shape)) // block[0]
    idx = np.indices(shape)
    grid = [math.ceil(d / b) for d, b in zip(shape, block)]
    lab = np.zeros(shape, np.int64)
    for ax, b in enumerate(block):
        lab = lab * grid[ax] + idx[ax] // b
    return lab.ravel()


def recount(net, part, bits_of=None):
    """{population: {"input_axons", "output_axons", "synapse_memory", "synapses", "neurons"}} per core,
    counted from the materialized synapses and the partition's block shapes (generic chips)."""
    labels, n_cores = {}, {}
    for pop in net.populations:
        if pop.is_input:
            continue
        lay = part.layer(pop.name)
        labels[pop.name] = core_labels(pop.shape, lay["block_shape"])
        n_cores[pop.name] = lay["cores"]
        assert labels[pop.name].max() + 1 == lay["cores"]
    out = {name: {k: np.zeros(n_cores[name]) for k in ("input_axons", "output_axons", "synapse_memory", "synapses")}
           for name in labels}
    for name in labels:
        out[name]["neurons"] = np.bincount(labels[name], minlength=n_cores[name])
    for proj in net.projections:
        syn = proj.materialize(net.population(proj.pre).shape)
        core = labels[proj.post][syn.post]
        pairs, counts = np.unique(np.stack([syn.pre, core], axis=1), axis=0, return_counts=True)
        out[proj.post]["input_axons"] += np.bincount(pairs[:, 1], minlength=n_cores[proj.post])
        out[proj.post]["synapses"] += np.bincount(core, minlength=n_cores[proj.post])
        if bits_of is not None:
            out[proj.post]["synapse_memory"] += np.bincount(pairs[:, 1], weights=bits_of(counts),
                                                            minlength=n_cores[proj.post])
        if proj.pre in labels:
            out[proj.pre]["output_axons"] += np.bincount(labels[proj.pre][pairs[:, 0]], minlength=n_cores[proj.pre])
    return out


def table_of(part, net, name):
    idx = [lay["name"] for lay in part.layers].index(name)
    sel = part.core_table["layer"] == idx
    return {k: part.core_table[k][sel] for k in ("neurons", "input_axons", "output_axons", "synapse_memory")}


GENERIC = {"core.neurons": 64, "core.input_axons": 640, "core.output_axons": 300, "core.synapse_memory_bits": 32768,
           "core.synapse_overhead_bits": 10, "core.synapse_block": 16, "core.synapse_word_bits": 32,
           "core.synapse_entry_bits": 4, "precision.weight_bits": 6}


def generic_bits(c):
    """The profile GENERIC's synapse memory of one axon's c synapses into a core, counted by hand."""
    out = []
    for n in np.asarray(c).tolist():
        total = 0
        while n > 0:
            k = min(n, 16)
            total += math.ceil((k * (6 + 4) + 10) / 32) * 32
            n -= k
        out.append(total)
    return np.array(out, float)


# ---------------------------------------------------------------------------- fan-in and fan-out

@pytest.mark.parametrize("zeros", [False, True])
def test_fan_in_and_fan_out_equal_the_materialized_counts(zeros):
    net = conv_chain(zeros=zeros)
    an = analyze(net)
    for proj in net.projections:
        syn = proj.materialize(net.population(proj.pre).shape)
        s = an.structures[proj.name]
        assert np.array_equal(s.fan_in(), np.bincount(syn.post, minlength=net.population(proj.post).size)), proj.name
        assert np.array_equal(s.fan_out(), np.bincount(syn.pre, minlength=net.population(proj.pre).size)), proj.name
    # only the overlapping pooling before a dense layer needed the materialized fallback
    assert [name for name, s in an.structures.items() if s.form == "sparse"] == ["g->out"]


def test_pooling_with_overlapping_windows_before_dense_falls_back_to_the_exact_synapses():
    net = conv_chain()
    assert analyze(net).structures["g->out"].form == "sparse"     # AvgPool2d(2, stride=1): overlapping
    assert analyze(net).structures["p->out"].form == "dense"      # AvgPool2d(3) on 6x6: disjoint


# ---------------------------------------------------------------------------- per-core counts

@pytest.mark.parametrize("zeros", [False, True])
def test_every_core_within_limits_and_equal_to_an_independent_recount(zeros):
    net = conv_chain(zeros=zeros)
    prof = make_profile(GENERIC)
    part = partition(net, prof)
    counted = recount(net, part, generic_bits)
    for name, c in counted.items():
        got = table_of(part, net, name)
        assert np.array_equal(got["neurons"], c["neurons"])
        assert (got["neurons"] <= 64).all()
        for what, limit in (("input_axons", 640), ("output_axons", 300), ("synapse_memory", 32768)):
            assert (got[what] <= limit).all(), (name, what)
            if zeros:   # a kernel with zero taps: the separable count is an upper bound
                assert (got[what] >= c[what]).all(), (name, what)
            else:
                assert np.array_equal(got[what], c[what]), (name, what, got[what], c[what])
        assert part.layer(name)["synapses"] == int(c["synapses"].sum())
    assert part.cores == sum(lay["cores"] for lay in part.layers)
    json.dumps(part.to_dict())


def test_conv_layer_is_tiled_within_the_input_axons():
    rng = np.random.default_rng(3)
    pops = [Population("input", (8, 16, 16), encoding=InputEncoding("poisson", 100.0)),
            Population("conv", (8, 16, 16), neuron=NM)]
    projs = [Projection("input->conv", "input", "conv", [Conv2d(rng.normal(0, 1, (8, 8, 3, 3)).astype(np.float32),
                                                                padding=1)])]
    net = Network(pops, projs, input="input", output="conv").validate()
    prof = make_profile({"core.neurons": 256, "core.input_axons": 256, "core.fan_in": 256})
    part = partition(net, prof)
    lay = part.layer("conv")
    # 2048 neurons need 8 cores of 256, but a core of 256 needs at least 8 x (rows + 2) x (cols + 2) > 256 axons
    assert lay["cores"] > 8 and lay["binding"] == "input_axons"
    assert len(lay["block_shape"]) == 3
    counted = recount(net, part)["conv"]
    assert np.array_equal(table_of(part, net, "conv")["input_axons"], counted["input_axons"])
    assert counted["input_axons"].max() <= 256
    # one core fewer (the next larger tiles) exceeds the limit
    bigger = [lay["block_shape"][0], lay["block_shape"][1] + 1, lay["block_shape"][2]]
    with pytest.raises(SpikeportError, match="input axons"):
        partition(net, prof, block_shapes={"conv": bigger})


def test_wide_dense_layer_on_loihi_is_split_by_synapse_memory_not_neurons():
    net = mlp([1024, 1000, 10])
    part = partition(net, loihi_profile())
    lay = part.layer("h1")
    assert lay["cores"] > 1 and math.ceil(1000 / 1024) == 1
    assert lay["binding"] == "synapse_memory"
    assert lay["utilization"]["synapse_memory"] > 0.9 and lay["utilization"]["neurons"] < 0.2

    def loihi_bits(c):      # nengo-loihi's bits_per_axon: blocks of 64 synapses, 8 bits each + 10, 64-bit words
        return np.array([sum(math.ceil((min(64, n - i) * 8 + 10) / 64) * 64 for i in range(0, n, 64))
                         for n in np.asarray(c).tolist()], float)

    counted = recount(net, part, loihi_bits)["h1"]
    got = table_of(part, net, "h1")
    assert np.array_equal(got["synapse_memory"], counted["synapse_memory"])
    assert got["synapse_memory"].max() <= 2**20 < loihi_bits([1000])[0] * 1024
    assert np.array_equal(got["input_axons"], counted["input_axons"])


def test_mlp_784_2000_2000_10_on_loihi_gets_block_shapes_that_fit_and_are_tight():
    net = mlp([784, 2000, 2000, 10])
    part = partition(net, loihi_profile())
    shapes = part.vendor["block_shape"]
    assert set(shapes) == {"h1", "h2", "out"} and all(len(v) == 1 for v in shapes.values())
    assert part.vendor["ensemble_shape"]["h2"] == [2000]
    for name in shapes:
        lay = part.layer(name)
        assert lay["cores"] == math.ceil(lay["neurons"] / shapes[name][0])
        assert all(u <= 1 for u in lay["utilization"].values())
    # nengo-loihi's default split (blocks of up to 1024 compartments) does not fit: 2 blocks of 1000
    with pytest.raises(SpikeportError, match="synapse memory"):
        partition(net, loihi_profile(), block_shapes={"h2": [1000]})
    # and one block fewer than chosen exceeds a limit
    fewer = math.ceil(2000 / (part.layer("h2")["cores"] - 1))
    with pytest.raises(SpikeportError, match="h2"):
        partition(net, loihi_profile(), block_shapes={"h2": [fewer]})
    assert part.cores == sum(lay["cores"] for lay in part.layers) and part.layer("input")["cores"] == 0
    assert part.chips == math.ceil(part.cores / 128)


def test_loihi_counts_equal_nengo_loihis_block_by_block():
    pytest.importorskip("nengo_loihi")
    from spikeport.backends import loihi

    rng = np.random.default_rng(1)

    def w(*s):
        return rng.normal(0, 0.3, s).astype(np.float32)

    # input -> conv (sparse path) -> pool+conv folded (shared-weight path), conv stride 2 (shared),
    # avgpool (split: nengo-loihi merges the equal lists), avgpool + dense (merged per window) -> dense;
    # input -> pool + conv (sparse path, merged per pooling cell)
    pops = [Population("input", (1, 20, 20), encoding=InputEncoding("poisson", 400.0)),
            Population("c1", (4, 16, 16), neuron=NM), Population("c2", (6, 4, 4), neuron=NM),
            Population("c3", (5, 8, 8), neuron=NM), Population("p", (4, 8, 8), neuron=NM),
            Population("fc", (40,), neuron=NM), Population("q", (3, 4, 4), neuron=NM),
            Population("out", (10,), neuron=NM)]
    projs = [Projection("a", "input", "c1", [Conv2d(w(4, 1, 5, 5))]),
             Projection("b", "c1", "c2", [AvgPool2d(2), Conv2d(w(6, 4, 5, 5))]),
             Projection("c", "c1", "c3", [Conv2d(w(5, 4, 2, 2), stride=2)]),
             Projection("d", "c1", "p", [AvgPool2d(2)]),
             Projection("e", "c2", "out", [Flatten(), Dense(w(10, 96))]),
             Projection("f", "c3", "out", [Flatten(), Dense(w(10, 320))]),
             Projection("g", "p", "out", [Flatten(), Dense(w(10, 256))]),
             Projection("h", "c1", "fc", [AvgPool2d(2), Flatten(), Dense(w(40, 256))]),
             Projection("i", "input", "q", [AvgPool2d(2), Conv2d(w(3, 1, 3, 3), stride=2)]),
             Projection("j", "fc", "out", [Dense(w(10, 40))]),
             Projection("k", "q", "fc", [Flatten(), Dense(w(40, 48))])]
    net = Network(pops, projs, input="input", output="out").validate()
    for block in (16, 32, 1024):
        theirs = loihi.mapping(net, block_size=block)
        assert theirs["conv_transforms"] == ["b", "c"]
        part = partition(net, loihi_profile(),
                         block_shapes={p.name: [min(block, p.size)] for p in pops if not p.is_input})
        assert part.cores == theirs["cores"]
        for name, e in theirs["populations"].items():
            ours = table_of(part, net, name)
            for k, k2 in (("neurons", "compartments"), ("input_axons", "in_axons"), ("output_axons", "out_axons"),
                          ("synapse_memory", "synapses")):
                assert np.array_equal(ours[k], [b[k2]["used"] for b in e["per_block"]]), (block, name, k)


@pytest.mark.parametrize("delay", [0, 2])
def test_loihi_count_equals_nengo_loihis_for_its_own_block_shapes_relays_included(delay):
    pytest.importorskip("nengo_loihi")
    from spikeport.backends import loihi

    net = conv_network(delay=delay)           # a residual path (and a delay): the backend adds relays
    theirs = loihi.mapping(net)
    relays = [name for name in theirs["populations"] if "~relay" in name]
    assert relays
    shapes = {name: e["block_shape"] for name, e in theirs["populations"].items()}
    part = partition(net, loihi_profile(), block_shapes=shapes)
    assert part.cores == theirs["cores"]
    assert sorted(lay["name"] for lay in part.layers if lay["kind"] == "relay") == sorted(relays)
    for name, e in theirs["populations"].items():
        ours = table_of(part, net, name)
        for k, k2 in (("neurons", "compartments"), ("input_axons", "in_axons"), ("output_axons", "out_axons"),
                      ("synapse_memory", "synapses")):
            assert np.array_equal(ours[k], [b[k2]["used"] for b in e["per_block"]]), (name, k)
    # and spikeport's own choice covers the relays, with settings the emitter takes
    own = partition(net, loihi_profile())
    assert set(own.vendor["block_shape"]) == set(theirs["populations"])


# ---------------------------------------------------------------------------- checks

def test_truenorth_like_fan_in_is_a_fatal_violation_naming_layer_limit_and_value():
    net = mlp([784, 10])
    prof = make_profile({"core.neurons": 256, "core.input_axons": 256, "core.fan_in": 256, "chip.cores": 4096})
    violations = check(net, prof)
    fan = [v for v in violations if v.what == "fan-in"]
    assert len(fan) == 1 and fan[0].fatal and fan[0].layer == "out"
    assert (fan[0].limit, fan[0].value, fan[0].key) == (256, 784, "core.fan_in")
    with pytest.raises(SpikeportError) as exc:
        require_fit(violations, prof)
    line = str(exc.value)
    assert "\n" not in line and all(s in line for s in ("out", "fan-in", "256", "784"))
    with pytest.raises(SpikeportError, match="input axons 784 exceeds the limit 256"):
        partition(net, prof)
    # the shipped TrueNorth profile says the same
    assert any(v.what == "fan-in" and v.value == 784 and v.fatal for v in check(net, hardware_profiles.load("truenorth")))


def test_xylo_like_chip_totals_name_the_layer_and_the_limit():
    prof = make_profile({"core.neurons": 1000, "chip.cores": 1, "chip.neurons": 1000, "chip.inputs": 16,
                         "chip.outputs": 8}, name="xylo-like", mapper="xylo")
    net = mlp([20, 1200, 4])
    violations = check(net, prof)
    by_key = {v.key: v for v in violations if v.fatal}
    assert by_key["chip.inputs"].layer == "input" and (by_key["chip.inputs"].limit, by_key["chip.inputs"].value) \
        == (16, 20)
    assert by_key["chip.neurons"].layer == "h1" and (by_key["chip.neurons"].limit, by_key["chip.neurons"].value) \
        == (1000, 1200)
    with pytest.raises(SpikeportError, match="h1"):
        require_fit(violations, prof)
    # within the chip: no violation; too many outputs: named
    assert not [v for v in check(mlp([16, 900, 8]), prof) if v.fatal]
    assert [v.layer for v in check(mlp([16, 900, 9]), prof) if v.key == "chip.outputs"] == ["out"]
    # the chip's one core holds every hidden layer; the outputs are the chip's own neurons
    part = partition(mlp([16, 500, 300, 8]), prof)
    assert (part.cores, part.chips) == (1, 1)
    assert [part.layer(n)["cores"] for n in ("h1", "h2", "out")] == [1, 0, 0]
    assert part.layer("h2")["utilization"]["neurons"] == 0.8 and part.per_core["neurons"]["max"] == 0.8
    with pytest.raises(SpikeportError, match=r"h1, h2: neurons 1100 exceeds the limit 1000"):
        partition(mlp([16, 700, 400, 8]), prof)
    assert [v.value for v in check(mlp([16, 700, 400, 8]), prof) if v.key == "chip.neurons"] == [1100]


def test_neurons_per_core_is_not_fatal_and_delay_kernel_stride_channels_fan_out_are():
    net = small_network(delay=5)
    prof = make_profile({"core.neurons": 4, "precision.delay_steps_max": 3, "core.fan_out": 3})
    vs = {(v.layer, v.key): v for v in check(net, prof)}
    delay = vs[("h->out", "precision.delay_steps_max")]
    assert not vs[("h", "core.neurons")].fatal and "3 cores" in vs[("h", "core.neurons")].fix
    assert vs[("h->out", "precision.delay_steps_max")].fatal and vs[("h->out", "precision.delay_steps_max")].value == 5
    assert vs[("h", "core.fan_out")].value == 4 and vs[("h", "core.fan_out")].fatal
    net = conv_network()
    speck = make_profile({"core.kernel_max": 2, "core.strides": [1, 4], "core.channels_max": 3})
    vs = {(v.layer, v.key): v for v in check(net, speck)}
    assert (vs[("input->c", "core.kernel_max")].value, vs[("input->c", "core.strides")].value) == (3, 2)
    assert vs[("input->c", "core.channels_max")].value == 4
    fatal = [v for v in vs.values() if v.fatal]
    assert len(fatal) == 3
    with pytest.raises(SpikeportError, match="and 1 more$"):
        require_fit(fatal + [delay])
    with pytest.raises(SpikeportError) as exc:      # a repeated violation counts once
        require_fit(fatal + fatal[:1])
    assert "more" not in str(exc.value)
    require_fit([v for v in check(small_network(), make_profile({"core.neurons": 4})) if not v.fatal])


# ---------------------------------------------------------------------------- chips, SpiNNaker

def test_chips_packing_and_chips_max():
    prof = make_profile({"core.neurons": 100, "chip.cores": 4, "chip.chips_max": 2})
    part = partition(mlp([10, 350, 10]), prof)
    assert part.layer("h1")["cores"] == 4 and part.cores == 5 and part.chips == 2
    with pytest.raises(SpikeportError, match=r"needs 3 chips .* the system has 2 \(chip.chips_max\)"):
        partition(mlp([10, 900, 10]), prof)
    assert [v.fatal for v in check(mlp([10, 900, 10]), prof) if v.key == "chip.chips_max"] == [True]
    # chip.neurons also bounds a chip: 3 cores of 100 per chip at most 250 neurons -> 2 per chip
    part = partition(mlp([10, 300, 10]), make_profile({"core.neurons": 100, "chip.cores": 3, "chip.neurons": 250}))
    assert part.cores == 4 and part.chips == 2


@pytest.mark.parametrize("npc", [17, 100])
def test_spinnaker_neurons_per_core_gives_ceil_n_over_npc_cores(npc):
    net = mlp([300, 250, 120, 10])
    part = partition(net, hardware_profiles.load("spinnaker"), neurons_per_core=npc)
    for name, n in (("h1", 250), ("h2", 120), ("out", 10)):
        assert part.layer(name)["cores"] == math.ceil(n / npc)
        assert part.vendor["neurons_per_core"][name] == min(npc, n)
    assert part.layer("input")["cores"] == 1       # one SpikeSourceArray core, whatever its size
    assert part.cores == 1 + sum(math.ceil(n / npc) for n in (250, 120, 10))
    analog = partition(mlp([300, 250, 10], encoding="analog"), hardware_profiles.load("spinnaker"))
    assert analog.layer("input")["cores"] == 0
    with pytest.raises(SpikeportError, match="neurons_per_core"):
        partition(net, hardware_profiles.load("spinnaker"), neurons_per_core=300)


def test_spinnaker_core_count_equals_spynnakers_placements():
    pytest.importorskip("pyNN.spiNNaker")
    from spikeport.backends import spinnaker

    rng = np.random.default_rng(0)
    pops = [Population("input", (300,), encoding=InputEncoding("poisson", 400.0)),
            Population("h", (250,), neuron=NM), Population("out", (250,), neuron=NM)]
    projs = [Projection("a", "input", "h", [Dense(rng.normal(0, .5, (250, 300)).astype(np.float32))]),
             Projection("b", "h", "out", [Dense(rng.normal(0, .5, (250, 250)).astype(np.float32))], delay_steps=100)]
    net = Network(pops, projs, input="input", output="out").validate()
    prof = hardware_profiles.load("spinnaker")
    for npc, delay in ((100, 100), (100, 60), (255, 40)):
        net.projections[1].delay_steps = delay
        placed = spinnaker.placements(net, neurons_per_core=npc)
        part = partition(net, prof, neurons_per_core=npc)
        assert part.cores == placed["total_cores"], (npc, delay)
        for name, entry in placed["populations"].items():
            assert part.layer(name)["cores"] == entry["cores"]
        ext = {lay["name"]: lay["cores"] for lay in part.layers if lay["kind"] == "delay_extension"}
        assert ext == {k: v["cores"] for k, v in placed["other"].items() if k != "system"}


def test_recurrent_delayed_projection_is_counted_after_its_target_is_placed():
    rng = np.random.default_rng(2)
    pops = [Population("input", (50,), encoding=InputEncoding("poisson", 100.0)),
            Population("a", (300,), neuron=NM), Population("out", (300,), neuron=NM)]
    projs = [Projection("in", "input", "a", [Dense(rng.normal(0, 1, (300, 50)).astype(np.float32))]),
             Projection("fw", "a", "out", [Dense(rng.normal(0, 1, (300, 300)).astype(np.float32))]),
             Projection("back", "out", "a", [Dense(rng.normal(0, 1, (300, 300)).astype(np.float32))], delay_steps=1)]
    net = Network(pops, projs, input="input", output="out").validate()
    prof = make_profile({"core.neurons": 100, "core.output_axons": 300})
    part = partition(net, prof)
    counted = recount(net, part)
    for name in ("a", "out"):
        got = table_of(part, net, name)["output_axons"]
        assert np.array_equal(got, counted[name]["output_axons"]) and got.max() <= 300
