//! `batchscore workspace create|show|delete`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, Plain, confirm, fail};
use crate::service::{ServiceError, workspaces};

#[derive(Debug, Subcommand)]
pub enum WorkspaceCommand {
    /// Create a workspace in --workspace (else BATCHSCORE_WORKSPACE, else the current folder).
    Create(Create),
    /// Show the workspace in use.
    Show(Plain),
    /// Delete the workspace: its catalog and the default datastore inside it.
    Delete(Delete),
}

#[derive(Debug, Args)]
pub struct Create {
    #[arg(long, short = 'n', default_value = "batchscore")]
    pub name: String,
    /// An object-store URL for workspaceblobstore (default: a folder inside the workspace).
    #[arg(long, value_name = "URL")]
    pub default_datastore: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct Delete {
    #[arg(long, short = 'y')]
    pub yes: bool,
    #[command(flatten)]
    pub common: Common,
}

pub fn run(cmd: &WorkspaceCommand) -> Exit {
    match cmd {
        WorkspaceCommand::Create(a) => a.common.show((|| {
            let root = a
                .common
                .workspace
                .clone()
                .or_else(|| std::env::var_os(crate::workspace::ENV_VAR).filter(|v| !v.is_empty()).map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("."));
            let ws = workspaces::create(&root, &a.name, a.default_datastore.as_deref())?;
            Ok::<_, ServiceError>(workspaces::describe(&ws))
        })()),
        WorkspaceCommand::Show(a) => a.common.show(a.common.open().map(|ws| workspaces::describe(&ws))),
        WorkspaceCommand::Delete(a) => match (|| {
            confirm(a.yes, "a workspace")?;
            let ws = a.common.open()?;
            let root = ws.root.clone();
            ws.delete()?;
            eprintln!("deleted the workspace at {}", root.display());
            Ok::<_, ServiceError>(())
        })() {
            Ok(()) => Exit::Completed,
            Err(e) => fail(&e),
        },
    }
}
