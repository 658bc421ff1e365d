"""In-process replay of historical logs: files → decoders → the `stream/` pipeline → files.

Runs the same `stream.pipeline.Pipeline` as the workers (dict stores, one partition)
and writes to an output directory:
- `windows.jsonl`: one window summary per model, version, node and window (and again,
  with `revision` n, when late labels change a window's performance);
- `predictions.jsonl`: the documents the Elasticsearch sink would index (`_index`, `_id`);
- `dead-letters.jsonl`: input no decoder could read (also a feedback event's truth row
  that is not a label), with reason and file/line: what a worker puts on `predlog.dlq`;
- `unmatched-labels.jsonl`: labels whose prediction never came (within the label
  horizon, or by the end of the input), one per line; a worker counts these in
  `predlog_labels_unmatched_total{source}`, the replay prints the count by source;
- `metrics.prom`: OpenMetrics with timestamps, for `promtool tsdb create-blocks-from`;
- `mlflow.db` + `mlartifacts/`: the seed's monitoring runs in a local tracking store;
- `reports/`: Evidently HTML drift reports (every n-th drift window per model);
- `overview.html`: the replay at a glance, charts per model linking to those reports
  (`sinks.overview_html`).
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import starmap
from pathlib import Path

import orjson

from agents.monitoring_setup import make_monitoring
from agents.replay_labels import LabelFeed
from agents.settings import Settings, make_redactor
from agents.sources import iter_file_lines
from stream.decode import native
from stream.decode.labels import Label
from stream.decode.lines import decode_line
from stream.document_lines import document_lines, prediction_lines
from stream.documents import index_name
from stream.events import DeadLetter, PredictionEvent
from stream.eventtime import NS
from stream.pipeline import Pipeline, StepResult
from stream.redaction import Redactor
from stream.totals import RunTotals

SAMPLE = Path(__file__).parent / "data" / "seldon-sample.ndjson"
DUMPS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


@dataclass
class ReplayOptions:
    """What only a replay has; monitoring (references, task, label horizon, Evidently
    reports every n-th drift window) comes from the settings, as in the worker."""

    labels: list[Path] = field(default_factory=list)
    mlflow: bool = True
    progress: bool = False


@dataclass
class ReplayResult:
    totals: RunTotals
    lines: int = 0
    windows: int = 0
    revisions: int = 0
    predictions: int = 0
    labels: int = 0
    late: int = 0
    orphans: int = 0
    reports: list[Path] = field(default_factory=list)
    mlflow_runs: int = 0
    dead_letters: Counter = field(default_factory=Counter)
    overview: Path | None = None
    unmatched_labels: Counter = field(default_factory=Counter)  # by label source


def dead_letter_record(dl: DeadLetter) -> dict:
    src = dl.source
    return {
        "reason": dl.reason,
        "detail": dl.detail,
        "source": {"path": src.path, "line": src.line} if src else None,
        "raw": dl.raw.decode("utf-8", "replace"),
    }


def unmatched_label_record(label: Label) -> dict:
    return {"request_id": label.request_id, "row": label.row, "label": label.value,
            "time": label.time, "source": label.source}


class ReplayWriter:
    """Writes a replay's file outputs; every record is a sorted-key JSON line."""

    def __init__(self, out_dir: Path, redactor: Redactor | None = None) -> None:
        from sinks.openmetrics_file import OpenMetricsFileSink

        # With redaction rules, predictions and dead letters are written redacted (the
        # documents through the dict path); without, byte for byte as before.
        self.redactor = redactor if redactor is not None and redactor.active else None
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir = out_dir
        self.windows = open(out_dir / "windows.jsonl", "wb")  # noqa: SIM115 - closed in close()
        self.predictions = open(out_dir / "predictions.jsonl", "wb")  # noqa: SIM115
        self.dead = open(out_dir / "dead-letters.jsonl", "wb")  # noqa: SIM115
        self.unmatched = open(out_dir / "unmatched-labels.jsonl", "wb")  # noqa: SIM115
        self.metrics = OpenMetricsFileSink()
        self.batch = 2000  # prediction documents per write
        self._prediction_lines: list[bytes] = []

    def _flush_predictions(self) -> None:
        self.predictions.write(b"".join(self._prediction_lines))
        self._prediction_lines.clear()

    def write(self, step: StepResult) -> None:
        lines = self._prediction_lines
        if self.redactor is not None:
            for pair in step.pairs:
                lines += document_lines(pair, index_name(pair), self.redactor.document)
        else:
            for pair in step.pairs:
                lines += prediction_lines(pair, index_name(pair))
        if len(lines) >= self.batch:
            self._flush_predictions()
        for _key, summary in step.summaries:
            if self.redactor is not None:
                summary = self.redactor.summary(summary)
            self.windows.write(orjson.dumps(summary.to_builtins(), option=DUMPS))
            self.metrics.add_summary(summary)

    def dead_letter(self, dl: DeadLetter) -> None:
        if self.redactor is not None:
            dl = self.redactor.dead_letter(dl)
        self.dead.write(orjson.dumps(dead_letter_record(dl), option=DUMPS))

    def unmatched_label(self, label: Label) -> None:
        self.unmatched.write(orjson.dumps(unmatched_label_record(label), option=DUMPS))

    def close(self) -> None:
        self._flush_predictions()
        for fh in (self.windows, self.predictions, self.dead, self.unmatched):
            fh.close()
        self.metrics.write(self.out_dir / "metrics.prom")


