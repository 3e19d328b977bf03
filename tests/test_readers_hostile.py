"""Readers of strangers' files (issue 25): every hostile input is one SpikeportError naming the file and the
fault, found before anything the file declares is allocated (small tracemalloc peak), without blocking on a
FIFO or a device (an alarm turns a regression into a failure instead of a hang)."""
import gzip
import io
import json
import os
import signal
import tracemalloc
import warnings
import zipfile

import numpy as np
import pytest

from conftest import run_cli, small_network
from spikeport import budget
from spikeport.errors import DataError, FileFormatError, GraphError, SpikeportError

PEAK = 50 * 2**20  # what reading a hostile file may allocate at most (Python's allocations, tracemalloc)


@pytest.fixture(autouse=True)
def guard(monkeypatch):
    """The default budget, and an alarm: a reader that blocks fails after 30 s instead of hanging."""
    def fire(*_):
        raise TimeoutError("blocked: a reader opened something that never answers")

    monkeypatch.delenv(budget.ENV, raising=False)
    budget.set_limit(None)
    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
    budget.set_limit(None)


def refused(fn, *words, error=SpikeportError, peak=PEAK) -> str:
    """Run ``fn``: it must raise ``error`` with a one-line message holding every one of ``words``, allocating
    less than ``peak`` bytes on the way."""
    tracemalloc.start()
    try:
        with pytest.raises(error) as exc:
            fn()
        used = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for w in words:
        assert str(w) in msg, (w, msg)
    assert used < peak, f"peak {used:,} bytes: {msg}"
    return msg


def specials(tmp_path, name):
    """(path, what it is) of a FIFO, a directory and /dev/zero, under names a reader would take."""
    fifo = tmp_path / name
    os.mkfifo(fifo)
    folder = tmp_path / ("dir-" + name)
    folder.mkdir()
    return [(fifo, "is a named pipe (FIFO)"), (folder, "is a directory"), ("/dev/zero", "is a character device")]


# ----------------------------------------------------------------------------- graph files

def graph_members(net=None) -> dict:
    """The members of a graph file of ``net`` (written without validation: what a stranger can write)."""
    from spikeport.ir.io import _encode

    body, arrays = _encode(net or small_network())
    members = {"spikeport.json": json.dumps({"format": "spikeport-network", "version": 1, "writer": "x",
                                             "network": body})}
    for key, a in arrays.items():
        buf = io.BytesIO()
        np.lib.format.write_array(buf, a, allow_pickle=False)
        members[key] = buf.getvalue()
    return members


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as z:  # stored, as graph files are
        for name, data in members.items():
            z.writestr(name, data)
    return path


def edit_header(members, edit):
    header = json.loads(members["spikeport.json"])
    edit(header["network"])
    members["spikeport.json"] = json.dumps(header)
    return members


def test_a_population_declaring_a_billion_neurons(tmp_path):
    from spikeport.ir import load_network

    def grow(net):
        net["populations"][1]["shape"] = [1_000_000_000]
        net["populations"][1]["bias"] = None

    path = write_zip(tmp_path / "big.spk", edit_header(graph_members(), grow))
    with budget.limited("3.9G"):
        msg = refused(lambda: load_network(path))
    assert msg == (f"{path}: population 'h' declares 1,000,000,000 neurons: 8.0 GB of state exceeds the memory "
                   f"budget 3.9 GB (--max-memory SIZE or SPIKEPORT_MAX_MEMORY)")


