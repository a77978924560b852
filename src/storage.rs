//! Storage locations: every input, model and output is reached through `object_store`.
//!
//! A [`Location`] is a store (`Arc<dyn ObjectStore>`) plus a path prefix inside it. Local paths
//! and `file://` URLs become a [`LocalFileSystem`] rooted at `/` with an absolute prefix, so the
//! rest of the engine never touches `std::fs` for data: remote stores only add configuration
//! here. `memory://` gives a process-local in-memory store (tests and benches).

use std::sync::{Arc, OnceLock};

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;

/// A store and a prefix inside it.
#[derive(Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// The prefix (folder) or object (file) inside the store.
    pub path: Path,
    /// What the user wrote, normalised, for messages and reports (never holds credentials).
    pub display: String,
    /// A local filesystem path, when the location is one.
    pub local: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{url}: not a usable path or URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "{url}: the {scheme}:// store is not supported by this build; use a local path or file:// URL \
         (object stores such as s3://, az://, gs:// and http(s):// come with remote storage support)"
    )]
    Unsupported { url: String, scheme: String },
}

/// The one in-memory store of this process, shared by every `memory://` location.
pub fn memory_store() -> Arc<dyn ObjectStore> {
    static MEM: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    MEM.get_or_init(|| Arc::new(InMemory::new())).clone()
}

fn local_store() -> Arc<dyn ObjectStore> {
    static LOCAL: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    LOCAL.get_or_init(|| Arc::new(LocalFileSystem::new())).clone()
}

impl Location {
    /// Parses a local path, `file://` URL or `memory://` URL.
    pub fn parse(raw: &str) -> Result<Location, StorageError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(StorageError::InvalidUrl { url: raw.into(), reason: "empty".into() });
        }
        if let Some((scheme, _)) = trimmed.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            return match scheme.as_str() {
                "file" => {
                    let url = url::Url::parse(trimmed)
                        .map_err(|e| StorageError::InvalidUrl { url: raw.into(), reason: e.to_string() })?;
                    let p = url.to_file_path().map_err(|()| StorageError::InvalidUrl {
                        url: raw.into(),
                        reason: "not an absolute file:// URL (write file:///abs/path)".into(),
                    })?;
                    Self::local(&p, raw)
                }
                "memory" => {
                    let rest = &trimmed["memory://".len()..];
                    let path = Path::parse(rest.trim_matches('/'))
                        .map_err(|e| StorageError::InvalidUrl { url: raw.into(), reason: e.to_string() })?;
                    Ok(Location { store: memory_store(), display: format!("memory:///{path}"), path, local: None })
                }
                _ => Err(StorageError::Unsupported { url: raw.into(), scheme }),
            };
        }
        Self::local(std::path::Path::new(trimmed), raw)
    }

    fn local(p: &std::path::Path, raw: &str) -> Result<Location, StorageError> {
        let abs =
            std::path::absolute(p).map_err(|e| StorageError::InvalidUrl { url: raw.into(), reason: e.to_string() })?;
        let abs = normalize(&abs);
        let path = Path::from_absolute_path(&abs)
            .map_err(|e| StorageError::InvalidUrl { url: raw.into(), reason: e.to_string() })?;
        Ok(Location { store: local_store(), path, display: abs.display().to_string(), local: Some(abs) })
    }

    /// A location inside this one.
    pub fn join(&self, rel: &str) -> Location {
        let mut path = self.path.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        Location {
            store: self.store.clone(),
            path,
            display: format!("{}/{}", self.display.trim_end_matches('/'), rel),
            local: self.local.as_ref().map(|l| l.join(rel)),
        }
    }

    /// The path of `child` relative to this location, if it is inside.
    pub fn relative(&self, child: &Path) -> Option<String> {
        let parts: Vec<_> = child.prefix_match(&self.path)?.map(|p| p.as_ref().to_string()).collect();
        Some(parts.join("/"))
    }
}

/// Removes `.` and `..` segments without touching the filesystem (the path may not exist yet).
fn normalize(p: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_paths_and_urls() {
        let l = Location::parse("/tmp/a/../b").unwrap();
        assert_eq!(l.path.as_ref(), "tmp/b");
        let f = Location::parse("file:///tmp/x").unwrap();
        assert_eq!(f.path.as_ref(), "tmp/x");
        let m = Location::parse("memory://bucket/p").unwrap();
        assert_eq!(m.path.as_ref(), "bucket/p");
        let err = Location::parse("s3://bucket/x").unwrap_err().to_string();
        assert!(err.contains("s3://bucket/x") && err.contains("not supported"), "{err}");
    }

    #[test]
    fn relative_paths_inside_a_prefix() {
        let root = Location::parse("/data/in").unwrap();
        assert_eq!(root.relative(&Path::from("data/in/a/b.csv")).as_deref(), Some("a/b.csv"));
        assert_eq!(root.relative(&Path::from("data/other.csv")), None);
    }
}
