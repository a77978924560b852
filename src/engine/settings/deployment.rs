//! Deployment files: Azure ML's batch deployment YAML (`reference-yaml-deployment-batch`) read
//! into [`RawSettings`].
//!
//! The fields that mean something here are used, from `settings:` or, as in the older schema,
//! the top level; Azure's fields that mean nothing here (compute, environment,
//! code_configuration, `settings.environment_variables`, ...) are listed in
//! [`Deployment::ignored`] and reported, not rejected. A key under `settings:`,
//! `retry_settings:` or `batchscore:` that is in neither schema is an error that suggests the
//! nearest known key: a typo such as `mini_batch_sise` must not silently run with the default.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use super::{ConfigError, RawSettings};

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

/// Keys of Azure's `settings:` (model and pipeline deployments) that mean nothing here: reported
/// as not used.
const AZURE_ONLY_SETTINGS: &[&str] =
    &["environment_variables", "default_compute", "default_datastore", "continue_on_step_failure", "force_rerun"];

/// The keys of `retry_settings:`.
const RETRY_KEYS: &[&str] = &["max_retries", "timeout"];

/// batchscore's own options, under `batchscore:`.
const EXTENSION_KEYS: &[&str] = &[
    "pattern",
    "features",
    "passthrough",
    "batch_size",
    "sessions",
    "intra_threads",
    "device",
    "mini_batch_rows",
    "image_size",
    "channels",
    "scale",
    "mean",
    "std",
    "layout",
    "resize",
    "exif_orientation",
    "max_image_pixels",
    "jpeg_decode",
    "csv_delimiter",
    "decimal_mark",
    "allow_non_finite",
    "missing_as_nan",
    "max_record_size",
    "graph_optimization_level",
];

/// Fields that describe the deployment but do not change how the job runs.
const DESCRIPTIVE_KEYS: &[&str] = &["$schema", "name", "description", "endpoint_name", "type", "tags", "properties"];

impl Deployment {
    /// Reads a deployment YAML. A relative `model.path` is taken relative to the file's folder.
    pub fn load(path: &Path) -> Result<Deployment, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
        let doc = parse_yaml(&text, path)?;
        Deployment::from_yaml(&doc, path.parent().unwrap_or(Path::new(".")), &path.display().to_string())
    }

    /// `--set key=value` overrides, with Azure's names (`mini_batch_size`,
    /// `settings.retry_settings.max_retries`, `resources.instance_count`, `batchscore.batch_size`).
    pub fn from_sets(sets: &[String]) -> Result<Deployment, ConfigError> {
        let mut top = Mapping::new();
        for set in sets {
            let Some((key, value)) = set.split_once('=') else {
                return Err(ConfigError::Invalid {
                    origin: "--set".into(),
                    setting: set.clone(),
                    value: String::new(),
                    hint: "expected key=value, such as --set mini_batch_size=20".into(),
                });
            };
            let mut parts: Vec<&str> = key.trim().split('.').collect();
            let leaf = parts.pop().unwrap_or_default();
            let mut at = &mut top;
            for p in parts {
                let entry = at.entry(Value::String(p.to_string())).or_insert_with(|| Value::Mapping(Mapping::new()));
                if !entry.is_mapping() {
                    *entry = Value::Mapping(Mapping::new());
                }
                at = entry.as_mapping_mut().expect("a mapping");
            }
            at.insert(Value::String(leaf.to_string()), Value::String(value.trim().to_string()));
        }
        Deployment::from_yaml(&Value::Mapping(top), Path::new("."), "--set")
    }

    /// Reads a parsed deployment document; relative model paths are under `base`.
    pub fn from_yaml(doc: &Value, base: &Path, origin: &str) -> Result<Deployment, ConfigError> {
        let origin = origin.to_string();
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
        for (k, v) in top {
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
                k if AZURE_ONLY_SETTINGS.contains(&k) => dep.ignored.push(name),
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
                            _ => return Err(unknown_key(&origin, &rname, &rk, rv, RETRY_KEYS)),
                        }
                    }
                }
                other => {
                    let known: Vec<&str> = SETTING_KEYS.iter().chain(AZURE_ONLY_SETTINGS).copied().collect();
                    return Err(unknown_key(&origin, &name, other, v, &known));
                }
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
            "exif_orientation" => s.exif_orientation = Some(scalar(v, origin, &name)?),
            "max_image_pixels" => s.max_image_pixels = Some(scalar(v, origin, &name)?),
            "jpeg_decode" => s.jpeg_decode = Some(scalar(v, origin, &name)?),
            "csv_delimiter" => s.csv_delimiter = Some(scalar(v, origin, &name)?),
            "decimal_mark" => s.decimal_mark = Some(scalar(v, origin, &name)?),
            "allow_non_finite" => s.allow_non_finite = Some(scalar(v, origin, &name)?),
            "missing_as_nan" => s.missing_as_nan = Some(scalar(v, origin, &name)?),
            "max_record_size" => s.max_record_size = Some(scalar(v, origin, &name)?),
            "graph_optimization_level" => s.graph_optimization_level = Some(scalar(v, origin, &name)?),
            other => return Err(unknown_key(origin, &name, other, v, EXTENSION_KEYS)),
        }
    }
    Ok(())
}

