"""Neuron models and input encodings of the graph, with their per-step semantics.

Time is discrete: steps t = 0, 1, ..., T-1 of length ``Network.dt_s``.

Spiking neurons (:class:`NeuronModel`), for every neuron j of a population::

    I_j[t] = b_j + sum over projections p into the population of (A_p s_pre[t - d_p])_j
    v_j[t] = lam * v_j[t-1] + I_j[t]          lam = 1 (IF), exp(-dt/tau_rc) (LIF)
    s_j[t] = 1 if v_j[t] >= theta else 0       (at most one spike per step)
    reset "subtract": v_j[t] <- v_j[t] - theta * s_j[t]
    reset "zero":     v_j[t] <- 0 where s_j[t] = 1
    v_j[-1] = v_init;  s_pre[t] = 0 for t < 0

A_p is the linear map of projection p (its chain of ops), d_p its delay in steps
and b_j the population's bias (a constant current added every step).

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


def _finite(value, what: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise GraphError(f"{what} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise GraphError(f"{what} must be finite, got {value}")
    return value


@dataclass(frozen=True)
class NeuronModel:
    """An integrate-and-fire neuron (IF, or LIF with a leak), see the module docstring.

    Parameters
    ----------
    model : "if" or "lif"
    threshold : float > 0, theta
    reset : "subtract" (reset by subtraction) or "zero"
    tau_rc_s : membrane time constant of a LIF neuron in seconds; the per-step
        decay is lam = exp(-dt_s / tau_rc_s). None for IF.
    v_init : initial membrane potential v[-1] (e.g. theta / 2 for a threshold shift)
    """

    model: str = "if"
    threshold: float = 1.0
    reset: str = "subtract"
    tau_rc_s: float | None = None
    v_init: float = 0.0

    def validate(self, owner: str) -> None:
        if self.model not in NEURON_MODELS:
            raise GraphError(f"{owner}: unknown neuron model {self.model!r} (known: {', '.join(NEURON_MODELS)})")
        if self.reset not in RESET_MODES:
            raise GraphError(f"{owner}: unknown reset mode {self.reset!r} (known: {', '.join(RESET_MODES)})")
        if _finite(self.threshold, f"{owner}: threshold") <= 0:
            raise GraphError(f"{owner}: threshold must be > 0, got {self.threshold}")
        _finite(self.v_init, f"{owner}: v_init")
        if self.model == "lif":
            if self.tau_rc_s is None or _finite(self.tau_rc_s, f"{owner}: tau_rc_s") <= 0:
                raise GraphError(f"{owner}: a LIF neuron needs tau_rc_s > 0, got {self.tau_rc_s}")
        elif self.tau_rc_s is not None:
            raise GraphError(f"{owner}: an IF neuron has no leak; tau_rc_s must be None, got {self.tau_rc_s}")

    def decay(self, dt_s: float) -> float:
        """The per-step membrane decay lam (1 for IF)."""
        return 1.0 if self.model == "if" else math.exp(-dt_s / self.tau_rc_s)

    def to_dict(self) -> dict:
        return {"model": self.model, "threshold": self.threshold, "reset": self.reset,
                "tau_rc_s": self.tau_rc_s, "v_init": self.v_init}


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
