"""The replay's fast paths give exactly what the general paths give.

- `stream.eventtime.parse_rfc3339`'s cache of days seen before;
- `stream.document_lines.prediction_lines` against `prediction_documents` + orjson;
- `Pipeline.process_into` (one StepResult for many events) against `Pipeline.process`.
"""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream import eventtime
from stream.document_lines import document_lines, prediction_lines
from stream.documents import index_name, prediction_documents
from stream.events import EventKind, ModelRef, PredictionEvent
from stream.eventtime import seconds_to_ns as ns
from stream.pairs import NO_RESPONSE, Pair
from stream.pipeline import Pipeline, StepResult

LINE = orjson.OPT_SORT_KEYS | orjson.OPT_APPEND_NEWLINE


def _uncached(text: str):
    eventtime._DAYS.clear()
    try:
        return eventtime.parse_rfc3339(text)
    except ValueError as exc:
        return ("error", str(exc))


def _cached(text: str):
    try:
        return eventtime.parse_rfc3339(text)
    except ValueError as exc:
        return ("error", str(exc))


TIMES = ["2020-11-06T09:35:09.171644169Z", "2020-11-06T09:35:59Z", "2020-11-06T09:35:60.5z",
         "2020-11-06T09:35:61Z", "2020-11-06T09:35:0xZ", "2020-11-06T09:35:09.Z",
         "2020-11-06T09:35:09.1a2Z", "2020-11-06T09:35:09.\u0663Z", "2020-11-06T09:35:\u06639Z",
         "2020-11-06T09:35:09+01:00", "2020-11-06 09:35:09Z", "2020-11-06T09:35:09.000001Z",
         "2020-11-06T09:35:0", "2020-11-06T09:35:09.1234567890123Z", "2020-11-06T09:35:09",
         "2020-11-06T24:35:09Z", "2020-11-06T09:60:09Z", "2020-11-06T09-35:09Z",
         "2020-11-06T0a:35:09Z", "2020-11-06t09:35:09Z", "2020-11-06T09:35|09Z"]


@pytest.mark.parametrize("text", TIMES)
def test_cached_days_parse_like_the_first_time(text):
    first = _uncached(text)
    eventtime.parse_rfc3339("2020-11-06T09:35:00Z")  # the day is now cached
    assert _cached(text) == first


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 4_000_000_000), st.integers(0, 999_999_999), st.integers(0, 9),
       st.sampled_from(["Z", "z", "+00:00"]), st.sampled_from(["", ".", "x"]))
def test_cached_and_uncached_parses_agree(epoch, nanos, digits, zone, odd):
    from datetime import UTC, datetime

    stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    frac = f".{nanos:09d}"[:digits + 1] if digits else ""
    text = stamp + frac + odd + zone
    first = _uncached(text)
    assert _cached(text) == first  # the second parse hits the cache
    assert _cached(text[:17] + "59" + text[19:]) == _uncached(text[:17] + "59" + text[19:])


