"""The one memory budget of spikeport.budget, regular files only, and the footprint of a network (issue 25)."""
import os
import signal
import socket
import tracemalloc

import numpy as np
import pytest

from conftest import conv_network, small_network
from spikeport import budget
from spikeport.budget import BudgetError
from spikeport.errors import SpikeportError


@pytest.fixture(autouse=True)
def default_budget(monkeypatch):
    monkeypatch.delenv(budget.ENV, raising=False)
    budget.set_limit(None)
    yield
    budget.set_limit(None)


@pytest.fixture
def alarm():
    """A regression that blocks (an open of a FIFO) fails after 20 s instead of hanging the run."""
    def fire(*_):
        raise TimeoutError("blocked: a reader opened something that never answers")

    old = signal.signal(signal.SIGALRM, fire)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ----------------------------------------------------------------------------- sizes and the limit

@pytest.mark.parametrize("text, expected", [
    ("2G", 2 * 10**9), ("512M", 512 * 10**6), ("1.5GB", 1_500_000_000), ("300MiB", 300 * 2**20), ("4096", 4096),
    ("1e9", 10**9), (" 64 kb ", 64_000), ("2Gi", 2 * 2**30), ("1T", 10**12), (12345, 12345), ("0.5K", 500),
])
def test_parse_size(text, expected):
    assert budget.parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-1", "0", "2X", "1e999", "G", "1.2.3G", "nan", True, 0, -5, "2 G B"])
def test_parse_size_refuses_junk_in_one_line(text):
    with pytest.raises(SpikeportError) as exc:
        budget.parse_size(text)
    assert "\n" not in str(exc.value) and "memory size" in str(exc.value)


def test_default_is_half_the_physical_memory():
    phys = budget.physical_memory()
    assert phys >= 2**26
    assert budget.DEFAULT_FRACTION == 0.5
    assert budget.limit() == budget.default_limit() == int(phys * 0.5)


def test_the_environment_sets_the_budget(monkeypatch):
    monkeypatch.setenv(budget.ENV, "512M")
    assert budget.limit() == 512 * 10**6
    monkeypatch.setenv(budget.ENV, "lots")
    with pytest.raises(SpikeportError, match="SPIKEPORT_MAX_MEMORY: memory size 'lots'"):
        budget.limit()


def test_set_limit_and_limited_restore(monkeypatch):
    monkeypatch.setenv(budget.ENV, "1G")
    assert budget.set_limit("2G") is None
    assert budget.limit() == 2 * 10**9  # set_limit (the command line) goes before the environment
    with budget.limited(1000) as now:
        assert now == budget.limit() == 1000
        with budget.limited("5K"):
            assert budget.limit() == 5000
        assert budget.limit() == 1000
    assert budget.limit() == 2 * 10**9
    assert budget.set_limit(None) == 2 * 10**9
    assert budget.limit() == 10**9


def test_check_message_names_file_object_and_both_sizes():
    with budget.limited("3.9G"):
        assert budget.check(3_900_000_000, "fits exactly") == 3_900_000_000
        with pytest.raises(BudgetError) as exc:
            budget.check(8_000_000_000, "population 'h' declares 1,000,000,000 neurons", "net.spk", of="state")
    assert str(exc.value) == ("net.spk: population 'h' declares 1,000,000,000 neurons: 8.0 GB of state exceeds the "
                              "memory budget 3.9 GB (--max-memory SIZE or SPIKEPORT_MAX_MEMORY)")
    assert isinstance(exc.value, SpikeportError)


def test_numbers_of_hostile_size_print_in_one_short_line():
    with pytest.raises(BudgetError) as exc:
        budget.check(2**900, f"declares {budget.number(2**897)} neurons", "f")
    msg = str(exc.value)
    assert "\n" not in msg and len(msg) < 200 and "about 10^270" in msg


def test_tally_adds_up():
    with budget.limited(100):
        t = budget.Tally("f.npz", "the arrays it declares")
        t.add(60, "x")
        with pytest.raises(BudgetError, match=r"f.npz: the arrays it declares \(2 so far\): 120 bytes exceeds"):
            t.add(60, "y")
        with pytest.raises(BudgetError, match="f.npz: z: 101 bytes exceeds"):
            t.add(101, "z")


# ----------------------------------------------------------------------------- regular files only

