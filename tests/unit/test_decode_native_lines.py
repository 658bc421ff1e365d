"""The compiled replay-line decoder (`Decoder.decode_line`) against `decode_line_python`.

Its contract, as for records (tests/unit/test_decode_native.py): for any line and source,
`Decoder.decode_line(line, source)` returns None or exactly the event `decode_line_python`
returns (`==` and `repr`); it never raises. These tests run both on fixtures, on
sequences (the decoder keeps header name and value caches between lines), on generated
lines, and check that the lines the demo and bench/replay_bench.py write are answered
natively.
"""

from __future__ import annotations

import json
import os

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.decode import native
from stream.decode.lines import decode_line, decode_line_python
from stream.decode.native import new_decoder
from stream.events import DeadLetter, PredictionEvent, SourceCoords

if os.environ.get("PREDLOG_NATIVE", "1") == "0":
    pytest.skip("PREDLOG_NATIVE=0 switches the native decoder off", allow_module_level=True)
import predlog_native  # noqa: E402  (required: `make venv` and the image install it)

from tests.unit.test_decode_native import (  # noqa: E402
    EXACT_TIMES,
    REQ,
    REQUEST_BODY,
    RESP,
    RESPONSE_BODY,
    common_rows,
    common_scalars,
    header_names,
    header_values,
    json_values,
    plain_text,
    prefixes,
    same,
    seldon_bodies,
)

COORDS = SourceCoords("file", "", -1, -1, "logs.ndjson.gz", 7)


def check(dec, line, source=COORDS):
    """Native and Python on one line; the native answer (or None)."""
    native = dec.decode_line(line, source)
    python = decode_line_python(line, source)
    if native is not None:
        assert isinstance(native, PredictionEvent)
        assert same(native, python), (native, python)
    return native


def demo_headers(ce_type=REQ, rid="r1", **extra):
    """The headers agents/demo_data.py writes (binary-mode HTTP CloudEvents)."""
    h = {"ce-id": "e1", "ce-requestid": rid, "ce-type": ce_type, "ce-modelid": "classifier",
         "ce-inferenceservicename": "flight-delay", "ce-namespace": "airline",
         "ce-endpoint": "default", "ce-time": "2013-01-01T10:40:22.140207831Z",
         "ce-source": "http://flight-delay-default.airline:8000/", "ce-specversion": "1.0",
         "ce-protocol": "seldon", "content-type": "application/json"}
    h.update(extra)
    return h


def line(headers, body, **kw) -> bytes:
    """A captured line as the demo writes it: the body a compact JSON string."""
    if not isinstance(body, str | bytes):
        body = json.dumps(body, separators=(",", ":"), **kw)
    if isinstance(body, bytes):
        body = body.decode()
    return json.dumps({"headers": headers, "body": body}, separators=(",", ":"),
                      ensure_ascii=False).encode()


def in_body(raw: bytes, old: bytes, new: bytes) -> bytes:
    """`raw` with the first `old` of its body (as written in the line) replaced."""
    head, sep, body = raw.partition(b'"body":"')
    assert old in body, (old, body)
    return head + sep + body.replace(old, new, 1)


ONE = line(demo_headers(), '{"data": {"ndarray": [[1]]}}')

DEMO_REQUEST = {"data": {"names": ["sched_dep_hour", "distance", "carrier", "origin", "temp"],
                         "ndarray": [[5, 1089, "AA", "JFK", 39.02], [6, 229, "EV", "LGA", 0.0]]}}
DEMO_RESPONSE = {"data": {"names": ["t:0", "t:1"], "ndarray": [[0.900441, 0.099559]]},
                 "meta": {"requestPath": {"classifier": "airline/flight-delay-classifier:1.0.0"}}}

