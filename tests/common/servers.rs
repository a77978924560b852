//! Real storage servers for the object-store tests: Azurite (Azure Blob), moto (S3) and `serve`
//! (a static HTTP server with Range and HEAD), installed into the repository by
//! `scripts/test-servers.sh` (run by `make setup` / `make test`).
//!
//! Each `start()` picks a free port on 127.0.0.1, gives the server a fresh temporary folder
//! (data and `server.log`), waits until it answers, and panics with the log's tail when it does
//! not. Dropping the value kills the server and waits for it; a watchdog also kills it within a
//! second if the test process dies without unwinding, so nothing outlives a test run. When the
//! value is dropped during a panic, its folder (with the log) is kept and its path printed.
//!
//! Creating a bucket or container is not something `object_store` does: [`Moto::create_bucket`]
//! sends an unsigned `PUT /<bucket>` (moto checks no signatures by default) and
//! [`Azurite::create_container`] a SharedKey-signed `Create Container` (HMAC-SHA256 over
//! `sha2`), both over a plain `std::net` HTTP/1.1 connection.

#![allow(dead_code)] // each test crate uses a different subset

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStore;
use object_store::path::Path as StorePath;

/// How long a server may take to answer its first request (Azurite takes 2-5 s on 2 busy cores).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The repository root.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A free TCP port on 127.0.0.1 (bound then released; the server binds it right after).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local address").port()
}

// ---------------------------------------------------------------------------------------------
// One server process

/// A running server process with its own temporary folder; killed and reaped on drop.
pub struct Server {
    name: &'static str,
    child: Child,
    watchdog: Option<Child>,
    dir: Option<tempfile::TempDir>,
    log: PathBuf,
    port: u16,
}

impl Server {
    /// Starts `program args...` (the args get the port and the data folder), stdout and stderr
    /// to `<dir>/server.log`, and waits until `GET /` gets any HTTP answer whose head contains
    /// `ident` (so a foreign process that took the port is not mistaken for ours). Retries on a
    /// new port if the server exits at once (the port was taken in between).
    fn start(name: &'static str, program: &Path, ident: &str, args: impl Fn(u16, &Path) -> Vec<String>) -> Server {
        if !program.exists() {
            panic!(
                "{name}: {} is not installed; run scripts/test-servers.sh (or `make setup`) from the repository root",
                program.display()
            );
        }
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let dir = tempfile::Builder::new()
                .prefix(&format!("batchscore-{}-", name.to_lowercase()))
                .tempdir()
                .expect("create a temp dir");
            let port = free_port();
            let log = dir.path().join("server.log");
            let out = File::create(&log).expect("create server.log");
            let err = out.try_clone().expect("clone server.log handle");
            let mut cmd = Command::new(program);
            cmd.args(args(port, dir.path()))
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                // Keep the servers quiet and offline whatever the caller's environment says.
                .env("NO_UPDATE_CHECK", "1")
                .env_remove("AZURITE_ACCOUNTS")
                .env_remove("MOTO_PORT");
            let child = cmd.spawn().unwrap_or_else(|e| {
                panic!("{name}: cannot start {}: {e}; run scripts/test-servers.sh", program.display())
            });
            let watchdog = spawn_watchdog(child.id());
            let mut server = Server { name, child, watchdog, dir: Some(dir), log, port };
            match server.wait_ready(ident) {
                Ok(()) => return server,
                Err(Exited(why)) => {
                    // Most likely the port was taken between free_port() and the bind: retry.
                    last_failure = why;
                    continue;
                }
                Err(TimedOut(why)) => panic!("{why}"),
            }
        }
        panic!("{last_failure}")
    }

    fn wait_ready(&mut self, ident: &str) -> Result<(), NotReady> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Err(Exited(format!(
                    "{} exited with {status} before answering on 127.0.0.1:{}; log {}:\n{}",
                    self.name,
                    self.port,
                    self.log.display(),
                    self.log_tail(40)
                )));
            }
            if let Ok(res) = request(self.port, "GET", "/", &[], b"")
                && res.head.to_ascii_lowercase().contains(&ident.to_ascii_lowercase())
            {
                eprintln!("{} ready on 127.0.0.1:{} in {:.1?}", self.name, self.port, started.elapsed());
                return Ok(());
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(TimedOut(format!(
                    "{} did not answer on 127.0.0.1:{} within {:?}; log {}:\n{}\n(if it is missing or broken, run scripts/test-servers.sh)",
                    self.name,
                    self.port,
                    START_TIMEOUT,
                    self.log.display(),
                    self.log_tail(40)
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its temporary folder (data and `server.log`).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("server folder").path()
    }

    /// `<dir>/server.log`: the server's stdout and stderr.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

enum NotReady {
    Exited(String),
    TimedOut(String),
}
use NotReady::{Exited, TimedOut};

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut w) = self.watchdog.take() {
            let _ = w.kill();
            let _ = w.wait();
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!("{} log kept for the failed test: {}", self.name, kept.join("server.log").display());
        }
    }
}

