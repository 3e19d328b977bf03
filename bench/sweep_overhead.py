"""Issue 26: what dask costs a sweep per point, measured on points that cost almost nothing to compute: a
digits MLP (64-32-10) on 10 samples, T in {1..5} x loihi, spinnaker, speck, cpu x 2 seeds = 40 points, run in
this process (--workers 0) and on local clusters of 1 and 2 workers, each into a fresh directory.

    python bench/sweep_overhead.py --out out/bench/sweep/overhead

Per run: wall time of `spikeport.sweep` (cluster start and stop included), the tasks' compute time, and
overhead per point = (wall x workers - compute) / points. Writes OUT/overhead.json.
"""
import argparse
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np


def make(root: Path) -> Path:
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection, save_network

    rng = np.random.default_rng(0)
    nm = NeuronModel("if", threshold=1.0, reset="subtract")
    net = Network([Population("input", (64,), encoding=InputEncoding("poisson", 1000.0)),
                   Population("h", (32,), neuron=nm), Population("out", (10,), neuron=nm)],
                  [Projection("input->h", "input", "h", [Dense(rng.normal(0.05, 0.3, (32, 64)).astype(np.float32))]),
                   Projection("h->out", "h", "out", [Dense(rng.normal(0.05, 0.3, (10, 32)).astype(np.float32))])],
                  output="out", metadata={"dataset": "digits"}).validate()
    save_network(net, root / "net.spk")
    grid = ('[sweep]\nnetworks = ["net.spk"]\ndataset = "digits"\nsteps = [1, 2, 3, 4, 5]\n'
            'targets = ["loihi", "spinnaker", "speck", "cpu"]\nsamples = 10\n')
    again = "".join(f'\n[[point]]\nnetwork = "net.spk"\nsteps = {t}\ntarget = "{c}"\nseed = 1\n'
                    for t in (1, 2, 3, 4, 5) for c in ("loihi", "spinnaker", "speck", "cpu"))
    (root / "tiny.toml").write_text(grid + again)  # the grid at seed 0, and the same points at seed 1
    return root


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    import spikeport

    root = Path(a.out)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    make(root)
    runs = []
    for workers in (0, 1, 2):
        out = root / f"w{workers}"
        start = time.perf_counter()
        result = spikeport.sweep(root / "tiny.toml", out, workers=workers)
        wall = time.perf_counter() - start
        s = result.summary
        n = s["ran"]
        runs.append({"workers": workers, "executor": s["executor"], "points": n, "tasks": s["tasks"],
                     "wall_s": round(wall, 2), "compute_s": round(s["compute_s"], 2),
                     "overhead_per_point_s": round((wall * max(workers, 1) - s["compute_s"]) / n, 3),
                     "table_equal_to_serial": (out / "table.csv").read_bytes() == (root / "w0" / "table.csv").read_bytes()})
        print(runs[-1], flush=True)
    (root / "overhead.json").write_text(json.dumps({"runs": runs, "machine": os.uname().nodename,
                                                    "cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M")},
                                                   indent=1) + "\n")


if __name__ == "__main__":
    main()
