//! `BatchDecoder.decode_kafka_batch(records)`: a list of Kafka records decoded into
//! columns (stream/batch.py's `EventBatch`; stream/decode/batch.py is the only caller).
//!
//! `records` is a list of 7-tuples `(topic, key, value, headers, timestamp_ms, partition,
//! offset)`, the arguments of `decode_kafka_record_python`. The records taken here are the
//! shapes `Decoder.decode_kafka` takes (lib.rs), read by the same functions (fields.rs,
//! json.rs, proto.rs), with every feature / output value a number (an int or a float): a
//! string, bool or null among them, ragged rows, a time that is not `...Z` RFC 3339, a
//! float timestamp that is not a whole number of milliseconds, or an event time outside
//! the int64 nanosecond range leave the record to Python, as does anything `decode_kafka`
//! leaves. Nothing Python-visible is built per value: per record one request id `str`;
//! the rest goes into Rust vectors handed over as `bytearray`s (`numpy.frombuffer`).
//!
//! The answer is a dict: `index` (the positions taken, int64), the record columns (`kind`
//! int8, `request_id` list of str, `model` int32 and `models` a list of 5-tuples of str,
//! `event_time_ns` int64, `protocol` / `source_format` / `topic` int32 with their lists,
//! `rows` int32, `partition` / `offset` int64), `groups` a list of `(model, side, names,
//! width, values float64, records int64, offsets int64)`, and `unhandled` (int64): the
//! positions of the records left to Python. Codes and groups are in order of first
//! appearance. A Python error or a Rust panic while reading a record leaves it to Python.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

use crate::fields::{self, Num, Rid, Texts, TopicKind};
use crate::json::Rows;
use crate::{json, meta_info, proto, seldon_body, Decoder, Puid, Slot};

const REQUEST: i8 = 0;
const RESPONSE: i8 = 1;
const FEATURES: u8 = 0;
const OUTPUTS: u8 = 1;

/// Values in the order of their first appearance, found again by a linear scan (a fetch
/// holds a few models, protocols, formats and topics).
struct Dict<T> {
    items: Vec<T>,
}

impl<T> Default for Dict<T> {
    fn default() -> Self {
        Dict { items: Vec::new() }
    }
}

impl Dict<String> {
    fn code(&mut self, s: &str) -> i32 {
        if let Some(i) = self.items.iter().rposition(|x| eq(x, s)) {
            return i as i32;
        }
        self.items.push(s.to_owned());
        (self.items.len() - 1) as i32
    }
}

impl Dict<[String; 5]> {
    fn code(&mut self, m: [&str; 5]) -> i32 {
        if let Some(i) = self
            .items
            .iter()
            .rposition(|x| x.iter().zip(m).all(|(a, b)| eq(a, b)))
        {
            return i as i32;
        }
        self.items.push(m.map(str::to_owned));
        (self.items.len() - 1) as i32
    }
}

/// `a == b` without a call to memcmp (short strings).
#[inline]
fn eq(a: &str, b: &str) -> bool {
    crate::same_bytes(a.as_bytes(), b.as_bytes())
}

struct Group {
    model: i32,
    side: u8,
    names: Option<Vec<String>>,
    width: usize,
    values: Vec<f64>,
    records: Vec<i64>,
    offsets: Vec<i64>,
}

#[derive(Default)]
struct Columns<'py> {
    index: Vec<i64>,
    kind: Vec<i8>,
    request_id: Vec<Bound<'py, PyString>>,
    model: Vec<i32>,
    time: Vec<i64>,
    protocol: Vec<i32>,
    fmt: Vec<i32>,
    rows: Vec<i32>,
    topic: Vec<i32>,
    partition: Vec<i64>,
    offset: Vec<i64>,
    models: Dict<[String; 5]>,
    protocols: Dict<String>,
    fmts: Dict<String>,
    topics: Dict<String>,
    groups: Vec<Group>,
    unhandled: Vec<i64>,
}

/// One record's fields, read but not yet in the columns (its values are in `scratch`).
struct Rec<'s> {
    kind: i8,
    request_id: &'s str,
    model: [&'s str; 5],
    time: i64,
    protocol: &'s str,
    fmt: &'s str,
    names: Option<Vec<&'s str>>,
    n_rows: usize,
    width: usize,
}

