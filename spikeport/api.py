"""The Python API behind the command line: a notebook user calls the same functions.

>>> import spikeport                                           # doctest: +SKIP
>>> ds = spikeport.load_dataset("digits")
>>> model = spikeport.train(ds, arch="mlp", method="relu")
>>> net = spikeport.convert(model, for_steps=8, calibrate="membrane")
>>> result = spikeport.simulate(net, ds, steps=128)
>>> result.accuracy, result.report()["layers"]
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .backends import PRECISION, Activity, get_backend
from .datasets import evaluation_samples
from .budget import check_run_size
from .errors import SpikeportError
from .ir import Network


@dataclass
class Simulation:
    """A run of a network on samples; without labels (``labels`` None) every accuracy is None."""

    network: Network
    activity: Activity
    labels: np.ndarray | None
    dataset: str | None = None
    whole_test_set: bool = False        # the samples are the whole test set the ANN's accuracy was recorded on
    rate_model_accuracy: float | None = None  # the network as an ANN (its rate model) on the same samples
    ties: str = "membrane"              # the readout's tie rule: "membrane" (spikeport's) or "index" (lowest class)

    @property
    def accuracy(self) -> float | None:
        return self.activity.accuracy(self.labels, ties=self.ties)

    def accuracy_by_steps(self) -> dict:
        return {int(t): self.activity.accuracy(self.labels, t, ties=self.ties) for t in self.activity.checkpoints}

    def warnings(self) -> list:
        """Loud warnings about the run: layers or an output silent on most samples."""
        return self.activity.silent(self.network)

    def _latency(self):
        first = self.activity.first_spike_step
        if first is None or not (first >= 0).any():
            return None
        return float(first[first >= 0].mean())

    def _silent(self):
        first = self.activity.first_spike_step
        return None if first is None else float((first < 0).mean())

    def report(self) -> dict:
        """The JSON report of ``spikeport simulate`` (keys in docs/cli.md)."""
        conv = self.network.metadata.get("conversion", {})
        enc = self.network.population(self.network.input).encoding
        layers = [{k: l[k] for k in ("name", "neurons", "spikes", "rate_hz", "synops")}
                  for l in self.activity.layers()]
        # the ANN's accuracy is known only for the data set the network was converted from, and only for its
        # whole test set: beside a run on fewer samples stands the rate model's, on those samples
        same_data = self.dataset is not None and self.dataset == self.network.metadata.get("dataset")
        recorded = self.network.metadata.get("ann_accuracy") if same_data else None
        ann = recorded if self.whole_test_set else None
        return {"accuracy": self.accuracy, "ann_accuracy": ann, "ann_accuracy_test_set": recorded,
                "rate_model_accuracy": self.rate_model_accuracy,
                "steps": self.activity.steps, "samples": self.activity.samples, "backend": self.activity.backend,
                "seconds": round(self.activity.seconds, 4), "layers": layers,
                "accuracy_by_steps": {str(k): v for k, v in self.accuracy_by_steps().items()},
                "dataset": self.dataset, "encoding": enc.kind, "device": self.activity.device,
                "dt_s": self.network.dt_s, "counts_per": "inference (mean over samples)",
                "first_spike_step_mean": self._latency(), "no_output_spike_fraction": self._silent(),
                "normalization": conv.get("norm"), "percentile": conv.get("percentile"), "ties": self.ties,
                "labelled": self.labels is not None, "warnings": self.warnings()}


def convert(model, calibration=None, *, labels=None, for_steps: int | None = None, l4: str | None = None,
            l4_sigma: str = "l4", l4_alpha: float | str = 1.0, calibrate: str | None = None,
            calib_samples: int = 512, data_dir=None, notes: list | None = None, **options) -> Network:
    """The spiking network of ``model``, adjusted for ``for_steps`` steps where asked: ``spikeport convert``.

    ``model``: a trained model (its method's own spiking network; ``calibration`` defaults to the
    training images of its data set) or a torch module (rate conversion; ``calibration`` needed);
    ``options``: the conversion options (:func:`spikeport.models.convert`). Then, for rate-converted
    models (relu, qcfs, modules), on the first ``calib_samples`` calibration samples (``labels``
    their labels, needed only for ``l4_alpha="auto"``): the L4-norm adjustment ``l4`` ("scale" or
    "shift") and the calibration towards the ANN ``calibrate`` ("bias", "membrane" or "weights")
    (:func:`spikeport.passes.adjust.adjust`). ``notes``: a list that receives one line per adjustment.
    """
    from .models import convert as convert_model
    from .models.training import TrainedModel
    from .passes.adjust import adjust

    trained = isinstance(model, TrainedModel)
    check_adjustments(model.meta.get("method", "relu") if trained else "relu", for_steps=for_steps, l4=l4,
                      l4_sigma=l4_sigma, l4_alpha=l4_alpha, calibrate=calibrate, calib_samples=calib_samples,
                      labelled=labels is not None or calibration is None)
    net = convert_model(model, calibration, data_dir=data_dir, **options)
    if not (l4 or calibrate):
        return net
    if calibration is None:
        from .datasets import load_dataset

        ds = load_dataset(model.meta.get("dataset", "digits"), data_dir)
        calibration, labels = ds.x("train"), ds.y("train")
    n = min(calib_samples, len(calibration))
    net, lines = adjust(net, np.asarray(calibration)[:n], None if labels is None else np.asarray(labels)[:n],
                        for_steps, l4=l4, l4_sigma=l4_sigma, l4_alpha=l4_alpha, calibrate=calibrate,
                        module=model.module if trained else model)
    if notes is not None:
        notes.extend(lines)
    return net


def convert_nir(path, dt: float | None = None, *, library: str | None = None, encoding: str | None = None,
                max_rate_hz: float | None = None, reset: str | None = None, v_init: str | None = None,
                threshold_scale: float | None = None, notes: list | None = None) -> Network:
    """The spiking network of a NIR file with the conversion options a user may restate: ``spikeport
    convert FILE.nir``.

    ``library``: whose exporter wrote it ("snntorch", "norse", "sinabs", "rockpool", or "nir" for
    generic NIR, which needs ``dt``; default: detected). A library's file is imported with that
    library's own reset (snnTorch's is late), so ``reset`` applies to generic NIR only, where it
    is restated with ``encoding``, ``max_rate_hz``, ``v_init`` and ``threshold_scale``
    (:func:`spikeport.ir.restate.restate`). ``notes``: a list that receives one line per change.
    """
    from .ir.nir import detect_library, import_nir
    from .ir.restate import restate

    detected = library or detect_library(path)
    preset = detected not in (None, "nir", "lava")
    net = import_nir(path, dt, library=library, reset=reset if preset else None)
    net, lines = restate(net, encoding=encoding, max_rate_hz=max_rate_hz, reset=None if preset else reset,
                         v_init=v_init, threshold_scale=threshold_scale)
    if notes is not None:
        notes.extend(lines)
    return net


def check_adjustments(method: str, *, for_steps=None, l4=None, l4_sigma="l4", l4_alpha=1.0, calibrate=None,
                      calib_samples: int = 512, labelled: bool = True) -> None:
    """Before any work, :func:`convert`'s adjustment options for a model of ``method``: one clear error
    where they do not make sense (the command line calls it before it loads any data)."""
    from .models.methods import RATE_CONVERTED
    from .passes.adjust import check

    if not (l4 or calibrate):
        return
    if method not in RATE_CONVERTED:
        raise SpikeportError(f"--l4 and --calibrate adjust rate-converted networks ({', '.join(RATE_CONVERTED)}); "
                             f"a {method} model was trained for its own spiking network")
    if calib_samples < 1:
        raise SpikeportError(f"--calib-samples must be at least 1, got {calib_samples}")
    check(for_steps, l4=l4, l4_sigma=l4_sigma, l4_alpha=l4_alpha, calibrate=calibrate, labelled=labelled)


def rate_model_accuracy(network, x, y):
    """Accuracy of ``network`` run as the ANN it stands for (its rate model: every neuron at its steady
    rate) on the samples ``x``, or None where the rate model does not cover the network's neurons."""
    from .models.calibrate import output_scores

    if y is None:
        return None
    try:
        rates = output_scores(network, x)
    except SpikeportError:
        return None
    return float((rates.argmax(axis=1) == np.asarray(y)).mean())


