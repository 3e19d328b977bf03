"""ReLU training and rate conversion: the standard baseline every converter offers.

Train a ReLU ANN with cross-entropy; convert to IF neurons with reset by subtraction,
weights normalized layer by layer (Diehl et al. 2015; Rueckauer et al. 2017, robust
99.9th percentile by default), optionally with the threshold shift, the L4-norm
adjustment and calibration (docs/conversion.md).
"""
from __future__ import annotations

from .base import Method, SpikingSpec

METHOD = Method(
    name="relu",
    citation="Diehl et al. 2015, IJCNN (weight normalization); Rueckauer et al. 2017, Front. Neurosci. 11:682 "
             "(robust percentile normalization)",
    ann="the architecture with ReLU activations, biases; BatchNorm where the architecture has it (folded at conversion)",
    training="cross-entropy on the ANN's outputs; Adam, cosine learning-rate decay; no noise",
    snn=SpikingSpec(neuron="if", threshold=1.0, reset="subtract", encoding="analog", dt_s=1e-3, steps=64, v_init=0.5,
                    notes="weights scaled per layer by the 99.9th percentile of its activations on training data; "
                          "membranes start at half the threshold, far more accurate than from 0 at small T and "
                          "about as accurate from T = 16 on (measured: bench/RESULTS.md, section \"LeNet (relu), "
                          "analog input, beside the peers\")"),
    defaults={"optimizer": "adam", "lr": 1e-3, "batch_size": 64,
              "epochs": {"digits": 60, "mnist-5k": 30, "mnist": 10, "fashion-mnist": 15, "default": 10}},
    default_arch={"digits": "mlp", "mnist": "lenet", "mnist-5k": "lenet", "fashion-mnist": "lenet", "default": "mlp"},
    convert_options=("norm", "percentile", "v_init", "encoding", "max_rate_hz", "dt_s"),
)


def build(spec, options):
    from ..architectures import build as build_arch

    return build_arch(spec)


def loss(module, x, y, ctx):
    import torch

    return torch.nn.functional.cross_entropy(module(x), y)


def predict(module, x, ctx):
    return module(x)


def to_network(model, calibration, *, norm="percentile", percentile=99.9, v_init=None, encoding=None,
               max_rate_hz=None, dt_s=None, metadata=None):
    """Rate conversion (``spikeport.models.convert``) with the method's defaults."""
    from ..torch_import import import_torch

    snn = _snn_of(model)
    return import_torch(model.module, calibration, norm=norm, percentile=percentile,
                        v_init=v_init or ("half" if snn.v_init else "zero"), encoding=encoding or snn.encoding,
                        max_rate_hz=max_rate_hz or snn.max_rate_hz, dt_s=dt_s or snn.dt_s, metadata=metadata)


def _snn_of(model):
    from . import get_method

    return get_method(model.meta.get("method", "relu")).METHOD.snn