impl<'py> Columns<'py> {
    fn commit(
        &mut self,
        py: Python<'py>,
        r: Rec<'_>,
        index: usize,
        coords: (&str, i64, i64),
        scratch: &[f64],
    ) {
        let row = self.kind.len() as i64;
        let model = self.models.code(r.model);
        self.index.push(index as i64);
        self.kind.push(r.kind);
        self.request_id.push(PyString::new(py, r.request_id));
        self.model.push(model);
        self.time.push(r.time);
        self.protocol.push(self.protocols.code(r.protocol));
        self.fmt.push(self.fmts.code(r.fmt));
        self.rows.push(r.n_rows as i32);
        self.topic.push(self.topics.code(coords.0));
        self.partition.push(coords.1);
        self.offset.push(coords.2);
        if r.n_rows == 0 {
            return;
        }
        let side = if r.kind == RESPONSE {
            OUTPUTS
        } else {
            FEATURES
        };
        let same_names = |g: &Group| match (&g.names, &r.names) {
            (None, None) => true,
            (Some(a), Some(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| eq(x, y)),
            _ => false,
        };
        let found = self.groups.iter().rposition(|g| {
            g.model == model && g.side == side && g.width == r.width && same_names(g)
        });
        let g = match found {
            Some(i) => &mut self.groups[i],
            None => {
                self.groups.push(Group {
                    model,
                    side,
                    names: r
                        .names
                        .as_ref()
                        .map(|n| n.iter().map(|s| s.to_string()).collect()),
                    width: r.width,
                    values: Vec::new(),
                    records: Vec::new(),
                    offsets: vec![0],
                });
                self.groups.last_mut().unwrap()
            }
        };
        g.values.extend_from_slice(scratch);
        g.records.push(row);
        g.offsets.push(g.offsets.last().unwrap() + r.n_rows as i64);
    }
}

fn array<'py, T: Copy>(py: Python<'py>, v: &[T]) -> Bound<'py, PyByteArray> {
    // SAFETY: T is a plain number type (i8, i32, i64, f64): its bytes are its value.
    let bytes =
        unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) };
    PyByteArray::new(py, bytes)
}

/// A Kafka timestamp (ms) in nanoseconds: an int, or a float holding a whole number.
fn timestamp_ns(ts: &Bound<'_, PyAny>) -> Option<i64> {
    if ts.is_exact_instance_of::<PyInt>() {
        return ts.extract::<i64>().ok()?.checked_mul(1_000_000);
    }
    if ts.is_exact_instance_of::<PyFloat>() {
        let f: f64 = ts.extract().ok()?;
        if f.fract() != 0.0 || !f.is_finite() || f.abs() >= 9.2e18 {
            return None;
        }
        return (f as i64).checked_mul(1_000_000);
    }
    None
}

#[pyclass(module = "predlog_native")]
#[derive(Default)]
pub struct BatchDecoder {
    /// raw header name -> Some(slot index or None) once normalized; None: non-ASCII
    names: HashMap<String, Option<Option<usize>>>,
    /// per header position: the last name seen there and what `names` says of it (a
    /// topic's records repeat one header list)
    last: Vec<(Vec<u8>, Option<Option<usize>>)>,
    json_pool: json::Pool,
    scratch: Vec<f64>,
}

#[pymethods]
impl BatchDecoder {
    #[new]
    fn new() -> Self {
        BatchDecoder::default()
    }

    fn decode_kafka_batch<'py>(
        &mut self,
        py: Python<'py>,
        records: &Bound<'py, PyList>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let mut cols = Columns::default();
        for (i, item) in records.iter().enumerate() {
            let mut scratch = std::mem::take(&mut self.scratch);
            scratch.clear();
            let run = AssertUnwindSafe(|| self.record(py, &item, i, &mut cols, &mut scratch));
            let taken = matches!(catch_unwind(run), Ok(Ok(true)));
            self.scratch = scratch;
            if !taken {
                cols.unhandled.push(i as i64);
            }
        }
        let out = PyDict::new(py);
        out.set_item("index", array(py, &cols.index))?;
        out.set_item("kind", array(py, &cols.kind))?;
        out.set_item("request_id", PyList::new(py, &cols.request_id)?)?;
        out.set_item("model", array(py, &cols.model))?;
        let models = cols
            .models
            .items
            .iter()
            .map(|m| PyTuple::new(py, m.iter().map(|s| PyString::new(py, s))))
            .collect::<PyResult<Vec<_>>>()?;
        out.set_item("models", PyList::new(py, models)?)?;
        out.set_item("event_time_ns", array(py, &cols.time))?;
        out.set_item("protocol", array(py, &cols.protocol))?;
        out.set_item("protocols", PyList::new(py, &cols.protocols.items)?)?;
        out.set_item("source_format", array(py, &cols.fmt))?;
        out.set_item("source_formats", PyList::new(py, &cols.fmts.items)?)?;
        out.set_item("rows", array(py, &cols.rows))?;
        out.set_item("topic", array(py, &cols.topic))?;
        out.set_item("topics", PyList::new(py, &cols.topics.items)?)?;
        out.set_item("partition", array(py, &cols.partition))?;
        out.set_item("offset", array(py, &cols.offset))?;
        let groups = PyList::empty(py);
        for g in &cols.groups {
            let names = match &g.names {
                Some(n) => PyTuple::new(py, n)?.into_any(),
                None => py.None().into_bound(py),
            };
            groups.append((
                g.model,
                g.side,
                names,
                g.width,
                array(py, &g.values),
                array(py, &g.records),
                array(py, &g.offsets),
            ))?;
        }
        out.set_item("groups", groups)?;
        out.set_item("unhandled", array(py, &cols.unhandled))?;
        Ok(out)
    }
}

