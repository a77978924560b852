//! Models: register an ONNX file (or an MLflow ONNX folder) as the next version of a name,
//! copying it into the default datastore; list, show, update (description and tags only),
//! download, delete (not while a deployment uses it).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use sha2::Digest;

use super::datastores::default_store;
use super::yaml::AssetFile;
use super::{Result, ServiceError};
use crate::engine::model::{proto, signature};
use crate::storage::Location;
use crate::workspace::assets::{Model, Signature, TensorSignature};
use crate::workspace::{CatalogError, Tags, Workspace, names, refs, store};

/// What to register.
#[derive(Debug, Clone, Default)]
pub struct ModelSpec {
    pub name: String,
    /// The next version when `None`.
    pub version: Option<String>,
    /// An `.onnx` file or a folder holding one (MLflow's ONNX flavour), local or a URL.
    pub path: String,
    pub description: Option<String>,
    pub tags: Tags,
    /// Azure's `type`: `custom_model` (default) or `mlflow_model`.
    pub kind: Option<String>,
    /// What the record says it came from, when not `path` (an upload's temporary file).
    pub source: Option<String>,
}

impl ModelSpec {
    /// Reads Azure's model YAML (`name`, `version`, `path`, `type`, `description`, `tags`);
    /// `path` is relative to the file.
    pub fn from_file(path: &Path) -> Result<(ModelSpec, Vec<String>)> {
        let f = AssetFile::load(path)?;
        let spec = ModelSpec {
            name: f
                .text("name")?
                .ok_or_else(|| ServiceError::invalid(format!("{}: name", path.display()), "missing"))?,
            version: f.text("version")?,
            path: f.path_field("path")?.ok_or_else(|| {
                ServiceError::invalid(format!("{}: path", path.display()), "missing: the model file or folder")
            })?,
            description: f.text("description")?,
            tags: f.tags()?,
            kind: f.text("type")?,
            source: None,
        };
        Ok((spec, f.others(&["name", "version", "path", "type", "description", "tags"])))
    }
}

/// A model file found and read.
struct Found {
    bytes: Bytes,
    file_name: String,
    /// The local file, when it is one (for external weights beside it).
    local: Option<PathBuf>,
    /// External weight files, relative to the model, with their bytes.
    weights: Vec<(String, Bytes)>,
}

/// Registers `spec` and returns the new version.
pub fn create(ws: &mut Workspace, spec: ModelSpec) -> Result<Model> {
    names::check("model", &spec.name)?;
    if let Some(v) = &spec.version {
        names::check_version("model", v)?;
    }
    let kind = spec.kind.clone().unwrap_or_else(|| "custom_model".into());
    if !["custom_model", "mlflow_model"].contains(&kind.as_str()) {
        return Err(ServiceError::invalid(
            format!("model type {kind:?}"),
            "batchscore registers ONNX models: use custom_model (an .onnx file) or mlflow_model (an MLflow folder with model.onnx)",
        ));
    }
    // A datastore path reads through the datastore (with its options).
    let (path, options) = if spec.path.starts_with("azureml://") {
        let r = ws.resolve(&spec.path)?;
        (r.url, r.storage_options)
    } else {
        (spec.path.clone(), Vec::new())
    };
    let found = read_model(&path, &options)?;
    let sha256 = format!("{:x}", sha2::Sha256::digest(&found.bytes));
    let label = spec.source.as_deref().unwrap_or(&spec.path);
    let (inputs, outputs) = signature::read(&found.bytes, found.local.as_deref(), label)?;
    let rel = format!("LocalUpload/{}/{}", &sha256[..32], found.file_name);
    let store = default_store(ws)?;
    let io = super::io_runtime()?;
    upload(&io, &store, &rel, found.bytes.clone())?;
    for (name, bytes) in &found.weights {
        upload(&io, &store, &refs::join(&format!("LocalUpload/{}", &sha256[..32]), name), bytes.clone())?;
    }
    let sig = |list: Vec<signature::Outlet>| {
        list.into_iter().map(|o| TensorSignature { name: o.name, dtype: o.dtype, shape: o.shape }).collect()
    };
    let mut model = Model {
        id: String::new(),
        name: spec.name.clone(),
        version: String::new(),
        kind,
        description: spec.description,
        tags: spec.tags,
        path: format!("azureml://datastores/{}/paths/{rel}", crate::workspace::DEFAULT_DATASTORE),
        url: refs::join(&ws.config.default_datastore, &rel),
        source: spec.source.clone().unwrap_or_else(|| crate::storage::redact(&spec.path)),
        signature: Signature { inputs: sig(inputs), outputs: sig(outputs) },
        size_bytes: found.bytes.len() as u64,
        sha256,
        created_at: crate::workspace::now(),
    };
    ws.write(|tx| {
        model.version = match &spec.version {
            Some(v) => v.clone(),
            None => store::next_version::<Model>(tx, &model.name)?,
        };
        model.id = format!("azureml:{}:{}", model.name, model.version);
        store::insert(tx, &model).map_err(|e| match e {
            CatalogError::AlreadyExists { kind, name, .. } => CatalogError::AlreadyExists {
                kind,
                name,
                hint: "; a version never changes: leave --version out to register the next one".into(),
            },
            e => e,
        })
    })?;
    Ok(model)
}