/// A deployment file is a few lines; the YAML parser is slow (quadratic) on a file of deep flow
/// nesting, so sizes and nesting are bounded before it runs.
const MAX_FILE_BYTES: usize = 1 << 20;

/// Parses a YAML file of settings after checking its size and nesting.
pub fn parse_yaml(text: &str, path: &Path) -> Result<Value, ConfigError> {
    check_shape(text).map_err(|hint| ConfigError::Invalid {
        origin: path.display().to_string(),
        setting: "(file)".into(),
        value: String::new(),
        hint,
    })?;
    serde_yaml_ng::from_str(text).map_err(|source| ConfigError::Yaml { path: path.to_path_buf(), source })
}
const MAX_NESTING: usize = 64;

fn check_shape(text: &str) -> Result<(), String> {
    if text.len() > MAX_FILE_BYTES {
        return Err(format!("the file is {} bytes; a deployment file is at most {MAX_FILE_BYTES}", text.len()));
    }
    // Every bracket counts, quoted or not: a real deployment file nests a few levels, and a
    // quote does not reliably start a string in YAML (`a'b` is a plain scalar).
    let (mut depth, mut deepest) = (0usize, 0usize);
    for c in text.bytes() {
        match c {
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    if deepest > MAX_NESTING {
        return Err(format!("brackets nest {deepest} deep; a deployment file nests at most {MAX_NESTING} deep"));
    }
    Ok(())
}

/// An unknown key: the error suggests the nearest known one, or lists them all.
fn unknown_key(origin: &str, setting: &str, key: &str, v: &Value, known: &[&str]) -> ConfigError {
    let hint = match nearest(key, known) {
        Some(k) => format!("unknown key; did you mean `{k}`? (known: {})", known.join(", ")),
        None => format!("unknown key; known: {}", known.join(", ")),
    };
    invalid(origin, setting, v, &hint)
}

/// The known key closest to `key` by edit distance, if it is close enough to be a typo.
pub(super) fn nearest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&key, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance between two short strings.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
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
        Value::String(s) => Ok(super::split_columns(s).iter().map(|x| x.trim().to_string()).collect()),
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

    fn load(yaml: &str) -> Result<Deployment, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("deployment.yml");
        std::fs::write(&p, yaml).unwrap();
        Deployment::load(&p)
    }

    #[test]
    fn typos_in_settings_suggest_the_nearest_key() {
        let e = load("settings:\n  mini_batch_sise: 5\n").unwrap_err().to_string();
        assert!(e.contains("settings.mini_batch_sise") && e.contains("did you mean `mini_batch_size`"), "{e}");
        let e = load("settings:\n  retry_settings:\n    max_retry: 5\n").unwrap_err().to_string();
        assert!(e.contains("retry_settings.max_retry") && e.contains("`max_retries`"), "{e}");
        let e = load("batchscore:\n  batch_sise: 5\n").unwrap_err().to_string();
        assert!(e.contains("`batch_size`"), "{e}");
        let e = load("settings:\n  zzzz: 1\n").unwrap_err().to_string();
        assert!(e.contains("known: mini_batch_size"), "{e}");
        // Azure's own keys that mean nothing here are reported, not refused.
        let d =
            load("settings:\n  environment_variables: {A: b}\n  default_compute: c\ncompute: azureml:cpu\n").unwrap();
        assert_eq!(d.ignored, ["compute", "settings.environment_variables", "settings.default_compute"]);
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        for text in [format!("settings: {}", "[".repeat(100_000)), format!("settings: [a'b, {}", "[".repeat(100_000))] {
            let e = load(&text).unwrap_err().to_string();
            assert!(e.contains("nest") && e.contains("64"), "{e}");
        }
        assert!(load("settings: {retry_settings: {max_retries: 1}}\n").is_ok());
    }

    #[test]
    fn nearest_keys() {
        assert_eq!(
            nearest("max_concurency_per_instance", &["max_concurrency_per_instance"]),
            Some("max_concurrency_per_instance")
        );
        assert_eq!(nearest("output", &["output_action", "timeout"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
