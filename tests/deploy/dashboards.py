"""predlog's Grafana dashboards and the PromQL in them.

    from tests.deploy.dashboards import all_queries
    for q in all_queries(): print(q.dashboard, q.panel, q.expr)

`evaluable(expr)` replaces the Grafana variables with what "All" means so the expression
can be sent to Prometheus as it is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
# The seed's own dashboards, verbatim (Grafana HTTP API form: {"dashboard": {...}})
SEED_DASHBOARDS = DASHBOARDS.parent / "seed"

# Grafana variable -> value for evaluation ("All" of a multi-value regex variable is .*)
VARIABLES = {"model_name": ".*", "__rate_interval": "5m", "__interval": "1m"}


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str   # uid
    panel: str       # title
    ref_id: str
    expr: str
    legend: str


def load_dashboards() -> dict[str, dict]:
    """File name -> dashboard JSON."""
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def load_seed_dashboards() -> dict[str, dict]:
    """File name -> the dashboard inside the seed's {"dashboard": ...} JSON."""
    return {p.name: json.loads(p.read_text())["dashboard"]
            for p in sorted(SEED_DASHBOARDS.glob("*.json"))}


def iter_panels(panels: list[dict]):
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))  # collapsed rows nest panels


def all_queries() -> list[PanelQuery]:
    """Every panel target's PromQL of every dashboard, predlog's and the seed's (whose
    dashboard is named by its title and targets by position: the seed gives neither uid
    nor refId)."""
    out = []
    boards = [*load_dashboards().values(), *load_seed_dashboards().values()]
    for board in boards:
        for panel in iter_panels(board["panels"]):
            for i, target in enumerate(panel.get("targets", [])):
                out.append(PanelQuery(board.get("uid", board["title"]), panel["title"],
                                      target.get("refId", chr(ord("A") + i)),
                                      target["expr"], target.get("legendFormat", "")))
    return out


def evaluable(expr: str) -> str:
    """expr with $var / ${var} / [[var]] replaced by VARIABLES."""
    def sub(m: re.Match) -> str:
        name = m.group(1) or m.group(2) or m.group(3)
        if name not in VARIABLES:
            raise KeyError(f"unknown Grafana variable {name!r} in {expr!r}")
        return VARIABLES[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]", sub, expr)


METRIC_RE = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=\{|\[|\)|$|\s)")


def documented_metrics(doc: Path | None = None) -> dict[str, dict]:
    """docs/metrics.md's tables: name -> {"type", "labels": [...], "values": {label: [...]}}.

    "values" holds the label values the doc enumerates, e.g. stat_type (`mean`, `std`, ...).
    """
    doc = doc or Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
    metrics = {}
    for line in doc.read_text().splitlines():
        m = re.match(r"\|\s*`([a-z_:]+)`\s*\|\s*([^|]+)\|\s*([^|]*)\|", line)
        if not m:
            continue
        labels, values = [], {}
        for lm in re.finditer(r"([a-z_]+)\s*(?:\(([^)]*)\))?", m.group(3)):
            labels.append(lm.group(1))
            if lm.group(2):
                values[lm.group(1)] = re.findall(r"`([^`]+)`", lm.group(2))
        metrics[m.group(1)] = {"type": m.group(2).strip(), "labels": labels, "values": values}
    return metrics


def series_names(metric: str, mtype: str) -> list[str]:
    """The series names a metric of this type is queried by."""
    if mtype.startswith("histogram"):
        return [f"{metric}_bucket", f"{metric}_sum", f"{metric}_count"]
    return [metric]