/// Finds the `.onnx` file at `path` (a file, an MLflow folder, or a folder with one model).
fn read_model(path: &str, options: &[String]) -> Result<Found> {
    let local = (!path.contains("://")).then(|| PathBuf::from(path));
    let Some(local) = local else {
        let loc = Location::open(path, &crate::storage::StorageOptions::parse(options)?)?;
        let bytes = super::io_runtime()?
            .block_on(crate::engine::read::fetch_one(&loc.store, &loc.path))
            .map_err(|message| ServiceError::Store { url: loc.display.clone(), message })?;
        let file_name = loc.path.filename().unwrap_or("model.onnx").to_string();
        return Ok(Found { bytes, file_name, local: None, weights: Vec::new() });
    };
    let file = if local.is_dir() { onnx_in_folder(&local)? } else { local };
    let bytes = std::fs::read(&file).map_err(|source| ServiceError::Io { path: file.clone(), source })?;
    let bytes = Bytes::from(bytes);
    let facts = proto::read(&bytes).unwrap_or_default();
    let mut weights = Vec::new();
    for rel in &facts.external_files {
        if !proto::safe_location(rel) {
            return Err(ServiceError::invalid(
                format!("model {}", file.display()),
                format!("its external weights {rel:?} are outside its folder; keep them beside the model"),
            ));
        }
        let w = file.parent().unwrap_or(Path::new(".")).join(rel);
        let b = std::fs::read(&w).map_err(|source| ServiceError::Io { path: w.clone(), source })?;
        weights.push((rel.clone(), Bytes::from(b)));
    }
    let file_name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "model.onnx".into());
    Ok(Found { bytes, file_name, local: Some(file), weights })
}

/// The model file of a folder: MLflow's `MLmodel` names it (`flavors.onnx.data`), else the
/// folder's only `.onnx` file.
fn onnx_in_folder(dir: &Path) -> Result<PathBuf> {
    let mlmodel = dir.join("MLmodel");
    if mlmodel.is_file() {
        let f = AssetFile::load(&mlmodel)?;
        let onnx = f.mapping("flavors")?.and_then(|m| m.get("onnx")).ok_or_else(|| {
            ServiceError::invalid(
                mlmodel.display().to_string(),
                "has no onnx flavour; batchscore scores ONNX models (save it with mlflow.onnx.save_model)",
            )
        })?;
        let data = onnx.get("data").and_then(super::yaml::scalar).unwrap_or_else(|| "model.onnx".into());
        return Ok(dir.join(data));
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|source| ServiceError::Io { path: dir.to_path_buf(), source })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(ServiceError::invalid(dir.display().to_string(), "holds no .onnx file and no MLmodel")),
        n => Err(ServiceError::invalid(
            dir.display().to_string(),
            format!("holds {n} .onnx files; give the path of the one to register"),
        )),
    }
}

/// Writes `bytes` at `rel` create-only; an object already there is the same content (the path
/// holds the content's sha256).
fn upload(io: &tokio::runtime::Runtime, store: &Location, rel: &str, bytes: Bytes) -> Result<()> {
    match io.block_on(crate::engine::commit::put_create(store, rel, bytes)) {
        Ok(()) | Err(crate::engine::commit::CommitError::AlreadyExists { .. }) => Ok(()),
        Err(e) => Err(ServiceError::Store { url: store.join(rel).display, message: e.to_string() }),
    }
}

/// A version by number, or the latest when `version` is `None` (`--label latest`).
pub fn show(ws: &Workspace, name: &str, version: Option<&str>) -> Result<Model> {
    super::show_version(ws, name, version)
}

/// Every version, or every version of `name`.
pub fn list(ws: &Workspace, name: Option<&str>) -> Result<Vec<Model>> {
    Ok(ws.list(name, &[])?)
}

/// Changes description and tags; anything else is refused with the reason.
pub fn update(ws: &mut Workspace, name: &str, version: &str, change: super::Change) -> Result<Model> {
    super::update_described(ws, name, version, &change)
}

/// Deletes a version not used by any deployment.
pub fn delete(ws: &mut Workspace, name: &str, version: &str) -> Result<()> {
    ws.write(|tx| {
        let mut stmt = tx
            .prepare(
                "SELECT endpoint || '/' || name FROM batch_deployments WHERE model_name = ?1 AND model_version = ?2",
            )
            .map_err(store::sqlite)?;
        let users: Vec<String> =
            stmt.query_map([name, version], |r| r.get(0)).and_then(|r| r.collect()).map_err(store::sqlite)?;
        if !users.is_empty() {
            return Err(CatalogError::InUse {
                kind: "model",
                name: format!("{name}:{version}"),
                by: format!("deployment {}", users.join(", ")),
                hint: "delete those deployments or point them at another version first".into(),
            });
        }
        if !store::delete::<Model>(tx, name, version)? {
            return Err(CatalogError::not_found("model", format!("{name}:{version}")));
        }
        Ok(())
    })
    .map_err(ServiceError::from)
}

/// Copies a version's file into `dir/<name>/`, and returns the file written.
pub fn download(ws: &Workspace, name: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    let m: Model = ws.get(name, version)?;
    let loc = Location::parse(&m.url)?;
    let bytes = super::io_runtime()?
        .block_on(crate::engine::read::fetch_one(&loc.store, &loc.path))
        .map_err(|message| ServiceError::Store { url: loc.display.clone(), message })?;
    let to_dir = dir.join(&m.name);
    std::fs::create_dir_all(&to_dir).map_err(|source| ServiceError::Io { path: to_dir.clone(), source })?;
    let file = to_dir.join(loc.path.filename().unwrap_or("model.onnx"));
    std::fs::write(&file, &bytes).map_err(|source| ServiceError::Io { path: file.clone(), source })?;
    Ok(file)
}
