"""NEST's native cells for the graph's neurons: the :class:`~spikeport.backends.pynn_lowering.Dialect`
of the pynn-nest backend (:mod:`spikeport.backends.pynn_nest` states what each cell realizes exactly)."""
from __future__ import annotations

import dataclasses
import math
import os
import warnings

os.environ.setdefault("PYNEST_QUIET", "1")  # no banner on import

with warnings.catch_warnings():  # NEST warns about its old verbosity call on import
    warnings.simplefilter("ignore")
    import nest  # noqa: E402

from ..errors import SpikeportError  # noqa: E402
from ..ir import Population  # noqa: E402
from ..ir.neurons import psc_exp_propagator  # noqa: E402
from .pynn_lowering import STEP_MS, Cell, Dialect, lif_tau  # noqa: E402

IF_TAU = 2.0 ** 44  # steps: NEST cells have no IF mode; a leak of 5.7e-14 per step (tau_m = 1e30 loses the current)


class NestCells(Dialect):
    """NEST native cells for the graph's neurons (module docstring): ``iaf_psc_delta``
    (reset to zero), ``eprop_iaf`` (reset by subtraction), ``iaf_psc_exp`` (a synaptic
    current). Capacitance 1 pF, potentials in mV relative to E_L = 0, one step = 1 ms."""

    name = "nest-native"
    v_name = "V_m"
    current_name = "I_e"
    inhibitory_sign = -1.0      # NEST current-based cells take negative inhibitory weights
    pynn_weight_factor = 1e-3   # pyNN.nest multiplies native weights by 1000 (nA -> pA)

    def __init__(self):
        self._types = {}

    def cell(self, pop: Population) -> Cell:
        nm = pop.neuron
        refr = nm.refractory_steps
        theta = float(nm.threshold)
        base = dict(C_m=1.0, E_L=0.0, V_th=theta, I_e=0.0)
        if nm.syn_decay is not None:
            notes = ()
            if nm.reset == "subtract":
                notes = ("reset by subtraction with a synaptic current: no NEST cell has both, lowered to reset "
                         "to zero (iaf_psc_exp; the charge above threshold is lost at every spike)",)
            tau = IF_TAU if nm.model == "if" else lif_tau(nm.decay)
            tau_s = lif_tau(nm.syn_decay)
            p21 = psc_exp_propagator(tau_s, tau)  # nominal: finalize() measures NEST's own
            p20 = tau * -math.expm1(-1.0 / tau)
            params = dict(base, V_reset=0.0, t_ref=refr * STEP_MS, tau_m=tau, tau_syn_ex=tau_s, tau_syn_in=tau_s)
            return Cell("iaf_psc_exp", params, weight_scale=1.0 / p21, current_scale=1.0 / p20, latency=1,
                        notes=notes)
        if nm.reset == "subtract":
            notes = []
            tau = IF_TAU if nm.model == "if" else lif_tau(nm.decay)
            if refr:
                notes.append("reset by subtraction with refractory steps: eprop_iaf keeps integrating input while "
                             "refractory (the graph holds v)")
            p_i = tau * (1.0 - math.exp(-1.0 / tau))  # eprop_iaf's current factor, as NEST computes it
            params = dict(base, t_ref=(refr + 1) * STEP_MS if refr else 0.0, tau_m=tau, c_reg=0.0)
            return Cell("eprop_iaf", params, weight_scale=1.0, current_scale=1.0 / p_i, current_lead=1,
                        notes=tuple(notes))
        tau = IF_TAU if nm.model == "if" else lif_tau(nm.decay)
        p30 = tau * -math.expm1(-1.0 / tau)
        params = dict(base, V_reset=0.0, t_ref=refr * STEP_MS, tau_m=tau)
        return Cell("iaf_psc_delta", params, weight_scale=1.0, current_scale=1.0 / p30)

    def finalize(self, cells: dict) -> dict:
        """Measure NEST's own propagators of every distinct cell in a throw-away kernel and
        scale currents and synaptic weights by them, so that one step adds exactly the graph's
        current (to one rounding) whatever formula this NEST version uses (NEST 3.10's
        iaf_psc_delta computes its current factor as tau (1 - exp(-1/tau)), which is 0 for
        tau_m = 1e30 and off by up to 1e-4 for tau_m = 2**44)."""
        kinds = {}
        for name, cell in cells.items():
            kinds.setdefault((cell.model, tuple(sorted(cell.params.items()))), []).append(name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nest.ResetKernel()
            nest.set_verbosity("M_ERROR")
            nest.resolution = STEP_MS
            probes = []
            for (model, params), names in kinds.items():
                p = dict(params, V_th=1e9, V_m=0.0, I_e=0.0)
                i_probe = nest.Create(model, 1, params=dict(p, I_e=1.0))
                v_probe = nest.Create(model, 1, params=dict(p, V_m=1.0))
                w_probe = nest.Create(model, 1, params=p)
                gen = nest.Create("spike_generator", params={"spike_times": [1.0]})  # sent at step 0
                nest.Connect(gen, w_probe, syn_spec={"weight": 1.0, "delay": STEP_MS})  # arrives at step 1
                probes.append((names, i_probe, v_probe, w_probe))
            trace = []
            for _ in range(3):
                nest.Simulate(STEP_MS)
                trace.append([(float(i.get("V_m")), float(v.get("V_m")), float(w.get("V_m")))
                              for _, i, v, w in probes])
            nest.ResetKernel()
        out = dict(cells)
        for k, (names, *_rest) in enumerate(probes):
            cell = cells[names[0]]
            current = trace[cell.current_lead][k][0]           # v after a unit current, from 0
            decay = trace[0][k][1]                              # v after one step, from 1
            weight = trace[1 + cell.latency][k][2]              # v after a unit spike
            if not (current > 0 and math.isfinite(current) and weight > 0 and math.isfinite(weight)):
                raise SpikeportError(f"NEST's {cell.model} with {dict(cell.params)} does not integrate a current "
                                     f"(one step of a unit current gives {current}, a unit spike {weight})")
            notes = cell.notes
            if cells[names[0]].params["tau_m"] == IF_TAU:
                notes = notes + (f"IF neurons run as NEST {cell.model} with tau_m = 2**44 steps (NEST has no IF "
                                 f"cell): decay {decay:.16f} per step, not 1",)
            fixed = dataclasses.replace(cell, current_scale=1.0 / current, weight_scale=1.0 / weight, notes=notes)
            for name in names:
                out[name] = fixed
        return out

    def celltype(self, sim_module, cell: Cell):
        if cell.model not in self._types:
            self._types[cell.model] = sim_module.native_cell_type(cell.model)
        return self._types[cell.model](**cell.params)
