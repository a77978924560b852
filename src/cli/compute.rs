//! `batchscore compute create|list|show|delete`: where deployments' jobs run their processes.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, Name, fail, warn};
use crate::service::computes::{self, ComputeSpec};
use crate::workspace::assets::Compute;

#[derive(Debug, Subcommand)]
pub enum ComputeCommand {
    /// Register a compute target: `local` (child processes here) or `slurm` (one sbatch --array).
    Create(Create),
    /// List the compute targets.
    List(ListArgs),
    /// Show a compute target.
    Show(Name),
    /// Delete a compute target no deployment runs on.
    Delete(Name),
}

#[derive(Debug, Args)]
pub struct Create {
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// local or slurm.
    #[arg(long = "type", short = 't')]
    pub kind: Option<String>,
    /// A YAML file in Azure's compute schema (name, type, description, max_instances; partition).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    /// The Slurm partition to submit to (default: the cluster's default partition).
    #[arg(long)]
    pub partition: Option<String>,
    /// The most processes one job may run on it (default: local, the cores here; slurm, 1000).
    #[arg(long)]
    pub max_instances: Option<String>,
    #[arg(long)]
    pub description: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub common: Common,
}

pub fn run(cmd: &ComputeCommand) -> Exit {
    match cmd {
        ComputeCommand::Create(a) => a.common.show((|| {
            let spec = ComputeSpec {
                file: a.file.clone(),
                name: a.name.clone(),
                kind: a.kind.clone(),
                description: a.description.clone(),
                partition: a.partition.clone(),
                max_instances: a.max_instances.clone(),
            };
            let (compute, warnings) = computes::from_spec(&spec)?;
            warn(&warnings);
            computes::create(&mut a.common.open()?, compute)
        })()),
        ComputeCommand::List(a) => a.common.show(a.common.open().and_then(|ws| Ok(ws.list::<Compute>(None, &[])?))),
        ComputeCommand::Show(a) => a.common.show(a.common.open().and_then(|ws| Ok(ws.get::<Compute>(&a.name, "")?))),
        ComputeCommand::Delete(a) => match a.common.open().and_then(|mut ws| computes::delete(&mut ws, &a.name)) {
            Ok(()) => {
                eprintln!("deleted compute {}", a.name);
                Exit::Completed
            }
            Err(e) => fail(&e),
        },
    }
}