def test_a_padded_sum_pool_inflating_a_tiny_graph_is_refused_by_shape_inference(tmp_path):
    from spikeport.ir import InputEncoding, Network, NeuronModel, Population, Projection, SumPool2d, load_network, save_network

    side = 2 * 2**14 + 1  # a 1x1 input padded by 2**14: a billion neurons from a file of a few hundred bytes
    net = Network([Population("input", (1, 1, 1), encoding=InputEncoding()),
                   Population("big", (1, side, side), neuron=NeuronModel())],
                  [Projection("pad", "input", "big", [SumPool2d(1, padding=2**14)])], output="big")
    save_network(net, tmp_path / "pad.spk")
    assert (tmp_path / "pad.spk").stat().st_size < 2000
    with budget.limited("3.9G"):
        refused(lambda: load_network(tmp_path / "pad.spk"), tmp_path / "pad.spk",
                f"population 'big' declares {side * side:,} neurons", "of state exceeds the memory budget 3.9 GB")

    def lie(n):  # the population declared small, the pool's shape inference says otherwise
        n["populations"][1]["shape"] = [1, 4, 4]

    path = write_zip(tmp_path / "lie.spk", edit_header(graph_members(net), lie))
    refused(lambda: load_network(path), path, "projection 'pad'", f"(1, {side}, {side})", "(1, 4, 4)",
            error=GraphError)


def test_a_small_file_whose_synapses_would_take_gigabytes(tmp_path):
    """A 1x1 convolution 1000 -> 1000 channels on 32x32 maps: 4 MB of weights, a billion synapses materialized."""
    from spikeport.ir import Conv2d, InputEncoding, Network, NeuronModel, Population, Projection, load_network, save_network

    w = np.full((1000, 1000, 1, 1), 1e-3, np.float32)
    net = Network([Population("input", (1000, 32, 32), encoding=InputEncoding()),
                   Population("c", (1000, 32, 32), neuron=NeuronModel())],
                  [Projection("conv", "input", "c", [Conv2d(w)])], output="c")
    save_network(net, tmp_path / "conv.spk")
    del net, w
    with budget.limited("2G"):
        refused(lambda: load_network(tmp_path / "conv.spk"), tmp_path / "conv.spk",
                "projection 'conv' declares up to 1,024,000,000 synapses: 32.8 GB of materialized synapses exceeds")


def test_arrays_are_added_up_against_the_budget(tmp_path):
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection, load_network, save_network

    net = Network([Population("input", (390,), encoding=InputEncoding()), Population("h", (256,), neuron=NeuronModel())],
                  [Projection("p", "input", "h", [Dense(np.full((256, 390), 1e-3, np.float32))])], output="h")
    save_network(net, tmp_path / "n.spk")
    with budget.limited("200K"):
        refused(lambda: load_network(tmp_path / "n.spk"), tmp_path / "n.spk", "projection 'p' op 0 weight: array "
                "'arrays/0.npy' of shape (256, 390): 399.4 kB exceeds the memory budget 200.0 kB")


def test_a_huge_header_is_checked_against_the_budget_before_it_is_parsed(tmp_path):
    from spikeport.ir import load_network

    members = edit_header(graph_members(), lambda n: n["metadata"].update(pad="x" * 100_000))
    path = write_zip(tmp_path / "h.spk", members)
    with budget.limited("1M"):
        refused(lambda: load_network(path), path, "spikeport.json of 101,", "of parsed JSON at most exceeds")


@pytest.mark.parametrize("edit, words", [
    (lambda n: n["populations"][1]["neuron"].update(threshold=1e308), ["population 'h'", "threshold is 1e+308"]),
    (lambda n: n["populations"][1]["neuron"].update(threshold=1e-40), ["population 'h'", "threshold 1e-40 is below"]),
    (lambda n: n["populations"][1]["neuron"].update(v_init=-1e31), ["population 'h'", "v_init is -1e+31"]),
    (lambda n: n["populations"][0]["encoding"].update(max_rate_hz=1e300), ["population 'input'", "max_rate_hz"]),
    (lambda n: n.update(dt_s=1e-300), ["network: dt_s 1e-300 is shorter than 1e-12 s"]),
])
def test_parameters_the_arithmetic_cannot_hold_are_refused_at_load(tmp_path, edit, words):
    from spikeport.ir import load_network

    path = write_zip(tmp_path / "n.spk", edit_header(graph_members(), edit))
    refused(lambda: load_network(path), path, *words, error=GraphError)


def test_an_integer_beyond_a_float_is_refused_by_field(tmp_path):
    from spikeport.ir import load_network

    path = write_zip(tmp_path / "n.spk", edit_header(graph_members(),
                                                     lambda n: n["populations"][2]["neuron"].update(v_init=10**400)))
    refused(lambda: load_network(path), path, "population 'out': field 'v_init' is an integer of 1329 bits, beyond "
            "a float", error=FileFormatError)


