"""What every training method declares, and the pieces methods share.

A method is one module of this package with

- ``METHOD``: a :class:`Method`, the declaration (ANN, training, the spiking network it
  converts to, the paper's defaults, the citation), plain data a user can read with
  ``spikeport.models.methods.describe(name)``;
- ``build(spec, options) -> torch.nn.Module``: the ANN (or, for methods that train the
  SNN directly, the spiking module) that is trained;
- ``loss(module, x, y, ctx) -> torch.Tensor``: one batch's training loss; ``ctx`` is a
  :class:`Context` (options, the epoch's seeded generator, the device);
- ``predict(module, x, ctx) -> torch.Tensor``: class scores for evaluation (the ANN's;
  for spike-bp the spiking module's own);
- ``to_network(model, calibration, **overrides) -> Network``: the spiking network the
  trained model converts to, with no hand edits; ``overrides`` are the conversion options
  the method lists in ``Method.convert_options`` (the command line refuses others);
- optionally ``steps_for(model) -> int``: the steps a trained model is meant to run
  (default ``METHOD.snn.steps``; QCFS: its L).

The trainer (:mod:`spikeport.models.training`) is shared: batches, validation split,
checkpoints, resume, progress and devices are the same for every method.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field

import numpy as np

from ...errors import SpikeportError


@dataclass(frozen=True)
class SpikingSpec:
    """The spiking network a method converts to (what its paper ran), in the field's words.

    Times in seconds. ``neuron``: "if" or "lif"; ``reset``: "subtract" or "zero";
    ``tau_syn_s``: an exponential current synapse, or None; ``readout``: "spike_count", or
    "membrane" (a non-spiking output whose membrane is read, as spike-bp's);
    ``steps``: the time steps the method is meant to run for (its paper's T).
    """

    neuron: str
    threshold: float
    reset: str
    encoding: str
    dt_s: float
    steps: int
    tau_rc_s: float | None = None
    tau_ref_s: float = 0.0
    tau_syn_s: float | None = None
    v_init: float = 0.0
    max_rate_hz: float = 1000.0
    readout: str = "spike_count"
    simulator: str = "reference"    # the backend that confirms it, as its paper's simulator
    notes: str = ""

    def describe(self) -> str:
        parts = [self.neuron.upper(), f"threshold {self.threshold:g}", f"reset {self.reset}"]
        if self.tau_rc_s is not None:
            parts.append(f"tau_rc {self.tau_rc_s * 1e3:.3g} ms")
        if self.tau_ref_s:
            parts.append(f"tau_ref {self.tau_ref_s * 1e3:g} ms")
        parts.append("no synaptic filter" if self.tau_syn_s is None else f"exponential synapse {self.tau_syn_s * 1e3:g} ms")
        if self.v_init:
            parts.append(f"v(0) {self.v_init:g}")
        rate = "" if self.encoding == "analog" else f" up to {self.max_rate_hz:g} Hz"
        parts.append(f"{self.encoding} input{rate}")
        parts.append(f"dt {self.dt_s * 1e3:g} ms, {self.steps} steps")
        if self.readout != "spike_count":
            parts.append(f"{self.readout} readout")
        return ", ".join(parts)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Method:
    """A training method: its declaration (module docstring)."""

    name: str
    citation: str
    ann: str                 # the ANN: activation, the layers the method adds or removes
    training: str            # loss, what replaces the ANN output, noise
    snn: SpikingSpec
    defaults: dict = field(default_factory=dict)   # optimizer, lr, batch_size, epochs (per data set), arch
    options: dict = field(default_factory=dict)    # the method's own parameters and their paper values
    convert_options: tuple = ()                    # conversion options to_network accepts
    default_arch: dict = field(default_factory=dict)  # data set -> architecture of the paper's headline
    ann_forward: bool = True  # the module's forward is the trained ANN (False: trained as an SNN only)

    def epochs_for(self, dataset: str) -> int:
        epochs = self.defaults.get("epochs", {})
        return int(epochs.get(dataset, epochs.get("default", 10)))

    def arch_for(self, dataset: str) -> str:
        return self.default_arch.get(dataset, self.default_arch.get("default", "mlp"))

    def resolve_options(self, given: dict | None) -> dict:
        """The method's options: its paper defaults with ``given`` on top; unknown names are errors."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise SpikeportError(f"method {self.name!r} has no option {', '.join(map(repr, unknown))} (known: {known})")
        out = dict(self.options)
        for k, v in given.items():
            default = self.options[k]
            if isinstance(default, bool):
                ok = isinstance(v, bool)
            elif isinstance(default, (int, float)) and not isinstance(default, bool):
                ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
                v = type(default)(v) if ok and not (isinstance(default, int) and not float(v).is_integer()) else v
                ok = ok and isinstance(v, type(default))
            else:
                ok = isinstance(v, type(default)) or default is None
            if not ok:
                raise SpikeportError(f"method {self.name!r}: option {k!r} must be like {default!r}, got {v!r}")
            out[k] = v
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "citation": self.citation, "ann": self.ann, "training": self.training,
                "snn": self.snn.to_dict(), "defaults": self.defaults, "options": self.options,
                "convert_options": list(self.convert_options), "default_arch": self.default_arch}


@dataclass
class Context:
    """What a method's ``loss`` and ``predict`` get besides the batch."""

    options: dict
    device: str = "cpu"
    generator: object = None     # a torch.Generator (CPU) seeded per epoch: noise, Poisson input
    epoch: int = 0
    training: bool = True


# ----------------------------------------------------------------------------- shared conversion pieces

def plain_network(module, calibration, *, encoding="analog", max_rate_hz=1000.0, dt_s=1e-3, metadata=None):
    """``module`` (ReLU placeholders where the method's neurons go) converted without
    normalization: every population IF with threshold 1 and the module's own weights and
    biases, BatchNorm folded. Methods then give each population its neuron model and scale
    (:func:`retarget`)."""
    from ..torch_import import import_torch

    return import_torch(module, calibration, norm="none", encoding=encoding, max_rate_hz=max_rate_hz, dt_s=dt_s,
                        metadata=metadata)


def retarget(net, *, neuron, weight_gain, bias_gain=None, describe: str = ""):
    """``net`` (from :func:`plain_network`) with per-population neuron models and gains, in place.

    ``neuron(pop) -> NeuronModel``; ``weight_gain(pre, post) -> float`` multiplies every
    projection pre -> post (Population objects); ``bias_gain(post) -> float`` the bias (default:
    the gain of the projections into it from the input, or 1).
    """
    from ..torch_import import scale_chain

    shapes = {p.name: p.shape for p in net.populations}
    pops = {p.name: p for p in net.populations}
    for proj in net.projections:
        g = float(weight_gain(pops[proj.pre], pops[proj.post]))
        if g != 1.0:
            proj.ops = scale_chain(proj.ops, g, shapes[proj.pre])
    for pop in net.populations:
        if pop.is_input:
            continue
        if pop.bias is not None and bias_gain is not None:
            pop.bias = (pop.bias.astype(np.float64) * float(bias_gain(pop))).astype(np.float32)
        pop.neuron = neuron(pop)
    if describe:
        net.metadata.setdefault("conversion", {})["neuron"] = describe
    return net.validate()


def steps_per(seconds: float, dt_s: float) -> int:
    """Whole steps in ``seconds`` (a refractory period, say), refusing a remainder."""
    n = seconds / dt_s
    if abs(n - round(n)) > 1e-9:
        raise SpikeportError(f"{seconds * 1e3:g} ms is not a whole number of {dt_s * 1e3:g} ms steps")
    return int(round(n))


def steps_for(model) -> int:
    """The time steps ``model`` (a TrainedModel) is meant to run: its method's ``steps_for`` or
    the declared ``snn.steps``."""
    from . import get_method

    m = get_method(model.meta.get("method", "relu"))
    return int(m.steps_for(model)) if hasattr(m, "steps_for") else int(m.METHOD.snn.steps)


# ----------------------------------------------------------------------------- training precision

PRECISIONS = ("auto", "float32", "bfloat16")


@functools.lru_cache(maxsize=None)
def _native_bfloat16(device_type: str) -> bool:
    """Whether a device of this type computes bfloat16 natively: a CUDA GPU that supports it, a CPU
    with AMX or AVX512-BF16 (elsewhere torch emulates it, slower than float32)."""
    import torch

    if device_type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device_type == "cpu":
        cpu = getattr(torch, "cpu", None)
        checks = [getattr(cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
        return any(bool(check()) for check in checks if check is not None)
    return False


def training_precision(method: str, want: str, device) -> str:
    """A method's ``train_precision`` option on ``device``: "float32" or "bfloat16"; "auto" is
    bfloat16 where the device computes it natively, float32 elsewhere."""
    if want not in PRECISIONS:
        raise SpikeportError(f"{method}: train_precision must be one of {', '.join(map(repr, PRECISIONS))}, "
                             f"got {want!r}")
    if want != "auto":
        return want
    return "bfloat16" if _native_bfloat16(device.type) else "float32"
