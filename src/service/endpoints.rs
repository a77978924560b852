//! Batch endpoints and their deployments, in Azure's YAML.
//!
//! A deployment names a model version (`azureml:<name>:<version>`, `@latest`, or an inline
//! `model: {name, path}` registered on create), an environment (the curated `batchscore-cpu`
//! when it names none, or an inline image that means nothing here) and settings. Azure-only
//! fields (compute, code_configuration, ...) are kept as "not used", never rejected. The first
//! deployment of an endpoint becomes its default, as the studio does.

use std::path::Path;

use serde_yaml_ng::Value;

use super::models::ModelSpec;
use super::workspaces::CURATED_ENVIRONMENT;
use super::yaml::{AssetFile, relative_to, scalar};
use super::{Change, Result, ServiceError};
use crate::engine::settings::{Deployment, RawSettings};
use crate::workspace::assets::{AssetRef, BatchDeployment, BatchEndpoint, EndpointDefaults, Environment, Model};
use crate::workspace::refs::parse_version_ref;
use crate::workspace::{CatalogError, Tags, Workspace, names, store};

/// What to create an endpoint from.
#[derive(Debug, Clone, Default)]
pub struct EndpointSpec {
    pub name: String,
    pub description: Option<String>,
    pub tags: Tags,
    pub default_deployment: Option<String>,
    pub auth_mode: Option<String>,
    pub not_used: Vec<String>,
}

impl EndpointSpec {
    /// Reads Azure's batch endpoint YAML.
    pub fn from_file(path: &Path) -> Result<EndpointSpec> {
        let f = AssetFile::load(path)?;
        let default_deployment = f.mapping("defaults")?.and_then(|m| m.get("deployment_name")).and_then(scalar);
        Ok(EndpointSpec {
            name: f
                .text("name")?
                .ok_or_else(|| ServiceError::invalid(format!("{}: name", path.display()), "missing"))?,
            description: f.text("description")?,
            tags: f.tags()?,
            default_deployment,
            auth_mode: f.text("auth_mode")?,
            not_used: f.others(&["name", "description", "tags", "defaults", "auth_mode"]),
        })
    }
}

/// Creates an endpoint (with no deployments yet).
pub fn create_endpoint(ws: &mut Workspace, spec: EndpointSpec) -> Result<BatchEndpoint> {
    names::check_endpoint(&spec.name)?;
    if let Some(d) = &spec.default_deployment {
        return Err(ServiceError::invalid(
            format!("defaults.deployment_name {d:?}"),
            "a new endpoint has no deployments yet; create one (it becomes the default), then update the endpoint",
        ));
    }
    let ep = BatchEndpoint {
        id: format!("azureml:{}", spec.name),
        scoring_uri: format!("/batchEndpoints/{}/jobs", spec.name),
        name: spec.name,
        description: spec.description,
        tags: spec.tags,
        defaults: EndpointDefaults::default(),
        auth_mode: spec.auth_mode.unwrap_or_else(|| "aad_token".into()),
        not_used: spec.not_used,
        created_at: crate::workspace::now(),
    };
    ws.write(|tx| store::insert(tx, &ep))?;
    Ok(ep)
}

/// Changes description, tags and `defaults.deployment_name` (`--set defaults.deployment_name=D`).
pub fn update_endpoint(ws: &mut Workspace, name: &str, mut change: Change) -> Result<BatchEndpoint> {
    let default = take_set(&mut change.sets, "defaults.deployment_name");
    Ok(ws.write(|tx| {
        let mut ep: BatchEndpoint =
            store::find_in(tx, name, "")?.ok_or_else(|| CatalogError::not_found("batch endpoint", name))?;
        change.apply("batch endpoint", &mut ep.description, &mut ep.tags)?;
        if let Some(d) = default {
            if store::find_in::<BatchDeployment>(tx, name, &d)?.is_none() {
                return Err(CatalogError::NotFound {
                    kind: "batch deployment",
                    name: d,
                    hint: format!(
                        " in endpoint {name}; `batch-deployment list --endpoint-name {name}` shows its deployments"
                    ),
                });
            }
            ep.defaults.deployment_name = Some(d);
        }
        store::update(tx, &ep)?;
        Ok(ep)
    })?)
}

