"""Chip quantization schemes: Loihi (nengo-loihi's discretization), SpiNNaker (sPyNNaker's weight
scaling), per-layer and none; reports, warnings, and the quantized networks in fixed-point mode."""
import warnings as pywarnings

import numpy as np
import pytest

from conftest import conv_network, small_network
from spikeport.backends.reference import run
from spikeport.deploy.quantize import quantize
from spikeport.deploy.quantize_chips import quantize_for, spinnaker_shift, warnings
from spikeport.errors import SpikeportError
from spikeport.hardware_profiles import load, parse
from spikeport.ir import Dense, FixedPoint, InputEncoding, Network, NeuronModel, Population, Projection


def profile(quantization, **precision):
    src = "assumed: test profile"
    data = {"name": "test", "title": "test chip", "kind": "neuromorphic", "quantization": quantization,
            "time": {"dt_s": {"value": 0.001, "source": src}},
            "core": {"neurons": {"value": 256, "source": src}}, "chip": {"cores": {"value": 4, "source": src}},
            "precision": {k: {"value": v, "source": src} for k, v in precision.items()},
            "energy": {k: {"value": 0, "source": src}
                       for k in ("synop_j", "neuron_update_j", "spike_j", "static_core_w", "static_chip_w")}}
    return parse(data, "test.toml")


LOIHI = load("loihi")
SPINNAKER = profile("spinnaker", weight_bits=16, state_bits=32)


def one_layer(w, theta=1.0, bias=None, encoding="regular"):
    w = np.asarray(w, dtype=np.float32)
    pops = [Population("input", (w.shape[1],), encoding=InputEncoding(encoding, 500.0)),
            Population("out", (w.shape[0],), neuron=NeuronModel("if", theta, "subtract"),
                       bias=None if bias is None else np.asarray(bias, np.float32))]
    return Network(pops, [Projection("input->out", "input", "out", [Dense(w)])], input="input",
                   output="out").validate()


def two_scales(small=0.004, seed=1):
    """input -> h -> out plus input -> out, the direct path with weights ~100x smaller."""
    rng = np.random.default_rng(seed)
    nm = NeuronModel("if", 1.0, "subtract")
    pops = [Population("input", (16,), encoding=InputEncoding("regular", 500.0)), Population("h", (8,), neuron=nm),
            Population("out", (6,), neuron=nm)]
    projs = [Projection("input->h", "input", "h", [Dense(rng.normal(0, 0.5, (8, 16)).astype(np.float32))]),
             Projection("h->out", "h", "out", [Dense(rng.normal(0, 0.5, (6, 8)).astype(np.float32))]),
             Projection("input->out", "input", "out", [Dense(rng.normal(0, small, (6, 16)).astype(np.float32))])]
    return Network(pops, projs, input="input", output="out").validate()


def by_name(entries):
    return {e["name"]: e for e in entries}


# ---------------------------------------------------------------------------- dispatch

def test_per_layer_is_the_existing_quantizer():
    net = conv_network()
    q, rep = quantize_for(net, profile("per-layer", weight_bits=6, state_bits=20))
    ref, ref_rep = quantize(net, FixedPoint(weight_bits=6, state_bits=20))
    assert rep["scheme"] == "per-layer" and q.fixed_point == FixedPoint(weight_bits=6, state_bits=20)
    for a, b in zip(q.projections, ref.projections):
        for oa, ob in zip(a.ops, b.ops):
            if "weight" in oa.arrays():
                np.testing.assert_array_equal(oa.weight, ob.weight)
    assert [p["max_abs_error"] for p in rep["projections"]] == [p["max_abs_error"] for p in ref_rep["projections"]]
    assert all(p["weight_bits"] == 6 for p in rep["projections"])


def test_none_returns_the_network_unchanged():
    net = small_network()
    q, rep = quantize_for(net, profile("none", weight_bits=32))
    assert q is net and q.fixed_point is None and rep["projections"] == [] and warnings(rep) == []


def test_already_fixed_point_and_bad_formats_are_refused():
    net = small_network(encoding="regular")
    q, _ = quantize_for(net, LOIHI)
    with pytest.raises(SpikeportError, match="already fixed-point"):
        quantize_for(q, SPINNAKER)
    with pytest.raises(SpikeportError, match="weight_bits 7 is not a Loihi weight width"):
        quantize_for(net, profile("loihi", weight_bits=7, state_bits=24))


# ---------------------------------------------------------------------------- Loihi

