//! Settings: CLI flags and a deployment file, resolved once into one validated [`Settings`].
//!
//! Two sources fill the same [`RawSettings`] (every field optional): the flags of
//! `batchscore score` and a deployment YAML (`--config`). Flags win; what neither sets takes the
//! defaults of DESIGN.md section 3, which are Azure Machine Learning's. [`RawSettings::resolve`]
//! validates every value and names the setting (and file) that is wrong, so the job either
//! starts with a sound plan or exits 2 before doing any work.
//!
//! A deployment file written for Azure ML (`reference-yaml-deployment-batch`) loads: the fields
//! that mean something here are used (from `settings:` or, as in the older schema, the top
//! level), the others (compute, environment, code_configuration, ...) are listed in
//! [`Deployment::ignored`] and reported, not rejected. batchscore's own options go under a
//! `batchscore:` block. A key in `settings:` or `retry_settings:` that is in neither Azure's
//! schema nor batchscore's is an error that suggests the nearest known key.
//!
//! - [`resolve`] validates the values and bounds them ([`limits`]);
//! - [`deployment`] reads a deployment YAML into [`RawSettings`].

mod deployment;
mod resolve;

use std::path::PathBuf;

use crate::storage::{StorageOptions, redact};

pub use deployment::{Deployment, parse_yaml};
pub use resolve::limits;

/// What to do with each scored item (`output_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputAction {
    /// Every scored item becomes a row of the output file.
    AppendRow,
    /// No prediction file; only the job report.
    SummaryOnly,
}

/// Format of the predictions file, picked by the extension of `output_file_name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    Csv,
    Parquet,
}

/// `logging_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Warning,
    Info,
    Debug,
}

/// Memory layout of an image tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// `[N, C, H, W]`
    Nchw,
    /// `[N, H, W, C]`
    Nhwc,
    /// `[N, H*W*C]`, pixels in row-major HWC order (scikit-learn style flat features).
    Flat,
}

/// How an image is brought to the model's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ResizeMode {
    /// Scale both sides to the target size, ignoring the aspect ratio.
    Stretch,
    /// Scale the shorter side to the target, then cut the centre (ImageNet style).
    Crop,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProgressMode {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    Bar,
    Plain,
    Off,
}

/// How inputs are cut into mini-batches.
///
/// `mini_batch_size` is a count of files (Azure ML's form for file inputs, and the default: 10
/// files), or a size such as `64MB` (Azure ML's form for tabular data); `mini_batch_rows` is
/// batchscore's own. With rows or a size, small tabular files are grouped whole until the target
/// is reached and larger ones are cut into pieces (Parquet row groups, CSV byte ranges cut at
/// record boundaries), so one large file is not one unit of work. Images take the count form only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MiniBatchTarget {
    /// Files per mini-batch.
    Files(usize),
    /// About this many rows per mini-batch (tabular inputs).
    Rows(u64),
    /// About this many input bytes per mini-batch (tabular inputs).
    Bytes(u64),
}

impl MiniBatchTarget {
    /// Whether tabular files may be cut below file level.
    pub fn splits(self) -> bool {
        !matches!(self, MiniBatchTarget::Files(_))
    }

    /// The setting as a user writes it, for messages: `mini_batch_size 10`, `mini_batch_rows 5000`,
    /// `mini_batch_size 64MB`.
    pub fn describe(self) -> String {
        match self {
            MiniBatchTarget::Files(n) => format!("mini_batch_size {n}"),
            MiniBatchTarget::Rows(n) => format!("mini_batch_rows {n}"),
            MiniBatchTarget::Bytes(b) => format!("mini_batch_size {}", format_byte_size(b)),
        }
    }
}

/// In the job report, the form the user chose, under the name they used:
/// `"mini_batch_size": 10`, `"mini_batch_rows": 5000`, or
/// `"mini_batch_size": "64MB", "mini_batch_bytes": 67108864`.
impl serde::Serialize for MiniBatchTarget {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match *self {
            MiniBatchTarget::Files(n) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("mini_batch_size", &n)?;
                m.end()
            }
            MiniBatchTarget::Rows(n) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("mini_batch_rows", &n)?;
                m.end()
            }
            MiniBatchTarget::Bytes(b) => {
                let mut m = s.serialize_map(Some(2))?;
                m.serialize_entry("mini_batch_size", &format_byte_size(b))?;
                m.serialize_entry("mini_batch_bytes", &b)?;
                m.end()
            }
        }
    }
}

