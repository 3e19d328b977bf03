"""Quantization to a chip's own number formats: ``quantize_for(network, profile)``.

The profile's ``quantization`` picks the scheme; each returns (network, report), the
network in fixed point (:mod:`spikeport.ir.arithmetic`: the reference executor runs its
integer arithmetic exactly) and a report of what rounding did:

``per-layer``
    :func:`spikeport.deploy.quantize.quantize` with the profile's ``weight_bits`` and
    ``state_bits``: one LSB per post population, set by its largest weight. Where the
    profile marks ``state_bits`` unknown, 32 bits are used and the report says so.

``loihi`` (the rule of nengo-loihi, ``nengo_loihi/builder/discretize.py``)
    The executor's integers are the chip's own membrane units. Per post population
    P (a Loihi block) with largest synaptic weight W, a block exponent E (the first
    of 0, -1, ..., -weight_exponent_min at which the threshold mantissa, the bias
    register and v_init fit: ``discretize_compartment``) sets the scale
    ``v = T * 2**(6 + E) / W`` chip units per float unit, T = m * 2**s the top of
    the weight range (m = 2**(weight_bits - 1) - 1 magnitudes with a separate sign,
    s = 9 - weight_bits: ``SynapseConfig.shift_bits`` in mixed-sign mode; T = 254
    at 8 bits). Every projection p is one synapse config with its own exponent
    ``e_p = max(E - floor(log2(W / w_p)), -weight_exponent_min)`` (``discretize_synapse``),
    so its own largest weight w_p uses the mantissa range. A weight is stored as a
    mantissa ``k = clip(round(w v / (64 * 2**(s + e_p))), +-m)`` and added to the
    membrane as ``k * 2**(s + e_p) * 64``; where ``s + e_p < 0`` the chip's two-part
    shift rounds the mantissa once more, ``round(k * 2**(s + e_p)) * 64``, and bits
    are lost (``discretize_weights`` with ``lossy_shift``): a membrane never sees a
    weight finer than 64 units, the threshold's own step. The threshold is
    ``round(theta v / 64) * 2**6`` with a mantissa below ``2**threshold_bits``
    (``vth_to_manexp``); a bias is a 12-bit mantissa times ``2**exp``, exp <= 7
    (``bias_to_manexp``); membranes have ``state_bits`` (24) bits, decays 12.
    Differences from nengo-loihi: the largest weight maps to T (254 at 8 bits)
    where nengo-loihi maps it to 255 and then clips its mantissa from 128 to 127
    (its largest weights come out at 254 while the others keep the scale of 255:
    one part in 255 lost); a projection whose exponent would fall below the
    profile's minimum gets the minimum and the coarser mantissa that goes with it
    (nengo-loihi clamps the exponent at -6 but keeps the finer mantissa, which
    scales those weights up); the exponent range is the profile's.

``spinnaker`` (the rule of sPyNNaker, ``PopulationVertex.get_ring_buffer_shifts``)
    Per post population and synapse type (excitatory: the positive weights,
    inhibitory: the magnitudes of the negative ones) a ring-buffer left shift r is
    chosen from the largest input one step can bring: with one delay per projection
    that is ``max(sum_p w_max,p * n_p, w_max)`` (``_Stats.get_max_weight``: n_p the
    most synapses of that type one neuron receives from p, one spike per step per
    source), r the smallest integer >= 0 with ``2**r > that``. Weights are 16-bit
    magnitudes ``round(|w| * 2**(15 - r))`` (``get_weight_scales``,
    ``SynapseDynamicsStatic.get_static_synaptic_data``), shifted left by r into the
    s16.15 membrane: the executor's unit is 2**-15 (32 state bits) and a weight is
    ``+-k * 2**r``. Thresholds, biases and v_init are s16.15. Where this differs:
    sPyNNaker also has a statistical bound for projections whose delays vary
    (``_ring_buffer_expected_upper_bound``), which never applies here (one delay per
    projection); counts per neuron are taken from the chain applied to ones, an
    upper bound where pooling windows overlap; decays keep 21 fraction bits (the
    executor's exact limit at 32 state bits; SpiNNaker's are u0.32).

``none``
    The network unchanged, with an empty report (conventional targets).

A projection out of an analog input carries a current, not spikes: on both chips
spikeport's backends drive it through the bias or current registers, not synapses
(``backends/loihi/``, ``backends/pynn_lowering.py``). It is kept at the post
population's state resolution (kind "current" in the report) and takes no part in
choosing weight scales.

The report: ``scheme``, ``format`` (the chip's formats), ``fixed_point`` (the
executor's), ``projections`` (per projection: name, kind, weights, weight_bits, lsb
(one weight step in float units), max_abs_error and mean_abs_error (float units),
zeroed_fraction (nonzero float weights that became 0), and the scheme's exponent or
shifts) and ``populations`` (per population: lsb (one state unit), threshold_int,
threshold_error, threshold_relative_error and the scheme's threshold format).
:func:`warnings` turns it into loud lines.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ..errors import SpikeportError
from ..ir import FixedPoint, Network
from .quantize import assemble, effective_ops, quantize

SCHEMES = ("loihi", "spinnaker", "per-layer", "none")

# Loihi, as nengo-loihi models it (nengo_loihi/builder/discretize.py, nengo_loihi/block.py)
LOIHI_VTH_EXP = 6                      # vth = mantissa * 2**6 (VTH_EXP)
LOIHI_WEIGHT_SHIFT = 6                 # a weight of exponent e adds w * 2**(6 + e) (SynapseConfig.get_scale)
LOIHI_BIAS_MAN_MAX = 2**12 - 1         # BIAS_MAN_MAX
LOIHI_BIAS_EXP_MAX = 7                 # BIAS_EXP_MAX
LOIHI_BIAS_MAX = LOIHI_BIAS_MAN_MAX * 2**LOIHI_BIAS_EXP_MAX
LOIHI_WEIGHT_BITS = (2, 3, 4, 5, 6, 8)  # SynapseConfig.WEIGHT_BITS_MAP (1 bit with a sign has no magnitude)
LOIHI_DECAY_BITS = 12
LOIHI_BLOCK_EXP_MAX = 0                # discretize_compartment starts at w_exp_max = 0 (headroom)

# SpiNNaker, as sPyNNaker models it
SPINNAKER_WEIGHT_BITS = 16             # unsigned 16-bit weight in the synaptic word
SPINNAKER_FRACTION_BITS = 15           # REAL is accum, s16.15
SPINNAKER_STATE_BITS = 32
SPINNAKER_DECAY_BITS = 21              # 32 + 21 = 53: the executor's exact limit

PER_LAYER_UNKNOWN_STATE_BITS = 32     # per-layer profiles whose state width is unknown
THRESHOLD_WARN = 0.05                  # a threshold moved by more than this fraction is warned


# ---------------------------------------------------------------------------- common

@dataclass
class _Layer:
    """One projection with its effective weights (averages folded in)."""

    proj: object
    ops: list
    index: int                  # the weighted op
    weight: np.ndarray          # float64 effective weights
    current: bool               # out of an analog input: a current, not synapses
    pre_shape: tuple

    @property
    def largest(self) -> float:
        return float(np.abs(self.weight).max()) if self.weight.size else 0.0

    def chain_on_ones(self, weight) -> np.ndarray:
        """The chain with ``weight`` in the weighted op, applied to a pre output of all ones: per post neuron."""
        x = np.ones((1,) + tuple(self.pre_shape))
        for k, op in enumerate(self.ops):
            if k == self.index:
                op = dataclasses.replace(op, weight=np.asarray(weight, dtype=np.float64))
            x = op.apply_numpy(x)
        return x.reshape(-1)


def _layers(network) -> dict:
    shapes = {p.name: p.shape for p in network.populations}
    out = {}
    for pr in network.projections:
        ops, i = effective_ops(pr, shapes[pr.pre])
        pre = network.population(pr.pre)
        out[pr.name] = _Layer(pr, ops, i, np.asarray(ops[i].weight, dtype=np.float64),
                              pre.is_input and pre.encoding.kind == "analog", tuple(shapes[pr.pre]))
    return out


def _setting(profile, key: str, default: int) -> int:
    v = profile.value(key)
    if v is None:
        return default
    if float(v) != int(v):
        raise SpikeportError(f"profile {profile.name!r}: {key} must be an integer for its quantization, got {v}")
    return int(v)


def _weight_entry(layer, w_q, lsb, bits, **extra) -> dict:
    """Errors of the quantized weights ``w_q`` (float units) against the float ones."""
    w = layer.weight
    err = np.abs(w_q - w)
    nonzero = w != 0
    return {"name": layer.proj.name, "kind": "current" if layer.current else "synapses", "weights": int(w.size),
            "weight_bits": bits, "lsb": float(lsb),
            "max_abs_error": float(err.max()) if err.size else 0.0,
            "mean_abs_error": float(err.mean()) if err.size else 0.0,
            "zeroed_fraction": float(((w_q == 0) & nonzero).sum() / max(int(nonzero.sum()), 1)), **extra}


def _threshold_entry(pop, unit: float, theta_int: int, **extra) -> dict:
    theta = float(pop.neuron.threshold)
    err = abs(theta_int * unit - theta)
    return {"name": pop.name, "lsb": float(unit), "threshold_int": int(theta_int), "threshold_error": err,
            "threshold_relative_error": err / theta, **extra}


def _state(pop, what: str, values, scale: float, limit: int, chip: str):
    """A per-neuron bias or v_init in state units (None stays None); refused beyond the state."""
    if values is None:
        return None
    out = np.rint(np.asarray(values, dtype=np.float64) * scale)
    if out.size and np.abs(out).max() > limit:
        raise SpikeportError(f"population {pop.name!r}: {what} up to {np.abs(values).max():g} needs "
                             f"{int(np.abs(out).max())} state units, beyond {chip}'s limit {limit}")
    return out


def _effective(layers: dict) -> dict:
    """{projection: (ops, index of the weighted op)}, as :func:`~spikeport.deploy.quantize.assemble` takes."""
    return {name: (layer.ops, layer.index) for name, layer in layers.items()}


def _weight_bits_for(weights: dict, chip: str) -> int:
    """The executor's weight bits: enough for the largest integer weight in state units."""
    largest = max((float(np.abs(w).max()) for w in weights.values() if w.size), default=0.0)
    bits = max(2, int(largest).bit_length() + 1)
    if bits > 32:
        raise SpikeportError(f"network: a weight of {largest:.0f} {chip} state units needs {bits} bits; the "
                             f"fixed-point executor holds at most 32")
    return bits


