"""A user's own PyTorch files from the command line: state dict + --model-def, TorchScript, refusals (issue 23)."""
import numpy as np
import pytest

from conftest import run_cli

torch = pytest.importorskip("torch")

MODULE_SOURCE = '''
import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 36, 10)

    def forward(self, x):
        x = x.view(-1, 1, 8, 8)          # flat samples reshaped on the way in
        x = nn.functional.relu(self.conv(x))
        return self.fc(x.flatten(1))


def build():
    return Net()


def wrong():
    return nn.Linear(3, 2)
'''


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import importlib
    import sys

    d = tmp_path_factory.mktemp("user")
    (d / "usernet.py").write_text(MODULE_SOURCE)
    sys.path.insert(0, str(d))
    try:
        mod = importlib.import_module("usernet")
        torch.manual_seed(0)
        net = mod.build().eval()
        torch.save(net.state_dict(), d / "state.pt")
        torch.save({"epoch": 7, "model_state_dict": net.state_dict()}, d / "checkpoint.pt")
        torch.save(net, d / "whole.pt")  # a pickled module: needs its class importable, as a user's would be
        torch.jit.script(net).save(str(d / "custom.ts"))
    finally:
        sys.path.remove(str(d))
        sys.modules.pop("usernet", None)
    seq = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 10)).eval()
    torch.jit.script(seq).save(str(d / "seq.ts"))
    rng = np.random.default_rng(0)
    np.savez(d / "calib.npz", x=rng.random((64, 64)).astype(np.float32))
    return d, net, seq


def _weights(path):
    import spikeport

    net = spikeport.load_network(path)
    return net, [np.concatenate([np.ravel(getattr(op, "weight", np.zeros(0))) for op in p.ops]) for p in net.projections]


def _api(module, d):
    import spikeport

    net = spikeport.convert(module, np.load(d / "calib.npz")["x"], v_init="half")
    return [np.concatenate([np.ravel(getattr(op, "weight", np.zeros(0))) for op in p.ops]) for p in net.projections]


@pytest.mark.parametrize("name", ["state.pt", "checkpoint.pt"])
def test_state_dict_with_model_def(files, name):
    d, net, _ = files
    r = run_cli("convert", d / name, "--model-def", "usernet:build", "--data", d / "calib.npz", "--out", d / f"{name}.spk",
                cwd=d)
    assert r.returncode == 0, r.stderr
    got, weights = _weights(d / f"{name}.spk")
    assert got.population("input").shape == (1, 8, 8)  # the module's own view of its input
    assert got.population("input").encoding.kind == "analog" and got.metadata["conversion"]["v_init"] == "half"
    for a, b in zip(weights, _api(net, d)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)  # float32 rounding: thread-count-dependent sums


def test_torchscript_sequential_needs_no_code(files):
    d, _, seq = files
    r = run_cli("convert", d / "seq.ts", "--data", d / "calib.npz", "--out", d / "seq.spk", cwd=d)
    assert r.returncode == 0, r.stderr
    assert "TorchScript" in r.stdout
    _, weights = _weights(d / "seq.spk")
    for a, b in zip(weights, _api(seq, d)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)  # float32 rounding: thread-count-dependent sums


def test_torchscript_with_its_own_forward_takes_the_source(files):
    d, net, _ = files
    r = run_cli("convert", d / "custom.ts", "--data", d / "calib.npz", "--out", d / "c.spk", cwd=d)
    assert r.returncode == 2 and "--model-def" in r.stderr and "own forward" in r.stderr
    r = run_cli("convert", d / "custom.ts", "--model-def", "usernet:build", "--data", d / "calib.npz",
                "--out", d / "c.spk", cwd=d)
    assert r.returncode == 0, r.stderr
    _, weights = _weights(d / "c.spk")
    for a, b in zip(weights, _api(net, d)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)  # float32 rounding: thread-count-dependent sums


@pytest.mark.parametrize("args, message", [
    (("whole.pt", "--data", "calib.npz"), "holds a pickled module"),
    (("state.pt", "--data", "calib.npz"), "holds a state dict"),
    (("state.pt", "--model-def", "usernet:wrong", "--data", "calib.npz"), "do not fit the module"),
    (("state.pt", "--model-def", "usernet:nothing", "--data", "calib.npz"), "has no 'nothing'"),
    (("state.pt", "--model-def", "nosuchmodule:build", "--data", "calib.npz"), "cannot import 'nosuchmodule'"),
    (("state.pt", "--model-def", "usernet", "--data", "calib.npz"), "expected module:factory"),
    (("state.pt", "--model-def", "usernet:build"), "needs calibration samples"),
])
def test_refusals_are_one_plain_line(files, args, message):
    d, _, _ = files
    r = run_cli("convert", *args, "--out", "refused.spk", cwd=d)
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert message in line and "\n" not in line and "\x1b" not in line and "Traceback" not in line
    assert not (d / "refused.spk").exists()