def test_weights_of_1e38_nan_biases_and_fan_in_overflow_name_the_file_and_object(tmp_path):
    from spikeport.ir import load_network

    net = small_network()
    net.projections[0].ops[0].weight[:] = 1e38
    path = write_zip(tmp_path / "w.spk", graph_members(net))
    refused(lambda: load_network(path), path, "projection 'input->h' op 0: dense weight", "values up to 1e+38",
            error=GraphError)
    net = small_network()
    net.population("h").bias[3] = np.nan
    path = write_zip(tmp_path / "b.spk", graph_members(net))
    msg = refused(lambda: load_network(path), path, "population 'h': bias holds 1 NaN or infinite value",
                  error=GraphError)
    assert "must be finite" not in msg
    net = small_network()
    net.projections[1].ops[0].weight[:] = 2e29  # each value fits; nine of them into one neuron do not
    path = write_zip(tmp_path / "f.spk", graph_members(net))
    refused(lambda: load_network(path), path, "projection 'h->out' op 0 (dense): its weights times the fan-in can "
            "deliver 1.8e+30", error=GraphError)


def test_in_memory_networks_get_the_same_sanity_pass():
    from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

    pops = [Population("input", (12,), encoding=InputEncoding()), Population("h", (2,), neuron=NeuronModel())]
    net = Network(pops, [Projection("p", "input", "h", [Dense(np.full((2, 12), 1e29))])], output="h")
    with pytest.raises(GraphError, match=r"projection 'p' op 0 \(dense\): its weights times the fan-in can deliver "
                                         r"1.2e\+30 to one neuron in one step, beyond 1e\+30"):
        net.validate()
    net.projections[0].ops[0].weight[:] = 1e28
    net.validate()


def test_special_files_as_graph_files_are_refused_by_name(tmp_path):
    from spikeport.ir import load_network
    from spikeport.ir.nir import is_nir_file

    for path, kind in specials(tmp_path, "net.spk"):
        refused(lambda: load_network(path), f"{path}: {kind}, not a regular file", error=FileFormatError)
        assert not is_nir_file(path)


def test_the_command_line_refuses_a_fifo_in_one_line(tmp_path):
    os.mkfifo(tmp_path / "net.spk")
    r = run_cli("simulate", tmp_path / "net.spk", "--steps", "4", timeout=120)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip() == f"error: {tmp_path / 'net.spk'}: is a named pipe (FIFO), not a regular file; the graph " \
                               f"file must be a regular file"


# ----------------------------------------------------------------------------- NIR files

@pytest.fixture
def nir_file(tmp_path):
    pytest.importorskip("nir")
    import h5py  # noqa: F401  (imported before any allocation is measured)

    from spikeport.ir import export_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_nir(small_network(), tmp_path / "n.nir")
    return tmp_path / "n.nir"


def import_quietly(path):
    from spikeport.ir import import_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return import_nir(path)


def test_an_unwritten_dataset_is_not_read_as_gigabytes(nir_file):
    import h5py

    with h5py.File(nir_file, "r+") as f:
        g = f["node/nodes/input->h.0"]
        del g["weight"]
        g.create_dataset("weight", shape=(32768, 32768), dtype="f4")  # never written: 4 GB of fill value
    assert nir_file.stat().st_size < 300_000
    refused(lambda: import_quietly(nir_file), nir_file, "dataset 'node/nodes/input->h.0/weight' declares shape "
            "(32768, 32768) of float32 (4,294,967,296 bytes) but stores 0 bytes", error=FileFormatError)


def test_nir_datasets_are_added_up_against_the_budget(nir_file):
    with budget.limited(500):
        refused(lambda: import_quietly(nir_file), nir_file, "exceeds the memory budget 500 bytes")


