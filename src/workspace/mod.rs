//! The workspace: a folder holding the catalog (one SQLite file) and the default datastore.
//!
//! ```text
//! <root>/.batchscore/config.json       name, id, default datastore URL (found like Azure's config.json)
//! <root>/.batchscore/catalog.sqlite    models, environments, datastores, data, endpoints, deployments, jobs
//! <root>/.batchscore/workspaceblobstore/   the default datastore, unless an object-store URL was given
//! ```
//!
//! The catalog is opened in WAL mode with a busy timeout, and every write that decides a
//! version or a state is one `BEGIN IMMEDIATE` transaction, so several processes at once are
//! safe. [`schema`] holds the versioned migrations, [`store`] the typed tables, [`assets`] the
//! records, [`refs`] the `azureml:` references, [`names`] Azure's naming rules. The workspace
//! knows nothing of the engine's running or the surfaces.
//!
//! Layout, against DESIGN.md's suggestion of one catalog file per kind: every kind is stored the
//! same way (two key columns, a JSON record, a creation order), so [`store`] holds the one
//! implementation and [`assets`] the record types side by side (each is a struct and its key);
//! what differs per kind (validation, references, what `delete` must refuse) is an operation,
//! and lives in `service/`, one file per kind.

pub mod assets;
pub mod names;
pub mod refs;
pub mod schema;
pub mod store;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

pub use store::{Asset, Tags, Window};

/// The folder inside a workspace root that marks it.
pub const DOT_DIR: &str = ".batchscore";
/// The environment variable naming the workspace root.
pub const ENV_VAR: &str = "BATCHSCORE_WORKSPACE";
/// The default datastore's name, as in Azure ML.
pub const DEFAULT_DATASTORE: &str = "workspaceblobstore";
/// How long a write waits for another process's transaction before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// A workspace could not be found, opened or changed, or an asset in it was refused.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error(
        "no workspace found (looked in: {searched}); create one with `batchscore workspace create --name NAME`, \
         or point --workspace or {ENV_VAR} at one"
    )]
    NoWorkspace { searched: String },
    #[error("a workspace already exists at {0}; use it, or `workspace delete --yes` it first")]
    WorkspaceExists(PathBuf),
    #[error("{kind} {name} not found{hint}")]
    NotFound { kind: &'static str, name: String, hint: String },
    #[error("{kind} {name} already exists{hint}")]
    AlreadyExists { kind: &'static str, name: String, hint: String },
    #[error("{kind} {name} is in use by {by}; {hint}")]
    InUse { kind: &'static str, name: String, by: String, hint: String },
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("the catalog {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the catalog was written by a newer batchscore (schema {found}, this one knows up to {known}); upgrade batchscore"
    )]
    TooNew { found: i64, known: i64 },
    #[error("the job queue is full ({queued} jobs wait); retry later")]
    QueueFull { queued: usize },
}

impl CatalogError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> CatalogError {
        CatalogError::Invalid { field: field.into(), message: message.into() }
    }

    pub fn not_found(kind: &'static str, name: impl Into<String>) -> CatalogError {
        CatalogError::NotFound { kind, name: name.into(), hint: String::new() }
    }
}

/// `config.json`: what names the workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub name: String,
    pub id: String,
    pub created_at: String,
    /// Where `workspaceblobstore` keeps its files.
    pub default_datastore: String,
}

/// An open workspace.
pub struct Workspace {
    pub root: PathBuf,
    pub config: Config,
    pub(crate) conn: Connection,
    db_path: PathBuf,
}

impl std::fmt::Debug for Workspace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workspace").field("root", &self.root).field("name", &self.config.name).finish()
    }
}

/// Where the workspace is: `explicit` (`--workspace`), else `BATCHSCORE_WORKSPACE`, else the
/// current folder or the nearest parent holding `.batchscore/config.json`.
pub fn find(explicit: Option<&Path>) -> Result<PathBuf, CatalogError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(ENV_VAR).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let cwd = std::env::current_dir().map_err(|source| CatalogError::Io { path: ".".into(), source })?;
    for dir in cwd.ancestors() {
        if dir.join(DOT_DIR).join("config.json").is_file() {
            return Ok(dir.to_path_buf());
        }
    }
    Err(CatalogError::NoWorkspace { searched: format!("--workspace, {ENV_VAR}, {} and its parents", cwd.display()) })
}

