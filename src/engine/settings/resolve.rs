//! Validation: every raw value checked, bounded ([`limits`]) and given its default.
//!
//! [`RawSettings::resolve`] is the one place a value becomes a setting. Each error names the
//! setting, the value, where it came from (flags, a deployment file) and what to write instead.
//! Values that would make the job absurd (a million threads, a batch of a billion rows, a
//! timeout of years) are refused here, before any work, rather than found out by the machine.

use super::*;
use crate::storage::StorageError;

/// Bounds on settings, and the defaults of the input guards.
pub mod limits {
    /// Workers per process.
    pub const MAX_CONCURRENCY: usize = 1024;
    /// ONNX Runtime sessions per process.
    pub const MAX_SESSIONS: usize = 256;
    /// ONNX Runtime threads per session.
    pub const MAX_INTRA_THREADS: usize = 1024;
    pub const MAX_RETRIES: usize = 100;
    /// Rows or images per model call.
    pub const MAX_BATCH_SIZE: usize = 1 << 20;
    /// Seconds per mini-batch attempt: a week.
    pub const MAX_TIMEOUT: f64 = 7.0 * 24.0 * 3600.0;
    pub const MAX_FILES_PER_MINI_BATCH: usize = 1_000_000;
    pub const MAX_ROWS_PER_MINI_BATCH: u64 = 1_000_000_000;
    pub const MAX_INSTANCES: usize = 10_000;
    pub const MAX_PROGRESS_INTERVAL: f64 = 24.0 * 3600.0;
    /// PIL's decompression-bomb error threshold (twice its warning at 89,478,485 pixels).
    pub const DEFAULT_MAX_IMAGE_PIXELS: u64 = 178_956_970;
    pub const MAX_IMAGE_PIXELS: u64 = 1 << 34;
    /// A CSV record or JSON line longer than this fails alone.
    pub const DEFAULT_MAX_RECORD_BYTES: u64 = 32 << 20;
    pub const MAX_RECORD_BYTES: u64 = 2 << 30;
}

/// Makes [`ConfigError::Invalid`] errors that name the sources.
struct Bad<'a> {
    origin: &'a str,
}

impl Bad<'_> {
    fn err(&self, setting: &str, value: &str, hint: &str) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            setting: setting.to_string(),
            value: value.to_string(),
            hint: hint.to_string(),
        }
    }

    /// A whole number in `min..=max`, or `default` when not given.
    fn count(
        &self,
        value: &Option<String>,
        setting: &str,
        default: usize,
        min: usize,
        max: usize,
    ) -> Result<usize, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) => match v.trim().parse::<u64>() {
                Ok(n) if n >= min as u64 && n <= max as u64 => Ok(n as usize),
                _ => Err(self.err(setting, v, &format!("give a whole number >= {min} and at most {max}"))),
            },
        }
    }

    /// An optional count (no default).
    fn opt_count(&self, value: &Option<String>, setting: &str, max: usize) -> Result<Option<usize>, ConfigError> {
        value.as_ref().map(|_| self.count(value, setting, 1, 1, max)).transpose()
    }

    /// Seconds in `(0, max]`.
    fn seconds(
        &self,
        value: &Option<String>,
        setting: &str,
        default: f64,
        max: f64,
        what: &str,
    ) -> Result<f64, ConfigError> {
        match value {
            None => Ok(default),
            Some(v) => match v.trim().parse::<f64>() {
                Ok(t) if t > 0.0 && t <= max => Ok(t),
                _ => Err(self.err(setting, v, &format!("give {what}, a number of seconds > 0 and at most {max}"))),
            },
        }
    }

    fn flag(&self, value: &Option<String>, setting: &str) -> Result<bool, ConfigError> {
        match value.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) => match v.as_str() {
                "true" | "yes" | "on" | "1" => Ok(true),
                "false" | "no" | "off" | "0" => Ok(false),
                _ => Err(self.err(setting, &v, "use true or false")),
            },
        }
    }
}

