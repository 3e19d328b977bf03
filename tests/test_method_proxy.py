"""Proxy learning (Kheradpisheh et al. 2022): the SNN trained through its ReLU proxy, its
conversion, and the scoring of tied spike counts."""
import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from spikeport.backends import reference  # noqa: E402
from spikeport.errors import SpikeportError  # noqa: E402
from spikeport.datasets import load_dataset  # noqa: E402
from spikeport.models.architectures import ArchSpec  # noqa: E402
from spikeport.models.convert import convert  # noqa: E402
from spikeport.models.methods import describe, get_method  # noqa: E402
from spikeport.models.training import load_model, method_accuracy, save_model, train  # noqa: E402

proxy = get_method("proxy")
ARCH = "16c3s-p2-32c3s-p2-64"
# float32 named: "auto" (the default) picks bfloat16 on CPUs with AMX or AVX512-BF16 only
OPTIONS = {"ann_epochs": 1, "ann_lr_scale": 1.0, "train_precision": "float32"}
EPOCHS = 6


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def trained(digits):
    """A few epochs on digits: one of the ANN alone, then proxy epochs (lr and batch for 8 x 8
    digits; the paper's are for Fashion-MNIST)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same trajectory on every machine
    try:
        return train(digits, arch=ARCH, method="proxy", epochs=EPOCHS, lr=3e-3, batch_size=25, seed=0,
                     options=OPTIONS)
    finally:
        torch.set_num_threads(threads)


def _counts(model, x):
    o = proxy.METHOD.resolve_options(model.meta["options"])
    return proxy.simulate(model.module, torch.as_tensor(x), o["T"], o["threshold"])


def test_declaration_is_the_papers():
    d = describe("proxy")
    assert d["snn"]["neuron"] == "if" and d["snn"]["threshold"] == 2.0 and d["snn"]["reset"] == "zero"
    assert d["snn"]["encoding"] == "analog" and d["snn"]["steps"] == 15
    assert d["options"]["T"] == 15 and d["options"]["threshold"] == 2.0
    assert d["defaults"]["lr"]["default"] == 1e-4 and d["defaults"]["batch_size"]["default"] == 100
    assert d["defaults"]["arch_flags"] == {"bias": False, "batchnorm": True}


def test_fashion_architecture_is_the_notebooks():
    """Three 128-channel 3x3 convolutions with BatchNorm, pooling after the 2nd and 3rd,
    fully connected 2560-1152-256-10, no biases, no BatchNorm after fully connected layers."""
    spec = ArchSpec(arch=proxy.METHOD.arch_for("fashion-mnist"), input_shape=(1, 28, 28), classes=10,
                    **proxy.METHOD.defaults["arch_flags"])
    module = proxy.build(spec, proxy.METHOD.resolve_options({}))
    convs = [m for m in module if isinstance(m, torch.nn.Conv2d)]
    fcs = [m for m in module if isinstance(m, torch.nn.Linear)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == \
        [(1, 128, (3, 3), (1, 1)), (128, 128, (3, 3), (1, 1)), (128, 128, (3, 3), (1, 1))]
    assert [(f.in_features, f.out_features) for f in fcs] == [(6272, 2560), (2560, 1152), (1152, 256), (256, 10)]
    assert all(m.bias is None for m in convs + fcs)
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in module) == 3
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in module)


def test_training_lowers_the_loss_and_the_snn_learns(trained, digits):
    history = trained.meta["history"]
    proxy_losses = [h["loss"] for h in history[OPTIONS["ann_epochs"]:]]
    assert proxy_losses[-1] < 0.7 * proxy_losses[0]
    # the trainer's test accuracy is the SNN's spike counts, ties counted wrong; chance is 10 %
    assert trained.meta["test_accuracy"] > 0.6


def test_converted_network_is_the_modules_snn(trained, digits):
    net = convert(trained)
    inp = net.population(net.input)
    assert inp.encoding.kind == "analog"
    spiking = [p for p in net.populations if not p.is_input]
    assert len(spiking) == 4
    for p in spiking:
        assert (p.neuron.model, p.neuron.threshold, p.neuron.reset, p.neuron.v_init) == ("if", 2.0, "zero", 0.0)
    x = digits.x("test")[:300]
    counts, membranes = _counts(trained, x)
    act = reference.run(net, x, steps=15, device="cpu", batch_size=len(x), chunk_steps=15)
    assert np.array_equal(act.output_counts, counts.numpy().astype(np.int64))
    assert counts.sum() > 100  # not a trivially silent network
    # the graph's readout: most spikes, ties to the higher membrane, then the lower index
    top = counts.max(dim=1, keepdim=True).values
    by_membrane = torch.where(counts == top, membranes, torch.full_like(membranes, -float("inf"))).argmax(dim=1)
    assert np.array_equal(act.predictions[:, -1], by_membrane.numpy())


def test_tied_counts_are_scored_wrong(trained, digits):
    """Two output neurons with the same weights always tie: samples of those classes never
    count as right, although the public notebook's rule (the label's count equals the
    maximum) takes most of them."""
    module = copy.deepcopy(trained.module)
    output = list(module.children())[-1]
    with torch.no_grad():
        output.weight[1] = output.weight[0]
    x, y = digits.x("test"), digits.y("test")
    o = proxy.METHOD.resolve_options(trained.meta["options"])
    counts, _ = proxy.simulate(module, torch.as_tensor(x), o["T"], o["threshold"])
    assert torch.equal(counts[:, 0], counts[:, 1])
    of_0_1 = np.isin(y, [0, 1])
    assert method_accuracy(proxy, module, x[of_0_1], y[of_0_1], o) == 0.0
    notebook_rule = counts[torch.arange(len(y)), torch.as_tensor(y)] == counts.max(dim=1).values
    assert notebook_rule.numpy()[of_0_1].mean() > 0.5
    # everywhere: right only where the label's count is the maximum alone
    label = counts[torch.arange(len(y)), torch.as_tensor(y)]
    alone = (counts == label[:, None]).sum(dim=1) == 1
    expected = ((label == counts.max(dim=1).values) & alone).double().mean().item()
    assert method_accuracy(proxy, module, x, y, o) == pytest.approx(expected, abs=1e-12)


def test_model_file_keeps_the_snn_statistics(trained, digits, tmp_path):
    path = save_model(trained, tmp_path / "proxy.pt")
    loaded = load_model(path)
    bn = loaded.module.bn1
    assert torch.equal(bn.snn_mean, trained.module.bn1.snn_mean)
    assert not torch.equal(bn.snn_mean, bn.running_mean)  # the SNN's own, not the ANN's
    x = digits.x("test")[:100]
    assert torch.equal(_counts(loaded, x)[0], _counts(trained, x)[0])


def test_shift_moves_by_at_most_one_pixel_with_a_zero_border():
    x = torch.rand(64, 1, 28, 28)
    out = proxy._shift(x, 1, torch.Generator().manual_seed(3))
    assert torch.all(out[..., 0, :] == 0) and torch.all(out[..., :, 27] == 0)
    for i in range(64):
        found = [(a, b) for a in range(3) for b in range(3)
                 if torch.equal(out[i, 0, 1:27, 1:27], x[i, 0, a:a + 26, b:b + 26])]
        assert len(found) == 1
    assert torch.equal(out, proxy._shift(x, 1, torch.Generator().manual_seed(3)))
    small = torch.rand(4, 1, 8, 8)
    assert torch.equal(proxy._shift(small, 1, torch.Generator().manual_seed(3)), small)


def test_bfloat16_training_learns_and_evaluates_in_float32(digits):
    """train_precision="bfloat16": the ANN under autocast and the SNN's currents in bfloat16
    train as well on digits; validation and the model's SNN stay float32 (the counts of the
    trained module are those of the float32 simulation)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = train(digits, arch=ARCH, method="proxy", epochs=EPOCHS, lr=3e-3, batch_size=25, seed=0,
                      options={**OPTIONS, "train_precision": "bfloat16"})
    finally:
        torch.set_num_threads(threads)
    losses = [h["loss"] for h in model.meta["history"][OPTIONS["ann_epochs"]:]]
    assert losses[-1] < 0.7 * losses[0]
    assert model.meta["test_accuracy"] > 0.6
    assert model.meta["resolved_options"] == {"train_precision": "bfloat16"}
    x = digits.x("test")[:200]
    net = convert(model)
    act = reference.run(net, x, steps=15, device="cpu", batch_size=len(x), chunk_steps=15)
    assert np.array_equal(act.output_counts, _counts(model, x)[0].numpy().astype(np.int64))


