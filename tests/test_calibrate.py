"""Rate model, L4-norm adjustment, bias calibration, validate --diagnose (issue 9)."""
import json
import math

import numpy as np
import pytest

from conftest import conv_network, run_cli, small_network
from spikeport.backends.reference import run
from spikeport.errors import SpikeportError
from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection
from spikeport.models.calibrate import l4_adjust, rate_model
from spikeport.passes.calibrate import calibrate_bias, calibrate_membrane, calibrate_weights, choose_l4_alpha


def one_layer(w, bias=None, encoding="analog", neuron=None, max_rate=1000.0):
    w = np.asarray(w, dtype=np.float32)
    nm = neuron or NeuronModel("if", 1.0, "subtract")
    pops = [Population("input", (w.shape[1],), encoding=InputEncoding(encoding, max_rate)),
            Population("out", (w.shape[0],), neuron=nm, bias=None if bias is None else np.asarray(bias, np.float32))]
    return Network(pops, [Projection("input->out", "input", "out", [Dense(w)])], dt_s=1e-3,
                   output="out").validate()


def test_rate_model_by_hand():
    net = one_layer([[0.5, 0.25], [-1.0, 0.5], [2.0, 2.0]], bias=[0.1, 0.0, 0.0])
    x = np.array([[0.4, 0.8], [1.0, 0.0]])
    r = rate_model(net, x)["out"]
    expected = np.clip(x @ np.array([[0.5, 0.25], [-1.0, 0.5], [2.0, 2.0]]).T + [0.1, 0.0, 0.0], 0, 1)
    assert np.allclose(r, expected)
    # poisson input: the spike probability per step, x * rate * dt, clipped to 1
    net = one_layer([[1.0, 1.0]], encoding="poisson", max_rate=500.0)
    assert rate_model(net, np.array([[0.4, 1.0]]))["out"][0, 0] == pytest.approx(0.7)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_rate_model_of_lif_matches_the_executor(reset):
    nm = NeuronModel("lif", 1.0, reset, decay=0.9, refractory_steps=1)
    net = one_layer(np.eye(4), encoding="analog", neuron=nm)
    x = np.array([[0.05, 0.15, 0.3, 0.9]])
    steps = 2000
    measured = run(net, x, steps, record_counts=True).neuron_counts["out"] / steps
    predicted = rate_model(net, x)["out"]
    assert predicted[0, 0] == 0.0 and measured[0, 0] == 0.0  # below the leak's fixed point theta (1 - lam)
    assert np.allclose(predicted, measured, atol=0.003), (predicted, measured)


def test_l4_scale_by_hand():
    w = np.array([[0.5, -0.5, 1.0], [0.2, 0.2, 0.2]])
    net = one_layer(w, bias=[0.1, 0.05], encoding="poisson")
    x = np.array([[0.2, 0.5, 0.9], [0.6, 0.1, 0.3]])
    steps = 16
    adj, rep = l4_adjust(net, x, steps, alpha=1.0, mode="scale", sigma="l4")
    v = x * (1 - x)                                   # Bernoulli variance of each input per step
    s = np.mean(np.sqrt(np.sqrt((v ** 2).sum(axis=1))))  # mean of ||v||_2^(1/2)
    l4 = (w ** 4).sum(axis=1) ** 0.25
    rates = np.clip(x @ w.T + [0.1, 0.05], 0, 1)
    a = rates[rates > 0].mean()
    factor = 1 + math.sqrt(2 / math.pi) * s * l4 / (a * math.sqrt(steps))
    got = adj.projections[0].ops[0].weight
    assert np.allclose(got, w / factor[:, None], rtol=1e-6)
    assert np.allclose(adj.population("out").bias, np.array([0.1, 0.05]) / factor, rtol=1e-6)
    assert rep[0]["factor_max"] == pytest.approx(factor.max())
    assert adj.metadata["conversion"]["adjustments"][-1]["method"] == "l4"
    # the original is untouched
    assert np.array_equal(net.projections[0].ops[0].weight, w.astype(np.float32))


def test_l4_shift_exact_sigma_by_hand():
    w = np.array([[0.5, -0.5, 1.0], [0.2, 0.2, 0.2]])
    net = one_layer(w, encoding="poisson")
    x = np.array([[0.2, 0.5, 0.9], [0.6, 0.1, 0.3]])
    adj, _ = l4_adjust(net, x, 9, alpha=2.0, mode="shift", sigma="exact")
    v = x * (1 - x)
    sigma = np.sqrt(((w ** 2) @ v.T).mean(axis=1))
    assert np.allclose(adj.population("out").bias, -2.0 * math.sqrt(2 / math.pi) * sigma / 3.0, rtol=1e-6)


