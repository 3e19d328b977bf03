"""The torch kernels of the graph's ops and input encodings, shared by every torch user of the graph.

The reference executor (:mod:`spikeport.backends.reference`) runs its projections and input
populations with these; the rate model (:mod:`spikeport.models.calibrate`) and spike-bp's
training forward pass use the same kernels, so all three add in the same order.

- :data:`TORCH_OPS`: op kind -> ``kernel(op, x, cache) -> y`` on tensors of shape
  (rows, *pre shape); ``cache`` holds the dtype, the device and each op's weights once
  converted (``tensor(cache, key, make)``); :func:`apply_ops` runs a projection's chain.
- :func:`encode`: an input population's output for steps t0..t1-1 (analog: the values;
  regular: the closed form of a phase accumulator; Poisson: Bernoulli draws from
  :func:`uniforms`, seeded per (seed, sample, block of :data:`RANDOM_BLOCK` steps), so
  trains depend neither on the batch size, the chunking, T nor the device).

torch is imported on first use, never at import time.
"""
from __future__ import annotations

import numpy as np

RANDOM_BLOCK = 32          # steps per independently seeded block of Poisson input


def _torch():
    import torch
    return torch


def tensor(cache, key, make):
    t = cache.get(key)
    if t is None:
        t = cache[key] = _torch().as_tensor(np.ascontiguousarray(make()), dtype=cache["dtype"], device=cache["device"])
    return t


def _dense(op, x, cache):
    return x @ tensor(cache, id(op), lambda: op.weight).T


def _flatten(op, x, cache):
    return x.reshape(x.shape[0], -1)


def _conv2d(op, x, cache):
    w = tensor(cache, id(op), lambda: op.weight)
    return _torch().nn.functional.conv2d(x, w, stride=op.stride, padding=op.padding, dilation=op.dilation,
                                         groups=op.groups)


def _window_sum(op, x):
    """Sums over non-overlapping, unpadded windows as strided additions in the order torch's
    pooling kernel adds them (row by row), so the result is bit-identical to avg_pool2d's sum;
    faster than avg_pool2d on spike maps (bench/RESULTS.md). Other windows: None."""
    (kh, kw), (sh, sw), (ph, pw) = op.kernel_size, op.stride, op.padding
    if (kh, kw) != (sh, sw) or ph or pw:
        return None
    return window_sum(x, kh, kw)


def window_sum(x, kh: int, kw: int):
    """Sums of x (..., H, W) over non-overlapping kh x kw windows, added row by row as torch's
    pooling kernel adds them (the executor's pooling; spike-bp's training forward shares it)."""
    ho, wo = x.shape[-2] // kh, x.shape[-1] // kw
    out = None
    for u in range(kh):
        for v in range(kw):
            part = x[..., u:u + kh * ho:kh, v:v + kw * wo:kw]
            out = part.clone() if out is None else out.add_(part)
    return out


def _pool(op, x, divisor_override):
    out = _window_sum(op, x)
    if out is None:
        return _torch().nn.functional.avg_pool2d(x, op.kernel_size, op.stride, op.padding, count_include_pad=True,
                                                 divisor_override=divisor_override)
    return out if divisor_override == 1 else out.div_(op.kernel_size[0] * op.kernel_size[1])


def _avgpool2d(op, x, cache):
    return _pool(op, x, None)


def _sumpool2d(op, x, cache):
    # divisor 1: exact sums of spikes, the same additions as the materialized matrix
    return _pool(op, x, 1)


TORCH_OPS = {"dense": _dense, "flatten": _flatten, "conv2d": _conv2d, "avgpool2d": _avgpool2d,
             "sumpool2d": _sumpool2d}


def apply_ops(proj, x, cache):
    """A applied to flat pre outputs (rows, N_pre); returns flat post currents (rows, N_post)."""
    x = x.reshape((x.shape[0],) + cache["shapes"][proj.pre])
    for op in proj.ops:
        x = TORCH_OPS[op.kind](op, x, cache)
    return x.reshape(x.shape[0], -1)


def block_seed(seed: int, sample: int, block: int) -> int:
    """The generator seed of one sample's block of RANDOM_BLOCK steps (splitmix64 of the three)."""
    z = (seed * 0x9E3779B97F4A7C15 + sample * 0xBF58476D1CE4E5B9 + block * 0x94D049BB133111EB) % 2**64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) % 2**64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) % 2**64
    return (z ^ (z >> 31)) % 2**63


def uniforms(seed: int, sample0: int, batch: int, t0: int, t1: int, n: int):
    """U[0, 1) float32 of shape (t1 - t0, batch, n) for samples sample0.. and steps t0..t1-1 (CPU)."""
    torch = _torch()
    out = torch.empty((t1 - t0, batch, n), dtype=torch.float32)
    gen = torch.Generator()
    block_buf = torch.empty((RANDOM_BLOCK, n), dtype=torch.float32)
    for block in range(t0 // RANDOM_BLOCK, (t1 - 1) // RANDOM_BLOCK + 1):
        b0 = block * RANDOM_BLOCK
        lo, hi = max(t0, b0), min(t1, b0 + RANDOM_BLOCK)
        for b in range(batch):
            gen.manual_seed(block_seed(seed, sample0 + b, block))
            torch.rand((RANDOM_BLOCK, n), generator=gen, out=block_buf)
            out[lo - t0:hi - t0, b] = block_buf[lo - b0:hi - b0]
    return out


def encode(pop, x, t0, t1, dt_s, sample0, seed, dtype):
    """The input population's output for steps t0..t1-1: ("const", (B, N)) or ("seq", (Tc, B, N))."""
    torch = _torch()
    enc = pop.encoding
    if enc.kind == "analog":
        return "const", x
    p = (x.to(torch.float64) * enc.max_rate_hz * dt_s).clamp(0.0, 1.0)
    if enc.kind == "regular":
        t = torch.arange(t0, t1 + 1, device=x.device, dtype=torch.float64).view(-1, 1, 1)
        cum = torch.floor(t * p.unsqueeze(0) + 1e-9)  # spikes by the end of each step (closed form of the phase)
        return "seq", (cum[1:] - cum[:-1]).to(dtype)
    u = uniforms(seed, sample0, x.shape[0], t0, t1, x.shape[1]).to(x.device)
    return "seq", (u < p.to(torch.float32).unsqueeze(0)).to(dtype)
