//! CSV and Parquet files into model rows.
//!
//! Both formats become Arrow `RecordBatch`es first: Parquet through the `parquet` crate (only
//! the needed columns are decoded), CSV through the `csv` crate into text columns, so that a
//! ragged record or an unparsable value fails *that row* with a message naming the row and
//! column, instead of failing the file. Feature columns are then cast to the model's element
//! type; a value that cannot be cast, or is missing, fails its row. Pass-through columns keep
//! their type (CSV columns are typed by a simple per-file inference: integer, float, or text).
//!
//! A piece of a split file ([`crate::split`]) decodes the same way: a CSV piece is the header
//! and whole records, a Parquet piece is the fetched column chunks of some row groups, decoded
//! with the footer read at plan time. Row numbers are the file's (the piece's first row is given),
//! so the output is the same as the whole file's. (Pass-through columns of CSV pieces are typed
//! per piece.)

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, Int64Array, RecordBatch, StringArray};
use arrow::compute::{CastOptions, cast_with_options, filter};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Int32Type, Int64Type};
use bytes::Bytes;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use super::{DecodeError, DecodedFile, Feeder};
use crate::model::{Buffer, ElemType};
use crate::plan::FileKind;
use crate::split::FetchedChunks;

/// Where a table comes from: a whole file's bytes, or a piece of one.
pub(super) enum Source {
    /// CSV text: a header record, then records; the first is row `first_row` of the file, and
    /// line `n` of the text is line `n + line_offset` of the file.
    Csv { bytes: Bytes, first_row: u64, line_offset: u64 },
    /// A whole Parquet file.
    Parquet(Bytes),
    /// Row groups `groups` of a Parquet file, from their fetched column chunks; the first row is
    /// row `first_row` of the file.
    RowGroups { chunks: FetchedChunks, footer: ArrowReaderMetadata, groups: Vec<usize>, first_row: u64 },
}

impl Source {
    /// A whole file's bytes.
    pub(super) fn whole(kind: FileKind, bytes: Bytes) -> Source {
        match kind {
            FileKind::Parquet => Source::Parquet(bytes),
            _ => Source::Csv { bytes, first_row: 0, line_offset: 0 },
        }
    }
}

/// A table read from a file: column names, and batches holding them (all text for CSV).
struct Table {
    columns: Vec<String>,
    batches: Vec<RecordBatch>,
    /// Rows failed while reading (CSV records with the wrong number of fields).
    failed_rows: Vec<(u64, String)>,
    /// For each row of `batches`, its row number in the file.
    row_numbers: Vec<u64>,
}

pub(super) fn decode(feeder: &Feeder, kind: FileKind, name: &str, bytes: Bytes) -> Result<DecodedFile, DecodeError> {
    decode_source(feeder, name, Source::whole(kind, bytes))
}

