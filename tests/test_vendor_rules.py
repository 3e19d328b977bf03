"""Speck (sinabs) and Xylo (rockpool) mapper rules: spikeport.deploy.targets (speck, xylo)."""
import numpy as np
import pytest

from spikeport.deploy.targets import (check_speck, check_vendor, check_xylo, kernel_memory, neuron_memory,
                                      speck_layers)
from spikeport.hardware_profiles import parse
from spikeport.ir import (AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population,
                          Projection, SumPool2d)

# sinabs chips/dynapcnn.py DynapcnnConfigBuilder.get_constraints: kernel and neuron memory per core
SINABS_WEIGHTS = [16384, 16384, 16384, 32768, 32768, 65536, 65536, 16384, 16384]
SINABS_NEURONS = [65536, 65536, 65536, 32768, 32768, 16384, 16384, 16384, 16384]
IF = NeuronModel("if", threshold=1.0, reset="subtract")


def q(v, source="src: test"):
    return {"value": v, "source": source}


def base(mapper, core, chip):
    return {"name": mapper or "plain", "title": "test chip", "kind": "neuromorphic", "quantization": "none",
            "mapper": mapper, "time": {"dt_s": q(1e-3)},
            "energy": {k: q(0.0) for k in ("synop_j", "neuron_update_j", "spike_j", "static_core_w",
                                           "static_chip_w")},
            "precision": {"weight_bits": q(8)}, "core": core, "chip": chip}


def speck_profile(weights=SINABS_WEIGHTS, neurons=SINABS_NEURONS, cores=9):
    core = {"neurons": q(max(neurons)), "weight_words": q(list(weights)), "neuron_words": q(list(neurons)),
            "kernel_max": q(16), "strides": q([1, 2, 4, 8]), "channels_max": q(1024), "destinations": q(2)}
    return parse(base("speck", core, {"cores": q(cores)}), "test.toml")


def xylo_profile():
    return parse(base("xylo", {"neurons": q(1000), "fan_out": q(64)},
                      {"cores": q(1), "inputs": q(16), "neurons": q(1000), "outputs": q(8)}), "test.toml")


def conv(c_out, c_in, k, **kw):
    return Conv2d(np.full((c_out, c_in, k, k), 0.1), **kw)


def dense(n_out, n_in, value=0.1):
    return Dense(np.full((n_out, n_in), value))


def chain(input_shape, layers, neuron=IF):
    """input -> layers: [(name, shape, ops)], each fed by the one before; the last is the output."""
    pops = [Population("input", input_shape, encoding=InputEncoding("regular", 500.0))]
    projs, pre = [], "input"
    for name, shape, ops in layers:
        pops.append(Population(name, shape, neuron=neuron))
        projs.append(Projection(f"{pre}->{name}", pre, name, ops))
        pre = name
    return Network(pops, projs, output=pre).validate()


def small_conv_net():
    return chain((2, 32, 32), [
        ("c1", (8, 32, 32), [conv(8, 2, 3, padding=1)]),
        ("c2", (16, 14, 14), [SumPool2d(2), conv(16, 8, 3)]),
        ("c3", (16, 6, 6), [SumPool2d(2), conv(16, 16, 2, stride=1)]),
        ("out", (10,), [AvgPool2d(2), Flatten(), dense(10, 16 * 3 * 3)])])


def violations_of(violations, layer):
    return [v for v in violations if v.layer == layer]


# ---------------------------------------------------------------------------- memory formula


