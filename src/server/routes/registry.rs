//! `/environments`, `/datastores`, `/data`: created from Azure's YAML as JSON, listed, shown,
//! PATCHed (description and tags) and deleted, as the CLI does.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    ApiResult, AppState, Patch, ValueList, body, change_of, created, named_doc, no_content, ok, version_param, with_ws,
};
use crate::server::error::ErrorBody;
use crate::service as svc;
use crate::workspace::assets::{Data, Datastore, Environment};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_environments))
        .routes(routes!(environment_versions, create_environment))
        .routes(routes!(show_environment, patch_environment, delete_environment))
        .routes(routes!(list_datastores))
        .routes(routes!(show_datastore, put_datastore, delete_datastore))
        .routes(routes!(datastore_files))
        .routes(routes!(list_data))
        .routes(routes!(data_versions, create_data))
        .routes(routes!(show_data, patch_data))
}

// Environments

/// Every environment version (`batchscore-cpu` is in every workspace).
#[utoipa::path(get, path = "/environments", tag = "environments", security(("bearer" = ["read"])),
    responses((status = 200, body = ValueList<Environment>)))]
pub async fn list_environments(State(s): State<AppState>) -> ApiResult {
    super::list(with_ws(&s, |ws| Ok(ws.list::<Environment>(None, &[])?)).await?)
}

/// The versions of one environment.
#[utoipa::path(get, path = "/environments/{name}/versions", tag = "environments", security(("bearer" = ["read"])),
    params(("name" = String, Path)),
    responses((status = 200, body = ValueList<Environment>)))]
pub async fn environment_versions(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    super::list(with_ws(&s, move |ws| Ok(ws.list::<Environment>(Some(&n), &[])?)).await?)
}

/// One environment version (`latest` for the newest).
#[utoipa::path(get, path = "/environments/{name}/versions/{version}", tag = "environments", security(("bearer" = ["read"])),
    params(("name" = String, Path), ("version" = String, Path, description = "A version, or `latest`")),
    responses((status = 200, body = Environment), (status = 404, body = ErrorBody)))]
pub async fn show_environment(State(s): State<AppState>, Path((n, v)): Path<(String, String)>) -> ApiResult {
    ok(with_ws(&s, move |ws| svc::environments::show(ws, &n, version_param(&v))).await?)
}

/// Registers the next version from Azure's environment YAML as JSON; `runtime:` is what the
/// job uses (`image`, `conda_file` and `build` are recorded as not used).
#[utoipa::path(post, path = "/environments/{name}/versions", tag = "environments", security(("bearer" = ["admin"])),
    params(("name" = String, Path)),
    request_body(content = Object, description = "Azure's environment YAML, as JSON",
        example = json!({"description": "ONNX Runtime on CPU, 2 threads per call", "runtime": {"execution_provider": "cpu", "intra_op_num_threads": 2}})),
    responses((status = 201, body = Environment), (status = 400, body = ErrorBody)))]
pub async fn create_environment(
    State(s): State<AppState>,
    Path(n): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let doc = named_doc(body(b)?, &n)?;
    created(
        with_ws(&s, move |ws| svc::environments::create(ws, svc::environments::EnvironmentSpec::from_doc(doc)?))
            .await?,
    )
}

/// Changes a version's description and tags.
#[utoipa::path(patch, path = "/environments/{name}/versions/{version}", tag = "environments", security(("bearer" = ["admin"])),
    params(("name" = String, Path), ("version" = String, Path)),
    request_body(content = Patch, example = json!({"tags": {"owner": "platform"}})),
    responses((status = 200, body = Environment), (status = 400, body = ErrorBody)))]
pub async fn patch_environment(
    State(s): State<AppState>,
    Path((n, v)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let change = change_of(body(b)?)?;
    ok(with_ws(&s, move |ws| svc::environments::update(ws, &n, &v, change)).await?)
}

/// Deletes a version (refused while a deployment uses it).
#[utoipa::path(delete, path = "/environments/{name}/versions/{version}", tag = "environments", security(("bearer" = ["admin"])),
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 204), (status = 409, body = ErrorBody)))]
pub async fn delete_environment(State(s): State<AppState>, Path((n, v)): Path<(String, String)>) -> ApiResult {
    with_ws(&s, move |ws| svc::environments::delete(ws, &n, &v)).await?;
    no_content()
}

// Datastores

/// Every datastore (`workspaceblobstore` is the workspace's own).
#[utoipa::path(get, path = "/datastores", tag = "datastores", security(("bearer" = ["read"])),
    responses((status = 200, body = ValueList<Datastore>)))]
pub async fn list_datastores(State(s): State<AppState>) -> ApiResult {
    super::list(with_ws(&s, |ws| Ok(ws.list::<Datastore>(None, &[])?)).await?)
}

/// One datastore.
#[utoipa::path(get, path = "/datastores/{name}", tag = "datastores", security(("bearer" = ["read"])),
    params(("name" = String, Path)),
    responses((status = 200, body = Datastore), (status = 404, body = ErrorBody)))]
pub async fn show_datastore(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    ok(with_ws(&s, move |ws| Ok(ws.get::<Datastore>(&n, "")?)).await?)
}

