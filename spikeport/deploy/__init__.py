"""Target-aware passes: constraint checks, quantization, partitioning, energy, artifacts.

Each pass is a plain function of its own module, testable alone;
:func:`~spikeport.deploy.pipeline.deploy` strings them together and
:func:`~spikeport.deploy.pipeline.power` compares chips:

- ``check``: the profile's limits
- ``quantize`` / ``quantize_chips``: the chip's integer formats (per layer; Loihi; SpiNNaker)
- ``partition`` (a package): neurons onto cores, cores onto chips, and the vendor tool's settings
- ``targets``: per-target plug-ins registered by profile (loihi, spinnaker, speck, xylo, generic):
  quantizer, how the vendor tool counts, the Speck and Xylo mappers' rules, artifacts
- ``energy``: dynamic and static energy per layer and in total; ANN baselines
- ``emit_loihi`` / ``emit_scripts``: the nengo-loihi, PyNN (SpiNNaker) and Brian2 artifacts
- ``report``: the HTML reports

Nothing here imports a simulator at import time.
"""
import sys
import types

from .quantize import quantize

__all__ = ["quantize"]


class _CallablePackage(types.ModuleType):
    """``spikeport.deploy`` is both this package and the API function :func:`~spikeport.deploy.pipeline.deploy`:
    once the package is imported, Python binds the name ``spikeport.deploy`` to it, so calling the
    package calls the function (``spikeport.deploy(net, "loihi", ...)`` works whatever was imported first)."""

    def __call__(self, *args, **kwargs):
        from .pipeline import deploy

        return deploy(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