impl Workspace {
    /// Creates a workspace at `root` (made if missing). `default_datastore` is an object-store
    /// URL for `workspaceblobstore`; by default a folder inside the workspace.
    pub fn create(root: &Path, name: &str, default_datastore: Option<&str>) -> Result<Workspace, CatalogError> {
        names::check("workspace", name)?;
        let dot = root.join(DOT_DIR);
        if dot.join("config.json").exists() {
            return Err(CatalogError::WorkspaceExists(root.to_path_buf()));
        }
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CatalogError::Io { path, source }
        };
        std::fs::create_dir_all(&dot).map_err(io(&dot))?;
        let root = std::fs::canonicalize(root).map_err(io(root))?;
        let dot = root.join(DOT_DIR);
        let store = match default_datastore {
            Some(url) => url.to_string(),
            None => {
                let dir = dot.join(DEFAULT_DATASTORE);
                std::fs::create_dir_all(&dir).map_err(io(&dir))?;
                dir.display().to_string()
            }
        };
        let config = Config {
            name: name.to_string(),
            id: uuid::Uuid::new_v4().to_string(),
            created_at: now(),
            default_datastore: store,
        };
        let json = serde_json::to_vec_pretty(&config).expect("serialisable");
        let path = dot.join("config.json");
        // Create-only: two `workspace create` at once leave one workspace, not a mix.
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|_| CatalogError::WorkspaceExists(root.clone()))?;
        std::io::Write::write_all(&mut f, &json).map_err(io(&path))?;
        Workspace::open(&root)
    }

    /// Opens the workspace at `root`, migrating its catalog to this version's schema.
    pub fn open(root: &Path) -> Result<Workspace, CatalogError> {
        let path = root.join(DOT_DIR).join("config.json");
        let text = std::fs::read_to_string(&path).map_err(|_| CatalogError::NoWorkspace {
            searched: format!("{} (no {DOT_DIR}/config.json there)", root.display()),
        })?;
        let config: Config = serde_json::from_str(&text)
            .map_err(|e| CatalogError::invalid(path.display().to_string(), format!("not a workspace config: {e}")))?;
        let db_path = root.join(DOT_DIR).join("catalog.sqlite");
        let sql = |source| CatalogError::Sqlite { path: db_path.clone(), source };
        let conn = Connection::open(&db_path).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(sql)?;
        let mut ws = Workspace { root: root.to_path_buf(), config, conn, db_path };
        schema::migrate(&mut ws)?;
        Ok(ws)
    }

    /// Removes the workspace: its catalog and, when it lives inside, the default datastore.
    pub fn delete(self) -> Result<(), CatalogError> {
        let dot = self.root.join(DOT_DIR);
        drop(self.conn);
        std::fs::remove_dir_all(&dot).map_err(|source| CatalogError::Io { path: dot, source })
    }

    /// The connection, for read-only queries across kinds (metrics).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The catalog file.
    pub fn db_path(&self) -> &Path {
        &self.db_path
    }

    /// Maps a SQLite error to one naming the catalog.
    pub(crate) fn sql(&self, source: rusqlite::Error) -> CatalogError {
        CatalogError::Sqlite { path: self.db_path.clone(), source }
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction: other processes' writes wait (up to the
    /// busy timeout), so what `f` reads stays true until it commits.
    pub fn write<T>(
        &mut self,
        f: impl FnOnce(&rusqlite::Transaction) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let path = self.db_path.clone();
        let sql = |source| CatalogError::Sqlite { path: path.clone(), source };
        let tx = self.conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(sql)?;
        let out = f(&tx)?;
        tx.commit().map_err(sql)?;
        Ok(out)
    }
}

/// Now, as the catalog records times (RFC 3339, UTC, milliseconds).
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
