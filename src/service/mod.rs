//! The operations every surface shares: the CLI calls them now, the REST API will. Each takes
//! an open [`Workspace`] and plain arguments, checks them, changes the catalog (and the
//! default datastore) and returns the record, or a [`ServiceError`] that names what was wrong.
//!
//! - [`models`], [`environments`], [`datastores`], [`data`]: the registry;
//! - [`endpoints`]: batch endpoints and their deployments; [`computes`]: where their jobs run;
//! - [`jobs`]: invoke (a job from an endpoint, run by the engine under a catalog-backed
//!   control: heartbeat, progress, cancel from another process), list, show, stream,
//!   download, cancel, and the stale-job check.
//! - [`yaml`]: reading Azure's YAML files (descriptive fields, tags, not-used fields).

pub mod computes;
pub mod data;
pub mod datastores;
pub mod endpoints;
pub mod environments;
pub mod jobs;
pub mod models;
pub mod tokens;
pub mod workspaces;
pub mod yaml;

use std::path::PathBuf;

use crate::engine::PrepareError;
use crate::engine::model::ModelError;
use crate::engine::settings::ConfigError;
use crate::storage::StorageError;
use crate::workspace::assets::Described;
use crate::workspace::{CatalogError, Workspace, store};

/// An operation refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Catalog(#[from] CatalogError),
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Prepare(#[from] PrepareError),
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Model(#[from] ModelError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A store refused a read or a write.
    #[error("{url}: {message}")]
    Store { url: String, message: String },
}

/// What kind of refusal an error is, for exit codes and HTTP statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad input: a name, a value, a file (HTTP 400).
    Invalid,
    /// Something named does not exist (404).
    NotFound,
    /// It exists already or is in use (409).
    Conflict,
    /// The store, the disk or the runtime failed (500).
    Failed,
    /// Try again later: the job queue is full (429).
    Busy,
}

impl ServiceError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Catalog(CatalogError::NotFound { .. } | CatalogError::NoWorkspace { .. }) => {
                ErrorKind::NotFound
            }
            ServiceError::Catalog(
                CatalogError::AlreadyExists { .. } | CatalogError::InUse { .. } | CatalogError::WorkspaceExists(_),
            ) => ErrorKind::Conflict,
            ServiceError::Catalog(CatalogError::Invalid { .. }) | ServiceError::Config(_) => ErrorKind::Invalid,
            ServiceError::Catalog(CatalogError::QueueFull { .. }) => ErrorKind::Busy,
            ServiceError::Prepare(_) | ServiceError::Model(_) | ServiceError::Storage(_) => ErrorKind::Invalid,
            _ => ErrorKind::Failed,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ServiceError {
        ServiceError::Catalog(CatalogError::invalid(field, message))
    }

    /// A store's refusal, naming the location (never its credentials).
    pub fn store(loc: &crate::storage::Location, e: &object_store::Error) -> ServiceError {
        ServiceError::Store { url: loc.display.clone(), message: crate::storage::describe(e) }
    }
}

pub type Result<T> = std::result::Result<T, ServiceError>;

/// A tokio runtime for one operation's store I/O.
pub(crate) fn io_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| ServiceError::Io { path: "tokio runtime".into(), source })
}

/// What `update` may change on an asset: description and tags (`--set description=...`,
/// `--set tags.k=v`, `--tag k=v`, `--remove tags.k`).
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub description: Option<String>,
    pub tags: crate::workspace::Tags,
    pub remove_tags: Vec<String>,
    /// `key=value` as az's generic `--set`.
    pub sets: Vec<String>,
}

impl Change {
    /// Applies the change; a `--set` of anything but description and tags is refused, saying why.
    pub fn apply(
        &self,
        what: &str,
        description: &mut Option<String>,
        tags: &mut crate::workspace::Tags,
    ) -> std::result::Result<(), CatalogError> {
        for set in &self.sets {
            let (key, value) = set
                .split_once('=')
                .ok_or_else(|| CatalogError::invalid(format!("--set {set}"), "expected key=value"))?;
            match key.trim() {
                "description" => *description = Some(value.to_string()),
                k if k.starts_with("tags.") => {
                    tags.insert(k["tags.".len()..].to_string(), value.to_string());
                }
                other => {
                    return Err(CatalogError::invalid(
                        format!("--set {other}"),
                        format!(
                            "only the description and tags of a {what} can change (as in Azure ML); create a new one to change {other}"
                        ),
                    ));
                }
            }
        }
        if let Some(d) = &self.description {
            *description = Some(d.clone());
        }
        tags.extend(self.tags.clone());
        for k in &self.remove_tags {
            tags.remove(k.strip_prefix("tags.").unwrap_or(k));
        }
        Ok(())
    }
}

/// A version of a versioned asset, or its latest when `version` is `None`.
pub fn show_version<A: crate::workspace::Asset>(ws: &Workspace, name: &str, version: Option<&str>) -> Result<A> {
    Ok(match version {
        Some(v) => ws.get(name, v)?,
        None => ws.latest(name)?,
    })
}

/// Changes an asset's description and tags (read and written in one transaction).
pub fn update_described<A: Described>(ws: &mut Workspace, k1: &str, k2: &str, change: &Change) -> Result<A> {
    Ok(ws.write(|tx| {
        let mut a: A = store::find_in(tx, k1, k2)?.ok_or_else(|| {
            CatalogError::not_found(A::KIND, if k2.is_empty() { k1.to_string() } else { format!("{k1}:{k2}") })
        })?;
        let (description, tags) = a.described();
        change.apply(A::KIND, description, tags)?;
        store::update(tx, &a)?;
        Ok(a)
    })?)
}
