"""Percentile normalization on a network small enough to compute by hand."""
import numpy as np
import pytest
import torch
from torch import nn

from spikeport.backends.reference import run
from spikeport.errors import SpikeportError
from spikeport.models import convert, layer_scales


def hand_model():
    m = nn.Sequential()
    m.add_module("flatten", nn.Flatten())
    m.add_module("fc1", nn.Linear(2, 2))
    m.add_module("relu1", nn.ReLU())
    m.add_module("fc2", nn.Linear(2, 2))
    with torch.no_grad():
        m.fc1.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
        m.fc1.bias.zero_()
        m.fc2.weight.copy_(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
        m.fc2.bias.copy_(torch.tensor([0.5, 0.0]))
    return m


# fc1 activations relu([x0, 2 x1]): [1,0] [2,0] [0,2] [0,6]            -> positives 1, 2, 2, 6
# fc2 activations relu([a0 + a1 + 0.5, a0 - a1]): [1.5,1] [2.5,2] [2.5,0] [6.5,0] -> positives 1, 1.5, 2, 2.5, 2.5, 6.5
CALIB = np.array([[1, 0], [2, 0], [0, 1], [0, 3]], dtype=np.float32)


@pytest.mark.parametrize("p, expected", [(100.0, {"fc1": 6.0, "fc2": 6.5}),
                                         (50.0, {"fc1": 2.0, "fc2": 2.25})])
def test_scales_are_exact_percentiles_of_positive_activations(p, expected):
    assert layer_scales(hand_model(), CALIB, p) == pytest.approx(expected)


def test_weights_and_biases_scaled_by_the_chained_rule():
    net = convert(hand_model(), CALIB, norm="max")
    w1 = net.projections[0].ops[-1].weight
    w2 = net.projections[1].ops[-1].weight
    np.testing.assert_allclose(w1, [[1 / 6, 0], [0, 2 / 6]], rtol=1e-6)              # W1 * 1 / 6
    np.testing.assert_allclose(w2, np.array([[1, 1], [1, -1]]) * 6 / 6.5, rtol=1e-6)  # W2 * 6 / 6.5
    assert net.population("fc1").bias is None  # a zero bias is no bias
    np.testing.assert_allclose(net.population("fc2").bias, [0.5 / 6.5, 0], rtol=1e-6)  # b2 / 6.5
    assert net.population("fc2").neuron.threshold == 1.0 and net.population("fc2").neuron.reset == "subtract"


def test_model_max_by_hand():
    # fc1: the largest input with every input pixel at 1: neuron 0: 1, neuron 1: 2 -> lambda 2
    # fc2, sources at lambda_fc1 = 2: neuron 0: 1*2 + 1*2 + 0.5 = 4.5, neuron 1: 1*2 + 0 + 0 = 2 -> 4.5
    net = convert(hand_model(), CALIB, norm="model-max")
    assert net.metadata["conversion"]["scales"] == pytest.approx({"input": 1.0, "fc1": 2.0, "fc2": 4.5})
    np.testing.assert_allclose(net.projections[1].ops[-1].weight, np.array([[1, 1], [1, -1]]) * 2 / 4.5, rtol=1e-6)
    np.testing.assert_allclose(net.population("fc2").bias, [0.5 / 4.5, 0], rtol=1e-6)


def test_threshold_shift_starts_membranes_at_half():
    net = convert(hand_model(), CALIB, norm="max", v_init="half")
    assert all(p.neuron.v_init == 0.5 for p in net.populations if not p.is_input)
    # fc1 neuron 0 on sample [1, 0]: drive 1/6 per step; from 1/2 the first spike comes at step 3, not 6
    act = run(net, CALIB[:1], 3, record_counts=True)
    assert act.neuron_counts["fc1"][0, 0] == 1
    assert run(convert(hand_model(), CALIB, norm="max"), CALIB[:1], 5, record_counts=True).neuron_counts["fc1"][0, 0] == 0


def test_converted_rates_follow_the_normalized_activations():
    net = convert(hand_model(), CALIB, norm="max")
    steps = 650
    act = run(net, CALIB[:2], steps)
    # sample [1, 0]: fc1 rates [1/6, 0] per step; fc2 rates [1.5/6.5, 1/6.5]; sample [2, 0]: doubled
    np.testing.assert_allclose(act.population_spikes["fc1"], [steps / 6, 2 * steps / 6], atol=1)
    np.testing.assert_allclose(act.output_counts[0], [steps * 1.5 / 6.5, steps * 1 / 6.5], atol=2)
    np.testing.assert_allclose(act.output_counts[1], [steps * 2.5 / 6.5, steps * 2 / 6.5], atol=2)


def test_unsupported_layers_are_named():
    m = nn.Sequential(nn.Flatten(), nn.Linear(2, 2), nn.Sigmoid(), nn.Linear(2, 2))
    with pytest.raises(SpikeportError, match="module '2' \\(node '_2'\\): Sigmoid is not supported"):
        convert(m, CALIB)


def test_qcfs_training_round_trip_and_conversion_use_the_clip_levels(tmp_path):
    from spikeport.datasets import load_dataset
    from spikeport.models import load_model, save_model, train

    ds = load_dataset("digits")
    model = train(ds, arch="mlp", method="qcfs", epochs=2, seed=0)
    assert model.spec.activation == "qcfs"
    save_model(model, tmp_path / "q.pt")
    back = load_model(tmp_path / "q.pt")
    lams = {name: m.lam.item() for name, m in back.module.named_children() if hasattr(m, "lam")}
    assert set(lams) == {"relu1", "relu2"} and lams == {n: m.lam.item() for n, m in model.module.named_children()
                                                          if hasattr(m, "lam")}
    net = convert(back.module, ds.x("train"), v_init="half")
    scales = net.metadata["conversion"]["scales"]
    assert scales["fc1"] == pytest.approx(lams["relu1"]) and scales["fc2"] == pytest.approx(lams["relu2"])
    assert net.population("fc1").neuron.v_init == 0.5
    assert run(net, ds.x("test")[:100], 16).accuracy(ds.y("test")[:100]) > 0.5
