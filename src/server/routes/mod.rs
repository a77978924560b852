//! The routes: Azure's resource paths (without the subscription prefix), each a thin call into
//! `service` on a catalog connection from the pool (SQLite is blocking: on a blocking thread).
//! Every route is declared once, with its OpenAPI description beside the handler, so the
//! router and `/openapi.json` cannot disagree.

pub mod endpoints;
pub mod jobs;
pub mod models;
pub mod registry;
pub mod tokens;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::error::ApiError;
use crate::service as svc;
use crate::workspace::{Window, Workspace};

pub type ApiResult = Result<Response, ApiError>;

/// Every route that needs a token, with its OpenAPI description.
pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(models::routes())
        .merge(registry::routes())
        .merge(endpoints::routes())
        .merge(jobs::routes())
        .merge(tokens::routes())
        .routes(routes!(super::observe::metrics))
}

/// The routes open to anyone.
pub fn open() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(health)).routes(routes!(super::openapi::document))
}

/// Runs `f` on a catalog connection, on a blocking thread.
pub async fn with_ws<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Workspace) -> svc::Result<T> + Send + 'static,
{
    let pool = state.pool.clone();
    tokio::task::spawn_blocking(move || pool.with(f))
        .await
        .map_err(|_| ApiError::internal("the request's worker stopped"))?
        .map_err(ApiError::from)
}

/// A `{version}` path segment: a version, or `latest`.
pub fn version_param(v: &str) -> Option<&str> {
    (v != "latest").then_some(v)
}

pub fn ok<T: Serialize>(v: T) -> ApiResult {
    Ok(Json(serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))?).into_response())
}

/// 201 and the new record.
pub fn created<T: Serialize>(v: T) -> ApiResult {
    let v = serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub fn no_content() -> ApiResult {
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A collection, as Azure answers one.
#[derive(Serialize, ToSchema)]
pub struct ValueList<T> {
    pub value: Vec<T>,
    /// How many there are in all (when the list was paged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
    /// The next page, when there is one.
    #[serde(rename = "nextLink", skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
}

/// A list, as Azure answers a collection: `{"value": [...]}`.
pub fn list<T: Serialize>(value: Vec<T>) -> ApiResult {
    ok(ValueList { value, count: None, next_link: None })
}

/// Paging a collection: `?top=50&skip=100&order=newest`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// At most this many (1 to 1000); all when absent.
    top: Option<usize>,
    /// Leave out this many first.
    skip: Option<usize>,
    /// `oldest` (default: the order they were made) or `newest`.
    order: Option<String>,
}

impl Page {
    /// The window asked for; `None` when no paging parameter was given (the whole list).
    pub fn window(&self) -> Result<Option<Window>, ApiError> {
        let newest = match self.order.as_deref() {
            None | Some("oldest") => false,
            Some("newest") => true,
            Some(other) => return Err(ApiError::bad_request(format!("order {other:?}: use oldest or newest"))),
        };
        if self.top.is_none() && self.skip.is_none() && self.order.is_none() {
            return Ok(None);
        }
        let paging = self.top.is_some() || self.skip.is_some();
        let top = self.top.unwrap_or(if paging { 100 } else { i64::MAX as usize });
        if paging && !(1..=1000).contains(&top) {
            return Err(ApiError::bad_request(format!("top {top}: 1 to 1000")));
        }
        Ok(Some(Window { skip: self.skip.unwrap_or(0), top, newest }))
    }
}

/// One window of a collection, with the total and a link to the next window (`path` is the
/// collection's).
pub fn windowed<T: Serialize>(value: Vec<T>, count: usize, w: Window, page: &Page, path: &str) -> ApiResult {
    let next_link = (w.skip.saturating_add(w.top) < count).then(|| {
        let order = page.order.as_deref().map(|o| format!("&order={o}")).unwrap_or_default();
        format!("{path}?top={}&skip={}{order}", w.top, w.skip + w.top)
    });
    ok(ValueList { value, count: Some(count), next_link })
}

/// Streams one object of `loc`'s store as an attachment named after `name`'s last part.
pub async fn stream_object(
    loc: &crate::storage::Location,
    path: &object_store::path::Path,
    size: u64,
    name: &str,
) -> ApiResult {
    use axum::http::header;
    use object_store::ObjectStoreExt;
    let got = loc
        .store
        .get(path)
        .await
        .map_err(|e| ApiError::internal(format!("{}: {}", loc.display, crate::storage::describe(&e))))?;
    let file_name = name.rsplit('/').next().unwrap_or(name).replace(['"', '\\'], "_");
    let kind = match file_name.rsplit('.').next().unwrap_or("") {
        "csv" => "text/csv; charset=utf-8",
        "json" => "application/json",
        "jsonl" => "application/x-ndjson",
        "parquet" => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    };
    let body = axum::body::Body::from_stream(got.into_stream());
    let headers = [
        (header::CONTENT_TYPE, kind.to_string()),
        (header::CONTENT_LENGTH, size.to_string()),
        (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file_name}\"")),
    ];
    Ok((headers, body).into_response())
}

