"""Plots for the HTML reports, as inline SVG (matplotlib; nothing fetched, no scripts).

Every function takes the plain dicts the commands already write as JSON (a power result, a
deployment manifest, a simulation report) and returns one ``<figure class="plot"
data-plot="NAME">`` holding an ``<svg>`` and a caption, or "" when there is nothing to draw.
Terms whose coefficient is unknown are drawn as missing and named, never as zero. matplotlib
is imported on the first plot, not with spikeport.
"""
from __future__ import annotations

import html
import io
import math

from ..units import si

# the parts of a chip's energy per inference, as spikeport.deploy.energy.estimate reports them
COMPONENTS = (("synaptic operations", "synop_energy_j", "#4c72b0"), ("neuron updates", "update_energy_j", "#55a868"),
              ("spike routing", "route_energy_j", "#c44e52"), ("per-step work", "step_energy_j", "#8172b2"),
              ("runtime (x86, host link)", "runtime_j", "#937860"), ("input onto the chip", "input", "#da8bc3"),
              ("static", "static_j", "#8c8c8c"))
# the profile coefficients each part needs: a part is unknown when the estimate lists one of them as unknown
# (a part that is None without an unknown coefficient does not apply to the chip)
NEEDS = {"synop_energy_j": ("energy.synop_j",), "update_energy_j": ("energy.neuron_update_j",),
         "route_energy_j": ("energy.spike_j",), "step_energy_j": ("energy.step_j",),
         "runtime_j": ("energy.runtime_chip_w",), "input": ("io.input_spike_j", "io.input_value_j"),
         "static_j": ("energy.static_chip_w", "energy.static_core_w")}
BASELINE_COLOR = "#bbbbbb"


def _svg(fig) -> str:
    """The figure as an <svg> element (no XML prolog), text kept as text, reproducible ids."""
    from matplotlib import rc_context

    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": "spikeport"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def figure(width: float, height: float):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100)
    fig.set_layout_engine("constrained")
    return fig


