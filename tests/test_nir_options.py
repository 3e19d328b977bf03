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