def test_memory_formula_by_hand():
    # sinabs DynapcnnLayer.memory_summary: kernel c * 2^(ceil log2(kh*kw) + ceil log2 f), neuron f * 2^(ceil log2 h
    # + ceil log2 w).
    # The example of sinabs docs/speck/overview.md: c=16, f=32, 3x3 kernel -> 16 * 2^(ceil log2 9 = 4) *
    # 2^(ceil log2 32 = 5) = 16 * 16 * 32 = 8192; a 64x64 map of 32 channels -> 32 * 2^6 * 2^6 = 131072.
    assert kernel_memory(16, 32, 3, 3) == 8192
    assert neuron_memory(32, 64, 64) == 131072
    # c=3, f=10, 5x5 -> 3 * 2^(ceil log2 25 = 5) * 2^(ceil log2 10 = 4) = 3 * 32 * 16 = 1536
    assert kernel_memory(3, 10, 5, 5) == 1536
    # f=10 on 13x13 -> 10 * 2^(ceil log2 13 = 4) * 2^4 = 10 * 256 = 2560
    assert neuron_memory(10, 13, 13) == 2560
    # powers of two are not rounded up: c=4, f=8, 4x4 -> 4 * 16 * 8 = 512; f=8 on 16x16 -> 8 * 256 = 2048
    assert kernel_memory(4, 8, 4, 4) == 512
    assert neuron_memory(8, 16, 16) == 2048
    # a 1x1 kernel and one output channel round to 2^0: c=5 -> 5 * 1 * 1 = 5; one neuron -> 1
    assert kernel_memory(5, 1, 1, 1) == 5
    assert neuron_memory(1, 1, 1) == 1


def test_layers_of_a_network_get_the_formula_with_dense_as_a_whole_input_kernel():
    net = chain((3, 30, 30), [
        ("c", (10, 13, 13), [conv(10, 3, 5, stride=2)]),          # (30 - 5) // 2 + 1 = 13
        ("d", (100,), [Flatten(), dense(100, 10 * 13 * 13)]),
        ("out", (4,), [dense(4, 100)])])
    layers, violations = speck_layers(net)
    by = {layer.name: layer for layer in layers}
    assert violations == []
    assert (by["c"].kernel_memory, by["c"].neuron_memory) == (1536, 2560)        # by hand above
    # the dense layer is the convolution with kernel = its whole 13x13 input: c = 10, f = 100:
    # 10 * 2^(ceil log2 169 = 8) * 2^(ceil log2 100 = 7) = 10 * 256 * 128 = 327680; neurons (100, 1, 1) -> 100
    assert by["d"].kernel == (13, 13) and by["d"].in_shape == (10, 13, 13)
    assert (by["d"].kernel_memory, by["d"].neuron_memory) == (327680, 100)
    # a dense layer after a vector: kernel 1x1, c = 100, f = 4: 100 * 1 * 2^2 = 400; neurons 4
    assert (by["out"].kernel, by["out"].kernel_memory, by["out"].neuron_memory) == ((1, 1), 400, 4)


def test_pooling_is_applied_at_the_source_and_consecutive_pools_multiply():
    net = chain((1, 32, 32), [
        ("c", (4, 32, 32), [conv(4, 1, 1)]),
        ("out", (2, 8, 8), [SumPool2d(2), SumPool2d(2), conv(2, 4, 1)])])
    layers, violations = speck_layers(net)
    out = {layer.name: layer for layer in layers}["out"]
    assert violations == []
    assert out.sources == {"c->out": 4} and out.in_shape == (4, 8, 8)


# ---------------------------------------------------------------------------- Speck: fitting


def test_a_small_conv_net_fits_with_each_layer_on_a_core_that_holds_it():
    net, profile = small_conv_net(), speck_profile()
    violations, mapping = check_speck(net, profile)
    assert violations == []
    assert set(mapping) == {"c1", "c2", "c3", "out"}
    assert len(set(mapping.values())) == len(mapping)                     # distinct cores
    layers = {layer.name: layer for layer in speck_layers(net)[0]}
    for name, core in mapping.items():
        assert layers[name].kernel_memory <= SINABS_WEIGHTS[core]
        assert layers[name].neuron_memory <= SINABS_NEURONS[core]
    # c1's neurons: 8 * 2^5 * 2^5 = 8192 words: every core holds that; out's kernel: dense on a 3x3 input of 16
    # channels: 16 * 2^(ceil log2 9 = 4) * 2^(ceil log2 10 = 4) = 4096
    assert layers["c1"].neuron_memory == 8192 and layers["out"].kernel_memory == 4096


