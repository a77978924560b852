//! `batchscore data create|list|show|update`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, warn};
use super::model::version_or_label;
use crate::service::data::{self, DataSpec};
use crate::service::{ServiceError, yaml::parse_tags};
use crate::workspace::assets::Data;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Register a data asset: a file or folder (URL, local path or azureml://datastores/<ds>/paths/<p>).
    Create(Create),
    /// List data assets (every version, or the versions of --name).
    List(super::model::List),
    /// Show a version (or the latest).
    Show(super::model::Show),
    /// Change a version's description or tags.
    Update(super::model::Update),
}

#[derive(Debug, Args)]
pub struct Create {
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    #[arg(long, short = 'v')]
    pub version: Option<String>,
    /// uri_folder (default) or uri_file.
    #[arg(long = "type", short = 't')]
    pub kind: Option<String>,
    #[arg(long, short = 'p')]
    pub path: Option<String>,
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    #[arg(long = "tag", alias = "tags", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// A data YAML in Azure's schema (flags override its fields).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

fn create(a: &Create) -> Result<Data, ServiceError> {
    let mut spec = match &a.file {
        Some(f) => {
            let (spec, not_used) = DataSpec::from_file(f)?;
            warn(&not_used.iter().map(|k| format!("`{k}` in {} is not used here", f.display())).collect::<Vec<_>>());
            spec
        }
        None => DataSpec::default(),
    };
    if let Some(n) = &a.name {
        spec.name = n.clone();
    }
    if let Some(p) = &a.path {
        spec.path = p.clone();
    }
    if spec.name.is_empty() || spec.path.is_empty() {
        return Err(ServiceError::invalid("data create", "give --name and --path, or --file data.yml"));
    }
    spec.version = a.version.clone().or(spec.version);
    spec.kind = a.kind.clone().or(spec.kind);
    spec.description = a.description.clone().or(spec.description);
    spec.tags.extend(parse_tags(&a.tags)?);
    data::create(&mut a.common.open()?, spec)
}

pub fn run(cmd: &DataCommand) -> Exit {
    match cmd {
        DataCommand::Create(a) => a.common.show(create(a)),
        DataCommand::List(a) => {
            a.common.show(a.common.open().and_then(|ws| Ok(ws.list::<Data>(a.name.as_deref(), &[])?)))
        }
        DataCommand::Show(a) => a.common.show((|| {
            let v = version_or_label(&a.version, &a.label)?;
            data::show(&a.common.open()?, &a.name, v.as_deref())
        })()),
        DataCommand::Update(a) => {
            a.common.show((|| data::update(&mut a.common.open()?, &a.name, &a.version, a.change.change()?))())
        }
    }
}