/// A `sh` loop that kills `pid` once this test process is gone (a test binary killed without
/// unwinding never runs `Drop`), and ends by itself once `pid` is gone.
fn spawn_watchdog(pid: u32) -> Option<Child> {
    let script = format!(
        "while kill -0 {me} 2>/dev/null && kill -0 {pid} 2>/dev/null; do sleep 1; done; kill {pid} 2>/dev/null; exit 0",
        me = std::process::id()
    );
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client (for what object_store does not do)

/// One HTTP response: status, the head (status line and headers) as text, and the raw body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (lossy), for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `127.0.0.1:<port>` with `Connection: close` and reads the whole answer.
/// `Host` and `Content-Length` are added. The body is returned as sent (chunked stays chunked).
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "no end of HTTP head in the response"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status =
        head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("bad status line in {head:?}"))
        })?;
    Ok(Response { status, head, body: raw[split + 4..].to_vec() })
}

// ---------------------------------------------------------------------------------------------
// Azurite

/// Azurite's blob service (`azurite-blob`), data under its temp folder.
///
/// Clients reach it without emulator mode: account `devstoreaccount1`, its well-known key, and
/// `azure_storage_endpoint` = `http://127.0.0.1:<port>/devstoreaccount1` (see
/// [`Azurite::storage_options`]). object_store's emulator mode (`azure_storage_use_emulator`)
/// takes the endpoint only from the `AZURITE_BLOB_STORAGE_URL` environment variable, so it suits
/// a child process ([`Azurite::emulator_env`]) but not several servers in one test process.
pub struct Azurite {
    pub server: Server,
    /// `http://127.0.0.1:<port>/devstoreaccount1`: the account's blob endpoint.
    pub blob_endpoint: String,
    pub account: String,
    pub key: String,
}

impl Azurite {
    pub const ACCOUNT: &'static str = "devstoreaccount1";
    /// Azurite's documented, well-known development key (not a secret).
    pub const KEY: &'static str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
    /// The `x-ms-version` of the requests made here.
    const API_VERSION: &'static str = "2021-08-06";

    /// `.tools/node_modules/.bin/azurite-blob`.
    pub fn program() -> PathBuf {
        repo().join(".tools/node_modules/.bin/azurite-blob")
    }

    /// Starts Azurite's blob service on a free port.
    pub fn start() -> Azurite {
        let server = Server::start("Azurite", &Self::program(), "Azurite-Blob", |port, dir| {
            let dir = dir.display().to_string();
            vec![
                "--blobHost".into(),
                "127.0.0.1".into(),
                "--blobPort".into(),
                port.to_string(),
                "--location".into(),
                dir,
                "--disableTelemetry".into(),
            ]
        });
        let blob_endpoint = format!("http://127.0.0.1:{}/{}", server.port(), Self::ACCOUNT);
        Azurite { server, blob_endpoint, account: Self::ACCOUNT.into(), key: Self::KEY.into() }
    }

    /// Creates a container (3-63 lowercase letters, digits, dashes). Panics unless Azurite says
    /// 201 Created.
    pub fn create_container(&self, name: &str) {
        let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        let path = format!("/{}/{name}?restype=container", self.account);
        // SharedKey: VERB, 11 standard headers (all empty here; Content-Length 0 is empty), the
        // x-ms-* headers sorted, then the canonical resource (account, then the URL path, which
        // on a path-style emulator URL starts with the account again), then query parameters.
        let string_to_sign = format!(
            "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{v}\n/{a}/{a}/{name}\nrestype:container",
            v = Self::API_VERSION,
            a = self.account
        );
        let key = base64_decode(&self.key);
        let signature = base64_encode(&hmac_sha256(&key, string_to_sign.as_bytes()));
        let headers = [
            ("x-ms-date", date),
            ("x-ms-version", Self::API_VERSION.to_string()),
            ("Authorization", format!("SharedKey {}:{signature}", self.account)),
        ];
        let res = request(self.server.port(), "PUT", &path, &headers, b"")
            .unwrap_or_else(|e| panic!("Azurite create container {name}: {e}"));
        assert_eq!(res.status, 201, "Azurite create container {name}: {}\n{}", res.head, res.text());
    }