def test_check_vendor_dispatches_on_the_profiles_mapper():
    net = small_conv_net()
    assert check_vendor(net, speck_profile()) == check_speck(net, speck_profile())
    plain = parse({**base("", {"neurons": q(100)}, {"cores": q(1)})}, "plain.toml")
    assert check_vendor(net, plain) == ([], None)


# ---------------------------------------------------------------------------- Speck: refusals


def test_a_kernel_of_17_names_the_layer_the_limit_and_the_value():
    net = chain((1, 20, 20), [("big", (4, 4, 4), [conv(4, 1, 17)]), ("out", (3,), [Flatten(), dense(3, 64)])])
    violations, mapping = check_speck(net, speck_profile())
    assert mapping is None
    [v] = [v for v in violations if "kernel side" in v.what]
    assert (v.layer, v.limit, v.value, v.key, v.fatal) == ("big", 16, 17, "core.kernel_max", True)
    assert "kernel" in v.line() and "17" in v.line() and "16" in v.line()


def test_a_dense_layer_on_a_large_input_has_a_kernel_too_large():
    # the Linear -> Conv2d conversion makes the kernel 20x20
    net = chain((1, 20, 20), [("out", (3,), [Flatten(), dense(3, 400)])])
    violations, _ = check_speck(net, speck_profile())
    assert [(v.layer, v.limit, v.value) for v in violations if "kernel side" in v.what] == [("out", 16, 20)]


def test_stride_3_is_refused():
    net = chain((1, 16, 16), [("s", (2, 5, 5), [conv(2, 1, 3, stride=3)]), ("out", (2,), [Flatten(), dense(2, 50)])])
    violations, mapping = check_speck(net, speck_profile())
    assert mapping is None
    [v] = [v for v in violations if "stride" in v.what]
    assert (v.layer, v.value, v.key) == ("s", 3, "core.strides")


def test_kernel_memory_larger_than_every_core_is_named_with_limit_and_value():
    # c = 64, f = 512, 3x3: 64 * 2^4 * 2^9 = 524288 words; the largest core has 65536
    net = chain((64, 3, 3), [("wide", (512, 1, 1), [conv(512, 64, 3)]), ("out", (2,), [Flatten(), dense(2, 512)])])
    violations, mapping = check_speck(net, speck_profile())
    assert mapping is None
    [v] = violations_of(violations, "wide")
    assert (v.limit, v.value, v.key) == (65536, 524288, "core.weight_words")
    assert "kernel memory" in v.what


def test_neuron_memory_of_the_sinabs_example_fits_no_core():
    # sinabs docs/speck/overview.md: 32 channels of 64x64 need 131072 neuron words (a 64x64 map itself is allowed)
    net = chain((16, 64, 64), [("c", (32, 64, 64), [conv(32, 16, 3, padding=1)]),
                               ("out", (2,), [SumPool2d(4), Flatten(), dense(2, 32 * 16 * 16)])])
    violations, _ = check_speck(net, speck_profile())
    mem = [v for v in violations if v.layer == "c"]
    assert [(v.limit, v.value, v.key) for v in mem] == [(65536, 131072, "core.neuron_words")]


def test_a_layer_that_fits_kernel_and_neuron_memory_only_in_different_cores_is_refused():
    # kernel 32768 words (c=8, f=256, 4x4: 8 * 16 * 256) needs cores 3-6; neurons 65536 (f=256 on 16x16:
    # 256 * 16 * 16) need cores 0-2: no core has both
    net = chain((8, 19, 19), [("c", (256, 16, 16), [conv(256, 8, 4)]),
                              ("out", (2,), [SumPool2d(4), Flatten(), dense(2, 256 * 4 * 4)])])
    violations, mapping = check_speck(net, speck_profile())
    assert mapping is None
    [v] = violations_of(violations, "c")
    assert v.value == "32768/65536" and "no core holds both" in v.what


