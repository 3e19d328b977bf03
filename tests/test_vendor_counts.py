"""One source of truth for counts (issue 21): on SpiNNaker the manifest's cores and chips and the
energy estimate are those of sPyNNaker's own placements (spinnaker/placements.json), mapped once;
where sPyNNaker cannot be imported, spikeport's partitioner's, labelled so."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from spikeport import hardware_profiles
from spikeport.deploy import pipeline
from spikeport.deploy.pipeline import PARTITIONER, SPYNNAKER, deploy, power
from spikeport.errors import SpikeportError
from spikeport.ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

NM = NeuronModel("if", threshold=1.0, reset="subtract")


def spinnaker_profile(neurons_per_core: int = 256, delay_steps_max: int | None = None):
    """The shipped SpiNNaker profile with core.neurons = ``neurons_per_core`` (so that a small network
    takes many cores: the partition hands that limit to sPyNNaker per population) and, if given,
    precision.delay_steps_max (the shipped 32 is what a core holds without a delay extension)."""
    data = tomllib.loads(Path(hardware_profiles.HERE, "spinnaker.toml").read_text())
    data["core"]["neurons"]["value"] = neurons_per_core
    if delay_steps_max is not None:
        data["precision"]["delay_steps_max"]["value"] = delay_steps_max
    return hardware_profiles.parse(data, f"spinnaker-{neurons_per_core}.toml")


def mlp(hidden: int, out: int = 4, inputs: int = 8, delay: int = 0, seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    pops = [Population("input", (inputs,), encoding=InputEncoding("poisson", 400.0)),
            Population("h", (hidden,), neuron=NM), Population("out", (out,), neuron=NM)]
    projs = [Projection("input->h", "input", "h", [Dense(rng.normal(0, .5, (hidden, inputs)).astype(np.float32))]),
             Projection("h->out", "h", "out", [Dense(rng.normal(0, .5, (out, hidden)).astype(np.float32))],
                        delay_steps=delay)]
    return Network(pops, projs, input="input", output="out").validate()


def samples(net: Network, n: int = 4, seed: int = 1):
    x = np.random.default_rng(seed).random((n, net.population("input").size)).astype(np.float32)
    return x, np.arange(n) % net.population("out").size


def placed_counts(placements: dict) -> tuple:
    """(chips, cores, {population: cores}) straight from placements.json: distinct (x, y) and (x, y, p) of
    the application cores, a delay extension's cores with the population it serves."""
    per_pop, used = {}, set()
    for name, entry in placements["populations"].items():
        cores = {(c["x"], c["y"], c["p"]) for c in entry["placements"]}
        per_pop[name] = len(cores)
        used |= cores
    for name, entry in placements["other"].items():
        if name != "system":
            cores = {(c["x"], c["y"], c["p"]) for c in entry["placements"]}
            per_pop[entry["serves"]] += len(cores)
            used |= cores
    return len({c[:2] for c in used}), len(used), per_pop


