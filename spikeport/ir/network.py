"""Populations, projections and the network that holds them.

The dynamics are stated once, in :mod:`spikeport.ir.neurons`; every backend is
measured against them. A network is feed-forward along its zero-delay
projections: within a step, populations are updated in topological order, so a
projection with ``delay_steps = 0`` delivers the spikes its pre population emits
at step t to the post population at the same step t (the convention of the
ANN-to-SNN conversion literature), and one with ``delay_steps = d`` at step t + d
(the convention of hardware, whose minimum delay is one step).
"""
from __future__ import annotations

import hashlib
import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..budget import check as check_budget
from ..budget import number
from ..errors import GraphError
from .arithmetic import FixedPoint, check_integers
from .neurons import MAX_MAGNITUDE, InputEncoding, NeuronModel
from .ops import OPS

READOUTS = ("spike_count",)
MAX_NEURONS = 2**31 - 1
MIN_DT_S = 1e-12  # a step shorter than a picosecond makes rates (spikes / (T dt)) and times meaningless
# Bytes per neuron of simulation state: one sample's membrane and synaptic current (or spike) in float32, or
# the membrane alone in float64: the least any simulator holds, so a refusal is certain to be right.
STATE_BYTES = 8
# Bytes per materialized synapse: the pre, post, weight and delay arrays of Synapses (8 bytes each).
SYNAPSE_BYTES = 32
# Working bytes per entry while a chain is materialized (_compose: the join's indices, keys, sort and weights).
MATERIALIZE_BYTES = 96


def _check_name(name, what: str) -> str:
    if not isinstance(name, str) or not name or len(name) > 200 or not name.isprintable():
        raise GraphError(f"{what} name must be a non-empty printable string of at most 200 characters, got {name!r}")
    return name


@dataclass(eq=False)
class Population:
    """A named group of neurons with a shape.

    Exactly one of ``neuron`` (a spiking population) and ``encoding`` (an input
    population, which has no dynamics of its own) is set. ``bias`` is a constant
    input current per neuron, shaped like the population, or None for zero.
    ``v_init`` is the initial membrane per neuron, shaped like the population (e.g.
    set by membrane calibration), or None for the neuron model's one value.
    """

    name: str
    shape: tuple
    neuron: NeuronModel | None = None
    encoding: InputEncoding | None = None
    bias: np.ndarray | None = None
    v_init: np.ndarray | None = None

    def __post_init__(self):
        try:
            self.shape = tuple(int(s) for s in self.shape)
        except (TypeError, ValueError):
            raise GraphError(f"population {self.name!r}: shape must be a tuple of integers, got {self.shape!r}") from None
        if self.bias is not None:
            self.bias = np.asarray(self.bias)
        if self.v_init is not None:
            self.v_init = np.asarray(self.v_init)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def is_input(self) -> bool:
        return self.encoding is not None

    def validate(self) -> None:
        owner = f"population {self.name!r}"
        _check_name(self.name, "population")
        if not self.shape or any(s < 1 for s in self.shape) or self.size > MAX_NEURONS:
            raise GraphError(f"{owner}: shape {self.shape} must have positive sides and at most {MAX_NEURONS} neurons")
        if (self.neuron is None) == (self.encoding is None):
            raise GraphError(f"{owner}: needs exactly one of a neuron model (spiking) or an encoding (input)")
        if self.neuron is not None:
            self.neuron.validate(owner)
        else:
            self.encoding.validate(owner)
        for what, a in (("bias", self.bias), ("v_init", self.v_init)):
            if a is None:
                continue
            if self.is_input:
                raise GraphError(f"{owner}: an input population takes no {what}")
            if a.shape != self.shape:
                raise GraphError(f"{owner}: {what} shape {a.shape} differs from the population shape {self.shape}")
            if a.dtype.kind != "f":
                raise GraphError(f"{owner}: {what} must be floating point values, got {a.dtype}")
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            if bad:
                raise GraphError(f"{owner}: {what} holds {bad} NaN or infinite value{'s' if bad > 1 else ''}")
            worst = max(abs(float(a.max())), abs(float(a.min()))) if a.size else 0.0
            if worst > MAX_MAGNITUDE:
                raise GraphError(f"{owner}: {what} holds values up to {worst:.3g}, beyond +-{MAX_MAGNITUDE:g} (the "
                                 f"float32 state would overflow)")

    def initial_membrane(self) -> np.ndarray:
        """Every neuron's initial membrane v(0), float64 shaped like the population."""
        if self.v_init is not None:
            return self.v_init.astype(np.float64)
        return np.full(self.shape, float(self.neuron.v_init))