impl BatchDecoder {
    /// Read record `i` into `cols`; false: leave it to Python.
    fn record<'py>(
        &mut self,
        py: Python<'py>,
        item: &Bound<'py, PyAny>,
        i: usize,
        cols: &mut Columns<'py>,
        scratch: &mut Vec<f64>,
    ) -> PyResult<bool> {
        let Ok(t) = item.cast_exact::<PyTuple>() else {
            return Ok(false);
        };
        if t.len() != 7 {
            return Ok(false);
        }
        let item = |i| t.get_borrowed_item(i);
        let (topic, key, value, headers) = (item(0)?, item(1)?, item(2)?, item(3)?);
        let (ts, partition, offset) = (item(4)?, item(5)?, item(6)?);
        let (Ok(topic), Ok(value)) = (
            topic.cast_exact::<PyString>(),
            value.cast_exact::<PyBytes>(),
        ) else {
            return Ok(false);
        };
        if !partition.is_exact_instance_of::<PyInt>() || !offset.is_exact_instance_of::<PyInt>() {
            return Ok(false);
        }
        let coords = (
            topic.to_str()?,
            partition.extract::<i64>()?,
            offset.extract::<i64>()?,
        );
        // `timestamp_ms / 1000.0` (the Python decoders' fallback time) of an int or float
        if !(ts.is_exact_instance_of::<PyInt>() || ts.is_exact_instance_of::<PyFloat>()) {
            return Ok(false);
        }
        let ts_ns = timestamp_ns(&ts);
        let raw = value.as_bytes();
        let key_text = Decoder::key_text(&key);
        match fields::topic_kind(coords.0) {
            TopicKind::Other => Ok(false),
            TopicKind::V1 => {
                let Some((texts, n)) = self.headers(&headers) else {
                    return Ok(false);
                };
                if n == 0 {
                    return Ok(false); // no headers: decode_kafka_record sniffs the value
                }
                if fields::structured(texts.get(Slot::ContentType).unwrap_or("")) {
                    return Ok(false);
                }
                let Some(response) = fields::v1_response(&texts) else {
                    return Ok(false);
                };
                let key = key_text.as_deref();
                // The one-pass reader for the common body, else the tree (tensors, ...).
                let mut rows = F64Rows::new(scratch);
                if let Some(fast) = json::seldon(raw, response, &mut self.json_pool, &mut rows) {
                    let body = match meta_info(fast.meta.as_ref()) {
                        Some((request_path, puid)) => Some(Body {
                            names: fast.names,
                            n_rows: rows.rows,
                            width: rows.width.unwrap_or(0),
                            request_path,
                            puid,
                        }),
                        None => None,
                    };
                    let rec = body.and_then(|b| v1_record(&texts, key, b, response, ts_ns));
                    let taken = rec.is_some();
                    if let Some(r) = rec {
                        cols.commit(py, r, i, coords, scratch);
                    }
                    if let Some(m) = fast.meta {
                        self.json_pool.recycle(m);
                    }
                    return Ok(taken);
                }
                scratch.clear();
                let Some(obj) = json::parse(raw, &mut self.json_pool) else {
                    return Ok(false);
                };
                let rec = seldon_body(&obj, response).and_then(|b| {
                    let mut rows = F64Rows::new(scratch);
                    for row in &b.rows {
                        for v in row.iter() {
                            rows.value(v.scalar_copy()?)?;
                        }
                        rows.row_end()?;
                    }
                    let body = Body {
                        names: b.names,
                        n_rows: rows.rows,
                        width: rows.width.unwrap_or(0),
                        request_path: b.request_path,
                        puid: b.puid,
                    };
                    v1_record(&texts, key, body, response, ts_ns)
                });
                let taken = rec.is_some();
                if let Some(r) = rec {
                    cols.commit(py, r, i, coords, scratch);
                }
                self.json_pool.recycle(obj);
                Ok(taken)
            }
            TopicKind::V2(namespace, model, request) => {
                if fields::v2_json(raw) {
                    return Ok(false);
                }
                let Some((texts, _)) = self.headers(&headers) else {
                    return Ok(false);
                };
                let Some(msg) = proto::parse_infer(raw, if request { 7 } else { 6 }) else {
                    return Ok(false);
                };
                if msg.tensors.len() != 1 || msg.raw.len() != 1 {
                    return Ok(false);
                }
                let tensor = &msg.tensors[0];
                let read = fields::raw_numbers(tensor.datatype, msg.raw[0], |v| {
                    scratch.push(match v {
                        Num::I64(x) => x as f64,
                        Num::U64(x) => x as f64,
                        Num::F64(x) => x,
                    })
                });
                if read.is_none() {
                    return Ok(false);
                }
                let Some((n, width)) = fields::v2_shape(&tensor.shape, scratch.len()) else {
                    return Ok(false);
                };
                let Some(ts_ns) = ts_ns else {
                    return Ok(false);
                };
                let request_id = match fields::v2_request_id(&texts, key_text.as_deref(), msg.id) {
                    Some(Rid::Header) => texts.get(Slot::XRequestId).unwrap_or(""),
                    Some(Rid::Text(t)) => t,
                    None => return Ok(false),
                };
                let rec = Rec {
                    kind: if request { REQUEST } else { RESPONSE },
                    request_id,
                    model: [model, namespace, model, "", msg.model_version],
                    time: ts_ns,
                    protocol: "v2",
                    fmt: "seldon-v2",
                    names: (width == 1).then(|| vec![tensor.name]),
                    n_rows: n,
                    width,
                };
                cols.commit(py, rec, i, coords, scratch);
                Ok(true)
            }
        }
    }

    /// The text of the attributes of a header list or dict, and how many headers there
    /// are; None for anything `Decoder::attrs` leaves to Python (a non-ASCII or non-str
    /// name, a value that is neither UTF-8 bytes nor a str, other containers).
    fn headers<'a>(&mut self, headers: &'a Bound<'_, PyAny>) -> Option<(Texts<'a>, usize)> {
        let mut texts = Texts::default();
        let mut pos = 0;
        let mut one = |k: *mut ffi::PyObject, v: *mut ffi::PyObject| -> Option<()> {
            // SAFETY: k and v are borrowed from `headers`, which outlives 'a (see `view`).
            let (name, value) = unsafe { (view::text::<'a>(k)?, view::value_text::<'a>(v)?) };
            pos += 1;
            if self.last.len() < pos {
                self.last.push((Vec::new(), Some(None))); // what "" normalizes to
            }
            let last = &mut self.last[pos - 1];
            let slot = if crate::same_bytes(&last.0, name.as_bytes()) {
                last.1
            } else {
                let slot = match self.names.get(name) {
                    Some(s) => *s,
                    None => {
                        let s = fields::normalize_name(name).map(|(_, slot)| slot);
                        if self.names.len() >= 4096 {
                            self.names.clear();
                        }
                        self.names.insert(name.to_owned(), s);
                        s
                    }
                };
                last.0.clear();
                last.0.extend_from_slice(name.as_bytes());
                last.1 = slot;
                slot
            };
            if let Some(s) = slot? {
                texts.set(s, value);
            }
            Some(())
        };
        let h = headers.as_ptr();
        // SAFETY: exact list / tuple / dict checked before their items are read; the items
        // are borrowed, and nothing here runs Python code that could change them.
        unsafe {
            if ffi::PyList_CheckExact(h) != 0 {
                for i in 0..ffi::PyList_GET_SIZE(h) {
                    let pair = ffi::PyList_GET_ITEM(h, i);
                    if ffi::PyTuple_CheckExact(pair) == 0 || ffi::PyTuple_GET_SIZE(pair) != 2 {
                        return None;
                    }
                    one(
                        ffi::PyTuple_GET_ITEM(pair, 0),
                        ffi::PyTuple_GET_ITEM(pair, 1),
                    )?;
                }
            } else if ffi::PyDict_CheckExact(h) != 0 {
                let (mut at, mut k, mut v) = (0, std::ptr::null_mut(), std::ptr::null_mut());
                while ffi::PyDict_Next(h, &mut at, &mut k, &mut v) != 0 {
                    one(k, v)?;
                }
            } else if h != ffi::Py_None() {
                return None;
            }
        }
        Some((texts, pos))
    }
}