def test_l4_leaves_analog_first_layer_alone():
    net = one_layer([[0.5, -0.5]], bias=[0.2])
    adj, rep = l4_adjust(net, np.array([[0.3, 0.4]]), 8)
    assert np.array_equal(adj.projections[0].ops[0].weight, net.projections[0].ops[0].weight)
    assert rep[0]["factor_max"] == 1.0


def test_l4_shift_removes_spurious_spikes_of_a_zero_drift_neuron():
    # excitation and inhibition balance: the ANN is silent, the noisy walk's running maximum is not
    w = np.array([[0.4] * 8 + [-0.4] * 8])
    net = one_layer(w, encoding="poisson")
    x = np.full((400, 16), 0.5, dtype=np.float32)
    steps = 32
    before = run(net, x, steps, seed=3).output_counts.mean()
    adj, _ = l4_adjust(net, x[:50], steps, mode="shift", sigma="exact")
    after = run(adj, x, steps, seed=3).output_counts.mean()
    assert rate_model(net, x[:1])["out"][0, 0] == 0.0
    assert before > 1.0 and after < 0.5 * before, (before, after)


def test_l4_on_convolutions_scales_per_output_channel():
    net = conv_network(encoding="poisson")
    x = np.random.default_rng(0).random((20, 2, 8, 8)).astype(np.float32)
    adj, _ = l4_adjust(net, x, 16)
    before = [p for p in net.projections if p.post == "c"][0].ops[0].weight
    after = [p for p in adj.projections if p.post == "c"][0].ops[0].weight
    ratio = after / before
    per_channel = ratio.reshape(ratio.shape[0], -1)
    assert np.allclose(per_channel, per_channel[:, :1], rtol=1e-5)  # one factor per output channel
    assert (per_channel < 1).all()
    # a residual population (two projections in) has both of its chains scaled
    outs = [(p, q) for p, q in zip(net.projections, adj.projections) if p.post == "out"]
    assert len(outs) == 2
    for p, q in outs:
        assert not np.allclose(p.apply_numpy(np.ones((1,) + net.population(p.pre).shape)),
                               q.apply_numpy(np.ones((1,) + net.population(p.pre).shape)))


def test_choose_alpha_returns_the_best_of_the_grid():
    net = small_network(encoding="poisson")
    x = np.random.default_rng(1).random((60, 12)).astype(np.float32)
    y = rate_model(net, x)["out"].argmax(axis=1)
    alpha, scores = choose_l4_alpha(net, x, y, 8, alphas=(0.0, 1.0, 3.0))
    assert set(scores) == {0.0, 1.0, 3.0} and scores[alpha] == max(scores.values())


def test_bias_calibration_by_hand():
    # drive 0.3 per step, v(0) = 0, T = 4: v = 0.3 0.6 0.9 1.2 -> one spike, rate 0.25 against the ANN's 0.3
    net = one_layer([[1.0]])
    cal, rep = calibrate_bias(net, np.array([[0.3]]), 4)
    assert cal.population("out").bias == pytest.approx([0.05], abs=1e-7)
    assert rep[0]["rate_error_before"] == pytest.approx(0.05)
    assert cal.metadata["conversion"]["adjustments"][-1] == {"method": "bias-calibration", "steps": 4,
                                                            "calibration_samples": 1, "seed": 1,
                                                            "target": "rate model"}


def test_membrane_calibration_by_hand():
    # the neuron of the bias test: 0.05 spikes per step missing over T = 4 steps -> v(0) raised by
    # T * 0.05 = 0.2 (the bias untouched); over T = 8 (2 spikes of 2.4) by 0.4, and the charge
    # 0.4 + 8 * 0.3 = 2.8 still gives 2 spikes: the calibration moves the mean, not the floor
    net = one_layer([[1.0]])
    cal, rep = calibrate_membrane(net, np.array([[0.3]]), 4)
    assert cal.population("out").v_init == pytest.approx([0.2], abs=1e-6) and cal.population("out").bias is None
    assert rep[0]["rate_error_before"] == pytest.approx(0.05)
    assert cal.metadata["conversion"]["adjustments"][-1]["method"] == "membrane-calibration"
    cal8, _ = calibrate_membrane(net, np.array([[0.3]]), 8)
    assert cal8.population("out").v_init == pytest.approx([0.4], abs=1e-6)
    assert run(cal8, np.array([[0.3]]), 8, record_counts=True).neuron_counts["out"][0, 0] == 2


