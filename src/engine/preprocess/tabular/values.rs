//! Values into features and pass-through columns, with one policy for every input format.
//!
//! **Features** are converted to the model input's element type. A value that is missing (an
//! empty cell, a pandas NA marker such as `NA`, `N/A`, `null`, `None`, `<NA>`, `#N/A`; a JSON
//! null; a Parquet null), not a number (`abc`), or not finite (`NaN`, `nan`, `inf`, `-Infinity`,
//! `1e309`, a float32 overflow such as `1e39`; NaN and infinite floats in Parquet) fails its row,
//! naming the column and the value. `--allow-non-finite` feeds non-finite values through (models
//! such as LightGBM and XGBoost read NaN as missing), `--missing-as-nan` feeds missing ones to
//! float inputs as NaN. Text parses as float64 first, then narrows, as pandas' and pyarrow's
//! readers followed by `astype(float32)` do; a decimal comma is read with `--decimal-mark ,`.
//!
//! **Pass-through columns** are copied as stored: CSV and JSON text as written (leading zeros,
//! integers beyond int64 and decimals keep their digits), Parquet values in their own Arrow type
//! (decimals, dictionaries, timestamps with their time zone). When the user asks for a type
//! (`--passthrough id:int64`) the values are converted, and a value that does not convert fails
//! its row.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, PrimitiveArray, StringArray};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{ArrowPrimitiveType, DataType, Float32Type, Float64Type, Int32Type, Int64Type, UInt8Type};

use crate::engine::model::ElemType;
use crate::engine::settings::{PassType, TabularOptions};
use crate::text::excerpt;

/// Rows of one column that cannot be used: (index in the batch, reason).
pub(super) type BadRows = Vec<(usize, String)>;

/// What is wrong with one value.
enum Bad {
    Missing,
    NonFinite,
    Invalid,
}

/// Text pandas reads as missing (besides the empty string and NaN spellings).
fn is_na_marker(t: &str) -> bool {
    matches!(
        t,
        "NA" | "N/A"
            | "n/a"
            | "NULL"
            | "null"
            | "None"
            | "<NA>"
            | "#N/A"
            | "#N/A N/A"
            | "#NA"
            | "-1.#IND"
            | "1.#IND"
            | "-1.#QNAN"
            | "1.#QNAN"
            | "nil"
    )
}

/// Parses a float the way the policy reads it: `Ok` for a finite number, or a non-finite one
/// (`NaN`, `inf`, `1e309`).
fn parse_float(raw: &str, decimal_comma: bool) -> Result<f64, Bad> {
    let t = raw.trim();
    if t.is_empty() || is_na_marker(t) {
        return Err(Bad::Missing);
    }
    let owned;
    let t = if decimal_comma && t.contains(',') {
        if t.contains('.') {
            return Err(Bad::Invalid);
        }
        owned = t.replace(',', ".");
        owned.as_str()
    } else {
        t
    };
    // Rust reads "inf", "infinity" and "nan" in any case; pandas also writes "-nan".
    t.parse::<f64>().map_err(|_| Bad::Invalid)
}

fn parse_int(raw: &str) -> Result<i64, Bad> {
    let t = raw.trim();
    if t.is_empty() || is_na_marker(t) {
        return Err(Bad::Missing);
    }
    if let Ok(v) = t.parse::<i64>() {
        return Ok(v);
    }
    // A float with no fraction (`3.0`, as pandas writes an int column that held a NaN).
    match t.parse::<f64>() {
        Ok(v) if v.is_nan() => Err(Bad::Missing),
        Ok(v) if v.fract() == 0.0 && v.abs() < 9.007_199_254_740_992e15 => Ok(v as i64),
        _ => Err(Bad::Invalid),
    }
}

