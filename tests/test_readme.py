"""The README's examples run as written (issue 23): the lines of each marked block, in a folder holding the
files the block names."""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

README = Path(__file__).resolve().parents[1] / "README.md"

MYNET = '''
import torch.nn as nn


def build():
    return nn.Sequential(nn.Flatten(), nn.Linear(390, 64), nn.ReLU(), nn.Linear(64, 29))
'''


def block(marker: str) -> str:
    """The fenced code block after ``<!-- example: MARKER ... -->`` in the README."""
    m = re.search(r"<!-- example: " + re.escape(marker) + r"\b[^>]*-->\s*```\w*\n(.*?)```", README.read_text(), re.S)
    assert m, f"README.md has no example block {marker!r}"
    return m.group(1)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """What the own-data example starts from: a keyword-spotter-shaped module (390 features, 29 classes),
    its weights, calibration, test (labelled) and feature (unlabelled) arrays."""
    torch = pytest.importorskip("torch")
    d = tmp_path_factory.mktemp("readme")
    (d / "mynet.py").write_text(MYNET)
    sys.path.insert(0, str(d))
    try:
        import mynet
        torch.manual_seed(0)
        torch.save(mynet.build().state_dict(), d / "weights.pt")
    finally:
        sys.path.remove(str(d))
        sys.modules.pop("mynet", None)
    rng = np.random.default_rng(0)
    np.savez(d / "calib.npz", x=rng.random((200, 390)).astype(np.float32))
    np.savez(d / "test.npz", x=rng.random((40, 390)).astype(np.float32), y=rng.integers(0, 29, 40))
    np.savez(d / "features.npz", x=rng.random((30, 390)).astype(np.float32))
    return d


def test_own_data_commands_run_as_written(folder):
    lines = [ln for ln in block("own-data").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) == 4 and all(ln.startswith("spikeport ") for ln in lines)
    for line in lines:
        r = run_cli(*shlex.split(line)[1:], cwd=folder)
        assert r.returncode == 0, f"{line}: {r.stderr}"
    assert (folder / "mynet.spk").is_file() and (folder / "power.html").is_file()
    assert (folder / "loihi-deploy" / "manifest.json").is_file()


def test_own_data_python_runs_as_written(folder):
    if not (folder / "mynet.spk").is_file():
        assert run_cli("convert", "weights.pt", "--model-def", "mynet:build", "--data", "calib.npz", "--out",
                       "mynet.spk", cwd=folder).returncode == 0
    r = subprocess.run([sys.executable, "-c", block("own-data-python")], cwd=folder, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(README.parent)}, timeout=600)
    assert r.returncode == 0, r.stderr
    energy, warnings = r.stdout.split(" ", 1)
    assert float(energy) > 0 and warnings.strip().startswith("[")


def test_nir_commands_run_as_written(tmp_path):
    import shutil

    fixtures = Path(__file__).parent / "data" / "nir"
    shutil.copy(fixtures / "snntorch_leaky_subtract.nir", tmp_path / "model.nir")  # written by snnTorch 1.0
    d = np.load(fixtures / "snntorch_leaky_subtract.npz")
    np.savez(tmp_path / "test.npz", x=d["x"], y=d["y"])
    lines = [ln.split("#")[0].strip() for ln in block("nir").splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) == 3 and all(ln.startswith("spikeport ") for ln in lines)
    for line in lines:
        r = run_cli(*shlex.split(line)[1:], cwd=tmp_path)
        assert r.returncode == 0, f"{line}: {r.stderr}"
    assert "NIR import as snnTorch" in run_cli("simulate", "model.nir", "--data", "test.npz", cwd=tmp_path).stderr
    assert (tmp_path / "model.spk").is_file() and (tmp_path / "model-power.html").is_file()