def test_regular_file_refuses_what_is_not_one_by_name(tmp_path, alarm):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for path, kind in ((fifo, "a named pipe (FIFO)"), (tmp_path, "a directory"), ("/dev/zero", "a character device"),
                           (sock_path, "a socket")):
            for fn in (budget.regular_file, budget.open_regular):
                with pytest.raises(SpikeportError) as exc:
                    fn(path, "graph file")
                assert str(exc.value) == f"{path}: is {kind}, not a regular file; the graph file must be a regular file"
        with pytest.raises(SpikeportError, match="absent: no such file"):
            budget.regular_file(tmp_path / "absent")
    finally:
        sock.close()
    (tmp_path / "ok").write_bytes(b"abc")
    assert budget.regular_file(tmp_path / "ok").st_size == 3
    with budget.open_regular(tmp_path / "ok") as f:
        assert f.read() == b"abc"
    assert budget.read_regular(tmp_path / "ok", "profile", limit_bytes=3) == b"abc"
    with pytest.raises(SpikeportError, match="4 bytes, more than a profile may have"):
        (tmp_path / "big").write_bytes(b"abcd")
        budget.read_regular(tmp_path / "big", "profile", limit_bytes=3)


def test_a_symlink_to_a_device_is_refused(tmp_path, alarm):
    link = tmp_path / "net.spk"
    link.symlink_to("/dev/zero")
    with pytest.raises(SpikeportError, match="is a character device"):
        budget.open_regular(link)


def test_the_error_class_is_the_callers(tmp_path):
    from spikeport.errors import DataError

    with pytest.raises(DataError):
        budget.regular_file(tmp_path, "data file", DataError)


# ----------------------------------------------------------------------------- the footprint of a network

@pytest.mark.parametrize("make", [small_network, conv_network])
def test_footprint_bounds_what_materialize_builds(make):
    from spikeport.ir import network_footprint
    from spikeport.ir.network import STATE_BYTES, SYNAPSE_BYTES

    net = make()
    fp = network_footprint(net)
    assert fp.neurons == sum(p.size for p in net.populations)
    assert fp.state_bytes == fp.neurons * STATE_BYTES
    for proj in net.projections:
        pre = net.population(proj.pre).shape
        built = len(proj.materialize(pre))
        assert built <= fp.projections[proj.name]
        synapses, peak, _ = proj.synapse_bound(pre)
        assert synapses == fp.projections[proj.name] and peak >= synapses
        if [op.kind for op in proj.ops] == ["dense"]:
            assert fp.projections[proj.name] == proj.ops[0].weight.size  # exact for a dense projection
    assert fp.synapse_bytes == fp.synapses * SYNAPSE_BYTES
    assert fp.total_bytes == fp.state_bytes + fp.synapse_bytes


def test_footprint_of_a_padded_pool_counts_no_padding():
    """A sum pool padded by 2**14 on a 1x1 map: a billion post neurons, one synapse; counted, not built."""
    from spikeport.ir import InputEncoding, Network, NeuronModel, Population, Projection, SumPool2d, network_footprint

    side = 2 * 2**14 + 1
    net = Network([Population("input", (1, 1, 1), encoding=InputEncoding()),
                   Population("big", (1, side, side), neuron=NeuronModel())],
                  [Projection("pad", "input", "big", [SumPool2d(1, padding=2**14)])], output="big").validate()
    tracemalloc.start()
    try:
        fp = network_footprint(net)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert fp.neurons == 1 + side * side and fp.projections["pad"] == 1
    assert peak < 2**20
    assert len(net.projections[0].materialize((1, 1, 1))) == 1  # padding creates no synapse, nor any allocation


def test_check_footprint_names_the_population_and_projection():
    from spikeport.ir import check_footprint

    net = conv_network()
    fp = check_footprint(net, "net.spk")
    with budget.limited(fp.state_bytes + 1):
        check_footprint(net, "net.spk", synapses=False)
        with pytest.raises(BudgetError, match=r"^net.spk: projection '[^']+' declares up to [\d,]+ synapses: .* of "
                                              r"materialized synapses exceeds the memory budget"):
            check_footprint(net, "net.spk")
    with budget.limited(200):
        with pytest.raises(BudgetError, match="population 'input' declares 128 neurons: 1.0 kB of state exceeds"):
            check_footprint(net, "net.spk")


def test_materialize_is_refused_before_it_allocates():
    from spikeport.ir import Conv2d, InputEncoding, Network, NeuronModel, Population, Projection

    w = np.ones((64, 64, 3, 3), np.float32) * 1e-3
    net = Network([Population("input", (64, 64, 64), encoding=InputEncoding()),
                   Population("c", (64, 64, 64), neuron=NeuronModel())],
                  [Projection("conv", "input", "c", [Conv2d(w, padding=1)])], output="c").validate()
    with budget.limited("100M"):
        tracemalloc.start()
        try:
            with pytest.raises(BudgetError, match=f"projection 'conv' materializes up to {64 * 64 * 190 * 190:,} synapses"):
                net.projections[0].materialize((64, 64, 64))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert peak < 2**20