def _simulation(network, activity, x, y, name, whole, ties="membrane") -> Simulation:
    """A run's Simulation; beside a run on part of a test set, the network's rate model on the same samples."""
    activity.predicted(ties)  # an unknown tie rule, or one the backend did not record: before any report
    return Simulation(network=network, activity=activity, labels=y, dataset=name, whole_test_set=whole,
                      rate_model_accuracy=None if whole else rate_model_accuracy(network, x, y), ties=ties)


def _count_samples(progress, n: int, what: str) -> None:
    """Tell ``progress`` (if it takes a total) how many samples are coming, and for what."""
    if progress is not None and hasattr(progress, "set_total"):
        progress.set_total(n)
        progress.note(what)


def simulate(network: Network, data="digits", steps: int = 100, *, samples: int | None = None,
             backend: str = "reference", checkpoints=None, device=None, seed: int = 0, data_dir=None,
             progress=None, ties: str = "membrane", **backend_options) -> Simulation:
    """Run ``network`` on the test split of ``data`` for ``steps`` steps on ``backend``.

    ``checkpoints``: step counts to also report accuracy at ("all": every step);
    ``backend_options`` go to the backend's ``run`` (e.g. ``record_counts=True``). Unless the samples
    are a named data set's whole test set, the report sets the network's rate model on the same samples
    beside the SNN, not the ANN's accuracy recorded on its whole test set. ``data``: a data set name, a
    :class:`~spikeport.datasets.Dataset`, (x, y), or x alone (no labels: accuracies are None). ``ties``:
    "membrane" (most spikes, then the higher membrane) or "index" (most spikes, then the lowest class).
    ``steps`` and steps x samples x neurons are bounded (:func:`check_run_size`), before anything runs.
    """
    runner = get_backend(backend)          # an unknown backend or a mapper: before any data is read
    check_run_size(network, steps)         # bounded runs: before any data is read, and once its size is known
    x, y, name, whole = evaluation_samples(data, samples, data_dir, network)
    check_run_size(network, steps, len(x))
    _count_samples(progress, len(x), backend)
    kwargs = {"checkpoints": checkpoints, "seed": seed, "progress": progress, **backend_options}
    if device is not None:
        if backend != "reference":
            raise SpikeportError(f"device {device!r}: only the reference executor runs on a chosen device; "
                                 f"the {backend} backend runs on its simulator")
        kwargs["device"] = device
    from .deploy.targets import simulator_options

    activity = runner.run(network, x, steps, **simulator_options(backend, network, kwargs))
    return _simulation(network, activity, x, y, name, whole, ties)