/// Borrowed views of the str and bytes objects a records list holds: no reference
/// counting, no call into Python. The text lives as long as the object, which the caller
/// holds (through the list) for 'a; str and bytes objects are immutable.
pub(crate) mod view {
    use pyo3::ffi;

    /// An exact str's UTF-8 text (None for one with surrogates).
    pub unsafe fn text<'a>(o: *mut ffi::PyObject) -> Option<&'a str> {
        if ffi::PyUnicode_CheckExact(o) == 0 {
            return None;
        }
        if ffi::PyUnicode_IS_COMPACT_ASCII(o) != 0 {
            let n = ffi::PyUnicode_GET_LENGTH(o) as usize;
            let p = ffi::PyUnicode_DATA(o) as *const u8;
            return Some(std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                p, n,
            )));
        }
        let mut n: ffi::Py_ssize_t = 0;
        let p = ffi::PyUnicode_AsUTF8AndSize(o, &mut n);
        if p.is_null() {
            ffi::PyErr_Clear();
            return None;
        }
        Some(std::str::from_utf8_unchecked(std::slice::from_raw_parts(
            p as *const u8,
            n as usize,
        )))
    }

    /// An exact bytes' UTF-8 text, or an exact str's text.
    pub unsafe fn value_text<'a>(o: *mut ffi::PyObject) -> Option<&'a str> {
        if ffi::PyBytes_CheckExact(o) != 0 {
            let p = ffi::PyBytes_AS_STRING(o) as *const u8;
            let bytes = std::slice::from_raw_parts(p, ffi::Py_SIZE(o) as usize);
            return std::str::from_utf8(bytes).ok();
        }
        text(o)
    }
}