# ---------------------------------------------------------------------------- Loihi

def _loihi_bias(b_units: np.ndarray) -> np.ndarray:
    """nengo-loihi's bias format: a 12-bit mantissa times 2**exp (``bias_to_manexp``)."""
    exp = np.ceil(np.log2(np.maximum(np.abs(b_units) / LOIHI_BIAS_MAN_MAX, 1.0)))
    return np.rint(b_units / 2.0**exp) * 2.0**exp


def _loihi_scale(pop, W, wb_top, state_max, vth_man_max, e_lo, e_hi, current_range):
    """The block exponent E and scale v (chip units per float unit): the first E from e_hi down at which the
    threshold, the bias register and v_init fit (nengo-loihi ``discretize_compartment``)."""
    theta = float(pop.neuron.threshold)
    bias = np.zeros(pop.size) if pop.bias is None else pop.bias.reshape(-1).astype(np.float64)
    lo, hi = current_range
    register = np.maximum(np.abs(bias + lo), np.abs(bias + hi))   # bias plus an analog input's current
    v_init = pop.initial_membrane()
    why = ""
    for E in range(e_hi, e_lo - 1, -1):
        v = wb_top * 2.0 ** (LOIHI_WEIGHT_SHIFT + E) / W
        mant = round(theta * v / 2**LOIHI_VTH_EXP)
        if mant > vth_man_max or mant * 2**LOIHI_VTH_EXP > state_max:
            why = (f"threshold {theta:g} needs a mantissa of {mant} (at most {vth_man_max}, "
                   f"{vth_man_max.bit_length()} bits) even at weight exponent {E}")
        elif register.size and np.rint(register.max() * v) > LOIHI_BIAS_MAX:
            why = (f"bias plus input current up to {register.max():g} needs {np.rint(register.max() * v):.0f} "
                   f"units, beyond the bias register's {LOIHI_BIAS_MAX} even at weight exponent {E}")
        elif v_init.size and np.rint(np.abs(v_init).max() * v) > state_max:
            why = f"v_init up to {np.abs(v_init).max():g} exceeds the {state_max} membrane even at weight exponent {E}"
        else:
            return E, v, max(mant, 1)
    raise SpikeportError(f"population {pop.name!r}: {why} (Loihi's weights reach {W:g} here)")


