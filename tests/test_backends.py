"""Every backend runs the same small conv + dense network (trained on digits, converted, analog
input) through `spikeport.validate`, beside the reference executor.

One test, parametrized over the backends, with what each must reach:
  brian2       equals the reference spike for spike (every neuron's count, every prediction)
  pynn-nest    >= 95 % class agreement (measured: spike for spike, which is asserted too)
  nengo-loihi  >= 95 % class agreement (Loihi resets to zero and rounds to its formats)
The spinnaker mapper (the virtual board maps but does not simulate) is no backend: validate
says so in one line, and sPyNNaker's placements cover every population.
"""
import numpy as np
import pytest

from spikeport.api import validate
from spikeport.backends import BACKENDS
from spikeport.errors import SpikeportError

SAMPLES, STEPS = 100, 32
EXPECT = {
    "brian2": {"agreement": 1.0, "spike_for_spike": True, "options": {"codegen": "numpy"}},
    "pynn-nest": {"agreement": 0.95, "spike_for_spike": True},
    # its notes name nengo-loihi's own block splitting per population and the reset it cannot do
    "nengo-loihi": {"agreement": 0.95, "spike_for_spike": False,
                    "notes": ("conv1 1 block", "fc1 1 block", "fc2 1 block", "reset:")},
}


def test_every_simulator_backend_is_covered():
    assert set(EXPECT) == set(BACKENDS) - {"reference"}


def test_the_spinnaker_mapper_maps_every_population_and_does_not_validate(digits_conv_snn):
    spinnaker = pytest.importorskip("spikeport.backends.spinnaker")
    net, ds = digits_conv_snn
    x, y = ds.x("test")[:2], ds.y("test")[:2]
    with pytest.raises(SpikeportError, match="spinnaker is a mapper, not a simulator backend") as err:
        validate(net, (x, y), STEPS, samples=2, backend="spinnaker")
    assert "\n" not in str(err.value)
    placed = spinnaker.placements(net, neurons_per_core=64, steps=STEPS)
    for pop in net.populations:
        if pop.is_input:  # analog input is each first-layer neuron's current, no population
            continue
        entry = placed["populations"][pop.name]
        assert entry["neurons"] == pop.size and entry["cores"] == -(-pop.size // 64)
        spans = sorted((c[3], c[4]) for c in entry["placements"])
        assert spans[0][0] == 0 and spans[-1][1] == pop.size - 1
    assert placed["total_chips"] >= 1


@pytest.mark.parametrize("backend", sorted(EXPECT))
def test_conv_dense_digits_network_on_every_backend(backend, digits_conv_snn):
    net, ds = digits_conv_snn
    assert [p.name for p in net.populations] == ["input", "conv1", "fc1", "fc2"]
    x, y = ds.x("test")[:SAMPLES], ds.y("test")[:SAMPLES]
    expect = EXPECT[backend]
    val = validate(net, (x, y), STEPS, samples=SAMPLES, backend=backend, **expect.get("options", {}))
    rep = val.report()
    assert rep["backend"] == backend and rep["samples"] == SAMPLES
    assert rep["agreement"] >= expect["agreement"], rep["agreement"]
    assert set(rep["rate_correlation"]) == {"conv1", "fc1", "fc2"}
    assert min(rep["rate_correlation"].values()) > 0.9, rep["rate_correlation"]
    ref_acc = val.reference.accuracy(y)
    assert abs(rep["accuracy"] - ref_acc) <= 1 - expect["agreement"] and ref_acc > 0.85
    assert rep["seconds"] > 0 and rep["reference_seconds"] > 0
    if expect["spike_for_spike"]:
        for name, counts in val.reference.neuron_counts.items():
            np.testing.assert_array_equal(val.simulation.activity.neuron_counts[name], counts, err_msg=name)
        np.testing.assert_array_equal(val.simulation.activity.predictions, val.reference.predictions)
        for name, ops in val.reference.synops.items():
            np.testing.assert_array_equal(val.simulation.activity.synops[name], ops, err_msg=name)
    else:
        assert rep["notes"], "a backend that is not exact must say why in its notes"
    for part in expect.get("notes", ()):
        assert part in " ".join(rep["notes"]), part


def test_cli_validate_on_a_simulator_backend(tmp_path, digits_conv_snn):
    import json

    from conftest import run_cli
    from spikeport.ir import save_network

    net, _ = digits_conv_snn
    path = tmp_path / "net.spk"
    save_network(net, path)
    out = tmp_path / "v.json"
    r = run_cli("validate", path, "--backend", "nengo-loihi", "--dataset", "digits", "--samples", "20",
                "--steps", "16", "--json", out)
    assert r.returncode == 0, r.stderr
    assert "agreement with the reference executor" in r.stdout and "faster than nengo-loihi" in r.stdout
    assert "per-layer rate correlation with the reference: conv1" in r.stdout and "note: reset:" in r.stdout
    rep = json.loads(out.read_text())
    assert rep["backend"] == "nengo-loihi" and rep["samples"] == 20 and rep["agreement"] >= 0.9
    assert rep["reference_seconds"] > 0 and any("mapping" in n for n in rep["notes"])
    r = run_cli("validate", path, "--backend", "spinnaker", "--dataset", "digits", "--samples", "2", "--steps", "8")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "a mapper, not a simulator backend" in r.stderr, r.stderr
