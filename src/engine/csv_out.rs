//! Output rows as CSV text, column by column: each column's type, its nulls and whether its text
//! needs quotes are looked at once per batch, numbers are formatted straight into the output
//! buffer, and lists of numbers are read from their values in place, so that a row costs its
//! bytes and little else. The text is exactly what the `csv` crate writes for the cells
//! [`format_cell`] makes (quoted only when a cell holds a comma, a quote or a line break, quotes
//! doubled); the tests hold the two side by side.

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

/// One column, its type, its nulls and (for text) whether any cell needs quoting looked at
/// once, so that a cell costs only its own bytes.
struct Column<'a> {
    nulls: Option<&'a arrow::buffer::NullBuffer>,
    values: Values<'a>,
}

enum Values<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
    I64(&'a [i64]),
    U64(&'a [u64]),
    /// Narrower integers, widened per cell.
    Int(&'a ArrayRef, fn(&ArrayRef, usize) -> i64),
    /// Text; `plain` when no cell holds a comma, a quote or a line break.
    Utf8(&'a arrow::array::StringArray, bool),
    /// A list of 32- or 64-bit floats: `[v,v,...]`, quoted when it holds two values or more.
    FloatList(&'a GenericListArray<i32>, FloatValues<'a>),
    /// Anything else, through [`format_cell`].
    Other(&'a ArrayRef),
}

enum FloatValues<'a> {
    F32(&'a PrimitiveArray<t::Float32Type>),
    F64(&'a PrimitiveArray<t::Float64Type>),
}

fn widen<T: ArrowPrimitiveType>(a: &ArrayRef, r: usize) -> i64
where
    T::Native: Into<i64>,
{
    a.as_primitive::<T>().value(r).into()
}

impl<'a> Column<'a> {
    fn new(a: &'a ArrayRef) -> Column<'a> {
        let values = match a.data_type() {
            DataType::Float32 => Values::F32(a.as_primitive::<t::Float32Type>().values()),
            DataType::Float64 => Values::F64(a.as_primitive::<t::Float64Type>().values()),
            DataType::Int64 => Values::I64(a.as_primitive::<t::Int64Type>().values()),
            DataType::UInt64 => Values::U64(a.as_primitive::<t::UInt64Type>().values()),
            DataType::Int8 => Values::Int(a, widen::<t::Int8Type>),
            DataType::Int16 => Values::Int(a, widen::<t::Int16Type>),
            DataType::Int32 => Values::Int(a, widen::<t::Int32Type>),
            DataType::UInt8 => Values::Int(a, widen::<t::UInt8Type>),
            DataType::UInt16 => Values::Int(a, widen::<t::UInt16Type>),
            DataType::UInt32 => Values::Int(a, widen::<t::UInt32Type>),
            DataType::Utf8 => {
                let s = a.as_string::<i32>();
                let offsets = s.value_offsets();
                let used = &s.value_data()[offsets[0] as usize..offsets[offsets.len() - 1] as usize];
                Values::Utf8(s, !needs_quotes(used))
            }
            DataType::List(f) if f.data_type() == &DataType::Float32 => {
                let l = a.as_list::<i32>();
                Values::FloatList(l, FloatValues::F32(l.values().as_primitive()))
            }
            DataType::List(f) if f.data_type() == &DataType::Float64 => {
                let l = a.as_list::<i32>();
                Values::FloatList(l, FloatValues::F64(l.values().as_primitive()))
            }
            _ => Values::Other(a),
        };
        Column { nulls: a.nulls().filter(|n| n.null_count() > 0), values }
    }

    /// Whether row `r`'s cell is empty text (a null, or an empty string).
    fn is_empty_at(&self, r: usize) -> bool {
        let mut cell = String::new();
        let mut out = Vec::new();
        self.write(r, &mut out, &mut cell);
        out.is_empty()
    }

    fn write(&self, r: usize, out: &mut Vec<u8>, cell: &mut String) {
        if self.nulls.is_some_and(|n| n.is_null(r)) {
            return;
        }
        match &self.values {
            Values::F32(v) => v[r].write_text(out),
            Values::F64(v) => v[r].write_text(out),
            Values::I64(v) => out.extend_from_slice(itoa::Buffer::new().format(v[r]).as_bytes()),
            Values::U64(v) => out.extend_from_slice(itoa::Buffer::new().format(v[r]).as_bytes()),
            Values::Int(a, f) => out.extend_from_slice(itoa::Buffer::new().format(f(a, r)).as_bytes()),
            Values::Utf8(a, true) => out.extend_from_slice(a.value(r).as_bytes()),
            Values::Utf8(a, false) => quoted(a.value(r).as_bytes(), out),
            Values::FloatList(l, values) => {
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
            Values::Other(a) => {
                cell.clear();
                format_cell(a, r, cell, false);
                quoted(cell.as_bytes(), out);
            }
        }
    }
}

/// Whether text holds a comma, a quote or a line break (and so is quoted in CSV).
fn needs_quotes(text: &[u8]) -> bool {
    text.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
}

/// Appends `cell`, quoted (its quotes doubled) when it holds a comma, a quote or a line break.
fn quoted(cell: &[u8], out: &mut Vec<u8>) {
    if !needs_quotes(cell) {
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

    #[test]
    fn plain_text_integers_of_every_width_and_slices_match_the_csv_crate() {
        let n = 7usize;
        let plain: ArrayRef = Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("part-{i:04}.parquet"))));
        let ints: Vec<(&str, ArrayRef)> = vec![
            ("i8", Arc::new(Int8Array::from_iter_values((0..n as i8).map(|i| i * -18)))),
            ("i16", Arc::new(Int16Array::from_iter((0..n as i16).map(|i| (i != 3).then_some(i * -4000))))),
            ("i32", Arc::new(Int32Array::from_iter_values((0..n as i32).map(|i| i32::MIN + i)))),
            ("u16", Arc::new(UInt16Array::from_iter_values((0..n as u16).map(|i| u16::MAX - i)))),
            ("u32", Arc::new(UInt32Array::from_iter_values((0..n as u32).map(|i| u32::MAX - i)))),
            ("u64", Arc::new(UInt64Array::from_iter((0..n as u64).map(|i| (i != 5).then_some(u64::MAX - i))))),
            ("i64", Arc::new(Int64Array::from_iter_values((0..n as i64).map(|i| i64::MIN + i)))),
        ];
        let mut columns = vec![("file", plain)];
        columns.extend(ints);
        let b = batch(columns);
        assert_eq!(String::from_utf8(fast(&b)).unwrap(), String::from_utf8(reference(&b)).unwrap());
        // Text whose commas lie only outside a slice, or only inside it: whether a cell needs
        // quotes is judged on the slice's own text.
        let texts: ArrayRef = Arc::new(StringArray::from(vec!["a,b", "plain", "also plain", "c\"d", "e"]));
        for (offset, len) in [(1, 2), (0, 2), (2, 2), (1, 4)] {
            let b = batch(vec![("t", texts.slice(offset, len)), ("n", Arc::new(Int64Array::from(vec![1i64; len])))]);
            assert_eq!(
                String::from_utf8(fast(&b)).unwrap(),
                String::from_utf8(reference(&b)).unwrap(),
                "slice {offset}+{len}"
            );
        }
    }
}
