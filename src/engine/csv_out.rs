//! Output rows as CSV text, column by column: each column's type is looked at once per batch,
//! numbers are formatted straight into the output buffer, and lists of numbers are read from
//! their values in place, so that a row costs its bytes and little else. The text is exactly
//! what the `csv` crate writes for the cells [`format_cell`] makes (quoted only when a cell holds
//! a comma, a quote or a line break, quotes doubled); the tests hold the two side by side.

use arrow::array::{Array, ArrayRef, AsArray, GenericListArray, PrimitiveArray, RecordBatch};
use arrow::datatypes::{self as t, ArrowPrimitiveType, DataType};

use super::collect::format_cell;
use super::float_text::FloatText;

/// Appends `batch`'s rows to `out`, a line each, ending in `\n` as the `csv` crate's writer
/// does by default.
pub fn write_rows(batch: &RecordBatch, out: &mut Vec<u8>) {
    let columns: Vec<Column> = batch.columns().iter().map(Column::new).collect();
    let mut cell = String::new();
    for r in 0..batch.num_rows() {
        if columns.len() == 1 && columns[0].is_empty_at(r) {
            // A record of one empty field is written `""`, so that it is not an empty line.
            out.extend_from_slice(b"\"\"\n");
            continue;
        }
        for (c, col) in columns.iter().enumerate() {
            if c > 0 {
                out.push(b',');
            }
            col.write(r, out, &mut cell);
        }
        out.push(b'\n');
    }
}

/// Appends a header line of `names`.
pub fn write_header<'a>(names: impl Iterator<Item = &'a str>, out: &mut Vec<u8>) {
    let names: Vec<&str> = names.collect();
    if names.len() == 1 && names[0].is_empty() {
        out.extend_from_slice(b"\"\"\n");
        return;
    }
    for (i, n) in names.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        quoted(n.as_bytes(), out);
    }
    out.push(b'\n');
}

