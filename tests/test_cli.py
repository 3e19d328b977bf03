"""The command line as a user runs it: the demo path, the JSON contract, the error path."""
import json

import pytest

from conftest import run_cli


def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    r = run_cli("demo", "--out", out)
    assert r.returncode == 0, r.stderr
    for t in (32, 64, 128):
        assert f"SNN accuracy T={t}" in r.stdout
    assert "rate (Hz)" in r.stdout and "fc1" in r.stdout
    rep = json.loads((out / "simulate.json").read_text())
    assert (out / "model.pt").is_file() and (out / "net.spk").is_file()
    # the whole story: deployed to loihi and spinnaker, priced on every chip, reports written
    for page in ("simulate.html", "loihi/report.html", "spinnaker/report.html", "power.html"):
        assert "<figure class='plot'" in (out / page).read_text(), page
    power = json.loads((out / "power.json").read_text())
    from spikeport.hardware_profiles import names
    assert set(power["targets"]) | set(power["baselines"]) == set(names())  # a row for every target
    assert "loihi: " in r.stdout and "spinnaker: " in r.stdout and "does not fit" in r.stdout
    assert rep["steps"] == 128 and rep["samples"] == 359
    # the bar: the SNN within 1.5 percentage points of the ANN at T = 128
    assert rep["accuracy"] >= rep["ann_accuracy"] - 0.015
    assert rep["ann_accuracy"] > 0.95


def test_train_convert_simulate_json_contract(tmp_path):
    assert run_cli("train", "--dataset", "digits", "--arch", "mlp", "--method", "relu", "--epochs", "3",
                   "--out", tmp_path / "m.pt").returncode == 0
    r = run_cli("convert", tmp_path / "m.pt", "--dataset", "digits", "--out", tmp_path / "n.spk")
    assert r.returncode == 0, r.stderr
    r = run_cli("simulate", tmp_path / "n.spk", "--dataset", "digits", "--steps", "16", "--samples", "50",
                "--checkpoints", "all", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "s.json").read_text())
    assert {"accuracy", "ann_accuracy", "steps", "samples", "backend", "seconds", "layers"} <= set(rep)
    assert rep["samples"] == 50 and rep["steps"] == 16 and rep["backend"] == "reference"
    assert [l["name"] for l in rep["layers"]] == ["input", "fc1", "fc2", "fc3"]
    assert all({"name", "neurons", "spikes", "rate_hz", "synops"} <= set(l) for l in rep["layers"])
    assert rep["layers"][1]["synops"] > 0 and 0 <= rep["accuracy"] <= 1
    assert list(rep["accuracy_by_steps"]) == [str(t) for t in range(1, 17)]
    assert rep["accuracy_by_steps"]["16"] == rep["accuracy"]
    assert 0 <= rep["first_spike_step_mean"] < 16 and 0 <= rep["no_output_spike_fraction"] <= 1


def _bad_files(tmp_path):
    (tmp_path / "text.spk").write_text("not a network\n")
    (tmp_path / "trunc.spk").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    return {"missing": tmp_path / "absent.spk", "not spikeport": tmp_path / "text.spk",
            "truncated": tmp_path / "trunc.spk"}


@pytest.mark.parametrize("kind", ["missing", "not spikeport", "truncated"])
def test_simulate_bad_file_is_one_line_exit_2(tmp_path, kind):
    path = _bad_files(tmp_path)[kind]
    r = run_cli("simulate", path)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and str(path) in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.parametrize("args, expected", [
    (["simulate", "x.spk", "--steps", "0"], "--steps"),
    (["train", "--out", "m.pt", "--arch", "resnet"], "unknown architecture 'resnet'"),
    (["convert", "absent.pt"], "absent.pt: no such file"),
    (["teleport"], "invalid choice: 'teleport'"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, args, expected):
    r = run_cli(*args, cwd=tmp_path)
    assert r.returncode == 2 and expected in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_swapped_files_and_unwritable_output_are_user_errors(tmp_path):
    assert run_cli("train", "--epochs", "1", "--out", tmp_path / "m.pt").returncode == 0
    r = run_cli("simulate", tmp_path / "m.pt")
    assert r.returncode == 2 and "PyTorch file" in r.stderr
    assert run_cli("convert", tmp_path / "m.pt", "--out", tmp_path / "n.spk").returncode == 0
    r = run_cli("convert", tmp_path / "n.spk")
    assert r.returncode == 2 and "not a model file" in r.stderr
    r = run_cli("simulate", tmp_path / "n.spk", "--steps", "4", "--json", tmp_path / "no" / "dir" / "s.json")
    assert r.returncode == 2 and "does not exist" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_simulate_in_fixed_point(tmp_path):
    assert run_cli("train", "--epochs", "3", "--out", tmp_path / "m.pt").returncode == 0
    assert run_cli("convert", tmp_path / "m.pt", "--out", tmp_path / "n.spk").returncode == 0
    r = run_cli("simulate", tmp_path / "n.spk", "--steps", "32", "--weight-bits", "4", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    assert "fixed point: 4-bit weights, 24-bit state" in r.stdout and "input->fc1" in r.stdout
    assert 0 < json.loads((tmp_path / "s.json").read_text())["accuracy"] <= 1
    r = run_cli("simulate", tmp_path / "n.spk", "--state-bits", "6")
    assert r.returncode == 2 and "state bits" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_the_cli_reference_is_generated_from_the_parser():
    from pathlib import Path

    from spikeport.cli import reference_markdown

    doc = Path(__file__).resolve().parents[1] / "docs" / "cli.md"
    assert doc.read_text() == reference_markdown(), \
        "docs/cli.md is out of date: .venv/bin/python -m spikeport.cli --reference > docs/cli.md"


def test_help_shows_the_defaults():
    r = run_cli("simulate", "--help")
    assert r.returncode == 0
    text = " ".join(r.stdout.split())
    assert "--steps STEPS (default: 100)" in text and "--seed SEED (default: 0)" in text
    r = run_cli("power", "--help")
    assert "(default: all)" in " ".join(r.stdout.split())


@pytest.fixture(scope="module")
def conv_net_file_for_cli(digits_model_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("converted") / "n.spk"
    r = run_cli("convert", digits_model_file, "--out", out)
    assert r.returncode == 0, r.stderr
    return out


def test_accuracies_side_by_side_come_from_the_same_samples(conv_net_file_for_cli, tmp_path):
    # 40 of digits' 359 test samples: the recorded whole-test-set ANN accuracy is not set beside the SNN;
    # the network as an ANN (its rate model) on those 40 samples is
    r = run_cli("simulate", conv_net_file_for_cli, "--samples", "40", "--steps", "16", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "s.json").read_text())
    assert rep["ann_accuracy"] is None and rep["ann_accuracy_test_set"] is not None
    acc = rep["rate_model_accuracy"]
    assert 0.5 < acc <= 1.0 and abs(acc * 40 - round(acc * 40)) < 1e-9  # a count of the 40 samples
    assert "ANN accuracy" not in r.stdout and "as an ANN" in r.stdout and "whole test set" in r.stdout
    whole = run_cli("simulate", conv_net_file_for_cli, "--steps", "16", "--json", tmp_path / "w.json")
    rep = json.loads((tmp_path / "w.json").read_text())
    assert rep["ann_accuracy"] == rep["ann_accuracy_test_set"] is not None and rep["rate_model_accuracy"] is None
    assert "ANN accuracy" in whole.stdout
