"""The four library presets (docs/nir-libraries.md): how snnTorch, Norse, sinabs and Rockpool write their
discrete neurons into NIR, read back as spikeport neuron models, one :class:`Preset` subclass each."""
from __future__ import annotations

import numpy as np

from ...errors import GraphError
from ..neurons import NeuronModel
from .detect import rockpool_dt
from .libraries import (DEFAULT_STEP_S, F32, NORSE_DT, ROCKPOOL_DT, ROCKPOOL_MAX_SPIKES, SIGNATURE_RTOL,
                        SINABS_MAX_SPIKES, SNNTORCH_DT, close, exp32, f32)
from .presets import PRESETS, Preset


def several_spikes_reset(reset) -> str:
    """The reset of sinabs' and Rockpool's neurons, which emit floor(v/theta) spikes per step, in words."""
    return ("subtract that many theta" if reset in (None, "subtract") else "reset to zero as given") \
        + "; state starts at 0"


@PRESETS.register("snntorch")
class SnnTorch(Preset):
    lib = "snntorch"
    default_dt = fixed_dt = SNNTORCH_DT  # snntorch/export_nir.py's

    def assumptions(self, reset):
        parts = ["dt 1e-4 s (its exporter's; the discrete dynamics do not depend on it"
                 + (f"; the network's dt_s is {self.net_dt:g} s as given)" if self.user_dt is not None else ")"),
                 "beta = float32(1 - dt/tau), alpha = float32(1 - dt/tau_syn), tau = inf as IF; input gain "
                 "1 (r dt/tau = 1 to float32 rounding)"]
        if reset in (None, "subtract"):
            parts.append("reset by subtraction applied one step late, i.e. theta/beta subtracted in the same step "
                         "(snnTorch does not write the reset" + ("" if reset else "; use reset='zero' for "
                                                                 "reset_mechanism='zero'") + ")")
        else:
            parts.append("reset to zero as given (Leaky: same step; Synaptic: zero and 1 refractory step)")
        parts.append("spike where v > v_threshold (strict); state starts at 0")
        return parts

    def read(self, n, theta, v_reset, v_leak, carriers):
        t, owner, reset = n.type, n.owner, self.reset_override
        if np.any(v_leak):
            raise GraphError(f"{owner}: v_leak != 0, which snnTorch's exporter never writes")
        tau = n.raw("tau_mem" if t == "CubaLIF" else "tau")
        if np.all(np.isinf(tau)):
            lam = 1.0
        else:
            if not (np.all(np.isfinite(tau)) and np.all(tau > SNNTORCH_DT)):
                raise GraphError(f"{owner}: tau must be > 1e-4 s (snnTorch's dt) or inf, got {tau.min():g}")
            lam = n.one(f32(1.0 - SNNTORCH_DT / tau), "tau", "membrane decay")
            if not close(n.param("r") * SNNTORCH_DT / tau, 1.0):
                raise GraphError(f"{owner}: r dt/tau = {float(np.max(n.param('r') * SNNTORCH_DT / tau)):.9g} is "
                                 f"not 1 (snnTorch's exporter writes r = tau/1e-4); import with library='nir'")
        if t == "IF":
            raise GraphError(f"{owner}: snnTorch's exporter writes no IF node (Leaky(beta=1) is LIF tau = inf)")
        syn = None
        if t == "CubaLIF":
            ts = n.param("tau_syn")
            if not np.all(ts > SNNTORCH_DT):
                raise GraphError(f"{owner}: tau_syn must be > 1e-4 s (snnTorch's dt), got {ts.min():g}")
            syn = n.one(f32(1.0 - SNNTORCH_DT / ts), "tau_syn", "synaptic decay")
            if not close(n.param("w_in") * SNNTORCH_DT / ts, 1.0):
                raise GraphError(f"{owner}: w_in dt/tau_syn is not 1 (snnTorch's exporter writes w_in = "
                                 f"tau_syn/1e-4); import with library='nir'")
        th = n.one(theta, "v_threshold", "threshold")
        if reset in (None, "subtract"):
            kw = dict(reset="subtract", reset_amount=None if lam == 1.0 else th / lam)
        else:
            kw = dict(reset="zero", refractory_steps=1 if t == "CubaLIF" else 0)
        nm = NeuronModel(model="if" if lam == 1.0 else "lif", threshold=th, decay=lam, syn_decay=syn,
                         strict_threshold=True, **kw)
        return nm, None, None


