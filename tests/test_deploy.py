"""`spikeport deploy`, `power` and `targets` as a user runs them: the manifest and JSON contracts,
refusals with exit 2 naming the layer, the limit and the value, and all-or-nothing output."""
import json

import numpy as np
import pytest

from conftest import run_cli

MANIFEST_KEYS = {"target", "fits", "cores", "chips", "layers", "energy"}
LAYER_KEYS = {"name", "neurons", "cores", "fan_in_max", "weight_bits", "quant_max_abs_error"}
POWER_KEYS = {"energy_per_inference_j", "dynamic_j", "static_j", "power_w", "inferences_per_s", "synops", "band",
              "step_s", "steps_per_s", "time", "input",
              "neuron_updates", "spikes", "layers"}


def dense_network(sizes, encoding="regular", seed=0):
    """An MLP of IF neurons with random dense weights: sizes = [inputs, hidden..., outputs]."""
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    rng = np.random.default_rng(seed)
    nm = NeuronModel("if", threshold=1.0, reset="subtract")
    pops = [Population("input", (sizes[0],), encoding=InputEncoding(encoding, 500.0))]
    projs = []
    for i, n in enumerate(sizes[1:], 1):
        name = f"fc{i}"
        pops.append(Population(name, (n,), neuron=nm))
        w = rng.normal(0, 1.5 / np.sqrt(sizes[i - 1]), (n, sizes[i - 1])).astype(np.float32)
        projs.append(Projection(f"{pops[-2].name}->{name}", pops[-2].name, name, [Dense(w)]))
    return Network(pops, projs, dt_s=1e-3, input="input", output=pops[-1].name).validate()


@pytest.fixture(scope="module")
def conv_net_file(digits_conv_snn, tmp_path_factory):
    from spikeport.ir import save_network

    return save_network(digits_conv_snn[0], tmp_path_factory.mktemp("net") / "conv.spk")


def test_targets_lists_every_profile():
    from spikeport.hardware_profiles import names

    r = run_cli("targets")
    assert r.returncode == 0, r.stderr
    listed = [line.split()[0] for line in r.stdout.splitlines() if line.strip()]
    assert listed == names() and {"loihi", "spinnaker", "truenorth", "speck", "xylo", "cpu", "gpu"} <= set(listed)