@dataclass
class Validation:
    """A backend's run beside the reference executor's on the same samples (``spikeport validate``)."""

    simulation: Simulation
    reference: Activity | None          # None when the backend is the reference itself
    diagnosis: dict | None = None

    def agreement(self) -> float:
        """Fraction of samples whose predicted class equals the reference executor's."""
        if self.reference is None:
            return 1.0
        ties = self.simulation.ties
        return float((self.simulation.activity.predicted(ties)[:, -1] == self.reference.predicted(ties)[:, -1]).mean())

    def rate_correlation(self) -> dict:
        """Per spiking population: Pearson correlation of per-neuron spike counts with the reference's."""
        from .models.diagnose import rate_agreement

        act, ref = self.simulation.activity, self.reference
        out = {}
        for name, counts in act.neuron_counts.items():
            if ref is None:
                out[name] = 1.0
            elif name in ref.neuron_counts:
                out[name] = rate_agreement(ref.neuron_counts[name].astype(np.float64).ravel(),
                                           counts.astype(np.float64).ravel(), act.steps)
        return out

    def report(self) -> dict:
        rep = self.simulation.report()
        rep["agreement"] = self.agreement()
        rep["rate_correlation"] = self.rate_correlation()
        rep["reference_seconds"] = None if self.reference is None else round(self.reference.seconds, 4)
        rep["notes"] = list(self.simulation.activity.notes)
        if self.diagnosis is not None:
            rep["diagnosis"] = {"first_bad": self.diagnosis["first_bad"], "steps": self.diagnosis["steps"],
                                "compared_with": self.diagnosis.get("compared_with"),
                                "layers": [vars(l) for l in self.diagnosis["layers"]]}
        return rep


