//! Data assets: named, versioned references to a file or folder (a URL, a local path or a
//! datastore path), in Azure's data YAML.

use std::path::Path;

use super::yaml::{AssetFile, relative_to};
use super::{Change, Result, ServiceError};
use crate::workspace::assets::Data;
use crate::workspace::{Tags, Workspace, names, store};

/// What to register.
#[derive(Debug, Clone, Default)]
pub struct DataSpec {
    pub name: String,
    pub version: Option<String>,
    /// `uri_folder` (default) or `uri_file`.
    pub kind: Option<String>,
    pub path: String,
    pub description: Option<String>,
    pub tags: Tags,
}

impl DataSpec {
    /// Reads Azure's data YAML (`path` relative to the file); returns fields not used too.
    pub fn from_file(path: &Path) -> Result<(DataSpec, Vec<String>)> {
        Self::from_doc(AssetFile::load(path)?)
    }

    /// The same from a parsed document (a REST body).
    pub fn from_doc(f: AssetFile) -> Result<(DataSpec, Vec<String>)> {
        let path = f.path.clone();
        let path = path.as_path();
        let missing = |k: &str| ServiceError::invalid(format!("{}: {k}", path.display()), "missing");
        let spec = DataSpec {
            name: f.text("name")?.ok_or_else(|| missing("name"))?,
            version: f.text("version")?,
            kind: f.text("type")?,
            path: f.path_field("path")?.ok_or_else(|| missing("path"))?,
            description: f.text("description")?,
            tags: f.tags()?,
        };
        Ok((spec, f.others(&["name", "version", "type", "path", "description", "tags"])))
    }
}

/// Registers the next version (or `spec.version`); the path must resolve (a datastore path
/// names a registered datastore).
pub fn create(ws: &mut Workspace, spec: DataSpec) -> Result<Data> {
    names::check("data asset", &spec.name)?;
    if let Some(v) = &spec.version {
        names::check_version("data asset", v)?;
    }
    let kind = spec.kind.unwrap_or_else(|| "uri_folder".into());
    if !["uri_folder", "uri_file"].contains(&kind.as_str()) {
        return Err(ServiceError::invalid(
            format!("data type {kind:?}"),
            "batchscore scores uri_folder and uri_file data (mltable is not supported)",
        ));
    }
    let path = relative_to(&std::env::current_dir().unwrap_or_default(), &spec.path);
    if path.starts_with("azureml:") && !path.starts_with("azureml://") {
        return Err(ServiceError::invalid(
            format!("data path {path:?}"),
            "a data asset's path is a URL, a local path or azureml://datastores/<ds>/paths/<p>",
        ));
    }
    ws.resolve(&path)?;
    let mut data = Data {
        id: String::new(),
        name: spec.name,
        version: String::new(),
        kind,
        description: spec.description,
        tags: spec.tags,
        path,
        created_at: crate::workspace::now(),
    };
    ws.write(|tx| {
        data.version = match &spec.version {
            Some(v) => v.clone(),
            None => store::next_version::<Data>(tx, &data.name)?,
        };
        data.id = format!("azureml:{}:{}", data.name, data.version);
        store::insert(tx, &data)
    })?;
    Ok(data)
}

/// A version, or the latest.
pub fn show(ws: &Workspace, name: &str, version: Option<&str>) -> Result<Data> {
    super::show_version(ws, name, version)
}

/// Changes description and tags only.
pub fn update(ws: &mut Workspace, name: &str, version: &str, change: Change) -> Result<Data> {
    super::update_described(ws, name, version, &change)
}