@pytest.mark.parametrize("kind", ["external", "soft"])
def test_nir_links_are_refused(nir_file, kind):
    import h5py

    with h5py.File(nir_file, "r+") as f:
        g = f["node/nodes/input->h.0"]
        del g["weight"]
        g["weight"] = h5py.ExternalLink("/dev/zero", "/x") if kind == "external" else h5py.SoftLink("/node/type")
    refused(lambda: import_quietly(nir_file), nir_file, f"'node/nodes/input->h.0/weight' is a{'n' * (kind == 'external')} "
            f"{kind} link", error=FileFormatError)


def test_a_nir_input_declaring_a_billion_neurons(nir_file):
    import h5py

    with h5py.File(nir_file, "r+") as f:
        g = f["node/nodes/input"]
        del g["shape"]
        g["shape"] = np.array([1_000_000_000])
    with budget.limited("4G"):
        refused(lambda: import_quietly(nir_file), nir_file, "node 'input' (Input) declares 1,000,000,000 neurons",
                "exceeds the memory budget 4.0 GB")


def test_nir_weights_beyond_the_bound_name_the_file_and_projection(nir_file):
    import h5py

    with h5py.File(nir_file, "r+") as f:
        f["node/nodes/h->out.0/weight"][...] = 1e38
    refused(lambda: import_quietly(nir_file), nir_file, "node 'h->out.0' (Linear): dense weight", "values up to 1e+38",
            error=GraphError)


def zero_heap_object(path, text: bytes) -> None:
    """Zero the size and the bytes of the HDF5 global-heap object holding ``text`` (a variable-length string):
    the corruption fuzzing found, on which the HDF5 library's read never returns."""
    import struct

    raw = bytearray(path.read_bytes())
    heap = raw.find(b"GCOL")
    end = heap + struct.unpack_from("<Q", raw, heap + 8)[0]
    at = heap + 16
    while at + 16 <= end:
        index, _, _, n = struct.unpack_from("<HHIQ", raw, at)
        if index == 0:
            break
        if raw[at + 16:at + 16 + n] == text:
            raw[at + 8:at + 16 + n] = bytes(8 + n)
            path.write_bytes(bytes(raw))
            return
        at += 16 + (n + 7) // 8 * 8
    raise AssertionError(f"no heap object {text!r} in {path}")


def test_a_file_on_which_the_hdf5_library_loops_is_refused_in_time(nir_file, monkeypatch):
    from spikeport.ir.nir import reader

    zero_heap_object(nir_file, b"NIRGraph")
    monkeypatch.setattr(reader, "READ_SECONDS", 2.0)
    children, fork = [], os.fork

    def recorded():
        pid = fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", recorded)
    refused(lambda: import_quietly(nir_file), nir_file, "the HDF5 library did not finish reading it in 2 s",
            error=FileFormatError)
    assert len(children) == 1
    with pytest.raises(ChildProcessError):  # the child was killed and reaped: nothing left behind
        os.waitpid(children[0], os.WNOHANG)


def test_a_crash_of_the_hdf5_library_is_one_line(nir_file, monkeypatch):
    from spikeport.ir.nir import reader

    monkeypatch.setattr(reader, "read_file", lambda path: os.kill(os.getpid(), signal.SIGSEGV))
    refused(lambda: import_quietly(nir_file), nir_file, "the HDF5 library crashed reading it (SIGSEGV)",
            error=FileFormatError)


def test_the_command_line_refuses_a_looping_nir_file_in_one_line(nir_file):
    zero_heap_object(nir_file, b"NIRGraph")
    env = dict(os.environ, SPIKEPORT_NIR_READ_SECONDS="2")
    r = run_cli("convert", nir_file, "--out", nir_file.with_suffix(".spk"), env=env, timeout=120)
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr == f"error: {nir_file}: the HDF5 library did not finish reading it in 2 s (a corrupt HDF5 " \
                       f"file can make it loop); not a readable NIR file\n"
    assert not nir_file.with_suffix(".spk").exists()


def test_special_files_as_nir_files_are_refused_by_name(tmp_path):
    pytest.importorskip("nir")
    for path, kind in specials(tmp_path, "net.nir"):
        refused(lambda: import_quietly(path), f"{path}: {kind}, not a regular file", error=FileFormatError)


