"""Columnar batch decoding (stream/decode/batch.py, native/src/batch.rs) against the
definition: `decode_kafka_batch_python` (each record through the Python decoder, its
event into `BatchBuilder`).

The compiled decoder's batch must equal the Python-built one in every column, exactly
(float values bit for bit, object values with their types), on the fixtures of
test_decode_native.py, on mixed sequences (taken and left records, dead letters) and on
generated records; dead letters must be what `decode_kafka_record_python` gives one at a
time. Event times are checked against numpy's datetime64[ns] parsing.
"""

from __future__ import annotations

import json
import os

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import stream.decode.batch as batch_mod
from stream.batch import FEATURES, OUTPUTS, TRUTH, BatchBuilder, EventBatch, merge
from stream.decode.batch import (
    decode_kafka_batch,
    decode_kafka_batch_python,
)
from stream.decode.kafka_records import decode_kafka_record_python
from stream.events import DeadLetter, EventKind, ModelRef, PredictionEvent, SourceCoords
from stream.eventtime import ms_to_ns, parse_rfc3339

if os.environ.get("PREDLOG_NATIVE", "1") == "0":
    pytest.skip("PREDLOG_NATIVE=0 switches the native decoder off", allow_module_level=True)
import predlog_native  # noqa: E402,F401  (required: make venv installs it)

from tests.unit.test_decode_native import (  # noqa: E402
    REQ,
    REQUEST_BODY,
    RESP,
    RESPONSE_BODY,
    V1_ANSWERED,
    V1_LEFT_TO_PYTHON,
    body,
    common_rows,
    header_lists,
    json_values,
    seldon_bodies,
    v1_headers,
    v2_message,
)

NATIVE = batch_mod._NATIVE


def same_value(a, b) -> bool:
    return type(a) is type(b) and a == b and repr(a) == repr(b)


