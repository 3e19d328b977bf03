"""Sweeps of networks x conversion options x time steps x chips (``spikeport sweep``, issue 26).

:mod:`.spec` reads and checks a sweep file into its points, each keyed by a digest of its inputs; :mod:`.plan`
makes the points' tasks (shared where points share inputs; a point's samples in shards merged exactly);
:mod:`.run` runs them on an executor (in this process, or dask.distributed: :mod:`.cluster`), keeps each
point's row by its key as it arrives and writes the table; :mod:`.report` draws the Pareto fronts per chip.
"""
from .run import SweepResult, run_sweep, sweep
from .spec import MAX_POINTS, Point, Sweep, SweepError, load_sweep

__all__ = ["MAX_POINTS", "Point", "Sweep", "SweepError", "SweepResult", "load_sweep", "run_sweep", "sweep"]
