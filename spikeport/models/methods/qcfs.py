"""QCFS: quantization-clip-floor-shift training for few-step conversion (Bu et al. 2022).

Every ReLU becomes a = lam * clip(floor(z L / lam + 1/2) / L, 0, 1) with a trainable
clip level lam and L levels, the floor passed straight through; the SNN twin is an IF
neuron with threshold lam, reset by subtraction and v(0) = lam / 2, near-lossless at
T = L (measured on MNIST LeNet: 0.03 pp at T = 4, bench/RESULTS.md).
"""
from __future__ import annotations

from . import relu
from .base import Method, SpikingSpec

METHOD = Method(
    name="qcfs",
    citation="Bu, Fang, Ding, Dai, Yu, Huang 2022, 'Optimal ANN-SNN conversion for high-accuracy and "
             "ultra-low-latency spiking neural networks', ICLR",
    ann="every ReLU replaced by QCFS: lam * clip(floor(z L / lam + 1/2) / L, 0, 1), lam trainable (initialized to 4), "
        "straight-through floor",
    training="cross-entropy on the ANN's outputs; Adam, cosine learning-rate decay",
    snn=SpikingSpec(neuron="if", threshold=1.0, reset="subtract", encoding="analog", dt_s=1e-3, steps=8, v_init=0.5,
                    notes="threshold = the trained clip level lam (1 after normalization), v(0) = lam / 2"),
    defaults={"optimizer": "adam", "lr": 1e-3, "batch_size": 64, "arch_flags": {"activation": "qcfs"},
              "epochs": relu.METHOD.defaults["epochs"]},
    options={"levels": 8},
    default_arch=relu.METHOD.default_arch,
    convert_options=relu.METHOD.convert_options,
)



def steps_for(model) -> int:
    """QCFS is made for T about L (bench/RESULTS.md: accuracy falls as T grows past L)."""
    return int(model.meta.get("options", {}).get("levels", model.spec.qcfs_levels))


build = relu.build
loss = relu.loss
predict = relu.predict
to_network = relu.to_network
