//! Storage locations: every input, model and output is reached through `object_store`.
//!
//! A [`Location`] is a store (`Arc<dyn ObjectStore>`) plus a path prefix inside it. Local paths
//! and `file://` URLs become a [`LocalFileSystem`] rooted at `/` with an absolute prefix, so the
//! rest of the engine never touches `std::fs` for data: remote stores only add configuration
//! here. `memory://` gives a process-local in-memory store (tests and benches).

pub mod latency;
use std::sync::{Arc, OnceLock};

use object_store::ObjectStore;
use object_store::ObjectStoreScheme;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, S3CopyIfNotExists};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ClientConfigKey, ClientOptions, RetryConfig};

/// A store and a prefix inside it.
#[derive(Clone)]
pub struct Location {
    pub store: Arc<dyn ObjectStore>,
    /// The prefix (folder) or object (file) inside the store.
    pub path: Path,
    /// What the user wrote, normalised, for messages and reports: never holds credentials
    /// (user:password@ and query strings such as SAS tokens are dropped).
    pub display: String,
    /// A local filesystem path, when the location is one.
    pub local: Option<std::path::PathBuf>,
    /// The kind of store, for messages and reports: `file`, `memory`, `s3`, `azure`, `gcs`, `http`.
    pub kind: &'static str,
    /// Which store this is (`s3://bucket`, `az://container`, `http://host:port`, `file`,
    /// `memory`): two locations with the same root share a namespace.
    pub root: String,
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{url}: not a usable path or URL: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error(
        "{url}: {scheme}:// is not a store batchscore knows; use a local path, file://, s3://, az://, abfs(s)://, \
         gs://, http(s):// or memory://"
    )]
    Unsupported { url: String, scheme: String },
    #[error("{url}: cannot set up the {kind} store: {reason}")]
    Config { url: String, kind: &'static str, reason: String },
    #[error(
        "storage option `{key}` is not a setting of any store (S3, Azure, GCS, HTTP); use object_store's keys such \
         as aws_endpoint, aws_allow_http, aws_region, azure_storage_account_name, azure_storage_use_emulator, \
         google_service_account, or client keys such as timeout, connect_timeout, allow_http"
    )]
    UnknownOption { key: String },
    #[error("storage option number {number} is not key=value; write --storage-option aws_region=eu-west-1")]
    BadOption { number: usize },
}

/// Settings for remote stores from `--storage-option key=value`, on top of the environment
/// variables each store reads (`AWS_*`, `AZURE_STORAGE_*`/`AZURE_*`, `GOOGLE_*`).
///
/// Keys are object_store's configuration keys. A key applies to every store of the job that
/// knows it (input, output and model may be on different stores), so prefer the prefixed
/// forms (`aws_endpoint`, not `endpoint`). Values are secrets as far as batchscore is
/// concerned: `Debug` and the job report show the keys only.
#[derive(Clone, Default)]
pub struct StorageOptions {
    pairs: Vec<(String, String)>,
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.keys()).finish()
    }
}

impl serde::Serialize for StorageOptions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.keys())
    }
}

impl StorageOptions {
    /// Parses `key=value` items; every key must be known to at least one kind of store.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<StorageOptions, StorageError> {
        let mut pairs = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            // Never echo the item: it may be a bare secret.
            let Some((k, v)) = item.as_ref().split_once('=') else {
                return Err(StorageError::BadOption { number: i + 1 });
            };
            let key = k.trim().to_ascii_lowercase();
            let known = key.parse::<AmazonS3ConfigKey>().is_ok()
                || key.parse::<AzureConfigKey>().is_ok()
                || key.parse::<GoogleConfigKey>().is_ok()
                || key.parse::<ClientConfigKey>().is_ok();
            if !known {
                return Err(StorageError::UnknownOption { key });
            }
            pairs.push((key, v.to_string()));
        }
        Ok(StorageOptions { pairs })
    }

    /// The keys given, for reports (values are never shown).
    pub fn keys(&self) -> Vec<String> {
        self.pairs.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The values of the options that are credentials, to keep out of messages.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().filter(|(k, _)| crate::secrets::is_secret_key(k)).map(|(_, v)| v.as_str())
    }

    /// The options whose key parses as `K`, in order.
    fn for_store<K: std::str::FromStr>(&self) -> impl Iterator<Item = (K, &str)> {
        self.pairs.iter().filter_map(|(k, v)| k.parse::<K>().ok().map(|key| (key, v.as_str())))
    }

    fn has<K: std::str::FromStr + PartialEq>(&self, want: &K) -> bool {
        self.for_store::<K>().any(|(k, _)| &k == want)
    }
}

