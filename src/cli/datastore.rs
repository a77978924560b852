//! `batchscore datastore create|list|show|delete`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, Name, fail, warn};
use crate::service::datastores;
use crate::workspace::assets::Datastore;

#[derive(Debug, Subcommand)]
pub enum DatastoreCommand {
    /// Register a datastore from a YAML file in Azure's schema (credentials are never stored).
    Create(Create),
    /// List the datastores.
    List(NameOpt),
    /// Show a datastore.
    Show(Name),
    /// Delete a datastore (not the default one).
    Delete(Name),
}

#[derive(Debug, Args)]
pub struct Create {
    #[arg(long, short = 'f')]
    pub file: PathBuf,
    /// Overrides the name in the file.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(Debug, Args)]
pub struct NameOpt {
    #[command(flatten)]
    pub common: Common,
}

pub fn run(cmd: &DatastoreCommand) -> Exit {
    match cmd {
        DatastoreCommand::Create(a) => a.common.show((|| {
            let (mut ds, warnings) = datastores::from_file(&a.file)?;
            if let Some(n) = &a.name {
                ds.name = n.clone();
                ds.id = format!("azureml:{n}");
            }
            warn(&warnings);
            warn(&ds.not_used.iter().map(|k| format!("`{k}` is not used here")).collect::<Vec<_>>());
            datastores::create(&mut a.common.open()?, ds)
        })()),
        DatastoreCommand::List(a) => a.common.show(a.common.open().and_then(|ws| Ok(ws.list::<Datastore>(None, &[])?))),
        DatastoreCommand::Show(a) => {
            a.common.show(a.common.open().and_then(|ws| Ok(ws.get::<Datastore>(&a.name, "")?)))
        }
        DatastoreCommand::Delete(a) => match a.common.open().and_then(|mut ws| datastores::delete(&mut ws, &a.name)) {
            Ok(()) => Exit::Completed,
            Err(e) => fail(&e),
        },
    }
}
