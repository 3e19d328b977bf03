"""Energy and power: the estimator against hand computations on a tiny network.

Every coefficient is a power of two, so the hand computations are exact in floating
point and the estimator must agree with ``==``.
"""
import json

import numpy as np
import pytest

from spikeport.backends.activity import Activity
from spikeport.deploy.ann_baseline import ann_macs, baseline
from spikeport.deploy.energy import estimate
from spikeport.errors import SpikeportError
from spikeport.hardware_profiles import load, parse
from spikeport.ir import AvgPool2d, Conv2d, Dense, Flatten, InputEncoding, Network, NeuronModel, Population, Projection

E_SYNOP, E_UPDATE, E_SPIKE = 2.0**-30, 2.0**-29, 2.0**-31
E_IN_SPIKE, E_IN_VALUE = 2.0**-28, 2.0**-27
P_CORE, P_CHIP, DT_CHIP = 2.0**-4, 2.0**-2, 2.0**-10


def q(v):
    return {"value": v, "source": "assumed: test"}


def chip_profile(dt=DT_CHIP, timing="realtime", time=None, io=None, **energy):
    """A neuromorphic profile with round numbers; energy=... overrides a coefficient (a dict);
    time and io add to (or override) those tables."""
    e = {"synop_j": q(E_SYNOP), "neuron_update_j": q(E_UPDATE), "spike_j": q(E_SPIKE),
         "static_core_w": q(P_CORE), "static_chip_w": q(P_CHIP)}
    e.update(energy)
    i = {"input_spike_j": q(E_IN_SPIKE), "input_value_j": q(E_IN_VALUE)}
    i.update(io or {})
    return parse({"name": "testchip", "title": "Test chip", "kind": "neuromorphic", "quantization": "none",
                  "timing": timing, "time": {"dt_s": q(dt), **(time or {})}, "core": {"neurons": q(256)},
                  "chip": {"cores": q(16)}, "precision": {"weight_bits": q(8)}, "energy": e, "io": i},
                 "test.toml")


def device_profile(**energy):
    e = {"synop_j": {"unknown": "not an event-driven device"}, "neuron_update_j": {"unknown": "n/a"},
         "spike_j": {"unknown": "n/a"}, "mac_j": q(2.0**-32), "static_core_w": {"unknown": "not modelled"},
         "static_chip_w": q(8.0)}
    e.update(energy)
    return parse({"name": "testcpu", "title": "Test CPU", "kind": "conventional", "quantization": "none",
                  "time": {"dt_s": q(2.0**-10)}, "energy": e}, "test.toml")


def tiny_network(encoding="regular"):
    """input (3) -dense-> h (2 IF) -dense-> out (2 IF), weights chosen for hand-countable spikes."""
    nm = NeuronModel("if", threshold=1.0, reset="subtract")
    w1 = np.array([[1.0, 0.0, 1.0], [0.5, 0.25, 0.0]], np.float32)
    w2 = np.array([[1.0, 0.0], [0.0, 0.5]], np.float32)
    pops = [Population("input", (3,), encoding=InputEncoding(encoding, 1000.0)),
            Population("h", (2,), neuron=nm), Population("out", (2,), neuron=nm)]
    projs = [Projection("input->h", "input", "h", [Dense(w1)]), Projection("h->out", "h", "out", [Dense(w2)])]
    return Network(pops, projs, dt_s=1e-3, output="out").validate()


# Hand count of tiny_network over 8 steps for x = [1, 1, 0] (and a second, all-zero sample):
# at 1000 Hz and dt 1 ms, inputs 0 and 1 spike every step: 16 input spikes. Fan-outs of w1 are
# (2, 1, 1): 8*2 + 8*1 = 24 synops into h. h0 gets 1 per step: 8 spikes; h1 gets 0.75 per step,
# v = .75, 1.5*, 1.25*, 1.0*, .75, 1.5*, 1.25*, 1.0*: 6 spikes. Fan-outs of w2 are (1, 1): 8 + 6 = 14
# synops into out. out0 gets 1 per step: 8 spikes; out1 gets 0.5 at the 6 steps h1 spikes: 3 spikes.
PER_SAMPLE = {"input": {"spikes": 16}, "h": {"synops": 24, "spikes": 14}, "out": {"synops": 14, "spikes": 11}}
X = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
STEPS = 8