M = ModelRef("iris", "ns", "clf", "pred", "v1")
PAIRS = [
    Pair(M, "r1", 10.0, 10.5, ("a", "b"), [[1, 2.5]], ("p",), [[0.1]]),
    Pair(M, "r2", 1604655309.171644, 1604655309.2, ("a", "b"), [[1, 2], [3, 4], [5, 6]],
         ("p", "q"), [[0.1, 0.9], [0.5, 0.5]]),
    Pair(M, "r3", 20.0, None, None, [[1, "x", None]], error_type=NO_RESPONSE,
         error="no response within the TTL", entry=False),
    Pair(M, "r4", 30.0, 30.25, ("b", "a", "b"), [[1, 2, 3]], (), [[{"z": 1, "a": [2]}]],
         error_type="http_500", error="boom \u2603"),
    Pair(M, "r5", 40.0, 41.0, None, None, None, [[1.5]]),
    Pair(M, "r6", 40.0, 41.0, ("a",), [[1], [2, 3], []], None, [[]]),
    Pair(ModelRef("Iris", "", "", "", ""), "r\"7|x", 86399.9999999, 86400.5, ("a",),
         [[float("nan")]], None, [None]),
    Pair(M, "r8", 50.0, 50.5, (1, 2), [[1, 2]], None, [[1]]),  # non-str feature names
    Pair(M, "r9", 50.0, 50.5, None, [[1 << 70]], None, [[1]]),  # orjson refuses the int
    Pair(M, "r10", 50.0, 50.5, None, [[1]], None, [5]),  # an output row that is no list
    # equal to cached keys, rendered differently (1 == True, ("1",) != (1,))
    Pair(M, "r11", 10.0, 10.5, ("a", "b"), [[1, 2.5]], ("p",), [[0.1]], entry=1),
    Pair(ModelRef("iris", "ns", "clf", "pred", 1), "r12", 10.0, 10.5, None, [[1]], (True,),
         [[0.1]]),
    Pair(ModelRef("iris", "ns", "clf", "pred", True), "r13", 10.0, 10.5, None, [[1]], (1,),
         [[0.1]]),
]
for _p in PAIRS:  # the times above are seconds; pairs carry int ns
    _p.request_time = ns(_p.request_time)
    _p.response_time = None if _p.response_time is None else ns(_p.response_time)


@pytest.mark.parametrize("pair", PAIRS + PAIRS[::-1], ids=[p.request_id for p in PAIRS * 2])
def test_prediction_lines_equal_the_documents(pair):
    index = index_name(pair)
    try:
        expected = document_lines(pair, index)
    except Exception as exc:  # the fast path must fail the same way
        with pytest.raises(type(exc)):
            prediction_lines(pair, index)
        return
    assert prediction_lines(pair, index) == expected
    assert expected == [orjson.dumps({**doc, "_index": index, "_id": i}, option=LINE)
                        for i, doc in prediction_documents(pair)]


def _events():
    out = []
    for i in range(60):
        m = ModelRef("iris", "ns", "clf" if i % 7 else "other", "pred")
        t = ns(10.0 + i * 3.0)
        out.append(PredictionEvent(EventKind.REQUEST, f"r{i}", m, t, rows=[[i, i * 0.5]]))
        if i % 5:
            out.append(PredictionEvent(EventKind.RESPONSE, f"r{i}", m, t + ns(0.25),
                                       outputs=[[0.3, 0.7]]))
        if i % 11 == 0:  # a duplicate and an orphan
            out.append(PredictionEvent(EventKind.REQUEST, f"r{i}", m, t, rows=[[1, 2]]))
            out.append(PredictionEvent(EventKind.RESPONSE, f"o{i}", m, t, outputs=[[1]]))
    return out


def test_process_into_collects_what_process_returns():
    a = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5)
    b = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5)
    one, many = StepResult(), StepResult()
    for n, ev in enumerate(_events()):
        one.extend(a.process(ev))
        b.process_into(ev, many)
        if n % 17 == 0:
            one.extend(a.advance())
            many.extend(b.advance())
    one.extend(a.finish())
    many.extend(b.finish())
    assert one == many
    assert len(one.pairs) > 50 and one.orphans and one.summaries



_CELLS = st.one_of(st.floats(-1e6, 1e6), st.integers(-1000, 1000), st.just(-0.0),
                   st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.none(),
                   st.text(max_size=2), st.integers(-(2 ** 60), 2 ** 60))


@settings(max_examples=400, deadline=None)
@given(st.integers(1, 5).flatmap(lambda w: st.lists(
    st.lists(st.one_of(st.floats(-1e6, 1e6), st.integers(-50, 50)) if w % 2 else _CELLS,
             min_size=w, max_size=w),
    max_size=45)), st.integers(1, 12))
def test_numeric_block_means_equal_the_definition(rows, block):
    from stream.monitoring import _block_means_by_cell, _block_means_by_column

    fast = _block_means_by_column(rows, block)
    assert fast is None or not rows or repr(fast) == repr(_block_means_by_cell(rows, block))
    if rows:
        assert fast is not None


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(_CELLS, max_size=4), max_size=25), st.integers(1, 12))
def test_block_means_with_odd_cells_equal_the_definition(rows, block):
    from stream.monitoring import _block_means_by_cell, block_means

    assert repr(block_means(rows, block)) == repr(_block_means_by_cell(rows, block))