/// Removes `key=value` from `sets`, returning the value.
fn take_set(sets: &mut Vec<String>, key: &str) -> Option<String> {
    let at = sets.iter().position(|s| s.split_once('=').is_some_and(|(k, _)| k.trim() == key))?;
    Some(sets.remove(at).split_once('=').map(|(_, v)| v.trim().to_string()).unwrap_or_default())
}

/// Deletes an endpoint and its deployments; its jobs stay listed.
pub fn delete_endpoint(ws: &mut Workspace, name: &str) -> Result<usize> {
    Ok(ws.write(|tx| {
        if store::find_in::<BatchEndpoint>(tx, name, "")?.is_none() {
            return Err(CatalogError::not_found("batch endpoint", name));
        }
        let n = tx.execute("DELETE FROM batch_deployments WHERE endpoint = ?1", [name]).map_err(store::sqlite)?;
        store::delete::<BatchEndpoint>(tx, name, "")?;
        Ok(n)
    })?)
}

/// What to create a deployment from: the YAML file, and the flags that override it.
#[derive(Debug, Clone, Default)]
pub struct DeploymentSpec {
    pub file: Option<std::path::PathBuf>,
    /// The same fields as a parsed document (a REST body), when there is no file.
    pub doc: Option<AssetFile>,
    pub name: Option<String>,
    pub endpoint_name: Option<String>,
    pub set_default: bool,
    /// `--set key=value`: settings (Azure's names), `description`, `model`, `environment`.
    pub sets: Vec<String>,
}

/// Creates a deployment; returns it and the warnings (fields not used here).
pub fn create_deployment(ws: &mut Workspace, spec: DeploymentSpec) -> Result<(BatchDeployment, Vec<String>)> {
    let (mut dep, warnings) = read_deployment(ws, &spec, None)?;
    let set_default = spec.set_default;
    ws.write(|tx| {
        let mut ep: BatchEndpoint =
            store::find_in(tx, &dep.endpoint_name, "")?.ok_or_else(|| CatalogError::NotFound {
                kind: "batch endpoint",
                name: dep.endpoint_name.clone(),
                hint: "; create it first with `batch-endpoint create`".into(),
            })?;
        check_refs(tx, &dep)?;
        dep.created_at = crate::workspace::now();
        store::insert(tx, &dep)?;
        if set_default || ep.defaults.deployment_name.is_none() {
            ep.defaults.deployment_name = Some(dep.name.clone());
            store::update(tx, &ep)?;
        }
        Ok(())
    })?;
    Ok((dep, warnings))
}

/// Updates a deployment from its YAML and `--set`s; the endpoint and name stay.
pub fn update_deployment(ws: &mut Workspace, spec: DeploymentSpec) -> Result<(BatchDeployment, Vec<String>)> {
    let endpoint = spec.endpoint_name.clone().unwrap_or_default();
    let name = spec.name.clone().unwrap_or_default();
    let current: BatchDeployment = ws.get(&endpoint, &name).map_err(|_| CatalogError::NotFound {
        kind: "batch deployment",
        name: format!("{endpoint}/{name}"),
        hint: String::new(),
    })?;
    let (mut dep, warnings) = read_deployment(ws, &spec, Some(&current))?;
    dep.created_at = current.created_at.clone();
    let set_default = spec.set_default;
    ws.write(|tx| {
        check_refs(tx, &dep)?;
        store::update(tx, &dep)?;
        if set_default {
            let mut ep: BatchEndpoint = store::find_in(tx, &endpoint, "")?
                .ok_or_else(|| CatalogError::not_found("batch endpoint", &endpoint))?;
            ep.defaults.deployment_name = Some(name.clone());
            store::update(tx, &ep)?;
        }
        Ok(())
    })?;
    Ok((dep, warnings))
}

