//! `/tokens` (admin): create (the token is in the answer, once), list, revoke.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{ApiResult, AppState, ValueList, body, created, ok, with_ws};
use crate::server::error::{ApiError, ErrorBody};
use crate::service::tokens;
use crate::workspace::assets::{Scope, Token};

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(whoami))
}

/// Every token (never the token itself: its first characters and scope).
#[utoipa::path(get, path = "/tokens", tag = "tokens", security(("bearer" = ["admin"])),
    responses((status = 200, body = ValueList<Token>)))]
pub async fn list_tokens(State(s): State<AppState>) -> ApiResult {
    super::list(with_ws(&s, |ws| tokens::list(ws)).await?)
}

/// A new token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "nightly-pipeline", "scope": "invoke", "expires": "30d"}))]
pub struct TokenBody {
    name: String,
    /// `read`, `invoke` or `admin`.
    scope: String,
    /// `30d`, `12h`, `90m` or `never` (default `90d`).
    expires: Option<String>,
}

/// Creates a token; the answer's `token` is shown this once (only its hash is kept).
#[utoipa::path(post, path = "/tokens", tag = "tokens", security(("bearer" = ["admin"])),
    request_body = TokenBody,
    responses((status = 201, description = "The record and, once, the token", body = Token), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_token(State(s): State<AppState>, b: Result<Json<TokenBody>, JsonRejection>) -> ApiResult {
    let b = body(b)?;
    let scope = Scope::parse(&b.scope)
        .ok_or_else(|| ApiError::bad_request(format!("scope {:?}: use read, invoke or admin", b.scope)))?;
    created(
        with_ws(&s, move |ws| {
            let expires = tokens::parse_expiry(b.expires.as_deref().unwrap_or("90d"))?;
            tokens::create(ws, &b.name, scope, expires)
        })
        .await?,
    )
}

/// Revokes a token: from now on it is refused.
#[utoipa::path(delete, path = "/tokens/{name}", tag = "tokens", security(("bearer" = ["admin"])),
    params(("name" = String, Path)),
    responses((status = 200, body = Token), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(State(s): State<AppState>, Path(n): Path<String>) -> ApiResult {
    ok(with_ws(&s, move |ws| tokens::revoke(ws, &n)).await?)
}

/// The token this request came with (its name, scope and expiry): what a page may offer.
#[utoipa::path(get, path = "/whoami", tag = "tokens", security(("bearer" = ["read"])),
    responses((status = 200, body = Token)))]
pub async fn whoami(axum::Extension(token): axum::Extension<Token>) -> ApiResult {
    ok(token)
}