LINES_ANSWERED = [
    line(demo_headers(), DEMO_REQUEST),
    line(demo_headers(RESP), DEMO_RESPONSE),
    line(demo_headers(), REQUEST_BODY),
    line(demo_headers(RESP), RESPONSE_BODY),
    # orjson's spacing, the body first, whitespace around and inside
    orjson.dumps({"body": json.dumps(DEMO_REQUEST), "headers": demo_headers()}),
    b' { "headers" : {"Ce-Type": "' + REQ.encode() + b'", "CE-RequestId": "r", '
    b'"ce_inferenceservicename": "m", "ce-time": "2020-11-06T09:35:09Z"} , '
    b'"body": "{\\"data\\": {\\"ndarray\\": [[1, 2.5]]}}" }\n',
    # every escape the body string may hold, text in the body that is not ASCII
    line(demo_headers(), {"data": {"names": ["a/b", "é", "日本"], "ndarray": [["x", "y", "z"]]}},
         ensure_ascii=False),
    json.dumps({"headers": demo_headers(), "body": json.dumps(
        {"data": {"names": ["é", "日本"], "ndarray": [[1, 2]]}}, ensure_ascii=False)}).encode(),
    line(demo_headers(), '{\n\t"data": {"ndarray": [[1]]}\r}'),
    in_body(ONE, b"{", b"\\u007b"),
    in_body(ONE, b"data", b"d\\u0061ta"),
    in_body(ONE, b"[[1]]", b'[[1, \\"\\/\\u00e9\\u65e5\\"]]'),
    # other SeldonMessage shapes the Kafka path reads
    line(demo_headers(), {"data": {"tensor": {"shape": [1, 2], "values": [1, 2]}}}),
    line(demo_headers(RESP), {"data": {"ndarray": [0.25, 0.75]}, "meta": {"puid": "x1"}}),
    line(demo_headers(rid=""), {"data": {"ndarray": [[1]]}, "meta": {"puid": "p1"}}),
    line(demo_headers(), {"data": {"ndarray": []}}),
    # headers the demo does not write, values that are not ASCII
    line({"ce-type": REQ, "ce-requestid": "r", "ce-inferenceservicename": "m",
          "ce-time": "2026-02-28T23:59:60z", "x-other": "ü"}, REQUEST_BODY),
    line(demo_headers(RESP, **{"ce-modelid": "transformer"}),
         {"data": {"ndarray": [[1]]}, "meta": {"requestPath": {"transformer": "b:2"}}}),
    line(demo_headers(**{"ce-protocol": "", "ce-id": ""}), REQUEST_BODY),
    line(demo_headers(**{"content-type": "application/cloudevents+json; structured"}),
         REQUEST_BODY),
]