def test_deploy_loihi_writes_the_manifest_report_and_artifacts(conv_net_file, tmp_path):
    import os
    import stat

    out = tmp_path / "loihi"
    mask = os.umask(0o027)  # the child inherits it: DIR and its files get what mkdir and open would give
    try:
        r = run_cli("deploy", conv_net_file, "--target", "loihi", "--out", out, "--samples", "20", "--steps", "20")
    finally:
        os.umask(mask)
    assert r.returncode == 0, r.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o750 and stat.S_IMODE((out / "manifest.json").stat().st_mode) == 0o640
    m = json.loads((out / "manifest.json").read_text())
    assert MANIFEST_KEYS <= set(m) and m["target"] == "loihi" and m["fits"] is True
    spiking = [l for l in m["layers"] if l["kind"] == "spiking"]
    assert [l["name"] for l in spiking] == ["conv1", "fc1", "fc2"]
    assert all(LAYER_KEYS <= set(l) for l in m["layers"])
    assert m["cores"] == sum(l["cores"] for l in m["layers"]) and m["chips"] == 1
    assert all(l["cores"] >= 1 and l["weight_bits"] == 8 and l["quant_max_abs_error"] >= 0 for l in spiking)
    assert POWER_KEYS <= set(m["energy"]) and m["energy"]["static_j"] > 0 and m["energy"]["dynamic_j"] > 0
    e = m["energy"]
    assert e["energy_per_inference_j"] == pytest.approx(e["dynamic_j"] + e["static_j"])
    assert e["power_w"] == pytest.approx(e["energy_per_inference_j"] * e["inferences_per_s"])
    assert set(m["baselines"]) == {"cpu", "gpu"}
    assert 0.8 <= m["accuracy"]["quantized"] <= 1 and m["samples"] == 20
    for f in m["artifacts"]:
        assert (out / f).is_file(), f
    assert {"manifest.json", "report.html", "network.spk", "run_loihi.py"} <= set(m["artifacts"])
    assert {"spikeport_runtime/loihi.py", "brian2/spikeport_runtime/brian2_engine.py"} <= set(m["artifacts"])
    html = (out / "report.html").read_text()
    assert "<table>" in html and "conv1" in html and "Intel Loihi" in html
    assert "fits on" in r.stdout and "per inference" in r.stdout
    # the deployed network is the quantized one: it loads and is fixed-point
    from spikeport.ir import load_network
    assert load_network(out / "network.spk").fixed_point is not None
    # the emitted nengo-loihi script runs as written on the emulator and agrees with
    # `spikeport validate --backend nengo-loihi` on the same samples and steps
    import subprocess
    import sys

    from spikeport.api import validate
    run = subprocess.run([sys.executable, "run_loihi.py", "--target", "sim", "--out", "p.json"], cwd=out,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr
    script = json.loads((out / "p.json").read_text())
    val = validate(load_network(conv_net_file), "digits", 20, samples=20, backend="nengo-loihi")
    assert script["predictions"] == val.simulation.activity.predictions[:, -1].tolist()


def test_deploy_spinnaker_writes_the_pynn_script_and_placements(conv_net_file, tmp_path):
    pytest.importorskip("spynnaker")
    out = tmp_path / "spinnaker"
    r = run_cli("deploy", conv_net_file, "--target", "spinnaker", "--out", out, "--samples", "10", "--steps", "20")
    assert r.returncode == 0, r.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert m["target"] == "spinnaker" and "spinnaker/spikeport_runtime/pynn_engine.py" in m["artifacts"]
    placements = json.loads((out / "spinnaker" / "placements.json").read_text())
    assert placements  # sPyNNaker's own placements of the deployed populations


@pytest.mark.parametrize("target, sizes, layer, limit, value", [
    ("truenorth", [300, 20, 10], "fc1", "256", "300"),       # fan-in above 256 axons per core
    ("xylo", [12, 1200, 5], "fc1", "1000", "1200"),          # more hidden neurons than one Xylo holds
    ("xylo", [20, 30, 5], "input", "16", "20"),              # more inputs than Xylo has (rockpool only warns)
])
def test_a_network_that_exceeds_the_chip_gets_exit_2_naming_layer_limit_value(tmp_path, target, sizes, layer,
                                                                                limit, value):
    from spikeport.ir import save_network

    net = save_network(dense_network(sizes), tmp_path / "net.spk")
    out = tmp_path / "out"
    r = run_cli("deploy", net, "--target", target, "--out", out, "--samples", "5", "--steps", "8")
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr
    assert layer in lines[0] and limit in lines[0] and value in lines[0]
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_deploy_refuses_a_non_empty_directory_and_leaves_it_as_it_was(conv_net_file, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    r = run_cli("deploy", conv_net_file, "--target", "loihi", "--out", out, "--samples", "5", "--steps", "8")
    assert r.returncode == 2 and "not empty" in r.stderr and str(out) in r.stderr
    assert [p.name for p in out.iterdir()] == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_a_failure_while_writing_leaves_nothing(digits_conv_snn, tmp_path, monkeypatch):
    from spikeport.deploy import emit_scripts, pipeline

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(emit_scripts, "write_brian2", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        pipeline.deploy(digits_conv_snn[0], "loihi", samples=5, steps=8, out=tmp_path / "dep")
    assert list(tmp_path.iterdir()) == []


def test_unknown_target_and_bad_profile_are_one_line(conv_net_file, tmp_path):
    r = run_cli("deploy", conv_net_file, "--target", "loihi9", "--out", tmp_path / "x")
    assert r.returncode == 2 and "loihi9" in r.stderr and "known:" in r.stderr and len(r.stderr.splitlines()) == 1
    bad = tmp_path / "own.toml"
    bad.write_text('name = "own"\ntitle = "own chip"\nkind = "neuromorphic"\nquantization = "per-layer"\n'
                   '[core]\nneurons = { value = -3, source = "assumed: test" }\n')
    r = run_cli("deploy", conv_net_file, "--target", bad, "--out", tmp_path / "y")
    assert r.returncode == 2 and "own.toml" in r.stderr and "core.neurons" in r.stderr
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


def test_a_users_own_profile_deploys(conv_net_file, tmp_path):
    from spikeport.hardware_profiles import HERE

    own = tmp_path / "mychip.toml"
    own.write_text((HERE / "loihi.toml").read_text().replace('name = "loihi"', 'name = "mychip"')
                   .replace('backend = "nengo-loihi"', 'backend = ""'))
    r = run_cli("deploy", conv_net_file, "--target", own, "--out", tmp_path / "d", "--samples", "5", "--steps", "8")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "d" / "manifest.json").read_text())["target"] == "mychip"


def test_power_compares_chips_side_by_side(conv_net_file, tmp_path):
    r = run_cli("power", conv_net_file, "--target", "loihi,spinnaker,loihi2", "--samples", "10", "--steps", "16",
                "--json", tmp_path / "p.json", "--html", tmp_path / "p.html")
    assert r.returncode == 0, r.stderr
    p = json.loads((tmp_path / "p.json").read_text())
    assert list(p["targets"]) == ["loihi", "spinnaker", "loihi2"] and set(p["baselines"]) == {"cpu", "gpu"}
    for name, t in p["targets"].items():
        assert POWER_KEYS <= set(t), name
        assert t["synops"] > 0 and t["neuron_updates"] > 0
    # Loihi 2's per-op energies are not published: null terms, named, the total marked incomplete
    l2 = p["targets"]["loihi2"]
    assert l2["complete"] is False and "energy.synop_j" in l2["unknown"] and l2["static_j"] > 0
    # on Loihi every on-chip coefficient is known; what is not published is how the host's input gets in
    loihi = p["targets"]["loihi"]
    assert loihi["unknown"] and all(k.startswith("io.input_") for k in loihi["unknown"]), loihi["unknown"]
    assert loihi["time"]["model"] == "barrier" and loihi["steps_per_s"] > 1000  # not tied to 1 ms per step
    assert p["targets"]["spinnaker"]["step_s"] == 0.001  # SpiNNaker keeps its 1 ms tick
    # the same activity is priced differently per chip: SpiNNaker's ARM cores cost more per event than Loihi
    assert p["targets"]["spinnaker"]["dynamic_j"] > p["targets"]["loihi"]["dynamic_j"]
    assert p["baselines"]["cpu"]["macs"] > 0
    assert (tmp_path / "p.html").read_text().count("<table>") >= 3


def test_realtime_paces_loihi_by_the_networks_dt(conv_net_file, tmp_path):
    fast = run_cli("power", conv_net_file, "--target", "loihi,spinnaker", "--samples", "4", "--steps", "8",
                   "--json", tmp_path / "fast.json")
    paced = run_cli("power", conv_net_file, "--target", "loihi,spinnaker", "--samples", "4", "--steps", "8",
                    "--realtime", "--json", tmp_path / "paced.json")
    assert fast.returncode == 0 and paced.returncode == 0, fast.stderr + paced.stderr
    f, p = (json.loads((tmp_path / n).read_text()) for n in ("fast.json", "paced.json"))
    assert p["realtime"] is True and f["realtime"] is False
    assert f["targets"]["loihi"]["step_s"] < 1e-3 and p["targets"]["loihi"]["step_s"] == 1e-3
    assert p["targets"]["loihi"]["static_j"] > f["targets"]["loihi"]["static_j"]
    # a real-time chip keeps its tick either way
    assert f["targets"]["spinnaker"]["step_s"] == p["targets"]["spinnaker"]["step_s"] == 1e-3
    assert "steps/s" in fast.stdout and "latency" in fast.stdout


def test_power_shows_a_chip_that_does_not_fit_as_a_row_with_its_reason(tmp_path):
    from spikeport.ir import save_network

    net = save_network(dense_network([64, 300, 10]), tmp_path / "wide.spk")  # fc2: 300 inputs per neuron
    r = run_cli("power", net, "--target", "loihi,truenorth,cpu", "--samples", "4", "--steps", "8",
                "--json", tmp_path / "p.json", "--html", tmp_path / "p.html")
    assert r.returncode == 0, r.stderr
    p = json.loads((tmp_path / "p.json").read_text())
    assert list(p["targets"]) == ["loihi", "truenorth"]  # cpu is a baseline, always shown there
    assert p["targets"]["loihi"]["fits"] is True and p["targets"]["loihi"]["energy_per_inference_j"] > 0
    tn = p["targets"]["truenorth"]
    assert tn["fits"] is False and "256" in tn["reason"] and "fc2" in tn["reason"] and "energy_per_inference_j" not in tn
    assert set(p["baselines"]) == {"cpu", "gpu"}
    assert "truenorth: does not fit:" in r.stdout
    page = (tmp_path / "p.html").read_text()
    assert "does not fit" in page and "fc2" in page


def test_power_refuses_before_measuring_when_no_chip_fits(tmp_path):
    from spikeport.ir import save_network

    net = save_network(dense_network([300, 20, 10]), tmp_path / "wide.spk")
    r = run_cli("power", net, "--target", "truenorth,xylo", "--json", tmp_path / "p.json")
    assert r.returncode == 2 and r.stderr.startswith("error: power: the network fits none of the targets: ")
    assert "truenorth: " in r.stderr and "xylo: " in r.stderr and "fc1" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "p.json").exists()


