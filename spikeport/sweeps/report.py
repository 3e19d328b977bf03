"""DIR/report.html of a sweep: per chip, the Pareto front of accuracy against energy per inference and
against latency (time per inference), every point drawn and the front joined; then the fronts as tables, the
points that failed with their reasons, and the whole table. Self-contained (inline SVG, no scripts), as
every spikeport report (:mod:`spikeport.deploy.report`).

A point's accuracy on a chip is its accuracy in the chip's formats (the reference executor on the
quantized network); on a conventional target (cpu, gpu), the network's as an ANN (``ann_accuracy``: a model
file's trained ANN, else the graph's rate model; what the target runs), the same at every T.
"""
from __future__ import annotations

import html
import math
from pathlib import Path

from ..deploy import plots
from ..deploy.report import fmt, page, table

__all__ = ["pareto_front", "sweep_html"]

MARKERS = "osD^vP*Xph<>"
COLORS = ("#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3", "#937860", "#da8bc1", "#8c8c8c", "#ccb974",
          "#64b5cd")


def chip_accuracy(row: dict):
    """A point's accuracy where it runs: in the chip's formats; on cpu and gpu, the network as an ANN
    (``ann_accuracy``; the float SNN's where that is unknown)."""
    for key in ("chip_accuracy", "ann_accuracy", "accuracy"):
        if row.get(key) is not None:
            return row[key]
    return None


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def pareto_front(rows: list, cost: str) -> list:
    """The rows no other row beats: none with a lower or equal ``cost`` and a higher or equal accuracy, one
    of them strictly. Ordered by cost; rows without both numbers are left out."""
    usable = [r for r in rows if _number(r.get(cost)) and r.get(cost) > 0 and _number(chip_accuracy(r))]
    usable.sort(key=lambda r: (r[cost], -chip_accuracy(r)))
    front, best = [], -math.inf
    for r in usable:
        if chip_accuracy(r) > best:
            front.append(r)
            best = chip_accuracy(r)
    return front


def config(row: dict) -> str:
    """What a point ran, less its steps and target: the network file, and its conversion and backend."""
    parts = [Path(str(row.get("network"))).name]
    parts += [str(row[k]) for k in ("norm", "encoding") if row.get(k)]
    if row.get("backend") not in (None, "reference"):
        parts.append(f"on {row['backend']}")
    return " ".join(parts)


