//! `batchscore serve`: the workspace's REST API (see `server`).

use std::net::SocketAddr;

use clap::Args;

use super::Exit;
use super::common::{Common, fail};
use crate::server::{ServeOptions, serve};
use crate::service::ServiceError;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free one (printed on stderr).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Jobs run at once (one job already uses every core).
    #[arg(long, default_value_t = 1)]
    pub max_running_jobs: usize,
    /// Jobs that may wait; beyond, a new job gets 429 with Retry-After.
    #[arg(long, default_value_t = 100)]
    pub max_queued_jobs: usize,
    /// Allow plain HTTP on an address other than loopback (tokens then cross the network in clear).
    #[arg(long)]
    pub insecure_http: bool,
    /// TLS certificate chain (PEM): serve HTTPS.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Seconds a client has to send its request head (and finish the TLS handshake).
    #[arg(long, default_value_t = 10.0)]
    pub client_timeout: f64,
    #[command(flatten)]
    pub common: Common,
}

pub fn run(a: &ServeArgs) -> Exit {
    let started = (|| {
        let tls = a.tls_cert.clone().zip(a.tls_key.clone());
        if !(0.1..=3600.0).contains(&a.client_timeout) {
            return Err(ServiceError::invalid(format!("--client-timeout {}", a.client_timeout), "0.1 to 3600 seconds"));
        }
        if !a.bind.ip().is_loopback() && tls.is_none() && !a.insecure_http {
            return Err(ServiceError::invalid(
                format!("--bind {}", a.bind),
                "is not a loopback address: without TLS, tokens would cross the network in clear; pass --insecure-http to do it anyway",
            ));
        }
        if !a.bind.ip().is_loopback() && tls.is_none() {
            eprintln!("warning: serving plain HTTP on {}: tokens and data cross the network unencrypted", a.bind);
        }
        if a.max_running_jobs == 0 {
            return Err(ServiceError::invalid("--max-running-jobs 0", "at least 1"));
        }
        let root = crate::workspace::find(a.common.workspace.as_deref())?;
        super::score::init_logging(crate::engine::settings::LogLevel::Info);
        serve(ServeOptions {
            root,
            bind: a.bind,
            max_running: a.max_running_jobs,
            max_queued: a.max_queued_jobs,
            tls,
            client_timeout: std::time::Duration::from_secs_f64(a.client_timeout),
        })
    })();
    match started {
        Ok(()) => Exit::Completed,
        Err(e) => fail(&e),
    }
}
