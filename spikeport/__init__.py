"""spikeport: deploy trained neural networks onto neuromorphic hardware.

Importing spikeport is light: torch and the simulators are imported only by
the functions that need them. The names below are the public Python API.
"""
__version__ = "0.1.0"

_API = {
    "load_dataset": "spikeport.datasets", "Network": "spikeport.ir", "Population": "spikeport.ir",
    "Projection": "spikeport.ir", "NeuronModel": "spikeport.ir", "InputEncoding": "spikeport.ir",
    "load_network": "spikeport.ir", "save_network": "spikeport.ir", "train": "spikeport.models",
    "convert": "spikeport.api", "convert_nir": "spikeport.api", "load_model": "spikeport.models", "save_model": "spikeport.models",
    "simulate": "spikeport.api", "SpikeportError": "spikeport.errors", "fit_nsp": "spikeport.models.nsp_fit",
    "methods": "spikeport.models", "validate": "spikeport.api", "deploy": "spikeport.deploy.pipeline",
    "power": "spikeport.deploy.pipeline", "import_nir": "spikeport.ir.nir", "export_nir": "spikeport.ir.nir",
    "load_user_data": "spikeport.datasets", "Samples": "spikeport.datasets", "sweep": "spikeport.sweeps",
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        import importlib
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'spikeport' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