def measured():
    from spikeport.backends import reference
    return reference.run(tiny_network(), X, STEPS, device="cpu")


def made_activity(network, steps, synops, spikes, samples=1):
    """An Activity with the given per-sample counts (the same for every sample)."""
    n = {p.name: p.size for p in network.populations}
    return Activity(backend="test", steps=steps, dt_s=network.dt_s, checkpoints=[steps],
                    predictions=np.zeros((samples, 1), np.int64),
                    output_counts=np.zeros((samples, n[network.output]), np.int64),
                    population_spikes={k: np.full(samples, v, np.int64) for k, v in spikes.items()},
                    synops={k: np.full(samples, v, np.int64) for k, v in synops.items()}, neurons=n, seconds=0.0)


def test_the_reference_run_gives_the_hand_counts():
    act = measured()
    for name, want in PER_SAMPLE.items():
        assert act.population_spikes[name].tolist() == [want["spikes"], 0]
        if name != "input":
            assert act.synops[name].tolist() == [want["synops"], 0]


def test_estimate_equals_the_hand_computation_exactly():
    net = tiny_network()
    result = estimate(net, chip_profile(), measured(), cores={"h": 1, "out": 2}, chips=1)
    # means over the two samples (the second is silent): half of the first sample's counts
    t_inf = STEPS * DT_CHIP
    hand = {"input": 8 * E_SPIKE,
            "h": 12 * E_SYNOP + 2 * STEPS * E_UPDATE + 7 * E_SPIKE,
            "out": 7 * E_SYNOP + 2 * STEPS * E_UPDATE + 5.5 * E_SPIKE}
    static = {"input": 0.0, "h": 1 * P_CORE * t_inf, "out": 2 * P_CORE * t_inf}
    layers = {lay["name"]: lay for lay in result["layers"]}
    assert list(layers) == ["input", "h", "out"]
    for name in hand:
        assert layers[name]["dynamic_j"] == hand[name]
        assert layers[name]["static_j"] == static[name]
        assert layers[name]["energy_j"] == hand[name] + static[name]
    assert layers["h"]["synops"] == 12.0 and layers["h"]["neuron_updates"] == 16 and layers["h"]["spikes"] == 7.0
    assert layers["input"]["neuron_updates"] == 0 and layers["input"]["cores"] == 0
    chip_static = 1 * P_CHIP * t_inf
    # 8 input spikes per inference, each brought onto the chip from the host
    assert result["input"]["kind"] == "spikes" and result["input"]["energy_j"] == 8 * E_IN_SPIKE
    dynamic = hand["input"] + hand["h"] + hand["out"] + 8 * E_IN_SPIKE
    assert result["dynamic_j"] == dynamic
    assert result["chip_static_j"] == chip_static
    assert result["static_j"] == 3 * P_CORE * t_inf + chip_static
    assert result["energy_per_inference_j"] == dynamic + 3 * P_CORE * t_inf + chip_static
    assert result["time_per_inference_s"] == t_inf == 2.0**-7
    assert result["inferences_per_s"] == 128.0
    assert result["power_w"] == result["energy_per_inference_j"] * 128.0
    assert (result["synops"], result["neuron_updates"], result["spikes"]) == (19.0, 32, 20.5)
    assert result["synop_energy_j"] == 19 * E_SYNOP
    assert result["complete"] is True and result["unknown"] == []
    assert set(result["sources"]) == {"time.dt_s", "energy.synop_j", "energy.neuron_update_j", "energy.spike_j",
                                      "energy.static_core_w", "energy.static_chip_w", "io.input_spike_j"}
    # no range on any coefficient: the band is the value itself
    assert result["band"]["energy_per_inference_j"] == [result["energy_per_inference_j"]] * 2
    assert (result["cores"], result["chips"], result["samples"]) == (3, 1, 2)
    json.dumps(result, allow_nan=False)  # plain JSON