/// A body that is JSON, or a 400 naming what is wrong with it.
pub fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    b.map(|Json(v)| v).map_err(|e| {
        let status = e.status();
        let code = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLarge",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
            StatusCode::UNPROCESSABLE_ENTITY => "UnprocessableEntity",
            _ => "BadRequest",
        };
        ApiError::new(status, code, format!("the request body: {}", e.body_text()))
    })
}

/// The body as an asset document named `name` (the path's name wins over the body's).
pub fn named_doc(v: Value, name: &str) -> Result<svc::yaml::AssetFile, ApiError> {
    let Value::Object(mut m) = v else { return Err(ApiError::bad_request("the request body: expected a JSON object")) };
    m.insert("name".into(), Value::String(name.to_string()));
    let base = std::env::current_dir().unwrap_or_default();
    svc::yaml::AssetFile::from_json("the request body", &Value::Object(m), &base).map_err(ApiError::from)
}

/// A PATCH body as a [`svc::Change`]: `description`, `tags` (and for an endpoint
/// `defaults.deployment_name`); any other field is refused with the CLI's reason.
pub fn change_of(v: Value) -> Result<svc::Change, ApiError> {
    let Value::Object(m) = v else { return Err(ApiError::bad_request("the request body: expected a JSON object")) };
    let mut change = svc::Change::default();
    let text = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    for (k, v) in m {
        match (k.as_str(), v) {
            ("description", v) => change.description = Some(text(&v)),
            ("tags", Value::Object(tags)) => change.tags.extend(tags.iter().map(|(k, v)| (k.clone(), text(v)))),
            ("defaults", Value::Object(d)) => {
                change.sets.extend(d.iter().map(|(k, v)| format!("defaults.{k}={}", text(v))))
            }
            (other, v) => change.sets.push(format!("{other}={}", text(&v))),
        }
    }
    Ok(change)
}

/// A PATCH body: description and tags (an endpoint also takes `defaults.deployment_name`).
#[derive(ToSchema)]
#[schema(example = json!({"description": "scores the nightly files", "tags": {"team": "risk"}}))]
#[allow(dead_code)]
pub struct Patch {
    description: Option<String>,
    tags: Option<std::collections::BTreeMap<String, String>>,
    /// Endpoints only: `{"deployment_name": "..."}`.
    #[schema(value_type = Option<Object>)]
    defaults: Option<Value>,
}

/// Whether the server is up (no token needed).
#[utoipa::path(get, path = "/health", tag = "server", security(()), responses((status = 200, description = "It serves", example = json!({"status": "ok"}))))]
pub async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "no such route; see /openapi.json")
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "this route does not take that method; see /openapi.json",
    )
}