/// What a Seldon v1 body gives a record (its values are in the scratch vector).
struct Body<'s> {
    names: Option<Vec<&'s str>>,
    n_rows: usize,
    width: usize,
    request_path: Option<&'s json::J<'s>>,
    puid: Puid<'s>,
}

/// The numbers of an ndarray as float64 rows of one width; a str, bool or null, or rows
/// of unequal lengths (ragged) refuse the record (an object group: Python's).
struct F64Rows<'v> {
    out: &'v mut Vec<f64>,
    width: Option<usize>,
    in_row: usize,
    rows: usize,
}

impl<'v> F64Rows<'v> {
    fn new(out: &'v mut Vec<f64>) -> Self {
        out.clear();
        F64Rows {
            out,
            width: None,
            in_row: 0,
            rows: 0,
        }
    }
}

impl<'a> json::Rows<'a> for F64Rows<'_> {
    fn reset(&mut self) {
        self.out.clear();
        (self.width, self.in_row, self.rows) = (None, 0, 0);
    }

    fn value(&mut self, v: json::J<'a>) -> Option<()> {
        self.out.push(match v {
            json::J::Int(x) => x as f64,
            json::J::Float(x) => x,
            _ => return None,
        });
        self.in_row += 1;
        Some(())
    }

    fn row_end(&mut self) -> Option<()> {
        if *self.width.get_or_insert(self.in_row) != self.in_row {
            return None;
        }
        self.in_row = 0;
        self.rows += 1;
        Some(())
    }
}

/// A Seldon v1 / CloudEvents record with this body, as `decode_attributes` reads it.
fn v1_record<'s>(
    texts: &Texts<'s>,
    key: Option<&'s str>,
    body: Body<'s>,
    response: bool,
    ts_ns: Option<i64>,
) -> Option<Rec<'s>> {
    let f = fields::v1_fields(texts, key, &body.puid, body.request_path)?;
    let time = match texts.get(Slot::Time) {
        Some(t) => crate::parse_rfc3339(t)?, // lib.rs's, the one event-time parser
        None => ts_ns?,
    };
    let header = |s: Slot| texts.get(s).unwrap_or("");
    Some(Rec {
        kind: if response { RESPONSE } else { REQUEST },
        request_id: match f.request_id {
            Rid::Header => header(Slot::RequestId),
            Rid::Text(t) => t,
        },
        model: [
            header(f.model),
            header(Slot::Namespace),
            f.node.map_or("", header),
            header(Slot::Endpoint),
            f.version,
        ],
        time,
        protocol: f.protocol.map_or("seldon", header),
        fmt: if f.cloudevent {
            fields::FMT_CE_KAFKA
        } else {
            fields::FMT_V1_KAFKA
        },
        names: body.names,
        n_rows: body.n_rows,
        width: body.width,
    })
}