pub(super) fn decode_source(feeder: &Feeder, name: &str, src: Source) -> Result<DecodedFile, DecodeError> {
    let is_csv = matches!(src, Source::Csv { .. });
    let (features, inputs, passthrough): (Vec<String>, Vec<_>, &[String]) = match feeder {
        Feeder::Matrix { input, columns, passthrough } => {
            // Without --features we need the header to know the columns: read it first.
            let features = match columns {
                Some(c) => c.clone(),
                None => {
                    let all = header(name, &src)?;
                    // A misspelt --passthrough column would otherwise show up as one feature
                    // column too many: name it.
                    if let Some(missing) = passthrough.iter().find(|p| !all.contains(p)) {
                        return Err(DecodeError(format!(
                            "{name}: --passthrough column {missing:?} not found; the file has columns: {}",
                            all.join(", ")
                        )));
                    }
                    all.into_iter().filter(|c| !passthrough.contains(c)).collect()
                }
            };
            if let Some(w) = input.row_len()
                && features.len() != w
            {
                return Err(DecodeError(format!(
                    "{name}: model input {:?} takes {w} values per row but the file has {} feature columns ({}); \
                     choose them with --features, or name id columns with --passthrough",
                    input.name,
                    features.len(),
                    features.join(", ")
                )));
            }
            (features, vec![input], passthrough)
        }
        Feeder::Named { inputs, passthrough } => {
            (inputs.iter().map(|i| i.name.clone()).collect(), inputs.iter().collect(), passthrough)
        }
        Feeder::Image { .. } => unreachable!("tabular decode with an image feeder"),
    };
    let wanted: Vec<String> = features.iter().chain(passthrough.iter()).cloned().collect();
    let table = match src {
        Source::Csv { bytes, first_row, line_offset } => read_csv(name, &bytes, &wanted, first_row, line_offset)?,
        Source::Parquet(bytes) => {
            let builder = ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| parquet_error(name, e))?;
            let rows = builder.metadata().file_metadata().num_rows().max(0) as usize;
            read_parquet(name, builder, &wanted, 0, rows)?
        }
        Source::RowGroups { chunks, footer, groups, first_row } => {
            let rows = groups.iter().map(|g| footer.metadata().row_group(*g).num_rows().max(0) as usize).sum();
            let builder = ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, footer).with_row_groups(groups);
            read_parquet(name, builder, &wanted, first_row, rows)?
        }
    };
    if let Some(missing) = wanted.iter().find(|c| !table.columns.contains(c)) {
        let role = if passthrough.contains(missing) {
            "--passthrough column"
        } else if matches!(feeder, Feeder::Named { .. }) {
            "column for model input"
        } else {
            "--features column"
        };
        return Err(DecodeError(format!(
            "{name}: {role} {missing:?} not found; the file has columns: {}",
            table.columns.join(", ")
        )));
    }

    // Cast features; collect per-row failures.
    let total: usize = table.batches.iter().map(RecordBatch::num_rows).sum();
    let mut ok = vec![true; total];
    let mut reasons: Vec<Option<String>> = vec![None; total];
    let mut cast_cols: Vec<Vec<ArrayRef>> = Vec::with_capacity(features.len());
    for (fi, col) in features.iter().enumerate() {
        let dtype = match feeder {
            Feeder::Matrix { input, .. } => input.dtype,
            _ => inputs[fi].dtype,
        };
        let target = arrow_type(dtype);
        let mut parts = Vec::with_capacity(table.batches.len());
        let mut offset = 0;
        for batch in &table.batches {
            let src = batch.column_by_name(col).expect("checked above");
            // Text parses as f64 first, then narrows: the same rounding as reading a CSV with
            // pandas or pyarrow and casting to float32.
            let via_f64;
            let src_for_cast = if target == DataType::Float32 && src.data_type() == &DataType::Utf8 {
                via_f64 = cast_with_options(src, &DataType::Float64, &CastOptions::default())
                    .map_err(|e| DecodeError(format!("{name}: column {col:?}: {e}")))?;
                &via_f64
            } else {
                src
            };
            let casted = cast_with_options(src_for_cast, &target, &CastOptions::default()).map_err(|e| {
                DecodeError(format!(
                    "{name}: column {col:?} of type {} cannot feed a {dtype:?} input: {e}",
                    src.data_type()
                ))
            })?;
            let nulls = if casted.null_count() > 0 { 0..casted.len() } else { 0..0 };
            for i in nulls {
                if casted.is_null(i) && ok[offset + i] {
                    ok[offset + i] = false;
                    let why = if src.is_null(i) || is_blank(src, i) {
                        format!("column {col:?}: missing value")
                    } else {
                        format!("column {col:?}: value {:?} is not a valid {}", display_value(src, i), type_word(dtype))
                    };
                    reasons[offset + i] = Some(why);
                }
            }
            offset += casted.len();
            parts.push(casted);
        }
        cast_cols.push(parts);
    }
    let mut failed_rows = table.failed_rows;
    for (i, r) in reasons.into_iter().enumerate() {
        if let Some(r) = r {
            failed_rows.push((table.row_numbers[i], r));
        }
    }
    failed_rows.sort_by_key(|(row, _)| *row);

    // Keep the good rows.
    let rows = ok.iter().filter(|x| **x).count();
    let row_numbers: Vec<u64> = table.row_numbers.iter().zip(&ok).filter(|(_, k)| **k).map(|(r, _)| *r).collect();
    // Every row good (the usual case): nothing to filter out, no masks to build.
    let all_ok = rows == total;
    let masks: Vec<BooleanArray> = if all_ok {
        Vec::new()
    } else {
        let mut off = 0;
        table
            .batches
            .iter()
            .map(|b| {
                let m = BooleanArray::from(ok[off..off + b.num_rows()].to_vec());
                off += b.num_rows();
                m
            })
            .collect()
    };
    let keep = |parts: Vec<ArrayRef>| -> Result<Vec<ArrayRef>, DecodeError> {
        if all_ok {
            return Ok(parts);
        }
        parts.iter().zip(&masks).map(|(a, m)| filter(a, m).map_err(|e| DecodeError(format!("{name}: {e}")))).collect()
    };
    let mut kept: Vec<Vec<ArrayRef>> = Vec::with_capacity(cast_cols.len());
    for parts in cast_cols {
        kept.push(keep(parts)?);
    }

    let (buffers, row_shapes) = match feeder {
        Feeder::Matrix { input, .. } => {
            let width = features.len();
            let mut buf = Buffer::new(input.dtype, rows * width);
            for b in 0..table.batches.len() {
                let cols: Vec<&ArrayRef> = kept.iter().map(|k| &k[b]).collect();
                interleave(&mut buf, &cols);
            }
            (vec![buf], vec![vec![width as i64]])
        }
        _ => {
            let mut bufs = Vec::new();
            let mut shapes = Vec::new();
            for (fi, input) in inputs.iter().enumerate() {
                // One input per column: a numeric column read in one piece feeds the model as
                // Arrow decoded it, without a copy.
                let whole = match kept[fi].as_slice() {
                    [part] => Buffer::from_column(part),
                    _ => None,
                };
                let buf = whole.unwrap_or_else(|| {
                    let mut buf = Buffer::new(input.dtype, rows);
                    for part in &kept[fi] {
                        interleave(&mut buf, &[part]);
                    }
                    buf
                });
                bufs.push(buf);
                shapes.push(input.shape[1..].to_vec());
            }
            (bufs, shapes)
        }
    };

    let mut pass_cols = Vec::with_capacity(passthrough.len());
    for col in passthrough {
        let parts: Vec<ArrayRef> =
            table.batches.iter().map(|b| b.column_by_name(col).expect("checked").clone()).collect();
        let parts = keep(parts)?;
        let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
        let joined = if refs.is_empty() {
            arrow::array::new_empty_array(&DataType::Utf8)
        } else {
            arrow::compute::concat(&refs).map_err(|e| DecodeError(format!("{name}: {e}")))?
        };
        let joined = if is_csv { infer_text_column(&joined) } else { joined };
        pass_cols.push(joined);
    }

    Ok(DecodedFile {
        rows,
        row_numbers: Some(row_numbers),
        inputs: buffers,
        row_shapes,
        passthrough: pass_cols,
        failed_rows,
    })
}