LINES_LEFT_TO_PYTHON = [
    b"not json",
    b"",
    b"[]",
    b'{"headers": {}, "body": "{}"}',
    line(demo_headers(), DEMO_REQUEST) + b"x",
    line(demo_headers(), DEMO_REQUEST)[:-1],
    b"\xef\xbb\xbf" + line(demo_headers(), DEMO_REQUEST),
    # other line shapes: structured mode, a captured Kafka record, a body object, extras
    orjson.dumps({"specversion": "1.0", "type": REQ, "id": "e", "requestid": "r",
                  "inferenceservicename": "m", "time": "2020-11-06T09:35:09Z",
                  "data": REQUEST_BODY}),
    orjson.dumps({"headers": {"type": REQ, "requestid": "r", "inferenceservicename": "m"},
                  "value": json.dumps(REQUEST_BODY), "timestamp": 1_700_000_000_000}),
    orjson.dumps({"headers": demo_headers(), "body": REQUEST_BODY}),
    orjson.dumps({"headers": demo_headers(), "body": json.dumps(REQUEST_BODY), "x": 1}),
    orjson.dumps({"headers": demo_headers()}),
    orjson.dumps({"body": json.dumps(REQUEST_BODY)}),
    orjson.dumps({"headers": [["ce-type", REQ]], "body": json.dumps(REQUEST_BODY)}),
    b'{"headers": {"ce-type": "x"}, "headers": ' + orjson.dumps(demo_headers())
    + b', "body": "{\\"data\\": {\\"ndarray\\": [[1]]}}"}',
    b'{"headers": ' + orjson.dumps(demo_headers()) + b', "body": "{}", '
    b'"body": "{\\"data\\": {\\"ndarray\\": [[1]]}}"}',
    # headers: a value that is no string, escapes, names twice, non-ASCII names
    line({**demo_headers(), "ce-namespace": 5}, REQUEST_BODY),
    line({**demo_headers(), "ce-namespace": None}, REQUEST_BODY),
    line({**demo_headers(), "ce-namespace": "a\"b"}, REQUEST_BODY),
    line({**demo_headers(), "ce-namespace": "é"}, REQUEST_BODY).replace(b"\xc3\xa9", b"\\u00e9"),
    line({**demo_headers(), "type": REQ}, REQUEST_BODY),
    line({**demo_headers(), "Ce-Typé": REQ}, REQUEST_BODY),
    b'{"headers": {"ce-type": "' + REQ.encode() + b'", "ce-type": "x"}, "body": "{}"}',
    # what Python must judge: no time, odd times, other types, ids, content types
    line({k: v for k, v in demo_headers().items() if k != "ce-time"}, REQUEST_BODY),
    line(demo_headers(**{"ce-time": "2020-11-06T10:35:09+01:00"}), REQUEST_BODY),
    line(demo_headers(**{"ce-time": "yesterday"}), REQUEST_BODY),
    line(demo_headers("io.seldon.serving.feedback"), {"truth": {"data": {"ndarray": [[1]]}}}),
    line(demo_headers("org.kubeflow.serving.inference.request"), REQUEST_BODY),
    line(demo_headers("other"), REQUEST_BODY),
    line(demo_headers(rid=""), REQUEST_BODY),
    line({k: v for k, v in demo_headers().items() if k != "ce-inferenceservicename"},
         REQUEST_BODY),
    line(demo_headers(**{"content-type": "application/x-protobuf"}), REQUEST_BODY),
    line(demo_headers(), {"data": {"names": ["é"], "ndarray": [[1]]}}),  # escapes in the body
    # bodies: errors, NaN, escapes the reader leaves to Python, broken JSON, odd shapes
    line(demo_headers(RESP), {"status": {"code": 500, "info": "boom", "reason": "X",
                                         "status": "FAILURE"}}),
    line(demo_headers(), '{"data": {"ndarray": [[1.0, NaN]]}}'),
    line(demo_headers(), '{"data": {"ndarray": [[1e999]]}}'),
    line(demo_headers(), '{"data": {"ndarray": [["a\\"b"]]}}'),
    in_body(ONE, b"[[1]]", b'[[\\"\\ud83d\\ude00\\"]]'),  # a surrogate pair
    in_body(ONE, b"[[1]]", b'[[\\"\\udc00\\"]]'),  # a lone surrogate
    in_body(ONE, b"data", b"d\\x61ta"),
    in_body(ONE, b"data", b"d\\u00ZZta"),
    in_body(ONE, b"data", b"d\\u0000ta"),
    in_body(ONE, b"data", b"d\\ud800ta"),
    in_body(ONE, b"[[1]]", b"[[1]]\\"),
    in_body(ONE, b"[[1]]", b"[[1]]\\u00"),
    line(demo_headers(), '{"data": {"ndarray": [[1, 2]]'),
    in_body(ONE, b"[[1]]", b"[[\x01]]"),
    in_body(ONE, b"[[1]]", b"[[\xff]]"),
    line(demo_headers(), {"strData": "hello"}),
    line(demo_headers(), {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64",
                                      "data": [1]}]}),
    line(demo_headers(), [1, 2]),
]


@pytest.mark.parametrize("stamp, ns", EXACT_TIMES)
def test_line_event_times_are_exact_int_ns(stamp, ns):
    raw = line(demo_headers(**{"ce-time": stamp.decode()}), REQUEST_BODY)
    ev = check(new_decoder(), raw)
    assert ev is not None and type(ev.event_time) is int and ev.event_time == ns