def test_speck_refuses_analog_input_and_names_the_fix(conv_net_file, tmp_path):
    r = run_cli("deploy", conv_net_file, "--target", "speck", "--out", tmp_path / "s", "--samples", "5")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "input" in r.stderr and "analog" in r.stderr and "--encoding" in r.stderr
    assert not (tmp_path / "s").exists()


def test_host_synops_are_exactly_the_reference_events_of_an_analog_input():
    """An analog input reaches a chip as currents the host computes: the events the reference counts for
    it are recomputed exactly from the samples and taken out of the chip's synaptic operations."""
    from conftest import small_network

    from spikeport.backends import reference
    from spikeport.deploy.energy import estimate
    from spikeport.deploy.pipeline import host_synops
    from spikeport.hardware_profiles import load

    net = small_network(encoding="analog")                     # input -> h is h's only projection
    x = np.random.default_rng(3).random((6, 12)).astype(np.float32)
    x[:, :4] = 0                                               # zero pixels send nothing
    act = reference.run(net, x, 16)
    host = host_synops(net, x, 16)
    assert set(host) == {"h"} and host["h"] == pytest.approx(float(act.synops["h"].mean()), rel=1e-12)
    e = estimate(net, load("loihi"), act, cores={"h": 1, "out": 1}, host_synops=host)
    h = next(l for l in e["layers"] if l["name"] == "h")
    assert h["synops"] == pytest.approx(0.0, abs=1e-6) and h["host_synops"] == host["h"]
    assert e["synops"] == pytest.approx(float(act.synops["out"].mean()))
    assert host_synops(small_network(encoding="poisson"), x, 16) == {}