def test_bias_calibration_per_channel_on_convolutions():
    net = conv_network(encoding="analog")
    x = np.random.default_rng(0).random((30, 2, 8, 8)).astype(np.float32)
    cal, _ = calibrate_bias(net, x, 6)
    delta = cal.population("c").bias - net.population("c").bias
    assert np.allclose(delta, delta[:, :1, :1])  # constant within a channel
    assert np.abs(delta).max() > 0


def test_bias_calibration_recovers_digits_at_four_steps(digits_model):
    import spikeport
    from spikeport.models import convert

    ds = spikeport.load_dataset("digits")
    net = convert(digits_model.module, ds.x("train"))
    x, y = ds.x("test"), ds.y("test")
    plain = run(net, x, 4).accuracy(y)
    cal, _ = calibrate_bias(net, ds.x("train")[:300], 4)
    calibrated = run(cal, x, 4).accuracy(y)
    # measured 95.5 % -> 99.2 % (ANN 99.4 %)
    assert calibrated >= 0.985 and calibrated > plain + 0.02, (plain, calibrated)


def test_weight_calibration_by_hand():
    # input -> h (weight 1) -> out (weight 1), IF, v(0) = 0, T = 4: h fires floor(4 x) times,
    # rates r = 0.25 0.25 0.5 0.75 for x = 0.3 0.45 0.6 0.8. The drives of out, x (the rate model)
    # against w' r (the SNN), all inside (0, theta): least squares, w' = sum x r / sum r^2 = 1.16
    nm = NeuronModel("if", 1.0, "subtract")
    pops = [Population("input", (1,), encoding=InputEncoding("analog", 1000.0)), Population("h", (1,), neuron=nm),
            Population("out", (1,), neuron=nm)]
    projs = [Projection("input->h", "input", "h", [Dense(np.ones((1, 1), np.float32))]),
             Projection("h->out", "h", "out", [Dense(np.ones((1, 1), np.float32))])]
    net = Network(pops, projs, dt_s=1e-3, output="out").validate()
    x = np.array([[0.3], [0.45], [0.6], [0.8]])
    cal, rep = calibrate_weights(net, x, 4, ridge=0.0, bias=False)
    w_h, w_out = (float(p.ops[0].weight[0, 0]) for p in cal.projections)
    assert w_h == 1.0                                   # its input is exact: nothing to fit
    assert w_out == pytest.approx(1.0875 / 0.9375, abs=1e-5)
    assert rep[1]["drive_error_after"] < rep[1]["drive_error_before"]
    # a strong ridge keeps the weights where they were
    stiff, _ = calibrate_weights(net, x, 4, ridge=1e6, bias=False)
    assert stiff.projections[1].ops[0].weight[0, 0] == pytest.approx(1.0, abs=1e-4)
    assert cal.metadata["conversion"]["adjustments"][-1]["method"] == "weight-calibration"


def test_weight_calibration_fits_convolutions_and_keeps_accuracy(digits_model):
    net = conv_network(encoding="analog")
    x = np.random.default_rng(0).random((30, 2, 8, 8)).astype(np.float32)
    cal, rep = calibrate_weights(net, x, 6)
    fitted = [r for r in rep if r["fitted"] and r["drive_error_before"] > 0]
    assert fitted and all(r["drive_error_after"] < r["drive_error_before"] for r in fitted), rep
    for before, after in zip(net.projections, cal.projections):
        assert [op.kind for op in before.ops] == [op.kind for op in after.ops]
    import spikeport
    from spikeport.models import convert

    ds = spikeport.load_dataset("digits")
    net = convert(digits_model.module, ds.x("train"))
    cal, _ = calibrate_weights(net, ds.x("train")[:300], 4)
    # measured 98.9 % at T = 4 (uncalibrated 95.5 %, bias calibration alone 99.2 %; ANN 99.4 %)
    assert run(cal, ds.x("test"), 4).accuracy(ds.y("test")) >= 0.98


