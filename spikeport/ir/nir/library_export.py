"""``export_nir(network, library=...)``: the form that snnTorch's, Norse's, sinabs' or Rockpool's own NIR
importer reads back as the same discrete neuron (docs/nir-libraries.md, section 8), or a refusal naming the
population. :data:`NODE_WRITERS` holds one neuron node writer per library."""
from __future__ import annotations

import math
import re

import numpy as np

from ...errors import GraphError
from .common import VERSION, Names, Registry
from .libraries import (F32, IMPORTERS, LIBRARY_FORMAT, LIBRARY_NAMES, NORSE_DT, ROCKPOOL_MAX_SPIKES,
                        SINABS_MAX_SPIKES, SNNTORCH_DT, exp32)
from .metadata import array_to_json, meta_out, plain

IF_TAU_SNNTORCH = 1e4  # s: fl32(1 - 1e-4/1e4) == 1, a Leaky with beta exactly 1 (snnTorch has no usable IF import)
IF_TAU_STEPS = 2.0**30  # steps (sinabs) or dt (Rockpool): fl32(exp(-2**-30)) == 1, a LIF that does not leak
SEARCH_ULPS = 64

# library -> writer(nir, pop, parts, md, dt_s): (the population's neuron node, how it was written in words)
NODE_WRITERS = Registry("NIR library")


def prev32(x) -> np.float32:
    return np.nextafter(F32(x), F32(-np.inf))


def search32(guess, f, target):
    """The float32 nearest ``guess`` (within SEARCH_ULPS) for which f(value) == target, else fl32(guess)."""
    x0 = F32(guess)
    up = down = x0
    for _ in range(SEARCH_ULPS + 1):
        for x in (down, up):
            with np.errstate(all="ignore"):
                if np.isfinite(x) and f(x) == target:
                    return x
        up, down = np.nextafter(up, F32(np.inf)), np.nextafter(down, F32(-np.inf))
    return x0


def refuse(pop, lib, what, why=""):
    raise GraphError(f"population {pop.name!r}: {what}, which {LIBRARY_NAMES[lib]}'s NIR importer cannot take"
                     f"{' (' + why + ')' if why else ''}; export it with library=None (generic NIR)")


def check_neuron(pop, lib):
    """Refuse, naming the population, what ``lib``'s importer cannot take of its neuron model."""
    nm = pop.neuron
    if pop.v_init is not None or nm.v_init != 0:
        refuse(pop, lib, f"an initial membrane potential v_init = {nm.v_init:g}", "its neurons start at 0")
    if nm.refractory_steps:
        refuse(pop, lib, f"refractory_steps = {nm.refractory_steps}", "no refractory period")
    if nm.reset_amount is not None and nm.reset_amount != nm.threshold:
        refuse(pop, lib, f"a subtractive reset of {nm.reset_amount:.9g} instead of theta (reset_amount)")
    if pop.bias is not None and lib != "rockpool":
        refuse(pop, lib, "a bias", "spikeport's import preset reads no bias for it")
    syn = nm.syn_decay
    if lib in ("snntorch", "norse"):
        if nm.reset != "zero":
            refuse(pop, lib, "reset by subtraction", "it imports every neuron as a reset to zero in the "
                   "same step" if lib == "snntorch" else "from_nir resets to v_reset unless called with "
                   "reset_method=reset_subtract, which the file cannot say")
        if nm.max_spikes_per_step != 1:
            refuse(pop, lib, f"up to {nm.max_spikes_per_step} spikes per step", "one spike per step")
    else:
        want = SINABS_MAX_SPIKES if lib == "sinabs" else ROCKPOOL_MAX_SPIKES
        if nm.reset != "subtract":
            refuse(pop, lib, "reset to zero", "it always subtracts the threshold")
        if nm.max_spikes_per_step != want:
            refuse(pop, lib, f"max_spikes_per_step = {nm.max_spikes_per_step}",
                   f"it emits floor(v/theta) spikes per step{' (uncapped)' if lib == 'sinabs' else ''}; "
                   f"max_spikes_per_step = {want} is its model")
        if nm.strict_threshold:
            refuse(pop, lib, "the strict threshold test v > theta", "it fires on v >= theta")
    if lib == "sinabs" and syn is not None:
        refuse(pop, lib, "a synaptic current (syn_decay)", "from_nir builds LIFSqueeze with tau_syn=None and "
               "refuses CubaLIF")
    if lib == "rockpool" and (syn is None or syn == 0):
        refuse(pop, lib, "a neuron without a synaptic current" if syn is None else "syn_decay = 0",
               "it imports only CubaLIF as LIFTorch, whose synapse multiplies the input by exp(-dt/tau_syn)")
    if lib == "norse" and syn is not None and nm.model == "if":
        refuse(pop, lib, "an integrate-and-fire membrane with a synaptic current", "its CubaLIF leaks")
    if lib in ("sinabs", "rockpool") and nm.decay == 0:
        refuse(pop, lib, "decay = 0", "tau would be 0")


