"""A replay at a glance: `overview.html`, one self-contained page of charts.

Per model (namespace/model, version, graph node, as the window summaries name them),
one figure with the windows on a shared time axis: requests, p95 latency, error rate,
drift share (red where the window has dataset drift), performance (realized, and the
label-free estimate when summaries carry `performance.estimated`, its alerts in red),
and a features × windows heatmap of the per-feature drift flags (plus the prediction
drift). A window with an Evidently report is marked; clicking any of its points or
cells opens the report, and the reports are also listed as plain links under the figure.

`add(summary, report)` takes each summary as the replay emits it (a revision replaces
the window's earlier summary; a report, once given, stays with its window); `flush()`
writes the page atomically. The charts are plotly.js, read from the plotly package's
own `package_data/plotly.min.js` (plotly comes with evidently) and inlined once: no
network is needed to view the page. The page is deterministic: models and windows
sorted, figures as sorted-key JSON, no time of "now".

>>> s = {"namespace": "ns", "model": "m", "version": "1", "node": "n",
...      "window_start": "2020-01-01T00:00:00Z", "window_end": "2020-01-01T00:05:00Z",
...      "requests": 4, "errors": 1, "latency_seconds": {"p95": 0.2},
...      "performance": {"labels": 3, "accuracy": 0.5, "estimated": {"accuracy":
...          {"value": 0.6, "lower": 0.4, "upper": 0.8}}}}
>>> series(s)["error_rate"], series(s)["accuracy"], estimated_performance(s)["accuracy"]
(0.25, 0.5, (0.6, 0.4, 0.8, False))
"""

from __future__ import annotations

import html
import logging
import os
from datetime import datetime
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

log = logging.getLogger("predlog.sinks.overview_html")
PERF_METRICS = ("accuracy", "r2", "mae")  # the performance row shows the first one present
ROW_PX, GAP_PX, CELL_PX = 120, 34, 22  # heights in pixels
COLORS = {"requests": "#4c78a8", "latency": "#f58518", "errors": "#e45756",
          "drift": "#d62728", "no_drift": "#9ecae9", "realized": "#2a9d5c",
          "estimated": "#7b5ea7", "report": "#222222", "cell": "#e3e9ef"}


