//! Azure ML's asset YAML files: the fields every kind shares (`$schema`, `name`, `version`,
//! `description`, `tags`), and the rest as a mapping for the kind to read.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use super::{Result, ServiceError};
use crate::workspace::Tags;

/// A parsed asset file.
#[derive(Debug, Clone)]
pub struct AssetFile {
    pub path: PathBuf,
    /// Where relative paths inside it start.
    pub base: PathBuf,
    pub doc: Mapping,
}

impl AssetFile {
    /// Reads `path` (a YAML mapping, bounded in size and nesting).
    pub fn load(path: &Path) -> Result<AssetFile> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ServiceError::Io { path: path.to_path_buf(), source })?;
        let doc = crate::engine::settings::parse_yaml(&text, path)?;
        let Value::Mapping(doc) = doc else {
            return Err(ServiceError::invalid(path.display().to_string(), "expected a YAML mapping of fields"));
        };
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let base = std::path::absolute(if base.as_os_str().is_empty() { Path::new(".") } else { &base })
            .map_err(|source| ServiceError::Io { path: base.clone(), source })?;
        Ok(AssetFile { path: path.to_path_buf(), base, doc })
    }

    /// A document that did not come from a file (a REST body); relative paths start at `base`.
    pub fn from_json(origin: &str, json: &serde_json::Value, base: &Path) -> Result<AssetFile> {
        let doc = serde_yaml_ng::to_value(json).map_err(|e| ServiceError::invalid(origin, e.to_string()))?;
        let Value::Mapping(doc) = doc else {
            return Err(ServiceError::invalid(origin, "expected a JSON object of fields"));
        };
        Ok(AssetFile { path: PathBuf::from(origin), base: base.to_path_buf(), doc })
    }

    fn field(&self, key: &str) -> String {
        format!("{}: {key}", self.path.display())
    }

    /// A text field (numbers are read as their text, as Azure's `version: 1`).
    pub fn text(&self, key: &str) -> Result<Option<String>> {
        match self.doc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ServiceError::invalid(self.field(key), "expected a single value")),
        }
    }

    /// A mapping field.
    pub fn mapping(&self, key: &str) -> Result<Option<&Mapping>> {
        match self.doc.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Mapping(m)) => Ok(Some(m)),
            Some(_) => Err(ServiceError::invalid(self.field(key), "expected a mapping")),
        }
    }

    /// `tags:` as text pairs.
    pub fn tags(&self) -> Result<Tags> {
        let mut tags = Tags::new();
        for (k, v) in self.mapping("tags")?.into_iter().flatten() {
            let k = scalar(k).ok_or_else(|| ServiceError::invalid(self.field("tags"), "a tag's key is not text"))?;
            let v =
                scalar(v).ok_or_else(|| ServiceError::invalid(self.field(&format!("tags.{k}")), "expected text"))?;
            tags.insert(k, v);
        }
        Ok(tags)
    }

    /// A path field, relative to the file's folder unless absolute or a URL.
    pub fn path_field(&self, key: &str) -> Result<Option<String>> {
        Ok(self.text(key)?.map(|p| relative_to(&self.base, p.trim())))
    }

    /// The top-level keys not in `used`, for reporting as not used here.
    pub fn others(&self, used: &[&str]) -> Vec<String> {
        self.doc.keys().filter_map(scalar).filter(|k| !used.contains(&k.as_str()) && k != "$schema").collect()
    }
}

/// `p` under `base`, unless it is absolute, a URL or an `azureml:` reference.
pub fn relative_to(base: &Path, p: &str) -> String {
    if p.contains("://") || p.starts_with("azureml:") || Path::new(p).is_absolute() {
        p.to_string()
    } else {
        base.join(p).display().to_string()
    }
}

/// A scalar's text.
pub fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `k=v` pairs (from `--tag k=v`) as tags.
pub fn parse_tags(items: &[String]) -> Result<Tags> {
    let mut tags = Tags::new();
    for item in items {
        let Some((k, v)) = item.split_once('=') else {
            return Err(ServiceError::invalid(format!("--tag {item}"), "expected key=value"));
        };
        tags.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(tags)
}
