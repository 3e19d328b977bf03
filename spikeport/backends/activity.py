"""What a backend run returns: the readout and the activity counts energy needs."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Activity:
    """Per-sample readout and activity of one run of ``steps`` steps over ``samples`` samples.

    predictions[s, k]: the predicted class of sample s after ``checkpoints[k]`` steps: most
        output spikes; ties go to the higher membrane potential, then the lower index
    predictions_index[s, k]: the same with ties going to the lower index (the plain argmax
        of spike counts other converters use), when the backend records it
    output_counts[s, c]: spikes of output neuron c over all steps
    population_spikes[name][s]: spikes of the population over all steps
    synops[name][s]: synaptic operations (one spike delivered over one existing
        synapse) into the population, summed over its incoming projections
    neurons[name]: neurons of the population; each is updated once per step
    first_spike_step[s]: the first step (0-based) at which any output neuron spiked, -1 if none
    neuron_counts[name][s, ...]: spikes of every neuron (only when asked for)
    spike_trains[name][s, t, ...]: whole spike trains (only for the populations asked for)
    """

    backend: str
    steps: int
    dt_s: float
    checkpoints: list
    predictions: np.ndarray
    output_counts: np.ndarray
    population_spikes: dict
    synops: dict
    neurons: dict
    seconds: float
    device: str = "cpu"
    notes: list = field(default_factory=list)
    first_spike_step: np.ndarray | None = None
    neuron_counts: dict = field(default_factory=dict)
    spike_trains: dict = field(default_factory=dict)
    predictions_index: np.ndarray | None = None

    @property
    def samples(self) -> int:
        return int(self.predictions.shape[0])

    def accuracy(self, labels: np.ndarray | None, steps: int | None = None, ties: str = "membrane") -> float | None:
        """Fraction of samples classified correctly after ``steps`` steps (default: all); None without labels.

        ties: "membrane" (the executor's readout) or "index" (plain argmax of spike counts)."""
        if labels is None:
            return None
        k = len(self.checkpoints) - 1 if steps is None else self.checkpoints.index(steps)
        return float((self.predicted(ties)[:, k] == np.asarray(labels)).mean())

    def predicted(self, ties: str = "membrane") -> np.ndarray:
        """predictions[s, k] under the tie rule ``ties`` ("membrane" or "index")."""
        if ties == "index":
            if self.predictions_index is None:
                raise ValueError(f"the {self.backend} backend does not record index tie-breaking")
            return self.predictions_index
        if ties != "membrane":
            raise ValueError(f"ties must be 'membrane' or 'index', got {ties!r}")
        return self.predictions

    def silent(self, network=None, most: float = 0.5) -> list:
        """Loud warnings for populations without a single spike on more than ``most`` of the samples: a
        wrong time step (a NIR file's --dt), too few steps or too high a threshold; ``network``'s output
        population answers by its tie rule there. An output that never spikes by design (its membrane is
        the answer, :attr:`Network.reads_output_membrane`) is not warned about."""
        output = None if network is None else network.output
        out = []
        seconds = self.steps * self.dt_s
        for name, per_sample in self.population_spikes.items():
            if name == output and network.reads_output_membrane:
                continue
            frac = float((np.asarray(per_sample) == 0).mean()) if len(per_sample) else 0.0
            if frac <= most:
                continue
            what = ("the output" if name == output else "layer") + f" {name!r}"
            out.append(f"{what} is silent (not one spike in {self.steps} steps, {seconds:g} s) on {frac:.0%} of the "
                       f"samples" + (": its class there is the tie rule's, not the network's answer" if name == output
                                     else ": what follows it sees no input")
                       + "; check the time step (a NIR file's --dt), the number of steps and the thresholds")
        return out

    def layers(self) -> list:
        """Per population, per inference (mean over samples): spikes, rate, synaptic ops, neuron updates."""
        out = []
        seconds = self.steps * self.dt_s
        for name, n in self.neurons.items():
            spikes = float(self.population_spikes[name].mean()) if name in self.population_spikes else None
            out.append({"name": name, "neurons": int(n), "spikes": spikes,
                        "rate_hz": None if spikes is None else spikes / (n * seconds),
                        "synops": float(self.synops[name].mean()) if name in self.synops else 0.0,
                        "neuron_updates": 0 if name not in self.population_spikes else int(n) * self.steps})
        return out


# ----------------------------------------------------------------------------- kept on disk, merged

_DICTS = ("population_spikes", "synops", "neuron_counts", "spike_trains")
_ARRAYS = ("predictions", "output_counts", "first_spike_step", "predictions_index")


def save_activity(activity: Activity, f) -> None:
    """Write ``activity`` to the binary file ``f`` as an .npz of plain arrays (no pickle): what a batch of a
    guarded run (:mod:`spikeport.backends.batches`) keeps on disk."""
    import json

    head = {"backend": activity.backend, "steps": int(activity.steps), "dt_s": float(activity.dt_s),
            "checkpoints": [int(c) for c in activity.checkpoints], "seconds": float(activity.seconds),
            "device": activity.device, "notes": [str(n) for n in activity.notes],
            "neurons": {k: int(v) for k, v in activity.neurons.items()},
            "dicts": {d: list(getattr(activity, d)) for d in _DICTS},
            "arrays": [a for a in _ARRAYS if getattr(activity, a) is not None]}
    arrays = {"head": np.array(json.dumps(head))}
    for a in head["arrays"]:
        arrays[a] = np.asarray(getattr(activity, a))
    for d in _DICTS:
        for i, name in enumerate(head["dicts"][d]):
            arrays[f"{d}.{i}"] = np.asarray(getattr(activity, d)[name])
    np.savez(f, **arrays)


def load_activity(path) -> Activity:
    """The :class:`Activity` :func:`save_activity` wrote (arrays only: ``allow_pickle=False``)."""
    import json

    with np.load(path, allow_pickle=False) as z:
        head = json.loads(str(z["head"]))
        fields = {a: z[a] for a in head["arrays"]}
        for d in _DICTS:
            fields[d] = {name: z[f"{d}.{i}"] for i, name in enumerate(head["dicts"][d])}
    return Activity(backend=head["backend"], steps=head["steps"], dt_s=head["dt_s"], checkpoints=head["checkpoints"],
                    seconds=head["seconds"], device=head["device"], notes=head["notes"], neurons=head["neurons"],
                    **fields)


def merge_activities(parts: list) -> Activity:
    """One :class:`Activity` of the samples of ``parts`` in order (runs of the same network and steps on
    consecutive samples): per-sample arrays concatenated, seconds added, notes kept once each."""
    first = parts[0]
    if len(parts) == 1:
        return first

    def cat(arrays):
        return None if any(a is None for a in arrays) else np.concatenate([np.asarray(a) for a in arrays])

    notes = []
    for p in parts:
        notes += [n for n in p.notes if n not in notes]
    return Activity(backend=first.backend, steps=first.steps, dt_s=first.dt_s, checkpoints=list(first.checkpoints),
                    predictions=cat([p.predictions for p in parts]), output_counts=cat([p.output_counts for p in parts]),
                    population_spikes={k: cat([p.population_spikes[k] for p in parts]) for k in first.population_spikes},
                    synops={k: cat([p.synops[k] for p in parts]) for k in first.synops}, neurons=dict(first.neurons),
                    seconds=float(sum(p.seconds for p in parts)), device=first.device, notes=notes,
                    first_spike_step=cat([p.first_spike_step for p in parts]),
                    neuron_counts={k: cat([p.neuron_counts[k] for p in parts]) for k in first.neuron_counts},
                    spike_trains={k: cat([p.spike_trains[k] for p in parts]) for k in first.spike_trains},
                    predictions_index=cat([p.predictions_index for p in parts]))
