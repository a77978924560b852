//! Jobs: invoke an endpoint with Azure's body (202 and a job to poll), list, show, cancel, and
//! follow a job's progress lines.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, AppState, Page, ValueList, body, ok, with_ws};
use crate::server::error::{ApiError, ErrorBody};
use crate::service::jobs::{self, InvokeSpec, Queueing};
use crate::workspace::assets::Job;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(endpoint_jobs, invoke))
        .routes(routes!(show_endpoint_job))
        .routes(routes!(cancel_endpoint_job))
        .routes(routes!(list_jobs))
        .routes(routes!(show_job))
        .routes(routes!(cancel_job))
        .routes(routes!(job_logs))
        .routes(routes!(deployment_jobs))
        .routes(routes!(output_files))
        .routes(routes!(output_content))
}

/// A job as Azure's REST API shows one.
#[derive(Serialize, ToSchema)]
pub struct JobResource {
    id: String,
    name: String,
    /// `Microsoft.MachineLearningServices/workspaces/jobs`.
    #[serde(rename = "type")]
    kind: &'static str,
    /// The job; `properties.status` is where it is.
    properties: Job,
}

impl JobResource {
    pub fn of(job: Job) -> JobResource {
        JobResource {
            id: job.id.clone(),
            name: job.name.clone(),
            kind: "Microsoft.MachineLearningServices/workspaces/jobs",
            properties: job,
        }
    }
}

/// The jobs (of an endpoint, of a deployment), all or the window the query asks for.
async fn resources(
    s: &AppState,
    endpoint: Option<String>,
    deployment: Option<String>,
    page: Page,
    path: &str,
) -> ApiResult {
    let of = |jobs: Vec<Job>| jobs.into_iter().map(JobResource::of).collect::<Vec<_>>();
    let Some(w) = page.window()? else {
        let all = with_ws(s, move |ws| jobs::list(ws, endpoint.as_deref(), deployment.as_deref(), None)).await?;
        return super::list(of(all));
    };
    let (value, count) =
        with_ws(s, move |ws| jobs::list_window(ws, endpoint.as_deref(), deployment.as_deref(), w)).await?;
    super::windowed(of(value), count, w, &page, path)
}

/// Azure's invoke body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"properties": {
    "InputData": {"heart_dataset": {"JobInputType": "UriFolder", "Uri": "azureml://datastores/workspaceblobstore/paths/heart/"}},
    "OutputData": {"score": {"JobOutputType": "UriFolder", "Uri": "azureml://datastores/workspaceblobstore/paths/heart-scores/run-1/"}},
    "settings": {"mini_batch_size": 20, "error_threshold": 10}}}))]
pub struct InvokeBody {
    properties: InvokeProperties,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
pub struct InvokeProperties {
    /// Exactly one input, under any name.
    input_data: BTreeMap<String, DataRef>,
    /// At most one output (`score`); a unique folder under the default datastore when absent.
    #[serde(default)]
    output_data: BTreeMap<String, DataRef>,
    /// batchscore's setting overrides, Azure's names: `{"mini_batch_size": 5}`.
    #[serde(default, rename = "settings", alias = "Settings")]
    #[schema(value_type = Object)]
    settings: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DataRef {
    /// `UriFolder` (default) or `UriFile`.
    #[serde(rename = "JobInputType", alias = "JobOutputType", alias = "jobInputType", alias = "jobOutputType")]
    kind: Option<String>,
    /// A datastore path, an `azureml:<data>:<version>` reference, a URL or a path the server reads.
    #[serde(rename = "Uri", alias = "uri")]
    uri: String,
}

/// Starts a job on the endpoint (its scoring URI): queued for the server's executor. The
/// `azureml-model-deployment` header picks a deployment other than the default; an
/// `Idempotency-Key` makes a retried POST return the same job.
#[utoipa::path(post, path = "/batchEndpoints/{name}/jobs", tag = "jobs", security(("bearer" = ["invoke"])),
    params(("name" = String, Path),
        ("azureml-model-deployment" = Option<String>, Header, description = "The deployment; the endpoint's default when absent"),
        ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key returns the same job")),
    request_body = InvokeBody,
    responses(
        (status = 202, body = JobResource, headers(("Location" = String, description = "Where to poll the job"))),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody, headers(("Retry-After" = String, description = "Seconds to wait")))))]
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
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(JobResource::of(job))).into_response())
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
        .map(|(k, v)| match v {
            Value::String(s) => format!("{k}={s}"),
            other => format!("{k}={other}"),
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

/// The endpoint's jobs, oldest first.
#[utoipa::path(get, path = "/batchEndpoints/{name}/jobs", tag = "jobs", security(("bearer" = ["read"])),
    params(("name" = String, Path), Page),
    responses((status = 200, body = ValueList<JobResource>)))]
pub async fn endpoint_jobs(State(s): State<AppState>, Path(e): Path<String>, Query(page): Query<Page>) -> ApiResult {
    let path = format!("/batchEndpoints/{e}/jobs");
    resources(&s, Some(e), None, page, &path).await
}

/// The deployment's jobs, oldest first.
#[utoipa::path(get, path = "/batchEndpoints/{name}/deployments/{deployment}/jobs", tag = "jobs", security(("bearer" = ["read"])),
    params(("name" = String, Path), ("deployment" = String, Path), Page),
    responses((status = 200, body = ValueList<JobResource>)))]
pub async fn deployment_jobs(
    State(s): State<AppState>,
    Path((e, d)): Path<(String, String)>,
    Query(page): Query<Page>,
) -> ApiResult {
    let path = format!("/batchEndpoints/{e}/deployments/{d}/jobs");
    resources(&s, Some(e), Some(d), page, &path).await
}

