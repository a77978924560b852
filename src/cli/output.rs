//! Renders command results for `-o/--output` and `--query` the way the `az` CLI does (its `knack`
//! formatters): `--query` is a JMESPath expression applied first, then the result is printed as
//! `json`, `yaml`, `table` or `tsv`. A result that is null (after the query) prints nothing.
//!
//! Key order follows az, whatever serde_json's `preserve_order` feature says: `json` and `yaml`
//! always sort object keys; `table` and `tsv` sort them too, except for objects built by a
//! multiselect hash in the query (`[].{Name:name, Status:status}`), whose keys keep the order
//! written in the query, so a query can choose the columns and their order.
//! One difference remains: objects that a query passes through unchanged (`[?status=='Failed']`,
//! `[0]`) show sorted columns in `table`, where az keeps their original order, because the
//! `jmespath` crate holds objects in sorted maps.

use std::borrow::Cow;

use jmespath::ast::Ast;
use serde::{Serialize, Serializer};
use serde_json::{Map, Number, Value};

/// How `-o/--output` renders a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Columns of the scalar fields, with a header row (as `az -o table`).
    #[default]
    Table,
    /// Pretty JSON, 2-space indent, keys sorted.
    Json,
    /// YAML, keys sorted.
    Yaml,
    /// Tab-separated values, one line per item, no header (as `az -o tsv`).
    Tsv,
}

/// Why a result could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The `--query` is not valid JMESPath (a usage error: the CLI exits 2).
    #[error("invalid JMESPath query '{query}': {reason}")]
    BadQuery {
        /// The query as given.
        query: String,
        /// What is wrong with it, and where.
        reason: String,
    },
    /// The `--query` parsed but could not be evaluated on this result, e.g. a function given
    /// an argument of the wrong type, or a call to an unknown function.
    #[error("JMESPath query '{query}' failed: {reason}")]
    QueryFailed {
        /// The query as given.
        query: String,
        /// What went wrong, and where.
        reason: String,
    },
    /// The serializer for `format` failed (not expected for JSON values).
    #[error("cannot render the result as {format}: {reason}")]
    Render {
        /// `json` or `yaml`.
        format: &'static str,
        /// The serializer's message.
        reason: String,
    },
}

/// Keys that az's table output never shows as columns.
const TABLE_SKIP_KEYS: [&str; 3] = ["id", "type", "etag"];

/// Applies the JMESPath `query` (if any) to `value`, then renders it in `format`.
/// Returns the text to print (ending in a newline unless empty).
pub fn render(value: &Value, format: Format, query: Option<&str>) -> Result<String, OutputError> {
    let (result, hashes) = match query {
        Some(query) => {
            let (result, hashes) = apply_query(value, query)?;
            (Cow::Owned(result), hashes)
        }
        None => (Cow::Borrowed(value), Vec::new()),
    };
    if result.is_null() {
        return Ok(String::new());
    }
    match format {
        Format::Json => serde_json::to_string_pretty(&Sorted(&result))
            .map(|text| text + "\n")
            .map_err(|e| OutputError::Render { format: "json", reason: e.to_string() }),
        Format::Yaml => serde_yaml_ng::to_string(&Sorted(&result))
            .map_err(|e| OutputError::Render { format: "yaml", reason: e.to_string() }),
        Format::Table => Ok(table(&result, &hashes)),
        Format::Tsv => Ok(tsv(&result, &hashes)),
    }
}

/// A table of `value` (a row or a list of rows) with these columns, in this order: what a
/// multiselect hash query would print, without running one.
pub fn render_table(value: &Value, columns: &[String]) -> String {
    if value.is_null() {
        return String::new();
    }
    table(value, &[columns.to_vec()])
}

/// Runs `query` on `value`; returns the result and the key lists of the query's multiselect
/// hashes, outermost first (see [`row_keys`]).
fn apply_query(value: &Value, query: &str) -> Result<(Value, Vec<Vec<String>>), OutputError> {
    let expression = jmespath::compile(query)
        .map_err(|e| OutputError::BadQuery { query: query.to_owned(), reason: describe(&e) })?;
    let failed = |reason: String| OutputError::QueryFailed { query: query.to_owned(), reason };
    let found = expression.search(value).map_err(|e| failed(describe(&e)))?;
    let result = serde_json::to_value(&*found).map_err(|e| failed(e.to_string()))?;
    let mut hashes = Vec::new();
    collect_hashes(expression.as_ast(), &mut hashes);
    Ok((result, hashes))
}