def _num(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def series(summary: dict) -> dict[str, Any]:
    """The charted values of one window summary (None where the window has none)."""
    requests = summary.get("requests") or 0
    drift = summary.get("drift") or {}
    perf = summary.get("performance") or {}
    out = {"requests": requests,
           "p95": _num((summary.get("latency_seconds") or {}).get("p95")),
           "error_rate": (summary.get("errors") or 0) / requests if requests else None,
           "drift_share": _num(drift.get("drift_share")),
           "dataset_drift": bool(drift.get("dataset_drift"))}
    for metric in PERF_METRICS:
        out[metric] = _num(perf.get(metric)) if perf.get("labels") else None
    return out


def estimated_performance(summary: dict) -> dict[str, tuple]:
    """The hook for label-free estimates: `performance.estimated` as {metric: (value,
    lower, upper, alert)}, each entry a number or {"value", "lower", "upper", "alert"}."""
    est = (summary.get("performance") or {}).get("estimated") or {}
    out = {}
    for metric, e in est.items() if isinstance(est, dict) else ():
        if isinstance(e, dict):
            out[metric] = (_num(e.get("value")), _num(e.get("lower")), _num(e.get("upper")),
                           bool(e.get("alert")))
        else:
            out[metric] = (_num(e), None, None, False)
    return out


def _n(row: int) -> str:
    """plotly's axis suffix: x, x2, x3, …"""
    return "" if row == 1 else str(row)


def _time(iso: str) -> str:
    """plotly.js date strings carry no zone: "2013-01-03T00:00:00Z" → "2013-01-03 00:00:00"."""
    return iso.rstrip("Z").replace("T", " ")[:19]


def _label(s: dict) -> str:
    """A window's span, as short as its bounds allow: whole days as dates."""
    start, end = _time(s["window_start"]), _time(s["window_end"])
    if start.endswith("00:00:00") and end.endswith("00:00:00"):
        return f"{start[:10]} – {end[:10]}"
    if start[:10] == end[:10]:
        return f"{start[:16]} – {end[11:16]} UTC"
    return f"{start[:16]} – {end[:16]} UTC"


def _feature_rows(windows: list[dict]) -> tuple[list[str], list[list], list[list]]:
    """Heatmap rows: features (sorted), then the prediction; z 1 drifted, 0 not, None
    not computed; hover text per cell."""
    names = sorted({f for s in windows for f in ((s.get("drift") or {}).get("features") or {})})
    has_pred = any(isinstance(s.get("prediction_drift"), dict) for s in windows)
    rows = [*names, "(prediction)"] if has_pred else names
    z: list[list[int | None]] = []
    text: list[list[str]] = []
    for name in rows:
        zr: list[int | None] = []
        tr: list[str] = []
        for s in windows:
            if name == "(prediction)" and has_pred:
                f = s.get("prediction_drift")
            else:
                f = ((s.get("drift") or {}).get("features") or {}).get(name)
            if not isinstance(f, dict) or "drift" not in f:
                zr.append(None)
                tr.append(f"{html.escape(name)}<br>{_label(s)}<br>not computed")
                continue
            zr.append(1 if f["drift"] else 0)
            score = _num(f.get("score"))
            tr.append(f"{html.escape(name)}<br>{_label(s)}<br>{f.get('stattest')} "
                      f"{'–' if score is None else format(score, '.4g')} "
                      f"(threshold {f.get('threshold')}): "
                      f"{'<b>drift</b>' if f['drift'] else 'no drift'}")
        z.append(zr)
        text.append(tr)
    return rows, z, text


def _middle(s: dict) -> str:
    """The window's midpoint as a plotly.js date: a bar there covers [start, end)."""
    a, b = (datetime.fromisoformat(s[k].replace("Z", "+00:00"))
            for k in ("window_start", "window_end"))
    mid = a + (b - a) / 2
    text = mid.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")
    return text


def model_figure(windows: list[dict], links: list[str | None]) -> dict:
    """One plotly figure (data, layout) for one model's windows, in time order: a row
    per chart that has data, on one shared time axis."""
    x = [_middle(s) for s in windows]
    vals = [series(s) for s in windows]
    est = [estimated_performance(s) for s in windows]
    metric = next((m for m in PERF_METRICS if any(v[m] is not None for v in vals)
                   or any(m in e for e in est)), None)
    features, z, text = _feature_rows(windows)
    custom = [[_label(s), "<br><i>click: Evidently report</i>" if link else ""]
              for s, link in zip(windows, links, strict=True)]
    line = {"mode": "lines+markers", "connectgaps": False, "marker": {"size": 5}}
    rows: list[tuple[str, int, dict, list[dict]]] = []  # title, height, y axis, traces

    def trace(kind: str, y: list, fmt: str, unit: str, **kw) -> dict:
        return {"type": kind, "x": x, "y": y, "customdata": custom, "showlegend": False,
                "hovertemplate": f"%{{customdata[0]}}<br>%{{y:{fmt}}} {unit}"
                                 "%{customdata[1]}<extra></extra>", **kw}

    rows.append(("requests", ROW_PX, {"rangemode": "tozero"}, [
        trace("bar", [v["requests"] for v in vals], ",", "requests",
              marker={"color": COLORS["requests"]})]))
    rows.append(("p95 latency (s)", ROW_PX, {"rangemode": "tozero"}, [
        trace("scatter", [v["p95"] for v in vals], ".3f", "s p95 latency",
              line={"color": COLORS["latency"]}, **line)]))
    errors = [v["error_rate"] for v in vals]
    flat = not any(errors)  # all zero: show 0–1 % rather than plotly's symmetric default
    rows.append(("error rate", ROW_PX, {"tickformat": ".1%", "rangemode": "tozero",
                                        **({"range": [0, 0.01]} if flat else {})}, [
        trace("scatter", errors, ".2%", "errors", line={"color": COLORS["errors"]}, **line)]))
    shares = [v["drift_share"] for v in vals]
    if any(v is not None for v in shares):
        rows.append(("drift share", ROW_PX, {"range": [0, 1.05], "tickformat": ".0%"}, [
            trace("bar", shares, ".0%", "of features drifted",
                  marker={"color": [COLORS["drift"] if v["dataset_drift"] else
                                    COLORS["no_drift"] for v in vals]}),
            trace("scatter", [v if link else None for v, link in zip(shares, links,
                                                                      strict=True)],
                  ".0%", "of features drifted", mode="markers",
                  name="Evidently report (click)", showlegend=any(links),
                  marker={"symbol": "square-open", "size": 11, "color": COLORS["report"],
                          "line": {"width": 2}})]))
    if metric is not None:
        perf = []
        if any(metric in e for e in est):  # the estimate's confidence band, then its value
            value, lower, upper, alert = (
                [e[metric][i] if metric in e else None for e in est] for i in range(4))
            perf += [
                trace("scatter", upper, ".3f", f"upper bound ({metric})", mode="lines",
                      line={"width": 0}, connectgaps=False),
                trace("scatter", lower, ".3f", f"lower bound ({metric})", mode="lines",
                      line={"width": 0}, connectgaps=False, fill="tonexty",
                      fillcolor="rgba(123,94,167,0.18)"),
                trace("scatter", value, ".3f", f"estimated {metric}", showlegend=True,
                      name=f"estimated {metric}", **{
                          **line, "line": {"color": COLORS["estimated"], "dash": "dash"},
                          "marker": {"size": [9 if a else 5 for a in alert],
                                     "color": [COLORS["drift"] if a else COLORS["estimated"]
                                               for a in alert]}})]
        perf.append(trace("scatter", [v[metric] for v in vals], ".3f", f"realized {metric}",
                          name=f"realized {metric}", showlegend=True,
                          line={"color": COLORS["realized"]}, **line))
        rows.append((metric, ROW_PX, {}, perf))
    if features:
        rows.append(("", CELL_PX * len(features),
                     {"autorange": "reversed", "gridcolor": "rgba(0,0,0,0)",
                      "tickfont": {"size": 11}}, [
            {"type": "heatmap", "x": x, "y": features, "z": z, "text": text, "zmin": 0,
             "zmax": 1, "hovertemplate": "%{text}<extra></extra>", "showscale": False,
             "xgap": 1, "ygap": 1, "hoverongaps": False,
             "colorscale": [[0, COLORS["cell"]], [0.5, COLORS["cell"]],
                            [0.5, COLORS["drift"]], [1, COLORS["drift"]]]}]))
    total = sum(px for _, px, _, _ in rows) + GAP_PX * (len(rows) - 1)
    layout: dict[str, Any] = {
        "height": total + 90, "margin": {"t": 40, "b": 50, "l": 70, "r": 20},
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        "paper_bgcolor": "white", "plot_bgcolor": "#fafbfc", "bargap": 0.15,
        "hovermode": "closest", "legend": {"orientation": "h", "x": 1, "xanchor": "right",
                                           "y": 1, "yanchor": "bottom"}}
    data, top = [], total
    for n, (title, px, yaxis, traces) in enumerate(rows, start=1):
        for t in traces:
            data.append({**t, "xaxis": f"x{_n(n)}", "yaxis": f"y{_n(n)}"})
        layout[f"yaxis{_n(n)}"] = {
            "domain": [(top - px) / total, top / total], "automargin": True,
            "gridcolor": "#e6e9ee", "zeroline": False, "fixedrange": True,
            "title": {"text": title, "font": {"size": 12}}, **yaxis}
        layout[f"xaxis{_n(n)}"] = {"anchor": f"y{_n(n)}", "type": "date",
                                   "showticklabels": n == len(rows), "gridcolor": "#e6e9ee",
                                   **({"matches": "x"} if n > 1 else {})}
        top -= px + GAP_PX
    return {"data": data, "layout": layout}


def plotly_js() -> str | None:
    """plotly.min.js as the plotly package ships it; None without the package (an image
    without evidently's dependencies)."""
    if find_spec("plotly") is None:
        return None
    path = files("plotly") / "package_data" / "plotly.min.js"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def _json(obj: Any) -> str:
    """Sorted-key JSON, safe inside <script> (no "</" ends the element early)."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode().replace("</", "<\\/")


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2933;
  background: #f3f5f8; margin: 0; }}
main {{ max-width: 1280px; margin: 0 auto; padding: 20px 24px 40px; }}
h1 {{ font-size: 22px; margin: 0 0 4px; }}
h2 {{ font-size: 17px; margin: 0 0 2px; }}
.sub, .meta {{ color: #52606d; font-size: 13px; margin: 0 0 12px; }}
section {{ background: white; border: 1px solid #dde3ea; border-radius: 8px;
  padding: 16px 18px 10px; margin: 16px 0; }}
nav a, .reports a {{ color: #1f5fa8; text-decoration: none; margin-right: 10px; }}
nav a:hover, .reports a:hover {{ text-decoration: underline; }}
.reports {{ font-size: 13px; color: #52606d; margin: 4px 0 6px; line-height: 1.7; }}
.reports a {{ white-space: nowrap; }}
.key {{ font-size: 12px; color: #52606d; }}
.sw {{ display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  vertical-align: -1px; margin: 0 3px 0 10px; }}
</style></head><body><main>
<h1>{title}</h1>
<p class="sub">{subtitle}</p>
{nav}
{sections}
<p class="key">Drift share bars and heatmap cells: <span class="sw" style="background:{drift}">
</span>drift <span class="sw" style="background:{no_drift}"></span>no dataset drift
<span class="sw" style="background:{cell}"></span>feature not drifted; blank: not computed
(no reference or too few rows). Each point is one window (the latest revision of its
summary in windows.jsonl); hover for values, click a window with a report to open it.</p>
</main>
<script>{plotly}</script>
<script>
var FIGURES = {figures};
FIGURES.forEach(function (f) {{
  var div = document.getElementById(f.id);
  Plotly.newPlot(div, f.figure.data, f.figure.layout,
                 {{responsive: true, displaylogo: false,
                   modeBarButtonsToRemove: ["select2d", "lasso2d"]}});
  div.on("plotly_click", function (ev) {{
    var p = ev.points[0], i = Array.isArray(p.pointIndex) ? p.pointIndex[1] : p.pointIndex;
    if (f.links[i]) {{ window.open(f.links[i], "_blank"); }}
  }});
}});
</script>
</body></html>
"""


class OverviewHtmlSink:
    """Collects window summaries and writes the overview page to `path` on `flush()`."""

    def __init__(self, path: str | Path, title: str = "predlog replay overview") -> None:
        self.path = Path(path)
        self.title = title
        # (namespace, model, version, node) -> window_start -> (revision, summary)
        self._windows: dict[tuple, dict[str, tuple[int, dict]]] = {}
        self._reports: dict[tuple, Path] = {}  # (model key, window_start) -> report

    def add(self, summary: Any, report: str | Path | None = None) -> None:
        """`summary`: a window summary as written to windows.jsonl (a dict), or a record
        with `to_builtins()` giving that dict."""
        if not isinstance(summary, dict):
            summary = summary.to_builtins()
        model = tuple(str(summary.get(k, "")) for k in ("namespace", "model", "version", "node"))
        start = summary["window_start"]
        windows = self._windows.setdefault(model, {})
        revision = summary.get("revision") or 0
        if start not in windows or windows[start][0] <= revision:
            windows[start] = (revision, summary)
        if report is not None:
            self._reports[(model, start)] = Path(report)

    def _link(self, model: tuple, start: str) -> str | None:
        report = self._reports.get((model, start))
        if report is None:
            return None
        rel = os.path.relpath(report.resolve(), self.path.parent.resolve())
        return quote(Path(rel).as_posix())

    def render(self, js: str = "") -> str:
        sections, figures, nav = [], [], []
        starts = sorted({s for w in self._windows.values() for s in w})
        for i, model in enumerate(sorted(self._windows)):
            ns, name, version, node = model
            windows = [self._windows[model][s][1] for s in sorted(self._windows[model])]
            links = [self._link(model, s["window_start"]) for s in windows]
            anchor = f"model-{i + 1}"
            heading = html.escape(f"{ns}/{name}")
            nav.append(f'<a href="#{anchor}">{heading} ({html.escape(version)}, '
                       f'{html.escape(node)})</a>')
            drifted = sum(bool((s.get("drift") or {}).get("dataset_drift")) for s in windows)
            computed = any("drift_share" in (s.get("drift") or {}) for s in windows)
            statuses = sorted({str(st).replace("_", " ") for s in windows
                               if (st := (s.get("drift") or {}).get("status"))})
            drift_note = (f"{drifted:,} with dataset drift" if computed else
                          "drift not computed" + (f" ({', '.join(statuses)})" if statuses
                                                  else ""))
            labelled = any((s.get("performance") or {}).get("labels") for s in windows)
            requests = sum(s.get("requests") or 0 for s in windows)
            reports = [f'<a href="{html.escape(link)}" target="_blank">'
                       f"{html.escape(_label(s))}</a>"
                       for s, link in zip(windows, links, strict=True) if link]
            sections.append(
                f'<section id="{anchor}"><h2>{heading}</h2>'
                f'<p class="meta">version {html.escape(version)} · node {html.escape(node)} · '
                f"{len(windows):,} windows · {requests:,} requests · {html.escape(drift_note)} · "
                f"{'' if labelled else 'no labels · '}{len(reports):,} Evidently reports</p>"
                f'<div id="{anchor}-figure"></div>'
                + (f'<p class="reports">Evidently reports: {" ".join(reports)}</p>'
                   if reports else "") + "</section>")
            figures.append({"id": f"{anchor}-figure", "links": links,
                            "figure": model_figure(windows, links)})
        if starts:
            subtitle = (f"{sum(map(len, self._windows.values())):,} model windows of "
                        f"{len(self._windows)} model{'s' if len(self._windows) > 1 else ''}, "
                        "window starts from "
                        f"{_time(starts[0])[:16]} to {_time(starts[-1])[:16]} UTC")
        else:
            subtitle = "no windows: the replay emitted no window summary"
        return PAGE.format(
            title=html.escape(self.title), subtitle=subtitle,
            nav=f"<nav>{''.join(nav)}</nav>" if len(nav) > 1 else "",
            sections="\n".join(sections), plotly=js, figures=_json(figures),
            drift=COLORS["drift"], no_drift=COLORS["no_drift"], cell=COLORS["cell"])

    def flush(self) -> Path | None:
        """Write the page (temporary file, then rename) and return its path; without
        plotly installed, log a warning and write nothing (None)."""
        js = plotly_js()
        if js is None:
            log.warning("overview.html not written: the plotly package (plotly.min.js) "
                        "is not installed")
            return None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".html.tmp")
        tmp.write_text(self.render(js), encoding="utf-8")
        os.replace(tmp, self.path)
        return self.path
