"""Evidently is an optional extra (`predlog[reports]`), left out of the container image.

Without it (simulated by `sys.modules["evidently"] = None`, which makes both
`importlib.util.find_spec` and `import evidently` fail as for an absent package) a report
request fails with a message naming the package: the replay refuses `--reports` before
doing any work; the worker logs it and runs on without reports.
"""

from __future__ import annotations

import logging
import sys

import pytest
from typer.testing import CliRunner

from agents.cli import app
from agents.monitoring_setup import make_monitoring
from agents.settings import load_settings
from sinks.evidently_report import evidently_missing


@pytest.fixture
def no_evidently(monkeypatch):
    monkeypatch.setitem(sys.modules, "evidently", None)


def test_evidently_installed_here_is_not_missing():
    assert evidently_missing() is None


def test_missing_evidently_is_named(no_evidently):
    message = evidently_missing()
    assert "'evidently'" in message and "predlog[reports]" in message


def test_replay_refuses_reports_without_evidently(no_evidently, tmp_path):
    result = CliRunner().invoke(app, ["replay", "--reports", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "evidently" in result.output
    assert not any(tmp_path.iterdir())  # refused before replaying anything


def test_replay_without_reports_needs_no_evidently(no_evidently, tmp_path):
    result = CliRunner().invoke(app, ["replay", "--no-mlflow", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "358 log lines" in result.output


def test_worker_runs_on_without_reports(no_evidently, caplog):
    with caplog.at_level(logging.ERROR, logger="predlog.monitoring"):
        monitoring = make_monitoring(load_settings(report_every=3))
    assert monitoring.report_every == 0
    assert "'evidently'" in caplog.text and "PREDLOG_REPORT_EVERY=3 ignored" in caplog.text


def test_worker_keeps_reports_with_evidently():
    assert make_monitoring(load_settings(report_every=3)).report_every == 3