def test_relay_cores_are_priced_with_the_population_they_serve():
    """nengo-loihi needs a relay population for the residual path of a delayed network: its core
    is static power too, counted with the population whose spikes it carries."""
    from conftest import conv_network

    from spikeport.deploy.pipeline import fit, power
    from spikeport.hardware_profiles import load

    net = conv_network(delay=2)
    part = fit(net, load("loihi")).partition
    assert [l["serves"] for l in part.layers if l["kind"] == "relay"] == ["c"]
    x = np.random.default_rng(0).random((4, 2, 8, 8)).astype(np.float32)
    t = power(net, ["loihi"], data=(x, np.arange(4)), samples=4, steps=10)["targets"]["loihi"]
    layers = {l["name"]: l for l in t["layers"]}
    assert layers["c"]["cores"] == part.layer("c")["cores"] + part.layer("c~relay1")["cores"]
    assert sum(l["cores"] for l in t["layers"]) == part.cores == t["cores"]
    assert any("relays use cores" in n for n in t["notes"])


def test_more_samples_than_the_test_set_is_refused_not_truncated(conv_net_file, tmp_path):
    r = run_cli("deploy", conv_net_file, "--target", "loihi", "--out", tmp_path / "d", "--samples", "1000")
    assert r.returncode == 2 and "--samples 1000" in r.stderr and "359" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "d").exists()


def test_spikeport_deploy_is_the_function_after_the_package_is_imported(tmp_path):
    """``spikeport.deploy`` names the API function and the package: importing the package first must
    not turn ``spikeport.deploy(...)`` into "module object is not callable"."""
    import spikeport
    import spikeport.deploy.pipeline  # noqa: F401  (binds spikeport.deploy to the package)
    from conftest import small_network

    net = small_network()
    dep = spikeport.deploy(net, "loihi", data=(np.random.default_rng(0).random((2, 12)).astype(np.float32), None),
                           samples=2, steps=4)
    assert dep.manifest()["target"] == "loihi"