def wrap(name: str, fig, caption: str) -> str:
    return (f"<figure class='plot' data-plot='{html.escape(name)}'>{_svg(fig)}"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _component(e: dict, key: str):
    if key == "input":
        return (e.get("input") or {}).get("energy_j")
    return e.get(key)


def _positive(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def energy_per_chip(targets: dict, baselines: dict | None = None) -> str:
    """Energy per inference per chip (log scale, the band as a whisker, cpu and gpu beside), and
    what it is made of (shares of the known total; unknown parts named)."""
    rows = [(t.get("title", n), False, t) for n, t in targets.items() if t.get("fits", True)]
    base = [(f"{n} baseline (ANN)", True, b) for n, b in (baselines or {}).items()]
    drawn = [r for r in rows + base if _positive(r[2].get("energy_per_inference_j"))]
    if not drawn:
        return ""
    fig = figure(10, 0.55 * len(drawn) + 1.6)
    total_ax, share_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
    labels = [r[0] for r in drawn]
    y = list(range(len(drawn)))[::-1]
    for yi, (label, is_base, e) in zip(y, drawn):
        v = e["energy_per_inference_j"]
        lo, hi = ((e.get("band") or {}).get("energy_per_inference_j") or [v, v])
        color = BASELINE_COLOR if is_base else "#4c72b0"
        total_ax.barh(yi, v, color=color, height=0.6)
        if hi > lo:
            total_ax.errorbar([v], [yi], xerr=[[max(v - lo, 0)], [max(hi - v, 0)]], fmt="none", ecolor="#222",
                              capsize=3, lw=1)
        mark = "" if e.get("complete", True) else ">= "
        total_ax.text(0.01, yi + 0.36, f"{mark}{si(v, 'J')}", va="bottom", fontsize=7,
                      transform=total_ax.get_yaxis_transform())
    total_ax.set_xscale("log")
    total_ax.set_yticks(y, labels, fontsize=8)
    total_ax.set_ylim(-0.6, len(drawn) - 0.2)
    total_ax.set_xlabel("energy per inference (J, log scale; whisker: low-high band)", fontsize=8)
    chips = [r for r in drawn if not r[1]]
    unknown_parts = {}
    for yi, (label, is_base, e) in zip(y, drawn):
        if is_base:
            share_ax.barh(yi, 1.0, color=BASELINE_COLOR, height=0.6)
            share_ax.text(0.5, yi, "ANN: busy power + idle", va="center", ha="center", fontsize=7)
            continue
        known = [(lab, _component(e, key), col) for lab, key, col in COMPONENTS]
        total = sum(v for _, v, _ in known if _positive(v))
        left = 0.0
        for lab, v, col in known:
            if _positive(v) and total > 0:
                share_ax.barh(yi, v / total, left=left, color=col, height=0.6, label=lab)
                left += v / total
        unknown = set(e.get("unknown") or [])
        missing = [lab for lab, key, _ in COMPONENTS if unknown & set(NEEDS[key])]
        if missing:
            share_ax.text(0.99, yi, "+ unknown", va="center", ha="right", fontsize=7, color="#a40")
            unknown_parts[label] = missing
    handles, names = share_ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    if unique:
        share_ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.12),
                        ncol=3, frameon=False)
    share_ax.set_xlim(0, 1)
    share_ax.set_ylim(-0.6, len(drawn) - 0.2)
    share_ax.set_yticks(y, [""] * len(y))
    share_ax.set_xlabel("share of the known energy per inference", fontsize=8)
    caption = (f"Energy per inference on {len(chips)} chip(s) and the ANN baselines, and what each chip's is made "
               "of. Parts whose coefficient the profile does not know are not drawn, and such totals are lower "
               "bounds (>=)")
    caption += (": " + "; ".join(f"{k}: {', '.join(v)} unknown" for k, v in unknown_parts.items()) + "."
                if unknown_parts else ".")
    return wrap("energy-per-chip", fig, caption)


def chips_side_by_side(targets: dict) -> str:
    """Power, inferences per second, cores and accuracy of every chip that fits."""
    rows = [(t.get("title", n), t) for n, t in targets.items() if t.get("fits", True)]
    if not rows:
        return ""
    panels = (("average power (W)", "power_w", True), ("inferences per second", "inferences_per_s", True),
              ("cores", "cores", True), ("accuracy in the chip's formats (%)", "accuracy", False))
    fig = figure(10, 0.45 * len(rows) + 3.2)
    axes = fig.subplots(2, 2).ravel()
    y = list(range(len(rows)))[::-1]
    for ax, (title, key, log) in zip(axes, panels):
        for yi, (label, t) in zip(y, rows):
            v = t.get(key)
            if key == "accuracy" and v is not None:
                v = 100.0 * v
            if _positive(v):
                ax.barh(yi, v, color="#4c72b0", height=0.6)
                ax.text(v, yi, f" {v:.4g}", va="center", fontsize=7)
            else:
                ax.text(0.02, yi, "unknown", va="center", fontsize=7, color="#a40", transform=ax.get_yaxis_transform())
        if log and any(_positive(t.get(key)) for _, t in rows):
            ax.set_xscale("log")
        if key == "accuracy":
            ax.set_xlim(0, 115)
        if log:
            ax.margins(x=0.3)
        ax.set_yticks(y, [r[0] for r in rows], fontsize=7)
        ax.set_title(title, fontsize=9)
    return wrap("chips-side-by-side", fig, "Chips side by side: average power while running, inferences per "
                 "second (from the time model), cores used and the accuracy of the network in each chip's formats.")


