//! The records the catalog holds, one struct per kind, serialised as the CLI and the REST API
//! show them (Azure's field names where Azure has the field).

use std::collections::BTreeMap;

use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use super::store::{Asset, Tags};
use crate::engine::settings::RawSettings;

/// The [`Asset`] impl of a kind keyed by name and version (`versioned`) or by name (`named`).
macro_rules! asset {
    ($($t:ty => ($table:literal, $kind:literal, $key:ident)),* $(,)?) => {
        $(impl Asset for $t {
            const TABLE: &'static str = $table;
            const KIND: &'static str = $kind;
            fn key(&self) -> (String, String) {
                asset!(@key self, $key)
            }
            fn created_at(&self) -> &str {
                &self.created_at
            }
        })*
    };
    (@key $s:ident, versioned) => { ($s.name.clone(), $s.version.clone()) };
    (@key $s:ident, named) => { ($s.name.clone(), String::new()) };
}

/// A kind whose description and tags are all that `update` may change.
pub trait Described: Asset {
    fn described(&mut self) -> (&mut Option<String>, &mut Tags);
}

macro_rules! described {
    ($($t:ty),*) => { $(impl Described for $t {
        fn described(&mut self) -> (&mut Option<String>, &mut Tags) {
            (&mut self.description, &mut self.tags)
        }
    })* };
}

described!(Model, Environment, Data, BatchEndpoint);

asset! {
    Model => ("models", "model", versioned),
    Environment => ("environments", "environment", versioned),
    Datastore => ("datastores", "datastore", named),
    Data => ("data", "data asset", versioned),
    BatchEndpoint => ("batch_endpoints", "batch endpoint", named),
    Compute => ("computes", "compute", named),
}

/// One input or output of a model, as its ONNX file declares it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TensorSignature {
    pub name: String,
    /// The element type (`float32`, `int64`, ...), or `map`/`sequence` for non-tensors.
    #[serde(rename = "type")]
    pub dtype: String,
    /// Dimensions; a named or unknown dimension is its name or `?`.
    pub shape: Vec<String>,
}

/// A model's ONNX signature.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Signature {
    pub inputs: Vec<TensorSignature>,
    pub outputs: Vec<TensorSignature>,
}

/// A registered model version.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Model {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    pub tags: Tags,
    /// Where its `.onnx` file is stored (a datastore path).
    pub path: String,
    /// The same, as the store URL the engine reads.
    pub url: String,
    /// What it was registered from.
    pub source: String,
    pub signature: Signature,
    pub size_bytes: u64,
    pub sha256: String,
    pub created_at: String,
}

/// The runtime an environment stands for: ONNX Runtime, its execution provider and options.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Runtime {
    /// `cpu` or `cuda`.
    #[serde(default = "cpu")]
    pub execution_provider: String,
    /// The GPU's index for `cuda`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<u32>,
    /// The ONNX Runtime library file; the one batchscore finds by default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnxruntime_library: Option<String>,
    /// Threads inside one model call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intra_op_num_threads: Option<usize>,
    /// `disable_all`, `basic`, `extended` or `all` (ONNX Runtime's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub graph_optimization_level: Option<String>,
}

fn cpu() -> String {
    "cpu".into()
}

/// A registered environment version.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Environment {
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    pub tags: Tags,
    pub runtime: Runtime,
    /// Azure fields read but not used here (image, conda_file, build, ...).
    pub not_used: Vec<String>,
    pub created_at: String,
}

/// A named store location.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Datastore {
    pub id: String,
    pub name: String,
    /// `azure_blob`, `s3`, `gcs`, `local` or `http`.
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    pub tags: Tags,
    /// The store URL its paths are under.
    pub url: String,
    /// Storage options and the environment variables that hold their values (never the values).
    pub credentials_from_env: BTreeMap<String, String>,
    /// Other storage options, not secret (endpoint, region).
    pub options: BTreeMap<String, String>,
    pub not_used: Vec<String>,
    pub created_at: String,
}

