//! Errors as the REST API answers them: a status and `{"error": {"code", "message"}}`, with the
//! same messages the CLI prints (scrubbed of secrets).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::service::{ErrorKind, ServiceError};

/// What every refusal answers.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "NotFound", "message": "model heart-classifier version 7 not found"}}))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// `BadRequest`, `Unauthorized`, `Forbidden`, `NotFound`, `MethodNotAllowed`, `Conflict`,
    /// `PayloadTooLarge`, `UnsupportedMediaType`, `UnprocessableEntity`, `TooManyRequests`,
    /// `InternalError`.
    pub code: String,
    /// What is wrong and what to do, naming the field or setting.
    pub message: String,
}

/// One refused or failed request.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into() }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "BadRequest", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        let (status, code) = match e.kind() {
            ErrorKind::Invalid => (StatusCode::BAD_REQUEST, "BadRequest"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NotFound"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "Conflict"),
            ErrorKind::Busy => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequests"),
            ErrorKind::Failed => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = crate::secrets::scrub(&self.message).into_owned();
        let body = ErrorBody { error: ErrorDetail { code: self.code.to_string(), message } };
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Any refusal that did not come from a route (an extractor's, axum's own) as JSON too, with
/// its text as the message.
pub async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 4096).await.unwrap_or_default();
    let code = match status {
        StatusCode::BAD_REQUEST => "BadRequest",
        StatusCode::NOT_FOUND => "NotFound",
        StatusCode::METHOD_NOT_ALLOWED => "MethodNotAllowed",
        StatusCode::PAYLOAD_TOO_LARGE => "PayloadTooLarge",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UnsupportedMediaType",
        StatusCode::UNPROCESSABLE_ENTITY => "UnprocessableEntity",
        s if s.is_server_error() => "InternalError",
        _ => "BadRequest",
    };
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let message = if message.is_empty() { status.canonical_reason().unwrap_or("refused").to_string() } else { message };
    ApiError::new(status, code, message).into_response()
}