def layer_energy(energy: dict, name: str = "layer-energy") -> str:
    """Each layer's energy per inference, split into synaptic operations, updates, routing and static."""
    layers = [lay for lay in energy.get("layers", []) if not lay.get("input")]
    parts = (("synaptic operations", "synop_energy_j", "#4c72b0"), ("neuron updates", "update_energy_j", "#55a868"),
             ("spike routing", "route_energy_j", "#c44e52"), ("static", "static_j", "#8c8c8c"))
    if not layers or not any(_positive(lay.get(k)) for lay in layers for _, k, _ in parts):
        return ""
    fig = figure(8, 0.45 * len(layers) + 1.5)
    ax = fig.subplots()
    y = list(range(len(layers)))[::-1]
    unknown = {lab for lab, key, _ in parts if set(energy.get("unknown") or []) & set(NEEDS[key])}
    for yi, lay in zip(y, layers):
        left = 0.0
        for lab, key, col in parts:
            v = lay.get(key)
            if _positive(v):
                ax.barh(yi, v, left=left, color=col, height=0.6, label=lab)
                left += v
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7, frameon=False)
    ax.set_yticks(y, [str(lay["name"]) for lay in layers], fontsize=8)
    ax.set_xlabel("energy per inference (J)")
    caption = "Energy per inference by layer and by what spends it."
    if unknown:
        caption += " Not drawn (coefficient unknown): " + ", ".join(sorted(unknown)) + "."
    return wrap(name, fig, caption)


def layer_activity(layers: list, name: str = "layer-activity") -> str:
    """Synaptic operations and spikes per inference, per layer (log scale)."""
    rows = [lay for lay in layers if not lay.get("input") and (_positive(lay.get("synops"))
                                                                 or _positive(lay.get("spikes")))]
    if not rows:
        return ""
    fig = figure(8, 0.5 * len(rows) + 1.5)
    ax = fig.subplots()
    y = list(range(len(rows)))[::-1]
    for yi, lay in zip(y, rows):
        for off, key, col, lab in ((0.17, "synops", "#4c72b0", "synaptic operations"),
                                   (-0.17, "spikes", "#c44e52", "spikes")):
            if _positive(lay.get(key)):
                ax.barh(yi + off, lay[key], height=0.32, color=col, label=lab)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles))
    ax.legend(unique.values(), unique.keys(), fontsize=7, frameon=False)
    ax.set_xscale("log")
    ax.set_yticks(y, [str(lay["name"]) for lay in rows], fontsize=8)
    ax.set_xlabel("per inference (log scale)")
    return wrap(name, fig, "Synaptic operations and spikes per inference in each layer (measured activity).")


def layer_mapping(layers: list) -> str:
    """Cores per layer, the busiest core's use of each limit, and the weight error of quantization."""
    layers = [lay for lay in layers if lay.get("cores")]  # the input (no cores: it arrives from outside)
    if not layers:
        return ""
    fig = figure(10, 0.45 * len(layers) + 1.8)
    cores_ax, use_ax, err_ax = fig.subplots(1, 3)
    y = list(range(len(layers)))[::-1]
    names = [str(lay["name"]) for lay in layers]
    limits = sorted({k for lay in layers for k, v in (lay.get("utilization") or {}).items()
                     if isinstance(v, (int, float))})
    for yi, lay in zip(y, layers):
        cores_ax.barh(yi, lay.get("cores") or 0, color="#4c72b0", height=0.6)
        util = lay.get("utilization") or {}
        for j, lim in enumerate(limits):
            v = util.get(lim)
            if isinstance(v, (int, float)):
                h = 0.8 / max(len(limits), 1)
                use_ax.barh(yi - 0.4 + h * (j + 0.5), 100 * v, height=h, color=f"C{j}", label=lim.replace("_", " "))
        err = lay.get("quant_max_abs_error")
        if isinstance(err, (int, float)):
            err_ax.barh(yi, err, color="#c44e52", height=0.6)
        else:
            err_ax.text(0, yi, " float (no quantization)", va="center", fontsize=7)
    for ax, title in ((cores_ax, "cores"), (use_ax, "busiest core: share of each limit (%)"),
                      (err_ax, "max |weight error| after quantization")):
        ax.set_yticks(y, names if ax is cores_ax else [""] * len(y), fontsize=8)
        ax.set_title(title, fontsize=9)
    use_ax.set_xlim(0, 105)
    handles, labels = use_ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        use_ax.legend(unique.values(), unique.keys(), fontsize=7, frameon=False, loc="lower right")
    return wrap("layer-mapping", fig, "Mapping: cores per layer, how full the busiest core of each layer is "
                 "against each of the chip's limits, and the largest weight error of the chip's format.")


