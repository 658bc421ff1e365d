"""Logger CloudEvents (Seldon Core v1, KServe, MLServer) → `PredictionEvent`.

Works on an already-split event: a header mapping and the body bytes. Binary-mode
HTTP headers (`Ce-Type`), Kafka binding headers (`ce_type`) and Seldon's Kafka
mode (bare `type`) all normalize to the same attribute names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stream.decode.bodies import Body, parse_body
from stream.decode.fastbody import seldon_message_body
from stream.decode.jsonbody import loads
from stream.events import DecodeError, EventKind, ModelRef, PredictionEvent
from stream.eventtime import parse_rfc3339

SELDON_TYPES = {
    "io.seldon.serving.inference.request": EventKind.REQUEST,
    "io.seldon.serving.inference.response": EventKind.RESPONSE,
    "io.seldon.serving.feedback": EventKind.FEEDBACK,
}
KSERVE_TYPES = {
    "org.kubeflow.serving.inference.request": EventKind.REQUEST,
    "org.kubeflow.serving.inference.response": EventKind.RESPONSE,
}
_RESPONSE, _FEEDBACK = EventKind.RESPONSE, EventKind.FEEDBACK  # enum attribute access is slow


def normalize_headers(headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Lower-case names, strip the `ce-`/`ce_` prefix, decode bytes values.

    >>> normalize_headers({"Ce-Type": "t", "ce_requestid": b"r", "Content-Type": "text/plain"})
    {'type': 't', 'requestid': 'r', 'content-type': 'text/plain'}
    >>> normalize_headers([("ce_type", b"t"), ("ce_id", "e1")])
    {'type': 't', 'id': 'e1'}
    """
    # Fast paths for what consumers hand us: a Kafka header list of (str, UTF-8 bytes)
    # and a dict of str values, with names seen before (a topic's records repeat the
    # same few). Anything else (a new name, str or invalid UTF-8 values in a list,
    # odd items) raises here and takes the loop below, which decides and learns names.
    try:
        if type(headers) is list:
            return {_NAMES[k]: bytes.decode(v) for k, v in headers}
        if type(headers) is dict:
            "".join(headers.values())  # TypeError unless every value is a str (then str(v) is v)
            return {_NAMES[k]: v for k, v in headers.items()}
    except (KeyError, TypeError, ValueError):  # UnicodeDecodeError is a ValueError
        pass
    return _normalize_each(headers)


def _normalize_each(headers: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, str]:
    """`normalize_headers` one header at a time: the definition the fast paths keep to."""
    out: dict[str, str] = {}
    items = headers.items() if isinstance(headers, Mapping) else headers
    for k, v in items:
        name = _NAMES.get(k)
        if name is None:
            name = _attribute_name(k)
        out[name] = v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
    return out


_NAMES: dict[str, str] = {}


def _attribute_name(header: str) -> str:
    name = header.lower()
    if name.startswith(("ce-", "ce_")):
        name = name[3:]
    if len(_NAMES) < 4096:  # header names repeat; cache them, bounded
        _NAMES[header] = name
    return name


def image_tag(image: str) -> str:
    """The tag of a container image reference, or '' when it has none.

    >>> image_tag("seldonio/sklearnserver:1.14.0")
    '1.14.0'
    >>> image_tag("registry:5000/iris")
    ''
    """
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def _version(body: Body, node: str) -> str:
    """OIP `model_version`, else the image tag of the node in Seldon's `meta.requestPath`;
    '' otherwise (the pairer then falls back to the predictor, see `stream.pairing`)."""
    if body.version:
        return body.version
    image = body.request_path.get(node) if node else None
    if image is None:
        return ""
    tag = _TAGS.get(image)
    if tag is None:
        tag = image_tag(image)
        if len(_TAGS) < 4096:  # a few images per deployment; bounded
            _TAGS[image] = tag
    return tag


_TAGS: dict[str, str] = {}


def _feedback(obj: Any) -> tuple[list[Any] | None, float | None, Body]:
    if not isinstance(obj, dict):
        raise DecodeError("bad_shape", "feedback body is not an object")
    truth = None
    if obj.get("truth") is not None:
        truth = [r[0] if len(r) == 1 else r for r in parse_body(obj["truth"], response=True).rows]
    reward = obj.get("reward")
    if reward is not None and not isinstance(reward, int | float):
        raise DecodeError("bad_shape", "feedback reward is not a number")
    request = obj.get("request")
    body = parse_body(request, response=False) if isinstance(request, dict) else Body()
    return truth, (float(reward) if reward is not None else None), body


