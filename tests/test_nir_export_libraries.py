"""export_nir(network, path, library=X): files for snnTorch's, Norse's, sinabs' and Rockpool's own NIR importers.

No library is imported here (only spikeport and nir). What the libraries' importers do with these files is
measured by bench/nirlibs/export_roundtrip.py (bench/RESULTS.md); here: every library preset re-imports its
export as the same network (same spikes, exactly), the refusals are one line naming the population, and
library=None is unchanged (tests/test_nir.py).
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

nir = pytest.importorskip("nir")
h5py = pytest.importorskip("h5py")

from spikeport.backends.reference import run  # noqa: E402
from spikeport.errors import GraphError, SpikeportError  # noqa: E402
from spikeport.ir import Network, Population, Projection  # noqa: E402
from spikeport.ir.neurons import InputEncoding, NeuronModel  # noqa: E402
from spikeport.ir.nir import (ROCKPOOL_MAX_SPIKES, SINABS_MAX_SPIKES, NIRWarning, detect_library,  # noqa: E402
                               export_nir, import_nir)
from spikeport.ir.ops import Conv2d, Dense  # noqa: E402

DATA = Path(__file__).parent / "data" / "nir"
W = np.load(DATA / "mlp_weights.npz")
X = np.load(DATA / "snntorch_leaky_zero.npz")["x"]
STEPS = 25


def mlp(model="lif", syn=None, reset="zero", m=1, strict=False, gains=(0.15, 1.2), **kw):
    def nm(th):
        return NeuronModel(model=model, threshold=th, reset=reset, decay=1.0 if model == "if" else 0.9,
                           syn_decay=syn, max_spikes_per_step=m, strict_threshold=strict, **kw)
    return Network([Population("in", (64,), encoding=InputEncoding("analog")),
                    Population("hidden.1", (32,), neuron=nm(0.8)), Population("out", (10,), neuron=nm(1.0))],
                   [Projection("in->hidden", "in", "hidden.1", [Dense(W["w1"].astype(np.float64) * gains[0])]),
                    Projection("hidden->out", "hidden.1", "out", [Dense(W["w2"].astype(np.float64) * gains[1])])],
                   dt_s=1e-3, input="in", output="out", metadata={"note": "test"}).validate()


CASES = {  # library -> networks its importer takes
    "snntorch": [dict(model="lif"), dict(model="if", gains=(0.05, 0.5)), dict(model="lif", syn=0.8),
                 dict(model="if", syn=0.5, gains=(0.02, 0.2)), dict(model="lif", strict=True)],
    "norse": [dict(model="if", gains=(0.05, 0.5)), dict(model="lif"), dict(model="lif", syn=0.8),
              dict(model="lif", strict=True)],
    "sinabs": [dict(model="lif", reset="subtract", m=SINABS_MAX_SPIKES),
               dict(model="if", reset="subtract", m=SINABS_MAX_SPIKES, gains=(0.05, 0.5))],
    "rockpool": [dict(model="lif", syn=0.8, reset="subtract", m=ROCKPOOL_MAX_SPIKES),
                 dict(model="if", syn=0.5, reset="subtract", m=ROCKPOOL_MAX_SPIKES, gains=(0.02, 0.2))],
}


def trains(net):
    pops = [p.name for p in net.populations if not p.is_input]
    act = run(net, X, STEPS, record_trains=pops, device="cpu")
    return {p: np.asarray(act.spike_trains[p], np.int64) for p in pops}, act


def export(net, path, lib):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        export_nir(net, path, library=lib)
    notes = [str(w.message) for w in caught if issubclass(w.category, NIRWarning)]
    assert len(notes) == 1, notes
    return notes[0]


@pytest.mark.parametrize("lib, i", [(lib, i) for lib, cases in CASES.items() for i in range(len(cases))])
def test_preset_reimport_reproduces_spikes_exactly(tmp_path, lib, i):
    net = mlp(**CASES[lib][i])
    path = tmp_path / "net.nir"
    note = export(net, path, lib)
    assert note.startswith("NIR export for ")
    mine, act = trains(net)
    assert sum(int(t.sum()) for t in mine.values()) > 500  # the network is active
    for library in (lib, None):  # named, and detected from the graph metadata
        assert detect_library(path) == lib
        with pytest.warns(NIRWarning, match="importer reads it"):
            back = import_nir(path, library=library)
        assert [p.name for p in back.populations] == [p.name for p in net.populations]
        assert [p.neuron for p in back.populations] == [p.neuron for p in net.populations]
        assert back.metadata == net.metadata and back.dt_s == net.dt_s and back.output == "out"
        theirs, act2 = trains(back)
        for p in mine:
            assert np.array_equal(mine[p], theirs[p]), f"{lib} {p}: {int(np.abs(mine[p] - theirs[p]).sum())} differ"
        assert np.array_equal(act.output_counts, act2.output_counts)
        assert np.array_equal(act.predictions_index, act2.predictions_index)


def test_fixtures_reimported_by_spikeport_export_back(tmp_path):
    for stem, lib, reset in [("snntorch_leaky_zero", "snntorch", "zero"), ("norse_lif", "norse", None),
                             ("norse_iaf", "norse", None), ("sinabs_lif", "sinabs", None),
                             ("rockpool_liftorch", "rockpool", None)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NIRWarning)
            net = import_nir(DATA / f"{stem}.nir", library=lib, reset=reset)
            export_nir(net, tmp_path / f"{stem}.nir", library=lib)
            back = import_nir(tmp_path / f"{stem}.nir", library=lib)
        a, _ = trains(net)
        b, _ = trains(back)
        assert all(np.array_equal(a[p], b[p]) for p in a), stem


def node_fields(path):
    with h5py.File(path, "r") as f:
        return {n: {k: (g[k][()] if isinstance(g[k], h5py.Dataset) else None) for k in g.keys()}
                for n, g in f["node"]["nodes"].items()}


def test_what_each_library_gets(tmp_path):
    f32 = np.float32
    # snnTorch: LIF at its dt 1e-4: float32(1 - 1e-4/tau) is the decay, r = tau/1e-4; v > v_threshold
    export(mlp(model="lif"), tmp_path / "s.nir", "snntorch")
    n = node_fields(tmp_path / "s.nir")
    assert n["out"]["type"] == b"LIF" and n["out"]["tau"].dtype == np.float32 and n["out"]["tau"].shape == (10,)
    assert f32(1) - f32(1e-4) / n["out"]["tau"][0] == f32(0.9)
    assert np.allclose(n["out"]["r"] * 1e-4 / n["out"]["tau"], 1, rtol=1e-6)
    assert n["out"]["v_threshold"][0] == np.nextafter(f32(1.0), f32(0))  # v >= 1 is v > the float below
    assert n["hidden_1"]["type"] == b"LIF" and n["in__hidden_0"]["type"] == b"Linear"
    # snnTorch IF: a LIF whose float32 beta is exactly 1
    export(mlp(model="if"), tmp_path / "i.nir", "snntorch")
    tau = node_fields(tmp_path / "i.nir")["out"]["tau"][0]
    assert f32(1) - f32(1e-4) / tau == f32(1)
    # Norse: IF r = 1 (IAFCell ignores r and dt); LIF tau = 1e-3/(1 - decay), threshold k theta
    export(mlp(model="if"), tmp_path / "n.nir", "norse")
    n = node_fields(tmp_path / "n.nir")
    assert n["out"]["type"] == b"IF" and np.all(n["out"]["r"] == 1) and n["in__hidden_0"]["type"] == b"Affine"
    export(mlp(model="lif"), tmp_path / "n2.nir", "norse")
    n = node_fields(tmp_path / "n2.nir")
    k = f32(1e-3) * (f32(1) / n["out"]["tau"][0])
    assert abs((1 - float(k)) - 0.9) < 1e-6 and np.all(n["out"]["r"] == 1)
    assert n["out"]["v_threshold"][0] == pytest.approx(float(k) * 1.0, rel=1e-6)
    # sinabs: no v_reset (nir 1.0.4), tau in steps with float32 exp(-1/tau) = decay, no Input metadata
    export(mlp(model="lif", reset="subtract", m=SINABS_MAX_SPIKES), tmp_path / "b.nir", "sinabs")
    n = node_fields(tmp_path / "b.nir")
    assert "v_reset" not in n["out"] and "metadata" not in n["in"]
    assert np.float32(np.exp(np.float64(f32(-1) / n["out"]["tau"][0]))) == f32(0.9)
    # Rockpool: CubaLIF, dt = tau_mem / (1 + r) = the network's dt_s
    export(mlp(model="lif", syn=0.8, reset="subtract", m=ROCKPOOL_MAX_SPIKES), tmp_path / "r.nir", "rockpool")
    n = node_fields(tmp_path / "r.nir")
    assert n["out"]["type"] == b"CubaLIF"
    assert float(n["out"]["tau_mem"][0] / (1 + n["out"]["r"][0])) == pytest.approx(1e-3, rel=1e-6)
    assert n["out"]["v_threshold"][0] == pytest.approx(0.8, rel=1e-6)  # theta x exp(-dt/tau_syn) = 1.0 x 0.8


REFUSALS = [
    ("snntorch", dict(model="lif", reset="subtract"), "population 'hidden.1': reset by subtraction, which snnTorch"),
    ("snntorch", dict(model="lif", m=4), "population 'hidden.1': up to 4 spikes per step"),
    ("snntorch", dict(model="lif", refractory_steps=1), "population 'hidden.1': refractory_steps = 1"),
    ("snntorch", dict(model="lif", reset="subtract", reset_amount=0.9),
     "population 'hidden.1': a subtractive reset of 0.9"),
    ("snntorch", dict(model="lif", v_init=0.1), "population 'hidden.1': an initial membrane potential"),
    ("norse", dict(model="if", reset="subtract"), "population 'hidden.1': reset by subtraction, which Norse"),
    ("norse", dict(model="if", syn=0.5), "population 'hidden.1': an integrate-and-fire membrane with a synaptic"),
    ("sinabs", dict(model="lif", reset="subtract"), "population 'hidden.1': max_spikes_per_step = 1"),
    ("sinabs", dict(model="lif", reset="zero", m=SINABS_MAX_SPIKES), "population 'hidden.1': reset to zero"),
    ("sinabs", dict(model="lif", syn=0.5, reset="subtract", m=SINABS_MAX_SPIKES),
     "population 'hidden.1': a synaptic current"),
    ("sinabs", dict(model="lif", reset="subtract", m=SINABS_MAX_SPIKES, strict=True),
     "population 'hidden.1': the strict threshold test"),
    ("rockpool", dict(model="lif", reset="subtract", m=ROCKPOOL_MAX_SPIKES),
     "population 'hidden.1': a neuron without a synaptic current, which Rockpool"),
    ("rockpool", dict(model="lif", syn=0.8, reset="subtract", m=SINABS_MAX_SPIKES),
     "population 'hidden.1': max_spikes_per_step = 16777216"),
]


@pytest.mark.parametrize("lib, kw, msg", REFUSALS)
def test_refusals_are_one_line_naming_the_population(tmp_path, lib, kw, msg):
    with pytest.raises(GraphError) as exc:
        export_nir(mlp(**kw), tmp_path / "x.nir", library=lib)
    text = str(exc.value)
    assert text.startswith(msg) and "\n" not in text and "importer cannot take" in text
    assert not (tmp_path / "x.nir").exists()


def test_structure_refusals(tmp_path):
    net = mlp()
    bias = Network(net.populations[:1] + [Population("hidden.1", (32,), neuron=net.populations[1].neuron,
                                                     bias=np.full(32, 0.01))] + net.populations[2:],
                   net.projections, dt_s=1e-3, input="in", output="out").validate()
    with pytest.raises(GraphError, match="population 'hidden.1': a bias"):
        export_nir(bias, library="snntorch")
    delayed = Network(net.populations, [Projection("in->hidden", "in", "hidden.1", net.projections[0].ops,
                                                   delay_steps=2), net.projections[1]],
                      dt_s=1e-3, input="in", output="out").validate()
    with pytest.raises(GraphError, match="population 'hidden.1': its projection 'in->hidden' has a delay"):
        export_nir(delayed, library="norse")
    conv = Network([Population("in", (1, 4, 4), encoding=InputEncoding("analog")),
                    Population("c", (2, 3, 3), neuron=NeuronModel(model="lif", decay=0.9, reset="zero"))],
                   [Projection("in->c", "in", "c", [Conv2d(np.ones((2, 1, 2, 2)))])], dt_s=1e-3, input="in",
                   output="c").validate()
    with pytest.raises(GraphError, match="population 'c': its projection 'in->c' uses a conv2d op"):
        export_nir(conv, library="snntorch")
    with pytest.raises(SpikeportError, match="unknown NIR export library 'lava'"):
        export_nir(net, library="lava")


def test_rockpool_bias_rides_on_v_leak(tmp_path):
    net = mlp(model="lif", syn=0.8, reset="subtract", m=ROCKPOOL_MAX_SPIKES)
    pops = list(net.populations)
    pops[2] = Population("out", (10,), neuron=pops[2].neuron, bias=np.linspace(-0.05, 0.05, 10))
    net = Network(pops, net.projections, dt_s=1e-3, input="in", output="out").validate()
    export(net, tmp_path / "r.nir", "rockpool")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRWarning)
        back = import_nir(tmp_path / "r.nir", library="rockpool")
    assert np.array_equal(back.population("out").bias, net.population("out").bias)
    a, _ = trains(net)
    b, _ = trains(back)
    assert all(np.array_equal(a[p], b[p]) for p in a)


def test_library_exports_are_not_generic_and_wrong_preset_is_refused(tmp_path):
    path = tmp_path / "s.nir"
    export(mlp(), path, "snntorch")
    with pytest.raises(SpikeportError, match="exported by spikeport for snnTorch 1.0's importer, not Norse"):
        import_nir(path, library="norse")
    with pytest.raises(SpikeportError, match="states its reset"):
        import_nir(path, library="snntorch", reset="zero")
    with h5py.File(path, "r") as f:
        md = json.loads(f["node"]["metadata"]["spikeport"][()])
    assert md["format"] == "spikeport-nir-library" and md["library"] == "snntorch"


def test_edited_library_file_is_refused(tmp_path):
    path = tmp_path / "s.nir"
    export(mlp(), path, "snntorch")
    with h5py.File(path, "r+") as f:
        f["node"]["nodes"]["out"]["tau"][...] = f["node"]["nodes"]["out"]["tau"][()] * 2
    with pytest.raises(GraphError, match="node 'out' .*membrane decay .*disagrees with its spikeport metadata"):
        import_nir(path, library="snntorch")


def test_library_none_is_the_generic_export(tmp_path):
    net = mlp()
    with pytest.warns(NIRWarning, match="stored only as spikeport metadata"):
        a = export_nir(net, tmp_path / "a.nir")
    with pytest.warns(NIRWarning, match="stored only as spikeport metadata"):
        b = export_nir(net, tmp_path / "b.nir", library="nir")
    assert set(a.nodes) == set(b.nodes)
    with pytest.warns(NIRWarning):
        back = import_nir(tmp_path / "a.nir")
    assert [p.neuron for p in back.populations] == [p.neuron for p in net.populations]
