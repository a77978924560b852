//! `batchscore batch-deployment create|update|show|list|list-jobs|delete` (alias `deployment`).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, confirm, fail, warn};
use crate::service::endpoints::{self, DeploymentSpec};
use crate::service::{ServiceError, jobs};
use crate::workspace::assets::BatchDeployment;

#[derive(Debug, Subcommand)]
pub enum DeploymentCommand {
    /// Create a deployment from a YAML file in Azure's batch deployment schema.
    Create(Write),
    /// Update a deployment from its YAML file and/or --set.
    Update(Write),
    /// Show a deployment.
    Show(Name),
    /// List an endpoint's deployments.
    List(Endpoint),
    /// List a deployment's jobs.
    ListJobs(Name),
    /// Delete a deployment (not the default while others remain).
    Delete(Delete),
}

#[derive(Debug, Args)]
pub struct Write {
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    #[arg(long, short = 'e')]
    pub endpoint_name: Option<String>,
    /// Make it the endpoint's default deployment.
    #[arg(long)]
    pub set_default: bool,
    /// Set a field or setting (key=value, Azure's names: settings.mini_batch_size, description, model); repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Name {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'e')]
    pub endpoint_name: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Endpoint {
    #[arg(long, short = 'e')]
    pub endpoint_name: String,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Delete {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'e')]
    pub endpoint_name: String,
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub common: Common,
}

fn write(a: &Write, update: bool) -> Result<BatchDeployment, ServiceError> {
    let spec = DeploymentSpec {
        file: a.file.clone(),
        doc: None,
        name: a.name.clone(),
        endpoint_name: a.endpoint_name.clone(),
        set_default: a.set_default,
        sets: a.set.clone(),
    };
    let mut ws = a.common.open()?;
    let (dep, warnings) = if update {
        let file_field = |k: &str| -> Result<Option<String>, ServiceError> {
            a.file
                .as_deref()
                .map(crate::service::yaml::AssetFile::load)
                .transpose()?
                .map(|f| f.text(k))
                .transpose()
                .map(Option::flatten)
        };
        let spec = DeploymentSpec {
            name: spec.name.clone().or(file_field("name")?),
            endpoint_name: spec.endpoint_name.clone().or(file_field("endpoint_name")?),
            ..spec
        };
        endpoints::update_deployment(&mut ws, spec)?
    } else {
        endpoints::create_deployment(&mut ws, spec)?
    };
    warn(&warnings);
    Ok(dep)
}

pub fn run(cmd: &DeploymentCommand) -> Exit {
    match cmd {
        DeploymentCommand::Create(a) => a.common.show(write(a, false)),
        DeploymentCommand::Update(a) => a.common.show(write(a, true)),
        DeploymentCommand::Show(a) => {
            a.common.show(a.common.open().and_then(|ws| Ok(ws.get::<BatchDeployment>(&a.endpoint_name, &a.name)?)))
        }
        DeploymentCommand::List(a) => {
            a.common.show(a.common.open().and_then(|ws| Ok(ws.list::<BatchDeployment>(Some(&a.endpoint_name), &[])?)))
        }
        DeploymentCommand::ListJobs(a) => a
            .common
            .show(a.common.open().and_then(|mut ws| jobs::list(&mut ws, Some(&a.endpoint_name), Some(&a.name), None))),
        DeploymentCommand::Delete(a) => match (|| {
            confirm(a.yes, &format!("batch deployment {}/{}", a.endpoint_name, a.name))?;
            endpoints::delete_deployment(&mut a.common.open()?, &a.endpoint_name, &a.name)
        })() {
            Ok(()) => Exit::Completed,
            Err(e) => fail(&e),
        },
    }
}