def test_zero_activity_costs_only_static_energy():
    net = tiny_network()
    act = made_activity(net, 8, synops={"h": 0, "out": 0}, spikes={"input": 0, "h": 0, "out": 0})
    result = estimate(net, chip_profile(neuron_update_j=q(0.0)), act, cores={"h": 1, "out": 1}, chips=2)
    t_inf = 8 * DT_CHIP
    assert result["dynamic_j"] == 0.0
    assert result["static_j"] == 2 * P_CORE * t_inf + 2 * P_CHIP * t_inf > 0
    assert result["energy_per_inference_j"] == result["static_j"]
    assert result["power_w"] == 2 * P_CORE + 2 * P_CHIP  # static power, drawn all the time


def test_static_energy_scales_with_the_time_of_an_inference():
    net = tiny_network()
    counts = {"synops": {"h": 24, "out": 14}, "spikes": {"input": 16, "h": 14, "out": 11}}
    short, long = (estimate(net, chip_profile(), made_activity(net, steps, **counts), cores={"h": 1, "out": 1})
                   for steps in (8, 16))
    assert long["static_j"] == 2 * short["static_j"] > 0
    assert long["chip_static_j"] == 2 * short["chip_static_j"]
    assert long["time_per_inference_s"] == 2 * short["time_per_inference_s"]
    # the same events cost the same; only the neuron updates (neurons x steps) grow with time
    assert long["synop_energy_j"] == short["synop_energy_j"] == 38 * E_SYNOP
    assert long["route_energy_j"] == short["route_energy_j"] == 41 * E_SPIKE
    assert long["update_energy_j"] == 2 * short["update_energy_j"]
    assert long["inferences_per_s"] == short["inferences_per_s"] / 2


def test_time_is_the_chips_time_step_not_the_networks():
    net = tiny_network()  # dt 1 ms
    act = made_activity(net, 8, synops={"h": 0, "out": 0}, spikes={"input": 0, "h": 0, "out": 0})
    result = estimate(net, chip_profile(dt=2.0**-6), act, cores={"h": 1, "out": 1})
    assert result["time_per_inference_s"] == 8 * 2.0**-6
    assert (result["chip_dt_s"], result["network_dt_s"]) == (2.0**-6, 1e-3)
    assert any("dt" in n for n in result["notes"])
    same = estimate(net, chip_profile(dt=1e-3), act, cores={"h": 1, "out": 1})
    assert not any("steps every" in n for n in same["notes"])


def test_an_unknown_coefficient_is_null_named_and_marks_the_total_incomplete():
    net = tiny_network()
    act = measured()
    full = estimate(net, chip_profile(), act, cores={"h": 1, "out": 1})
    result = estimate(net, chip_profile(synop_j={"unknown": "not published"}), act, cores={"h": 1, "out": 1})
    layers = {lay["name"]: lay for lay in result["layers"]}
    assert layers["h"]["synop_energy_j"] is None and layers["h"]["complete"] is False
    assert layers["input"]["synop_energy_j"] == 0.0 and layers["input"]["complete"] is True  # no synops into it
    assert result["synop_energy_j"] is None
    assert result["unknown"] == ["energy.synop_j"] and result["unknown_why"] == {"energy.synop_j": "not published"}
    assert result["complete"] is False
    # the known terms are all still there: the total is lower by exactly the unknown term, and says so
    assert result["dynamic_j"] == full["dynamic_j"] - 19 * E_SYNOP
    assert result["static_j"] == full["static_j"]
    assert "energy.synop_j" not in result["sources"]

    no_chip = estimate(net, chip_profile(static_chip_w={"unknown": "?"}), act, cores={"h": 1, "out": 1})
    assert no_chip["chip_static_j"] is None and no_chip["unknown"] == ["energy.static_chip_w"]
    assert no_chip["static_j"] == 2 * P_CORE * STEPS * DT_CHIP and no_chip["complete"] is False


