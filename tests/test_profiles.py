"""Hardware profiles: the nine shipped TOML files, the loader's faults, and the numbers that matter.

Where the tool a figure was read from is installed (nengo-loihi, sPyNNaker, SpiNNMachine), the
profile is checked against that tool's own constants and functions, so a wrong transcription
fails here.
"""
import math
from pathlib import Path

import numpy as np
import pytest

from spikeport import hardware_profiles as hp
from spikeport.errors import SpikeportError
from spikeport.hardware_profiles import ProfileError

SHIPPED = ["cpu", "gpu", "loihi", "loihi2", "speck", "spinnaker", "spinnaker2", "truenorth", "xylo"]

# A small valid user profile; the fault cases below edit one line of it.
VALID = """\
name = "mine"
title = "My chip"
kind = "neuromorphic"
quantization = "per-layer"
backend = ""

[time]
dt_s = { value = 0.001, source = "assumed: test" }

[core]
neurons = { value = 100, source = "doc: my datasheet" }
synapse_entry_bits = { value = 0, source = "doc: my datasheet" }

[chip]
cores = { value = 4, source = "doc: my datasheet" }

[precision]
weight_bits = { value = 6, source = "doc: my datasheet" }
state_bits = { unknown = "not in the datasheet" }

[energy]
synop_j = { value = 1e-12, source = "measured: my bench" }
neuron_update_j = { unknown = "not measured" }
spike_j = { unknown = "not measured" }
static_core_w = { unknown = "not measured" }
static_chip_w = { value = 0.01, source = "measured: my bench" }
"""