fn parse_bool(raw: &str) -> Result<bool, Bad> {
    let t = raw.trim();
    if t.is_empty() || is_na_marker(t) {
        return Err(Bad::Missing);
    }
    match t.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "y" | "1" => Ok(true),
        "false" | "f" | "no" | "n" | "0" => Ok(false),
        _ => Err(Bad::Invalid),
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

/// The reason a feature value fails its row.
fn reason(col: &str, bad: Bad, shown: &str, dtype: ElemType) -> String {
    let col = excerpt(col);
    match bad {
        Bad::Missing if matches!(dtype, ElemType::F32 | ElemType::F64) => {
            format!("column {col:?}: missing value (pass --missing-as-nan to feed missing values as NaN)")
        }
        Bad::Missing => format!("column {col:?}: missing value"),
        Bad::NonFinite => format!(
            "column {col:?}: value {:?} is not a finite number (pass --allow-non-finite to feed NaN and infinities)",
            excerpt(shown)
        ),
        Bad::Invalid => format!("column {col:?}: value {:?} is not a valid {}", excerpt(shown), type_word(dtype)),
    }
}

/// A feature column converted to `dtype`: the values (0 where a row is bad) and the bad rows.
pub(super) fn feature(
    col: &str,
    src: &ArrayRef,
    dtype: ElemType,
    opts: &TabularOptions,
) -> Result<(ArrayRef, BadRows), String> {
    let src = match src.data_type() {
        // Dictionary-encoded text (pandas categories) and other string types read as text.
        DataType::Dictionary(_, v) if v.is_string() => cast_plain(src, &DataType::Utf8)?,
        DataType::LargeUtf8 | DataType::Utf8View => cast_plain(src, &DataType::Utf8)?,
        _ => src.clone(),
    };
    if let Some(text) = src.as_string_opt::<i32>() {
        return Ok(from_text(col, text, dtype, opts));
    }
    from_typed(col, &src, dtype, opts)
}

fn cast_plain(a: &ArrayRef, to: &DataType) -> Result<ArrayRef, String> {
    cast_with_options(a, to, &CastOptions::default()).map_err(|e| e.to_string())
}

/// Text into `dtype`, value by value.
fn from_text(col: &str, text: &StringArray, dtype: ElemType, opts: &TabularOptions) -> (ArrayRef, BadRows) {
    let mut bad = BadRows::new();
    let comma = opts.decimal_mark == ',';
    let mut note = |i: usize, b: Bad, shown: &str| bad.push((i, reason(col, b, shown, dtype)));
    let get = |i: usize| if text.is_null(i) { None } else { Some(text.value(i)) };
    let n = text.len();
    macro_rules! floats {
        ($t:ty, $narrow:expr) => {{
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                let raw = get(i);
                let x = match raw.map_or(Err(Bad::Missing), |s| parse_float(s, comma)) {
                    Ok(x) => {
                        let y = $narrow(x);
                        if !y.is_finite() && !opts.allow_non_finite {
                            note(i, Bad::NonFinite, raw.unwrap_or_default());
                        }
                        y
                    }
                    Err(Bad::Missing) if opts.missing_as_nan => <$t as ArrowPrimitiveType>::Native::NAN,
                    Err(b) => {
                        note(i, b, raw.unwrap_or_default());
                        Default::default()
                    }
                };
                v.push(x);
            }
            Arc::new(PrimitiveArray::<$t>::from(v)) as ArrayRef
        }};
    }
    macro_rules! ints {
        ($t:ty, $native:ty) => {{
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                match get(i)
                    .map_or(Err(Bad::Missing), parse_int)
                    .and_then(|x| <$native>::try_from(x).map_err(|_| Bad::Invalid))
                {
                    Ok(x) => v.push(x),
                    Err(b) => {
                        note(i, b, get(i).unwrap_or_default());
                        v.push(0);
                    }
                }
            }
            Arc::new(PrimitiveArray::<$t>::from(v)) as ArrayRef
        }};
    }
    let array = match dtype {
        ElemType::F32 => floats!(Float32Type, |x: f64| x as f32),
        ElemType::F64 => floats!(Float64Type, |x: f64| x),
        ElemType::I64 => ints!(Int64Type, i64),
        ElemType::I32 => ints!(Int32Type, i32),
        ElemType::U8 => ints!(UInt8Type, u8),
        ElemType::Bool => {
            let mut v = Vec::with_capacity(n);
            for i in 0..n {
                match get(i).map_or(Err(Bad::Missing), parse_bool) {
                    Ok(x) => v.push(x),
                    Err(b) => {
                        note(i, b, get(i).unwrap_or_default());
                        v.push(false);
                    }
                }
            }
            Arc::new(BooleanArray::from(v)) as ArrayRef
        }
        ElemType::Str => {
            for i in null_rows(text) {
                note(i, Bad::Missing, "");
            }
            Arc::new(text.clone()) as ArrayRef
        }
    };
    (array, bad)
}

/// The rows of `a` that are null, from its validity bitmap: nothing to walk for a column
/// without nulls (most), rather than a call through `dyn Array` per row.
fn null_rows(a: &dyn Array) -> impl Iterator<Item = usize> + '_ {
    a.nulls()
        .filter(|n| n.null_count() > 0)
        .into_iter()
        .flat_map(|n| n.iter().enumerate().filter(|(_, valid)| !valid).map(|(i, _)| i))
}

