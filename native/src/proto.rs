//! A strict reader of OIP `ModelInferRequest` / `ModelInferResponse` protobuf messages
//! (stream/decode/oip/inference.proto) for the one shape the fast path decodes: one tensor
//! whose data is in the raw contents.
//!
//! It returns `None` for any message it is unsure about, and the Python decoder (the
//! protobuf runtime) then reads it: a field other than the ones below (message or tensor
//! parameters, typed `contents`, a request's requested outputs, unknown fields), a field
//! with an unexpected wire type, a non-minimal varint, a length running past its buffer,
//! or a string that is not UTF-8. A singular field that repeats keeps its last value, as
//! protobuf parsers do.

/// The fields of a message the fast path uses.
#[derive(Default)]
pub struct Infer<'a> {
    pub model_version: &'a str,
    pub id: &'a str,
    pub tensors: Vec<Tensor<'a>>,
    pub raw: Vec<&'a [u8]>,
}

#[derive(Default)]
pub struct Tensor<'a> {
    pub name: &'a str,
    pub datatype: &'a str,
    pub shape: Vec<i64>,
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Reader<'a> {
    fn done(&self) -> bool {
        self.i >= self.b.len()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for k in 0..10 {
            let c = *self.b.get(self.i)?;
            self.i += 1;
            if k == 9 && c > 1 {
                return None; // more than 64 bits
            }
            v |= u64::from(c & 0x7f) << (7 * k);
            if c & 0x80 == 0 {
                if k > 0 && c == 0 {
                    return None; // non-minimal encoding
                }
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        let end = self.i.checked_add(n)?;
        let s = self.b.get(self.i..end)?;
        self.i = end;
        Some(s)
    }

    fn string(&mut self) -> Option<&'a str> {
        std::str::from_utf8(self.bytes()?).ok()
    }

    /// (field number, wire type) of the next field.
    fn tag(&mut self) -> Option<(u64, u64)> {
        let t = self.varint()?;
        let field = t >> 3;
        if field == 0 {
            return None;
        }
        Some((field, t & 7))
    }
}

const LEN: u64 = 2;
const VARINT: u64 = 0;

/// Parse a request (`raw_field` 7, raw_input_contents) or a response (`raw_field` 6).
/// Field 5 is the tensors (`inputs` or `outputs`) in both.
pub fn parse_infer(buf: &[u8], raw_field: u64) -> Option<Infer<'_>> {
    let mut r = Reader { b: buf, i: 0 };
    let mut m = Infer::default();
    while !r.done() {
        match r.tag()? {
            (1, LEN) => {
                r.string()?; // model_name: the topic names the model
            }
            (2, LEN) => m.model_version = r.string()?,
            (3, LEN) => m.id = r.string()?,
            (5, LEN) => m.tensors.push(parse_tensor(r.bytes()?)?),
            (f, LEN) if f == raw_field => m.raw.push(r.bytes()?),
            _ => return None,
        }
    }
    Some(m)
}

fn parse_tensor(buf: &[u8]) -> Option<Tensor<'_>> {
    let mut r = Reader { b: buf, i: 0 };
    let mut t = Tensor::default();
    while !r.done() {
        match r.tag()? {
            (1, LEN) => t.name = r.string()?,
            (2, LEN) => t.datatype = r.string()?,
            (3, LEN) => {
                let mut packed = Reader {
                    b: r.bytes()?,
                    i: 0,
                };
                while !packed.done() {
                    t.shape.push(packed.varint()? as i64);
                }
            }
            (3, VARINT) => t.shape.push(r.varint()? as i64),
            _ => return None,
        }
    }
    Some(t)
}