def _loihi(network, profile):
    wb = _setting(profile, "precision.weight_bits", 8)
    if wb not in LOIHI_WEIGHT_BITS:
        raise SpikeportError(f"profile {profile.name!r}: precision.weight_bits {wb} is not a Loihi weight width "
                             f"(sign included: {', '.join(map(str, LOIHI_WEIGHT_BITS))})")
    sb = _setting(profile, "precision.state_bits", 24)
    tb = _setting(profile, "precision.threshold_bits", 17)
    e_lo = -_setting(profile, "precision.weight_exponent_min", 7)
    e_hi = min(LOIHI_BLOCK_EXP_MAX, _setting(profile, "precision.weight_exponent_max", 7))
    m, s = 2 ** (wb - 1) - 1, 9 - wb
    top = m * 2**s
    state_max, vth_man_max = 2 ** (sb - 1) - 1, 2**tb - 1
    layers = _layers(network)
    weights, states = {}, {}
    report = {"scheme": "loihi",
              "format": {"weight_bits": wb, "weight_mantissa_max": m, "weight_exponent_range": [e_lo, e_hi],
                         "state_bits": sb, "threshold_bits": tb, "threshold_exponent": LOIHI_VTH_EXP,
                         "bias_mantissa_bits": LOIHI_BIAS_MAN_MAX.bit_length(),
                         "bias_exponent_max": LOIHI_BIAS_EXP_MAX},
              "projections": [], "populations": [],
              "notes": ["Loihi spikes when v > vth, the executor when v >= theta: one membrane unit apart",
                        ("Loihi's 21-bit synaptic accumulator is not modelled; the membrane saturates at "
                         f"{sb} bits")]}
    entries = {}
    for pop in network.populations:
        if pop.is_input:
            continue
        into = [layers[pr.name] for pr in network.projections_into(pop.name)]
        syn, cur = [la for la in into if not la.current], [la for la in into if la.current]
        W = max((la.largest for la in syn), default=0.0) or max((la.largest for la in cur), default=0.0) \
            or float(pop.neuron.threshold)
        lo = sum((la.chain_on_ones(np.minimum(la.weight, 0.0)) for la in cur), np.zeros(pop.size))
        hi = sum((la.chain_on_ones(np.maximum(la.weight, 0.0)) for la in cur), np.zeros(pop.size))
        E, v, mant = _loihi_scale(pop, W, top, state_max, vth_man_max, e_lo, e_hi, (lo, hi))
        for la in syn:
            wp = la.largest
            if wp > 0:
                dw = math.floor(math.log2(W / wp))
                while dw > 0 and wp * 2.0**dw > W:   # guard the float log2
                    dw -= 1
                e = max(E - dw, e_lo)
            else:
                e = e_lo
            s2 = s + e
            k = np.clip(np.rint(la.weight * v / (2**LOIHI_VTH_EXP * 2.0**s2)), -m, m)   # the stored mantissa
            if s2 < 0:   # the second part of the shift rounds again (nengo-loihi lossy_shift)
                units = np.rint(k * 2.0**s2) * 2**LOIHI_WEIGHT_SHIFT
                step = 2**LOIHI_WEIGHT_SHIFT
            else:
                units = k * 2.0**s2 * 2**LOIHI_WEIGHT_SHIFT
                step = 2.0**s2 * 2**LOIHI_WEIGHT_SHIFT
            weights[la.proj.name] = units
            entries[la.proj.name] = _weight_entry(la, units / v, step / v, wb, exponent=e, lost_bits=max(0, -s2),
                                                  mantissa_max=int(m if s2 >= 0 else round(m * 2.0**s2)))
        for la in cur:
            units = np.rint(la.weight * v)
            weights[la.proj.name] = units
            entries[la.proj.name] = _weight_entry(la, units / v, 1.0 / v, None)
        bias = None
        if pop.bias is not None:
            bias = _loihi_bias(np.rint(pop.bias.astype(np.float64) * v))
        theta_int = mant * 2**LOIHI_VTH_EXP
        v_init = None if pop.v_init is None else np.rint(pop.v_init.astype(np.float64) * v)
        states[pop.name] = (theta_int, round(pop.neuron.v_init * v), bias, v_init)
        extra = {"weight_exponent": E, "threshold_mantissa": int(mant), "threshold_exponent": LOIHI_VTH_EXP}
        if bias is not None:
            extra["bias_max_abs_error"] = float(np.abs(bias / v - pop.bias).max())
        report["populations"].append(_threshold_entry(pop, 1.0 / v, theta_int, **extra))
    report["projections"] = [entries[pr.name] for pr in network.projections]
    if any(la.current for la in layers.values()):
        report["notes"].append("an analog input's current is kept at one membrane unit (spikeport's loihi "
                               "backend writes it to the bias register: a 12-bit mantissa with an exponent)")
    fp = FixedPoint(weight_bits=_weight_bits_for(weights, "Loihi"), state_bits=sb, decay_bits=LOIHI_DECAY_BITS)
    report["fixed_point"] = fp.to_dict()
    return assemble(network, _effective(layers), weights, states, fp, report), report