@dataclass(eq=False)
class Projection:
    """pre -> post: post input current += A(pre output delayed by ``delay_steps``).

    ``ops`` is the chain of linear ops making up A, applied in order to the pre
    population's output (shaped like the pre population); the result must have
    the post population's shape. Several projections may target one population;
    their currents add (residual sums).
    """

    name: str
    pre: str
    post: str
    ops: list = field(default_factory=list)
    delay_steps: int = 0

    def validate(self, populations: dict) -> None:
        owner = f"projection {self.name!r}"
        _check_name(self.name, "projection")
        for end in ("pre", "post"):
            if getattr(self, end) not in populations:
                raise GraphError(f"{owner}: {end} population {getattr(self, end)!r} does not exist")
        if populations[self.post].is_input:
            raise GraphError(f"{owner}: targets input population {self.post!r}, which takes no input")
        if not isinstance(self.delay_steps, (int, np.integer)) or isinstance(self.delay_steps, bool) \
                or not 0 <= self.delay_steps <= 2**20:
            raise GraphError(f"{owner}: delay_steps must be an integer in [0, 2**20], got {self.delay_steps!r}")
        if not self.ops:
            raise GraphError(f"{owner}: has no ops")
        shape = populations[self.pre].shape
        for i, op in enumerate(self.ops):
            if type(op) not in OPS.values():
                raise GraphError(f"{owner}: op {i} is not a known op type ({type(op).__name__})")
            op.validate(f"{owner} op {i} ({op.kind})")
            shape = op.out_shape(shape, f"{owner} op {i} ({op.kind})")
        if shape != populations[self.post].shape:
            raise GraphError(f"{owner}: its ops map {self.pre!r} {populations[self.pre].shape} to shape {shape}, "
                             f"but post population {self.post!r} has shape {populations[self.post].shape}")
        self._check_magnitude(populations[self.pre], owner)

    def _check_magnitude(self, pre: "Population", owner: str) -> None:
        """The numeric sanity bound: what the chain can deliver to one post neuron (and every value it passes
        on the way, which the executor holds in float32) stays within MAX_MAGNITUDE. ``gain()`` bounds an op's
        max_j sum_i |A_ji|, so the product over a prefix of the chain times the most the pre population sends
        per neuron and step (1 for an input, max_spikes_per_step spikes) bounds every intermediate value."""
        bound = 1.0 if pre.is_input else float(pre.neuron.max_spikes_per_step)
        for i, op in enumerate(self.ops):
            bound *= op.gain()
            if not bound <= MAX_MAGNITUDE:
                weights = "its weights" if "weight" in op.arrays() else "its sums"
                raise GraphError(f"{owner} op {i} ({op.kind}): {weights} times the fan-in can deliver "
                                 f"{bound:.3g} to one neuron in one step, beyond {MAX_MAGNITUDE:g} (the float32 "
                                 f"state would overflow)")

    def synapse_bound(self, pre_shape: tuple) -> tuple:
        """(synapses, peak entries, scratch bytes) of :meth:`materialize` on ``pre_shape``, counted from the
        shapes alone (nothing is built): an upper bound on the synapses it returns, on the entries it holds
        at once (each op's COO and each join of a chain) and the other bytes it holds. Raises GraphError on
        a chain whose shapes do not fit."""
        shape = tuple(int(s) for s in pre_shape)
        n_pre = math.prod(shape)
        current, peak, scratch = None, 0, 0
        for i, op in enumerate(self.ops):
            owner = f"projection {self.name!r} op {i} ({op.kind})"
            entries, fan = op.counts(shape)
            out = op.out_shape(shape, owner)
            scratch = max(scratch, op.scratch_bytes(shape))
            peak = max(peak, entries)
            if current is None:
                current = entries
            elif op.kind != "flatten":  # flatten is the identity: the chain so far is kept
                join = current * fan
                peak = max(peak, join)
                current = min(join, n_pre * math.prod(out))
            shape = out
        return (current or 0), peak, scratch

    def apply_numpy(self, x: np.ndarray) -> np.ndarray:
        """A applied to a batch of pre outputs, x of shape (batch, *pre.shape)."""
        for op in self.ops:
            x = op.apply_numpy(x)
        return x

    def materialize(self, pre_shape: tuple) -> "Synapses":
        """The exact sparse matrix of A: one entry per existing synapse (nonzero weight).

        Indices are C-order flat indices into the pre and post populations.
        Chains are composed exactly (sums over shared intermediate elements).
        """
        shape = tuple(pre_shape)
        synapses, peak, scratch = self.synapse_bound(shape)
        check_budget(peak * MATERIALIZE_BYTES + scratch + synapses * SYNAPSE_BYTES,
                     f"projection {self.name!r} materializes up to {number(synapses)} synapses "
                     f"({number(peak)} entries at once)", of="working memory")
        pre = post = weight = None
        for op in self.ops:
            coo = op.materialize(shape)
            n_mid = int(np.prod(shape))
            shape = op.out_shape(shape, self.name)
            if pre is None:
                pre, post, weight = coo
            elif op.kind != "flatten":  # flatten is the C-order identity
                pre, post, weight = _compose((pre, post, weight), coo, n_mid, int(np.prod(shape)))
        order = np.lexsort((post, pre))
        delay = np.full(len(order), self.delay_steps, dtype=np.int64)
        return Synapses(pre[order], post[order], weight[order].astype(np.float64), delay)

    def fingerprint(self, pre_shape: tuple) -> str:
        """A digest of everything that defines A on ``pre_shape`` (op types, parameters, array bytes)."""
        h = hashlib.blake2b(repr((tuple(pre_shape), [(op.kind, sorted(op.params().items())) for op in self.ops]))
                            .encode(), digest_size=20)
        for op in self.ops:
            for name, a in sorted(op.arrays().items()):
                h.update(f"{name}{a.dtype.str}{a.shape}".encode())
                h.update(np.ascontiguousarray(a).data)
        return h.hexdigest()

    def synapses_per_pre(self, pre_shape: tuple) -> np.ndarray:
        """The fan-out of every pre neuron: how many synapses (nonzero entries of A) it has.

        One synaptic operation is one spike delivered over one such synapse.
        Cached by content (:meth:`fingerprint`): materializing a chain is slow.
        """
        kinds = [op.kind for op in self.ops]
        if kinds[-1] == "dense" and set(kinds[:-1]) <= {"flatten"}:
            # flatten is the C-order identity, so the dense columns are the pre neurons
            return np.count_nonzero(self.ops[-1].weight, axis=0).astype(np.int64)
        key = self.fingerprint(pre_shape)
        fan = _FANOUT_CACHE.pop(key, None)
        if fan is None:
            fan = np.bincount(self.materialize(pre_shape).pre, minlength=math.prod(pre_shape)).astype(np.int64)
            fan.setflags(write=False)
        _FANOUT_CACHE[key] = fan
        while len(_FANOUT_CACHE) > 64:
            _FANOUT_CACHE.popitem(last=False)
        return fan


