"""Run totals per deployment, for the table a replay ends with."""

from __future__ import annotations

from array import array
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from stream.pairs import Pair
from stream.window_summary import WindowSummary


@dataclass
class ModelTotals:
    windows: int = 0
    drifted_windows: int = 0  # windows with dataset drift or at least one drifted feature
    requests: int = 0
    predictions: int = 0
    errors: int = 0
    labels: int = 0
    correct: float = 0.0  # accuracy x labels, summed over windows
    # 8 bytes a request (a list of ints costs ~32): a replay keeps every latency (int ns)
    # for p95.
    latencies: array = field(default_factory=lambda: array("q"))

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def p95_latency(self) -> float | None:
        if not self.latencies:
            return None  # seconds, as `latency_summary` defines them
        return float(np.percentile(np.frombuffer(self.latencies, dtype=np.int64), 95) / 1e9)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labels if self.labels else None


class RunTotals:
    """Totals per (namespace, model) over a run; a puid counts once (its entry node).

    >>> from stream.events import ModelRef
    >>> t = RunTotals()
    >>> t.add_pair(Pair(ModelRef("iris", "ns", "a"), "r1", 0, 200_000_000, rows=[[1]]))
    >>> t.add_pair(Pair(ModelRef("iris", "ns", "b"), "r1", 0, 300_000_000, rows=[[1]],
    ...                 entry=False))
    >>> t.get()[("ns", "iris")].requests
    1
    """

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], ModelTotals] = defaultdict(ModelTotals)
        self._window_nodes: dict[tuple[str, str], str] = {}
        self._latest: dict[tuple[str, str], dict[str, WindowSummary]] = defaultdict(dict)

    def add_pair(self, pair: Pair) -> None:
        if not pair.entry:
            return
        t = self._models[(pair.model.namespace, pair.model.model)]
        t.requests += 1
        if pair.error_type is None:
            t.predictions += pair.n_rows or len(pair.outputs or ())
        else:
            t.errors += 1
        if pair.latency_ns is not None:
            t.latencies.append(pair.latency_ns)

    def add_summary(self, summary: WindowSummary) -> None:
        """A window summary; a revision replaces the window's earlier one."""
        key = (summary.namespace, summary.model)
        # Count each window once per deployment: the node of the first summary seen.
        node = self._window_nodes.setdefault(key, summary.node)
        if summary.node != node:
            return
        wid = f"{summary.version}|{summary.window_start}"
        self._latest[key][wid] = summary

    def get(self) -> dict[tuple[str, str], ModelTotals]:
        for key, windows in self._latest.items():
            t = self._models[key]
            t.windows, t.drifted_windows, t.labels, t.correct = len(windows), 0, 0, 0.0
            for summary in windows.values():
                drift = summary.drift
                if drift.get("dataset_drift") or any(
                        f.get("drift") for f in (drift.get("features") or {}).values()):
                    t.drifted_windows += 1
                perf = summary.performance
                if perf.get("labels") and perf.get("accuracy") is not None:
                    t.labels += perf["labels"]
                    t.correct += perf["accuracy"] * perf["labels"]
        return dict(sorted(self._models.items()))
