"""bench/energy_validation.py on small data: every published workload is rebuilt and priced, and the rows
whose coefficients come from independent sources stay within 2x of their measurements."""
import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "bench" / "energy_validation.py"


@pytest.fixture(scope="module")
def validation():
    spec = importlib.util.spec_from_file_location("energy_validation", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def results(validation):
    return {w["name"]: validation.compare(w, small=True) for w in validation.WORKLOADS}


def test_every_workload_is_rebuilt_and_compared_on_four_figures(validation, results):
    assert len(results) == len(validation.WORKLOADS) >= 2
    for r in results.values():
        assert [row["quantity"] for row in r["rows"]] == ["dynamic_j", "static_w", "total_j", "inferences_per_s"]
        for row in r["rows"]:
            assert row["measured"] > 0
            # a figure is either predicted with a ratio, or n/a with the reason
            assert (row["predicted"] is None) == (row["ratio"] is None) == (row["why_not"] is not None)
        assert r["step_s"] > 0 and r["busiest_layer"]


def test_the_rebuilt_shapes_are_the_published_ones(validation):
    net, cores = validation.build(validation.WORKLOADS[0])
    assert [p.size for p in net.populations] == [390, 256, 256, 29]
    pilot, pcores = validation.build(validation.WORKLOADS[2])
    sizes = {p.name: tuple(p.shape) for p in pilot.populations}
    # the netx print of lava-dl's PilotNet SNN (C, H, W here)
    assert sizes["conv1"] == (24, 32, 99) and sizes["conv2"] == (36, 15, 49) and sizes["conv3"] == (48, 7, 24)
    assert sizes["conv4"] == (64, 4, 22) and sizes["conv5"] == (64, 2, 20) and sizes["fc4"] == (1,)
    assert pcores["conv1"] == 25 and pcores["bias_neurons"] == 13


def test_loihi2_pilotnet_speed_brackets_the_measurement(validation):
    # the rates are not published: the measured speed must lie inside the band the assumed rates span,
    # and the middle assumption near it (2.08x at the time of writing; bench/RESULTS.md)
    r = validation.compare(validation.WORKLOADS[2])
    speed = next(row for row in r["rows"] if row["quantity"] == "inferences_per_s")
    assert speed["band"][0] < speed["measured"] < speed["band"][1] and 0.4 < speed["ratio"] < 2.5
    dynamic = next(row for row in r["rows"] if row["quantity"] == "dynamic_j")
    assert dynamic["predicted"] is None and "not published" in dynamic["why_not"]


def test_loihi_through_the_host_link_of_2018_is_within_2x(validation):
    # the nengo-loihi host link's 1.5 ms per step (2018) against the 2018 measurement of the same network
    r = validation.compare(validation.WORKLOADS[1])
    rows = {row["quantity"]: row for row in r["rows"]}
    for key in ("dynamic_j", "total_j", "inferences_per_s"):
        assert rows[key]["within_2x"] is True, (key, rows[key]["ratio"])


def test_static_rows_from_independent_sources_are_within_2x(validation):
    rows = validation.static_rows()
    assert {r["chip"] for r in rows} == {"spinnaker", "speck"}
    assert all(r["within_2x"] for r in rows)


def test_the_table_names_every_row(validation, results):
    table = validation.markdown(list(results.values()), validation.static_rows())
    for name in list(results) + [r["name"] for r in validation.STATIC_ROWS + validation.NOT_REBUILDABLE]:
        assert name in table


def test_cpu_and_gpu_baselines_hold_out_the_batch_sweep(validation):
    rows = validation.baseline_rows()
    assert {(r["device"], r["batch"]) for r in rows} == {(d, b) for d in ("cpu", "gpu")
                                                        for b in (1, 2, 4, 8, 16, 32, 64)}
    for r in rows:
        if r["fitted"]:  # the ends the time model was fitted to reproduce their speed
            assert r["ratio_inferences_per_s"] == pytest.approx(1.0, rel=1e-3)
        else:
            assert r["within_2x"], r


def test_the_network_size_sweep_is_held_out_and_within_2x(validation):
    # Blouw et al.'s scaled networks (0-10 branches of 10 layers) at batch 1: the cpu and gpu per-layer time is
    # fitted to 10 branches only; every other size, and every loihi row, is a prediction
    rows = validation.size_rows()
    assert {(r["device"], r["copies"]) for r in rows} == {(d, n) for d in ("cpu", "gpu", "loihi")
                                                         for n in (0, 2, 4, 6, 8, 10)}
    assert {(r["device"], r["copies"]) for r in rows if r["fitted"]} == {("cpu", 10), ("gpu", 10)}
    for r in rows:
        assert r["within_2x"], r


def test_the_scaled_network_is_the_published_topology(validation):
    from spikeport.deploy.ann_baseline import ann_macs

    net, _ = validation.build_scaled(2)
    assert len(net.populations) == 1 + 1 + 2 * 10 + 2  # input, inp, 2 x 10 branch layers, out, char
    # concat(branches) -> out is one 512 x 256 matrix: two 256 x 256 projections summed
    assert ann_macs(net)["macs"] == 390 * 256 + 2 * 10 * 256 * 256 + 2 * 256 * 256 + 256 * 29
    kws, _ = validation.build_scaled(0)
    assert [p.size for p in kws.populations] == [390, 256, 256, 29]


@pytest.mark.parametrize("device", ["cpu", "gpu"])
def test_the_profiles_hold_the_fitted_time_model(validation, device):
    # the cpu and gpu profiles' call_s, layer_s and op_s are the fit bench/energy_validation.py reproduces
    from spikeport.hardware_profiles import load

    prof = load(device)
    for key, value in validation.fit_baseline(device).items():
        assert prof.value(f"time.{key}") == pytest.approx(value, rel=1e-4), key
