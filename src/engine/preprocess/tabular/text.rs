//! CSV and JSON Lines into tables of text columns, one text value per cell, as written.
//!
//! Keeping the text lets pass-through columns be copied verbatim and lets each feature value be
//! judged on its own (a bad value fails its row, not the file). A record with the wrong number
//! of fields, a line that is not a JSON object, or a record longer than `max_record_size` fails
//! alone, naming its line; only a record the CSV reader cannot parse at all (broken quoting)
//! fails the rest of the file.
//!
//! Header names are cleaned the way pandas reads them: a UTF-8 byte-order mark is dropped,
//! surrounding spaces trimmed, and an empty name becomes `Unnamed: <position>` (the column a
//! `DataFrame.to_csv` writes for its index).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch, StringBuilder};
use bytes::Bytes;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::Table;
use crate::engine::preprocess::DecodeError;
use crate::engine::settings::format_byte_size;

/// Which columns to read.
pub(super) enum Wanted<'a> {
    All,
    Only(&'a [String]),
}

/// How a CSV text is read.
pub(super) struct CsvDialect {
    pub delimiter: u8,
    pub max_record_bytes: u64,
}

/// A header cleaned as pandas reads it (see the module docs).
fn clean_header(fields: impl Iterator<Item = String>) -> Vec<String> {
    fields
        .enumerate()
        .map(|(i, f)| {
            let f = if i == 0 { f.trim_start_matches('\u{feff}').to_string() } else { f };
            let f = f.trim();
            if f.is_empty() { format!("Unnamed: {i}") } else { f.to_string() }
        })
        .collect()
}

fn too_long(bytes: u64, max: u64) -> String {
    format!(
        "the record is {} long, more than max_record_size ({}); raise --max-record-size if it is real data",
        format_byte_size(bytes.max(1)),
        format_byte_size(max)
    )
}

pub(super) fn read_csv(
    name: &str,
    bytes: &Bytes,
    wanted: Wanted,
    first_row: u64,
    line_offset: u64,
    dialect: &CsvDialect,
) -> Result<Table, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError(format!("{name}: the file is empty; a CSV input needs a header row")));
    }
    // The header is read whole: bound it first, without copying it.
    let header_len = first_record_len(bytes, dialect.delimiter) as u64;
    if header_len > dialect.max_record_bytes {
        return Err(DecodeError(format!(
            "{name}: the header record: {}",
            too_long(header_len, dialect.max_record_bytes)
        )));
    }
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(dialect.delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes.as_ref());
    let header = rdr.byte_headers().map_err(|e| DecodeError(format!("{name}: cannot read the CSV header: {e}")))?;
    let columns = clean_header(header.iter().map(|f| String::from_utf8_lossy(f).into_owned()));
    let selected: Vec<(String, usize)> = match wanted {
        Wanted::All => columns.iter().cloned().enumerate().map(|(i, c)| (c, i)).collect(),
        Wanted::Only(w) => {
            w.iter().filter_map(|c| columns.iter().position(|x| x == c).map(|i| (c.clone(), i))).collect()
        }
    };
    let mut builders: Vec<StringBuilder> = selected.iter().map(|_| StringBuilder::new()).collect();
    let mut row_numbers = Vec::new();
    let mut failed_rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut row = first_row;
    let line = |r: &csv::ByteRecord| r.position().map_or(0, |p| p.line() + line_offset);
    loop {
        let start = rdr.position().byte();
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let len = rdr.position().byte() - start;
                if len > dialect.max_record_bytes {
                    failed_rows
                        .push((row, format!("line {}: {}", line(&record), too_long(len, dialect.max_record_bytes))));
                } else if record.len() != columns.len() {
                    failed_rows.push((
                        row,
                        format!(
                            "line {}: {} fields where the header has {}",
                            line(&record),
                            record.len(),
                            columns.len()
                        ),
                    ));
                } else {
                    for (b, (_, i)) in builders.iter_mut().zip(&selected) {
                        let field = &record[*i];
                        if field.is_empty() {
                            b.append_null();
                        } else {
                            b.append_value(String::from_utf8_lossy(field));
                        }
                    }
                    row_numbers.push(row);
                }
            }
            Err(e) => {
                // A record the reader cannot parse at all (e.g. invalid quoting): the rest of
                // the file is unreliable, so the file fails.
                return Err(DecodeError(format!("{name}: CSV parse error after row {row}: {e}")));
            }
        }
        row += 1;
    }
    let index_columns = columns.iter().filter(|c| is_pandas_index_name(c)).cloned().collect();
    Ok(Table { batches: text_batch(name, &selected, builders)?, columns, failed_rows, row_numbers, index_columns })
}