/// The one in-memory store of this process, shared by every `memory://` location.
pub fn memory_store() -> Arc<dyn ObjectStore> {
    static MEM: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    MEM.get_or_init(|| Arc::new(InMemory::new())).clone()
}

fn local_store() -> Arc<dyn ObjectStore> {
    static LOCAL: OnceLock<Arc<dyn ObjectStore>> = OnceLock::new();
    LOCAL.get_or_init(|| Arc::new(LocalFileSystem::new())).clone()
}

type Registry = std::sync::RwLock<Vec<(String, Arc<dyn ObjectStore>)>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Makes `<scheme>://path` URLs resolve to `store` in this process: for programs that embed
/// batchscore with a store of their own (a wrapper adding metrics, caching, or faults in tests).
/// Built-in schemes cannot be replaced.
pub fn register_scheme(scheme: &str, store: Arc<dyn ObjectStore>) {
    let scheme = scheme.to_ascii_lowercase();
    let mut reg = registry().write().unwrap_or_else(|e| e.into_inner());
    reg.retain(|(s, _)| *s != scheme);
    reg.push((scheme, store));
}

fn registered(scheme: &str) -> Option<Arc<dyn ObjectStore>> {
    let reg = registry().read().unwrap_or_else(|e| e.into_inner());
    reg.iter().find(|(s, _)| s == scheme).map(|(_, store)| store.clone())
}

/// Retries of one request to a remote store: object_store retries throttling (429), server
/// errors (5xx), timeouts and dropped connections with exponential backoff (and resumes a
/// download cut off mid-body); client errors such as 403 or 404 are not retried.
fn retry_config() -> RetryConfig {
    RetryConfig { max_retries: 10, retry_timeout: std::time::Duration::from_secs(180), ..RetryConfig::default() }
}

impl Location {
    /// Parses a local path or URL with no storage options (the environment still applies).
    pub fn parse(raw: &str) -> Result<Location, StorageError> {
        Self::open(raw, &StorageOptions::default())
    }

    /// Parses a local path, `file://`, `memory://`, `s3://`, `az://`/`abfs(s)://`/
    /// `https://<account>.blob.core.windows.net/...`, `gs://` or `http(s)://` URL.
    pub fn open(raw: &str, options: &StorageOptions) -> Result<Location, StorageError> {
        let mut loc = Self::open_store(raw, options)?;
        if let Some(ms) = latency::from_environment() {
            loc.store = Arc::new(latency::Delayed::new(loc.store, ms));
        }
        Ok(loc)
    }

