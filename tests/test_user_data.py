"""The user's own samples (--data FILE), runs without labels, the tie rule and loud silence (issue 23)."""
import json

import numpy as np
import pytest

from conftest import run_cli
from spikeport.datasets import MAX_USER_BYTES, load_user_data
from spikeport.errors import DataError


def kws_network(threshold=1.0):
    """A keyword-spotting-shaped network, 390-256-256-29 (Blouw et al. 2019), IF neurons, fixed random weights."""
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    rng = np.random.default_rng(0)
    nm = NeuronModel("if", threshold=threshold)
    sizes = [("input", 390), ("h1", 256), ("h2", 256), ("out", 29)]
    pops = [Population("input", (390,), encoding=InputEncoding("analog", 100.0))]
    pops += [Population(name, (n,), neuron=nm) for name, n in sizes[1:]]
    projs = [Projection(f"{a}->{b}", a, b, [Dense((rng.standard_normal((nb, na)) * np.sqrt(2 / na)).astype(np.float32))])
             for (a, na), (b, nb) in zip(sizes, sizes[1:])]
    return Network(pops, projs, dt_s=1e-3, output="out").validate()


@pytest.fixture(scope="module")
def kws(tmp_path_factory):
    from spikeport.ir import save_network

    d = tmp_path_factory.mktemp("kws")
    save_network(kws_network(), d / "kws.spk")
    rng = np.random.default_rng(1)
    np.savez(d / "features.npz", x=rng.random((12, 390)).astype(np.float32))  # no labels: a deployment's inputs
    np.savez(d / "labelled.npz", x=rng.random((12, 390)).astype(np.float32), y=rng.integers(0, 29, 12))
    return d


# ------------------------------------------------------------------------------ reading the file

def test_npz_and_npy_read_and_reshaped(tmp_path):
    x = np.arange(3 * 64, dtype=np.float64).reshape(3, 64) / 200
    np.savez(tmp_path / "a.npz", x=x, y=np.array([1, 0, 9]))
    xs, ys = load_user_data(tmp_path / "a.npz", (1, 8, 8), classes=10)
    assert xs.shape == (3, 1, 8, 8) and xs.dtype == np.float32 and ys.tolist() == [1, 0, 9]
    np.testing.assert_array_equal(xs.reshape(3, 64), x.astype(np.float32))
    np.save(tmp_path / "b.npy", x.astype(np.float32))
    xs, ys = load_user_data(tmp_path / "b.npy", (64,))
    assert xs.shape == (3, 64) and ys is None


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file"),
    ("text", "neither an .npz nor an .npy"),
    ("no x", "needs an array named x"),
    ("shape", "do not fit the network's input of shape (1, 8, 8)"),
    ("object", "holds object values"),
    ("nan", "non-finite"),
    ("label range", "label 10 is not a class"),
    ("label length", "one label per sample"),
    ("float labels", "whole class numbers"),
    ("truncated", "truncated"),
    ("huge", "over the"),
])
def test_bad_files_are_one_clear_error(tmp_path, case, message):
    p = tmp_path / "data.npz"
    x = np.zeros((4, 64), np.float32)
    if case == "missing":
        p = tmp_path / "absent.npz"
    elif case == "text":
        p.write_text("x,y\n1,2\n")
    elif case == "no x":
        np.savez(p, images=x)
    elif case == "shape":
        np.savez(p, x=np.zeros((4, 65), np.float32))
    elif case == "object":
        p = tmp_path / "data.npy"
        np.save(p, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "nan":
        x[2, 3] = np.nan
        np.savez(p, x=x)
    elif case == "label range":
        np.savez(p, x=x, y=np.array([0, 1, 10, 2]))
    elif case == "label length":
        np.savez(p, x=x, y=np.array([0, 1]))
    elif case == "float labels":
        np.savez(p, x=x, y=np.array([0, 1.5, 2, 3]))
    elif case == "truncated":
        p = tmp_path / "data.npy"
        np.save(p, np.zeros((100, 64), np.float32))
        p.write_bytes(p.read_bytes()[:2000])
    elif case == "huge":  # a header declaring terabytes: refused from the header, nothing allocated
        p = tmp_path / "data.npy"
        from numpy.lib import format as npformat
        with open(p, "wb") as f:
            npformat.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10 ** 9, 64)})
    with pytest.raises(DataError) as err:
        load_user_data(p, (1, 8, 8), classes=10)
    assert message in str(err.value) and str(p) in str(err.value)
    assert "\n" not in str(err.value)


def test_the_limit_is_more_than_any_test_set_needs():
    assert MAX_USER_BYTES >= 60000 * 784 * 4  # MNIST's training set as float32 fits


# ------------------------------------------------------------------------------ from the command line

def test_keyword_spotter_priced_and_deployed_from_the_command_line(kws, tmp_path):
    r = run_cli("power", kws / "kws.spk", "--target", "loihi,spinnaker", "--data", kws / "features.npz",
                "--samples", "8", "--steps", "20", "--json", tmp_path / "p.json", "--quiet")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "p.json").read_text())
    assert rep["samples"] == 8 and rep["dataset"] == "features.npz" and rep["float_accuracy"] is None
    assert rep["targets"]["loihi"]["fits"] and rep["targets"]["loihi"]["energy_per_inference_j"] > 0
    assert rep["targets"]["loihi"]["accuracy"] is None and "n/a (no labels)" in r.stdout
    assert rep["targets"]["loihi"]["cores"] >= 3 and rep["baselines"]["cpu"]["energy_per_inference_j"] > 0
    r = run_cli("deploy", kws / "kws.spk", "--target", "loihi", "--data", kws / "labelled.npz", "--samples", "6",
                "--steps", "20", "--out", tmp_path / "dep", "--quiet")
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path / "dep" / "manifest.json").read_text())
    assert m["fits"] and m["samples"] == 6 and 0 <= m["accuracy"]["float"] <= 1


