//! The studio: the batch endpoints web page at `/`, built on the REST API only (it can do
//! nothing the API cannot). Plain HTML, CSS and JavaScript, embedded in the binary: no build
//! step, nothing fetched at run time. The page keeps the token in sessionStorage and sends it
//! as a bearer header; it is never in a URL.

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::error::ApiError;

const INDEX: &str = include_str!("index.html");
const JS: &str = "text/javascript; charset=utf-8";
const ASSETS: &[(&str, &str, &str)] = &[
    ("studio.js", JS, include_str!("studio.js")),
    ("api.js", JS, include_str!("api.js")),
    ("ui.js", JS, include_str!("ui.js")),
    ("deploy.js", JS, include_str!("deploy.js")),
    ("jobs.js", JS, include_str!("jobs.js")),
    ("studio.css", "text/css; charset=utf-8", include_str!("studio.css")),
];

/// `/` and `/studio/{file}`: open to anyone (the data behind them needs a token).
pub fn routes() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/studio/{file}", get(asset))
}

async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, kind, body)) => page(kind, body),
        None => ApiError::new(StatusCode::NOT_FOUND, "NotFound", format!("no studio file {file:?}")).into_response(),
    }
}

/// A page or asset with headers that keep it to itself: only its own scripts and styles, no
/// framing, no sniffing, no referrer.
fn page(kind: &'static str, body: &'static str) -> Response {
    let mut r = ([(header::CONTENT_TYPE, kind)], body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}