/// A JMESPath error as one line: what is wrong, and at which (1-based) column.
fn describe(error: &jmespath::JmespathError) -> String {
    let what = match &error.reason {
        jmespath::ErrorReason::Parse(message) => message.clone(),
        jmespath::ErrorReason::Runtime(runtime) => runtime.to_string(),
    };
    format!("{what} (at column {})", error.column + 1)
}

/// Collects the keys of every multiselect hash (`{a: x, b: y}`) in `ast`, outer ones first,
/// each list in the order written, without repeats.
fn collect_hashes(ast: &Ast, out: &mut Vec<Vec<String>>) {
    match ast {
        Ast::MultiHash { elements, .. } => {
            let mut keys: Vec<String> = Vec::new();
            for pair in elements {
                if !keys.contains(&pair.key) {
                    keys.push(pair.key.clone());
                }
            }
            out.push(keys);
            elements.iter().for_each(|pair| collect_hashes(&pair.value, out));
        }
        Ast::Comparison { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => {
            collect_hashes(lhs, out);
            collect_hashes(rhs, out);
        }
        Ast::Condition { predicate, then, .. } => {
            collect_hashes(predicate, out);
            collect_hashes(then, out);
        }
        Ast::Expref { ast: node, .. }
        | Ast::Flatten { node, .. }
        | Ast::Not { node, .. }
        | Ast::ObjectValues { node, .. } => collect_hashes(node, out),
        Ast::Function { args: nodes, .. } | Ast::MultiList { elements: nodes, .. } => {
            nodes.iter().for_each(|node| collect_hashes(node, out));
        }
        Ast::Identity { .. } | Ast::Field { .. } | Ast::Index { .. } | Ast::Literal { .. } | Ast::Slice { .. } => {}
    }
}

/// The keys of one table or tsv row, in the order az shows them: the query's order when the
/// object has exactly the keys of one of the query's multiselect hashes, else sorted.
fn row_keys<'a>(object: &'a Map<String, Value>, hashes: &'a [Vec<String>]) -> Vec<&'a str> {
    let built_by = |keys: &&Vec<String>| keys.len() == object.len() && keys.iter().all(|k| object.contains_key(k));
    if let Some(keys) = hashes.iter().find(built_by) {
        return keys.iter().map(String::as_str).collect();
    }
    let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

/// The rows of a result: the items of a list, or the result itself.
fn items(result: &Value) -> Vec<&Value> {
    match result {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// A scalar as Python's `str()` prints it (az is Python): `True`, `None`, `1e+20`.
fn scalar_text(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Null => Cow::Borrowed("None"),
        Value::Bool(true) => Cow::Borrowed("True"),
        Value::Bool(false) => Cow::Borrowed("False"),
        Value::Number(number) => Cow::Owned(number_text(number)),
        Value::String(text) => Cow::Borrowed(text),
        nested => Cow::Owned(serde_json::to_string(&Sorted(nested)).unwrap_or_default()),
    }
}

/// A number as Python prints it: integers in full, floats as `repr(float)`.
fn number_text(number: &Number) -> String {
    match number.as_f64() {
        Some(float) if number.is_f64() => python_float(float),
        _ => number.to_string(),
    }
}

/// `repr(float)` of Python: the shortest digits that round-trip (as Rust's), written in fixed
/// notation with at least one decimal when the exponent is in -4..16, else as `1.5e+20`.
fn python_float(float: f64) -> String {
    let scientific = format!("{float:e}");
    let Some((mantissa, exponent)) = scientific.split_once('e') else { return float.to_string() };
    let Ok(exponent) = exponent.parse::<i32>() else { return float.to_string() };
    if !(-4..16).contains(&exponent) {
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.unsigned_abs());
    }
    let (sign, mantissa) = mantissa.strip_prefix('-').map_or(("", mantissa), |rest| ("-", rest));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let point = usize::try_from(exponent + 1).unwrap_or(0);
    if point == 0 {
        let zeros = "0".repeat(exponent.unsigned_abs() as usize - 1);
        return format!("{sign}0.{zeros}{digits}");
    }
    let whole = format!("{digits:0<point$}");
    let fraction = digits.get(point..).filter(|rest| !rest.is_empty()).unwrap_or("0");
    format!("{sign}{}.{fraction}", whole.get(..point).unwrap_or(&whole))
}

/// `az -o table`: one row per item, the columns being the union of the rows' keys in order of
/// first appearance; see [`table_row`] for what each item gives.
fn table(result: &Value, hashes: &[Vec<String>]) -> String {
    let rows: Vec<Vec<(String, String)>> = items(result).into_iter().map(|item| table_row(item, hashes)).collect();
    let mut columns: Vec<&str> = Vec::new();
    for (key, _) in rows.iter().flatten() {
        if !columns.contains(&key.as_str()) {
            columns.push(key);
        }
    }
    if columns.is_empty() {
        return "\n".to_owned();
    }
    let cells: Vec<Vec<&str>> = rows
        .iter()
        .map(|row| {
            let cell = |column: &&str| row.iter().find(|(key, _)| key == column).map_or("", |(_, text)| text);
            columns.iter().map(cell).collect()
        })
        .collect();
    layout(&columns, &cells)
}

/// One table row as (header, cell) pairs, as az's `_auto_table_item`: an object gives its
/// scalar, non-null fields, except `id`, `type` and `etag`, headed by the key with its first
/// letter capitalised; a list gives `Column1`, `Column2`, ...; a scalar gives `Result`.
fn table_row(item: &Value, hashes: &[Vec<String>]) -> Vec<(String, String)> {
    let mut row: Vec<(String, String)> = Vec::new();
    let mut set = |header: String, value: &Value| {
        let text = if value.is_null() { String::new() } else { scalar_text(value).trim().to_owned() };
        match row.iter_mut().find(|(key, _)| *key == header) {
            Some(cell) => cell.1 = text,
            None => row.push((header, text)),
        }
    };
    match item {
        Value::Object(object) => {
            for key in row_keys(object, hashes) {
                let value = &object[key];
                let nested = value.is_array() || value.is_object();
                if !TABLE_SKIP_KEYS.contains(&key) && !value.is_null() && !nested {
                    set(capitalize(key), value);
                }
            }
        }
        Value::Array(values) => {
            values.iter().enumerate().for_each(|(index, value)| set(format!("Column{}", index + 1), value));
        }
        scalar => set("Result".to_owned(), scalar),
    }
    row
}

/// `key` with its first character in upper case.
fn capitalize(key: &str) -> String {
    let mut chars = key.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

/// Lays cells out as Python's `tabulate(tablefmt="simple")`: each column as wide as its widest
/// line and at least its header plus two, left-aligned, two spaces apart, lines right-trimmed;
/// a header row, a row of dashes, then the rows, a cell with line breaks spanning several lines.
fn layout(columns: &[&str], cells: &[Vec<&str>]) -> String {
    let width = |text: &str| text.chars().count();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(index, header)| {
            let widest = cells.iter().flat_map(|row| row[index].lines()).map(width).max().unwrap_or(0);
            widest.max(width(header) + 2)
        })
        .collect();
    let mut out = line(columns.iter().copied(), &widths);
    let dashes: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    out += &line(dashes.iter().map(String::as_str), &widths);
    for row in cells {
        let split: Vec<Vec<&str>> = row.iter().map(|cell| cell.lines().collect()).collect();
        let height = split.iter().map(Vec::len).max().unwrap_or(0).max(1);
        for index in 0..height {
            out += &line(split.iter().map(|lines| lines.get(index).copied().unwrap_or("")), &widths);
        }
    }
    out
}

/// One line of a table: each text padded to its column's width, two spaces apart, right-trimmed.
fn line<'a>(texts: impl Iterator<Item = &'a str>, widths: &[usize]) -> String {
    let padded: Vec<String> = texts.zip(widths).map(|(text, &w)| format!("{text:<w$}")).collect();
    padded.join("  ").trim_end().to_owned() + "\n"
}

/// `az -o tsv`: one line per item. An object gives its values and a list its items, tab
/// separated; there, a nested list prints its length, a nested object an empty field, null
/// `None` and booleans `True`/`False`. A bare boolean item prints `true`/`false`.
fn tsv(result: &Value, hashes: &[Vec<String>]) -> String {
    let mut out = String::new();
    for item in items(result) {
        let fields: Vec<&Value> = match item {
            Value::Object(object) => row_keys(object, hashes).into_iter().map(|key| &object[key]).collect(),
            Value::Array(values) => values.iter().collect(),
            Value::Bool(flag) => {
                out += if *flag { "true\n" } else { "false\n" };
                continue;
            }
            scalar => vec![scalar],
        };
        let texts: Vec<Cow<'_, str>> = fields.into_iter().map(tsv_field).collect();
        out += &texts.join("\t");
        out.push('\n');
    }
    out
}

/// One tsv field: a list prints its length, an object nothing, a scalar as [`scalar_text`].
fn tsv_field(value: &Value) -> Cow<'_, str> {
    match value {
        Value::Array(values) => Cow::Owned(values.len().to_string()),
        Value::Object(_) => Cow::Borrowed(""),
        scalar => scalar_text(scalar),
    }
}

