//! CSV, JSON Lines and Parquet files into model rows.
//!
//! Every format becomes a [`Table`] of Arrow columns first: Parquet through the `parquet` crate
//! (only the needed columns are decoded) in its stored types, CSV and JSON Lines as text
//! ([`text`]), so that a ragged record or an unparsable value fails *that row* with a message
//! naming the row and column, instead of failing the file. Features are then converted to the
//! model's element type and pass-through columns kept as stored, under one policy for missing,
//! invalid and non-finite values ([`values`]).
//!
//! A piece of a split file ([`crate::engine::split`]) decodes the same way: a CSV piece is the header
//! and whole records, a Parquet piece is the fetched column chunks of some row groups, decoded
//! with the footer read at plan time. Row numbers are the file's (the piece's first row is
//! given), so the output is the same as the whole file's.
//!
//! Columns that pandas writes for a DataFrame's index (`Unnamed: 0` in CSV, `__index_level_0__`
//! or the names in the `pandas` metadata of Parquet) are not features unless `--features` names
//! them; the file's [`DecodedFile::notes`] say so.

mod text;
mod values;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use arrow::compute::filter;
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int32Type, Int64Type};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use self::text::{CsvDialect, Wanted};
use super::{DecodeError, DecodedFile, Feeder, TableSpec};
use crate::engine::model::{Buffer, TensorSpec};
use crate::engine::plan::FileKind;
use crate::engine::split::FetchedChunks;
use crate::text::excerpt;

/// Where a table comes from: a whole file's bytes, or a piece of one.
pub(super) enum Source {
    /// CSV text: a header record, then records; the first is row `first_row` of the file, and
    /// line `n` of the text is line `n + line_offset` of the file.
    Csv { bytes: Bytes, first_row: u64, line_offset: u64, delimiter: u8 },
    /// JSON Lines text, a whole file.
    Jsonl(Bytes),
    /// A whole Parquet file.
    Parquet(Bytes),
    /// Row groups `groups` of a Parquet file, from their fetched column chunks; the first row is
    /// row `first_row` of the file.
    RowGroups { chunks: FetchedChunks, footer: ArrowReaderMetadata, groups: Vec<usize>, first_row: u64 },
}

/// A table read from a file: its column names, and batches holding the columns read.
struct Table {
    /// Every column of the file, in order.
    columns: Vec<String>,
    batches: Vec<RecordBatch>,
    /// Rows failed while reading (CSV records with the wrong number of fields, ...).
    failed_rows: Vec<(u64, String)>,
    /// For each row of `batches`, its row number in the file.
    row_numbers: Vec<u64>,
    /// Columns pandas wrote for a DataFrame's index.
    index_columns: Vec<String>,
}

/// Decodes a whole tabular file (decompressed) of `kind`.
pub(super) fn decode(feeder: &Feeder, kind: FileKind, name: &str, bytes: Bytes) -> Result<DecodedFile, DecodeError> {
    let spec = feeder.table().expect("a tabular feeder");
    let src = match kind {
        FileKind::Parquet => Source::Parquet(bytes),
        FileKind::Jsonl => Source::Jsonl(bytes),
        _ => Source::Csv { bytes, first_row: 0, line_offset: 0, delimiter: spec.options.delimiter_for(name) },
    };
    decode_source(feeder, name, src)
}

/// The columns a feeder reads, and what they feed.
struct Columns<'a> {
    /// `None`: every column of the file except the pass-through and pandas index ones.
    features: Option<Vec<String>>,
    inputs: Vec<&'a TensorSpec>,
    /// One input per column, by name.
    named: bool,
    spec: &'a TableSpec,
}

