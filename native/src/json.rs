//! A strict JSON reader for the one shape the fast path decodes (SeldonMessage bodies).
//!
//! It accepts a subset of what `orjson.loads` accepts and gives the same values on it:
//! any input it is unsure about makes it return `None`, and the caller then leaves the
//! record to the Python decoder. Refused here (though orjson may read them):
//! - strings with a backslash escape or a control character (values come out as borrowed
//!   slices of the input, never unescaped copies);
//! - integers outside the i64 range (orjson reads them as u64 ints or as floats);
//! - floats that are not finite once parsed (orjson refuses them as well);
//! - nesting deeper than `MAX_DEPTH`.
//!
//! The whole input must be valid UTF-8 (orjson refuses anything else). Numbers follow the
//! JSON grammar exactly: no leading zeros, no `1.`, no `.5`, no `+1`. A number without a
//! fraction or exponent is an int (`-0` is int 0), anything else a float, parsed with
//! Rust's correctly rounded `str::parse::<f64>` (as orjson's parser is correctly rounded).
//! Objects keep every key in order, duplicates included; `get` returns the last one, as
//! a Python dict built from the same text holds the last value.

pub const MAX_DEPTH: usize = 32;

/// 10^0 ..= 10^22, each exact as a double.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

#[derive(Debug)]
pub enum J<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Arr(Vec<J<'a>>),
    Obj(Vec<(&'a str, J<'a>)>),
}

impl<'a> J<'a> {
    /// Python truthiness of the value orjson would build.
    pub fn truthy(&self) -> bool {
        match self {
            J::Null => false,
            J::Bool(b) => *b,
            J::Int(i) => *i != 0,
            J::Float(f) => *f != 0.0,
            J::Str(s) => !s.is_empty(),
            J::Arr(a) => !a.is_empty(),
            J::Obj(o) => !o.is_empty(),
        }
    }

    /// The value of `key` in an object (the last one when a key repeats).
    pub fn get(&self, key: &str) -> Option<&J<'a>> {
        match self {
            J::Obj(items) => items.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// A copy of a scalar (None for an array or an object).
    pub fn scalar_copy(&self) -> Option<J<'a>> {
        Some(match self {
            J::Null => J::Null,
            J::Bool(b) => J::Bool(*b),
            J::Int(i) => J::Int(*i),
            J::Float(f) => J::Float(*f),
            J::Str(s) => J::Str(s),
            J::Arr(_) | J::Obj(_) => return None,
        })
    }

    /// Every key of an object is one of `allowed`.
    pub fn keys_within(&self, allowed: &[&str]) -> bool {
        match self {
            J::Obj(items) => items.iter().all(|(k, _)| allowed.contains(k)),
            _ => false,
        }
    }
}

/// Empty vectors kept between documents, so that parsing one allocates nothing once a few
/// documents of the same shape have been read: `parse` takes its arrays and objects from
/// here and `recycle` gives them back, emptied.
#[derive(Default)]
pub struct Pool {
    arrs: Vec<Vec<J<'static>>>,
    objs: Vec<Vec<(&'static str, J<'static>)>>,
}

const POOL_LIMIT: usize = 64;

impl Pool {
    fn arr<'a>(&mut self) -> Vec<J<'a>> {
        match self.arrs.pop() {
            // SAFETY: the vector is empty, and J<'static> and J<'a> have one layout: no
            // value of either lifetime is ever read through the other.
            Some(v) => unsafe { std::mem::transmute::<Vec<J<'static>>, Vec<J<'a>>>(v) },
            None => Vec::with_capacity(16),
        }
    }