def test_an_unknown_coefficient_times_zero_events_is_zero():
    net = tiny_network()
    act = made_activity(net, 8, synops={"h": 5, "out": 3}, spikes={"input": 0, "h": 0, "out": 0})
    result = estimate(net, chip_profile(spike_j={"unknown": "?"}), act, cores={"h": 1, "out": 1})
    assert result["route_energy_j"] == 0.0 and result["complete"] is True


def test_unknown_core_static_power_needs_no_cores_and_is_reported():
    net = tiny_network()
    result = estimate(net, chip_profile(static_core_w={"unknown": "only per chip"}), measured())
    assert all(lay["static_j"] is None and lay["cores"] is None for lay in result["layers"])
    assert result["unknown"] == ["energy.static_core_w"] and result["complete"] is False
    assert result["static_j"] == P_CHIP * STEPS * DT_CHIP  # the chip's static power is still counted


def test_the_loihi_profile_prices_measured_idle_power_over_the_barrier_time():
    net = tiny_network()
    result = estimate(net, load("loihi"), measured(), cores={"h": 1, "out": 1}, chips=1)
    # the busiest core, the barrier (SANA-FE), and the host link's round trip: the host streams the input spikes
    step = result["time"]["busiest_core_s"] + 1.4e-6 + 1.5e-3
    assert result["step_s"] == pytest.approx(step, rel=1e-12) and result["time"]["model"] == "barrier"
    assert result["runtime_j"] == pytest.approx(0.065 * STEPS * step, rel=1e-12)  # the x86 cores while running
    analog = estimate(tiny_network("analog"), load("loihi"), made_activity(tiny_network("analog"), 8, **{
        "synops": {"h": 3, "out": 1}, "spikes": {"h": 2, "out": 1}}), cores={"h": 1, "out": 1})
    assert analog["time"]["host_step_s"] == 0.0 and analog["step_s"] < 1e-4  # currents written once: no streaming
    assert result["chip_static_j"] == pytest.approx(0.029 * STEPS * step, rel=1e-12)  # measured idle, Blouw 2019
    assert result["core_static_j"] == 0.0
    # what no source gives is named, never invented: the host link's spike packets
    assert {"io.input_spike_j", "io.input_spike_s"} <= set(result["unknown"]) and result["complete"] is False
    assert result["sources"]["energy.synop_j"].startswith("src: SANA-FE")
    # ranges in the profile give a band around every figure
    lo, hi = result["band"]["energy_per_inference_j"]
    assert lo < result["energy_per_inference_j"] <= hi
    lo, hi = result["band"]["inferences_per_s"]
    assert lo < result["inferences_per_s"] < hi


BARRIER_TIME = {"synop_s": q(2.0**-20), "neuron_s": q(2.0**-21), "spike_s": q(2.0**-22), "message_s": q(2.0**-23),
                "sync_s": q(2.0**-12)}
COUNTS = {"synops": {"h": 24, "out": 14}, "spikes": {"input": 16, "h": 14, "out": 11}}


def barrier_work(cores_out=1):
    """Per-step work of the busiest core of h and of out (8 steps; 2 neurons each; messages = spikes in)."""
    h = (24 * 2.0**-20 + 16 * 2.0**-21 + 14 * 2.0**-22 + 16 * 2.0**-23) / 1 / 8
    out = (14 * 2.0**-20 + 16 * 2.0**-21 + 11 * 2.0**-22 + 14 * 2.0**-23) / cores_out / 8
    return h, out