/// Creates a datastore from Azure's datastore YAML as JSON. Secrets in it are dropped (with a
/// warning naming the environment variable they are read from); `credentials_from_env` names
/// your own.
#[utoipa::path(put, path = "/datastores/{name}", tag = "datastores", security(("bearer" = ["admin"])),
    params(("name" = String, Path)),
    request_body(content = Object, description = "Azure's datastore YAML, as JSON",
        example = json!({"type": "azure_blob", "description": "nightly exports", "account_name": "contosoexports", "container_name": "nightly"})),
    responses((status = 201, body = Datastore), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn put_datastore(
    State(s): State<AppState>,
    Path(n): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let doc = named_doc(body(b)?, &n)?;
    let (ds, warnings) = with_ws(&s, move |ws| {
        let (ds, warnings) = svc::datastores::from_doc(doc)?;
        Ok((svc::datastores::create(ws, ds)?, warnings))
    })
    .await?;
    let mut v = serde_json::to_value(ds).unwrap_or_default();
    v["warnings"] = json!(warnings);
    created(v)
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FilesParams {
    /// A path inside the datastore (a folder or a file); the whole datastore when absent.
    path: Option<String>,
    /// At most this many (1 to 1000, default 100).
    top: Option<usize>,
}

/// The files under a path of a datastore (at every depth): to browse an input, or to see that
/// an output does not exist yet.
#[utoipa::path(get, path = "/datastores/{name}/files", tag = "datastores", security(("bearer" = ["read"])),
    params(("name" = String, Path), FilesParams),
    responses((status = 200, body = ValueList<svc::datastores::StoredFile>), (status = 404, body = ErrorBody)))]
pub async fn datastore_files(
    State(s): State<AppState>,
    Path(n): Path<String>,
    axum::extract::Query(q): axum::extract::Query<FilesParams>,
) -> ApiResult {
    let top = q.top.unwrap_or(100);
    if !(1..=1000).contains(&top) {
        return Err(crate::server::error::ApiError::bad_request(format!("top {top}: 1 to 1000")));
    }
    let path = q.path.unwrap_or_default();
    let (files, more) = with_ws(&s, move |ws| svc::datastores::list_files(ws, &n, &path, top)).await?;
    let mut v =
        serde_json::to_value(super::ValueList { value: files, count: None, next_link: None }).unwrap_or_default();
    v["more"] = json!(more);
    ok(v)
}

/// Deletes a datastore (not the workspace's own).
#[utoipa::path(delete, path = "/datastores/{name}", tag = "datastores", security(("bearer" = ["admin"])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody)))]
pub async fn delete_datastore(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    with_ws(&s, move |ws| svc::datastores::delete(ws, &n)).await?;
    no_content()
}

// Data assets

/// Every data asset version.
#[utoipa::path(get, path = "/data", tag = "data", security(("bearer" = ["read"])),
    responses((status = 200, body = ValueList<Data>)))]
pub async fn list_data(State(s): State<AppState>) -> ApiResult {
    super::list(with_ws(&s, |ws| Ok(ws.list::<Data>(None, &[])?)).await?)
}

/// The versions of one data asset.
#[utoipa::path(get, path = "/data/{name}/versions", tag = "data", security(("bearer" = ["read"])),
    params(("name" = String, Path)),
    responses((status = 200, body = ValueList<Data>)))]
pub async fn data_versions(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    super::list(with_ws(&s, move |ws| Ok(ws.list::<Data>(Some(&n), &[])?)).await?)
}

/// One data asset version (`latest` for the newest).
#[utoipa::path(get, path = "/data/{name}/versions/{version}", tag = "data", security(("bearer" = ["read"])),
    params(("name" = String, Path), ("version" = String, Path, description = "A version, or `latest`")),
    responses((status = 200, body = Data), (status = 404, body = ErrorBody)))]
pub async fn show_data(State(s): State<AppState>, Path((n, v)): Path<(String, String)>) -> ApiResult {
    ok(with_ws(&s, move |ws| svc::data::show(ws, &n, version_param(&v))).await?)
}

/// Registers the next version from Azure's data YAML as JSON (`uri_file` or `uri_folder`).
#[utoipa::path(post, path = "/data/{name}/versions", tag = "data", security(("bearer" = ["admin"])),
    params(("name" = String, Path)),
    request_body(content = Object, description = "Azure's data asset YAML, as JSON",
        example = json!({"type": "uri_folder", "path": "azureml://datastores/workspaceblobstore/paths/heart/", "description": "heart disease records"})),
    responses((status = 201, body = Data), (status = 400, body = ErrorBody)))]
pub async fn create_data(
    State(s): State<AppState>,
    Path(n): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let doc = named_doc(body(b)?, &n)?;
    created(with_ws(&s, move |ws| svc::data::create(ws, svc::data::DataSpec::from_doc(doc)?.0)).await?)
}

/// Changes a version's description and tags.
#[utoipa::path(patch, path = "/data/{name}/versions/{version}", tag = "data", security(("bearer" = ["admin"])),
    params(("name" = String, Path), ("version" = String, Path)),
    request_body(content = Patch, example = json!({"description": "heart disease records, 2026 export"})),
    responses((status = 200, body = Data), (status = 400, body = ErrorBody)))]
pub async fn patch_data(
    State(s): State<AppState>,
    Path((n, v)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let change = change_of(body(b)?)?;
    ok(with_ws(&s, move |ws| svc::data::update(ws, &n, &v, change)).await?)
}