@pytest.fixture
def mapped_once(monkeypatch):
    """Counts the calls of sPyNNaker's mapping (spinnaker.placements), which still runs."""
    spinnaker = pytest.importorskip("spikeport.backends.spinnaker")
    calls = []
    real = spinnaker.placements

    def counting(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(spinnaker, "placements", counting)
    return calls


def test_manifest_and_energy_count_spynnakers_chips_where_the_partitioner_counts_fewer(tmp_path, mapped_once):
    # 16 cores (input 1, h 56 / 4 = 14, out 1): the partitioner packs them on one chip of 16; sPyNNaker's
    # Ethernet chip keeps a core for its packet gatherer, so its placements span two chips
    net, prof = mlp(56), spinnaker_profile(4)
    dep = deploy(net, prof, data=samples(net), samples=4, steps=10, out=tmp_path / "d")
    assert len(mapped_once) == 1  # the counts and the emitted placements.json are one mapping
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    placements = json.loads((tmp_path / "d" / "spinnaker" / "placements.json").read_text())
    chips, cores, per_pop = placed_counts(placements)
    assert (chips, cores, per_pop) == (2, 16, {"input": 1, "h": 14, "out": 1})
    assert m["counts_source"] == SPYNNAKER == m["energy"]["counts_source"]
    assert (m["chips"], m["cores"]) == (chips, cores) == (m["energy"]["chips"], m["energy"]["cores"])
    assert {lay["name"]: lay["cores"] for lay in m["layers"]} == per_pop
    assert {lay["name"]: lay["cores"] for lay in m["energy"]["layers"]} == per_pop
    assert (m["partition"]["chips"], m["partition"]["cores"]) == (1, 16)  # spikeport's own count, kept
    said = [w for w in m["warnings"] if "sPyNNaker placed" in w]
    assert len(said) == 1 and "16 cores on 2 chip(s)" in said[0] and "16 cores on 1 chip(s)" in said[0]
    assert dep.manifest()["chips"] == 2

    # power prices the same counts
    p = power(net, [prof], data=samples(net), samples=4, steps=10)["targets"][prof.name]
    assert (p["chips"], p["cores"], p["counts_source"]) == (2, 16, SPYNNAKER)
    assert any("sPyNNaker placed" in w for w in p["warnings"])


def test_a_delay_extension_counts_with_the_population_it_serves(tmp_path, mapped_once):
    # out (200 neurons on a core) holds 2**(14 - 8 - 1) = 32 steps of delay: 40 steps need a delay
    # extension of h, one core, counted with h in the energy and as its own row in the manifest
    net = mlp(200, out=200, inputs=16, delay=40)
    deploy(net, spinnaker_profile(delay_steps_max=256), data=samples(net), samples=4, steps=10, out=tmp_path / "d")
    assert len(mapped_once) == 1
    m = json.loads((tmp_path / "d" / "manifest.json").read_text())
    placements = json.loads((tmp_path / "d" / "spinnaker" / "placements.json").read_text())
    assert placements["other"]["h_delayed"]["serves"] == "h"
    chips, cores, per_pop = placed_counts(placements)
    assert per_pop == {"input": 1, "h": 2, "out": 1} and (chips, cores) == (1, 4)
    assert (m["chips"], m["cores"], m["counts_source"]) == (chips, cores, SPYNNAKER)
    assert {lay["name"]: lay["cores"] for lay in m["layers"]} == {"input": 1, "h": 1, "out": 1, "h_delayed": 1}
    assert {lay["name"]: lay["cores"] for lay in m["energy"]["layers"]} == per_pop
    assert (m["energy"]["chips"], m["energy"]["cores"]) == (chips, cores)
    assert not [w for w in m["warnings"] if "sPyNNaker placed" in w]  # here the partitioner agrees


def test_without_spynnaker_the_partitioners_counts_are_used_and_labelled(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyNN.spiNNaker", None)  # as if sPyNNaker were not installed
    monkeypatch.delitem(sys.modules, "spikeport.backends.spinnaker", raising=False)
    assert isinstance(pipeline._spinnaker_backend(), ImportError)
    net, prof = mlp(56), spinnaker_profile(4)
    m = deploy(net, prof, data=samples(net), samples=4, steps=10).manifest()
    assert m["counts_source"].startswith(f"{PARTITIONER} (sPyNNaker is not installed: ")
    assert m["energy"]["counts_source"] == m["counts_source"]
    assert (m["chips"], m["cores"]) == (m["partition"]["chips"], m["partition"]["cores"]) == (1, 16)
    assert (m["energy"]["chips"], m["energy"]["cores"]) == (1, 16)
    assert not [w for w in m["warnings"] if "sPyNNaker placed" in w]
    p = power(net, [prof], data=samples(net), samples=4, steps=10)["targets"][prof.name]
    assert (p["chips"], p["cores"], p["counts_source"]) == (1, 16, m["counts_source"])
    # the artifacts need sPyNNaker: one line, before anything is measured or written
    with pytest.raises(SpikeportError, match=r"pip install 'spikeport\[spinnaker\]'") as err:
        deploy(net, prof, data=samples(net), samples=4, steps=10, out=tmp_path / "d")
    assert "\n" not in str(err.value) and not (tmp_path / "d").exists()


def test_targets_without_a_vendor_mapper_here_use_the_partitioner():
    net = mlp(56)
    m = deploy(net, "loihi", data=samples(net), samples=4, steps=10).manifest()
    assert m["counts_source"] == PARTITIONER == m["energy"]["counts_source"]
    assert (m["chips"], m["cores"]) == (m["partition"]["chips"], m["partition"]["cores"])
    assert [lay["cores"] for lay in m["layers"]] == [lay["cores"] for lay in m["partition"]["layers"]]