def test_export_checks_the_footprint_before_building_arrays():
    pytest.importorskip("nir")
    from spikeport.ir import export_nir

    with budget.limited(1000):
        refused(lambda: export_nir(small_network()), "NIR export: the network has 25 neurons",
                "of NIR parameter arrays exceeds the memory budget 1.0 kB")


# ----------------------------------------------------------------------------- model files

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def model_payload(torch, spec=None, meta=None, state=None):
    from spikeport.models.architectures import ArchSpec, build

    arch = ArchSpec("mlp", (1, 8, 8), 10, hidden=(16,))
    return {"format": "spikeport-model", "version": 1, "spec": json.dumps(spec or arch.to_dict()),
            "meta": json.dumps({"method": "relu"} if meta is None else meta),
            "state_dict": build(arch).state_dict() if state is None else state}


def test_a_model_whose_meta_is_a_list(tmp_path, torch):
    from spikeport.models import load_model

    torch.save(model_payload(torch, meta=[1, 2]), tmp_path / "m.pt")
    refused(lambda: load_model(tmp_path / "m.pt"), tmp_path / "m.pt", "meta must be a JSON object, got list",
            error=FileFormatError)
    torch.save(model_payload(torch, meta={"method": ["relu"]}), tmp_path / "m.pt")
    refused(lambda: load_model(tmp_path / "m.pt"), tmp_path / "m.pt", "meta 'method' must be str, got list",
            error=FileFormatError)


def test_a_spec_with_a_3_000_000_wide_layer_is_refused_from_its_parameter_count(tmp_path, torch):
    from spikeport.models import load_model

    spec = {"arch": "mlp", "input_shape": [1, 28, 28], "classes": 10, "hidden": [3_000_000]}
    torch.save(model_payload(torch, spec=spec, state={}), tmp_path / "wide.pt")
    with budget.limited("2G"):
        refused(lambda: load_model(tmp_path / "wide.pt"), tmp_path / "wide.pt",
                "architecture 'mlp' (input (1, 28, 28), 10 classes) declares 2,385,000,010 parameters: 9.5 GB of "
                "float32 weights exceeds the memory budget 2.0 GB")


def test_a_wide_spec_whose_weights_the_file_does_not_hold_is_refused_unbuilt(tmp_path, torch):
    """Within the budget, but the file holds the weights of a 16-wide layer: nothing the spec declares is built."""
    from spikeport.models import load_model

    spec = {"arch": "mlp", "input_shape": [1, 8, 8], "classes": 10, "hidden": [3_000_000]}
    torch.save(model_payload(torch, spec=spec), tmp_path / "wide.pt")
    refused(lambda: load_model(tmp_path / "wide.pt"), tmp_path / "wide.pt", "its spec declares 222,000,000 "
            "weights, its state_dict holds 1,210 values", error=FileFormatError)


def test_building_a_spec_checks_its_size_first(torch):
    from spikeport.models.architectures import ArchSpec, build

    spec = ArchSpec("mlp", (1, 28, 28), 10, hidden=(3_000_000,))
    with budget.limited("2G"):
        refused(lambda: build(spec), "architecture 'mlp'", "2,385,000,010 parameters")


@pytest.mark.parametrize("value, words", [(float("nan"), "tensor 'fc1.weight' holds 1 NaN or infinite value"),
                                          (1e38, "tensor 'fc1.weight' holds values up to 1e+38")])
def test_a_model_tensor_the_arithmetic_cannot_hold_names_the_tensor_and_file(tmp_path, torch, value, words):
    from spikeport.models import load_model

    payload = model_payload(torch)
    payload["state_dict"]["fc1.weight"][0, 0] = value
    torch.save(payload, tmp_path / "m.pt")
    refused(lambda: load_model(tmp_path / "m.pt"), tmp_path / "m.pt", words, error=FileFormatError)


def test_a_legacy_pickle_and_an_oversized_model_are_refused_unread(tmp_path, torch):
    from spikeport.models import load_model

    torch.save(model_payload(torch), tmp_path / "old.pt", _use_new_zipfile_serialization=False)
    refused(lambda: load_model(tmp_path / "old.pt"), tmp_path / "old.pt", "not the zip archive torch.save writes",
            error=FileFormatError)
    torch.save(model_payload(torch), tmp_path / "m.pt")
    with budget.limited(1000):
        refused(lambda: load_model(tmp_path / "m.pt"), tmp_path / "m.pt", "exceeds the memory budget 1.0 kB")