impl<'a> Columns<'a> {
    fn of(feeder: &'a Feeder) -> Columns<'a> {
        match feeder {
            Feeder::Matrix { input, columns, table } => {
                Columns { features: columns.clone(), inputs: vec![input], named: false, spec: table }
            }
            Feeder::Named { inputs, table } => Columns {
                features: Some(inputs.iter().map(|i| i.name.clone()).collect()),
                inputs: inputs.iter().collect(),
                named: true,
                spec: table,
            },
            Feeder::Image { .. } => unreachable!("tabular decode with an image feeder"),
        }
    }

    /// The columns to read: `None` for all of them.
    fn wanted(&self) -> Option<Vec<String>> {
        let f = self.features.as_ref()?;
        Some(f.iter().cloned().chain(self.spec.passthrough.iter().map(|p| p.name.clone())).collect())
    }
}

pub(super) fn decode_source(feeder: &Feeder, name: &str, src: Source) -> Result<DecodedFile, DecodeError> {
    let cols = Columns::of(feeder);
    let spec = cols.spec;
    let wanted_list = cols.wanted();
    let wanted = match &wanted_list {
        Some(w) => Wanted::Only(w),
        None => Wanted::All,
    };
    let max = spec.options.max_record_bytes;
    let table = match src {
        Source::Csv { bytes, first_row, line_offset, delimiter } => text::read_csv(
            name,
            &bytes,
            wanted,
            first_row,
            line_offset,
            &CsvDialect { delimiter, max_record_bytes: max },
        )?,
        Source::Jsonl(bytes) => text::read_jsonl(name, &bytes, wanted, 0, max)?,
        Source::Parquet(bytes) => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| parquet_error(name, e))?;
            let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
            read_parquet(name, builder, wanted_list.as_deref(), 0, rows)?
        }
        Source::RowGroups { chunks, footer, groups, first_row } => {
            let rows = groups.iter().map(|g| footer.metadata().row_group(*g).num_rows().max(0) as usize).sum();
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, footer).with_row_groups(groups);
            read_parquet(name, builder, wanted_list.as_deref(), first_row, rows)?
        }
    };
    let mut notes = Vec::new();
    let features = resolve_features(name, &cols, &table, &mut notes)?;
    convert(name, &cols, features, table, notes)
}

/// The feature columns, checked against the file: every named column is there, and a single
/// 2-D input gets as many as it takes.
fn resolve_features(
    name: &str,
    cols: &Columns,
    table: &Table,
    notes: &mut Vec<String>,
) -> Result<Vec<String>, DecodeError> {
    let pass: Vec<&str> = cols.spec.passthrough.iter().map(|p| p.name.as_str()).collect();
    let listing = || table.columns.iter().map(|c| excerpt(c)).collect::<Vec<_>>().join(", ");
    if let Some(missing) = pass.iter().find(|p| !table.columns.iter().any(|c| c == *p)) {
        return Err(DecodeError(format!(
            "{name}: --passthrough column {:?} not found; the file has columns: {}{}",
            excerpt(missing),
            listing(),
            dialect_hint(&table.columns)
        )));
    }
    let features = match &cols.features {
        Some(f) => {
            if let Some(missing) = f.iter().find(|c| !table.columns.contains(c)) {
                let role = if cols.named { "column for model input" } else { "--features column" };
                return Err(DecodeError(format!(
                    "{name}: {role} {:?} not found; the file has columns: {}{}",
                    excerpt(missing),
                    listing(),
                    dialect_hint(&table.columns)
                )));
            }
            f.clone()
        }
        None => {
            let mut f = Vec::new();
            for c in &table.columns {
                if pass.contains(&c.as_str()) {
                    continue;
                }
                if table.index_columns.contains(c) {
                    notes.push(format!(
                        "column {:?} holds a pandas index and is not a feature (name the features with --features, or keep it with --passthrough)",
                        excerpt(c)
                    ));
                    continue;
                }
                f.push(c.clone());
            }
            f
        }
    };
    if let [input] = cols.inputs.as_slice()
        && !cols.named
        && let Some(w) = input.row_len()
        && features.len() != w
    {
        return Err(DecodeError(format!(
            "{name}: model input {:?} takes {w} values per row but the file has {} feature columns ({}); \
             choose them with --features, or name id columns with --passthrough{}",
            input.name,
            features.len(),
            features.iter().map(|c| excerpt(c)).collect::<Vec<_>>().join(", "),
            dialect_hint(&table.columns)
        )));
    }
    Ok(features)
}

/// A hint when a header looks like another delimiter's (one column holding `;`, tabs or `|`).
fn dialect_hint(columns: &[String]) -> String {
    let [only] = columns else { return String::new() };
    for (d, name) in [(';', "';'"), ('\t', "tab"), ('|', "'|'")] {
        if only.contains(d) {
            let comma = if d == ';' { " (and --decimal-mark ',' if its numbers use decimal commas)" } else { "" };
            return format!(
                ". The header looks {}-separated: pass --csv-delimiter {name}{comma}",
                if d == '\t' { "tab" } else { name }
            );
        }
    }
    String::new()
}

