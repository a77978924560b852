//! Datastores: named store URLs, in Azure's datastore YAML (`azure_blob`, plus `s3`, `gcs`,
//! `local` and `http` kinds with their URL). Credentials are never stored: a datastore names
//! the environment variables that hold them, and a secret written in the file is dropped with
//! a warning that says which variable to set instead.

use std::collections::BTreeMap;
use std::path::Path;

use super::yaml::{AssetFile, scalar};
use super::{Result, ServiceError};
use crate::storage::{Location, StorageOptions};
use crate::workspace::assets::Datastore;
use crate::workspace::{CatalogError, DEFAULT_DATASTORE, Workspace, names, refs, store};

/// Azure's credential fields, the storage option each stands for, and the environment variable
/// it is read from by default.
const AZURE_CREDENTIALS: &[(&str, &str, &str)] = &[
    ("account_key", "azure_storage_account_key", "AZURE_STORAGE_ACCOUNT_KEY"),
    ("sas_token", "azure_storage_sas_key", "AZURE_STORAGE_SAS_TOKEN"),
    ("client_id", "azure_storage_client_id", "AZURE_CLIENT_ID"),
    ("client_secret", "azure_storage_client_secret", "AZURE_CLIENT_SECRET"),
    ("tenant_id", "azure_storage_tenant_id", "AZURE_TENANT_ID"),
];

/// The datastore record of the workspace's default store.
pub fn default_record(url: &str) -> Datastore {
    Datastore {
        id: format!("azureml:{DEFAULT_DATASTORE}"),
        name: DEFAULT_DATASTORE.into(),
        kind: if url.contains("://") { url.split("://").next().unwrap_or("url").to_string() } else { "local".into() },
        description: Some("The workspace's default datastore".into()),
        tags: Default::default(),
        url: url.to_string(),
        credentials_from_env: BTreeMap::new(),
        options: BTreeMap::new(),
        not_used: Vec::new(),
        created_at: crate::workspace::now(),
    }
}

/// The default datastore, opened.
pub fn default_store(ws: &Workspace) -> Result<Location> {
    open(&ws.get::<Datastore>(DEFAULT_DATASTORE, "")?)
}

/// A datastore's root, opened with its options.
pub fn open(ds: &Datastore) -> Result<Location> {
    let options = StorageOptions::parse(&refs::datastore_options(ds))?;
    Ok(Location::open(&ds.url, &options)?)
}

/// Reads a datastore YAML; returns the record and warnings (secrets dropped, fields not used).
pub fn from_file(path: &Path) -> Result<(Datastore, Vec<String>)> {
    from_doc(AssetFile::load(path)?)
}

/// The same from a parsed document (a REST body).
pub fn from_doc(f: AssetFile) -> Result<(Datastore, Vec<String>)> {
    let path = f.path.clone();
    let path = path.as_path();
    let missing = |k: &str| ServiceError::invalid(format!("{}: {k}", path.display()), "missing");
    let name = f.text("name")?.ok_or_else(|| missing("name"))?;
    let kind = f.text("type")?.ok_or_else(|| missing("type"))?;
    let mut warnings = Vec::new();
    let mut ds = default_record("");
    ds.id = format!("azureml:{name}");
    ds.name = name;
    ds.description = f.text("description")?;
    ds.tags = f.tags()?;
    let mut used = vec!["name", "type", "description", "tags", "credentials", "credentials_from_env", "options"];
    ds.url = match kind.as_str() {
        "azure_blob" | "azure_data_lake_gen2" => {
            let account = f.text("account_name")?.ok_or_else(|| missing("account_name"))?;
            let container =
                f.text("container_name")?.or(f.text("filesystem")?).ok_or_else(|| missing("container_name"))?;
            let endpoint = f.text("endpoint")?.unwrap_or_else(|| "core.windows.net".into());
            let protocol = f.text("protocol")?.unwrap_or_else(|| "https".into());
            used.extend(["account_name", "container_name", "filesystem", "endpoint", "protocol"]);
            if protocol != "https" {
                warnings
                    .push(format!("protocol {protocol} is read as https (the only protocol the Azure store speaks)"));
            }
            ds.options.insert("azure_storage_account_name".into(), account.clone());
            if endpoint != "core.windows.net" {
                ds.options.insert("azure_storage_endpoint".into(), format!("https://{account}.blob.{endpoint}"));
            }
            read_azure_credentials(&f, &mut ds, &mut warnings)?;
            format!("az://{container}")
        }
        "s3" | "gcs" | "http" => {
            used.push("url");
            let url = f.text("url")?.ok_or_else(|| missing("url"))?;
            let scheme = match kind.as_str() {
                "s3" => "s3://",
                "gcs" => "gs://",
                _ => "http",
            };
            if !url.starts_with(scheme) {
                return Err(ServiceError::invalid(
                    format!("{}: url", path.display()),
                    format!("a {kind} datastore's url starts with {scheme}"),
                ));
            }
            url
        }
        "local" => {
            used.push("path");
            f.path_field("path")?.ok_or_else(|| missing("path"))?
        }
        other => {
            return Err(ServiceError::invalid(
                format!("{}: type {other}", path.display()),
                "batchscore knows the datastore types azure_blob, azure_data_lake_gen2, s3, gcs, http and local",
            ));
        }
    };
    ds.kind = kind;
    read_extensions(&f, &mut ds)?;
    ds.not_used = f.others(&used);
    Ok((ds, warnings))
}