def test_the_busiest_core_sets_a_barrier_chips_step():
    net = tiny_network()
    act = made_activity(net, 8, **COUNTS)
    prof = chip_profile(timing="barrier", time=BARRIER_TIME, io={"input_spike_s": q(2.0**-24)})
    result = estimate(net, prof, act, cores={"h": 1, "out": 1})
    h, out = barrier_work()
    assert h > out and result["time"]["busiest_layer"] == "h" and result["time"]["core_s"] == {"h": h, "out": out}
    input_s = 16 * 2.0**-24 / 8  # the host sends the 16 input spikes of an inference over its 8 steps
    assert result["time"]["input_s"] == input_s
    assert result["step_s"] == h + 2.0**-12 + input_s
    assert result["time_per_inference_s"] == 8 * result["step_s"]
    assert result["inferences_per_s"] == 1 / (8 * result["step_s"])
    assert result["chip_static_j"] == P_CHIP * 8 * result["step_s"]
    # more cores for a layer split its work: with out's synops made heavy, its cores decide
    heavy = made_activity(net, 8, synops={"h": 24, "out": 400}, spikes=COUNTS["spikes"])
    one, two = (estimate(net, prof, heavy, cores={"h": 1, "out": c}) for c in (1, 2))
    assert one["time"]["busiest_layer"] == "out" and two["time"]["core_s"]["out"] == one["time"]["core_s"]["out"] / 2
    assert two["step_s"] < one["step_s"]


def test_realtime_paces_a_barrier_chip_by_the_networks_dt():
    net = tiny_network()  # dt 1 ms: far slower than this chip's steps
    act = made_activity(net, 8, **COUNTS)
    prof = chip_profile(timing="barrier", time=BARRIER_TIME, io={"input_spike_s": q(0.0)})
    fast = estimate(net, prof, act, cores={"h": 1, "out": 1})
    paced = estimate(net, prof, act, cores={"h": 1, "out": 1}, realtime=True)
    assert fast["step_s"] < 1e-3 and paced["step_s"] == 1e-3
    assert paced["static_j"] > fast["static_j"] and paced["dynamic_j"] == fast["dynamic_j"]
    assert "realtime" in paced["time"]["paced_by"]


def test_a_barrier_chip_without_core_times_gives_a_named_lower_bound():
    net = tiny_network()
    prof = chip_profile(timing="barrier", time={"sync_s": q(2.0**-12)}, io={"input_spike_s": q(0.0)})
    result = estimate(net, prof, made_activity(net, 8, **COUNTS), cores={"h": 1, "out": 1})
    assert result["step_s"] == 2.0**-12 and result["time"]["complete"] is False
    assert {"time.synop_s", "time.neuron_s", "time.spike_s", "time.message_s"} <= set(result["unknown"])
    assert any("lower bound" in n for n in result["notes"])


def test_a_real_time_chip_keeps_its_tick_unless_a_core_cannot():
    net = tiny_network()
    act = made_activity(net, 8, **COUNTS)
    keeps = estimate(net, chip_profile(time=BARRIER_TIME), act, cores={"h": 1, "out": 1})
    assert keeps["step_s"] == DT_CHIP and keeps["time"]["late"] is False
    slow = dict(BARRIER_TIME, synop_s=q(2.0**-10))  # 24 synops per 8 steps at ~1 ms each: 3 ticks of work
    late = estimate(net, chip_profile(time=slow), act, cores={"h": 1, "out": 1})
    h = (24 * 2.0**-10 + 16 * 2.0**-21 + 14 * 2.0**-22 + 16 * 2.0**-23) / 8
    assert late["time"]["late"] is True and late["step_s"] == h + 2.0**-12 > DT_CHIP
    assert any("cannot keep real time" in n for n in late["notes"])
    # core times a real-time chip does not publish only leave the check undone: not an unknown of the estimate
    unchecked = estimate(net, chip_profile(), act, cores={"h": 1, "out": 1})
    assert unchecked["step_s"] == DT_CHIP and unchecked["complete"] is True


