"""PyTorch import: every supported construct maps exactly; unsupported ones are named."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikeport.errors import SpikeportError
from spikeport.models.activations import qcfs_class
from spikeport.models.activation_stats import exact_percentiles
from spikeport.models.torch_import import ConversionWarning, import_torch


def graph_as_ann(net, x):
    """Run the converted graph with rates instead of spikes: relu per population, capped at 1 where clipped.

    Returns the output population's pre-activation, which times its scale must be the module's output."""
    clipped = set(net.metadata["conversion"]["clipped"])
    out = {"input": x.astype(np.float64)}
    for pop in net.order():
        if pop.is_input:
            continue
        z = sum(pr.apply_numpy(out[pr.pre]).reshape((len(x),) + pop.shape) for pr in net.projections_into(pop.name))
        if pop.bias is not None:
            z = z + pop.bias
        if pop.name == net.output:
            return z.reshape(len(x), -1)
        out[pop.name] = np.clip(z, 0, 1 if pop.name in clipped else None)


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        a = F.relu(self.bn1(self.conv1(x)))
        b = self.bn2(self.conv2(a))
        c = torch.relu(a + b)                      # residual addition
        c = F.avg_pool2d(c, 2)
        return self.fc(c.view(c.size(0), -1)) * 0.5


class Clipped(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, stride=2, groups=1)
        self.fc1 = nn.Linear(3 * 3 * 3, 8)
        self.bn = nn.BatchNorm1d(8)
        self.fc2 = nn.Linear(8, 4)

    def forward(self, x):
        x = torch.clamp(self.conv(x), 0, 2.0)
        x = F.hardtanh(self.bn(self.fc1(torch.flatten(x, 1))), 0.0, 1.5)
        return self.fc2(F.dropout(x, 0.5, self.training))


def sequential():
    return nn.Sequential(nn.Conv2d(2, 6, 3, padding=1, groups=2), nn.BatchNorm2d(6), nn.ReLU6(), nn.AvgPool2d(2),
                         nn.Conv2d(6, 4, 2, dilation=1), nn.ReLU(), nn.Dropout(0.3), nn.Flatten(), nn.Linear(4 * 2 * 2, 7),
                         nn.Hardtanh(0.0, 3.0), nn.Identity(), nn.Linear(7, 3))


def randomize_bn(model):
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model.eval()


@pytest.mark.parametrize("make, shape", [(Residual, (2, 8, 8)), (Clipped, (2, 7, 7)), (sequential, (2, 6, 6))],
                         ids=["residual-bn-view-mul", "clamp-hardtanh-bn1d-dropout", "sequential-relu6-groups"])
@pytest.mark.parametrize("norm", ["percentile", "max", "model-max"])
def test_converted_graph_computes_the_module(make, shape, norm):
    torch.manual_seed(1)
    model = randomize_bn(make())
    x = np.random.default_rng(2).random((64,) + shape).astype(np.float32)
    net = import_torch(model, x, norm=norm, percentile=99.0)
    with torch.no_grad():
        expected = model(torch.as_tensor(x)).numpy()
    scale = net.metadata["conversion"]["scales"][net.output]
    got = graph_as_ann(net, x) * scale
    if net.metadata["conversion"]["clipped"] or norm == "max" or norm == "model-max":
        # with p = 100 nothing saturates, and clip levels are exact: the graph is the module
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    else:
        # p = 99: the top 1 % of activations saturate at the threshold, as the method intends
        assert np.mean(np.abs(got - expected) < 1e-3) > 0.5


def test_the_residual_addition_becomes_two_projections_into_one_population():
    net = import_torch(randomize_bn(Residual()), np.random.default_rng(0).random((8, 2, 8, 8)).astype(np.float32))
    into = {pr.name for pr in net.projections_into(net.order()[2].name)}
    assert len(into) == 2, into


def test_qcfs_uses_its_clip_level_and_max_pooling_warns():
    qcfs = qcfs_class()
    model = nn.Sequential(nn.Conv2d(1, 2, 3), qcfs(levels=4, lam=2.5), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2 * 3 * 3, 3))
    with pytest.warns(ConversionWarning, match="max pooling is converted to average pooling"):
        net = import_torch(model, np.random.default_rng(0).random((16, 1, 8, 8)).astype(np.float32))
    assert net.metadata["conversion"]["scales"]["0"] == pytest.approx(2.5)
    assert [op.kind for op in net.projections[1].ops][0] == "avgpool2d"


@pytest.mark.parametrize("module, message", [
    (nn.Sequential(nn.Linear(4, 3), nn.Sigmoid(), nn.Linear(3, 2)), "module '1' (node '_1'): Sigmoid is not supported"),
    (nn.Sequential(nn.Conv2d(1, 2, 2, padding=1, padding_mode="reflect")), "padding_mode 'reflect'"),
    (nn.Sequential(nn.Linear(4, 4), nn.LeakyReLU(), nn.Linear(4, 2)), "LeakyReLU is not supported"),
    (nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(5, 2)), "module '2' (node '_2'): Linear(5, 2) cannot take"),
])
def test_unsupported_modules_are_named(module, message):
    shape = (4,) if isinstance(module[0], nn.Linear) else (1, 4, 4)
    with pytest.raises(SpikeportError, match=message.replace("(", "\\(").replace(")", "\\)")):
        import_torch(module, np.zeros((2,) + shape, np.float32))


def test_untraceable_control_flow_is_a_user_error():
    class Branchy(nn.Module):
        def forward(self, x):
            return x if x.sum() > 0 else -x
    with pytest.raises(SpikeportError, match="cannot be traced"):
        import_torch(Branchy(), np.zeros((2, 3), np.float32))


def test_exact_percentiles_equal_numpy():
    model = nn.Sequential(nn.Linear(5, 40), nn.ReLU(), nn.Linear(40, 3))
    import torch.fx as fx
    gm = fx.symbolic_trace(model)
    x = np.random.default_rng(3).normal(size=(1000, 5)).astype(np.float32)
    with torch.no_grad():
        acts = torch.relu(model[0](torch.as_tensor(x))).numpy()
    for p in (50.0, 99.0, 99.9, 100.0):
        got = exact_percentiles(gm, ["_1"], x, p, batch_size=128)["_1"]
        assert got == pytest.approx(np.percentile(acts[acts > 0].astype(np.float64), p), rel=1e-6)


def test_diagnosis_names_the_layer_whose_scale_is_broken():
    from spikeport.passes.diagnose import diagnose

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.ReLU(),
                          nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3)).eval()
    x = np.random.default_rng(0).random((200, 1, 8, 8)).astype(np.float32)
    net = import_torch(model, x, norm="max")
    healthy = diagnose(net, model, x[:50], steps=200)
    assert healthy["first_bad"] is None, [(l.name, l.correlation) for l in healthy["layers"]]
    assert all(l.correlation > 0.95 for l in healthy["layers"])
    # break the layer named "3" (the second Linear): weights 8x too large saturate its neurons
    broken = [pr for pr in net.projections if pr.post == "3"][0]
    broken.ops[-1].weight = broken.ops[-1].weight * 8
    report = diagnose(net, model, x[:50], steps=200)
    assert report["first_bad"] == "3", [(l.name, round(l.correlation, 3)) for l in report["layers"]]
    assert report["layers"][0].correlation > 0.95  # the layer before it is still fine