def test_loihi_weights_are_signed_mantissas_at_a_power_of_two():
    net = small_network(encoding="regular")
    q, rep = quantize_for(net, LOIHI)
    assert rep["scheme"] == "loihi" and rep["format"]["weight_bits"] == 8 and q.fixed_point.state_bits == 24
    for pr, entry in zip(q.projections, rep["projections"]):
        e = entry["exponent"]
        assert -7 <= e <= 0
        step = 64 * 2 ** max(1 + e, 0)                     # 8 bits: mantissa << (1 + e) << 6
        k = pr.ops[0].weight.astype(np.float64) / step
        np.testing.assert_array_equal(k, np.rint(k))
        assert np.abs(k).max() <= 127
        if e == 0:   # one projection per population here: its largest weight uses the whole range
            assert np.abs(k).max() == 127


def test_loihi_weights_equal_nengo_loihi_discretize_weights():
    discretize = pytest.importorskip("nengo_loihi.builder.discretize")
    from nengo_loihi.block import SynapseConfig

    net = two_scales()
    q, rep = quantize_for(net, LOIHI)
    pops = by_name(rep["populations"])
    exps = set()
    for pr, qp, entry in zip(net.projections, q.projections, rep["projections"]):
        e, v = entry["exponent"], 1.0 / pops[pr.post]["lsb"]
        exps.add(e)
        with pywarnings.catch_warnings():
            pywarnings.simplefilter("ignore")   # "Lost n extra bits in weight rounding"
            ref = discretize.discretize_weights(SynapseConfig(weight_exp=e, weight_bits=7, fanout_type=1),
                                                pr.ops[0].weight.astype(np.float64) * v / 2 ** (6 + e))
        np.testing.assert_array_equal(qp.ops[0].weight, ref)
    assert min(exps) < -1   # the lossy two-part shift was exercised


@pytest.mark.parametrize("scale, theta, b", [(1.0, 1.0, 0.05), (0.001, 1.0, 0.0), (1.0, 3.0, 20.0),
                                             (0.3, 0.7, -0.3), (1.0, 1.0, 50.0)])
def test_loihi_block_exponent_threshold_and_bias_equal_nengo_loihi(scale, theta, b):
    pytest.importorskip("nengo_loihi")
    from nengo_loihi.block import Compartment
    from nengo_loihi.builder.discretize import discretize_compartment

    rng = np.random.default_rng(2)
    w = (rng.normal(0, 0.5, (5, 12)) * scale).astype(np.float32)
    bias = (b + rng.normal(0, abs(b) / 3 + 1e-9, 5)).astype(np.float32)
    q, rep = quantize_for(one_layer(w, theta, bias), LOIHI)
    comp = Compartment(5)
    comp.scale_u = False          # no filter normalization: the graph adds weights as they are
    comp.vth[:] = theta
    comp.bias[:] = bias
    # nengo-loihi maps the largest weight to 255 where spikeport maps it to 254: the same scale at w_max * 255/254
    info = discretize_compartment(comp, float(np.abs(w).max()) * 255 / 254)
    pop = rep["populations"][0]
    assert pop["weight_exponent"] == info["w_exp"]
    assert 1.0 / pop["lsb"] == pytest.approx(info["v_scale"], rel=1e-12)
    assert q.population("out").neuron.threshold == comp.vth[0] == pop["threshold_mantissa"] * 64
    np.testing.assert_array_equal(q.population("out").bias, comp.bias)
    if b == 50.0:
        assert pop["weight_exponent"] == -1     # the bias register forced a smaller exponent


def test_loihi_thresholds_are_mantissas_times_64():
    q, rep = quantize_for(conv_network(), LOIHI)
    for entry in rep["populations"]:
        pop = q.population(entry["name"])
        assert pop.neuron.threshold == entry["threshold_mantissa"] * 2**6 == entry["threshold_int"]
        assert 1 <= entry["threshold_mantissa"] < 2**17 and entry["threshold_exponent"] == 6
        theta = conv_network().population(entry["name"]).neuron.threshold
        assert entry["threshold_error"] == pytest.approx(abs(entry["threshold_int"] * entry["lsb"] - theta))


def test_loihi_threshold_that_fits_no_exponent_is_refused():
    with pytest.raises(SpikeportError, match=r"population 'out': threshold 1 needs a mantissa of \d+ "
                                             r"\(at most 131071, 17 bits\) even at weight exponent -7"):
        quantize_for(one_layer([[1e-7, -2e-8]]), LOIHI)


