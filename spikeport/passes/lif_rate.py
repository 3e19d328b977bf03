"""The rate of the graph's LIF neuron, measured on the reference executor: what a converted
soft-LIF network's neurons do with the current the ANN's J stands for (the formula's rate is
:func:`spikeport.models.methods.soft_lif.lif_rate_hz`; docs/methods.md compares the two)."""
from __future__ import annotations

import math

import numpy as np

from ..backends import reference
from ..ir import Dense, InputEncoding, Network, NeuronModel, Population, Projection
from ..models.methods.base import steps_per


def graph_lif_rate_hz(j, *, tau_rc_s: float = 0.022, tau_ref_s: float = 0.002, dt_s: float = 1e-3,
                      reset: str = "subtract", seconds: float = 5.0) -> np.ndarray:
    """The rate of one graph LIF neuron per current in ``j`` (the input (1 - decay) j per step
    as its bias), run on the reference executor for ``seconds``: what the converted network's
    neurons do with the current the ANN's j stands for."""
    j = np.atleast_1d(np.asarray(j, dtype=np.float64))
    n = len(j)
    decay = math.exp(-dt_s / tau_rc_s)
    neuron = NeuronModel.lif(tau_rc_s, dt_s, threshold=1.0, reset=reset, refractory_steps=steps_per(tau_ref_s, dt_s))
    net = Network([Population("input", (1,), encoding=InputEncoding("analog")),
                   Population("lif", (n,), neuron=neuron, bias=((1.0 - decay) * j).astype(np.float32))],
                  [Projection("input->lif", "input", "lif", [Dense(np.zeros((n, 1), np.float32))])],
                  dt_s=dt_s, input="input", output="lif").validate()
    steps = int(round(seconds / dt_s))
    act = reference.run(net, np.zeros((1, 1), np.float32), steps, device="cpu", record_counts=True,
                        precision="float64")
    return act.neuron_counts["lif"][0].astype(np.float64) / (steps * dt_s)