    fn obj<'a>(&mut self) -> Vec<(&'a str, J<'a>)> {
        match self.objs.pop() {
            // SAFETY: as in `arr`.
            Some(v) => unsafe {
                std::mem::transmute::<Vec<(&'static str, J<'static>)>, Vec<(&'a str, J<'a>)>>(v)
            },
            None => Vec::with_capacity(4),
        }
    }

    /// Take a parsed document apart, keeping its (emptied) vectors for the next one.
    pub fn recycle(&mut self, j: J<'_>) {
        match j {
            J::Arr(mut items) => {
                for v in items.drain(..) {
                    if matches!(v, J::Arr(_) | J::Obj(_)) {
                        self.recycle(v); // scalars own nothing
                    }
                }
                if self.arrs.len() < POOL_LIMIT {
                    // SAFETY: emptied just above; see `arr`.
                    self.arrs
                        .push(unsafe { std::mem::transmute::<Vec<J<'_>>, Vec<J<'static>>>(items) });
                }
            }
            J::Obj(mut items) => {
                for (_, v) in items.drain(..) {
                    if matches!(v, J::Arr(_) | J::Obj(_)) {
                        self.recycle(v);
                    }
                }
                if self.objs.len() < POOL_LIMIT {
                    // SAFETY: emptied just above; see `arr`.
                    self.objs.push(unsafe {
                        std::mem::transmute::<Vec<(&str, J<'_>)>, Vec<(&'static str, J<'static>)>>(
                            items,
                        )
                    });
                }
            }
            _ => {}
        }
    }
}

/// Parse a whole document; `None` when it is not in the accepted subset.
///
/// Only the bytes of strings are checked for UTF-8: anywhere else the grammar accepts
/// ASCII bytes only, so a document this accepts is valid UTF-8 as a whole.
pub fn parse<'a>(raw: &'a [u8], pool: &mut Pool) -> Option<J<'a>> {
    let mut p = Parser { b: raw, i: 0, pool };
    p.ws();
    let v = p.value(0)?;
    p.ws();
    if p.i != p.b.len() {
        return None;
    }
    Some(v)
}

struct Parser<'a, 'p> {
    b: &'a [u8],
    pool: &'p mut Pool,
    i: usize,
}

impl<'a, 'p> Parser<'a, 'p> {
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c == b' ' || c == b'\t' || c == b'\n' || c == b'\r' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    fn literal(&mut self, word: &[u8], v: J<'a>) -> Option<J<'a>> {
        if self.b.get(self.i..self.i + word.len())? == word {
            self.i += word.len();
            Some(v)
        } else {
            None
        }
    }

    fn value(&mut self, depth: usize) -> Option<J<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        match *self.b.get(self.i)? {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => self.string().map(J::Str),
            b't' => self.literal(b"true", J::Bool(true)),
            b'f' => self.literal(b"false", J::Bool(false)),
            b'n' => self.literal(b"null", J::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn string(&mut self) -> Option<&'a str> {
        self.i += 1; // opening quote
        let start = self.i;
        let rest = self.b.get(start..)?;
        let n = rest
            .iter()
            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
        if rest[n] != b'"' {
            return None; // an escape or a control character
        }
        let bytes = &rest[..n];
        self.i = start + n + 1;
        if bytes.is_ascii() {
            // SAFETY: ASCII bytes are valid UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(bytes) })
        } else {
            std::str::from_utf8(bytes).ok()
        }
    }

    /// Skip ASCII digits (a fraction, an exponent); how many there were.
    fn digits(&mut self) -> usize {
        let start = self.i;
        while matches!(self.b.get(self.i), Some(b'0'..=b'9')) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Option<J<'a>> {
        let start = self.i;
        let neg = self.b[self.i] == b'-';
        if neg {
            self.i += 1;
        }
        let digits_start = self.i;
        let first = *self.b.get(self.i)?;
        // The integer part, accumulated as it is read (enough for an i64 int).
        let mut mag: u64 = 0;
        let mut overflow = false;
        while let Some(&c) = self.b.get(self.i) {
            if !c.is_ascii_digit() {
                break;
            }
            match mag
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(c - b'0')))
            {
                Some(m) => mag = m,
                None => overflow = true,
            }
            self.i += 1;
        }
        let n = self.i - digits_start;
        if n == 0 || (first == b'0' && n > 1) {
            return None;
        }
        let mut float = false;
        // The digits of integer part and fraction as one integer `sig` (None once it
        // overflows) and the number of fraction digits: Clinger's exact fast path below.
        let mut sig = (!overflow).then_some(mag);
        let mut frac_len = 0usize;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            while let Some(&c) = self.b.get(self.i) {
                if !c.is_ascii_digit() {
                    break;
                }
                sig = sig
                    .and_then(|m| m.checked_mul(10))
                    .and_then(|m| m.checked_add(u64::from(c - b'0')));
                frac_len += 1;
                self.i += 1;
            }
            if frac_len == 0 {
                return None;
            }
            float = true;
        }
        let exponent = matches!(self.b.get(self.i), Some(b'e') | Some(b'E'));
        if matches!(self.b.get(self.i), Some(b'e') | Some(b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+') | Some(b'-')) {
                self.i += 1;
            }
            if self.digits() == 0 {
                return None;
            }
            float = true;
        }
        if !float {
            // i64 only: orjson reads larger ints as u64 ints or floats; Python decides those.
            if overflow {
                return None;
            }
            return if neg {
                if mag <= 1u64 << 63 {
                    Some(J::Int((mag as i64).wrapping_neg()))
                } else {
                    None
                }
            } else {
                i64::try_from(mag).ok().map(J::Int)
            };
        }
        // Clinger: a significand of at most 53 bits and a power of ten that a double holds
        // exactly give the correctly rounded value with one division (what the general
        // parser below gives too).
        if let Some(w) = sig {
            if !exponent && w <= 1 << 53 && frac_len < POW10.len() {
                let v = w as f64 / POW10[frac_len];
                return Some(J::Float(if neg { -v } else { v }));
            }
        }
        // SAFETY: sign, digits, '.', 'e', '+', '-' only: ASCII, valid UTF-8.
        let text = unsafe { std::str::from_utf8_unchecked(&self.b[start..self.i]) };
        let f: f64 = text.parse().ok()?;
        if f.is_finite() {
            Some(J::Float(f))
        } else {
            None
        }
    }

    fn array(&mut self, depth: usize) -> Option<J<'a>> {
        self.i += 1;
        let mut items = self.pool.arr();
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(J::Arr(items));
        }
        loop {
            self.ws();
            // numbers and strings (most array items) without the dispatch of `value`
            let v = match self.b.get(self.i) {
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(b'"') => J::Str(self.string()?),
                _ => self.value(depth + 1)?,
            };
            items.push(v);
            self.ws();
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(J::Arr(items));
                }
                _ => return None,
            }
        }
    }

    fn object(&mut self, depth: usize) -> Option<J<'a>> {
        let mut items = self.pool.obj();
        self.members(|p, key| {
            items.push((key, p.value(depth + 1)?));
            Some(())
        })?;
        Some(J::Obj(items))
    }
}

