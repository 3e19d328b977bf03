"""Network -> NIR: :func:`export_nir`, generic NIR with spikeport metadata (package docstring), or the form a
library's own importer reads (:mod:`.library_export`); :func:`write_graph` writes the file."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ...budget import check as check_budget
from ...budget import number
from ...errors import GraphError, SpikeportError
from ..network import Network, network_footprint
from ..ops import AvgPool2d, Conv2d, Dense, Flatten, SumPool2d
from .common import FORMAT, VERSION, Names, NIRWarning, Registry, load_nir
from .libraries import EXPORT_LIBRARIES
from .library_export import export_library
from .metadata import array_to_json, meta_out, plain

# float64 parameter arrays a neuron node gets (r, tau, tau_syn, v_leak, v_threshold, v_reset, w_in, a spare) and the
# JSON text of a per-neuron bias or v_init in its metadata (about 32 characters a value): bytes per neuron built
EXPORT_BYTES_PER_NEURON = 8 * 8 + 2 * 32

# spikeport op kind -> node(nir, op, shape, bias, md, stored, owner): the op's NIR node, where md is the
# node's spikeport metadata as a plain dict (to be written with node_metadata)
OP_NODES = Registry("spikeport op kind")


def _bias_carriers(network) -> dict:
    """population -> the projection whose last op (Dense: Affine bias; Conv2d: its per-channel bias) carries
    the population's bias in NIR."""
    out = {}
    for pop in network.populations:
        if pop.bias is None or pop.neuron.syn_decay is not None:
            continue  # a CubaLIF's input passes through its synapse: the bias goes to v_leak
        into = network.projections_into(pop.name)
        dense = [p for p in into if isinstance(p.ops[-1], Dense)]
        b = pop.bias
        conv = [p for p in into if isinstance(p.ops[-1], Conv2d) and len(pop.shape) == 3
                and np.all(b == b[:, :1, :1])]
        if dense or conv:
            out[pop.name] = (dense or conv)[0].name
    return out


def _neuron_node(nir, pop, dt, carrier, stored):
    nm, shape = pop.neuron, pop.shape

    def full(v):
        return np.full(shape, v, dtype=np.float64)

    if nm.syn_decay is not None and nm.model == "if":
        raise GraphError(f"population {pop.name!r}: NIR has no integrate-and-fire neuron with a synaptic current "
                         f"(CubaLIF needs a membrane leak); it cannot be exported")
    zeros = full(0.0)
    v_leak, bias_md = zeros, None
    tau = None if nm.model == "if" else dt / (1.0 - nm.decay)
    if pop.bias is not None:
        if carrier is not None:
            bias_md = {"carrier": carrier}
        elif tau is not None:  # the constant dt/tau * v_leak per step
            v_leak = pop.bias.astype(np.float64).reshape(shape) * (tau / dt)
            bias_md = dict(array_to_json(pop.bias), nir=True)
        else:
            bias_md = dict(array_to_json(pop.bias), nir=False)
            stored.setdefault("the bias (no Affine or per-channel Conv2d ends a projection into it)", []).append(
                repr(pop.name))
    extra = {}
    if pop.v_init is not None:
        extra["v_init"] = array_to_json(pop.v_init)
        stored.setdefault("v_init", []).append(f"{pop.name!r} (per neuron)")
    md = meta_out({"population": pop.name, "discretization": "forward-euler", "neuron": plain(nm.to_dict()),
                   "bias": bias_md, **extra})
    thr = full(np.nextafter(float(nm.threshold), -np.inf))
    if nm.reset == "subtract":
        stored.setdefault("reset by subtraction (NIR's node resets to v_reset = 0)", []).append(repr(pop.name))
    if nm.refractory_steps:
        stored.setdefault("refractory_steps", []).append(f"{pop.name!r} ({nm.refractory_steps})")
    if nm.reset_amount is not None:
        stored.setdefault("reset_amount", []).append(f"{pop.name!r} ({nm.reset_amount:.9g})")
    if nm.max_spikes_per_step != 1:
        stored.setdefault("max_spikes_per_step", []).append(f"{pop.name!r} ({nm.max_spikes_per_step})")
    if nm.strict_threshold:
        stored.setdefault("strict_threshold (v > theta)", []).append(repr(pop.name))
    if nm.v_init != 0 and pop.v_init is None:
        stored.setdefault("v_init", []).append(f"{pop.name!r} ({nm.v_init:g})")
    if nm.model == "if":
        return nir.IF(r=full(1.0 / dt), v_threshold=thr, v_reset=zeros, metadata=md)
    if nm.syn_decay is None:
        return nir.LIF(tau=full(tau), r=full(tau / dt), v_leak=v_leak, v_threshold=thr, v_reset=zeros, metadata=md)
    tau_syn = dt / (1.0 - nm.syn_decay)
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau), r=full(tau / dt), v_leak=v_leak, v_threshold=thr,
                       v_reset=zeros, w_in=full(tau_syn / dt), metadata=md)


