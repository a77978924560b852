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

// ---------------------------------------------------------------------------------------------
// Slurm

/// A real single-node Slurm on 127.0.0.1 (Debian's `slurm-wlm` and `munge`, installed by
/// `scripts/test-servers.sh` when it runs as root): `slurmctld` and `slurmd` as root, with a
/// fresh `slurm.conf` in a temporary folder (prefix `batchscore-slurm-`) that also holds the
/// state, the spool, the logs and the pid files. Check [`Slurm::available`] first and skip (with
/// the reason) when it says no.
///
/// The cluster: one node named after the short hostname (`NodeAddr=127.0.0.1`, the CPUs and
/// topology that `slurmd -C` reports, 90 % of its memory), one default partition `debug`
/// without a time limit, free ports, no accounting (`sacct` has nothing; `scontrol show job` and
/// `squeue` give states, and finished jobs stay visible to `scontrol` for `MinJobAge`, 300 s),
/// `proctrack/linuxproc` and `task/none` (no cgroups), and `KillWait=5`: `scancel` sends SIGTERM
/// (to the batch step too), then SIGKILL 5 s later. Clients (sbatch, squeue, scancel, scontrol,
/// and batchscore when it runs sbatch) reach it with [`Slurm::env`] (`SLURM_CONF`).
///
/// Munge: when no `munged` answers, `start()` creates `/etc/munge/munge.key` if it is missing
/// (1024 random bytes, owner munge, mode 400), starts `munged --force` on the default socket
/// (`/run/munge/munge.socket.2`) with its pid, seed and log files in the Slurm's folder, and
/// stops it on drop. A `munged` that was already there is used and left alone.
///
/// One Slurm at a time per machine: its node is the host itself (named after the hostname), so
/// a second cluster would have its own slurmd claim the same node and their jobs share the same
/// CPUs unknown to each other. `start()` therefore takes an exclusive lock on
/// `<tmp>/batchscore-slurm.lock` (flock, so it serialises the threads of one test binary as well
/// as separate test processes) and holds it until the value is dropped; a second `start()`
/// waits. Daemons left by a run that died without unwinding (slurmctld, slurmd, slurmstepd and
/// its jobs, munged, whose command line or environment names a `batchscore-slurm-` folder) are
/// killed before a new start; other Slurm daemons on the machine are left alone, with a warning.
/// A watchdog also stops the daemons within a second if the test process dies without
/// unwinding. Dropping the value cancels every job left, waits for them, stops the daemons and
/// waits until they are gone; when it is dropped during a panic its folder (with the logs) is
/// kept and its path printed.
pub struct Slurm {
    dir: Option<tempfile::TempDir>,
    conf: PathBuf,
    node: String,
    programs: SlurmPrograms,
    slurmctld: Option<u32>,
    slurmd: Option<u32>,
    /// Our munged, when we started it.
    munged: Option<u32>,
    watchdogs: Vec<Child>,
    /// The machine-wide lock, held for the Slurm's lifetime (released when the file is closed).
    _lock: File,
}

/// The prefix of every Slurm's temporary folder (and how leftovers of earlier runs are known).
const SLURM_PREFIX: &str = "batchscore-slurm-";
/// How long the node may take to be `idle` (under a second on an idle machine).
const SLURM_START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long jobs may take to end after `scancel`, and each daemon after SIGTERM.
const SLURM_STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Debian's default munge socket, which Slurm's auth/munge uses.
const MUNGE_SOCKET_DIR: &str = "/run/munge";
const MUNGE_KEY: &str = "/etc/munge/munge.key";

/// The programs a Slurm needs, found on PATH or in /usr/sbin and /sbin (where Debian puts the
/// daemons, and which a non-root PATH may lack).
struct SlurmPrograms {
    slurmctld: PathBuf,
    slurmd: PathBuf,
    sbatch: PathBuf,
    squeue: PathBuf,
    scancel: PathBuf,
    sinfo: PathBuf,
    munged: PathBuf,
    munge: PathBuf,
}

