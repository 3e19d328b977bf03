"""What every simulator backend shares: argument checks, the input the reference executor
would send, the lags that undo a simulator's one-step minimum delay, and the
:class:`Activity` built from what a simulator recorded.

A backend lowers the graph to its simulator, runs it, and hands back per-neuron spike
counts, the output population's spike trains and (for the readout's tie rule) its
membrane potential at the checkpoints; :func:`activity` turns them into the same
report the reference executor gives, with synaptic operations counted the same way
(one event over one existing synapse; an analog value is an event while nonzero).
"""
from __future__ import annotations

import numpy as np

from ..errors import SpikeportError
from ..ir import Network
from ..runtimes import readout
from .activity import Activity


NEURON_FEATURES = {
    "reset_amount": "a subtractive reset of an amount other than theta (reset_amount)",
    "max_spikes_per_step": "several spikes per step (max_spikes_per_step)",
    "strict_threshold": "the strict threshold test v > theta (strict_threshold)",
}


def neuron_features(nm) -> list:
    """The NeuronModel fields beyond a plain one-spike IF/LIF that ``nm`` uses (keys of NEURON_FEATURES)."""
    out = []
    if nm.reset_amount is not None and nm.reset_amount != nm.threshold:
        out.append("reset_amount")
    if nm.max_spikes_per_step != 1:
        out.append("max_spikes_per_step")
    if nm.strict_threshold:
        out.append("strict_threshold")
    return out


def require_features(network: Network, backend: str, supports=()) -> None:
    """One SpikeportError line naming the first population that uses a neuron feature ``backend`` cannot
    realize (rather than simulate something else)."""
    for pop in network.populations:
        if pop.is_input:
            continue
        missing = [f for f in neuron_features(pop.neuron) if f not in supports]
        if missing:
            what = NEURON_FEATURES[missing[0]]
            if missing[0] == "max_spikes_per_step":
                what = f"up to {pop.neuron.max_spikes_per_step} spikes per step (max_spikes_per_step)"
            elif missing[0] == "reset_amount":
                what = (f"a subtractive reset of {pop.neuron.reset_amount:.9g} instead of theta "
                        f"{pop.neuron.threshold:.9g} (reset_amount)")
            raise SpikeportError(f"the {backend} backend cannot simulate population {pop.name!r}: it uses {what}; "
                                 f"run it on the reference executor")


def require_simulable(network: Network, backend: str, supports=()) -> list:
    """The network's populations in feed-forward order, or one clear error: simulator backends
    run floating-point, feed-forward graphs (a fixed-point network is the reference
    executor's or a deploy target's; a recurrent one is refused, as by the executor) whose
    neurons use only the features the backend realizes (``supports``: keys of NEURON_FEATURES)."""
    if network.fixed_point is not None:  # first: a fixed-point graph is refused whatever else is wrong
        raise SpikeportError(f"the {backend} backend simulates floating-point networks; this one is fixed-point "
                             "(run it on the reference executor, or use the network before quantization)")
    network.validate()
    require_features(network, backend, supports)
    try:
        return network.order(all_projections=True)
    except SpikeportError as exc:
        raise SpikeportError(f"the {backend} backend runs feed-forward networks only: {exc}") from None


def check_run(network: Network, x, steps: int, checkpoints=None, record_trains=()):
    """(x as float32 (samples, input size), steps, sorted checkpoints) or one clear error
    (also for ``record_trains`` naming no spiking population). The reference executor and
    every simulator backend check their arguments here."""
    network.validate()
    steps = int(steps)
    if steps < 1:
        raise SpikeportError(f"steps must be at least 1, got {steps}")
    checkpoints = (list(range(1, steps + 1)) if checkpoints == "all"
                   else sorted({int(c) for c in (checkpoints or [])} | {steps}))
    if checkpoints[0] < 1 or checkpoints[-1] > steps:
        raise SpikeportError(f"checkpoints must lie in [1, {steps}], got {checkpoints}")
    x = np.asarray(x, dtype=np.float32)
    inp = network.population(network.input)
    if x.ndim < 1 or (x.size and x[0].size != inp.size):
        raise SpikeportError(f"input samples of shape {x.shape[1:]} do not fit input population "
                             f"{inp.name!r} of shape {inp.shape}")
    if len(x) == 0:
        raise SpikeportError("no samples to simulate")
    spiking = {p.name for p in network.populations if not p.is_input}
    unknown = [n for n in record_trains if n not in spiking]
    if unknown:
        raise SpikeportError(f"record_trains: no spiking population named {unknown[0]!r}")
    return x.reshape(len(x), inp.size), steps, checkpoints


def input_trains(network: Network, x: np.ndarray, steps: int, seed: int = 0, sample0: int = 0):
    """The input population's spikes, bool (samples, steps, n), exactly as the reference
    executor generates them (Poisson from the same counter-based generator); None for
    analog input, whose value is a current sent every step."""
    import torch

    from ..ir.kernels import encode

    pop = network.population(network.input)
    if pop.encoding.kind == "analog":
        return None
    kind, seq = encode(pop, torch.as_tensor(np.asarray(x, np.float32).reshape(len(x), -1)), 0, steps,
                        network.dt_s, sample0, seed, torch.float32)
    return seq.numpy().transpose(1, 0, 2) > 0


