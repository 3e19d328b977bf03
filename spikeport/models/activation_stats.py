"""Statistics of a traced module's activations over calibration data: what conversion scales by.

:func:`record` runs a traced module (torch.fx) and yields the named nodes' activations batch by
batch; :func:`exact_percentiles` is the exact percentile of each node's positive outputs over the
whole calibration set in two passes (numpy's definition, without holding every activation).
"""
from __future__ import annotations

import math


def _torch():
    import torch
    return torch


def record(gm, names, batches):
    """Run the traced module over ``batches``, yielding {node name: activation} for ``names``."""
    import torch.fx as fx

    class Recorder(fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if n.name in names:
                self.seen[n.name] = out.detach()
            return out

    torch = _torch()
    rec = Recorder(gm)
    with torch.no_grad():
        for xb in batches:
            rec.seen = {}
            result = rec.run(xb)
            if "output" in names:
                rec.seen["output"] = result.detach()
            yield rec.seen


def exact_percentiles(gm, names, calibration, percentile, batch_size=500):
    """The ``percentile`` of each named node's positive outputs over the whole calibration set.

    Exact (numpy's linear interpolation between order statistics): a first pass
    counts positives, a second keeps only the largest (100 - p) % of them.
    """
    from ..progress import current

    torch = _torch()
    batches = lambda: (torch.as_tensor(calibration[i:i + batch_size]) for i in range(0, len(calibration), batch_size))
    bar = current()  # two passes over the calibration data, batch by batch
    if bar is not None:
        bar.set_total(2 * math.ceil(len(calibration) / batch_size))
        bar.note("activation percentiles")
    counts = {n: 0 for n in names}
    for seen in record(gm, set(names), batches()):
        for n in names:
            counts[n] += int((seen[n] > 0).sum())
        if bar is not None:
            bar.update(1)
    keep = {n: min(counts[n], int(math.ceil((counts[n] - 1) * (1 - percentile / 100))) + 2) for n in names}
    top = {n: torch.empty(0) for n in names}
    if any(keep.values()):
        for seen in record(gm, set(names), batches()):
            for n in names:
                if keep[n]:
                    values = seen[n][seen[n] > 0].flatten().double()
                    merged = torch.cat([top[n], values])
                    top[n] = torch.topk(merged, min(keep[n], merged.numel())).values
            if bar is not None:
                bar.update(1)
    result = {}
    for n in names:
        total = counts[n]
        if total == 0:
            result[n] = None
            continue
        desc = torch.sort(top[n], descending=True).values.numpy()
        rank = (total - 1) * percentile / 100  # ascending rank, as numpy.percentile
        lo, hi = math.floor(rank), math.ceil(rank)
        at = lambda a: desc[total - 1 - a]
        result[n] = float(at(lo) + (rank - lo) * (at(hi) - at(lo)))
    return result
