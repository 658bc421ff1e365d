//! `predlog_native`: a compiled fast path for the Kafka records predlog reads most.
//!
//! Contract (stream/decode/native.py is the only caller):
//!
//! `Decoder(PredictionEvent, ModelRef, SourceCoords, EventKind.REQUEST, EventKind.RESPONSE)`
//! keeps the classes it builds events with; `Decoder.decode_kafka(topic, key, value,
//! headers, timestamp_ms, partition, offset)` takes the arguments of
//! `stream.decode.kafka_records.decode_kafka_record` and returns either
//! - a `PredictionEvent` equal (`==` and `repr`) to the one the Python decoder builds from
//!   the same arguments, or
//! - `None`: the record is not one of the shapes below, or something about it needs the
//!   Python decoder's judgement. The caller then runs the Python decoder, which stays the
//!   definition of every event and the only source of dead letters.
//!
//! It never raises: a Python error while building the event, and even a Rust panic, give
//! `None`. The shapes it decodes:
//! - Seldon v1 Kafka-mode records and CloudEvents Kafka-binding records (`ce_` headers) on
//!   any topic but Seldon v2 model topics and `mlserver-*`: a Seldon request or response
//!   type, a JSON SeldonMessage body `{"data": {"names", "ndarray" | "tensor"}, "meta"}`
//!   with a 1-D/2-D ndarray or a 1-D/2-D tensor of scalars (what
//!   stream/decode/fastbody.py reads), an RFC 3339 `...Z` time header or none;
//! - Seldon v2 model topics (`seldon.<ns>.model.<model>.inputs|outputs`): an OIP protobuf
//!   message with one numeric tensor of shape [n, w], [n] or [] in raw contents (what
//!   `raw_tensor_rows` in stream/decode/oiptensors.py reads).
//!
//! tests/unit/test_decode_native.py checks the equality on fixtures and generated records.
//!
//! `Decoder.decode_line(line, source)` does the same for `stream.decode.lines.decode_line`
//! (the replay's reader): an event equal to `decode_line_python(line, source)`'s, or None.
//! It decodes one line shape, the captured binary-mode HTTP CloudEvent the demo and the
//! bench write: exact `bytes` holding `{"headers": {str: str}, "body": "<string>"}` (those
//! two keys once each, header names ASCII and distinct once normalized, header values
//! without escapes, a body string with no escape but `\" \\ \/ \b \f \n \r \t` and
//! non-surrogate `\uXXXX`), a Seldon request or response type, a time header (lines have
//! no fallback time) and a body the Kafka path above decodes. `decode_line_record(line,
//! source=None)` is `decode_line` with the constructor's `line_fallback` behind it.
//! tests/unit/test_decode_native_lines.py checks it.
//!
//! `BatchDecoder.decode_kafka_batch(records)` (batch.rs) decodes a list of Kafka records
//! into columns, for the same shapes, through the same functions (fields.rs: which value
//! each field takes; json.rs; proto.rs); stream/decode/batch.py is its caller.

mod batch;
mod fields;
mod json;
mod proto;

use std::panic::{catch_unwind, AssertUnwindSafe};

use fields::{Rid, Texts};
use json::J;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyList, PyString, PyTuple};

const SELDON_REQUEST: &str = "io.seldon.serving.inference.request";
const SELDON_RESPONSE: &str = "io.seldon.serving.inference.response";
const CACHE_LIMIT: usize = 1024;

/// Header attributes the decoder reads, by their normalized names (`ce-`/`ce_` stripped).
#[derive(Clone, Copy, PartialEq)]
enum Slot {
    Type,
    RequestId,
    ContentType,
    DataContentType,
    InferenceServiceName,
    MlserverModel,
    ModelId,
    Component,
    Namespace,
    Endpoint,
    Time,
    Protocol,
    Id,
    SpecVersion,
    XRequestId,
    Other,
}
const N_SLOTS: usize = Slot::Other as usize;
const SLOTS: [Slot; N_SLOTS] = [
    Slot::Type,
    Slot::RequestId,
    Slot::ContentType,
    Slot::DataContentType,
    Slot::InferenceServiceName,
    Slot::MlserverModel,
    Slot::ModelId,
    Slot::Component,
    Slot::Namespace,
    Slot::Endpoint,
    Slot::Time,
    Slot::Protocol,
    Slot::Id,
    Slot::SpecVersion,
    Slot::XRequestId,
];
const SLOT_NAMES: [&str; N_SLOTS] = [
    "type",
    "requestid",
    "content-type",
    "datacontenttype",
    "inferenceservicename",
    "mlserver-model",
    "modelid",
    "component",
    "namespace",
    "endpoint",
    "time",
    "protocol",
    "id",
    "specversion",
    "x-request-id",
];

/// Normalized headers: the dict the event keeps, and the attributes read from it.
struct Attrs<'py> {
    dict: Bound<'py, PyDict>,
    slots: [Option<Bound<'py, PyString>>; N_SLOTS],
    len: usize,
}

impl<'py> Attrs<'py> {
    fn get(&self, s: Slot) -> Option<&Bound<'py, PyString>> {
        self.slots[s as usize].as_ref()
    }
    /// The text of every attribute read (None: one is not valid text, leave it to Python).
    fn texts(&self) -> Option<Texts<'_>> {
        let mut t = Texts::default();
        for (out, v) in t.0.iter_mut().zip(&self.slots) {
            if let Some(v) = v {
                // SAFETY: `v` is a str the attributes hold for as long as the text is used.
                *out = Some(unsafe { batch::view::text(v.as_ptr())? });
            }
        }
        Some(t)
    }
}

/// A header value as the str `normalize_headers` makes of it: UTF-8 bytes decoded, a str
/// kept. None for anything else (Python decides).
fn header_value<'py>(py: Python<'py>, v: &Bound<'py, PyAny>) -> Option<Bound<'py, PyString>> {
    if let Ok(b) = v.cast_exact::<PyBytes>() {
        std::str::from_utf8(b.as_bytes())
            .ok()
            .map(|s| PyString::new(py, s))
    } else {
        v.cast_exact::<PyString>().ok().cloned()
    }
}

/// `a == b` for the short names and values of headers, without a call to memcmp.
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let (mut ca, mut cb) = (a.chunks_exact(8), b.chunks_exact(8));
    for (x, y) in (&mut ca).zip(&mut cb) {
        if u64::from_ne_bytes(x.try_into().unwrap()) != u64::from_ne_bytes(y.try_into().unwrap()) {
            return false;
        }
    }
    ca.remainder()
        .iter()
        .zip(cb.remainder())
        .all(|(x, y)| x == y)
}

/// A header value's bytes and the str made of them.
type CachedValue = (Vec<u8>, Py<PyString>);