/// The length of the first record (the header), found without copying it.
fn first_record_len(bytes: &[u8], delimiter: u8) -> usize {
    let mut scanner = crate::engine::split::RecordScanner::with_delimiter(delimiter);
    let mut found = Vec::new();
    for (k, chunk) in bytes.chunks(64 * 1024).enumerate() {
        scanner.feed(chunk, (k * 64 * 1024) as u64, &mut found);
        if let Some(end) = found.iter().find_map(|b| match b {
            crate::engine::split::Boundary::End(e) => Some(*e as usize),
            _ => None,
        }) {
            return end;
        }
        found.clear();
    }
    bytes.len()
}

/// The names pandas gives the columns it writes for a DataFrame's index.
pub(super) fn is_pandas_index_name(c: &str) -> bool {
    let numbered = |rest: &str| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit());
    c.strip_prefix("Unnamed: ").is_some_and(numbered)
        || c.strip_prefix("__index_level_").and_then(|r| r.strip_suffix("__")).is_some_and(numbered)
}

fn text_batch(
    name: &str,
    selected: &[(String, usize)],
    builders: Vec<StringBuilder>,
) -> Result<Vec<RecordBatch>, DecodeError> {
    if selected.is_empty() {
        return Ok(Vec::new());
    }
    let arrays: Vec<(String, ArrayRef)> =
        selected.iter().zip(builders).map(|((n, _), mut b)| (n.clone(), Arc::new(b.finish()) as ArrayRef)).collect();
    // Two columns may share a name; keep the first, as `Only` and lookups do.
    let mut seen = Vec::new();
    let arrays: Vec<(String, ArrayRef)> = arrays
        .into_iter()
        .filter(|(n, _)| {
            if seen.contains(n) {
                false
            } else {
                seen.push(n.clone());
                true
            }
        })
        .collect();
    Ok(vec![RecordBatch::try_from_iter(arrays).map_err(|e| DecodeError(format!("{name}: {e}")))?])
}

/// A JSON object's members in their order, values kept as raw JSON text.
struct Members(Vec<(String, Box<RawValue>)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Members, A::Error> {
                let mut v = Vec::new();
                while let Some(entry) = m.next_entry::<String, Box<RawValue>>()? {
                    v.push(entry);
                }
                Ok(Members(v))
            }
        }
        d.deserialize_map(V)
    }
}

/// One JSON value as text: a string unquoted, a number as written, `null` as missing,
/// anything else as its JSON text.
fn raw_text(raw: &RawValue) -> Option<String> {
    let s = raw.get();
    match s.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(s).ok(),
        Some(b'n') => None,
        _ => Some(s.to_string()),
    }
}

