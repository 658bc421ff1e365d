"""The overview page's figure of one model: its window summaries as one plotly figure.

Rows on one shared time axis (windows drawn over [start, end)), each only when it has
data: requests, p95 latency, error rate, drift share (red where the window has dataset
drift; a square on windows with an Evidently report), performance (realized, and the
label-free estimate with its band when summaries carry `performance.estimated`, its
alerts in red), and a features × windows heatmap of the drift flags (plus the
prediction drift). Plain dicts in plotly.js's JSON schema; no plotly import.

>>> s = {"namespace": "ns", "model": "m", "version": "1", "node": "n",
...      "window_start": "2020-01-01T00:00:00Z", "window_end": "2020-01-01T00:05:00Z",
...      "requests": 4, "errors": 1, "latency_seconds": {"p95": 0.2},
...      "performance": {"labels": 3, "accuracy": 0.5, "estimated": {"accuracy":
...          {"value": 0.6, "lower": 0.4, "upper": 0.8}}}}
>>> series(s)["error_rate"], series(s)["accuracy"], estimated_performance(s)["accuracy"]
(0.25, 0.5, (0.6, 0.4, 0.8, False))
>>> [t["type"] for t in model_figure([s], [None])["data"]]
['bar', 'scatter', 'scatter', 'scatter', 'scatter', 'scatter', 'scatter']
"""

from __future__ import annotations

import html
from datetime import datetime
from typing import Any

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


def plotly_time(iso: str) -> str:
    """plotly.js date strings carry no zone: "2013-01-03T00:00:00Z" → "2013-01-03 00:00:00"."""
    return iso.rstrip("Z").replace("T", " ")[:19]


def label(s: dict) -> str:
    """A window's span, as short as its bounds allow: whole days as dates."""
    start, end = plotly_time(s["window_start"]), plotly_time(s["window_end"])
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
                tr.append(f"{html.escape(name)}<br>{label(s)}<br>not computed")
                continue
            zr.append(1 if f["drift"] else 0)
            score = _num(f.get("score"))
            tr.append(f"{html.escape(name)}<br>{label(s)}<br>{f.get('stattest')} "
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
    custom = [[label(s), "<br><i>click: Evidently report</i>" if link else ""]
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
