//! The routes: Azure's resource paths (without the subscription prefix), each a thin call into
//! `service` on a workspace opened for the request (SQLite is blocking: on a blocking thread).

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use crate::service::endpoints::{self, DeploymentSpec, EndpointSpec};
use crate::service::jobs::{self, InvokeSpec, Queueing};
use crate::service::models::{self, ModelSpec};
use crate::service::{self as svc, tokens};
use crate::workspace::assets::{self, Job};
use crate::workspace::{Tags, Workspace};

type ApiResult = Result<Response, ApiError>;

/// Runs `f` on the workspace, on a blocking thread.
pub async fn with_ws<T, F>(state: &AppState, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut Workspace) -> svc::Result<T> + Send + 'static,
{
    let root = state.root.clone();
    tokio::task::spawn_blocking(move || {
        let mut ws = Workspace::open(&root)?;
        f(&mut ws)
    })
    .await
    .map_err(|_| ApiError::internal("the request's worker stopped"))?
    .map_err(ApiError::from)
}

/// A `{version}` path segment: a version, or `latest`.
fn version_param(v: &str) -> Option<&str> {
    (v != "latest").then_some(v)
}

fn ok<T: serde::Serialize>(v: T) -> ApiResult {
    Ok(Json(serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))?).into_response())
}

/// A list, as Azure answers a collection: `{"value": [...]}`.
fn list<T: serde::Serialize>(v: Vec<T>) -> ApiResult {
    ok(json!({ "value": v }))
}

/// A body that is JSON, or a 400 naming what is wrong with it.
fn body<T>(b: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
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

pub async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "NotFound", "no such route; see /openapi.json")
}

// Models

pub async fn list_models(State(s): State<AppState>) -> ApiResult {
    list(with_ws(&s, |ws| models::list(ws, None)).await?)
}