/// Parses a size such as `64MB`, `1.5 GB`, `512KB` or `1048576B` (case-insensitive). Units are
/// binary, as Azure ML's are: KB = 1024 bytes, MB = 1024 KB, GB = 1024 MB, TB = 1024 GB
/// (`KiB`, `MiB`, `GiB`, `TiB` mean the same). A plain number is not a size: it is a count of
/// files, the other form of `mini_batch_size`. Returns `None` unless the result is >= 1 byte.
pub fn parse_byte_size(s: &str) -> Option<u64> {
    let t = s.trim().to_ascii_lowercase();
    let split = t.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = t.split_at(split);
    let factor: u64 = match unit.trim() {
        "b" => 1,
        "kb" | "kib" => 1 << 10,
        "mb" | "mib" => 1 << 20,
        "gb" | "gib" => 1 << 30,
        "tb" | "tib" => 1 << 40,
        _ => return None,
    };
    let num = num.trim();
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let bytes = if let Ok(n) = num.parse::<u64>() {
        n.checked_mul(factor)?
    } else {
        let x = num.parse::<f64>().ok()? * factor as f64;
        // u64::MAX as f64 rounds up to 2^64; stay well inside.
        if !x.is_finite() || x >= 1.8e19 {
            return None;
        }
        x.round() as u64
    };
    (bytes >= 1).then_some(bytes)
}

/// A byte count in the largest unit that divides it exactly: `64MB`, `1536KB`, `1000B`.
pub fn format_byte_size(b: u64) -> String {
    for (unit, factor) in [("TB", 1u64 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)] {
        if b >= factor && b.is_multiple_of(factor) {
            return format!("{}{unit}", b / factor);
        }
    }
    format!("{b}B")
}

/// Image preprocessing options as given; each `None` is derived from the model's input shape.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImageOptions {
    /// Target `(width, height)`.
    pub size: Option<(u32, u32)>,
    /// 1 (grayscale), 3 (RGB) or 4 (RGBA).
    pub channels: Option<u32>,
    pub scale: Option<f32>,
    pub mean: Option<Vec<f32>>,
    pub std: Option<Vec<f32>>,
    pub layout: Option<Layout>,
    pub resize: Option<ResizeMode>,
    /// Whether the EXIF orientation of a photo is applied before anything else.
    pub exif: ExifMode,
    /// Images with more pixels than this are refused (a decompression bomb guard, as PIL's).
    pub max_pixels: u64,
    /// Whether a JPEG may be decoded at 1/2, 1/4 or 1/8 of its size when the model's input is
    /// that much smaller (as PIL's `Image.draft`), rather than in full before resizing.
    pub jpeg_scaled: bool,
}

impl Default for ImageOptions {
    fn default() -> Self {
        ImageOptions {
            size: None,
            channels: None,
            scale: None,
            mean: None,
            std: None,
            layout: None,
            resize: None,
            exif: ExifMode::Apply,
            max_pixels: limits::DEFAULT_MAX_IMAGE_PIXELS,
            jpeg_scaled: true,
        }
    }
}

/// What to do with a photo's EXIF orientation tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExifMode {
    /// Rotate and flip the pixels as the tag says, as viewers, PIL's `exif_transpose` and
    /// OpenCV's `imread` do.
    Apply,
    /// Take the pixels as stored.
    Ignore,
}

/// The type a pass-through column is converted to when the user asks for one
/// (`--passthrough id:int64`); without one it is copied as stored (CSV: the text as written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassType {
    String,
    Int64,
    Uint64,
    Float64,
    Bool,
    Date,
    /// Microseconds, in UTC (text without an offset is taken as UTC).
    Timestamp,
    Decimal {
        precision: u8,
        scale: i8,
    },
}

impl PassType {
    /// Parses `string`, `int64`, `uint64`, `float64`, `bool`, `date`, `timestamp` or
    /// `decimal(P,S)` (case-insensitive; `int`, `float`, `str`, `text` too).
    pub fn parse(s: &str) -> Option<PassType> {
        let t = s.trim().to_ascii_lowercase();
        Some(match t.as_str() {
            "string" | "str" | "text" | "utf8" => PassType::String,
            "int64" | "int" | "integer" | "long" => PassType::Int64,
            "uint64" => PassType::Uint64,
            "float64" | "float" | "double" => PassType::Float64,
            "bool" | "boolean" => PassType::Bool,
            "date" => PassType::Date,
            "timestamp" | "datetime" => PassType::Timestamp,
            other => {
                let inner = other.strip_prefix("decimal(")?.strip_suffix(')')?;
                let (p, sc) = inner.split_once(',')?;
                let (precision, scale): (u8, i8) = (p.trim().parse().ok()?, sc.trim().parse().ok()?);
                if !(1..=38).contains(&precision) || scale < 0 || scale as u8 > precision {
                    return None;
                }
                PassType::Decimal { precision, scale }
            }
        })
    }