// --- The SeldonMessage fast path --------------------------------------------------------

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyList, PyString};

/// Where the one-pass reader (`seldon`) puts the values of a SeldonMessage ndarray, as
/// `seldon_message_body` makes rows of them: a 2-D array's rows, a 1-D array's one row
/// (request) or one row per value (response).
pub trait Rows<'a> {
    /// An ndarray starts (a repeated key: the last one counts): forget what was read.
    fn reset(&mut self);
    /// One scalar (never an array or an object). None refuses the document.
    fn value(&mut self, v: J<'a>) -> Option<()>;
    /// The values since the last row end make one row. None refuses the document.
    fn row_end(&mut self) -> Option<()>;
}

/// The rows as Python lists of the objects orjson makes of the values.
pub struct PyRows<'py> {
    py: Python<'py>,
    row: Vec<Bound<'py, PyAny>>,
    rows: Vec<Bound<'py, PyList>>,
}

impl<'py> PyRows<'py> {
    pub fn new(py: Python<'py>) -> Self {
        PyRows {
            py,
            row: Vec::with_capacity(16),
            rows: Vec::with_capacity(4),
        }
    }

    pub fn into_list(self) -> PyResult<Bound<'py, PyList>> {
        PyList::new(self.py, self.rows)
    }
}

impl<'a, 'py> Rows<'a> for PyRows<'py> {
    fn reset(&mut self) {
        self.row.clear();
        self.rows.clear();
    }

    fn value(&mut self, v: J<'a>) -> Option<()> {
        let py = self.py;
        self.row.push(match v {
            J::Null => py.None().into_bound(py),
            J::Bool(b) => PyBool::new(py, b).to_owned().into_any(),
            J::Int(i) => i.into_pyobject(py).ok()?.into_any(),
            J::Float(f) => PyFloat::new(py, f).into_any(),
            J::Str(s) => PyString::new(py, s).into_any(),
            J::Arr(_) | J::Obj(_) => return None,
        });
        Some(())
    }

    fn row_end(&mut self) -> Option<()> {
        let row = PyList::new(self.py, self.row.drain(..)).ok()?;
        self.rows.push(row);
        Some(())
    }
}

