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

from agents.replay import SAMPLE, replay_files
from stream.eventtime import format_utc

app = typer.Typer(help="predlog: streaming prediction-log processor.", no_args_is_help=True)
console = Console(width=max(Console().width, 110))

STACK_SCRIPT = Path(__file__).resolve().parents[1] / "deploy" / "stack" / "stack.sh"


@app.command()
def replay(
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(help="NDJSON log files (.gz too). Default: the bundled sample."),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Directory for outputs (dead-letters.jsonl).")
    ] = None,
) -> None:
    """Replay historical prediction logs in-process (no servers) and summarize per model."""
    paths = list(inputs or [SAMPLE])
    for p in paths:
        if not p.is_file():
            raise typer.BadParameter(f"no such file: {p}", param_hint="INPUTS")
    result = replay_files(paths, out)
    table = Table(title=f"predlog replay: {result.lines} log lines from {len(paths)} file(s)")
    table.add_column("namespace/model", no_wrap=True)
    for col in ("requests", "rows", "responses", "errors", "feedback"):
        table.add_column(col, justify="right")
    table.add_column("events from – to (UTC)", no_wrap=True)
    for (ns, model), c in result.tally.get().items():
        span = f"{format_utc(c.first_time)[:16]} – {format_utc(c.last_time)[11:16]}"
        table.add_row(f"{ns}/{model}", str(c.requests), str(c.rows), str(c.responses),
                      str(c.errors), str(c.feedback), span)
    console.print(table)
    dls = result.tally.dead_letters
    if dls:
        reasons = ", ".join(f"{r}: {n}" for r, n in sorted(dls.items()))
        where = f" (written to {out / 'dead-letters.jsonl'})" if out else ""
        console.print(f"dead letters: {sum(dls.values())} ({reasons}){where}")


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
