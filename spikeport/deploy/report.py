"""Self-contained HTML reports: a deployment (DIR/report.html), a power comparison, a simulation and a
validation run.

Plain HTML with inline CSS and inline SVG plots (spikeport.deploy.plots), no scripts and
nothing fetched: the file opens anywhere, including on a machine with no network. Numbers that
the profile does not know are printed as "unknown", never as zero; sums that leave them out as
lower bounds.
"""
from __future__ import annotations

import html

from ..units import count, si
from . import plots

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:70em;color:#222}
table{border-collapse:collapse;margin:0.6em 0 1.4em}th,td{border:1px solid #bbb;padding:0.25em 0.6em;
text-align:right}th{background:#eee}td.l,th.l{text-align:left}.warn{color:#a40}.small{font-size:0.85em;color:#555}
figure.plot{margin:0.8em 0 1.4em}figure.plot svg{max-width:100%;height:auto}
figcaption{font-size:0.85em;color:#555;max-width:60em}"""


def fmt(v, unit: str = "") -> str:
    if v is None:
        return "unknown"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if unit == "%" and isinstance(v, (int, float)):
        return f"{100 * v:.2f} %"
    if isinstance(v, float):
        if unit in ("J", "W", "s"):
            return si(v, unit, micro="µ")
        return f"{v:.4g}" + (f" {unit}" if unit else "")
    if isinstance(v, int):
        return f"{v:,}" + (f" {unit}" if unit else "")
    return html.escape(str(v))


def table(headers: list, rows: list, left: int = 1) -> str:
    head = "".join(f"<th class='l'>{html.escape(h)}</th>" if i < left else f"<th>{html.escape(h)}</th>"
                   for i, h in enumerate(headers))
    body = "".join("<tr>" + "".join(f"<td class='l'>{c}</td>" if i < left else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _energy_rows(energy: dict) -> list:
    rows = []
    for lay in energy.get("layers", []):
        done = lay.get("complete", True)
        rows.append([html.escape(str(lay["name"])), fmt(lay.get("neurons")), fmt(lay.get("cores")),
                     fmt(lay.get("synops")), fmt(lay.get("spikes")), _bound(lay.get("dynamic_j"), "J", done),
                     _bound(lay.get("static_j"), "J", done), _bound(lay.get("energy_j"), "J", done)])
    return rows


def _bound(v, unit: str, complete: bool) -> str:
    """An energy or a power; where unknown terms were left out of it, a lower bound, shown as such."""
    if unit in ("J", "W") and v is not None and not complete:
        return "≥ " + fmt(v, unit)
    return fmt(v, unit)


def _energy_summary(e: dict) -> list:
    done = e.get("complete", True)
    return [["energy per inference", _bound(e.get("energy_per_inference_j"), "J", done)],
            ["dynamic", _bound(e.get("dynamic_j"), "J", done)], ["static", _bound(e.get("static_j"), "J", done)],
            ["time per inference (real time)", fmt(e.get("time_per_inference_s"), "s")],
            ["inferences per second", fmt(e.get("inferences_per_s"))],
            ["average power", _bound(e.get("power_w"), "W", done)],
            ["synaptic operations", fmt(e.get("synops"))], ["neuron updates", fmt(e.get("neuron_updates"))],
            ["spikes", fmt(e.get("spikes"))],
            ["complete (every coefficient known)", fmt(e.get("complete"))]]


def _sources(e: dict) -> str:
    src = e.get("sources") or {}
    if not src:
        return ""
    return "<p class='small'>Sources: " + "; ".join(f"{html.escape(k)}: {html.escape(str(v))}"
                                                   for k, v in sorted(src.items())) + "</p>"


def page(title: str, body: str) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{body}</body></html>\n")


def html_report(m: dict) -> str:
    """DIR/report.html from a deployment manifest."""
    parts = [f"<h1>spikeport deploy: {html.escape(m['title'])}</h1>",
             f"<p>{count(m['cores'], 'core')} on {count(m['chips'], 'chip')}; measured on {fmt(m['samples'])} samples "
             f"of {html.escape(str(m.get('dataset')))} at T = {m['steps']} steps. Profile: "
             f"{html.escape(str(m['profile']))}.</p>"]
    acc = m.get("accuracy", {})
    parts.append("<h2>Accuracy</h2>" + table(["network", "accuracy"], [
        ["float (reference executor)", fmt(acc.get("float"), "%")],
        ["in the chip's formats (fixed-point mode)", fmt(acc.get("quantized"), "%")],
        ["same prediction as the float network", fmt(m.get("agreement_quantized_vs_float"), "%")]]))
    parts.append(_warnings(m.get("warnings")))
    rows = [[html.escape(str(l["name"])), fmt(l["neurons"]), fmt(l["cores"]), fmt(l.get("fan_in_max")),
             fmt(l.get("weight_bits")), fmt(l.get("quant_max_abs_error")),
             html.escape(", ".join(f"{k} {v:.0%}" for k, v in (l.get("utilization") or {}).items()
                                   if isinstance(v, (int, float))))] for l in m["layers"]]
    parts.append("<h2>Mapping</h2>" + table(["layer", "neurons", "cores", "fan-in (max)", "weight bits",
                                               "max |weight error|", "utilization (busiest core)"], rows))
    per_core = (m.get("partition") or {}).get("per_core") or {}
    limits = [(k, v) for k, v in per_core.items() if isinstance(v, dict) and "mean" in v]
    if limits:
        parts.append(f"<p>Per core ({fmt(per_core.get('count'))} cores), share of each limit used:</p>" + table(
            ["limit", "mean over cores", "busiest core"],
            [[html.escape(k.replace("_", " ")), f"{v['mean']:.1%}", f"{v['max']:.1%}"] for k, v in limits]))
    worked = m.get("violations_worked_around") or []
    if worked:
        parts.append("<p>Limits handled by splitting: " + "; ".join(
            html.escape(f"{v['layer']}: {v['what']} {v['value']} > {v['limit']}") for v in worked) + "</p>")
    parts.append(plots.layer_mapping(m["layers"]))
    e = m["energy"]
    parts.append("<h2>Energy</h2>" + plots.energy_per_chip({m["target"]: {**e, "title": m["title"]}},
                                                           m.get("baselines")))
    parts.append(table(["", ""], _energy_summary(e)))
    parts.append(plots.layer_energy(e) + plots.layer_activity(e.get("layers", [])))
    parts.append(table(["layer", "neurons", "cores", "synops", "spikes", "dynamic", "static", "total"],
                        _energy_rows(e)))
    parts.append(_sources(e))
    base = m.get("baselines") or {}
    if base:
        parts.append("<h2>Conventional baselines (the same network as an ANN)</h2>" + table(
            ["device", "MACs", "energy per inference", "dynamic", "static", "power"],
            [[html.escape(k), fmt(b.get("macs")), fmt(b.get("energy_per_inference_j"), "J"),
              fmt(b.get("dynamic_j"), "J"), fmt(b.get("static_j"), "J"), fmt(b.get("power_w"), "W")]
             for k, b in base.items()]))
    unknown = m.get("unknown") or []
    if unknown:
        parts.append("<h2>Not known for this chip</h2><ul>" + "".join(
            f"<li>{html.escape(u['key'])}: {html.escape(u['why'])}</li>" for u in unknown) + "</ul>")
    parts.append("<h2>Files</h2><ul>" + "".join(f"<li>{html.escape(a)}</li>" for a in m.get("artifacts", []))
                 + "</ul>")
    return page(f"spikeport deploy {m['target']}", "".join(parts))


def power_html(result: dict) -> str:
    """The HTML of ``spikeport power``: chips side by side, then the baselines."""
    targets = {n: t for n, t in result["targets"].items() if t.get("fits", True)}
    refused = {n: t for n, t in result["targets"].items() if not t.get("fits", True)}
    keys = [("energy per inference", "energy_per_inference_j", "J"), ("dynamic", "dynamic_j", "J"),
            ("static", "static_j", "J"), ("average power", "power_w", "W"),
            ("inferences per second", "inferences_per_s", ""), ("cores", "cores", ""), ("chips", "chips", ""),
            ("synaptic operations", "synops", ""), ("spikes", "spikes", ""), ("accuracy", "accuracy", "%"),
            ("complete", "complete", "")]
    rows = [[label] + [_bound(t.get(k), unit, t.get("complete", True)) for t in targets.values()]
            for label, k, unit in keys]
    parts = [f"<h1>spikeport power</h1><p>{fmt(result['samples'])} samples of {html.escape(str(result['dataset']))}, "
             f"T = {result['steps']}; float accuracy {fmt(result['float_accuracy'], '%')}.</p>",
             _warnings(result.get("warnings")),
             plots.energy_per_chip(targets, result.get("baselines")), plots.chips_side_by_side(targets),
             table([""] + [t.get("title", n) for n, t in targets.items()], rows)]
    if refused:
        parts.append("<h2>Chips the network does not fit</h2>" + table(
            ["chip", "why"], [[html.escape(t.get("title", n)), html.escape(t["reason"])] for n, t in refused.items()],
            left=2))
    for name, t in targets.items():
        parts.append(f"<h2>{html.escape(t.get('title', name))}</h2>")
        parts.append(plots.layer_energy(t, name=f"layer-energy-{name}"))
        parts.append(table(["layer", "neurons", "cores", "synops", "spikes", "dynamic", "static", "total"],
                            _energy_rows(t)))
        if t.get("unknown"):
            parts.append("<p>Unknown coefficients: " + html.escape(", ".join(t["unknown"])) + "</p>")
        parts.append(_sources(t))
    base = result.get("baselines") or {}
    if base:
        parts.append("<h2>Baselines (the same network as an ANN)</h2>" + table(
            ["device", "MACs", "energy per inference", "power"],
            [[html.escape(k), fmt(b.get("macs")), fmt(b.get("energy_per_inference_j"), "J"),
              fmt(b.get("power_w"), "W")] for k, b in base.items()]))
    return page("spikeport power", "".join(parts))


def _ann_line(rep: dict):
    """(accuracy, label) of the ANN to set beside the SNN: only ever one measured on the same samples."""
    if rep.get("ann_accuracy") is not None:
        return rep["ann_accuracy"], "ANN (the whole test set, as the SNN)"
    if rep.get("rate_model_accuracy") is not None:
        return rep["rate_model_accuracy"], "the network as an ANN (its rate model), same samples"
    return None, "ANN"


def _run_summary(rep: dict) -> str:
    ann, label = _ann_line(rep)
    rows = [["samples", fmt(rep.get("samples"))], ["data set", fmt(rep.get("dataset"))],
            ["input encoding", fmt(rep.get("encoding"))], ["time steps", fmt(rep.get("steps"))],
            ["backend", fmt(rep.get("backend"))], ["SNN accuracy", fmt(rep.get("accuracy"), "%")],
            [label, fmt(ann, "%") if ann is not None else "not known for these samples"]]
    if rep.get("ann_accuracy") is None and rep.get("ann_accuracy_test_set") is not None:
        rows.append(["ANN on its whole test set (recorded at conversion; not these samples)",
                     fmt(rep["ann_accuracy_test_set"], "%")])
    rows.append(["run time", fmt(rep.get("seconds"), "s")])
    return table(["", ""], rows) + _warnings(rep.get("warnings"))


def _warnings(warnings) -> str:
    return "".join(f"<p class='warn'>WARNING: {html.escape(w)}</p>" for w in warnings or [])


def _activity_table(rep: dict) -> str:
    return table(["layer", "neurons", "spikes per inference", "rate (Hz)", "synops per inference"],
                  [[html.escape(str(lay["name"])), fmt(lay.get("neurons")), fmt(lay.get("spikes")),
                    fmt(lay.get("rate_hz")), fmt(lay.get("synops"))] for lay in rep.get("layers", [])])


def simulate_html(rep: dict) -> str:
    """The HTML of ``spikeport simulate --html``: accuracy against time steps, activity per layer."""
    parts = ["<h1>spikeport simulate</h1>", _run_summary(rep),
             plots.accuracy_vs_steps(rep.get("accuracy_by_steps"), *_ann_line(rep)),
             plots.firing_rates(rep.get("layers", [])), plots.layer_activity(rep.get("layers", [])),
             _activity_table(rep)]
    return page("spikeport simulate", "".join(parts))


def validate_html(rep: dict) -> str:
    """The HTML of ``spikeport validate --html``: the backend beside the reference executor."""
    parts = [f"<h1>spikeport validate: {html.escape(str(rep.get('backend')))}</h1>", _run_summary(rep),
             table(["", ""], [["same prediction as the reference executor", fmt(rep.get("agreement"), "%")],
                               ["reference executor's run time", fmt(rep.get("reference_seconds"), "s")]]),
             plots.accuracy_vs_steps(rep.get("accuracy_by_steps"), *_ann_line(rep)),
             plots.layer_correlation(rep.get("rate_correlation"), "the reference executor")]
    diag = rep.get("diagnosis")
    if diag:
        parts.append(f"<h2>Diagnosis against {html.escape(str(diag.get('compared_with')))}</h2>")
        parts.append(plots.layer_correlation({lay["name"]: lay["correlation"] for lay in diag["layers"]},
                                             "the ANN's activations", name="layer-diagnosis"))
        parts.append(table(["layer", "correlation", "mean |error|", "ANN rate", "SNN rate"],
                            [[html.escape(str(lay["name"])), fmt(lay["correlation"]), fmt(lay["mean_abs_error"]),
                              fmt(lay["ann_mean_rate"]), fmt(lay["snn_mean_rate"])] for lay in diag["layers"]]))
        bad = diag.get("first_bad")
        parts.append("<p>" + ("Every layer follows the ANN." if bad is None else
                              f"First layer where agreement drops: {html.escape(str(bad))}.") + "</p>")
    parts += [plots.firing_rates(rep.get("layers", [])), _activity_table(rep)]
    for note in rep.get("notes") or []:
        parts.append(f"<p class='small'>Note: {html.escape(str(note))}</p>")
    return page(f"spikeport validate {rep.get('backend')}", "".join(parts))
