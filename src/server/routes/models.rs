//! `/models`: list, show, create from a path or URL the server reads or from an uploaded file
//! (a streamed body with its own size limit), PATCH description and tags, delete.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{
    ApiResult, AppState, Page, Patch, ValueList, body, change_of, created, no_content, ok, version_param, windowed,
    with_ws,
};
use crate::server::error::{ApiError, ErrorBody};
use crate::service::models::{self, ModelSpec};
use crate::workspace::Tags;
use crate::workspace::assets::Model;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_models))
        .routes(routes!(model_versions, create_model))
        .routes(routes!(show_model, patch_model, delete_model))
        .routes(routes!(model_content))
}

/// The version's `.onnx` file, streamed (as an attachment).
#[utoipa::path(get, path = "/models/{name}/versions/{version}/content", tag = "models", security(("bearer" = ["read"])),
    params(("name" = String, Path), ("version" = String, Path, description = "A version, or `latest`")),
    responses((status = 200, description = "The ONNX file", content_type = "application/octet-stream"), (status = 404, body = ErrorBody)))]
pub async fn model_content(State(s): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult {
    let m = with_ws(&s, move |ws| models::show(ws, &name, version_param(&version))).await?;
    let loc = crate::storage::Location::parse(&m.url).map_err(|e| ApiError::internal(e.to_string()))?;
    let file = loc.path.filename().unwrap_or("model.onnx").to_string();
    super::stream_object(&loc, &loc.path, m.size_bytes, &file).await
}

/// Every model version.
#[utoipa::path(get, path = "/models", tag = "models", security(("bearer" = ["read"])),
    params(Page), responses((status = 200, body = ValueList<Model>)))]
pub async fn list_models(State(s): State<AppState>, Query(page): Query<Page>) -> ApiResult {
    models_window(s, None, page, "/models".into()).await
}

/// The versions of one model.
#[utoipa::path(get, path = "/models/{name}/versions", tag = "models", security(("bearer" = ["read"])),
    params(("name" = String, Path, description = "The model's name"), Page),
    responses((status = 200, body = ValueList<Model>)))]
pub async fn model_versions(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(page): Query<Page>,
) -> ApiResult {
    let path = format!("/models/{name}/versions");
    models_window(s, Some(name), page, path).await
}

/// All the versions (of one name), or the window the query asks for.
async fn models_window(s: AppState, name: Option<String>, page: Page, path: String) -> ApiResult {
    let Some(w) = page.window()? else {
        return super::list(with_ws(&s, move |ws| models::list(ws, name.as_deref())).await?);
    };
    let (value, count) = with_ws(&s, move |ws| Ok(ws.list_window::<Model>(name.as_deref(), &[], w)?)).await?;
    windowed(value, count, w, &page, &path)
}

/// One model version (`latest` for the newest).
#[utoipa::path(get, path = "/models/{name}/versions/{version}", tag = "models", security(("bearer" = ["read"])),
    params(("name" = String, Path), ("version" = String, Path, description = "A version, or `latest`")),
    responses((status = 200, body = Model), (status = 404, body = ErrorBody)))]
