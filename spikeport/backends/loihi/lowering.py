"""The graph as a Nengo network for nengo-loihi: lags and relays, convolutions, biases.

:class:`Lowered` describes every object of the network (arrays and meta, the format of
:mod:`spikeport.runtimes.loihi_nengo`) and has the runtime build it: the backend runs what
``spikeport deploy --target loihi`` writes, object for object. :class:`Biases` gives each
population's bias during a sample (with an analog input, the input's current W x).
"""
from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ...errors import SpikeportError
from ...ir import Network
from ...ir.lags import relay_depths
from ...runtimes import loihi as engine
from ...runtimes.loihi_nengo import build_network, tau_syn
from .. import common

BACKEND = "nengo-loihi"
TARGETS = ("sim", "simreal")
CONV_MODES = ("sparse", "transform")


def check(network: Network, conv: str, target: str):
    """Refuse, in one line, a network or an option this backend cannot run."""
    common.require_simulable(network, BACKEND)  # refuses reset_amount, several spikes per step, v > theta
    if conv not in CONV_MODES:
        raise SpikeportError(f"conv must be one of {', '.join(CONV_MODES)}, got {conv!r}")
    if target not in TARGETS:
        raise SpikeportError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")


def lags_and_relays(network: Network, analog: bool):
    """Chip-step lag of every population (:func:`common.lags`: Loihi delivers a connection
    one step later) and relays per spiking projection, which pad every path into a
    population to its lag (:func:`spikeport.ir.lags.relay_depths`, the formula deploy's
    partitioner counts the relays with). An analog projection is a bias switched on at the post
    population's step ``delay_steps``."""
    lag = common.lags(network)
    return lag, relay_depths(network, lag, analog)


def fold_pool_into_conv(ops: list) -> list:
    """``ops`` with every pooling that a convolution follows folded into that convolution: exact.

    SumPool2d or AvgPool2d (window k, stride s, no padding) followed by Conv2d (weights W with
    kernel K, stride t, no padding or dilation, any groups) is one Conv2d with kernel (K - 1) s + k,
    stride s t and weights

        W'[o, c, u s + a, v s + b] += f W[o, c, u, v]     for every pooling offset a, b in the window

    (f = 1 / (kh kw) for the average, 1 for the sum), because
    y[o, i, j] = sum_{c,u,v} W[o,c,u,v] f sum_{a,b} x[c, (i t + u) s + a, (j t + v) s + b]
               = sum_{c,U,V} W'[o,c,U,V] x[c, i s t + U, j s t + V],
    with the same output size. For non-overlapping windows (s = k, as AvgPool2d(2)) each weight
    is repeated over its k x k cell and divided by k*k: AvgPool2d(2) then Conv2d 5x5 is one
    Conv2d 10x10 with stride 2. Other ops, and pools that no foldable convolution follows, are
    kept as they are; the ops given are not changed.
    """
    out = []
    for op in ops:
        prev = out[-1] if out else None
        if (op.kind == "conv2d" and prev is not None and prev.kind in ("sumpool2d", "avgpool2d")
                and prev.padding == (0, 0) and op.padding == (0, 0) and op.dilation == (1, 1)):
            (kh, kw), (sh, sw) = prev.kernel_size, prev.stride
            w = op.weight.astype(np.float64) * prev.factor()
            co, cig, uh, uw = w.shape
            folded = np.zeros((co, cig, (uh - 1) * sh + kh, (uw - 1) * sw + kw))
            for a in range(kh):
                for b in range(kw):
                    folded[:, :, a:a + (uh - 1) * sh + 1:sh, b:b + (uw - 1) * sw + 1:sw] += w
            out[-1] = type(op)(folded.astype(op.weight.dtype), stride=(sh * op.stride[0], sw * op.stride[1]),
                               groups=op.groups)
        else:
            out.append(op)
    return out