/// Converts the features and pass-through columns, fails the rows with a bad value, keeps the
/// good ones, and lays the features out for the model.
fn convert(
    name: &str,
    cols: &Columns,
    features: Vec<String>,
    table: Table,
    notes: Vec<String>,
) -> Result<DecodedFile, DecodeError> {
    let opts = &cols.spec.options;
    let sizes: Vec<usize> = table.batches.iter().map(RecordBatch::num_rows).collect();
    let total: usize = sizes.iter().sum();
    // The bad rows as (row in the table, reason), in column order; most files have none, so
    // nothing per row is allocated.
    let mut bad: Vec<(usize, String)> = Vec::new();
    let column = |b: &RecordBatch, c: &str| b.column_by_name(c).expect("checked above").clone();
    let record = |offset: usize, rows: values::BadRows, bad: &mut Vec<(usize, String)>| {
        bad.extend(rows.into_iter().map(|(i, why)| (offset + i, why)));
    };
    let mut feature_parts: Vec<Vec<ArrayRef>> = Vec::with_capacity(features.len());
    for (fi, col) in features.iter().enumerate() {
        let dtype = if cols.named { cols.inputs[fi].dtype } else { cols.inputs[0].dtype };
        let mut parts = Vec::with_capacity(table.batches.len());
        let mut offset = 0;
        for batch in &table.batches {
            let (a, rows) = values::feature(col, &column(batch, col), dtype, opts)
                .map_err(|e| DecodeError(format!("{name}: {e}")))?;
            record(offset, rows, &mut bad);
            offset += a.len();
            parts.push(a);
        }
        feature_parts.push(parts);
    }
    let mut pass_parts: Vec<Vec<ArrayRef>> = Vec::with_capacity(cols.spec.passthrough.len());
    for p in &cols.spec.passthrough {
        let mut parts = Vec::with_capacity(table.batches.len());
        let mut offset = 0;
        for batch in &table.batches {
            let (a, rows) = values::passthrough(&p.name, &column(batch, &p.name), p.kind)
                .map_err(|e| DecodeError(format!("{name}: {e}")))?;
            record(offset, rows, &mut bad);
            offset += a.len();
            parts.push(a);
        }
        pass_parts.push(parts);
    }
    // A row fails with the first reason found for it, in column order (the sort is stable).
    bad.sort_by_key(|(i, _)| *i);
    bad.dedup_by_key(|(i, _)| *i);

    let rows = total - bad.len();
    let GoodRows { row_numbers, masks, failed: failed_rows } =
        good_rows(table.row_numbers, &sizes, table.failed_rows, bad);
    let keep = |parts: Vec<ArrayRef>| -> Result<Vec<ArrayRef>, DecodeError> {
        let Some(masks) = &masks else { return Ok(parts) };
        parts.iter().zip(masks).map(|(a, m)| filter(a, m).map_err(|e| DecodeError(format!("{name}: {e}")))).collect()
    };
    let mut kept = Vec::with_capacity(feature_parts.len());
    for parts in feature_parts {
        kept.push(keep(parts)?);
    }
    let (inputs, row_shapes) = lay_out(cols, &kept, rows, sizes.len());
    let mut passthrough = Vec::with_capacity(pass_parts.len());
    for parts in pass_parts {
        let mut parts = keep(parts)?;
        passthrough.push(match parts.len() {
            0 => arrow::array::new_null_array(&DataType::Utf8, 0),
            // A column read in one piece (a Parquet file, most CSV files) is kept as it is.
            1 => parts.pop().expect("one part"),
            _ => {
                let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
                arrow::compute::concat(&refs).map_err(|e| DecodeError(format!("{name}: {e}")))?
            }
        });
    }
    Ok(DecodedFile { rows, row_numbers: Some(row_numbers), inputs, row_shapes, passthrough, failed_rows, notes })
}

/// The rows of a table that are kept, and those that failed.
struct GoodRows {
    /// The file's row number of each kept row.
    row_numbers: Vec<u64>,
    /// Per batch, the rows kept; `None` when every row is good (the usual case: nothing to filter).
    masks: Option<Vec<BooleanArray>>,
    /// Every failed row with its reason, by row.
    failed: Vec<(u64, String)>,
}