    fn open_store(raw: &str, options: &StorageOptions) -> Result<Location, StorageError> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(StorageError::InvalidUrl { url: raw.into(), reason: "empty".into() });
        }
        let Some((scheme, _)) = trimmed.split_once("://") else {
            return Self::local(std::path::Path::new(trimmed), raw);
        };
        let scheme = scheme.to_ascii_lowercase();
        let invalid = |reason: String| StorageError::InvalidUrl { url: redact(trimmed), reason };
        match scheme.as_str() {
            "file" => {
                let url = url::Url::parse(trimmed).map_err(|e| invalid(e.to_string()))?;
                let p = url
                    .to_file_path()
                    .map_err(|()| invalid("not an absolute file:// URL (write file:///abs/path)".into()))?;
                Self::local(&p, raw)
            }
            "memory" => {
                let rest = &trimmed["memory://".len()..];
                let path = Path::parse(rest.trim_matches('/')).map_err(|e| invalid(e.to_string()))?;
                Ok(Location {
                    store: memory_store(),
                    display: format!("memory:///{path}"),
                    path,
                    local: None,
                    kind: "memory",
                    root: "memory".into(),
                })
            }
            "s3" | "s3a" | "az" | "adl" | "azure" | "abfs" | "abfss" | "gs" | "http" | "https" => {
                let url = url::Url::parse(trimmed).map_err(|e| invalid(e.to_string()))?;
                Self::remote(url, options)
            }
            _ => match registered(&scheme) {
                Some(store) => {
                    let rest = &trimmed[scheme.len() + "://".len()..];
                    let path = Path::parse(rest.trim_matches('/')).map_err(|e| invalid(e.to_string()))?;
                    Ok(Location {
                        store,
                        display: format!("{scheme}://{path}"),
                        path,
                        local: None,
                        kind: "registered",
                        root: format!("{scheme}://"),
                    })
                }
                None => Err(StorageError::Unsupported { url: redact(trimmed), scheme }),
            },
        }
    }

    fn remote(url: url::Url, options: &StorageOptions) -> Result<Location, StorageError> {
        let display = redact(url.as_str());
        let (scheme, path) = ObjectStoreScheme::parse(&url)
            .map_err(|e| StorageError::InvalidUrl { url: display.clone(), reason: e.to_string() })?;
        let path = Path::from(path.as_ref().trim_end_matches('/'));
        let config = |kind: &'static str, e: object_store::Error| StorageError::Config {
            url: display.clone(),
            kind,
            reason: e.to_string(),
        };
        // The URL without credentials in it; a query string on an Azure URL is a SAS token.
        let mut bare = url.clone();
        bare.set_query(None);
        let _ = bare.set_password(None);
        let (store, kind): (Arc<dyn ObjectStore>, &'static str) = match scheme {
            ObjectStoreScheme::AmazonS3 => {
                let mut b = AmazonS3Builder::from_env().with_url(bare.as_str()).with_retry(retry_config());
                for (k, v) in options.for_store::<AmazonS3ConfigKey>() {
                    b = b.with_config(k, v);
                }
                if b.get_config_value(&AmazonS3ConfigKey::CopyIfNotExists).is_none() {
                    // Create-only publication of a streamed upload: AWS's conditional
                    // CompleteMultipartUpload (If-None-Match), see commit.rs.
                    b = b.with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
                }
                if endpoint_is_http(b.get_config_value(&AmazonS3ConfigKey::Endpoint))
                    && !options.has(&AmazonS3ConfigKey::Client(ClientConfigKey::AllowHttp))
                {
                    b = b.with_allow_http(true);
                }
                (Arc::new(b.build().map_err(|e| config("S3", e))?), "s3")
            }
            ObjectStoreScheme::MicrosoftAzure => {
                let mut b = MicrosoftAzureBuilder::from_env().with_url(bare.as_str()).with_retry(retry_config());
                if let Some(q) = url.query().filter(|q| !q.is_empty()) {
                    b = b.with_config(AzureConfigKey::SasKey, q);
                }
                for (k, v) in options.for_store::<AzureConfigKey>() {
                    b = b.with_config(k, v);
                }
                if endpoint_is_http(b.get_config_value(&AzureConfigKey::Endpoint))
                    && !options.has(&AzureConfigKey::Client(ClientConfigKey::AllowHttp))
                {
                    b = b.with_allow_http(true);
                }
                (Arc::new(b.build().map_err(|e| config("Azure Blob", e))?), "azure")
            }
            ObjectStoreScheme::GoogleCloudStorage => {
                let mut b = GoogleCloudStorageBuilder::from_env().with_url(bare.as_str()).with_retry(retry_config());
                for (k, v) in options.for_store::<GoogleConfigKey>() {
                    b = b.with_config(k, v);
                }
                (Arc::new(b.build().map_err(|e| config("GCS", e))?), "gcs")
            }
            ObjectStoreScheme::Http => {
                let base = &bare[..url::Position::BeforePath];
                let mut client = ClientOptions::new().with_allow_http(bare.scheme() == "http");
                for (k, v) in options.for_store::<ClientConfigKey>() {
                    client = client.with_config(k, v);
                }
                let b = HttpBuilder::new().with_url(base).with_client_options(client).with_retry(retry_config());
                (Arc::new(b.build().map_err(|e| config("HTTP", e))?), "http")
            }
            other => {
                return Err(StorageError::Unsupported { url: display, scheme: format!("{other:?}").to_lowercase() });
            }
        };
        let root = redact(&bare[..url::Position::BeforePath]);
        Ok(Location { store, path, display: display.trim_end_matches('/').to_string(), local: None, kind, root })
    }

    fn local(p: &std::path::Path, raw: &str) -> Result<Location, StorageError> {
        let abs =
            std::path::absolute(p).map_err(|e| StorageError::InvalidUrl { url: raw.into(), reason: e.to_string() })?;
        let abs = normalize(&abs);
        let path = Path::from_absolute_path(&abs)
            .map_err(|e| StorageError::InvalidUrl { url: raw.into(), reason: e.to_string() })?;
        Ok(Location {
            store: local_store(),
            path,
            display: abs.display().to_string(),
            local: Some(abs),
            kind: "file",
            root: "file".into(),
        })
    }

    /// A location inside this one.
    pub fn join(&self, rel: &str) -> Location {
        let mut path = self.path.clone();
        for part in rel.split('/').filter(|p| !p.is_empty()) {
            path = path.join(part);
        }
        Location {
            store: self.store.clone(),
            path,
            display: format!("{}/{}", self.display.trim_end_matches('/'), rel),
            local: self.local.as_ref().map(|l| l.join(rel)),
            kind: self.kind,
            root: self.root.clone(),
        }
    }

    /// What to do about an error from this store, for messages.
    pub fn hint(&self, e: &object_store::Error) -> &'static str {
        use object_store::Error as E;
        const CREDENTIALS: &str =
            "check the credentials: AWS_*, AZURE_STORAGE_* or GOOGLE_* environment variables, or --storage-option";
        const NOT_FOUND: &str = "check the bucket or container name and the path";
        // object_store leaves most HTTP statuses in a Generic error's message.
        let status = match e {
            E::Generic { .. } => client_error_status(&e.to_string()),
            _ => None,
        };
        match (e, status) {
            (E::PermissionDenied { .. } | E::Unauthenticated { .. }, _) | (_, Some(401 | 403)) => CREDENTIALS,
            (_, Some(404)) => NOT_FOUND,
            _ if self.kind == "http" => {
                "http(s):// inputs are single files: a plain HTTP server cannot list a folder (only a WebDAV server \
                 can), and cannot take an output"
            }
            (E::NotFound { .. }, _) => NOT_FOUND,
            _ => "check the URL, the endpoint and the network; transient errors were already retried",
        }
    }

    /// The path of `child` relative to this location, if it is inside.
    pub fn relative(&self, child: &Path) -> Option<String> {
        let parts: Vec<_> = child.prefix_match(&self.path)?.map(|p| p.as_ref().to_string()).collect();
        Some(parts.join("/"))
    }
}