_FANOUT_CACHE: "OrderedDict[str, np.ndarray]" = OrderedDict()


@dataclass
class Synapses:
    """A projection as explicit synapses: parallel arrays, sorted by (pre, post)."""

    pre: np.ndarray
    post: np.ndarray
    weight: np.ndarray
    delay: np.ndarray

    def __len__(self):
        return len(self.pre)

    def dense(self, n_pre: int, n_post: int) -> np.ndarray:
        """As a dense (n_pre, n_post) matrix (for small networks and tests)."""
        m = np.zeros((n_pre, n_post))
        np.add.at(m, (self.pre, self.post), self.weight)
        return m


def _compose(first, second, n_mid: int, n_out: int):
    """COO of (second o first): join on the intermediate index, then sum duplicate (pre, post)."""
    p1, m1, w1 = first
    m2, q2, w2 = second
    order = np.argsort(m2, kind="stable")
    m2, q2, w2 = m2[order], q2[order], w2[order]
    counts = np.bincount(m2, minlength=n_mid)
    starts = np.cumsum(counts) - counts
    rep = counts[m1]
    total = int(rep.sum())
    src = np.repeat(np.arange(len(p1)), rep)
    offset = np.arange(total) - np.repeat(np.cumsum(rep) - rep, rep)
    dst = np.repeat(starts[m1], rep) + offset
    key = p1[src] * n_out + q2[dst]
    uniq, inverse = np.unique(key, return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights=w1[src].astype(np.float64) * w2[dst], minlength=len(uniq))
    keep = weight != 0
    return uniq[keep] // n_out, uniq[keep] % n_out, weight[keep]


