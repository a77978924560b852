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
//! `batchscore:` block.

use std::path::{Path, PathBuf};

use crate::storage::{StorageError, StorageOptions, redact};
use serde_yaml_ng::{Mapping, Value};

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
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
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
}

/// Every setting, each optional: what flags or a deployment file said.
#[derive(Debug, Clone, Default)]
pub struct RawSettings {
    pub model: Option<String>,
    pub input: Option<String>,
    pub output: Option<String>,
    pub mini_batch_size: Option<String>,
    /// Rows per mini-batch for tabular inputs (`mini_batch_rows`).
    pub mini_batch_rows: Option<String>,
    pub max_concurrency: Option<String>,
    pub instance_count: Option<String>,
    pub output_action: Option<String>,
    pub output_file_name: Option<String>,
    pub max_retries: Option<String>,
    pub timeout: Option<String>,
    pub error_threshold: Option<String>,
    pub logging_level: Option<String>,
    pub pattern: Option<String>,
    pub features: Option<Vec<String>>,
    pub passthrough: Option<Vec<String>>,
    pub batch_size: Option<String>,
    pub sessions: Option<String>,
    pub intra_threads: Option<String>,
    pub device: Option<String>,
    pub image_size: Option<String>,
    pub channels: Option<String>,
    pub scale: Option<String>,
    pub mean: Option<String>,
    pub std: Option<String>,
    pub layout: Option<String>,
    pub resize: Option<String>,
    pub progress: Option<String>,
    pub progress_interval: Option<String>,
    /// `key=value` settings of the remote stores.
    pub storage_options: Option<Vec<String>>,
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
    pub passthrough: Vec<String>,
    /// Rows or images per model call; `None` picks a default per input kind.
    pub batch_size: Option<usize>,
    /// ONNX Runtime sessions the workers feed; `None`: one per worker on the CPU, 2 on a GPU.
    pub sessions: Option<usize>,
    /// ONNX Runtime intra-op threads per session; `None`: cores / sessions on the CPU, 1 on a GPU.
    pub intra_threads: Option<usize>,
    /// Where the model runs: the CPU or a CUDA GPU.
    pub device: Device,
    pub image: ImageOptions,
    pub progress: ProgressMode,
    /// Seconds between plain progress lines.
    pub progress_interval: f64,
}

