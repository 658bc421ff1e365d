"""The decoders' fast paths give exactly what the general paths give.

Each fast path returns None (or falls through) for anything but its common shape;
whenever it does answer, the answer must equal the general path's, types included
(`1` is not `1.0`, `True` is not `1`): compared with `==` and `repr`.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.decode import cloudevent, seldon_v2
from stream.decode.bodies import parse_body
from stream.decode.cloudevent import _normalize_each, normalize_headers
from stream.decode.fastbody import seldon_message_body
from stream.decode.kafka_records import decode_kafka_record
from stream.decode.lines import decode_line, decode_line_python
from stream.decode.oip.inference_pb2 import ModelInferRequest, ModelInferResponse
from stream.decode.oiptensors import raw_tensor_rows, tensors_to_rows
from stream.events import DecodeError, PredictionEvent

SAMPLE = Path(__file__).parents[2] / "agents" / "data" / "seldon-sample.ndjson"


def same(a, b) -> bool:
    return a == b and repr(a) == repr(b)


@pytest.fixture
def general_paths(monkeypatch):
    """Switch the fast paths off: decoding then takes only the general paths."""
    def decode_general(fn, *args, **kwargs):
        import stream.decode.kafka_records as kr
        if fn is decode_kafka_record:  # without the compiled fast path in front
            fn = kr.decode_kafka_record_python
        if fn is decode_line:
            fn = decode_line_python
        with monkeypatch.context() as m:
            m.setattr(cloudevent, "seldon_message_body", lambda obj, response: None)
            m.setattr(cloudevent, "normalize_headers", _normalize_each)
            m.setattr(seldon_v2, "raw_tensor_rows", lambda tensors, raw: None)
            m.setattr(seldon_v2, "normalize_headers", _normalize_each)
            m.setattr(kr, "normalize_headers", _normalize_each)
            return fn(*args, **kwargs)
    return decode_general


def test_event_field_order_is_what_the_decoders_pass_positionally():
    assert PredictionEvent.__struct_fields__ == (
        "kind", "request_id", "model", "event_time", "protocol", "source_format", "event_id",
        "feature_names", "rows", "output_names", "outputs", "truth", "reward", "error",
        "error_type", "raw", "headers", "source")


# --- whole events: fixtures through both paths ------------------------------------------

def test_sample_lines_decode_the_same(general_paths):
    lines = SAMPLE.read_bytes().splitlines()
    assert len(lines) > 300
    for line in lines:
        general = general_paths(decode_line, line)
        # the compiled fast path (when installed), then the Python fast paths alone
        assert same(decode_line(line), general), line
        assert same(decode_line_python(line), general), line


def _kafka_cases():
    base = [("requestid", b"p1"), ("modelid", b"classifier"), ("inferenceservicename", b"iris"),
            ("namespace", b"prod"), ("endpoint", b"default"), ("content-type", b"application/json")]
    req, resp = ("type", b"io.seldon.serving.inference.request"), (
        "type", b"io.seldon.serving.inference.response")
    bodies = [
        (req, {"data": {"names": ["a", "b"], "ndarray": [[1, 2.5], [3, 4]]}}),
        (req, {"data": {"ndarray": [1.0, 2, True, None, "x"]}}),
        (resp, {"data": {"ndarray": [0.25, 0.75]}, "meta": {"puid": "x1"}}),
        (resp, {"data": {"names": ["proba"], "ndarray": [[0.4378]]},
                "meta": {"requestPath": {"classifier": "seldonio/sklearnserver:1.17.1"}}}),
        (resp, {"data": {"names": [1, 2.0], "ndarray": [[1, 2]]}, "meta": {"tags": {"a": 1}}}),
        (req, {"data": {"ndarray": [[1, [2]], [3, [4]]]}}),
        (req, {"data": {"ndarray": [[[1, 2]], [[3, 4]]]}}),
        (req, {"data": {"ndarray": [[1, 2], 3]}}),
        (req, {"data": {"ndarray": []}}),
        (req, {"data": {"ndarray": [[], []]}}),
        (req, {"data": {"names": "a", "ndarray": [[1]]}}),
        (req, {"data": {"tensor": {"shape": [1, 2], "values": [1, 2]}}}),
        (req, {"data": {"tensor": {"shape": [2], "values": [1.5, 2]}}}),
        (resp, {"data": {"tensor": {"shape": [2], "values": [1.5, 2]}}}),
        (resp, {"data": {"names": ["a", "b"],
                         "tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}}),
        (req, {"data": {"tensor": {"shape": [2, 2], "values": [1, 2, 3]}}}),
        (req, {"data": {"tensor": {"shape": [2.0, 1], "values": [1, 2]}}}),
        (req, {"data": {"tensor": {"shape": [1, 2], "values": [[1, 2]]}}}),
        (req, {"data": {"tensor": [1, 2]}}),
        (req, {"strData": "hello"}),
        (resp, {"status": {"status": "FAILURE", "info": "boom", "code": 500}, "data": {}}),
        (resp, {"data": {"ndarray": [[1]]}, "meta": {"requestPath": ["x"]}}),
        (resp, {"data": {"ndarray": [[1]]}, "meta": "odd"}),
        (req, {"data": {"ndarray": [[2**63, 1e308, 1e308]]}}),  # sum overflows
        (req, [1, 2]),
    ]
    for ce_type, body in bodies:
        yield [ce_type, *base], orjson.dumps(body)
    yield [req, *base], b'{"data": {"ndarray": [[1.0, NaN]]}}'
    yield [req, *base], b'{"data": {"ndarray": [[1e999]]}}'
    yield [req, ("requestid", b"\xff\xfe"), ("inferenceservicename", "str-value")], b'{"data":{}}'
    yield {"ce_type": "io.seldon.serving.inference.request", "ce_requestid": "r",
           "ce_inferenceservicename": "m"}, b'{"data": {"ndarray": [[1]]}}'


@pytest.mark.parametrize("headers, value", list(_kafka_cases()))
def test_seldon_kafka_records_decode_the_same(general_paths, headers, value):
    args = ("seldon", b"key", value, headers, 1.7e12)
    fast = decode_kafka_record(*args, partition=1, offset=5)
    assert same(fast, general_paths(decode_kafka_record, *args, partition=1, offset=5))


def _v2_messages():
    for dt, np_dt in (("FP32", "<f4"), ("FP64", "<f8"), ("INT32", "<i4"), ("INT64", "<i8"),
                      ("UINT8", "<u1"), ("INT16", "<i2"), ("UINT64", "<u8"), ("FP16", "<f2"),
                      ("BOOL", "<?")):
        for shape, n in (([1, 4], 4), ([2, 2], 4), ([4], 4), ([4, 1], 4), ([], 3), ([0, 3], 0),
                         ([2, 3, 1], 6), ([2, 2], 3), ([-1, -4], 4)):
            x = (np.arange(n) * 1.5 + 1).astype(np_dt)
            r = ModelInferRequest(model_name="m", model_version="1", id="i")
            r.inputs.add(name="x", datatype=dt, shape=shape)
            r.raw_input_contents.append(x.tobytes())
            yield "inputs", r
    for special in (float("nan"), float("inf"), -float("inf"), 1e308):
        r = ModelInferResponse(model_name="m", id="i")
        r.outputs.add(name="p", datatype="FP64", shape=[2, 1])
        r.raw_output_contents.append(np.array([1e308, special]).tobytes())
        yield "outputs", r
    r = ModelInferResponse(model_name="m", id="i")
    r.outputs.add(name="p", datatype="FP32", shape=[1, 2])
    r.raw_output_contents.append(b"\x00" * 7)
    yield "outputs", r
    r = ModelInferResponse(model_name="m", id="i")
    r.outputs.add(name="p", datatype="FP32", shape=[1, 2]).contents.fp32_contents.extend([1, 2])
    yield "outputs", r


@pytest.mark.parametrize("direction, msg", list(_v2_messages()))
def test_seldon_v2_records_decode_the_same(general_paths, direction, msg):
    args = (f"seldon.ns.model.m.{direction}", b"0.m.k1", msg.SerializeToString(),
            [("x-request-id", b"r1")], 1.7e12)
    assert same(decode_kafka_record(*args), general_paths(decode_kafka_record, *args))


# --- bodies: generated SeldonMessage ndarrays --------------------------------------------

scalars = (st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False, allow_infinity=False)
           | st.booleans() | st.none() | st.text(max_size=3))
ndarrays = st.one_of(
    st.lists(scalars, max_size=5),
    st.lists(st.lists(scalars, max_size=4), max_size=4),
    st.lists(st.lists(scalars, min_size=2, max_size=3), min_size=1, max_size=3),  # rows alike
    st.lists(st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1),
             max_size=3),
    st.lists(st.one_of(scalars, st.lists(scalars | st.lists(scalars, max_size=2), max_size=3)),
             max_size=4),  # ragged and deeper
    scalars,
)
names = st.none() | st.lists(st.text(max_size=3) | st.integers(-(2**63), 2**63 - 1) | st.floats(),
                             max_size=4) | (
    st.text(max_size=3))
metas = st.none() | st.fixed_dictionaries({}, optional={
    "requestPath": st.dictionaries(st.text(max_size=3), st.text(max_size=12) | st.integers(-5, 5),
                                   max_size=2) | st.lists(st.integers(-5, 5), max_size=2),
    "puid": st.text(max_size=4) | st.integers(-5, 5),
    "tags": st.dictionaries(st.text(max_size=3), scalars, max_size=2),
}) | st.text(max_size=3)
tensors = st.fixed_dictionaries({
    "shape": st.lists(st.integers(-1, 4), max_size=3) | st.lists(st.booleans() | st.floats(0, 3),
                                                             max_size=2) | scalars,
    "values": ndarrays}) | st.builds(  # consistent ones: [n, w] or [k] and n * w values
    lambda n, w, flat, values: {"shape": [n * w] if flat else [n, w], "values": values[: n * w]},
    st.integers(1, 3), st.integers(1, 3), st.booleans(), st.lists(scalars, min_size=9, max_size=9))
datas = st.fixed_dictionaries({"ndarray": ndarrays}) | st.fixed_dictionaries(
    {"tensor": tensors}) | st.fixed_dictionaries({"ndarray": ndarrays, "tensor": tensors}) | (
    st.just({}))
seldon_bodies = st.builds(
    lambda data, nm, meta, extra: {
        "data": {**data, **({"names": nm} if nm is not None else {})},
        **({"meta": meta} if meta is not None else {}), **extra},
    datas, names, metas,
    st.just({}) | st.sampled_from([{"strData": "s"}, {"status": {"status": "FAILURE"}},
                                   {"error": "e"}, {"jsonData": 1}]),
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(seldon_bodies, st.booleans())
def test_fast_seldon_body_equals_the_general_one(body, response):
    obj = orjson.loads(orjson.dumps(body))  # what decoders see: orjson's own output
    fast = seldon_message_body(obj, response)
    obj = orjson.loads(orjson.dumps(body))
    try:
        general = parse_body(obj, response=response)
    except Exception:  # DecodeError, or a bug the decoder boundary turns into a dead letter
        assert fast is None
        return
    assert fast is None or same(fast, general)


@settings(max_examples=300,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(seldon_bodies, st.booleans(), st.sampled_from(["", "NaN", "Infinity", "-Infinity",
                                                      "1e999"]))
def test_whole_events_equal_with_and_without_fast_paths(general_paths, body, response, odd):
    raw = orjson.dumps(body)
    if odd:  # a non-finite number where a value was: both paths must dead-letter it alike
        raw = raw.replace(b'"ndarray":[', b'"ndarray":[' + odd.encode() + b",", 1)
    ce_type = b"io.seldon.serving.inference." + (b"response" if response else b"request")
    headers = [("type", ce_type), ("requestid", b"r"), ("inferenceservicename", b"m"),
               ("modelid", b"classifier")]
    args = ("seldon", None, raw, headers, 1.7e12)
    assert same(decode_kafka_record(*args), general_paths(decode_kafka_record, *args))


# --- headers ------------------------------------------------------------------------------

header_names = st.sampled_from(["ce-type", "Ce-Type", "ce_requestid", "type", "Content-Type",
                                "x-request-id", "CE_ID", "ce-"]) | st.text(max_size=6)
header_values = st.binary(max_size=6) | st.text(max_size=6) | st.none() | st.integers()


@settings(max_examples=500)
@given(st.lists(st.tuples(header_names, header_values), max_size=8))
def test_fast_header_normalization_equals_the_general_one(items):
    assert same(normalize_headers(items), _normalize_each(items))
    as_dict = dict(items)
    assert same(normalize_headers(as_dict), _normalize_each(as_dict))


# --- OIP raw tensors ----------------------------------------------------------------------

DATATYPES = ["FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32",
             "UINT64", "FP16", "BOOL", "BYTES", "ODD"]


def _tensor_message(datatype: str, shape: list[int], raw: bytes, extra: bool):
    m = ModelInferResponse()
    m.outputs.add(name="t", datatype=datatype, shape=shape)
    m.raw_output_contents.append(raw)
    if extra:
        m.outputs.add(name="u", datatype="INT32", shape=[1])
        m.raw_output_contents.append(struct.pack("<i", 7))
    return m


special_floats = st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 3.4e38, 1e-45])


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DATATYPES),
       st.lists(st.integers(-2, 5), max_size=3),
       st.binary(max_size=48) | st.lists(st.floats() | special_floats | st.just(1e308),
                                         max_size=8).map(
           lambda xs: np.array(xs, dtype="<f8").tobytes())
       | st.lists(st.floats(width=32) | special_floats, max_size=8).map(
           lambda xs: np.array(xs, dtype="<f4").tobytes()),
       st.booleans())
def test_fast_raw_tensor_rows_equal_the_general_ones(datatype, shape, raw, extra):
    m = _tensor_message(datatype, shape, raw, extra)
    fast = raw_tensor_rows(m.outputs, m.raw_output_contents)
    try:
        general = tensors_to_rows(m.outputs, m.raw_output_contents)
    except DecodeError:
        assert fast is None
        return
    assert fast is None or same(fast, general)


def test_raw_tensor_fast_path_answers_the_common_shapes():
    for shape in ([1, 3], [3], [3, 1], [], [1, 1]):
        m = _tensor_message("FP32", shape, np.array([1, 2, 3][: max(1, math.prod(shape))],
                                                   dtype="<f4").tobytes(), False)
        assert raw_tensor_rows(m.outputs, m.raw_output_contents) is not None, shape
    for data in ({"names": ["a"], "ndarray": [[1.5]]}, {"ndarray": [0.5, 1]},
                 {"tensor": {"shape": [2, 2], "values": [1, 2, 3, 4]}}):
        body = json.dumps({"data": data, "meta": {"requestPath": {"m": "img:1"}}})
        assert seldon_message_body(orjson.loads(body), True) is not None, data