@dataclass(eq=False)
class Network:
    """A spiking network: populations, projections, the time step and the readout.

    ``readout = "spike_count"``: the predicted class is the output neuron with the
    most spikes; ties are broken by the higher membrane potential, then the lower
    index. ``metadata`` is free JSON (source model, conversion settings, the
    accuracy of the ANN it came from). ``fixed_point``: None for floating point,
    or the integer arithmetic of :mod:`spikeport.ir.arithmetic`.
    """

    populations: list
    projections: list
    dt_s: float = 1e-3
    input: str = "input"
    output: str = "output"
    readout: str = "spike_count"
    metadata: dict = field(default_factory=dict)
    fixed_point: FixedPoint | None = None

    def __post_init__(self):
        self.populations = list(self.populations)
        self.projections = list(self.projections)

    @property
    def reads_output_membrane(self) -> bool:
        """True where the output population never spikes by design and the readout's tie rule (the
        higher membrane) is its answer: a non-spiking output such as spike-bp's, whose conversion
        records the threshold it set out of reach (``metadata["conversion"]["output_threshold"]``)."""
        conv = self.metadata.get("conversion") if isinstance(self.metadata, dict) else None
        return isinstance(conv, dict) and "output_threshold" in conv

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise GraphError(f"no population named {name!r}")

    def projections_into(self, name: str) -> list:
        return [p for p in self.projections if p.post == name]

    def validate(self) -> "Network":
        """Check everything; raise GraphError naming the object at fault. Returns self."""
        if not isinstance(self.dt_s, (int, float)) or not math.isfinite(self.dt_s) or not 0 < self.dt_s <= 1:
            raise GraphError(f"network: dt_s must be in (0, 1] seconds, got {self.dt_s!r}")
        if self.dt_s < MIN_DT_S:
            raise GraphError(f"network: dt_s {self.dt_s!r} is shorter than {MIN_DT_S:g} s (rates and times "
                             f"would overflow)")
        if self.readout not in READOUTS:
            raise GraphError(f"network: unknown readout {self.readout!r} (known: {', '.join(READOUTS)})")
        pops = {}
        for p in self.populations:
            if not isinstance(p, Population):
                raise GraphError(f"network: {p!r} is not a Population")
            p.validate()
            if p.name in pops:
                raise GraphError(f"population {p.name!r}: the name is used twice")
            pops[p.name] = p
        names = set()
        for proj in self.projections:
            if not isinstance(proj, Projection):
                raise GraphError(f"network: {proj!r} is not a Projection")
            proj.validate(pops)
            if proj.name in names:
                raise GraphError(f"projection {proj.name!r}: the name is used twice")
            names.add(proj.name)
        inputs = [p.name for p in self.populations if p.is_input]
        if inputs != [self.input]:
            raise GraphError(f"network: the input population must be {self.input!r} and the only one; "
                             f"input populations found: {inputs}")
        if self.output not in pops or pops[self.output].is_input:
            raise GraphError(f"network: output population {self.output!r} is not a spiking population of the network")
        if not isinstance(self.metadata, dict):
            raise GraphError("network: metadata must be a dict")
        if self.fixed_point is not None:
            self._validate_fixed_point()
        self.order()
        return self

    def _validate_fixed_point(self) -> None:
        fp = self.fixed_point
        if not isinstance(fp, FixedPoint):
            raise GraphError("network: fixed_point must be a FixedPoint")
        fp.validate()
        for p in self.populations:
            if p.is_input:
                continue
            owner = f"population {p.name!r}"
            nm = p.neuron
            check_integers(np.array([nm.threshold, nm.v_init]), fp.state_max, owner, "threshold and v_init")
            if p.bias is not None:
                check_integers(p.bias, fp.state_max, owner, "bias")
            if p.v_init is not None:
                check_integers(p.v_init, fp.state_max, owner, "v_init")
        for proj in self.projections:
            owner = f"projection {proj.name!r}"
            weighted = [op for op in proj.ops if "weight" in op.arrays()]
            if len(weighted) > 1:
                raise GraphError(f"{owner}: a fixed-point projection has at most one weighted op")
            if any(op.kind == "avgpool2d" for op in proj.ops):
                raise GraphError(f"{owner}: a fixed-point projection sums (sumpool2d); fold the average into the weights")
            for op in weighted:
                check_integers(op.weight, fp.weight_max, owner, "weights")

    def order(self, all_projections: bool = False) -> list:
        """Populations in update order: topological along zero-delay projections.

        A cycle of zero-delay projections has no order and is refused. With
        ``all_projections`` the order follows delayed projections too, and any
        cycle (a recurrent network) is refused.
        """
        deps = {p.name: set() for p in self.populations}
        for proj in self.projections:
            if proj.delay_steps == 0 or all_projections:
                deps[proj.post].add(proj.pre)
        ordered, done = [], set()
        pending = [p.name for p in self.populations]
        while pending:
            ready = [n for n in pending if deps[n] <= done]
            if not ready:
                kind = "projections" if all_projections else "zero-delay projections"
                raise GraphError(f"network: {kind} form a cycle through populations {pending}")
            for n in ready:
                ordered.append(self.population(n))
                done.add(n)
            pending = [n for n in pending if n not in done]
        return ordered

    def summary(self) -> str:
        lines = [f"network: {len(self.populations)} populations, {len(self.projections)} projections, dt {self.dt_s * 1e3:g} ms"]
        for p in self.populations:
            kind = f"input ({p.encoding.kind})" if p.is_input else f"{p.neuron.model.upper()} theta={p.neuron.threshold:g}"
            lines.append(f"  {p.name:<12} {str(p.shape):<16} {kind}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Footprint:
    """The memory a network needs, from its shapes alone (:func:`network_footprint`).

    ``neurons`` and ``state_bytes`` (STATE_BYTES per neuron: one sample's simulation state);
    ``synapses`` (an upper bound on the entries of every projection materialized, see
    :meth:`Projection.synapse_bound`) and ``synapse_bytes`` (SYNAPSE_BYTES each: the arrays of
    :class:`Synapses`); per population its neurons and per projection its synapses."""

    neurons: int
    synapses: int
    populations: dict
    projections: dict

    @property
    def state_bytes(self) -> int:
        return self.neurons * STATE_BYTES

    @property
    def synapse_bytes(self) -> int:
        return self.synapses * SYNAPSE_BYTES

    @property
    def total_bytes(self) -> int:
        return self.state_bytes + self.synapse_bytes


def network_footprint(network: Network) -> Footprint:
    """What ``network`` needs in memory for simulation state and materialized synapses, counted without
    building anything (ops' shape inference and :meth:`Projection.synapse_bound`); the network's shapes must
    fit (validate it first). What deploy and export check before they build arrays: see
    :func:`check_footprint`."""
    pops = {p.name: math.prod(int(s) for s in p.shape) for p in network.populations}
    shapes = {p.name: p.shape for p in network.populations}
    projs = {}
    for proj in network.projections:
        if proj.pre not in shapes:
            raise GraphError(f"projection {proj.name!r}: pre population {proj.pre!r} does not exist")
        projs[proj.name] = proj.synapse_bound(shapes[proj.pre])[0]
    return Footprint(neurons=sum(pops.values()), synapses=sum(projs.values()), populations=pops, projections=projs)


def check_footprint(network: Network, where=None, synapses: bool = True) -> Footprint:
    """:func:`network_footprint` checked against the memory budget (:mod:`spikeport.budget`): every population's
    state, every projection's materialized synapses (unless ``synapses`` is false) and the whole; the refusal
    names ``where`` (a file), the population or projection, and both sizes. Returns the footprint."""
    fp = network_footprint(network)
    for name, n in fp.populations.items():
        check_budget(n * STATE_BYTES, f"population {name!r} declares {number(n)} neurons", where, of="state")
    total = fp.state_bytes
    if synapses:
        for name, n in fp.projections.items():
            check_budget(n * SYNAPSE_BYTES, f"projection {name!r} declares up to {number(n)} synapses", where,
                         of="materialized synapses")
        total = fp.total_bytes
    check_budget(total, f"the network declares {number(fp.neurons)} neurons"
                 + (f" and up to {number(fp.synapses)} synapses" if synapses else ""), where,
                 of="state and synapses" if synapses else "state")
    return fp