def same_array(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.dtype == np.float64:
        return bool((a.view(np.uint64) == b.view(np.uint64)).all())
    if a.dtype == object:
        return all(same_value(x, y) for x, y in zip(a.ravel(), b.ravel(), strict=True))
    return bool((a == b).all())


def assert_same_batch(got: EventBatch, want: EventBatch) -> None:
    for name in ("index", "kind", "request_id", "model", "event_time_ns", "protocol",
                 "source_format", "error_type", "error", "reward", "rows", "topic",
                 "partition", "offset"):
        assert same_array(getattr(got, name), getattr(want, name)), (
            name, getattr(got, name), getattr(want, name))
    for name in ("models", "protocols", "source_formats", "error_types", "errors", "topics"):
        assert getattr(got, name) == getattr(want, name), name
    assert len(got.groups) == len(want.groups), (got.groups, want.groups)
    for g, w in zip(got.groups, want.groups, strict=True):
        assert (g.model, g.side, g.names, g.width) == (w.model, w.side, w.names, w.width)
        assert same_array(g.records, w.records) and same_array(g.offsets, w.offsets)
        assert same_array(g.values, w.values), (g.values, w.values)


def same_dead(a: list[DeadLetter], b: list[DeadLetter]) -> bool:
    return a == b and repr(a) == repr(b)


def both(records):
    """Native and Python on one list; the native columns' unhandled positions."""
    got, got_dead = decode_kafka_batch(records)
    want, want_dead = decode_kafka_batch_python(records)
    assert_same_batch(got, want)
    assert same_dead(got_dead, want_dead)
    one_by_one = [decode_kafka_record_python(*r[:5], partition=r[5], offset=r[6])
                  for r in records]
    out_of_range = [d for d in got_dead  # the batch's own (an event type may say int64)
                    if d.reason == "bad_time" and "outside the int64 nanosecond" in d.detail]
    assert same_dead([d for d in got_dead if d not in out_of_range],
                     [d for d in one_by_one if isinstance(d, DeadLetter)])
    return np.frombuffer(NATIVE.decode_kafka_batch(list(records))["unhandled"], np.int64)


def kafka(headers, value, topic="seldon", key=None, ts=1_767_225_600_000, partition=0, offset=0):
    return (topic, key, value, headers, ts, partition, offset)


# --- fixtures ---------------------------------------------------------------------------------

def _numeric_only(value: bytes) -> bool:
    obj = orjson.loads(value)
    nd = obj.get("data", {}).get("ndarray") or obj.get("data", {}).get("tensor", {}).get(
        "values", [])
    flat = [v for r in nd for v in (r if isinstance(r, list) else [r])]
    widths = {len(r) for r in nd if isinstance(r, list)}
    return all(type(v) in (int, float) for v in flat) and len(widths) <= 1


@pytest.mark.parametrize("headers, value", V1_ANSWERED)
def test_v1_fixture_records_alone(headers, value):
    unhandled = both([kafka(headers, value, offset=7)])
    if _numeric_only(value):
        assert len(unhandled) == 0  # numeric bodies: taken natively


@pytest.mark.parametrize("headers, value", V1_LEFT_TO_PYTHON)
def test_v1_records_left_to_python_alone(headers, value):
    both([kafka(headers, value)])


def test_all_v1_fixtures_in_one_batch_mixed():
    records = []
    for i, (h, v) in enumerate(V1_ANSWERED + V1_LEFT_TO_PYTHON):
        records.append(kafka(h, v, ts=1_767_225_600_000 + i, partition=i % 3, offset=i))
        records.append(kafka(v1_headers(RESP, rid=f"m{i}".encode()), body(RESPONSE_BODY),
                             offset=1000 + i))
    records.append(kafka(v1_headers(), None))  # tombstone: a dead letter
    records.append(kafka(v1_headers(), b"{"))
    unhandled = both(records)
    assert 0 < len(unhandled) < len(records)
    got, dead = decode_kafka_batch(records)
    assert len(got) + len(dead) == len(records)
    assert {d.reason for d in dead} >= {"empty_value", "invalid_json"}


def test_v2_fixture_shapes_and_datatypes():
    records = []
    for dt in ("FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16",
               "UINT32", "UINT64", "FP16", "BOOL"):
        for shape, n in (([1, 4], 4), ([2, 2], 4), ([4], 4), ([4, 1], 4), ([], 3), ([0, 3], 0),
                         ([2, 3, 1], 6), ([2, 2], 3)):
            for direction in ("inputs", "outputs"):
                msg = v2_message(direction, dt, shape, n=n, id="i", model_version="2")
                records.append(kafka([], msg.SerializeToString(), f"seldon.ns.model.m.{direction}",
                                     b"k", offset=len(records)))
    extremes = v2_message("outputs", "UINT64", [2], values=[2**64 - 1, 2**53 + 1])
    records.append(kafka([("x-request-id", b"h")], extremes.SerializeToString(),
                         "seldon.ns.model.m.outputs", b"0.m.k"))
    nan = v2_message("outputs", "FP64", [2, 1], values=[1.0, float("nan")])
    records.append(kafka(None, nan.SerializeToString(), "seldon.ns.model.m.outputs", b"k"))
    unhandled = both(records)
    assert len(unhandled) < len(records) // 2


# --- sequences and generated records ---------------------------------------------------------

@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(seldon_bodies | json_values, header_lists(),
                          st.sampled_from([None, b"k1", "k2", b"", b"\xff", b"0.m.k3"]),
                          st.sampled_from(["seldon", "predlog.events", "mlserver-output"]),
                          st.sampled_from([1.7e12, 0, 1_600_000_000_123, -5.5, 2**62])),
                max_size=8))
@example(items=[({"data": {}}, {"Type": "int64", "requestid": b"\xff"}, None, "seldon",
                 1700000000000.0)])  # CI once filtered this dead letter out by its detail text
def test_generated_v1_batches(items):
    records = []
    for i, (obj, headers, key, topic, ts) in enumerate(items):
        try:
            value = json.dumps(obj).encode()
        except (ValueError, OverflowError):
            continue
        records.append((topic, key, value, headers, ts, i % 2, i))
    both(records)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(common_rows, st.booleans(), st.sampled_from([None, ["a"], ["a", "b"]]),
                          st.sampled_from(["iris", "wine"]), st.integers(0, 999_999_999)),
                min_size=1, max_size=10))
