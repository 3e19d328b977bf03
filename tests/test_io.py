"""The graph file: exact round trip, and hostile files refused with one clear line."""
import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from conftest import small_network
from spikeport.errors import SpikeportError
from spikeport.ir import load_network, save_network
from spikeport.ir.io import VERSION


def assert_same(a, b):
    assert a.dt_s == b.dt_s and a.input == b.input and a.output == b.output and a.metadata == b.metadata
    for p, q in zip(a.populations, b.populations, strict=True):
        assert (p.name, p.shape, p.neuron, p.encoding) == (q.name, q.shape, q.neuron, q.encoding)
        for u, v in ((p.bias, q.bias), (p.v_init, q.v_init)):
            assert (u is None) == (v is None)
            if u is not None:
                assert u.dtype == v.dtype and u.tobytes() == v.tobytes()
    for p, q in zip(a.projections, b.projections, strict=True):
        assert (p.name, p.pre, p.post, p.delay_steps) == (q.name, q.pre, q.post, q.delay_steps)
        for o, r in zip(p.ops, q.ops, strict=True):
            assert o.kind == r.kind and o.params() == r.params()
            for k, arr in o.arrays().items():
                assert arr.dtype == r.arrays()[k].dtype and arr.tobytes() == r.arrays()[k].tobytes()


@pytest.mark.parametrize("kw", [dict(), dict(neuron="lif", reset="zero", encoding="poisson", delay=2, bias=False),
                                dict(v_init=True)])
def test_round_trip_is_bitwise_exact(tmp_path, kw):
    per_neuron = kw.pop("v_init", False)
    net = small_network(**kw)
    if per_neuron:  # an initial membrane per neuron (membrane calibration)
        net.populations[2].v_init = np.array([0.5, -0.25, 1.5, 0.0], np.float32)
    net.populations[1].bias = None if net.populations[1].bias is None else net.populations[1].bias.astype(np.float64)
    save_network(net, tmp_path / "a.spk")
    back = load_network(tmp_path / "a.spk")
    assert_same(net, back)
    save_network(back, tmp_path / "b.spk")
    assert (tmp_path / "a.spk").read_bytes() == (tmp_path / "b.spk").read_bytes()


def rewrite(src, dst, header_fn=None, member_fn=None):
    """Copy a graph file, changing its JSON header or its members."""
    with zipfile.ZipFile(src) as z:
        members = {n: z.read(n) for n in z.namelist()}
    if header_fn:
        members["spikeport.json"] = json.dumps(header_fn(json.loads(members["spikeport.json"]))).encode()
    if member_fn:
        member_fn(members)
    with zipfile.ZipFile(dst, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    return dst


def npy(a):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a)
    return buf.getvalue()


def absurd_npy():
    """A .npy header declaring 8.1e14 floats over a few hundred bytes of data."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False, "shape": (900000000, 900000)})
    return buf.getvalue() + b"\0" * 432


def set_in(path_keys, value):
    def fn(h):
        d = h
        for k in path_keys[:-1]:
            d = d[k]
        d[path_keys[-1]] = value
        return h
    return fn


HOSTILE = {
    "newer version": (dict(header_fn=set_in(["version"], VERSION + 1)), "newer than this spikeport reads"),
    "wrong format": (dict(header_fn=set_in(["format"], "other")), "not a spikeport graph file"),
    "negative threshold": (dict(header_fn=set_in(["network", "populations", 1, "neuron", "threshold"], -1.0)),
                           "population 'h': threshold must be > 0"),
    "unknown neuron": (dict(header_fn=set_in(["network", "populations", 1, "neuron", "model"], "hh")),
                       "population 'h': unknown neuron model 'hh'"),
    "shape that lies": (dict(header_fn=set_in(["network", "populations", 1, "shape"], [10])),
                        "population 'h'"),
    "missing pre": (dict(header_fn=set_in(["network", "projections", 0, "pre"], "nowhere")),
                    "projection 'input->h': pre population 'nowhere' does not exist"),
    "negative delay": (dict(header_fn=set_in(["network", "projections", 1, "delay_steps"], -1)),
                       "projection 'h->out': delay_steps"),
    "unknown field": (dict(header_fn=set_in(["network", "populations", 0, "colour"], "red")), "unknown field"),
    "nan weights": (dict(member_fn=lambda m: m.__setitem__("arrays/1.npy", npy(np.full((9, 12), np.nan, np.float32)))),
                    "NaN or infinite"),
    "object dtype": (dict(member_fn=lambda m: m.__setitem__("arrays/1.npy", npy(np.zeros((9, 12), np.float32).astype("U3")))),
                     "is not allowed"),
    "array header lies": (dict(member_fn=lambda m: m.__setitem__("arrays/1.npy", npy(np.zeros((9, 12), np.float32))[:-40])),
                          "does not match"),
    "absurd size": (dict(member_fn=lambda m: m.__setitem__("arrays/1.npy", absurd_npy())), "does not match"),
    "missing array": (dict(member_fn=lambda m: m.pop("arrays/1.npy")), "is missing from the file"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_are_refused_with_one_line(tmp_path, case):
    kwargs, expected = HOSTILE[case]
    save_network(small_network(), tmp_path / "ok.spk")
    bad = rewrite(tmp_path / "ok.spk", tmp_path / "bad.spk", **kwargs)
    with pytest.raises(SpikeportError) as info:
        load_network(bad)
    msg = str(info.value)
    assert msg.startswith(str(bad)) and expected in msg and "\n" not in msg


def test_truncated_pickled_and_empty_files(tmp_path):
    save_network(small_network(), tmp_path / "ok.spk")
    data = (tmp_path / "ok.spk").read_bytes()
    for cut in (0, 3, 100, len(data) // 2, len(data) - 1):
        (tmp_path / "t.spk").write_bytes(data[:cut])
        with pytest.raises(SpikeportError, match="t.spk"):
            load_network(tmp_path / "t.spk")
    (tmp_path / "p.spk").write_bytes(pickle.dumps({"weights": [1, 2]}))
    with pytest.raises(SpikeportError, match="pickle"):
        load_network(tmp_path / "p.spk")


def test_a_failed_save_leaves_the_old_file(tmp_path):
    good = small_network()
    save_network(good, tmp_path / "n.spk")
    before = (tmp_path / "n.spk").read_bytes()
    bad = small_network()
    bad.metadata["x"] = object()  # not JSON: refused before anything is written
    with pytest.raises(SpikeportError, match="metadata"):
        save_network(bad, tmp_path / "n.spk")
    assert (tmp_path / "n.spk").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.spk"]


def test_invalid_networks_name_the_object():
    from spikeport.ir import Dense, Projection
    net = small_network()
    net.projections.append(Projection("bad", "h", "out", [Dense(np.zeros((4, 8), np.float32))]))
    with pytest.raises(SpikeportError, match="projection 'bad' op 0 \\(dense\\): dense weight \\(4, 8\\) cannot take input of shape \\(9\\)"):
        net.validate()
    net = small_network()
    net.projections.append(Projection("loop", "out", "h", [Dense(np.zeros((9, 4), np.float32))]))
    with pytest.raises(SpikeportError, match="cycle"):
        net.validate()


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o027])
def test_files_and_directories_get_the_users_umask(tmp_path, mask):
    import os
    import stat

    old = os.umask(mask)
    try:
        path = save_network(small_network(), tmp_path / "f.spk")
        plain = tmp_path / "plain"
        plain.write_bytes(b"")  # what open() gives under the same umask
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode) == 0o666 & ~mask
