//! `batchscore serve`: the workspace over HTTP, for programs that invoke batch endpoints.
//!
//! - [`routes`]: Azure's resource paths, each a call into `service` (the CLI's operations);
//! - [`auth`]: bearer tokens with scopes on every route but `/health`;
//! - [`executor`]: jobs run in the background, at most N at once, from a queue in the catalog;
//! - [`error`]: every refusal as `{"error": {"code", "message"}}`;
//! - [`observe`]: JSON request logs with a request id, and `/metrics`.
//!
//! It binds loopback by default. SIGTERM or Ctrl-C stops accepting requests, cancels the
//! running jobs (they end Canceled, nothing published) and leaves queued ones Queued, to run
//! when the server starts again.

pub mod auth;
pub mod error;
pub mod executor;
pub mod listen;
pub mod observe;
pub mod routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::service::{ServiceError, jobs};
use crate::workspace::Workspace;

/// Request bodies above this are refused (413).
pub const MAX_BODY: usize = 1 << 20;

/// What every route shares.
#[derive(Clone)]
pub struct AppState {
    pub root: PathBuf,
    pub max_queued: usize,
    pub executor: Arc<executor::Executor>,
    pub metrics: Arc<observe::Metrics>,
}

/// How `serve` runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub root: PathBuf,
    pub bind: SocketAddr,
    pub max_running: usize,
    pub max_queued: usize,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How long a client has to send its request head (and finish the TLS handshake).
    pub client_timeout: std::time::Duration,
}

/// The router over `state`.
pub fn router(state: AppState) -> Router {
    use routes::*;
    let api = Router::new()
        .route("/models", get(list_models))
        .route("/models/{name}/versions", get(model_versions).post(create_model))
        .route("/models/{name}/versions/{version}", get(show_model).patch(patch_model).delete(delete_model))
        .route("/environments", get(list_environments))
        .route("/environments/{name}/versions", post(create_environment))
        .route(
            "/environments/{name}/versions/{version}",
            get(show_environment).patch(patch_environment).delete(delete_environment),
        )
        .route("/datastores", get(list_datastores))
        .route("/datastores/{name}", get(show_datastore).put(put_datastore).delete(delete_datastore))
        .route("/data", get(list_data))
        .route("/data/{name}/versions", post(create_data))
        .route("/data/{name}/versions/{version}", get(show_data).patch(patch_data))
        .route("/batchEndpoints", get(list_endpoints))
        .route(
            "/batchEndpoints/{name}",
            get(show_endpoint).put(create_endpoint).patch(patch_endpoint).delete(delete_endpoint),
        )
        .route("/batchEndpoints/{name}/deployments", get(list_deployments))
        .route(
            "/batchEndpoints/{name}/deployments/{deployment}",
            get(show_deployment).put(put_deployment).delete(delete_deployment),
        )
        .route("/batchEndpoints/{name}/jobs", get(endpoint_jobs).post(invoke))
        .route("/batchEndpoints/{name}/jobs/{job}", get(show_endpoint_job))
        .route("/batchEndpoints/{name}/jobs/{job}/cancel", post(cancel_endpoint_job))
        .route("/jobs", get(list_jobs))
        .route("/jobs/{job}", get(show_job))
        .route("/jobs/{job}/cancel", post(cancel_job))
        .route("/jobs/{job}/logs", get(job_logs))
        .route("/metrics", get(observe::metrics))
        .route("/tokens", get(list_tokens).post(create_token))
        .route("/tokens/{name}", axum::routing::delete(revoke_token))
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .route("/health", get(health))
        .merge(api)
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe::observe))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// Serves until SIGTERM or Ctrl-C.
pub fn serve(opts: ServeOptions) -> Result<(), ServiceError> {
    let io = |what: &str| {
        let what = what.to_string();
        move |source| ServiceError::Io { path: what.into(), source }
    };
    let tls = opts.tls.as_ref().map(|(c, k)| listen::tls_acceptor(c, k)).transpose()?;
    // Jobs a server left running when it died are marked Failed by the stale check.
    let mut ws = Workspace::open(&opts.root)?;
    jobs::list(&mut ws, None, None, None)?;
    drop(ws);
    let executor = Arc::new(executor::Executor::start(opts.root.clone(), opts.max_running).map_err(io("executor"))?);
    let state = AppState {
        root: opts.root.clone(),
        max_queued: opts.max_queued,
        executor: executor.clone(),
        metrics: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(io("tokio runtime"))?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(opts.bind).await.map_err(io(&format!("bind {}", opts.bind)))?;
        let local = listener.local_addr().map_err(io("local address"))?;
        // The one line a launcher waits for.
        let scheme = if tls.is_some() { "https" } else { "http" };
        eprintln!("batchscore serve: listening on {scheme}://{local}");
        listen::serve(listener, router(state), tls, opts.client_timeout, stop_signal()).await;
        Ok::<_, ServiceError>(())
    })?;
    eprintln!("batchscore serve: stopping (running jobs are canceled; queued jobs stay queued)");
    executor.shutdown();
    Ok(())
}

async fn stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
}
