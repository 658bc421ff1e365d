"""The replay's overview.html, opened in headless Chromium (Debian's `chromium` package,
installed by deploy/tools/ensure-tools.sh): the charts render, nothing logs to the
console, nothing is fetched from the network, and each report link works.

The input (tests/fixtures/drifting_logs.py) has drift from its 7th window, feedback
labels and a second model without a reference. No servers are needed.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import orjson
import pytest

from agents.replay import ReplayOptions, replay_files
from agents.settings import Settings
from sinks.overview_html import OverviewHtmlSink
from tests.fixtures import drifting_logs

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync",
                  # every host name fails to resolve: a page that fetches anything breaks
                  "--host-resolver-rules=MAP * ~NOTFOUND",
                  "--enable-logging=stderr", "--v=0", "--virtual-time-budget=10000"]


def _replay(tmp: Path) -> tuple[Path, object]:
    logs, reference = drifting_logs.write(tmp / "in")
    settings = Settings(window_seconds=drifting_logs.WINDOW, references=f"fraud-scorer={reference}",
                        task="classification", report_every=3)
    out = tmp / "out"
    return out, replay_files([logs], settings, out, ReplayOptions(mlflow=False))


@pytest.fixture(scope="module")
def replayed(tmp_path_factory):
    return _replay(tmp_path_factory.mktemp("overview"))


def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail("chromium not found: run deploy/tools/ensure-tools.sh (as root)")
    return path


def open_in_chromium(page: Path, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    profile.mkdir(parents=True)
    return subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args,
                           page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=180, check=True)


def console_lines(stderr: str) -> list[str]:
    """What the page logged (console.* calls and uncaught errors), whatever the level."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def _html(page: str) -> str:
    """The page without its inlined plotly.js (whose code mentions URLs it never loads)."""
    start = page.index("<script>")
    return page[:start] + page[page.index("</script>", start):]


def test_replay_writes_a_self_contained_deterministic_page(replayed, tmp_path):
    out, result = replayed
    page = out / "overview.html"
    assert result.overview == page
    text = page.read_text()
    assert text.count("* plotly.js v") == 1  # the library inlined, once
    # nothing loaded from elsewhere (Chromium's runs below also resolve no host name)
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", _html(text))
    assert 4_000_000 < len(text) < 6_000_000  # plotly.min.js is ~4.6 MB of it
    again, _ = _replay(tmp_path)
    assert (again / "overview.html").read_bytes() == page.read_bytes()


def test_each_report_link_opens_its_window_report(replayed):
    out, result = replayed
    text = (out / "overview.html").read_text()
    links = re.findall(r'<a href="([^"#]+)" target="_blank">', _html(text))
    assert len(result.reports) == 4
    assert sorted((out / link).resolve() for link in links) == sorted(
        p.resolve() for p in result.reports)
    figures = orjson.loads(re.search(r"var FIGURES = (.*);\n", text).group(1))
    assert [f["id"] for f in figures] == ["model-1-figure", "model-2-figure"]  # churn, fraud
    assert sum(map(bool, figures[1]["links"])) == 4 and not any(figures[0]["links"])


def _svg_counts(dom: str, figure_id: str) -> dict[str, int]:
    start = dom.index(f'id="{figure_id}"')
    end = dom.find('id="model-', start + 20)
    part = dom[start:end if end > 0 else len(dom)]
    return {"svg": part.count('class="main-svg"'), "bars": part.count('class="point"'),
            "lines": len(re.findall(r'class="js-line"[^>]* d="M', part)),
            "heatmap": part.count('class="hm"')}


def test_the_page_renders_in_chromium(replayed, tmp_path):
    from PIL import Image, ImageStat

    out, _ = replayed
    page = out / "overview.html"
    dom = open_in_chromium(page, tmp_path, "--dump-dom")
    assert console_lines(dom.stderr) == []
    churn, fraud = _svg_counts(dom.stdout, "model-1-figure"), _svg_counts(dom.stdout,
                                                                          "model-2-figure")
    # churn: requests, latency, error rate (no reference, no labels: no drift, no accuracy)
    assert churn["svg"] >= 1 and churn["bars"] == 4 and churn["lines"] == 2
    assert churn["heatmap"] == 0
    # fraud-scorer: 12 request bars and 12 drift share bars, 3 lines, the heatmap
    assert fraud["bars"] >= 24 and fraud["lines"] >= 3 and fraud["heatmap"] == 1
    shot = tmp_path / "overview.png"
    run = open_in_chromium(page, tmp_path, "--window-size=1400,2000", f"--screenshot={shot}")
    assert console_lines(run.stderr) == []
    image = Image.open(shot).convert("RGB")
    # the fraud-scorer's drift share bars and heatmap cells are drawn in the drift red
    red = int((np.asarray(image) == (214, 39, 40)).all(axis=-1).sum())
    assert red > 5_000, red
    assert max(ImageStat.Stat(image).stddev) > 30  # not a blank page


def test_an_estimated_performance_series_is_drawn_when_summaries_carry_one(replayed,
                                                                            tmp_path):
    """The hook for the label-free estimate (`performance.estimated`): a band and a line."""
    out, _ = replayed
    sink = OverviewHtmlSink(tmp_path / "overview.html")
    for line in (out / "windows.jsonl").read_bytes().splitlines():
        s = orjson.loads(line)
        if s["model"] == "fraud-scorer":
            s = copy.deepcopy(s)
            s["performance"]["estimated"] = {"accuracy": {
                "value": 0.85, "lower": 0.78, "upper": 0.92, "alert": False}}
        sink.add(s)
    page = sink.flush()
    figures = orjson.loads(re.search(r"var FIGURES = (.*);\n", page.read_text()).group(1))
    names = [t.get("name") for t in figures[1]["figure"]["data"]]
    assert "estimated accuracy" in names and "realized accuracy" in names
    dom = open_in_chromium(page, tmp_path, "--dump-dom")
    assert console_lines(dom.stderr) == []
    assert 'class="js-fill"' in dom.stdout  # the confidence band
