//! `azureml:` references, resolved against the catalog to store URLs.
//!
//! - `azureml://datastores/<ds>/paths/<p>`: a path in a datastore;
//! - `azureml:<data>:<version>` and `azureml:<data>@latest`: a data asset version;
//! - anything else: a URL as is, or a local path made absolute.
//!
//! A reference that does not resolve is an error naming it.

use super::assets::{Data, Datastore};
use super::{CatalogError, Workspace};

/// A location ready for the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The store URL or absolute path.
    pub url: String,
    /// `key=value` storage options the datastore names (values from the environment).
    pub storage_options: Vec<String>,
    /// The data asset's type, when the reference was one.
    pub data_type: Option<String>,
}

/// A parsed `azureml:` reference to a versioned asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRef {
    pub name: String,
    /// `None` for `@latest`.
    pub version: Option<String>,
}

/// Parses `azureml:<name>:<version>`, `azureml:<name>@latest` (or without the `azureml:`
/// prefix when `prefix_optional`).
pub fn parse_version_ref(kind: &str, text: &str, prefix_optional: bool) -> Result<VersionRef, CatalogError> {
    let bad = || {
        CatalogError::invalid(
            format!("{kind} reference {text:?}"),
            format!("expected azureml:<name>:<version> or azureml:<name>@latest (such as azureml:my-{kind}:1)"),
        )
    };
    let body = match text.strip_prefix("azureml:") {
        Some(b) if !b.starts_with("//") => b,
        _ if prefix_optional && !text.contains("://") => text,
        _ => return Err(bad()),
    };
    if let Some(name) = body.strip_suffix("@latest") {
        return Ok(VersionRef { name: name.to_string(), version: None });
    }
    match body.split_once(':') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => {
            Ok(VersionRef { name: name.to_string(), version: Some(version.to_string()) })
        }
        _ => Err(bad()),
    }
}

impl Workspace {
    /// Resolves an input or output as given by a user (see the module docs).
    pub fn resolve(&self, text: &str) -> Result<Resolved, CatalogError> {
        self.resolve_depth(text, 0)
    }

    fn resolve_depth(&self, text: &str, depth: usize) -> Result<Resolved, CatalogError> {
        if let Some(rest) = text.strip_prefix("azureml://datastores/") {
            return self.resolve_datastore_path(text, rest);
        }
        if text.starts_with("azureml:") {
            if depth > 4 {
                return Err(CatalogError::invalid(
                    format!("reference {text:?}"),
                    "data assets refer to each other in a loop",
                ));
            }
            let r = parse_version_ref("data", text, false)?;
            let data: Data = match &r.version {
                Some(v) => self.get(&r.name, v),
                None => self.latest(&r.name),
            }
            .map_err(|e| match e {
                CatalogError::NotFound { .. } => CatalogError::NotFound {
                    kind: "data asset",
                    name: text.to_string(),
                    hint: "; `batchscore data list` shows the registered ones".into(),
                },
                e => e,
            })?;
            let mut resolved = self.resolve_depth(&data.path, depth + 1)?;
            resolved.data_type = Some(data.kind);
            return Ok(resolved);
        }
        if text.contains("://") {
            return Ok(Resolved { url: text.to_string(), storage_options: Vec::new(), data_type: None });
        }
        let path = std::path::absolute(text).map_err(|source| CatalogError::Io { path: text.into(), source })?;
        Ok(Resolved { url: path.display().to_string(), storage_options: Vec::new(), data_type: None })
    }

    fn resolve_datastore_path(&self, text: &str, rest: &str) -> Result<Resolved, CatalogError> {
        let Some((ds, path)) = rest.split_once("/paths/") else {
            return Err(CatalogError::invalid(
                format!("datastore path {text:?}"),
                "expected azureml://datastores/<datastore>/paths/<path>",
            ));
        };
        if path.split('/').any(|p| p == "..") {
            return Err(CatalogError::invalid(format!("datastore path {text:?}"), "may not hold '..'"));
        }
        let store: Datastore = self.get(ds, "").map_err(|_| CatalogError::NotFound {
            kind: "datastore",
            name: ds.to_string(),
            hint: format!(" (in {text}); `batchscore datastore list` shows the registered ones"),
        })?;
        Ok(Resolved { url: join(&store.url, path), storage_options: datastore_options(&store), data_type: None })
    }
}

/// `base` + `/` + `rel`, without doubled slashes.
pub fn join(base: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() { base.to_string() } else { format!("{}/{rel}", base.trim_end_matches('/')) }
}

/// The storage options a datastore asks for: its plain options, and each credential whose
/// environment variable is set.
pub fn datastore_options(store: &Datastore) -> Vec<String> {
    let mut out: Vec<String> = store.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    for (key, var) in &store.credentials_from_env {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            out.push(format!("{key}={}", value.to_string_lossy()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_references_parse_as_azure_writes_them() {
        let r = parse_version_ref("model", "azureml:iris:3", false).unwrap();
        assert_eq!(r, VersionRef { name: "iris".into(), version: Some("3".into()) });
        assert_eq!(parse_version_ref("model", "azureml:iris@latest", false).unwrap().version, None);
        assert_eq!(parse_version_ref("model", "iris:2", true).unwrap().version.as_deref(), Some("2"));
        assert!(parse_version_ref("model", "azureml:iris", false).is_err());
        assert!(parse_version_ref("model", "iris:2", false).is_err());
        assert_eq!(join("/ws/store/", "/a/b"), "/ws/store/a/b");
    }
}