pub async fn model_versions(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult {
    list(with_ws(&s, move |ws| models::list(ws, Some(&name))).await?)
}

pub async fn show_model(State(s): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult {
    ok(with_ws(&s, move |ws| models::show(ws, &name, version_param(&version))).await?)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelBody {
    path: String,
    version: Option<String>,
    description: Option<String>,
    #[serde(default)]
    tags: Tags,
    #[serde(rename = "type")]
    kind: Option<String>,
}

pub async fn create_model(
    State(s): State<AppState>,
    Path(name): Path<String>,
    b: Result<Json<ModelBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let spec =
        ModelSpec { name, version: b.version, path: b.path, description: b.description, tags: b.tags, kind: b.kind };
    let m = with_ws(&s, move |ws| models::create(ws, spec)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::to_value(m).unwrap_or_default())).into_response())
}

pub async fn delete_model(State(s): State<AppState>, Path((name, version)): Path<(String, String)>) -> ApiResult {
    with_ws(&s, move |ws| models::delete(ws, &name, &version)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// The other registries, read-only here

pub async fn list_environments(State(s): State<AppState>) -> ApiResult {
    list(with_ws(&s, |ws| Ok(ws.list::<assets::Environment>(None, &[])?)).await?)
}

pub async fn show_environment(State(s): State<AppState>, Path((n, v)): Path<(String, String)>) -> ApiResult {
    ok(with_ws(&s, move |ws| svc::environments::show(ws, &n, version_param(&v))).await?)
}

pub async fn list_datastores(State(s): State<AppState>) -> ApiResult {
    list(with_ws(&s, |ws| Ok(ws.list::<assets::Datastore>(None, &[])?)).await?)
}

pub async fn show_datastore(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    ok(with_ws(&s, move |ws| Ok(ws.get::<assets::Datastore>(&n, "")?)).await?)
}

pub async fn list_data(State(s): State<AppState>) -> ApiResult {
    list(with_ws(&s, |ws| Ok(ws.list::<assets::Data>(None, &[])?)).await?)
}

pub async fn show_data(State(s): State<AppState>, Path((n, v)): Path<(String, String)>) -> ApiResult {
    ok(with_ws(&s, move |ws| svc::data::show(ws, &n, version_param(&v))).await?)
}

// Endpoints and deployments

pub async fn list_endpoints(State(s): State<AppState>) -> ApiResult {
    list(with_ws(&s, |ws| Ok(ws.list::<assets::BatchEndpoint>(None, &[])?)).await?)
}

pub async fn show_endpoint(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    ok(with_ws(&s, move |ws| Ok(ws.get::<assets::BatchEndpoint>(&n, "")?)).await?)
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EndpointBody {
    description: Option<String>,
    #[serde(default)]
    tags: Tags,
    auth_mode: Option<String>,
}

pub async fn create_endpoint(
    State(s): State<AppState>,
    Path(name): Path<String>,
    b: Result<Json<EndpointBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let spec =
        EndpointSpec { name, description: b.description, tags: b.tags, auth_mode: b.auth_mode, ..Default::default() };
    let ep = with_ws(&s, move |ws| endpoints::create_endpoint(ws, spec)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::to_value(ep).unwrap_or_default())).into_response())
}

pub async fn delete_endpoint(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    with_ws(&s, move |ws| endpoints::delete_endpoint(ws, &n)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn list_deployments(State(s): State<AppState>, Path(e): Path<String>) -> ApiResult {
    list(with_ws(&s, move |ws| Ok(ws.list::<assets::BatchDeployment>(Some(&e), &[])?)).await?)
}

pub async fn show_deployment(State(s): State<AppState>, Path((e, d)): Path<(String, String)>) -> ApiResult {
    ok(with_ws(&s, move |ws| Ok(ws.get::<assets::BatchDeployment>(&e, &d)?)).await?)
}

/// PUT a deployment: the body is Azure's deployment YAML as JSON; it is created, or updated
/// when it exists.
pub async fn put_deployment(
    State(s): State<AppState>,
    Path((e, d)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let doc = body(b)?;
    let (dep, created) = with_ws(&s, move |ws| {
        let base = std::env::current_dir().unwrap_or_default();
        let doc = svc::yaml::AssetFile::from_json("the request body", &doc, &base)?;
        let exists = ws.find::<assets::BatchDeployment>(&e, &d)?.is_some();
        let spec = DeploymentSpec { doc: Some(doc), name: Some(d), endpoint_name: Some(e), ..Default::default() };
        let (dep, _) =
            if exists { endpoints::update_deployment(ws, spec)? } else { endpoints::create_deployment(ws, spec)? };
        Ok((dep, !exists))
    })
    .await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(serde_json::to_value(dep).unwrap_or_default())).into_response())
}

pub async fn delete_deployment(State(s): State<AppState>, Path((e, d)): Path<(String, String)>) -> ApiResult {
    with_ws(&s, move |ws| endpoints::delete_deployment(ws, &e, &d)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// Jobs

/// A job as Azure's REST API shows one: `{id, name, type, properties: {status, ...}}`.
pub fn job_view(job: &Job) -> Value {
    json!({"id": job.id, "name": job.name, "type": "Microsoft.MachineLearningServices/workspaces/jobs", "properties": job})
}

#[derive(Debug, Deserialize)]
pub struct InvokeBody {
    properties: InvokeProperties,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeProperties {
    input_data: BTreeMap<String, DataRef>,
    #[serde(default)]
    output_data: BTreeMap<String, DataRef>,
    /// batchscore's setting overrides, Azure's names: `{"mini_batch_size": 5}`.
    #[serde(default, rename = "settings", alias = "Settings")]
    settings: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
pub struct DataRef {
    #[serde(rename = "JobInputType", alias = "JobOutputType", alias = "jobInputType", alias = "jobOutputType")]
    kind: Option<String>,
    #[serde(rename = "Uri", alias = "uri")]
    uri: String,
}

/// `POST /batchEndpoints/{endpoint}/jobs`: Azure's invoke body; 202 and the job to poll.
pub async fn invoke(
    State(s): State<AppState>,
    Path(endpoint): Path<String>,
    headers: HeaderMap,
    b: Result<Json<InvokeBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?.properties;
    let spec = invoke_spec(endpoint.clone(), &headers, b)?;
    let key = header_text(&headers, "idempotency-key")?;
    let queue = Queueing { max_queued: s.max_queued, idempotency_key: key };
    let (job, new) = with_ws(&s, move |ws| jobs::submit(ws, spec, queue)).await?;
    if new {
        s.executor.wake();
    }
    let location = format!("/batchEndpoints/{endpoint}/jobs/{}", job.name);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(job_view(&job))).into_response())
}

fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map(|s| s.trim().to_string())
                .map_err(|_| ApiError::bad_request(format!("header {name}: not text")))
        })
        .transpose()
        .and_then(|v| match v {
            Some(t) if t.is_empty() || t.len() > 200 => {
                Err(ApiError::bad_request(format!("header {name}: 1 to 200 characters")))
            }
            other => Ok(other),
        })
}

fn invoke_spec(endpoint: String, headers: &HeaderMap, p: InvokeProperties) -> Result<InvokeSpec, ApiError> {
    let mut inputs = p.input_data.into_values();
    let (Some(input), None) = (inputs.next(), inputs.next()) else {
        return Err(ApiError::bad_request(
            "properties.InputData: give exactly one input, such as {\"heart_dataset\": {\"JobInputType\": \"UriFolder\", \"Uri\": \"...\"}}",
        ));
    };
    let mut outputs = p.output_data.into_values();
    let output = outputs.next();
    if outputs.next().is_some() {
        return Err(ApiError::bad_request("properties.OutputData: a batch job has one output (score)"));
    }
    let kind = |k: &Option<String>, field: &str| match k.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("urifolder") | Some("uri_folder") => Ok(Some("uri_folder".to_string())),
        Some("urifile") | Some("uri_file") => Ok(Some("uri_file".to_string())),
        Some(other) => Err(ApiError::bad_request(format!("{field}: {other:?}; use UriFolder or UriFile"))),
    };
    let sets = p
        .settings
        .into_iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                }
            )
        })
        .collect();
    Ok(InvokeSpec {
        endpoint,
        deployment: header_text(headers, "azureml-model-deployment")?,
        input_type: kind(&input.kind, "properties.InputData.JobInputType")?,
        input: input.uri,
        output_path: output.map(|o| o.uri),
        sets,
        ..Default::default()
    })
}

