"""The core works without the simulators, and on numpy 2.x."""
import os
import subprocess
import sys
import venv


from conftest import ROOT

CORE = ("spikeport", "spikeport.ir", "spikeport.models", "spikeport.backends", "spikeport.backends.reference",
        "spikeport.deploy", "spikeport.datasets", "spikeport.api", "spikeport.cli", "spikeport.hardware_profiles",
        "spikeport.passes.adjust", "spikeport.passes.diagnose", "spikeport.runtimes.readout",
        *(f"spikeport.deploy.{m}" for m in ("pipeline", "check", "targets", "quantize_chips", "partition",
                                              "energy", "ann_baseline", "emit_loihi", "emit_scripts", "report")))
SIMULATORS = ("brian2", "nengo", "nengo_loihi", "pyNN", "spynnaker", "nest")


def test_core_imports_no_simulator():
    code = (f"import importlib, sys\nfor m in {CORE!r}: importlib.import_module(m)\n"
            f"import spikeport; spikeport.simulate; spikeport.train\n"
            f"print(sorted(m for m in sys.modules if m.split('.')[0] in {SIMULATORS!r}))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_import_spikeport_is_light():
    r = subprocess.run([sys.executable, "-c", "import spikeport, sys; print('torch' in sys.modules)"],
                       capture_output=True, text=True)
    assert r.stdout.strip() == "False"


NUMPY2 = "numpy==2.4.6"


def test_train_convert_simulate_in_a_fresh_venv_with_numpy2(tmp_path):
    """A throwaway venv with numpy 2.x, torch and matplotlib (the reports), and none of brian2, nengo, PyNN."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    r = subprocess.run([py, "-m", "pip", "install", "-q", NUMPY2, "torch==2.13.0", "matplotlib==3.11.2",
                        "tqdm==4.70.1"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    check = "import numpy, importlib.util as u; print(numpy.__version__, [m for m in ('brian2','nengo','pyNN') if u.find_spec(m)])"
    r = subprocess.run([py, "-c", check], capture_output=True, text=True, env=env)
    assert r.stdout.split()[0].startswith("2.") and r.stdout.strip().endswith("[]"), r.stdout + r.stderr
    for args in (["train", "--epochs", "2", "--out", "m.pt"], ["convert", "m.pt", "--out", "n.spk"],
                 ["simulate", "n.spk", "--steps", "32", "--json", "s.json"],
                 ["power", "n.spk", "--target", "loihi,spinnaker,truenorth", "--samples", "20", "--json", "p.json"],
                 ["deploy", "n.spk", "--target", "truenorth", "--out", "tn", "--samples", "20"]):
        r = subprocess.run([py, "-m", "spikeport", *args], capture_output=True, text=True, env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr
    assert (tmp_path / "s.json").is_file() and (tmp_path / "p.json").is_file()
    assert (tmp_path / "tn" / "manifest.json").is_file() and (tmp_path / "tn" / "brian2" / "run_brian2.py").is_file()
    assert "<figure class='plot' data-plot='layer-mapping'><svg" in (tmp_path / "tn" / "report.html").read_text()