/// One column, its type looked at once.
enum Column<'a> {
    F32(&'a PrimitiveArray<t::Float32Type>),
    F64(&'a PrimitiveArray<t::Float64Type>),
    Int(&'a ArrayRef, fn(&ArrayRef, usize, &mut Vec<u8>)),
    Utf8(&'a arrow::array::StringArray),
    /// A list of 32- or 64-bit floats: `[v,v,...]`, quoted when it holds two values or more.
    FloatList(&'a GenericListArray<i32>, FloatValues<'a>),
    /// Anything else, through [`format_cell`].
    Other(&'a ArrayRef),
}

enum FloatValues<'a> {
    F32(&'a PrimitiveArray<t::Float32Type>),
    F64(&'a PrimitiveArray<t::Float64Type>),
}

impl<'a> Column<'a> {
    fn new(a: &'a ArrayRef) -> Column<'a> {
        match a.data_type() {
            DataType::Float32 => Column::F32(a.as_primitive()),
            DataType::Float64 => Column::F64(a.as_primitive()),
            DataType::Int8 => Column::Int(a, int::<t::Int8Type>),
            DataType::Int16 => Column::Int(a, int::<t::Int16Type>),
            DataType::Int32 => Column::Int(a, int::<t::Int32Type>),
            DataType::Int64 => Column::Int(a, int::<t::Int64Type>),
            DataType::UInt8 => Column::Int(a, int::<t::UInt8Type>),
            DataType::UInt16 => Column::Int(a, int::<t::UInt16Type>),
            DataType::UInt32 => Column::Int(a, int::<t::UInt32Type>),
            DataType::UInt64 => Column::Int(a, int::<t::UInt64Type>),
            DataType::Utf8 => Column::Utf8(a.as_string()),
            DataType::List(f) if f.data_type() == &DataType::Float32 => {
                let l = a.as_list::<i32>();
                Column::FloatList(l, FloatValues::F32(l.values().as_primitive()))
            }
            DataType::List(f) if f.data_type() == &DataType::Float64 => {
                let l = a.as_list::<i32>();
                Column::FloatList(l, FloatValues::F64(l.values().as_primitive()))
            }
            _ => Column::Other(a),
        }
    }

    fn array(&self) -> &dyn Array {
        match self {
            Column::F32(a) => *a,
            Column::F64(a) => *a,
            Column::Int(a, _) | Column::Other(a) => a.as_ref(),
            Column::Utf8(a) => *a,
            Column::FloatList(a, _) => *a,
        }
    }

    /// Whether row `r`'s cell is empty text (a null, or an empty string).
    fn is_empty_at(&self, r: usize) -> bool {
        let mut cell = String::new();
        let mut out = Vec::new();
        self.write(r, &mut out, &mut cell);
        out.is_empty()
    }

    fn write(&self, r: usize, out: &mut Vec<u8>, cell: &mut String) {
        if self.array().is_null(r) {
            return;
        }
        match self {
            Column::F32(a) => a.value(r).write_text(out),
            Column::F64(a) => a.value(r).write_text(out),
            Column::Int(a, f) => f(a, r, out),
            Column::Utf8(a) => quoted(a.value(r).as_bytes(), out),
            Column::FloatList(l, values) => {
                let (start, end) = (l.value_offsets()[r] as usize, l.value_offsets()[r + 1] as usize);
                // Quoted when it holds a comma: two values or more.
                let quote = end - start > 1;
                if quote {
                    out.push(b'"');
                }
                out.push(b'[');
                for j in start..end {
                    if j > start {
                        out.push(b',');
                    }
                    match values {
                        FloatValues::F32(v) if v.is_null(j) => out.extend_from_slice(b"null"),
                        FloatValues::F64(v) if v.is_null(j) => out.extend_from_slice(b"null"),
                        FloatValues::F32(v) => v.value(j).write_text(out),
                        FloatValues::F64(v) => v.value(j).write_text(out),
                    }
                }
                out.push(b']');
                if quote {
                    out.push(b'"');
                }
            }
            Column::Other(a) => {
                cell.clear();
                format_cell(a, r, cell, false);
                quoted(cell.as_bytes(), out);
            }
        }
    }
}

fn int<T: ArrowPrimitiveType>(a: &ArrayRef, r: usize, out: &mut Vec<u8>)
where
    T::Native: itoa::Integer,
{
    out.extend_from_slice(itoa::Buffer::new().format(a.as_primitive::<T>().value(r)).as_bytes());
}

/// Appends `cell`, quoted (its quotes doubled) when it holds a comma, a quote or a line break.
fn quoted(cell: &[u8], out: &mut Vec<u8>) {
    if !cell.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.extend_from_slice(cell);
        return;
    }
    out.push(b'"');
    for &b in cell {
        if b == b'"' {
            out.push(b'"');
        }
        out.push(b);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::*;
    use arrow::datatypes::{Field, Float32Type, Float64Type, Schema};

    use super::*;

    /// What the `csv` crate writes for [`format_cell`]'s cells: the reference.
    fn reference(batch: &RecordBatch) -> Vec<u8> {
        let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        w.write_record(batch.schema().fields().iter().map(|f| f.name().as_str())).unwrap();
        let mut cell = String::new();
        for r in 0..batch.num_rows() {
            let mut record = csv::StringRecord::new();
            for col in batch.columns() {
                cell.clear();
                format_cell(col, r, &mut cell, false);
                record.push_field(&cell);
            }
            w.write_record(&record).unwrap();
        }
        w.into_inner().unwrap()
    }

    fn fast(batch: &RecordBatch) -> Vec<u8> {
        let mut out = Vec::new();
        write_header(batch.schema().fields().iter().map(|f| f.name().as_str()), &mut out);
        write_rows(batch, &mut out);
        out
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        let fields: Vec<Field> = columns.iter().map(|(n, a)| Field::new(*n, a.data_type().clone(), true)).collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, a)| a).collect()).unwrap()
    }

    #[test]
    fn the_text_is_the_csv_crates_for_every_kind_of_cell() {
        let floats = [0.1, -2.5, 1e-7, 123456789.0, 1e15, 1e-4, 0.0, -0.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
        let n = floats.len();
        let f64s: ArrayRef =
            Arc::new(Float64Array::from_iter(floats.iter().enumerate().map(|(i, v)| (i != 3).then_some(*v))));
        let f32s: ArrayRef = Arc::new(Float32Array::from_iter(floats.iter().map(|v| Some(*v as f32))));
        let ints: ArrayRef = Arc::new(Int64Array::from_iter((0..n as i64).map(|i| (i != 2).then_some(i * -7919))));
        let u8s: ArrayRef = Arc::new(UInt8Array::from_iter_values((0..n as u8).map(|i| i * 23)));
        let texts = ["plain", "a,b", "say \"hi\"", "two\nlines", "cr\r", "", "ünïcödé", "x", "", "\"", ","];
        let strs: ArrayRef =
            Arc::new(StringArray::from_iter(texts.iter().enumerate().map(|(i, s)| (i != 8).then_some(*s))));
        let list32: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Float32Type, _, _>(
            (0..n).map(|i| (i != 4).then(|| vec![Some(0.25), (i % 3 != 0).then_some(f32::NAN), Some(1e-7 * i as f32)])),
        ));
        let list64: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Float64Type, _, _>(
            (0..n).map(|i| Some(vec![Some(i as f64 / 3.0); i % 4])),
        ));
        let dates: ArrayRef = Arc::new(Date32Array::from_iter((0..n as i32).map(|i| Some(i * 1000))));
        let bools: ArrayRef = Arc::new(BooleanArray::from_iter((0..n).map(|i| (i != 1).then_some(i % 2 == 0))));
        let names = ["f64", "f32", "i64", "u8", "text, quoted", "list32", "list64", "date", "bool"];
        let b =
            batch(names.into_iter().zip([f64s, f32s, ints, u8s, strs.clone(), list32, list64, dates, bools]).collect());
        assert_eq!(String::from_utf8(fast(&b)).unwrap(), String::from_utf8(reference(&b)).unwrap());
        // One column: an empty cell is written "" so that the line is not empty.
        let one = batch(vec![("", strs)]);
        assert_eq!(String::from_utf8(fast(&one)).unwrap(), String::from_utf8(reference(&one)).unwrap());
    }
}
