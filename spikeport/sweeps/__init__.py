"""Sweeps of networks x conversion options x time steps x chips (``spikeport sweep``, issue 26).

:mod:`.spec` reads and checks a sweep file into its points, each keyed by a digest of its inputs; :mod:`.run`
measures a point in shards merged exactly and keeps its row by its key (serially, for now). Running the
points on dask.distributed, the command and the Pareto report come next (docs/architecture.md)."""
from .spec import MAX_POINTS, Point, Sweep, SweepError, load_sweep

__all__ = ["MAX_POINTS", "Point", "Sweep", "SweepError", "load_sweep"]