def lags(network: Network, latency=lambda proj: max(proj.delay_steps, 1)) -> dict:
    """The simulator step at which each population simulates the graph's step 0, on a
    simulator where projection ``p`` takes ``latency(p) >= delay_steps`` steps (one step at
    least on most: Loihi, NEST, SpiNNaker) instead of the graph's ``delay_steps``.

    Lags are the longest realized path, so a backend that pads every projection to
    ``lag[post] - lag[pre] + delay_steps`` steps makes every path into a population
    arrive aligned (residual connections included) and, reading each population in its
    window ``[lag, lag + steps)``, reproduces same-step delivery exactly. Projections of
    an analog input add no lag: their current is applied in the post population's own
    window.
    """
    analog = network.population(network.input).encoding.kind == "analog"
    lag = {}
    for pop in network.order(all_projections=True):  # feed-forward networks only, as the executor
        spiking = [p for p in network.projections_into(pop.name) if not (analog and p.pre == network.input)]
        lag[pop.name] = max((lag[p.pre] + latency(p) - p.delay_steps for p in spiking), default=0)
    return lag


def predictions(counts: np.ndarray, v: np.ndarray | None):
    """Most spikes wins; ties go to the higher membrane potential (when recorded), then the
    lower index. counts, v: (samples, classes). Returns (membrane-tie, index-tie) predictions."""
    by_index = readout.predict_index(counts)
    if v is None:
        return by_index, by_index
    return readout.predict(counts, v), by_index


def activity(network: Network, backend: str, x: np.ndarray, steps: int, checkpoints: list, counts: dict,
             output_trains: np.ndarray, seconds: float, *, output_v: np.ndarray | None = None,
             inputs: np.ndarray | None = None, delivered: dict | None = None, record_counts: bool = True,
             notes=(), device: str = "cpu") -> Activity:
    """The :class:`Activity` of a simulator's run.

    counts[name]: per-neuron spike counts (samples, *shape) of every spiking population
    output_trains: the output population's spikes (samples, steps, classes)
    output_v: its membrane potential after each checkpoint (samples, len(checkpoints), classes),
        used to break ties as the reference executor does; without it ties go to the lower index
    inputs: the input population's spikes (samples, steps, n) for spiking encodings
    delivered[(pre, d)]: spikes of spiking population ``pre`` in the first steps - d steps
        (samples, n), for every projection with delay 1 <= d < steps out of it: what the projection
        delivered within the run. Without it those projections count all pre spikes.
    record_counts: keep every neuron's count in ``Activity.neuron_counts`` (else only the sums)
    """
    samples = len(x)
    out = network.population(network.output)
    trains = np.asarray(output_trains).reshape(samples, steps, out.size)
    cum = trains.cumsum(axis=1)
    preds, preds_index = [], []
    for k, t in enumerate(checkpoints):
        v = None if output_v is None else np.asarray(output_v)[:, k].reshape(samples, out.size)
        pm, pi = predictions(cum[:, t - 1], v)
        preds.append(pm)
        preds_index.append(pi)
    fired = trains.any(axis=2)
    first = np.where(fired.any(axis=1), fired.argmax(axis=1), -1)
    flat = {name: np.asarray(c).reshape(samples, -1).astype(np.int64) for name, c in counts.items()}
    inp = network.population(network.input)
    if inputs is not None:
        flat[inp.name] = np.asarray(inputs).reshape(samples, steps, -1).sum(axis=1).astype(np.int64)
    else:  # an analog value is one event per step over each of its synapses while nonzero
        flat[inp.name] = (x.reshape(samples, -1) != 0).astype(np.int64) * steps
    synops = {p.name: np.zeros(samples, np.int64) for p in network.populations if not p.is_input}
    for proj in network.projections:
        pre = network.population(proj.pre)
        # a delayed projection delivers the pre output of the first steps - d steps only
        fan = proj.synapses_per_pre(pre.shape).astype(np.int64)
        d, events = proj.delay_steps, flat[proj.pre]
        if d and proj.pre == inp.name:
            events = ((x.reshape(samples, -1) != 0).astype(np.int64) * max(0, steps - d) if inputs is None
                      else np.asarray(inputs).reshape(samples, steps, -1)[:, :max(0, steps - d)].sum(axis=1))
        elif d and delivered is not None:
            events = (np.zeros_like(events) if d >= steps
                      else np.asarray(delivered[proj.pre, d]).reshape(samples, -1))
        synops[proj.post] += events.astype(np.int64) @ fan
    pop_spikes = {name: c.sum(axis=1) for name, c in flat.items() if name != inp.name or inputs is not None}
    return Activity(backend=backend, steps=steps, dt_s=network.dt_s, checkpoints=list(checkpoints),
                    predictions=np.stack(preds, axis=1), output_counts=cum[:, -1].astype(np.int64),
                    population_spikes=pop_spikes, synops=synops,
                    neurons={p.name: p.size for p in network.populations}, seconds=seconds, device=device,
                    notes=list(notes), first_spike_step=first, predictions_index=np.stack(preds_index, axis=1),
                    neuron_counts={} if not record_counts else
                    {name: np.asarray(c).astype(np.int32).reshape((samples,) + network.population(name).shape)
                     for name, c in counts.items()})