impl RawSettings {
    /// Validates every value and fills in the defaults. `origin` names the sources for errors.
    pub fn resolve(self, origin: &str) -> Result<Settings, ConfigError> {
        let bad = Bad { origin };
        let missing = |setting: &str, hint: &str| ConfigError::Missing { setting: setting.into(), hint: hint.into() };
        let model = self.model.clone().ok_or_else(|| {
            missing("model", "pass --model path/to/model.onnx (or model.path in the deployment file)")
        })?;
        let input =
            self.input.clone().ok_or_else(|| missing("input", "pass --input with a folder or file of inputs"))?;
        let output = self
            .output
            .clone()
            .ok_or_else(|| missing("output", "pass --output with a folder that does not exist yet"))?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

        let mini_batch = resolve_mini_batch(self.mini_batch_size.as_deref(), self.mini_batch_rows.as_deref(), &bad)?;
        let max_concurrency = bad.count(
            &self.max_concurrency,
            "max_concurrency",
            cores.min(limits::MAX_CONCURRENCY),
            1,
            limits::MAX_CONCURRENCY,
        )?;
        let instance_count = bad.count(&self.instance_count, "instance_count", 1, 1, limits::MAX_INSTANCES)?;
        let max_retries = bad.count(&self.max_retries, "max_retries", 3, 0, limits::MAX_RETRIES)? as u32;
        let timeout =
            bad.seconds(&self.timeout, "timeout", 30.0, limits::MAX_TIMEOUT, "the seconds a mini-batch may take")?;
        let error_threshold = match &self.error_threshold {
            None => -1,
            Some(v) => match v.trim().parse::<i64>() {
                Ok(t) if t >= -1 => t,
                _ => {
                    return Err(bad.err(
                        "error_threshold",
                        v,
                        "give the number of failed items to tolerate (0 or more), or -1 to ignore all failures",
                    ));
                }
            },
        };
        let (output_action, output_file_name, output_format) = self.resolve_output(&bad)?;
        let logging_level = match self.logging_level.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            None => LogLevel::Info,
            Some(v) => match v.as_str() {
                "warning" | "warn" => LogLevel::Warning,
                "info" => LogLevel::Info,
                "debug" => LogLevel::Debug,
                _ => return Err(bad.err("logging_level", &v, "use warning, info or debug")),
            },
        };
        if let Some(p) = &self.pattern {
            globset::Glob::new(p)
                .map_err(|e| bad.err("pattern", p, &format!("not a valid glob ({e}); example: '*.csv'")))?;
        }
        let (features, passthrough) = self.resolve_columns(&bad)?;
        let device = match self.device.as_deref().map(str::trim) {
            None => Device::Cpu,
            Some(v) => {
                Device::parse(v).ok_or_else(|| bad.err("device", v, "use cpu, cuda or cuda:N (N: the GPU's index)"))?
            }
        };
        let graph_optimization = match self.graph_optimization_level.as_deref() {
            None => GraphOptimization::All,
            Some(v) => GraphOptimization::parse(v)
                .ok_or_else(|| bad.err("graph_optimization_level", v, "use disable_all, basic, extended or all"))?,
        };
        let progress = match self.progress.as_deref().map(|s| s.trim().to_ascii_lowercase()) {
            None => ProgressMode::Auto,
            Some(v) => match v.as_str() {
                "auto" => ProgressMode::Auto,
                "bar" => ProgressMode::Bar,
                "plain" => ProgressMode::Plain,
                "off" | "none" => ProgressMode::Off,
                _ => return Err(bad.err("progress", &v, "use auto, bar, plain or off")),
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
            graph_optimization,
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
            pattern: self.pattern.clone(),
            features,
            passthrough,
            tabular: self.resolve_tabular(&bad)?,
            batch_size: bad.opt_count(&self.batch_size, "batch_size", limits::MAX_BATCH_SIZE)?,
            sessions: bad.opt_count(&self.sessions, "sessions", limits::MAX_SESSIONS)?,
            intra_threads: bad.opt_count(&self.intra_threads, "intra_threads", limits::MAX_INTRA_THREADS)?,
            device,
            image: self.resolve_image(&bad)?,
            progress,
            progress_interval: bad.seconds(
                &self.progress_interval,
                "progress_interval",
                10.0,
                limits::MAX_PROGRESS_INTERVAL,
                "the seconds between progress lines",
            )?,
        })
    }

    fn resolve_output(&self, bad: &Bad) -> Result<(OutputAction, String, OutputFormat), ConfigError> {
        let output_action = match self.output_action.as_deref().map(str::trim) {
            None | Some("append_row") => OutputAction::AppendRow,
            Some("summary_only") => OutputAction::SummaryOnly,
            Some(v) => return Err(bad.err("output_action", v, "use append_row or summary_only")),
        };
        let output_file_name = self.output_file_name.clone().unwrap_or_else(|| "predictions.csv".into());
        let lower = output_file_name.to_ascii_lowercase();
        let output_format = if lower.ends_with(".csv") {
            OutputFormat::Csv
        } else if lower.ends_with(".parquet") {
            OutputFormat::Parquet
        } else {
            return Err(bad.err(
                "output_file_name",
                &output_file_name,
                "the name must end in .csv or .parquet, which picks the format",
            ));
        };
        if output_file_name.contains('/') || output_file_name.contains('\\') || output_file_name.starts_with('.') {
            return Err(bad.err(
                "output_file_name",
                &output_file_name,
                "give a plain file name such as predictions.csv; the folder is --output",
            ));
        }
        Ok((output_action, output_file_name, output_format))
    }

    /// `--features` and `--passthrough` (with the types asked for: `id:int64`).
    fn resolve_columns(&self, bad: &Bad) -> Result<(Option<Vec<String>>, Vec<PassColumn>), ConfigError> {
        let features = match &self.features {
            Some(list) => Some(clean_list(list, "features", bad)?),
            None => None,
        };
        let passthrough: Vec<PassColumn> = match &self.passthrough {
            Some(list) => clean_list(list, "passthrough", bad)?.into_iter().map(pass_column).collect(),
            None => Vec::new(),
        };
        for (i, p) in passthrough.iter().enumerate() {
            if passthrough[..i].iter().any(|q| q.name == p.name) {
                return Err(bad.err("passthrough", &p.name, &format!("column {:?} is listed twice", p.name)));
            }
        }
        if let Some(f) = &features
            && let Some(both) = passthrough.iter().find(|p| f.contains(&p.name))
        {
            return Err(bad.err(
                "passthrough",
                &both.name,
                "a column cannot be both a feature and a pass-through column; it is copied as a feature input only",
            ));
        }
        Ok((features, passthrough))
    }

    fn resolve_tabular(&self, bad: &Bad) -> Result<TabularOptions, ConfigError> {
        let delimiter = match self.csv_delimiter.as_deref() {
            None => None,
            Some(v) => Some(parse_delimiter(v).ok_or_else(|| {
                bad.err("csv_delimiter", v, "give one ASCII character such as ';' or '|', or 'tab' (\\t)")
            })?),
        };
        let decimal_mark = match self.decimal_mark.as_deref().map(str::trim) {
            None | Some(".") => '.',
            Some(",") if delimiter.is_some_and(|d| d != b',') => ',',
            Some(",") => {
                return Err(bad.err(
                    "decimal_mark",
                    ",",
                    "a decimal comma needs another field delimiter: add --csv-delimiter ';' (as European spreadsheets write)",
                ));
            }
            Some(v) => return Err(bad.err("decimal_mark", v, "use '.' or ','")),
        };
        let max_record_bytes = match self.max_record_size.as_deref() {
            None => limits::DEFAULT_MAX_RECORD_BYTES,
            Some(v) => {
                parse_byte_size(v).filter(|b| (1024..=limits::MAX_RECORD_BYTES).contains(b)).ok_or_else(|| {
                    bad.err("max_record_size", v, "give a size of at least 1KB and at most 2GB, e.g. 64MB")
                })?
            }
        };
        Ok(TabularOptions {
            delimiter,
            decimal_mark,
            allow_non_finite: bad.flag(&self.allow_non_finite, "allow_non_finite")?,
            missing_as_nan: bad.flag(&self.missing_as_nan, "missing_as_nan")?,
            max_record_bytes,
        })
    }

    fn resolve_image(&self, bad: &Bad) -> Result<ImageOptions, ConfigError> {
        let lower = |v: &Option<String>| v.as_deref().map(|s| s.trim().to_ascii_lowercase());
        let size = match &self.image_size {
            None => None,
            Some(v) => Some(parse_size(v).ok_or_else(|| {
                bad.err("image_size", v, "give WIDTHxHEIGHT such as 224x224, or one number for a square")
            })?),
        };
        let channels = match lower(&self.channels) {
            None => None,
            Some(v) => Some(match v.as_str() {
                "1" | "gray" | "grey" | "l" => 1,
                "3" | "rgb" => 3,
                "4" | "rgba" => 4,
                _ => return Err(bad.err("channels", &v, "use 1 (gray), 3 (rgb) or 4 (rgba)")),
            }),
        };
        let scale = match &self.scale {
            None => None,
            Some(v) => Some(parse_f32(v).ok_or_else(|| {
                bad.err(
                    "scale",
                    v,
                    "give the factor pixels (0-255) are multiplied by, e.g. 0.00392156862745098 (1/255)",
                )
            })?),
        };
        let mean = match &self.mean {
            None => None,
            Some(v) => Some(parse_f32_list(v).ok_or_else(|| {
                bad.err("mean", v, "give one number or one per channel, comma separated: 0.485,0.456,0.406")
            })?),
        };
        let std = match &self.std {
            None => None,
            Some(v) => Some(parse_f32_list(v).filter(|l| l.iter().all(|x| *x != 0.0)).ok_or_else(|| {
                bad.err("std", v, "give one non-zero number or one per channel, comma separated: 0.229,0.224,0.225")
            })?),
        };
        let layout = match lower(&self.layout) {
            None => None,
            Some(v) => Some(match v.as_str() {
                "nchw" => Layout::Nchw,
                "nhwc" => Layout::Nhwc,
                "flat" => Layout::Flat,
                _ => return Err(bad.err("layout", &v, "use nchw, nhwc or flat")),
            }),
        };
        let resize = match lower(&self.resize) {
            None => None,
            Some(v) => Some(match v.as_str() {
                "stretch" => ResizeMode::Stretch,
                "crop" => ResizeMode::Crop,
                _ => return Err(bad.err("resize", &v, "use stretch or crop")),
            }),
        };
        let exif = match lower(&self.exif_orientation) {
            None => ExifMode::Apply,
            Some(v) => match v.as_str() {
                "apply" | "true" | "yes" => ExifMode::Apply,
                "ignore" | "false" | "no" => ExifMode::Ignore,
                _ => return Err(bad.err("exif_orientation", &v, "use apply (rotate photos as viewers do) or ignore")),
            },
        };
        let max_pixels = match &self.max_image_pixels {
            None => limits::DEFAULT_MAX_IMAGE_PIXELS,
            Some(v) => match v.trim().replace('_', "").parse::<u64>() {
                Ok(n) if (1..=limits::MAX_IMAGE_PIXELS).contains(&n) => n,
                _ => {
                    return Err(bad.err(
                        "max_image_pixels",
                        v,
                        &format!("give a whole number of pixels >= 1 and at most {}", limits::MAX_IMAGE_PIXELS),
                    ));
                }
            },
        };
        let jpeg_scaled = match lower(&self.jpeg_decode) {
            None => true,
            Some(v) => match v.as_str() {
                "scaled" => true,
                "full" => false,
                _ => {
                    return Err(bad.err(
                        "jpeg_decode",
                        &v,
                        "use scaled (decode at 1/2, 1/4 or 1/8 of the size when the model's input is that much smaller, \
                         as PIL's Image.draft) or full (decode every pixel, then resize)",
                    ));
                }
            },
        };
        Ok(ImageOptions { size, channels, scale, mean, std, layout, resize, exif, max_pixels, jpeg_scaled })
    }
}