fn serialize_redacted<S: serde::Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact(v))
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
            storage_options
        )
    }

    /// Validates every value and fills in the defaults. `origin` names the sources for errors.
    pub fn resolve(self, origin: &str) -> Result<Settings, ConfigError> {
        let bad = |setting: &str, value: &str, hint: &str| ConfigError::Invalid {
            origin: origin.to_string(),
            setting: setting.to_string(),
            value: value.to_string(),
            hint: hint.to_string(),
        };
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

        let model = self.model.ok_or_else(|| ConfigError::Missing {
            setting: "model".into(),
            hint: "pass --model path/to/model.onnx (or model.path in the deployment file)".into(),
        })?;
        let input = self.input.ok_or_else(|| ConfigError::Missing {
            setting: "input".into(),
            hint: "pass --input with a folder or file of inputs".into(),
        })?;
        let output = self.output.ok_or_else(|| ConfigError::Missing {
            setting: "output".into(),
            hint: "pass --output with a folder that does not exist yet".into(),
        })?;

        let mini_batch = resolve_mini_batch(self.mini_batch_size.as_deref(), self.mini_batch_rows.as_deref(), &bad)?;
        let max_concurrency = parse_count(&self.max_concurrency, "max_concurrency", cores, 1, &bad)?;
        let instance_count = parse_count(&self.instance_count, "instance_count", 1, 1, &bad)?;
        let max_retries = parse_count(&self.max_retries, "max_retries", 3, 0, &bad)? as u32;
        let timeout = match &self.timeout {
            None => 30.0,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(t) if t > 0.0 && t.is_finite() => t,
                _ => return Err(bad("timeout", v, "give the seconds a mini-batch may take, a number > 0")),
            },
        };
        let error_threshold = match &self.error_threshold {
            None => -1,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(t) if t >= -1 => t,
                _ => {
                    return Err(bad(
                        "error_threshold",
                        v,
                        "give the number of failed items to tolerate (0 or more), or -1 to ignore all failures",
                    ));
                }
            },
        };
        let output_action = match self.output_action.as_deref().map(str::trim) {
            None | Some("append_row") => OutputAction::AppendRow,
            Some("summary_only") => OutputAction::SummaryOnly,
            Some(v) => return Err(bad("output_action", v, "use append_row or summary_only")),
        };
        let output_file_name = self.output_file_name.unwrap_or_else(|| "predictions.csv".into());
        let lower = output_file_name.to_ascii_lowercase();
        let output_format = if lower.ends_with(".csv") {
            OutputFormat::Csv
        } else if lower.ends_with(".parquet") {
            OutputFormat::Parquet
        } else {
            return Err(bad(
                "output_file_name",
                &output_file_name,
                "the name must end in .csv or .parquet, which picks the format",
            ));
        };
        if output_file_name.contains('/') || output_file_name.contains('\\') || output_file_name.starts_with('.') {
            return Err(bad(
                "output_file_name",
                &output_file_name,
                "give a plain file name such as predictions.csv; the folder is --output",
            ));
        }
        let logging_level = match self.logging_level.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            None => LogLevel::Info,
            Some(v) => match v.as_str() {
                "warning" | "warn" => LogLevel::Warning,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                _ => return Err(bad("logging_level", &v, "use warning, info or debug")),
            },
        };
        if let Some(p) = &self.pattern {
            globset::Glob::new(p)
                .map_err(|e| bad("pattern", p, &format!("not a valid glob ({e}); example: '*.csv'")))?;
        }
        let features = match self.features {
            Some(list) => Some(clean_list(list, "features", &bad)?),
            None => None,
        };
        let passthrough = match self.passthrough {
            Some(list) => clean_list(list, "passthrough", &bad)?,
            None => Vec::new(),
        };
        if let Some(f) = &features
            && let Some(both) = f.iter().find(|c| passthrough.contains(c))
        {
            return Err(bad(
                "passthrough",
                both,
                "a column cannot be both a feature and a pass-through column; it is copied as a feature input only",
            ));
        }
        let batch_size = match &self.batch_size {
            None => None,
            Some(v) => Some(parse_count(&Some(v.clone()), "batch_size", 1, 1, &bad)?),
        };
        let device = match self.device.as_deref().map(str::trim) {
            None => Device::Cpu,
            Some(v) => {
                Device::parse(v).ok_or_else(|| bad("device", v, "use cpu, cuda or cuda:N (N: the GPU's index)"))?
            }
        };
        let sessions = match &self.sessions {
            None => None,
            Some(v) => Some(parse_count(&Some(v.clone()), "sessions", 1, 1, &bad)?),
        };
        let intra_threads = match &self.intra_threads {
            None => None,
            Some(v) => Some(parse_count(&Some(v.clone()), "intra_threads", 1, 1, &bad)?),
        };

        let image = ImageOptions {
            size: match &self.image_size {
                None => None,
                Some(v) => Some(parse_size(v).ok_or_else(|| {
                    bad("image_size", v, "give WIDTHxHEIGHT such as 224x224, or one number for a square")
                })?),
            },
            channels: match self.channels.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
                None => None,
                Some(v) => Some(match v.as_str() {
                    "1" | "gray" | "grey" | "l" => 1,
                    "3" | "rgb" => 3,
                    "4" | "rgba" => 4,
                    _ => return Err(bad("channels", &v, "use 1 (gray), 3 (rgb) or 4 (rgba)")),
                }),
            },
            scale: match &self.scale {
                None => None,
                Some(v) => Some(parse_f32(v).ok_or_else(|| {
                    bad(
                        "scale",
                        v,
                        "give the factor pixels (0-255) are multiplied by, e.g. 0.00392156862745098 (1/255)",
                    )
                })?),
            },
            mean: match &self.mean {
                None => None,
                Some(v) => Some(parse_f32_list(v).ok_or_else(|| {
                    bad("mean", v, "give one number or one per channel, comma separated: 0.485,0.456,0.406")
                })?),
            },
            std: match &self.std {
                None => None,
                Some(v) => {
                    let list = parse_f32_list(v).filter(|l| l.iter().all(|x| *x != 0.0)).ok_or_else(|| {
                        bad("std", v, "give one non-zero number or one per channel, comma separated: 0.229,0.224,0.225")
                    })?;
                    Some(list)
                }
            },
            layout: match self.layout.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
                None => None,
                Some(v) => Some(match v.as_str() {
                    "nchw" => Layout::Nchw,
                    "nhwc" => Layout::Nhwc,
                    "flat" => Layout::Flat,
                    _ => return Err(bad("layout", &v, "use nchw, nhwc or flat")),
                }),
            },
            resize: match self.resize.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
                None => None,
                Some(v) => Some(match v.as_str() {
                    "stretch" => ResizeMode::Stretch,
                    "crop" => ResizeMode::Crop,
                    _ => return Err(bad("resize", &v, "use stretch or crop")),
                }),
            },
        };
        let progress = match self.progress.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            None => ProgressMode::Auto,
            Some(v) => match v.as_str() {
                "auto" => ProgressMode::Auto,
                "bar" => ProgressMode::Bar,
                "plain" => ProgressMode::Plain,
                "off" | "none" => ProgressMode::Off,
                _ => return Err(bad("progress", &v, "use auto, bar, plain or off")),
            },
        };
        let progress_interval = match &self.progress_interval {
            None => 10.0,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(t) if t > 0.0 && t.is_finite() => t,
                _ => return Err(bad("progress_interval", v, "give the seconds between progress lines, > 0")),
            },
        };
        let storage_options =
            StorageOptions::parse(self.storage_options.as_deref().unwrap_or_default()).map_err(|e| {
                ConfigError::Invalid {
                    origin: origin.to_string(),
                    setting: "storage_option".into(),
                    value: match &e {
                        StorageError::UnknownOption { key } => key.clone(),
                        _ => String::new(),
                    },
                    hint: e.to_string(),
                }
            })?;
        Ok(Settings {
            model,
            input,
            output,
            storage_options,
            mini_batch,
            max_concurrency,
            instance_count,
            output_action,
            output_file_name,
            output_format,
            max_retries,
            timeout,
            error_threshold,
            logging_level,
            pattern: self.pattern,
            features,
            passthrough,
            batch_size,
            sessions,
            intra_threads,
            device,
            image,
            progress,
            progress_interval,
        })
    }
}