/// A registered data asset version.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Data {
    pub id: String,
    pub name: String,
    pub version: String,
    /// `uri_file` or `uri_folder`.
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    pub tags: Tags,
    /// A URL, an absolute local path or `azureml://datastores/<ds>/paths/<p>`.
    pub path: String,
    pub created_at: String,
}

/// `defaults:` of a batch endpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EndpointDefaults {
    pub deployment_name: Option<String>,
}

/// A batch endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchEndpoint {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub tags: Tags,
    pub defaults: EndpointDefaults,
    /// Where `batchscore serve` takes jobs for it.
    pub scoring_uri: String,
    pub auth_mode: String,
    pub not_used: Vec<String>,
    pub created_at: String,
}

/// A compute target: where a deployment's jobs run their processes (`instance_count` of them).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Compute {
    pub id: String,
    pub name: String,
    /// `local` (child processes of the invoking one) or `slurm` (one `sbatch --array`).
    #[serde(rename = "type")]
    pub kind: String,
    pub description: Option<String>,
    /// The Slurm partition jobs are submitted to (`sbatch --partition`); the cluster's default
    /// when absent.
    pub partition: Option<String>,
    /// The most processes one job may run on it.
    pub max_instances: usize,
    pub created_at: String,
}

/// How a job's processes were launched on a compute target, to follow and cancel them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Launch {
    /// The compute target's name.
    pub compute: String,
    /// `local` or `slurm`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The machine that launched them (local processes run there).
    pub host: String,
    /// The local processes, by instance index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pids: Vec<u32>,
    /// The Slurm job id of the array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slurm_job_id: Option<String>,
    /// The folder the processes' logs go to (`worker-<index>.log`).
    pub logs: String,
}

/// A reference to a versioned asset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AssetRef {
    pub name: String,
    pub version: String,
}

/// A batch deployment: a model version, an environment and settings.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BatchDeployment {
    pub id: String,
    pub name: String,
    pub endpoint_name: String,
    pub description: Option<String>,
    pub tags: Tags,
    #[serde(rename = "type")]
    pub kind: String,
    pub model: AssetRef,
    pub environment: AssetRef,
    /// The deployment's settings, as given (unset ones take the defaults at invoke).
    #[schema(value_type = Object)]
    pub settings: RawSettings,
    pub instance_count: usize,
    /// The compute target its jobs run on (`compute: azureml:<name>`); in the invoking process
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute: Option<String>,
    pub not_used: Vec<String>,
    pub notes: Vec<String>,
    pub created_at: String,
}

impl Asset for BatchDeployment {
    const TABLE: &'static str = "batch_deployments";
    const KIND: &'static str = "batch deployment";
    const KEY: (&'static str, &'static str) = ("endpoint", "name");
    fn key(&self) -> (String, String) {
        (self.endpoint_name.clone(), self.name.clone())
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("model_name", self.model.name.clone().into()),
            ("model_version", self.model.version.clone().into()),
            ("environment_name", self.environment.name.clone().into()),
            ("environment_version", self.environment.version.clone().into()),
        ]
    }
    fn created_at(&self) -> &str {
        &self.created_at
    }
}

/// Where a job is, with Azure's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum JobStatus {
    NotStarted,
    Queued,
    Starting,
    Running,
    Finalizing,
    CancelRequested,
    Completed,
    Failed,
    Canceled,
}

impl JobStatus {
    pub fn name(self) -> &'static str {
        match self {
            JobStatus::NotStarted => "NotStarted",
            JobStatus::Queued => "Queued",
            JobStatus::Starting => "Starting",
            JobStatus::Running => "Running",
            JobStatus::Finalizing => "Finalizing",
            JobStatus::CancelRequested => "CancelRequested",
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
            JobStatus::Canceled => "Canceled",
        }
    }

    /// Completed, Failed and Canceled: nothing changes after.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed | JobStatus::Canceled)
    }

    pub fn parse(s: &str) -> Option<JobStatus> {
        serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
    }
}