/// Azure's `credentials:` block: each secret becomes the name of the variable that will hold it.
fn read_azure_credentials(f: &AssetFile, ds: &mut Datastore, warnings: &mut Vec<String>) -> Result<()> {
    let Some(creds) = f.mapping("credentials")? else { return Ok(()) };
    for (k, _) in creds {
        let k = scalar(k).unwrap_or_default();
        match AZURE_CREDENTIALS.iter().find(|(field, ..)| *field == k) {
            Some((_, option, var)) => {
                ds.credentials_from_env.insert(option.to_string(), var.to_string());
                warnings.push(format!(
                    "credentials.{k} was not stored (the catalog never holds secrets); jobs read it from the environment variable {var}"
                ));
            }
            None => warnings.push(format!("credentials.{k} is not used here and was not stored")),
        }
    }
    Ok(())
}

/// batchscore's fields: `credentials_from_env: {option: VARIABLE}` and `options: {option: value}`.
fn read_extensions(f: &AssetFile, ds: &mut Datastore) -> Result<()> {
    for (k, v) in f.mapping("credentials_from_env")?.into_iter().flatten() {
        ds.credentials_from_env.insert(scalar(k).unwrap_or_default(), scalar(v).unwrap_or_default());
    }
    for (k, v) in f.mapping("options")?.into_iter().flatten() {
        let (k, v) = (scalar(k).unwrap_or_default(), scalar(v).unwrap_or_default());
        if crate::secrets::is_secret_key(&k) {
            return Err(ServiceError::invalid(
                format!("{}: options.{k}", f.path.display()),
                "is a secret; name the environment variable that holds it under credentials_from_env instead",
            ));
        }
        ds.options.insert(k, v);
    }
    let opts: Vec<String> = ds.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    StorageOptions::parse(&opts)?;
    Ok(())
}

/// Registers a datastore.
pub fn create(ws: &mut Workspace, ds: Datastore) -> Result<Datastore> {
    names::check("datastore", &ds.name)?;
    open(&ds)?;
    ws.write(|tx| store::insert(tx, &ds))?;
    Ok(ds)
}

/// Removes a datastore (not the default one).
pub fn delete(ws: &mut Workspace, name: &str) -> Result<()> {
    if name == DEFAULT_DATASTORE {
        return Err(ServiceError::invalid(
            format!("datastore {name}"),
            "is the workspace's default datastore, which models and job outputs live in; it cannot be deleted",
        ));
    }
    ws.write(|tx| {
        if store::delete::<Datastore>(tx, name, "")? { Ok(()) } else { Err(CatalogError::not_found("datastore", name)) }
    })?;
    Ok(())
}

/// A file under a store path.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct StoredFile {
    /// Relative to the path asked for.
    pub path: String,
    pub size_bytes: u64,
    /// Where it is in its store.
    #[serde(skip)]
    pub location: object_store::path::Path,
}

/// The store location a reference resolves to (a datastore path, a data asset, a URL or a
/// path), with its datastore's options.
pub fn locate(ws: &Workspace, reference: &str) -> Result<Location> {
    let resolved = ws.resolve(reference)?;
    Ok(Location::open(&resolved.url, &StorageOptions::parse(&resolved.storage_options)?)?)
}

/// The first `limit` files under `loc` (at every depth), relative to it, and whether there
/// are more.
pub fn files_under(loc: &Location, limit: usize) -> Result<(Vec<StoredFile>, bool)> {
    use futures::StreamExt;
    let listed: Vec<std::result::Result<object_store::ObjectMeta, object_store::Error>> =
        super::io_runtime()?.block_on(loc.store.list(Some(&loc.path)).take(limit.saturating_add(1)).collect());
    let mut files = Vec::new();
    for meta in listed {
        let meta = meta.map_err(|e| ServiceError::store(loc, &e))?;
        let rel = meta
            .location
            .prefix_match(&loc.path)
            .map(|p| p.map(|s| s.as_ref().to_string()).collect::<Vec<_>>().join("/"));
        let path = rel.unwrap_or_else(|| meta.location.to_string());
        files.push(StoredFile { path, size_bytes: meta.size, location: meta.location });
    }
    let more = files.len() > limit;
    files.truncate(limit);
    Ok((files, more))
}

/// The first `limit` files under `path` of datastore `name` (all depths), and whether there
/// are more: what a page shows before a job writes there (an output must not exist).
pub fn list_files(ws: &Workspace, name: &str, path: &str, limit: usize) -> Result<(Vec<StoredFile>, bool)> {
    let reference = format!("azureml://datastores/{name}/paths/{}", path.trim_start_matches('/'));
    files_under(&locate(ws, &reference)?, limit)
}