/// Sorts out the good rows, given the rows that failed while reading (`failed`) and the bad
/// values' rows (`bad`, by index in the table, one reason each).
fn good_rows(
    row_numbers: Vec<u64>,
    batch_rows: &[usize],
    mut failed: Vec<(u64, String)>,
    bad: Vec<(usize, String)>,
) -> GoodRows {
    if bad.is_empty() {
        failed.sort_by_key(|(row, _)| *row);
        return GoodRows { row_numbers, masks: None, failed };
    }
    let mut ok = vec![true; row_numbers.len()];
    for (i, _) in &bad {
        ok[*i] = false;
    }
    let kept = row_numbers.iter().zip(&ok).filter(|(_, k)| **k).map(|(r, _)| *r).collect();
    let mut off = 0;
    let masks = batch_rows
        .iter()
        .map(|n| {
            let m = BooleanArray::from(ok[off..off + n].to_vec());
            off += n;
            m
        })
        .collect();
    failed.extend(bad.into_iter().map(|(i, why)| (row_numbers[i], why)));
    failed.sort_by_key(|(row, _)| *row);
    GoodRows { row_numbers: kept, masks: Some(masks), failed }
}

/// The features as model input buffers: one row-major matrix, or one column per input (read in
/// place when it came in one piece).
fn lay_out(cols: &Columns, kept: &[Vec<ArrayRef>], rows: usize, batches: usize) -> (Vec<Buffer>, Vec<Vec<i64>>) {
    if !cols.named {
        let width = kept.len();
        let mut buf = Buffer::new(cols.inputs[0].dtype, rows * width);
        for b in 0..batches {
            let parts: Vec<&ArrayRef> = kept.iter().map(|k| &k[b]).collect();
            interleave(&mut buf, &parts);
        }
        return (vec![buf], vec![vec![width as i64]]);
    }
    let mut bufs = Vec::with_capacity(kept.len());
    let mut shapes = Vec::with_capacity(kept.len());
    for (input, parts) in cols.inputs.iter().zip(kept) {
        // A numeric column read in one piece feeds the model as Arrow decoded it, uncopied.
        let whole = match parts.as_slice() {
            [part] => Buffer::from_column(part),
            _ => None,
        };
        bufs.push(whole.unwrap_or_else(|| {
            let mut buf = Buffer::new(input.dtype, rows);
            for part in parts {
                interleave(&mut buf, &[part]);
            }
            buf
        }));
        shapes.push(input.shape[1..].to_vec());
    }
    (bufs, shapes)
}

/// Appends rows of several same-typed columns to `buf`, row-major.
fn interleave(buf: &mut Buffer, cols: &[&ArrayRef]) {
    let n = cols.first().map_or(0, |c| c.len());
    macro_rules! prim {
        ($v:expr, $t:ty) => {{
            let arrays: Vec<_> = cols.iter().map(|c| c.as_primitive::<$t>().values()).collect();
            if arrays.len() == 1 {
                $v.extend_from_slice(arrays[0]);
            } else {
                // Row-major, in blocks of rows that stay in the L1 cache: each column is written
                // into the block with a stride, then the next block.
                const BLOCK: usize = 256;
                let width = arrays.len();
                let start = $v.len();
                $v.resize(start + n * width, Default::default());
                let out = &mut $v[start..];
                for (b, block) in out.chunks_mut(BLOCK * width).enumerate() {
                    let first = b * BLOCK;
                    for (j, a) in arrays.iter().enumerate() {
                        for (row, x) in block.chunks_exact_mut(width).zip(&a[first..]) {
                            row[j] = *x;
                        }
                    }
                }
            }
        }};
    }
    match buf {
        Buffer::F32(v) => prim!(v, Float32Type),
        Buffer::F64(v) => prim!(v, Float64Type),
        Buffer::I64(v) => prim!(v, Int64Type),
        Buffer::I32(v) => prim!(v, Int32Type),
        Buffer::U8(v) => prim!(v, arrow::datatypes::UInt8Type),
        Buffer::Bool(v) => {
            let arrays: Vec<_> = cols.iter().map(|c| c.as_boolean()).collect();
            for r in 0..n {
                for a in &arrays {
                    v.push(a.value(r));
                }
            }
        }
        Buffer::Str(v) => {
            let arrays: Vec<_> = cols.iter().map(|c| c.as_string::<i32>()).collect();
            for r in 0..n {
                for a in &arrays {
                    v.push(a.value(r).to_string());
                }
            }
        }
        Buffer::Column(_) => unreachable!("decoding appends to owned buffers only"),
    }
}

