"""Target-aware passes: constraint checks, quantization, partitioning, energy, reports.

Each pass is a plain function ``Network -> Network`` or ``Network -> report``;
``deploy(network, target)`` will read them top to bottom. Here now:
:func:`quantize` (a chip's integer formats; its networks run in the reference
executor's fixed-point mode). Constraint checks, partitioning, energy and the
``spikeport deploy`` / ``spikeport power`` commands arrive with the deploy issue.
"""
from .quantize import quantize

__all__ = ["quantize"]
