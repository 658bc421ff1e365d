"""The overview page's sink without a browser: which summary a window shows, its report
link, and the page's independence from the order summaries arrive in."""

from __future__ import annotations

import re

import orjson

from sinks import overview_html
from sinks.overview_html import OverviewHtmlSink


def _summary(model: str, start: str, revision: int = 0, accuracy: float | None = None,
             **extra) -> dict:
    return {"namespace": "ns", "model": model, "version": "1", "node": "n",
            "window_start": f"2026-01-01T00:{start}:00Z", "window_end":
            f"2026-01-01T00:{int(start) + 5:02d}:00Z", "requests": 10, "errors": 1,
            "latency_seconds": {"p95": 0.1}, "revision": revision,
            "performance": {"labels": 4, "accuracy": accuracy} if accuracy is not None
            else {"labels": 0}, **extra}


def _figures(page: str) -> list[dict]:
    return orjson.loads(re.search(r"var FIGURES = (.*);\n", page).group(1))


def test_a_revision_replaces_its_window_and_the_report_stays(tmp_path):
    sink = OverviewHtmlSink(tmp_path / "overview.html")
    report = tmp_path / "reports" / "w0.html"
    sink.add(_summary("m", "00", accuracy=0.5), report)
    sink.add(_summary("m", "05", accuracy=0.7))
    sink.add(_summary("m", "00", revision=1, accuracy=0.75))
    sink.add(_summary("m", "00", revision=0, accuracy=0.1))  # an older revision never wins
    (fig,) = _figures(sink.render())
    realized = next(t for t in fig["figure"]["data"] if t.get("name") == "realized accuracy")
    assert realized["y"] == [0.75, 0.7]
    assert fig["links"] == ["reports/w0.html", None]
    assert 'href="reports/w0.html"' in sink.render()


def test_the_page_does_not_depend_on_arrival_order(tmp_path):
    drift = {"drift": {"dataset_drift": True, "drift_share": 0.5, "number_of_drifted_columns": 1,
                       "features": {"b": {"stattest": "ks", "score": 0.01, "threshold": 0.05,
                                          "drift": True},
                                    "a": {"stattest": "ks", "score": 0.4, "threshold": 0.05,
                                          "drift": False}}}}
    summaries = [_summary("m2", "00", **drift), _summary("m1", "05"), _summary("m1", "00"),
                 _summary("m2", "05", accuracy=0.9)]
    pages = []
    for order in (summaries, summaries[::-1]):
        sink = OverviewHtmlSink(tmp_path / "overview.html")
        for s in order:
            sink.add(s)
        pages.append(sink.render())
    assert pages[0] == pages[1]
    m1, m2 = _figures(pages[0])
    heat = next(t for t in m2["figure"]["data"] if t["type"] == "heatmap")
    assert heat["y"] == ["a", "b"] and heat["z"] == [[0, None], [1, None]]
    assert not any(t["type"] == "heatmap" for t in m1["figure"]["data"])
    assert "m1" in pages[0] and "drift not computed" in pages[0]


def test_an_empty_replay_still_writes_a_page(tmp_path):
    path = OverviewHtmlSink(tmp_path / "overview.html").flush()
    assert "no windows" in path.read_text()


def test_without_plotly_no_page_is_written(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(overview_html, "find_spec", lambda name: None)
    sink = OverviewHtmlSink(tmp_path / "overview.html")
    sink.add(_summary("m", "00"))
    assert sink.flush() is None and not (tmp_path / "overview.html").exists()
    assert "plotly" in caplog.text
