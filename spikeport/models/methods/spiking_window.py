"""The spiking window of spike-bp: the module's forward over T steps, exactly as the graph
runs it, and the backward through the window (the authors' code's gradient, truncated at
every reset, with the leak-aware derivative; or its window-level form).

:mod:`spikeport.models.methods.spike_bp` declares the method and converts; this module
simulates. Its equations are stated there.
"""
from __future__ import annotations

import math


from ...errors import SpikeportError

DT_S = 1e-3
LEAK = 0.99
# the widest layer's input current per chunk of steps stays below this (see _chunk_steps)
CHUNK_BYTES = 16 << 20


def _torch():
    import torch
    return torch


_CLASSES = None


def classes_of():
    """(LIFNeurons, PoolingNeurons, SpikingNet), built lazily so that importing spikeport does not import torch."""
    global _CLASSES
    if _CLASSES is not None:
        return _CLASSES
    torch = _torch()
    nn = torch.nn

    class LIFNeurons(nn.Module):
        """A LIF population: U <- decay U + I; spike if U >= threshold; U <- 0 where it spiked.
        Its forward is a ReLU placeholder, used only when the module is traced for conversion."""

        spikeport_activation = True

        def __init__(self, decay: float, threshold: float):
            super().__init__()
            self.decay, self.threshold = float(decay), float(threshold)

        def forward(self, x):
            return torch.relu(x)

        def extra_repr(self):
            return f"decay={self.decay:g}, threshold={self.threshold:g}, reset=zero"

    class PoolingNeurons(LIFNeurons):
        """The IF population after an average pooling (a population: it spikes, it has a membrane)."""

        def __init__(self, threshold: float):
            super().__init__(1.0, threshold)

    class SpikingNet(nn.Sequential):
        """The spiking network; ``forward(x)`` runs it for its option's steps (see :func:`run`)."""

        def forward(self, x, steps: int = 100, max_rate_hz: float = 500.0, output_leak: bool = True):
            return run(self, x, steps, max_rate_hz=max_rate_hz, output_leak=output_leak)

    _CLASSES = (LIFNeurons, PoolingNeurons, SpikingNet)
    return _CLASSES


def _plan(module):
    """[(kind, name, child)] in order; kind: weighted, lif, pool, avgpool, flatten, output (the last weighted)."""
    lif, pool_neurons, _ = classes_of()
    nn = _torch().nn
    plan = []
    for name, child in module.named_children():
        if isinstance(child, pool_neurons):
            plan.append(("pool", name, child))
        elif isinstance(child, lif):
            plan.append(("lif", name, child))
        elif isinstance(child, (nn.Conv2d, nn.Linear)):
            plan.append(("weighted", name, child))
        elif isinstance(child, nn.AvgPool2d):
            plan.append(("avgpool", name, child))
        else:
            plan.append(("flatten", name, child))
    last = max(i for i, p in enumerate(plan) if p[0] == "weighted")
    plan[last] = ("output",) + plan[last][1:]
    return plan


# ----------------------------------------------------------------------------- the spiking run

def _current(layer, h, bias_scale=1.0, dtype=None):
    """W h (+ b), as the reference executor computes a projection, then adds the population's bias.
    ``dtype`` (training only): W h in that precision (bfloat16: spikes are exact in it, the
    weights are rounded to 8 bits of mantissa), returned in h's."""
    torch = _torch()
    w = layer.weight
    conv = isinstance(layer, torch.nn.Conv2d)
    low = dtype is not None and dtype != h.dtype
    x, w = (h.to(dtype), w.to(dtype)) if low else (h, w)
    if conv:
        out = torch.nn.functional.conv2d(x, w, None, layer.stride, layer.padding, layer.dilation, layer.groups)
    else:
        out = x @ w.T
    if low:
        out = out.to(h.dtype)
    bias = layer.bias
    if bias is not None:
        bias = bias.view(-1, 1, 1) if conv else bias
        out = out + (bias if bias_scale == 1.0 else bias * bias_scale)
    return out


def _simple_pool(child):
    """The window (k, k) of a non-overlapping, unpadded average pooling, else None."""
    k, st = _pair(child.kernel_size), _pair(child.stride or child.kernel_size)
    if k == st and k[0] == k[1] and _pair(child.padding) == [0, 0] and not child.ceil_mode:
        return k[0]
    return None


