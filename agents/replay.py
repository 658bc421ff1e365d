"""In-process replay of historical logs: files → decoders → the `stream/` core → outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from agents.sources import iter_file_lines
from stream.decode.lines import decode_line
from stream.events import DeadLetter
from stream.tally import EventTally

SAMPLE = Path(__file__).parent / "data" / "seldon-sample.ndjson"


@dataclass
class ReplayResult:
    tally: EventTally
    lines: int


def dead_letter_record(dl: DeadLetter) -> dict:
    src = dl.source
    return {
        "reason": dl.reason,
        "detail": dl.detail,
        "source": {"path": src.path, "line": src.line} if src else None,
        "raw": dl.raw.decode("utf-8", "replace"),
    }


def replay_files(paths: list[Path], out_dir: Path | None = None) -> ReplayResult:
    tally = EventTally()
    lines = 0
    dlq = None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        dlq = open(out_dir / "dead-letters.jsonl", "wb")  # noqa: SIM115 - closed below
    try:
        for line, coords in iter_file_lines(paths):
            lines += 1
            item = decode_line(line, coords)
            tally.update(item)
            if dlq is not None and isinstance(item, DeadLetter):
                dlq.write(orjson.dumps(dead_letter_record(item)) + b"\n")
    finally:
        if dlq is not None:
            dlq.close()
    return ReplayResult(tally=tally, lines=lines)
