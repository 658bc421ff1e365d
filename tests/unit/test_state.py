"""Typed, versioned state records (stream/state.py) in the stores that keep them.

Every store a worker recovers from a changelog holds JSON-decoded lists: version-2
records (tagged) or, written by the release before them, untagged version-1 lists with
the same fields. A stage started on either must behave exactly as the stage that wrote
them; a record of a newer version must be refused with an error that says what to do.
"""

from __future__ import annotations

import msgspec
import orjson
import pytest

from stream.events import EventKind, ModelRef, PredictionEvent
from stream.eventtime import NS
from stream.labels import LabelJoiner
from stream.pairing import RequestPairer
from stream.pairs import OrphanResponse, Pair, decode_outcomes, encode_outcome, encode_records
from stream.state import (
    BootstrapState,
    DoneState,
    JoinedState,
    PairState,
    RequestState,
    StateVersionError,
    encode,
    load,
    upgrade,
)
from stream.windows import WindowBook

M = ModelRef("iris", "ns", "clf", "p", "v1")


def v1_list(value: list) -> list:
    """The version-1 list of a tagged state's JSON: untagged, without the optional trailing
    fields added since (an orphan's mark was [0])."""
    from stream.state import KINDS

    cls = next(k for k in KINDS if k.__struct_config__.tag == value[0])
    return value[1:1 + len(cls.__struct_fields__) - len(cls.__struct_defaults__)] or [0]


def recovered(store: dict, layout: str) -> dict:
    """What a changelog recovery gives: JSON of each value, decoded; v1 drops the tag."""
    out = {k: orjson.loads(encode(v)) for k, v in store.items()}
    if layout == "v1":
        out = {k: v1_list(v) if isinstance(v, list) and isinstance(v[0], str) else v
               for k, v in out.items()}
    return out


def req(rid, t, rows=((1.5, 2),)):
    return PredictionEvent(EventKind.REQUEST, rid, M, t, feature_names=("a", "b"),
                           rows=[list(r) for r in rows])


def resp(rid, t, outputs=((0.25, 0.75),)):
    return PredictionEvent(EventKind.RESPONSE, rid, M, t, output_names=("p0", "p1"),
                           outputs=[list(o) for o in outputs])


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_pairer_restarted_on_recovered_state_pairs_and_expires_the_same(layout):
    ttl = 10 * NS
    live = RequestPairer(ttl)
    store: dict = {}
    first = RequestPairer(ttl, store)
    for p in (live, first):
        p.update(req("r1", 1 * NS))  # waits for its response
        p.update(resp("r2", 2 * NS))  # waits for its request
        assert len(p.update(req("r3", 3 * NS))) == 0
        assert len(p.update(resp("r3", 3 * NS + 40_000))) == 1  # done marker stays
    assert {type(v) for v in store.values()} >= {RequestState, DoneState}
    again = RequestPairer(ttl, recovered(store, layout))
    for p in (live, again):
        (pair,) = p.update(resp("r1", 1 * NS + 12_345))
        assert (pair.latency_ns, pair.rows, pair.feature_names) == (12_345, [[1.5, 2]],
                                                                    ("a", "b"))
        assert p.update(resp("r3", 5 * NS)) == []  # a duplicate, still known
        assert p.update(req("r3", 5 * NS)) == []
        (orphan,) = p.expire(100 * NS)
        assert (type(orphan), orphan.request_id, orphan.response_time) == (
            OrphanResponse, "r2", 2 * NS)
        assert len(p) == 0


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_window_book_restarted_on_recovered_state_gives_the_same_window(layout):
    store: dict = {}
    book = WindowBook(60 * NS, 0, store)
    pairs = [Pair(M, f"r{i}", i * NS, i * NS + 1000 * i, ("a",), [[i]], ("y",), [[i % 2]])
             for i in range(3)]
    pairs.append(Pair(M, "r9", 9 * NS, None, ("a",), [[9]], error_type="no_response",
                      error="no response within the TTL", entry=False))
    for p in pairs:
        book.add(p)
    book.add_orphan(book.key_of(pairs[0]), "o1")
    assert {type(v).__name__ for v in store.values()} == {"PairState", "OrphanMark"}
    again = WindowBook(60 * NS, 0, recovered(store, layout))
    assert again.add(pairs[1]) == "duplicate"
    ((_, got, orphans),) = again.take_ready(60 * NS)
    assert (got, orphans) == (pairs, 1)