pub async fn endpoint_jobs(State(s): State<AppState>, Path(e): Path<String>) -> ApiResult {
    let jobs = with_ws(&s, move |ws| jobs::list(ws, Some(&e), None, None)).await?;
    ok(json!({"value": jobs.iter().map(job_view).collect::<Vec<_>>()}))
}

pub async fn list_jobs(State(s): State<AppState>) -> ApiResult {
    let jobs = with_ws(&s, |ws| jobs::list(ws, None, None, None)).await?;
    ok(json!({"value": jobs.iter().map(job_view).collect::<Vec<_>>()}))
}

pub async fn show_job(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    ok(job_view(&with_ws(&s, move |ws| jobs::show(ws, &job)).await?))
}

pub async fn show_endpoint_job(State(s): State<AppState>, Path((e, job)): Path<(String, String)>) -> ApiResult {
    let j = with_ws(&s, move |ws| jobs::show(ws, &job)).await?;
    if j.endpoint_name != e {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("job {} is not a job of endpoint {e}", j.name),
        ));
    }
    ok(job_view(&j))
}

pub async fn cancel_job(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    ok(job_view(&with_ws(&s, move |ws| jobs::cancel(ws, &job)).await?))
}

pub async fn cancel_endpoint_job(State(s): State<AppState>, Path((_e, job)): Path<(String, String)>) -> ApiResult {
    ok(job_view(&with_ws(&s, move |ws| jobs::cancel(ws, &job)).await?))
}

/// `GET /jobs/{job}/logs`: the job's progress lines as they are written, until it ends
/// (chunked, one line each).
pub async fn job_logs(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    let name = job.clone();
    with_ws(&s, move |ws| jobs::show(ws, &name)).await?;
    let state = (s, job, 0i64, false);
    let stream = futures::stream::unfold(state, |(s, job, after, done)| async move {
        if done {
            return None;
        }
        loop {
            let (name, a) = (job.clone(), after);
            let got =
                with_ws(&s, move |ws| Ok((jobs::events(ws, &name, a)?, jobs::show(ws, &name)?.status.is_terminal())))
                    .await;
            let Ok((lines, ended)) = got else { return None };
            if !lines.is_empty() || ended {
                let last = lines.last().map(|(seq, _)| *seq).unwrap_or(after);
                let text: String = lines.into_iter().map(|(_, l)| l + "\n").collect();
                return Some((Ok::<_, std::io::Error>(text), (s, job, last, ended)));
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    });
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], Body::from_stream(stream)).into_response())
}

