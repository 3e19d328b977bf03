"""The Brian2 backend: the graph lowered to Brian2 objects and run by Brian2's runtime.

The lowering is the Brian2 engine's (:mod:`spikeport.runtimes.brian2_engine`, which states
it: one NeuronGroup per population applying the graph's discrete neuron map once per step,
one Synapses per projection, every update, threshold, reset and pathway in one ordered
schedule slot for same-step delivery, ``batch`` copies of the network side by side and
many batches in one Brian2 ``run``), fed the arrays of :mod:`.brian_lowering`. The
standalone script ``run_brian2.py`` that ``deploy`` writes runs the same engine, so the
two cannot diverge. Here:

- What is refused (:func:`.brian_lowering.require`): several spikes per step (a Brian2
  threshold emits one event), recurrent graphs and, as by every simulator backend, a
  fixed-point network (the script runs those: a deployed network is in its chip's formats).
- Input: analog input is each receiving population's constant current
  (``proj.apply_numpy(x)`` in float64, per delay), loaded at each segment's start; Poisson
  and regular input are exactly the reference executor's trains (``common.input_trains``,
  same seed). Synaptic operations of a delayed projection count the pre spikes of the
  first ``steps - d`` steps, as the reference executor does.
- Arithmetic: all state is float64 (whatever ``prefs.core.default_float_dtype`` says); the
  reference executor computes in float32, so the two can differ where a membrane lands
  within rounding of a threshold (``Activity.notes`` says so; measured: bench/RESULTS.md).
- Samples per Brian2 ``run``: one run per 256 MB of recorded output (``run`` costs a fixed
  set-up, so batching samples into segments of one run and copies side by side is far
  faster than a run per sample: bench/RESULTS.md).
- Code generation: ``codegen="cython"`` (default; compiled on first use, then cached by
  Brian2) or ``"numpy"`` (no compiler; as fast for small networks and few samples, and what
  the tests use). Timings: bench/RESULTS.md. Wall time is split into build and simulate in
  ``Activity.notes``.

Nothing global is changed: objects have explicit, deterministic names (so Brian2's
cython cache is reused across networks), live in a private ``brian2.Network`` with its
own ``Clock``, and choose their code generation target through ``codeobj_class``
rather than ``prefs``. Brian2's runtime device is required (standalone devices cannot
run the per-segment Python operation).
"""
from __future__ import annotations

import time

import brian2 as b2
from brian2.devices.device import RuntimeDevice

from ..errors import SpikeportError
from ..runtimes import brian2_engine as engine
from . import brian_lowering, common

NAME = "brian2"
CODEGEN_TARGETS = ("numpy", "cython")
DEFAULT_CODEGEN = "cython"
RUN_BYTES = engine.RUN_BYTES  # recorded output membrane and spike trains, and input trains, per Brian2 run


def _codeobj_class(codegen: str):
    if codegen not in CODEGEN_TARGETS:
        raise SpikeportError(f"brian2: unknown codegen {codegen!r} (known: {', '.join(CODEGEN_TARGETS)})")
    if codegen == "numpy":
        from brian2.codegen.runtime.numpy_rt import NumpyCodeObject
        return NumpyCodeObject
    try:
        from brian2.codegen.runtime.cython_rt import CythonCodeObject
        import Cython  # noqa: F401
    except ImportError as exc:
        raise SpikeportError(f"brian2: codegen 'cython' needs Cython and a C compiler ({exc}); "
                             "use codegen='numpy'") from None
    return CythonCodeObject


def run(network, x, steps: int, *, checkpoints=None, seed: int = 0, record_counts: bool = False, progress=None,
        record_trains=(), codegen: str = DEFAULT_CODEGEN, batch_size: int | None = None, sample0: int = 0):
    """Simulate ``network`` on samples ``x`` for ``steps`` steps with Brian2.

    Parameters
    ----------
    x, steps, checkpoints, seed, record_counts, record_trains, progress : as
        :func:`spikeport.backends.reference.run` (Poisson input uses the reference's trains for
        ``seed``, so both see the same spikes)
    codegen : Brian2's code generation target, "cython" (the default: faster on large networks;
        compiled on first use, about a minute, then cached in Brian2's cache directory) or "numpy"
        (no compiler; faster for small networks and few samples, as in the tests)
    batch_size : samples simulated side by side as copies of the network (default: as many as
        fit in about 4 million synapses, at most 64)
    sample0 : the index of ``x[0]`` in a larger run (Poisson trains as that run's: guarded batches)

    Exact: the neuron map (IF/LIF, both resets, reset_amount, strict threshold, refractory steps,
    bias, per-neuron v_init, synaptic current), same-step zero-delay delivery, delays, the three
    encodings. The arithmetic is float64 against the reference executor's float32: see the module
    docstring.
    """
    t_start = time.perf_counter()
    order = brian_lowering.require(network)
    if not isinstance(b2.get_device(), RuntimeDevice):
        raise SpikeportError(f"the brian2 backend needs Brian2's runtime device, not {type(b2.get_device()).__name__} "
                             "(call brian2.set_device('runtime'))")
    record_trains = list(record_trains)
    x, steps, checkpoints = common.check_run(network, x, steps, checkpoints, record_trains)
    samples = len(x)
    meta, arrays = brian_lowering.describe(network, steps, seed, order=order)
    if batch_size is None:
        batch_size = engine.default_batch(meta, samples, steps)
    elif int(batch_size) < 1:
        raise SpikeportError(f"batch_size must be at least 1, got {batch_size}")
    batch = min(int(batch_size), samples)
    lowered = engine.Lowered(b2, meta, arrays, batch, steps, _codeobj_class(codegen))
    t_built = time.perf_counter()

    def inputs(first, n):
        part = x[first:first + n]
        return (brian_lowering.analog_currents(network, meta, part),
                common.input_trains(network, part, steps, seed=seed, sample0=sample0 + first))

    res = engine.simulate(lowered, samples, inputs, checkpoints, record_trains, progress, run_bytes=RUN_BYTES)
    t_end = time.perf_counter()
    counts = {name: c.reshape((samples,) + network.population(name).shape) for name, c in res["counts"].items()}
    side = "one sample at a time" if batch == 1 else f"{batch} copies of the network side by side"
    notes = [f"brian2 ({codegen}): build {t_built - t_start:.2f} s ({lowered.synapse_count:,} synapses: {side}), "
             f"simulate {t_end - t_built:.2f} s",
             "brian2 computes in float64, the reference executor in float32: a spike can differ where a membrane "
             "lands within rounding of the threshold"]
    trains = res["trains"]
    act = common.activity(network, NAME, x, steps, checkpoints, counts, trains[network.output], t_end - t_start,
                          output_v=res["output_v"], inputs=res["inputs"], notes=notes, delivered=res["early"],
                          record_counts=record_counts)
    act.spike_trains = {name: trains[name].reshape((samples, steps) + network.population(name).shape)
                        for name in record_trains}
    return act