/// Typed (Parquet) values into `dtype` with Arrow's casts; then the non-finite check.
fn from_typed(
    col: &str,
    src: &ArrayRef,
    dtype: ElemType,
    opts: &TabularOptions,
) -> Result<(ArrayRef, BadRows), String> {
    let target = dtype.arrow();
    let casted = cast_with_options(src, &target, &CastOptions::default()).map_err(|e| {
        format!("column {:?} of type {} cannot feed a {dtype:?} input: {e}", excerpt(col), src.data_type())
    })?;
    let mut bad = BadRows::new();
    let show = |i: usize| arrow::util::display::array_value_to_string(src, i).unwrap_or_default();
    let mut fill_nan = Vec::new();
    for i in null_rows(casted.as_ref()) {
        if src.is_null(i) {
            if opts.missing_as_nan && matches!(dtype, ElemType::F32 | ElemType::F64) {
                fill_nan.push(i);
            } else {
                bad.push((i, reason(col, Bad::Missing, "", dtype)));
            }
        } else {
            bad.push((i, reason(col, Bad::Invalid, &show(i), dtype)));
        }
    }
    let casted = if fill_nan.is_empty() { casted } else { with_nans(&casted, &fill_nan) };
    if !opts.allow_non_finite {
        let mut check = |i: usize, finite: bool| {
            if !finite && !fill_nan.contains(&i) && !casted.is_null(i) {
                bad.push((i, reason(col, Bad::NonFinite, &show(i), dtype)));
            }
        };
        // Every value finite (the usual case) is found in one pass the compiler vectorises;
        // only a column holding one that is not is walked row by row.
        match dtype {
            ElemType::F32 => {
                let v = casted.as_primitive::<Float32Type>().values();
                if !v.iter().fold(true, |ok, x| ok & x.is_finite()) {
                    v.iter().enumerate().for_each(|(i, x)| check(i, x.is_finite()));
                }
            }
            ElemType::F64 => {
                let v = casted.as_primitive::<Float64Type>().values();
                if !v.iter().fold(true, |ok, x| ok & x.is_finite()) {
                    v.iter().enumerate().for_each(|(i, x)| check(i, x.is_finite()));
                }
            }
            _ => {}
        }
    }
    Ok((casted, bad))
}

/// A float column with NaN at `rows` (which were null) and no nulls.
fn with_nans(a: &ArrayRef, rows: &[usize]) -> ArrayRef {
    fn fill<T: ArrowPrimitiveType>(a: &ArrayRef, rows: &[usize], nan: T::Native) -> ArrayRef {
        let mut v = a.as_primitive::<T>().values().to_vec();
        for &i in rows {
            v[i] = nan;
        }
        Arc::new(PrimitiveArray::<T>::new(v.into(), None))
    }
    match a.data_type() {
        DataType::Float32 => fill::<Float32Type>(a, rows, f32::NAN),
        _ => fill::<Float64Type>(a, rows, f64::NAN),
    }
}

