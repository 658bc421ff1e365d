"""Redaction of what leaves predlog: prediction documents, dead letters and their headers.

A rule names *where*, a document path or a header, and the rule list it is in says *what*:

- where: a dotted path into a prediction document (`features.email`, `features.card_*`,
  `prediction`, `error_message`; each segment a case-sensitive shell-style glob), or
  `headers.<name>` (a record header of a dead letter, case-insensitive glob);
- drop: the field or header is left out;
- hash: replaced by HMAC-SHA256(key, value) as 32 hex digits. Stable: equal values give
  equal hashes, so equality joins and group-bys on the field still work; without the key
  a hash cannot be recomputed from a guess. A string's bytes are its UTF-8, anything else
  its JSON (sorted keys), so 1 and 1.0 hash differently;
- mask: replaced by `"***"` (the field stays, its value does not).

`request_id` and the `_`-fields identify a document (its `_id` is the request id) and are
never redacted. Several rules on one field: drop, then hash, then mask.

Dead letters: their raw value could not be parsed (that is why it is a dead letter), so
no path can be found in it. With any rule configured the raw value is replaced by
``{"length": n, "redacted": "<hash of the whole value>"}`` (identical poison records keep
one hash) unless `keep_dead_letters`; headers named in the rules are redacted either way;
reason, detail and source coordinates are kept (details describe structure, not values).

Window summaries: a redacted feature's `feature_stats` (its mean/std/min/max, which show
values) are left out of what leaves predlog (`summary`); its drift score stays.

The drivers apply a `Redactor` where output leaves them, after the pipeline computed
drift and performance on the original values. Pure: no I/O.

>>> r = Redactor(drop="features.ssn", hash="features.email", mask="headers.x-user",
...              key=b"k")
>>> doc = r.document({"request_id": "r1", "features": {"ssn": 1, "email": "a@b", "age": 3}})
>>> doc["features"]["age"], "ssn" in doc["features"], len(doc["features"]["email"])
(3, False, 32)
>>> r.document({"features": {"email": "a@b"}})["features"]["email"] == doc["features"]["email"]
True
>>> r.headers({"X-User": "jo", "ce-type": "t"})
{'X-User': '***', 'ce-type': 't'}
"""

from __future__ import annotations

import hashlib
import hmac
from fnmatch import fnmatchcase
from typing import Any

import msgspec
import orjson

from stream.events import DeadLetter

MASK = "***"
HASH_HEX_DIGITS = 32
ACTIONS = ("drop", "hash", "mask")
_IDENTITY = ("request_id",)


def parse_rules(text: str) -> tuple[tuple[str, ...], ...]:
    """`"features.a, headers.x-id"` → (("features", "a"), ("headers", "x-id")).

    >>> parse_rules("features.card_*, prediction,headers.X-User-Id")
    (('features', 'card_*'), ('prediction',), ('headers', 'x-user-id'))
    >>> parse_rules("request_id")
    Traceback (most recent call last):
    ...
    ValueError: redaction rule 'request_id': request_id and _-fields identify a document
    """
    rules: list[tuple[str, ...]] = []
    for rule in filter(None, (r.strip() for r in text.split(","))):
        head, _, rest = rule.partition(".")
        if head == "headers":
            if not rest:
                raise ValueError(f"redaction rule {rule!r}: headers.<name>")
            rules.append(("headers", rest.lower()))
            continue
        segments = tuple(rule.split("."))
        if not all(segments):
            raise ValueError(f"redaction rule {rule!r}: an empty path segment")
        if segments[0] in _IDENTITY or segments[0].startswith("_"):
            raise ValueError(f"redaction rule {rule!r}: request_id and _-fields identify "
                             "a document")
        rules.append(segments)
    return tuple(rules)