def _feed_by_row(w, feature_names, rows):
    """EarlyWarnings.update as it was: names per row, every value through `_feed`."""
    for row in rows:
        names = feature_names or w.features or [f"f{i}" for i in range(len(row))]
        for name, value in zip(names, row, strict=False):
            if (w._wanted is None or name in w._wanted) and not isinstance(value, str):
                w._feed(str(name), value)


def _state(det):
    attrs = ("width", "estimation", "variance", "total", "n_detections", "drift_detected")
    plain = {k: v for k, v in vars(det).items() if isinstance(v, int | float | bool | str)}
    return repr(([getattr(det, a, None) for a in attrs], plain))


@pytest.mark.parametrize("detector", ["adwin", "pagehinkley"])
@pytest.mark.parametrize("names", [None, ["b", "a", "x", "a"], ["a"]])
def test_early_warnings_fixed_columns_equal_feeding_by_row(detector, names):
    import random

    from stream.drift.early import EarlyWarnings

    rng = random.Random(3)
    fast = EarlyWarnings(detector, features=["a", "b"])
    slow = EarlyWarnings(detector, features=["a", "b"])
    for step in range(40):
        shift = 4.0 if step > 25 else 0.0
        rows = [[rng.gauss(shift, 1), rng.choice([rng.gauss(0, 1), 3, None, "s", True,
                                                  float("inf"), float("nan")]), rng.random()]
                [:rng.choice([1, 2, 3, 3, 3])] for _ in range(rng.randint(0, 30))]
        fast.update(names, rows)
        _feed_by_row(slow, names, rows)
        assert fast.get() == slow.get()
        assert list(fast._detectors) == list(slow._detectors)
        for name, det in slow._detectors.items():
            assert _state(fast._detectors[name]) == _state(det)
    assert any(fast.get().values())


@settings(max_examples=3000, deadline=None)
@given(st.one_of(st.integers(0, 253402300000 * 10**9), st.integers(0, 4_000_000_000).map(ns),
                 st.integers(0, 4_000_000_000).flatmap(
                     lambda s: st.integers(0, 999_999_999).map(lambda k: s * 10**9 + k))),
       st.integers(0, 2 * 10**9))
def test_format_utc_equals_datetime(epoch, later):
    assert eventtime.format_utc(epoch) == eventtime.format_utc_datetime(epoch)
    assert eventtime.format_utc(epoch + later) == eventtime.format_utc_datetime(epoch + later)


@pytest.mark.parametrize("epoch", [0, 500_000_000, 100, 499, 500, 999, 1000,
                                   86399_999_999_500, 86399_999_999_999, 1604655309171644169,
                                   1604655309999999600, 253402300799_999_999_999, -1_500_000_000,
                                   -1, 7 * 10**9, 1_500_000_000 * 10**9])
def test_format_utc_edges(epoch):
    assert eventtime.format_utc(epoch) == eventtime.format_utc_datetime(epoch)
    assert eventtime.format_utc(epoch) == eventtime.format_utc_datetime(epoch)  # cached


def test_format_utc_out_of_range_fails_as_datetime_does():
    for epoch in (253402300800 * 10**9, 10**300):
        with pytest.raises((ValueError, OverflowError)) as expected:
            eventtime.format_utc_datetime(epoch)
        with pytest.raises(expected.type):
            eventtime.format_utc(epoch)


def _old_label_time(v):
    """stream.decode.labels._time for a str before the colon shortcut."""
    import math

    from stream.decode.labels import DecodeError
    from stream.eventtime import parse_rfc3339

    try:
        t = float(v)
    except ValueError:
        try:
            return parse_rfc3339(v)
        except ValueError as exc:
            raise DecodeError("bad_time", str(exc)) from None
    if math.isfinite(t):
        from decimal import Decimal

        return int(Decimal(v) * 10**9)  # the text's seconds, in ns
    raise DecodeError("bad_time", f"timestamp is neither RFC 3339 nor epoch seconds: {v!r}")


