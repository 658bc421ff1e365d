"""A replay at a glance: `overview.html`, one self-contained page of charts.

Per model (namespace/model, version, graph node, as the window summaries name them),
one figure of its windows (`sinks.overview_figure`). A window with an Evidently report
is marked; clicking any of its points or cells opens the report, and the reports are
also listed as plain links under the figure.

`add(summary, report)` takes each summary as the replay emits it (a revision replaces
the window's earlier summary; a report, once given, stays with its window); `flush()`
writes the page atomically. The charts are plotly.js, read from the plotly package's
own `package_data/plotly.min.js` (plotly comes with evidently) and inlined once: no
network is needed to view the page. The page is deterministic: models and windows
sorted, figures as sorted-key JSON, no time of "now".
"""

from __future__ import annotations

import html
import logging
import os
from importlib.resources import files
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from sinks.overview_figure import COLORS, label, model_figure, plotly_time

log = logging.getLogger("predlog.sinks.overview_html")


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
                       f"{html.escape(label(s))}</a>"
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
                        f"{plotly_time(starts[0])[:16]} to {plotly_time(starts[-1])[:16]} UTC")
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