/// A SeldonMessage `{"data": {"names": [...], "ndarray": [...]}, "meta": {...}}` read in
/// one pass, its ndarray values handed to a `Rows` while they are read (no tree).
pub struct Seldon<'a> {
    /// `data.names` when it is a list of strings; None when absent or null
    pub names: Option<Vec<&'a str>>,
    /// `meta`, parsed as a tree (give it back to the pool)
    pub meta: Option<J<'a>>,
}

/// `Some` only for a document with the keys `data` (with `ndarray`, optionally `names`)
/// and `meta`, an ndarray of scalars of 1 or 2 dimensions and names that are strings;
/// anything else (a tensor, strData, other keys, objects in rows, ...) gives None and the
/// caller reads the document through `parse` instead (what `rows` holds then is
/// meaningless). A repeated key keeps its last value.
pub fn seldon<'a>(
    raw: &'a [u8],
    response: bool,
    pool: &mut Pool,
    rows: &mut impl Rows<'a>,
) -> Option<Seldon<'a>> {
    let mut p = Parser { b: raw, i: 0, pool };
    p.ws();
    let mut data = None;
    let mut meta: Option<J<'a>> = None;
    let ok = p.members(|p, key| {
        match key {
            "data" => data = Some(p.seldon_data(response, rows)?),
            "meta" => {
                let v = p.value(1)?;
                if let Some(old) = meta.replace(v) {
                    p.pool.recycle(old);
                }
            }
            _ => return None,
        }
        Some(())
    });
    p.ws();
    let names = match (ok, data) {
        (Some(()), Some(names)) if p.i == p.b.len() => names,
        _ => {
            if let Some(m) = meta {
                p.pool.recycle(m);
            }
            return None;
        }
    };
    Some(Seldon { names, meta })
}

impl<'a, 'p> Parser<'a, 'p> {
    /// The members of an object (the cursor on its `{`), each handed to `f` with the
    /// cursor on its value; `f` reads the value. None on a syntax error or when `f` says so.
    fn members(&mut self, mut f: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if self.b.get(self.i) != Some(&b'{') {
            return None;
        }
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            let key = self.string()?;
            self.ws();
            if self.b.get(self.i) != Some(&b':') {
                return None;
            }
            self.i += 1;
            self.ws();
            f(self, key)?;
            self.ws();
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `data`'s names; its ndarray's values into `rows`.
    fn seldon_data(
        &mut self,
        response: bool,
        rows: &mut impl Rows<'a>,
    ) -> Option<Option<Vec<&'a str>>> {
        let mut names = None;
        let mut has_rows = false;
        self.members(|p, key| {
            match key {
                "names" => names = p.names()?,
                "ndarray" => {
                    p.ndarray(response, rows)?;
                    has_rows = true;
                }
                _ => return None, // a tensor or anything else: the general path
            }
            Some(())
        })?;
        has_rows.then_some(names)
    }

