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
    /// The largest model file `POST /models/{name}/versions` takes as an upload, in bytes
    /// (suffixes K, M, G: 2G).
    #[arg(long, default_value = "2G", value_parser = parse_size)]
    pub max_upload_size: u64,
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
        serve(ServeOptions {
            root,
            bind: a.bind,
            max_running: a.max_running_jobs,
            max_queued: a.max_queued_jobs,
            max_upload: a.max_upload_size,
            tls,
            client_timeout: std::time::Duration::from_secs_f64(a.client_timeout),
        })
    })();
    match started {
        Ok(()) => Exit::Completed,
        Err(e) => fail(&e),
    }
}

/// `2G`, `500M`, `64K` or a number of bytes.
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let scale: u64 = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        _ => return Err(format!("{s:?}: a size such as 2G, 500M or 1048576")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{s:?}: a size above 0, such as 2G, 500M or 1048576"))
}
