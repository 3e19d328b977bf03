"""Guarded simulator runs (issue 25): a real Brian2 run in batches, each in its own process, equals one run
spike for spike; a batch that crashes (SIGSEGV), hangs or fails is one line naming the backend, the batch and
its samples; the batches done are kept and the same call again resumes without running them again; the
debug files a simulator leaves in its temporary directory go with the batch's private one.

Faults are injected into the batch processes by a sitecustomize module on their PYTHONPATH, which wraps the
real Brian2 backend's ``run``: the simulator itself still runs every batch that does not fault."""
import json
import os
import textwrap

import numpy as np
import pytest

from conftest import run_cli, small_network
from spikeport.errors import SpikeportError

pytest.importorskip("brian2")

STEPS, SEED = 20, 3
OPTIONS = {"codegen": "numpy"}
FAULTS = textwrap.dedent('''
    import os
    if os.environ.get("SPIKEPORT_TEST_FAULT") is not None:
        import signal, tempfile, time
        import spikeport.backends.brian as brian
        real = brian.run
        def run(network, x, steps, *, sample0=0, **options):
            with open(os.environ["SPIKEPORT_TEST_LOG"], "a") as log:
                log.write(f"{sample0}\\n")
            fault, _, at = os.environ["SPIKEPORT_TEST_FAULT"].partition(":")
            if fault and sample0 >= int(at):
                if fault == "crash":
                    os.kill(os.getpid(), signal.SIGSEGV)
                if fault == "hang":
                    time.sleep(3600)
                if fault == "fail":
                    with open(os.path.join(tempfile.gettempdir(), "brian_debug_test.log"), "w") as f:
                        f.write("what a simulator leaves behind on a crash")
                    raise RuntimeError("the simulator gave up\\nwith a second line")
            return real(network, x, steps, sample0=sample0, **options)
        brian.run = run
''')


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Kept batches under tmp_path/runs, the fault hook on the batch processes' path, a private TMPDIR."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(FAULTS)
    monkeypatch.setenv("SPIKEPORT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(hook)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    monkeypatch.setenv("SPIKEPORT_TEST_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("SPIKEPORT_TEST_FAULT", "")
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    return tmp_path


def calls(env) -> list:
    path = env / "calls.log"
    return [int(v) for v in path.read_text().split()] if path.exists() else []


@pytest.fixture(scope="module")
def net_and_x():
    net = small_network(encoding="poisson")
    x = np.random.default_rng(0).random((10, 12)).astype(np.float32)
    return net, x


@pytest.fixture(scope="module")
def whole(net_and_x):
    from spikeport.backends import get_backend

    net, x = net_and_x
    return get_backend("brian2").run(net, x, STEPS, seed=SEED, record_counts=True, **OPTIONS)


def batched(net_and_x, **kw):
    from spikeport.backends.batches import run_batches

    net, x = net_and_x
    return run_batches("brian2", net, x, STEPS, seed=SEED, options=OPTIONS, batch_samples=4, **kw)


def failing(env, net_and_x, monkeypatch, fault) -> tuple:
    """(the one-line message, the directory of the kept batches) of a guarded run with ``fault``."""
    monkeypatch.setenv("SPIKEPORT_TEST_FAULT", fault)
    with pytest.raises(SpikeportError) as exc:
        batched(net_and_x)
    (kept,) = (env / "runs").iterdir()
    return str(exc.value), kept


def same(a, b):
    np.testing.assert_array_equal(a.predictions, b.predictions)
    np.testing.assert_array_equal(a.output_counts, b.output_counts)
    np.testing.assert_array_equal(a.first_spike_step, b.first_spike_step)
    assert a.population_spikes.keys() == b.population_spikes.keys()
    for k in a.population_spikes:
        np.testing.assert_array_equal(a.population_spikes[k], b.population_spikes[k])
        np.testing.assert_array_equal(a.neuron_counts.get(k), b.neuron_counts.get(k))
    for k in a.synops:
        np.testing.assert_array_equal(a.synops[k], b.synops[k])


def test_batches_in_their_own_processes_equal_one_run(env, net_and_x, whole):
    act = batched(net_and_x)
    assert calls(env) == [0, 4, 8]  # three batches, Poisson trains from each batch's first sample
    same(act, whole)
    assert int(whole.population_spikes["input"].sum()) > 0 and act.samples == 10
    assert list((env / "runs").iterdir()) == []  # merged: nothing kept


def test_a_crash_is_one_line_and_the_rerun_resumes(env, net_and_x, whole, monkeypatch):
    message, kept = failing(env, net_and_x, monkeypatch, "crash:4")
    assert message == (f"brian2: batch 2 of 3 (samples 4 to 7): the simulator crashed (SIGSEGV); 1 batch "
                       f"done is kept in {kept}: run the same command again to resume")
    assert sorted(p.name for p in kept.glob("batch-*")) == ["batch-000000000-000000004.npz"]
    monkeypatch.setenv("SPIKEPORT_TEST_FAULT", "")
    same(batched(net_and_x), whole)
    assert calls(env) == [0, 4, 4, 8]  # the rerun did not run batch 1 again
    assert not kept.exists()


def test_a_hung_batch_is_killed_at_its_time_limit(env, net_and_x, monkeypatch):
    monkeypatch.setenv("SPIKEPORT_TEST_FAULT", "hang:0")
    with pytest.raises(SpikeportError, match=r"^brian2: batch 1 of 3 \(samples 0 to 3\) did not finish in 20 s "
                                             r"\(--batch-seconds\)$"):
        batched(net_and_x, batch_seconds=20)
    # the limit counts the batch process's imports too: on a slow machine it may be killed before it runs
    assert calls(env) in ([], [0])
    assert list((env / "runs").iterdir()) == []  # no batch done: nothing kept, nothing left


def test_a_failing_simulator_is_one_line_and_its_debug_files_are_removed(env, net_and_x, monkeypatch):
    message, kept = failing(env, net_and_x, monkeypatch, "fail:8")
    assert message == (f"brian2: batch 3 of 3 (samples 8 to 9): RuntimeError: the simulator gave up; 2 "
                       f"batches done are kept in {kept}: run the same command again to resume")
    assert not list(kept.glob("tmp-*")) and list((env / "tmp").iterdir()) == []


def test_validate_on_the_command_line(env, net_and_x, tmp_path, monkeypatch):
    from spikeport.ir import save_network

    net, x = net_and_x
    save_network(net, tmp_path / "n.spk")
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10) % 4)
    args = ["validate", tmp_path / "n.spk", "--data", tmp_path / "d.npz", "--backend", "brian2", "--steps", STEPS,
            "--seed", SEED, "--batch-samples", 4, "--quiet", "--json", tmp_path / "v.json"]
    monkeypatch.setenv("SPIKEPORT_TEST_FAULT", "crash:8")
    r = run_cli(*args)
    assert r.returncode == 2 and r.stdout == "" and not (tmp_path / "v.json").exists()
    assert r.stderr.startswith("error: brian2: batch 3 of 3 (samples 8 to 9): the simulator crashed (SIGSEGV); 2 "
                               "batches done are kept in ") and r.stderr.count("\n") == 1, r.stderr
    monkeypatch.setenv("SPIKEPORT_TEST_FAULT", "")
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    assert calls(env) == [0, 4, 8, 8]
    assert json.loads((tmp_path / "v.json").read_text())["samples"] == 10
    r = run_cli(*(args[:-2] + ["--batch-seconds", "0"]))
    assert r.returncode == 2 and "--batch-seconds" in r.stderr and r.stderr.count("\n") == 1
