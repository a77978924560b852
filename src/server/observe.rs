//! What operators watch.
//!
//! - Request logs: tower-http's trace layer, one JSON line per request on stderr with the
//!   request id (`x-request-id`, kept from the client or made here, and sent back), method,
//!   route, status and latency; never a query string, a header or a body, so never a token.
//! - `GET /metrics` in Prometheus' text format (the `prometheus` crate): requests and their
//!   latency by route and code, and from the catalog, jobs by status, the queue's length, rows
//!   and files scored and failed.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use super::AppState;
use super::error::ApiError;
use super::routes::with_ws;

/// The request metrics, kept for the server's life.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    seconds: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("batchscore_http_requests_total", "Requests answered, by method, route and status code."),
            &["method", "route", "code"],
        )
        .expect("a valid metric");
        let seconds = HistogramVec::new(
            HistogramOpts::new(
                "batchscore_http_request_duration_seconds",
                "Time to answer a request, by method and route.",
            )
            .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            &["method", "route"],
        )
        .expect("a valid metric");
        registry.register(Box::new(requests.clone())).expect("registered once");
        registry.register(Box::new(seconds.clone())).expect("registered once");
        Metrics { registry, requests, seconds }
    }
}

/// The layers every route gets: request ids, the trace layer's log lines, the counters.
pub fn layers(router: Router<AppState>, state: AppState) -> Router<AppState> {
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
            let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or("unmatched");
            tracing::info_span!("request", request_id = %id, method = %request.method(), route = %route)
        })
        .on_request(())
        .on_response(|response: &Response, latency: Duration, _: &tracing::Span| {
            let ms = (latency.as_secs_f64() * 10_000.0).round() / 10.0;
            tracing::info!(status = response.status().as_u16(), ms, "answered");
        })
        .on_failure(());
    router
        .layer(axum::middleware::from_fn_with_state(state, count))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(trace)
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Counts and times the request.
async fn count(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let response = next.run(request).await;
    let m = &state.metrics;
    m.requests.with_label_values(&[&method, &route, response.status().as_str()]).inc();
    m.seconds.with_label_values(&[&method, &route]).observe(started.elapsed().as_secs_f64());
    response
}

/// The log of `serve`: JSON lines on stderr, the request's span fields beside each event's.
pub fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATCHSCORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ort=warn"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_writer(|| crate::secrets::ScrubbedStderr)
        .with_env_filter(filter)
        .try_init();
}

/// Jobs by status and rows and files, from the catalog.
struct CatalogFigures {
    by_status: Vec<(String, i64)>,
    rows: (i64, i64),
    files: (i64, i64),
}

fn catalog_figures(ws: &mut crate::workspace::Workspace) -> crate::service::Result<CatalogFigures> {
    let conn = ws.connection();
    let sql = |e| ws.sql(e);
    let mut stmt = conn.prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status").map_err(sql)?;
    let by_status = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|r| r.collect()).map_err(sql)?;
    let (rows, files) = conn
        .query_row(
            "SELECT COALESCE(SUM(json_extract(doc, '$.counts.rows_scored')), 0), \
             COALESCE(SUM(json_extract(doc, '$.counts.rows_failed')), 0), \
             COALESCE(SUM(json_extract(doc, '$.counts.files_scored')), 0), \
             COALESCE(SUM(json_extract(doc, '$.counts.files_failed')), 0) FROM jobs",
            [],
            |r| Ok(((r.get(0)?, r.get(1)?), (r.get(2)?, r.get(3)?))),
        )
        .map_err(sql)?;
    Ok(CatalogFigures { by_status, rows, files })
}

/// The catalog's figures as metrics, built afresh for each scrape (their truth is the catalog).
fn catalog_registry(f: &CatalogFigures) -> prometheus::Result<Registry> {
    let registry = Registry::new();
    let jobs = IntGaugeVec::new(Opts::new("batchscore_jobs", "Jobs in the catalog, by status."), &["status"])?;
    for (status, n) in &f.by_status {
        jobs.with_label_values(&[status]).set(*n);
    }
    registry.register(Box::new(jobs))?;
    let queued = f.by_status.iter().find(|(s, _)| s == "Queued").map(|(_, n)| *n).unwrap_or(0);
    let queue = prometheus::IntGauge::new("batchscore_queue_length", "Jobs waiting to run.")?;
    queue.set(queued);
    registry.register(Box::new(queue))?;
    for (name, help, v) in [
        ("batchscore_rows_scored_total", "Rows scored by finished jobs.", f.rows.0),
        ("batchscore_rows_failed_total", "Rows failed in finished jobs.", f.rows.1),
        ("batchscore_files_scored_total", "Files scored by finished jobs.", f.files.0),
        ("batchscore_files_failed_total", "Files failed in finished jobs.", f.files.1),
    ] {
        let c = IntCounter::new(name, help)?;
        c.inc_by(v.max(0) as u64);
        registry.register(Box::new(c))?;
    }
    Ok(registry)
}

/// The server's metrics, in Prometheus' text format.
#[utoipa::path(get, path = "/metrics", tag = "server", security(("bearer" = ["read"])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let figures = with_ws(&state, catalog_figures).await?;
    let internal = |e: prometheus::Error| ApiError::internal(format!("metrics: {e}"));
    let mut families = catalog_registry(&figures).map_err(internal)?.gather();
    families.extend(state.metrics.registry.gather());
    let encoder = prometheus::TextEncoder::new();
    let mut out = Vec::new();
    encoder.encode(&families, &mut out).map_err(internal)?;
    Ok(([(header::CONTENT_TYPE, encoder.format_type().to_string())], out).into_response())
}