/// How batchscore retries a store operation on top of the store's own retries.
///
/// object_store's HTTP stores already retry throttling, 5xx, timeouts and dropped connections
/// per request. This outer layer covers what gets past them (a store outage longer than their
/// retry window, a stalled request on a store without client timeouts, errors of embedded
/// stores) for whole operations: list, head, get (until the response starts), put, copy.
/// Only errors that can be transient are retried; not found, permission denied, unauthenticated,
/// already exists, precondition failed and not supported fail at once.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    pub first_backoff: std::time::Duration,
    pub max_backoff: std::time::Duration,
    /// An attempt that has not answered in this time is abandoned and retried.
    pub attempt_timeout: std::time::Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_backoff: std::time::Duration::from_millis(200),
            max_backoff: std::time::Duration::from_secs(5),
            attempt_timeout: std::time::Duration::from_secs(120),
        }
    }
}

static POLICY: std::sync::RwLock<Option<RetryPolicy>> = std::sync::RwLock::new(None);

/// Sets the retry policy of this process (embedding programs, tests).
pub fn set_retry_policy(policy: RetryPolicy) {
    *POLICY.write().unwrap_or_else(|e| e.into_inner()) = Some(policy);
}

pub fn retry_policy() -> RetryPolicy {
    POLICY.read().unwrap_or_else(|e| e.into_inner()).unwrap_or_default()
}

/// Whether an error may go away if the operation is tried again.
///
/// object_store maps few HTTP statuses to error kinds (a 403 on an Azure listing is `Generic`),
/// so a client error status (4xx other than 408 and 429) found in the message is permanent too:
/// the store's own retries have already given up on it, and it would answer the same again.
pub fn is_transient(e: &object_store::Error) -> bool {
    match e {
        object_store::Error::Generic { .. } => client_error_status(&e.to_string()).is_none(),
        object_store::Error::JoinError { .. } => true,
        _ => false,
    }
}