/// Every job, oldest first.
#[utoipa::path(get, path = "/jobs", tag = "jobs", security(("bearer" = ["read"])),
    params(Page), responses((status = 200, body = ValueList<JobResource>)))]
pub async fn list_jobs(State(s): State<AppState>, Query(page): Query<Page>) -> ApiResult {
    resources(&s, None, None, page, "/jobs").await
}

/// One job.
#[utoipa::path(get, path = "/jobs/{job}", tag = "jobs", security(("bearer" = ["read"])),
    params(("job" = String, Path)),
    responses((status = 200, body = JobResource), (status = 404, body = ErrorBody)))]
pub async fn show_job(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    ok(JobResource::of(with_ws(&s, move |ws| jobs::show(ws, &job)).await?))
}

/// One job of the endpoint: the `Location` an invoke answers with.
#[utoipa::path(get, path = "/batchEndpoints/{name}/jobs/{job}", tag = "jobs", security(("bearer" = ["read"])),
    params(("name" = String, Path), ("job" = String, Path)),
    responses((status = 200, body = JobResource), (status = 404, body = ErrorBody)))]
pub async fn show_endpoint_job(State(s): State<AppState>, Path((e, job)): Path<(String, String)>) -> ApiResult {
    ok(JobResource::of(endpoint_job(&s, e, job).await?))
}

async fn endpoint_job(s: &AppState, endpoint: String, job: String) -> Result<Job, ApiError> {
    let j = with_ws(s, move |ws| jobs::show(ws, &job)).await?;
    if j.endpoint_name != endpoint {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("job {} is not a job of endpoint {endpoint}", j.name),
        ));
    }
    Ok(j)
}

/// Cancels a job: a queued one at once, a running one at its next mini-batch.
#[utoipa::path(post, path = "/jobs/{job}/cancel", tag = "jobs", security(("bearer" = ["invoke"])),
    params(("job" = String, Path)),
    responses((status = 200, body = JobResource), (status = 404, body = ErrorBody)))]
pub async fn cancel_job(State(s): State<AppState>, Path(job): Path<String>) -> ApiResult {
    ok(JobResource::of(with_ws(&s, move |ws| jobs::cancel(ws, &job)).await?))
}

/// Cancels a job of the endpoint.
#[utoipa::path(post, path = "/batchEndpoints/{name}/jobs/{job}/cancel", tag = "jobs", security(("bearer" = ["invoke"])),
    params(("name" = String, Path), ("job" = String, Path)),
    responses((status = 200, body = JobResource), (status = 404, body = ErrorBody)))]
pub async fn cancel_endpoint_job(State(s): State<AppState>, Path((e, job)): Path<(String, String)>) -> ApiResult {
    let j = endpoint_job(&s, e, job).await?;
    ok(JobResource::of(with_ws(&s, move |ws| jobs::cancel(ws, &j.name)).await?))
}

/// The job's progress lines as they are written, until it ends (chunked, one line each).
#[utoipa::path(get, path = "/jobs/{job}/logs", tag = "jobs", security(("bearer" = ["read"])),
    params(("job" = String, Path)),
    responses((status = 200, content_type = "text/plain", body = String), (status = 404, body = ErrorBody)))]
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

/// One file of a job's output.
#[derive(Serialize, ToSchema)]
pub struct OutputFile {
    /// Relative to the output folder: `predictions.csv`, `logs/job_result.json`, ...
    path: String,
    size_bytes: u64,
    /// Where to GET its bytes.
    content: String,
}

/// The files of a job's output (`score`: the predictions file and `logs/`), once written.
#[utoipa::path(get, path = "/jobs/{job}/outputs/{output}", tag = "jobs", security(("bearer" = ["read"])),
    params(("job" = String, Path), ("output" = String, Path, description = "`score`")),
    responses((status = 200, body = ValueList<OutputFile>), (status = 404, body = ErrorBody)))]
pub async fn output_files(State(s): State<AppState>, Path((job, output)): Path<(String, String)>) -> ApiResult {
    let (j, o) = (job.clone(), output.clone());
    let (_, files) = with_ws(&s, move |ws| jobs::output_files(ws, &j, &o)).await?;
    super::list(
        files
            .into_iter()
            .map(|f| OutputFile {
                content: format!("/jobs/{job}/outputs/{output}/content?path={}", query_escape(&f.path)),
                path: f.path,
                size_bytes: f.size_bytes,
            })
            .collect(),
    )
}

fn query_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileParam {
    /// A file of the output, as its listing names it.
    path: String,
}

/// One file of a job's output, streamed (as an attachment).
#[utoipa::path(get, path = "/jobs/{job}/outputs/{output}/content", tag = "jobs", security(("bearer" = ["read"])),
    params(("job" = String, Path), ("output" = String, Path), FileParam),
    responses((status = 200, description = "The file's bytes", content_type = "application/octet-stream"), (status = 404, body = ErrorBody)))]
pub async fn output_content(
    State(s): State<AppState>,
    Path((job, output)): Path<(String, String)>,
    axum::extract::Query(q): axum::extract::Query<FileParam>,
) -> ApiResult {
    let (j, o) = (job.clone(), output.clone());
    let (loc, files) = with_ws(&s, move |ws| jobs::output_files(ws, &j, &o)).await?;
    // Only a file the listing names: no path of the client's making reaches the store.
    let Some(file) = files.into_iter().find(|f| f.path == q.path) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "output {output} of job {job} has no file {:?}; GET /jobs/{job}/outputs/{output} lists them",
                q.path
            ),
        ));
    };
    super::stream_object(&loc, &file.location, file.size_bytes, &file.path).await
}
