//! Collect: model outputs into rows, and rows into the predictions file.
//!
//! Every output row holds `file` (the path relative to `--input`), `row` (the row number in the
//! file, for tabular inputs), the pass-through columns, then one column per model output named
//! after it. Vectors are JSON arrays in CSV and list columns in Parquet; sequence-of-map outputs
//! (scikit-learn's ZipMap) are JSON objects in both. CSV follows RFC 4180 with a header row;
//! floats are written with the fewest digits that read back to the same value.
//!
//! The writers stream: each mini-batch's rows are encoded and handed to an `object_store`
//! buffered (multipart) upload of the staging object as they arrive, so memory stays bounded
//! however large the output grows. Publishing the staged object is [`crate::engine::commit`]'s job.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use object_store::buffered::BufWriter;
use tokio::io::AsyncWriteExt;

use crate::engine::float_text::FloatText;
use crate::engine::infer::output_type;
use crate::engine::model::OutputSpec;
use crate::engine::preprocess::DecodedFile;
use crate::engine::settings::OutputFormat;

/// Numbers as text: the shortest form that reads back to the same value (exponent notation
/// for very small or large magnitudes). Non-finite values are `NaN`, `Infinity` and
/// `-Infinity`, in a CSV cell and inside its JSON arrays and objects alike: Python's `float()`,
/// `json.loads` and pandas' `read_csv` read these back (a JSON `null` would be a missing value,
/// which NaN is not). In Parquet they are the IEEE values themselves.
pub trait JsonNumber {
    fn json(&self) -> String;
    fn text(&self) -> String;
}

macro_rules! float_text {
    ($t:ty) => {
        impl JsonNumber for $t {
            fn json(&self) -> String {
                self.text()
            }
            fn text(&self) -> String {
                FloatText::text(*self)
            }
        }
    };
}
float_text!(f32);
float_text!(f64);

/// The columns of the output, fixed once per job.
#[derive(Debug, Clone)]
pub struct OutputLayout {
    pub row_numbers: bool,
    pub passthrough: Vec<String>,
    /// The type each pass-through column is written as, when fixed for the whole job (Parquet
    /// output; see [`unify`]); `None`: as each file stores it.
    pub pass_types: Vec<Option<DataType>>,
    pub outputs: Vec<(String, DataType)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("{0}")]
    Shape(String),
    #[error("cannot write the predictions: {0}")]
    Write(String),
}

/// The `file` column: each file's name, once per row of it, laid out directly (a builder would
/// copy and check each of millions of names one by one).
fn file_names(files: &[(&str, &DecodedFile)]) -> Result<StringArray, CollectError> {
    let rows: usize = files.iter().map(|(_, d)| d.rows).sum();
    let bytes: usize = files.iter().map(|(name, d)| name.len() * d.rows).sum();
    if i32::try_from(bytes).is_err() {
        return Err(CollectError::Shape(format!(
            "the file names of this mini-batch's {rows} rows take {bytes} bytes, more than an output column holds \
             (2 GiB); use a smaller mini_batch_size"
        )));
    }
    let mut values = Vec::with_capacity(bytes);
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0i32);
    for (name, d) in files {
        for _ in 0..d.rows {
            values.extend_from_slice(name.as_bytes());
            offsets.push(values.len() as i32);
        }
    }
    let offsets = arrow::buffer::OffsetBuffer::new(offsets.into());
    Ok(StringArray::new(offsets, values.into(), None))
}

impl OutputLayout {
    pub fn new(row_numbers: bool, passthrough: Vec<String>, outputs: &[OutputSpec]) -> OutputLayout {
        OutputLayout {
            row_numbers,
            pass_types: vec![None; passthrough.len()],
            passthrough,
            outputs: outputs.iter().map(|o| (o.name().to_string(), output_type(o))).collect(),
        }
    }

    /// Names that would appear twice in the output header, if any.
    pub fn clash(&self) -> Option<String> {
        let mut names: Vec<&str> = vec!["file"];
        if self.row_numbers {
            names.push("row");
        }
        names.extend(self.passthrough.iter().map(String::as_str));
        names.extend(self.outputs.iter().map(|(n, _)| n.as_str()));
        names.iter().enumerate().find(|(i, n)| names[..*i].contains(n)).map(|(_, n)| n.to_string())
    }