def _avgpool(child, h):
    """Average pooling as the reference executor computes it (strided sums in its order, then the
    division: faster than avg_pool2d here; exact anyway on spikes)."""
    from ...ir.kernels import window_sum

    k = _simple_pool(child)
    if k is None:
        return child(h)
    return window_sum(h, k, k).div_(k * k)


def _avgpool_backward(child, g, in_shape):
    """d(avg pool)/d(input) applied to g: each window's gradient / k^2 over the window
    (repeat_interleave: faster than avg_pool2d_backward here)."""
    torch = _torch()
    k = _simple_pool(child)
    if k is None:
        like = torch.empty((g.shape[0],) + tuple(in_shape), dtype=g.dtype, device=g.device)
        return torch.ops.aten.avg_pool2d_backward(g, like, _pair(child.kernel_size),
                                                  _pair(child.stride or child.kernel_size), _pair(child.padding),
                                                  child.ceil_mode, child.count_include_pad, child.divisor_override)
    out = (g / (k * k)).repeat_interleave(k, dim=-1).repeat_interleave(k, dim=-2)
    short_h, short_w = in_shape[-2] - out.shape[-2], in_shape[-1] - out.shape[-1]
    if short_h or short_w:  # rows and columns the pooling drops get no gradient
        out = torch.nn.functional.pad(out, (0, short_w, 0, short_h))
    return out


def _advance(v, current, decay, threshold, out):
    """Steps of the graph's neuron, op for op as the reference executor (so the results are
    bit-identical): v <- decay v + I[t]; s[t] = v >= threshold; v <- v - v s[t]."""
    torch = _torch()
    for k in range(current.shape[0]):
        if decay != 1.0:
            v.mul_(decay)
        v.add_(current[k])
        torch.ge(v, threshold, out=out[k])
        v.addcmul_(v, out[k], value=-1.0)
    return out


def _integrate(v, current, decay):
    """The output population: it never spikes, so only v <- decay v + I[t]."""
    for k in range(current.shape[0]):
        if decay != 1.0:
            v.mul_(decay)
        v.add_(current[k])
    return v


def scale_from_totals(total, leaky, decay, threshold):
    """The leak-aware derivative per neuron, c = (1 / V_th) (1 + ln(decay) a_leaky / a_total),
    0 where a_total = 0 [Lee et al. 2020; code ``grad_cal``], from the window's spike
    count a_total and leaky trace a_leaky = sum_t decay**(T-1-t) o[t] (a <- decay a + o(t))."""
    torch = _torch()
    if decay == 1.0:
        return (total > 0).to(total.dtype) / threshold
    scale = (1.0 + math.log(decay) * leaky / total.clamp(min=1.0)) / threshold
    return torch.where(total > 0, scale, torch.zeros_like(scale))


def poisson_probability(x, max_rate_hz, dt_s=DT_S):
    """p = clip(|x| rate dt, 0, 1) per sample (B, N) in float32, computed as the reference executor computes it."""
    torch = _torch()
    return (x.abs().reshape(x.shape[0], -1).to(torch.float64) * max_rate_hz * dt_s).clamp(0.0, 1.0).to(torch.float32)