pub async fn show_model(State(s): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult {
    ok(with_ws(&s, move |ws| models::show(ws, &name, version_param(&version))).await?)
}

/// A model registered from a file or folder the server can read: a local path, a URL or an
/// `azureml://datastores/...` path.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"path": "/data/models/heart-classifier.onnx", "description": "heart disease classifier", "tags": {"team": "cardio"}}))]
pub struct ModelBody {
    /// An `.onnx` file, an MLflow ONNX folder, a URL or a datastore path.
    path: String,
    /// The next version when left out.
    version: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: Tags,
    /// `custom_model` (default) or `mlflow_model`.
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// What an upload says about the file, in the query string.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// The next version when left out.
    version: Option<String>,
    description: Option<String>,
    /// The name the file is stored under (default `model.onnx`).
    file_name: Option<String>,
}

/// Registers the next version: JSON names a path the server reads; an
/// `application/octet-stream` body is the `.onnx` file itself, streamed to disk up to the
/// server's `--max-upload-size` and checked as an ONNX model before it is registered.
#[utoipa::path(post, path = "/models/{name}/versions", tag = "models", security(("bearer" = ["admin"])),
    params(("name" = String, Path), UploadParams),
    request_body(description = "JSON naming a path the server reads, or the .onnx file itself (external weights cannot be uploaded this way)",
        content((ModelBody = "application/json"), (Vec<u8> = "application/octet-stream"))),
    responses((status = 201, body = Model), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn create_model(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<UploadParams>,
    request: Request,
) -> ApiResult {
    let content_type = request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.starts_with("application/octet-stream") {
        return upload(s, name, q, request).await;
    }
    if q.version.is_some() || q.description.is_some() || q.file_name.is_some() {
        return Err(ApiError::bad_request(
            "version, description and file_name in the query are for uploads (Content-Type: application/octet-stream); put them in the JSON body",
        ));
    }
    let b: Result<Json<ModelBody>, JsonRejection> = Json::from_request(request, &s).await;
    let b = body(b)?;
    let spec = ModelSpec {
        name,
        version: b.version,
        path: b.path,
        description: b.description,
        tags: b.tags,
        kind: b.kind,
        source: None,
    };
    created(with_ws(&s, move |ws| models::create(ws, spec)).await?)
}

/// Streams the body into a file of its own under the workspace, then registers it.
async fn upload(s: AppState, name: String, q: UploadParams, request: Request) -> ApiResult {
    let limit = s.max_upload;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!(
                "the model file is over the server's upload limit of {limit} bytes (--max-upload-size); register it from a path or URL instead"
            ),
        )
    };
    let declared = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let file_name = q.file_name.unwrap_or_else(|| "model.onnx".into());
    let plain = |c: char| c.is_ascii_alphanumeric() || "._-".contains(c);
    if !file_name.ends_with(".onnx")
        || file_name.starts_with('.')
        || file_name.len() > 120
        || !file_name.chars().all(plain)
    {
        return Err(ApiError::bad_request(format!(
            "file_name {file_name:?}: a plain file name ending in .onnx (letters, digits, '.', '_', '-'; at most 120)"
        )));
    }
    let dir = tempfile::Builder::new()
        .prefix("upload-")
        .tempdir_in(s.root.join(crate::workspace::DOT_DIR))
        .map_err(|e| ApiError::internal(format!("a folder for the upload: {e}")))?;
    let path = dir.path().join(&file_name);
    let mut file =
        tokio::fs::File::create(&path).await.map_err(|e| ApiError::internal(format!("a file for the upload: {e}")))?;
    let mut stream = Body::new(request.into_body()).into_data_stream();
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the request body: {e}")))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(too_large());
        }
        file.write_all(&chunk).await.map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
    }
    file.flush().await.map_err(|e| ApiError::internal(format!("writing the upload: {e}")))?;
    drop(file);
    if written == 0 {
        return Err(ApiError::bad_request("the request body is empty: send the .onnx file"));
    }
    let spec = ModelSpec {
        name,
        version: q.version,
        path: path.display().to_string(),
        description: q.description,
        source: Some(format!("upload ({file_name}, {written} bytes)")),
        ..Default::default()
    };
    let model = with_ws(&s, move |ws| models::create(ws, spec)).await;
    drop(dir);
    created(model?)
}

/// Changes a version's description and tags (nothing else changes).
#[utoipa::path(patch, path = "/models/{name}/versions/{version}", tag = "models", security(("bearer" = ["admin"])),
    params(("name" = String, Path), ("version" = String, Path)),
    request_body(content = Patch, example = json!({"description": "heart disease classifier, v2 features", "tags": {"stage": "production"}})),
    responses((status = 200, body = Model), (status = 400, body = ErrorBody)))]
pub async fn patch_model(
    State(s): State<AppState>,
    Path((n, v)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let change = change_of(body(b)?)?;
    ok(with_ws(&s, move |ws| models::update(ws, &n, &v, change)).await?)
}

/// Deletes a version (refused while a deployment uses it).
#[utoipa::path(delete, path = "/models/{name}/versions/{version}", tag = "models", security(("bearer" = ["admin"])),
    params(("name" = String, Path), ("version" = String, Path)),
    responses((status = 204), (status = 409, body = ErrorBody)))]
pub async fn delete_model(State(s): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult {
    with_ws(&s, move |ws| models::delete(ws, &name, &version)).await?;
    no_content()
}
