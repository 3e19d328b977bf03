"""The cost of validate's guarded batches against a direct backend run (issue 25): the demo's digits network
(``make demo`` first), 100 samples, T = 32, brian2 and nengo-loihi, both ways in one run; prints wall times and
whether the two activities are identical.

    OMP_NUM_THREADS=1 .venv/bin/python bench/guard_cost.py
"""
import os
import tempfile
import time

from spikeport.backends import get_backend
from spikeport.backends.batches import run_batches
from spikeport.datasets import load_dataset
from spikeport.deploy.targets import simulator_options
from spikeport.ir import load_network


def main() -> None:
    os.environ["SPIKEPORT_RUNS_DIR"] = tempfile.mkdtemp(prefix="spikeport-runs-")
    net = load_network("out/demo/net.spk")
    x = load_dataset("digits").x("test")[:100]
    for backend, opts in (("brian2", {"codegen": "numpy"}), ("nengo-loihi", {})):
        options = simulator_options(backend, net, dict(opts))
        t = time.perf_counter()
        a = get_backend(backend).run(net, x, 32, seed=0, record_counts=True, **options)
        direct = time.perf_counter() - t
        t = time.perf_counter()
        b = run_batches(backend, net, x, 32, seed=0, options=options)
        guarded = time.perf_counter() - t
        same = bool((a.predictions == b.predictions).all() and (a.output_counts == b.output_counts).all())
        print(f"{backend}: direct {direct:.1f} s, guarded {guarded:.1f} s (+{guarded - direct:.1f} s), "
              f"identical {same}", flush=True)


if __name__ == "__main__":
    main()