/// JSON Lines: one object per line; blank lines are not rows. Keys become columns in the order
/// they first appear; a row without a key is missing that value.
pub(super) fn read_jsonl(
    name: &str,
    bytes: &Bytes,
    wanted: Wanted,
    first_row: u64,
    max_record_bytes: u64,
) -> Result<Table, DecodeError> {
    let mut columns: Vec<String> = match &wanted {
        Wanted::All => Vec::new(),
        Wanted::Only(w) => w.to_vec(),
    };
    let mut present: Vec<bool> = vec![false; columns.len()];
    let mut values: Vec<Vec<Option<String>>> = vec![Vec::new(); columns.len()];
    let (mut row_numbers, mut failed_rows) = (Vec::new(), Vec::new());
    let mut row = first_row;
    for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let at = format!("line {}", n + 1);
        if line.len() as u64 > max_record_bytes {
            failed_rows.push((row, format!("{at}: {}", too_long(line.len() as u64, max_record_bytes))));
            row += 1;
            continue;
        }
        let members = match serde_json::from_slice::<Members>(line) {
            Ok(m) => m,
            Err(e) => {
                failed_rows.push((row, format!("{at}: not a JSON object ({e})")));
                row += 1;
                continue;
            }
        };
        let filled = row_numbers.len();
        for (k, v) in members.0 {
            let i = match columns.iter().position(|c| *c == k) {
                Some(i) => i,
                None if matches!(wanted, Wanted::All) => {
                    columns.push(k);
                    present.push(false);
                    values.push(vec![None; filled]);
                    columns.len() - 1
                }
                None => continue,
            };
            present[i] = true;
            if values[i].len() == filled {
                values[i].push(raw_text(&v));
            }
        }
        for col in values.iter_mut().filter(|c| c.len() == filled) {
            col.push(None);
        }
        row_numbers.push(row);
        row += 1;
    }
    // A column no row has is not there at all (the missing-column check names it).
    let kept: Vec<usize> = (0..columns.len()).filter(|i| present[*i] || matches!(wanted, Wanted::All)).collect();
    let selected: Vec<(String, usize)> = kept.iter().map(|i| (columns[*i].clone(), *i)).collect();
    let mut builders = Vec::with_capacity(kept.len());
    for i in &kept {
        let mut b = StringBuilder::new();
        for v in &values[*i] {
            b.append_option(v.as_deref());
        }
        builders.push(b);
    }
    let all: Vec<String> = kept.iter().map(|i| columns[*i].clone()).collect();
    let index_columns = all.iter().filter(|c| is_pandas_index_name(c)).cloned().collect();
    Ok(Table { batches: text_batch(name, &selected, builders)?, columns: all, failed_rows, row_numbers, index_columns })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, AsArray};

    fn csv(text: &str, dialect: CsvDialect) -> Table {
        read_csv("t.csv", &Bytes::from(text.to_string()), Wanted::All, 0, 0, &dialect).unwrap()
    }

    #[test]
    fn csv_text_is_kept_as_written() {
        let t = csv(
            "\u{feff}, code ,big\n0,00037,12345678901234567890\n1,,0.50\n",
            CsvDialect { delimiter: b',', max_record_bytes: 1 << 20 },
        );
        assert_eq!(t.columns, ["Unnamed: 0", "code", "big"]);
        assert_eq!(t.index_columns, ["Unnamed: 0"]);
        let b = &t.batches[0];
        assert_eq!(b.column(1).as_string::<i32>().value(0), "00037");
        assert!(b.column(1).is_null(1));
        assert_eq!(b.column(2).as_string::<i32>().value(0), "12345678901234567890");
        assert_eq!(b.column(2).as_string::<i32>().value(1), "0.50");
    }

    #[test]
    fn long_records_fail_alone() {
        let text = format!("a;b\n1;2\n{};3\n4;5\n", "x".repeat(5000));
        let t = csv(&text, CsvDialect { delimiter: b';', max_record_bytes: 1024 });
        assert_eq!(t.row_numbers, [0, 2]);
        assert_eq!(t.failed_rows.len(), 1);
        assert!(
            t.failed_rows[0].1.contains("line 3") && t.failed_rows[0].1.contains("max_record_size"),
            "{:?}",
            t.failed_rows
        );
    }

    #[test]
    fn a_header_longer_than_a_record_may_be_fails_the_file_without_being_read() {
        let text = format!("{}\n1\n", "a".repeat(5000));
        let e = read_csv(
            "t.csv",
            &Bytes::from(text),
            Wanted::All,
            0,
            0,
            &CsvDialect { delimiter: b',', max_record_bytes: 1024 },
        )
        .err()
        .unwrap()
        .0;
        assert!(e.contains("header") && e.contains("max_record_size"), "{e}");
    }

    #[test]
    fn json_lines_keep_numbers_as_written() {
        let text = "{\"a\": 1.50, \"id\": \"007\", \"n\": null}\n\n{\"id\": \"x\", \"a\": 2, \"extra\": [1,2]}\nnot json\n[1]\n";
        let t = read_jsonl("t.jsonl", &Bytes::from(text), Wanted::All, 0, 1 << 20).unwrap();
        assert_eq!(t.columns, ["a", "id", "n", "extra"]);
        assert_eq!(t.row_numbers, [0, 1]);
        assert_eq!(t.failed_rows.iter().map(|f| f.0).collect::<Vec<_>>(), [2, 3]);
        assert!(t.failed_rows[0].1.contains("line 4"), "{:?}", t.failed_rows);
        let b = &t.batches[0];
        let s = |c: usize, r: usize| b.column(c).as_string::<i32>().value(r).to_string();
        assert_eq!((s(0, 0), s(1, 0), s(0, 1), s(3, 1)), ("1.50".into(), "007".into(), "2".into(), "[1,2]".into()));
        assert!(b.column(2).is_null(0) && b.column(2).is_null(1) && b.column(3).is_null(0));
        let only =
            read_jsonl("t.jsonl", &Bytes::from(text), Wanted::Only(&["id".into(), "zz".into()]), 0, 1 << 20).unwrap();
        assert_eq!(only.columns, ["id"]);
    }
}