def _progress_lines(paths: list[Path], enabled: bool) -> Iterator:
    if not enabled:
        yield from iter_file_lines(paths)
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    total = sum(p.stat().st_size for p in paths)
    columns = (TextColumn("[bold]replay"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TextColumn("{task.fields[events]:,} events · {task.fields[rate]:,.0f}/s"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task("replay", total=total, events=0, rate=0.0)
        done, n = 0, 0
        for path in paths:
            size = path.stat().st_size
            for line, coords, position in iter_file_lines(paths=[path], positions=True):
                n += 1
                if n % 5000 == 0:
                    elapsed = progress.tasks[0].elapsed or 1e-9
                    progress.update(task, completed=done + position, events=n, rate=n / elapsed)
                yield line, coords
            done += size
        elapsed = progress.tasks[0].elapsed or 1e-9
        progress.update(task, completed=total, events=n, rate=n / elapsed)


def replay_files(paths: list[Path], settings: Settings, out_dir: Path | None = None,
                 options: ReplayOptions | None = None, advance_every: int = 1000,
                 events: Iterable[PredictionEvent | DeadLetter] | None = None) -> ReplayResult:
    """Replay `paths`, or, given `events` (an `agents.replay_sources` source's
    `iter_events()`), those decoded events instead of the files."""
    options = options or ReplayOptions(mlflow=False)
    native.set_enabled(settings.native)
    monitoring = make_monitoring(settings)
    pipeline = Pipeline(settings.window_seconds, settings.allowed_lateness_seconds,
                        settings.pairing_ttl_seconds, monitoring=monitoring)
    result = ReplayResult(totals=RunTotals())
    writer = ReplayWriter(out_dir, make_redactor(settings)) if out_dir is not None else None
    mlflow = reports = overview = None
    if out_dir is not None:
        from sinks.overview_html import OverviewHtmlSink

        overview = OverviewHtmlSink(out_dir / "overview.html")
    if out_dir is not None and options.mlflow:
        from sinks.mlflow_sink import MlflowSink

        mlflow = MlflowSink(f"sqlite:///{(out_dir / 'mlflow.db').resolve()}",
                            artifact_root=str((out_dir / "mlartifacts").resolve()))
    if out_dir is not None and settings.report_every:
        from sinks.evidently_report import EvidentlyReportSink

        reports = EvidentlyReportSink(out_dir / "reports")
    labels = LabelFeed(options.labels)
    for dl in labels.dead_letters:
        result.dead_letters[dl.reason] += 1
        if writer is not None:
            writer.dead_letter(dl)

    def consume(step: StepResult) -> None:
        for pair in step.pairs:
            result.totals.add_pair(pair)
        report_paths = {}
        if reports is not None:
            for key, profile, frame in monitoring.report_frames:
                name = f"{key.namespace}-{key.model}-{key.version}-{key.node}-{key.start // NS}"
                report_paths[key.id] = reports.add(name, profile, frame)
            monitoring.report_frames.clear()
            result.reports += reports.flush()
        for key, summary in step.summaries:
            result.totals.add_summary(summary)
            if summary.revision:
                result.revisions += 1
            else:
                result.windows += 1
            reference = monitoring.new_references.pop(key.id, None)
            if mlflow is not None:
                path = report_paths.get(key.id)
                mlflow.add(summary, str(path) if path else None, reference)
            if overview is not None:
                overview.add(summary, report_paths.get(key.id))
        result.late += len(step.late)
        result.orphans += len(step.orphans)
        for dl in step.dead_letters:
            result.dead_letters[dl.reason] += 1
        for label in step.unmatched_labels:
            result.unmatched_labels[label.source] += 1
        if writer is not None:
            writer.write(step)
            for dl in step.dead_letters:
                writer.dead_letter(dl)
            for label in step.unmatched_labels:
                writer.unmatched_label(label)

    def flush_mlflow() -> None:
        from sinks.mlflow_sink import rejected_window

        result.mlflow_runs += mlflow.flush()
        for summary, exc in mlflow.take_rejected():  # refused for good: a dead letter
            dl = rejected_window(summary, exc)
            result.dead_letters[dl.reason] += 1
            if writer is not None:
                writer.dead_letter(dl)

    def feed_labels(until: float) -> None:
        if labels.ready(until):
            for label in labels.until(until):
                pipeline.process_label(label)
                result.labels += 1

    # Everything alive now (imported modules, the reference profiles) lives as long
    # as the replay: keep the cyclic collector from re-scanning it on every full
    # collection, and collect less often (the replay makes few cycles; reference counting
    # frees the rest). Together they saved ~1/4 of a replay's time.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    try:
        if events is not None:
            items = events
        else:  # decode_line(line, coords) per line, without a generator frame in between
            lines = _progress_lines(paths, True) if options.progress else iter_file_lines(paths)
            items = starmap(decode_line, lines)
        # The events between two `advance` calls collect their pairs in one StepResult,
        # consumed before the advance's: the same outputs in the same order as one
        # StepResult per event (events never close windows; only `advance` does).
        pending = StepResult()
        process_into, labels_ready = pipeline.process_into, labels.ready
        for item in items:
            result.lines += 1
            if isinstance(item, DeadLetter):
                result.dead_letters[item.reason] += 1
                if writer is not None:
                    writer.dead_letter(item)
                continue
            if labels_ready(item.event_time):
                feed_labels(item.event_time)
            process_into(item, pending)
            if result.lines % advance_every == 0:
                consume(pending)
                pending = StepResult()
                consume(pipeline.advance())
                if mlflow is not None:
                    flush_mlflow()
        consume(pending)
        feed_labels(float("inf"))
        for label in labels.untimed():
            pipeline.process_label(label)
            result.labels += 1
        consume(pipeline.finish())
        if mlflow is not None:
            flush_mlflow()
        if overview is not None:
            result.overview = overview.flush()
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        labels.close()
        if writer is not None:
            writer.close()
    return result