def test_cli_convert_adjusts_and_validate_diagnoses(tmp_path, digits_model_file):
    net = tmp_path / "c.spk"
    r = run_cli("convert", digits_model_file, "--for-steps", "4", "--calibrate", "membrane", "--calib-samples", "100",
                "--out", tmp_path / "m.spk")
    assert r.returncode == 0 and "initial membrane calibration towards the ANN (T = 4, 100 samples)" in r.stdout
    r = run_cli("convert", digits_model_file, "--for-steps", "4", "--calibrate", "weights", "--l4", "shift",
                "--calib-samples", "200", "--out", net)
    assert r.returncode == 0, r.stderr
    assert "bias calibration towards the ANN (T = 4, 200 samples)" in r.stdout and "L4 adjustment (shift" in r.stdout
    assert "weight calibration towards the ANN (T = 4, 200 samples)" in r.stdout
    for args, message in ((("--l4", "scale"), "give --for-steps T"),
                          (("--norm", "l4"), "give --for-steps T"),
                          (("--for-steps", "8", "--l4-alpha", "2"), "--for-steps, --l4-alpha apply to --l4 and")):
        r = run_cli("convert", digits_model_file, *args, "--out", tmp_path / "never.spk")
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert not (tmp_path / "never.spk").exists()
    out = tmp_path / "v.json"
    r = run_cli("validate", net, "--diagnose", "--steps", "16", "--samples", "40", "--json", out,
                "--model", digits_model_file)
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep["agreement"] == 1.0 and rep["samples"] == 40 and rep["backend"] == "reference"
    assert set(rep["rate_correlation"]) == {"fc1", "fc2", "fc3"}
    assert [l["name"] for l in rep["diagnosis"]["layers"]] == ["fc1", "fc2", "fc3"]
    assert "PyTorch model" in rep["diagnosis"]["compared_with"]
    r = run_cli("validate", net, "--backend", "loihi-chip")
    assert r.returncode == 2 and "unknown backend 'loihi-chip'" in r.stderr


def test_validate_names_the_broken_layer(tmp_path, digits_model_file):
    from spikeport.ir import load_network, save_network

    good = tmp_path / "g.spk"
    assert run_cli("convert", digits_model_file, "--out", good).returncode == 0
    net = load_network(good)
    proj = [p for p in net.projections if p.post == "fc2"][0]
    proj.ops[-1].weight = proj.ops[-1].weight * 8  # saturates fc2
    bad = tmp_path / "b.spk"
    save_network(net, bad)
    for path, first_bad in ((good, None), (bad, "fc2")):
        out = tmp_path / f"d-{path.stem}.json"        # a new output each time (an existing one needs --force)
        r = run_cli("validate", path, "--diagnose", "--model", digits_model_file, "--steps", "64",
                    "--samples", "60", "--json", out)
        assert r.returncode == 0, r.stderr
        assert json.loads(out.read_text())["diagnosis"]["first_bad"] == first_bad, r.stdout
    assert "first layer where agreement drops: fc2" in r.stdout


def test_api_convert_adjusts_and_checks_its_options_before_any_work(digits_model, monkeypatch):
    """spikeport.convert includes the L4 adjustment and calibration (what `spikeport convert` runs);
    options that cannot apply are refused before the model is converted."""
    import spikeport
    from spikeport import models

    ds = spikeport.load_dataset("digits")
    notes = []
    net = spikeport.convert(digits_model, ds.x("train"), labels=ds.y("train"), for_steps=4, calibrate="bias",
                            calib_samples=100, notes=notes)
    assert [a["method"] for a in net.metadata["conversion"]["adjustments"]] == ["bias-calibration"]
    assert len(notes) == 1 and notes[0].startswith("bias calibration towards the ANN (T = 4, 100 samples)")

    def never(*args, **kwargs):
        raise AssertionError("converted before the options were checked")

    monkeypatch.setattr(models, "convert", never)
    for kwargs, message in ((dict(l4="scale"), "give --for-steps T"),
                            (dict(calibrate="bias", for_steps=4, calib_samples=0), "--calib-samples must be at least 1"),
                            (dict(calibrate="offset", for_steps=4), "unknown calibration 'offset'"),
                            (dict(l4="scale", l4_alpha="auto", for_steps=4), "no labels y")):
        with pytest.raises(SpikeportError, match=message):
            spikeport.convert(digits_model, ds.x("train"), **kwargs)
