"""Neuron models and input encodings of the graph, with their per-step semantics.

Time is discrete: steps t = 0, 1, ..., T-1 of length ``Network.dt_s``.

Spiking neurons (:class:`NeuronModel`), for every neuron j of a population::

    J_j[t] = sum over projections p into the population of (A_p s_pre[t - d_p])_j
    i_j[t] = alpha * i_j[t-1] + J_j[t]   with a synaptic current (syn_decay = alpha), else i_j[t] = J_j[t]
    if the neuron is refractory (r_j > 0):  r_j -= 1; v_j[t] = v_j[t-1]; s_j[t] = 0
    else:
        v_j[t] = lam * v_j[t-1] + i_j[t] + b_j        lam = decay: 1 for IF, in [0, 1) for LIF
        s_j[t] = 1 if v_j[t] >= theta else 0         (v_j[t] > theta with strict_threshold)
        with max_spikes_per_step = m > 1, where s_j[t] = 1:  s_j[t] = min(m, floor(v_j[t] / theta))
                                                    (the division rounded in the arithmetic's precision)
        reset "subtract": v_j[t] <- v_j[t] - a * s_j[t]      a = reset_amount, theta when None
        reset "zero":     v_j[t] <- 0 where s_j[t] > 0
        r_j <- refractory_steps where s_j[t] > 0
    v_j[-1] = v_init;  i_j[-1] = 0;  r_j = 0 at t = 0;  s_pre[t] = 0 for t < 0

s_j[t] is the neuron's spike count in step t: 0 or 1 unless max_spikes_per_step > 1
(sinabs' MultiSpike, Rockpool's StepPWL). A downstream projection delivers the
count (A_p s_pre), spike statistics count every spike and synaptic operations
are spikes x fan-out. reset_amount different from theta is snnTorch's subtractive
reset, which it applies one step late (v[t] = beta v[t-1] + I[t] - theta s[t-1]):
exactly a same-step subtraction of theta / beta. strict_threshold is the test of
snnTorch and Norse (v > theta), exact in every precision, where the nextafter
trick of NIR import (theta = the next float64 above) is exact in float64 only.
The defaults (reset_amount None, max_spikes_per_step 1, strict_threshold False)
are the graph's original semantics.

A_p is the linear map of projection p (its chain of ops), d_p its delay in steps
and b_j the population's bias (a constant current added every step while the
neuron is not refractory). A refractory neuron neither leaks nor integrates, but
its synaptic current keeps decaying and collecting input.

The leak is stored as the per-step factor lam, which is exact whatever the
simulator: a continuous LIF tau dv/dt = -v + R I integrated exactly over a step
gives lam = exp(-dt / tau) (:meth:`NeuronModel.lif` makes one from tau_rc);
forward Euler gives lam = 1 - dt / tau. Likewise alpha = exp(-dt / tau_syn).
How each simulator realizes these is in docs/ir.md.

Input populations (:class:`InputEncoding`) turn a sample x (values in [0, 1]) into
what they send every step::

    analog:  s_i[t] = x_i                       (a real-valued current, not spikes)
    regular: phase_i[t] = phase_i[t-1] + p_i;  s_i[t] = 1 and phase_i -= 1 when phase_i >= 1
    poisson: s_i[t] ~ Bernoulli(p_i), independently, from a seeded generator
    with p_i = clip(x_i * max_rate_hz * dt_s, 0, 1) and phase_i[-1] = 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import GraphError

NEURON_MODELS = ("if", "lif")
RESET_MODES = ("subtract", "zero")
ENCODINGS = ("analog", "poisson", "regular")
MAX_SPIKES_PER_STEP = 2**24  # spike counts stay exact integers in float32
# The numeric sanity bound of every parameter a network holds (threshold, v_init, reset_amount, bias, rates,
# and a projection's weights times its fan-in, see Projection.validate): |x| <= MAX_MAGNITUDE. State is
# float32 in the reference executor (largest finite 3.4e38): a current bounded by 1e30 leaves a factor 3.4e8
# for several projections adding up and a membrane integrating it over millions of steps before anything can
# overflow to infinity (which would make spikes, rates and energy NaN). Thresholds are at least
# MIN_THRESHOLD, so that theta is a normal float32 and v / theta (several spikes per step) stays finite.
MAX_MAGNITUDE = 1e30
MIN_THRESHOLD = 1e-30
NEURON_FIELDS = ("model", "threshold", "reset", "decay", "syn_decay", "refractory_steps", "v_init",
                 "reset_amount", "max_spikes_per_step", "strict_threshold")


def _finite(value, what: str) -> float:
    """``value`` as a float, finite and within +-MAX_MAGNITUDE (the numeric sanity bound)."""
    try:
        value = float(value)
    except (TypeError, ValueError, OverflowError):
        raise GraphError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise GraphError(f"{what} must be finite, got {value}")
    if abs(value) > MAX_MAGNITUDE:
        raise GraphError(f"{what} is {value:.3g}, beyond +-{MAX_MAGNITUDE:g} (the float32 state would overflow)")
    return value


def _fraction(value, what: str, owner: str, allow_one: bool) -> float:
    value = _finite(value, f"{owner}: {what}")
    if not (0.0 <= value < 1.0 or (allow_one and value == 1.0)):
        raise GraphError(f"{owner}: {what} must be in [0, 1{']' if allow_one else ')'}, got {value}")
    return value


@dataclass(frozen=True)
class NeuronModel:
    """An integrate-and-fire neuron (IF, or LIF with a leak), see the module docstring.

    Parameters
    ----------
    model : "if" (decay must be 1) or "lif" (decay in [0, 1))
    threshold : float > 0, theta
    reset : "subtract" (reset by subtraction) or "zero"
    decay : per-step membrane decay lam
    syn_decay : per-step decay alpha of an exponential synaptic current, or None
        for current-based input without a synaptic filter
    refractory_steps : steps after a spike during which the neuron is held
    v_init : initial membrane potential v[-1] (e.g. theta / 2 for a threshold shift)
    reset_amount : what reset "subtract" removes per spike (None: theta); finite, > 0
    max_spikes_per_step : the most spikes a neuron emits in one step (1: a binary
        spike); above 1 a firing neuron emits min(m, floor(v / theta)) spikes
    strict_threshold : fire on v > theta instead of v >= theta
    """

    model: str = "if"
    threshold: float = 1.0
    reset: str = "subtract"
    decay: float = 1.0
    syn_decay: float | None = None
    refractory_steps: int = 0
    v_init: float = 0.0
    reset_amount: float | None = None
    max_spikes_per_step: int = 1
    strict_threshold: bool = False

    @property
    def subtracted(self) -> float:
        """What reset "subtract" removes per spike (reset_amount, else theta)."""
        return float(self.threshold if self.reset_amount is None else self.reset_amount)

    def extensions(self) -> list:
        """The semantics beyond a plain one-spike IF/LIF that this model uses, in words (for refusals)."""
        out = []
        if self.reset_amount is not None and self.reset_amount != self.threshold:
            out.append(f"a subtractive reset of {self.reset_amount:.9g} instead of theta {self.threshold:.9g} "
                       f"(reset_amount)")
        if self.max_spikes_per_step != 1:
            out.append(f"up to {self.max_spikes_per_step} spikes per step (max_spikes_per_step)")
        if self.strict_threshold:
            out.append("the strict threshold test v > theta (strict_threshold)")
        return out

    @classmethod
    def lif(cls, tau_rc_s: float, dt_s: float, tau_syn_s: float | None = None, **kw) -> "NeuronModel":
        """A LIF neuron from time constants, by exact integration over one step of ``dt_s``."""
        if not (tau_rc_s > 0 and dt_s > 0) or (tau_syn_s is not None and not tau_syn_s > 0):
            raise GraphError(f"LIF time constants must be > 0, got tau_rc {tau_rc_s}, tau_syn {tau_syn_s}, dt {dt_s}")
        syn = None if tau_syn_s is None else math.exp(-dt_s / tau_syn_s)
        return cls(model="lif", decay=math.exp(-dt_s / tau_rc_s), syn_decay=syn, **kw)

    def tau_rc_s(self, dt_s: float) -> float | None:
        """The membrane time constant whose exact step is ``decay`` (None for IF, 0 for decay 0)."""
        if self.model == "if":
            return None
        return 0.0 if self.decay == 0 else -dt_s / math.log(self.decay)

    def validate(self, owner: str) -> None:
        if self.model not in NEURON_MODELS:
            raise GraphError(f"{owner}: unknown neuron model {self.model!r} (known: {', '.join(NEURON_MODELS)})")
        if self.reset not in RESET_MODES:
            raise GraphError(f"{owner}: unknown reset mode {self.reset!r} (known: {', '.join(RESET_MODES)})")
        if _finite(self.threshold, f"{owner}: threshold") <= 0:
            raise GraphError(f"{owner}: threshold must be > 0, got {self.threshold}")
        if self.threshold < MIN_THRESHOLD:
            raise GraphError(f"{owner}: threshold {self.threshold:.3g} is below {MIN_THRESHOLD:g} (not a normal "
                             f"float32; v / theta would overflow)")
        _finite(self.v_init, f"{owner}: v_init")
        decay = _fraction(self.decay, "decay", owner, allow_one=True)
        if self.model == "if" and decay != 1.0:
            raise GraphError(f"{owner}: an IF neuron has no leak; decay must be 1, got {self.decay} (use model 'lif')")
        if self.model == "lif" and decay == 1.0:
            raise GraphError(f"{owner}: a LIF neuron needs decay < 1 (decay 1 is model 'if')")
        if self.syn_decay is not None:
            _fraction(self.syn_decay, "syn_decay", owner, allow_one=False)
        r = self.refractory_steps
        if not isinstance(r, int) or isinstance(r, bool) or not 0 <= r <= 2**20:
            raise GraphError(f"{owner}: refractory_steps must be an integer in [0, 2**20], got {r!r}")
        if self.reset_amount is not None:
            if self.reset != "subtract":
                raise GraphError(f"{owner}: reset_amount applies to reset 'subtract' only (reset is {self.reset!r})")
            if _finite(self.reset_amount, f"{owner}: reset_amount") <= 0:
                raise GraphError(f"{owner}: reset_amount must be > 0, got {self.reset_amount}")
        m = self.max_spikes_per_step
        if not isinstance(m, int) or isinstance(m, bool) or not 1 <= m <= MAX_SPIKES_PER_STEP:
            raise GraphError(f"{owner}: max_spikes_per_step must be an integer in [1, 2**24], got {m!r}")
        if not isinstance(self.strict_threshold, bool):
            raise GraphError(f"{owner}: strict_threshold must be true or false, got {self.strict_threshold!r}")

    def to_dict(self) -> dict:
        """The fields as JSON; the later fields only where they differ from their defaults (so a plain
        model's dict, and the graph file holding it, is what it was before they existed)."""
        d = {"model": self.model, "threshold": self.threshold, "reset": self.reset, "decay": self.decay,
             "syn_decay": self.syn_decay, "refractory_steps": self.refractory_steps, "v_init": self.v_init}
        if self.reset_amount is not None:
            d["reset_amount"] = self.reset_amount
        if self.max_spikes_per_step != 1:
            d["max_spikes_per_step"] = self.max_spikes_per_step
        if self.strict_threshold:
            d["strict_threshold"] = True
        return d


@dataclass(frozen=True)
class InputEncoding:
    """How an input population turns a sample into per-step input (module docstring).

    Parameters
    ----------
    kind : "analog", "poisson" or "regular"
    max_rate_hz : the rate of a value of 1 for spiking encodings (ignored by analog)
    """

    kind: str = "analog"
    max_rate_hz: float = 1000.0

    def validate(self, owner: str) -> None:
        if self.kind not in ENCODINGS:
            raise GraphError(f"{owner}: unknown input encoding {self.kind!r} (known: {', '.join(ENCODINGS)})")
        if _finite(self.max_rate_hz, f"{owner}: max_rate_hz") <= 0:
            raise GraphError(f"{owner}: max_rate_hz must be > 0, got {self.max_rate_hz}")

    def to_dict(self) -> dict:
        return {"kind": self.kind, "max_rate_hz": self.max_rate_hz}


def psc_exp_propagator(tau_syn: float, tau_m: float, c_m: float = 1.0, h: float = 1.0) -> float:
    """The exact-integration propagator P21 from an exponential synaptic current to the
    membrane over one step h: the membrane change caused by a unit current that decays
    with tau_syn, under a membrane leak tau_m (capacitance c_m); NEST's iaf_psc_exp, and the
    PyNN lowering of a graph neuron with a synaptic current."""
    if not math.isfinite(tau_m):
        return tau_syn / c_m * -math.expm1(-h / tau_syn)
    inv = (tau_m - tau_syn) / (tau_syn * tau_m)
    p = tau_syn * tau_m / (tau_m - tau_syn) / c_m * math.exp(-h / tau_syn) * math.expm1(h * inv) \
        if tau_m != tau_syn else 0.0
    if not (math.isfinite(p) and p > 0):
        p = h / c_m * math.exp(-h / tau_m)  # the limit tau_syn -> tau_m
    return p