/// Replay line header values are cached for the first `LINE_VALUE_SLOTS` positions, when
/// at most `LINE_VALUE_MAX` bytes long.
const LINE_VALUE_SLOTS: usize = 64;
const LINE_VALUE_MAX: usize = 256;

const MAX_CHANGED: usize = 3;
const NAME_TUPLES: usize = 8;
const MODEL_REFS: usize = 8;

/// The last Kafka header list normalized, for `Decoder::attrs_list`.
struct Template {
    keys: Vec<String>,           // raw names
    raw: Vec<Option<Vec<u8>>>,   // raw bytes values (None: a str value, never matched)
    names: Vec<Py<PyString>>,    // normalized names
    slot_at: Vec<Option<usize>>, // index in SLOTS of each header's name
    dict: Py<PyDict>,            // the normalized dict (only copies leave the decoder)
    slots: [Option<Py<PyString>>; N_SLOTS],
    /// per header: the last value that differed from the template's, and its str
    alt: Vec<(Vec<u8>, Option<Py<PyString>>)>,
}

/// How a topic's records are read: a Seldon v2 model topic (parsed as
/// `^seldon\.([^.]+)\.model\.(.+)\.(inputs|outputs)$`), a topic of Seldon v1 / CloudEvents
/// records, or one left to Python.
enum Route {
    V2 {
        namespace: Py<PyString>,
        model: Py<PyString>,
        request: bool,
    },
    V1 {
        fmt_plain: Py<PyString>, // seldon-v1-kafka
        fmt_ce: Py<PyString>,    // cloudevent-kafka
    },
    Unsupported,
}

impl Route {
    fn clone_ref(&self, py: Python<'_>) -> Route {
        match self {
            Route::V2 {
                namespace,
                model,
                request,
            } => Route::V2 {
                namespace: namespace.clone_ref(py),
                model: model.clone_ref(py),
                request: *request,
            },
            Route::V1 { fmt_plain, fmt_ce } => Route::V1 {
                fmt_plain: fmt_plain.clone_ref(py),
                fmt_ce: fmt_ce.clone_ref(py),
            },
            Route::Unsupported => Route::Unsupported,
        }
    }
}

fn parse_v2_topic(topic: &str) -> Option<(&str, &str, bool)> {
    if topic.contains('\n') {
        return None; // Python's `$` also matches before a final newline: leave it to Python
    }
    let rest = topic.strip_prefix("seldon.")?;
    let dot = rest.find('.')?;
    let (ns, rest) = (&rest[..dot], &rest[dot + 1..]);
    if ns.is_empty() {
        return None;
    }
    let rest = rest.strip_prefix("model.")?;
    let (model, request) = if let Some(m) = rest.strip_suffix(".inputs") {
        (m, true)
    } else {
        (rest.strip_suffix(".outputs")?, false)
    };
    if model.is_empty() {
        return None;
    }
    Some((ns, model, request))
}

#[pyclass(module = "predlog_native")]
struct Decoder {
    event_cls: Py<PyAny>,
    model_cls: Py<PyAny>,
    coords_cls: Py<PyAny>,
    request: Py<PyAny>,
    response: Py<PyAny>,
    /// `decode_kafka_record`'s Python definition, called for whatever this does not decode.
    fallback: Option<Py<PyAny>>,
    minus_one: Py<PyAny>,
    s_partition: Py<PyString>,
    s_offset: Py<PyString>,
    s_empty: Py<PyString>,
    s_kafka: Py<PyString>,
    s_seldon: Py<PyString>,
    s_v2: Py<PyString>,
    s_fmt_v2: Py<PyString>,
    /// The normalized names of the slots, in `SLOTS` order: a normalized name is one of
    /// these very objects when it names a slot, so a pointer comparison finds the slot.
    slot_names: Vec<Py<PyString>>,
    /// raw header name (str) -> normalized name (str); a Python dict, so the lookup uses
    /// the hash the str object keeps.
    names: Py<PyDict>,
    /// topic (str) -> index in `route_list`
    routes: Py<PyDict>,
    route_list: Vec<Route>,
    template: Option<Template>,
    json_pool: json::Pool,
    models: Vec<([Py<PyString>; 4], String, Py<PyAny>)>,
    /// Names tuples built, by their strings (a topic's records repeat a few).
    name_tuples: Vec<(Vec<String>, Py<PyTuple>)>,
    /// `decode_line`'s Python definition, called for whatever `decode_line` does not decode.
    line_fallback: Option<Py<PyAny>>,
    s_fmt_http: Py<PyString>,
    /// raw header name of a replay line -> (normalized name, index in SLOTS)
    line_names: std::collections::HashMap<Vec<u8>, (Py<PyString>, Option<usize>)>,
    /// per header position of a replay line: the last two distinct values and their str
    line_values: Vec<[Option<CachedValue>; 2]>,
    /// a replay line's body, unescaped
    line_body: Vec<u8>,
}