    /// Builds the output rows of several files from their decoded rows and the model outputs
    /// (one column per output, covering the files' rows in order).
    pub fn rows(&self, files: &[(&str, &DecodedFile)], outputs: &[ArrayRef]) -> Result<RecordBatch, CollectError> {
        let total: usize = files.iter().map(|(_, d)| d.rows).sum();
        let mut fields = vec![Field::new("file", DataType::Utf8, false)];
        let mut columns: Vec<ArrayRef> = Vec::new();
        columns.push(Arc::new(file_names(files)?));
        if self.row_numbers {
            fields.push(Field::new("row", DataType::UInt64, false));
            let rows: UInt64Array =
                files.iter().flat_map(|(_, d)| d.row_numbers.as_deref().unwrap_or(&[]).iter().copied()).collect();
            columns.push(Arc::new(rows));
        }
        for (p, name) in self.passthrough.iter().enumerate() {
            let parts: Vec<&ArrayRef> = files.iter().map(|(_, d)| &d.passthrough[p]).collect();
            let same = parts.windows(2).all(|w| w[0].data_type() == w[1].data_type());
            // The job's type for the column, else (files that type it differently) text.
            let target = match &self.pass_types[p] {
                Some(t) => Some(t.clone()),
                None if !same => Some(DataType::Utf8),
                None => None,
            };
            let parts: Vec<ArrayRef> = parts
                .into_iter()
                .map(|a| match &target {
                    Some(t) if a.data_type() != t => {
                        let opts = arrow::compute::CastOptions { safe: false, ..Default::default() };
                        arrow::compute::cast_with_options(a, t, &opts).map_err(|e| {
                            CollectError::Shape(format!(
                                "pass-through column {:?} of type {} cannot be written as {t}, the type other files \
                                 give it: {e}",
                                crate::text::excerpt(name),
                                a.data_type()
                            ))
                        })
                    }
                    _ => Ok(a.clone()),
                })
                .collect::<Result<_, _>>()?;
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            let joined = if refs.is_empty() {
                arrow::array::new_empty_array(&DataType::Utf8)
            } else {
                arrow::compute::concat(&refs).map_err(|e| CollectError::Shape(e.to_string()))?
            };
            fields.push(Field::new(name, joined.data_type().clone(), true));
            columns.push(joined);
        }
        for ((name, _), col) in self.outputs.iter().zip(outputs) {
            if col.len() != total {
                return Err(CollectError::Shape(format!("output {name:?} has {} values for {total} rows", col.len())));
            }
            fields.push(Field::new(name, col.data_type().clone(), true));
            columns.push(col.clone());
        }
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| CollectError::Shape(e.to_string()))
    }
}