def decode_cloudevent(
    headers: Mapping[str, Any],
    raw: bytes,
    *,
    source_format: str,
    fallback_time: int | None = None,
    default_type: str = "",
    fallback_request_id: str = "",
) -> PredictionEvent:
    """Decode one logger event. Raises `DecodeError` when it cannot.

    >>> ev = decode_cloudevent(
    ...     {"ce-id": "e1", "ce-requestid": "r1", "ce-type": "io.seldon.serving.inference.request",
    ...      "ce-modelid": "classifier", "ce-inferenceservicename": "model-logs",
    ...      "ce-namespace": "seldon", "ce-endpoint": "logging",
    ...      "ce-time": "2020-11-06T09:35:09.171644169Z", "content-type": "application/json"},
    ...     b'{"data": {"ndarray":[[1.0, 2.0, 5.0]]}}', source_format="seldon-v1-http")
    >>> (ev.kind.value, ev.request_id, ev.model.model, ev.model.node, ev.rows)
    ('request', 'r1', 'model-logs', 'classifier', [[1.0, 2.0, 5.0]])
    """
    return decode_attributes(
        normalize_headers(headers), raw, source_format=source_format,
        fallback_time=fallback_time, default_type=default_type,
        fallback_request_id=fallback_request_id,
    )


def decode_attributes(
    attrs: dict[str, str],
    raw: bytes,
    *,
    source_format: str,
    fallback_time: int | None = None,
    default_type: str = "",
    fallback_request_id: str = "",
) -> PredictionEvent:
    """`decode_cloudevent` for headers already passed through `normalize_headers`.

    The event keeps `attrs` as its `headers` (no copy): pass a dict you own.
    """
    get = attrs.get
    ce_type = get("type") or default_type
    kind = SELDON_TYPES.get(ce_type)
    if kind is not None:
        request_id = get("requestid", "")
    else:
        kind = KSERVE_TYPES.get(ce_type)
        if kind is not None:
            request_id = get("id", "")
            source_format = "kserve" if source_format.startswith("seldon-v1") else source_format
        elif not ce_type:
            raise DecodeError("missing_event_type", "no CloudEvents type attribute")
        else:
            raise DecodeError("unknown_event_type", f"unsupported CloudEvents type {ce_type!r}")

    content_type = get("content-type", get("datacontenttype", "application/json"))
    if "protobuf" in content_type:
        raise DecodeError("unsupported_content_type", f"{content_type} bodies are not decoded yet")
    obj = loads(raw)

    truth = reward = None
    if kind is _FEEDBACK:
        truth, reward, body = _feedback(obj)
    else:
        response = kind is _RESPONSE
        fast = seldon_message_body(obj, response)
        body = fast if fast is not None else parse_body(obj, response=response)
    request_id = request_id or fallback_request_id or body.request_id
    if not request_id:
        raise DecodeError("missing_request_id", "no request id in headers or body")

    model_name = get("inferenceservicename") or get("mlserver-model") or body.model_name or ""
    if not model_name:
        raise DecodeError("missing_model", "no inference service or model name")
    node = get("modelid") or get("component", "")
    model = ModelRef(model_name, get("namespace", ""), node, get("endpoint", ""),
                     _version(body, node))

    if "time" in attrs:
        try:
            event_time = parse_rfc3339(attrs["time"])
        except ValueError as exc:
            raise DecodeError("bad_time", str(exc)) from None
    elif fallback_time is not None:
        event_time = fallback_time
    else:
        raise DecodeError("missing_time", "no event time in headers and no record timestamp")

    # Positional arguments in field order: msgspec matches 17 keywords in ~0.5 µs,
    # most of what building the event costs (tests/unit/test_decode_fastpaths.py
    # pins the field order).
    protocol, event_id = get("protocol") or body.protocol, get("id", "")
    if kind is _RESPONSE:
        return PredictionEvent(kind, request_id, model, event_time, protocol, source_format,
                               event_id, None, [], body.names, body.rows, None, None,
                               body.error, body.error_type, raw, attrs)
    return PredictionEvent(kind, request_id, model, event_time, protocol, source_format,
                           event_id, body.names, body.rows, None, [], truth, reward,
                           body.error, body.error_type, raw, attrs)