def test_generated_common_batches(items):
    """Bench-like records of two models, numeric or not: groups and codes line up."""
    records = []
    for i, (rows, response, names, model, nanos) in enumerate(items):
        data = {"ndarray": rows} if names is None else {"names": names, "ndarray": rows}
        h = v1_headers(RESP if response else REQ, f"r{i}".encode(),
                       time=f"2026-03-01T12:00:{i:02d}.{nanos:09d}Z".encode())
        h[3] = ("inferenceservicename", model.encode())
        records.append(kafka(h, orjson.dumps({"data": data}), offset=i))
    both(records)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(["inputs", "outputs"]),
                          st.sampled_from(["FP32", "FP64", "INT32", "INT64", "UINT8", "UINT64",
                                           "FP16", "BOOL"]),
                          st.lists(st.integers(-1, 4), max_size=3), st.binary(max_size=32),
                          st.sampled_from(["", "i1"]), st.sampled_from(["", "7"]),
                          st.sampled_from([None, b"k", b"0.m.k", b"", b"\xff"]),
                          st.sampled_from([[], [("x-request-id", b"h")], None,
                                           [("X-Request-Id", "h2"), ("other", b"\xff")]])),
                max_size=8))
def test_generated_v2_batches(items):
    records = []
    for i, (direction, dt, shape, raw, msg_id, version, key, headers) in enumerate(items):
        msg = v2_message(direction, dt, [], n=0, id=msg_id, model_version=version)
        tensors = msg.inputs if direction == "inputs" else msg.outputs
        contents = msg.raw_input_contents if direction == "inputs" else msg.raw_output_contents
        del tensors[0].shape[:]
        tensors[0].shape.extend(shape)
        contents[0] = raw
        records.append(kafka(headers, msg.SerializeToString(), f"seldon.ns.model.m.{direction}",
                             key, offset=i))
    both(records)


# --- the bench's records are the native path's ----------------------------------------------

def test_bench_records_are_taken_natively():
    import random

    from bench.decode_bench import seldon_records, v2_records

    rng = random.Random(3)
    v1 = [("seldon", None, v, h, 1_767_225_600_000, 0, i)
          for i, (h, v) in enumerate(seldon_records(40, rng))]
    v2 = [(t, k, v, [], 1_767_225_600_000, 0, i) for i, (t, k, v) in
          enumerate(v2_records(40, rng)[0])]
    for records in (v1, v2):
        assert len(both(records)) == 0
        got, _ = decode_kafka_batch(records)
        assert len(got) == 40 and len(got.groups) == 2


# --- time ---------------------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=__import__("datetime").datetime(1678, 1, 1),
                    max_value=__import__("datetime").datetime(2262, 1, 1)),
       st.integers(0, 999_999_999), st.integers(1, 9), st.sampled_from(["Z", "z"]))
def test_event_time_is_exact_nanoseconds(when, nanos, digits, zone):
    frac = f"{nanos:09d}"[:digits]
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + "." + frac + zone
    oracle = int(np.datetime64(text[:-1], "ns").astype(np.int64))
    assert parse_rfc3339(text) == oracle
    h = v1_headers(time=text.encode())
    got, dead = decode_kafka_batch([kafka(h, body(REQUEST_BODY))])
    assert not dead and got.event_time_ns.tolist() == [oracle]
    assert len(both([kafka(h, body(REQUEST_BODY))])) == 0  # taken natively


