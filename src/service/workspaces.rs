//! Workspaces: create one with its default datastore and curated environment, show, delete.

use std::path::Path;

use super::Result;
use crate::workspace::assets::{Environment, Runtime};
use crate::workspace::{Workspace, store};

/// The curated environment every workspace has.
pub const CURATED_ENVIRONMENT: &str = "batchscore-cpu";

/// Creates a workspace at `root` with `workspaceblobstore` and `batchscore-cpu`.
pub fn create(root: &Path, name: &str, default_datastore: Option<&str>) -> Result<Workspace> {
    if let Some(url) = default_datastore {
        crate::storage::Location::parse(url)?;
    }
    let mut ws = Workspace::create(root, name, default_datastore)?;
    let ds = super::datastores::default_record(&ws.config.default_datastore);
    let env = curated_environment();
    ws.write(|tx| {
        store::insert(tx, &ds)?;
        store::insert(tx, &env)
    })?;
    Ok(ws)
}

/// `batchscore-cpu:1`: ONNX Runtime on the CPU with its defaults.
pub fn curated_environment() -> Environment {
    Environment {
        id: format!("azureml:{CURATED_ENVIRONMENT}:1"),
        name: CURATED_ENVIRONMENT.into(),
        version: "1".into(),
        description: Some("Curated: ONNX Runtime on the CPU, default session options".into()),
        tags: Default::default(),
        runtime: Runtime { execution_provider: "cpu".into(), ..Default::default() },
        not_used: Vec::new(),
        created_at: crate::workspace::now(),
    }
}

/// What `workspace show` prints.
pub fn describe(ws: &Workspace) -> serde_json::Value {
    serde_json::json!({
        "name": ws.config.name,
        "id": ws.config.id,
        "location": ws.root.display().to_string(),
        "catalog": ws.db_path().display().to_string(),
        "schema_version": crate::workspace::schema::CURRENT,
        "default_datastore": {"name": crate::workspace::DEFAULT_DATASTORE, "url": crate::storage::redact(&ws.config.default_datastore)},
        "created_at": ws.config.created_at,
    })
}