@pytest.mark.parametrize("encoding", ["analog", "regular", "poisson"])
def test_the_input_is_priced_where_it_runs(encoding):
    from spikeport.backends import reference
    from spikeport.deploy.pipeline import host_synops

    net = tiny_network(encoding)
    act = reference.run(net, X, STEPS, device="cpu", seed=0)
    host = host_synops(net, X, STEPS)
    result = estimate(net, chip_profile(), act, cores={"h": 1, "out": 1}, host_synops=host)
    inp = result["input"]
    if encoding == "analog":
        # the host computes input->h once per inference (x = [1, 1, 0] and a zero sample: fan-outs 2 + 1,
        # half of it per sample on average) and writes h's 2 currents into the chip
        assert inp["kind"] == "values" and inp["values"] == 2 and inp["energy_j"] == 2 * E_IN_VALUE
        assert result["host"]["macs"] == 1.5 and result["host"]["energy_j"] > 0
        assert "host" in result["host"]["what"]
        chip_only = result["dynamic_j"]
        assert chip_only == pytest.approx(sum(lay["dynamic_j"] for lay in result["layers"]) + 2 * E_IN_VALUE)
    else:
        spikes = float(np.mean(act.population_spikes["input"]))
        assert inp["kind"] == "spikes" and inp["spikes"] == spikes > 0
        assert inp["energy_j"] == spikes * E_IN_SPIKE and result["host"] is None
    assert inp["energy_j"] > 0 and inp["path"] == "host"


def test_a_coefficient_range_gives_the_band():
    net = tiny_network()
    act = made_activity(net, 8, **COUNTS)
    ranged = {"value": E_SYNOP, "low": E_SYNOP / 2, "high": E_SYNOP * 2, "source": "assumed: test"}
    result = estimate(net, chip_profile(synop_j=ranged), act, cores={"h": 1, "out": 1})
    lo = estimate(net, chip_profile(synop_j=q(E_SYNOP / 2)), act, cores={"h": 1, "out": 1})
    hi = estimate(net, chip_profile(synop_j=q(E_SYNOP * 2)), act, cores={"h": 1, "out": 1})
    assert result["band"]["energy_per_inference_j"] == [lo["energy_per_inference_j"], hi["energy_per_inference_j"]]
    assert result["band"]["dynamic_j"][0] < result["dynamic_j"] < result["band"]["dynamic_j"][1]
    assert result["band"]["inferences_per_s"] == [result["inferences_per_s"]] * 2  # time does not depend on it


@pytest.mark.parametrize("field, why", [({"low": 2.0, "high": 3.0}, "low <= value <= high"),
                                        ({"low": 0.5}, "both low and high"),
                                        ({"low": "a", "high": 2.0}, "low <= value <= high")])
def test_a_bad_range_is_one_line_naming_the_key(field, why):
    from spikeport.hardware_profiles import ProfileError

    with pytest.raises(ProfileError) as exc:
        chip_profile(synop_j={"value": 1.0, "source": "assumed: test", **field})
    assert "energy.synop_j" in str(exc.value) and why in str(exc.value) and "\n" not in str(exc.value)


def test_analog_input_has_no_input_layer():
    net = tiny_network("analog")
    act = made_activity(net, 8, synops={"h": 3, "out": 1}, spikes={"h": 2, "out": 1})
    result = estimate(net, chip_profile(), act, cores={"h": 1, "out": 1})
    assert [lay["name"] for lay in result["layers"]] == ["h", "out"]
    assert any("analog" in n for n in result["notes"])