class Parts:
    """A population's neuron model in float32, as every writer needs it."""

    def __init__(self, pop):
        nm = self.nm = pop.neuron
        self.shape, self.n = pop.shape, math.prod(pop.shape)
        self.syn = nm.syn_decay
        self.d32 = F32(nm.decay)
        self.s32 = None if self.syn is None else F32(self.syn)
        self.theta = float(nm.threshold)
        self.thr32 = F32(self.theta) if nm.strict_threshold else prev32(self.theta)  # strict: v >= theta <=> v > prev
        self.zeros = self.full(0.0)

    def full(self, v):
        return np.full(self.n, v, dtype=F32).reshape(self.shape)


@NODE_WRITERS.register("snntorch")
def snntorch_node(nir, pop, p, md, dt_s):
    nm, syn, full = p.nm, p.syn, p.full
    dt = F32(SNNTORCH_DT)
    if nm.model == "if":
        tau = F32(IF_TAU_SNNTORCH)
    else:
        tau = search32(SNNTORCH_DT / (1.0 - nm.decay), lambda x: F32(1.0) - dt / x, p.d32)
    args = dict(v_leak=p.zeros, v_threshold=full(p.thr32), v_reset=p.zeros)
    if syn is None:
        node = nir.LIF(tau=full(tau), r=full(tau / dt), **args, metadata=md)
    else:
        ts = search32(SNNTORCH_DT / (1.0 - syn), lambda x: F32(1.0) - dt / x, p.s32)
        node = nir.CubaLIF(tau_mem=full(tau), tau_syn=full(ts), r=full(tau / dt), w_in=full(ts / dt), **args,
                           metadata=md)
    how = (f"tau = 1e-4/(1 - decay), r = tau/1e-4 (beta = 1 - 1e-4/tau in float32 = the decay"
           f"{'; IF as tau = 1e4 s, beta exactly 1' if nm.model == 'if' else ''})")
    return node, how


@NODE_WRITERS.register("norse")
def norse_node(nir, pop, p, md, dt_s):
    nm, syn, full = p.nm, p.syn, p.full
    if nm.model == "if":
        node = nir.IF(r=full(1.0), v_threshold=full(p.thr32), v_reset=p.zeros, metadata=md)
        return node, "IF r = 1 (IAFCell: v += I)"
    tau = F32(NORSE_DT / (1.0 - nm.decay))
    k = float(F32(NORSE_DT) * (F32(1.0) / tau))
    scale = k
    args = dict(v_leak=p.zeros, v_reset=p.zeros, metadata=md)
    if syn is None:
        node_kw = dict(tau=full(tau), r=full(1.0))
    else:
        ts = F32(NORSE_DT / (1.0 - syn))
        scale = k * float(F32(NORSE_DT) * (F32(1.0) / ts))
        node_kw = dict(tau_mem=full(tau), tau_syn=full(ts), r=full(1.0), w_in=full(1.0))
    thr = full(F32(scale * p.theta))
    node = (nir.LIF if syn is None else nir.CubaLIF)(**node_kw, v_threshold=thr, **args)
    how = ("tau = 1e-3/(1 - decay) (its importer: k = dt/tau at dt 1e-3 s), r = 1, v_threshold = k theta"
           + (" k_syn (its CubaLIF low-pass scales the current by k_syn)" if syn is not None else "")
           + " since its membrane takes k I per step")
    return node, how


@NODE_WRITERS.register("sinabs")
def sinabs_node(nir, pop, p, md, dt_s):
    nm, full = p.nm, p.full
    if nm.model == "if":
        tau = F32(IF_TAU_STEPS)
    else:
        tau = search32(-1.0 / math.log(nm.decay), lambda x: exp32(F32(-1.0) / x), p.d32)
    node = nir.LIF(tau=full(tau), r=full(1.0), v_leak=p.zeros, v_threshold=full(F32(p.theta)), v_reset=p.zeros,
                   metadata=md)
    how = ("LIF tau = -1/ln(decay) steps, r = 1, no v_reset (LIFSqueeze norm_input=False: v = exp(-1/tau) v + I"
           + ("; IF as tau = 2**30 steps, exp(-1/tau) exactly 1 in float32, since its IF import clips v at "
              "-theta" if nm.model == "if" else "") + ")")
    return node, how


@NODE_WRITERS.register("rockpool")
def rockpool_node(nir, pop, p, md, dt_s):
    nm, syn, full = p.nm, p.syn, p.full
    dt = F32(dt_s)
    one = F32(1.0)

    def mem_decay(x):
        r = F32(x / dt - one)
        return exp32(-F32(x / (one + r)) / x)

    tau = F32(IF_TAU_STEPS * float(dt)) if nm.model == "if" else search32(-float(dt) / math.log(nm.decay),
                                                                           mem_decay, p.d32)
    r = F32(tau / dt - one)
    dt_eff = F32(tau / (one + r))
    ts = search32(-float(dt_eff) / math.log(syn), lambda x: exp32(-dt_eff / x), p.s32)
    beta = float(exp32(-dt_eff / ts))
    v_leak = p.zeros if pop.bias is None else (pop.bias.astype(np.float64) * beta).astype(F32).reshape(p.shape)
    node = nir.CubaLIF(tau_mem=full(tau), tau_syn=full(ts), r=full(r), w_in=full(1.0), v_leak=v_leak,
                       v_threshold=full(F32(beta * p.theta)), v_reset=p.zeros, metadata=md)
    how = (f"CubaLIF with r = tau_mem/dt - 1 (its dt = tau_mem/(1 + r) = {float(dt_eff):.9g} s), "
           f"v_threshold and v_leak times exp(-dt/tau_syn) (its synapse scales the input by it)")
    return node, how