def test_ten_layers_are_more_than_nine_cores():
    net = chain((4,), [(f"l{i}", (4,), [dense(4, 4)]) for i in range(9)] + [("out", (2,), [dense(2, 4)])])
    violations, mapping = check_speck(net, speck_profile())
    assert mapping is None
    assert [(v.layer, v.limit, v.value, v.key) for v in violations] == [("network", 9, 10, "chip.cores")]
    nine = chain((4,), [(f"l{i}", (4,), [dense(4, 4)]) for i in range(8)] + [("out", (2,), [dense(2, 4)])])
    assert check_speck(nine, speck_profile())[0] == []


def test_matching_places_what_first_fit_cannot():
    # core 0 is large, core 1 small. Layer "small" (kernel 4 * 1 * 2^2 = 16 words) fits both; layer "out" (kernel
    # 64 * 1 * 2^5 = 2048 words) fits only core 0. First-fit in layer order puts "small" on core 0 and strands
    # "out"; a matching puts "small" on core 1.
    profile = speck_profile(weights=[4096, 1024], neurons=[4096, 1024], cores=2)
    net = chain((4,), [("small", (64,), [dense(64, 4)]), ("out", (32,), [dense(32, 64)])])
    layers = speck_layers(net)[0]
    assert [(x.name, x.kernel_memory) for x in layers] == [("small", 4 * 64), ("out", 64 * 32)]
    caps = list(zip([4096, 1024], [4096, 1024]))
    fits = [[c for c, (kw, nw) in enumerate(caps) if x.kernel_memory <= kw and x.neuron_memory <= nw]
            for x in layers]
    assert fits == [[0, 1], [0]]
    used, first_fit = set(), []
    for cand in fits:                      # the greedy placement this test guards against
        free = [c for c in cand if c not in used]
        first_fit.append(free[0] if free else None)
        used.update(free[:1])
    assert first_fit == [0, None]
    violations, mapping = check_speck(net, profile)
    assert violations == [] and mapping == {"small": 1, "out": 0}


def test_layers_competing_for_too_few_cores_are_named():
    # three layers of 2048 kernel words fit only cores 0 and 1 (core 2 holds 1024)
    profile = speck_profile(weights=[4096, 4096, 1024], neurons=[4096, 4096, 4096], cores=3)
    net = chain((64,), [("a", (32,), [dense(32, 64)]), ("b", (64,), [dense(64, 32)]), ("out", (32,), [dense(32, 64)])])
    assert [x.kernel_memory for x in speck_layers(net)[0]] == [2048, 2048, 2048]
    violations, mapping = check_speck(net, profile)
    assert mapping is None
    [v] = violations
    assert (v.limit, v.value) == (2, 3) and set(v.layer.split(", ")) == {"a", "b", "out"}
    assert "[0, 1]" in v.what


def test_more_than_two_destinations_per_core():
    pops = [Population("input", (4,), encoding=InputEncoding("regular", 500.0))] + \
        [Population(n, (4,), neuron=IF) for n in ("h", "a", "b", "out")]
    projs = [Projection("in->h", "input", "h", [dense(4, 4)])] + \
        [Projection(f"h->{n}", "h", n, [dense(4, 4)]) for n in ("a", "b", "out")]
    net = Network(pops, projs, output="out").validate()
    violations, mapping = check_speck(net, speck_profile())
    assert mapping is None
    [v] = violations
    assert (v.layer, v.limit, v.value, v.key) == ("h", 2, 3, "core.destinations")


