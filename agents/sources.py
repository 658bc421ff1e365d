"""Read log files line by line (plain or gzip) with their coordinates."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from stream.events import SourceCoords


def open_lines(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        yield from fh


def iter_file_lines(paths: list[Path]) -> Iterator[tuple[bytes, SourceCoords]]:
    """Yield every non-blank line of every file, with its path and 1-based line number."""
    for path in paths:
        for number, line in enumerate(open_lines(path), start=1):
            line = line.strip()
            if line:
                yield line, SourceCoords(kind="file", path=str(path), line=number)
