"""NIR import presets of snnTorch, Norse, sinabs and Rockpool, against the libraries' own spike trains.

tests/data/nir/<lib>_<neuron>.nir was written by the library's exporter, and the .npz beside it holds
the library's own simulation of that network on x for `steps` steps (docs/nir-libraries.md). Every
fixture must be reproduced exactly (spike counts per step) in float32 and float64.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

nir = pytest.importorskip("nir")

from spikeport.backends import common  # noqa: E402
from spikeport.backends.reference import run  # noqa: E402
from spikeport.errors import GraphError, SpikeportError  # noqa: E402
from spikeport.ir import Network, Population, Projection, load_network, save_network  # noqa: E402
from spikeport.ir.neurons import InputEncoding, NeuronModel  # noqa: E402
from spikeport.ir.nir import NIRWarning, detect_library, import_nir  # noqa: E402
from spikeport.ir.ops import Dense  # noqa: E402

DATA = Path(__file__).parent / "data" / "nir"
FIXTURES = sorted(p.stem for p in DATA.glob("*.nir"))


def fixture(stem):
    d = np.load(DATA / f"{stem}.npz")
    meta = json.loads(str(d["meta"]))
    reset = None
    if meta["library"] == "snntorch":  # not in the file: snnTorch's reset_mechanism
        (reset,) = {p.get("reset_mechanism", "subtract") for p in meta["params"]["layers"]}
    return d, meta, reset


def imported(stem, library, reset):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net = import_nir(DATA / f"{stem}.nir", library=library, reset=reset)
    notes = [w for w in caught if issubclass(w.category, NIRWarning)]
    assert len(notes) == 1, [str(w.message) for w in caught]
    return net, str(notes[0].message)


def test_every_library_has_fixtures():
    assert {s.split("_")[0] for s in FIXTURES} == {"snntorch", "norse", "sinabs", "rockpool"}
    assert len(FIXTURES) == 12


@pytest.mark.parametrize("stem", FIXTURES)
def test_detect_library(stem):
    _, meta, _ = fixture(stem)
    assert detect_library(DATA / f"{stem}.nir") == meta["library"]


@pytest.mark.parametrize("how", ["detected", "named"])
@pytest.mark.parametrize("stem", FIXTURES)
def test_preset_reproduces_library_spikes_exactly(stem, how):
    d, meta, reset = fixture(stem)
    lib = meta["library"]
    net, note = imported(stem, None if how == "detected" else lib, reset)
    assert note.startswith("NIR import as ")
    assert ("detected" in note) == (how == "detected")
    layers = meta["nir_nodes"]  # layer name -> NIR node name = spikeport population name
    assert set(layers.values()) <= {p.name for p in net.populations}
    assert net.output == layers[meta["output_layer"]]
    steps = int(d["steps"])
    for precision in ("float32", "float64"):
        act = run(net, d["x"], steps, record_trains=list(layers.values()), precision=precision, device="cpu",
                  record_counts=True)
        for layer, pop in layers.items():
            theirs = d[f"spikes_{layer}"].astype(np.int64)  # (steps, B, neurons)
            mine = act.spike_trains[pop].astype(np.int64).transpose(1, 0, 2)
            assert mine.shape == theirs.shape
            diff = int(np.abs(mine - theirs).sum())
            assert diff == 0, f"{stem} {precision} {layer}: {diff} spikes differ"
            # counts of several spikes per step flow into the statistics
            assert np.array_equal(act.population_spikes[pop], theirs.sum(axis=(0, 2)))
            assert np.array_equal(act.neuron_counts[pop], theirs.sum(axis=0))
        out = act.spike_trains[layers[meta["output_layer"]]].astype(np.int64).sum(axis=1)
        assert np.array_equal(out.argmax(axis=1), d["pred"])  # plain argmax, lowest index on ties


def test_presets_state_their_assumptions():
    _, note = imported("snntorch_leaky_subtract", None, None)
    assert "dt 1e-4 s" in note and "one step late" in note and "reset='zero'" in note and "v > v_threshold" in note
    _, note = imported("norse_lif", "norse", None)
    assert "k = dt^2/tau" in note and "jumps" in note and "v_leak" in note
    _, note = imported("sinabs_lif", "sinabs", None)
    assert "norm_input=True" in note and "MultiSpike" in note
    _, note = imported("rockpool_liftorch", "rockpool", None)
    assert "dt 0.001 s" in note and "StepPWL" in note


def test_preset_neuron_models():
    net, _ = imported("snntorch_leaky_subtract", "snntorch", None)
    nm = net.population("1").neuron
    assert nm.decay == float(np.float32(0.9)) and nm.strict_threshold and nm.reset == "subtract"
    assert nm.reset_amount == pytest.approx(nm.threshold / nm.decay, rel=1e-15)
    net, _ = imported("snntorch_leaky_if", "snntorch", None)
    assert net.population("1").neuron.model == "if" and net.population("1").neuron.reset_amount is None
    net, _ = imported("snntorch_synaptic_zero", "snntorch", "zero")
    assert net.population("1").neuron.refractory_steps == 1 and net.population("1").neuron.reset == "zero"
    net, _ = imported("sinabs_iaf", "sinabs", None)
    assert net.population("1").neuron.max_spikes_per_step > 1
    net, _ = imported("rockpool_liftorch", "rockpool", None)
    assert net.population("1_LIFTorch").neuron.max_spikes_per_step == 2**16
    assert net.population("input").shape == (64,)  # Rockpool's (1, 64) Input type squeezed


def test_dt_with_a_fixed_step_library_sets_only_the_network_dt():
    d, _, _ = fixture("snntorch_leaky_subtract")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRWarning)
        a = import_nir(DATA / "snntorch_leaky_subtract.nir", library="snntorch")
        b = import_nir(DATA / "snntorch_leaky_subtract.nir", 1e-3, library="snntorch")
    assert a.dt_s == 1e-4 and b.dt_s == 1e-3
    assert [p.neuron for p in a.populations] == [p.neuron for p in b.populations]


def test_generic_nir_still_needs_dt_and_is_unchanged():
    path = DATA / "snntorch_leaky_zero.nir"
    with pytest.raises(SpikeportError, match="generic NIR import needs dt"):
        import_nir(path, library="nir")
    with pytest.warns(NIRWarning, match="forward Euler"):
        net = import_nir(path, 1e-4, library="nir")
    assert not net.population("1").neuron.strict_threshold and net.population("1").neuron.reset == "zero"
    with pytest.raises(SpikeportError, match="reset applies to a library preset"):
        import_nir(path, 1e-4, library="nir", reset="zero")
    with pytest.raises(SpikeportError, match="unknown NIR library"):
        import_nir(path, library="lava")


def test_undetectable_graph_falls_back_to_generic_or_asks():
    n = 4
    graph = nir.NIRGraph(nodes={"in": nir.Input(input_type={"input": np.array([n])}),
                                "fc": nir.Linear(weight=np.eye(n)),
                                "neu": nir.IF(r=np.full(n, 1000.0), v_threshold=np.ones(n)),
                                "out": nir.Output(output_type={"output": np.array([n])})},
                         edges=[("in", "fc"), ("fc", "neu"), ("neu", "out")], type_check=False)
    assert detect_library(graph) is None
    with pytest.raises(SpikeportError, match="cannot tell which library"):
        import_nir(graph)
    with pytest.warns(NIRWarning, match="forward Euler"):
        net = import_nir(graph, 1e-3)
    assert net.population("neu").neuron == NeuronModel(model="if", reset="zero",
                                                       threshold=float(np.nextafter(1.0, np.inf)))


# ----------------------------------------------------------------------------- the new NeuronModel fields

def tiny(neuron, n=3):
    return Network([Population("in", (n,), encoding=InputEncoding("analog")),
                    Population("out", (n,), neuron=neuron)],
                   [Projection("in->out", "in", "out", [Dense(np.eye(n))])], dt_s=1e-3, input="in",
                   output="out").validate()


def test_multi_spike_and_reset_amount_semantics():
    x = np.array([[0.25, 0.7, 1.0]], np.float32)
    nm = NeuronModel(threshold=0.3, max_spikes_per_step=2)
    for precision in ("float32", "float64"):
        act = run(tiny(nm), x, 4, record_trains=["out"], precision=precision, device="cpu")
        tr = act.spike_trains["out"][0]
        # neuron 1: v 0.7 -> 2 spikes, v 0.1; 0.8 -> 2, 0.2; 0.9 -> 3 capped at 2, 0.3; 1.0 -> 2 (capped), 0.4
        assert tr[:, 1].tolist() == [2, 2, 2, 2] and tr[:, 2].tolist() == [2, 2, 2, 2]
        assert tr[:, 0].tolist() == [0, 1, 1, 1]  # v 0.25, 0.5 s -> 0.2, 0.45 s -> 0.15, 0.4 s
        assert act.population_spikes["out"][0] == tr.sum()
        assert act.synops["out"][0] == 3 * 4  # the analog input: one event per synapse per step
    # reset_amount: subtract 0.5 instead of theta 0.3
    act = run(tiny(NeuronModel(threshold=0.3, reset_amount=0.5)), np.array([[0.4, 0, 0]], np.float32), 5,
              record_trains=["out"], precision="float64", device="cpu")
    # v: 0.4 s -> -0.1; 0.3 s -> -0.2; 0.2; 0.6 s -> 0.1; 0.5 s
    assert act.spike_trains["out"][0, :, 0].tolist() == [True, True, False, True, True]
    # strict: v == theta does not fire
    act = run(tiny(NeuronModel(threshold=0.5, strict_threshold=True)), np.array([[0.5, 0.25, 0]], np.float32), 3,
              record_trains=["out"], device="cpu")
    assert act.spike_trains["out"][0, :, 0].tolist() == [False, True, True]  # v 0.5 (not > 0.5), 1.0 s, 1.0 s
    assert act.spike_trains["out"][0, :, 1].tolist() == [False, False, True]


@pytest.mark.parametrize("kw, pattern", [
    (dict(reset_amount=0.0), "population 'out': reset_amount must be > 0"),
    (dict(reset_amount=float("nan")), "population 'out': reset_amount must be finite"),
    (dict(reset="zero", reset_amount=1.0), "reset_amount applies to reset 'subtract' only"),
    (dict(max_spikes_per_step=0), "max_spikes_per_step must be an integer in"),
    (dict(max_spikes_per_step=2.0), "max_spikes_per_step must be an integer in"),
    (dict(strict_threshold=1), "strict_threshold must be true or false"),
])
def test_new_fields_validated(kw, pattern):
    with pytest.raises(GraphError, match=pattern) as exc:
        tiny(NeuronModel(**kw))
    assert "\n" not in str(exc.value)


def test_new_fields_round_trip_through_the_graph_file(tmp_path):
    nm = NeuronModel(model="lif", decay=0.9, threshold=0.8, reset_amount=0.8 / 0.9, max_spikes_per_step=7,
                     strict_threshold=True)
    save_network(tiny(nm), tmp_path / "a.spk")
    assert load_network(tmp_path / "a.spk").population("out").neuron == nm
    import zipfile
    with zipfile.ZipFile(tmp_path / "a.spk") as z:
        assert json.loads(z.read("spikeport.json"))["version"] == 2
    # a plain network is still written as version 1, without the new fields, and loads as before
    save_network(tiny(NeuronModel()), tmp_path / "b.spk")
    with zipfile.ZipFile(tmp_path / "b.spk") as z:
        header = json.loads(z.read("spikeport.json"))
    assert header["version"] == 1
    assert set(header["network"]["populations"][1]["neuron"]) == {
        "model", "threshold", "reset", "decay", "syn_decay", "refractory_steps", "v_init"}
    assert load_network(tmp_path / "b.spk").population("out").neuron == NeuronModel()


def test_version_1_files_load_and_refuse_the_new_fields(tmp_path):
    import zipfile

    save_network(tiny(NeuronModel(threshold=0.3)), tmp_path / "v1.spk")
    assert load_network(tmp_path / "v1.spk").population("out").neuron == NeuronModel(threshold=0.3)
    # a version-1 header that claims a version-2 field is corrupt
    with zipfile.ZipFile(tmp_path / "v1.spk") as z:
        members = {n: z.read(n) for n in z.namelist()}
    header = json.loads(members["spikeport.json"])
    header["network"]["populations"][1]["neuron"]["max_spikes_per_step"] = 2
    members["spikeport.json"] = json.dumps(header).encode()
    with zipfile.ZipFile(tmp_path / "bad.spk", "w", zipfile.ZIP_STORED) as z:
        for n, b in members.items():
            z.writestr(n, b)
    with pytest.raises(SpikeportError, match="unknown field") as exc:
        load_network(tmp_path / "bad.spk")
    assert "\n" not in str(exc.value)


def test_new_fields_survive_nir_export(tmp_path):
    from spikeport.ir.nir import export_nir

    net = tiny(NeuronModel(threshold=0.3, reset_amount=0.5, max_spikes_per_step=3, strict_threshold=True))
    with pytest.warns(NIRWarning, match="reset_amount.*max_spikes_per_step.*strict_threshold"):
        graph = export_nir(net)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NIRWarning)
        back = import_nir(graph, net.dt_s)
    assert back.population("out").neuron == net.population("out").neuron


@pytest.mark.parametrize("nm, what", [
    (NeuronModel(threshold=0.3, max_spikes_per_step=4), "up to 4 spikes per step"),
    (NeuronModel(threshold=0.3, reset_amount=0.5), "a subtractive reset of 0.5 instead of theta 0.3"),
    (NeuronModel(threshold=0.3, strict_threshold=True), "v > theta"),
])
@pytest.mark.parametrize("backend", ["PyNN", "nengo-loihi"])
def test_backends_refuse_what_they_cannot_realize(nm, what, backend):
    with pytest.raises(SpikeportError) as exc:
        common.require_simulable(tiny(nm), backend)
    msg = str(exc.value)
    assert "\n" not in msg and "population 'out'" in msg and what in msg and backend in msg


def test_brian_supports_reset_amount_and_strict_but_refuses_multi_spike():
    supports = ("reset_amount", "strict_threshold")
    common.require_simulable(tiny(NeuronModel(threshold=0.3, reset_amount=0.5, strict_threshold=True)), "brian2",
                             supports)
    with pytest.raises(SpikeportError, match="brian2 backend cannot simulate population 'out'.*spikes per step"):
        common.require_simulable(tiny(NeuronModel(threshold=0.3, max_spikes_per_step=2)), "brian2", supports)


def test_pynn_lowering_refuses_multi_spike():
    from spikeport.backends.pynn_lowering import Lowering, StandardCells

    with pytest.raises(SpikeportError, match="PyNN backend cannot simulate population 'out'"):
        Lowering(tiny(NeuronModel(threshold=0.3, max_spikes_per_step=2)), StandardCells())


def test_deploy_check_refuses_multi_spike_layers():
    from spikeport import hardware_profiles
    from spikeport.deploy.check import check, require_fit

    profile = hardware_profiles.load("loihi")
    net = tiny(NeuronModel(threshold=0.3, max_spikes_per_step=5))
    with pytest.raises(SpikeportError, match="out: spikes per neuron per step 5 exceeds the limit 1") as exc:
        require_fit(check(net, profile), profile)
    assert "\n" not in str(exc.value)
    assert not any(v.what == "spikes per neuron per step" for v in check(tiny(NeuronModel()), profile))
