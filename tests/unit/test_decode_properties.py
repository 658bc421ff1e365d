"""Property tests: no input makes a decoder raise; each gives events or a dead letter."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.decode.kafka_records import decode_kafka_record
from stream.decode.lines import decode_line
from stream.events import DeadLetter, PredictionEvent

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
ce_types = st.sampled_from([
    "io.seldon.serving.inference.request", "io.seldon.serving.inference.response",
    "io.seldon.serving.feedback", "org.kubeflow.serving.inference.request",
    "org.kubeflow.serving.inference.response", "other",
])
bodies = st.one_of(
    json_values,
    st.fixed_dictionaries({"data": st.fixed_dictionaries({"ndarray": json_values})}),
    st.fixed_dictionaries({"data": st.fixed_dictionaries(
        {"tensor": st.fixed_dictionaries({"shape": json_values, "values": json_values})})}),
    st.fixed_dictionaries({"inputs": json_values}),
    st.fixed_dictionaries({"outputs": st.lists(st.fixed_dictionaries(
        {"name": st.text(max_size=3), "shape": json_values, "data": json_values}), max_size=3)}),
    st.fixed_dictionaries({"instances": json_values}),
    st.fixed_dictionaries({"truth": json_values, "reward": json_values}),
)
headers = st.fixed_dictionaries(
    {"ce-type": ce_types},
    optional={"ce-requestid": st.text(max_size=5), "ce-id": st.text(max_size=5),
              "ce-inferenceservicename": st.text(max_size=5), "ce-time": st.text(max_size=30),
              "content-type": st.sampled_from(["application/json", "application/protobuf"])},
)


def _check(item):
    assert isinstance(item, PredictionEvent | DeadLetter)
    if isinstance(item, DeadLetter):
        assert item.reason and item.reason != "decoder_error", item


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_raise(raw):
    _check(decode_line(raw))
    for topic in ("seldon", "predlog.events", "seldon.ns.model.m.inputs",
                  "seldon.ns.model.m.outputs", "mlserver-output"):
        _check(decode_kafka_record(topic, raw[:4], raw, [("ce_type", raw[:8])], 0))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_arbitrary_json_never_raises(obj):
    _check(decode_line(json.dumps(obj).encode()))


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(headers, bodies)
def test_logger_shaped_events_never_raise(h, body):
    line = json.dumps({"headers": h, "body": json.dumps(body)}).encode()
    item = decode_line(line)
    _check(item)
    if isinstance(item, PredictionEvent):
        assert item.request_id
        assert all(isinstance(r, list) for r in item.rows + item.outputs)