    /// The Arrow type values are converted to.
    pub fn arrow(self) -> arrow::datatypes::DataType {
        use arrow::datatypes::{DataType, TimeUnit};
        match self {
            PassType::String => DataType::Utf8,
            PassType::Int64 => DataType::Int64,
            PassType::Uint64 => DataType::UInt64,
            PassType::Float64 => DataType::Float64,
            PassType::Bool => DataType::Boolean,
            PassType::Date => DataType::Date32,
            PassType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            PassType::Decimal { precision, scale } => DataType::Decimal128(precision, scale),
        }
    }
}

impl std::fmt::Display for PassType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassType::String => f.write_str("string"),
            PassType::Int64 => f.write_str("int64"),
            PassType::Uint64 => f.write_str("uint64"),
            PassType::Float64 => f.write_str("float64"),
            PassType::Bool => f.write_str("bool"),
            PassType::Date => f.write_str("date"),
            PassType::Timestamp => f.write_str("timestamp"),
            PassType::Decimal { precision, scale } => write!(f, "decimal({precision},{scale})"),
        }
    }
}

/// A pass-through column: its name, and the type asked for, if any. Reported as the user
/// writes it: `id`, or `id:int64`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassColumn {
    pub name: String,
    pub kind: Option<PassType>,
}

impl serde::Serialize for PassColumn {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.kind {
            None => s.serialize_str(&self.name),
            Some(k) => s.collect_str(&format_args!("{}:{k}", self.name)),
        }
    }
}

/// How tabular text is read and which values feed the model.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TabularOptions {
    /// The CSV field delimiter; `None`: `,`, or a tab for `.tsv` files.
    #[serde(serialize_with = "serialize_byte_char")]
    pub delimiter: Option<u8>,
    /// The decimal mark of numbers in CSV text: `.`, or `,` (with a delimiter other than `,`).
    pub decimal_mark: char,
    /// Feed NaN and infinite feature values to the model instead of failing their rows.
    pub allow_non_finite: bool,
    /// Feed missing feature values (empty cells, `NA`, nulls) as NaN instead of failing their
    /// rows (float inputs only).
    pub missing_as_nan: bool,
    /// A CSV record (or JSON line) longer than this fails alone.
    pub max_record_bytes: u64,
}

impl Default for TabularOptions {
    fn default() -> Self {
        TabularOptions {
            delimiter: None,
            decimal_mark: '.',
            allow_non_finite: false,
            missing_as_nan: false,
            max_record_bytes: limits::DEFAULT_MAX_RECORD_BYTES,
        }
    }
}

impl TabularOptions {
    /// The delimiter of one file: the one given, else a tab for `.tsv` files, else `,`.
    pub fn delimiter_for(&self, name: &str) -> u8 {
        self.delimiter.unwrap_or_else(|| {
            let lower = name.to_ascii_lowercase();
            let stem = crate::engine::plan::Compression::strip(&lower);
            if stem.ends_with(".tsv") { b'\t' } else { b',' }
        })
    }
}

fn serialize_byte_char<S: serde::Serializer>(v: &Option<u8>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(b) => s.serialize_str(&char::from(*b).to_string()),
        None => s.serialize_none(),
    }
}

/// Every setting, each optional: what flags or a deployment file said.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mini_batch_size: Option<String>,
    /// Rows per mini-batch for tabular inputs (`mini_batch_rows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mini_batch_rows: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance_count: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_action: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_file_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_threshold: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging_level: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub passthrough: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intra_threads: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_size: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub std: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resize: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress_interval: Option<String>,
    /// `key=value` settings of the remote stores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_options: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exif_orientation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_image_pixels: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jpeg_decode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csv_delimiter: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decimal_mark: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_non_finite: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_as_nan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_record_size: Option<String>,
    /// ONNX Runtime's graph optimisation level (`disable_all`, `basic`, `extended`, `all`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graph_optimization_level: Option<String>,
}

