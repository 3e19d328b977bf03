"""Sweeps on dask.distributed (issue 26): a real scheduler and two workers started as separate processes on
127.0.0.1, as a user's cluster would be. A worker killed mid-sweep has its tasks run again on the other and
the table equals a serial run's exactly; a client killed mid-sweep and started again finishes without
redoing the points already kept; the same sweep on a local cluster gives the same table.

Exact equality across processes holds because the network's weights, thresholds and inputs lie on a dyadic
grid (conftest ``on_dyadic_grid``): every sum is exact whatever the number of threads or the shard size."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import on_dyadic_grid, run_cli

pytest.importorskip("distributed")

STEPS, TARGETS, SAMPLES = (8, 16), ("loihi", "spinnaker", "cpu", "speck"), 240
POINTS = len(STEPS) * len(TARGETS)


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory, digits_model):
    from spikeport.api import convert
    from spikeport.ir import save_network

    root = tmp_path_factory.mktemp("sweep")
    net = on_dyadic_grid(convert(digits_model, encoding="poisson"))
    save_network(net, root / "net.spk")
    (root / "sweep.toml").write_text(f'[sweep]\nnetworks = ["net.spk"]\ndataset = "digits"\nsteps = {list(STEPS)}\n'
                                     f'targets = {list(TARGETS)}\nsamples = {SAMPLES}\n')
    return root / "sweep.toml"


@pytest.fixture(scope="module")
def serial(sweep_file, tmp_path_factory):
    from spikeport.sweeps import load_sweep, run_sweep

    out = tmp_path_factory.mktemp("serial")
    result = run_sweep(load_sweep(sweep_file), out, shard_samples=SAMPLES, report=False)
    assert [r["error"] for r in result.rows] == [None] * POINTS
    assert min(r["accuracy"] for r in result.rows) > 0.8  # a trained network, far above chance
    return (out / "table.csv").read_text()


class Cluster:
    """A dask scheduler and workers, each its own process (no nanny: killing a worker kills it)."""

    def __init__(self, root, workers=2):
        self.file = root / "scheduler.json"
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(self.file)], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        self.wait(lambda: self.file.exists() and self.file.stat().st_size > 0, "the scheduler file")
        self.workers = [subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(self.file), "--nthreads",
             "1", "--no-nanny", "--no-dashboard", "--name", f"w{i}"], env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL) for i in range(workers)]
        from distributed import Client

        with Client(scheduler_file=str(self.file), timeout=60) as client:
            self.wait(lambda: len(client.scheduler_info()["workers"]) == workers, f"{workers} workers")

    @staticmethod
    def wait(ok, what, timeout_s=120):
        end = time.monotonic() + timeout_s
        while not ok():
            assert time.monotonic() < end, f"{what} did not come within {timeout_s} s"
            time.sleep(0.05)

    def close(self):
        for p in [*self.workers, self.scheduler]:
            if p.poll() is None:
                p.kill()
            p.wait(30)


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def start_sweep(sweep_file, out, cluster, shard_samples):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen([sys.executable, "-m", "spikeport", "sweep", str(sweep_file), "--out", str(out),
                             "--scheduler", str(cluster.file), "--shard-samples", str(shard_samples), "--quiet"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kept(out) -> dict:
    points = out / "points"
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in points.glob("*.json")} if points.is_dir() else {}


def test_a_worker_killed_mid_sweep_changes_nothing(sweep_file, serial, cluster, tmp_path):
    out = tmp_path / "out"
    client = start_sweep(sweep_file, out, cluster, shard_samples=8)  # 30 shards a point: the sweep takes a while
    Cluster.wait(lambda: len(kept(out)) >= 1 or client.poll() is not None, "a first point")
    assert client.poll() is None and len(kept(out)) < POINTS, "the sweep ended before a worker could be killed"
    cluster.workers[0].kill()
    stdout, stderr = client.communicate(timeout=600)
    assert client.returncode == 0, stderr[-2000:]
    assert cluster.workers[1].poll() is None
    assert (out / "table.csv").read_text() == serial
    assert len(kept(out)) == POINTS


def test_a_client_killed_mid_sweep_goes_on_from_the_kept_points(sweep_file, serial, cluster, tmp_path):
    import json

    out = tmp_path / "out"
    client = start_sweep(sweep_file, out, cluster, shard_samples=8)
    Cluster.wait(lambda: len(kept(out)) >= 2 or client.poll() is not None, "two points")
    client.send_signal(signal.SIGKILL)
    client.wait(30)
    before = kept(out)
    assert 2 <= len(before) < POINTS and not (out / "table.csv").exists()
    again = start_sweep(sweep_file, out, cluster, shard_samples=8)
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0, stderr[-2000:]
    after = kept(out)
    assert {k: after[k] for k in before} == before  # the kept points were not written again
    summary = json.loads((out / "sweep.json").read_text())
    assert (summary["kept"], summary["ran"], summary["executor"]) == (len(before), POINTS - len(before), "dask")
    assert (out / "table.csv").read_text() == serial
    assert f"{POINTS - len(before)} run on dask (2 workers)" in stdout


def test_a_local_cluster_gives_the_same_table_and_the_pareto_report(sweep_file, serial, tmp_path):
    out = tmp_path / "local"
    r = run_cli("sweep", str(sweep_file), "--out", str(out), "--workers", "2", "--shard-samples", "100", "--quiet")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "table.csv").read_text() == serial
    assert "on dask (2 workers)" in r.stdout and "loihi: accuracy-energy front:" in r.stdout
    page = (out / "report.html").read_text()
    for chip in TARGETS:
        assert f"data-plot='pareto-{chip}'" in page
    # in this process, without dask: the same table again, nothing run twice
    r = run_cli("sweep", str(sweep_file), "--out", str(out), "--workers", "0")
    assert r.returncode == 0 and f"0 run in this process" in r.stdout and f"{POINTS} kept" in r.stdout


def test_bad_cluster_options_are_one_line(sweep_file, tmp_path):
    r = run_cli("sweep", str(sweep_file), "--out", str(tmp_path / "a"), "--scheduler", "tcp://127.0.0.1:1",
                "--workers", "2")
    assert r.returncode == 2 and r.stderr.strip().splitlines() == [
        "error: --workers starts a local cluster; a cluster at --scheduler has its own workers"]
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "mine.txt").write_text("not a sweep's")
    r = run_cli("sweep", str(sweep_file), "--out", str(tmp_path / "b"), "--workers", "0")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "not an earlier sweep's" in r.stderr
    assert (tmp_path / "b" / "mine.txt").read_text() == "not a sweep's"


RAN = []  # the tasks run by the in-process worker below, in order


def _step(name, *inputs):
    RAN.append(name)
    time.sleep(0.02 if name.startswith("quant") else 0.002)
    return name


def test_points_finish_one_after_another_whatever_dask_queues():
    """A plan shaped like a real sweep's, on one worker: per point (T x chip), shards of the samples on the
    network (many tasks on two inputs, which dask queues on the scheduler as roots) and shards in the chip's
    formats (on one of four chip fits, which dask sends to the worker as soon as the fit is done). With the
    whole plan submitted, the worker ran every point's chip shards before the first row; submitted in
    windows of points, the rows arrive in the plan's order, the first while most of the plan is to run."""
    import distributed

    from spikeport.sweeps.cluster import Dask
    from spikeport.sweeps.plan import Ref, Task

    steps, chips, shards = 3, 4, 4
    tasks = [Task("data-0", _step, ("data-0",)), Task("net-0", _step, ("net-0",))]
    tasks += [Task(f"chip-{c}", _step, (f"chip-{c}", Ref("net-0"))) for c in range(chips)]
    rows = {}
    for t in range(steps):
        for c in range(chips):
            p = f"{t}-{c}"
            keys = [f"float-{p}-{s}" for s in range(shards)] + [f"quant-{p}-{s}" for s in range(shards)]
            tasks += [Task(k, _step, (k, Ref("net-0" if k.startswith("float") else f"chip-{c}"), Ref("data-0")))
                      for k in keys]
            tasks.append(Task(f"row-{p}", _step, (f"row-{p}", *map(Ref, keys))))
            rows[p] = f"row-{p}"
    RAN.clear()
    arrived = []  # (point, its row's value, tasks run when it arrived)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        Dask(None, 1)._run(distributed, client, tasks, rows, lambda p, value: arrived.append((p, value, len(RAN))))
    assert [p for p, _, _ in arrived] == list(rows)
    assert [v for _, v, _ in arrived] == [f"row-{p}" for p in rows]
    assert sorted(RAN) == sorted(t.key for t in tasks)  # every task run once: nothing held was recomputed
    # the window is 2 points: when the first row arrives, at most 2 points' tasks and the 6 shared have run
    # (with the whole plan submitted: 60 of the 114, every chip shard among them)
    assert arrived[0][2] <= 2 + chips + 2 * (2 * shards + 1) < len(tasks) / 4