@pytest.mark.parametrize("raw", LINES_ANSWERED)
def test_common_lines_are_decoded_natively_and_the_same(raw):
    assert check(new_decoder(), raw) is not None


@pytest.mark.parametrize("raw", LINES_LEFT_TO_PYTHON)
def test_other_lines_are_left_to_python(raw):
    assert check(new_decoder(), raw) is None


def test_arguments():
    dec = new_decoder()
    raw = line(demo_headers(), DEMO_REQUEST)
    assert check(dec, raw, None).source is None
    assert check(dec, raw, COORDS).source is COORDS
    assert dec.decode_line(bytearray(raw), None) is None
    assert dec.decode_line(memoryview(raw), None) is None
    assert dec.decode_line(raw.decode(), None) is None
    assert dec.decode_line(None, None) is None


def test_line_sequences_through_one_decoder():
    """The name and value caches must never leak one line into the next."""
    dec = new_decoder()
    raws = []
    for i in range(60):
        h = demo_headers(REQ if i % 2 else RESP, f"r{i // 2}")
        h["ce-id"] = f"e{i}"
        h["ce-time"] = f"2013-01-0{1 + i % 9}T00:00:{i % 60:02d}.{i}Z"
        if i % 5 == 0:
            h["ce-modelid"] = "transformer"
        if i % 7 == 0:
            h = dict(reversed(list(h.items())))
        if i % 11 == 0:
            h = {k.upper(): v for k, v in h.items()}
        if i % 13 == 1:
            h["ce-namespace"] = f"ns{i}"
        if i % 17 == 0:
            h.pop("content-type", None)
        raws.append(line(h, DEMO_RESPONSE if i % 2 == 0 else DEMO_REQUEST))
    raws += [line(demo_headers(), DEMO_REQUEST), b"{", line(demo_headers(), DEMO_REQUEST)]
    answered = [check(dec, raw, SourceCoords("file", "", -1, -1, "x", i))
                for i, raw in enumerate(raws)]
    assert sum(a is not None for a in answered) == len(raws) - 1 and answered[-1] is not None
    answered[-3].headers["type"] = "mutated"  # events never share a dict
    assert answered[-1].headers["type"] == REQ


# --- generated lines -------------------------------------------------------------------------

@st.composite
def header_dicts(draw):
    # mostly distinct names once normalized (two spellings of one name are Python's)
    unique = draw(st.integers(0, 4)) > 0
    items = draw(st.lists(st.tuples(prefixes, header_names, header_values), max_size=3,
                          unique_by=(lambda t: t[1]) if unique else None))
    out = {(p + n if p.islower() or not n else p + n.capitalize()): v for p, n, v in items}
    if draw(st.integers(0, 3)) > 0:
        base = {"type": draw(st.sampled_from([REQ, RESP])), "requestid": "r",
                "inferenceservicename": "m", "time": "2020-11-06T09:35:09.5Z"}
        named = {n for _, n, _ in items}
        out = {"ce-" + k: v for k, v in base.items() if k not in named or not unique} | out
    if draw(st.integers(0, 9)) == 0:
        out["ce-namespace"] = draw(json_values)
    return out


SHARED = new_decoder()  # kept across examples: its caches must not change any answer


common_bodies = st.fixed_dictionaries(
    {"data": st.fixed_dictionaries({"ndarray": common_rows | st.lists(common_scalars)},
                                   optional={"names": st.lists(plain_text, max_size=4)})},
    optional={"meta": st.fixed_dictionaries({}, optional={
        "requestPath": st.dictionaries(st.sampled_from(["classifier", "n"]),
                                       st.sampled_from(["img:1.2", "a/b:c/d", "plain"])),
        "puid": plain_text})})