/// The validated settings of one job.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    /// Model, input and output as given; reported without credentials (see [`redact`]).
    #[serde(serialize_with = "serialize_redacted")]
    pub model: String,
    #[serde(serialize_with = "serialize_redacted")]
    pub input: String,
    #[serde(serialize_with = "serialize_redacted")]
    pub output: String,
    /// Settings of the remote stores; reported by key only.
    pub storage_options: StorageOptions,
    /// How inputs are cut into mini-batches: files, rows or bytes.
    #[serde(flatten)]
    pub mini_batch: MiniBatchTarget,
    pub max_concurrency: usize,
    pub instance_count: usize,
    pub output_action: OutputAction,
    pub output_file_name: String,
    pub output_format: OutputFormat,
    pub max_retries: u32,
    /// Seconds per mini-batch attempt.
    pub timeout: f64,
    /// Failed items tolerated; -1 ignores all failures.
    pub error_threshold: i64,
    pub logging_level: LogLevel,
    pub pattern: Option<String>,
    pub features: Option<Vec<String>>,
    /// Input columns copied into the output, with the type asked for, if any.
    pub passthrough: Vec<PassColumn>,
    pub tabular: TabularOptions,
    /// Rows or images per model call; `None` picks a default per input kind.
    pub batch_size: Option<usize>,
    /// ONNX Runtime sessions the workers feed; `None`: one per worker on the CPU, 2 on a GPU.
    pub sessions: Option<usize>,
    /// ONNX Runtime intra-op threads per session; `None`: cores / sessions on the CPU, 1 on a GPU.
    pub intra_threads: Option<usize>,
    /// Where the model runs: the CPU or a CUDA GPU.
    pub device: Device,
    /// How much ONNX Runtime rewrites the model's graph before running it.
    pub graph_optimization: GraphOptimization,
    pub image: ImageOptions,
    pub progress: ProgressMode,
    /// Seconds between plain progress lines.
    pub progress_interval: f64,
}

fn serialize_redacted<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact(v))
}

/// ONNX Runtime's graph optimisation levels; `All` is its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GraphOptimization {
    DisableAll,
    Basic,
    Extended,
    #[default]
    All,
}

impl GraphOptimization {
    pub fn parse(s: &str) -> Option<GraphOptimization> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "disable_all" | "disabled" | "none" => GraphOptimization::DisableAll,
            "basic" => GraphOptimization::Basic,
            "extended" => GraphOptimization::Extended,
            "all" => GraphOptimization::All,
            _ => return None,
        })
    }
}

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Device {
    #[default]
    Cpu,
    /// ONNX Runtime's CUDA execution provider on the GPU of this index.
    Cuda(u32),
}

impl Device {
    /// `cpu`, `cuda` (GPU 0) or `cuda:N`.
    pub fn parse(v: &str) -> Option<Device> {
        match v.to_ascii_lowercase().as_str() {
            "cpu" => Some(Device::Cpu),
            "cuda" | "gpu" => Some(Device::Cuda(0)),
            other => other.strip_prefix("cuda:").and_then(|n| n.parse().ok()).map(Device::Cuda),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

impl serde::Serialize for Device {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A setting that could not be used, naming where it came from and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read deployment file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("deployment file {path} is not valid YAML: {source}")]
    Yaml {
        path: PathBuf,
        #[source]
        source: serde_yaml_ng::Error,
    },
    #[error("{origin}: setting `{setting}` = {value:?} is invalid: {hint}")]
    Invalid { origin: String, setting: String, value: String, hint: String },
    #[error("missing setting `{setting}`: {hint}")]
    Missing { setting: String, hint: String },
}

impl RawSettings {
    /// `self` (flags) over `other` (deployment file): a value set here wins.
    pub fn over(self, mut other: RawSettings) -> RawSettings {
        macro_rules! pick {
            ($($f:ident),*) => { RawSettings { $($f: self.$f.or(other.$f)),* } };
        }
        // The mini-batch target is one setting in three forms: a flag for one form replaces
        // the file's choice whatever its form, rather than clashing with it.
        if self.mini_batch_size.is_some() || self.mini_batch_rows.is_some() {
            other.mini_batch_size = None;
            other.mini_batch_rows = None;
        }
        pick!(
            model,
            input,
            output,
            mini_batch_size,
            mini_batch_rows,
            max_concurrency,
            instance_count,
            output_action,
            output_file_name,
            max_retries,
            timeout,
            error_threshold,
            logging_level,
            pattern,
            features,
            passthrough,
            batch_size,
            sessions,
            intra_threads,
            device,
            image_size,
            channels,
            scale,
            mean,
            std,
            layout,
            resize,
            progress,
            progress_interval,
            storage_options,
            exif_orientation,
            max_image_pixels,
            jpeg_decode,
            csv_delimiter,
            decimal_mark,
            allow_non_finite,
            missing_as_nan,
            max_record_size,
            graph_optimization_level
        )
    }
}

/// `a,b:decimal(10,2)` into `a` and `b:decimal(10,2)`: commas inside parentheses stay.
pub fn split_columns(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0i32);
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth <= 0 => {
                out.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur);
    out
}