fn arrow_type(t: ElemType) -> DataType {
    match t {
        ElemType::F32 => DataType::Float32,
        ElemType::F64 => DataType::Float64,
        ElemType::I64 => DataType::Int64,
        ElemType::I32 => DataType::Int32,
        ElemType::U8 => DataType::UInt8,
        ElemType::Bool => DataType::Boolean,
        ElemType::Str => DataType::Utf8,
    }
}

fn type_word(t: ElemType) -> &'static str {
    match t {
        ElemType::F32 | ElemType::F64 => "number",
        ElemType::I64 | ElemType::I32 | ElemType::U8 => "whole number",
        ElemType::Bool => "boolean",
        ElemType::Str => "string",
    }
}

fn is_blank(a: &ArrayRef, i: usize) -> bool {
    a.as_string_opt::<i32>().is_some_and(|s| s.value(i).trim().is_empty())
}

fn display_value(a: &ArrayRef, i: usize) -> String {
    match a.as_string_opt::<i32>() {
        Some(s) => s.value(i).to_string(),
        None => arrow::util::display::array_value_to_string(a, i).unwrap_or_default(),
    }
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

/// The column names of a file, read from its header (CSV) or footer (Parquet).
fn header(name: &str, src: &Source) -> Result<Vec<String>, DecodeError> {
    match src {
        Source::Csv { bytes, .. } => {
            if bytes.is_empty() {
                return Err(DecodeError(format!("{name}: the file is empty; a CSV input needs a header row")));
            }
            let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_ref());
            let h = rdr.byte_headers().map_err(|e| DecodeError(format!("{name}: cannot read the CSV header: {e}")))?;
            Ok(h.iter().map(|f| String::from_utf8_lossy(f).trim().to_string()).collect())
        }
        Source::Parquet(bytes) => {
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).map_err(|e| parquet_error(name, e))?;
            Ok(builder.schema().fields().iter().map(|f| f.name().clone()).collect())
        }
        Source::RowGroups { footer, .. } => Ok(footer.schema().fields().iter().map(|f| f.name().clone()).collect()),
    }
}

fn parquet_error(name: &str, e: parquet::errors::ParquetError) -> DecodeError {
    DecodeError(format!("{name}: not a readable Parquet file: {e}"))
}

/// Parquet rows decoded per batch at most (a file or piece with more comes in several).
const MAX_BATCH_ROWS: usize = 1 << 24;