def test_bfloat16_currents_are_the_float32_ones_rounded(trained, digits):
    """The SNN pass in bfloat16 (training only) computes W s from exact spikes and rounded
    weights: its counts stay close to the float32 pass's, not equal by construction."""
    x = torch.as_tensor(digits.x("test")[:200])
    o = proxy.METHOD.resolve_options(trained.meta["options"])
    full, _ = proxy.simulate(trained.module, x, o["T"], o["threshold"])
    low, _ = proxy.simulate(trained.module, x, o["T"], o["threshold"], dtype=torch.bfloat16)
    assert low.dtype == full.dtype == torch.float32
    assert (low.argmax(1) == full.argmax(1)).float().mean() > 0.9
    assert (low - full).abs().mean() < 0.5


def test_precision_option(trained):
    assert trained.meta["resolved_options"] == {"train_precision": "float32"}
    cpu = torch.device("cpu")
    assert proxy.low_precision({"train_precision": "float32"}, cpu) is False
    assert proxy.low_precision({"train_precision": "bfloat16"}, cpu) is True
    assert isinstance(proxy.low_precision({"train_precision": "auto"}, cpu), bool)
    with pytest.raises(SpikeportError, match="train_precision must be"):
        proxy.low_precision({"train_precision": "float16"}, cpu)
