//! What every catalog command shares: where the workspace is, how results print (`-o`,
//! `--query`), and how errors and warnings are shown.

use std::path::PathBuf;

use clap::Args;
use serde::Serialize;

use super::Exit;
use super::output::{Format, render};
use crate::service::ServiceError;
use crate::workspace::Workspace;

/// `--workspace`, `-o/--output` and `--query`, on every catalog command.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// The workspace folder; else BATCHSCORE_WORKSPACE, else the current folder or a parent holding .batchscore/.
    #[arg(long, short = 'w', value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// Output format: table (default), json, yaml or tsv.
    #[arg(long = "output", short = 'o', value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// JMESPath query applied to the result before printing (as az's --query), such as `name` or `[].name`.
    #[arg(long, value_name = "JMESPATH")]
    pub query: Option<String>,
}

impl Common {
    /// Opens the workspace these flags point at.
    pub fn open(&self) -> Result<Workspace, ServiceError> {
        let root = crate::workspace::find(self.workspace.as_deref())?;
        Ok(Workspace::open(&root)?)
    }

    /// Prints `value` as asked (a table shows the kind's [`Listed::COLUMNS`] unless a query
    /// picks others); a bad query exits 2.
    pub fn print<T: Serialize + Listed>(&self, value: &T) -> Exit {
        let json = serde_json::to_value(value).expect("serialisable");
        let columns = (self.output == Format::Table && self.query.is_none() && !T::COLUMNS.is_empty())
            .then(|| if json.is_array() { format!("[].{}", T::COLUMNS) } else { T::COLUMNS.to_string() });
        match render(&json, self.output, self.query.as_deref().or(columns.as_deref())) {
            Ok(text) => {
                print!("{text}");
                Exit::Completed
            }
            Err(e) => {
                eprintln!("error: {e}");
                Exit::CouldNotStart
            }
        }
    }

    /// Prints the result of an operation, or its error (exit 2).
    pub fn show<T: Serialize + Listed>(&self, result: Result<T, ServiceError>) -> Exit {
        match result {
            Ok(v) => self.print(&v),
            Err(e) => fail(&e),
        }
    }
}

/// Shows an error (scrubbed of secrets) and returns exit 2.
pub fn fail(e: &ServiceError) -> Exit {
    eprintln!("error: {}", crate::secrets::scrub(&e.to_string()));
    Exit::CouldNotStart
}

/// Shows warnings on stderr.
pub fn warn(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {}", crate::secrets::scrub(w));
    }
}

/// `--yes` is required for deletes that cannot be undone.
pub fn confirm(yes: bool, what: &str) -> Result<(), ServiceError> {
    if yes {
        Ok(())
    } else {
        Err(ServiceError::invalid(format!("deleting {what}"), "cannot be undone; pass --yes (-y) to confirm"))
    }
}

/// `--set`, `--tag`, `--description` and `--remove` of update commands.
#[derive(Debug, Args, Clone, Default)]
pub struct UpdateArgs {
    /// New description.
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    /// Add or change a tag (key=value); repeatable.
    #[arg(long = "tag", alias = "tags", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// Set a field (key=value): description, tags.KEY; repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Remove a tag (tags.KEY); repeatable.
    #[arg(long, value_name = "tags.KEY")]
    pub remove: Vec<String>,
}

impl UpdateArgs {
    pub fn change(&self) -> Result<crate::service::Change, ServiceError> {
        Ok(crate::service::Change {
            description: self.description.clone(),
            tags: crate::service::yaml::parse_tags(&self.tags)?,
            remove_tags: self.remove.clone(),
            sets: self.set.clone(),
        })
    }
}

/// The columns `-o table` shows for a kind, as a JMESPath multiselect hash (empty: every
/// scalar field).
pub trait Listed {
    const COLUMNS: &'static str;
}

impl<T: Listed> Listed for Vec<T> {
    const COLUMNS: &'static str = T::COLUMNS;
}

impl Listed for serde_json::Value {
    const COLUMNS: &'static str = "";
}

macro_rules! listed {
    ($($t:ty => $cols:expr),* $(,)?) => { $(impl Listed for $t { const COLUMNS: &'static str = $cols; })* };
}

use crate::workspace::assets;

listed! {
    assets::Model => "{Name:name,Version:version,Type:type,Size:size_bytes,Created:created_at,Description:description}",
    assets::Environment => "{Name:name,Version:version,Provider:runtime.execution_provider,Created:created_at,Description:description}",
    assets::Datastore => "{Name:name,Type:type,Url:url,Created:created_at}",
    assets::Data => "{Name:name,Version:version,Type:type,Path:path,Created:created_at}",
    assets::BatchEndpoint => "{Name:name,Default:defaults.deployment_name,ScoringUri:scoring_uri,Created:created_at,Description:description}",
    assets::BatchDeployment => "{Name:name,Endpoint:endpoint_name,Model:join(':',[model.name,model.version]),Environment:join(':',[environment.name,environment.version]),InstanceCount:instance_count,Created:created_at}",
    assets::Job => "{Name:name,Endpoint:endpoint_name,Deployment:deployment_name,Status:status,Created:created_at,Rows:counts.rows_scored,FailedItems:counts.items_failed}",
}