def _chip_plot(chip: str, rows: list) -> str:
    panels = [("energy_per_inference_j", "energy per inference (J)"),
              ("time_per_inference_s", "latency: time per inference (s)")]
    drawn = [(key, label, [r for r in rows if _number(r.get(key)) and r[key] > 0 and _number(chip_accuracy(r))])
             for key, label in panels]
    drawn = [d for d in drawn if d[2]]
    if not drawn:
        return ""
    configs = sorted({config(r) for r in rows})
    fig = plots.figure(5.2 * len(drawn), 3.9)
    axes = fig.subplots(1, len(drawn), squeeze=False)[0]
    for ax, (key, label, pts) in zip(axes, drawn):
        for i, c in enumerate(configs):
            mine = [r for r in pts if config(r) == c]
            if mine:
                ax.scatter([r[key] for r in mine], [100 * chip_accuracy(r) for r in mine], s=22, alpha=0.8,
                           marker=MARKERS[i % len(MARKERS)], color=COLORS[i % len(COLORS)], label=c)
                for r in mine:
                    ax.annotate(f"T={r['steps']}", (r[key], 100 * chip_accuracy(r)), fontsize=6,
                                xytext=(3, 2), textcoords="offset points")
        front = pareto_front(pts, key)
        ax.step([r[key] for r in front], [100 * chip_accuracy(r) for r in front], where="post", color="#222",
                lw=1, label="Pareto front")
        if max(r[key] for r in pts) / min(r[key] for r in pts) > 100:  # two decades and more: log
            from matplotlib.ticker import NullFormatter

            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # labelled decades only: minor labels overlap
        ax.set_xlabel(label)
        ax.set_ylabel("accuracy on the chip (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, frameon=False, loc="lower right")
    what = " and ".join(label.split(":")[0] for _, label, _ in drawn)
    return plots.wrap(f"pareto-{chip}", fig, f"{chip}: accuracy on the chip against {what}, every point of the "
                      f"sweep that fits; the line joins the Pareto front (no other point is as cheap and as "
                      f"accurate).")


def _front_table(rows: list) -> str:
    out = []
    for key, what in (("energy_per_inference_j", "energy"), ("time_per_inference_s", "latency")):
        for r in pareto_front(rows, key):
            out.append([html.escape(what), html.escape(config(r)), fmt(r["steps"]), fmt(chip_accuracy(r), "%"),
                        fmt(r.get("energy_per_inference_j"), "J"), fmt(r.get("time_per_inference_s"), "s"),
                        fmt(r.get("power_w"), "W"), fmt(r.get("cores"))])
    return table(["front", "configuration", "T", "accuracy", "energy per inference", "time per inference",
                  "power", "cores"], out, left=2) if out else ""


def _all_rows(rows: list) -> str:
    def pct(v):
        return "-" if v is None else fmt(v, "%")

    body = [[html.escape(str(r.get("target"))), html.escape(config(r)), fmt(r.get("steps")), pct(r.get("accuracy")),
             pct(r.get("ann_accuracy")), pct(r.get("chip_accuracy")), fmt(r.get("energy_per_inference_j"), "J"),
             "-" if r.get("energy_low_j") is None else
             f"{fmt(r.get('energy_low_j'), 'J')} - {fmt(r.get('energy_high_j'), 'J')}",
             fmt(r.get("power_w"), "W"), fmt(r.get("time_per_inference_s"), "s"), fmt(r.get("synops")),
             fmt(r.get("cores")), fmt(r.get("chips"))] for r in rows if not r.get("error")]
    return table(["target", "configuration", "T", "float SNN accuracy", "as an ANN", "in the chip's formats",
                  "energy per inference", "band", "power", "time per inference", "synaptic ops", "cores", "chips"],
                 body, left=2)


def sweep_html(rows: list, summary: dict) -> str:
    """The report of a sweep's rows (in the sweep's order) and its run summary."""
    done = [r for r in rows if not r.get("error")]
    failed = [r for r in rows if r.get("error")]
    chips = list(dict.fromkeys(str(r.get("target")) for r in done))
    datasets = ", ".join(sorted({str(r.get("dataset")) for r in rows}))
    samples = sorted({"all" if r.get("samples") is None else f"{r['samples']:,}" for r in rows})
    parts = [f"<h1>spikeport sweep</h1><p>{len(rows):,} points of {html.escape(str(summary.get('sweep')))} on "
             f"{html.escape(datasets)} ({html.escape(', '.join(samples))} test samples per point): {len(done):,} "
             f"measured, {len(failed):,} did not fit or failed. This run: {summary.get('ran', 0):,} points run on "
             f"{html.escape(str(summary.get('executor')))} ({fmt(summary.get('workers'))} workers) in "
             f"{fmt(summary.get('wall_s'), 's')}, {summary.get('kept', 0):,} kept from an earlier run.</p>"]
    for chip in chips:
        mine = [r for r in done if r.get("target") == chip]
        parts.append(f"<h2>{html.escape(chip)}</h2>" + _chip_plot(chip, mine) + _front_table(mine))
    if failed:
        parts.append("<h2>Points that did not fit or failed</h2>" + table(
            ["target", "configuration", "T", "why"],
            [[html.escape(str(r.get("target"))), html.escape(config(r)), fmt(r.get("steps")),
              html.escape(str(r["error"]))] for r in failed], left=2))
    parts.append("<h2>Every point</h2>" + _all_rows(rows))
    return page("spikeport sweep", "".join(parts))