/// `mini_batch_size` (a count of files, or a size) and `mini_batch_rows`: at most one of them.
fn resolve_mini_batch(
    size: Option<&str>,
    rows: Option<&str>,
    bad: &dyn Fn(&str, &str, &str) -> ConfigError,
) -> Result<MiniBatchTarget, ConfigError> {
    match (size, rows) {
        (Some(s), Some(r)) => Err(bad(
            "mini_batch_rows",
            r,
            &format!(
                "mini_batch_size ({}) is set too; a mini-batch is cut by files (mini_batch_size: 10), by input \
                 size (mini_batch_size: 64MB) or by rows (mini_batch_rows: 5000): give only one of them",
                s.trim()
            ),
        )),
        (None, Some(r)) => match r.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Ok(MiniBatchTarget::Rows(n)),
            _ => Err(bad("mini_batch_rows", r, "give the rows per mini-batch, a whole number >= 1, e.g. 50000")),
        },
        (Some(s), None) => {
            let t = s.trim();
            if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
                match t.parse::<usize>() {
                    Ok(n) if n >= 1 => Ok(MiniBatchTarget::Files(n)),
                    _ => Err(bad(
                        "mini_batch_size",
                        s,
                        "give a number of files >= 1 (e.g. 10), or for tabular inputs a size such as 64MB",
                    )),
                }
            } else {
                parse_byte_size(t).map(MiniBatchTarget::Bytes).ok_or_else(|| {
                    bad(
                        "mini_batch_size",
                        s,
                        "give a number of files >= 1 (e.g. 10), or for tabular inputs a size with a unit: \
                         B, KB, MB or GB (e.g. 64MB, 1048576B)",
                    )
                })
            }
        }
        (None, None) => Ok(MiniBatchTarget::Files(10)),
    }
}

