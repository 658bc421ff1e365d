"""MlflowPoller, MlflowCollector and MlflowExporter with a fake MlflowClient (no server;
tests/integration/test_mlflow_exporter.py runs them against the real one)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from agents.mlflow_exporter import MlflowExporter
from agents.mlflow_poll import MlflowPoller
from sinks.mlflow_collector import MlflowCollector, MlflowSnapshot


class Page(list):
    def __init__(self, items, token=None):
        super().__init__(items)
        self.token = token


def _run(exp_id, run_id, name, start, end=None, metrics=None, tags=None, status="FINISHED"):
    return SimpleNamespace(
        info=SimpleNamespace(experiment_id=exp_id, run_id=run_id, run_name=name,
                             start_time=start, end_time=end,
                             status=status if end else "RUNNING"),
        data=SimpleNamespace(metrics=metrics or {}, tags=tags or {}))


class FakeClient:
    """search_* as MlflowClient answers them, two items per page to exercise paging."""

    def __init__(self, experiments, runs, versions):
        self.experiments, self.runs, self.versions = experiments, runs, versions
        self.calls = []

    @staticmethod
    def _page(items, page_token):
        start = int(page_token or 0)
        nxt = start + 2
        return Page(items[start:nxt], str(nxt) if nxt < len(items) else None)

    def search_experiments(self, max_results, page_token=None):
        return self._page(self.experiments, page_token)

    def search_model_versions(self, max_results, page_token=None):
        return self._page(self.versions, page_token)

    def search_runs(self, experiment_ids, filter_string="", order_by=None, max_results=1000,
                    page_token=None):
        self.calls.append((tuple(experiment_ids), filter_string, max_results))
        runs = [r for r in self.runs if r.info.experiment_id in experiment_ids]
        if filter_string:
            assert filter_string == "attributes.status = 'RUNNING'"
            return self._page([r for r in runs if r.info.status == "RUNNING"], page_token)
        assert order_by == ["attributes.start_time DESC"]
        return Page(sorted(runs, key=lambda r: -r.info.start_time)[:max_results])


def _exp(exp_id, name):
    return SimpleNamespace(experiment_id=exp_id, name=name)


def _version(name, version, run_id, stage="None"):
    return SimpleNamespace(name=name, version=version, run_id=run_id, current_stage=stage)


def client():
    return FakeClient(
        experiments=[_exp("1", "iris-training"), _exp("2", "iris-production-monitoring"),
                     _exp("3", "other")],
        runs=[
            _run("1", "t1", "train-1", 1000, 61_000, {"test_accuracy": 0.9}),
            _run("1", "t2", "train-2", 2000, 12_000, {"test_accuracy": 0.95, "loss": 0.1}),
            _run("1", "t3", "train-3", 3000),  # running
            _run("2", "m1", "production-a", 10_000, 310_000,
                 {"production_accuracy": 0.7}, {"model_name": "iris", "model_version": "1.0"}),
            _run("2", "m2", "production-b", 20_000, 320_000,
                 {"production_accuracy": 0.8, "accuracy": 0.81},
                 {"model_name": "iris", "model_version": "1.0"}),
            _run("2", "m3", "production-b", 5_000, 105_000,  # same name, older: left out
                 {"production_accuracy": 0.1}, {"model_name": "iris", "model_version": "0.9"}),
            _run("3", "o1", "x", 1, 2, {"val/loss": 0.5}),
        ],
        versions=[_version("iris", "1", "t1"), _version("iris", "2", "t2", "Production"),
                  _version("iris", "3", None, "Production"), _version("zzz", "1", "o1")])


def test_poll_reads_the_seed_families():
    snap = MlflowPoller(client(), runs_per_experiment=10).poll()
    assert snap.metrics == {
        ("test_accuracy", "iris", "1", "iris-training"): 0.9,
        ("accuracy", "iris", "1", "iris-training"): 0.9,
        ("test_accuracy", "iris", "2", "iris-training"): 0.95,
        ("accuracy", "iris", "2", "iris-training"): 0.95,
        ("loss", "iris", "2", "iris-training"): 0.1,
        # newest run per model and version; its own accuracy wins over the fallback
        ("production_accuracy", "iris", "1.0", "iris-production-monitoring"): 0.8,
        ("accuracy", "iris", "1.0", "iris-production-monitoring"): 0.81,
        ("production_accuracy", "iris", "0.9", "iris-production-monitoring"): 0.1,
        ("accuracy", "iris", "0.9", "iris-production-monitoring"): 0.1,
        ("val/loss", "zzz", "1", "other"): 0.5,
    }
    assert snap.run_durations == {("iris-training", "train-1"): 60.0,
                                  ("iris-training", "train-2"): 10.0,
                                  ("iris-production-monitoring", "production-a"): 300.0,
                                  ("iris-production-monitoring", "production-b"): 300.0,
                                  ("other", "x"): 0.001}
    assert snap.active_runs == {"iris-training": 1, "iris-production-monitoring": 0, "other": 0}
    assert snap.model_versions == {("iris", "None"): 1, ("iris", "Production"): 2,
                                   ("zzz", "None"): 1}


def test_poll_reads_only_the_newest_runs_and_included_names():
    c = client()
    snap = MlflowPoller(c, runs_per_experiment=1, include="^iris").poll()
    assert {k for k in snap.run_durations} == {("iris-production-monitoring", "production-b")}
    assert {(m, v, e) for _, m, v, e in snap.metrics} == {
        ("iris", "1.0", "iris-production-monitoring")}  # train-3 (newest) has no metrics
    assert snap.active_runs == {"iris-training": 1, "iris-production-monitoring": 0}
    assert snap.model_versions == {("iris", "None"): 1, ("iris", "Production"): 2}
    assert all(max_results == 1 for _, f, max_results in c.calls if not f)


def test_run_identity_falls_back_to_the_experiment_name():
    c = FakeClient([_exp("1", "churn-training")], [_run("1", "r", "n", 1, 2, {"a": 1.0})], [])
    assert MlflowPoller(c).poll().metrics == {("a", "churn", "", "churn-training"): 1.0}


def test_bad_parameters():
    with pytest.raises(ValueError):
        MlflowPoller(client(), runs_per_experiment=0)
    with pytest.raises(ValueError):
        MlflowExporter(None, MlflowCollector(), interval_seconds=0)


class Flaky:
    def __init__(self):
        self.fail = False

    def poll(self):
        if self.fail:
            raise ConnectionError("refused")
        return MlflowPoller(client()).poll()


def test_a_failed_poll_keeps_the_last_values_and_reports_down():
    collector, poller = MlflowCollector(), Flaky()
    registry = CollectorRegistry()
    registry.register(collector)
    exporter = MlflowExporter(poller, collector, 1.0, clock=lambda: 1234.0)
    assert registry.get_sample_value("predlog_mlflow_exporter_up") == 0.0  # not polled yet
    assert exporter.poll_once()
    before = generate_latest(registry).decode()
    assert "predlog_mlflow_exporter_up 1.0" in before
    assert 'mlflow_metric_val_loss{experiment="other",model_name="zzz",version="1"} 0.5' in before
    assert registry.get_sample_value(
        "predlog_mlflow_exporter_last_success_timestamp_seconds") == 1234.0
    poller.fail = True
    assert not exporter.poll_once()
    after = generate_latest(registry).decode()
    assert after == before.replace("predlog_mlflow_exporter_up 1.0",
                                   "predlog_mlflow_exporter_up 0.0")
    poller.fail = False
    assert exporter.poll_once()
    assert registry.get_sample_value("predlog_mlflow_exporter_up") == 1.0


def test_sanitized_names_do_not_collide_into_duplicate_series():
    collector = MlflowCollector()
    collector.update(MlflowSnapshot(metrics={("a.b", "m", "1", "e"): 1.0,
                                             ("a_b", "m", "1", "e"): 3.0,
                                             ("a_b", "m", "2", "e"): 2.0}), now=0.0)
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    assert text.count("# TYPE mlflow_metric_a_b gauge") == 1
    assert 'mlflow_metric_a_b{experiment="e",model_name="m",version="2"} 2.0' in text
    assert text.count('mlflow_metric_a_b{experiment="e",model_name="m",version="1"}') == 1
