//! A part: scored mini-batches, as one object written create-only: one mini-batch
//! (`parts/<mb>.part`), or a run of consecutive ones that a process scoring a job alone wrote
//! together (`parts/<first>-<last>.part`), so that a job of many tiny mini-batches does not pay
//! for an object per mini-batch.
//!
//! ```text
//! one mini-batch:  "BSPART1\n" | u32 LE length | the record (JSON) | the rows (absent with no rows)
//! a run:           "BSPARTS\n" | u32 LE count | count x u64 LE length | count x one mini-batch's part
//! ```
//!
//! The record holds what the job's logs and counts need (the `mini_batches.csv` row, the failed
//! items, each item's outcome, decoding's notes, stage times, who scored it); the rows are the
//! mini-batch's output rows: for a CSV output already as CSV text (header line first), encoded
//! where they were scored, so that the assembly only concatenates; for Parquet as an Arrow IPC
//! stream, which the assembly gathers into row groups, or (a big part) as a Parquet file encoded
//! where it was scored, whose row groups the assembly copies as they are.

use arrow::array::RecordBatch;
use bytes::{BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

use crate::engine::report::{FailureRecord, MiniBatchRecord};

const MAGIC: &[u8; 8] = b"BSPART1\n";
const RUN_MAGIC: &[u8; 8] = b"BSPARTS\n";

/// What a part records beside its rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartMeta {
    pub record: MiniBatchRecord,
    pub failures: Vec<FailureRecord>,
    /// Each item, in order: its file (index into the plan's files) and the rows it held when it
    /// was scored, or `None` when it failed as a whole.
    pub outcomes: Vec<(usize, Option<u64>)>,
    /// What decoding noticed: (note, file).
    pub notes: Vec<(String, String)>,
    pub rows_scored: u64,
    pub rows_failed: u64,
    pub read: f64,
    pub decode: f64,
    pub infer: f64,
    /// The process that scored it.
    pub by: String,
    /// Set when the rows are CSV text (for a CSV output): the length of their header line.
    #[serde(default)]
    pub csv_header: Option<usize>,
}

/// A part's rows: for a Parquet output Arrow, or (a big part) a Parquet file already encoded
/// ([`crate::engine::parquet_out`]); CSV text already encoded for a CSV one.
#[derive(Debug)]
pub enum Rows {
    Arrow(RecordBatch),
    Parquet(Bytes),
    Csv(Bytes),
}

/// How a Parquet file starts.
const PARQUET_MAGIC: &[u8; 4] = b"PAR1";

/// Encodes a part; `rows` are Arrow, or CSV bytes with `meta.csv_header` set.
pub fn encode(meta: &PartMeta, rows: Option<&Rows>) -> Result<Bytes, String> {
    let json = serde_json::to_vec(meta).map_err(|e| e.to_string())?;
    let mut out = BytesMut::with_capacity(MAGIC.len() + 4 + json.len() + 1024);
    out.put_slice(MAGIC);
    out.put_u32_le(json.len() as u32);
    out.put_slice(&json);
    match rows {
        None => Ok(out.freeze()),
        Some(Rows::Csv(text)) | Some(Rows::Parquet(text)) => {
            out.put_slice(text);
            Ok(out.freeze())
        }
        Some(Rows::Arrow(rows)) if rows.num_rows() == 0 => Ok(out.freeze()),
        Some(Rows::Arrow(rows)) => {
            let mut w = out.writer();
            let mut ipc =
                arrow::ipc::writer::StreamWriter::try_new(&mut w, &rows.schema()).map_err(|e| e.to_string())?;
            ipc.write(rows).map_err(|e| e.to_string())?;
            ipc.finish().map_err(|e| e.to_string())?;
            drop(ipc);
            Ok(w.into_inner().freeze())
        }
    }
}

/// Bytes kept free in front of a CSV part's text ([`crate::engine::collect::csv_bytes`]) for the
/// part's head (magic, length, record), which [`encode_csv`] writes there in place: the part is
/// then the text's own buffer, uncopied (on W1-linear, 29 MB a mini-batch). A head that does not
/// fit (a record of many failures) is written as [`encode`] does, the text copied after it.
pub const HEAD_ROOM: usize = 16 << 10;

