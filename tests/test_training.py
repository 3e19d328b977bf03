"""The shared trainer: validation split, checkpoints and resume, init, the method registry."""
import numpy as np
import pytest

from conftest import run_cli
from spikeport.errors import SpikeportError


@pytest.fixture(scope="module")
def digits():
    import spikeport

    return spikeport.load_dataset("digits")


class StopAfter:
    """A progress object that interrupts training after ``n`` batches, as a killed run would."""

    def __init__(self, n):
        self.n, self.seen = n, 0

    def update(self, k):
        self.seen += k
        if self.seen >= self.n:
            raise KeyboardInterrupt


def _same_weights(a, b):
    import torch

    sa, sb = a.module.state_dict(), b.module.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_ends_exactly_where_an_uninterrupted_run_ends(digits, tmp_path):
    from spikeport.models import train

    kw = dict(arch="mlp", method="qcfs", epochs=3, seed=4, hidden=(32,))
    whole = train(digits, checkpoint=tmp_path / "whole.ckpt", **kw)
    steps = -(-len(digits.y("train")) * 9 // 10 // 64)  # batches per epoch, about: interrupt inside epoch 2
    with pytest.raises(KeyboardInterrupt):
        train(digits, checkpoint=tmp_path / "part.ckpt", progress=StopAfter(steps + 3), **kw)
    resumed = train(digits, checkpoint=tmp_path / "part.ckpt", resume=True, **kw)
    assert _same_weights(whole, resumed)
    assert [h["epoch"] for h in resumed.meta["history"]] == [1, 2, 3]
    assert resumed.meta["history"] == [dict(h, seconds=r["seconds"]) for h, r in
                                       zip(whole.meta["history"], resumed.meta["history"])]
    assert resumed.meta["test_accuracy"] == whole.meta["test_accuracy"] > 0.2  # chance: 0.1


def test_resume_refuses_other_settings_and_a_missing_checkpoint(digits, tmp_path):
    from spikeport.models import train

    train(digits, arch="mlp", epochs=1, seed=0, hidden=(16,), checkpoint=tmp_path / "a.ckpt")
    with pytest.raises(SpikeportError, match="seed 0, not 1") as err:
        train(digits, arch="mlp", epochs=1, seed=1, hidden=(16,), checkpoint=tmp_path / "a.ckpt", resume=True)
    assert "\n" not in str(err.value)
    with pytest.raises(SpikeportError, match="no checkpoint file"):
        train(digits, arch="mlp", epochs=1, checkpoint=tmp_path / "absent.ckpt", resume=True)
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(SpikeportError, match="bad.ckpt: not a spikeport checkpoint"):
        train(digits, arch="mlp", epochs=1, checkpoint=tmp_path / "bad.ckpt", resume=True)


def test_model_from_a_running_checkpoint_is_what_train_returns(digits, tmp_path):
    from spikeport.errors import FileFormatError
    from spikeport.models import train
    from spikeport.models.convert import convert
    from spikeport.models.training import model_from_checkpoint

    done = train(digits, arch="mlp", method="qcfs", epochs=2, seed=2, hidden=(16,), checkpoint=tmp_path / "a.ckpt")
    model = model_from_checkpoint(tmp_path / "a.ckpt")
    assert _same_weights(done, model)
    for key in ("method", "selected_epoch", "val_accuracy", "history", "qcfs_levels", "snn", "options"):
        assert model.meta[key] == done.meta[key], key
    assert model.meta["partial"] == "from the checkpoint after epoch 2 of 2" and "test_accuracy" not in model.meta
    assert convert(model, digits.x("train")[:64]).populations  # a model file's worth: it converts
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(FileFormatError, match="bad.ckpt: not a spikeport checkpoint"):
        model_from_checkpoint(tmp_path / "bad.ckpt")
    with pytest.raises(SpikeportError, match="absent.ckpt"):
        model_from_checkpoint(tmp_path / "absent.ckpt")


def test_validation_split_is_fixed_stratified_and_never_the_test_set(digits):
    from spikeport.models.training import validation_split

    tr, va = validation_split(digits, None)
    tr2, va2 = validation_split(digits, None)
    assert np.array_equal(va, va2) and np.array_equal(tr, tr2)
    assert len(np.intersect1d(tr, va)) == 0 and len(tr) + len(va) == len(digits.y("train"))
    assert abs(len(va) - 0.1 * len(digits.y("train"))) <= 10
    counts = np.bincount(digits.y("train")[va], minlength=10)
    assert counts.min() >= 12  # every class is held out in proportion
    assert len(validation_split(digits, 0)[1]) == 0
    assert abs(len(validation_split(digits, 300)[1]) - 300) <= 10
    for bad in (-1, 1.5, 10**6, True):
        with pytest.raises(SpikeportError, match="--validation"):
            validation_split(digits, bad)


def test_best_validation_epoch_is_kept_and_the_test_set_only_scored(digits):
    from spikeport.models import train

    m = train(digits, arch="mlp", epochs=8, seed=0, hidden=(32,))
    vals = [h["val_accuracy"] for h in m.meta["history"]]
    best = max(vals)
    assert m.meta["val_accuracy"] == best
    assert m.meta["selected_epoch"] == max(i + 1 for i, v in enumerate(vals) if v == best)
    losses = [h["loss"] for h in m.meta["history"]]
    assert losses[-1] < losses[0]
    assert m.meta["validation"] > 100 and 0.5 < m.meta["test_accuracy"] <= 1


def test_init_copies_matching_weights_and_refuses_a_foreign_model(digits, tmp_path):
    import torch

    from spikeport.models import save_model, train

    relu = train(digits, arch="mlp", epochs=2, seed=0, hidden=(32,), validation=0)
    save_model(relu, tmp_path / "relu.pt")
    # one epoch of QCFS at a tiny learning rate stays next to the ReLU weights it started from
    q = train(digits, arch="mlp", method="qcfs", epochs=1, seed=3, hidden=(32,), lr=1e-7, init=tmp_path / "relu.pt",
              validation=0)
    w0, w1 = relu.module.state_dict()["fc1.weight"], q.module.state_dict()["fc1.weight"]
    assert torch.allclose(w0, w1, atol=1e-4) and q.meta["init"].endswith("relu.pt")
    with pytest.raises(SpikeportError, match="--init"):
        train(digits, arch="mlp", epochs=1, hidden=(7,), init=relu)


def test_ties_in_the_scores_count_as_wrong():
    import torch

    from spikeport.models.training import method_accuracy

    class Fixed:
        @staticmethod
        def predict(module, x, ctx):
            # sample 0: classes 1 and 2 tie at the top; sample 1: class 2 alone
            return torch.tensor([[0.0, 3.0, 3.0], [0.0, 1.0, 2.0]])[: len(x)]

    module = torch.nn.Identity()
    acc = method_accuracy(Fixed, module, np.zeros((2, 1), np.float32), np.array([1, 2]), {})
    assert acc == 0.5


def test_every_method_is_declared_completely():
    from spikeport.models.methods import METHODS, describe, get_method
    from spikeport.models.methods.base import SpikingSpec

    assert METHODS == ("relu", "qcfs", "noisy-softplus", "soft-lif", "proxy", "spike-bp")
    for name in METHODS:
        m = get_method(name)
        d = describe(name)
        assert d["name"] == name and d["citation"] and d["ann"] and d["training"]
        assert all(callable(getattr(m, f)) for f in ("build", "loss", "predict", "to_network"))
        spec = SpikingSpec(**d["snn"])
        assert spec.neuron in ("if", "lif") and spec.steps >= 1 and spec.dt_s > 0
        assert spec.describe().startswith(spec.neuron.upper())
        assert d["default_arch"].get("mnist") or d["default_arch"].get("default")
    with pytest.raises(SpikeportError, match="unknown training method 'bogus'"):
        get_method("bogus")


def test_method_options_are_checked():
    from spikeport.models.methods import get_method

    decl = get_method("qcfs").METHOD
    assert decl.resolve_options({"levels": 4}) == {"levels": 4}
    with pytest.raises(SpikeportError, match="no option 'lvl'"):
        decl.resolve_options({"lvl": 4})
    with pytest.raises(SpikeportError, match="option 'levels' must be like 8"):
        decl.resolve_options({"levels": 2.5})


def test_layer_strings_build_the_papers_networks():
    import torch

    from spikeport.models.architectures import ArchSpec, build, parse_layers

    nsp = build(ArchSpec("16c5-p2-64c5-p2", (1, 28, 28), 10))
    assert [n for n, _ in nsp.named_children()] == ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2",
                                                     "flatten", "fc1"]
    assert nsp.fc1.in_features == 64 * 4 * 4 and nsp(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    padded = build(ArchSpec("8c3s-p2-32", (1, 8, 8), 10, bias=False, batchnorm=True))
    assert padded.conv1.bias is None and isinstance(padded.bn1, torch.nn.BatchNorm2d)
    assert padded(torch.zeros(2, 1, 8, 8)).shape == (2, 10)
    assert parse_layers("fc100-10") == [("fc", 100), ("fc", 10)]
    for bad, words in (("16c5-q2", "cannot read layer 'q2'"), ("16c4s", "odd when padded"),
                       ("0c3", "1..65536 channels")):
        with pytest.raises(SpikeportError, match=words):
            ArchSpec(bad, (1, 28, 28), 10)
    with pytest.raises(SpikeportError, match="does not fit"):
        build(ArchSpec("8c9-p2", (1, 8, 8), 10))


def test_cli_methods_lists_every_method_with_its_spiking_network(tmp_path):
    import json

    r = run_cli("methods", "--json", tmp_path / "m.json")
    assert r.returncode == 0, r.stderr
    for name in ("relu", "qcfs", "noisy-softplus", "soft-lif", "proxy", "spike-bp"):
        assert f"{name}: " in r.stdout
    data = json.loads((tmp_path / "m.json").read_text())
    assert data["qcfs"]["snn"]["v_init"] == 0.5 and data["qcfs"]["options"] == {"levels": 8}


def test_cli_train_resume_and_convert_with_the_methods_defaults(tmp_path):
    out = tmp_path / "q.pt"
    args = ("train", "--method", "qcfs", "--arch", "fc32", "--epochs", "2", "--qcfs-levels", "4", "--out", out)
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert "validation" in r.stdout and (tmp_path / "q.pt.ckpt").is_file()
    r = run_cli(*args, "--resume")  # the checkpoint is complete: nothing left to train, same model
    assert r.returncode == 0, r.stderr
    r = run_cli("convert", out, "--out", tmp_path / "q.spk")
    assert r.returncode == 0, r.stderr
    from spikeport.ir import load_network

    net = load_network(tmp_path / "q.spk")
    assert net.population("fc1").neuron.v_init == 0.5  # QCFS's threshold shift, from the model file
    r = run_cli("train", "--method", "relu", "--option", "levels=4", "--out", tmp_path / "x.pt")
    assert r.returncode == 2 and "no option 'levels'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_cli("train", "--qcfs-levels", "4", "--out", tmp_path / "x.pt")
    assert r.returncode == 2 and "--qcfs-levels applies to --method qcfs" in r.stderr


def test_cuda_training_scores_like_the_cpu(digits):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    from spikeport.models import train

    kw = dict(arch="mlp", epochs=3, seed=0, hidden=(32,), validation=0)
    cpu, gpu = train(digits, **kw), train(digits, device="cuda", **kw)
    assert next(gpu.module.parameters()).device.type == "cpu"  # returned ready to convert
    # the same batches and initial weights; the arithmetic differs in rounding only
    assert abs(cpu.meta["test_accuracy"] - gpu.meta["test_accuracy"]) <= 0.03


def test_cuda_refused_where_absent(digits):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    from spikeport.models import train

    with pytest.raises(SpikeportError, match="no CUDA device"):
        train(digits, arch="mlp", epochs=1, device="cuda")


def test_cli_convert_takes_everything_from_a_method_model_and_refuses_rate_options(tmp_path):
    out = tmp_path / "s.pt"
    r = run_cli("train", "--method", "soft-lif", "--arch", "fc16", "--epochs", "1", "--out", out)
    assert r.returncode == 0, r.stderr
    for extra, words in ((("--norm", "max"), "--norm does not apply"),
                         (("--l4", "scale", "--for-steps", "8"), "--l4 and --calibrate adjust rate-converted"),
                         (("--v-init", "half"), "--v-init does not apply")):
        r = run_cli("convert", out, *extra, "--out", tmp_path / "s.spk")
        assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not (tmp_path / "s.spk").exists()
    r = run_cli("convert", out, "--out", tmp_path / "s.spk")
    assert r.returncode == 0 and "(soft-lif)" in r.stdout, r.stderr
    from spikeport.ir import load_network

    net = load_network(tmp_path / "s.spk")
    assert net.population("fc1").neuron.model == "lif" and net.population("fc1").neuron.refractory_steps == 2