def validate(network: Network, data="digits", steps: int = 100, *, samples: int | None = 100,
             backend: str = "reference", seed: int = 0, diagnose: bool = False, module=None, data_dir=None,
             progress=None, min_correlation: float = 0.9, ties: str = "membrane", batch_samples: int | None = None,
             batch_seconds: float | None = None, **backend_options) -> Validation:
    """Run ``network`` on ``backend`` and on the reference executor over the same test samples.

    ``diagnose``: also compare every layer's rates with the ANN's activations, scaled
    as converted, and name the first layer whose correlation falls below
    ``min_correlation``. ``backend_options`` go to the backend's ``run`` (e.g.
    ``codegen="numpy"`` for brian2). The ANN is ``module`` (the PyTorch module the network was
    converted from) when given; otherwise the network's own rate model, which
    finds what the spiking dynamics lose (too few steps, noise, saturation) but
    not a wrong scale in the graph itself.

    A simulator backend (not the reference) runs in guarded batches of ``batch_samples`` (default 1000), each
    in its own process under a time limit of ``batch_seconds`` (default 3600): a batch that crashes or hangs
    raises one line naming it, the batches done are kept, and the same call again resumes
    (:mod:`spikeport.backends.batches`).
    """
    from .backends.batches import check_limits, run_batches
    from .passes.diagnose import diagnose as diagnose_layers

    runner = get_backend(backend)          # an unknown backend or a mapper: before any data is read
    check_limits(batch_samples, batch_seconds)
    check_run_size(network, steps)
    x, y, name, whole = evaluation_samples(data, samples, data_dir, network)
    check_run_size(network, steps, len(x))
    both = backend != "reference"
    _count_samples(progress, len(x) * (2 if both else 1), backend)  # the backend's run, then the reference's
    from .deploy.targets import simulator_options

    options = simulator_options(backend, network, dict(backend_options))
    if both:
        activity = run_batches(backend, network, x, steps, seed=seed, options=options, batch_samples=batch_samples,
                               batch_seconds=batch_seconds, progress=progress)
    else:
        activity = runner.run(network, x, steps, seed=seed, record_counts=True, progress=progress, **options)
    sim = _simulation(network, activity, x, y, name, whole, ties)
    reference = None
    if both:
        if progress is not None and hasattr(progress, "note"):
            progress.note("reference")
        # in the backend's own precision: Brian2 and NEST compute in float64
        reference = get_backend("reference").run(network, x, steps, seed=seed, record_counts=True,
                                                 precision=PRECISION.get(backend, "float32"), progress=progress)
    diagnosis = None
    if diagnose:
        diagnosis = diagnose_layers(network, module, x, steps, min_correlation=min_correlation, activity=activity)
        diagnosis["compared_with"] = ("the network's rate model (its ANN, scaled as converted)" if module is None
                                      else "the PyTorch model's activations, scaled as converted")
    return Validation(simulation=sim, reference=reference, diagnosis=diagnosis)
