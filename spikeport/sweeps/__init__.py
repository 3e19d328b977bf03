"""Sweeps of networks x conversion options x time steps x chips (``spikeport sweep``, issue 26).

:mod:`.spec` reads and checks a sweep file into its points, each keyed by a digest of its inputs. Running
the points (on dask.distributed) and the report come next (docs/architecture.md says what exists)."""
from .spec import MAX_POINTS, Point, Sweep, SweepError, load_sweep

__all__ = ["MAX_POINTS", "Point", "Sweep", "SweepError", "load_sweep"]