/// A 4xx status (but 408 and 429) in an object_store error message, e.g. "status code: 403".
fn client_error_status(message: &str) -> Option<u16> {
    message.match_indices("status code: ").find_map(|(i, m)| {
        let code: u16 = message.get(i + m.len()..i + m.len() + 3)?.parse().ok()?;
        ((400..500).contains(&code) && code != 408 && code != 429).then_some(code)
    })
}

/// Runs `op` (given the attempt number, from 1) under [`retry_policy`]. `what` names the
/// operation and URL for the log; it must not hold credentials.
pub async fn with_retries<T, F, Fut>(what: &str, mut op: F) -> Result<T, object_store::Error>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = Result<T, object_store::Error>>,
{
    let policy = retry_policy();
    let mut backoff = policy.first_backoff;
    let mut attempt = 1;
    loop {
        let error = match tokio::time::timeout(policy.attempt_timeout, op(attempt)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if !is_transient(&e) => return Err(e),
            Ok(Err(e)) => e,
            Err(_) => object_store::Error::Generic {
                store: "batchscore",
                source: format!("no answer in {:.1} s", policy.attempt_timeout.as_secs_f64()).into(),
            },
        };
        if attempt >= policy.attempts {
            return Err(error);
        }
        tracing::warn!(
            "{what}: {}; retry {attempt} of {} in {:.1} s",
            describe(&error),
            policy.attempts - 1,
            backoff.as_secs_f64()
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(policy.max_backoff);
        attempt += 1;
    }
}

/// A store error for messages: scrubbed of credentials and summarised (a server's body is
/// never echoed whole; see [`crate::secrets`]), with a hint for local disk errors.
pub fn describe(e: &object_store::Error) -> String {
    io_hint(&crate::secrets::summarize(&e.to_string()))
}

/// `message` with what to do about the local disk errors it names (a full disk, no permission,
/// a read-only file system).
pub fn io_hint(message: &str) -> String {
    let m = message.to_ascii_lowercase();
    let hint = if m.contains("no space left") || m.contains("os error 28") || m.contains("quota exceeded") {
        "the disk is full: free some space or choose another --output"
    } else if m.contains("read-only file system") || m.contains("os error 30") {
        "the file system is read-only: choose another --output"
    } else if m.contains("permission denied") || m.contains("os error 13") {
        "permission denied: choose an --output folder you can write to"
    } else {
        return message.to_string();
    };
    format!("{message} ({hint})")
}

/// Reads one whole object, retrying transient errors.
pub async fn get_bytes(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<bytes::Bytes, object_store::Error> {
    use object_store::ObjectStoreExt;
    with_retries(&format!("GET {path}"), |_| async move { store.get(path).await?.bytes().await }).await
}

/// A store whose single-request writes in overwrite mode are retried with [`with_retries`]:
/// such a put can be repeated without harm, so staging uploads (see `commit.rs`) survive
/// transient errors. Create-only puts and copies are retried by their callers, which know how
/// to tell their own earlier success from someone else's object. Parts of a multipart upload
/// are not repeated here (a second `put_part` would be a new part); object_store's HTTP
/// stores retry each part request themselves.
#[derive(Debug)]
pub struct RetryingWrites(pub Arc<dyn ObjectStore>);

impl std::fmt::Display for RetryingWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RetryingWrites({})", self.0)
    }
}

#[async_trait::async_trait]
impl ObjectStore for RetryingWrites {
    async fn put_opts(
        &self,
        location: &Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        if !matches!(opts.mode, object_store::PutMode::Overwrite) {
            return self.0.put_opts(location, payload, opts).await;
        }
        with_retries(&format!("write {location}"), |_| self.0.put_opts(location, payload.clone(), opts.clone())).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        with_retries(&format!("start upload {location}"), |_| self.0.put_multipart_opts(location, opts.clone())).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.0.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
        self.0.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.0.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<object_store::ListResult> {
        self.0.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: object_store::CopyOptions) -> object_store::Result<()> {
        self.0.copy_opts(from, to, options).await
    }
}

/// A URL as it may be shown: no user name or password, no query string (SAS tokens, signed
/// URLs), no fragment.
pub fn redact(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.scheme() != "file" => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.set_query(None);
            u.set_fragment(None);
            u.to_string()
        }
        // Not a URL (or a local one): cut anything that looks like a query.
        _ => raw.split_once('?').map_or(raw, |(a, _)| a).to_string(),
    }
}

