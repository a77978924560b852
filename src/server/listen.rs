//! Accepting connections: plain HTTP or TLS (rustls, with the PEM certificate chain and key
//! given), HTTP/1.1, and a deadline for a client to send its request head (and finish the TLS
//! handshake), so slow or stalled clients cannot hold connections open.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::service::ServiceError;

/// A TLS acceptor from PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ServiceError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &Path, e: String| ServiceError::invalid(what.display().to_string(), e);
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, format!("cannot read a PEM certificate chain: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert, format!("cannot read a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(bad(cert, "holds no certificate".into()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, format!("cannot read a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| ServiceError::invalid("--tls-cert/--tls-key", e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `app` on `listener` until `stop` resolves, then waits (up to 10 s) for the requests
/// in flight.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    tls: Option<TlsAcceptor>,
    client_timeout: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    let open = Arc::new(AtomicUsize::new(0));
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = &mut stop => break,
        };
        let Ok((stream, _)) = accepted else { continue };
        let (app, tls, open) = (app.clone(), tls.clone(), open.clone());
        open.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let service = TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(client_timeout);
            match tls {
                None => {
                    let _ = http.serve_connection(TokioIo::new(stream), service).await;
                }
                Some(acceptor) => {
                    if let Ok(Ok(stream)) = tokio::time::timeout(client_timeout, acceptor.accept(stream)).await {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            }
            open.fetch_sub(1, Ordering::SeqCst);
        });
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while open.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