def write(tmp_path, text, name="mine.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def fault(tmp_path, text, name="mine.toml"):
    with pytest.raises(ProfileError) as info:
        hp.load(write(tmp_path, text, name))
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert name in msg, msg
    return msg


# --- the shipped profiles -----------------------------------------------------------------

def test_names_lists_exactly_the_nine_shipped_profiles():
    assert hp.names() == sorted(SHIPPED)
    assert sorted(p.stem for p in Path(hp.HERE).glob("*.toml")) == sorted(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_with_its_own_name(name):
    prof = hp.load(name)
    assert prof.name == name and prof.path == f"{name}.toml"
    assert prof.title.strip() and prof.kind in hp.KINDS and prof.quantization in hp.QUANTIZATIONS
    required = hp.REQUIRED + (hp.REQUIRED_NEUROMORPHIC if prof.neuromorphic else hp.REQUIRED_CONVENTIONAL)
    assert set(required) <= set(prof.quantities)
    assert prof.value("time.dt_s") > 0


def test_load_all_returns_every_shipped_profile_with_both_kinds():
    profiles = hp.load_all()
    assert [p.name for p in profiles] == sorted(SHIPPED)
    kinds = {p.name: p.kind for p in profiles}
    assert {k for k, v in kinds.items() if v == "conventional"} == {"cpu", "gpu"}
    assert {k for k, v in kinds.items() if v == "neuromorphic"} == set(SHIPPED) - {"cpu", "gpu"}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_known_quantity_has_a_source_of_a_valid_kind_and_every_unknown_a_reason(name):
    prof = hp.load(name)
    for key, q in prof.quantities.items():
        table, _, field = key.partition(".")
        assert field in hp.SCHEMA[table], key
        if q.known:
            kind, _, where = q.source.partition(":")
            assert kind in hp.SOURCE_KINDS, (key, q.source)
            assert len(where.strip()) >= 10, (key, q.source)  # names a file, constant, paper or assumption
            # the reports print the sources: none may point at a file outside the project a user does not have
            assert "../" not in q.source and "shared/notes" not in q.source, (key, q.source)
            assert q.unknown is None
        else:
            assert q.value is None and q.source is None and len(q.unknown) >= 10, (key, q.unknown)


def test_strings_backends_and_mappers_of_the_shipped_profiles():
    got = {p.name: (p.quantization, p.backend, p.mapper) for p in hp.load_all()}
    assert got == {
        "cpu": ("none", "reference", ""), "gpu": ("none", "reference", ""),
        "loihi": ("loihi", "nengo-loihi", ""), "loihi2": ("per-layer", "", ""),
        "speck": ("per-layer", "", "speck"), "spinnaker": ("spinnaker", "spinnaker", ""),
        "spinnaker2": ("per-layer", "", ""), "truenorth": ("per-layer", "", ""),
        "xylo": ("per-layer", "", "xylo")}


def test_unknowns_are_reported_and_absent_keys_are_none():
    loihi2 = hp.load("loihi2")
    unknown = dict(loihi2.unknowns())
    assert {"energy.synop_j", "energy.neuron_update_j", "energy.spike_j"} <= set(unknown)
    assert loihi2.is_unknown("energy.synop_j") and loihi2.value("energy.synop_j") is None
    truenorth = hp.load("truenorth")
    assert truenorth.quantity("core.kernel_max") is None and not truenorth.is_unknown("core.kernel_max")
    with pytest.raises(KeyError):
        truenorth.value("core.wings")


# --- user profiles and faults ---------------------------------------------------------------

def test_a_user_profile_loads_from_a_path(tmp_path):
    path = write(tmp_path, VALID)
    prof = hp.load(path)
    assert prof.name == "mine" and prof.path == str(path) and prof.neuromorphic
    assert prof.value("core.neurons") == 100 and isinstance(prof.value("core.neurons"), int)
    assert prof.value("core.synapse_entry_bits") == 0
    assert prof.value("energy.synop_j") == 1e-12 and isinstance(prof.value("energy.synop_j"), float)
    assert prof.quantity("time.dt_s").source == "assumed: test"
    assert prof.is_unknown("precision.state_bits")
    assert prof.to_dict()["quantities"]["precision.state_bits"] == {"unknown": "not in the datasheet"}
    assert hp.load(str(path)).quantities == prof.quantities


def test_profile_error_is_a_spikeport_error():
    assert issubclass(ProfileError, SpikeportError)


def _replace(old, new):
    assert old in VALID, old
    return VALID.replace(old, new)


FAULTS = [
    # (what, the edited profile, the key the message must name)
    ("missing source", _replace('{ value = 100, source = "doc: my datasheet" }', "{ value = 100 }"), "core.neurons"),
    ("string for an int", _replace("value = 100,", 'value = "many",'), "core.neurons"),
    ("float for an int", _replace("value = 100,", "value = 100.5,"), "core.neurons"),
    ("bool for an int", _replace("value = 100,", "value = true,"), "core.neurons"),
    ("zero for a positive int", _replace("value = 4,", "value = 0,"), "chip.cores"),
    ("negative for an int >= 0", _replace("value = 0,", "value = -1,"), "core.synapse_entry_bits"),
    ("negative energy", _replace("value = 1e-12,", "value = -1e-12,"), "energy.synop_j"),
    ("not a finite number", _replace("value = 0.01,", "value = inf,"), "energy.static_chip_w"),
    ("not an inline table", _replace('cores = { value = 4, source = "doc: my datasheet" }', "cores = 4"),
     "chip.cores"),
    ("source of no known kind", _replace('"measured: my bench" }\nneuron', '"guess: my bench" }\nneuron'),
     "energy.synop_j"),
    ("source without a place", _replace('source = "assumed: test"', 'source = "assumed:   "'), "time.dt_s"),
    ("unknown with a value", _replace('{ unknown = "not measured" }\nspike', '{ unknown = "x", value = 1 }\nspike'),
     "energy.neuron_update_j"),
    ("extra field", _replace('source = "doc: my datasheet" }\nsynapse', 'source = "doc: x", note = "y" }\nsynapse'),
     "core.neurons"),
    ("unknown key", _replace("[chip]\n", '[chip]\nwings = { value = 2, source = "doc: x" }\n'), "chip.wings"),
    ("unknown table", VALID + '\n[wings]\nspan = { value = 2, source = "doc: x" }\n', "wings"),
    ("missing required key", _replace('static_chip_w = { value = 0.01, source = "measured: my bench" }\n', ""),
     "energy.static_chip_w"),
    ("missing required neuromorphic key", _replace('weight_bits = { value = 6, source = "doc: my datasheet" }\n', ""),
     "precision.weight_bits"),
    ("unknown time step", _replace('dt_s = { value = 0.001, source = "assumed: test" }',
                                   'dt_s = { unknown = "nobody says" }'), "time.dt_s"),
    ("unknown neurons per core", _replace('neurons = { value = 100, source = "doc: my datasheet" }',
                                          'neurons = { unknown = "nobody says" }'), "core.neurons"),
    ("per-layer without state bits", _replace('state_bits = { unknown = "not in the datasheet" }\n', ""),
     "precision.state_bits"),
    ("conventional without mac_j", _replace('kind = "neuromorphic"', 'kind = "conventional"'), "energy.mac_j"),
    ("bad kind", _replace('kind = "neuromorphic"', 'kind = "quantum"'), "kind"),
    ("bad quantization", _replace('quantization = "per-layer"', 'quantization = "fuzzy"'), "quantization"),
    ("bad mapper", VALID.replace('backend = ""', 'backend = ""\nmapper = "akida"'), "mapper"),
    ("empty title", _replace('title = "My chip"', 'title = "  "'), "title"),
    ("empty list", _replace("[core]\n", '[core]\nstrides = { value = [], source = "doc: x" }\n'), "core.strides"),
    ("list of non-integers", _replace("[core]\n", '[core]\nstrides = { value = [1, 2.5], source = "doc: x" }\n'),
     "core.strides"),
]


@pytest.mark.parametrize("text,key", [(t, k) for _, t, k in FAULTS], ids=[w for w, _, _ in FAULTS])
def test_a_faulty_profile_is_one_line_naming_the_file_and_the_key(tmp_path, text, key):
    msg = fault(tmp_path, text)
    assert key in msg, msg


def test_not_valid_toml_names_the_file(tmp_path):
    msg = fault(tmp_path, VALID.replace("[chip]", "[chip"))
    assert "not valid TOML" in msg and "line" in msg, msg


def test_an_unknown_target_name_lists_the_shipped_ones():
    with pytest.raises(ProfileError) as info:
        hp.load("loihi3")
    msg = str(info.value)
    assert "'loihi3'" in msg and all(n in msg for n in SHIPPED) and "\n" not in msg


def test_a_missing_profile_file_is_named(tmp_path):
    with pytest.raises(ProfileError, match="nope.toml: no such profile file"):
        hp.load(tmp_path / "nope.toml")


def test_int0_accepts_zero_and_int_does_not():
    base = {"name": "x", "title": "X", "kind": "neuromorphic", "quantization": "none",
            "time": {"dt_s": {"value": 1e-3, "source": "assumed: t"}},
            "core": {"neurons": {"value": 8, "source": "doc: d"}, "synapse_entry_bits": {"value": 0, "source": "doc: d"}},
            "chip": {"cores": {"value": 1, "source": "doc: d"}}, "precision": {"weight_bits": {"value": 8, "source": "doc: d"}},
            "energy": {k: {"unknown": "not measured"} for k in ("synop_j", "neuron_update_j", "spike_j",
                                                                 "static_core_w", "static_chip_w")}}
    assert hp.parse(base, "x.toml").value("core.synapse_entry_bits") == 0
    base["core"]["synapse_block"] = {"value": 0, "source": "doc: d"}
    with pytest.raises(ProfileError, match=r"x.toml: core.synapse_block: value must be a positive integer"):
        hp.parse(base, "x.toml")


# --- the numbers, checked against the tools they were read from -------------------------------

def test_loihi_limits_match_nengo_loihi():
    block = pytest.importorskip("nengo_loihi.block")
    from nengo_loihi.builder import discretize, validate
    from nengo_loihi.hardware.allocators import Greedy

    p = hp.load("loihi")
    assert p.value("core.neurons") == block.MAX_COMPARTMENTS == 1024
    assert p.value("core.input_axons") == block.MAX_IN_AXONS == 4096
    assert p.value("core.output_axons") == block.MAX_OUT_AXONS == 4096
    assert p.value("core.synapse_memory_bits") == block.MAX_SYNAPSE_BITS == 16384 * 64
    assert 2 ** p.value("precision.threshold_bits") - 1 == discretize.VTH_MAN_MAX
    assert p.value("precision.state_bits") == discretize.U_BITS + 1  # 23 bits plus sign
    assert p.value("chip.cores") == 128
    Greedy(cores_per_chip=p.value("chip.cores"))
    with pytest.raises(ValueError):
        Greedy(cores_per_chip=p.value("chip.cores") + 1)
    # 8-bit signed weights: nengo-loihi's weight format (weight_bits=7 -> 8 bits, mixed sign)
    cfg = block.SynapseConfig(weight_bits=7, fanout_type=1)
    assert cfg.real_weight_bits == p.value("precision.weight_bits")
    assert 2 ** (8 - cfg.shift_bits) - 1 == 2 ** (p.value("precision.weight_bits") - 1) - 1
    # the shared weight exponent: -7..7 passes nengo-loihi's check, -8 and 8 do not
    lo, hi = -int(p.value("precision.weight_exponent_min")), int(p.value("precision.weight_exponent_max"))
    for exp in (lo, hi):
        validate.validate_synapse_cfg(block.SynapseConfig(weight_bits=7, fanout_type=1, weight_exp=exp))
    for exp in (lo - 1, hi + 1):
        with pytest.raises(AssertionError):
            validate.validate_synapse_cfg(block.SynapseConfig(weight_bits=7, fanout_type=1, weight_exp=exp))


@pytest.mark.parametrize("n_axons,n_post", [(1, 1), (3, 10), (2, 64), (2, 65), (5, 300), (1, 1024)])
def test_loihi_synapse_memory_keys_reproduce_nengo_loihi_bit_count(n_axons, n_post):
    block = pytest.importorskip("nengo_loihi.block")
    p = hp.load("loihi")
    per_synapse = p.value("precision.weight_bits") + p.value("core.synapse_entry_bits")
    size, word = p.value("core.synapse_block"), p.value("core.synapse_word_bits")
    overhead = p.value("core.synapse_overhead_bits")
    ours = 0
    for _ in range(n_axons):
        for start in range(0, n_post, size):
            n = min(size, n_post - start)
            ours += word * math.ceil((n * per_synapse + overhead) / word)
    syn = block.Synapse(n_axons)
    syn.set_weights(np.ones((n_axons, n_post), np.float32))
    assert ours == syn.bits()


def test_spinnaker_figures_match_spynnaker_and_spinnmachine():
    constants = pytest.importorskip("spynnaker.pyNN.utilities.constants")
    from spinn_machine.version.version_spin1 import VersionSpin1
    from spinn_machine.version.version_spin2 import VersionSpin2  # noqa: F401 (the module the 152 comes from)
    from spynnaker.pyNN.models.neuron.abstract_pynn_neuron_model import DEFAULT_MAX_ATOMS_PER_CORE
    from spynnaker.pyNN.utilities.utility_calls import get_n_bits

    p = hp.load("spinnaker")
    assert p.value("core.neurons") == DEFAULT_MAX_ATOMS_PER_CORE == 256
    # native delay slots of a full core of a 2-synapse-type model (population_vertex.__update_max_delay)
    native = 2 ** (constants.MAX_RING_BUFFER_BITS - get_n_bits(p.value("core.neurons")) - get_n_bits(2))
    assert p.value("precision.delay_steps_max") == native == 32
    assert p.value("energy.static_chip_w") == VersionSpin1.WATTS_PER_IDLE_CHIP == 0.35
    assert p.value("energy.static_core_w") == VersionSpin1.WATTS_PER_CORE_ACTIVE_OVERHEAD
    assert math.isclose(p.value("energy.spike_j"), VersionSpin1.JOULES_PER_PACKET, rel_tol=1e-12)
    assert p.value("precision.weight_bits") == 16  # the unsigned magnitude; the synapse type carries the sign


def test_spot_checks_of_values_used_downstream():
    v = {p.name: p for p in hp.load_all()}
    tn, xy, sp, sn = v["truenorth"], v["xylo"], v["speck"], v["spinnaker"]
    assert (tn.value("core.neurons"), tn.value("core.input_axons"), tn.value("core.fan_in")) == (256, 256, 256)
    assert tn.value("chip.cores") == 4096 and tn.value("precision.weight_values_max") == 4
    assert tn.value("precision.delay_steps_max") == 15
    assert (xy.value("chip.neurons"), xy.value("chip.inputs"), xy.value("chip.outputs")) == (1000, 16, 8)
    assert xy.value("core.neurons") == 1000 and xy.value("chip.cores") == 1 and xy.value("core.fan_out") == 64
    assert xy.value("precision.weight_bits") == 8 and xy.value("precision.state_bits") == 16
    # Speck: one memory size per core, the cores differ, and the chip's neurons are their sum
    assert len(sp.value("core.weight_words")) == len(sp.value("core.neuron_words")) == sp.value("chip.cores") == 9
    assert sp.value("chip.neurons") == sum(sp.value("core.neuron_words")) == 327680
    assert sp.value("core.neurons") == max(sp.value("core.neuron_words"))
    assert sp.value("core.strides") == [1, 2, 4, 8] and sp.value("core.kernel_max") == 16
    assert (sp.value("precision.weight_bits"), sp.value("precision.state_bits")) == (8, 16)
    assert sn.value("chip.cores") == 16 and sn.value("chip.chips_max") == 48
    assert v["spinnaker2"].value("chip.cores") == 152 and v["loihi2"].value("chip.cores") == 128
    for name in SHIPPED:  # SI units: time steps between 0.1 ms and 10 ms, energies per op below 100 nJ
        assert 1e-4 < v[name].value("time.dt_s") < 1e-2, name
        for key in ("energy.synop_j", "energy.neuron_update_j", "energy.spike_j", "energy.mac_j"):
            e = v[name].value(key)
            assert e is None or 0 < e < 1e-7, (name, key, e)


def test_conventional_baselines():
    cpu, gpu = hp.load("cpu"), hp.load("gpu")
    for p, per_op, idle, per_s in ((cpu, 8.6e-9, 17.01, 1814), (gpu, 0.3e-9, 14.97, 770)):
        assert not p.neuromorphic and p.backend == "reference" and p.quantization == "none"
        assert p.value("energy.mac_j") == p.value("energy.synop_j") == p.value("energy.neuron_update_j") == per_op
        assert p.value("energy.static_chip_w") == idle
        assert math.isclose(p.value("time.dt_s"), 1 / per_s, rel_tol=1e-3)  # one pass per inference
        assert p.is_unknown("energy.spike_j")
    assert cpu.value("energy.mac_j") > gpu.value("energy.mac_j")