def library_neuron(nir, pop, lib, dt_s, md):
    """The NIR node of ``pop`` for ``lib``'s importer, or a refusal naming the population."""
    check_neuron(pop, lib)
    return NODE_WRITERS[lib](nir, pop, Parts(pop), md, dt_s)


def export_library(nir, network, lib):
    """(graph, warning) for ``lib``'s own NIR importer (docs/nir-libraries.md, section 8)."""
    name = LIBRARY_NAMES[lib]
    names = Names()

    def safe(base):
        return names.take(re.sub(r"[^A-Za-z0-9_]", "_", base) or "node")

    for proj in network.projections:
        post = network.population(proj.post)
        bad = [op.kind for op in proj.ops if op.kind != "dense"]
        if bad:
            refuse(post, lib, f"its projection {proj.name!r} uses a {bad[0]} op",
                   "this export writes Dense projections only (Linear/Affine nodes)")
        if proj.delay_steps:
            refuse(post, lib, f"its projection {proj.name!r} has a delay of {proj.delay_steps} steps", "no delays")
    for pop in network.populations:
        if not pop.is_input and len(network.projections_into(pop.name)) != 1:
            refuse(pop, lib, f"{len(network.projections_into(pop.name))} projections into it",
                   "this export writes one Linear chain into each neuron layer")
    node_of = {p.name: safe(p.name) for p in network.populations}
    out_name = safe("output")
    nodes, edges, hows, stored = {}, [], {}, []
    for pop in network.populations:
        if pop.is_input:
            enc = pop.encoding
            if enc.kind != "analog":
                stored.append(f"the input encoding of {pop.name!r} ({enc.kind}, {enc.max_rate_hz:g} Hz: the library "
                              f"receives x as an analog current every step)")
            # no Input metadata: nir 1.0.4's Input (sinabs) takes none; the graph metadata names it
            nodes[node_of[pop.name]] = nir.Input(input_type={"input": np.array(pop.shape)})
            continue
        md = meta_out({"population": pop.name, "model": plain(pop.neuron.to_dict()),
                       "bias": None if pop.bias is None else array_to_json(pop.bias)})
        node, how = library_neuron(nir, pop, lib, float(network.dt_s), md)
        nodes[node_of[pop.name]] = node
        hows.setdefault(how, []).append(repr(pop.name))
    for proj in network.projections:
        prev = node_of[proj.pre]
        for i, op in enumerate(proj.ops):
            nn = safe(f"{proj.name}_{i}")
            w = np.asarray(op.weight).astype(F32)
            md = meta_out({"projection": proj.name, "delay_steps": 0}) if i == 0 else {}
            if lib in ("norse", "sinabs"):  # their exporters write Affine; sinabs' importer takes no Linear
                nodes[nn] = nir.Affine(weight=w, bias=np.zeros(w.shape[0], F32), metadata=md)
            else:
                nodes[nn] = nir.Linear(weight=w, metadata=md)
            edges.append((prev, nn))
            prev = nn
        edges.append((prev, node_of[proj.post]))
    nodes[out_name] = nir.Output(output_type={"output": np.array(network.population(network.output).shape)})
    edges.append((node_of[network.output], out_name))
    dt = float(network.dt_s)
    graph_md = {"format": LIBRARY_FORMAT, "version": VERSION, "library": lib, "dt_s": dt, "input": network.input,
                "input_encoding": plain(network.population(network.input).encoding.to_dict()),
                "output": network.output, "readout": network.readout, "metadata": network.metadata,
                "populations": [p.name for p in network.populations],
                "projections": [p.name for p in network.projections]}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta_out(graph_md), type_check=False)
    parts = [f"{how} for {', '.join(who)}" for how, who in hows.items()]
    parts.append("weights as float32 Linear" + ("/Affine (zero bias)" if lib in ("norse", "sinabs") else "")
                 + " nodes, float32 per-neuron parameters")
    if lib == "sinabs":
        parts.append("no v_reset field (written so that sinabs' nir 1.0.4 reads the file)")
    if lib in ("norse", "rockpool"):
        parts.append("exact in real arithmetic; the library's float32 order of operations differs from spikeport's, "
                     "so a membrane within rounding of the threshold can fire differently")
    parts.append("stored only as spikeport metadata (for import_nir(file, library=%r)): dt_s = %g s, names, the "
                 "neuron models%s" % (lib, dt, "; " + "; ".join(stored) if stored else ""))
    return graph, f"NIR export for {name}'s importer {IMPORTERS[lib]}: " + "; ".join(parts)
