"""spikeport's NIR export for a library (export_nir(net, path, library=X)), loaded by the library's own importer.

    .venv/bin/python bench/nirlibs/export_roundtrip.py [--lib snntorch ...] [--out DIR]

Runs in spikeport's .venv. For each library it builds the spikeport networks that library can take
(the library's own fixtures re-imported by spikeport's preset, and 64-32-10 networks converted by spikeport
from tests/data/nir/mlp_weights.npz: IF/LIF, with and without a synaptic current, reset to zero and by
subtraction, one or several spikes per step), exports each with library=X (refusals are listed), runs
them all in the library's venv through roundtrip.run_file (one worker process per library: this script
re-executes itself there with --worker), runs spikeport's reference executor on the same x for the same
steps, and prints per network: loaded?, same predictions (ties to the lowest index), output spike counts
equal (how many of the 16 x 10 differ), differing spikes per layer, and that import_nir(file, library=X)
gives back the same spikes.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENVS = {"snntorch": ".venv-nirlibs", "norse": ".venv-nirlibs", "rockpool": ".venv-nirlibs", "sinabs": ".venv-nirlibs2"}
GAINS = {}  # (model, syn, reset, spikes per step) -> layer gains, shared by the libraries
LIBS = ("snntorch", "norse", "sinabs", "rockpool")
FIXTURES = {  # fixture stem -> reset to give spikeport's preset (snnTorch's reset_mechanism is not in the file)
    "snntorch": {"snntorch_leaky_zero": "zero", "snntorch_leaky_subtract": None, "snntorch_synaptic_zero": "zero",
                 "snntorch_leaky_if": None},
    "norse": {"norse_lifbox": None, "norse_lif": None, "norse_iaf": None},
    "sinabs": {"sinabs_lif": None, "sinabs_iaf": None},
    "rockpool": {"rockpool_liftorch": None, "rockpool_lifneurontorch": None},
}


# ----------------------------------------------------------------------------- worker (library venv)

def worker(lib, jobs_path):
    sys.path.insert(0, str(HERE))
    import numpy as np
    import roundtrip

    warnings.filterwarnings("ignore")
    jobs = json.loads(Path(jobs_path).read_text())
    results = {}
    for job in jobs:
        d = np.load(job["input"])
        try:
            spikes, order, _ = roundtrip.run_file(lib, job["nir"], d["x"], int(d["steps"]))
            np.savez(job["out"], **{f"spikes_{i}": np.asarray(spikes[n]).astype(np.int64) for i, n in enumerate(order)})
            results[job["name"]] = {"loaded": True, "layers": order}
        except Exception as exc:  # an importer's failure is a result
            msg = str(exc).strip().splitlines()
            results[job["name"]] = {"loaded": False, "error": f"{type(exc).__name__}: {msg[0][:160] if msg else ''}"}
    print(json.dumps(results))


# ----------------------------------------------------------------------------- driver (spikeport venv)

def networks(lib, x, steps):
    """[(name, Network or refusal str)] for one library."""
    import numpy as np

    from spikeport.errors import SpikeportError
    from spikeport.ir import Network, Population, Projection
    from spikeport.ir.neurons import InputEncoding, NeuronModel
    from spikeport.ir.nir import SINABS_MAX_SPIKES, ROCKPOOL_MAX_SPIKES, import_nir
    from spikeport.ir.ops import Dense

    out = []
    for stem, reset in FIXTURES[lib].items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out.append((f"fixture {stem}", import_nir(ROOT / "tests/data/nir" / f"{stem}.nir", library=lib,
                                                     reset=reset)))
    w = np.load(ROOT / "tests/data/nir/mlp_weights.npz")
    w1, w2 = w["w1"].astype(np.float64), w["w2"].astype(np.float64)
    many = {"sinabs": SINABS_MAX_SPIKES, "rockpool": ROCKPOOL_MAX_SPIKES}.get(lib, 4)

    def build(model, syn, reset, m, g1, g2):
        nm = lambda th: NeuronModel(model=model, threshold=th, reset=reset, decay=1.0 if model == "if" else 0.9,  # noqa
                                    syn_decay=syn, max_spikes_per_step=m)
        return Network([Population("in", (64,), encoding=InputEncoding("analog")),
                        Population("hidden", (32,), neuron=nm(0.8)), Population("out", (10,), neuron=nm(1.0))],
                       [Projection("in->hidden", "in", "hidden", [Dense(w1 * g1)]),
                        Projection("hidden->out", "hidden", "out", [Dense(w2 * g2)])],
                       dt_s=1e-3, input="in", output="out").validate()

    from spikeport.backends.reference import run

    def rate(net, pop):
        a = run(net, x, steps, record_trains=[pop], device="cpu")
        return float(np.asarray(a.spike_trains[pop], np.float64).mean())

    def gain(make, pop, target):  # bisection on the spike rate of ``pop`` (x is also the test input: a bench)
        lo, hi = 1e-3, 1e3
        for _ in range(20):
            mid = (lo * hi) ** 0.5
            lo, hi = (mid, hi) if rate(make(mid), pop) < target else (lo, mid)
        return float(np.float32((lo * hi) ** 0.5))

    for model in ("if", "lif"):
        for syn in (None, 0.8):
            for reset in ("zero", "subtract"):
                for m in (1, many):
                    name = f"spikeport {model}{'+syn' if syn else ''} {reset} {'1 spike' if m == 1 else f'm={m}'}"
                    try:
                        key = (model, syn, reset, m)
                        if key not in GAINS:
                            g1 = gain(lambda g: build(model, syn, reset, m, g, 1.0), "hidden", 0.2)
                            GAINS[key] = (g1, gain(lambda g: build(model, syn, reset, m, g1, g), "out", 0.1))
                        out.append((name, build(model, syn, reset, m, *GAINS[key])))
                    except SpikeportError as exc:
                        out.append((name, f"cannot build: {exc}"))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", nargs=2, metavar=("LIB", "JOBS"), help=argparse.SUPPRESS)
    ap.add_argument("--lib", nargs="*", default=list(LIBS), choices=LIBS)
    ap.add_argument("--out", default=None, help="folder for the .nir files (default: a temporary one)")
    args = ap.parse_args()
    if args.worker:
        return worker(*args.worker)
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from spikeport.backends.reference import run
    from spikeport.errors import SpikeportError
    from spikeport.ir.nir import import_nir, export_nir

    d = np.load(ROOT / "tests/data/nir/snntorch_leaky_zero.npz")
    x, steps = d["x"], int(d["steps"])
    folder = Path(args.out or tempfile.mkdtemp(prefix="nir-export-"))
    folder.mkdir(parents=True, exist_ok=True)
    inp = folder / "input.npz"
    np.savez(inp, x=x, steps=np.int64(steps))
    rows = []
    for lib in args.lib:
        jobs, nets = [], {}
        for i, (name, net) in enumerate(networks(lib, x, steps)):
            if isinstance(net, str):
                rows.append((lib, name, net))
                continue
            path = folder / f"{lib}_{i}.nir"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    export_nir(net, path, library=lib)
            except SpikeportError as exc:
                rows.append((lib, name, f"refused: {exc}"))
                continue
            nets[name] = (net, path)
            jobs.append({"name": name, "nir": str(path), "input": str(inp), "out": str(folder / f"{lib}_{i}.out.npz")})
        jobs_path = folder / f"{lib}_jobs.json"
        jobs_path.write_text(json.dumps(jobs))
        py = ROOT / VENVS[lib] / "bin" / "python"
        proc = subprocess.run([str(py), __file__, "--worker", lib, str(jobs_path)], capture_output=True, text=True)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode or not lines:
            raise SystemExit(f"{lib} worker failed: {proc.stderr[-2000:]}")
        results = json.loads(lines[-1])
        for job in jobs:
            name = job["name"]
            net, path = nets[name]
            res = results[name]
            pops = [p.name for p in net.populations if not p.is_input]
            act = run(net, x, steps, record_trains=pops, device="cpu")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                back = import_nir(path, library=lib)
            act2 = run(back, x, steps, record_trains=pops, device="cpu")
            same_back = all(np.array_equal(act.spike_trains[p], act2.spike_trains[p]) for p in pops)
            if not res["loaded"]:
                rows.append((lib, name, f"NOT loaded: {res['error']}", same_back))
                continue
            theirs = np.load(job["out"])
            layers = [theirs[f"spikes_{i}"] for i in range(len(res["layers"]))]
            diffs = []
            for p, s in zip(pops, layers):
                mine = np.asarray(act.spike_trains[p], np.int64).transpose(1, 0, 2)  # (steps, B, n)
                diffs.append(int(np.abs(mine - s).sum()) if mine.shape == s.shape else f"shape {s.shape}")
            counts = layers[-1].sum(0)
            pred = np.argmax(counts, axis=1)
            my_counts = np.asarray(act.output_counts)
            my_pred = np.asarray(act.predictions_index)[:, -1]
            rows.append((lib, name, "loaded", same_back, f"{int(np.sum(pred == my_pred))}/{len(pred)}",
                         "exact" if np.array_equal(counts, my_counts) else
                         f"{int(np.sum(counts != my_counts))}/{counts.size} differ",
                         "+".join(map(str, diffs)), int(sum(np.asarray(a.spike_trains[p], np.int64).sum()
                                                              for a, p in ((act, q) for q in pops)))))
    print("| library | network | importer loaded it | import_nir(file, library) same spikes | same predictions | "
          "output counts | differing spikes hidden+output | spikeport spikes |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        if len(r) == 4:
            print(f"| {r[0]} | {r[1]} | {r[2]} | {'yes' if r[3] else 'NO'} | | | | |")
        elif len(r) > 4:
            print(f"| {r[0]} | {r[1]} | yes | {'yes' if r[3] else 'NO'} | {r[4]} | {r[5]} | {r[6]} | {r[7]} |")
    print()
    print("Refused by export_nir (one line each, the population named):")
    for r in rows:
        if len(r) == 3:
            print(f"- {r[0]}, {r[1]}: {r[2]}")

if __name__ == "__main__":
    main()