// Tokens (admin)

pub async fn list_tokens(State(s): State<AppState>) -> ApiResult {
    list(with_ws(&s, |ws| tokens::list(ws)).await?)
}

pub async fn create_token(State(s): State<AppState>, b: Result<Json<TokenBody>, JsonRejection>) -> ApiResult {
    let b = body(b)?;
    let scope = crate::workspace::assets::Scope::parse(&b.scope)
        .ok_or_else(|| ApiError::bad_request(format!("scope {:?}: use read, invoke or admin", b.scope)))?;
    let created = with_ws(&s, move |ws| {
        let expires = tokens::parse_expiry(b.expires.as_deref().unwrap_or("90d"))?;
        tokens::create(ws, &b.name, scope, expires)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(serde_json::to_value(created).unwrap_or_default())).into_response())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    name: String,
    scope: String,
    expires: Option<String>,
}

pub async fn revoke_token(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    ok(with_ws(&s, move |ws| tokens::revoke(ws, &n)).await?)
}

// Creating the other assets from Azure's YAML as JSON, and PATCHing description and tags.

/// The body as an asset document named `name` (the path's name wins over the body's).
fn named_doc(v: Value, name: &str) -> Result<svc::yaml::AssetFile, ApiError> {
    let Value::Object(mut m) = v else { return Err(ApiError::bad_request("the request body: expected a JSON object")) };
    m.insert("name".into(), Value::String(name.to_string()));
    let base = std::env::current_dir().unwrap_or_default();
    svc::yaml::AssetFile::from_json("the request body", &Value::Object(m), &base).map_err(ApiError::from)
}

pub async fn create_environment(
    State(s): State<AppState>,
    Path(n): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let doc = named_doc(body(b)?, &n)?;
    let env = with_ws(&s, move |ws| svc::environments::create(ws, svc::environments::EnvironmentSpec::from_doc(doc)?))
        .await?;
    Ok((StatusCode::CREATED, Json(serde_json::to_value(env).unwrap_or_default())).into_response())
}

pub async fn delete_environment(State(s): State<AppState>, Path((n, v)): Path<(String, String)>) -> ApiResult {
    with_ws(&s, move |ws| svc::environments::delete(ws, &n, &v)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

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
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

pub async fn delete_datastore(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    with_ws(&s, move |ws| svc::datastores::delete(ws, &n)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn create_data(
    State(s): State<AppState>,
    Path(n): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let doc = named_doc(body(b)?, &n)?;
    let d = with_ws(&s, move |ws| svc::data::create(ws, svc::data::DataSpec::from_doc(doc)?.0)).await?;
    Ok((StatusCode::CREATED, Json(serde_json::to_value(d).unwrap_or_default())).into_response())
}

/// A PATCH body as a [`svc::Change`]: `description`, `tags` (and for an endpoint
/// `defaults.deployment_name`); any other field is refused with the CLI's reason.
fn change_of(v: Value) -> Result<svc::Change, ApiError> {
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

pub async fn patch_model(
    State(s): State<AppState>,
    Path((n, v)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let change = change_of(body(b)?)?;
    ok(with_ws(&s, move |ws| models::update(ws, &n, &v, change)).await?)
}

pub async fn patch_environment(
    State(s): State<AppState>,
    Path((n, v)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let change = change_of(body(b)?)?;
    ok(with_ws(&s, move |ws| svc::environments::update(ws, &n, &v, change)).await?)
}

pub async fn patch_data(
    State(s): State<AppState>,
    Path((n, v)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let change = change_of(body(b)?)?;
    ok(with_ws(&s, move |ws| svc::data::update(ws, &n, &v, change)).await?)
}

pub async fn patch_endpoint(
    State(s): State<AppState>,
    Path(n): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let change = change_of(body(b)?)?;
    ok(with_ws(&s, move |ws| endpoints::update_endpoint(ws, &n, change)).await?)
}
