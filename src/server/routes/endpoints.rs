//! `/batchEndpoints` and their deployments.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, AppState, Patch, ValueList, body, change_of, created, no_content, ok, with_ws};
use crate::server::error::ErrorBody;
use crate::service as svc;
use crate::service::endpoints::{self, DeploymentSpec, EndpointSpec};
use crate::workspace::Tags;
use crate::workspace::assets::{BatchDeployment, BatchEndpoint};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_endpoints))
        .routes(routes!(show_endpoint, create_endpoint, patch_endpoint, delete_endpoint))
        .routes(routes!(list_deployments))
        .routes(routes!(show_deployment, put_deployment, delete_deployment))
}

/// Every batch endpoint.
#[utoipa::path(get, path = "/batchEndpoints", tag = "batch endpoints", security(("bearer" = ["read"])),
    responses((status = 200, body = ValueList<BatchEndpoint>)))]
pub async fn list_endpoints(State(s): State<AppState>) -> ApiResult {
    super::list(with_ws(&s, |ws| Ok(ws.list::<BatchEndpoint>(None, &[])?)).await?)
}

/// One batch endpoint, with its scoring URI and default deployment.
#[utoipa::path(get, path = "/batchEndpoints/{name}", tag = "batch endpoints", security(("bearer" = ["read"])),
    params(("name" = String, Path)),
    responses((status = 200, body = BatchEndpoint), (status = 404, body = ErrorBody)))]
pub async fn show_endpoint(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    ok(with_ws(&s, move |ws| Ok(ws.get::<BatchEndpoint>(&n, "")?)).await?)
}

/// A new batch endpoint.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"description": "heart disease scoring", "tags": {"team": "cardio"}}))]
pub struct EndpointBody {
    description: Option<String>,
    #[serde(default)]
    tags: Tags,
    /// `aad_token` (Azure's default) or `key`; recorded, the server's tokens apply.
    auth_mode: Option<String>,
}

/// Creates a batch endpoint (409 when it exists).
#[utoipa::path(put, path = "/batchEndpoints/{name}", tag = "batch endpoints", security(("bearer" = ["admin"])),
    params(("name" = String, Path)),
    request_body = EndpointBody,
    responses((status = 201, body = BatchEndpoint), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_endpoint(
    State(s): State<AppState>,
    Path(name): Path<String>,
    b: Result<Json<EndpointBody>, JsonRejection>,
) -> ApiResult {
    let b = body(b)?;
    let spec =
        EndpointSpec { name, description: b.description, tags: b.tags, auth_mode: b.auth_mode, ..Default::default() };
    created(with_ws(&s, move |ws| endpoints::create_endpoint(ws, spec)).await?)
}

/// Changes description, tags or `defaults.deployment_name` (the default deployment).
#[utoipa::path(patch, path = "/batchEndpoints/{name}", tag = "batch endpoints", security(("bearer" = ["admin"])),
    params(("name" = String, Path)),
    request_body(content = Patch, example = json!({"defaults": {"deployment_name": "classifier-xgboost"}})),
    responses((status = 200, body = BatchEndpoint), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn patch_endpoint(
    State(s): State<AppState>,
    Path(n): Path<String>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let change = change_of(body(b)?)?;
    ok(with_ws(&s, move |ws| endpoints::update_endpoint(ws, &n, change)).await?)
}

/// Deletes the endpoint and its deployments; its jobs stay.
#[utoipa::path(delete, path = "/batchEndpoints/{name}", tag = "batch endpoints", security(("bearer" = ["admin"])),
    params(("name" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_endpoint(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    with_ws(&s, move |ws| endpoints::delete_endpoint(ws, &n)).await?;
    no_content()
}

/// The endpoint's deployments.
#[utoipa::path(get, path = "/batchEndpoints/{name}/deployments", tag = "batch endpoints", security(("bearer" = ["read"])),
    params(("name" = String, Path)),
    responses((status = 200, body = ValueList<BatchDeployment>)))]
pub async fn list_deployments(State(s): State<AppState>, Path(e): Path<String>) -> ApiResult {
    super::list(with_ws(&s, move |ws| Ok(ws.list::<BatchDeployment>(Some(&e), &[])?)).await?)
}

/// One deployment.
#[utoipa::path(get, path = "/batchEndpoints/{name}/deployments/{deployment}", tag = "batch endpoints", security(("bearer" = ["read"])),
    params(("name" = String, Path), ("deployment" = String, Path)),
    responses((status = 200, body = BatchDeployment), (status = 404, body = ErrorBody)))]
pub async fn show_deployment(State(s): State<AppState>, Path((e, d)): Path<(String, String)>) -> ApiResult {
    ok(with_ws(&s, move |ws| Ok(ws.get::<BatchDeployment>(&e, &d)?)).await?)
}

/// Creates the deployment, or updates it when it exists. The body is Azure's deployment YAML
/// as JSON (`model`, `environment`, `settings`, `resources.instance_count`, ...); the first
/// deployment of an endpoint becomes its default.
#[utoipa::path(put, path = "/batchEndpoints/{name}/deployments/{deployment}", tag = "batch endpoints", security(("bearer" = ["admin"])),
    params(("name" = String, Path), ("deployment" = String, Path)),
    request_body(content = Object, description = "Azure's batch deployment YAML, as JSON",
        example = json!({"model": "azureml:heart-classifier@latest", "environment": "azureml:batchscore-cpu:1",
            "settings": {"mini_batch_size": 10, "output_file_name": "predictions.csv", "retry_settings": {"max_retries": 3, "timeout": 300}}})),
    responses((status = 201, body = BatchDeployment), (status = 200, body = BatchDeployment), (status = 400, body = ErrorBody)))]
pub async fn put_deployment(
    State(s): State<AppState>,
    Path((e, d)): Path<(String, String)>,
    b: Result<Json<Value>, JsonRejection>,
) -> ApiResult {
    let doc = body(b)?;
    let (dep, created_now) = with_ws(&s, move |ws| {
        let base = std::env::current_dir().unwrap_or_default();
        let doc = svc::yaml::AssetFile::from_json("the request body", &doc, &base)?;
        let exists = ws.find::<BatchDeployment>(&e, &d)?.is_some();
        let spec = DeploymentSpec { doc: Some(doc), name: Some(d), endpoint_name: Some(e), ..Default::default() };
        let (dep, _) =
            if exists { endpoints::update_deployment(ws, spec)? } else { endpoints::create_deployment(ws, spec)? };
        Ok((dep, !exists))
    })
    .await?;
    if created_now { created(dep) } else { ok(dep) }
}

/// Deletes a deployment (not the default while others remain).
#[utoipa::path(delete, path = "/batchEndpoints/{name}/deployments/{deployment}", tag = "batch endpoints", security(("bearer" = ["admin"])),
    params(("name" = String, Path), ("deployment" = String, Path)),
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_deployment(State(s): State<AppState>, Path((e, d)): Path<(String, String)>) -> ApiResult {
    with_ws(&s, move |ws| endpoints::delete_deployment(ws, &e, &d)).await?;
    no_content()
}