fn parquet_error(name: &str, e: parquet::errors::ParquetError) -> DecodeError {
    DecodeError(format!("{name}: not a readable Parquet file: {}", crate::text::excerpt_line(&e.to_string())))
}

/// Parquet rows decoded per batch at most (a file or piece with more comes in several).
const MAX_BATCH_ROWS: usize = 1 << 24;

/// Decodes the wanted columns (all when `None`) of `rows` rows (the file's, or the selected row
/// groups').
fn read_parquet<T: ChunkReader + 'static>(
    name: &str,
    builder: ParquetRecordBatchReaderBuilder<T>,
    wanted: Option<&[String]>,
    first_row: u64,
    rows: usize,
) -> Result<Table, DecodeError> {
    let columns: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let index_columns = pandas_index_columns(builder.schema(), &columns);
    let indices: Vec<usize> = match wanted {
        Some(w) => w.iter().filter_map(|w| columns.iter().position(|c| c == w)).collect(),
        None => (0..columns.len()).collect(),
    };
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    // One batch for the whole file or piece: its columns then reach the model in one piece
    // each (see Buffer::Column), and nothing needs joining.
    let batch_rows = rows.clamp(1, MAX_BATCH_ROWS);
    let reader =
        builder.with_projection(mask).with_batch_size(batch_rows).build().map_err(|e| parquet_error(name, e))?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|e| {
            DecodeError(format!("{name}: cannot decode Parquet data: {}", crate::text::excerpt_line(&e.to_string())))
        })?);
    }
    let total = batches.iter().map(RecordBatch::num_rows).sum::<usize>() as u64;
    Ok(Table {
        columns,
        batches,
        failed_rows: Vec::new(),
        row_numbers: (first_row..first_row + total).collect(),
        index_columns,
    })
}