    /// object_store's Azure config keys for this server (no emulator mode; works in-process).
    pub fn storage_options(&self) -> Vec<(String, String)> {
        [
            ("azure_storage_account_name", self.account.clone()),
            ("azure_storage_account_key", self.key.clone()),
            ("azure_storage_endpoint", self.blob_endpoint.clone()),
            ("azure_allow_http", "true".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The environment variable that points object_store's emulator mode at this server:
    /// `AZURITE_BLOB_STORAGE_URL=http://127.0.0.1:<port>` (no account path). Use it with
    /// `--storage-option azure_storage_use_emulator=true` on a child process.
    pub fn emulator_env(&self) -> (String, String) {
        ("AZURITE_BLOB_STORAGE_URL".into(), format!("http://127.0.0.1:{}", self.server.port()))
    }

    /// `az://<container>/<prefix>` (no trailing slash added).
    pub fn url(&self, container: &str, prefix: &str) -> String {
        join_url(&format!("az://{container}"), prefix)
    }

    /// A store on `container` built from [`Azurite::url`] and [`Azurite::storage_options`].
    pub fn store(&self, container: &str) -> Arc<dyn ObjectStore> {
        open(&self.url(container, ""), &self.storage_options()).0
    }
}

// ---------------------------------------------------------------------------------------------
// moto

/// moto's S3 server (`moto_server`), in memory (its folder holds only the log).
pub struct Moto {
    pub server: Server,
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
}

impl Moto {
    /// `.venv-servers/bin/moto_server`.
    pub fn program() -> PathBuf {
        repo().join(".venv-servers/bin/moto_server")
    }

    /// Starts moto's server on a free port.
    pub fn start() -> Moto {
        let server = Server::start("moto", &Self::program(), "server: amazon.com", |port, _| {
            vec!["-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()]
        });
        Moto {
            endpoint: format!("http://127.0.0.1:{}", server.port()),
            server,
            access_key_id: "testing".into(),
            secret_access_key: "testing".into(),
            region: "us-east-1".into(),
        }
    }

    /// Creates a bucket (3-63 lowercase letters, digits, dots, dashes) with an unsigned
    /// `PUT /<bucket>`. Panics unless moto says 200.
    pub fn create_bucket(&self, name: &str) {
        let res = request(self.server.port(), "PUT", &format!("/{name}"), &[], b"")
            .unwrap_or_else(|e| panic!("moto create bucket {name}: {e}"));
        assert_eq!(res.status, 200, "moto create bucket {name}: {}\n{}", res.head, res.text());
    }

    /// object_store's S3 config keys for this server, create-only writes included:
    /// `aws_conditional_put=etag` (If-None-Match: * on PUT and on CompleteMultipartUpload, which
    /// moto honours) and `aws_copy_if_not_exists=multipart` (copy through a one-part multipart
    /// upload completed with If-None-Match: *; moto ignores If-None-Match on CopyObject, so the
    /// `header:` forms do not work).
    pub fn storage_options(&self) -> Vec<(String, String)> {
        [
            ("aws_endpoint", self.endpoint.clone()),
            ("aws_allow_http", "true".into()),
            ("aws_access_key_id", self.access_key_id.clone()),
            ("aws_secret_access_key", self.secret_access_key.clone()),
            ("aws_region", self.region.clone()),
            ("aws_virtual_hosted_style_request", "false".into()),
            ("aws_conditional_put", "etag".into()),
            ("aws_copy_if_not_exists", "multipart".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// `s3://<bucket>/<prefix>` (no trailing slash added).
    pub fn url(&self, bucket: &str, prefix: &str) -> String {
        join_url(&format!("s3://{bucket}"), prefix)
    }

    /// A store on `bucket` built from [`Moto::url`] and [`Moto::storage_options`].
    pub fn store(&self, bucket: &str) -> Arc<dyn ObjectStore> {
        open(&self.url(bucket, ""), &self.storage_options()).0
    }
}

// ---------------------------------------------------------------------------------------------
// Static HTTP

/// `serve` (npm) serving one folder read-only: GET, HEAD and single Range requests (bytes=a-b,
/// a-, and suffix -n), ETag; no PUT/DELETE (404), and PROPFIND is answered like GET (HTML
/// directory listing, 200), so object_store's HttpStore cannot list through it.
pub struct StaticHttp {
    pub server: Server,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    pub root: PathBuf,
}

impl StaticHttp {
    /// `.tools/node_modules/.bin/serve`.
    pub fn program() -> PathBuf {
        repo().join(".tools/node_modules/.bin/serve")
    }

    /// Serves `dir` on a free port.
    pub fn start(dir: &Path) -> StaticHttp {
        let root = dir.canonicalize().unwrap_or_else(|e| panic!("serve {}: {e}", dir.display()));
        let root_arg = root.display().to_string();
        let server = Server::start("serve", &Self::program(), "HTTP/1.1 ", move |port, _| {
            vec![
                "--listen".into(),
                format!("tcp://127.0.0.1:{port}"),
                "--no-clipboard".into(),
                "--no-compression".into(),
                "--no-port-switching".into(),
                root_arg.clone(),
            ]
        });
        StaticHttp { base_url: format!("http://127.0.0.1:{}", server.port()), server, root }
    }

    /// `<base_url>/<rel>`.
    pub fn url(&self, rel: &str) -> String {
        join_url(&self.base_url, rel)
    }

    /// object_store's client keys an `http://` store needs (`allow_http`; without it the client
    /// is HTTPS-only).
    pub fn storage_options(&self) -> Vec<(String, String)> {
        vec![("allow_http".into(), "true".into())]
    }

    /// A store on the server's root built from [`StaticHttp::storage_options`].
    pub fn store(&self) -> Arc<dyn ObjectStore> {
        open(&self.base_url, &self.storage_options()).0
    }
}

// ---------------------------------------------------------------------------------------------
// Stores and data

/// `base/rel` with one slash between them; `base` alone when `rel` is empty.
fn join_url(base: &str, rel: &str) -> String {
    let rel = rel.trim_start_matches('/');
    if rel.is_empty() { base.to_string() } else { format!("{}/{rel}", base.trim_end_matches('/')) }
}

/// A store and the path in it for `url`, through `object_store::parse_url_opts` (which, note,
/// ignores option keys it does not know).
pub fn open(url: &str, options: &[(String, String)]) -> (Arc<dyn ObjectStore>, StorePath) {
    let parsed = url::Url::parse(url).unwrap_or_else(|e| panic!("parse {url}: {e}"));
    let (store, path) = object_store::parse_url_opts(&parsed, options.iter().map(|(k, v)| (k.as_str(), v.clone())))
        .unwrap_or_else(|e| panic!("open {url}: {e}"));
    (Arc::from(store), path)
}

/// Copies every file under `local` into `store` under `prefix`, recursively, keeping relative
/// paths. Returns the store paths written, sorted.
pub async fn upload_dir(store: &dyn ObjectStore, local: &Path, prefix: &StorePath) -> Vec<StorePath> {
    use object_store::ObjectStoreExt;
    let mut files = Vec::new();
    collect_files(local, local, &mut files);
    files.sort();
    let mut written = Vec::new();
    for rel in files {
        let mut path = prefix.clone();
        for part in rel.components() {
            path = path.clone().join(part.as_os_str().to_string_lossy().as_ref());
        }
        let bytes = std::fs::read(local.join(&rel)).unwrap_or_else(|e| panic!("read {}: {e}", rel.display()));
        store.put(&path, bytes.into()).await.unwrap_or_else(|e| panic!("upload {path}: {e}"));
        written.push(path);
    }
    written
}

/// [`upload_dir`] for synchronous tests (those that then run the binary): runs on its own
/// current-thread runtime. Not from inside an async test.
pub fn upload_dir_blocking(store: &dyn ObjectStore, local: &Path, prefix: &StorePath) -> Vec<StorePath> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(upload_dir(store, local, prefix))
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read_dir {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect_files(root, &path, out);
        } else {
            out.push(path.strip_prefix(root).expect("inside root").to_path_buf());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HMAC-SHA256 and base64 for Azure SharedKey (no extra dev-dependency)

pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&ipad).chain_update(msg).finalize();
    Sha256::new().chain_update(&opad).chain_update(inner).finalize().into()
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes().filter(|&c| c != b'=') {
        let v = B64.iter().position(|&x| x == c).unwrap_or_else(|| panic!("not base64: {text:?}")) as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}