def test_a_data_set_that_does_not_fit_says_how_to_give_data(kws):
    r = run_cli("simulate", kws / "kws.spk", "--steps", "5")
    assert r.returncode == 2
    line = r.stderr.strip()
    assert "\n" not in line and "(390,)" in line and "--data FILE" in line and "digits" in line
    r = run_cli("simulate", kws / "kws.spk", "--data", kws / "features.npz", "--dataset", "digits")
    assert r.returncode == 2 and "give one" in r.stderr


def test_index_ties_and_silence_are_reported(kws, tmp_path):
    from spikeport.ir import save_network

    r = run_cli("simulate", kws / "kws.spk", "--data", kws / "labelled.npz", "--steps", "10", "--ties", "index",
                "--json", tmp_path / "s.json")
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "s.json").read_text())
    assert rep["ties"] == "index" and rep["labelled"] and rep["warnings"] == []
    from spikeport import simulate
    from spikeport.datasets import load_user_data as load
    sim = simulate(kws_network(), load(kws / "labelled.npz", (390,)), 10)
    assert rep["accuracy"] == sim.activity.accuracy(sim.labels, ties="index")
    # thresholds no input reaches: every layer silent, said loudly in the text and the JSON, exit 0
    save_network(kws_network(threshold=1e6), tmp_path / "deaf.spk")
    r = run_cli("simulate", tmp_path / "deaf.spk", "--data", kws / "features.npz", "--steps", "10",
                "--json", tmp_path / "d.json")
    assert r.returncode == 0, r.stderr
    warns = json.loads((tmp_path / "d.json").read_text())["warnings"]
    assert len(warns) == 3 and any(w.startswith("the output 'out' is silent") for w in warns)
    assert r.stdout.count("WARNING:") == 3 and "100% of the samples" in r.stdout


def test_convert_calibrates_on_the_users_samples(digits_model_file, tmp_path):
    import spikeport

    ds = spikeport.load_dataset("digits")
    np.save(tmp_path / "calib.npy", ds.x("train")[:300].reshape(300, 64))
    r = run_cli("convert", digits_model_file, "--data", tmp_path / "calib.npy", "--out", tmp_path / "n.spk")
    assert r.returncode == 0, r.stderr
    net = spikeport.load_network(tmp_path / "n.spk")
    assert net.metadata["calibration_data"].endswith("calib.npy") and net.metadata["dataset"] is None
    # the same samples through the API give the same network (to float32 rounding: the percentile comes from
    # the ANN's activations, summed in an order that depends on the process's thread count)
    ref = spikeport.convert(spikeport.load_model(digits_model_file), ds.x("train")[:300])
    for a, b in zip(net.projections, ref.projections):
        np.testing.assert_allclose(a.ops[-1].weight, b.ops[-1].weight, rtol=1e-6, atol=0)
    r = run_cli("convert", digits_model_file, "--data", tmp_path / "calib.npy", "--dataset", "digits",
                "--out", tmp_path / "m.spk")
    assert r.returncode == 2 and "give one" in r.stderr and not (tmp_path / "m.spk").exists()


def test_train_on_the_users_labelled_samples(tmp_path):
    import spikeport

    rng = np.random.default_rng(0)
    means = rng.random((5, 390))
    y = rng.integers(0, 5, 300)
    x = (means[y] + 0.3 * rng.random((300, 390))).astype(np.float32)
    np.savez(tmp_path / "own.npz", x=x, y=y)
    r = run_cli("train", "--data", tmp_path / "own.npz", "--epochs", "3", "--out", tmp_path / "own.pt", "--quiet")
    assert r.returncode == 0, r.stderr
    model = spikeport.load_model(tmp_path / "own.pt")
    assert model.spec.input_shape == (390,) and model.spec.classes == 5 and model.meta["dataset"] == "own.npz"
    assert model.meta["test_accuracy"] > 0.9  # five well-separated classes
    ds = spikeport.datasets.user_dataset(tmp_path / "own.npz")
    held = sum(int(round(0.2 * c)) for c in np.bincount(y))  # 20 % of each class held out
    assert len(ds.test_labels) == held and len(ds.train_labels) == 300 - held
    assert sorted(np.bincount(ds.test_labels)) == sorted(int(round(0.2 * c)) for c in np.bincount(y))
    np.savez(tmp_path / "split.npz", x=x[:200], y=y[:200], x_test=x[200:], y_test=y[200:])
    ds = spikeport.datasets.user_dataset(tmp_path / "split.npz")
    assert len(ds.test_labels) == 100 and (ds.y("test") == y[200:]).all()
    r = run_cli("convert", tmp_path / "own.pt", "--out", tmp_path / "own.spk")  # its data is the user's: say so
    assert r.returncode == 2 and "give samples with --data FILE" in r.stderr
    r = run_cli("train", "--data", tmp_path / "own.npz", "--dataset", "digits", "--out", tmp_path / "x.pt")
    assert r.returncode == 2 and "give one" in r.stderr
    np.savez(tmp_path / "nolabels.npz", x=x)
    r = run_cli("train", "--data", tmp_path / "nolabels.npz", "--out", tmp_path / "x.pt")
    assert r.returncode == 2 and "has no labels" in r.stderr and not (tmp_path / "x.pt").exists()
