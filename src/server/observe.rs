//! What operators watch: one JSON log line per request (a request id, method, route, status,
//! milliseconds; never a query string, a header or a body, so never a token), the request id
//! in `x-request-id`, and `GET /metrics` in Prometheus' text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::routes::with_ws;

/// Request counts and total seconds, by route and status.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), (u64, f64)>>,
}

/// The middleware: times the request, logs it, counts it.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let mut response = next.run(request).await;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    {
        let mut m = state.metrics.requests.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry((route.clone(), status)).or_default();
        e.0 += 1;
        e.1 += seconds;
    }
    let line = serde_json::json!({
        "ts": crate::workspace::now(), "request_id": id, "method": method, "route": route,
        "status": status, "ms": (seconds * 1000.0 * 10.0).round() / 10.0,
    });
    eprintln!("{line}");
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// `GET /metrics`.
pub async fn metrics(State(state): State<AppState>) -> Result<Response, ApiError> {
    let jobs = with_ws(&state, |ws| {
        let conn = ws.connection();
        let sql = |e| ws.sql(e);
        let mut stmt = conn.prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status").map_err(sql)?;
        let by_status: Vec<(String, i64)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).and_then(|r| r.collect()).map_err(sql)?;
        let totals: (i64, i64, i64, i64) = conn
            .query_row(
                "SELECT COALESCE(SUM(json_extract(doc, '$.counts.rows_scored')), 0), \
                 COALESCE(SUM(json_extract(doc, '$.counts.rows_failed')), 0), \
                 COALESCE(SUM(json_extract(doc, '$.counts.files_scored')), 0), \
                 COALESCE(SUM(json_extract(doc, '$.counts.files_failed')), 0) FROM jobs",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .map_err(sql)?;
        Ok((by_status, totals))
    })
    .await?;
    let (by_status, (rows, rows_failed, files, files_failed)) = jobs;
    let mut out = String::new();
    out.push_str("# HELP batchscore_jobs Jobs in the catalog by status.\n# TYPE batchscore_jobs gauge\n");
    for (status, n) in &by_status {
        let _ = writeln!(out, "batchscore_jobs{{status=\"{status}\"}} {n}");
    }
    let queued = by_status.iter().find(|(s, _)| s == "Queued").map(|(_, n)| *n).unwrap_or(0);
    let _ = writeln!(
        out,
        "# HELP batchscore_queue_length Jobs waiting to run.\n# TYPE batchscore_queue_length gauge\nbatchscore_queue_length {queued}"
    );
    for (name, help, v) in [
        ("batchscore_rows_scored_total", "Rows scored by finished jobs.", rows),
        ("batchscore_rows_failed_total", "Rows failed in finished jobs.", rows_failed),
        ("batchscore_files_scored_total", "Files scored by finished jobs.", files),
        ("batchscore_files_failed_total", "Files failed in finished jobs.", files_failed),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
    }
    out.push_str("# HELP batchscore_http_requests_total Requests by route and status.\n# TYPE batchscore_http_requests_total counter\n");
    let requests = state.metrics.requests.lock().unwrap_or_else(|e| e.into_inner()).clone();
    for ((route, code), (n, _)) in &requests {
        let _ = writeln!(out, "batchscore_http_requests_total{{route=\"{route}\",code=\"{code}\"}} {n}");
    }
    out.push_str("# HELP batchscore_http_request_seconds Time spent answering, by route and status.\n# TYPE batchscore_http_request_seconds summary\n");
    for ((route, code), (n, sum)) in &requests {
        let _ = writeln!(out, "batchscore_http_request_seconds_sum{{route=\"{route}\",code=\"{code}\"}} {sum:.6}");
        let _ = writeln!(out, "batchscore_http_request_seconds_count{{route=\"{route}\",code=\"{code}\"}} {n}");
    }
    Ok(([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
