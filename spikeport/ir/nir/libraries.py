"""The four libraries whose NIR files spikeport reads and writes exactly (docs/nir-libraries.md): their names,
time steps and spike limits, and the float32 arithmetic their torch code does."""
from __future__ import annotations

import numpy as np

LIBRARIES = ("snntorch", "norse", "sinabs", "rockpool", "nir")
EXPORT_LIBRARIES = ("snntorch", "norse", "sinabs", "rockpool")
LIBRARY_NAMES = {"snntorch": "snnTorch 1.0", "norse": "Norse 1.1", "sinabs": "sinabs 3.1", "rockpool": "Rockpool 3.1",
                 "nir": "generic NIR"}
LIBRARY_FORMAT = "spikeport-nir-library"  # graph metadata of a file written for a library's importer
SNNTORCH_DT = 1e-4  # snntorch/export_nir.py hard-codes dt = 1e-4
NORSE_DT = 1e-3  # norse.torch.to_nir(..., dt=0.001)
ROCKPOOL_DT = 1e-3  # LIFTorch / LIFNeuronTorch default dt
DEFAULT_STEP_S = 1e-3  # the network's dt_s where the library's dynamics have no time step (sinabs)
SINABS_MAX_SPIKES = 2**24  # MultiSpike is unbounded; counts above 2**24 are not exact in float32 anyway
ROCKPOOL_MAX_SPIKES = 2**16  # LIFTorch max_spikes_per_dt default
SIGNATURE_RTOL = 1e-5  # float32 rounding of a relation the exporter computed (r = tau/dt ...)
TARGET_TOL = 1e-6  # a library file's parameters against the spikeport model stored beside them (float32 rounding)
F32 = np.float32

IMPORTERS = {
    "snntorch": "snntorch.import_nir.import_from_nir (dt 1e-4 s; LIF -> Leaky, CubaLIF -> Synaptic, reset_mechanism "
                "'zero', reset_delay False; spike where v > threshold)",
    "norse": "norse.torch.from_nir (its default dt 1e-3 s and reset_value; IF -> IAFCell, LIF -> LIFBoxCell with "
             "tau_mem_inv = 1/tau, CubaLIF -> LIBoxCell + LIFBoxCell; spike where v > v_th)",
    "sinabs": "sinabs.from_nir (LIF -> LIFSqueeze, norm_input False, MultiSpike, MembraneSubtract; nir 1.0.4)",
    "rockpool": "rockpool.nn.modules.from_nir (CubaLIF -> LIFTorch with dt = min(tau_mem / (1 + r)), bias = "
                "v_leak, StepPWL at most 2**16 spikes per step, subtractive reset)",
}


def f32(x) -> np.ndarray:
    return np.asarray(x, np.float64).astype(F32)


def exp32(x) -> np.ndarray:
    """float32 exp as torch computes it on the CPU (correctly rounded; numpy's float32 exp is not)."""
    return np.exp(np.asarray(x, np.float64)).astype(F32)


def close(a, b, rtol=SIGNATURE_RTOL) -> bool:
    a = np.asarray(a, np.float64)
    return bool(a.size) and bool(np.all(np.isfinite(a))) and bool(np.allclose(a, b, rtol=rtol, atol=0))
