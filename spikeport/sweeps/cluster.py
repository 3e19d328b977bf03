"""The dask.distributed executor of a sweep (issue 26): the tasks of :mod:`.plan` submitted as futures, each
under its own key, so that dask sends every value (the samples, a converted network, a chip's fit) to a
worker once and points share it; rows are taken as they finish.

Default: a local cluster of ``workers`` processes (one thread each) on this machine. ``scheduler``: the
address of a scheduler someone already runs (``tcp://HOST:PORT``, or a scheduler file) with its own
workers. Workers need spikeport installed (and the data set's package: each worker that runs a ``data``
task loads the samples itself; the others receive them from it); network files travel inside their tasks.

Faults: a task that raises is its point's row with the error (the sweep goes on); a worker that dies has
its tasks run again elsewhere by dask (up to ``distributed.scheduler.allowed-failures`` times, then the
points are rows with the error, not kept, and run again with the sweep).

dask is imported when a sweep runs on it, never with spikeport (the ``cluster`` extra installs it).
"""
from __future__ import annotations

import os

from ..errors import SpikeportError
from .plan import Ref

__all__ = ["Dask", "default_workers"]


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _distributed():
    try:
        import distributed
    except ImportError:
        raise SpikeportError("a sweep on a cluster needs dask.distributed: pip install 'spikeport[cluster]' "
                             "(or run it in this process with --workers 0)") from None
    return distributed


class Dask:
    """Run a sweep's tasks on dask.distributed: a local cluster of ``workers`` processes, or the cluster of
    the scheduler at ``scheduler``."""

    name = "dask"

    def __init__(self, scheduler: str | None = None, workers: int | None = None, connect_timeout_s: float = 30):
        if scheduler is not None and workers is not None:
            raise SpikeportError("--workers starts a local cluster; a cluster at --scheduler has its own workers")
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise SpikeportError(f"--workers must be a whole number >= 1, got {workers!r}")
        self.scheduler, self.timeout = scheduler, connect_timeout_s
        self.workers = workers or (None if scheduler else default_workers())
        self.compute_s = 0.0

    def _client(self):
        distributed = _distributed()
        if self.scheduler is None:
            import logging

            cluster = distributed.LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                               dashboard_address=None, silence_logs=logging.ERROR)
            return distributed.Client(cluster, set_as_default=False), cluster
        try:
            if os.path.isfile(self.scheduler):
                client = distributed.Client(scheduler_file=self.scheduler, timeout=self.timeout,
                                            set_as_default=False)
            else:
                client = distributed.Client(self.scheduler, timeout=self.timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise SpikeportError(f"--scheduler {self.scheduler}: cannot connect ({str(exc).splitlines()[0][:200]})"
                                 ) from None
        return client, None

    def run(self, tasks: list, rows: dict, on_row) -> None:
        distributed = _distributed()
        client, cluster = self._client()
        try:
            if cluster is None:
                self.workers = max(1, len(client.scheduler_info().get("workers", {})))
            with distributed.get_task_stream(client) as stream:
                self._run(distributed, client, tasks, rows, on_row)
            self.compute_s = sum(s["stop"] - s["start"] for t in stream.data for s in t.get("startstops", ())
                                 if s.get("action") == "compute")
        finally:
            client.close()
            if cluster is not None:
                cluster.close()

    def _run(self, distributed, client, tasks, rows, on_row) -> None:
        """The tasks submitted in the plan's order, a window of points at a time: the rows of at most
        ``window`` points in flight, the next point's tasks submitted as a row arrives. dask queues the
        tasks it takes for roots (a shard of the samples: many tasks on few inputs) on the scheduler and
        sends the others (a shard in a chip's formats) to the workers at once, priorities aside; with the
        whole plan submitted, a worker ran every point's chip shards before any row. The window keeps the
        points finishing, and kept, one after another, on any scheduler's settings."""
        window = max(2, 2 * (self.workers or 1))
        last = {}  # value -> index of the last task that takes it
        for i, t in enumerate(tasks):
            for key in t.refs():
                last[key] = i
        held, point_of = {}, {}
        row_point = {task_key: point for point, task_key in rows.items()}
        done = distributed.as_completed(loop=client.loop)
        nxt = 0

        def submit() -> None:
            nonlocal nxt
            while nxt < len(tasks) and len(point_of) < window:
                i, t = nxt, tasks[nxt]
                args = [held[a.key] if isinstance(a, Ref) else a for a in t.args]
                future = client.submit(t.func, *args, key=t.key, pure=False, retries=0, priority=len(tasks) - i)
                for key in t.refs():
                    if last[key] == i:  # the scheduler keeps a value while a pending task needs it
                        held.pop(key, None)
                if t.key in row_point:
                    point_of[future] = row_point[t.key]
                    done.add(future)
                elif last.get(t.key, -1) > i:
                    held[t.key] = future
                nxt += 1

        submit()
        for future in done:
            point = point_of.pop(future)
            try:
                value = future.result()
            except Exception as exc:  # the task raised on its worker, or dask gave it up
                value = exc
            on_row(point, value)
            future.release()
            submit()