# ---------------------------------------------------------------------------- SpiNNaker

def spinnaker_shift(max_input: float) -> int:
    """sPyNNaker's ring-buffer left shift for a synapse type whose largest input per step is ``max_input``:
    the smallest r >= 0 with 2**r > max_input (``PopulationVertex.get_ring_buffer_shifts``)."""
    if max_input <= 0:
        return 0
    r = math.ceil(max(0.0, math.log2(max_input)))
    return r + 1 if 2.0**r <= max_input else r


def _spinnaker(network, profile):
    wb = _setting(profile, "precision.weight_bits", SPINNAKER_WEIGHT_BITS)
    sb = _setting(profile, "precision.state_bits", SPINNAKER_STATE_BITS)
    frac = SPINNAKER_FRACTION_BITS
    if not frac + 2 <= sb <= 52 or not 2 <= wb <= 31:
        raise SpikeportError(f"profile {profile.name!r}: SpiNNaker's s16.15 quantization needs state_bits in "
                             f"[{frac + 2}, 52] and weight_bits in [2, 31], got {sb} and {wb}")
    wmax_int = 2**wb - 1                # unsigned magnitudes; the synapse type carries the sign
    unit = 2.0**-frac
    state_max = 2 ** (sb - 1) - 1
    layers = _layers(network)
    weights, states, entries = {}, {}, {}
    report = {"scheme": "spinnaker",
              "format": {"weight_bits": wb, "weight_signed": False, "synapse_types": ["excitatory", "inhibitory"],
                         "state_bits": sb, "state_fraction_bits": frac},
              "projections": [], "populations": [],
              "notes": [("each shift covers the largest input one step can bring, so the 16-bit ring buffers "
                         "cannot saturate"),
                        (f"decays keep {min(SPINNAKER_DECAY_BITS, 53 - sb)} fraction bits "
                         "(SpiNNaker's are u0.32)")]}
    for pop in network.populations:
        if pop.is_input:
            continue
        into = [layers[pr.name] for pr in network.projections_into(pop.name)]
        syn, cur = [la for la in into if not la.current], [la for la in into if la.current]
        types = {}
        for name, sign in (("excitatory", 1.0), ("inhibitory", -1.0)):
            total, biggest = 0.0, 0.0
            for la in syn:
                part = np.maximum(sign * la.weight, 0.0)
                w_max = float(part.max()) if part.size else 0.0
                if w_max > 0:
                    n = float(la.chain_on_ones(part > 0).max())      # most synapses of this type into one neuron
                    total += w_max * n
                    biggest = max(biggest, w_max)
            largest_input = max(total, biggest)
            r = spinnaker_shift(largest_input)
            types[name] = {"max_summed_input": largest_input, "shift": r, "lsb": 2.0 ** (r - frac)}
        for la in syn:
            w = la.weight
            out = np.zeros_like(w)
            extra = {}
            for name, keep in (("excitatory", w > 0), ("inhibitory", w < 0)):
                r = types[name]["shift"]
                mag = np.rint(np.abs(w[keep]) * 2.0 ** (frac - r))
                if mag.size and mag.max() > wmax_int:   # cannot happen: 2**r exceeds the largest weight
                    raise SpikeportError(f"projection {la.proj.name!r}: a {name} weight needs {mag.max():.0f}, "
                                         f"beyond {wb} bits")
                out[keep] = np.sign(w[keep]) * mag * 2.0**r
                extra[f"shift_{name}"], extra[f"lsb_{name}"] = r, 2.0 ** (r - frac)
            weights[la.proj.name] = out
            used = [extra[f"lsb_{n}"] for n, keep in (("excitatory", w > 0), ("inhibitory", w < 0)) if keep.any()]
            entries[la.proj.name] = _weight_entry(la, out * unit, max(used, default=unit), wb, **extra)
        for la in cur:
            out = np.rint(la.weight / unit)
            weights[la.proj.name] = out
            entries[la.proj.name] = _weight_entry(la, out * unit, unit, None)
        theta = float(pop.neuron.threshold)
        theta_int = max(round(theta / unit), 1)
        if theta_int > state_max:
            raise SpikeportError(f"population {pop.name!r}: threshold {theta:g} does not fit SpiNNaker's "
                                 f"s{sb - 1 - frac}.{frac} membrane (largest {state_max * unit:g})")
        v0 = round(float(pop.neuron.v_init) / unit)
        if abs(v0) > state_max:
            raise SpikeportError(f"population {pop.name!r}: v_init {pop.neuron.v_init:g} does not fit SpiNNaker's "
                                 f"s{sb - 1 - frac}.{frac} membrane (largest {state_max * unit:g})")
        bias = _state(pop, "bias", pop.bias, 1.0 / unit, state_max, "SpiNNaker")
        v_init = _state(pop, "v_init", pop.v_init, 1.0 / unit, state_max, "SpiNNaker")
        states[pop.name] = (theta_int, v0, bias, v_init)
        extra = {"synapse_types": types}
        if bias is not None:
            extra["bias_max_abs_error"] = float(np.abs(bias * unit - pop.bias).max())
        report["populations"].append(_threshold_entry(pop, unit, theta_int, **extra))
    report["projections"] = [entries[pr.name] for pr in network.projections]
    fp = FixedPoint(weight_bits=_weight_bits_for(weights, "SpiNNaker"), state_bits=sb,
                    decay_bits=min(SPINNAKER_DECAY_BITS, 53 - sb))
    report["fixed_point"] = fp.to_dict()
    return assemble(network, _effective(layers), weights, states, fp, report), report


