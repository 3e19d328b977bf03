"""Reading back a file written by ``export_nir(library=...)``: each neuron node carries its spikeport model
in metadata, and the library importer's own reading of the node (:data:`VIEWS`, docs/nir-libraries.md,
section 8) must agree with it."""
from __future__ import annotations

import numpy as np

from ...errors import GraphError
from ..neurons import NEURON_FIELDS, NeuronModel
from .common import NEURON_TYPES, Registry
from .libraries import (F32, LIBRARY_NAMES, NORSE_DT, ROCKPOOL_MAX_SPIKES, SINABS_MAX_SPIKES, SNNTORCH_DT,
                        TARGET_TOL, exp32)
from .metadata import array_from_json, meta_in

# library -> view(t, get, out): fills ``out`` (see :func:`view`) for a neuron node of NIR type t
VIEWS = Registry("NIR library")
WRITTEN_TYPES = {"snntorch": ("LIF", "CubaLIF"), "norse": NEURON_TYPES, "sinabs": ("LIF",), "rockpool": ("CubaLIF",)}


def view(lib, t, get):
    """How ``lib``'s own NIR importer reads a neuron node written for it (docs/nir-libraries.md, section 8), in
    spikeport's terms: decay, syn_decay (None), scale (v_library = scale v_spikeport, so theta = v_threshold /
    scale and bias = v_leak / scale), strict (its spike test), reset, max_spikes. ``get(field)`` gives the node's
    field as a float32 array or None. float32 arithmetic in the library's order."""
    out = {"syn": None, "scale": np.float64(1.0)}
    with np.errstate(all="ignore"):
        VIEWS[lib](t, get, out)
    return out


@VIEWS.register("snntorch")
def snntorch_view(t, get, out):
    one, dt = F32(1.0), F32(SNNTORCH_DT)
    tau = get("tau_mem" if t == "CubaLIF" else "tau")
    out["decay"] = (one - dt / tau).astype(np.float64)
    if t == "CubaLIF":
        out["syn"] = (one - dt / get("tau_syn")).astype(np.float64)
    out.update(strict=True, reset="zero", max_spikes=1)


@VIEWS.register("norse")
def norse_view(t, get, out):
    one, dt = F32(1.0), F32(NORSE_DT)
    if t == "IF":
        out["decay"] = np.float64(1.0)
    else:
        k = (dt * (one / get("tau_mem" if t == "CubaLIF" else "tau"))).astype(np.float64)
        out["decay"], out["scale"] = 1.0 - k, k
        if t == "CubaLIF":
            ks = (dt * (one / get("tau_syn"))).astype(np.float64)
            out["syn"] = 1.0 - ks
            out["scale"] = k * ks * get("w_in").astype(np.float64) * get("r").astype(np.float64)
    out.update(strict=True, reset="zero", max_spikes=1)


@VIEWS.register("sinabs")
def sinabs_view(t, get, out):
    out["decay"] = exp32(F32(-1.0) / get("tau")).astype(np.float64)
    out.update(strict=False, reset="subtract", max_spikes=SINABS_MAX_SPIKES)


@VIEWS.register("rockpool")
def rockpool_view(t, get, out):
    """LIFTorch(dt = min(tau_mem / (1 + r))), q = beta (q + I), v = alpha v + q + bias."""
    tau = get("tau_mem")
    dt = F32(np.min(tau / (F32(1.0) + get("r"))))
    out["decay"] = exp32(-dt / tau).astype(np.float64)
    out["syn"] = exp32(-dt / get("tau_syn")).astype(np.float64)
    out["scale"] = out["syn"]
    out.update(strict=False, reset="subtract", max_spikes=ROCKPOOL_MAX_SPIKES, dt=float(dt))


def target_neuron(lib, imp, name, shape, carriers):
    """A node written by export_nir(library=...): the library importer's reading of it (:func:`view`) must
    agree with the spikeport model stored beside it, which is then returned exactly."""
    node, t, owner = imp.nodes[name], imp.type[name], imp.owner(name)
    if t not in WRITTEN_TYPES[lib]:
        raise GraphError(f"{owner}: export_nir(library={lib!r}) writes no {t} node")
    if carriers and any(np.any(b) for _, b in carriers):
        raise GraphError(f"{owner}: an Affine bias, which export_nir(library={lib!r}) never writes")
    md = meta_in(node, owner)
    fields = md.get("model")
    if not isinstance(fields, dict) or not set(fields) <= set(NEURON_FIELDS):
        raise GraphError(f"{owner}: no spikeport model in its metadata (a file of export_nir(library={lib!r}) "
                         f"has one)")
    nm = NeuronModel(**fields)
    nm.validate(owner)

    def get(field):
        v = getattr(node, field, None)
        if v is None:
            return F32(0.0) if field == "v_leak" else None
        return np.broadcast_to(np.asarray(v, dtype=np.float64).astype(F32), shape)

    seen = view(lib, t, get)
    scale = np.asarray(seen["scale"], np.float64)
    theta = get("v_threshold").astype(np.float64) / scale
    c = get("v_leak").astype(np.float64) / scale if lib == "rockpool" else np.zeros(shape)
    spec = md.get("bias")
    bias = None if spec is None else array_from_json(spec, owner + " bias")
    if bias is not None and bias.shape != tuple(shape):
        raise GraphError(f"{owner}: metadata bias has shape {bias.shape}, the population {tuple(shape)}")
    want_b = np.zeros(shape) if bias is None else bias.astype(np.float64)

    def near(a, b, tol=TARGET_TOL):
        return bool(np.all(np.abs(np.asarray(a, np.float64) - b) <= tol * max(1.0, abs(float(b)))))

    checks = [
        ("the membrane decay (tau, r)", near(seen["decay"], nm.decay)),
        ("the synaptic decay (tau_syn)", (seen["syn"] is None) == (nm.syn_decay is None)
         and (seen["syn"] is None or near(seen["syn"], nm.syn_decay))),
        ("v_threshold", near(theta, nm.threshold)),
        ("v_leak (the bias)", bool(np.allclose(c, want_b, rtol=TARGET_TOL, atol=TARGET_TOL))),
        ("the reset", seen["reset"] == nm.reset and seen["max_spikes"] == nm.max_spikes_per_step
         and (seen["strict"] or not nm.strict_threshold) and nm.refractory_steps == 0 and nm.v_init == 0),
    ]
    for what, ok in checks:
        if not ok:
            raise GraphError(f"{owner}: its {what} disagrees with its spikeport metadata under "
                             f"{LIBRARY_NAMES[lib]}'s importer (edited after export?)")
    return nm, bias, None, None