/// Decodes the wanted columns of `rows` rows (the file's, or the selected row groups').
fn read_parquet<T: ChunkReader + 'static>(
    name: &str,
    builder: ParquetRecordBatchReaderBuilder<T>,
    wanted: &[String],
    first_row: u64,
    rows: usize,
) -> Result<Table, DecodeError> {
    let columns: Vec<String> = builder.schema().fields().iter().map(|f| f.name().clone()).collect();
    let indices: Vec<usize> = wanted.iter().filter_map(|w| columns.iter().position(|c| c == w)).collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), indices);
    // One batch for the whole file or piece: its columns then reach the model in one piece
    // each (see Buffer::Column), and nothing needs joining.
    let batch_rows = rows.clamp(1, MAX_BATCH_ROWS);
    let reader =
        builder.with_projection(mask).with_batch_size(batch_rows).build().map_err(|e| parquet_error(name, e))?;
    let mut batches = Vec::new();
    for b in reader {
        batches.push(b.map_err(|e| DecodeError(format!("{name}: cannot decode Parquet data: {e}")))?);
    }
    let total = batches.iter().map(RecordBatch::num_rows).sum::<usize>() as u64;
    Ok(Table { columns, batches, failed_rows: Vec::new(), row_numbers: (first_row..first_row + total).collect() })
}

fn read_csv(
    name: &str,
    bytes: &Bytes,
    wanted: &[String],
    first_row: u64,
    line_offset: u64,
) -> Result<Table, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError(format!("{name}: the file is empty; a CSV input needs a header row")));
    }
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(bytes.as_ref());
    let columns: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| DecodeError(format!("{name}: cannot read the CSV header: {e}")))?
        .iter()
        .map(|f| String::from_utf8_lossy(f).trim().to_string())
        .collect();
    let indices: Vec<(String, usize)> =
        wanted.iter().filter_map(|w| columns.iter().position(|c| c == w).map(|i| (w.clone(), i))).collect();
    let mut values: Vec<Vec<Option<String>>> = vec![Vec::new(); indices.len()];
    let mut row_numbers = Vec::new();
    let mut failed_rows = Vec::new();
    let mut record = csv::ByteRecord::new();
    let mut row: u64 = first_row;
    loop {
        match rdr.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                if record.len() != columns.len() {
                    failed_rows.push((
                        row,
                        format!(
                            "line {}: {} fields where the header has {}",
                            record.position().map_or(0, |p| p.line() + line_offset),
                            record.len(),
                            columns.len()
                        ),
                    ));
                } else {
                    for (k, (_, i)) in indices.iter().enumerate() {
                        let field = String::from_utf8_lossy(&record[*i]);
                        values[k].push(if field.is_empty() { None } else { Some(field.into_owned()) });
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
    let arrays: Vec<(String, ArrayRef)> =
        indices.iter().zip(values).map(|((n, _), v)| (n.clone(), Arc::new(StringArray::from(v)) as ArrayRef)).collect();
    let batches = if arrays.is_empty() {
        vec![]
    } else {
        vec![RecordBatch::try_from_iter(arrays).map_err(|e| DecodeError(format!("{name}: {e}")))?]
    };
    Ok(Table { columns, batches, failed_rows, row_numbers })
}

/// Types a text column from CSV: integers, else floats, else text.
fn infer_text_column(a: &ArrayRef) -> ArrayRef {
    let Some(s) = a.as_string_opt::<i32>() else { return a.clone() };
    let values = || s.iter().flatten();
    if values().all(|v| v.trim().parse::<i64>().is_ok()) {
        return Arc::new(s.iter().map(|v| v.and_then(|x| x.trim().parse::<i64>().ok())).collect::<Int64Array>());
    }
    if values().all(|v| v.trim().parse::<f64>().is_ok()) {
        return Arc::new(
            s.iter().map(|v| v.and_then(|x| x.trim().parse::<f64>().ok())).collect::<arrow::array::Float64Array>(),
        );
    }
    a.clone()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TensorSpec;

    fn matrix(width: i64, passthrough: &[&str]) -> Feeder {
        Feeder::Matrix {
            input: TensorSpec { name: "input".into(), dtype: ElemType::F32, shape: vec![-1, width] },
            columns: None,
            passthrough: passthrough.iter().map(|s| s.to_string()).collect(),
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
        let ids = d.passthrough[0].as_primitive::<Int64Type>();
        assert_eq!(ids.values().to_vec(), vec![0, 4]);
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
        let feeder =
            Feeder::Named { inputs: vec![spec("a", ElemType::F32), spec("b", ElemType::I64)], passthrough: vec![] };
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