#[pymethods]
impl Decoder {
    #[new]
    #[pyo3(signature = (event_cls, model_cls, coords_cls, request, response, fallback = None,
                        line_fallback = None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        event_cls: Py<PyAny>,
        model_cls: Py<PyAny>,
        coords_cls: Py<PyAny>,
        request: Py<PyAny>,
        response: Py<PyAny>,
        fallback: Option<Py<PyAny>>,
        line_fallback: Option<Py<PyAny>>,
    ) -> Self {
        let s = |t: &str| PyString::new(py, t).unbind();
        Decoder {
            fallback,
            minus_one: (-1i64).into_pyobject(py).unwrap().into_any().unbind(),
            s_partition: s("partition"),
            s_offset: s("offset"),
            event_cls,
            model_cls,
            coords_cls,
            request,
            response,
            s_empty: s(""),
            s_kafka: s("kafka"),
            s_seldon: s("seldon"),
            s_v2: s("v2"),
            s_fmt_v2: s("seldon-v2"),
            slot_names: SLOT_NAMES.iter().map(|n| s(n)).collect(),
            names: PyDict::new(py).unbind(),
            routes: PyDict::new(py).unbind(),
            route_list: Vec::new(),
            template: None,
            json_pool: json::Pool::default(),
            models: Vec::new(),
            name_tuples: Vec::new(),
            line_fallback,
            s_fmt_http: s("seldon-v1-http"),
            line_names: std::collections::HashMap::new(),
            line_values: Vec::new(),
            line_body: Vec::new(),
        }
    }

    /// `decode_line(line, source=None)` itself: the event decoded here, else what the
    /// `line_fallback` given to the constructor (the Python definition) returns for the
    /// same arguments.
    #[pyo3(signature = (line, source = None))]
    fn decode_line_record<'py>(
        slf: &Bound<'py, Self>,
        line: &Bound<'py, PyAny>,
        source: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let none = py.None().into_bound(py);
        let source = source.unwrap_or(&none);
        let fallback = {
            let mut this = slf.borrow_mut();
            if let Some(event) = this.decode_line(py, line, source) {
                return Ok(event);
            }
            match &this.line_fallback {
                Some(f) => f.clone_ref(py),
                None => return Ok(none),
            }
        }; // the borrow ends here: the fallback may call into this decoder again
        fallback.bind(py).call1((line, source))
    }

    /// The event `decode_line(line, source)` would return, or None.
    fn decode_line<'py>(
        &mut self,
        py: Python<'py>,
        line: &Bound<'py, PyAny>,
        source: &Bound<'py, PyAny>,
    ) -> Option<Bound<'py, PyAny>> {
        let run = AssertUnwindSafe(|| self.line(py, line, source));
        match catch_unwind(run) {
            Ok(Ok(event)) => event,
            _ => None,
        }
    }

    /// `decode_kafka_record(topic, key, value, headers, timestamp_ms, *, partition=-1,
    /// offset=-1)` itself: the event decoded here, else what the `fallback` given to the
    /// constructor (the Python definition) returns for the same arguments. One call from
    /// Python for the common record, instead of a Python function calling `decode_kafka`.
    #[pyo3(signature = (topic, key, value, headers, timestamp_ms, **kwargs))]
    fn decode_kafka_record<'py>(
        slf: &Bound<'py, Self>,
        topic: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        timestamp_ms: &Bound<'py, PyAny>,
        kwargs: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = slf.py();
        let fallback = {
            let mut this = slf.borrow_mut();
            let minus_one = this.minus_one.bind(py).clone();
            let (mut partition, mut offset) = (minus_one.clone(), minus_one);
            let mut known = true;
            if let Some(kw) = kwargs {
                let mut found = 0;
                if let Some(p) = kw.get_item(this.s_partition.bind(py))? {
                    partition = p;
                    found += 1;
                }
                if let Some(o) = kw.get_item(this.s_offset.bind(py))? {
                    offset = o;
                    found += 1;
                }
                known = found == kw.len(); // else the Python definition raises TypeError
            }
            if known {
                let args = (
                    topic,
                    key,
                    value,
                    headers,
                    timestamp_ms,
                    &partition,
                    &offset,
                );
                if let Some(event) =
                    this.decode_kafka(py, args.0, args.1, args.2, args.3, args.4, args.5, args.6)
                {
                    return Ok(event);
                }
            }
            match &this.fallback {
                Some(f) => f.clone_ref(py),
                None => return Ok(py.None().into_bound(py)),
            }
        }; // the borrow ends here: the fallback may call into this decoder again
        fallback
            .bind(py)
            .call((topic, key, value, headers, timestamp_ms), kwargs)
    }

    /// The event `decode_kafka_record` would return for these arguments, or None.
    #[allow(clippy::too_many_arguments)]
    fn decode_kafka<'py>(
        &mut self,
        py: Python<'py>,
        topic: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        timestamp_ms: &Bound<'py, PyAny>,
        partition: &Bound<'py, PyAny>,
        offset: &Bound<'py, PyAny>,
    ) -> Option<Bound<'py, PyAny>> {
        let run = AssertUnwindSafe(|| {
            self.decode(
                py,
                topic,
                key,
                value,
                headers,
                timestamp_ms,
                partition,
                offset,
            )
        });
        match catch_unwind(run) {
            Ok(Ok(event)) => event,
            _ => None,
        }
    }
}

type Res<'py> = PyResult<Option<Bound<'py, PyAny>>>;

