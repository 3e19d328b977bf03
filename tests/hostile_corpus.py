"""The hostile-input corpus (issue 25): every bad input a stranger's file or a mistyped option can
give, across every entry point (model, graph, NIR, profile, data, command-line options).

``cases(fixtures)`` yields :class:`Case` objects: a name (``entry/what``), the command line, the
files the case writes into its own directory first, and fragments the one error line must
contain (the file, the object or the limit at fault). :mod:`hostile_run` runs and judges them.
Files are built from good ones (:func:`make_fixtures`: a small graph, a digits-shaped graph, a
NIR file, a model file, a profile, user data) by one edit each, so that each case has one fault.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent


@dataclass
class Case:
    name: str
    argv: list
    setup: object = None           # (case_dir, fixtures) -> None: writes the case's files
    expect: tuple = ()             # fragments the error line must contain
    tags: tuple = field(default_factory=tuple)


# ---------------------------------------------------------------------------- good files to edit

def make_fixtures(root: Path) -> dict:
    """Good inputs in ``root``: graph.spk (12 -> 9 -> 4, analog), digits.spk (64 -> 32 -> 10), data.npz
    (x (20, 12), y), graph.nir, model.pt (an mlp on digits, 1 epoch), profile.toml (Loihi's), sweep.toml (of
    graph.spk, model.pt and digits.spk, named by absolute paths)."""
    import sys

    sys.path.insert(0, str(HERE))
    from conftest import small_network

    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection, save_network
    from spikeport.ir.nir import export_nir

    root.mkdir(parents=True, exist_ok=True)
    out = {"root": root}
    save_network(small_network(), root / "graph.spk")
    out["graph"] = root / "graph.spk"
    rng = np.random.default_rng(0)
    nm = NeuronModel("if", threshold=1.0, reset="subtract")
    digits = Network([Population("input", (64,), encoding=InputEncoding("analog")),
                      Population("h", (32,), neuron=nm), Population("out", (10,), neuron=nm)],
                     [Projection("input->h", "input", "h", [Dense(rng.normal(0, 0.3, (32, 64)).astype(np.float32))]),
                      Projection("h->out", "h", "out", [Dense(rng.normal(0, 0.3, (10, 32)).astype(np.float32))])],
                     output="out", metadata={"dataset": "digits"}).validate()
    save_network(digits, root / "digits.spk")
    out["digits"] = root / "digits.spk"
    from conftest import conv_network
    save_network(conv_network(), root / "conv.spk")
    out["graph-conv"] = root / "conv.spk"
    np.savez(root / "data.npz", x=rng.random((20, 12)).astype(np.float32), y=rng.integers(0, 4, 20))
    out["data"] = root / "data.npz"
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_nir(small_network(), root / "graph.nir")
    out["nir"] = root / "graph.nir"
    model = root / "model.pt"
    if not model.exists():
        from spikeport.datasets import load_dataset
        from spikeport.models import save_model, train
        save_model(train(load_dataset("digits"), arch="mlp", method="relu", seed=0, epochs=1), model)
    out["model"] = model
    import spikeport.hardware_profiles as hp
    shutil.copy(Path(hp.__file__).parent / "loihi.toml", root / "profile.toml")
    out["profile"] = root / "profile.toml"
    (root / "sweep.toml").write_text(
        f'[sweep]\nnetworks = ["{root / "graph.spk"}", "{model}"]\ndataset = "digits"\nsteps = [4, 8]\n'
        f'targets = ["loihi", "spinnaker", "cpu"]\nsamples = 10\nnorms = ["percentile", "max"]\nseed = 3\n\n'
        f'[[point]]\nnetwork = "{root / "digits.spk"}"\nsteps = 16\ntarget = "speck"\nbackend = "brian2"\n')
    out["sweep"] = root / "sweep.toml"
    return out


def edit_graph(src: Path, dst: Path, header=None, arrays=None, members=None) -> None:
    """``src`` with ``header(h)`` applied to its JSON header, ``arrays(dict)`` to its arrays
    ({member: ndarray}) and ``members(dict)`` to its raw members ({name: bytes})."""
    with zipfile.ZipFile(src) as z:
        raw = {n: z.read(n) for n in z.namelist()}
    h = json.loads(raw["spikeport.json"])
    if header is not None:
        h = header(h) or h
    raw["spikeport.json"] = json.dumps(h).encode()
    if arrays is not None:
        arr = {n: np.load(io.BytesIO(b), allow_pickle=False) for n, b in raw.items() if n.endswith(".npy")}
        arrays(arr)
        for n, a in arr.items():
            buf = io.BytesIO()
            np.save(buf, a, allow_pickle=True)
            raw[n] = buf.getvalue()
    if members is not None:
        members(raw)
    with zipfile.ZipFile(dst, "w") as z:
        for n, b in raw.items():
            z.writestr(n, b)


def _pops(h):
    return h["network"]["populations"]


def _projs(h):
    return h["network"]["projections"]


def _set(path_fn, value):
    def edit(h):
        obj, key = path_fn(h)
        obj[key] = value
    return edit


def _model_payload(src: Path, dst: Path, edit) -> None:
    import torch
    payload = torch.load(src, map_location="cpu", weights_only=True)
    edit(payload)
    torch.save(payload, dst)


# ---------------------------------------------------------------------------- file-level faults

def _write(name, data):
    def setup(d, fx):
        p = d / name
        if isinstance(data, bytes):
            p.write_bytes(data)
        else:
            p.write_text(data)
    return setup


def _half(name, key):
    def setup(d, fx):
        b = Path(fx[key]).read_bytes()
        (d / name).write_bytes(b[:len(b) // 2])
    return setup


def _copy(name, key):
    def setup(d, fx):
        shutil.copy(fx[key], d / name)
    return setup


def _fifo(name):
    def setup(d, fx):
        os.mkfifo(d / name)
    return setup


def _dir(name):
    def setup(d, fx):
        (d / name).mkdir()
    return setup


def _symlink(name, target):
    def setup(d, fx):
        os.symlink(target, d / name)
    return setup


def _loop(name):
    def setup(d, fx):
        os.symlink(name + ".b", d / name)
        os.symlink(name, d / (name + ".b"))
    return setup


def _both(*setups):
    def setup(d, fx):
        for s in setups:
            s(d, fx)
    return setup


FILE_FAULTS = ("missing", "directory", "fifo", "char-device", "empty", "random-bytes", "text", "pickle",
               "symlink-loop", "truncated-zip")


def _file_fault(kind: str, name: str, good: str):
    """The setup writing ``name`` with the fault ``kind`` (``good``: the fixture a truncation cuts)."""
    import pickle
    return {
        "missing": lambda d, fx: None,
        "directory": _dir(name),
        "fifo": _fifo(name),
        "char-device": _symlink(name, "/dev/zero"),
        "empty": _write(name, b""),
        "random-bytes": _write(name, np.random.default_rng(7).bytes(1500)),
        "text": _write(name, "hello, this is not what you think\n" * 20),
        "pickle": _write(name, pickle.dumps({"evil": [1, 2, 3]})),
        "symlink-loop": _loop(name),
        "truncated-zip": _half(name, good),
    }[kind]


# entry point -> (file name, the command line with {f} for the file, the good fixture to truncate)
FILE_ENTRIES = {
    "simulate-net": ("net.spk", ["simulate", "{f}", "--data", "{data}", "--steps", "4"], "graph"),
    "validate-net": ("net.spk", ["validate", "{f}", "--data", "{data}", "--steps", "4", "--samples", "2"], "graph"),
    "export-net": ("net.spk", ["export", "{f}", "--to", "nir", "--out", "out.nir"], "graph"),
    "deploy-net": ("net.spk", ["deploy", "{f}", "--target", "loihi", "--out", "dep", "--data", "{data}",
                               "--steps", "4", "--samples", "2"], "graph"),
    "power-net": ("net.spk", ["power", "{f}", "--target", "loihi", "--data", "{data}", "--steps", "4",
                              "--samples", "2"], "graph"),
    "simulate-nir": ("net.nir", ["simulate", "{f}", "--data", "{data}", "--steps", "4", "--dt", "0.001"], "nir"),
    "convert-nir": ("net.nir", ["convert", "{f}", "--out", "out.spk", "--dt", "0.001", "--from", "nir"], "nir"),
    "convert-model": ("model.pt", ["convert", "{f}", "--out", "out.spk"], "model"),
    "train-init": ("init.pt", ["train", "--dataset", "digits", "--epochs", "1", "--init", "{f}", "--out", "m.pt"],
                   "model"),
    "validate-model": ("model.pt", ["validate", "{digits}", "--dataset", "digits", "--samples", "2", "--steps", "4",
                                    "--diagnose", "--model", "{f}"], "model"),
    "simulate-data": ("x.npz", ["simulate", "{graph}", "--data", "{f}", "--steps", "4"], "data"),
    "power-data": ("x.npz", ["power", "{graph}", "--target", "loihi", "--data", "{f}", "--steps", "4"], "data"),
    "train-data": ("x.npz", ["train", "--data", "{f}", "--epochs", "1", "--out", "m.pt"], "data"),
    "convert-data": ("x.npz", ["convert", "{model}", "--data", "{f}", "--out", "out.spk"], "data"),
    "deploy-profile": ("chip.toml", ["deploy", "{graph}", "--target", "{f}", "--out", "dep", "--data", "{data}",
                                     "--steps", "4", "--samples", "2"], "profile"),
    "power-profile": ("chip.toml", ["power", "{graph}", "--target", "{f}", "--data", "{data}", "--steps", "4",
                                    "--samples", "2"], "profile"),
}


def fill(argv, d: Path, fx: dict, f: str | None = None) -> list:
    keys = {"graph": fx["graph"], "digits": fx["digits"], "data": fx["data"], "nir": fx["nir"],
            "model": fx["model"], "profile": fx["profile"], "f": f}
    return [a.format(**keys) if isinstance(a, str) and "{" in a else a for a in argv]


def file_cases():
    for entry, (name, argv, good) in FILE_ENTRIES.items():
        for kind in FILE_FAULTS:
            yield Case(f"file/{entry}/{kind}", argv, _file_fault(kind, name, good), (name,), ("file",))


# ---------------------------------------------------------------------------- graph contents

def _graph(header=None, arrays=None, members=None, src="graph"):
    def setup(d, fx):
        edit_graph(fx[src], d / "net.spk", header, arrays, members)
    return setup


def _nan_weight(a):
    w = a["arrays/1.npy"].copy()
    w.flat[3] = np.nan
    a["arrays/1.npy"] = w


def _scaled_weight(scale):
    def edit(a):
        a["arrays/1.npy"] = (a["arrays/1.npy"] * scale).astype(np.float32)
    return edit


def _object_array(a):
    a["arrays/1.npy"] = np.array([{"x": 1}] * 108, dtype=object).reshape(9, 12)


def _huge_npy_header(raw):
    # a .npy whose header declares (100000, 100000) float32 (40 GB) over a few bytes of data
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 100000), }"
    head = head + " " * (63 - len(head) % 64) + "\n"
    raw["arrays/1.npy"] = b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head.encode() + b"\0" * 64


def _traversal_member(raw):
    raw["../../evil.npy"] = raw.pop("arrays/1.npy")


def _deep_json(raw):
    raw["spikeport.json"] = ("[" * 100000 + "]" * 100000).encode()


def _pool_padding(h):
    # input (1, 8, 8) -> sumpool with enormous padding -> dense: 10^9 neurons declared by a tiny file
    h["network"]["populations"] = [
        {"name": "input", "shape": [1, 8, 8], "neuron": None, "encoding": {"kind": "analog", "max_rate_hz": 400.0},
         "bias": None},
        {"name": "p", "shape": [1, 31623, 31623], "neuron": {"model": "if", "threshold": 1.0, "reset": "subtract",
         "decay": 1.0, "syn_decay": None, "refractory_steps": 0, "v_init": 0.0}, "encoding": None, "bias": None}]
    h["network"]["projections"] = [{"name": "input->p", "pre": "input", "post": "p", "delay_steps": 0,
                                    "ops": [{"type": "sumpool2d", "params": {"kernel_size": 1, "stride": 1,
                                                                              "padding": 15811}, "arrays": {}}]}]
    h["network"]["output"] = "p"


def graph_cases():
    pop = lambda i, key: (lambda h: (_pops(h)[i]["neuron"], key))                 # noqa: E731
    popf = lambda i, key: (lambda h: (_pops(h)[i], key))                          # noqa: E731
    proj = lambda i, key: (lambda h: (_projs(h)[i], key))                         # noqa: E731
    net = lambda key: (lambda h: (h["network"], key))                             # noqa: E731
    edits = {
        "threshold-1e308": (_graph(_set(pop(1, "threshold"), 1e308)), ("h", "threshold")),
        "threshold-nan": (_graph(_set(pop(1, "threshold"), "NaN")), ("h", "threshold")),
        "threshold-negative": (_graph(_set(pop(1, "threshold"), -1.0)), ("h", "threshold")),
        "threshold-string": (_graph(_set(pop(1, "threshold"), "high")), ("h", "threshold")),
        "decay-2": (_graph(_set(pop(1, "decay"), 2.0)), ("h", "decay")),
        "decay-inf": (_graph(_set(pop(1, "decay"), 1e400)), ("h", "decay")),
        "v-init-1e300": (_graph(_set(pop(1, "v_init"), 1e300)), ("h",)),
        "refractory-1e12": (_graph(_set(pop(1, "refractory_steps"), 10**12)), ("h", "refractory")),
        "neuron-model-unknown": (_graph(_set(pop(1, "model"), "hodgkin-huxley")), ("h",)),
        "reset-unknown": (_graph(_set(pop(1, "reset"), "explode")), ("h", "reset")),
        "shape-1e9": (_graph(_set(popf(1, "shape"), [10**9])), ("h",)),
        "shape-negative": (_graph(_set(popf(1, "shape"), [-9])), ("h",)),
        "shape-zero": (_graph(_set(popf(1, "shape"), [0])), ("h",)),
        "shape-string": (_graph(_set(popf(1, "shape"), "nine")), ("h",)),
        "shape-deep": (_graph(_set(popf(1, "shape"), [3] * 40)), ("h",)),
        "encoding-unknown": (_graph(_set(popf(0, "encoding"), {"kind": "telepathy", "max_rate_hz": 1.0})),
                             ("input",)),
        "max-rate-nan": (_graph(_set(popf(0, "encoding"), {"kind": "poisson", "max_rate_hz": "NaN"})), ("input",)),
        "max-rate-1e300": (_graph(_set(popf(0, "encoding"), {"kind": "poisson", "max_rate_hz": 1e300})),
                           ("input",)),
        "dt-zero": (_graph(_set(net("dt_s"), 0.0)), ("dt",)),
        "dt-nan": (_graph(_set(net("dt_s"), "NaN")), ("dt",)),
        "dt-1e300": (_graph(_set(net("dt_s"), 1e300)), ("dt",)),
        "output-missing": (_graph(_set(net("output"), "nowhere")), ("nowhere",)),
        "input-missing": (_graph(_set(net("input"), "nowhere")), ("nowhere",)),
        "readout-unknown": (_graph(_set(net("readout"), "vibes")), ("readout",)),
        "delay-1e9": (_graph(_set(proj(0, "delay_steps"), 10**9)), ("input->h",)),
        "delay-negative": (_graph(_set(proj(0, "delay_steps"), -3)), ("input->h",)),
        "proj-pre-unknown": (_graph(_set(proj(0, "pre"), "ghost")), ("ghost",)),
        "op-unknown": (_graph(lambda h: _projs(h)[0]["ops"][0].update(type="fft")), ("input->h",)),
        "op-params-junk": (_graph(lambda h: _projs(h)[0]["ops"][0].update(params={"stride": "x"})), ("input->h",)),
        "ops-empty": (_graph(lambda h: _projs(h)[0].update(ops=[])), ("input->h",)),
        "populations-duplicate": (_graph(lambda h: _pops(h).append(dict(_pops(h)[1]))), ("h",)),
        "cycle-zero-delay": (_graph(lambda h: _projs(h).append({"name": "out->h", "pre": "out", "post": "h",
                                                                "delay_steps": 0, "ops": _projs(h)[1]["ops"]})),
                             ("out->h",)),
        "weight-nan": (_graph(arrays=_nan_weight), ("input->h", "weight")),
        "weight-1e38": (_graph(arrays=_scaled_weight(1e38)), ("input->h", "weight")),
        "weight-1e30": (_graph(arrays=_scaled_weight(1e30)), ("input->h", "weight")),
        "weight-wrong-shape": (_graph(arrays=lambda a: a.update({"arrays/1.npy": np.zeros((3, 3), np.float32)})),
                               ("input->h",)),
        "weight-object-dtype": (_graph(arrays=_object_array), ("arrays/1.npy",)),
        "weight-complex": (_graph(arrays=lambda a: a.update({"arrays/1.npy": a["arrays/1.npy"].astype(np.complex64)})),
                           ("input->h",)),
        "bias-inf": (_graph(arrays=lambda a: a.update({"arrays/0.npy": np.full(9, np.inf, np.float32)})), ("h", "bias")),
        "npy-header-40GB": (_graph(members=_huge_npy_header), ("arrays/1.npy",)),
        "member-traversal": (_graph(members=_traversal_member), ()),
        "member-missing": (_graph(members=lambda r: r.pop("arrays/1.npy")), ("arrays/1.npy",)),
        "header-deep-json": (_graph(members=_deep_json), ("spikeport.json",)),
        "header-list": (_graph(members=lambda r: r.update({"spikeport.json": b"[1, 2, 3]"})), ()),
        "header-not-utf8": (_graph(members=lambda r: r.update({"spikeport.json": b"\xff\xfe\x00{"})),
                            ("spikeport.json",)),
        "version-99": (_graph(lambda h: h.update(version=99)), ("version",)),
        "metadata-list": (_graph(_set(net("metadata"), [1, 2])), ("metadata",)),
        "sum-pool-padding-1e9": (_graph(_pool_padding), ("p",)),
    }
    commands = {
        "simulate": ["simulate", "net.spk", "--data", "{data}", "--steps", "4"],
        "power": ["power", "net.spk", "--target", "loihi,spinnaker", "--data", "{data}", "--steps", "4",
                  "--samples", "2"],
        "export": ["export", "net.spk", "--to", "nir", "--out", "out.nir"],
        "deploy": ["deploy", "net.spk", "--target", "loihi", "--out", "dep", "--data", "{data}", "--steps", "4",
                   "--samples", "2"],
        "validate-brian2": ["validate", "net.spk", "--backend", "brian2", "--data", "{data}", "--steps", "4",
                            "--samples", "2"],
        "validate-loihi": ["validate", "net.spk", "--backend", "nengo-loihi", "--data", "{data}", "--steps", "4",
                           "--samples", "2"],
    }
    everywhere = {"threshold-1e308", "weight-1e38", "weight-nan", "shape-1e9", "sum-pool-padding-1e9", "dt-zero",
                  "npy-header-40GB", "decay-inf"}
    for what, (setup, expect) in edits.items():
        for cmd, argv in commands.items():
            if cmd != "simulate" and what not in everywhere:
                continue
            yield Case(f"graph/{what}/{cmd}", argv, setup, ("net.spk",) + expect, ("graph",))


# ---------------------------------------------------------------------------- models

def _model(edit):
    def setup(d, fx):
        _model_payload(fx["model"], d / "model.pt", edit)
    return setup


def _spec_edit(fn):
    def edit(p):
        spec = json.loads(p["spec"])
        fn(spec)
        p["spec"] = json.dumps(spec)
    return edit


def _meta_edit(fn):
    def edit(p):
        meta = json.loads(p["meta"])
        p["meta"] = json.dumps(fn(meta) if fn(meta) is not None else meta)
    return edit


def _nan_state(p):
    k = next(k for k in p["state_dict"] if k.endswith("weight"))
    p["state_dict"][k][0, 0] = float("nan")


def model_cases():
    edits = {
        "meta-list": (_model(lambda p: p.update(meta="[1, 2]")), ("meta",)),
        "meta-not-json": (_model(lambda p: p.update(meta="{oops")), ("meta",)),
        "spec-not-json": (_model(lambda p: p.update(spec="]")), ()),
        "spec-layer-3M": (_model(_spec_edit(lambda s: s.update(hidden=[3_000_000]))), ()),
        "spec-arch-unknown": (_model(_spec_edit(lambda s: s.update(arch="transformer-xxl"))), ()),
        "spec-input-shape-huge": (_model(_spec_edit(lambda s: s.update(input_shape=[1, 100000, 100000]))), ()),
        "version-99": (_model(lambda p: p.update(version=99)), ("version",)),
        "format-other": (_model(lambda p: p.update(format="something-else")), ()),
        "state-missing": (_model(lambda p: p.pop("state_dict")), ()),
        "state-wrong-shape": (_model(lambda p: p["state_dict"].update(
            {next(iter(p["state_dict"])): __import__("torch").zeros(2, 2)})), ()),
        "method-unknown": (_model(_meta_edit(lambda m: m.update(method="telekinesis"))), ("telekinesis",)),
        "dataset-unknown": (_model(_meta_edit(lambda m: m.update(dataset="imagenet-22k"))), ("imagenet-22k",)),
        "weight-nan": (_model(_nan_state), ()),
        "graph-given-as-model": (_copy("model.pt", "graph"), ("graph file",)),
    }
    for what, (setup, expect) in edits.items():
        yield Case(f"model/{what}/convert", ["convert", "model.pt", "--out", "out.spk"], setup,
                   ("model.pt",) + expect, ("model",))
    for what in ("meta-list", "spec-layer-3M", "weight-nan", "version-99"):
        setup, expect = edits[what]
        yield Case(f"model/{what}/train-init", ["train", "--dataset", "digits", "--epochs", "1", "--init", "model.pt",
                                                "--out", "m.pt"], setup, ("model.pt",) + expect, ("model",))


# ---------------------------------------------------------------------------- NIR

def _nir_edit(fn):
    def setup(d, fx):
        import h5py
        shutil.copy(fx["nir"], d / "net.nir")
        with h5py.File(d / "net.nir", "r+") as f:
            fn(f)
    return setup


def _first_dataset(f, name="weight"):
    found = []
    f.visititems(lambda k, v: found.append(k) if k.endswith("/" + name) and hasattr(v, "shape") else None)
    return sorted(found)[0]


def _unwritten_huge(f):
    k = _first_dataset(f)
    del f[k]
    f.create_dataset(k, shape=(32768, 32768), dtype="f4")          # declared 4 GB, nothing written


def _replace(name, value):
    def fn(f):
        k = _first_dataset(f, name)
        del f[k]
        f[k] = value
    return fn


def _dangling_edge(f):
    edges = f["node/edges"][()]
    edges[0, 0] = b"ghost"
    del f["node/edges"]
    f["node/edges"] = edges


def _unknown_type(f):
    del f["node/nodes/h/type"]
    f["node/nodes/h/type"] = "FancyNeuron"


def nir_cases():
    edits = {
        "weight-unwritten-4GB": (_unwritten_huge, ()),
        "weight-nan": (_replace("weight", np.full((9, 12), np.nan, np.float32)), ()),
        "weight-1e38": (_replace("weight", np.full((9, 12), 1e38, np.float32)), ()),
        "weight-wrong-shape": (_replace("weight", np.zeros((2, 2), np.float32)), ()),
        "weight-strings": (_replace("weight", np.array([b"a", b"b"])), ()),
        "r-negative": (_replace("r", -np.ones(9)), ()),
        "threshold-inf": (_replace("v_threshold", np.full(9, np.inf)), ()),
        "threshold-1e308": (_replace("v_threshold", np.full(9, 1e308)), ()),
        "bias-nan": (_replace("bias", np.full(9, np.nan, np.float32)), ()),
        "shape-1e9": (_replace("shape", np.array([10**9])), ()),
        "edges-dangling": (_dangling_edge, ()),
        "nodes-removed": (lambda f: f.__delitem__("node/nodes"), ()),
        "type-unknown": (_unknown_type, ()),
        "metadata-junk": (lambda f: (f.__delitem__("node/metadata/spikeport"),
                                     f.__setitem__("node/metadata/spikeport", "{not json")), ()),
    }
    for what, (fn, expect) in edits.items():
        for cmd, argv in {"convert": ["convert", "net.nir", "--out", "out.spk", "--dt", "0.001", "--from", "nir"],
                          "simulate": ["simulate", "net.nir", "--data", "{data}", "--steps", "4", "--dt", "0.001",
                                       "--from", "nir"]}.items():
            yield Case(f"nir/{what}/{cmd}", argv, _nir_edit(fn), ("net.nir",) + expect, ("nir",))


# ---------------------------------------------------------------------------- profiles

def _profile(fn):
    def setup(d, fx):
        text = Path(fx["profile"]).read_text()
        (d / "chip.toml").write_text(fn(text))
    return setup


def _toml_set(key_line: str, new: str):
    def fn(text):
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if line.split("=")[0].strip() == key_line:
                lines[i] = f"{key_line} = {new}"
                return "\n".join(lines) + "\n"
        return text + f"\n{key_line} = {new}\n"
    return fn


def profile_cases():
    edits = {
        "nested-100000": (lambda t: "a = " + "[" * 100000 + "]" * 100000 + "\n", ()),
        "nested-tables": (lambda t: t + "\n" + "".join(f"[{'x.' * 500}y{i}]\n" for i in range(3)), ()),
        "backend-unknown": (_toml_set("backend", '"quantum-annealer"'), ("quantum-annealer",)),
        "not-toml": (lambda t: "this is = = not toml [[[\n", ()),
        "binary": (lambda t: "\x00\x01\x02 garbage", ()),
        "name-missing": (lambda t: "\n".join(l for l in t.splitlines() if not l.startswith("name")) + "\n", ()),
        "key-unknown": (lambda t: t + "\n[core]\nflux_capacitors = {value = 3, source = \"me\"}\n", ()),
        "empty": (lambda t: "", ()),
        "value-1e400": (lambda t: t + "\n[core]\nneurons = {value = 1e400, source = \"me\"}\n", ()),
    }
    for what, (fn, expect) in edits.items():
        for cmd, argv in {"power": ["power", "{graph}", "--target", "chip.toml", "--data", "{data}", "--steps", "4",
                                    "--samples", "2"],
                          "deploy": ["deploy", "{graph}", "--target", "chip.toml", "--out", "dep", "--data", "{data}",
                                     "--steps", "4", "--samples", "2"]}.items():
            yield Case(f"profile/{what}/{cmd}", argv, _profile(fn), ("chip.toml",) + expect, ("profile",))


# ---------------------------------------------------------------------------- user data

def _npz(**arrays):
    def setup(d, fx):
        np.savez(d / "x.npz", **arrays)
    return setup


def _npz_raw(members: dict):
    def setup(d, fx):
        with zipfile.ZipFile(d / "x.npz", "w") as z:
            for n, b in members.items():
                z.writestr(n, b)
    return setup


def _npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _huge_npy():
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (100000000, 12), }"
    head = head + " " * (63 - len(head) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(head).to_bytes(2, "little") + head.encode() + b"\0" * 64


def data_cases():
    rng = np.random.default_rng(1)
    x = rng.random((20, 12)).astype(np.float32)
    y = rng.integers(0, 4, 20)
    edits = {
        "x-wrong-width": (_npz(x=rng.random((20, 7)).astype(np.float32), y=y), ("x.npz",)),
        "y-short": (_npz(x=x, y=y[:5]), ("x.npz",)),
        "x-nan": (_npz(x=np.full((20, 12), np.nan, np.float32), y=y), ("x.npz",)),
        "x-inf": (_npz(x=np.full((20, 12), np.inf, np.float32), y=y), ("x.npz",)),
        "y-out-of-range": (_npz(x=x, y=y + 100), ("x.npz",)),
        "y-negative": (_npz(x=x, y=-y - 1), ("x.npz",)),
        "y-float": (_npz(x=x, y=y + 0.5), ("x.npz",)),
        "x-object": (_npz_raw({"x.npy": _npy_bytes(np.array([{"a": 1}] * 20, dtype=object)), "y.npy": _npy_bytes(y)}),
                     ("x.npz",)),
        "x-missing": (_npz(y=y), ("x.npz",)),
        "x-empty": (_npz(x=np.zeros((0, 12), np.float32), y=np.zeros(0, np.int64)), ("x.npz",)),
        "x-strings": (_npz(x=np.array(["a"] * 20), y=y), ("x.npz",)),
        "x-header-4.8GB": (_npz_raw({"x.npy": _huge_npy(), "y.npy": _npy_bytes(y)}), ("x.npz",)),
        "member-traversal": (_npz_raw({"../../x.npy": _npy_bytes(x), "y.npy": _npy_bytes(y)}), ("x.npz",)),
        "member-bad-npy": (_npz_raw({"x.npy": b"not an npy at all", "y.npy": _npy_bytes(y)}), ("x.npz",)),
        "x-1e38": (_npz(x=np.full((20, 12), 1e38, np.float32), y=y), ("x.npz",)),
    }
    for what, (setup, expect) in edits.items():
        for cmd, argv in {"simulate": ["simulate", "{graph}", "--data", "x.npz", "--steps", "4"],
                          "power": ["power", "{graph}", "--target", "loihi", "--data", "x.npz", "--steps", "4"]}.items():
            yield Case(f"data/{what}/{cmd}", argv, setup, expect, ("data",))
    # the named data sets' directory
    yield Case("data/data-dir-is-file/simulate", ["simulate", "{digits}", "--dataset", "mnist", "--data-dir", "f.txt"],
               _write("f.txt", "x"), ("f.txt", "not a directory"), ("data",))
    yield Case("data/mnist-not-zip/simulate", ["simulate", "{digits}", "--dataset", "mnist", "--data-dir", "dd"],
               _both(_dir("dd"), lambda d, fx: (d / "dd" / "mnist.npz").write_bytes(b"garbage" * 100)),
               ("mnist.npz",), ("data",))
    yield Case("data/mnist-fifo/simulate", ["simulate", "{digits}", "--dataset", "mnist", "--data-dir", "dd"],
               _both(_dir("dd"), lambda d, fx: os.mkfifo(d / "dd" / "mnist.npz")), ("mnist.npz",), ("data",))


# ---------------------------------------------------------------------------- command-line options and outputs

def option_cases():
    sim = ["simulate", "{graph}", "--data", "{data}"]
    opts = {
        "steps-zero": (sim + ["--steps", "0"], ("--steps",)),
        "steps-negative": (sim + ["--steps", "-5"], ("--steps",)),
        "steps-1e9": (sim + ["--steps", "1000000000"], ("steps",)),
        "steps-text": (sim + ["--steps", "many"], ("--steps",)),
        "samples-zero": (sim + ["--samples", "0"], ("--samples",)),
        "samples-1e12": (["simulate", "{digits}", "--dataset", "digits", "--samples", "1000000000000"], ("samples",)),
        "seed-2**70": (["train", "--dataset", "digits", "--epochs", "1", "--seed", str(2**70), "--out", "m.pt"],
                       ("--seed",)),
        "seed-negative": (["train", "--dataset", "digits", "--epochs", "1", "--seed", "-1", "--out", "m.pt"],
                          ("--seed",)),
        "checkpoints-junk": (sim + ["--checkpoints", "1,x,3"], ("--checkpoints",)),
        "checkpoints-beyond": (sim + ["--steps", "4", "--checkpoints", "1,99"], ("99",)),
        "target-unknown": (["power", "{graph}", "--target", "abacus", "--data", "{data}"], ("abacus",)),
        "backend-unknown": (["validate", "{graph}", "--backend", "abacus", "--data", "{data}"], ("abacus",)),
        "backend-mapper": (["validate", "{graph}", "--backend", "spinnaker", "--data", "{data}"], ("spinnaker",)),
        "dt-on-graph": (sim + ["--dt", "0.001"], ("--dt",)),
        "dt-nan": (["convert", "{nir}", "--from", "nir", "--dt", "nan", "--out", "o.spk"], ("--dt",)),
        "dt-negative": (["convert", "{nir}", "--from", "nir", "--dt", "-1", "--out", "o.spk"], ("--dt",)),
        "max-rate-nan": (["convert", "{model}", "--max-rate", "nan", "--out", "o.spk"], ("--max-rate",)),
        "percentile-200": (["convert", "{model}", "--percentile", "200", "--out", "o.spk"], ("--percentile",)),
        "threshold-scale-0": (["convert", "{nir}", "--from", "nir", "--dt", "0.001", "--threshold-scale", "0",
                               "--out", "o.spk"], ("--threshold-scale",)),
        "epochs-zero": (["train", "--dataset", "digits", "--epochs", "0", "--out", "m.pt"], ("--epochs",)),
        "lr-nan": (["train", "--dataset", "digits", "--epochs", "1", "--lr", "nan", "--out", "m.pt"], ("--lr",)),
        "lr-negative": (["train", "--dataset", "digits", "--epochs", "1", "--lr", "-1", "--out", "m.pt"], ("--lr",)),
        "batch-zero": (["train", "--dataset", "digits", "--epochs", "1", "--batch-size", "0", "--out", "m.pt"],
                       ("--batch-size",)),
        "option-junk": (["train", "--dataset", "digits", "--epochs", "1", "--option", "noequals", "--out", "m.pt"],
                        ("--option",)),
        "arch-junk": (["train", "--dataset", "digits", "--epochs", "1", "--arch", "c0-p0-zz", "--out", "m.pt"],
                      ("c0-p0-zz",)),
        "arch-huge": (["train", "--dataset", "digits", "--epochs", "1", "--arch", "3000000c3", "--out", "m.pt"],
                      ("3000000",)),
        "validation-junk": (["train", "--dataset", "digits", "--epochs", "1", "--validation", "2.5", "--out", "m.pt"],
                            ("--validation",)),
        "resume-without-checkpoint": (["train", "--dataset", "digits", "--epochs", "1", "--resume", "--out", "m.pt"],
                                      ()),
        "weight-bits-0": (sim + ["--weight-bits", "0"], ("--weight-bits",)),
        "weight-bits-99": (sim + ["--weight-bits", "99"], ("99",)),
        "state-bits-1": (sim + ["--state-bits", "1"], ("1",)),
        "fit-nsp-tau-0": (["fit-nsp", "--tau-m-ms", "0"], ("tau",)),
        "fit-nsp-duration-1e9": (["fit-nsp", "--duration-s", "1000000000"], ("duration",)),
        "fit-nsp-trials-1e9": (["fit-nsp", "--trials", "1000000000"], ("trials",)),
        "fit-nsp-nan": (["fit-nsp", "--v-thresh-mv", "nan"], ("--v-thresh-mv",)),
        "methods-unknown": (["methods", "telepathy"], ("telepathy",)),
        "export-for-unknown": (["export", "{graph}", "--to", "nir", "--for", "abacus", "--out", "o.nir"], ("abacus",)),
        "from-lava": (["convert", "{nir}", "--from", "lava", "--out", "o.spk"], ("lava",)),
        "calib-samples-0": (["convert", "{model}", "--l4", "scale", "--calib-samples", "0", "--out", "o.spk"],
                            ("--calib-samples",)),
        "l4-alpha-junk": (["convert", "{model}", "--l4", "scale", "--l4-alpha", "much", "--out", "o.spk"],
                          ("--l4-alpha",)),
        "deploy-samples-huge": (["deploy", "{digits}", "--target", "loihi", "--out", "dep", "--dataset", "digits",
                                 "--samples", "1000000000"], ("samples",)),
        "power-steps-1e9": (["power", "{digits}", "--target", "loihi", "--dataset", "digits", "--steps",
                             "1000000000"], ("steps",)),
        "device-cuda-missing": (sim + ["--device", "cuda"], ("cuda",)),
        "model-def-junk": (["convert", "{model}", "--model-def", "no_such_module:factory", "--data", "{data}",
                            "--out", "o.spk"], ()),
    }
    for what, (argv, expect) in opts.items():
        yield Case(f"option/{what}", argv, None, expect, ("cli",))
    long_name = "n" * 300 + ".json"
    outs = {   # command -> (argv before the output option, the option)
        "simulate-json": (sim + ["--steps", "2", "--samples", "2"], "--json"),
        "simulate-html": (sim + ["--steps", "2", "--samples", "2"], "--html"),
        "power-json": (["power", "{graph}", "--target", "loihi", "--data", "{data}", "--steps", "2", "--samples", "2"],
                       "--json"),
        "validate-json": (["validate", "{graph}", "--data", "{data}", "--steps", "2", "--samples", "2"], "--json"),
        "convert-out": (["convert", "{model}"], "--out"),
        "train-out": (["train", "--dataset", "digits", "--epochs", "1"], "--out"),
        "export-out": (["export", "{graph}", "--to", "nir"], "--out"),
        "deploy-out": (["deploy", "{graph}", "--target", "loihi", "--data", "{data}", "--steps", "2", "--samples", "2"],
                       "--out"),
        "fit-nsp-json": (["fit-nsp", "--trials", "1", "--duration-s", "0.1"], "--json"),
        "methods-json": (["methods"], "--json"),
    }
    places = {"dot": ".", "proc": "/proc/spikeport-test", "sys": "/sys/spikeport-test", "long-name": long_name,
              "missing-parent": "no/such/dir/out.x", "existing-dir": "adir", "dev-null-dir": "/dev/null/x"}
    for cmd, (argv, opt) in outs.items():
        for where, path in places.items():
            if cmd == "deploy-out" and where in ("existing-dir", "dot"):
                continue                       # an existing DIR is refused without --force: a case of its own below
            setup = _dir("adir") if where == "existing-dir" else None
            yield Case(f"output/{cmd}/{where}", argv + [opt, path], setup, (opt,), ("output",))
    yield Case("output/deploy-out/existing-dir", outs["deploy-out"][0] + ["--out", "adir"],
               _both(_dir("adir"), _write("adir/thesis.txt", "not a deployment")), ("adir",), ("output",))
    yield Case("output/convert-out/existing-unrelated-file", ["convert", "{model}", "--out", "notes.txt"],
               _write("notes.txt", "my thesis, not a graph"), ("notes.txt",), ("output",))


def cases():
    """Every case of the corpus, in a stable order."""
    for gen in (file_cases, graph_cases, model_cases, nir_cases, profile_cases, data_cases, option_cases):
        yield from gen()