def node_metadata(md: dict) -> dict:
    return meta_out(md) if md else {}


@OP_NODES.register(Dense.kind)
def dense_node(nir, op, shape, bias, md, stored, owner):
    if bias is not None:
        return nir.Affine(weight=op.weight, bias=bias.reshape(-1), metadata=node_metadata(md))
    return nir.Linear(weight=op.weight, metadata=node_metadata(md))


@OP_NODES.register(Flatten.kind)
def flatten_node(nir, op, shape, bias, md, stored, owner):
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1, metadata=node_metadata(md))


@OP_NODES.register(Conv2d.kind)
def conv2d_node(nir, op, shape, bias, md, stored, owner):
    cb = bias[:, 0, 0].copy() if bias is not None else np.zeros(op.weight.shape[0], dtype=op.weight.dtype)
    return nir.Conv2d(input_shape=tuple(shape[1:]), weight=op.weight, stride=tuple(op.stride),
                      padding=tuple(op.padding), dilation=tuple(op.dilation), groups=int(op.groups), bias=cb,
                      metadata=node_metadata(md))


def _pool_args(op) -> dict:
    return dict(kernel_size=np.array(op.kernel_size), stride=np.array(op.stride), padding=np.array(op.padding))


@OP_NODES.register(SumPool2d.kind)
def sum_pool_node(nir, op, shape, bias, md, stored, owner):
    return nir.SumPool2d(**_pool_args(op), metadata=node_metadata(md))


@OP_NODES.register(AvgPool2d.kind)
def avg_pool_node(nir, op, shape, bias, md, stored, owner):
    """AvgPool2d, whose metadata says that the padding counts in the average (NIR does not say)."""
    args = _pool_args(op)
    if any(op.padding):
        stored.setdefault("AvgPool2d counting its padding (count_include_pad)", []).append(owner)
    return nir.AvgPool2d(**args, metadata=meta_out(dict(md, count_include_pad=True)))


def _op_node(nir, op, shape, bias, md, stored, owner):
    node = OP_NODES.get(op.kind)
    if node is None:
        raise GraphError(f"{owner}: op {op.kind!r} has no NIR node")
    return node(nir, op, shape, bias, md, stored, owner)