/// The columns pandas stored for a DataFrame's index: named in the `pandas` schema metadata
/// (`index_columns`), or called `__index_level_N__`.
fn pandas_index_columns(schema: &arrow::datatypes::Schema, columns: &[String]) -> Vec<String> {
    let mut found: Vec<String> = columns.iter().filter(|c| text::is_pandas_index_name(c)).cloned().collect();
    if let Some(meta) = schema.metadata().get("pandas")
        && let Ok(v) = serde_json::from_str::<serde_json::Value>(meta)
        && let Some(list) = v["index_columns"].as_array()
    {
        for c in list.iter().filter_map(|c| c.as_str()) {
            if columns.iter().any(|x| x == c) && !found.iter().any(|x| x == c) {
                found.push(c.to_string());
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{ElemType, TensorSpec};
    use crate::engine::settings::{PassColumn, TabularOptions};
    use std::sync::Arc;

    fn spec(passthrough: &[&str]) -> TableSpec {
        TableSpec {
            passthrough: passthrough.iter().map(|s| PassColumn { name: s.to_string(), kind: None }).collect(),
            options: TabularOptions::default(),
        }
    }

    fn matrix(width: i64, passthrough: &[&str]) -> Feeder {
        Feeder::Matrix {
            input: TensorSpec { name: "input".into(), dtype: ElemType::F32, shape: vec![-1, width] },
            columns: None,
            table: spec(passthrough),
        }
    }

    #[test]
    fn csv_rows_with_bad_values_fail_alone() {
        let csv = "id,a,b\n0,1.5,2\n1,abc,3\n2,,4\n3,5,6,7\n4,7,8\n";
        let d = decode(&matrix(2, &["id"]), FileKind::Csv, "t.csv", Bytes::from(csv)).unwrap();
        assert_eq!(d.rows, 2);
        assert_eq!(d.row_numbers.as_deref(), Some(&[0u64, 4][..]));
        assert_eq!(d.inputs[0], Buffer::F32(vec![1.5, 2.0, 7.0, 8.0]));
        let rows: Vec<u64> = d.failed_rows.iter().map(|(r, _)| *r).collect();
        assert_eq!(rows, vec![1, 2, 3]);
        assert!(d.failed_rows[0].1.contains("\"abc\""), "{:?}", d.failed_rows);
        assert!(d.failed_rows[1].1.contains("missing"), "{:?}", d.failed_rows);
        assert!(d.failed_rows[2].1.contains("4 fields"), "{:?}", d.failed_rows);
        // Pass-through text is kept as written.
        let ids = d.passthrough[0].as_string::<i32>();
        assert_eq!((ids.value(0), ids.value(1)), ("0", "4"));
    }

    #[test]
    fn a_row_bad_in_several_columns_fails_once_with_the_first_columns_reason() {
        let csv = "id,a,b\n0,x,y\n1,1,2\n2,3,z\n3,,w\n";
        let d = decode(&matrix(2, &["id"]), FileKind::Csv, "t.csv", Bytes::from(csv)).unwrap();
        assert_eq!((d.rows, d.row_numbers.as_deref()), (1, Some(&[1u64][..])));
        let failed: Vec<(u64, &str)> = d.failed_rows.iter().map(|(r, why)| (*r, why.as_str())).collect();
        assert_eq!(failed.len(), 3, "{failed:?}");
        assert!(failed[0].0 == 0 && failed[0].1.contains("\"a\"") && failed[0].1.contains("\"x\""), "{failed:?}");
        assert!(failed[1].0 == 2 && failed[1].1.contains("\"b\""), "{failed:?}");
        assert!(failed[2].0 == 3 && failed[2].1.contains("\"a\"") && failed[2].1.contains("missing"), "{failed:?}");
    }

    #[test]
    fn pandas_index_columns_are_not_features() {
        let csv = ",a,b\n0,1,2\n1,3,4\n";
        let d = decode(&matrix(2, &[]), FileKind::Csv, "t.csv", Bytes::from(csv)).unwrap();
        assert_eq!(d.inputs[0], Buffer::F32(vec![1.0, 2.0, 3.0, 4.0]));
        assert!(d.notes[0].contains("Unnamed: 0") && d.notes[0].contains("pandas index"), "{:?}", d.notes);
        let d = decode(&matrix(3, &[]), FileKind::Csv, "t.csv", Bytes::from("a;b;c\n1;2;3\n")).unwrap_err();
        assert!(d.0.contains("--csv-delimiter ';'"), "{d}");
    }

    #[test]
    fn parquet_columns_feed_one_input_each_without_a_copy() {
        use arrow::array::{Float32Array, Int64Array};
        use parquet::arrow::ArrowWriter;
        use parquet::file::properties::WriterProperties;
        // 20,000 rows in 4 row groups: more than one reader batch used to hold.
        let n = 20_000;
        let a: ArrayRef = Arc::new(Float32Array::from_iter_values((0..n).map(|i| i as f32 * 0.5)));
        let b: ArrayRef = Arc::new(Int64Array::from_iter_values((0..n).map(|i| 3 * i as i64)));
        let batch = RecordBatch::try_from_iter([("a", a), ("b", b)]).unwrap();
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(5_000)).build();
        let mut bytes = Vec::new();
        let mut w = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let spec = |name: &str, dtype| TensorSpec { name: name.into(), dtype, shape: vec![-1, 1] };
        let feeder = Feeder::Named {
            inputs: vec![spec("a", ElemType::F32), spec("b", ElemType::I64)],
            table: super::tests::spec(&[]),
        };
        let d = decode(&feeder, FileKind::Parquet, "t.parquet", Bytes::from(bytes)).unwrap();
        assert_eq!(d.rows, n);
        let (Buffer::Column(a), Buffer::Column(b)) = (&d.inputs[0], &d.inputs[1]) else {
            panic!(
                "each input is its Arrow column, uncopied: {:?}",
                d.inputs.iter().map(Buffer::dtype).collect::<Vec<_>>()
            )
        };
        assert_eq!(a.as_primitive::<Float32Type>().values()[..3], [0.0, 0.5, 1.0]);
        assert_eq!(b.as_primitive::<Int64Type>().values()[n - 1], 3 * (n as i64 - 1));
        assert_eq!((d.inputs[0].dtype(), d.inputs[0].len()), (ElemType::F32, n));
        // Gathering rows out of it (a call over rows of several files) copies just those.
        let mut g = Buffer::new(ElemType::I64, 2);
        g.extend_from(&d.inputs[1], 5..7);
        assert_eq!(g, Buffer::I64(vec![15, 18]));
    }

    #[test]
    fn wrong_width_names_the_columns() {
        let e = decode(&matrix(3, &[]), FileKind::Csv, "t.csv", Bytes::from("a,b\n1,2\n")).unwrap_err();
        assert!(e.0.contains("t.csv") && e.0.contains("a, b") && e.0.contains("--features"), "{e}");
    }
}
