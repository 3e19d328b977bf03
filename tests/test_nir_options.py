"""Conversion options on NIR input (issue 23): encoding, rate, reset, v(0), threshold scale; each said in a note."""
import pytest

from conftest import run_cli, small_network

pytest.importorskip("nir")


@pytest.fixture(scope="module")
def nir_file(tmp_path_factory):
    from spikeport.ir import save_network

    d = tmp_path_factory.mktemp("nir")
    save_network(small_network(), d / "small.spk")
    r = run_cli("export", d / "small.spk", "--to", "nir", "--out", d / "small.nir")
    assert r.returncode == 0, r.stderr
    return d / "small.nir"


def test_options_restate_the_imported_network(nir_file, tmp_path):
    import spikeport

    r = run_cli("convert", nir_file, "--dt", "0.001", "--reset", "zero", "--v-init", "half", "--encoding", "poisson",
                "--max-rate", "200", "--threshold-scale", "2", "--out", tmp_path / "n.spk")
    assert r.returncode == 0, r.stderr
    assert "poisson encoding, 200 Hz" in r.stdout and "thresholds x 2, reset to zero, v(0) = threshold / 2" in r.stdout
    plain = run_cli("convert", nir_file, "--dt", "0.001", "--out", tmp_path / "p.spk")
    assert plain.returncode == 0, plain.stderr
    got, ref = spikeport.load_network(tmp_path / "n.spk"), spikeport.load_network(tmp_path / "p.spk")
    enc = got.population("input").encoding
    assert (enc.kind, enc.max_rate_hz) == ("poisson", 200.0)
    for name in ("h", "out"):
        a, b = got.population(name).neuron, ref.population(name).neuron
        assert a.threshold == 2 * b.threshold and a.reset == "zero" and b.reset == "subtract"
        assert a.v_init == a.threshold / 2 and a.decay == b.decay
    assert [p.ops[-1].weight.tolist() for p in got.projections] == [p.ops[-1].weight.tolist() for p in ref.projections]


@pytest.mark.parametrize("args, message", [
    (("--norm", "max"), "--norm applies to model files"),
    (("--data", "x.npz"), "--data applies to model files"),
    (("--threshold-scale", "0"), "a number > 0"),
])
def test_options_that_do_not_apply_are_refused(nir_file, tmp_path, args, message):
    r = run_cli("convert", nir_file, "--dt", "0.001", *args, "--out", tmp_path / "x.spk")
    assert r.returncode == 2 and message in r.stderr and not (tmp_path / "x.spk").exists()


def test_nir_only_options_are_refused_for_model_files(digits_model_file, tmp_path):
    r = run_cli("convert", digits_model_file, "--reset", "zero", "--out", tmp_path / "x.spk")
    assert r.returncode == 2 and "--reset applies to NIR files" in r.stderr


FIXTURES = __import__("pathlib").Path(__file__).parent / "data" / "nir"


@pytest.mark.parametrize("name", ["snntorch_leaky_subtract", "snntorch_synaptic_zero", "norse_lif", "sinabs_lif",
                                  "rockpool_liftorch"])
def test_a_library_file_runs_from_the_command_line_as_the_library_ran_it(name, tmp_path):
    """Detected with no --dt or --from; the command line's accuracy with the libraries' tie rule (lowest class)
    equals the accuracy of the library's own predictions on the same samples."""
    import json

    import numpy as np

    d = np.load(FIXTURES / f"{name}.npz")
    np.savez(tmp_path / "data.npz", x=d["x"], y=d["y"])
    src = FIXTURES / f"{name}.nir"
    if name.endswith("_zero"):  # snnTorch does not write its reset_mechanism: say it, as its user would
        r = run_cli("convert", src, "--reset", "zero", "--out", tmp_path / "n.spk")
        assert r.returncode == 0, r.stderr
        src = tmp_path / "n.spk"
    r = run_cli("simulate", src, "--data", tmp_path / "data.npz", "--steps", int(d["steps"]), "--ties", "index",
                "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    if src.suffix == ".nir":
        assert "note: NIR import as" in r.stderr and name.split("_")[0] in r.stderr.lower()
    rep = json.loads((tmp_path / "s.json").read_text())
    assert rep["accuracy"] == float((d["pred"] == d["y"]).mean())


def test_library_options_are_checked(nir_file, tmp_path):
    src = FIXTURES / "norse_iaf.nir"
    r = run_cli("simulate", src, "--from", "lava")
    assert r.returncode == 2 and "lava-dl has no released NIR export" in r.stderr
    r = run_cli("simulate", src, "--from", "nir")
    assert r.returncode == 2 and "needs --dt" in r.stderr
    from spikeport.ir import save_network
    save_network(small_network(), tmp_path / "g.spk")
    r = run_cli("simulate", tmp_path / "g.spk", "--from", "norse")
    assert r.returncode == 2 and "--from is for NIR files" in r.stderr


def test_export_for_a_library_from_the_command_line(tmp_path):
    """Export for Norse's importer, read back (detected) to the library's own predictions; a network the
    importer cannot take is refused naming the population and what to do instead."""
    import json

    import numpy as np

    d = np.load(FIXTURES / "norse_lif.npz")
    np.savez(tmp_path / "data.npz", x=d["x"], y=d["y"])
    assert run_cli("convert", FIXTURES / "norse_lif.nir", "--out", tmp_path / "n.spk").returncode == 0
    r = run_cli("export", tmp_path / "n.spk", "--to", "nir", "--for", "norse", "--out", tmp_path / "back.nir")
    assert r.returncode == 0, r.stderr
    r = run_cli("simulate", tmp_path / "back.nir", "--data", tmp_path / "data.npz", "--steps", int(d["steps"]),
                "--ties", "index", "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "s.json").read_text())["accuracy"] == float((d["pred"] == d["y"]).mean())
    assert run_cli("convert", FIXTURES / "snntorch_leaky_subtract.nir", "--out", tmp_path / "s.spk").returncode == 0
    r = run_cli("export", tmp_path / "s.spk", "--to", "nir", "--for", "norse", "--out", tmp_path / "x.nir")
    assert r.returncode == 2 and "without --for" in r.stderr and "population '1'" in r.stderr
    assert not (tmp_path / "x.nir").exists()