def _chunk_steps(batch, module, x, steps):
    """Steps per chunk: the widest layer's chunk within CHUNK_BYTES (fresh allocations above
    glibc's mmap threshold page-fault on every call, which costs more than the arithmetic)."""
    widest = x[0].numel()
    shape = tuple(x.shape[1:])
    for kind, _, child in _plan(module):
        if kind in ("weighted", "output"):
            shape = _out_shape(child, shape)
        elif kind == "avgpool":
            (kh, kw), (sh, sw), (ph, pw) = (_pair(child.kernel_size), _pair(child.stride or child.kernel_size),
                                            _pair(child.padding))
            shape = (shape[0], (shape[1] + 2 * ph - kh) // sh + 1, (shape[2] + 2 * pw - kw) // sw + 1)
        elif kind == "flatten":
            shape = (math.prod(shape),)
        widest = max(widest, math.prod(shape))
    return max(1, min(steps, CHUNK_BYTES // (4 * batch * widest)))


def _out_shape(layer, shape):
    nn = _torch().nn
    if isinstance(layer, nn.Linear):
        return (layer.out_features,)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    return (layer.out_channels, (shape[1] + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
            (shape[2] + 2 * pw - dw * (kw - 1) - 1) // sw + 1)


class _Window:
    """One spiking run of a batch, chunk by chunk through the whole network (time-major, as the
    reference executor): the output membrane, every population's spike counts and leaky
    traces, and with ``save`` every population's spike trains (bool (T, B, N), for BPTT)."""

    def __init__(self, module, x, steps, draw, *, max_rate_hz, output_leak, chunk=None, save=False, stats=True,
                 precision=None):
        torch = _torch()
        self.plan, self.steps, self.batch = _plan(module), steps, x.shape[0]
        self.chunk = chunk or _chunk_steps(self.batch, module, x, steps)
        self.threshold = threshold_of(module)
        self.trains, self.counts, self.traces, self.shapes, self.sources = {}, {}, {}, {"input": tuple(x.shape[1:])}, {}
        p = poisson_probability(x, max_rate_hz)
        signed = bool((x < 0).any())
        sign = torch.sign(x.reshape(self.batch, -1)) if signed else None
        out_decay = output_decay(module, output_leak)
        dtype = _params(module)[0].dtype  # float32; float64 where a test asks for it
        states, self.stats = {}, stats
        self.precision = None if precision in (None, "float32") else getattr(torch, precision)
        B = self.batch
        with torch.no_grad():
            for t0 in range(0, steps, self.chunk):
                t1 = min(steps, t0 + self.chunk)
                tc = t1 - t0
                s = (draw(t0, t1).to(x.device) < p.unsqueeze(0)).to(dtype)
                if signed:
                    s = s * sign.unsqueeze(0)  # the code's signed spikes, for inputs below 0
                self._keep("input", s, t0, t1, 1.0, save, torch.int8 if signed else torch.bool)
                h, source, shape = s.reshape((tc * B,) + self.shapes["input"]), "input", self.shapes["input"]
                for kind, name, child in self.plan:
                    if kind in ("weighted", "output"):
                        self.sources[name] = (source, shape)
                        h = _current(child, h, dtype=self.precision)
                        shape = tuple(h.shape[1:])
                        if kind == "output":
                            v = states.setdefault(name, torch.zeros((B, h.shape[1]), dtype=h.dtype, device=h.device))
                            _integrate(v, h.reshape(tc, B, -1), out_decay)
                    elif kind in ("lif", "pool"):
                        self.sources[name] = (source, shape)
                        cur = h.reshape(tc, B, -1)
                        v = states.setdefault(name, torch.zeros_like(cur[0]))
                        spikes = _advance(v, cur, child.decay, child.threshold, torch.empty_like(cur))
                        self._keep(name, spikes, t0, t1, child.decay, save, torch.bool)
                        self.shapes[name] = shape
                        h, source = spikes.reshape((tc * B,) + shape), name
                    elif kind == "avgpool":
                        self.sources[name] = (source, shape)
                        h = _avgpool(child, h)
                        shape = tuple(h.shape[1:])
                    else:
                        h = h.reshape(h.shape[0], -1)
                        shape = (math.prod(shape),)
        self.output = _output_name(self.plan)
        self.out = states[self.output] / (self.threshold * steps)

    def _keep(self, name, spikes, t0, t1, decay, save, dtype):
        torch = _torch()
        if save:
            if name not in self.trains:
                self.trains[name] = torch.empty((self.steps,) + tuple(spikes.shape[1:]), dtype=dtype,
                                                device=spikes.device)
            self.trains[name][t0:t1] = spikes
        if not self.stats:
            return
        n = spikes.sum(0)
        w = torch.tensor([decay ** (t1 - 1 - t) for t in range(t0, t1)], dtype=spikes.dtype, device=spikes.device)
        a = torch.tensordot(w, spikes, dims=1)
        if name in self.counts:
            # the trace at t1 - 1: the earlier chunks' trace decays over t1 - t0 more steps
            self.counts[name] += n
            self.traces[name] = self.traces[name] * decay ** (t1 - t0) + a
        else:
            self.counts[name], self.traces[name] = n, a

    def scale(self, name, child, leak_aware):
        if leak_aware:
            return scale_from_totals(self.counts[name], self.traces[name], child.decay, child.threshold)
        return (self.counts[name] > 0).to(self.counts[name].dtype)

    def backward(self, grad_out):
        """Gradients of every weighted layer (name -> (dW, db)) for dL/dout = ``grad_out``, by the
        code's BPTT rules (module docstring), one reverse sweep over the chunks: every tensor
        is one chunk's, and the reverse scans carry per-neuron state between chunks."""
        torch = _torch()
        B, steps = self.batch, self.steps
        grads = {}
        layers = {name: child for _, name, child in self.plan}
        # the output: dL/dI_out[t] = dL/dout / (V_th T) at every step (the code passes the leak as 1)
        g_step = grad_out / (self.threshold * steps)
        out_layer = layers[self.output]
        source, _ = self.sources[self.output]
        counts = self.counts[source].reshape(B, -1)
        grads[self.output] = (g_step.T @ counts, None if out_layer.bias is None else g_step.sum(0) * steps)
        g_source = g_step @ out_layer.weight  # dL/ds[t] of the last hidden population, the same every step
        after = {name: torch.zeros_like(self.counts[name]) for kind, name, _ in self.plan if kind in ("lif", "pool")}
        scales = {name: self.scale(name, child, True) for kind, name, child in self.plan if kind == "lif"}
        hidden = [entry for entry in self.plan if entry[0] != "output"]
        starts = list(range(0, steps, self.chunk))
        for t0 in reversed(starts):
            t1 = min(steps, t0 + self.chunk)
            tc = t1 - t0
            g = g_source.unsqueeze(0).expand((tc,) + tuple(g_source.shape))
            for kind, name, child in reversed(hidden):
                if kind in ("lif", "pool"):
                    spikes = self.trains[name][t0:t1]
                    g = g.reshape(spikes.shape)
                    d_current = torch.empty(spikes.shape, dtype=g.dtype, device=g.device)
                    a = after[name]
                    for k in range(tc - 1, -1, -1):  # dI[t] = dL/ds[t'], t' the next spike at or after t
                        a = torch.where(spikes[k], g[k], a, out=d_current[k])
                    after[name] = a.clone()
                    if name in scales:  # LIF: the leak-aware derivative; pooling neurons pass 1
                        d_current.mul_(scales[name])
                    source, shape = self.sources[name]
                    g = d_current.reshape((tc * B,) + shape)
                elif kind == "weighted":
                    source, shape = self.sources[name]
                    low = self.precision or g.dtype
                    h = self.trains[source][t0:t1].to(low).reshape((tc * B,) + shape)
                    need_input = source != "input"
                    w, gl = child.weight.to(low), g.to(low)
                    if isinstance(child, torch.nn.Conv2d):
                        gb = None if child.bias is None else g.sum((0, 2, 3))
                        if need_input:  # channels-last: faster here when the input gradient is needed too
                            gl = gl.contiguous(memory_format=torch.channels_last)
                            h = h.contiguous(memory_format=torch.channels_last)
                        gi, gw, _ = torch.ops.aten.convolution_backward(
                            gl, h, w, None, list(child.stride), list(child.padding), list(child.dilation), False,
                            [0, 0], child.groups, [need_input, True, False])
                    else:
                        gw = gl.T @ h
                        gb = None if child.bias is None else g.sum(0)
                        gi = gl @ w if need_input else None
                    gw = gw.to(g.dtype).contiguous()
                    gi = None if gi is None else gi.to(g.dtype)
                    dw, db = grads.get(name, (None, None))
                    grads[name] = (gw if dw is None else dw + gw,
                                   None if gb is None else (gb if db is None else db + gb))
                    if not need_input:
                        break
                    g = gi
                elif kind == "avgpool":
                    g = _avgpool_backward(child, g, self.sources[name][1])
                # flatten: the population before it reshapes g to its own shape
        return grads


def _pair(v):
    return list(v) if isinstance(v, (tuple, list)) else [int(v), int(v)]


def run(module, x, steps, *, max_rate_hz=500.0, output_leak=True, uniforms=None, chunk=None):
    """out = U_out / (V_th T) (B, classes) of the spiking network on ``x`` (B, ...) for
    ``steps`` steps, without gradients. ``uniforms(t0, t1) -> (t1 - t0, B, N)`` gives the
    U[0, 1) draws of the Poisson input (default torch.rand)."""
    torch = _torch()
    if uniforms is None:
        uniforms = lambda t0, t1: torch.rand((t1 - t0, x.shape[0], x[0].numel()))
    return _Window(module, x, steps, uniforms, max_rate_hz=max_rate_hz, output_leak=output_leak, chunk=chunk,
                   stats=False).out


def _output_name(plan):
    return next(name for kind, name, _ in plan if kind == "output")


def output_decay(module, output_leak):
    """The output's leak: the hidden layers' (the code leaks the output membrane too) or none."""
    if not output_leak:
        return 1.0
    lif, pool_neurons, _ = classes_of()
    decays = [m.decay for m in module.children() if isinstance(m, lif) and not isinstance(m, pool_neurons)]
    return decays[0] if decays else LEAK


def threshold_of(module):
    lif, pool_neurons, _ = classes_of()
    ths = [m.threshold for m in module.children() if isinstance(m, lif) and not isinstance(m, pool_neurons)]
    return ths[0] if ths else 1.0


def _bptt_function():
    global _BPTT
    if _BPTT is not None:
        return _BPTT
    torch = _torch()

    class WindowBPTT(torch.autograd.Function):
        """out of one spiking run; backward: :meth:`_Window.backward` into every weight and bias."""

        @staticmethod
        def forward(ctx, x, run_args, *params):
            module, steps, draw, max_rate_hz, output_leak, precision, chunk = run_args
            window = _Window(module, x, steps, draw, max_rate_hz=max_rate_hz, output_leak=output_leak, save=True,
                             precision=precision, chunk=chunk)
            ctx.window, ctx.module = window, module
            return window.out

        @staticmethod
        def backward(ctx, grad_out):
            grads = ctx.window.backward(grad_out)
            ctx.window = None  # free the spike trains
            out = []
            for kind, name, child in _plan(ctx.module):
                if kind in ("weighted", "output"):
                    dw, db = grads.get(name, (None, None))
                    out.append(dw)
                    if child.bias is not None:
                        out.append(db)
            return (None, None, *out)

    _BPTT = WindowBPTT
    return _BPTT


_BPTT = None


def _params(module):
    """Every weight and bias of the weighted layers, in plan order (WindowBPTT's gradient order)."""
    out = []
    for kind, name, child in _plan(module):
        if kind in ("weighted", "output"):
            out.append(child.weight)
            if child.bias is not None:
                out.append(child.bias)
    return out


def train_forward(module, x, steps, *, max_rate_hz, output_leak, generator=None, backward="bptt",
                  precision="float32"):
    """out (B, classes) of one spiking run, with the gradient of ``backward`` (module docstring)."""
    torch = _torch()
    n = x[0].numel()
    draw = lambda t0, t1: torch.rand((t1 - t0, x.shape[0], n), generator=generator)
    if backward == "bptt":
        return _bptt_function().apply(x, (module, steps, draw, max_rate_hz, output_leak, precision, None),
                                      *_params(module))
    # "rate": the run without gradients, then one differentiable pass through the window's totals:
    # current = W counts_in + T b; counts = counts.detach() + c (current - current.detach())
    window = _Window(module, x, steps, draw, max_rate_hz=max_rate_hz, output_leak=output_leak, precision=precision)
    h = window.counts["input"].reshape(x.shape)
    for kind, name, child in window.plan:
        if kind in ("weighted", "output"):
            h = _current(child, h, bias_scale=float(steps))
            if kind == "output":
                return window.out + (h - h.detach()) / (window.threshold * steps)
        elif kind in ("lif", "pool"):
            count = window.counts[name].reshape(h.shape)
            h = count + window.scale(name, child, kind == "lif").reshape(h.shape) * (h - h.detach())
        elif kind == "avgpool":
            h = _avgpool(child, h)
        else:
            h = h.reshape(h.shape[0], -1)
    raise SpikeportError("spike-bp: the module has no output layer")