# ---------------------------------------------------------------------------- entry points

def _per_layer(network, profile):
    wb = profile.value("precision.weight_bits")
    if wb is None:
        raise SpikeportError(f"profile {profile.name!r}: per-layer quantization needs precision.weight_bits")
    sb = profile.value("precision.state_bits")
    notes = []
    if sb is None:   # a chip whose membrane width nobody has published: do not invent a saturation
        sb = PER_LAYER_UNKNOWN_STATE_BITS
        notes.append(f"precision.state_bits is unknown for {profile.name}: the membrane is kept at {sb} bits, "
                     f"so no saturation of the chip's own membrane is modelled")
    fmt = FixedPoint(weight_bits=int(wb), state_bits=int(sb))
    out, report = quantize(network, fmt)
    report["scheme"] = "per-layer"
    report["fixed_point"] = fmt.to_dict()
    report["notes"] = notes
    for entry in report["projections"]:
        entry.setdefault("kind", "synapses")
        entry.setdefault("weight_bits", fmt.weight_bits)
    for entry in report["populations"]:
        theta = float(network.population(entry["name"]).neuron.threshold)
        entry.setdefault("threshold_relative_error", entry["threshold_error"] / theta)
    return out, report


def quantize_for(network: Network, profile) -> tuple[Network, dict]:
    """``network`` in ``profile``'s number formats: (fixed-point network, report); see the module."""
    scheme = getattr(profile, "quantization", None)
    if scheme not in SCHEMES:
        raise SpikeportError(f"profile {getattr(profile, 'name', profile)!r}: unknown quantization {scheme!r} "
                             f"(known: {', '.join(SCHEMES)})")
    network.validate()
    if scheme == "none":
        return network, {"scheme": "none", "projections": [], "populations": []}
    if network.fixed_point is not None:
        raise SpikeportError("network: already fixed-point; quantize the floating-point network")
    return {"loihi": _loihi, "spinnaker": _spinnaker, "per-layer": _per_layer}[scheme](network, profile)


def warnings(report: dict, threshold: float = 0.01) -> list:
    """Loud lines: every projection where more than ``threshold`` of the nonzero weights became 0, and every
    population whose threshold moved by more than 5 %."""
    lines = []
    for p in report.get("projections", []):
        z = float(p.get("zeroed_fraction", 0.0))
        if z > threshold:
            at = f"{p['weight_bits']} bits" if p.get("weight_bits") else f"the state resolution {p['lsb']:.3g}"
            lines.append(f"{p['name']}: {100 * z:.1f} % of nonzero weights became 0 at {at}")
    for p in report.get("populations", []):
        rel = p.get("threshold_relative_error")
        if rel is not None and rel > THRESHOLD_WARN:
            lines.append(f"{p['name']}: threshold off by {100 * rel:.1f} % in the chip's threshold format "
                         f"({p['threshold_int']} units of {p['lsb']:.3g})")
    return lines