impl Decoder {
    #[allow(clippy::too_many_arguments)]
    fn decode<'py>(
        &mut self,
        py: Python<'py>,
        topic: &Bound<'py, PyAny>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        headers: &Bound<'py, PyAny>,
        timestamp_ms: &Bound<'py, PyAny>,
        partition: &Bound<'py, PyAny>,
        offset: &Bound<'py, PyAny>,
    ) -> Res<'py> {
        if !topic.is_exact_instance_of::<PyString>() || !value.is_exact_instance_of::<PyBytes>() {
            return Ok(None);
        }
        // The record time in int ns (`stream.eventtime.ms_to_ns`): an int ms, or a float
        // ms with an integral value, times 1_000_000; anything else is left to Python.
        let fallback_time = if timestamp_ms.is_exact_instance_of::<pyo3::types::PyInt>() {
            match timestamp_ms.extract::<i64>() {
                Ok(ms) => ms.checked_mul(1_000_000),
                Err(_) => None,
            }
        } else if timestamp_ms.is_exact_instance_of::<PyFloat>() {
            let ms = timestamp_ms.extract::<f64>()?;
            // |ms| < 2^53: an integral double there is an exact i64
            if ms.fract() == 0.0 && ms.abs() < 9_007_199_254_740_992.0 {
                (ms as i64).checked_mul(1_000_000)
            } else {
                None
            }
        } else {
            None
        };
        let Some(fallback_time) = fallback_time else {
            return Ok(None);
        };
        let topic_text = topic.cast::<PyString>()?.to_str()?;
        let route = self.route(py, topic, topic_text)?;
        let raw = value.cast::<PyBytes>()?.as_bytes();
        let event = match route {
            Route::V2 {
                namespace,
                model,
                request,
            } => self.decode_v2(
                py,
                namespace.bind(py),
                model.bind(py),
                request,
                key,
                value,
                raw,
                headers,
                fallback_time,
            )?,
            Route::V1 { fmt_plain, fmt_ce } => self.decode_v1(
                py,
                fmt_plain.bind(py),
                fmt_ce.bind(py),
                key,
                value,
                raw,
                headers,
                fallback_time,
            )?,
            Route::Unsupported => None,
        };
        let Some(args) = event else {
            return Ok(None);
        };
        let coords = vectorcall(
            py,
            self.coords_cls.bind(py),
            &[
                self.s_kafka.bind(py).clone().into_any(),
                topic.clone(),
                partition.clone(),
                offset.clone(),
            ],
        )?;
        let mut args = args;
        args.push(coords);
        Ok(Some(vectorcall(py, self.event_cls.bind(py), &args)?))
    }

    fn route(
        &mut self,
        py: Python<'_>,
        topic_obj: &Bound<'_, PyAny>,
        topic: &str,
    ) -> PyResult<Route> {
        let routes = self.routes.bind(py);
        if let Some(i) = routes.get_item(topic_obj)? {
            let i: usize = i.extract()?;
            return Ok(self.route_list[i].clone_ref(py));
        }
        let r = match fields::topic_kind(topic) {
            fields::TopicKind::V2(ns, model, request) => Route::V2 {
                namespace: PyString::new(py, ns).unbind(),
                model: PyString::new(py, model).unbind(),
                request,
            },
            fields::TopicKind::Other => Route::Unsupported,
            fields::TopicKind::V1 => Route::V1 {
                fmt_plain: PyString::new(py, fields::FMT_V1_KAFKA).unbind(),
                fmt_ce: PyString::new(py, fields::FMT_CE_KAFKA).unbind(),
            },
        };
        if self.route_list.len() >= CACHE_LIMIT {
            routes.clear();
            self.route_list.clear();
        }
        routes.set_item(topic_obj, self.route_list.len())?;
        self.route_list.push(r.clone_ref(py));
        Ok(r)
    }

    /// `normalize_headers`: lower-cased names without `ce-`/`ce_`, str values. None for
    /// anything but a list of (str, bytes|str) tuples or a dict of str to bytes|str, for a
    /// non-ASCII name and for a value that is not UTF-8.
    fn attrs<'py>(
        &mut self,
        py: Python<'py>,
        headers: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Attrs<'py>>> {
        let mut attrs = Attrs {
            dict: PyDict::new(py),
            slots: Default::default(),
            len: 0,
        };
        if headers.is_none() {
            return Ok(Some(attrs));
        }
        if let Ok(list) = headers.cast_exact::<PyList>() {
            return self.attrs_list(py, list);
        } else if let Ok(dict) = headers.cast_exact::<PyDict>() {
            for (k, v) in dict.iter() {
                if self.add(py, &mut attrs, &k, &v)?.is_none() {
                    return Ok(None);
                }
            }
        } else {
            return Ok(None);
        }
        attrs.len = attrs.dict.len();
        Ok(Some(attrs))
    }

    /// `attrs` of a Kafka header list. A consumer's records repeat one header set with one
    /// or two values changing (the request id, the event type): the last list seen is kept
    /// as a template, and a list with the same names and at most `MAX_CHANGED` different
    /// values gets a copy of the template's dict with those values replaced. The result is
    /// the dict the loop below builds, key order included (a template never has two headers
    /// with the same normalized name, where the later one would win).
    fn attrs_list<'py>(
        &mut self,
        py: Python<'py>,
        list: &Bound<'py, PyList>,
    ) -> PyResult<Option<Attrs<'py>>> {
        let n = list.len();
        if let Some(t) = &mut self.template {
            if t.keys.len() == n {
                let mut changed: [usize; MAX_CHANGED] = [0; MAX_CHANGED];
                let mut n_changed = 0;
                let mut fits = true;
                for (i, item) in list.iter().enumerate() {
                    let Ok(pair) = item.cast_exact::<PyTuple>() else {
                        return Ok(None);
                    };
                    if pair.len() != 2 {
                        return Ok(None);
                    }
                    let k = pair.get_item(0)?;
                    let same_key = match k.cast_exact::<PyString>() {
                        Ok(k) => k
                            .to_str()
                            .is_ok_and(|k| same_bytes(k.as_bytes(), t.keys[i].as_bytes())),
                        Err(_) => false,
                    };
                    if !same_key {
                        fits = false;
                        break;
                    }
                    let v = pair.get_item(1)?;
                    let same_value = match v.cast_exact::<PyBytes>() {
                        Ok(b) => t.raw[i]
                            .as_deref()
                            .is_some_and(|r| same_bytes(r, b.as_bytes())),
                        Err(_) => false,
                    };
                    if !same_value {
                        if n_changed == MAX_CHANGED {
                            fits = false;
                            break;
                        }
                        changed[n_changed] = i;
                        n_changed += 1;
                    }
                }
                if fits {
                    let dict = t.dict.bind(py).copy()?;
                    let mut attrs = Attrs {
                        dict,
                        slots: Default::default(),
                        len: n,
                    };
                    for (slot, v) in attrs.slots.iter_mut().zip(t.slots.iter()) {
                        *slot = v.as_ref().map(|v| v.bind(py).clone());
                    }
                    for &i in &changed[..n_changed] {
                        let pair = list.get_item(i)?;
                        let v = pair.cast_exact::<PyTuple>()?.get_item(1)?;
                        // A value that alternates (a request's and a response's type) is
                        // found again as the last other value seen in this place.
                        let alt = &mut t.alt[i];
                        let value = match (v.cast_exact::<PyBytes>(), &alt.1) {
                            (Ok(b), Some(s)) if same_bytes(&alt.0, b.as_bytes()) => {
                                s.bind(py).clone()
                            }
                            (Ok(b), _) => {
                                let Some(value) = header_value(py, &v) else {
                                    return Ok(None);
                                };
                                alt.0.clear();
                                alt.0.extend_from_slice(b.as_bytes());
                                alt.1 = Some(value.clone().unbind());
                                value
                            }
                            (Err(_), _) => {
                                let Some(value) = header_value(py, &v) else {
                                    return Ok(None);
                                };
                                value
                            }
                        };
                        attrs.dict.set_item(t.names[i].bind(py), &value)?;
                        if let Some(s) = t.slot_at[i] {
                            attrs.slots[SLOTS[s] as usize] = Some(value);
                        }
                    }
                    return Ok(Some(attrs));
                }
            }
        }
        let mut attrs = Attrs {
            dict: PyDict::new(py),
            slots: Default::default(),
            len: 0,
        };
        let mut t = Template {
            keys: Vec::with_capacity(n),
            raw: Vec::with_capacity(n),
            names: Vec::with_capacity(n),
            slot_at: Vec::with_capacity(n),
            dict: PyDict::new(py).unbind(),
            slots: Default::default(),
            alt: (0..n).map(|_| (Vec::new(), None)).collect(),
        };
        for item in list.iter() {
            let Ok(pair) = item.cast_exact::<PyTuple>() else {
                return Ok(None);
            };
            if pair.len() != 2 {
                return Ok(None);
            }
            let (k, v) = (pair.get_item(0)?, pair.get_item(1)?);
            let Some((name, slot)) = self.add(py, &mut attrs, &k, &v)? else {
                return Ok(None);
            };
            t.keys.push(k.cast::<PyString>()?.to_str()?.to_owned());
            t.raw.push(
                v.cast_exact::<PyBytes>()
                    .ok()
                    .map(|b| b.as_bytes().to_vec()),
            );
            t.names.push(name.unbind());
            t.slot_at.push(slot);
        }
        attrs.len = attrs.dict.len();
        if attrs.len == n && n <= 64 {
            t.dict = attrs.dict.copy()?.unbind();
            for (slot, v) in t.slots.iter_mut().zip(attrs.slots.iter()) {
                *slot = v.as_ref().map(|v| v.clone().unbind());
            }
            self.template = Some(t);
        }
        Ok(Some(attrs))
    }

    fn add<'py>(
        &mut self,
        py: Python<'py>,
        attrs: &mut Attrs<'py>,
        k: &Bound<'py, PyAny>,
        v: &Bound<'py, PyAny>,
    ) -> PyResult<Option<(Bound<'py, PyString>, Option<usize>)>> {
        let Ok(k) = k.cast_exact::<PyString>() else {
            return Ok(None);
        };
        let Some(value) = header_value(py, v) else {
            return Ok(None);
        };
        let names = self.names.bind(py);
        let name = match names.get_item(k)? {
            Some(n) => n.cast_into_exact::<PyString>()?,
            None => {
                let Some((norm, slot)) = fields::normalize_name(k.to_str()?) else {
                    return Ok(None);
                };
                let name = match slot {
                    Some(i) => self.slot_names[i].bind(py).clone(),
                    None => PyString::new(py, &norm),
                };
                if names.len() >= CACHE_LIMIT * 4 {
                    names.clear();
                }
                names.set_item(k, &name)?;
                name
            }
        };
        let slot = self
            .slot_names
            .iter()
            .position(|n| n.as_ptr() == name.as_ptr());
        attrs.dict.set_item(&name, &value)?;
        if let Some(i) = slot {
            attrs.slots[SLOTS[i] as usize] = Some(value);
        }
        Ok(Some((name, slot)))
    }

    /// `ModelRef(model, namespace, node, predictor, version)`. ModelRef is frozen, so events
    /// of one model share one: the last `MODEL_REFS` built are kept, found again by the
    /// identity of their four str fields (held here, so no other object can take their
    /// addresses) and the text of their version.
    fn model_ref<'py>(
        &mut self,
        py: Python<'py>,
        fields: [&Bound<'py, PyString>; 4],
        version: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        for (held, v, model) in &self.models {
            if v == version
                && held
                    .iter()
                    .zip(fields)
                    .all(|(h, f)| h.as_ptr() == f.as_ptr())
            {
                return Ok(model.bind(py).clone());
            }
        }
        let model = self.model_cls.bind(py).call1((
            fields[0],
            fields[1],
            fields[2],
            fields[3],
            PyString::new(py, version),
        ))?;
        let held = fields.map(|f| f.clone().unbind());
        if self.models.len() >= MODEL_REFS {
            self.models.remove(0);
        }
        self.models
            .push((held, version.to_owned(), model.clone().unbind()));
        Ok(model)
    }

    /// The request id text of a record key (`_key_text`), None when Python must decide.
    fn key_text(key: &Bound<'_, PyAny>) -> Option<String> {
        if key.is_none() {
            return Some(String::new());
        }
        if let Ok(b) = key.cast_exact::<PyBytes>() {
            return std::str::from_utf8(b.as_bytes()).ok().map(str::to_owned);
        }
        if let Ok(b) = key.cast_exact::<PyByteArray>() {
            return String::from_utf8(b.to_vec()).ok();
        }
        if let Ok(s) = key.cast_exact::<PyString>() {
            return s.to_str().ok().map(str::to_owned);
        }
        None
    }

    /// `tuple(names)`, shared with the events before that had the same names (a tuple of
    /// str is immutable); the last `NAME_TUPLES` distinct name lists are kept.
    fn names_tuple<'py>(
        &mut self,
        py: Python<'py>,
        names: &[&str],
    ) -> PyResult<Bound<'py, PyTuple>> {
        for (cached, tuple) in &self.name_tuples {
            if cached.len() == names.len() && cached.iter().zip(names).all(|(a, b)| a == b) {
                return Ok(tuple.bind(py).clone());
            }
        }
        let tuple = PyTuple::new(py, names.iter().map(|n| PyString::new(py, n)))?;
        if self.name_tuples.len() >= NAME_TUPLES {
            self.name_tuples.remove(0);
        }
        self.name_tuples.push((
            names.iter().map(|s| s.to_string()).collect(),
            tuple.clone().unbind(),
        ));
        Ok(tuple)
    }

    /// Seldon v1 Kafka-mode / CloudEvents Kafka-binding record (`decode_attributes`).
    #[allow(clippy::too_many_arguments)]
    fn decode_v1<'py>(
        &mut self,
        py: Python<'py>,
        fmt_plain: &Bound<'py, PyString>,
        fmt_ce: &Bound<'py, PyString>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        raw: &[u8],
        headers: &Bound<'py, PyAny>,
        fallback_time: i64,
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        let Some(attrs) = self.attrs(py, headers)? else {
            return Ok(None);
        };
        if attrs.len == 0 {
            return Ok(None); // the structured-mode sniffing of decode_kafka_record
        }
        let content_type = match attrs.get(Slot::ContentType) {
            Some(v) => v.to_str()?,
            None => "",
        };
        if fields::structured(content_type) {
            return Ok(None);
        }
        self.v1_attrs(
            py,
            fmt_plain,
            fmt_ce,
            key,
            value,
            raw,
            attrs,
            Some(fallback_time),
        )
    }

    /// `decode_attributes` of normalized headers: the event's arguments but the source.
    #[allow(clippy::too_many_arguments)]
    fn v1_attrs<'py>(
        &mut self,
        py: Python<'py>,
        fmt_plain: &Bound<'py, PyString>,
        fmt_ce: &Bound<'py, PyString>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        raw: &[u8],
        attrs: Attrs<'py>,
        fallback_time: Option<i64>,
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        let Some(texts) = attrs.texts() else {
            return Ok(None);
        };
        let Some(response) = fields::v1_response(&texts) else {
            return Ok(None);
        };
        // The one-pass reader for the common body, else the tree (tensors, odd shapes).
        let mut py_rows = json::PyRows::new(py);
        let out = if let Some(fast) = json::seldon(raw, response, &mut self.json_pool, &mut py_rows)
        {
            let out = match meta_info(fast.meta.as_ref()) {
                Some((request_path, puid)) => {
                    let body = V1Body {
                        names: fast.names,
                        rows: py_rows.into_list()?,
                        request_path,
                        puid,
                    };
                    self.v1_event(
                        py,
                        fmt_plain,
                        fmt_ce,
                        key,
                        value,
                        fallback_time,
                        response,
                        &attrs,
                        &texts,
                        body,
                    )
                }
                None => Ok(None),
            };
            if let Some(m) = fast.meta {
                self.json_pool.recycle(m);
            }
            out
        } else {
            let Some(obj) = json::parse(raw, &mut self.json_pool) else {
                return Ok(None);
            };
            let out = match seldon_body(&obj, response) {
                Some(b) => match rows_to_py(py, &b.rows) {
                    Ok(rows) => {
                        let body = V1Body {
                            names: b.names,
                            rows,
                            request_path: b.request_path,
                            puid: b.puid,
                        };
                        self.v1_event(
                            py,
                            fmt_plain,
                            fmt_ce,
                            key,
                            value,
                            fallback_time,
                            response,
                            &attrs,
                            &texts,
                            body,
                        )
                    }
                    Err(e) => Err(e),
                },
                None => Ok(None),
            };
            self.json_pool.recycle(obj);
            out
        };
        let Some(mut args) = out? else {
            return Ok(None);
        };
        args.push(attrs.dict.into_any());
        Ok(Some(args))
    }

    /// `decode_v1` once the body is parsed: the event's arguments but the headers and source.
    #[allow(clippy::too_many_arguments)]
    fn v1_event<'py>(
        &mut self,
        py: Python<'py>,
        fmt_plain: &Bound<'py, PyString>,
        fmt_ce: &Bound<'py, PyString>,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        fallback_time: Option<i64>,
        response: bool,
        attrs: &Attrs<'py>,
        texts: &Texts<'_>,
        body: V1Body<'_, '_, 'py>,
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        let key_text = Self::key_text(key);
        let Some(f) = fields::v1_fields(texts, key_text.as_deref(), &body.puid, body.request_path)
        else {
            return Ok(None);
        };
        let fmt = if f.cloudevent { fmt_ce } else { fmt_plain };
        let header = |s: Slot| attrs.get(s).cloned().expect("a slot v1_fields chose");
        let request_id = match f.request_id {
            Rid::Header => header(Slot::RequestId),
            Rid::Text(t) => PyString::new(py, t),
        };
        let model_name = header(f.model);
        let empty = &self.s_empty.bind(py).clone();
        let node = f.node.map_or_else(|| empty.clone(), header);
        let version = f.version;
        let or_empty = |s: Slot| attrs.get(s).cloned().unwrap_or_else(|| empty.clone());
        let model = self.model_ref(
            py,
            [
                &model_name,
                &or_empty(Slot::Namespace),
                &node,
                &or_empty(Slot::Endpoint),
            ],
            version,
        )?;
        let event_time = match attrs.get(Slot::Time) {
            Some(t) => match parse_rfc3339(t.to_str()?) {
                Some(x) => x,
                None => return Ok(None),
            },
            None => match fallback_time {
                Some(t) => t,
                None => return Ok(None), // missing_time: Python's dead letter
            },
        };
        let protocol = match f.protocol {
            Some(p) => header(p),
            None => self.s_seldon.bind(py).clone(),
        };
        let event_id = or_empty(Slot::Id);
        let names = match &body.names {
            Some(n) => self.names_tuple(py, n)?.into_any(),
            None => py.None().into_bound(py),
        };
        let rows = body.rows;
        let kind = if response {
            &self.response
        } else {
            &self.request
        };
        let none = || py.None().into_bound(py);
        let mut args: Vec<Bound<'py, PyAny>> = Vec::with_capacity(18);
        args.extend([
            kind.bind(py).clone(),
            request_id.into_any(),
            model,
            event_time.into_pyobject(py)?.into_any(),
            protocol.into_any(),
            fmt.clone().into_any(),
            event_id.into_any(),
        ]);
        if response {
            args.extend([none(), PyList::empty(py).into_any(), names, rows.into_any()]);
        } else {
            args.extend([names, rows.into_any(), none(), PyList::empty(py).into_any()]);
        }
        args.extend([none(), none(), none(), none(), value.clone()]);
        Ok(Some(args))
    }

    /// A replay line (`decode_line`): a captured binary-mode HTTP CloudEvent whose headers
    /// and body `json::captured_line` reads, decoded as `decode_cloudevent` does with the
    /// source format `seldon-v1-http` and no fallback time.
    fn line<'py>(
        &mut self,
        py: Python<'py>,
        line: &Bound<'py, PyAny>,
        source: &Bound<'py, PyAny>,
    ) -> Res<'py> {
        let Ok(line) = line.cast_exact::<PyBytes>() else {
            return Ok(None);
        };
        let Some(captured) = json::captured_line(line.as_bytes()) else {
            return Ok(None);
        };
        let Some(attrs) = self.line_attrs(py, &captured.headers)? else {
            return Ok(None);
        };
        let mut body = std::mem::take(&mut self.line_body);
        let unescaped = json::unescape(captured.body, &mut body);
        let value = PyBytes::new(py, &body);
        self.line_body = body;
        if unescaped.is_none() {
            return Ok(None);
        }
        let fmt = self.s_fmt_http.bind(py).clone();
        let none = py.None().into_bound(py);
        let raw = value.as_bytes();
        let value = value.as_any();
        let Some(mut args) = self.v1_attrs(py, &fmt, &fmt, &none, value, raw, attrs, None)? else {
            return Ok(None);
        };
        args.push(source.clone());
        Ok(Some(vectorcall(py, self.event_cls.bind(py), &args)?))
    }

    /// `normalize_headers` of a replay line's header object (str names and values). None for
    /// a non-ASCII name and for two names that normalize to one.
    fn line_attrs<'py>(
        &mut self,
        py: Python<'py>,
        headers: &[(&str, &str)],
    ) -> PyResult<Option<Attrs<'py>>> {
        let mut attrs = Attrs {
            dict: PyDict::new(py),
            slots: Default::default(),
            len: 0,
        };
        let cached = headers.len().min(LINE_VALUE_SLOTS);
        if self.line_values.len() < cached {
            self.line_values.resize_with(cached, Default::default);
        }
        for (i, (k, v)) in headers.iter().enumerate() {
            let (name, slot) = match self.line_names.get(k.as_bytes()) {
                Some((n, slot)) => (n.bind(py).clone(), *slot),
                None => {
                    let Some((norm, slot)) = fields::normalize_name(k) else {
                        return Ok(None);
                    };
                    let name = match slot {
                        Some(i) => self.slot_names[i].bind(py).clone(),
                        None => PyString::new(py, &norm),
                    };
                    if self.line_names.len() >= CACHE_LIMIT * 4 {
                        self.line_names.clear();
                    }
                    self.line_names
                        .insert(k.as_bytes().to_vec(), (name.clone().unbind(), slot));
                    (name, slot)
                }
            };
            // Header values repeat (all but the ids and the time): the last two distinct
            // (short) values seen at this position are kept with their str.
            let value = match self.line_values.get_mut(i) {
                Some(cache) if v.len() <= LINE_VALUE_MAX => match cache
                    .iter()
                    .flatten()
                    .find(|(b, _)| same_bytes(b, v.as_bytes()))
                {
                    Some((_, s)) => s.bind(py).clone(),
                    None => {
                        let s = PyString::new(py, v);
                        cache[1] = cache[0].take();
                        cache[0] = Some((v.as_bytes().to_vec(), s.clone().unbind()));
                        s
                    }
                },
                _ => PyString::new(py, v),
            };
            attrs.dict.set_item(&name, &value)?;
            if let Some(i) = slot {
                attrs.slots[SLOTS[i] as usize] = Some(value);
            }
        }
        attrs.len = attrs.dict.len();
        if attrs.len != headers.len() {
            return Ok(None);
        }
        Ok(Some(attrs))
    }

    /// Seldon v2 model topic record (`decode_v2_record` with `raw_tensor_rows`).
    #[allow(clippy::too_many_arguments)]
    fn decode_v2<'py>(
        &mut self,
        py: Python<'py>,
        namespace: &Bound<'py, PyString>,
        model: &Bound<'py, PyString>,
        request: bool,
        key: &Bound<'py, PyAny>,
        value: &Bound<'py, PyAny>,
        raw: &[u8],
        headers: &Bound<'py, PyAny>,
        fallback_time: i64,
    ) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
        if fields::v2_json(raw) {
            return Ok(None);
        }
        let attrs = if headers.is_truthy()? {
            let Some(a) = self.attrs(py, headers)? else {
                return Ok(None);
            };
            a
        } else {
            Attrs {
                dict: PyDict::new(py),
                slots: Default::default(),
                len: 0,
            }
        };
        let Some(msg) = proto::parse_infer(raw, if request { 7 } else { 6 }) else {
            return Ok(None);
        };
        if msg.tensors.len() != 1 || msg.raw.len() != 1 {
            return Ok(None);
        }
        let t = &msg.tensors[0];
        let Some(values) = raw_values(py, t.datatype, msg.raw[0])? else {
            return Ok(None);
        };
        let Some((n, width)) = fields::v2_shape(&t.shape, values.len()) else {
            return Ok(None);
        };
        let (names, rows) = if width == 1 {
            let names = PyTuple::new(py, [t.name])?.into_any();
            let rows = PyList::new(
                py,
                values.into_iter().map(|v| PyList::new(py, [v]).unwrap()),
            )?;
            (names, rows)
        } else if n == 1 {
            (
                py.None().into_bound(py),
                PyList::new(py, [PyList::new(py, values)?])?,
            )
        } else {
            let rows = PyList::empty(py);
            for chunk in values.chunks(width) {
                rows.append(PyList::new(py, chunk)?)?;
            }
            (py.None().into_bound(py), rows)
        };
        let Some(texts) = attrs.texts() else {
            return Ok(None);
        };
        let key_text = Self::key_text(key);
        let request_id = match fields::v2_request_id(&texts, key_text.as_deref(), msg.id) {
            Some(Rid::Header) => attrs.get(Slot::XRequestId).expect("present").clone(),
            Some(Rid::Text(t)) => PyString::new(py, t),
            None => return Ok(None),
        };
        let empty = &self.s_empty.bind(py).clone();
        let model_ref = self.model_ref(py, [model, namespace, model, empty], msg.model_version)?;
        let none = || py.None().into_bound(py);
        let kind = if request {
            &self.request
        } else {
            &self.response
        };
        let mut args: Vec<Bound<'py, PyAny>> = Vec::with_capacity(18);
        args.extend([
            kind.bind(py).clone(),
            request_id.into_any(),
            model_ref,
            fallback_time.into_pyobject(py)?.into_any(),
            self.s_v2.bind(py).clone().into_any(),
            self.s_fmt_v2.bind(py).clone().into_any(),
            empty.clone().into_any(),
        ]);
        if request {
            args.extend([names, rows.into_any(), none(), PyList::empty(py).into_any()]);
        } else {
            args.extend([none(), PyList::empty(py).into_any(), names, rows.into_any()]);
        }
        args.extend([
            none(),
            none(),
            none(),
            none(),
            value.clone(),
            attrs.dict.into_any(),
        ]);
        Ok(Some(args))
    }
}