def test_wrong_arguments_are_refused():
    net = tiny_network()
    act = measured()
    with pytest.raises(ValueError, match="cores"):
        estimate(net, chip_profile(), act)  # the profile gives static_core_w: cores are needed
    with pytest.raises(ValueError, match="nope"):
        estimate(net, chip_profile(), act, cores={"h": 1, "out": 1, "nope": 1})
    with pytest.raises(ValueError, match="'out'"):
        estimate(net, chip_profile(), act, cores={"h": 1})
    with pytest.raises(ValueError, match="integer >= 0"):
        estimate(net, chip_profile(), act, cores={"h": -1, "out": 1})
    with pytest.raises(ValueError, match="chips"):
        estimate(net, chip_profile(), act, cores={"h": 1, "out": 1}, chips=0)
    other = made_activity(tiny_network(), 8, synops={"h": 0}, spikes={"input": 0, "h": 0, "out": 0})
    with pytest.raises(ValueError, match="another network"):
        estimate(net, chip_profile(), other, cores={"h": 1, "out": 1})
    with pytest.raises(SpikeportError) as exc:
        estimate(net, device_profile(), act)
    assert "conventional" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(SpikeportError) as exc:
        baseline(net, chip_profile())
    assert "neuromorphic" in str(exc.value) and "\n" not in str(exc.value)


def conv_network(padding=0, bias=True):
    """input (1, 5, 5) -conv 1->2 3x3-> c (2, 3, 3) -[avgpool 3, flatten, dense 4x2]-> out (4),
    plus input -[flatten, dense 4x25]-> out (a residual sum into out)."""
    nm = NeuronModel("if")
    side = 5 + 2 * padding - 2
    pops = [Population("input", (1, 5, 5), encoding=InputEncoding("analog", 100.0)),
            Population("c", (2, side, side), neuron=nm, bias=np.zeros((2, side, side)) if bias else None),
            Population("out", (4,), neuron=nm)]
    projs = [Projection("input->c", "input", "c", [Conv2d(np.ones((2, 1, 3, 3)), padding=padding)]),
             Projection("c->out", "c", "out", [AvgPool2d(side), Flatten(), Dense(np.zeros((4, 2)))]),
             Projection("input->out", "input", "out", [Flatten(), Dense(np.ones((4, 25)))])]
    return Network(pops, projs, output="out").validate()


def test_ann_macs_by_hand():
    counts = ann_macs(conv_network())
    proj = {p["name"]: p for p in counts["projections"]}
    assert proj["input->c"] == {"name": "input->c", "pre": "input", "post": "c", "macs": 9 * 2 * 9, "adds": 0}
    # avgpool 3x3 to (2, 1, 1): 9 accumulations and one scaling per output; dense 4 x 2, zeros included
    assert (proj["c->out"]["macs"], proj["c->out"]["adds"]) == (8, 2 * 9 + 2)
    assert (proj["input->out"]["macs"], proj["input->out"]["adds"]) == (100, 0)
    layers = {lay["name"]: lay for lay in counts["layers"]}
    assert layers["c"] == {"name": "c", "neurons": 18, "macs": 162, "adds": 18}  # one bias add per neuron
    assert layers["out"] == {"name": "out", "neurons": 4, "macs": 108, "adds": 20 + 4}  # + the residual sum
    assert (counts["macs"], counts["adds"]) == (270, 42)


