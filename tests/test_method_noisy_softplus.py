"""Noisy Softplus (Liu & Furber): the activation against its formula, the NSP fit against
the published constants and a known curve, training on digits, and the converted LIF
network: its neuron model and units, its accuracy and rates, and NEST agreeing with the
reference executor spike for spike."""
import math

import numpy as np
import pytest
import torch

import spikeport
from spikeport.backends import reference
from spikeport.models.architectures import ArchSpec
from spikeport.models.methods import get_method
from spikeport.models.nsp_fit import fit_nsp, fit_rates, noisy_softplus_rate, psc_exp_propagators, synthetic_check
from spikeport.models.training import TrainedModel, load_model, method_accuracy, save_model, train

NSP = get_method("noisy-softplus")


@pytest.fixture(scope="module")
def digits():
    return spikeport.load_dataset("digits")


@pytest.fixture(scope="module")
def trained(digits):
    torch.set_num_threads(1)
    return train(digits, method="noisy-softplus", epochs=15, seed=0, hidden=(64,))


@pytest.fixture(scope="module")
def snn(trained, digits):
    return NSP.to_network(trained, digits.x("train")[:100])


def test_activation_and_its_gradient_follow_the_formula():
    k = 0.3
    x = torch.tensor([-0.4, -0.05, 0.0, 0.02, 0.3, 2.0], dtype=torch.float64, requires_grad=True)
    sigma = torch.tensor([0.2, 0.5, 1.0, 0.05, 0.3, 0.1], dtype=torch.float64)
    f = NSP.noisy_softplus(x, sigma, k)
    ks = k * sigma.numpy()
    expected = ks * np.log1p(np.exp(x.detach().numpy() / ks))
    np.testing.assert_allclose(f.detach().numpy(), expected, rtol=1e-12)
    f.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), 1 / (1 + np.exp(-x.detach().numpy() / ks)), rtol=1e-12)
    # sigma -> 0 is floored: the unit is a ReLU, not a division by zero
    z = NSP.noisy_softplus(torch.tensor([-1.0, 0.5]), torch.zeros(2), k)
    np.testing.assert_allclose(z.numpy(), [0.0, 0.5], atol=1e-6)


def test_a_layer_gets_the_noise_of_its_inputs_and_sigma_is_constant_in_backprop():
    """sigma_j^2 = sum_i 0.5 w_ij^2 x_i with x_i the source's rate times tau_syn; only the
    mean current carries gradient."""
    torch.manual_seed(0)
    opts = NSP.METHOD.resolve_options({"input_rate_hz": 100.0})
    net = NSP.build(ArchSpec(arch="mlp", input_shape=(6,), classes=3, hidden=(4,)), opts)
    pixels = torch.rand(5, 6, dtype=torch.float32)
    x_in = pixels * 100.0 * 0.005           # rate times tau_syn
    w1, b1 = net.fc1.weight, net.fc1.bias
    mean = x_in @ w1.T + b1
    sigma = torch.sqrt(0.5 * x_in @ (w1 ** 2).T)
    p = 201.0 * 0.005
    hidden = p * 0.3 * sigma * torch.log1p(torch.exp(mean / (0.3 * sigma)))
    w2, b2 = net.fc2.weight, net.fc2.bias
    mean2 = hidden @ w2.T + b2
    sigma2 = torch.sqrt(0.5 * hidden @ (w2 ** 2).T)
    expected = p * 0.3 * sigma2 * torch.log1p(torch.exp(mean2 / (0.3 * sigma2)))
    out = net(pixels)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-7)
    out.sum().backward()
    grad_b2 = (p * torch.sigmoid(mean2 / (0.3 * sigma2.detach()))).sum(0)   # no d sigma / d b2 term anyway
    torch.testing.assert_close(net.fc2.bias.grad, grad_b2.detach(), rtol=1e-5, atol=1e-7)
    grad_w2 = (p * torch.sigmoid(mean2 / (0.3 * sigma2))).T @ hidden        # mean path only
    torch.testing.assert_close(net.fc2.weight.grad, grad_w2.detach(), rtol=1e-4, atol=1e-6)