@PRESETS.register("norse")
class Norse(Preset):
    lib = "norse"
    default_dt, dt_is_given = NORSE_DT, True  # to_nir's default dt, which changes Norse's dynamics

    def assumptions(self, reset):
        return [f"dt {self.dt:g} s ({'as given' if self.user_dt is not None else 'to_nir default'}; not in the "
                f"file), k = dt^2/tau because its exporter writes tau = dt/tau_inv",
                "LIF: v += k (v_leak - v + I); CubaLIF: the current jumps by I, then v += k (v_leak - v + i), "
                "then i decays by dt^2/tau_syn; IF: v += I (r and dt unused)",
                "spike where v > v_threshold (strict); " + (
                    "reset to v_reset in the same step" if reset in (None, "zero") else "reset by subtracting "
                    "v_threshold as given") + "; v starts at v_leak (IF: v_reset)"]

    def read(self, n, theta, v_reset, v_leak, carriers):
        t, owner, reset, shape = n.type, n.owner, self.reset_override, n.shape
        factor = bias = None
        if t != "IF" and not np.all(n.param("r") == 1):
            self.notes.append(f"r of {n.name!r} ignored (Norse ignores it)")
        if t == "IF":
            lam, syn = 1.0, None
        else:
            dt = self.dt

            def kk(tau, what):
                if not np.all(tau > 0):
                    raise GraphError(f"{owner}: {what} must be > 0, got {tau.min():g}")
                k = (F32(dt) * f32(dt / tau)).astype(F32).astype(np.float64)
                if np.any(k > 1):
                    raise GraphError(f"{owner}: dt^2/{what} = {k.max():g} > 1 at dt = {dt:g} s (Norse's step "
                                     f"would overshoot): give the dt Norse's to_nir used")
                return k
            k = kk(n.param("tau_mem" if t == "CubaLIF" else "tau"), "tau_mem" if t == "CubaLIF" else "tau")
            lam = n.one(1.0 - k, "tau", "membrane decay")
            syn = None
            if t == "CubaLIF":
                if not np.all(n.opt("w_in", 1.0) == 1):
                    raise GraphError(f"{owner}: w_in != 1, which Norse's exporter never writes")
                syn = n.one(1.0 - kk(n.param("tau_syn"), "tau_syn"), "tau_syn", "synaptic decay")
            factor = k
            bias = k * (v_leak - v_reset)
            if lam == 1.0:
                raise GraphError(f"{owner}: the membrane does not decay at dt = {dt:g} s")
        th_u = theta - v_reset
        if not np.all(th_u > 0):
            raise GraphError(f"{owner}: v_threshold must exceed v_reset for every neuron")
        th = n.one(th_u, "v_threshold - v_reset", "threshold")
        v0 = n.one(np.zeros(shape) if t == "IF" else v_leak - v_reset, "v_leak - v_reset", "v_init")
        if reset in (None, "zero"):
            kw = dict(reset="zero")
        else:
            kw = dict(reset="subtract", reset_amount=None if not np.any(v_reset) else
                      n.one(theta, "v_threshold", "reset amount"))
        nm = NeuronModel(model="if" if lam == 1.0 else "lif", threshold=th, decay=lam, syn_decay=syn,
                         v_init=v0, strict_threshold=True, **kw)
        return nm, factor, bias


@PRESETS.register("sinabs")
class Sinabs(Preset):
    lib = "sinabs"
    default_dt = DEFAULT_STEP_S  # sinabs has no time unit (tau in steps): fixed_dt None

    def assumptions(self, reset):
        return [f"tau in time steps (one step = the network's dt_s {self.net_dt:g} s"
                + (", as given)" if self.user_dt is not None else ", a default: sinabs has no time unit)"),
                "LIF: v = exp(-1/tau) v + (1 - exp(-1/tau)) I (norm_input=True, its default; not in the "
                "file); IF: v += I",
                "MultiSpike: floor(v/theta) spikes where v >= theta, " + several_spikes_reset(reset)]

    def read(self, n, theta, v_reset, v_leak, carriers):
        t, owner, reset = n.type, n.owner, self.reset_override
        factor = None
        if t == "CubaLIF":
            raise GraphError(f"{owner}: sinabs' exporter writes no CubaLIF node")
        if not np.all(n.param("r") == 1) or np.any(v_leak) or np.any(v_reset):
            raise GraphError(f"{owner}: r != 1, v_leak != 0 or v_reset != 0, which sinabs' exporter never "
                             f"writes; import with library='nir'")
        if t == "IF":
            lam = 1.0
        else:
            tau = n.param("tau")
            if not np.all(tau > 0):
                raise GraphError(f"{owner}: tau must be > 0 (time steps), got {tau.min():g}")
            a = exp32((F32(1.0) / f32(tau)).astype(F32) * F32(-1.0))
            lam = n.one(a.astype(np.float64), "tau", "membrane decay")
            factor = np.full(n.shape, float(F32(1.0) - F32(lam)))
            if lam == 1.0:
                raise GraphError(f"{owner}: tau = {tau.max():g} steps gives no decay in float32")
        th = n.one(theta, "v_threshold", "threshold")
        nm = NeuronModel(model="if" if lam == 1.0 else "lif", threshold=th, decay=lam,
                         reset="zero" if reset == "zero" else "subtract", max_spikes_per_step=SINABS_MAX_SPIKES)
        return nm, factor, None