fn parse_count(
    value: &Option<String>,
    setting: &str,
    default: usize,
    min: usize,
    bad: &dyn Fn(&str, &str, &str) -> ConfigError,
) -> Result<usize, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= min => Ok(n),
            _ => Err(bad(setting, v, &format!("give a whole number >= {min}"))),
        },
    }
}

fn clean_list(
    list: Vec<String>,
    setting: &str,
    bad: &dyn Fn(&str, &str, &str) -> ConfigError,
) -> Result<Vec<String>, ConfigError> {
    let cleaned: Vec<String> = list.iter().map(|s| s.trim().to_string()).collect();
    if cleaned.is_empty() || cleaned.iter().any(String::is_empty) {
        return Err(bad(setting, &list.join(","), "give column names separated by commas, e.g. a,b,c"));
    }
    for (i, c) in cleaned.iter().enumerate() {
        if cleaned[..i].contains(c) {
            return Err(bad(setting, &list.join(","), &format!("column {c:?} is listed twice")));
        }
    }
    Ok(cleaned)
}

fn parse_f32(s: &str) -> Option<f32> {
    let s = s.trim();
    // Accept a fraction such as 1/255: it is how people write pixel scales.
    let v = if let Some((a, b)) = s.split_once('/') {
        a.trim().parse::<f64>().ok()? / b.trim().parse::<f64>().ok()?
    } else {
        s.parse::<f64>().ok()?
    };
    v.is_finite().then_some(v as f32)
}

fn parse_f32_list(s: &str) -> Option<Vec<f32>> {
    let list: Option<Vec<f32>> = s.split(',').map(parse_f32).collect();
    list.filter(|l| l.len() == 1 || l.len() == 3 || l.len() == 4)
}

fn parse_size(s: &str) -> Option<(u32, u32)> {
    let s = s.trim().to_ascii_lowercase();
    let (w, h) = match s.split_once('x') {
        Some((w, h)) => (w.trim().parse().ok()?, h.trim().parse().ok()?),
        None => {
            let n: u32 = s.parse().ok()?;
            (n, n)
        }
    };
    (w > 0 && h > 0 && w <= 65_535 && h <= 65_535).then_some((w, h))
}

/// A deployment file, read into raw settings plus what it said that batchscore does not use.
#[derive(Debug, Clone, Default)]
pub struct Deployment {
    pub settings: RawSettings,
    /// Fields that mean something in Azure ML but nothing here, reported as ignored.
    pub ignored: Vec<String>,
    /// Notes about values read but not fully honoured (e.g. a registry model reference).
    pub notes: Vec<String>,
}

/// Fields of the Azure ML batch deployment schema that batchscore reads, at the top level
/// (older schema) or under `settings:`.
const SETTING_KEYS: &[&str] = &[
    "mini_batch_size",
    "max_concurrency_per_instance",
    "output_action",
    "output_file_name",
    "retry_settings",
    "error_threshold",
    "logging_level",
    "environment_variables",
    "instance_count",
];

/// Fields that describe the deployment but do not change how the job runs.
const DESCRIPTIVE_KEYS: &[&str] = &["$schema", "name", "description", "endpoint_name", "type", "tags", "properties"];