def test_event_time_forms_and_kafka_timestamps():
    base = int(np.datetime64("2026-03-01T00:00:00", "ns").astype(np.int64))
    texts = {  # RFC 3339 text -> nanoseconds after 2026-03-01T00:00:00Z
        "2026-03-01T00:00:00.000000001Z": 1,
        "2026-03-01T00:00:00.000012345Z": 12_345,  # tens of microseconds
        "2026-03-01T00:00:00.123456789123Z": 123_456_789,  # past 9 digits: cut
        "2026-03-01T01:00:00.5+01:00": 500_000_000,
        "2026-03-01 00:00:00.000000007": 7,
        "2026-02-28T19:00:00.25-0500": 250_000_000,
    }
    records = [kafka(v1_headers(time=t.encode(), rid=f"r{i}".encode()), body(REQUEST_BODY))
               for i, t in enumerate(texts)]
    records.append(kafka(v1_headers(), body(REQUEST_BODY), ts=1_772_323_200_001))  # int ms
    records.append(kafka(v1_headers(), body(REQUEST_BODY), ts=1_772_323_200_002.0))
    records.append(kafka(v1_headers(), body(REQUEST_BODY), ts=1_772_323_200_000.5))
    both(records)
    got, dead = decode_kafka_batch(records)
    assert not dead
    assert (got.event_time_ns - base).tolist() == [*texts.values(), 1_000_000, 2_000_000,
                                                   500_000]
    assert ms_to_ns(-5.5) == -5_500_000 and ms_to_ns(1) == 1_000_000


def test_times_outside_int64_nanoseconds_are_dead_letters():
    records = [kafka(v1_headers(time=b"2300-01-01T00:00:00Z"), body(REQUEST_BODY)),
               kafka(v1_headers(time=b"1600-01-01T00:00:00Z"), body(REQUEST_BODY)),
               kafka(v1_headers(), body(REQUEST_BODY), ts=2**62),
               kafka(v1_headers(), body(REQUEST_BODY))]
    both(records)
    got, dead = decode_kafka_batch(records)
    assert [d.reason for d in dead] == ["bad_time"] * 3 and got.index.tolist() == [3]


# --- the builder and merge -------------------------------------------------------------------

def test_groups_by_model_side_names_and_kind_of_values():
    iris, wine = ModelRef("iris"), ModelRef("wine")

    def ev(kind, model, names, rows, truth=None):
        outputs = rows if kind is EventKind.RESPONSE else []
        return PredictionEvent(kind, "r", model, 0.0, feature_names=(
            names if kind is not EventKind.RESPONSE else None),
            rows=rows if kind is not EventKind.RESPONSE else [], output_names=(
            names if kind is EventKind.RESPONSE else None), outputs=outputs, truth=truth,
            source=SourceCoords("kafka", "t", 1, 2))

    b = BatchBuilder()
    b.add(ev(EventKind.REQUEST, iris, ("a",), [[1], [2.5]]), 0, 5)
    b.add(ev(EventKind.REQUEST, iris, ("a",), [["x"]]), 1, 6)  # not numeric: object group
    b.add(ev(EventKind.RESPONSE, wine, None, [[0.5, 1]]), 2, 7)
    b.add(ev(EventKind.REQUEST, iris, ("a",), [[3]]), 3, 8)
    b.add(ev(EventKind.REQUEST, iris, None, [[1, 2], [3]]), 4, 9)  # ragged
    b.add(ev(EventKind.FEEDBACK, iris, None, [], truth=[1, [2, 3]]), 5, 10)
    b.add(ev(EventKind.REQUEST, iris, ("a",), [[True]]), 6, 11)  # a bool is not a number
    batch = b.build()
    assert batch.models == [iris, wine] and batch.model.tolist() == [0, 0, 1, 0, 0, 0, 0]
    keys = [(g.model, g.side, g.names, g.width, g.numeric) for g in batch.groups]
    assert keys == [(0, FEATURES, ("a",), 1, True), (0, FEATURES, ("a",), 1, False),
                    (1, OUTPUTS, None, 2, True), (0, FEATURES, None, -1, False),
                    (0, TRUTH, None, -1, False)]
    numeric = batch.groups[0]
    assert numeric.values.tolist() == [[1.0], [2.5], [3.0]]
    assert numeric.records.tolist() == [0, 3] and numeric.offsets.tolist() == [0, 2, 3]
    assert batch.groups[1].values.tolist() == [["x"], [True]]
    assert batch.rows.tolist() == [2, 1, 1, 1, 2, 2, 1]
    assert batch.kind.tolist() == [0, 0, 1, 0, 0, 2, 0]


