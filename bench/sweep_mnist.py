"""Issue 26's sweep benchmark: bench/sweep-mnist.toml (or another sweep file) run by `spikeport sweep` on a
local cluster of N workers, or on a scheduler and N workers started here as separate processes (as a user's
cluster would be: `dask scheduler`, `dask worker` with its nanny), timed; the table compared with an
earlier run's.

    python bench/sweep_mnist.py --workers 2 --out out/bench/sweep/local2
    python bench/sweep_mnist.py --scheduler --workers 2 --out out/bench/sweep/sched2 --compare out/bench/sweep/local2

Writes OUT/bench.json: the mode, workers, wall time of the command, the sweep's summary (points run and
kept, compute seconds, scheduling overhead per point) and whether the table equals --compare's.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def start_cluster(root: Path, workers: int):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    file = root / "scheduler.json"
    file.unlink(missing_ok=True)
    log = open(root / "cluster.log", "w")
    procs = [subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                               "--port", "0", "--no-dashboard", "--scheduler-file", str(file)], env=env,
                              stdout=log, stderr=log)]
    while not (file.exists() and file.stat().st_size):
        time.sleep(0.1)
    for i in range(workers):
        procs.append(subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
                                       str(file), "--nthreads", "1", "--no-dashboard", "--name", f"w{i}"],
                                      env=env, stdout=log, stderr=log))
    from distributed import Client

    with Client(scheduler_file=str(file), timeout=120) as client:
        client.wait_for_workers(workers, timeout=300)
    return file, procs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", default=str(HERE / "sweep-mnist.toml"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--scheduler", action="store_true", help="start a scheduler and workers as separate processes")
    ap.add_argument("--compare", default=None, help="an earlier run's DIR whose table.csv must be equal")
    a = ap.parse_args()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    side = out.parent / (out.name + "-cluster")
    side.mkdir(exist_ok=True)
    procs = []
    cmd = [sys.executable, "-m", "spikeport", "sweep", a.sweep, "--out", str(out)]
    if a.scheduler:
        file, procs = start_cluster(side, a.workers)
        cmd += ["--scheduler", str(file)]
    else:
        cmd += ["--workers", str(a.workers)]
    try:
        start = time.perf_counter()
        r = subprocess.run(cmd, text=True, capture_output=True)
        wall = time.perf_counter() - start
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            p.wait(60)
    print(r.stdout, r.stderr[-3000:], sep="\n")
    if r.returncode:
        sys.exit(r.returncode)
    result = {"command": " ".join(cmd[1:]), "mode": "scheduler" if a.scheduler else "local", "workers": a.workers,
              "wall_s": round(wall, 1), "summary": json.loads((out / "sweep.json").read_text()),
              "machine": os.uname().nodename, "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M")}
    if a.compare:
        result["compare"] = a.compare
        result["table_equal"] = (out / "table.csv").read_bytes() == (Path(a.compare) / "table.csv").read_bytes()
    (out.parent / (out.name + "-bench.json")).write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