def test_pooling_units_are_neurons_with_weights_one_over_s2_p(digits):
    """Each average pooling is followed by a population of pooling units (x = avg / p,
    sigma^2 = 0.5 avg / (s^2 p^2)); in the SNN their synapses weigh P21 / (s^2 p)."""
    torch.manual_seed(0)
    opts = NSP.METHOD.resolve_options({})
    net = NSP.build(ArchSpec(arch="6c3-p2", input_shape=(1, 8, 8), classes=10, bias=False), opts)
    pool = net.pool1_nsp
    avg = torch.tensor([[0.0, 0.2, 1.0]])
    p = 201 * 0.005
    sigma = torch.sqrt(0.5 * avg / (4 * p ** 2))
    torch.testing.assert_close(pool(avg), p * NSP.noisy_softplus(avg / p, sigma, 0.3))
    model = TrainedModel(net, ArchSpec(arch="6c3-p2", input_shape=(1, 8, 8), classes=10, bias=False),
                         {"options": opts})
    snn = NSP.to_network(model, digits.x("train")[:10])
    assert [p.name for p in snn.populations] == ["input", "conv1", "pool1_nsp", "fc1"]
    p21 = psc_exp_propagators(20.0, 5.0, 0.25, 1.0)[2]
    into_pool = snn.projections_into("pool1_nsp")[0].materialize(snn.population("conv1").shape)
    np.testing.assert_allclose(into_pool.weight, p21 / (4 * p), rtol=1e-6)
    into_conv = snn.projections_into("conv1")[0].materialize((1, 8, 8))
    np.testing.assert_allclose(np.sort(np.unique(into_conv.weight)),
                               np.sort(np.unique(net.conv1.weight.detach().numpy().ravel() * p21)), rtol=1e-5)