/// The model and environment a deployment names exist (checked inside the write).
fn check_refs(tx: &rusqlite::Transaction, dep: &BatchDeployment) -> std::result::Result<(), CatalogError> {
    if store::find_in::<Model>(tx, &dep.model.name, &dep.model.version)?.is_none() {
        return Err(CatalogError::not_found("model", format!("{}:{}", dep.model.name, dep.model.version)));
    }
    if store::find_in::<Environment>(tx, &dep.environment.name, &dep.environment.version)?.is_none() {
        return Err(CatalogError::not_found(
            "environment",
            format!("{}:{}", dep.environment.name, dep.environment.version),
        ));
    }
    Ok(())
}

/// Deletes a deployment (not the endpoint's default while others remain).
pub fn delete_deployment(ws: &mut Workspace, endpoint: &str, name: &str) -> Result<()> {
    Ok(ws.write(|tx| {
        let mut ep: BatchEndpoint =
            store::find_in(tx, endpoint, "")?.ok_or_else(|| CatalogError::not_found("batch endpoint", endpoint))?;
        let others: i64 = tx
            .query_row("SELECT COUNT(*) FROM batch_deployments WHERE endpoint = ?1 AND name != ?2", [endpoint, name], |r| r.get(0))
            .map_err(store::sqlite)?;
        if ep.defaults.deployment_name.as_deref() == Some(name) && others > 0 {
            return Err(CatalogError::InUse {
                kind: "batch deployment",
                name: format!("{endpoint}/{name}"),
                by: format!("endpoint {endpoint} as its default"),
                hint: format!("make another deployment the default first (`batch-endpoint update --name {endpoint} --set defaults.deployment_name=OTHER`)"),
            });
        }
        if !store::delete::<BatchDeployment>(tx, endpoint, name)? {
            return Err(CatalogError::not_found("batch deployment", format!("{endpoint}/{name}")));
        }
        if ep.defaults.deployment_name.as_deref() == Some(name) {
            ep.defaults.deployment_name = None;
            store::update(tx, &ep)?;
        }
        Ok(())
    })?)
}

/// Keys of a deployment file read here (the rest are reported as not used).
const DEPLOYMENT_KEYS: &[&str] = &[
    "name",
    "endpoint_name",
    "description",
    "tags",
    "type",
    "model",
    "environment",
    "settings",
    "resources",
    "compute",
    "batchscore",
];

