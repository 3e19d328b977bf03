"""Target-aware passes: constraint checks, quantization, partitioning, energy, reports.

Each pass is a plain function ``Network -> Network`` or ``Network -> report``;
``deploy(network, target)`` reads them top to bottom. The passes and the
``spikeport deploy`` / ``spikeport power`` commands arrive with the deploy issue;
until then this package holds nothing (see docs/architecture.md).
"""