def test_two_cores_targeting_each_other_are_refused():
    net = chain((4,), [("a", (4,), [dense(4, 4)]), ("out", (4,), [dense(4, 4)])])
    assert check_speck(net, speck_profile())[0] == []
    net.projections.append(Projection("out->a", "out", "a", [dense(4, 4)], delay_steps=1))
    violations, mapping = check_speck(net.validate(), speck_profile())
    assert mapping is None
    [v] = violations
    assert v.layer in ("a", "out") and "loop" in v.what


def test_pooling_rules_of_sinabs():
    base_ops = [conv(2, 2, 1)]
    cases = {"pool 3": ([SumPool2d(3)] + base_ops, (2, 4, 4), "sum-pooling side", 4, 3),
             "stride": ([SumPool2d(2, stride=1)] + base_ops, (2, 11, 11), "stride must equal", "2x2", "1x1"),
             "padding": ([SumPool2d(2, padding=1)] + base_ops, (2, 7, 7), "padding", 0, 1)}
    for label, (ops, shape, what, limit, value) in cases.items():
        net = chain((2, 12, 12), [("c", (2, 12, 12), [conv(2, 2, 1)]), ("out", shape, ops)])
        violations, mapping = check_speck(net, speck_profile())
        assert mapping is None, label
        assert [(v.layer, v.limit, v.value) for v in violations if what in v.what] == [("out", limit, value)], label


def test_a_pooled_input_goes_through_the_dvs_layer_of_at_most_two_channels():
    net = chain((3, 8, 8), [("out", (2, 4, 4), [SumPool2d(2), conv(2, 3, 1)])])
    violations, _ = check_speck(net, speck_profile())
    assert [(v.layer, v.limit, v.value) for v in violations] == [("input", 2, 3)]
    two = chain((2, 8, 8), [("out", (2, 4, 4), [SumPool2d(2), conv(2, 2, 1)])])
    assert check_speck(two, speck_profile())[0] == []


def test_square_kernels_dilation_groups_channels_and_feature_map_sides():
    rect = chain((1, 10, 10), [("out", (2, 8, 6), [Conv2d(np.ones((2, 1, 3, 5)))])])
    assert [v.value for v in check_speck(rect, speck_profile())[0]] == ["3x5"]
    dil = chain((1, 10, 10), [("out", (2, 6, 6), [conv(2, 1, 3, dilation=2)])])
    assert [(v.limit, v.value) for v in check_speck(dil, speck_profile())[0]] == [(1, 2)]
    grp = chain((4, 6, 6), [("out", (4, 6, 6), [Conv2d(np.ones((4, 2, 1, 1)), groups=2)])])
    assert [(v.limit, v.value) for v in check_speck(grp, speck_profile())[0]] == [(1, 2)]
    wide = chain((1, 4, 4), [("out", (1100, 1, 1), [conv(1100, 1, 4)])])
    assert [(v.what, v.limit, v.value) for v in check_speck(wide, speck_profile())[0]
            if "channels" in v.what] == [("output channels", 1024, 1100)]
    big = chain((1, 70, 70), [("out", (1, 70, 70), [conv(1, 1, 1)])])
    assert [(v.limit, v.value) for v in check_speck(big, speck_profile())[0]] == [(64, 70)]


def test_speck_neurons_are_iaf_and_biases_are_per_channel():
    lif = chain((4,), [("out", (2,), [dense(2, 4)])], neuron=NeuronModel("lif", decay=0.9))
    assert [v.value for v in check_speck(lif, speck_profile())[0]] == ["lif"]
    net = chain((1, 4, 4), [("out", (2, 4, 4), [conv(2, 1, 1)])])
    out = net.population("out")
    out.bias = np.stack([np.full((4, 4), 0.5), np.arange(16.0).reshape(4, 4)])   # channel 1 varies
    assert [(v.layer, v.value) for v in check_speck(net, speck_profile())[0]] == [("out", 1)]
    out.bias = np.stack([np.full((4, 4), 0.5), np.full((4, 4), -0.25)])
    assert check_speck(net, speck_profile())[0] == []


