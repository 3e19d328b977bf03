"""Fixed-point arithmetic of a quantized network: a chip's number formats.

A network with ``Network.fixed_point`` set is in integer units: every weight,
bias, threshold and v_init is an integer, in units of its post population's
least significant bit (LSB), and every state update is integer arithmetic::

    J[t] = round_half_even(sum_p A_p s_pre[t - d_p])     (exact already for spike inputs)
    i[t] = sat(trunc(i[t-1] * a / 2**decay_bits) + J[t])     a = round(syn_decay * 2**decay_bits)
    v[t] = sat(trunc(v[t-1] * l / 2**decay_bits) + i[t] + b) l = round(decay * 2**decay_bits)
    s[t] = v[t] >= theta;  reset as in floating point (theta, v_init integers)

trunc rounds toward zero (as an integer multiply-and-shift of a sign-magnitude
register does, e.g. Loihi's decay); ``sat`` clamps to
[-(2**(state_bits-1) - 1), 2**(state_bits-1) - 1] when ``saturate``, else wraps
around in two's complement. Weights lie in [-(2**(weight_bits-1) - 1),
2**(weight_bits-1) - 1]. Pooling inside a projection sums (SumPool2d); an
average's 1/k**2 is folded into the weights by quantization
(:func:`spikeport.deploy.quantize.quantize`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import GraphError


@dataclass(frozen=True)
class FixedPoint:
    """Number formats: signed weight bits, signed state bits, decay fraction bits, saturation."""

    weight_bits: int = 8
    state_bits: int = 24
    decay_bits: int = 12
    saturate: bool = True

    def validate(self, owner: str = "network: fixed_point") -> None:
        for name, lo, hi in (("weight_bits", 2, 32), ("state_bits", 4, 52), ("decay_bits", 1, 24)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
                raise GraphError(f"{owner}: {name} must be an integer in [{lo}, {hi}], got {value!r}")
        if self.state_bits + self.decay_bits > 53:
            raise GraphError(f"{owner}: state_bits + decay_bits must be at most 53 (exact in float64), "
                             f"got {self.state_bits} + {self.decay_bits}")
        if not isinstance(self.saturate, bool):
            raise GraphError(f"{owner}: saturate must be true or false, got {self.saturate!r}")

    @property
    def weight_max(self) -> int:
        return 2 ** (self.weight_bits - 1) - 1

    @property
    def state_max(self) -> int:
        return 2 ** (self.state_bits - 1) - 1

    def decay_int(self, decay: float) -> int:
        return int(round(decay * 2**self.decay_bits))

    def to_dict(self) -> dict:
        return {"weight_bits": self.weight_bits, "state_bits": self.state_bits, "decay_bits": self.decay_bits,
                "saturate": self.saturate}


def check_integers(values: np.ndarray, limit: int, owner: str, what: str) -> None:
    """Refuse non-integer values or values beyond +-limit in a fixed-point network."""
    if values.size == 0:
        return
    if not np.array_equal(values, np.rint(values)):
        raise GraphError(f"{owner}: {what} must be integers in a fixed-point network")
    worst = float(np.abs(values).max())
    if worst > limit:
        raise GraphError(f"{owner}: {what} reach {worst:g}, beyond the fixed-point limit {limit}")