def accuracy_vs_steps(by_steps: dict, ann_accuracy=None, ann_label: str = "ANN") -> str:
    """SNN accuracy against the number of time steps ({steps: accuracy}, all on the same samples), the
    ANN's as a dashed line labelled ``ann_label``."""
    pts = sorted((int(t), a) for t, a in (by_steps or {}).items() if isinstance(a, (int, float)))
    if not pts:
        return ""
    fig = figure(7, 3.6)
    ax = fig.subplots()
    ax.plot([t for t, _ in pts], [100 * a for _, a in pts], marker="o" if len(pts) <= 40 else None, label="SNN",
            color="#4c72b0")
    if isinstance(ann_accuracy, (int, float)):
        ax.axhline(100 * ann_accuracy, color="#222", ls="--", lw=1, label=f"{ann_label} {100 * ann_accuracy:.2f} %")
    if len(pts) > 1 and pts[0][0] > 0 and pts[-1][0] / pts[0][0] >= 8:
        ax.set_xscale("log", base=2)
    ax.set_xlabel("time steps")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    return wrap("accuracy-vs-steps", fig, f"Accuracy against the number of time steps, every point on the same "
                 f"samples; the dashed line: {ann_label}.")


def firing_rates(layers: list) -> str:
    """Mean firing rate per layer (Hz)."""
    rows = [lay for lay in layers if isinstance(lay.get("rate_hz"), (int, float))]
    if not rows:
        return ""
    fig = figure(7, 0.4 * len(rows) + 1.4)
    ax = fig.subplots()
    y = list(range(len(rows)))[::-1]
    ax.barh(y, [lay["rate_hz"] for lay in rows], color="#55a868", height=0.6)
    for yi, lay in zip(y, rows):
        ax.text(lay["rate_hz"], yi, f" {lay['rate_hz']:.3g} Hz", va="center", fontsize=7)
    ax.set_yticks(y, [str(lay["name"]) for lay in rows], fontsize=8)
    ax.set_xlabel("mean firing rate (Hz)")
    ax.margins(x=0.2)
    return wrap("firing-rates", fig, "Mean firing rate of each layer's neurons over the run.")


def layer_correlation(correlations: dict, what: str, name: str = "layer-agreement") -> str:
    """Per layer ({layer: correlation}), how closely the rates follow ``what``."""
    rows = [(k, v) for k, v in (correlations or {}).items() if isinstance(v, (int, float)) and math.isfinite(v)]
    if not rows:
        return ""
    fig = figure(7, 0.4 * len(rows) + 1.4)
    ax = fig.subplots()
    y = list(range(len(rows)))[::-1]
    ax.barh(y, [v for _, v in rows], color="#8172b2", height=0.6)
    for yi, (_, v) in zip(y, rows):
        ax.text(v, yi, f" {v:.4f}", va="center", fontsize=7)
    ax.set_xlim(min(0.0, min(v for _, v in rows)), 1.15)
    ax.set_yticks(y, [str(k) for k, _ in rows], fontsize=8)
    ax.set_xlabel(f"correlation of per-neuron rates with {what}")
    return wrap(name, fig, f"Per-layer agreement: correlation of each layer's per-neuron rates with {what}.")