def test_merge_is_the_builder_on_the_interleaved_events():
    events = []
    for i in range(12):
        model = ModelRef(["a", "b", "c"][i % 3])
        events.append(PredictionEvent(
            EventKind.REQUEST if i % 2 else EventKind.RESPONSE, f"r{i}", model, 0.0,
            protocol=["p", "q"][i % 2 == 0 and i % 3 == 0], feature_names=("x",),
            rows=[[i]] if i % 2 else [], outputs=[] if i % 2 else [[i, "s"] if i % 4 else [i, 1]],
            error_type="boom" if i == 7 else None, error="e" if i == 7 else None,
            source=SourceCoords("kafka", f"t{i % 2}", 0, i)))
    whole = BatchBuilder()
    parts = [BatchBuilder(), BatchBuilder()]
    for i, e in enumerate(events):
        whole.add(e, i, i)
        parts[i % 5 in (1, 3)].add(e, i, i)
    assert_same_batch(merge([parts[1].build(), parts[0].build()]), whole.build())
    assert len(merge([BatchBuilder().build()])) == 0


def test_without_the_native_decoder_it_is_the_definition(monkeypatch):
    records = [kafka(h, v, offset=i) for i, (h, v) in enumerate(V1_ANSWERED + V1_LEFT_TO_PYTHON)]
    monkeypatch.setattr(batch_mod, "_NATIVE", None)
    got, dead = decode_kafka_batch(records)
    want, want_dead = decode_kafka_batch_python(records)
    assert_same_batch(got, want) and same_dead(dead, want_dead)


def test_odd_lists_never_raise():
    records = [("seldon", None, b"{}", [], 0, 0, 0), ("seldon", None, body(REQUEST_BODY),
               v1_headers(), 1.7e12, 0, 1), kafka([("type", 5)], body(REQUEST_BODY)),
               ("seldon", None, body(REQUEST_BODY), v1_headers(), 1.7e12, 1.5, 1)]
    out = NATIVE.decode_kafka_batch(records)
    assert np.frombuffer(out["unhandled"], np.int64).tolist() == [0, 2, 3]
    assert NATIVE.decode_kafka_batch([None, (1, 2), "x"])["unhandled"] == \
        np.array([0, 1, 2], np.int64).tobytes()


def test_floats_are_read_exactly_as_python_reads_them():
    """The JSON reader's exact fast path (significand ≤ 2^53, ≤ 22 fraction digits) and
    its general path, against float() of the same text."""
    import random

    rng = random.Random(7)
    texts = []
    for _ in range(20_000):
        k = rng.randint(0, 5)
        texts.append([
            lambda: repr(rng.random()),
            lambda: f"{rng.uniform(-1e6, 1e6):.{rng.randint(1, 12)}f}",
            lambda: "0." + "0" * rng.randint(0, 25) + str(rng.randint(1, 10**rng.randint(1, 17))),
            lambda: f"{rng.randint(0, 2**53 + 5)}.{rng.randint(0, 9)}",
            lambda: "-" + repr(rng.uniform(0, 1000)),
            lambda: f"{rng.randint(0, 10**15)}.{rng.randint(0, 10**7):07d}",
        ][k]())
    texts += ["-0.0", "0.0", "9007199254740992.0", "9007199254740993.0", "1.0000000000000000000001"]
    records = [kafka(v1_headers(rid=f"r{i}".encode()),
                     ("{\"data\":{\"ndarray\":[[" + ",".join(texts[i:i + 10]) + "]]}}").encode(),
                     offset=i) for i in range(0, len(texts), 10)]
    out = NATIVE.decode_kafka_batch(records)
    assert len(out["unhandled"]) == 0
    got = np.concatenate([np.frombuffer(g[4], np.float64) for g in out["groups"]])
    want = np.array([float(t) for t in texts])
    assert (got.view(np.uint64) == want.view(np.uint64)).all()