def test_the_converted_network_is_the_declared_lif_in_nest_units(snn, trained):
    spec = NSP.METHOD.snn
    assert (spec.neuron, spec.threshold, spec.reset, spec.tau_rc_s, spec.tau_syn_s, spec.tau_ref_s) == \
        ("lif", 15.0, "zero", 0.02, 0.005, 0.001)
    inp = snn.population(snn.input)
    assert (inp.encoding.kind, inp.encoding.max_rate_hz) == ("poisson", 200.0)
    p11, p22, p21, p20 = psc_exp_propagators(20.0, 5.0, 0.25, 1.0)
    assert p21 == pytest.approx(3.53330, abs=1e-4) and p20 == pytest.approx(80 * (1 - math.exp(-0.05)))
    for pop in snn.populations[1:]:
        nm = pop.neuron
        assert (nm.model, nm.threshold, nm.reset, nm.refractory_steps, nm.v_init) == ("lif", 15.0, "zero", 1, 0.0)
        assert nm.decay == pytest.approx(math.exp(-1 / 20), rel=1e-12)
        assert nm.syn_decay == pytest.approx(math.exp(-1 / 5), rel=1e-12)
    # weights are the trained nA times P21; constant currents (i_offset 0.1 nA + bias) times P20
    w = snn.projections_into("fc1")[0].materialize(inp.shape)
    dense = np.zeros((64, 64))
    dense[w.post, w.pre] = w.weight
    np.testing.assert_allclose(dense, trained.module.fc1.weight.detach().numpy() * p21, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(snn.population("fc1").bias,
                               (trained.module.fc1.bias.detach().numpy() + 0.1) * p20, rtol=1e-5, atol=1e-6)


def test_training_on_digits_lowers_the_loss_and_the_snn_classifies(trained, snn, digits):
    losses = [h["loss"] for h in trained.meta["history"]]
    assert losses[-1] < 0.25 * losses[0]
    assert trained.meta["test_accuracy"] > 0.93
    act = reference.run(snn, digits.x("test"), 300, checkpoints=[100, 300], seed=0)
    snn_acc = act.accuracy(digits.y("test"), steps=300)
    assert snn_acc > 0.90                                  # chance is 0.10
    assert abs(snn_acc - trained.meta["test_accuracy"]) < 0.04  # the ANN predicts its own SNN


def test_ann_rates_predict_the_lif_rates(trained, snn, digits):
    """S * f(x, sigma) is the rate of the LIF neuron: the hidden layer's ANN output over
    tau_syn against its spike counts over 300 ms."""
    x = digits.x("test")[:100]
    seen = {}
    hook = trained.module.relu1.register_forward_hook(lambda m, i, o: seen.update(y=o.detach().numpy()))
    with torch.no_grad():
        trained.module(torch.as_tensor(x))
    hook.remove()
    ann_hz = seen["y"] / 0.005
    act = reference.run(snn, x, 300, record_counts=True, seed=1)
    snn_hz = act.neuron_counts["fc1"].reshape(len(x), -1) / 0.3
    assert np.corrcoef(ann_hz.ravel(), snn_hz.ravel())[0, 1] > 0.95
    assert abs(snn_hz.mean() - ann_hz.mean()) < 0.15 * ann_hz.mean()


def test_fine_tuning_trains_nsp_with_shifted_labels(trained, digits):
    opts = NSP.METHOD.resolve_options({"activation": "relu", "fine_tune": True})
    net = NSP.build(trained.spec, opts)
    assert {m.activation for m in net.modules() if type(m).__name__ == "NoisySoftplus"} == {"nsp"}
    t = NSP.targets(torch.tensor([2, 0]), 3, opts)
    np.testing.assert_allclose(t.numpy(), [[0.01, 0.01, 1.01], [1.01, 0.01, 0.01]], rtol=1e-6)
    tuned = train(digits, method="noisy-softplus", epochs=1, seed=0, hidden=(64,), lr=1e-4, init=trained,
                  options={"fine_tune": True})
    assert tuned.meta["test_accuracy"] > trained.meta["test_accuracy"] - 0.02


def test_model_file_round_trip_keeps_the_options(trained, digits, tmp_path):
    path = save_model(trained, tmp_path / "nsp.pt")
    again = load_model(path)
    x = torch.as_tensor(digits.x("test")[:20])
    with torch.no_grad():
        torch.testing.assert_close(again.module(x), trained.module(x))
    ctx_acc = method_accuracy(NSP, again.module, digits.x("test"), digits.y("test"), again.meta["options"])
    assert ctx_acc == pytest.approx(trained.meta["test_accuracy"])


def test_options_that_make_no_neuron_are_refused(digits):
    with pytest.raises(spikeport.SpikeportError, match="'k' must be > 0"):
        NSP.build(ArchSpec(arch="mlp", input_shape=(64,), classes=10), {"k": 0.0})
    with pytest.raises(spikeport.SpikeportError, match="BatchNorm"):
        NSP.build(ArchSpec(arch="cnn", input_shape=(1, 8, 8), classes=10), {})
    with pytest.raises(spikeport.SpikeportError, match="activation"):
        NSP.build(ArchSpec(arch="mlp", input_shape=(64,), classes=10), {"activation": "tanh"})


def test_the_fit_recovers_known_constants_from_noisy_rates():
    for k, S in [(0.3, 201.0), (0.19, 208.76), (0.5, 150.0)]:
        fk, fS = synthetic_check(k, S, noise_hz=2.0, seed=1)
        assert fk == pytest.approx(k, rel=0.05) and fS == pytest.approx(S, rel=0.03)
    # exact rates: exact constants, the bias too
    mu, sd = np.meshgrid(np.linspace(-0.5, 0.6, 12), [0.2, 0.5, 1.0], indexing="ij")
    k, S, b, rms = fit_rates(mu, sd, noisy_softplus_rate(mu - 0.07, sd, 0.18, 201.66), fit_bias=True)
    assert (k, S, b) == pytest.approx((0.18, 201.66, 0.07), rel=1e-4) and rms < 1e-3


def test_the_simulated_fit_reproduces_the_published_constants():
    """The authors' procedure on the authors' neuron (tau_syn 5 ms): k 0.30, S 201 Hz/nA."""
    fit = fit_nsp(tau_syn_ms=5.0, seed=0)
    assert fit.k == pytest.approx(0.30, rel=0.05) and fit.S_hz_per_na == pytest.approx(201.0, rel=0.05)
    assert fit.rates_hz.shape == (12, 3) and fit.residual_hz < 8.0
    # the lowest noise level is silent far below threshold and fires ~127 Hz at 0.6 nA
    assert fit.rates_hz[0, 0] == 0.0 and 115 < fit.rates_hz[-1, 0] < 140


def test_nest_runs_the_converted_network_spike_for_spike(digits):
    pynn_nest = pytest.importorskip("spikeport.backends.pynn_nest")
    torch.manual_seed(0)
    model = train(digits, method="noisy-softplus", epochs=2, seed=1, hidden=(24,))
    net = NSP.to_network(model, digits.x("train")[:20])
    x = digits.x("test")[:5]
    ref = reference.run(net, x, 60, record_counts=True, seed=3, precision="float64")
    act = pynn_nest.run(net, x, 60, record_counts=True, seed=3)
    assert sum(int(c.sum()) for k, c in ref.neuron_counts.items() if k != "input") > 100
    for name in ref.neuron_counts:
        np.testing.assert_array_equal(act.neuron_counts[name], ref.neuron_counts[name], err_msg=name)
    np.testing.assert_array_equal(act.predictions, ref.predictions)
