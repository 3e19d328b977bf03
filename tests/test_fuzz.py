"""Mutated graph files: never an unhandled exception, never an allocation the file cannot justify."""
import json
import random
import tracemalloc
import zipfile

import pytest

from conftest import conv_network, small_network
from spikeport.errors import SpikeportError
from spikeport.ir import Network, load_network, save_network

MUTATIONS = 1200
JSON_VALUES = [None, True, -1, 0, 2**31, 2**62, -(2**40), 1e308, -0.5, float("nan"), "", "x" * 50, [], [1, 2], {},
               {"$array": "arrays/0.npy"}, {"$array": "../../etc/passwd"}, [[[[[]]]]], "subtract", "lif", 3.5]


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def mutate_json(members, rng):
    header = json.loads(members["spikeport.json"])
    paths = [p for p in _paths(header) if p]
    path = rng.choice(paths)
    node = header
    for k in path[:-1]:
        node = node[k]
    choice = rng.random()
    if choice < 0.15 and isinstance(node, dict):
        del node[path[-1]]
    elif choice < 0.25 and isinstance(node, list):
        node.append(rng.choice(JSON_VALUES))
    else:
        node[path[-1]] = rng.choice(JSON_VALUES)
    members["spikeport.json"] = json.dumps(header).encode()


def mutate_npy(members, rng):
    key = rng.choice([k for k in members if k.endswith(".npy")])
    data = bytearray(members[key])
    end = data.index(b"\n") if b"\n" in data else min(len(data), 128)
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(0, end)] = rng.choice(b"0123456789(),: '<>f4i8U{}x")
    members[key] = bytes(data)


def zip_bytes(members):
    import io
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def mutate(raw: bytes, members: dict, rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.3:  # flip bytes anywhere, container included
        data = bytearray(raw)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind < 0.4:  # truncate
        return raw[: rng.randrange(len(raw))]
    members = dict(members)
    if kind < 0.8:
        mutate_json(members, rng)
    else:
        mutate_npy(members, rng)
    return zip_bytes(members)


@pytest.mark.parametrize("make", [small_network, conv_network])
def test_fuzzed_files_fail_cleanly_and_allocate_little(tmp_path, make):
    save_network(make(), tmp_path / "ok.spk")
    raw = (tmp_path / "ok.spk").read_bytes()
    with zipfile.ZipFile(tmp_path / "ok.spk") as z:
        members = {n: z.read(n) for n in z.namelist()}
    rng = random.Random(1234)
    target = tmp_path / "m.spk"
    outcomes = {"refused": 0, "loaded": 0}
    tracemalloc.start()
    try:
        for i in range(MUTATIONS):
            data = mutate(raw, members, rng)
            target.write_bytes(data)
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            try:
                net = load_network(target)
            except SpikeportError as exc:
                msg = str(exc)
                assert "\n" not in msg and str(target) in msg, msg
                outcomes["refused"] += 1
            else:
                assert isinstance(net, Network)
                outcomes["loaded"] += 1
            peak = tracemalloc.get_traced_memory()[1] - base
            # what the file can justify: its own bytes a few times over (JSON objects, the array copies)
            assert peak <= 20 * len(data) + 2**20, f"mutation {i}: peak {peak} bytes for a {len(data)}-byte file"
    finally:
        tracemalloc.stop()
    assert outcomes["refused"] > MUTATIONS // 2  # the mutations do break files