/// `callable(*args)` without building an argument tuple (msgspec Structs take vectorcalls).
fn vectorcall<'py>(
    py: Python<'py>,
    callable: &Bound<'py, PyAny>,
    args: &[Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    let ptrs: Vec<*mut pyo3::ffi::PyObject> = args.iter().map(|a| a.as_ptr()).collect();
    // SAFETY: `ptrs` borrows the references `args` holds for the duration of the call;
    // the call returns a new reference or NULL with an exception set.
    unsafe {
        let out = pyo3::ffi::PyObject_Vectorcall(
            callable.as_ptr(),
            ptrs.as_ptr(),
            ptrs.len(),
            std::ptr::null_mut(),
        );
        Bound::from_owned_ptr_or_err(py, out)
    }
}

/// Little-endian raw tensor values as Python ints/floats (`fields::raw_numbers`).
fn raw_values<'py>(
    py: Python<'py>,
    datatype: &str,
    raw: &[u8],
) -> PyResult<Option<Vec<Bound<'py, PyAny>>>> {
    let mut out = Vec::with_capacity(raw.len() / 4);
    let read = fields::raw_numbers(datatype, raw, |v| {
        out.push(match v {
            fields::Num::I64(i) => i.into_pyobject(py).unwrap().into_any(),
            fields::Num::U64(u) => u.into_pyobject(py).unwrap().into_any(),
            fields::Num::F64(f) => PyFloat::new(py, f).into_any(),
        })
    });
    Ok(read.map(|()| out))
}

