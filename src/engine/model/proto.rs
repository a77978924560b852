//! What ONNX Runtime does not tell about a model file, read from its protobuf directly: which
//! tensors keep their weights in external files (every model over 2 GB does), and whether an
//! output is declared a scalar or has no shape at all (ONNX Runtime reports both as `[]`).
//!
//! A small, bounded reader of the protobuf wire format over the few fields needed
//! (`ModelProto.graph`, `GraphProto.initializer/node/output`, `TensorProto.external_data`,
//! `ValueInfoProto.type`): the model is user data, so every length is checked, nesting is
//! limited, and a malformed file yields an error, never a panic.

use std::collections::BTreeSet;

/// What the reader found.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProtoFacts {
    /// `location` of every tensor stored outside the model file, relative to its folder.
    pub external_files: BTreeSet<String>,
    /// For each graph output by name: `Some(rank)` when its shape is declared, `None` when the
    /// model declares no shape.
    pub output_ranks: Vec<(String, Option<usize>)>,
}

/// How deep graphs may nest (subgraphs of If/Loop/Scan nodes).
const MAX_DEPTH: usize = 16;

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or("the file ends inside a number")?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err("a number is longer than 10 bytes".into())
    }

    /// The next (field number, value), or `None` at the end.
    fn next(&mut self) -> Result<Option<(u64, Field<'a>)>, String> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (number, wire) = (key >> 3, key & 7);
        let field = match wire {
            0 => Field::Varint(self.varint()?),
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                self.pos =
                    self.pos.checked_add(n).filter(|p| *p <= self.buf.len()).ok_or("the file ends inside a value")?;
                Field::Fixed
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| "a length is too large")?;
                let end = self.pos.checked_add(len).filter(|e| *e <= self.buf.len()).ok_or_else(|| {
                    format!("a field claims {len} bytes but the file has {} left", self.buf.len() - self.pos)
                })?;
                let b = &self.buf[self.pos..end];
                self.pos = end;
                Field::Bytes(b)
            }
            other => return Err(format!("unknown protobuf wire type {other}")),
        };
        Ok(Some((number, field)))
    }
}

/// Reads the facts from a model file's bytes.
pub fn read(model: &[u8]) -> Result<ProtoFacts, String> {
    let mut facts = ProtoFacts::default();
    let mut r = Reader::new(model);
    while let Some((n, f)) = r.next()? {
        if let (7, Field::Bytes(g)) = (n, f) {
            graph(g, &mut facts, 0, true)?;
        }
    }
    Ok(facts)
}

fn graph(buf: &[u8], facts: &mut ProtoFacts, depth: usize, main: bool) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("graphs nest more than {MAX_DEPTH} deep"));
    }
    let mut r = Reader::new(buf);
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            // node
            (1, Field::Bytes(b)) => node(b, facts, depth)?,
            // initializer
            (5, Field::Bytes(b)) => tensor(b, facts)?,
            // output
            (12, Field::Bytes(b)) if main => facts.output_ranks.push(value_info(b)?),
            _ => {}
        }
    }
    Ok(())
}

fn node(buf: &[u8], facts: &mut ProtoFacts, depth: usize) -> Result<(), String> {
    let mut r = Reader::new(buf);
    while let Some((n, f)) = r.next()? {
        if let (5, Field::Bytes(attr)) = (n, f) {
            let mut a = Reader::new(attr);
            while let Some((an, af)) = a.next()? {
                match (an, af) {
                    (5, Field::Bytes(t)) | (10, Field::Bytes(t)) => tensor(t, facts)?,
                    (6, Field::Bytes(g)) | (11, Field::Bytes(g)) => graph(g, facts, depth + 1, false)?,
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

fn tensor(buf: &[u8], facts: &mut ProtoFacts) -> Result<(), String> {
    let mut r = Reader::new(buf);
    let mut external = false;
    let mut location = None;
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (13, Field::Bytes(entry)) => {
                let (mut key, mut value) = (None, None);
                let mut e = Reader::new(entry);
                while let Some((en, ef)) = e.next()? {
                    match (en, ef) {
                        (1, Field::Bytes(k)) => key = Some(String::from_utf8_lossy(k).into_owned()),
                        (2, Field::Bytes(v)) => value = Some(String::from_utf8_lossy(v).into_owned()),
                        _ => {}
                    }
                }
                if key.as_deref() == Some("location") {
                    location = value;
                }
            }
            (14, Field::Varint(1)) => external = true,
            _ => {}
        }
    }
    if let Some(loc) = location.filter(|_| external) {
        facts.external_files.insert(loc);
    }
    Ok(())
}

/// `(name, declared rank)` of a graph output.
fn value_info(buf: &[u8]) -> Result<(String, Option<usize>), String> {
    let mut r = Reader::new(buf);
    let (mut name, mut rank) = (String::new(), None);
    while let Some((n, f)) = r.next()? {
        match (n, f) {
            (1, Field::Bytes(b)) => name = String::from_utf8_lossy(b).into_owned(),
            // TypeProto: tensor_type (1) -> shape (2) -> dim (1)*
            (2, Field::Bytes(t)) => {
                let mut tr = Reader::new(t);
                while let Some((tn, tf)) = tr.next()? {
                    if let (1, Field::Bytes(tensor_type)) = (tn, tf) {
                        let mut tt = Reader::new(tensor_type);
                        while let Some((k, v)) = tt.next()? {
                            if let (2, Field::Bytes(shape)) = (k, v) {
                                let mut sr = Reader::new(shape);
                                let mut dims = 0;
                                while let Some((d, _)) = sr.next()? {
                                    dims += usize::from(d == 1);
                                }
                                rank = Some(dims);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok((name, rank))
}

/// Whether an external data location stays inside the model's folder (no absolute path, no
/// `..`): ONNX Runtime refuses the others, and a download must not write outside its folder.
pub fn safe_location(loc: &str) -> bool {
    let p = std::path::Path::new(loc);
    !loc.is_empty()
        && !p.is_absolute()
        && p.components().all(|c| matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in [&[0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f][..], &[0xff; 12], &[0x0f], &[0x3a, 0x05, 0x01]] {
            assert!(read(bad).is_err(), "{bad:?}");
        }
        assert_eq!(read(&[]).unwrap(), ProtoFacts::default());
        assert!(safe_location("weights.bin") && safe_location("sub/w.bin"));
        assert!(!safe_location("../w.bin") && !safe_location("/etc/passwd") && !safe_location(""));
    }
}
