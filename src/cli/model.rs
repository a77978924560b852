//! `batchscore model create|list|show|update|download|delete`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, UpdateArgs, fail, warn};
use crate::service::models::{self, ModelSpec};
use crate::service::{ServiceError, yaml::parse_tags};

#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// Register an ONNX model (a file, or an MLflow folder with model.onnx) as the next version of a name.
    Create(Create),
    /// List models (every version, or the versions of --name).
    List(List),
    /// Show a model version (or the latest with --label latest).
    Show(Show),
    /// Change a version's description or tags (nothing else of a version changes).
    Update(Update),
    /// Download a version's ONNX file into --download-path/<name>/.
    Download(Download),
    /// Delete a version (refused while a deployment uses it).
    Delete(Show),
}

#[derive(Debug, Args)]
pub struct Create {
    /// Name of the model.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// The .onnx file or the folder holding it, local or a URL.
    #[arg(long, short = 'p')]
    pub path: Option<String>,
    /// Version; the next number when left out.
    #[arg(long, short = 'v')]
    pub version: Option<String>,
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    /// A tag (key=value); repeatable.
    #[arg(long = "tag", alias = "tags", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// custom_model (default) or mlflow_model.
    #[arg(long = "type", short = 't')]
    pub kind: Option<String>,
    /// A model YAML in Azure's schema (flags override its fields).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct List {
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Show {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'v')]
    pub version: Option<String>,
    /// `latest`: the last version registered.
    #[arg(long, short = 'l')]
    pub label: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Update {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'v')]
    pub version: String,
    #[command(flatten)]
    pub change: UpdateArgs,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Download {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'v')]
    pub version: String,
    /// Folder to download into (default: the current folder).
    #[arg(long, short = 'p', default_value = ".")]
    pub download_path: PathBuf,
    #[command(flatten)]
    pub common: Common,
}

/// A version from `--version` or `--label latest`.
pub(super) fn version_or_label(
    version: &Option<String>,
    label: &Option<String>,
) -> Result<Option<String>, ServiceError> {
    match (version, label.as_deref()) {
        (Some(_), Some(_)) => Err(ServiceError::invalid("--version and --label", "give one of them")),
        (Some(v), None) => Ok(Some(v.clone())),
        (None, Some("latest")) | (None, None) => Ok(None),
        (None, Some(other)) => Err(ServiceError::invalid(format!("--label {other}"), "the only label is latest")),
    }
}

fn create(a: &Create) -> Result<crate::workspace::assets::Model, ServiceError> {
    let mut spec = match &a.file {
        Some(f) => {
            let (spec, not_used) = ModelSpec::from_file(f)?;
            warn(&not_used.iter().map(|k| format!("`{k}` in {} is not used here", f.display())).collect::<Vec<_>>());
            spec
        }
        None => ModelSpec::default(),
    };
    if let Some(n) = &a.name {
        spec.name = n.clone();
    }
    if let Some(p) = &a.path {
        spec.path = p.clone();
    }
    if spec.name.is_empty() || spec.path.is_empty() {
        return Err(ServiceError::invalid("model create", "give --name and --path, or --file model.yml"));
    }
    spec.version = a.version.clone().or(spec.version);
    spec.description = a.description.clone().or(spec.description);
    spec.tags.extend(parse_tags(&a.tags)?);
    spec.kind = a.kind.clone().or(spec.kind);
    let mut ws = a.common.open()?;
    models::create(&mut ws, spec)
}

pub fn run(cmd: &ModelCommand) -> Exit {
    match cmd {
        ModelCommand::Create(a) => a.common.show(create(a)),
        ModelCommand::List(a) => a.common.show(a.common.open().and_then(|ws| models::list(&ws, a.name.as_deref()))),
        ModelCommand::Show(a) => a.common.show((|| {
            let v = version_or_label(&a.version, &a.label)?;
            models::show(&a.common.open()?, &a.name, v.as_deref())
        })()),
        ModelCommand::Update(a) => {
            a.common.show((|| models::update(&mut a.common.open()?, &a.name, &a.version, a.change.change()?))())
        }
        ModelCommand::Download(a) => {
            match a.common.open().and_then(|ws| models::download(&ws, &a.name, &a.version, &a.download_path)) {
                Ok(file) => {
                    eprintln!("downloaded {}", file.display());
                    Exit::Completed
                }
                Err(e) => fail(&e),
            }
        }
        ModelCommand::Delete(a) => match (|| {
            let v = a.version.clone().ok_or_else(|| ServiceError::invalid("model delete", "give --version"))?;
            models::delete(&mut a.common.open()?, &a.name, &v)
        })() {
            Ok(()) => Exit::Completed,
            Err(e) => fail(&e),
        },
    }
}
