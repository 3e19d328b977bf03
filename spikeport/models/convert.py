"""ANN -> SNN conversion into the graph.

``convert(model)`` converts a trained model (a :class:`TrainedModel`, as ``train`` or
``load_model`` return it) into the spiking network of its training method, with the
method's own neuron model, synapse, threshold, encoding and time step
(:mod:`spikeport.models.methods`); ``convert(module, calibration, ...)`` converts any
PyTorch module by rate conversion (:func:`spikeport.models.torch_import.import_torch`,
whose docstring states the method).
"""
from __future__ import annotations

from ..errors import SpikeportError
from .activation_stats import exact_percentiles
from .torch_import import NORMS, import_torch


def convert(model, calibration=None, *, data_dir=None, **options):
    """The spiking network of ``model``.

    - a :class:`~spikeport.models.training.TrainedModel`: its method's ``to_network``;
      ``calibration`` defaults to the training images of the data set it was trained on;
      ``options`` are the conversion options the method accepts
      (``describe(method)["convert_options"]``), others are an error.
    - a torch module: rate conversion, ``calibration`` required (import_torch's options).
    """
    from .methods import get_method
    from .training import TrainedModel

    if not isinstance(model, TrainedModel):
        if calibration is None:
            raise SpikeportError("convert(module, calibration): a module needs calibration samples")
        return import_torch(model, calibration, **options)
    m = get_method(model.meta.get("method", "relu"))
    allowed = set(m.METHOD.convert_options) | {"metadata"}
    stray = sorted(set(options) - allowed)
    if stray:
        raise SpikeportError(f"method {m.METHOD.name!r} converts with {', '.join(sorted(m.METHOD.convert_options)) or 'no options'}; "
                             f"{', '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply")
    if calibration is None:
        from ..datasets import load_dataset

        calibration = load_dataset(model.meta.get("dataset", "digits"), data_dir).x("train")
    return m.to_network(model, calibration, **options)


def layer_scales(module, calibration, percentile: float = 99.9) -> dict:
    """lambda per population (named after its last weighted layer): the ``percentile`` of its
    positive ANN activations over ``calibration``, as the converter computes them."""
    net = import_torch(module, calibration, norm="max" if percentile == 100 else "percentile", percentile=percentile)
    scales = dict(net.metadata["conversion"]["scales"])
    scales.pop("input")
    return scales


__all__ = ["NORMS", "convert", "exact_percentiles", "import_torch", "layer_scales"]