enum Puid<'a> {
    Absent, // missing or falsy
    Str(&'a str),
    Other, // truthy non-string: str(puid) is Python's to write
}

/// What `seldon_message_body` (stream/decode/fastbody.py) reads from a body.
struct SeldonBody<'a, 'j> {
    names: Option<Vec<&'a str>>,
    rows: Vec<&'j [J<'a>]>,
    request_path: Option<&'j J<'a>>,
    puid: Puid<'a>,
}

/// Scalars only (the fast path leaves rows holding objects to Python as well).
fn scalars(values: &[J<'_>]) -> bool {
    values.iter().all(|v| !matches!(v, J::Arr(_) | J::Obj(_)))
}

fn seldon_body<'a, 'j>(obj: &'j J<'a>, response: bool) -> Option<SeldonBody<'a, 'j>> {
    if !obj.keys_within(&["data", "meta"]) {
        return None;
    }
    let data = obj.get("data")?;
    if !data.keys_within(&["names", "ndarray", "tensor"]) {
        return None;
    }
    let rows: Vec<&[J]> = match data.get("ndarray") {
        Some(J::Arr(nd)) => {
            if nd.is_empty() {
                vec![]
            } else if matches!(nd[0], J::Arr(_)) {
                let mut rows = Vec::with_capacity(nd.len());
                for r in nd {
                    match r {
                        J::Arr(r) if scalars(r) => rows.push(r.as_slice()),
                        _ => return None,
                    }
                }
                rows
            } else if !scalars(nd) {
                return None;
            } else if response {
                nd.chunks(1).collect()
            } else {
                vec![nd.as_slice()]
            }
        }
        Some(_) => return None,
        None => tensor_rows(data.get("tensor")?, response)?,
    };
    let names = match data.get("names") {
        None | Some(J::Null) => None,
        Some(J::Arr(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for n in items {
                match n {
                    J::Str(s) => out.push(*s),
                    _ => return None, // str() of a non-string name: Python's
                }
            }
            Some(out)
        }
        Some(_) => return None,
    };
    let (request_path, puid) = meta_info(obj.get("meta"))?;
    Some(SeldonBody {
        names,
        rows,
        request_path,
        puid,
    })
}

/// `meta.requestPath` (when a non-empty object) and `meta.puid` of a SeldonMessage; None
/// when `seldon_message_body` would refuse the meta (a non-empty meta that is no object, a
/// non-empty requestPath that is no object).
fn meta_info<'a, 'j>(meta: Option<&'j J<'a>>) -> Option<(Option<&'j J<'a>>, Puid<'a>)> {
    let mut request_path = None;
    let mut puid = Puid::Absent;
    if let Some(meta) = meta {
        if meta.truthy() {
            let J::Obj(_) = meta else { return None };
            if let Some(paths) = meta.get("requestPath") {
                if paths.truthy() {
                    let J::Obj(_) = paths else { return None };
                    request_path = Some(paths);
                }
            }
            if let Some(p) = meta.get("puid") {
                if p.truthy() {
                    puid = match p {
                        J::Str(s) => Puid::Str(s),
                        _ => Puid::Other,
                    };
                }
            }
        }
    }
    Some((request_path, puid))
}

/// A SeldonMessage body as the event needs it, from either reader.
struct V1Body<'a, 'j, 'py> {
    names: Option<Vec<&'a str>>,
    rows: Bound<'py, PyList>,
    request_path: Option<&'j J<'a>>,
    puid: Puid<'a>,
}

/// `_tensor_rows`: a flat values list and a 1-D or 2-D shape of positive ints.
fn tensor_rows<'a, 'j>(tensor: &'j J<'a>, response: bool) -> Option<Vec<&'j [J<'a>]>> {
    let J::Obj(_) = tensor else { return None };
    let (Some(J::Arr(shape)), Some(J::Arr(values))) = (tensor.get("shape"), tensor.get("values"))
    else {
        return None;
    };
    if !scalars(values) {
        return None;
    }
    let dim = |j: &J| match j {
        J::Int(i) if *i > 0 => Some(*i as i128),
        _ => None,
    };
    let (n, width) = match shape.as_slice() {
        [n, w] => (dim(n)?, dim(w)?),
        [d] if response => (dim(d)?, 1),
        [d] => (1, dim(d)?),
        _ => return None,
    };
    if n * width != values.len() as i128 {
        return None;
    }
    if n == 1 {
        return Some(vec![values.as_slice()]);
    }
    Some(values.chunks(width as usize).collect())
}

