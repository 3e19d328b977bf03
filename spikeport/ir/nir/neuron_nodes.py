"""NIR's neuron nodes as spikeport populations under generic NIR semantics (package docstring).

:data:`NEURON_NODES` maps each NIR neuron type to its per-step map (decay, synaptic decay, input gain and
constant drive, in NIR units about v_reset); :func:`nir_neuron` turns that map into a :class:`NeuronModel`,
exactly or refused. A node exported by spikeport carries its model in metadata: :func:`from_metadata`.
"""
from __future__ import annotations

import numpy as np

from ...errors import GraphError
from ..neurons import NEURON_FIELDS, NeuronModel
from .common import DISCRETIZATIONS, RTOL, Registry, float_array, same, uniform
from .metadata import array_from_json, meta_in

NEURON_NODES = Registry("NIR neuron node type")


def param(node, field, shape, owner):
    """A neuron parameter of ``node`` as float64, broadcast to the population's shape."""
    a = float_array(getattr(node, field, None), owner, field).astype(np.float64)
    try:
        return np.broadcast_to(a, shape)
    except ValueError:
        raise GraphError(f"{owner}: {field} of shape {a.shape} does not fit the population shape {shape}") from None


class Step:
    """The discretized leak of one time constant: (k, decay) per neuron, with k the fraction of the way to
    the target taken per step (dt/tau under forward Euler, 1 - exp(-dt/tau) under "exponential")."""

    def __init__(self, owner: str, dt: float, scheme: str):
        self.owner, self.dt, self.scheme = owner, dt, scheme

    def __call__(self, tau, what):
        owner, dt = self.owner, self.dt
        if not np.all(tau > 0):
            raise GraphError(f"{owner}: {what} must be > 0, got {tau.min():g}")
        if self.scheme == "forward-euler":
            k = dt / tau
            if np.any(k > 1):
                raise GraphError(f"{owner}: {what} = {tau.min():g} s is shorter than dt = {dt:g} s; a "
                                 f"forward-Euler step would give a negative decay; use a smaller dt")
            return k, 1.0 - k
        return -np.expm1(-dt / tau), np.exp(-dt / tau)


# A handler takes (P, step, owner, dt, r, v_reset, bias_aff), where P(field) is a parameter shaped like the
# population and step a Step, and returns (decay, syn_decay or None, gain, const).

@NEURON_NODES.register("IF")
def integrate_and_fire(P, step, owner, dt, r, v_reset, bias_aff):
    gain = dt * r
    return 1.0, None, gain, gain * bias_aff


@NEURON_NODES.register("LIF")
def leaky_integrate_and_fire(P, step, owner, dt, r, v_reset, bias_aff):
    k, lam = step(P("tau"), "tau")
    decay = uniform(lam, owner, "tau", "membrane decay")
    gain = k * r
    return decay, None, gain, k * (P("v_leak") - v_reset) + gain * bias_aff


@NEURON_NODES.register("CubaLIF")
def current_based_lif(P, step, owner, dt, r, v_reset, bias_aff):
    k, lam = step(P("tau_mem"), "tau_mem")
    ks, alpha = step(P("tau_syn"), "tau_syn")
    decay = uniform(lam, owner, "tau_mem", "membrane decay")
    syn = uniform(alpha, owner, "tau_syn", "synaptic decay")
    if np.any(bias_aff):
        raise GraphError(f"{owner}: a bias feeding a CubaLIF passes through its synaptic filter, which "
                         f"spikeport's population bias does not; a constant input is v_leak here")
    return decay, syn, k * r * ks * P("w_in"), k * (P("v_leak") - v_reset)


def coefficients(imp, name, shape, bias_aff, scheme):
    """The node's per-step map in NIR units, about v_reset: u = v - v_reset,
    u[t] = decay u[t-1] + gain (filtered) J[t] + const; spike when u > theta_u; u[-1] = -v_reset."""
    node, t, owner, dt = imp.nodes[name], imp.type[name], imp.owner(name), imp.dt
    P = lambda field: param(node, field, shape, owner)  # noqa: E731
    r = P("r")
    v_reset = np.zeros(shape) if getattr(node, "v_reset", None) is None else P("v_reset")
    decay, syn, gain, const = NEURON_NODES[t](P, Step(owner, dt, scheme), owner, dt, r, v_reset, bias_aff)
    if not np.all(np.isfinite(gain) & (gain > 0)):
        raise GraphError(f"{owner}: the per-step input gain (r{', w_in' if t == 'CubaLIF' else ''}) must be "
                         f"positive and finite, got {gain.min():g}")
    theta_u = P("v_threshold") - v_reset
    if not np.all(theta_u > 0):
        raise GraphError(f"{owner}: v_threshold must exceed v_reset for every neuron")
    if decay == 1.0 and t != "IF":
        raise GraphError(f"{owner}: the membrane does not decay at dt = {dt:g} s (tau too long)")
    return {"decay": decay, "syn": syn, "gain": gain, "const": const, "theta_u": theta_u, "v_reset": v_reset}