/// A pass-through column: as stored, or converted to the type asked for.
pub(super) fn passthrough(col: &str, src: &ArrayRef, kind: Option<PassType>) -> Result<(ArrayRef, BadRows), String> {
    let Some(kind) = kind else { return Ok((src.clone(), BadRows::new())) };
    let target = kind.arrow();
    let trimmed;
    // Text converts after trimming, as readers that parse a typed column do.
    let from = match src.as_string_opt::<i32>() {
        Some(s) if kind != PassType::String => {
            trimmed = Arc::new(s.iter().map(|v| v.map(str::trim)).collect::<StringArray>()) as ArrayRef;
            &trimmed
        }
        _ => src,
    };
    let casted = cast_with_options(from, &target, &CastOptions::default()).map_err(|e| {
        format!("--passthrough column {:?} of type {} cannot become {target}: {e}", excerpt(col), src.data_type())
    })?;
    let mut bad = BadRows::new();
    for i in null_rows(casted.as_ref()).filter(|i| !src.is_null(*i)) {
        let shown = arrow::util::display::array_value_to_string(src, i).unwrap_or_default();
        if shown.trim().is_empty() {
            continue;
        }
        bad.push((
            i,
            format!("--passthrough column {:?}: value {:?} is not a valid {target}", excerpt(col), excerpt(&shown)),
        ));
    }
    Ok((casted, bad))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(v: &[Option<&str>]) -> ArrayRef {
        Arc::new(StringArray::from(v.to_vec()))
    }

    #[test]
    fn null_rows_are_read_from_the_validity_bitmap() {
        let a = text(&[Some("a"), None, Some("c"), None]);
        assert_eq!(null_rows(a.as_ref()).collect::<Vec<_>>(), [1, 3]);
        assert_eq!(null_rows(text(&[Some("a"), Some("b")]).as_ref()).count(), 0);
        let sliced = a.slice(1, 3);
        assert_eq!(null_rows(sliced.as_ref()).collect::<Vec<_>>(), [0, 2], "offsets of a slice");
    }

    fn opts() -> TabularOptions {
        TabularOptions::default()
    }

    #[test]
    fn one_policy_for_missing_invalid_and_non_finite_text() {
        let col = text(&[
            Some("1.5"),
            Some(""),
            Some("NA"),
            Some("abc"),
            Some("NaN"),
            Some("inf"),
            Some("1e309"),
            Some("1e39"),
            None,
            Some(" 2 "),
        ]);
        let (a, bad) = feature("x", &col, ElemType::F32, &opts()).unwrap();
        let rows: Vec<usize> = bad.iter().map(|b| b.0).collect();
        assert_eq!(rows, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(bad[0].1.contains("missing") && bad[1].1.contains("missing"), "{bad:?}");
        assert!(bad[2].1.contains("\"abc\" is not a valid number"), "{bad:?}");
        for (k, v) in [(3, "NaN"), (4, "inf"), (5, "1e309"), (6, "1e39")] {
            assert!(bad[k].1.contains(v) && bad[k].1.contains("--allow-non-finite"), "{:?}", bad[k]);
        }
        let v = a.as_primitive::<Float32Type>().values();
        assert_eq!((v[0], v[9]), (1.5, 2.0));

        let allow = TabularOptions { allow_non_finite: true, ..opts() };
        let (a, bad) = feature("x", &col, ElemType::F32, &allow).unwrap();
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [1, 2, 3, 8]);
        let v = a.as_primitive::<Float32Type>().values();
        assert!(v[4].is_nan() && v[5] == f32::INFINITY && v[6] == f32::INFINITY && v[7] == f32::INFINITY);

        let nan = TabularOptions { missing_as_nan: true, ..opts() };
        let (a, bad) = feature("x", &col, ElemType::F64, &nan).unwrap();
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [3, 4, 5, 6], "{bad:?}");
        assert!(a.as_primitive::<Float64Type>().values()[1].is_nan());
    }

    #[test]
    fn decimal_commas_and_ints() {
        let comma = TabularOptions { delimiter: Some(b';'), decimal_mark: ',', ..opts() };
        let (a, bad) =
            feature("x", &text(&[Some("1,5"), Some("-0,25"), Some("1.234,5")]), ElemType::F64, &comma).unwrap();
        assert_eq!(&a.as_primitive::<Float64Type>().values()[..2], [1.5, -0.25]);
        assert_eq!(bad.len(), 1);
        let (a, bad) =
            feature("n", &text(&[Some("3"), Some("3.0"), Some("3.5"), Some("300")]), ElemType::U8, &opts()).unwrap();
        assert_eq!(&a.as_primitive::<UInt8Type>().values()[..2], [3, 3]);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 3]);
    }

    #[test]
    fn typed_non_finite_values_fail_their_rows() {
        let col: ArrayRef =
            Arc::new(arrow::array::Float64Array::from(vec![Some(1.0), Some(f64::NAN), None, Some(f64::NEG_INFINITY)]));
        let (_, bad) = feature("x", &col, ElemType::F32, &opts()).unwrap();
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 1, 3]);
        assert!(bad[1].1.contains("NaN") && bad[2].1.contains("-inf"), "{bad:?}");
        let (a, bad) = feature(
            "x",
            &col,
            ElemType::F32,
            &TabularOptions { missing_as_nan: true, allow_non_finite: true, ..opts() },
        )
        .unwrap();
        assert!(bad.is_empty() && a.null_count() == 0 && a.as_primitive::<Float32Type>().values()[2].is_nan());
    }

    #[test]
    fn passthrough_is_verbatim_unless_a_type_is_asked() {
        let col = text(&[Some("00037"), Some("12345678901234567890"), Some("0.50"), Some("x")]);
        let (a, bad) = passthrough("id", &col, None).unwrap();
        assert!(bad.is_empty());
        assert_eq!(a.as_string::<i32>().value(0), "00037");
        let (a, bad) = passthrough("id", &col, Some(PassType::Int64)).unwrap();
        assert_eq!(a.as_primitive::<Int64Type>().value(0), 37);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [1, 2, 3]);
        let (a, bad) = passthrough("p", &col, Some(PassType::Decimal { precision: 30, scale: 2 })).unwrap();
        assert_eq!(arrow::util::display::array_value_to_string(&a, 2).unwrap(), "0.50");
        assert_eq!(bad.len(), 1);
    }
}