    /// `names`: Some(None) for null, Some(Some(strings)) for a list of strings.
    fn names(&mut self) -> Option<Option<Vec<&'a str>>> {
        if self.b.get(self.i) == Some(&b'n') {
            self.literal(b"null", J::Null)?;
            return Some(None);
        }
        if self.b.get(self.i) != Some(&b'[') {
            return None;
        }
        self.i += 1;
        let mut out = Vec::with_capacity(16);
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(Some(out));
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return None;
            }
            out.push(self.string()?);
            self.ws();
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(Some(out));
                }
                _ => return None,
            }
        }
    }

    /// One scalar (not an array or an object).
    fn scalar(&mut self) -> Option<J<'a>> {
        match *self.b.get(self.i)? {
            b'-' | b'0'..=b'9' => self.number(),
            b'"' => self.string().map(J::Str),
            b't' => self.literal(b"true", J::Bool(true)),
            b'f' => self.literal(b"false", J::Bool(false)),
            b'n' => self.literal(b"null", J::Null),
            _ => None,
        }
    }

    /// The scalars of an array (the cursor on its `[`), each handed to `f`.
    fn scalars(&mut self, mut f: impl FnMut(J<'a>) -> Option<()>) -> Option<()> {
        self.i += 1;
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            f(self.scalar()?)?;
            self.ws();
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// `seldon_message_body`'s rows of an ndarray, into `rows`.
    fn ndarray(&mut self, response: bool, rows: &mut impl Rows<'a>) -> Option<()> {
        if self.b.get(self.i) != Some(&b'[') {
            return None;
        }
        rows.reset();
        let start = self.i;
        self.i += 1;
        self.ws();
        let two_d = self.b.get(self.i) == Some(&b'[');
        if !two_d {
            self.i = start;
            let mut n = 0;
            self.scalars(|v| {
                n += 1;
                rows.value(v)?;
                if response {
                    rows.row_end()?;
                }
                Some(())
            })?;
            if n > 0 && !response {
                rows.row_end()?;
            }
            return Some(());
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'[') {
                return None; // a scalar among rows: ragged, the general path decides
            }
            self.scalars(|v| rows.value(v))?;
            rows.row_end()?;
            self.ws();
            match *self.b.get(self.i)? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }
}

// --- Captured HTTP CloudEvent lines ---------------------------------------------------------

/// A replay line `{"headers": {str: str, ...}, "body": "<string>"}` (stream/decode/lines.py):
/// the header members in order, and the body string as it is written, escapes included
/// (`unescape` makes the body bytes of it).
pub struct CapturedLine<'a> {
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// `Some` only for an object with exactly the keys `headers` and `body` (once each), the
/// headers an object of strings without escapes (once each name), the body a string with
/// only the escapes `unescape` reads. Anything else (a structured CloudEvent, a captured
/// Kafka record, other keys, a body that is an object, ...) gives None: Python's.
pub fn captured_line(raw: &[u8]) -> Option<CapturedLine<'_>> {
    let mut pool = Pool::default();
    let mut p = Parser {
        b: raw,
        i: 0,
        pool: &mut pool,
    };
    p.ws();
    let mut headers: Option<Vec<(&str, &str)>> = None;
    let mut body: Option<&[u8]> = None;
    p.members(|p, key| {
        match key {
            "headers" if headers.is_none() => {
                let mut out = Vec::with_capacity(16);
                p.members(|p, name| {
                    if p.b.get(p.i) != Some(&b'"') || out.iter().any(|(n, _)| *n == name) {
                        return None; // a value that is no string, a name twice
                    }
                    out.push((name, p.string()?));
                    Some(())
                })?;
                headers = Some(out);
            }
            "body" if body.is_none() => body = Some(p.escaped_string()?),
            _ => return None,
        }
        Some(())
    })?;
    p.ws();
    if p.i != p.b.len() {
        return None;
    }
    Some(CapturedLine {
        headers: headers?,
        body: body?,
    })
}

impl<'a, 'p> Parser<'a, 'p> {
    /// A string (the cursor on its opening quote) as written between its quotes, escapes
    /// and all; None for a control character or text that is not UTF-8.
    fn escaped_string(&mut self) -> Option<&'a [u8]> {
        if self.b.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        let start = self.i;
        loop {
            match *self.b.get(self.i)? {
                b'"' => break,
                b'\\' => self.i += 2, // what follows is checked by `unescape`
                c if c < 0x20 => return None,
                _ => self.i += 1,
            }
        }
        let s = self.b.get(start..self.i)?;
        self.i += 1;
        std::str::from_utf8(s).ok()?;
        Some(s)
    }
}

/// The text of a JSON string written as `s` (between its quotes), UTF-8 encoded into `out`
/// (cleared first). The escapes `\" \\ \/ \b \f \n \r \t` and `\uXXXX` outside the
/// surrogates; None for any other (a surrogate pair is Python's to join or refuse).
pub fn unescape(s: &[u8], out: &mut Vec<u8>) -> Option<()> {
    out.clear();
    out.reserve(s.len());
    let mut i = 0;
    while i < s.len() {
        let Some(n) = s[i..].iter().position(|&c| c == b'\\') else {
            out.extend_from_slice(&s[i..]);
            break;
        };
        out.extend_from_slice(&s[i..i + n]);
        i += n + 1;
        let c = *s.get(i)?;
        i += 1;
        let b = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let hex = std::str::from_utf8(s.get(i..i + 4)?).ok()?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                let code = u32::from_str_radix(hex, 16).ok()?;
                i += 4;
                let ch = char::from_u32(code)?; // None for a surrogate
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
            _ => return None,
        };
        out.push(b);
    }
    Some(())
}
