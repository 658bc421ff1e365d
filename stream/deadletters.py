"""Dead letters as Kafka records: the original bytes and headers, plus why and from where.

The value is the original record value (or HTTP body), untouched. The original headers
are kept; predlog adds `predlog-dlq-*` headers with the reason, a detail, and the
source coordinates, so an operator can find, fix and re-publish the record.
"""

from __future__ import annotations

from stream.events import DeadLetter

REASON = "predlog-dlq-reason"
DETAIL = "predlog-dlq-detail"
MAX_DETAIL = 1000


def dead_letter_headers(dl: DeadLetter) -> list[tuple[str, bytes]]:
    """Kafka headers for a dead letter.

    >>> from stream.events import SourceCoords
    >>> dl = DeadLetter("invalid_json", "x", b"{", {"ce-type": "t"},
    ...                 SourceCoords("kafka", "seldon", 3, 42))
    >>> dict(dead_letter_headers(dl))[REASON], dict(dead_letter_headers(dl))["predlog-dlq-offset"]
    (b'invalid_json', b'42')
    """
    headers = [(k, v.encode()) for k, v in dl.headers.items() if not k.startswith("predlog-dlq-")]
    headers.append((REASON, dl.reason.encode()))
    headers.append((DETAIL, dl.detail[:MAX_DETAIL].encode("utf-8", "replace")))
    src = dl.source
    if src is not None:
        headers.append(("predlog-dlq-source", src.kind.encode()))
        if src.kind == "kafka":
            headers += [("predlog-dlq-topic", src.topic.encode()),
                        ("predlog-dlq-partition", str(src.partition).encode()),
                        ("predlog-dlq-offset", str(src.offset).encode())]
        elif src.kind == "file":
            headers += [("predlog-dlq-path", src.path.encode()),
                        ("predlog-dlq-line", str(src.line).encode())]
        elif src.path:
            headers.append(("predlog-dlq-path", src.path.encode()))
    return headers