impl Deployment {
    /// Reads a deployment YAML. A relative `model.path` is taken relative to the file's folder.
    pub fn load(path: &Path) -> Result<Deployment, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let doc: Value =
            serde_yaml_ng::from_str(&text).map_err(|source| ConfigError::Yaml { path: path.to_path_buf(), source })?;
        let origin = path.display().to_string();
        let base = path.parent().unwrap_or(Path::new("."));
        let Value::Mapping(top) = doc else {
            return Err(ConfigError::Invalid {
                origin,
                setting: "(top level)".into(),
                value: String::new(),
                hint: "a deployment file is a YAML mapping such as `settings: {mini_batch_size: 10}`".into(),
            });
        };
        let mut dep = Deployment::default();
        let mut seen_settings = Mapping::new();
        for (k, v) in &top {
            let key = key_str(k, &origin)?;
            match key.as_str() {
                "model" => read_model(v, base, &origin, &mut dep)?,
                "settings" => {
                    let Value::Mapping(m) = v else {
                        return Err(invalid(&origin, "settings", v, "expected a mapping of settings"));
                    };
                    for (sk, sv) in m {
                        seen_settings.insert(sk.clone(), sv.clone());
                    }
                }
                "resources" => {
                    if let Value::Mapping(m) = v {
                        for (rk, rv) in m {
                            let rk = key_str(rk, &origin)?;
                            if rk == "instance_count" {
                                dep.settings.instance_count = Some(scalar(rv, &origin, "resources.instance_count")?);
                            } else {
                                dep.ignored.push(format!("resources.{rk}"));
                            }
                        }
                    }
                }
                "batchscore" => read_extension(v, &origin, &mut dep)?,
                k if SETTING_KEYS.contains(&k) => {
                    seen_settings.insert(Value::String(k.to_string()), v.clone());
                }
                k if DESCRIPTIVE_KEYS.contains(&k) => {}
                other => dep.ignored.push(other.to_string()),
            }
        }
        for (k, v) in &seen_settings {
            let key = key_str(k, &origin)?;
            let s = &mut dep.settings;
            let name = format!("settings.{key}");
            match key.as_str() {
                "mini_batch_size" => s.mini_batch_size = Some(scalar(v, &origin, &name)?),
                "max_concurrency_per_instance" => s.max_concurrency = Some(scalar(v, &origin, &name)?),
                "output_action" => s.output_action = Some(scalar(v, &origin, &name)?),
                "output_file_name" => s.output_file_name = Some(scalar(v, &origin, &name)?),
                "error_threshold" => s.error_threshold = Some(scalar(v, &origin, &name)?),
                "logging_level" => s.logging_level = Some(scalar(v, &origin, &name)?),
                "instance_count" => s.instance_count = Some(scalar(v, &origin, &name)?),
                "retry_settings" => {
                    let Value::Mapping(m) = v else {
                        return Err(invalid(
                            &origin,
                            &name,
                            v,
                            "expected `retry_settings: {max_retries: 3, timeout: 30}`",
                        ));
                    };
                    for (rk, rv) in m {
                        let rk = key_str(rk, &origin)?;
                        let rname = format!("{name}.{rk}");
                        match rk.as_str() {
                            "max_retries" => s.max_retries = Some(scalar(rv, &origin, &rname)?),
                            "timeout" => s.timeout = Some(scalar(rv, &origin, &rname)?),
                            _ => dep.ignored.push(rname),
                        }
                    }
                }
                _ => dep.ignored.push(name),
            }
        }
        Ok(dep)
    }
}

fn read_model(v: &Value, base: &Path, origin: &str, dep: &mut Deployment) -> Result<(), ConfigError> {
    let path = match v {
        Value::String(s) => s.clone(),
        Value::Mapping(m) => match m.get("path") {
            Some(p) => scalar(p, origin, "model.path")?,
            None => {
                dep.notes.push("model has no `path`; pass --model".into());
                return Ok(());
            }
        },
        other => return Err(invalid(origin, "model", other, "expected `model: {path: model.onnx}`")),
    };
    if path.starts_with("azureml:") {
        dep.notes.push(format!(
            "model {path} refers to an Azure ML registry, which batchscore cannot reach; pass --model with a local path or URL"
        ));
        return Ok(());
    }
    let resolved = if path.contains("://") || Path::new(&path).is_absolute() {
        path
    } else {
        base.join(&path).display().to_string()
    };
    dep.settings.model = Some(resolved);
    Ok(())
}