impl SlurmPrograms {
    fn find() -> Result<SlurmPrograms, String> {
        let find = |name: &str| {
            find_program(name).ok_or_else(|| {
                format!(
                    "{name} is not installed (Debian: apt-get install slurm-wlm munge, which scripts/test-servers.sh does as root)"
                )
            })
        };
        Ok(SlurmPrograms {
            slurmctld: find("slurmctld")?,
            slurmd: find("slurmd")?,
            sbatch: find("sbatch")?,
            squeue: find("squeue")?,
            scancel: find("scancel")?,
            sinfo: find("sinfo")?,
            munged: find("munged")?,
            munge: find("munge")?,
        })
        .and_then(|programs| find("scontrol").map(|_| programs))
    }
}

/// `name` on PATH, then in /usr/sbin and /sbin.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Slurm {
    /// `Ok` when a Slurm can run here; otherwise why not: not Linux, not root (slurmctld and
    /// slurmd run as root, and munged's key and socket are system paths), or a program missing
    /// (named).
    pub fn available() -> Result<(), String> {
        Self::check().map(|_| ())
    }

    fn check() -> Result<SlurmPrograms, String> {
        if !cfg!(target_os = "linux") {
            return Err("the Slurm harness runs on Linux only".into());
        }
        use std::os::unix::fs::MetadataExt;
        let uid = std::fs::metadata("/proc/self").map(|m| m.uid()).map_err(|e| format!("read /proc/self: {e}"))?;
        if uid != 0 {
            return Err(format!(
                "not root (uid {uid}): slurmctld and slurmd run as root (SlurmUser=root), and munged needs {MUNGE_KEY} and {MUNGE_SOCKET_DIR}"
            ));
        }
        SlurmPrograms::find()
    }

    /// Starts munged if needed, then slurmctld and slurmd on free ports, and waits until the node
    /// is `idle`. Waits first for any other Slurm of this machine to be dropped. Panics (with the
    /// daemons' log tails) when it cannot.
    pub fn start() -> Slurm {
        let programs = Self::check().unwrap_or_else(|why| panic!("Slurm cannot run here: {why}"));
        let lock = lock_slurm();
        kill_leftovers(&std::env::temp_dir().join(SLURM_PREFIX).display().to_string(), true);
        let dir = tempfile::Builder::new().prefix(SLURM_PREFIX).tempdir().expect("create a temp dir");
        let conf = dir.path().join("slurm.conf");
        let started = Instant::now();
        // From here on a panic drops the value, which stops whatever was started.
        let mut slurm = Slurm {
            dir: Some(dir),
            conf,
            node: short_hostname(),
            programs,
            slurmctld: None,
            slurmd: None,
            munged: None,
            watchdogs: Vec::new(),
            _lock: lock,
        };
        slurm.munged = slurm.start_munged();
        let hardware = node_hardware(&slurm.programs.slurmd);
        let mut last_failure = String::new();
        for _attempt in 0..3 {
            let ctld_port = free_port();
            let slurmd_port = loop {
                let p = free_port();
                if p != ctld_port {
                    break p;
                }
            };
            slurm.write_conf(ctld_port, slurmd_port, &hardware);
            match slurm.start_daemons() {
                Ok(()) => {
                    eprintln!(
                        "Slurm ready (node {} idle, slurmctld on 127.0.0.1:{ctld_port}) in {:.1?}; conf {}",
                        slurm.node,
                        started.elapsed(),
                        slurm.conf.display()
                    );
                    return slurm;
                }
                Err(Exited(why)) => {
                    // Most likely a port was taken between free_port() and the bind: retry.
                    last_failure = why;
                    slurm.stop_daemons();
                }
                Err(TimedOut(why)) => panic!("{why}"),
            }
        }
        panic!("{last_failure}")
    }

    /// `SLURM_CONF=<conf>`: the environment that points Slurm's commands (sbatch, squeue, scancel,
    /// scontrol, and batchscore when it runs sbatch) at this cluster.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![("SLURM_CONF".into(), self.conf.display().to_string())]
    }

    /// `<dir>/slurm.conf`.
    pub fn conf(&self) -> &Path {
        &self.conf
    }

    /// Its temporary folder (conf, state, spool, logs, pid files).
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("Slurm folder").path()
    }

    /// The node's name (the short hostname), which is also the one node of partition `debug`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The last lines of slurmctld's and slurmd's logs (and munged's when it is ours), for
    /// assertion messages.
    pub fn log_tail(&self) -> String {
        let mut logs = vec!["slurmctld.log", "slurmd.log"];
        if self.munged.is_some() {
            logs.push("munged.log");
        }
        logs.iter()
            .map(|name| {
                let path = self.dir().join(name);
                format!("--- {} (tail) ---\n{}", path.display(), file_tail(&path, 30))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `squeue -h -j <slurm_job> -o "%i %T"`: one `<id> <STATE>` line per pending, running or
    /// completing job (an array's pending tasks share one line, `<id>_[<range>]`); empty once the
    /// job is over (squeue leaves finished jobs out, and says "Invalid job id" once slurmctld has
    /// forgotten them, which is read as empty too). Panics when squeue fails otherwise.
    pub fn squeue(&self, slurm_job: &str) -> String {
        let out = Command::new(&self.programs.squeue)
            .args(["-h", "-j", slurm_job, "-o", "%i %T"])
            .envs(self.env())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run squeue: {e}"));
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            if stderr.contains("Invalid job id") {
                return String::new();
            }
            panic!("squeue -j {slurm_job} failed ({}): {stderr}\n{}", out.status, self.log_tail());
        }
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn write_conf(&self, ctld_port: u16, slurmd_port: u16, hardware: &str) {
        let d = self.dir().display().to_string();
        let node = &self.node;
        let text = format!(
            "# A single-node test cluster written by tests/common/servers.rs (Slurm::start).
ClusterName=batchscore
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldLogFile={d}/slurmctld.log
SlurmdLogFile={d}/slurmd.log
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
# No cgroups: a container has none to give.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
# A node that was down comes back as soon as it registers.
ReturnToService=2
# scancel: SIGTERM, then SIGKILL 5 s later.
KillWait=5
SlurmdTimeout=30
InactiveLimit=30
# Finished jobs stay visible to scontrol show job for 5 minutes.
MinJobAge=300
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={node} NodeAddr=127.0.0.1 {hardware} State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"
        );
        std::fs::write(&self.conf, text).unwrap_or_else(|e| panic!("write {}: {e}", self.conf.display()));
        for sub in ["state", "spool"] {
            let path = self.dir().join(sub);
            let _ = std::fs::remove_dir_all(&path); // a retry starts from nothing
            std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        }
    }

    /// Starts slurmctld then slurmd (each daemonizes; its pid comes from its pid file) and waits
    /// until `sinfo` says the node is `idle`.
    fn start_daemons(&mut self) -> Result<(), NotReady> {
        let ctld = self.programs.slurmctld.clone();
        let pid = self.daemonize("slurmctld", &ctld, &[])?;
        self.slurmctld = Some(pid);
        let slurmd = self.programs.slurmd.clone();
        let node = self.node.clone();
        let pid = self.daemonize("slurmd", &slurmd, &["-N", &node])?;
        self.slurmd = Some(pid);
        let started = Instant::now();
        loop {
            for (name, pid) in [("slurmctld", self.slurmctld), ("slurmd", self.slurmd)] {
                if let Some(pid) = pid
                    && !process_alive(pid)
                {
                    return Err(Exited(format!(
                        "Slurm: {name} (pid {pid}) exited before node {} was idle:\n{}",
                        self.node,
                        self.log_tail()
                    )));
                }
            }
            let out = Command::new(&self.programs.sinfo)
                .args(["-h", "-o", "%T"])
                .envs(self.env())
                .stdin(Stdio::null())
                .output()
                .unwrap_or_else(|e| panic!("run sinfo: {e}"));
            let last_state = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout).trim(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
            if out.status.success() && last_state == "idle" {
                return Ok(());
            }
            if started.elapsed() > SLURM_START_TIMEOUT {
                return Err(TimedOut(format!(
                    "Slurm: node {} not idle within {SLURM_START_TIMEOUT:?} (sinfo -h -o %T said {last_state:?}):\n{}",
                    self.node,
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Runs `program -f <conf> args...`, which forks a daemon and exits, and returns the
    /// daemon's pid from `<dir>/<name>.pid`. Its stdout and stderr go to `<dir>/<name>.out`.
    fn daemonize(&mut self, name: &str, program: &Path, args: &[&str]) -> Result<u32, NotReady> {
        let pid_file = self.dir().join(format!("{name}.pid"));
        let _ = std::fs::remove_file(&pid_file);
        let out_path = self.dir().join(format!("{name}.out"));
        let out = File::create(&out_path).unwrap_or_else(|e| panic!("create {}: {e}", out_path.display()));
        let err = out.try_clone().expect("clone a file handle");
        let mut cmd = Command::new(program);
        cmd.arg("-f").arg(&self.conf).args(args).current_dir(self.dir()).stdin(Stdio::null()).stdout(out).stderr(err);
        // A test run inside a Slurm job must not hand that job's variables to our daemons.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SLURM_") {
                cmd.env_remove(key);
            }
        }
        let status = cmd.envs(self.env()).status().unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let output = || std::fs::read_to_string(&out_path).unwrap_or_default();
        if !status.success() {
            return Err(Exited(format!("Slurm: {name} failed ({status}): {}\n{}", output(), self.log_tail())));
        }
        let started = Instant::now();
        loop {
            if let Some(pid) = read_pid(&pid_file) {
                self.watchdogs.extend(spawn_watchdog(pid));
                return Ok(pid);
            }
            if started.elapsed() > SLURM_START_TIMEOUT {
                return Err(TimedOut(format!(
                    "Slurm: {name} wrote no pid file {} within {SLURM_START_TIMEOUT:?}: {}\n{}",
                    pid_file.display(),
                    output(),
                    self.log_tail()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts `munged --force` unless one answers already; returns its pid when we started it.
    fn start_munged(&mut self) -> Option<u32> {
        if munge_answers(&self.programs.munge) {
            return None;
        }
        ensure_munge_key();
        // systemd creates the socket's folder (RuntimeDirectory); a container has no systemd.
        if !Path::new(MUNGE_SOCKET_DIR).is_dir() {
            std::fs::create_dir_all(MUNGE_SOCKET_DIR).unwrap_or_else(|e| panic!("create {MUNGE_SOCKET_DIR}: {e}"));
            chown_munge(Path::new(MUNGE_SOCKET_DIR));
        }
        let d = self.dir().to_path_buf();
        let pid_file = d.join("munged.pid");
        let out_path = d.join("munged.out");
        let out = File::create(&out_path).unwrap_or_else(|e| panic!("create {}: {e}", out_path.display()));
        let err = out.try_clone().expect("clone a file handle");
        let status = Command::new(&self.programs.munged)
            .arg("--force")
            .arg(format!("--pid-file={}", pid_file.display()))
            .arg(format!("--log-file={}", d.join("munged.log").display()))
            .arg(format!("--seed-file={}", d.join("munged.seed").display()))
            .current_dir(&d)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .status()
            .unwrap_or_else(|e| panic!("start munged: {e}"));
        let output = || std::fs::read_to_string(&out_path).unwrap_or_default();
        assert!(status.success(), "munged --force failed ({status}): {}", output());
        let started = Instant::now();
        loop {
            if let Some(pid) = read_pid(&pid_file)
                && munge_answers(&self.programs.munge)
            {
                self.watchdogs.extend(spawn_watchdog(pid));
                return Some(pid);
            }
            if started.elapsed() > SLURM_START_TIMEOUT {
                panic!(
                    "munged did not answer within {SLURM_START_TIMEOUT:?}: {}\n{}",
                    output(),
                    file_tail(&d.join("munged.log"), 30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Cancels every job, waits (bounded) until none is left.
    fn cancel_all_jobs(&self) {
        let list = || {
            Command::new(&self.programs.squeue)
                .args(["-h", "-o", "%F"])
                .envs(self.env())
                .stdin(Stdio::null())
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| {
                    let mut ids: Vec<String> =
                        String::from_utf8_lossy(&o.stdout).split_whitespace().map(str::to_string).collect();
                    ids.sort();
                    ids.dedup();
                    ids
                })
        };
        let Some(ids) = list() else { return };
        if ids.is_empty() {
            return;
        }
        let _ = Command::new(&self.programs.scancel)
            .args(&ids)
            .envs(self.env())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let started = Instant::now();
        while list().is_some_and(|ids| !ids.is_empty()) {
            if started.elapsed() > SLURM_STOP_TIMEOUT {
                eprintln!("Slurm: jobs {ids:?} still there {SLURM_STOP_TIMEOUT:?} after scancel; killing the daemons");
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stops slurmd then slurmctld (SIGTERM, SIGKILL after a while) and waits until they are gone.
    fn stop_daemons(&mut self) {
        for pid in [self.slurmd.take(), self.slurmctld.take()].into_iter().flatten() {
            stop_process(pid);
        }
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        if self.slurmctld.is_some() {
            self.cancel_all_jobs();
        }
        self.stop_daemons();
        if let Some(pid) = self.munged.take() {
            stop_process(pid);
        }
        // Whatever is left of our jobs (slurmstepd and what it ran).
        if let Some(dir) = &self.dir {
            kill_leftovers(&format!("{}/", dir.path().display()), false);
        }
        for mut w in self.watchdogs.drain(..) {
            let _ = w.kill();
            let _ = w.wait();
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!("Slurm folder (logs) kept for the failed test: {}", kept.display());
        }
    }
}

/// The exclusive lock on `<tmp>/batchscore-slurm.lock`, waited for.
fn lock_slurm() -> File {
    let path = std::env::temp_dir().join("batchscore-slurm.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            eprintln!("Slurm: another Slurm runs on this machine; waiting until it stops ({})", path.display());
            file.lock().unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
        }
        Err(std::fs::TryLockError::Error(e)) => panic!("lock {}: {e}", path.display()),
    }
    file
}

/// The short hostname (what slurmd calls its node unless told otherwise).
fn short_hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("read /proc/sys/kernel/hostname");
    let name = name.trim();
    name.split('.').next().filter(|s| !s.is_empty()).unwrap_or("localhost").to_string()
}

/// The node's `CPUs=... Boards=... SocketsPerBoard=... CoresPerSocket=... ThreadsPerCore=...
/// RealMemory=...` from `slurmd -C`, memory at 90 % (a node configured with more memory than it
/// has is drained). Falls back on the CPU count and /proc/meminfo.
fn node_hardware(slurmd: &Path) -> String {
    let out = Command::new(slurmd).arg("-C").env_remove("SLURM_CONF").stdin(Stdio::null()).output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let fields: Vec<(&str, &str)> =
        text.lines().next().unwrap_or("").split_whitespace().filter_map(|kv| kv.split_once('=')).collect();
    let get = |key: &str| fields.iter().find(|(k, _)| *k == key).and_then(|(_, v)| v.parse::<u64>().ok());
    let memory = get("RealMemory").unwrap_or_else(|| {
        let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kib = info
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(1 << 20);
        kib / 1024
    });
    let memory = (memory * 9 / 10).max(1);
    let topology = ["CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore"];
    if topology.iter().all(|k| get(k).is_some()) {
        let parts: Vec<String> = topology.iter().map(|k| format!("{k}={}", get(k).unwrap())).collect();
        format!("{} RealMemory={memory}", parts.join(" "))
    } else {
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        format!("CPUs={cpus} RealMemory={memory}")
    }
}

/// Whether a munged answers on the default socket (`munge -n` encodes an empty credential).
fn munge_answers(munge: &Path) -> bool {
    Command::new(munge)
        .arg("-n")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Creates munge's key (1024 random bytes, owner munge, mode 400) unless it exists.
fn ensure_munge_key() {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let key = Path::new(MUNGE_KEY);
    if key.exists() {
        return;
    }
    let dir = key.parent().expect("the key's folder");
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        chown_munge(dir);
    }
    let mut bytes = vec![0u8; 1024];
    File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .unwrap_or_else(|e| panic!("read /dev/urandom: {e}"));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(key)
        .unwrap_or_else(|e| panic!("create {MUNGE_KEY}: {e}"));
    file.write_all(&bytes).unwrap_or_else(|e| panic!("write {MUNGE_KEY}: {e}"));
    chown_munge(key);
    eprintln!("Slurm: created {MUNGE_KEY}");
}

/// `chown munge:munge path`, when there is a munge user (munged runs as root here either way).
fn chown_munge(path: &Path) {
    let _ = Command::new("chown")
        .arg("munge:munge")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The pid in a pid file, once it holds one of a live process.
fn read_pid(path: &Path) -> Option<u32> {
    let pid = std::fs::read_to_string(path).ok()?.trim().parse().ok()?;
    process_alive(pid).then_some(pid)
}

/// The last `n` lines of a file ("" when it cannot be read).
fn file_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Whether process `pid` exists and is not a zombie (Linux /proc). A daemon's zombie lingers
/// until init reaps it; it counts as gone.
pub fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// `kill -<signal> <pid>`, errors ignored (it may be gone).
fn send_signal(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGTERM, then SIGKILL if still there after [`SLURM_STOP_TIMEOUT`]; waits until it is gone.
fn stop_process(pid: u32) {
    for (signal, wait) in [("TERM", SLURM_STOP_TIMEOUT), ("KILL", Duration::from_secs(10))] {
        if !process_alive(pid) {
            return;
        }
        send_signal(pid, signal);
        let started = Instant::now();
        while process_alive(pid) && started.elapsed() < wait {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    if process_alive(pid) {
        eprintln!("Slurm: pid {pid} survived SIGKILL");
    }
}

/// One process seen in /proc.
struct Proc {
    pid: u32,
    ppid: u32,
    comm: String,
    cmdline: String,
}

fn processes() -> Vec<Proc> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1.to_string();
            let mut fields = rest.split_whitespace();
            if fields.next()? == "Z" {
                return None; // a zombie waiting for init: gone already
            }
            let ppid = fields.next()?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ").trim().to_string();
            Some(Proc { pid, ppid, comm, cmdline })
        })
        .collect()
}

/// Kills (SIGKILL) the Slurm and munge daemons whose command line or environment contains
/// `mark` (a Slurm folder, or the prefix of them all), with everything a slurmstepd among them
/// runs. With `warn_foreign`, also names other Slurm daemons on the machine.
fn kill_leftovers(mark: &str, warn_foreign: bool) {
    const NAMES: [&str; 5] = ["slurmctld", "slurmd", "slurmscriptd", "slurmstepd", "munged"];
    let all = processes();
    let me = std::process::id();
    let ours = |p: &Proc| {
        let environ = std::fs::read(format!("/proc/{}/environ", p.pid)).unwrap_or_default();
        p.cmdline.contains(mark) || String::from_utf8_lossy(&environ).contains(mark)
    };
    let mut doomed: Vec<&Proc> = Vec::new();
    for p in all.iter().filter(|p| NAMES.contains(&p.comm.as_str()) && p.pid != me) {
        if ours(p) {
            doomed.push(p);
        } else if warn_foreign && p.comm != "munged" {
            eprintln!(
                "Slurm: warning: another Slurm daemon runs here (pid {}: {}); if it serves node {}, ours may not work",
                p.pid,
                p.cmdline,
                short_hostname()
            );
        }
    }
    if doomed.is_empty() {
        return;
    }
    // A slurmstepd's descendants: the job's processes.
    let mut pids: Vec<u32> = doomed.iter().map(|p| p.pid).collect();
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        for p in &all {
            if p.ppid == parent && !pids.contains(&p.pid) && p.pid != me {
                pids.push(p.pid);
            }
        }
        i += 1;
    }
    let described: Vec<String> = doomed.iter().map(|p| format!("{} ({})", p.pid, p.cmdline)).collect();
    eprintln!("Slurm: killing leftover processes of {mark}*: {}", described.join(", "));
    for &pid in &pids {
        send_signal(pid, "KILL");
    }
    let started = Instant::now();
    while pids.iter().any(|&pid| process_alive(pid)) && started.elapsed() < SLURM_STOP_TIMEOUT {
        std::thread::sleep(Duration::from_millis(50));
    }
}
