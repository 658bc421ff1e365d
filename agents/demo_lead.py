"""How much earlier the CBPE estimate signals an accuracy drop than late labels can.

Definitions (one rule for both, NannyML's CBPE alert rule):
- a window *signals* when its accuracy is below the lower alert threshold CBPE learned
  from the reference (mean − 3 std of the realized accuracy over the reference's 10
  chunks; the `lower_threshold` of `performance.estimated.metrics.accuracy`), counting
  only windows that start on or after `since` (the drop to look for, e.g. after the
  reference months);
- the *estimate* of a window is known when the window closes (its end): it needs no
  label;
- the *realized* accuracy of a window is known, at time t >= its end, from the labels
  that arrived by t (at least `min_labels` of them); it signals at the first such t at
  which it is below the threshold — the earliest moment late labels could say so.

`lead_weeks` = (first realized signal − first estimate signal) / 7 days; None when
either never signals.
"""

from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

WEEK = 7 * 86400.0


@dataclass(frozen=True)
class Lead:
    threshold: float | None
    estimate_signal: str | None  # window start of the first estimate signal
    estimate_time: float | None  # when it was known (the window's end)
    realized_signal: str | None
    realized_time: float | None
    lead_weeks: float | None


def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _iso(t: float | None) -> str | None:
    return None if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M")


def latest_windows(windows_path: Path) -> dict[str, dict]:
    latest: dict[str, dict] = {}
    for line in Path(windows_path).read_bytes().splitlines():
        s = orjson.loads(line)
        latest[s["window_start"]] = s
    return dict(sorted(latest.items()))


def estimate_lead(out: Path, labels_path: Path, since: str = "2013-03-01",
                  min_labels: int = 30) -> Lead:
    """The lead of a replay's outputs in `out` (windows.jsonl, predictions.jsonl)."""
    windows = latest_windows(out / "windows.jsonl")
    est = {k: ((s.get("performance") or {}).get("estimated") or {}).get("metrics", {})
           .get("accuracy") for k, s in windows.items()}
    threshold = next((e["lower_threshold"] for e in est.values() if e), None)
    if threshold is None:
        return Lead(None, None, None, None, None, None)
    starts = sorted(windows)
    bounds = [_ts(k) for k in starts]
    ends = {k: _ts(windows[k]["window_end"]) for k in starts}
    est_signal = next((k for k in starts if k >= since and est[k]
                       and est[k]["value"] is not None and est[k]["value"] < threshold), None)
    # predicted class of each successful prediction row, by window
    predicted: dict[tuple[str, int], tuple[str, int]] = {}
    for line in (out / "predictions.jsonl").read_bytes().splitlines():
        d = orjson.loads(line)
        p = d.get("prediction")
        if d.get("error") or not isinstance(p, list) or len(p) != 2:
            continue
        i = bisect.bisect_right(bounds, _ts(d["@timestamp"])) - 1
        if i >= 0:
            predicted[(d["request_id"], int(d["row"]))] = (starts[i], int(p[1] > p[0]))
    arrivals: dict[str, list[tuple[float, int]]] = {}
    with open(labels_path, newline="") as f:
        for r in csv.DictReader(f):
            hit = predicted.get((r["request_id"], int(r["row"])))
            if hit is not None:
                arrivals.setdefault(hit[0], []).append(
                    (_ts(r["timestamp"]), int(hit[1] == int(r["label"]))))
    real_signal = real_time = None
    for k in starts:
        if k < since:
            continue
        got = sorted(arrivals.get(k, ()))
        known = [ok for t, ok in got if t <= ends[k]]  # all there when the window closes
        n, correct, when = len(known), sum(known), ends[k]
        later = iter([(t, ok) for t, ok in got if t > ends[k]])
        while True:
            if n >= min_labels and correct / n < threshold:
                if real_time is None or when < real_time:
                    real_signal, real_time = k, when
                break
            nxt = next(later, None)
            if nxt is None:
                break
            when, n, correct = nxt[0], n + 1, correct + nxt[1]
    est_time = ends[est_signal] if est_signal else None
    lead = ((real_time - est_time) / WEEK if real_time is not None and est_time is not None
            else None)
    return Lead(threshold, est_signal, est_time, real_signal, real_time, lead)


def describe(lead: Lead) -> str:
    if lead.threshold is None:
        return "CBPE: no estimates (the reference holds no labels and probabilities)"
    est = (f"estimate first below it in the window of {lead.estimate_signal[:10]} "
           f"(known {_iso(lead.estimate_time)})" if lead.estimate_signal
           else "the estimate never fell below it")
    real = (f"realized accuracy from late labels first below it in the window of "
            f"{lead.realized_signal[:10]} (known {_iso(lead.realized_time)})"
            if lead.realized_signal else "the realized accuracy never fell below it")
    tail = (f"; CBPE signalled {lead.lead_weeks:.1f} weeks earlier"
            if lead.lead_weeks is not None else "")
    return f"accuracy alert threshold {lead.threshold:.3f}: {est}; {real}{tail}"