def test_loihi_per_projection_exponents_keep_precision_for_the_smaller_projection():
    net = two_scales()
    _, rep = quantize_for(net, LOIHI)
    _, per_layer = quantize(net, FixedPoint(weight_bits=8, state_bits=24))
    loihi, shared = by_name(rep["projections"]), by_name(per_layer["projections"])
    assert loihi["h->out"]["exponent"] == 0 and loihi["input->out"]["exponent"] <= -5
    assert loihi["input->out"]["lost_bits"] > 0          # the chip's two-part shift drops bits here
    # a finer step than one LSB shared across the post population: half the error, fewer zeroed weights
    assert loihi["input->out"]["lsb"] < 0.6 * shared["input->out"]["lsb"]
    assert loihi["input->out"]["mean_abs_error"] < 0.6 * shared["input->out"]["mean_abs_error"]
    assert loihi["input->out"]["zeroed_fraction"] < shared["input->out"]["zeroed_fraction"]
    # the larger projection into the same population is rounded exactly as the shared LSB rounds it
    assert loihi["h->out"]["max_abs_error"] == pytest.approx(shared["h->out"]["max_abs_error"])


# ---------------------------------------------------------------------------- SpiNNaker

@pytest.mark.parametrize("largest, shift", [(0.0, 0), (0.3, 0), (0.999, 0), (1.0, 1), (1.5, 1), (2.0, 2),
                                            (3.99, 2), (40.0, 6), (64.0, 7)])
def test_spinnaker_shift_is_the_smallest_power_above_the_largest_input(largest, shift):
    assert spinnaker_shift(largest) == shift


def _largest_input(net, post, sign):
    """sPyNNaker's bound from the exact synapses: sum over projections of largest weight x most synapses."""
    total, biggest = 0.0, 0.0
    for pr in net.projections_into(post):
        syn = pr.materialize(net.population(pr.pre).shape)
        keep = sign * syn.weight > 0
        if keep.any():
            w = float((sign * syn.weight[keep]).max())
            total += w * np.bincount(syn.post[keep]).max()
            biggest = max(biggest, w)
    return max(total, biggest)


@pytest.mark.parametrize("make", [lambda: small_network(encoding="regular"), conv_network])
def test_spinnaker_weights_are_16_bit_magnitudes_per_synapse_type(make):
    net = make()
    q, rep = quantize_for(net, SPINNAKER)
    assert q.fixed_point.state_bits == 32 and rep["format"]["state_fraction_bits"] == 15
    pops = by_name(rep["populations"])
    for pop in net.populations:
        if pop.is_input:
            continue
        for name, sign in (("excitatory", 1), ("inhibitory", -1)):
            t = pops[pop.name]["synapse_types"][name]
            assert t["max_summed_input"] == pytest.approx(_largest_input(net, pop.name, sign))
            assert t["shift"] == spinnaker_shift(_largest_input(net, pop.name, sign))
    for qp, pr, entry in zip(q.projections, net.projections, rep["projections"]):
        w = next(op.weight for op in qp.ops if "weight" in op.arrays()).astype(np.float64)
        for name, keep in (("excitatory", w > 0), ("inhibitory", w < 0)):
            r = pops[pr.post]["synapse_types"][name]["shift"]
            assert entry[f"shift_{name}"] == r
            k = np.abs(w[keep]) / 2**r                       # the 16-bit magnitude in the synaptic word
            np.testing.assert_array_equal(k, np.rint(k))
            assert k.size == 0 or k.max() <= 65535
    for entry in rep["populations"]:
        assert q.population(entry["name"]).neuron.threshold == round(
            net.population(entry["name"]).neuron.threshold * 2**15)


def test_spinnaker_threshold_beyond_s16_15_is_refused():
    with pytest.raises(SpikeportError, match=r"population 'out': threshold 70000 does not fit SpiNNaker's s16.15"):
        quantize_for(one_layer([[1.0, 2.0]], theta=70000.0), SPINNAKER)


# ---------------------------------------------------------------------------- reports and warnings