class Redactor:
    """Applies drop/hash/mask rules (comma-separated strings, see `parse_rules`)."""

    def __init__(self, drop: str = "", hash: str = "", mask: str = "", *,  # noqa: A002
                 key: bytes = b"", keep_dead_letters: bool = False) -> None:
        if parse_rules(hash) and not key:
            raise ValueError("hash rules need a key")
        self._mac = hmac.new(key, digestmod=hashlib.sha256)
        self._seen: dict[tuple[str, str], bool] = {}
        self.keep_dead_letters = keep_dead_letters
        self._paths: list[tuple[str, tuple[str, ...]]] = []
        self._headers: list[tuple[str, str]] = []
        for action, text in zip(ACTIONS, (drop, hash, mask), strict=True):
            for rule in parse_rules(text):
                if rule[0] == "headers":
                    self._headers.append((action, rule[1]))
                else:
                    self._paths.append((action, rule))

    def __repr__(self) -> str:  # never the key
        return (f"Redactor(paths={[('.'.join(p), a) for a, p in self._paths]}, "
                f"headers={self._headers}, keep_dead_letters={self.keep_dead_letters})")

    @property
    def active(self) -> bool:
        """Whether any rule is configured (without one, everything passes unchanged)."""
        return bool(self._paths or self._headers)

    def digest(self, value: Any) -> str:
        """The keyed hash of one value, as `hash` rules write it."""
        data = (value.encode("utf-8", "surrogatepass") if isinstance(value, str)
                else value if isinstance(value, bytes)
                else orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
        mac = self._mac.copy()  # the key's HMAC state, prepared once
        mac.update(data)
        return mac.hexdigest()[:HASH_HEX_DIGITS]

    def _matches(self, name: str, pattern: str) -> bool:
        """`fnmatchcase`, remembered: documents repeat the same few field names."""
        key = (name, pattern)
        hit = self._seen.get(key)
        if hit is None:
            if len(self._seen) > 65536:
                self._seen.clear()
            hit = self._seen[key] = fnmatchcase(name, pattern)
        return hit

    def _replace(self, action: str, value: Any) -> Any:
        return self.digest(value) if action == "hash" else MASK

    def document(self, doc: dict[str, Any]) -> dict[str, Any]:
        """`doc` with the path rules applied (changed in place and returned)."""
        for action, segments in self._paths:
            self._apply(doc, segments, action)
        return doc

    def _apply(self, node: Any, segments: tuple[str, ...], action: str) -> None:
        if not isinstance(node, dict):
            return
        head, rest = segments[0], segments[1:]
        for name in [k for k in node if isinstance(k, str) and self._matches(k, head)]:
            if rest:
                self._apply(node[name], rest, action)
            elif action == "drop":
                del node[name]
            elif node[name] is not None:
                node[name] = self._replace(action, node[name])

    def summary(self, summary: Any) -> Any:
        """A window summary (a dict or a typed record) as it may leave predlog: the
        `feature_stats` (mean/std/min/max, which show values) of every feature a `features.`
        rule names are left out; counts, latencies, drift scores and performance stay. The
        original is not changed.

        >>> s = {"requests": 2, "feature_stats": {"age": {"max": 61.0}, "x": {"max": 1.0}}}
        >>> Redactor(mask="features.age").summary(s)
        {'requests': 2, 'feature_stats': {'x': {'max': 1.0}}}
        """
        record = not isinstance(summary, dict)  # a typed summary (a frozen msgspec Struct)
        stats = getattr(summary, "feature_stats", None) if record else summary.get(
            "feature_stats")
        patterns = [p[1] if len(p) > 1 else "*" for _, p in self._paths if p[0] == "features"]
        if not stats or not patterns:
            return summary
        kept = {n: v for n, v in stats.items()
                if not any(fnmatchcase(str(n), pattern) for pattern in patterns)}
        if len(kept) == len(stats):
            return summary
        if record:
            return msgspec.structs.replace(summary, feature_stats=kept)
        return {**summary, "feature_stats": kept}

    def headers(self, headers: dict[str, str]) -> dict[str, str]:
        """A copy of `headers` with the header rules applied."""
        if not self._headers:
            return headers
        out = {}
        for name, value in headers.items():
            action = next((a for a, pattern in self._headers
                           if fnmatchcase(name.lower(), pattern)), None)
            if action is None:
                out[name] = value
            elif action != "drop":
                out[name] = self._replace(action, value)
        return out

    def dead_letter(self, dl: DeadLetter) -> DeadLetter:
        """The dead letter as it may leave predlog (itself when no rule is configured)."""
        if not self.active:
            return dl
        raw = dl.raw if self.keep_dead_letters else orjson.dumps(
            {"length": len(dl.raw), "redacted": self.digest(bytes(dl.raw))},
            option=orjson.OPT_SORT_KEYS)
        return DeadLetter(dl.reason, dl.detail, raw, self.headers(dl.headers), dl.source)
