"""Activation functions whose ANNs convert to spiking networks.

QCFS (Bu et al. 2022, "Optimal ANN-SNN conversion for high-accuracy and
ultra-low-latency spiking neural networks"): quantization-clip-floor-shift,

    a = lam * clip(floor(z * L / lam + 1/2) / L, 0, 1)

with a trainable clip level lam and L quantization steps; the floor is passed
straight through in the backward pass. Its SNN twin is an IF neuron with
threshold lam, reset by subtraction and v(0) = lam / 2.
"""
from __future__ import annotations


def _torch():
    import torch
    return torch


def qcfs_class():
    """The QCFS module class (built lazily so that importing spikeport does not import torch)."""
    global _QCFS
    if _QCFS is None:
        torch = _torch()

        class QCFS(torch.nn.Module):
            def __init__(self, levels: int = 8, lam: float = 4.0):
                super().__init__()
                self.levels = int(levels)
                self.lam = torch.nn.Parameter(torch.tensor(float(lam)))

            def forward(self, z):
                lam, levels = self.lam, self.levels
                scaled = z * levels / lam + 0.5
                floored = scaled + (torch.floor(scaled) - scaled).detach()  # straight-through floor
                return lam * torch.clamp(floored / levels, 0.0, 1.0)

            def extra_repr(self):
                return f"levels={self.levels}, lam={float(self.lam.detach()):.4g}"

        _QCFS = QCFS
    return _QCFS


_QCFS = None
