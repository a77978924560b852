//! `GET /openapi.json`: the API's OpenAPI 3.1 document, generated from the routes' own
//! declarations (utoipa), with the bearer scheme, the scope each operation needs and the error
//! answers every operation can give.

use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder};

/// The document, built once.
pub fn spec() -> &'static OpenApi {
    static DOC: OnceLock<OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = super::routes::api().merge(super::routes::open()).into_openapi();
        describe(&mut doc);
        doc
    })
}

fn describe(doc: &mut OpenApi) {
    doc.info.title = "batchscore".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Batch endpoints over HTTP: Azure Machine Learning's resource paths (without the subscription \
         prefix) and invoke body. Every route but /health and /openapi.json needs \
         `Authorization: Bearer <token>` (`batchscore token create`); each operation lists the scope \
         it needs (read < invoke < admin). Errors are `{\"error\": {\"code\", \"message\"}}`."
            .into(),
    );
    doc.info.license = None;
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        "bearer".into(),
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("bst_...").build()).into(),
    );
    let error = |what: &str| {
        ResponseBuilder::new()
            .description(what)
            .content("application/json", ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorBody"))).build())
            .build()
    };
    for item in doc.paths.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.put, &mut item.post, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            let open = op.security.as_ref().is_some_and(|s| s.iter().all(|r| r == &Default::default()));
            let responses = &mut op.responses.responses;
            if !open {
                responses
                    .entry("401".into())
                    .or_insert_with(|| error("No token, or a wrong, revoked or expired one").into());
                responses.entry("403".into()).or_insert_with(|| error("The token's scope is too small").into());
            }
            responses.entry("default".into()).or_insert_with(|| error("Any other refusal").into());
            for (code, response) in responses.iter_mut() {
                if let RefOr::T(r) = response
                    && r.description.is_empty()
                {
                    r.description = reason(code);
                }
            }
            if let Some(RefOr::T(body)) = op.request_body.as_mut()
                && let Some(RefOr::T(upload)) = body.content.get_mut("application/octet-stream")
            {
                let file =
                    ObjectBuilder::new().schema_type(Type::String).content_media_type("application/octet-stream");
                upload.schema = Some(file.into());
            }
        }
    }
}

/// A response's description where the declaration gave none: the status's reason.
fn reason(code: &str) -> String {
    code.parse::<u16>()
        .ok()
        .and_then(|c| axum::http::StatusCode::from_u16(c).ok())
        .and_then(|c| c.canonical_reason())
        .unwrap_or("Answer")
        .to_string()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "server", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json")))]
pub async fn document() -> Response {
    let text = serde_json::to_string(spec()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
}