/// Builds the deployment record from the file, the flags and (on update) the current record.
fn read_deployment(
    ws: &mut Workspace,
    spec: &DeploymentSpec,
    current: Option<&BatchDeployment>,
) -> Result<(BatchDeployment, Vec<String>)> {
    let file = match (&spec.doc, &spec.file) {
        (Some(doc), _) => Some(doc.clone()),
        (None, Some(path)) => Some(AssetFile::load(path)?),
        (None, None) => None,
    };
    let text =
        |k: &str| -> Result<Option<String>> { file.as_ref().map(|f| f.text(k)).transpose().map(Option::flatten) };
    let mut sets = spec.sets.clone();
    let name = spec.name.clone().or(text("name")?).or(current.map(|c| c.name.clone()));
    let endpoint = spec.endpoint_name.clone().or(text("endpoint_name")?).or(current.map(|c| c.endpoint_name.clone()));
    let name = name.ok_or_else(|| ServiceError::invalid("name", "missing: give --name or name: in the file"))?;
    let endpoint = endpoint.ok_or_else(|| {
        ServiceError::invalid("endpoint_name", "missing: give --endpoint-name or endpoint_name: in the file")
    })?;
    names::check("batch deployment", &name)?;
    names::check_endpoint(&endpoint)?;
    if current.is_none() && ws.find::<BatchDeployment>(&endpoint, &name)?.is_some() {
        // Before an inline model is registered for it.
        return Err(CatalogError::AlreadyExists {
            kind: "batch deployment",
            name: format!("{endpoint}/{name}"),
            hint: "; change it with `batch-deployment update`, or give another --name".into(),
        }
        .into());
    }
    let kind = text("type")?.unwrap_or_else(|| "model".into());
    if kind != "model" {
        return Err(ServiceError::invalid(
            format!("deployment type {kind:?}"),
            "batchscore runs model deployments (type: model); pipeline deployments are not supported",
        ));
    }
    let mut warnings = Vec::new();
    let compute_set = take_set(&mut sets, "compute");
    let (mut settings, mut not_used, notes) = read_settings(file.as_ref(), &mut sets)?;
    let model_set = take_set(&mut sets, "model");
    let env_set = take_set(&mut sets, "environment");
    let model = match (model_set.map(Value::String), file.as_ref().and_then(|f| f.doc.get("model").cloned()), current) {
        (Some(v), _, _) | (None, Some(v), _) => model_ref(ws, &v, file.as_ref().map(|f| f.base.as_path()), &name)?,
        (None, None, Some(c)) => c.model.clone(),
        (None, None, None) => {
            return Err(ServiceError::invalid(
                "model",
                "missing: a deployment names a model (model: azureml:<name>:<version>)",
            ));
        }
    };
    let environment =
        match (env_set.map(Value::String), file.as_ref().and_then(|f| f.doc.get("environment").cloned()), current) {
            (Some(v), _, _) | (None, Some(v), _) => environment_ref(ws, &v, &mut warnings)?,
            (None, None, Some(c)) => c.environment.clone(),
            (None, None, None) => AssetRef { name: CURATED_ENVIRONMENT.into(), version: "1".into() },
        };
    let mut description = text("description")?.or(current.and_then(|c| c.description.clone()));
    let mut tags = match &file {
        Some(f) => f.tags()?,
        None => current.map(|c| c.tags.clone()).unwrap_or_default(),
    };
    Change { sets: sets.clone(), ..Default::default() }.apply("batch deployment", &mut description, &mut tags)?;
    if file.is_none()
        && let Some(c) = current
    {
        settings = settings.over(c.settings.clone());
    }
    if let Some(f) = &file {
        not_used.extend(f.others(DEPLOYMENT_KEYS));
    }
    // `compute:` is used: the compute target the jobs' processes run on.
    not_used.retain(|k| k != "compute");
    not_used.sort();
    not_used.dedup();
    for n in &not_used {
        warnings.push(format!("`{n}` means nothing to batchscore and is not used"));
    }
    let instance_count = settings
        .instance_count
        .as_deref()
        .map(str::parse)
        .transpose()
        .map_err(|_| ServiceError::invalid("resources.instance_count", "expected a whole number such as 1"))?;
    validate(&settings)?;
    let instance_count = instance_count.unwrap_or(1);
    let compute = match (compute_set, text("compute")?, current) {
        (Some(c), _, _) | (None, Some(c), _) if c.is_empty() || c == "null" => None,
        (Some(c), _, _) | (None, Some(c), _) => Some(c),
        (None, None, Some(c)) => c.compute.clone(),
        (None, None, None) => None,
    };
    let compute = match compute {
        Some(c) => {
            match super::computes::find(ws, &c)? {
                Some(target) => super::computes::check(&target, instance_count)?,
                None => warnings.push(super::computes::missing_warning(super::computes::name_of(&c))),
            }
            Some(super::computes::name_of(&c).to_string())
        }
        None => {
            if instance_count > 1 {
                warnings.push(format!(
                    "resources.instance_count is {instance_count} but the deployment has no compute: its jobs run in                      one process; give compute: azureml:NAME (`batchscore compute create`) to run {instance_count}"
                ));
            }
            None
        }
    };
    let dep = BatchDeployment {
        id: format!("azureml:{endpoint}/{name}"),
        name,
        endpoint_name: endpoint,
        description,
        tags,
        kind,
        model,
        environment,
        instance_count,
        compute,
        settings,
        not_used,
        notes,
        created_at: String::new(),
    };
    Ok((dep, warnings))
}