@pytest.mark.parametrize("text", [*TIMES, "10", " 1e3 ", "nan", "inf", "1_000", "x", "1:2",
                                  ":", "2013-01-01", "12:00:00Z"])
def test_label_times_parse_as_before(text):
    from stream.decode.labels import DecodeError, _time

    def outcome(f):
        try:
            return f(text)
        except DecodeError as exc:
            return (exc.reason, exc.detail)

    assert outcome(lambda v: _time(v, None)) == outcome(_old_label_time)


@settings(max_examples=1500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list('ab1,. "\r\n\x00\t;\\\'é')), max_size=20))
def test_csv_cells_equal_the_csv_module(text):
    import csv

    from stream.decode.labels import _csv_cells

    try:
        expected = next(csv.reader([text]))
    except (csv.Error, StopIteration) as exc:
        with pytest.raises(type(exc)):
            _csv_cells(text)
        return
    assert _csv_cells(text) == expected


def test_pipeline_keeping_pair_objects_equals_one_keeping_states():
    from stream.monitoring import Monitoring
    from stream.pipeline import PipelineStores

    runs = []
    for stores in (None, PipelineStores()):
        p = Pipeline(window_seconds=60, lateness=0, pairing_ttl=5, stores=stores,
                     monitoring=Monitoring())
        assert p.windows.book.keep_pairs is (stores is None)
        out = StepResult()
        for n, ev in enumerate(_events()):
            p.process_into(ev, out)
            if n % 13 == 0:
                out.extend(p.advance())
        out.extend(p.finish())
        runs.append(out)
    assert runs[0] == runs[1] and runs[0].summaries


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.0, 3.0, 4.5, 7.0]), min_size=1, max_size=30),
       st.lists(st.sampled_from([0.0, -0.0, 1.0, 8.0, 9.0, 10.0, 11.0]), max_size=30),
       st.integers(0, 1))
def test_default_stattest_shortcut_equals_counting_the_union(ref_values, cur_values, big):
    import numpy as np

    from stream.drift import selection
    from stream.drift.column import ReferenceColumn

    ref = ReferenceColumn.numerical("x", ref_values * (1 + big * 200))
    cur = np.array(cur_values)

    def full(ref, cur):  # default_stattest before the shortcut
        many = selection.n_values(ref, cur) > 5
        if ref.n <= selection.SMALL_REFERENCE:
            if many:
                return selection.STATTESTS["ks"]
            return selection.STATTESTS["chisquare" if selection.n_values(ref, cur) > 2 else "z"]
        return selection.STATTESTS["wasserstein" if many else "jensenshannon"]

    assert selection.default_stattest(ref, cur) is full(ref, cur)
    counts = dict.fromkeys(map(str, ref_values), 1)
    cat = ReferenceColumn.categorical("c", counts)
    cur_counts = dict.fromkeys(map(str, cur_values), 2)
    assert selection.default_stattest(cat, cur_counts).name == (
        "chisquare" if selection.n_values(cat, cur_counts) > 2 else "z")


def test_memoized_window_keys_equal_fresh_ones():
    import random

    from stream.windows import WindowBook, WindowKey, window_key

    rng = random.Random(5)
    for size in (60, 60.0, 0.7, 86400 * 7):
        book = WindowBook(size, hold=0)
        for _ in range(500):
            m = ModelRef("iris", "ns", rng.choice(["a", "b"]), rng.choice(["p", "q"]),
                         rng.choice(["", "v1"]))
            pair = Pair(m, "r", rng.uniform(-1e6, 2e9))
            key, fresh = book.key_of(pair), window_key(pair, size)
            assert key == fresh and hash(key) == hash(fresh) and repr(key) == repr(fresh)
            assert key.id == fresh.id == WindowKey(*[getattr(fresh, f) for f in (
                "namespace", "model", "version", "node", "start", "size")]).id