/// The one type a pass-through column takes in a Parquet output when files store it as `a` and
/// `b`: the same type; the wider of two integers or floats (a float for small integers and
/// floats); a decimal wide enough for both; the finer unit of two timestamps in the same zone;
/// the values' type for dictionaries; otherwise text, each value as its own type writes it.
/// Every conversion is lossless, so a good file never fails because another typed the column
/// differently.
pub fn unify(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    let int_bits = |t: &DataType| match t {
        Int8 | UInt8 => Some(8),
        Int16 | UInt16 => Some(16),
        Int32 | UInt32 => Some(32),
        Int64 | UInt64 => Some(64),
        _ => None,
    };
    let signed = |t: &DataType| matches!(t, Int8 | Int16 | Int32 | Int64);
    let signed_of = |bits: u32| match bits {
        8 => Int8,
        16 => Int16,
        32 => Int32,
        _ => Int64,
    };
    let unsigned_of = |bits: u32| match bits {
        8 => UInt8,
        16 => UInt16,
        32 => UInt32,
        _ => UInt64,
    };
    let is_text = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let decimal = |t: &DataType| match t {
        Decimal128(p, s) => Some((i16::from(*p), i16::from(*s))),
        t if signed(t) || int_bits(t).is_some_and(|b| b < 64) => Some((20, 0)),
        _ => None,
    };
    if a == b {
        return a.clone();
    }
    match (a, b) {
        (Null, x) | (x, Null) => x.clone(),
        (Dictionary(_, v), x) | (x, Dictionary(_, v)) => unify(v, x),
        (x, y) if is_text(x) && is_text(y) => Utf8,
        (x, y) if int_bits(x).is_some() && int_bits(y).is_some() => {
            let (bx, by) = (int_bits(x).expect("int"), int_bits(y).expect("int"));
            match (signed(x), signed(y)) {
                (true, true) => signed_of(bx.max(by)),
                (false, false) => unsigned_of(bx.max(by)),
                _ => {
                    // A signed type that holds the unsigned one, if there is one.
                    let (sb, ub) = if signed(x) { (bx, by) } else { (by, bx) };
                    if ub < 64 { signed_of(sb.max(ub * 2)) } else { Utf8 }
                }
            }
        }
        (Float16 | Float32 | Float64, Float16 | Float32 | Float64) => {
            if matches!((a, b), (Float64, _) | (_, Float64)) {
                Float64
            } else {
                Float32
            }
        }
        (Float16 | Float32 | Float64, x) | (x, Float16 | Float32 | Float64) if int_bits(x).is_some_and(|b| b <= 32) => {
            Float64
        }
        (Decimal128(..), _) | (_, Decimal128(..)) => match (decimal(a), decimal(b)) {
            (Some((pa, sa)), Some((pb, sb))) => {
                let scale = sa.max(sb);
                let digits = (pa - sa).max(pb - sb) + scale;
                if digits <= 38 { Decimal128(digits as u8, scale as i8) } else { Utf8 }
            }
            _ => Utf8,
        },
        (Timestamp(ua, za), Timestamp(ub, zb)) if za == zb => {
            let rank = |u: &arrow::datatypes::TimeUnit| *u as u8;
            Timestamp(if rank(ua) >= rank(ub) { *ua } else { *ub }, za.clone())
        }
        _ => Utf8,
    }
}

/// A predictions file being written (to a staging object).
pub enum PredictionWriter {
    Csv { upload: BufWriter, schema: Option<SchemaRef> },
    Parquet(crate::engine::parquet_out::ParquetOut),
}

impl PredictionWriter {
    pub fn new(format: OutputFormat, upload: BufWriter) -> PredictionWriter {
        match format {
            OutputFormat::Csv => PredictionWriter::Csv { upload, schema: None },
            OutputFormat::Parquet => PredictionWriter::Parquet(crate::engine::parquet_out::ParquetOut::new(upload)),
        }
    }

    /// Appends rows. The first batch fixes the schema; later batches are cast to it.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), CollectError> {
        let werr = |e: &dyn std::fmt::Display| CollectError::Write(e.to_string());
        match self {
            PredictionWriter::Csv { upload, schema } => {
                let (text, header_len) = csv_bytes(batch, 0);
                let body = if schema.is_some() { &text[header_len..] } else { &text[..] };
                schema.get_or_insert_with(|| batch.schema());
                upload.write_all(body).await.map_err(|e| werr(&e))
            }
            PredictionWriter::Parquet(out) => out.write(batch).await.map_err(|e| werr(&e)),
        }
    }

    /// Appends a part's rows already encoded as Parquet ([`crate::engine::parquet_out`]).
    pub async fn splice_parquet(&mut self, part: bytes::Bytes) -> Result<(), CollectError> {
        match self {
            PredictionWriter::Parquet(out) => out.splice(part).await.map_err(|e| CollectError::Write(e.to_string())),
            PredictionWriter::Csv { .. } => {
                Err(CollectError::Write("Parquet rows for a CSV output (an internal error; please report it)".into()))
            }
        }
    }

    /// Appends rows already encoded by [`csv_bytes`] (a part's): their header line (`header_len`
    /// bytes) only if none was written yet. The bytes go to the upload as they are, uncopied.
    pub async fn write_encoded_csv(&mut self, bytes: bytes::Bytes, header_len: usize) -> Result<(), CollectError> {
        let werr = |e: &dyn std::fmt::Display| CollectError::Write(e.to_string());
        match self {
            PredictionWriter::Csv { upload, schema } => {
                let body = if schema.is_some() { bytes.slice(header_len.min(bytes.len())..) } else { bytes };
                schema.get_or_insert_with(|| Arc::new(Schema::empty()));
                upload.put(body).await.map_err(|e| werr(&e))
            }
            PredictionWriter::Parquet(_) => {
                Err(CollectError::Write("CSV rows for a Parquet output (an internal error; please report it)".into()))
            }
        }
    }

    /// Completes the upload. Returns false when nothing was ever written.
    pub async fn finish(self) -> Result<bool, CollectError> {
        let werr = |e: &dyn std::fmt::Display| CollectError::Write(e.to_string());
        match self {
            PredictionWriter::Csv { mut upload, schema } => {
                if schema.is_none() {
                    upload.abort().await.map_err(|e| werr(&e))?;
                    return Ok(false);
                }
                upload.shutdown().await.map_err(|e| werr(&e))?;
                Ok(true)
            }
            PredictionWriter::Parquet(out) => out.finish().await.map_err(|e| werr(&e)),
        }
    }

    /// Abandons the upload.
    pub async fn abort(self) {
        match self {
            PredictionWriter::Csv { mut upload, .. } => {
                let _ = upload.abort().await;
            }
            PredictionWriter::Parquet(out) => out.abort().await,
        }
    }
}