fn scalar_to_py<'py>(py: Python<'py>, v: &J<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match v {
        J::Null => py.None().into_bound(py),
        J::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        J::Int(i) => i.into_pyobject(py)?.into_any(),
        J::Float(f) => PyFloat::new(py, *f).into_any(),
        J::Str(s) => PyString::new(py, s).into_any(),
        J::Arr(_) | J::Obj(_) => {
            return Err(pyo3::exceptions::PyValueError::new_err("not a scalar"));
        }
    })
}

fn rows_to_py<'py>(py: Python<'py>, rows: &[&[J<'_>]]) -> PyResult<Bound<'py, PyList>> {
    let out = new_list(py, rows.len())?;
    for (i, r) in rows.iter().enumerate() {
        let row = new_list(py, r.len())?;
        for (j, v) in r.iter().enumerate() {
            list_set(&row, j, scalar_to_py(py, v)?);
        }
        list_set(&out, i, row.into_any());
    }
    Ok(out)
}

/// A list of `n` slots, each to be filled once with `list_set` before it is used.
fn new_list(py: Python<'_>, n: usize) -> PyResult<Bound<'_, PyList>> {
    // SAFETY: PyList_New returns a new reference or NULL with an exception set; its slots
    // are NULL until set (list_dealloc accepts that should an error leave some unset).
    unsafe {
        Ok(
            Bound::from_owned_ptr_or_err(py, pyo3::ffi::PyList_New(n as pyo3::ffi::Py_ssize_t))?
                .cast_into_unchecked(),
        )
    }
}

/// Fill slot `i` (< len, not yet set) of a `new_list`, taking the reference to `v`.
fn list_set(list: &Bound<'_, PyList>, i: usize, v: Bound<'_, PyAny>) {
    // SAFETY: i < len (callers index within the size they asked for); the slot is empty,
    // so nothing leaks; PyList_SET_ITEM steals the reference `into_ptr` gives up.
    unsafe { pyo3::ffi::PyList_SET_ITEM(list.as_ptr(), i as pyo3::ffi::Py_ssize_t, v.into_ptr()) }
}

/// `image_tag`: the tag of a container image reference, or "".
fn image_tag(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or("");
    match last.find(':') {
        Some(i) => &last[i + 1..],
        None => "",
    }
}

/// `parse_rfc3339`'s fast path, for ASCII `YYYY-MM-DDTHH:MM:SS[.frac]Z` only (with both
/// separators where they belong): int ns since the epoch, the fraction's first 9 digits
/// exact and the rest truncated, as Python's; None for anything else (or beyond i64),
/// which Python then parses.
pub(crate) fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if !text.is_ascii() || b.len() < 20 || !matches!(b[b.len() - 1], b'Z' | b'z') {
        return None;
    }
    if b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    if !(b[19] == b'.' || b.len() == 20) {
        return None;
    }
    let frac = if b.len() > 20 {
        &b[20..b.len() - 1]
    } else {
        &b[0..0]
    };
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = &b[r];
        if !s.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(s.iter().fold(0i64, |a, c| a * 10 + i64::from(c - b'0')))
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mi, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !((1..=12).contains(&mo) && (1..=31).contains(&d) && hh < 24 && mi < 60 && ss < 61) {
        return None;
    }
    let day = days_from_civil(y, mo, d) * 86400;
    let seconds = day + hh * 3600 + mi * 60 + ss;
    let mut nanos = 0i64;
    for k in 0..9 {
        nanos = nanos * 10 + frac.get(k).map_or(0, |c| i64::from(c - b'0'));
    }
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (stream/eventtime.py's).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

#[pymodule]
fn predlog_native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Decoder>()?;
    m.add_class::<batch::BatchDecoder>()?;
    Ok(())
}