@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_label_joiner_restarted_on_recovered_state_joins_the_same(layout):
    from stream.decode.labels import Label
    from stream.labels import Prediction

    store: dict = {}
    j = LabelJoiner(3600, store)
    j.update(Prediction("r1", 0, M, 10 * NS, "w0", [0.2, 0.8], ("p0", "p1")))
    j.update(Label("r2", 0, 1, None, "file"))  # no time: anchored at the next expiry
    again = LabelJoiner(3600, recovered(store, layout))
    (joined,) = again.update(Label("r1", 0, 1, 70 * NS, "topic"))
    assert (joined.prediction.output_names, joined.delay_ns) == (("p0", "p1"), 60 * NS)
    assert again.expire(100 * NS) == []
    assert [x.request_id for x in again.expire(100 * NS + 3601 * NS)] == ["r2"]


def test_pairs_topic_reads_records_of_both_versions_in_one_message():
    pair = Pair(M, "r1", 2**62 + 1, 2**62 + 7, ("a",), [[1]], ("y",), [[0]])
    v2 = encode_outcome(pair, 3, 2**62)
    v1 = orjson.dumps([1, None, "p", orjson.loads(encode(pair.to_state()))[1:]])
    ((p2, s2, w2), (p1, s1, w1)) = decode_outcomes(b"[" + v2 + b"," + v1 + b"]")
    assert (p2, s2, w2) == (pair, 3, 2**62)
    assert (p1, s1, w1) == (pair, 1, float("-inf"))
    (msg,) = encode_records([v2, v1])
    assert [o for o, _, _ in decode_outcomes(msg)] == [pair, pair]


def test_a_newer_version_is_refused_with_the_way_out():
    with pytest.raises(StateVersionError, match=r"'pair/3' was written by a newer predlog.*"
                                                r"Upgrading and state"):
        load(["pair/3", "iris"], PairState)
    with pytest.raises(StateVersionError, match="newer predlog"):
        decode_outcomes(b'["pairs-record/3",0,null,null]')
    store = {"req|ns|iris|r1|clf": ["request/9", 1]}
    with pytest.raises(StateVersionError, match="'request/9'"):
        RequestPairer(NS, store)


def test_a_list_that_fits_no_layout_is_refused_not_misread():
    with pytest.raises(StateVersionError, match="before int-nanosecond time"):
        load([1_767_225_600.25], DoneState)  # float seconds: the release before int ns
    with pytest.raises(StateVersionError, match="unreadable state for JoinedState"):
        load([1, 2, 3], JoinedState)
    with pytest.raises(StateVersionError, match="expected a state"):
        upgrade({"done|x": {"time": 1}}, lambda key: DoneState)


def test_every_record_round_trips_through_json():
    from stream.state import KINDS

    for cls in KINDS:
        fields = cls.__struct_fields__
        values = {f: (7 if f in ("time", "row", "request_time", "anchor", "response_time",
                                "label_time", "start", "end") else
                      {"a": [1.5, None, "x"]} if f == "columns" else
                      [0.25, None, "y"] if f == "predictions" else
                      True if f in ("complete", "announced") else
                      (("a", "b"),) if f == "segment" else
                      ("a", "b") if f.endswith("_names") else
                      True if f in ("entry", "labelled", "joined") else
                      3 if cls is BootstrapState and f == "rows" else
                      [[1.5, 2**53 + 1]] if f in ("rows", "outputs", "output") else "x")
                  for f in fields}
        value = cls(**values)
        assert load(orjson.loads(encode(value))) == value
        # version 1: without the optional fields added since
        defaults = dict(zip(fields[len(fields) - len(cls.__struct_defaults__):],
                            cls.__struct_defaults__, strict=True))
        assert load(v1_list(orjson.loads(encode(value))), cls) == msgspec.structs.replace(
            value, **defaults)