/// Encodes a CSV part, as [`encode`] would, from `buf`: CSV text after `room` free bytes.
pub fn encode_csv(meta: &PartMeta, mut buf: Vec<u8>, room: usize) -> Result<Bytes, String> {
    let json = serde_json::to_vec(meta).map_err(|e| e.to_string())?;
    let head = MAGIC.len() + 4 + json.len();
    let Some(at) = room.checked_sub(head) else {
        return encode(meta, Some(&Rows::Csv(Bytes::from(buf).slice(room..))));
    };
    buf[at..at + MAGIC.len()].copy_from_slice(MAGIC);
    buf[at + MAGIC.len()..at + MAGIC.len() + 4].copy_from_slice(&(json.len() as u32).to_le_bytes());
    buf[at + MAGIC.len() + 4..room].copy_from_slice(&json);
    // The part is held until written and assembled: without the text's spare capacity (glibc
    // shrinks a block in place, or remaps it, without copying).
    buf.shrink_to_fit();
    Ok(Bytes::from(buf).slice(at..))
}

/// Encodes a run of mini-batches' parts (each as [`encode`] made it) as one object.
pub fn encode_run(parts: &[Bytes]) -> Bytes {
    let len = parts.iter().map(|p| p.len() + 8).sum::<usize>() + RUN_MAGIC.len() + 4;
    let mut out = BytesMut::with_capacity(len);
    out.put_slice(RUN_MAGIC);
    out.put_u32_le(parts.len() as u32);
    for p in parts {
        out.put_u64_le(p.len() as u64);
    }
    for p in parts {
        out.put_slice(p);
    }
    out.freeze()
}

/// The mini-batches' parts an object holds: itself when it holds one, those of a run else;
/// `what` names it in errors.
pub fn split_run(bytes: &Bytes, what: &str) -> Result<Vec<Bytes>, String> {
    if !bytes.starts_with(RUN_MAGIC) {
        return Ok(vec![bytes.clone()]);
    }
    let bad = |why: &str| format!("{what} is not a readable part ({why}); remove the job's staging and run again");
    let word = |at: usize, n: usize| bytes.get(at..at + n).ok_or_else(|| bad("it is cut short"));
    let count = u32::from_le_bytes(word(RUN_MAGIC.len(), 4)?.try_into().expect("4 bytes")) as usize;
    let mut at = RUN_MAGIC.len() + 4 + count.checked_mul(8).ok_or_else(|| bad("its count is too big"))?;
    let mut parts = Vec::with_capacity(count.min(1 << 20));
    for i in 0..count {
        let len = u64::from_le_bytes(word(RUN_MAGIC.len() + 4 + 8 * i, 8)?.try_into().expect("8 bytes")) as usize;
        word(at, len)?;
        parts.push(bytes.slice(at..at + len));
        at += len;
    }
    if at != bytes.len() {
        return Err(bad("it holds more than its parts"));
    }
    Ok(parts)
}