@pytest.mark.parametrize("padding, groups, channels, macs", [
    (1, 1, (1, 2), 2 * 5 * 5 * 1 * 9),   # padded positions are computed too
    (0, 2, (2, 4), 4 * 3 * 3 * 1 * 9),   # a grouped conv reads C_in / groups channels per output
])
def test_ann_macs_of_padded_and_grouped_convolutions(padding, groups, channels, macs):
    c_in, c_out = channels
    out = 5 + 2 * padding - 2
    net = Network([Population("input", (c_in, 5, 5), encoding=InputEncoding("analog", 100.0)),
                   Population("out", (c_out, out, out), neuron=NeuronModel("if"))],
                  [Projection("p", "input", "out",
                              [Conv2d(np.ones((c_out, c_in // groups, 3, 3)), padding=padding, groups=groups)])],
                  output="out").validate()
    assert ann_macs(net)["macs"] == macs and ann_macs(net)["adds"] == 0


def test_ann_macs_never_materializes(monkeypatch):
    def refuse(self, pre_shape):
        raise AssertionError("materialized")
    monkeypatch.setattr(Projection, "materialize", refuse)
    assert ann_macs(conv_network())["macs"] == 270


def test_baseline_on_a_conventional_device():
    net = conv_network()
    result = baseline(net, device_profile())
    dynamic = (270 + 42) * 2.0**-32
    static = 8.0 * 2.0**-10
    assert (result["macs"], result["adds"], result["ops_charged"]) == (270, 42, 312)
    assert result["dynamic_j"] == dynamic and result["static_j"] == static
    assert result["energy_per_inference_j"] == dynamic + static
    assert result["inferences_per_s"] == 1024.0
    assert result["power_w"] == (dynamic + static) * 1024.0
    assert result["complete"] is True and result["unknown"] == []
    assert set(result["sources"]) == {"time.dt_s", "energy.mac_j", "energy.static_chip_w"}
    assert {lay["name"]: lay["dynamic_j"] for lay in result["layers"]} == {"c": 180 * 2.0**-32,
                                                                           "out": 132 * 2.0**-32}
    json.dumps(result, allow_nan=False)

    unknown = baseline(net, device_profile(mac_j={"unknown": "not measured"}))
    assert unknown["dynamic_j"] is None and unknown["unknown"] == ["energy.mac_j"]
    assert unknown["complete"] is False and unknown["energy_per_inference_j"] == static


def timed_device(**time):
    t = {"dt_s": q(2.0**-10), "call_s": q(2.0**-10), "layer_s": q(2.0**-12), "byte_s": q(2.0**-20),
         "op_s": q(2.0**-24)}
    t.update(time)
    t = {k: v for k, v in t.items() if v is not None}
    return parse({"name": "timedcpu", "title": "Timed CPU", "kind": "conventional", "quantization": "none",
                  "time": t, "energy": {"synop_j": {"unknown": "n/a"}, "neuron_update_j": {"unknown": "n/a"},
                                        "spike_j": {"unknown": "n/a"}, "mac_j": q(2.0**-32),
                                        "static_core_w": q(0.0), "static_chip_w": q(8.0),
                                        "active_w": q(2.0)}}, "timed.toml")


def test_timed_baseline_by_hand():
    # conv_network: weights 18 (conv) + 8 + 100 (dense) + 18 (c's bias) = 144; values (every population's
    # outputs) 25 + 18 + 4 = 47; 2 layers (c, out); 312 MACs and adds. At batch 2 the call moves
    # 4 x 144 + 2 x 8 x 47 = 1328 bytes.
    net = conv_network()
    r = baseline(net, timed_device(), batch=2)
    assert (r["weights"], r["layers_timed"], r["bytes_per_call"]) == (144, 2, 1328)
    t_call = 2.0**-10 + 2 * 2.0**-12 + 1328 * 2.0**-20 + 2 * 312 * 2.0**-24
    assert r["time_per_call_s"] == t_call and r["time_per_inference_s"] == t_call / 2
    assert r["inferences_per_s"] == 2 / t_call
    assert r["dynamic_j"] == 2.0 * t_call / 2  # the busy power over the time of one inference
    assert r["overhead_j"] == 2.0 * (t_call - 2 * 312 * 2.0**-24) / 2  # all but the arithmetic
    assert r["static_j"] == 8.0 * t_call / 2
    assert r["complete"] is True
    # a profile without the per-layer and memory terms leaves them out and says so
    bare = baseline(net, timed_device(layer_s=None, byte_s=None), batch=2)
    assert bare["time_per_call_s"] == 2.0**-10 + 2 * 312 * 2.0**-24
    assert bare["unknown"] == ["time.byte_s", "time.layer_s"] and bare["complete"] is False