/// A job's input.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobInput {
    /// `uri_folder` or `uri_file`.
    #[serde(rename = "type")]
    pub kind: String,
    /// As given (`azureml:` reference, datastore path, URL or path).
    pub path: String,
    /// The store URL it resolved to.
    pub url: String,
}

/// The process running a job, for telling a live job from a dead one.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Runner {
    pub pid: u32,
    pub host: String,
}

/// How far a running job is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobProgress {
    pub files_total: u64,
    pub files_done: u64,
    pub mini_batches_total: u64,
    pub mini_batches_done: u64,
    pub rows_scored: u64,
    pub items_failed: u64,
}

/// One of the processes of a job launched on a compute target, as it last wrote.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InstanceState {
    pub pid: u32,
    pub host: String,
    pub heartbeat_at: String,
    /// What it has done itself.
    pub progress: JobProgress,
    /// What the job had done when it joined.
    pub joined_at_progress: JobProgress,
}

/// One invocation of a batch endpoint.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Job {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub endpoint_name: String,
    pub deployment_name: String,
    pub status: JobStatus,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    pub heartbeat_at: Option<String>,
    pub runner: Option<Runner>,
    /// The processes launched on a compute target for it, when it runs on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launch: Option<Launch>,
    /// Its launched processes, by instance index.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub instances: BTreeMap<String, InstanceState>,
    pub inputs: BTreeMap<String, JobInput>,
    /// The `score` output: where predictions and logs go.
    pub outputs: BTreeMap<String, JobInput>,
    pub model: AssetRef,
    pub environment: AssetRef,
    /// The effective settings (the deployment's, overridden by the invoke's).
    #[schema(value_type = Object)]
    pub settings: RawSettings,
    pub instance_count: usize,
    pub progress: Option<JobProgress>,
    /// Counts from the job report, once it ended.
    pub counts: Option<serde_json::Value>,
    pub first_failure: Option<serde_json::Value>,
    pub error: Option<String>,
    /// The job report (`logs/job_result.json`), once written.
    pub log_location: Option<String>,
    pub warnings: Vec<String>,
}

impl Asset for Job {
    const TABLE: &'static str = "jobs";
    const KIND: &'static str = "job";
    fn key(&self) -> (String, String) {
        (self.name.clone(), String::new())
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![
            ("endpoint", self.endpoint_name.clone().into()),
            ("deployment", self.deployment_name.clone().into()),
            ("status", self.status.name().to_string().into()),
        ]
    }
    fn created_at(&self) -> &str {
        &self.created_at
    }
}

/// What a token may do: `read` (GET), `invoke` (and start or cancel jobs), `admin` (everything).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Invoke,
    Admin,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        serde_json::from_value(serde_json::Value::String(s.trim().to_ascii_lowercase())).ok()
    }
}

/// An access token for the REST API. The token itself is shown once, at creation; the catalog
/// keeps its SHA-256 (in its own column, never in the record) and its first characters.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Token {
    pub name: String,
    pub scope: Scope,
    /// The token's first characters, to tell tokens apart (not enough to use one).
    pub prefix: String,
    pub created_at: String,
    /// `None`: it does not expire.
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    /// The SHA-256 of the token, hex; only in the `hash` column.
    #[serde(skip)]
    pub hash: String,
}

impl Asset for Token {
    const TABLE: &'static str = "tokens";
    const KIND: &'static str = "token";
    fn key(&self) -> (String, String) {
        (self.name.clone(), String::new())
    }
    fn columns(&self) -> Vec<(&'static str, Value)> {
        vec![("hash", self.hash.clone().into())]
    }
    fn created_at(&self) -> &str {
        &self.created_at
    }
}