@pytest.mark.parametrize("chip", [LOIHI, SPINNAKER])
def test_report_errors_equal_a_direct_recomputation(chip):
    net = small_network(encoding="regular")
    q, rep = quantize_for(net, chip)
    lsb = {p["name"]: p["lsb"] for p in rep["populations"]}
    for pr, qp, entry in zip(net.projections, q.projections, rep["projections"]):
        w = pr.ops[0].weight.astype(np.float64)
        wq = qp.ops[0].weight.astype(np.float64) * lsb[pr.post]     # integer state units back to float units
        err = np.abs(wq - w)
        assert entry["max_abs_error"] == pytest.approx(err.max(), rel=1e-9)
        assert entry["mean_abs_error"] == pytest.approx(err.mean(), rel=1e-9)
        assert entry["zeroed_fraction"] == ((wq == 0) & (w != 0)).sum() / (w != 0).sum()
        assert entry["max_abs_error"] <= entry["lsb"] / 2 * (1 + 1e-9)   # nothing clipped: rounding only
    for entry in rep["populations"]:
        theta = net.population(entry["name"]).neuron.threshold
        assert entry["threshold_error"] == pytest.approx(abs(q.population(entry["name"]).neuron.threshold
                                                             * entry["lsb"] - theta))


@pytest.mark.parametrize("chip, bits", [(LOIHI, 8), (SPINNAKER, 16)])
def test_tiny_weights_becoming_zero_are_counted_and_warned(chip, bits):
    rng = np.random.default_rng(3)
    w = rng.normal(0, 1.0, (6, 40))
    w[:, 20:] *= 1e-6 if bits == 8 else 1e-9       # half the weights far below one step
    q, rep = quantize_for(one_layer(w), chip)
    entry = rep["projections"][0]
    zeroed = (q.projections[0].ops[0].weight == 0) & (w.astype(np.float32) != 0)
    assert entry["zeroed_fraction"] == pytest.approx(zeroed.sum() / w.size) and entry["zeroed_fraction"] >= 0.5
    lines = warnings(rep)
    assert any(line.startswith("input->out: ") and f"of nonzero weights became 0 at {bits} bits" in line
               for line in lines)
    assert not any("became 0" in line for line in warnings(rep, threshold=0.99))
    assert not any("became 0" in line for line in warnings(quantize_for(small_network(encoding="regular"),
                                                                      SPINNAKER)[1]))


def test_a_threshold_far_below_the_weights_is_warned():
    _, rep = quantize_for(one_layer([[1.0, -0.5]], theta=0.0005), LOIHI)
    pop = rep["populations"][0]
    assert pop["threshold_mantissa"] == 1 and pop["threshold_relative_error"] > 1
    assert any(line.startswith("out: threshold off by") for line in warnings(rep))


@pytest.mark.parametrize("chip", [LOIHI, SPINNAKER])
def test_an_analog_input_is_a_current_at_the_state_resolution(chip):
    _, rep = quantize_for(small_network(encoding="analog"), chip)
    entry, pop = rep["projections"][0], by_name(rep["populations"])["h"]
    assert entry["kind"] == "current" and entry["lsb"] == pop["lsb"]
    assert entry["max_abs_error"] <= pop["lsb"] / 2 * (1 + 1e-9)
    assert rep["projections"][1]["kind"] == "synapses"


# ---------------------------------------------------------------------------- running them

@pytest.mark.parametrize("chip, least", [(LOIHI, 0.95), (SPINNAKER, 0.99)])
def test_quantized_digits_network_agrees_with_the_float_one(digits_conv_snn, chip, least):
    net, ds = digits_conv_snn
    x = ds.x("test")[:100]
    q, rep = quantize_for(net, chip)
    assert q.fixed_point is not None and q.metadata["quantization"] is rep
    floating, fixed = run(net, x, 32), run(q, x, 32)
    agreement = float((floating.predictions[:, -1] == fixed.predictions[:, -1]).mean())
    assert agreement >= least
    # fixed point really ran: the counts are those of integer arithmetic, not of the float network
    assert not np.array_equal(floating.output_counts, fixed.output_counts)


def test_every_shipped_neuromorphic_profile_quantizes_and_runs():
    from spikeport.hardware_profiles import load_all

    net = small_network(encoding="regular")
    x = np.random.default_rng(0).random((8, 12)).astype(np.float32)
    for prof in load_all():
        if not prof.neuromorphic:
            continue
        q, rep = quantize_for(net, prof)
        assert rep["scheme"] == prof.quantization
        if prof.quantization == "none":
            assert q is net
            continue
        assert q.fixed_point is not None and len(rep["projections"]) == len(net.projections)
        if prof.is_unknown("precision.state_bits"):
            assert q.fixed_point.state_bits == 32 and "unknown" in rep["notes"][0]
        assert run(q, x, 16).predictions.shape == (8, 1)