fn read_extension(v: &Value, origin: &str, dep: &mut Deployment) -> Result<(), ConfigError> {
    let Value::Mapping(m) = v else {
        return Err(invalid(origin, "batchscore", v, "expected a mapping such as `batchscore: {batch_size: 256}`"));
    };
    for (k, v) in m {
        let key = key_str(k, origin)?;
        let name = format!("batchscore.{key}");
        let s = &mut dep.settings;
        match key.as_str() {
            "pattern" => s.pattern = Some(scalar(v, origin, &name)?),
            "features" => s.features = Some(list(v, origin, &name)?),
            "passthrough" => s.passthrough = Some(list(v, origin, &name)?),
            "batch_size" => s.batch_size = Some(scalar(v, origin, &name)?),
            "sessions" => s.sessions = Some(scalar(v, origin, &name)?),
            "intra_threads" => s.intra_threads = Some(scalar(v, origin, &name)?),
            "device" => s.device = Some(scalar(v, origin, &name)?),
            "mini_batch_rows" => s.mini_batch_rows = Some(scalar(v, origin, &name)?),
            "image_size" => s.image_size = Some(scalar(v, origin, &name)?),
            "channels" => s.channels = Some(scalar(v, origin, &name)?),
            "scale" => s.scale = Some(scalar(v, origin, &name)?),
            "mean" => s.mean = Some(list(v, origin, &name)?.join(",")),
            "std" => s.std = Some(list(v, origin, &name)?.join(",")),
            "layout" => s.layout = Some(scalar(v, origin, &name)?),
            "resize" => s.resize = Some(scalar(v, origin, &name)?),
            _ => {
                return Err(invalid(
                    origin,
                    &name,
                    v,
                    "unknown batchscore option; known: pattern, features, passthrough, batch_size, sessions, intra_threads, device, \
                     mini_batch_rows, image_size, channels, scale, mean, std, layout, resize",
                ));
            }
        }
    }
    Ok(())
}

fn key_str(k: &Value, origin: &str) -> Result<String, ConfigError> {
    match k {
        Value::String(s) => Ok(s.clone()),
        other => Err(invalid(origin, "(key)", other, "keys must be plain names")),
    }
}

fn scalar(v: &Value, origin: &str, name: &str) -> Result<String, ConfigError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(invalid(origin, name, other, "expected a single value")),
    }
}

fn list(v: &Value, origin: &str, name: &str) -> Result<Vec<String>, ConfigError> {
    match v {
        Value::Sequence(items) => items.iter().map(|i| scalar(i, origin, name)).collect(),
        Value::String(s) => Ok(s.split(',').map(|x| x.trim().to_string()).collect()),
        Value::Number(n) => Ok(vec![n.to_string()]),
        other => Err(invalid(origin, name, other, "expected a list such as [a, b, c]")),
    }
}

