"""In-process replay of historical logs: files → decoders → the `stream/` pipeline → files.

Runs the same `stream.pipeline.Pipeline` as the workers, with dict stores and one
partition, and writes to an output directory:
- `windows.jsonl`: one window summary per model, version, node and window;
- `predictions.jsonl`: the documents the Elasticsearch sink would index (`_index`, `_id`);
- `dead-letters.jsonl`: lines no decoder could read, with reason and file/line.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from agents.settings import Settings
from agents.sources import iter_file_lines
from stream.decode.lines import decode_line
from stream.documents import index_name, prediction_documents
from stream.events import DeadLetter
from stream.pipeline import Pipeline, StepResult
from stream.totals import RunTotals

SAMPLE = Path(__file__).parent / "data" / "seldon-sample.ndjson"
DUMPS = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


@dataclass
class ReplayResult:
    totals: RunTotals
    lines: int = 0
    windows: int = 0
    predictions: int = 0
    late: int = 0
    orphans: int = 0
    dead_letters: Counter = field(default_factory=Counter)


def dead_letter_record(dl: DeadLetter) -> dict:
    src = dl.source
    return {
        "reason": dl.reason,
        "detail": dl.detail,
        "source": {"path": src.path, "line": src.line} if src else None,
        "raw": dl.raw.decode("utf-8", "replace"),
    }


class ReplayWriter:
    """Writes a replay's outputs; every record is a sorted-key JSON line (deterministic)."""

    def __init__(self, out_dir: Path) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.windows = open(out_dir / "windows.jsonl", "wb")  # noqa: SIM115 - closed in close()
        self.predictions = open(out_dir / "predictions.jsonl", "wb")  # noqa: SIM115
        self.dead = open(out_dir / "dead-letters.jsonl", "wb")  # noqa: SIM115

    def write(self, step: StepResult) -> None:
        for pair in step.pairs:
            index = index_name(pair)
            for doc_id, doc in prediction_documents(pair):
                self.predictions.write(orjson.dumps({"_index": index, "_id": doc_id, **doc},
                                                    option=DUMPS))
        for _key, summary in step.summaries:
            self.windows.write(orjson.dumps(summary, option=DUMPS))

    def dead_letter(self, dl: DeadLetter) -> None:
        self.dead.write(orjson.dumps(dead_letter_record(dl), option=DUMPS))

    def close(self) -> None:
        for fh in (self.windows, self.predictions, self.dead):
            fh.close()


def replay_files(paths: list[Path], settings: Settings, out_dir: Path | None = None,
                 advance_every: int = 1000) -> ReplayResult:
    pipeline = Pipeline(settings.window_seconds, settings.allowed_lateness_seconds,
                        settings.pairing_ttl_seconds)
    result = ReplayResult(totals=RunTotals())
    writer = ReplayWriter(out_dir) if out_dir is not None else None

    def consume(step: StepResult) -> None:
        for pair in step.pairs:
            result.totals.add_pair(pair)
        for _key, summary in step.summaries:
            result.totals.add_summary(summary)
        result.windows += len(step.summaries)
        result.late += len(step.late)
        result.orphans += len(step.orphans)
        if writer is not None:
            writer.write(step)

    try:
        for line, coords in iter_file_lines(paths):
            result.lines += 1
            item = decode_line(line, coords)
            if isinstance(item, DeadLetter):
                result.dead_letters[item.reason] += 1
                if writer is not None:
                    writer.dead_letter(item)
                continue
            consume(pipeline.process(item))
            if result.lines % advance_every == 0:
                consume(pipeline.advance())
        consume(pipeline.finish())
    finally:
        if writer is not None:
            writer.close()
    return result