def test_special_files_as_model_files_are_refused_by_name(tmp_path, torch):
    from spikeport.models import load_model

    for path, kind in specials(tmp_path, "m.pt"):
        refused(lambda: load_model(path), f"{path}: {kind}, not a regular file", error=FileFormatError)


# ----------------------------------------------------------------------------- the user's data

def npz(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, a in members.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, a)
            z.writestr(name, buf.getvalue())
    return path


def test_npz_members_with_path_names_are_refused(tmp_path):
    from spikeport.datasets import load_user_data

    x = np.zeros((3, 4), np.float32)
    path = npz(tmp_path / "d.npz", {"x.npy": x, "../../x.npy": x})
    refused(lambda: load_user_data(path), path, "member '../../x.npy' is not a plain array name", error=DataError)
    path = npz(tmp_path / "e.npz", {"../../x.npy": x})
    refused(lambda: load_user_data(path), path, "member '../../x.npy'", error=DataError)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate it writes
        path = npz(tmp_path / "f.npz", {"x.npy": x, "y.npy": np.zeros(3), "x": x})
    refused(lambda: load_user_data(path), path, "holds array 'x' twice", error=DataError)


def test_a_compressed_npz_declaring_more_than_the_budget_is_refused_unread(tmp_path):
    """200 MB of zeros deflated to a fraction of a megabyte: the header is read, nothing inflated."""
    from spikeport.datasets import load_user_data

    path = tmp_path / "bomb.npz"
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (5000, 5000)})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z, z.open("x.npy", "w", force_zip64=True) as m:
        m.write(header.getvalue())
        chunk = bytes(1 << 22)
        for _ in range(5000 * 5000 * 8 // len(chunk)):
            m.write(chunk)
        m.write(bytes(5000 * 5000 * 8 % len(chunk)))
    assert path.stat().st_size < 2_000_000
    with budget.limited("50M"):
        refused(lambda: load_user_data(path), f"{path}[x]: declares shape (5000, 5000) of float64",
                "of data exceeds the memory budget 50.0 MB")


def test_an_npy_over_the_budget_is_refused_before_it_is_read(tmp_path):
    from spikeport.datasets import load_user_data

    np.save(tmp_path / "x.npy", np.zeros((300, 1000)))
    with budget.limited("1M"):
        refused(lambda: load_user_data(tmp_path / "x.npy"), tmp_path / "x.npy", "declares shape (300, 1000) of "
                "float64: 3.6 MB of data exceeds the memory budget 1.0 MB")


def test_data_values_the_arithmetic_cannot_hold(tmp_path):
    from spikeport.datasets import load_user_data

    np.save(tmp_path / "x.npy", np.full((4, 3), 1e38, np.float32))
    refused(lambda: load_user_data(tmp_path / "x.npy"), tmp_path / "x.npy", "x holds values up to 1e+38, beyond "
            "+-1e+30", error=DataError)


def test_special_files_as_data_are_refused_by_name(tmp_path):
    from spikeport.datasets import load_user_data

    for path, kind in specials(tmp_path, "d.npz"):
        refused(lambda: load_user_data(path), f"{path}: {kind}, not a regular file", error=DataError)


# ----------------------------------------------------------------------------- named data sets and --data-dir

def test_data_dir_that_is_a_file(tmp_path):
    from spikeport.datasets import load_dataset

    (tmp_path / "f").write_text("x")
    refused(lambda: load_dataset("mnist", tmp_path / "f"), f"data directory {tmp_path / 'f'} is not a directory",
            error=DataError)
    refused(lambda: load_dataset("mnist", tmp_path / "nope"), "does not exist", error=DataError)


def test_an_mnist_npz_that_is_not_a_zip(tmp_path):
    from spikeport.datasets import load_dataset

    np.save(tmp_path / "x.npy", np.zeros(4))
    os.replace(tmp_path / "x.npy", tmp_path / "mnist.npz")
    refused(lambda: load_dataset("mnist", tmp_path), tmp_path / "mnist.npz", "not an MNIST .npz (not a zip archive",
            error=DataError)
    npz(tmp_path / "mnist.npz", {"x_train.npy": np.zeros(3)})
    refused(lambda: load_dataset("mnist", tmp_path), "not an MNIST .npz: it needs arrays named y_train, x_test, "
            "y_test", error=DataError)


def test_special_files_in_the_data_dir_are_refused_by_name(tmp_path):
    from spikeport.datasets import load_dataset

    os.mkfifo(tmp_path / "mnist.npz")
    refused(lambda: load_dataset("mnist", tmp_path), f"{tmp_path / 'mnist.npz'}: is a named pipe (FIFO)",
            error=DataError)
    os.unlink(tmp_path / "mnist.npz")
    os.mkfifo(tmp_path / "train-images-idx3-ubyte")
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(b"")
    refused(lambda: load_dataset("mnist", tmp_path), f"{tmp_path / 'train-images-idx3-ubyte'}: is a named pipe",
            error=DataError)


def test_idx_files_are_inflated_no_further_than_they_declare(tmp_path):
    from spikeport.datasets import read_idx

    dims = b"".join(n.to_bytes(4, "big") for n in (1_000_000, 10_000, 10_000))
    (tmp_path / "a.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + dims))
    refused(lambda: read_idx(tmp_path / "a.gz", 3), tmp_path / "a.gz", "header declares shape (1000000, 10000, "
            "10000): 100.0 TB of images or labels exceeds the memory budget", error=SpikeportError)
    small = b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (1, 28, 28))
    (tmp_path / "b.gz").write_bytes(gzip.compress(small + bytes(50_000_000)))  # a bomb behind an honest header
    refused(lambda: read_idx(tmp_path / "b.gz", 3), tmp_path / "b.gz", "header declares shape (1, 28, 28) but holds "
            "more bytes", error=DataError, peak=2**20)
    (tmp_path / "c").write_bytes(small + bytes(784))
    assert read_idx(tmp_path / "c", 3).shape == (1, 28, 28)


# ----------------------------------------------------------------------------- hardware profiles

def profile_text(backend="reference"):
    from spikeport import hardware_profiles as hp

    text = (hp.HERE / "cpu.toml").read_text()
    assert 'backend = "reference"' in text
    return text.replace('backend = "reference"', f'backend = "{backend}"')


def test_a_profile_with_an_unknown_backend_is_refused_when_loaded(tmp_path):
    from spikeport import hardware_profiles as hp

    (tmp_path / "p.toml").write_text(profile_text("teleport"))
    refused(lambda: hp.load(tmp_path / "p.toml"), tmp_path / "p.toml", "backend: must be one of", "'teleport'",
            error=hp.ProfileError)
    (tmp_path / "q.toml").write_text(profile_text(""))
    assert hp.load(tmp_path / "q.toml").backend == ""


def test_the_profiles_backend_list_is_the_registrys():
    from spikeport import hardware_profiles as hp
    from spikeport.backends import BACKENDS, MAPPERS

    assert set(hp.BACKENDS) == set(BACKENDS) | set(MAPPERS)


def test_a_profile_nested_100_000_deep_is_one_line(tmp_path):
    from spikeport import hardware_profiles as hp

    (tmp_path / "deep.toml").write_text("a = " + "[" * 100_000 + "]" * 100_000 + "\n")
    refused(lambda: hp.load(tmp_path / "deep.toml"), tmp_path / "deep.toml", "nested too deeply",
            error=hp.ProfileError)


def test_special_and_huge_profiles_are_refused(tmp_path):
    from spikeport import hardware_profiles as hp

    for path, kind in specials(tmp_path, "p.toml"):
        refused(lambda: hp.load(str(path)), f"{path}: {kind}, not a regular file", error=hp.ProfileError)
    (tmp_path / "big.toml").write_text("# " + "x" * (2 << 20))
    refused(lambda: hp.load(tmp_path / "big.toml"), "more than a profile may have", error=hp.ProfileError)