def conv_transform(proj, pre_shape):
    """(transform, kernel) of a ``nengo.Convolution`` equal to the projection, as the runtime's
    description gives it, or None where nengo cannot express it.

    The projection must be one Conv2d after pooling is folded into it
    (:func:`fold_pool_into_conv`), without groups or dilation, padding "valid" or "same".
    """
    ops = fold_pool_into_conv(proj.ops)
    if len(ops) != 1 or ops[0].kind != "conv2d":
        return None
    op = ops[0]
    kh, kw = op.kernel_shape()
    if op.groups != 1 or op.dilation != (1, 1):
        return None
    if op.padding == (0, 0):
        padding = "valid"
    elif op.stride == (1, 1) and kh % 2 and kw % 2 and op.padding == ((kh - 1) // 2, (kw - 1) // 2):
        padding = "same"
    else:
        return None
    kernel = np.transpose(op.weight.astype(np.float64), (2, 3, 1, 0))     # (kh, kw, C_in, C_out)
    return ({"type": "convolution", "n_filters": int(op.weight.shape[0]), "input_shape": [int(d) for d in pre_shape],
             "kernel_size": [int(kh), int(kw)], "strides": [int(s) for s in op.stride], "padding": padding,
             "channels_last": False}, kernel)


class Lowered:
    """The nengo network of a graph and what the run needs to drive and read it.

    ``meta`` and ``arrays``: the network's description (every ensemble, the spike input,
    connection and probe, in creation order); ``net``, ``ensembles`` (by name: populations,
    then relays ``<population>~relay<k>``), ``probes`` and ``process`` (the spike input, None
    for an analog input): what the runtime built from it; ``ens`` {population: ensemble},
    ``relay_ens`` {(population, depth): ensemble}; ``lag``, ``relays``
    (:func:`lags_and_relays`), ``conv_used`` and ``conv_folded`` (the projections built as
    convolutions, and how pooling was folded into them).
    """

    def __init__(self, network: Network, bias: dict, conv: str, block_size):
        self.network = network
        dt = network.dt_s
        inp = network.population(network.input)
        self.analog = inp.encoding.kind == "analog"
        self.lag, self.relays = lags_and_relays(network, self.analog)
        self.conv_used, self.conv_folded = [], {}
        self.meta = {"ensembles": [], "nodes": [], "connections": [], "probes": []}
        self._index, self._relay_keys, self._ens_arrays, self._con_arrays = {}, [], {}, {}
        if not self.analog:
            self.meta["nodes"].append({"label": inp.name, "kind": "spike_input", "size": int(inp.size)})
        for pop in network.populations:
            if pop.is_input:
                continue
            nm = pop.neuron
            gain = 1.0 / nm.threshold / (1.0 - nm.syn_decay if nm.syn_decay is not None else 1.0)
            block = None if block_size is None else ([min(block_size, pop.size)], [pop.size])
            self._ensemble(pop.name, pop.name, pop.size, (nm.decay, nm.syn_decay, nm.refractory_steps),
                           np.full(pop.size, gain), bias[pop.name] / dt, block)
            self.meta["probes"].append({"ensemble": self._index[pop.name], "attr": "output"})
        self.meta["probes"].append({"ensemble": self._index[network.output], "attr": "voltage"})
        for proj in network.projections:
            if self.analog and proj.pre == network.input:
                continue
            self._connect(proj, conv)
        self.arrays = {**self._ens_arrays, **self._con_arrays}     # the ensembles', then the connections'
        self.net, self.ensembles, self.probes, self.process = build_network(self.meta, self.arrays, dt)
        self.ens = OrderedDict((p.name, self.ensembles[p.name]) for p in network.populations if not p.is_input)
        self.relay_ens = OrderedDict((key, self.ensembles[f"{key[0]}~relay{key[1]}"]) for key in self._relay_keys)

    def _ensemble(self, name, population, n, neuron, gain, bias, block):
        i = len(self.meta["ensembles"])
        key = f"ens{i}"
        self._ens_arrays[f"{key}_gain"], self._ens_arrays[f"{key}_bias"] = gain, bias
        decay, syn_decay, refractory = neuron
        self.meta["ensembles"].append({
            "name": name, "label": name, "key": key, "n_neurons": int(n), "population": population,
            "neuron": {"decay": decay, "syn_decay": syn_decay, "refractory_steps": refractory, "v_min": None},
            "block_shape": None if block is None else block[0],
            "ensemble_shape": None if block is None else block[1]})
        self._index[name] = i

    def _add_connection(self, pre: dict, post: dict, transform: dict, arrays: dict, synapse_tau):
        key = f"con{len(self.meta['connections'])}"
        self._con_arrays.update({f"{key}_{k}": v for k, v in arrays.items()})
        self.meta["connections"].append({"key": key, "pre": pre, "post": post, "transform": transform,
                                         "synapse_tau": synapse_tau})

    def _source(self, name) -> dict:
        return {"node": 0} if name == self.network.input else {"ensemble": self._index[name]}

    def _relay(self, name: str, depth: int) -> dict:
        """The depth-th relay of population ``name``: fires exactly ``depth`` steps after it."""
        label = f"{name}~relay{depth}"
        if label not in self._index:
            n = self.network.population(name).size
            prev = self._source(name) if depth == 1 else self._relay(name, depth - 1)
            self._ensemble(label, None, n, (1.0, None, 0), np.ones(n), np.zeros(n), None)
            self._relay_keys.append((name, depth))
            # weight 2 thresholds: one spike always crosses, the reset empties the neuron
            self._add_connection(prev, {"ensemble": self._index[label]}, {"type": "sparse", "shape": [n, n]},
                                 {"indices": np.stack([np.arange(n), np.arange(n)], axis=1),
                                  "weights": np.full(n, 2.0)}, None)
        return {"ensemble": self._index[label]}

    def _connect(self, proj, conv: str):
        net = self.network
        pre, post = net.population(proj.pre), net.population(proj.post)
        k = self.relays[proj.name]
        source = self._source(proj.pre) if k == 0 else self._relay(proj.pre, k)
        nm = post.neuron
        tau = None if nm.syn_decay is None else tau_syn(nm.syn_decay, net.dt_s)
        # nengo-loihi's convolution takes neurons as pre, not a chip input process (an assert in its builder)
        found = conv_transform(proj, pre.shape) if conv == "transform" and not pre.is_input else None
        if found is not None:
            transform, kernel = found
            arrays = {"kernel": kernel}
            self.conv_used.append(proj.name)
            if len(proj.ops) > 1:
                kh, kw = transform["kernel_size"]
                sh, sw = transform["strides"]
                self.conv_folded[proj.name] = (f"{'+'.join(op.kind for op in proj.ops)} as one conv2d "
                                               f"{kh}x{kw} stride {sh}x{sw}")
        else:
            syn = proj.materialize(pre.shape)
            if syn.weight.size == 0:
                return
            transform = {"type": "sparse", "shape": [int(post.size), int(pre.size)]}
            arrays = {"indices": np.stack([syn.post, syn.pre], axis=1), "weights": syn.weight}
        self._add_connection(source, {"ensemble": self._index[proj.post]}, transform, arrays, tau)

    def describe(self):
        """(arrays, meta) of the network as built, with each ensemble's block shape as now set in
        its config (``block_shapes``, ``block_size`` or nengo-loihi's split) and plain numbers: what the script rebuilds."""
        ensembles = []
        for e in self.meta["ensembles"]:
            block = self.net.config[self.ensembles[e["name"]]].block_shape
            nm = e["neuron"]
            ensembles.append({**e, "neuron": {
                "decay": float(nm["decay"]), "syn_decay": None if nm["syn_decay"] is None else float(nm["syn_decay"]),
                "refractory_steps": int(nm["refractory_steps"]), "v_min": None},
                "block_shape": None if block is None else [int(d) for d in block.shape],
                "ensemble_shape": None if block is None else [int(d) for d in block.ensemble_shape]})
        return dict(self.arrays), {**self.meta, "ensembles": ensembles}


class Biases:
    """Every population's bias during a sample: its own b plus, for an analog input, W x.

    :meth:`changes` gives, per population, [(steps after its lag, level, kick)]: the level
    (thresholds per step, (samples, n)) is b / theta plus the current of every analog
    projection that has started (after its ``delay_steps``). With a synaptic filter alpha
    the graph filters an analog current J too (i[t] = alpha i[t-1] + J): the bias then takes
    the filtered current's final value J / (1 - alpha) and the compartment's current u,
    which decays by alpha, is kicked by -J / (1 - alpha) (the kick), so that u + bias =
    J (1 - alpha**(t+1)) / (1 - alpha): the graph's i[t], step for step.
    """

    def __init__(self, network: Network, x: np.ndarray):
        self.network, self.x = network, x
        inp = network.population(network.input)
        analog = inp.encoding.kind == "analog"
        self.parts = {}
        for pop in network.populations:
            if pop.is_input:
                continue
            projs = [p for p in network.projections_into(pop.name) if analog and p.pre == inp.name]
            self.parts[pop.name] = sorted(projs, key=lambda p: p.delay_steps)

    def changes(self, k0: int, k1: int) -> dict:
        """{population: [(delay, level (k1 - k0, n), kick or None)]} for samples k0..k1-1."""
        net, out = self.network, {}
        inp = net.population(net.input)
        xs = self.x[k0:k1].reshape((k1 - k0,) + inp.shape).astype(np.float64)
        for name, projs in self.parts.items():
            pop = net.population(name)
            nm = pop.neuron
            own = np.zeros(pop.size) if pop.bias is None else pop.bias.reshape(-1).astype(np.float64)
            level = np.broadcast_to(own / nm.threshold, (k1 - k0, pop.size))
            stages = [(0, level, None)]
            for proj in projs:
                cur = proj.apply_numpy(xs).reshape(k1 - k0, -1) / nm.threshold
                if nm.syn_decay is not None:
                    cur = cur / (1.0 - nm.syn_decay)
                d, level, kick = stages[-1]
                new_kick = None if nm.syn_decay is None else -cur
                if proj.delay_steps == d:
                    stages[-1] = (d, level + cur, new_kick if kick is None else kick + new_kick)
                else:
                    stages.append((proj.delay_steps, level + cur, new_kick))
            out[name] = stages
        return out

    def build_bias(self, chunk: int = 256) -> dict:
        """The bias (thresholds per step) each ensemble is built with: per neuron the value of
        largest magnitude its bias register holds during the run (:func:`spikeport.runtimes.loihi.build_bias`)."""
        return engine.build_bias(self.changes, len(self.x), chunk)