@settings(max_examples=800, deadline=None, suppress_health_check=list(HealthCheck))
@given(common_bodies | seldon_bodies | json_values,
       header_dicts() | st.builds(demo_headers, st.sampled_from([REQ, RESP]), plain_text),
       st.integers(0, 3),
       st.booleans(), st.sampled_from([None, COORDS]))
def test_generated_lines(obj, headers, ascii_body, ascii_line, source):
    try:
        body = json.dumps(obj, ensure_ascii=ascii_body == 0)
        raw = json.dumps({"headers": headers, "body": body}, ensure_ascii=ascii_line).encode()
    except (ValueError, OverflowError):
        return
    check(SHARED, raw, source)
    check(new_decoder(), raw, source)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=96) | st.sampled_from(LINES_ANSWERED + LINES_LEFT_TO_PYTHON),
       st.integers(0, 400), st.binary(max_size=3))
def test_arbitrary_and_mutated_bytes_never_raise(raw, at, insert):
    check(SHARED, raw)
    check(SHARED, raw[:at] + insert + raw[at + len(insert):])
    check(SHARED, raw[:at])


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(common_rows | st.lists(common_scalars, max_size=8), st.booleans(),
       st.lists(plain_text, max_size=8) | st.none(), st.booleans(),
       plain_text.filter(bool), st.booleans())
def test_generated_demo_lines_are_answered(ndarray, response, names, with_meta, rid, upper):
    """The shapes the fast path is for: always answered natively, always the same."""
    data = {"ndarray": ndarray} if names is None else {"names": names, "ndarray": ndarray}
    obj = {"data": data}
    if with_meta:
        obj["meta"] = {"requestPath": {"classifier": "img:1.2", "other": "x/y:z"}, "puid": "p"}
    headers = demo_headers(RESP if response else REQ, rid)
    if upper:
        headers = {k.title(): v for k, v in headers.items()}
    raw = line(headers, obj, ensure_ascii=False)  # escapes in the body are Python's
    assert check(SHARED, raw) is not None


def test_decode_line_is_the_native_entry_with_the_python_fallback():
    """What the replay calls answers like the Python definition, dead letters included.
    (That it is the compiled decoder while enabled: tests/unit/test_settings.py.)"""
    assert native.enabled()
    cases = [line(demo_headers(), DEMO_REQUEST), b"{", b"not json",
             line(demo_headers(RESP), {"status": {"status": "FAILURE", "info": "x"}}),
             bytearray(line(demo_headers(), DEMO_REQUEST))]
    for raw in cases:
        assert same(decode_line(raw), decode_line_python(raw))
        assert same(decode_line(raw, COORDS), decode_line_python(raw, COORDS))
        assert same(decode_line(raw, source=COORDS), decode_line_python(raw, source=COORDS))
    assert isinstance(decode_line(b"{", COORDS), DeadLetter)
    with pytest.raises(TypeError):
        decode_line(b"{", COORDS, 3)


def test_a_panic_or_error_inside_becomes_none():
    def boom(*args):
        raise RuntimeError("no")

    dec = predlog_native.Decoder(boom, boom, boom, "request", "response")
    assert dec.decode_line(line(demo_headers(), DEMO_REQUEST), None) is None
    assert dec.decode_line_record(line(demo_headers(), DEMO_REQUEST)) is None


def test_many_and_long_header_values_through_one_decoder():
    """Past the value cache's positions and length: values are built, never mixed up."""
    dec = new_decoder()
    for i in range(4):
        h = {f"x-{j}": f"v{j}-{i % 2}" for j in range(70)}
        h.update(demo_headers(REQ if i % 2 else RESP, "r" * (300 + i)))
        h["x-long"] = "z" * (257 + i % 2)
        ev = check(dec, line(h, DEMO_RESPONSE if i % 2 == 0 else DEMO_REQUEST))
        assert ev is not None and ev.headers["x-69"] == f"v69-{i % 2}"
        assert ev.request_id == "r" * (300 + i) and len(ev.headers["x-long"]) == 257 + i % 2
