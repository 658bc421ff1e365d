//! Which header, key or body value each event field takes: one definition for the
//! per-event decoder (lib.rs, which builds `PredictionEvent`s) and the batch decoder
//! (batch.rs, which fills columns). Pure Rust over borrowed text; `None` everywhere means
//! "leave the record to the Python decoder".

use crate::json::J;
use crate::{image_tag, Puid, Slot, N_SLOTS, SELDON_REQUEST, SELDON_RESPONSE, SLOTS, SLOT_NAMES};

/// A header name as `normalize_headers` makes it: lower-cased, without `ce-`/`ce_`, and
/// the index in `SLOTS` of the attribute it names. None for a non-ASCII name (`str.lower`
/// of non-ASCII text is Python's to decide).
pub fn normalize_name(name: &str) -> Option<(String, Option<usize>)> {
    if !name.is_ascii() {
        return None;
    }
    let mut lower = name.to_ascii_lowercase();
    if lower.starts_with("ce-") || lower.starts_with("ce_") {
        lower.drain(..3);
    }
    let slot = SLOT_NAMES.iter().position(|n| *n == lower);
    Some((lower, slot))
}

/// The text of the attributes a decoder reads (the last value of a repeated name).
#[derive(Default)]
pub struct Texts<'s>(pub [Option<&'s str>; N_SLOTS]);

impl<'s> Texts<'s> {
    pub fn get(&self, s: Slot) -> Option<&'s str> {
        self.0[s as usize]
    }
    pub fn set(&mut self, slot_index: usize, text: &'s str) {
        self.0[SLOTS[slot_index] as usize] = Some(text);
    }
    /// `attrs.get(name) or None`: present and not empty.
    fn nonempty(&self, s: Slot) -> bool {
        self.get(s).is_some_and(|t| !t.is_empty())
    }
}

#[inline]
fn same(a: &str, b: &str) -> bool {
    crate::same_bytes(a.as_bytes(), b.as_bytes())
}

/// A Kafka record with this `content-type` (or "") is in structured mode
/// (`decode_kafka_record` reads its value as a structured CloudEvent).
pub fn structured(content_type: &str) -> bool {
    !same(content_type, "application/json") && content_type.contains("structured")
}

/// `decode_attributes`' event type for the types decoded here: Some(true) for a Seldon
/// response, Some(false) for a request, None for anything else or a protobuf body.
pub fn v1_response(t: &Texts<'_>) -> Option<bool> {
    let ty = t.get(Slot::Type).unwrap_or("");
    let response = if same(ty, SELDON_REQUEST) {
        false
    } else if same(ty, SELDON_RESPONSE) {
        true
    } else {
        return None;
    };
    let body_ct = t
        .get(Slot::ContentType)
        .or(t.get(Slot::DataContentType))
        .unwrap_or("");
    if !same(body_ct, "application/json") && body_ct.contains("protobuf") {
        return None;
    }
    Some(response)
}

/// Where a request id comes from.
pub enum Rid<'s> {
    /// the header of the slot (`requestid`, `x-request-id`)
    Header,
    Text(&'s str),
}

/// The identity fields of a Seldon v1 / CloudEvents event (`decode_attributes`).
pub struct V1Fields<'s> {
    /// `requestid` header, else the record key, else `meta.puid`
    pub request_id: Rid<'s>,
    /// `inferenceservicename`, else `mlserver-model`
    pub model: Slot,
    /// `modelid`, else `component`, else "" (None)
    pub node: Option<Slot>,
    /// the node's image tag in `meta.requestPath`
    pub version: &'s str,
    /// `protocol`; None: "seldon"
    pub protocol: Option<Slot>,
    /// a CloudEvent (`specversion` present): source format `cloudevent-kafka`
    pub cloudevent: bool,
}

/// `key`: the record key as text ("" for none; None when it is no text).
pub fn v1_fields<'s>(
    t: &Texts<'s>,
    key: Option<&'s str>,
    puid: &Puid<'s>,
    request_path: Option<&'s J<'s>>,
) -> Option<V1Fields<'s>> {
    let request_id = if t.nonempty(Slot::RequestId) {
        Rid::Header
    } else {
        match (key?, puid) {
            (k, _) if !k.is_empty() => Rid::Text(k),
            (_, Puid::Str(s)) => Rid::Text(s),
            _ => return None, // missing_request_id, or str() of a puid: Python's
        }
    };
    let model = if t.nonempty(Slot::InferenceServiceName) {
        Slot::InferenceServiceName
    } else if t.nonempty(Slot::MlserverModel) {
        Slot::MlserverModel
    } else {
        return None;
    };
    let node = if t.nonempty(Slot::ModelId) {
        Some(Slot::ModelId)
    } else if t.get(Slot::Component).is_some() {
        Some(Slot::Component)
    } else {
        None
    };
    let node_text = node.and_then(|s| t.get(s)).unwrap_or("");
    let version = match (node_text, request_path) {
        ("", _) | (_, None) => "",
        (n, Some(paths)) => match paths.get(n) {
            None => "",
            Some(J::Str(image)) => image_tag(image),
            Some(_) => return None,
        },
    };
    Some(V1Fields {
        request_id,
        model,
        node,
        version,
        protocol: t.nonempty(Slot::Protocol).then_some(Slot::Protocol),
        cloudevent: t.get(Slot::SpecVersion).is_some(),
    })
}