def export_nir(network: Network, path=None, *, library: str | None = None):
    """The network as an ``nir.NIRGraph`` (the docstring of :mod:`spikeport.ir.nir`); written with ``nir.write``
    when ``path`` is given.

    library : None (or "nir"): generic NIR plus spikeport metadata; a :class:`NIRWarning` lists what NIR
        cannot express and was stored only as ``metadata["spikeport"]`` (which :func:`import_nir` reads
        back exactly). "snntorch", "norse", "sinabs" or "rockpool": the parameters in the form that
        library's own NIR importer reads back as the same discrete dynamics (docs/nir-libraries.md,
        section 8), or a one-line :class:`GraphError` naming the population and what that importer
        cannot take. ``import_nir(file, library=X)`` reads such a file back as the same network.
    """
    nir = load_nir()
    if library == "nir":
        library = None
    if library is not None and library not in EXPORT_LIBRARIES:
        raise SpikeportError(f"unknown NIR export library {library!r} (known: {', '.join(EXPORT_LIBRARIES)}, "
                             f"or None for generic NIR)")
    network.validate()
    if network.fixed_point is not None:
        raise GraphError("NIR export of a fixed-point network is not supported: NIR has no number formats "
                         "(export the floating-point network)")
    try:
        network.order(all_projections=True)
    except GraphError as exc:
        raise GraphError(f"NIR export of recurrent networks is not supported: {exc}") from None
    neurons = network_footprint(network).neurons  # before any array of the network's size is built
    check_budget(neurons * EXPORT_BYTES_PER_NEURON, f"NIR export: the network has {number(neurons)} neurons",
                 of="NIR parameter arrays")
    if library is not None:
        graph, note = export_library(nir, network, library)
        warnings.warn(note, NIRWarning, stacklevel=2)
        if path is not None:
            write_graph(nir, graph, Path(path), drop_v_reset=library == "sinabs")
        return graph
    dt = float(network.dt_s)
    names = Names()
    node_of = {p.name: names.take(p.name) for p in network.populations}
    out_name = names.take("output")
    stored = {f"dt_s = {dt:g} s (the neuron parameters are for forward-Euler steps of it)": []}
    op_names = {proj.name: [names.take(f"{proj.name}.{i}") for i in range(len(proj.ops))]
                for proj in network.projections}
    carriers = {pop: op_names[proj][-1] for pop, proj in _bias_carriers(network).items()}
    nodes, edges, types = {}, [], {}
    for pop in network.populations:
        if pop.is_input:
            enc = pop.encoding
            if enc.kind != "analog":
                stored.setdefault("input encoding", []).append(f"{pop.name!r} ({enc.kind}, {enc.max_rate_hz:g} Hz)")
            nodes[node_of[pop.name]] = nir.Input(input_type={"input": np.array(pop.shape)}, metadata=meta_out(
                {"population": pop.name, "encoding": plain(enc.to_dict())}))
        else:
            nodes[node_of[pop.name]] = _neuron_node(nir, pop, dt, carriers.get(pop.name), stored)
    for proj in network.projections:
        post = network.population(proj.post)
        bias = post.bias if carriers.get(proj.post) == op_names[proj.name][-1] else None
        shape, prev = network.population(proj.pre).shape, node_of[proj.pre]
        for i, op in enumerate(proj.ops):
            name = op_names[proj.name][i]
            md = {"projection": proj.name, "delay_steps": int(proj.delay_steps)} if i == 0 else {}
            last = i == len(proj.ops) - 1
            out_shape = op.out_shape(shape, f"projection {proj.name!r}")
            nodes[name] = _op_node(nir, op, shape, bias if last else None, md, stored, f"projection {proj.name!r}")
            types[name] = (shape, out_shape)
            edges.append((prev, name))
            prev, shape = name, out_shape
        edges.append((prev, node_of[proj.post]))
        if proj.delay_steps:
            stored.setdefault("delay_steps", []).append(f"{proj.name!r} ({proj.delay_steps})")
    nodes[out_name] = nir.Output(output_type={"output": np.array(network.population(network.output).shape)})
    edges.append((node_of[network.output], out_name))
    graph_md = {"format": FORMAT, "version": VERSION, "dt_s": dt, "input": network.input, "output": network.output,
                "readout": network.readout, "metadata": network.metadata,
                "populations": [p.name for p in network.populations],
                "projections": [p.name for p in network.projections]}
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta_out(graph_md), type_check=False)
    for name, (i, o) in types.items():  # the shapes NIR cannot infer (pooling) or gets wrong (grouped conv)
        nodes[name].input_type = {"input": np.array(i)}
        nodes[name].output_type = {"output": np.array(o)}
    listed = [what + (" of " + ", ".join(who[:6]) + (f" and {len(who) - 6} more" if len(who) > 6 else "")
                      if who else "") for what, who in stored.items()]
    warnings.warn("NIR export: stored only as spikeport metadata (NIR has no field for it; other NIR readers "
                  "ignore it): " + "; ".join(listed), NIRWarning, stacklevel=2)
    if path is not None:
        write_graph(nir, graph, Path(path))
    return graph


def write_graph(nir, graph, path: Path, drop_v_reset: bool = False) -> None:
    """nir.write to a staging file beside ``path``, then rename it into place (spikeport.outputs: the checks
    and the staging every output shares). ``drop_v_reset``: delete the neuron nodes' v_reset datasets
    (nir <= 1.0.4, which sinabs pins, cannot read a node that has one)."""
    from ...outputs import save_file

    def save(tmp):
        nir.write(str(tmp), graph)
        if drop_v_reset:
            import h5py

            with h5py.File(tmp, "r+") as f:
                for g in f["node"]["nodes"].values():
                    if "v_reset" in g:
                        del g["v_reset"]

    save_file(path, save, kind="file")
