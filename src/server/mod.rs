//! `batchscore serve`: the workspace over HTTP, for programs that invoke batch endpoints.
//!
//! - [`routes`]: Azure's resource paths, each a call into `service` (the CLI's operations);
//! - [`auth`]: bearer tokens with scopes on every route but `/health`;
//! - [`executor`]: jobs run in the background, at most N at once, from a queue in the catalog;
//! - [`error`]: every refusal as `{"error": {"code", "message"}}`;
//! - [`observe`]: JSON request logs with a request id, and `/metrics`;
//! - [`openapi`]: `/openapi.json`, generated from the routes' declarations;
//! - [`pool`]: catalog connections reused across requests;
//! - [`studio`]: the web page at `/`, over the same API.
//!
//! It binds loopback by default. SIGTERM or Ctrl-C stops accepting requests, cancels the
//! running jobs (they end Canceled, nothing published) and leaves queued ones Queued, to run
//! when the server starts again.

pub mod auth;
pub mod error;
pub mod executor;
pub mod listen;
pub mod observe;
pub mod openapi;
pub mod pool;
pub mod routes;
pub mod studio;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;

use crate::service::{ServiceError, jobs};
use crate::workspace::Workspace;

/// Request bodies above this are refused (413).
pub const MAX_BODY: usize = 1 << 20;

/// What every route shares.
#[derive(Clone)]
pub struct AppState {
    pub root: PathBuf,
    pub pool: Arc<pool::Pool>,
    pub max_queued: usize,
    /// The largest model file an upload may send, in bytes.
    pub max_upload: u64,
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
    pub max_upload: u64,
    /// PEM certificate chain and private key: serve HTTPS.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// How long a client has to send its request head (and finish the TLS handshake).
    pub client_timeout: std::time::Duration,
}

/// The router over `state`: the token-checked API, `/health` and `/openapi.json`, JSON errors
/// for unknown routes and methods, the body limit and the observing layers.
pub fn router(state: AppState) -> Router {
    let api = routes::api().route_layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token));
    let (router, _) = routes::open().merge(api).split_for_parts();
    let router = router
        .merge(studio::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(DefaultBodyLimit::max(MAX_BODY));
    observe::layers(router, state.clone()).with_state(state)
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
    observe::init_logs();
    let state = AppState {
        root: opts.root.clone(),
        pool: Arc::new(pool::Pool::new(opts.root.clone())),
        max_queued: opts.max_queued,
        max_upload: opts.max_upload,
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