def test_two_sources_into_one_core_concatenate_channels_and_must_agree_on_geometry():
    def net(a_shape, a_kernel, a_out_kernel):
        pops = [Population("input", (2, 8, 8), encoding=InputEncoding("regular", 500.0)),
                Population("a", a_shape, neuron=IF), Population("out", (4, 6, 6), neuron=IF)]
        projs = [Projection("in->a", "input", "a", [conv(3, 2, a_kernel)]),
                 Projection("a->out", "a", "out", [conv(4, 3, a_out_kernel)]),
                 Projection("in->out", "input", "out", [conv(4, 2, 3)])]
        return Network(pops, projs, output="out").validate()

    # both sources see 8x8 through a 3x3 kernel: one core over 3 + 2 channels
    layers, violations = speck_layers(net((3, 8, 8), 1, 3))
    out = {x.name: x for x in layers}["out"]
    assert violations == [] and out.in_shape == (5, 8, 8)
    assert out.kernel_memory == kernel_memory(5, 4, 3, 3) == 5 * 16 * 4
    # a's 6x6 through a 1x1 kernel and the input's 8x8 through a 3x3 one cannot share a core
    violations = speck_layers(net((3, 6, 6), 3, 1))[1]
    assert [(v.layer, v.value) for v in violations] == [("out", 2)]


# ---------------------------------------------------------------------------- Xylo


def xylo_net(n_in=16, hidden=(100,), n_out=8, w_hidden=None, w_out=None, reset="subtract"):
    nm = NeuronModel("lif", decay=0.9, reset=reset)
    pops = [Population("input", (n_in,), encoding=InputEncoding("regular", 500.0))]
    projs, pre, size = [], "input", n_in
    for i, n in enumerate(hidden):
        pops.append(Population(f"h{i}", (n,), neuron=nm))
        if w_hidden is not None and i == 1:
            w = w_hidden
        else:  # post j from pre j mod size: every pre neuron reaches at most ceil(n / size) targets
            w = np.zeros((n, size))
            w[np.arange(n), np.arange(n) % size] = 0.1
        projs.append(Projection(f"{pre}->h{i}", pre, f"h{i}", [Dense(w)]))
        pre, size = f"h{i}", n
    pops.append(Population("out", (n_out,), neuron=nm))
    projs.append(Projection(f"{pre}->out", pre, "out", [Dense(np.full((n_out, size), 0.1) if w_out is None
                                                              else w_out)]))
    return Network(pops, projs, output="out").validate()


def test_a_fitting_xylo_net_returns_neuron_ranges():
    violations, mapping = check_xylo(xylo_net(hidden=(100, 60)), xylo_profile())
    assert violations == []
    assert mapping == {"inputs": [0, 16], "hidden": {"h0": [0, 100], "h1": [100, 160]}, "outputs": [0, 8],
                       "output_population": "out", "unrolled": []}


def test_twenty_inputs_are_refused_where_rockpool_only_warns():
    violations, mapping = check_xylo(xylo_net(n_in=20), xylo_profile())
    assert mapping is None
    [v] = violations
    assert (v.layer, v.limit, v.value, v.key, v.fatal) == ("input", 16, 20, "chip.inputs", True)
    assert "16" in v.line() and "20" in v.line()


def test_1200_hidden_neurons_are_refused():
    violations, mapping = check_xylo(xylo_net(hidden=(600, 600)), xylo_profile())
    assert mapping is None
    assert [(v.limit, v.value, v.key) for v in violations] == [(1000, 1200, "chip.neurons")]
    assert check_xylo(xylo_net(hidden=(600, 400)), xylo_profile())[0] == []


def test_nine_outputs_are_refused():
    violations, mapping = check_xylo(xylo_net(n_out=9), xylo_profile())
    assert mapping is None
    assert [(v.layer, v.limit, v.value, v.key) for v in violations] == [("out", 8, 9, "chip.outputs")]


