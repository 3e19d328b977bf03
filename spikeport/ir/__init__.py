"""The hardware-agnostic graph: the centre of spikeport.

Every converter writes a :class:`Network`, every backend and deploy target reads
one. The discrete-time semantics are stated in :mod:`spikeport.ir.neurons` and
:mod:`spikeport.ir.network`; this package imports nothing else of the project
but its errors, the memory budget (:mod:`spikeport.budget`) and outputs.
"""
from .arithmetic import FixedPoint
from .io import load_network, save_network, write_network
from .network import Footprint, Network, Population, Projection, Synapses, check_footprint, network_footprint
from .neurons import InputEncoding, NeuronModel
from .nir import export_nir, import_nir
from .ops import OPS, AvgPool2d, Conv2d, Dense, Flatten, SumPool2d

__all__ = ["FixedPoint", "Network", "Population", "Projection", "NeuronModel", "InputEncoding", "Dense", "Flatten", "Conv2d", "AvgPool2d",
           "SumPool2d", "OPS", "Synapses",
           "load_network", "save_network", "write_network", "import_nir", "export_nir", "Footprint", "network_footprint",
           "check_footprint"]