/// Decodes a part; `what` names it in errors.
pub fn decode(bytes: &Bytes, what: &str) -> Result<(PartMeta, Option<Rows>), String> {
    let bad = |why: String| format!("{what} is not a readable part ({why}); remove the job's staging and run again");
    if bytes.len() < MAGIC.len() + 4 || &bytes[..MAGIC.len()] != MAGIC {
        return Err(bad("it does not start as one".into()));
    }
    let len = u32::from_le_bytes(bytes[MAGIC.len()..MAGIC.len() + 4].try_into().expect("4 bytes")) as usize;
    let start = MAGIC.len() + 4;
    let Some(json) = bytes.get(start..start + len) else { return Err(bad("it is cut short".into())) };
    let meta: PartMeta = serde_json::from_slice(json).map_err(|e| bad(e.to_string()))?;
    let rest = bytes.slice(start + len..);
    if rest.is_empty() {
        return Ok((meta, None));
    }
    if meta.csv_header.is_some() {
        return Ok((meta, Some(Rows::Csv(rest))));
    }
    if rest.starts_with(PARQUET_MAGIC) {
        return Ok((meta, Some(Rows::Parquet(rest))));
    }
    let reader =
        arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(rest), None).map_err(|e| bad(e.to_string()))?;
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().map_err(|e| bad(e.to_string()))?;
    let rows = arrow::compute::concat_batches(&schema, &batches).map_err(|e| bad(e.to_string()))?;
    Ok((meta, Some(Rows::Arrow(rows))))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float32Array, StringArray};

    use super::*;

    #[test]
    fn a_part_reads_back_as_written() {
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("file", arrow::datatypes::DataType::Utf8, false),
            arrow::datatypes::Field::new("score", arrow::datatypes::DataType::Float32, true),
        ]));
        let rows = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a.csv", "b.csv"])),
                Arc::new(Float32Array::from(vec![0.25, f32::NAN])),
            ],
        )
        .unwrap();
        let meta = PartMeta {
            record: MiniBatchRecord {
                id: 7,
                files: "a.csv;b.csv".into(),
                attempts: 1,
                status: "completed".into(),
                seconds: 0.5,
                rows: 2,
                failed_items: 0,
                error: String::new(),
            },
            failures: Vec::new(),
            outcomes: vec![(0, Some(1)), (1, None)],
            notes: vec![("note".into(), "a.csv".into())],
            rows_scored: 2,
            rows_failed: 0,
            read: 0.1,
            decode: 0.2,
            infer: 0.3,
            by: "host-1".into(),
            csv_header: None,
        };
        let bytes = encode(&meta, Some(&Rows::Arrow(rows.clone()))).unwrap();
        let (back, got) = decode(&bytes, "part 7").unwrap();
        assert_eq!(back.record.id, 7);
        assert_eq!(back.outcomes, meta.outcomes);
        let Some(Rows::Arrow(got)) = got else { panic!("arrow rows") };
        assert_eq!(got.num_rows(), 2);
        assert_eq!(got.schema(), rows.schema());
        let empty = encode(&meta, None).unwrap();
        assert!(decode(&empty, "part 7").unwrap().1.is_none());
        let csv = PartMeta { csv_header: Some(6), ..meta.clone() };
        let text = encode(&csv, Some(&Rows::Csv(Bytes::from_static(b"a,b\r\n1,2\r\n")))).unwrap();
        let Some(Rows::Csv(t)) = decode(&text, "part 7").unwrap().1 else { panic!("csv rows") };
        assert_eq!(&t[..], b"a,b\r\n1,2\r\n");
        // Written in place in front of the text, or (no room for the head) after it: the same.
        for room in [HEAD_ROOM, 3] {
            let mut buf = vec![0xAB; room];
            buf.extend_from_slice(b"a,b\r\n1,2\r\n");
            assert_eq!(encode_csv(&csv, buf, room).unwrap(), text, "room {room}");
        }
        let file = Bytes::from(crate::engine::parquet_out::encode_part(&rows).unwrap());
        let parquet = encode(&meta, Some(&Rows::Parquet(file.clone()))).unwrap();
        let Some(Rows::Parquet(f)) = decode(&parquet, "part 7").unwrap().1 else { panic!("parquet rows") };
        assert_eq!(f, file, "a Parquet part's file is kept as encoded");
        let run = encode_run(&[bytes.clone(), empty.clone(), text.clone()]);
        let split = split_run(&run, "parts 7-9").unwrap();
        assert_eq!(split, vec![bytes.clone(), empty.clone(), text.clone()], "a run holds its parts as encoded");
        assert_eq!(split_run(&bytes, "part 7").unwrap(), vec![bytes.clone()], "one part is a run of one");
        for cut in [10, 14, 20, run.len() - 1] {
            let e = split_run(&run.slice(..cut), "parts 7-9").unwrap_err();
            assert!(e.contains("parts 7-9") && e.contains("cut short"), "{cut}: {e}");
        }
        let mut longer = run.to_vec();
        longer.push(0);
        assert!(split_run(&Bytes::from(longer), "p").unwrap_err().contains("more than its parts"));
        let e = decode(&bytes.slice(..20), "part 7").unwrap_err();
        assert!(e.contains("part 7") && e.contains("cut short"), "{e}");
        assert!(decode(&Bytes::from_static(b"hello"), "p").unwrap_err().contains("not a readable part"));
    }
}