/// The file's settings (without its model, which is a catalog reference here) over the `--set`
/// ones that are settings; returns settings, fields not used, notes.
fn read_settings(file: Option<&AssetFile>, sets: &mut Vec<String>) -> Result<(RawSettings, Vec<String>, Vec<String>)> {
    let mut from_file = Deployment::default();
    if let Some(f) = file {
        let mut doc = f.doc.clone();
        for k in ["model", "environment", "name", "endpoint_name", "description", "tags", "type"] {
            doc.remove(k);
        }
        from_file = Deployment::from_yaml(&Value::Mapping(doc), &f.base, &f.path.display().to_string())?;
    }
    let (setting_sets, others): (Vec<String>, Vec<String>) = sets.drain(..).partition(|s| {
        let key = s.split('=').next().unwrap_or_default().trim();
        !matches!(key, "model" | "environment" | "description" | "defaults.deployment_name")
            && !key.starts_with("tags.")
    });
    *sets = others;
    let from_sets = Deployment::from_sets(&setting_sets)?;
    let not_used = from_file.ignored.iter().chain(&from_sets.ignored).cloned().collect();
    let mut notes = from_file.notes;
    notes.extend(from_sets.notes);
    Ok((from_sets.settings.over(from_file.settings), not_used, notes))
}

/// Settings are checked when the deployment is made, not first at invoke.
fn validate(settings: &RawSettings) -> Result<()> {
    let mut probe = settings.clone();
    probe.model = Some("model.onnx".into());
    probe.input = Some("input".into());
    probe.output = Some("output".into());
    probe.resolve("the deployment's settings")?;
    Ok(())
}

/// `model:` of a deployment: a reference, or an inline `{name, path}` registered now.
fn model_ref(ws: &mut Workspace, v: &Value, base: Option<&Path>, deployment: &str) -> Result<AssetRef> {
    match v {
        Value::String(s) if s.starts_with("azureml:") => {
            let r = parse_version_ref("model", s, false)?;
            let m: Model = super::models::show(ws, &r.name, r.version.as_deref())?;
            Ok(AssetRef { name: m.name, version: m.version })
        }
        Value::String(path) => register_inline(ws, &format!("{deployment}-model"), path, base, None),
        Value::Mapping(m) => {
            let get = |k: &str| m.get(k).and_then(scalar);
            let path =
                get("path").ok_or_else(|| ServiceError::invalid("model.path", "missing: the model file or folder"))?;
            let name = get("name").unwrap_or_else(|| format!("{deployment}-model"));
            register_inline(ws, &name, &path, base, get("description"))
        }
        _ => Err(ServiceError::invalid("model", "expected azureml:<name>:<version>, a path, or {name, path}")),
    }
}

fn register_inline(
    ws: &mut Workspace,
    name: &str,
    path: &str,
    base: Option<&Path>,
    description: Option<String>,
) -> Result<AssetRef> {
    let base = base.map(Path::to_path_buf).unwrap_or_else(|| std::env::current_dir().unwrap_or_default());
    let m = super::models::create(
        ws,
        ModelSpec { name: name.into(), path: relative_to(&base, path.trim()), description, ..Default::default() },
    )?;
    Ok(AssetRef { name: m.name, version: m.version })
}

/// `environment:` of a deployment: a reference, or an inline image (not used here).
fn environment_ref(ws: &Workspace, v: &Value, warnings: &mut Vec<String>) -> Result<AssetRef> {
    match v {
        Value::String(s) => {
            let r = parse_version_ref("environment", s, true)?;
            let e: Environment = super::environments::show(ws, &r.name, r.version.as_deref())?;
            Ok(AssetRef { name: e.name, version: e.version })
        }
        Value::Mapping(_) => {
            warnings.push(format!(
                "the inline environment (image, conda_file) is not used here; the deployment runs in {CURATED_ENVIRONMENT}"
            ));
            Ok(AssetRef { name: CURATED_ENVIRONMENT.into(), version: "1".into() })
        }
        _ => Err(ServiceError::invalid("environment", "expected azureml:<name>:<version> or azureml:<name>@latest")),
    }
}
