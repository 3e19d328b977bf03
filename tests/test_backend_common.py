"""The shared part of the simulator backends, checked against the reference executor's own counts."""
import numpy as np
import pytest

from conftest import conv_network, small_network
from spikeport.backends import common, reference


@pytest.mark.parametrize("make,encoding", [(small_network, "analog"), (small_network, "poisson"),
                                           (conv_network, "regular"), (conv_network, "analog")])
def test_activity_from_recordings_matches_the_reference(make, encoding):
    net = make(encoding=encoding)
    rng = np.random.default_rng(3)
    x = rng.random((6,) + net.population(net.input).shape).astype(np.float32)
    ref = reference.run(net, x, 40, checkpoints=[10, 20], seed=5, record_counts=True,
                        record_trains=[net.output])
    counts = {k: v for k, v in ref.neuron_counts.items() if k != net.input}
    x2, steps, checkpoints = common.check_run(net, x, 40, [20, 10])
    inputs = common.input_trains(net, x2, steps, seed=5)
    assert (inputs is None) == (encoding == "analog")
    act = common.activity(net, "test", x2, steps, checkpoints, counts, ref.spike_trains[net.output], 1.0,
                          inputs=inputs)
    assert checkpoints == [10, 20, 40]
    np.testing.assert_array_equal(act.output_counts, ref.output_counts)
    np.testing.assert_array_equal(act.first_spike_step, ref.first_spike_step)
    np.testing.assert_array_equal(act.predictions_index, ref.predictions_index)
    assert act.synops.keys() == ref.synops.keys()
    for k in ref.synops:
        np.testing.assert_array_equal(act.synops[k], ref.synops[k], err_msg=k)
    for k in ref.population_spikes:
        np.testing.assert_array_equal(act.population_spikes[k], ref.population_spikes[k], err_msg=k)
    if inputs is not None:  # the trains are the reference's: their counts are its input spikes
        assert inputs.sum() == ref.population_spikes[net.input].sum() > 0


def test_tie_rule_and_latency():
    counts = np.array([[2, 2, 1], [0, 0, 0]])
    v = np.array([[0.1, 0.5, 0.9], [0.2, -0.1, 0.3]])
    by_v, by_index = common.predictions(counts, v)
    assert by_v.tolist() == [1, 2] and by_index.tolist() == [0, 0]
    # analog input: its projections are currents in the post population's window, no lag
    assert common.lags(small_network()) == {"input": 0, "h": 0, "out": 1}
    assert common.lags(small_network(encoding="regular")) == {"input": 0, "h": 1, "out": 2}
    # a residual path (input -> out skips c) is padded to the longer one's lag
    assert common.lags(conv_network())["out"] == 2
    # a delay of 3 already covers the one-step minimum
    assert common.lags(small_network(encoding="poisson", delay=3)) == {"input": 0, "h": 1, "out": 1}
    # a simulator whose synaptic current adds a step
    assert common.lags(small_network(encoding="poisson"), lambda p: max(p.delay_steps, 1) + 1)["out"] == 4