def nir_neuron(imp, name, shape, carriers):
    """(NeuronModel, bias, per-neuron weight factor or None, per-neuron v_init or None) for neuron node
    ``name`` of importer ``imp``, read with generic NIR semantics."""
    node, owner = imp.nodes[name], imp.owner(name)
    md = meta_in(node, owner)
    scheme = md.get("discretization", "forward-euler")
    if scheme not in DISCRETIZATIONS:
        raise GraphError(f"{owner}: unknown discretization {scheme!r} in metadata "
                         f"(known: {', '.join(DISCRETIZATIONS)})")
    bias_aff = np.zeros(shape)
    for _, b in carriers:
        bias_aff = bias_aff + b.astype(np.float64)
    co = coefficients(imp, name, shape, bias_aff, scheme)
    if "neuron" in md:
        nm, bias, v_init = from_metadata(imp, name, md, co, shape)
        return nm, bias, None, v_init
    imp.notes[scheme].append(name)
    theta_u, gain, v_reset, const = co["theta_u"], co["gain"], co["v_reset"], co["const"]
    theta, v_init = theta_u / gain, -v_reset / gain
    factor = None
    if same(theta) and same(v_init):
        bias = const / gain
    else:  # fold each neuron's threshold into its input weights and bias
        v_init = -v_reset / theta_u
        if not same(v_init):
            raise GraphError(f"{owner}: v_threshold (or the input gain) differs across neurons, and folding it "
                             f"into the weights needs v_reset / (v_threshold - v_reset) equal across neurons, "
                             f"which it is not (spikeport has one threshold and one v_init per population)")
        theta, bias, factor = np.ones(shape), const / theta_u, gain / theta_u
        imp.notes["folded"].append(name)
    nm = NeuronModel(model="if" if co["decay"] == 1.0 else "lif", reset="zero",
                     threshold=float(np.nextafter(theta.flat[0], np.inf)),  # v > thr  <=>  v >= next float
                     decay=co["decay"], syn_decay=co["syn"], v_init=float(v_init.flat[0]) + 0.0)
    nm.validate(owner)
    return nm, (np.array(bias, dtype=np.float64) if np.any(bias) else None), factor, None


def from_metadata(imp, name, md, co, shape):
    """A spikeport model stored by export_nir, checked against the node's NIR parameters."""
    owner = imp.owner(name)
    fields = md["neuron"]
    known = set(NEURON_FIELDS)
    if not isinstance(fields, dict) or not set(fields) <= known:
        raise GraphError(f"{owner}: metadata 'neuron' must be an object with fields {sorted(known)}")
    nm = NeuronModel(**fields)
    nm.validate(owner)
    spec = md.get("bias")
    if spec is None:
        bias, in_nir = None, True
    elif isinstance(spec, dict) and set(spec) == {"carrier"}:
        p = spec["carrier"]
        if p not in imp.pred[name] or imp.type[p] not in ("Affine", "Conv2d"):
            raise GraphError(f"{owner}: metadata puts its bias on node {p!r}, which is not an Affine or Conv2d "
                             f"feeding it")
        carried = imp.bias_into(p, shape, nonzero=False)
        if carried is None:
            raise GraphError(f"{owner}: metadata puts its bias on node {p!r}, which holds no bias")
        bias, in_nir = carried.copy(), True
    elif isinstance(spec, dict):
        bias, in_nir = array_from_json(spec, owner + " bias"), bool(spec.get("nir"))
        if bias.shape != tuple(shape):
            raise GraphError(f"{owner}: metadata bias has shape {bias.shape}, the population {shape}")
    else:
        raise GraphError(f"{owner}: metadata 'bias' must be null, a carrier node or an array")
    gain = co["gain"]
    want_const = (bias if bias is not None and in_nir else np.zeros(shape)).astype(np.float64)
    scale = max(1.0, float(np.abs(want_const).max(initial=0)))
    checks = [
        ("v_reset", np.all(co["v_reset"] == 0)),
        ("the input gain (r, tau, w_in)", np.allclose(gain, 1.0, rtol=RTOL, atol=0)),
        ("v_threshold", np.allclose(np.nextafter(co["theta_u"] / gain, np.inf), nm.threshold, rtol=RTOL, atol=0)),
        ("tau (decay)", abs(co["decay"] - nm.decay) <= RTOL),
        ("tau_syn (syn_decay)", (co["syn"] is None) == (nm.syn_decay is None)
         and (co["syn"] is None or abs(co["syn"] - nm.syn_decay) <= RTOL)),
        ("the bias (Affine bias, v_leak)",
         np.allclose(co["const"] / gain, want_const, rtol=RTOL, atol=RTOL * scale)),
    ]
    for what, ok in checks:
        if not ok:
            raise GraphError(f"{owner}: its {what} disagrees with its spikeport metadata (edited after "
                             f"export?); remove metadata['spikeport'] to import it as plain NIR")
    v_init = md.get("v_init")
    if v_init is not None:
        v_init = array_from_json(v_init, owner + " v_init") if isinstance(v_init, dict) else None
        if v_init is None or v_init.shape != tuple(shape):
            raise GraphError(f"{owner}: metadata v_init must be an array of the population's shape {tuple(shape)}")
    imp.notes["metadata"].append(name)
    return nm, bias, v_init
