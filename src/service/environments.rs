//! Environments: for ONNX models the environment is the runtime (ONNX Runtime library,
//! execution provider, session options). Azure's environment YAML loads: `image`,
//! `conda_file` and `build` are reported as not used; the runtime is under `runtime:`.

use std::path::Path;

use super::yaml::AssetFile;
use super::{Change, Result, ServiceError};
use crate::workspace::assets::{Environment, Runtime};
use crate::workspace::{CatalogError, Tags, Workspace, names, store};

/// What to register.
#[derive(Debug, Clone, Default)]
pub struct EnvironmentSpec {
    pub name: String,
    pub version: Option<String>,
    pub description: Option<String>,
    pub tags: Tags,
    pub runtime: Runtime,
    pub not_used: Vec<String>,
}

impl EnvironmentSpec {
    /// Reads Azure's environment YAML, with batchscore's `runtime:` block.
    pub fn from_file(path: &Path) -> Result<EnvironmentSpec> {
        Self::from_doc(AssetFile::load(path)?)
    }

    /// The same from a parsed document (a REST body).
    pub fn from_doc(f: AssetFile) -> Result<EnvironmentSpec> {
        let path = f.path.clone();
        let path = path.as_path();
        let runtime = match f.doc.get("runtime") {
            None => Runtime { execution_provider: "cpu".into(), ..Default::default() },
            Some(v) => serde_yaml_ng::from_value(v.clone())
                .map_err(|e| ServiceError::invalid(format!("{}: runtime", path.display()), e.to_string()))?,
        };
        Ok(EnvironmentSpec {
            name: f
                .text("name")?
                .ok_or_else(|| ServiceError::invalid(format!("{}: name", path.display()), "missing"))?,
            version: f.text("version")?,
            description: f.text("description")?,
            tags: f.tags()?,
            runtime,
            not_used: f.others(&["name", "version", "description", "tags", "runtime"]),
        })
    }
}

/// Checks a runtime's values.
pub fn check_runtime(r: &Runtime) -> Result<()> {
    if !["cpu", "cuda"].contains(&r.execution_provider.as_str()) {
        return Err(ServiceError::invalid(
            format!("runtime.execution_provider {:?}", r.execution_provider),
            "use cpu or cuda",
        ));
    }
    if let Some(level) = &r.graph_optimization_level
        && !["disable_all", "basic", "extended", "all"].contains(&level.as_str())
    {
        return Err(ServiceError::invalid(
            format!("runtime.graph_optimization_level {level:?}"),
            "use disable_all, basic, extended or all",
        ));
    }
    if r.intra_op_num_threads == Some(0) {
        return Err(ServiceError::invalid("runtime.intra_op_num_threads", "must be at least 1"));
    }
    if let Some(lib) = &r.onnxruntime_library
        && !Path::new(lib).is_file()
    {
        return Err(ServiceError::invalid(
            format!("runtime.onnxruntime_library {lib:?}"),
            "no such file; give the path of libonnxruntime.so",
        ));
    }
    Ok(())
}

/// Registers the next version (or `spec.version`).
pub fn create(ws: &mut Workspace, spec: EnvironmentSpec) -> Result<Environment> {
    names::check("environment", &spec.name)?;
    if let Some(v) = &spec.version {
        names::check_version("environment", v)?;
    }
    check_runtime(&spec.runtime)?;
    let mut env = Environment {
        id: String::new(),
        name: spec.name,
        version: String::new(),
        description: spec.description,
        tags: spec.tags,
        runtime: spec.runtime,
        not_used: spec.not_used,
        created_at: crate::workspace::now(),
    };
    ws.write(|tx| {
        env.version = match &spec.version {
            Some(v) => v.clone(),
            None => store::next_version::<Environment>(tx, &env.name)?,
        };
        env.id = format!("azureml:{}:{}", env.name, env.version);
        store::insert(tx, &env)
    })?;
    Ok(env)
}

/// A version, or the latest.
pub fn show(ws: &Workspace, name: &str, version: Option<&str>) -> Result<Environment> {
    super::show_version(ws, name, version)
}

/// Changes description and tags only.
pub fn update(ws: &mut Workspace, name: &str, version: &str, change: Change) -> Result<Environment> {
    super::update_described(ws, name, version, &change)
}

/// Deletes a version no deployment uses.
pub fn delete(ws: &mut Workspace, name: &str, version: &str) -> Result<()> {
    Ok(ws.write(|tx| {
        let users: Vec<String> = tx
            .prepare(
                "SELECT endpoint || '/' || name FROM batch_deployments WHERE environment_name = ?1 AND environment_version = ?2",
            )
            .and_then(|mut s| s.query_map([name, version], |r| r.get(0))?.collect())
            .map_err(store::sqlite)?;
        if !users.is_empty() {
            return Err(CatalogError::InUse {
                kind: "environment",
                name: format!("{name}:{version}"),
                by: format!("deployment {}", users.join(", ")),
                hint: "delete those deployments or point them at another environment first".into(),
            });
        }
        if store::delete::<Environment>(tx, name, version)? {
            Ok(())
        } else {
            Err(CatalogError::not_found("environment", format!("{name}:{version}")))
        }
    })?)
}