fn invalid(origin: &str, setting: &str, v: &Value, hint: &str) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        setting: setting.to_string(),
        value: serde_yaml_ng::to_string(v).unwrap_or_default().trim().to_string(),
        hint: hint.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw() -> RawSettings {
        RawSettings {
            model: Some("m.onnx".into()),
            input: Some("in".into()),
            output: Some("out".into()),
            ..Default::default()
        }
    }

    #[test]
    fn defaults_are_azure_ml_defaults() {
        let s = raw().resolve("flags").unwrap();
        assert_eq!(s.mini_batch, MiniBatchTarget::Files(10));
        assert_eq!(s.max_retries, 3);
        assert_eq!(s.timeout, 30.0);
        assert_eq!(s.error_threshold, -1);
        assert_eq!(s.output_action, OutputAction::AppendRow);
        assert_eq!(s.output_file_name, "predictions.csv");
        assert_eq!(s.output_format, OutputFormat::Csv);
        assert_eq!(s.logging_level, LogLevel::Info);
    }

    #[test]
    fn bad_values_name_the_setting() {
        let mut r = raw();
        r.mini_batch_size = Some("0".into());
        let e = r.resolve("flags").unwrap_err().to_string();
        assert!(e.contains("mini_batch_size") && e.contains("\"0\""), "{e}");
        let mut r = raw();
        r.output_file_name = Some("out.json".into());
        let e = r.resolve("flags").unwrap_err().to_string();
        assert!(e.contains("output_file_name") && e.contains(".parquet"), "{e}");
        let mut r = raw();
        r.error_threshold = Some("-2".into());
        assert!(r.resolve("flags").unwrap_err().to_string().contains("error_threshold"));
    }

    #[test]
    fn flags_win_over_file() {
        let flags = RawSettings { mini_batch_size: Some("3".into()), ..raw() };
        let file =
            RawSettings { mini_batch_size: Some("7".into()), max_retries: Some("5".into()), ..Default::default() };
        let s = flags.over(file).resolve("x").unwrap();
        assert_eq!((s.mini_batch, s.max_retries), (MiniBatchTarget::Files(3), 5));
    }

    #[test]
    fn byte_sizes_parse_in_binary_units() {
        assert_eq!(parse_byte_size("64MB"), Some(64 << 20));
        assert_eq!(parse_byte_size(" 64 mb "), Some(64 << 20));
        assert_eq!(parse_byte_size("1KB"), Some(1024));
        assert_eq!(parse_byte_size("1kib"), Some(1024));
        assert_eq!(parse_byte_size("1048576B"), Some(1 << 20));
        assert_eq!(parse_byte_size("1.5GB"), Some(3 << 29));
        assert_eq!(parse_byte_size("2TB"), Some(2 << 40));
        for bad in ["64", "MB", "0KB", "0.0001B", "-1MB", "1e3MB", "12XB", "1.2.3MB", "99999999999TB", ""] {
            assert_eq!(parse_byte_size(bad), None, "{bad:?}");
        }
        assert_eq!(format_byte_size(64 << 20), "64MB");
        assert_eq!(format_byte_size(1536), "1536B");
        assert_eq!(format_byte_size(3 << 29), "1536MB");
        assert_eq!(format_byte_size(1000), "1000B");
    }

    #[test]
    fn mini_batch_forms_and_their_clashes() {
        let with = |size: Option<&str>, rows: Option<&str>| RawSettings {
            mini_batch_size: size.map(str::to_string),
            mini_batch_rows: rows.map(str::to_string),
            ..raw()
        };
        assert_eq!(raw().resolve("f").unwrap().mini_batch, MiniBatchTarget::Files(10));
        let s = with(Some("3"), None).resolve("f").unwrap();
        assert_eq!(s.mini_batch, MiniBatchTarget::Files(3));
        assert_eq!(with(Some("64MB"), None).resolve("f").unwrap().mini_batch, MiniBatchTarget::Bytes(64 << 20));
        assert_eq!(with(None, Some("500")).resolve("f").unwrap().mini_batch, MiniBatchTarget::Rows(500));
        let e = with(Some("64MB"), Some("500")).resolve("f").unwrap_err().to_string();
        assert!(e.contains("mini_batch_rows") && e.contains("mini_batch_size (64MB)"), "{e}");
        let e = with(None, Some("0")).resolve("f").unwrap_err().to_string();
        assert!(e.contains("mini_batch_rows") && e.contains(">= 1"), "{e}");
        let e = with(Some("12XB"), None).resolve("f").unwrap_err().to_string();
        assert!(e.contains("mini_batch_size") && e.contains("12XB") && e.contains("64MB"), "{e}");
        // A flag for one form replaces the deployment file's other form.
        let s = with(None, Some("20")).over(RawSettings { mini_batch_size: Some("2".into()), ..Default::default() });
        assert_eq!(s.resolve("f").unwrap().mini_batch, MiniBatchTarget::Rows(20));
        // The report names the form used.
        let json = |t: MiniBatchTarget| serde_json::to_value(t).unwrap();
        assert_eq!(json(MiniBatchTarget::Files(10)), serde_json::json!({"mini_batch_size": 10}));
        assert_eq!(json(MiniBatchTarget::Rows(20)), serde_json::json!({"mini_batch_rows": 20}));
        assert_eq!(
            json(MiniBatchTarget::Bytes(1024)),
            serde_json::json!({"mini_batch_size": "1KB", "mini_batch_bytes": 1024})
        );
    }

    #[test]
    fn parses_sizes_and_fractions() {
        assert_eq!(parse_size("224x200"), Some((224, 200)));
        assert_eq!(parse_size("64"), Some((64, 64)));
        assert_eq!(parse_size("0x3"), None);
        assert!((parse_f32("1/255").unwrap() - 1.0 / 255.0).abs() < 1e-9);
        assert_eq!(parse_f32_list("1,2"), None);
    }
}