/// Serializes a value with the keys of every object sorted, as az's JSON and YAML output.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Array(values) => serializer.collect_seq(values.iter().map(Sorted)),
            Value::Object(object) => {
                let mut entries: Vec<(&String, &Value)> = object.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                serializer.collect_map(entries.into_iter().map(|(key, value)| (key, Sorted(value))))
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Two jobs; keys deliberately not in sorted order, with a nested object and list, an `id`,
    /// a null, booleans, an integer and floats. Expected outputs were produced by az's own
    /// formatters (knack 0.14, tabulate 0.10, jmespath 1.1) unless a test says otherwise.
    fn jobs() -> Value {
        json!([
            {"name": "job-1", "status": "Completed", "id": "/jobs/1", "retries": 0, "score": 0.5, "done": true,
             "tags": {"team": "a"}, "inputs": ["x", "y"], "error": null},
            {"name": "job-22", "status": "Failed", "id": "/jobs/22", "retries": 3, "score": 1e20, "done": false,
             "tags": {}, "inputs": [], "error": "disk full"}
        ])
    }

    fn job() -> Value {
        jobs()[0].clone()
    }

    fn out(value: &Value, format: Format, query: Option<&str>) -> String {
        match render(value, format, query) {
            Ok(text) => text,
            Err(error) => panic!("render failed: {error}"),
        }
    }

    #[test]
    fn table_of_objects_sorts_columns_and_leaves_out_nested_null_and_id() {
        assert_eq!(
            out(&jobs(), Format::Table, None),
            "Done    Name    Retries    Score    Status     Error\n\
             ------  ------  ---------  -------  ---------  ---------\n\
             True    job-1   0          0.5      Completed\n\
             False   job-22  3          1e+20    Failed     disk full\n"
        );
    }

    #[test]
    fn tsv_of_objects_gives_sorted_values_with_list_lengths_and_empty_objects() {
        assert_eq!(
            out(&jobs(), Format::Tsv, None),
            "True\tNone\t/jobs/1\t2\tjob-1\t0\t0.5\tCompleted\t\n\
             False\tdisk full\t/jobs/22\t0\tjob-22\t3\t1e+20\tFailed\t\n"
        );
    }

    #[test]
    fn json_of_objects_is_pretty_with_sorted_keys() {
        let expected = r#"[
  {
    "done": true,
    "error": null,
    "id": "/jobs/1",
    "inputs": [
      "x",
      "y"
    ],
    "name": "job-1",
    "retries": 0,
    "score": 0.5,
    "status": "Completed",
    "tags": {
      "team": "a"
    }
  },
  {
    "done": false,
    "error": "disk full",
    "id": "/jobs/22",
    "inputs": [],
    "name": "job-22",
    "retries": 3,
    "score": 1e+20,
    "status": "Failed",
    "tags": {}
  }
]
"#;
        assert_eq!(out(&jobs(), Format::Json, None), expected);
    }

    #[test]
    fn yaml_of_objects_has_sorted_keys() {
        // az (PyYAML) writes the float as `1.0e+20`; serde_yaml_ng writes `1e20`.
        let expected = "- done: true\n  error: null\n  id: /jobs/1\n  inputs:\n  - x\n  - y\n  name: job-1\n  \
                        retries: 0\n  score: 0.5\n  status: Completed\n  tags:\n    team: a\n\
                        - done: false\n  error: disk full\n  id: /jobs/22\n  inputs: []\n  name: job-22\n  \
                        retries: 3\n  score: 1e20\n  status: Failed\n  tags: {}\n";
        assert_eq!(out(&jobs(), Format::Yaml, None), expected);
    }

    #[test]
    fn single_object_in_each_format() {
        assert_eq!(
            out(&job(), Format::Table, None),
            "Done    Name    Retries    Score    Status\n\
             ------  ------  ---------  -------  ---------\n\
             True    job-1   0          0.5      Completed\n"
        );
        assert_eq!(out(&job(), Format::Tsv, None), "True\tNone\t/jobs/1\t2\tjob-1\t0\t0.5\tCompleted\t\n");
        let object = json!({"status": "Running", "name": "job-3", "retries": 1});
        assert_eq!(
            out(&object, Format::Json, None),
            "{\n  \"name\": \"job-3\",\n  \"retries\": 1,\n  \"status\": \"Running\"\n}\n"
        );
        assert_eq!(out(&object, Format::Yaml, None), "name: job-3\nretries: 1\nstatus: Running\n");
    }

    #[test]
    fn scalar_after_a_query() {
        let job = job();
        assert_eq!(out(&job, Format::Table, Some("name")), "Result\n--------\njob-1\n");
        assert_eq!(out(&job, Format::Tsv, Some("name")), "job-1\n");
        assert_eq!(out(&job, Format::Json, Some("name")), "\"job-1\"\n");
        // az (PyYAML) adds a document end marker: "job-1\n...\n".
        assert_eq!(out(&job, Format::Yaml, Some("name")), "job-1\n");
        assert_eq!(out(&jobs(), Format::Tsv, Some("[0].name")), "job-1\n");
    }

    #[test]
    fn list_after_a_query() {
        let jobs = jobs();
        assert_eq!(out(&jobs, Format::Table, Some("[].name")), "Result\n--------\njob-1\njob-22\n");
        assert_eq!(out(&jobs, Format::Tsv, Some("[].name")), "job-1\njob-22\n");
        assert_eq!(out(&jobs, Format::Json, Some("[].name")), "[\n  \"job-1\",\n  \"job-22\"\n]\n");
        assert_eq!(out(&jobs, Format::Yaml, Some("[].name")), "- job-1\n- job-22\n");
    }

    #[test]
    fn multiselect_hash_gives_table_columns_in_query_order() {
        let jobs = jobs();
        assert_eq!(
            out(&jobs, Format::Table, Some("[].{n:name,s:status}")),
            "N       S\n------  ---------\njob-1   Completed\njob-22  Failed\n"
        );
        let query = Some("[].{s:status,n:name,r:retries}");
        assert_eq!(
            out(&jobs, Format::Table, query),
            "S          N       R\n---------  ------  ---\nCompleted  job-1   0\nFailed     job-22  3\n"
        );
        assert_eq!(out(&jobs, Format::Tsv, query), "Completed\tjob-1\t0\nFailed\tjob-22\t3\n");
        assert_eq!(
            out(&jobs, Format::Yaml, query),
            "- n: job-1\n  r: 0\n  s: Completed\n- n: job-22\n  r: 3\n  s: Failed\n"
        );
        assert_eq!(
            out(&jobs, Format::Table, Some("[] | [0].{z:name, a:status}")),
            "Z      A\n-----  ---------\njob-1  Completed\n"
        );
    }

    #[test]
    fn objects_passed_through_a_query_have_sorted_columns() {
        // az keeps the input's key order here (Name, Status, Retries, Score, Done, Error): the
        // Rust jmespath crate keeps objects in sorted maps, so this one differs from az.
        assert_eq!(
            out(&jobs(), Format::Table, Some("[?retries > `1`]")),
            "Done    Error      Name    Retries    Score    Status\n\
             ------  ---------  ------  ---------  -------  --------\n\
             False   disk full  job-22  3          1e+20    Failed\n"
        );
    }

    #[test]
    fn nulls_booleans_and_numbers() {
        let jobs = jobs();
        let query = Some("[].[name,done,retries,score,error,tags,inputs]");
        // az shows the nested values as Python reprs ({'team': 'a'}); here they are compact JSON.
        assert_eq!(
            out(&jobs, Format::Table, query),
            "Column1    Column2    Column3    Column4    Column5    Column6       Column7\n\
             ---------  ---------  ---------  ---------  ---------  ------------  ---------\n\
             job-1      True       0          0.5                   {\"team\":\"a\"}  [\"x\",\"y\"]\n\
             job-22     False      3          1e+20      disk full  {}            []\n"
        );
        assert_eq!(
            out(&jobs, Format::Tsv, query),
            "job-1\tTrue\t0\t0.5\tNone\t\t2\njob-22\tFalse\t3\t1e+20\tdisk full\t\t0\n"
        );
        assert_eq!(out(&jobs, Format::Tsv, Some("[0].done")), "true\n");
        assert_eq!(out(&jobs, Format::Table, Some("[0].done")), "Result\n--------\nTrue\n");
        assert_eq!(out(&json!([true, false, null]), Format::Tsv, None), "true\nfalse\nNone\n");
        assert_eq!(out(&json!([null, "x"]), Format::Table, None), "Result\n--------\n\nx\n");
        let numbers = json!([1e-7, -0.0, 12345678901234567890u64, 1e16, 1e15, 0.0001, 123.456, -3, 1.0]);
        assert_eq!(
            out(&numbers, Format::Tsv, None),
            "1e-07\n-0.0\n12345678901234567890\n1e+16\n1000000000000000.0\n0.0001\n123.456\n-3\n1.0\n"
        );
    }

    #[test]
    fn null_result_prints_nothing() {
        for format in [Format::Table, Format::Json, Format::Yaml, Format::Tsv] {
            assert_eq!(out(&jobs(), format, Some("[0].error")), "");
            assert_eq!(out(&job(), format, Some("missing")), "");
            assert_eq!(out(&Value::Null, format, None), "");
        }
    }

    #[test]
    fn empty_list() {
        let empty = json!([]);
        // az's table prints an empty line for an empty list.
        assert_eq!(out(&empty, Format::Table, None), "\n");
        assert_eq!(out(&empty, Format::Tsv, None), "");
        assert_eq!(out(&empty, Format::Json, None), "[]\n");
        assert_eq!(out(&empty, Format::Yaml, None), "[]\n");
        assert_eq!(out(&jobs(), Format::Table, Some("[?retries > `5`]")), "\n");
    }

    #[test]
    fn table_cells_are_trimmed_and_may_span_lines() {
        let value =
            json!([{"name": "a\nbb", "note": "  padded  ", "x": "ééé"}, {"name": "c", "x": "日本", "etag": "e"}]);
        assert_eq!(
            out(&value, Format::Table, None),
            "Name    Note    X\n------  ------  ---\na       padded  ééé\nbb\nc               日本\n"
        );
        assert_eq!(out(&json!([{"a": 1}, {"b": 2, "a": 3}]), Format::Table, None), "A    B\n---  ---\n1\n3    2\n");
        assert_eq!(out(&json!({"a": {"b": 1}}), Format::Table, None), "\n");
    }

    #[test]
    fn bad_query_names_the_query_and_the_problem() {
        match render(&jobs(), Format::Json, Some("[].{")) {
            Err(error @ OutputError::BadQuery { .. }) => assert_eq!(
                error.to_string(),
                "invalid JMESPath query '[].{': Expected Field to start key value pair -- found Eof (at column 5)"
            ),
            other => panic!("expected BadQuery, got {other:?}"),
        }
        match render(&job(), Format::Tsv, Some("abs(name)")) {
            Err(error @ OutputError::QueryFailed { .. }) => assert_eq!(
                error.to_string(),
                "JMESPath query 'abs(name)' failed: Argument 0 expects type number, given string (at column 4)"
            ),
            other => panic!("expected QueryFailed, got {other:?}"),
        }
    }

    #[test]
    fn format_names_for_the_command_line() {
        use clap::ValueEnum;
        let names: Vec<String> = Format::value_variants()
            .iter()
            .filter_map(|f| f.to_possible_value())
            .map(|v| v.get_name().to_owned())
            .collect();
        assert_eq!(names, ["table", "json", "yaml", "tsv"]);
        assert_eq!(Format::default(), Format::Table);
    }
}