/// `name` or `name:type` (a known type after the last colon); anything else is a plain name,
/// so that a column such as `Unnamed: 0` keeps its colon.
fn pass_column(item: String) -> PassColumn {
    if let Some((name, kind)) = item.rsplit_once(':')
        && let Some(kind) = PassType::parse(kind)
        && !name.trim().is_empty()
    {
        return PassColumn { name: name.trim().to_string(), kind: Some(kind) };
    }
    PassColumn { name: item, kind: None }
}

fn parse_delimiter(v: &str) -> Option<u8> {
    match v {
        "tab" | "\\t" | "\t" | "TAB" => Some(b'\t'),
        s if s.len() == 1 && s.is_ascii() && !matches!(s, "\"" | "\n" | "\r") => Some(s.as_bytes()[0]),
        _ => None,
    }
}

/// `mini_batch_size` (a count of files, or a size) and `mini_batch_rows`: at most one of them.
fn resolve_mini_batch(size: Option<&str>, rows: Option<&str>, bad: &Bad) -> Result<MiniBatchTarget, ConfigError> {
    match (size, rows) {
        (Some(s), Some(r)) => Err(bad.err(
            "mini_batch_rows",
            r,
            &format!(
                "mini_batch_size ({}) is set too; a mini-batch is cut by files (mini_batch_size: 10), by input \
                 size (mini_batch_size: 64MB) or by rows (mini_batch_rows: 5000): give only one of them",
                s.trim()
            ),
        )),
        (None, Some(r)) => match r.trim().parse::<u64>() {
            Ok(n) if (1..=limits::MAX_ROWS_PER_MINI_BATCH).contains(&n) => Ok(MiniBatchTarget::Rows(n)),
            _ => Err(bad.err(
                "mini_batch_rows",
                r,
                &format!(
                    "give the rows per mini-batch, a whole number >= 1 and at most {}, e.g. 50000",
                    limits::MAX_ROWS_PER_MINI_BATCH
                ),
            )),
        },
        (Some(s), None) => {
            let t = s.trim();
            if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
                match t.parse::<usize>() {
                    Ok(n) if (1..=limits::MAX_FILES_PER_MINI_BATCH).contains(&n) => Ok(MiniBatchTarget::Files(n)),
                    _ => Err(bad.err(
                        "mini_batch_size",
                        s,
                        &format!(
                            "give a number of files >= 1 and at most {} (e.g. 10), or for tabular inputs a size such as 64MB",
                            limits::MAX_FILES_PER_MINI_BATCH
                        ),
                    )),
                }
            } else {
                parse_byte_size(t).map(MiniBatchTarget::Bytes).ok_or_else(|| {
                    bad.err(
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

fn clean_list(list: &[String], setting: &str, bad: &Bad) -> Result<Vec<String>, ConfigError> {
    let cleaned: Vec<String> = list.iter().map(|s| s.trim().to_string()).collect();
    if cleaned.is_empty() || cleaned.iter().any(String::is_empty) {
        return Err(bad.err(setting, &list.join(","), "give column names separated by commas, e.g. a,b,c"));
    }
    for (i, c) in cleaned.iter().enumerate() {
        if cleaned[..i].contains(c) {
            return Err(bad.err(setting, &list.join(","), &format!("column {c:?} is listed twice")));
        }
    }
    Ok(cleaned)
}

pub(super) fn parse_f32(s: &str) -> Option<f32> {
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

pub(super) fn parse_size(s: &str) -> Option<(u32, u32)> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::settings::PassType;

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
    fn jpeg_decode_is_scaled_unless_full_is_asked_for() {
        assert!(raw().resolve("flags").unwrap().image.jpeg_scaled);
        let r = RawSettings { jpeg_decode: Some("Full".into()), ..raw() };
        assert!(!r.resolve("flags").unwrap().image.jpeg_scaled);
        let r = RawSettings { jpeg_decode: Some("draft".into()), ..raw() };
        let e = r.resolve("flags").unwrap_err().to_string();
        assert!(
            e.contains("jpeg_decode") && e.contains("\"draft\"") && e.contains("scaled") && e.contains("full"),
            "{e}"
        );
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
    fn absurd_values_are_refused_with_the_bound() {
        for (set, name) in [
            (RawSettings { max_concurrency: Some("1000000".into()), ..raw() }, "max_concurrency"),
            (RawSettings { sessions: Some("100000".into()), ..raw() }, "sessions"),
            (RawSettings { intra_threads: Some("99999".into()), ..raw() }, "intra_threads"),
            (RawSettings { max_retries: Some("1000000000".into()), ..raw() }, "max_retries"),
            (RawSettings { batch_size: Some("1000000000".into()), ..raw() }, "batch_size"),
            (RawSettings { timeout: Some("1e12".into()), ..raw() }, "timeout"),
            (RawSettings { timeout: Some("inf".into()), ..raw() }, "timeout"),
            (RawSettings { timeout: Some("NaN".into()), ..raw() }, "timeout"),
            (RawSettings { mini_batch_size: Some("99999999999".into()), ..raw() }, "mini_batch_size"),
            (RawSettings { max_image_pixels: Some("0".into()), ..raw() }, "max_image_pixels"),
            (RawSettings { max_record_size: Some("10B".into()), ..raw() }, "max_record_size"),
        ] {
            let e = set.resolve("flags").unwrap_err().to_string();
            assert!(e.contains(name) && e.contains("at most"), "{name}: {e}");
        }
        let s = RawSettings { max_concurrency: Some("1024".into()), ..raw() }.resolve("f").unwrap();
        assert_eq!(s.max_concurrency, 1024);
    }

    #[test]
    fn passthrough_types_and_csv_dialect() {
        let s = RawSettings {
            passthrough: Some(vec!["id:int64".into(), "Unnamed: 0".into(), "p:decimal(10,2)".into(), "ts".into()]),
            csv_delimiter: Some(";".into()),
            decimal_mark: Some(",".into()),
            allow_non_finite: Some("true".into()),
            ..raw()
        }
        .resolve("f")
        .unwrap();
        let cols: Vec<(&str, Option<PassType>)> = s.passthrough.iter().map(|p| (p.name.as_str(), p.kind)).collect();
        assert_eq!(
            cols,
            [
                ("id", Some(PassType::Int64)),
                ("Unnamed: 0", None),
                ("p", Some(PassType::Decimal { precision: 10, scale: 2 })),
                ("ts", None)
            ]
        );
        assert_eq!((s.tabular.delimiter, s.tabular.decimal_mark, s.tabular.allow_non_finite), (Some(b';'), ',', true));
        let e = RawSettings { decimal_mark: Some(",".into()), ..raw() }.resolve("f").unwrap_err().to_string();
        assert!(e.contains("--csv-delimiter ';'"), "{e}");
        let tab = RawSettings { csv_delimiter: Some("tab".into()), ..raw() }.resolve("f").unwrap();
        assert_eq!(tab.tabular.delimiter, Some(b'\t'));
        assert_eq!(raw().resolve("f").unwrap().tabular.delimiter_for("a/b.TSV.gz"), b'\t');
        let e =
            RawSettings { passthrough: Some(vec!["a".into(), "a:int64".into()]), ..raw() }.resolve("f").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
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
