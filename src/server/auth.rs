//! Bearer tokens on every route but `/health`: `read` may GET, `invoke` may also start and
//! cancel jobs, `admin` may do everything. 401 for a missing, wrong, revoked or expired token
//! (without saying which), 403 for a scope too small.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::service::tokens::{self, Refused};
use crate::workspace::assets::Scope;

/// The scope a request needs.
pub fn scope_for(method: &Method, path: &str) -> Scope {
    let job_action = path.starts_with("/batchEndpoints/") && path.ends_with("/jobs")
        || path.ends_with("/cancel") && (path.starts_with("/jobs/") || path.starts_with("/batchEndpoints/"));
    match *method {
        Method::GET | Method::HEAD => Scope::Read,
        Method::POST if job_action => Scope::Invoke,
        _ => Scope::Admin,
    }
}

/// The middleware: checks the token, then runs the route.
pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let needs = scope_for(request.method(), request.uri().path());
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(presented) = presented else {
        return unauthenticated(
            "no token: send the Authorization header with the value Bearer and your token (create one with `batchscore token create`)",
        );
    };
    let pool = state.pool.clone();
    let checked = tokio::task::spawn_blocking(move || {
        let mut outcome = Err(Refused::Unauthenticated);
        let _ = pool.with(|ws| {
            outcome = tokens::check(ws, &presented, needs);
            Ok(())
        });
        outcome
    })
    .await;
    match checked {
        Ok(Ok(token)) => {
            let mut request = request;
            request.extensions_mut().insert(token);
            next.run(request).await
        }
        Ok(Err(Refused::Unauthenticated)) | Err(_) => {
            unauthenticated("the token is not valid (wrong, revoked or expired)")
        }
        Ok(Err(Refused::Forbidden)) => ApiError::new(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!("this needs a token with the {} scope or more", format!("{needs:?}").to_ascii_lowercase()),
        )
        .into_response(),
    }
}

fn unauthenticated(message: &str) -> Response {
    ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message).into_response()
}
