"""Read log files line by line (plain or gzip) with their coordinates."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from stream.events import SourceCoords


def open_lines(path: Path) -> Iterator[tuple[bytes, int]]:
    """Lines of a file with the position reached in the file on disk (compressed bytes)."""
    with open(path, "rb") as raw:
        fh = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
        for line in fh:
            yield line, raw.tell()


def _plain_lines(path: Path) -> Iterator[bytes]:
    """`open_lines` without the positions."""
    with open(path, "rb") as raw:
        fh = gzip.GzipFile(fileobj=raw) if path.suffix == ".gz" else raw
        yield from fh


def iter_file_lines(paths: list[Path], positions: bool = False) -> Iterator[tuple]:
    """Yield every non-blank line of every file, with its path and 1-based line number
    (and, with `positions`, how far into the file on disk the reader is)."""
    for path in paths:
        name = str(path)
        if not positions:
            for number, line in enumerate(_plain_lines(path), start=1):
                line = line.strip()
                if line:
                    # positional: kind, topic, partition, offset, path, line
                    yield line, SourceCoords("file", "", -1, -1, name, number)
            continue
        for number, (line, pos) in enumerate(open_lines(path), start=1):
            line = line.strip()
            if line:
                coords = SourceCoords(kind="file", path=name, line=number)
                yield line, coords, pos