/// A Seldon v2 request id: the `x-request-id` header, else the key's last dotted part,
/// else the message id. `key` as in `v1_fields`.
pub fn v2_request_id<'s>(t: &Texts<'s>, key: Option<&'s str>, msg_id: &'s str) -> Option<Rid<'s>> {
    if t.nonempty(Slot::XRequestId) {
        return Some(Rid::Header);
    }
    let k = key?.rsplit('.').next().unwrap_or("");
    if !k.is_empty() {
        Some(Rid::Text(k))
    } else if !msg_id.is_empty() {
        Some(Rid::Text(msg_id))
    } else {
        None
    }
}

/// `raw_tensor_rows`' (rows, width) of a raw tensor of `len` values and this shape.
pub fn v2_shape(shape: &[i64], len: usize) -> Option<(usize, usize)> {
    let len = len as i128;
    let (n, width) = match shape {
        [n, w] => (*n as i128, *w as i128),
        [n] => (*n as i128, 1),
        [] => (len, 1),
        _ => return None,
    };
    if n <= 0 || width <= 0 || n * width != len {
        return None;
    }
    Some((n as usize, width as usize))
}

/// One value of a raw tensor.
pub enum Num {
    I64(i64),
    U64(u64),
    F64(f64),
}

/// The little-endian values of a raw tensor, each handed to `f`; None for a datatype left
/// to Python (FP16, BOOL, BYTES), a partial element or a NaN/infinity.
pub fn raw_numbers(datatype: &str, raw: &[u8], mut f: impl FnMut(Num)) -> Option<()> {
    macro_rules! each {
        ($t:ty, $n:expr, $wrap:expr) => {{
            #[allow(clippy::modulo_one)]
            if raw.len() % $n != 0 {
                return None;
            }
            for c in raw.chunks_exact($n) {
                let num = $wrap(<$t>::from_le_bytes(c.try_into().unwrap()));
                if let Num::F64(v) = num {
                    if !v.is_finite() {
                        return None;
                    }
                }
                f(num);
            }
        }};
    }
    match datatype {
        "UINT8" => each!(u8, 1, |v| Num::U64(u64::from(v))),
        "UINT16" => each!(u16, 2, |v| Num::U64(u64::from(v))),
        "UINT32" => each!(u32, 4, |v| Num::U64(u64::from(v))),
        "UINT64" => each!(u64, 8, Num::U64),
        "INT8" => each!(i8, 1, |v| Num::I64(i64::from(v))),
        "INT16" => each!(i16, 2, |v| Num::I64(i64::from(v))),
        "INT32" => each!(i32, 4, |v| Num::I64(i64::from(v))),
        "INT64" => each!(i64, 8, Num::I64),
        "FP32" => each!(f32, 4, |v| Num::F64(f64::from(v))),
        "FP64" => each!(f64, 8, Num::F64),
        _ => return None,
    }
    Some(())
}

/// A Seldon v2 value that is JSON (first non-blank byte `{`): Python's to read.
pub fn v2_json(raw: &[u8]) -> bool {
    raw.iter()
        .find(|c| !matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
        == Some(&b'{')
}

pub const FMT_V1_KAFKA: &str = "seldon-v1-kafka";
pub const FMT_CE_KAFKA: &str = "cloudevent-kafka";

/// How a topic's records are read.
pub enum TopicKind<'s> {
    /// a Seldon v2 model topic: namespace, model, inputs (a request)
    V2(&'s str, &'s str, bool),
    /// Seldon v1 / CloudEvents records
    V1,
    /// MLServer's topics (and a name with a newline): Python's
    Other,
}

pub fn topic_kind(topic: &str) -> TopicKind<'_> {
    if let Some((ns, model, request)) = crate::parse_v2_topic(topic) {
        TopicKind::V2(ns, model, request)
    } else if topic.starts_with("mlserver-") || topic.contains('\n') {
        TopicKind::Other
    } else {
        TopicKind::V1
    }
}