@PRESETS.register("rockpool")
class Rockpool(Preset):
    lib = "rockpool"
    bias_types = ("IF", "LIF")  # (its exporter writes no IF node: refused when read)

    def time_step(self, dt_s, graph):  # dt is written through r
        dts = [d for d in (rockpool_dt(v) for v in graph.nodes.values()
                           if type(v).__name__ in ("LIF", "CubaLIF")) if d is not None]
        rec = float(np.median(np.concatenate([d.ravel() for d in dts]))) if dts else None
        if dt_s is not None:
            self.dt = dt_s
            if rec is not None and abs(rec / dt_s - 1) > SIGNATURE_RTOL:
                self.notes.append(f"dt {dt_s:g} s as given, although r says {rec:.9g} s")
        elif rec is None:
            self.dt = ROCKPOOL_DT
        else:
            self.dt = ROCKPOOL_DT if abs(rec / ROCKPOOL_DT - 1) <= SIGNATURE_RTOL else rec
        self.net_dt = self.dt
        self.rec = rec

    def assumptions(self, reset):
        how = ("as given" if self.user_dt is not None else
               "Rockpool's default 1e-3 s, which r confirms" if self.dt == ROCKPOOL_DT and self.rec is not None
               else "recovered from r" if self.rec is not None else "Rockpool's default")
        return [f"dt {self.dt:.9g} s ({how}: r = tau exp(-dt/tau)/dt)",
                "membrane decay exp(-dt/tau_mem), gain 1; CubaLIF: i = exp(-dt/tau_syn) (i + I) (the jump "
                "decays in its own step); bias = v_leak",
                f"StepPWL: floor(v/theta) spikes (at most {ROCKPOOL_MAX_SPIKES}) where v >= theta, "
                + several_spikes_reset(reset)]

    def read(self, n, theta, v_reset, v_leak, carriers):
        t, owner, reset = n.type, n.owner, self.reset_override
        factor = None
        if t == "IF":
            raise GraphError(f"{owner}: Rockpool's exporter writes no IF node")
        dt = self.dt

        def decay(tau, what):
            if not np.all(tau > 0):
                raise GraphError(f"{owner}: {what} must be > 0, got {tau.min():g}")
            return exp32((F32(1.0) / f32(tau)).astype(F32) * F32(-dt)).astype(np.float64)
        lam = n.one(decay(n.param("tau_mem" if t == "CubaLIF" else "tau"), "tau"), "tau", "membrane decay")
        syn = None
        if t == "CubaLIF":
            if not np.all(n.opt("w_in", 1.0) == 1):
                raise GraphError(f"{owner}: w_in != 1, which Rockpool's exporter never writes")
            syn = n.one(decay(n.param("tau_syn"), "tau_syn"), "tau_syn", "synaptic decay")
            factor = np.full(n.shape, syn)
        if np.any(v_reset):
            raise GraphError(f"{owner}: v_reset != 0, which Rockpool's exporter never writes")
        bias = v_leak.copy()
        for _, b in carriers:
            bias = bias + b.astype(np.float64)
        if lam == 1.0:
            raise GraphError(f"{owner}: the membrane does not decay at dt = {dt:g} s")
        th = n.one(theta, "v_threshold", "threshold")
        nm = NeuronModel(model="lif", threshold=th, decay=lam, syn_decay=syn,
                         reset="zero" if reset == "zero" else "subtract", max_spikes_per_step=ROCKPOOL_MAX_SPIKES)
        return nm, factor, bias
