"""Decoders per wire format, with fixtures written from the documented shapes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from stream.decode.cloudevent import decode_cloudevent
from stream.decode.kafka_records import decode_kafka_record
from stream.decode.lines import decode_line
from stream.decode.oip.inference_pb2 import ModelInferRequest, ModelInferResponse
from stream.events import DeadLetter, DecodeError, EventKind

SELDON_HEADERS = {
    "ce-id": "e276", "ce-requestid": "33fb", "ce-type": "io.seldon.serving.inference.request",
    "ce-modelid": "classifier", "ce-inferenceservicename": "model-logs", "ce-namespace": "seldon",
    "ce-endpoint": "logging", "ce-time": "2020-11-06T09:35:09.171644169Z",
    "ce-source": "http://:8000/", "ce-specversion": "1.0", "content-type": "application/json",
}


def seldon(kind: str, body: dict, **extra) -> dict:
    h = dict(SELDON_HEADERS, **{"ce-type": f"io.seldon.serving.{kind}"})
    h.update(extra)
    return h, json.dumps(body).encode()


def test_seldon_v1_captured_request_from_the_docs():
    line = json.dumps({"headers": SELDON_HEADERS,
                       "body": "{\"data\": {\"ndarray\":[[1.0, 2.0, 5.0]]}}"}).encode()
    ev = decode_line(line)
    assert ev.kind is EventKind.REQUEST
    assert ev.request_id == "33fb" and ev.event_id == "e276"
    assert (ev.model.model, ev.model.namespace, ev.model.node, ev.model.predictor) == (
        "model-logs", "seldon", "classifier", "logging")
    assert ev.rows == [[1.0, 2.0, 5.0]] and ev.feature_names is None
    assert ev.event_time == 1604655309171644169  # ce-time 2020-11-06T09:35:09.171644169Z
    assert ev.source_format == "seldon-v1-http"


def test_seldon_v1_response_names_and_version_from_request_path():
    h, b = seldon("inference.response", {
        "data": {"names": ["proba"], "ndarray": [[0.4378]]},
        "meta": {"requestPath": {"classifier": "seldonio/sklearnserver:1.17.1"}}})
    ev = decode_cloudevent(h, b, source_format="seldon-v1-http")
    assert ev.kind is EventKind.RESPONSE
    assert ev.outputs == [[0.4378]] and ev.output_names == ("proba",)
    assert ev.model.version == "1.17.1"


def test_version_is_empty_without_metadata():
    h, b = seldon("inference.response", {"data": {"ndarray": [[0.1]]}})
    assert decode_cloudevent(h, b, source_format="x").model.version == ""


def test_multi_row_batch_is_rows():
    h, b = seldon("inference.request", {"data": {"names": ["a", "b"],
                                                 "ndarray": [[1, 2], [3, 4], [5, 6]]}})
    ev = decode_cloudevent(h, b, source_format="x")
    assert ev.rows == [[1, 2], [3, 4], [5, 6]] and ev.feature_names == ("a", "b")
    assert ev.n_rows == 3


def test_tensor_body():
    h, b = seldon("inference.request", {"data": {"tensor": {"shape": [2, 3],
                                                            "values": [1, 2, 3, 4, 5, 6]}}})
    assert decode_cloudevent(h, b, source_format="x").rows == [[1, 2, 3], [4, 5, 6]]


def test_tensor_with_wrong_shape_is_an_error():
    h, b = seldon("inference.request", {"data": {"tensor": {"shape": [2, 3], "values": [1]}}})
    with pytest.raises(DecodeError) as exc:
        decode_cloudevent(h, b, source_format="x")
    assert exc.value.reason == "bad_shape"


def test_two_node_graph_keeps_node_and_shares_the_puid():
    events = [
        decode_cloudevent(*seldon("inference.request", {"data": {"ndarray": [[1, 2]]}},
                                  **{"ce-modelid": node}), source_format="x")
        for node in ("transformer", "classifier")
    ]
    assert {e.model.node for e in events} == {"transformer", "classifier"}
    assert {e.request_id for e in events} == {"33fb"}
    assert {e.model.model for e in events} == {"model-logs"}


def test_seldon_failure_response_is_an_error():
    h, b = seldon("inference.response", {"status": {
        "code": 500, "info": "boom", "reason": "MICROSERVICE_INTERNAL_ERROR",
        "status": "FAILURE"}})
    ev = decode_cloudevent(h, b, source_format="x")
    assert ev.error == "boom" and ev.error_type == "MICROSERVICE_INTERNAL_ERROR"
    assert ev.outputs == []


def test_json_str_and_bin_data_are_one_row():
    for key, val in (("jsonData", {"text": "hi"}), ("strData", "hello")):
        h, b = seldon("inference.request", {key: val})
        assert decode_cloudevent(h, b, source_format="x").rows == [[val]]


def test_feedback_truth_and_reward():
    h, b = seldon("feedback", {"request": {"data": {"ndarray": [[1, 2], [3, 4]]}},
                               "response": {"data": {"ndarray": [[0.2], [0.9]]}},
                               "truth": {"data": {"ndarray": [[0], [1]]}}, "reward": 0.5})
    ev = decode_cloudevent(h, b, source_format="x")
    assert ev.kind is EventKind.FEEDBACK and ev.truth == [0, 1] and ev.reward == 0.5
    assert ev.rows == [[1, 2], [3, 4]] and ev.n_rows == 2


def test_tensorflow_instances_and_predictions():
    h, b = seldon("inference.request", {"instances": [{"a": 1, "b": 2}, {"a": 3, "b": 4}]},
                  **{"ce-protocol": "tensorflow"})
    ev = decode_cloudevent(h, b, source_format="x")
    assert ev.rows == [[1, 2], [3, 4]] and ev.feature_names == ("a", "b")
    assert ev.protocol == "tensorflow"
    h, b = seldon("inference.response", {"predictions": [0, 1]})
    assert decode_cloudevent(h, b, source_format="x").outputs == [[0], [1]]


def test_oip_json_body_gives_names_and_version():
    h, b = seldon("inference.request", {
        "id": "r", "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32",
                               "data": [1, 2, 3, 4]}]})
    ev = decode_cloudevent(h, b, source_format="x")
    assert ev.rows == [[1, 2], [3, 4]] and ev.feature_names is None
    h, b = seldon("inference.response", {
        "model_name": "iris", "model_version": "v3", "id": "r",
        "outputs": [{"name": "predict", "shape": [2], "datatype": "INT64", "data": [0, 2]}]})
    ev = decode_cloudevent(h, b, source_format="x")
    assert ev.outputs == [[0], [2]] and ev.output_names == ("predict",)
    assert ev.model.version == "v3"


def test_structured_mode_cloudevent():
    obj = {"specversion": "1.0", "id": "e", "type": "io.seldon.serving.inference.request",
           "source": "x", "requestid": "r9", "inferenceservicename": "iris",
           "namespace": "ns", "time": "2024-01-01T00:00:00Z",
           "datacontenttype": "application/json", "data": {"data": {"ndarray": [[1, 2]]}}}
    ev = decode_line(json.dumps(obj).encode())
    assert ev.request_id == "r9" and ev.rows == [[1, 2]] and ev.model.model == "iris"
    assert ev.event_time == 1704067200 * 10**9


def test_kserve_ce_id_is_the_correlation_key():
    h = {"Ce-Id": "same-id", "Ce-Type": "org.kubeflow.serving.inference.request",
         "Ce-Inferenceservicename": "sklearn-iris", "Ce-Namespace": "kserve",
         "Ce-Component": "predictor", "Ce-Endpoint": "default",
         "Ce-Time": "2024-01-01T00:00:00Z", "Content-Type": "application/json"}
    req = decode_cloudevent(h, b'{"instances": [[6.8, 2.8, 4.8, 1.4]]}', source_format="x")
    h2 = dict(h, **{"Ce-Type": "org.kubeflow.serving.inference.response"})
    resp = decode_cloudevent(h2, b'{"predictions": [1]}', source_format="x")
    assert req.request_id == resp.request_id == "same-id"
    assert req.source_format == "x" and resp.outputs == [[1]]
    assert req.model.node == "predictor" and req.model.predictor == "default"


def test_seldon_v1_kafka_mode_uses_record_time_and_bare_headers():
    headers = [("type", b"io.seldon.serving.inference.request"), ("requestid", b"p1"),
               ("modelid", b"classifier"), ("inferenceservicename", b"iris"),
               ("namespace", b"prod"), ("endpoint", b"default"), ("protocol", b"seldon"),
               ("content-type", b"application/json")]
    ev = decode_kafka_record("seldon", None, b'{"data": {"ndarray": [[1, 2]]}}', headers,
                             1_700_000_000_123, partition=2, offset=7)
    assert ev.request_id == "p1" and ev.event_time == 1_700_000_000_123_000_000
    assert ev.source_format == "seldon-v1-kafka"
    assert (ev.source.topic, ev.source.partition, ev.source.offset) == ("seldon", 2, 7)


def _v2_request(raw: bool) -> ModelInferRequest:
    r = ModelInferRequest(model_name="iris", model_version="2", id="msg-id")
    a = r.inputs.add(name="x", datatype="FP32", shape=[2, 3])
    s = r.inputs.add(name="tag", datatype="BYTES", shape=[2])
    if raw:
        r.raw_input_contents.append(np.array([1, 2, 3, 4, 5, 6], dtype="<f4").tobytes())
        r.raw_input_contents.append(b"".join(len(x).to_bytes(4, "little") + x
                                             for x in (b"ab", b"c")))
    else:
        a.contents.fp32_contents.extend([1, 2, 3, 4, 5, 6])
        s.contents.bytes_contents.extend([b"ab", b"c"])
    return r


@pytest.mark.parametrize("raw", [True, False])
@pytest.mark.parametrize("key", [b"req-1", b"iris.req-1", b"0.iris.req-1"])
def test_seldon_v2_protobuf_request_all_key_forms(raw, key):
    ev = decode_kafka_record("seldon.prod.model.iris.inputs", key,
                             _v2_request(raw).SerializeToString(), [], 1_700_000_000_000)
    assert isinstance(ev, type(ev)) and not isinstance(ev, DeadLetter), ev
    assert ev.request_id == "req-1" and ev.kind is EventKind.REQUEST
    assert ev.rows == [[1.0, 2.0, 3.0, "ab"], [4.0, 5.0, 6.0, "c"]]
    assert ev.feature_names == ("x_0", "x_1", "x_2", "tag")
    assert (ev.model.namespace, ev.model.model, ev.model.version) == ("prod", "iris", "2")


def test_seldon_v2_header_beats_key_and_response_raw_outputs():
    r = ModelInferResponse(model_name="iris", model_version="1", id="m")
    r.outputs.add(name="predict", datatype="INT64", shape=[3, 1])
    r.raw_output_contents.append(np.array([0, 2, 1], dtype="<i8").tobytes())
    ev = decode_kafka_record("seldon.ns.model.iris.outputs", b"other",
                             r.SerializeToString(), [("x-request-id", b"hdr")], 1e12)
    assert ev.request_id == "hdr" and ev.outputs == [[0], [2], [1]]
    assert ev.output_names == ("predict",)


def test_seldon_v2_json_variant():
    body = {"model_name": "iris", "id": "j1", "outputs": [
        {"name": "p", "shape": [1, 3], "datatype": "FP64", "data": [0.1, 0.2, 0.7]}]}
    ev = decode_kafka_record("seldon.ns.model.iris.outputs", b"j1",
                             json.dumps(body).encode(), [], 1e12)
    assert ev.outputs == [[0.1, 0.2, 0.7]] and ev.protocol == "v2-json"


def test_v2_raw_contents_of_the_wrong_length_is_a_dead_letter():
    r = _v2_request(raw=True)
    r.raw_input_contents[0] = b"\x00" * 7
    dl = decode_kafka_record("seldon.ns.model.iris.inputs", b"k", r.SerializeToString(), [], 0)
    assert isinstance(dl, DeadLetter) and dl.reason == "bad_raw_contents"


def test_mlserver_output_topic():
    body = {"model_name": "income", "model_version": "v1", "id": "m1",
            "outputs": [{"name": "predict", "shape": [1], "datatype": "INT64", "data": [1]}]}
    headers = [("Ce-Type", b"io.seldon.serving.inference.response"), ("Ce-Requestid", b"m1"),
               ("mlserver-model", b"income")]
    ev = decode_kafka_record("mlserver-output", b"m1", json.dumps(body).encode(), headers, 1e12)
    assert ev.kind is EventKind.RESPONSE and ev.model.model == "income"
    assert ev.model.version == "v1" and ev.outputs == [[1]]
    req = {"id": "m1", "inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32",
                                   "data": [1, 2]}]}
    ev = decode_kafka_record("mlserver-input", b"m1", json.dumps(req).encode(),
                             [("mlserver-model", b"income")], 1e12)
    assert ev.kind is EventKind.REQUEST and ev.request_id == "m1" and ev.rows == [[1, 2]]


@pytest.mark.parametrize(
    "headers, body, reason",
    [
        ({"ce-type": "io.seldon.serving.inference.request"}, b"{", "invalid_json"),
        ({"ce-type": "com.example"}, b"{}", "unknown_event_type"),
        ({}, b"{}", "missing_event_type"),
        ({"ce-type": "io.seldon.serving.inference.request", "ce-inferenceservicename": "m",
          "ce-time": "2024-01-01T00:00:00Z"}, b'{"data": {"ndarray": [[1]]}}',
         "missing_request_id"),
        ({"ce-type": "io.seldon.serving.inference.request", "ce-requestid": "r",
          "ce-time": "2024-01-01T00:00:00Z"}, b'{"data": {"ndarray": [[1]]}}', "missing_model"),
        ({"ce-type": "io.seldon.serving.inference.request", "ce-requestid": "r",
          "ce-inferenceservicename": "m", "ce-time": "2024-01-01T00:00:00Z"},
         b'{"data": {"ndarray": [[1, [2]]]}}', "bad_shape"),
        ({"ce-type": "io.seldon.serving.inference.request", "ce-requestid": "r",
          "ce-inferenceservicename": "m"}, b'{"data": {"ndarray": [[1]]}}', "missing_time"),
        ({"ce-type": "io.seldon.serving.inference.request", "ce-requestid": "r",
          "ce-inferenceservicename": "m", "ce-time": "noon"}, b'{"data": {"ndarray": [[1]]}}',
         "bad_time"),
        ({"ce-type": "io.seldon.serving.inference.request", "ce-requestid": "r",
          "ce-inferenceservicename": "m", "ce-time": "2024-01-01T00:00:00Z"}, b"[1, 2]",
         "bad_shape"),
    ],
)
def test_bad_input_becomes_a_dead_letter_with_a_reason(headers, body, reason):
    line = json.dumps({"headers": headers, "body": body.decode()}).encode()
    dl = decode_line(line)
    assert isinstance(dl, DeadLetter), dl
    assert dl.reason == reason and dl.raw == line


def test_non_finite_numbers_are_dead_letters():
    h, _ = seldon("inference.request", {})
    for body in (b'{"data": {"ndarray": [[1e999, 1]]}}', b'{"data": {"ndarray": [[NaN, 1]]}}'):
        line = json.dumps({"headers": h, "body": body.decode()}).encode()
        assert decode_line(line).reason == "non_finite_value"
    r = _v2_request(raw=True)
    r.raw_input_contents[0] = np.array([1, np.nan, 3, 4, 5, 6], dtype="<f4").tobytes()
    dl = decode_kafka_record("seldon.ns.model.iris.inputs", b"k", r.SerializeToString(), [], 0)
    assert dl.reason == "non_finite_value"
    r = _v2_request(raw=False)
    r.inputs[0].contents.fp32_contents[0] = float("inf")
    dl = decode_kafka_record("seldon.ns.model.iris.inputs", b"k", r.SerializeToString(), [], 0)
    assert dl.reason == "non_finite_value"


def test_ingest_keeps_the_logged_nanoseconds():
    """The CloudEvents SDK rewrites `ce-time` through a datetime (microseconds); the Kafka
    record carries the logged text, so a worker reads the same int ns as a replay."""
    from stream.decode.ingest import http_to_kafka

    headers = {"ce-specversion": "1.0", "ce-id": "e1", "ce-source": "s",
               "ce-type": "io.seldon.serving.inference.request", "ce-requestid": "r1",
               "ce-inferenceservicename": "iris", "ce-time": "2026-11-01T00:00:00.000041123Z",
               "content-type": "application/json"}
    rec = http_to_kafka(headers, b'{"data": {"ndarray": [[1, 2]]}}')
    assert dict(rec.headers)["ce_time"] == b"2026-11-01T00:00:00.000041123Z"
    assert rec.event.event_time == 1_793_491_200_000_041_123
    again = decode_kafka_record("predlog.events", rec.key, rec.value, rec.headers, 0)
    assert again.event_time == rec.event.event_time