fn endpoint_is_http(endpoint: Option<String>) -> bool {
    endpoint.is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("http://"))
}

/// Removes `.` and `..` segments without touching the filesystem (the path may not exist yet).
fn normalize(p: &std::path::Path) -> std::path::PathBuf {
    use std::path::Component;
    let mut out = std::path::PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_local_paths_and_urls() {
        let l = Location::parse("/tmp/a/../b").unwrap();
        assert_eq!(l.path.as_ref(), "tmp/b");
        let f = Location::parse("file:///tmp/x").unwrap();
        assert_eq!(f.path.as_ref(), "tmp/x");
        let m = Location::parse("memory://bucket/p").unwrap();
        assert_eq!(m.path.as_ref(), "bucket/p");
        let err = Location::parse("ftp://host/x").unwrap_err().to_string();
        assert!(err.contains("ftp://host/x") && err.contains("not a store"), "{err}");
    }

    #[test]
    fn parses_remote_urls_without_contacting_them() {
        let s3 = Location::parse("s3://bucket/some/prefix/").unwrap();
        assert_eq!((s3.kind, s3.path.as_ref(), s3.display.as_str()), ("s3", "some/prefix", "s3://bucket/some/prefix"));
        let opts =
            StorageOptions::parse(&["azure_storage_account_name=acct", "azure_storage_access_key=c2VjcmV0"]).unwrap();
        let az = Location::open("az://container/in", &opts).unwrap();
        assert_eq!((az.kind, az.path.as_ref()), ("azure", "in"));
        let sas = Location::open("https://acct.blob.core.windows.net/c/in/x.csv?sv=2024&sig=SECRET", &opts).unwrap();
        assert_eq!((sas.kind, sas.path.as_ref()), ("azure", "in/x.csv"));
        assert!(!sas.display.contains("SECRET") && !format!("{sas:?}").contains("sig="), "{}", sas.display);
        let http = Location::parse("http://127.0.0.1:9/data/a.parquet").unwrap();
        assert_eq!((http.kind, http.path.as_ref()), ("http", "data/a.parquet"));
        let gs = Location::parse("gs://bucket/p").unwrap();
        assert_eq!(gs.kind, "gcs");
    }

    #[test]
    fn storage_options_are_checked_and_never_shown() {
        let o = StorageOptions::parse(&["aws_secret_access_key=TOPSECRET", "timeout=5s"]).unwrap();
        assert_eq!(o.keys(), ["aws_secret_access_key", "timeout"]);
        assert!(!format!("{o:?}").contains("TOPSECRET"));
        let e = StorageOptions::parse(&["aws_secret_acess_key=TOPSECRET"]).unwrap_err().to_string();
        assert!(e.contains("aws_secret_acess_key") && !e.contains("TOPSECRET"), "{e}");
        let e = StorageOptions::parse(&["TOPSECRET"]).unwrap_err().to_string();
        assert!(e.contains("key=value"), "{e}");
        assert_eq!(redact("https://user:pw@host/a?sig=x#f"), "https://host/a");
    }

    #[test]
    fn client_errors_are_permanent() {
        let e = |m: &str| object_store::Error::Generic { store: "t", source: m.to_string().into() };
        assert!(!is_transient(&e("Server returned non-2xx status code: 403 Forbidden: <Error>")));
        assert!(is_transient(&e("Server returned non-2xx status code: 503 Service Unavailable")));
        assert!(is_transient(&e("Server returned non-2xx status code: 429 Too Many Requests")));
        assert!(is_transient(&e("error sending request: connection reset")));
        assert!(!is_transient(&object_store::Error::NotFound { path: "x".into(), source: "gone".into() }));
    }

    #[test]
    fn relative_paths_inside_a_prefix() {
        let root = Location::parse("/data/in").unwrap();
        assert_eq!(root.relative(&Path::from("data/in/a/b.csv")).as_deref(), Some("a/b.csv"));
        assert_eq!(root.relative(&Path::from("data/other.csv")), None);
    }
}
