"""The compiled decoder (native/, `predlog_native`) against the Python decoders.

Its contract: for any record, `Decoder.decode_kafka` returns None or exactly the event
`decode_kafka_record_python` returns (`==` and `repr`, so `1` is not `1.0` and key order
counts); it never raises. These tests run both on fixtures, on sequences (the decoder
keeps caches and a header template between records) and on generated records, and check
that the common shapes — what bench/decode_bench.py decodes — are answered natively.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.decode.kafka_records import decode_kafka_record, decode_kafka_record_python
from stream.decode.native import new_decoder
from stream.decode.oip.inference_pb2 import ModelInferRequest, ModelInferResponse
from stream.events import DeadLetter, PredictionEvent

if os.environ.get("PREDLOG_NATIVE", "1") == "0":
    pytest.skip("PREDLOG_NATIVE=0 switches the native decoder off", allow_module_level=True)
# Required, not skipped when missing: `make venv` and the image install it (pip install ./native).
import predlog_native  # noqa: E402

REQ = "io.seldon.serving.inference.request"
RESP = "io.seldon.serving.inference.response"


def same(a, b) -> bool:
    return a == b and repr(a) == repr(b)


def check(dec, topic, key, value, headers, ts=1.7e12, partition=-1, offset=-1):
    """Native and Python on one record; the native answer (or None)."""
    native = dec.decode_kafka(topic, key, value, headers, ts, partition, offset)
    python = decode_kafka_record_python(topic, key, value, headers, ts,
                                        partition=partition, offset=offset)
    if native is not None:
        assert isinstance(native, PredictionEvent)
        assert same(native, python), (native, python)
    return native


def v1_headers(ce_type=REQ, rid=b"r1", **extra):
    base = [("type", ce_type.encode()), ("requestid", rid), ("modelid", b"classifier"),
            ("inferenceservicename", b"iris"), ("namespace", b"prod"),
            ("endpoint", b"default"), ("content-type", b"application/json")]
    return base + [(k, v) for k, v in extra.items()]


def body(obj) -> bytes:
    return orjson.dumps(obj)


REQUEST_BODY = {"data": {"names": [f"f{i}" for i in range(10)],
                         "ndarray": [[0.1 * i for i in range(10)]]}}
RESPONSE_BODY = {"data": {"names": ["proba"], "ndarray": [[0.25]]},
                 "meta": {"requestPath": {"classifier": "seldonio/sklearnserver:1.17.1"}}}


# --- Seldon v1 records: what is answered, what is left to Python ------------------------

V1_ANSWERED = [
    (v1_headers(), body(REQUEST_BODY)),
    (v1_headers(RESP), body(RESPONSE_BODY)),
    (v1_headers(), body({"data": {"ndarray": [[1, 2.5], [3, 4]]}})),  # a batch
    (v1_headers(), body({"data": {"ndarray": [1.0, 2, True, None, "x", "é"]}})),
    (v1_headers(RESP), body({"data": {"ndarray": [0.25, 0.75]}, "meta": {"puid": "x1"}})),
    (v1_headers(), body({"data": {"ndarray": []}})),
    (v1_headers(), body({"data": {"ndarray": [[], []]}})),
    (v1_headers(), body({"data": {"names": [], "ndarray": [[1]]}, "meta": {}})),
    (v1_headers(), body({"data": {"tensor": {"shape": [1, 2], "values": [1, 2]}}})),
    (v1_headers(), body({"data": {"tensor": {"shape": [2], "values": [1.5, 2]}}})),
    (v1_headers(RESP), body({"data": {"tensor": {"shape": [2], "values": [1.5, 2]}}})),
    (v1_headers(RESP), body({"data": {"names": ["a", "b"], "tensor": {
        "shape": [2, 2], "values": [1, 2, 3, 4]}}})),
    (v1_headers(), body({"data": {"ndarray": [[-9223372036854775808, 9223372036854775807]]}})),
    (v1_headers(), body({"data": {"ndarray": [[1e308, -0.0, 5e-324, 1e-400]]}})),
    (v1_headers(), b' {"data" : {"ndarray":[[1 , 2]]} ,"data":{"ndarray":[[3]]}}\n'),
    (v1_headers(RESP), body({"data": {"ndarray": [[1]]},
                             "meta": {"requestPath": {"classifier": "registry:5000/iris"},
                                      "tags": {"a": [1, {"b": None}]}}})),
    (v1_headers(RESP, protocol=b"tensorflow", id=b"e1"), body(RESPONSE_BODY)),
    # CloudEvents Kafka binding (ce_ headers, a time)
    ([("ce_specversion", b"1.0"), ("ce_type", REQ.encode()), ("ce_id", b"e1"),
      ("ce_requestid", b"r9"), ("ce_inferenceservicename", b"m"), ("ce_modelid", b"n"),
      ("ce_time", b"2020-11-06T09:35:09.171644169Z"), ("Content-Type", b"application/json")],
     body(REQUEST_BODY)),
    ([("Ce-Type", REQ.encode()), ("Ce-Requestid", b"r"), ("Ce-Inferenceservicename", b"m"),
      ("Ce-Time", b"2026-02-28T23:59:60z")], body(REQUEST_BODY)),
    # two-node graph: the node is the component, the version its image tag
    (v1_headers(RESP, modelid=b"transformer"),
     body({"data": {"ndarray": [[1]]}, "meta": {"requestPath": {
         "classifier": "a:1", "transformer": "b:2"}}})),
    ([("type", RESP.encode()), ("requestid", b"r"), ("inferenceservicename", b"m"),
      ("component", b"classifier")], body(RESPONSE_BODY)),
    # a dict of str values, str values in a list
    ({"ce-type": REQ, "ce-requestid": "r", "ce-inferenceservicename": "m"}, body(REQUEST_BODY)),
    ([("type", REQ), ("requestid", "r"), ("inferenceservicename", b"m")], body(REQUEST_BODY)),
    # the same header twice (the last value wins, in the first one's place)
    ([("type", b"x"), ("requestid", b"r"), ("ce_type", REQ.encode()),
      ("inferenceservicename", b"m")], body(REQUEST_BODY)),
]

V1_LEFT_TO_PYTHON = [
    (v1_headers(), b'{"data": {"ndarray": [[1.0, NaN]]}}'),
    (v1_headers(), b'{"data": {"ndarray": [[1e999]]}}'),
    (v1_headers(), b'{"data": {"ndarray": [[1, 2]]'),
    (v1_headers(), b'\xef\xbb\xbf{"data": {"ndarray": [[1]]}}'),
    (v1_headers(), b'{"data": {"ndarray": [["a\\u00e9"]]}}'),  # escapes: Python's
    (v1_headers(), b'{"data": {"ndarray": [[\xff]]}}'),
    (v1_headers(), body({"data": {"ndarray": [[2**63]]}})),
    (v1_headers(), body({"data": {"ndarray": [[1, [2]], [3, [4]]]}})),
    (v1_headers(), body({"data": {"ndarray": [[[1, 2]], [[3, 4]]]}})),
    (v1_headers(), body({"data": {"ndarray": [[1, 2], 3]}})),
    (v1_headers(), body({"data": {"ndarray": [{"a": 1}]}})),
    (v1_headers(), body({"data": {"names": [1, 2.0], "ndarray": [[1, 2]]}})),
    (v1_headers(), body({"data": {"names": "a", "ndarray": [[1]]}})),
    (v1_headers(), body({"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3]}}})),
    (v1_headers(), body({"data": {"tensor": {"shape": [2.0, 1], "values": [1, 2]}}})),
    (v1_headers(), body({"data": {"tensor": {"shape": [True, 2], "values": [1, 2]}}})),
    (v1_headers(), body({"strData": "hello"})),
    (v1_headers(RESP), body({"status": {"status": "FAILURE", "info": "boom"}, "data": {}})),
    (v1_headers(RESP), body({"data": {"ndarray": [[1]]}, "meta": {"requestPath": ["x"]}})),
    (v1_headers(RESP), body({"data": {"ndarray": [[1]]}, "meta": {"requestPath": {
        "classifier": 3}}})),
    (v1_headers(RESP), body({"data": {"ndarray": [[1]]}, "meta": "odd"})),
    (v1_headers(), body({"inputs": [{"name": "a", "shape": [1], "data": [1]}]})),
    (v1_headers(), body([1, 2])),
    (v1_headers("io.seldon.serving.feedback"), body({"reward": 1})),
    (v1_headers("org.kubeflow.serving.inference.request"), body(REQUEST_BODY)),
    (v1_headers("other"), body(REQUEST_BODY)),
    (v1_headers(rid=b""), body(REQUEST_BODY)),  # no id: the key is None here
    (v1_headers(rid=b"", **{"content-type": b"application/x-protobuf"}), body(REQUEST_BODY)),
    (v1_headers(**{"content-type": b"application/cloudevents+json; structured"}),
     body(REQUEST_BODY)),
    (v1_headers(time=b"2020-11-06T10:35:09+01:00"), body(REQUEST_BODY)),
    (v1_headers(time=b"2020-11-06 09:35:09Z"), body(REQUEST_BODY)),
    (v1_headers(time=b"yesterday"), body(REQUEST_BODY)),
    (v1_headers(time=b""), body(REQUEST_BODY)),
    ([("type", REQ.encode()), ("requestid", b"\xff\xfe"), ("inferenceservicename", b"m")],
     body(REQUEST_BODY)),
    ([("type", REQ.encode()), ("requestid", b"r")], body(REQUEST_BODY)),  # no model
    ([("Tÿpe", REQ.encode()), ("requestid", b"r"), ("inferenceservicename", b"m")],
     body(REQUEST_BODY)),
    ([("type", REQ.encode()), ("requestid", 5), ("inferenceservicename", b"m")],
     body(REQUEST_BODY)),
    ([(b"type", REQ.encode())], body(REQUEST_BODY)),
    ([], body(REQUEST_BODY)),
    (None, body(REQUEST_BODY)),
    ((("type", REQ.encode()),), body(REQUEST_BODY)),
]


@pytest.mark.parametrize("headers, value", V1_ANSWERED)
def test_v1_common_records_are_decoded_natively_and_the_same(headers, value):
    assert check(new_decoder(), "seldon", None, value, headers, 1.7e12, 3, 42) is not None


@pytest.mark.parametrize("headers, value", V1_LEFT_TO_PYTHON)
def test_v1_other_records_are_left_to_python(headers, value):
    assert check(new_decoder(), "seldon", None, value, headers) is None


def test_v1_request_ids_from_key_and_puid():
    dec = new_decoder()
    no_id = v1_headers(rid=b"")
    assert check(dec, "seldon", b"key-1", body(REQUEST_BODY), no_id).request_id == "key-1"
    assert check(dec, "seldon", "key-2", body(REQUEST_BODY), no_id).request_id == "key-2"
    assert check(dec, "seldon", bytearray(b"k3"), body(REQUEST_BODY), no_id).request_id == "k3"
    puid = {"data": {"ndarray": [[1]]}, "meta": {"puid": "p1"}}
    assert check(dec, "seldon", None, body(puid), no_id).request_id == "p1"
    assert check(dec, "seldon", b"\xff", body(puid), no_id) is None
    assert check(dec, "seldon", None, body({**puid, "meta": {"puid": 7}}), no_id) is None


def test_v1_topics_and_arguments():
    dec = new_decoder()
    h, v = v1_headers(), body(REQUEST_BODY)
    assert check(dec, "predlog.events", None, v, h).source_format == "seldon-v1-kafka"
    ms = 1_700_000_000_123
    assert check(dec, "seldon", None, v, h, ms).event_time == ms * 1_000_000
    assert check(dec, "mlserver-input", b"k", v, h) is None
    assert check(dec, "seldon", None, bytearray(v), h) is None
    assert check(dec, "seldon", None, None, h) is None
    assert check(dec, "seldon", None, v, h, np.float64(1.7e12)) is None
    assert check(dec, b"seldon", None, v, h) is None


# Event times: int ns, the fraction's 9 digits exact and further digits truncated, by both
# decoders. 2026-03-01T12:00:00Z is 1772366400 s (calendar.timegm).
EXACT_TIMES = [
    (b"2026-03-01T12:00:00.000041123Z", 1772366400_000041123),
    (b"2026-03-01T12:00:00.999999999Z", 1772366400_999999999),
    (b"2026-03-01T12:00:00.000041Z", 1772366400_000041000),
    (b"2026-03-01T12:00:00.0000411239Z", 1772366400_000041123),
    (b"2026-03-01T12:00:00.5Z", 1772366400_500000000),
    (b"2026-03-01T12:00:00Z", 1772366400_000000000),
]


@pytest.mark.parametrize("stamp, ns", EXACT_TIMES)
def test_v1_event_times_are_exact_int_ns(stamp, ns):
    ev = check(new_decoder(), "seldon", None, body(REQUEST_BODY), v1_headers(time=stamp))
    assert ev is not None and type(ev.event_time) is int and ev.event_time == ns


def test_record_timestamps_are_ms_times_a_million():
    no_time = v1_headers()
    for ms in (1_772_366_400_041, 1.772366400041e12):  # an int, an integral float
        ev = check(new_decoder(), "seldon", None, body(REQUEST_BODY), no_time, ms)
        assert ev is not None and ev.event_time == 1_772_366_400_041_000_000
    # a fraction of a ms: Python's (the decimal the float prints as), not the fast path's
    assert check(new_decoder(), "seldon", None, body(REQUEST_BODY), no_time,
                 1_772_366_400_041.5) is None
    ev = decode_kafka_record_python("seldon", None, body(REQUEST_BODY), no_time,
                                    1_772_366_400_041.5)
    assert ev.event_time == 1_772_366_400_041_500_000


def test_v1_header_sequences_through_one_decoder():
    """The header template and the caches must never leak one record into the next."""
    dec = new_decoder()
    records = []
    for i in range(40):
        h = v1_headers(REQ if i % 2 else RESP, f"r{i}".encode())
        if i % 5 == 0:
            h[2] = ("modelid", b"transformer")
        if i % 7 == 0:
            h.append(("ce_time", f"2026-01-0{1 + i % 9}T00:00:{i % 60:02d}.5Z".encode()))
        if i % 11 == 0:
            h.reverse()
        if i % 13 == 0:
            h[3] = ("inferenceservicename", "str-value")
        if i % 17 == 0:
            h = h[:-1]
        records.append((h, body(RESPONSE_BODY if i % 2 == 0 else REQUEST_BODY)))
    records.append((v1_headers(), body(REQUEST_BODY)))
    records.append((v1_headers(rid=b"\xff"), body(REQUEST_BODY)))  # invalid in a template
    records.append((v1_headers(), b"{"))
    records.append((v1_headers(), body(REQUEST_BODY)))
    answered = [check(dec, "seldon", None, v, h, 1.7e12 + i, 0, i)
                for i, (h, v) in enumerate(records)]
    events = [a for a in answered if a is not None]
    assert len(events) >= 30 and answered[-1] is not None
    events[-2].headers["type"] = "mutated"  # events never share a dict
    assert events[-1].headers["type"] == REQ


# --- Seldon v2 records ---------------------------------------------------------------------

def v2_message(direction, dt="FP32", shape=(1, 4), values=None, n=4, name="x", **fields):
    msg = (ModelInferRequest if direction == "inputs" else ModelInferResponse)(
        model_name="m", **fields)
    tensors = msg.inputs if direction == "inputs" else msg.outputs
    raw = msg.raw_input_contents if direction == "inputs" else msg.raw_output_contents
    tensors.add(name=name, datatype=dt, shape=list(shape))
    np_dt = {"FP32": "<f4", "FP64": "<f8", "INT32": "<i4", "INT64": "<i8", "UINT8": "<u1",
             "INT8": "<i1", "INT16": "<i2", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
             "FP16": "<f2", "BOOL": "<?"}[dt]
    arr = (np.array(values, dtype=np_dt) if values is not None
           else (np.arange(n) * 1.5 + 1).astype(np_dt))
    raw.append(arr.tobytes())
    return msg


def test_v2_bench_shapes_are_decoded_natively_and_the_same():
    dec = new_decoder()
    for direction, shape, n in (("inputs", [1, 10], 10), ("outputs", [1, 1], 1),
                                ("inputs", [3, 2], 6), ("outputs", [4], 4), ("inputs", [], 3)):
        msg = v2_message(direction, "FP64", shape, n=n, id="i1", model_version="3")
        for key, headers in ((b"0.m.k1", []), (b"k", [("x-request-id", b"h1")]), (None, None),
                             ("m.k2", {"x-request-id": "h2"})):
            ev = check(dec, f"seldon.ns.model.m.{direction}", key, msg.SerializeToString(),
                       headers, 1.7e12, 1, 2)
            assert ev is not None


@pytest.mark.parametrize("dt", ["FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8",
                                "UINT16", "UINT32", "UINT64", "FP16", "BOOL"])
@pytest.mark.parametrize("shape, n", [([1, 4], 4), ([2, 2], 4), ([4], 4), ([4, 1], 4), ([], 3),
                                      ([0, 3], 0), ([2, 3, 1], 6), ([2, 2], 3), ([-1, -4], 4)])
def test_v2_datatypes_and_shapes(dt, shape, n):
    msg = v2_message("inputs", dt, shape, n=n, id="i")
    ev = check(new_decoder(), "seldon.ns.model.m.inputs", b"k", msg.SerializeToString(), [])
    whole = n > 0 and len(shape) <= 2 and math.prod(shape or [n]) == n and min(shape or [1]) > 0
    assert (ev is not None) == (whole and dt not in ("FP16", "BOOL"))


def test_v2_extremes_and_odd_messages():
    dec = new_decoder()
    topic = "seldon.ns.model.m.outputs"
    for special in (float("nan"), float("inf"), -float("inf")):
        msg = v2_message("outputs", "FP64", [2, 1], values=[1e308, special])
        assert check(dec, topic, b"k", msg.SerializeToString(), []) is None
    big = v2_message("outputs", "FP64", [2, 1], values=[1e308, 1e308])  # sum overflows
    assert check(dec, topic, b"k", big.SerializeToString(), []) is not None
    ints = v2_message("outputs", "UINT64", [2], values=[2**64 - 1, 0])
    assert check(dec, topic, b"k", ints.SerializeToString(), []).outputs == [[2**64 - 1], [0]]
    two = v2_message("outputs", "FP32", [1, 1], n=1)
    two.outputs.add(name="y", datatype="FP32", shape=[1, 1])
    two.raw_output_contents.append(np.float32([2]).tobytes())
    assert check(dec, topic, b"k", two.SerializeToString(), []) is None
    typed = ModelInferResponse(model_name="m", id="i")
    typed.outputs.add(name="p", datatype="FP32", shape=[1, 2]).contents.fp32_contents.extend([1, 2])
    assert check(dec, topic, b"k", typed.SerializeToString(), []) is None
    params = v2_message("outputs", "FP32", [1, 1], n=1)
    params.parameters["a"].bool_param = True
    assert check(dec, topic, b"k", params.SerializeToString(), []) is None
    partial = v2_message("outputs", "FP32", [1, 2], n=2)
    partial.raw_output_contents[0] = b"\x00" * 7
    assert check(dec, topic, b"k", partial.SerializeToString(), []) is None
    good = v2_message("outputs", "FP32", [1, 2], n=2, id="i").SerializeToString()
    for cut in range(len(good)):
        check(dec, topic, b"k", good[:cut], [])
    check(dec, topic, b"k", good + b"\x00", [])
    assert check(dec, topic, None, v2_message("outputs", n=4).SerializeToString(), []) is None
    assert check(dec, topic, b"", good, []).request_id == "i"
    assert check(dec, topic, b"0.m.", good, []).request_id == "i"
    json_body = b' {"id": "j", "outputs": [{"name": "p", "shape": [1], "datatype": "FP64", ' \
                b'"data": [0.5]}]}'
    assert check(dec, topic, b"k", json_body, []) is None
    for t in ("seldon.ns.model.a.b.inputs", "seldon.ns.model..inputs", "seldon..model.m.inputs",
              "seldon.ns.model.m.inputs\n", "seldon.ns.model.m.input"):
        check(dec, t, b"k", v2_message("inputs", n=4).SerializeToString(), [])


# --- generated records -----------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**65), max_value=2**65)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4)
           | st.sampled_from([0.1, -0.0, 1e-320, 5e-324, 1.7976931348623157e308, 2**63 - 1]))
rows_1d = st.lists(scalars, max_size=6)
ndarrays = rows_1d | st.lists(rows_1d, max_size=4) | st.lists(
    st.lists(rows_1d, max_size=2), max_size=2)
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.text(max_size=4), c, max_size=3), max_leaves=8)
seldon_bodies = st.fixed_dictionaries(
    {"data": st.fixed_dictionaries({}, optional={
        "names": st.lists(st.text(max_size=3), max_size=6) | json_values,
        "ndarray": ndarrays | json_values,
        "tensor": st.fixed_dictionaries({"shape": st.lists(st.integers(-1, 4), max_size=3)
                                         | json_values, "values": rows_1d | json_values}),
    })},
    optional={"meta": st.fixed_dictionaries({}, optional={
        "requestPath": st.dictionaries(st.sampled_from(["classifier", "n", "x"]),
                                       st.sampled_from(["img:1.2", "a/b:c/d", "plain"])
                                       | json_values, max_size=3) | json_values,
        "puid": st.text(max_size=3) | json_values, "tags": json_values}) | json_values,
     "strData": st.text(max_size=3)},
)
header_names = st.sampled_from(["type", "requestid", "inferenceservicename", "modelid",
                                "component", "namespace", "endpoint", "time", "id", "protocol",
                                "specversion", "content-type", "datacontenttype", "other",
                                "x-request-id"])
prefixes = st.sampled_from(["", "ce-", "ce_", "Ce-", "CE_"])
header_values = st.sampled_from([REQ, RESP, "io.seldon.serving.feedback", "", "classifier",
                                 "iris", "application/json", "application/x-protobuf",
                                 "2020-11-06T09:35:09.171644169Z", "2020-11-06T09:35:09Z",
                                 "2020-11-06T10:35:09+01:00", "2020-13-06T09:35:09Z", "1.0",
                                 "0001-01-01T00:00:00Z", "9999-12-31T23:59:60.999999999Z"]) \
    | st.text(max_size=5)


@st.composite
def header_lists(draw):
    items = draw(st.lists(st.tuples(prefixes, header_names, header_values), max_size=9))
    out = [(p + n if p.islower() or not n else p + n.capitalize(),
            v.encode() if draw(st.booleans()) else v) for p, n, v in items]
    if draw(st.booleans()):
        out = [("type", REQ.encode()), ("requestid", b"r"), ("inferenceservicename", b"m"),
               *out]
    if draw(st.integers(0, 9)) == 0:
        out.append(("requestid", b"\xff"))
    return dict(out) if draw(st.integers(0, 5)) == 0 else out


SHARED = new_decoder()  # kept across examples: its caches must not change any answer


@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(seldon_bodies | json_values, header_lists(),
       st.sampled_from([None, b"k1", "k2", b"", b"\xff", b"0.m.k3"]),
       st.sampled_from(["seldon", "predlog.events", "mlserver-output"]),
       st.sampled_from([1.7e12, 0, 1_600_000_000_123, -5.5]),
       st.booleans())
def test_generated_v1_records(obj, headers, key, topic, ts, ascii_json):
    try:
        value = json.dumps(obj, ensure_ascii=ascii_json).encode()
    except (ValueError, OverflowError):
        return
    check(SHARED, topic, key, value, headers, ts, 1, 2)
    check(new_decoder(), topic, key, value, headers, ts, 1, 2)


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.sampled_from(["inputs", "outputs"]),
       st.sampled_from(["FP32", "FP64", "INT32", "INT64", "UINT8", "INT8", "UINT64", "FP16",
                        "BOOL", "BYTES", "XX"]),
       st.lists(st.integers(-2, 5), max_size=3), st.binary(max_size=48),
       st.sampled_from(["", "i1"]), st.sampled_from(["", "7"]),
       st.sampled_from([None, b"k", b"0.m.k", b"", "s.k", b"\xff"]),
       st.sampled_from([[], [("x-request-id", b"h")], [("x-request-id", b"")], None,
                        [("X-Request-Id", "h2"), ("other", b"\xff")]]),
       st.integers(0, 3), st.binary(max_size=4))
def test_generated_v2_records(direction, dt, shape, raw, msg_id, version, key, headers, extra,
                              tail):
    cls = ModelInferRequest if direction == "inputs" else ModelInferResponse
    msg = cls(model_name="m", id=msg_id, model_version=version)
    tensors = msg.inputs if direction == "inputs" else msg.outputs
    contents = msg.raw_input_contents if direction == "inputs" else msg.raw_output_contents
    tensors.add(name="t", datatype=dt, shape=shape)
    contents.append(raw)
    if extra == 1:
        contents.append(raw)
    elif extra == 2:
        tensors.add(name="u", datatype=dt, shape=shape)
    value = msg.SerializeToString() + (tail if extra == 3 else b"")
    check(SHARED, f"seldon.ns.model.m.{direction}", key, value, headers, 1.7e12, 0, 9)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.binary(max_size=64), st.sampled_from(["seldon", "seldon.a.model.b.outputs",
                                                "seldon.a.model.b.inputs"]),
       st.sampled_from([v1_headers(), [], None]))
def test_arbitrary_bytes_never_raise(value, topic, headers):
    check(SHARED, topic, b"k", value, headers)


def test_decode_kafka_record_is_the_native_entry_with_the_python_fallback():
    """What consumers call answers like the Python definition, dead letters included."""
    cases = [("seldon", None, body(REQUEST_BODY), v1_headers()),
             ("seldon", None, b"{", v1_headers()),
             ("seldon", None, None, v1_headers()),
             ("seldon.ns.model.m.inputs", b"k", b"\x08", [])]
    for args in cases:
        for kwargs in ({}, {"partition": 4}, {"partition": 1, "offset": 7}):
            got = decode_kafka_record(*args, 1.7e12, **kwargs)
            want = decode_kafka_record_python(*args, 1.7e12, **kwargs)
            assert same(got, want)
    assert isinstance(decode_kafka_record(*cases[1], 1.7e12), DeadLetter)
    with pytest.raises(TypeError):
        decode_kafka_record(*cases[0], 1.7e12, bogus=1)


def test_a_panic_or_error_inside_becomes_none():
    """Classes that fail to build make the decoder answer None, never raise."""
    def boom(*args):
        raise RuntimeError("no")

    dec = predlog_native.Decoder(boom, boom, boom, "request", "response")
    assert dec.decode_kafka("seldon", None, body(REQUEST_BODY), v1_headers(), 1.7e12, -1, -1) \
        is None



plain_text = st.text(st.characters(blacklist_characters='"\\', blacklist_categories=("Cs", "Cc")),
                     max_size=6)
common_scalars = (st.floats(allow_nan=False, allow_infinity=False)
                  | st.integers(min_value=-(2**63), max_value=2**63 - 1)
                  | st.booleans() | st.none() | plain_text)
common_rows = st.lists(st.lists(common_scalars, min_size=1, max_size=8), min_size=1, max_size=4)
times = st.datetimes(min_value=__import__("datetime").datetime(1970, 1, 1),
                     max_value=__import__("datetime").datetime(2200, 1, 1))


@settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))
@given(common_rows | st.lists(common_scalars, max_size=8), st.booleans(),
       st.lists(plain_text, max_size=8) | st.none(), st.booleans(), st.integers(0, 3),
       times | st.none(), st.integers(0, 999_999_999), plain_text.filter(bool), st.booleans())
def test_generated_common_v1_records_are_answered(ndarray, response, names, with_meta, node,
                                                  when, nanos, rid, binding):
    """The shapes the fast path is for: always answered natively, always the same."""
    data = {"ndarray": ndarray} if names is None else {"names": names, "ndarray": ndarray}
    obj = {"data": data}
    if with_meta:
        obj["meta"] = {"requestPath": {"classifier": "img:1.2", "other": "x/y:z"}, "puid": "p"}
    prefix = "ce_" if binding else ""
    headers = [(prefix + "type", (RESP if response else REQ).encode()),
               (prefix + "requestid", rid.encode()),
               (prefix + "inferenceservicename", b"iris"),
               (prefix + "modelid", [b"classifier", b"other", b"", b"nothere"][node])]
    if binding:
        headers.append(("ce_specversion", b"1.0"))
    if when is not None:
        stamp = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{nanos:09d}Z" if nanos % 3 else "Z")
        headers.append((prefix + "time", stamp.encode()))
    value = json.dumps(obj, ensure_ascii=False).encode()
    assert check(SHARED, "seldon", None, value, headers, 1.7e12, 0, 1) is not None