def test_a_neuron_with_fan_out_65_is_refused():
    # h0 -> h1 (100 neurons): neuron 3 of h0 reaches 65 of them, the others 10
    w = np.zeros((100, 100))
    w[:10, :] = 0.1
    w[:65, 3] = 0.2
    violations, mapping = check_xylo(xylo_net(hidden=(100, 100), w_hidden=w), xylo_profile())
    assert mapping is None
    [v] = violations
    assert (v.layer, v.limit, v.value, v.key) == ("h0", 64, 65, "core.fan_out")
    assert "neuron 3" in v.what


def test_fan_out_counts_hidden_and_output_targets_together():
    # h0 neuron 0 reaches 57 hidden neurons and all 8 outputs: 65; with 56 hidden targets it is 64 and fits
    for hidden_targets, fits in ((57, False), (56, True)):
        w = np.zeros((100, 100))
        w[:hidden_targets, 0] = 0.1
        w_out = np.zeros((8, 100))
        w_out[:, 0] = 0.1
        net = xylo_net(hidden=(100, 100), w_hidden=w)
        pops = {p.name: p for p in net.populations}
        projs = net.projections + [Projection("h0->out", "h0", "out", [Dense(w_out)])]
        net = Network(list(pops.values()), projs, output="out").validate()
        violations, _ = check_xylo(net, xylo_profile())
        assert (violations == []) == fits
        if not fits:
            assert [(v.layer, v.value) for v in violations] == [("h0", 65)]


def test_xylo_structure_rules():
    nm = NeuronModel("lif", decay=0.9)
    inp = Population("input", (4,), encoding=InputEncoding("regular", 500.0))
    # no hidden layer, and the input goes straight to the outputs
    direct = Network([inp, Population("out", (2,), neuron=nm)],
                     [Projection("in->out", "input", "out", [dense(2, 4)])], output="out").validate()
    whats = [v.what for v in check_xylo(direct, xylo_profile())[0]]
    assert len(whats) == 2 and any("hidden layers" in w for w in whats) and any("straight" in w for w in whats)
    # the output neurons project back into the hidden layer
    rec = xylo_net(n_in=4, hidden=(5,), n_out=2)
    rec.projections.append(Projection("out->h0", "out", "h0", [dense(5, 2)], delay_steps=1))
    rec.validate()
    [v] = check_xylo(rec, xylo_profile())[0]
    assert v.layer == "out" and "out->h0" in v.what
    # reset to zero
    zero = xylo_net(n_in=4, hidden=(5,), n_out=2, reset="zero")
    assert [v.layer for v in check_xylo(zero, xylo_profile())[0]] == ["h0", "out"]


def test_xylo_unrolls_convolutions_and_counts_their_fan_out():
    nm = NeuronModel("lif", decay=0.9)
    pops = [Population("input", (1, 4, 4), encoding=InputEncoding("regular", 500.0)),
            Population("c", (2, 4, 4), neuron=nm), Population("out", (3,), neuron=nm)]
    projs = [Projection("in->c", "input", "c", [conv(2, 1, 3, padding=1)]),
             Projection("c->out", "c", "out", [Flatten(), dense(3, 32)])]
    net = Network(pops, projs, output="out").validate()
    violations, mapping = check_xylo(net, xylo_profile())
    assert violations == [] and mapping["unrolled"] == ["in->c"] and mapping["hidden"] == {"c": [0, 32]}


@pytest.mark.parametrize("mapper", ["speck", "xylo"])
def test_violations_name_layer_limit_and_value(mapper):
    if mapper == "speck":
        violations, _ = check_speck(chain((1, 20, 20), [("out", (2, 4, 4), [conv(2, 1, 17)])]), speck_profile())
    else:
        violations, _ = check_xylo(xylo_net(n_in=17), xylo_profile())
    for v in violations:
        assert v.layer and v.limit is not None and v.value is not None
        assert str(v.limit) in v.line() and str(v.value) in v.line() and v.layer in v.line()