/// `batch` as CSV, its header line first, after `room` zero bytes kept free for what goes in
/// front of it (a part's head): the bytes and the header's length. A mini-batch's rows are
/// encoded once, where they are scored; the output is these bytes, one header kept.
pub fn csv_bytes(batch: &RecordBatch, room: usize) -> (Vec<u8>, usize) {
    let mut buf = Vec::with_capacity(room + batch.num_rows() * 64);
    buf.resize(room, 0);
    crate::engine::csv_out::write_header(batch.schema().fields().iter().map(|f| f.name().as_str()), &mut buf);
    let header_len = buf.len() - room;
    crate::engine::csv_out::write_rows(batch, &mut buf);
    (buf, header_len)
}

/// Casts `batch` to `schema` (same column names), for pass-through columns typed differently.
pub(crate) fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, arrow::error::ArrowError> {
    if batch.schema().fields() == schema.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast_with_options(
                    c,
                    f.data_type(),
                    &arrow::compute::CastOptions { safe: false, ..Default::default() },
                )
                .map_err(|e| {
                    arrow::error::ArrowError::CastError(format!(
                        "column {:?}: {e}; earlier files gave it type {}",
                        f.name(),
                        f.data_type()
                    ))
                })
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns)
}

/// Writes value `i` of `a` as CSV text (or as a JSON value when `json`).
pub fn format_cell(a: &ArrayRef, i: usize, out: &mut String, json: bool) {
    use std::fmt::Write;
    if a.is_null(i) {
        if json {
            out.push_str("null");
        }
        return;
    }
    macro_rules! prim {
        ($t:ty) => {{
            let v = a.as_primitive::<$t>().value(i);
            let _ = write!(out, "{v}");
        }};
    }
    match a.data_type() {
        DataType::Utf8 => {
            let v = a.as_string::<i32>().value(i);
            if json {
                out.push_str(&serde_json::to_string(v).expect("string"));
            } else {
                out.push_str(v);
            }
        }
        DataType::LargeUtf8 | DataType::Utf8View => {
            let v = match a.data_type() {
                DataType::LargeUtf8 => a.as_string::<i64>().value(i),
                _ => a.as_string_view().value(i),
            };
            if json {
                out.push_str(&serde_json::to_string(v).expect("string"));
            } else {
                out.push_str(v);
            }
        }
        DataType::Float32 => {
            let v = a.as_primitive::<arrow::datatypes::Float32Type>().value(i);
            out.push_str(&if json { v.json() } else { v.text() });
        }
        DataType::Float64 => {
            let v = a.as_primitive::<arrow::datatypes::Float64Type>().value(i);
            out.push_str(&if json { v.json() } else { v.text() });
        }
        DataType::Int64 => prim!(arrow::datatypes::Int64Type),
        DataType::Int32 => prim!(arrow::datatypes::Int32Type),
        DataType::Int16 => prim!(arrow::datatypes::Int16Type),
        DataType::Int8 => prim!(arrow::datatypes::Int8Type),
        DataType::UInt64 => prim!(arrow::datatypes::UInt64Type),
        DataType::UInt32 => prim!(arrow::datatypes::UInt32Type),
        DataType::UInt16 => prim!(arrow::datatypes::UInt16Type),
        DataType::UInt8 => prim!(arrow::datatypes::UInt8Type),
        DataType::Boolean => {
            let _ = write!(out, "{}", a.as_boolean().value(i));
        }
        DataType::List(_) => {
            let list = a.as_list::<i32>();
            let values = list.value(i);
            out.push('[');
            for j in 0..values.len() {
                if j > 0 {
                    out.push(',');
                }
                format_cell(&values, j, out, true);
            }
            out.push(']');
        }
        _ => {
            // Decimals, dates, timestamps (with their zone), dictionaries, ...: Arrow's text.
            let v = arrow::util::display::array_value_to_string(a, i)
                .unwrap_or_else(|e| format!("#unprintable {}: {e}", a.data_type()));
            if json {
                out.push_str(&serde_json::to_string(&v).expect("string"));
            } else {
                out.push_str(&v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float32Array, ListArray};
    use arrow::datatypes::Float32Type;

    #[test]
    fn the_file_column_names_each_row_by_its_file_in_order() {
        let d = |rows| DecodedFile { rows, ..Default::default() };
        let (a, b, c) = (d(3), d(0), d(2));
        let files = [("a.parquet", &a), ("empty.csv", &b), ("sub/ü.csv", &c)];
        let names = file_names(&files).unwrap();
        let got: Vec<&str> = names.iter().map(Option::unwrap).collect();
        assert_eq!(got, ["a.parquet", "a.parquet", "a.parquet", "sub/ü.csv", "sub/ü.csv"]);
        assert_eq!(names.null_count(), 0);
        assert!(file_names(&[]).unwrap().is_empty());
    }

    #[test]
    fn types_unify_without_loss() {
        use arrow::datatypes::TimeUnit::*;
        let ts = |u, z: Option<&str>| DataType::Timestamp(u, z.map(Into::into));
        let dict = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
        for (a, b, want) in [
            (DataType::Int32, DataType::Int64, DataType::Int64),
            (DataType::Int64, DataType::Utf8, DataType::Utf8),
            (DataType::UInt32, DataType::Int8, DataType::Int64),
            (DataType::UInt64, DataType::Int64, DataType::Utf8),
            (DataType::Float32, DataType::Int32, DataType::Float64),
            (DataType::Float64, DataType::Int64, DataType::Utf8),
            (dict.clone(), DataType::Utf8, DataType::Utf8),
            (dict.clone(), dict.clone(), dict.clone()),
            (DataType::Decimal128(10, 2), DataType::Decimal128(12, 3), DataType::Decimal128(12, 3)),
            (DataType::Decimal128(10, 2), DataType::Int64, DataType::Decimal128(22, 2)),
            (ts(Nanosecond, Some("UTC")), ts(Microsecond, Some("UTC")), ts(Nanosecond, Some("UTC"))),
            (ts(Millisecond, Some("Europe/Berlin")), ts(Millisecond, Some("+05:30")), DataType::Utf8),
            (DataType::Null, DataType::Date32, DataType::Date32),
        ] {
            assert_eq!(unify(&a, &b), want, "{a} + {b}");
            assert_eq!(unify(&b, &a), want, "{b} + {a}");
        }
    }

    #[test]
    fn cells_round_trip_and_lists_are_json() {
        let f: ArrayRef = Arc::new(Float32Array::from(vec![Some(0.1), Some(f32::NAN), None]));
        let mut s = String::new();
        format_cell(&f, 0, &mut s, false);
        assert_eq!(s, "0.1");
        let l: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(vec![Some(vec![
            Some(0.25),
            Some(f32::NAN),
            Some(1e-7),
        ])]));
        s.clear();
        format_cell(&l, 0, &mut s, false);
        assert_eq!(s, "[0.25,NaN,1e-7]");
        s.clear();
        format_cell(&f, 1, &mut s, false);
        assert_eq!(s, "NaN");
        assert_eq!((f64::INFINITY.text(), f32::NEG_INFINITY.json()), ("Infinity".into(), "-Infinity".into()));
        s.clear();
        format_cell(&f, 2, &mut s, false);
        assert_eq!(s, "");
    }
}
