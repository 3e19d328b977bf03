"""The ANN side: architectures, training methods, and conversion into the graph."""
from .architectures import ARCHITECTURES, ArchSpec, build
from .convert import NORMS, convert, layer_scales
from .methods import METHODS, describe, get_method
from .training import TrainedModel, evaluate, load_model, save_model, train

__all__ = ["ARCHITECTURES", "ArchSpec", "build", "NORMS", "convert", "layer_scales", "METHODS",
           "TrainedModel", "describe", "evaluate", "get_method", "load_model", "save_model", "train"]
