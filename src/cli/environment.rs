//! `batchscore environment create|list|show|update|delete`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::Exit;
use super::common::{Common, fail, warn};
use super::model::version_or_label;
use crate::service::environments::{self, EnvironmentSpec};
use crate::service::{ServiceError, yaml::parse_tags};

#[derive(Debug, Subcommand)]
pub enum EnvironmentCommand {
    /// Register an environment: the ONNX Runtime, execution provider and session options.
    Create(Create),
    /// List environments (every version, or the versions of --name).
    List(super::model::List),
    /// Show a version (or the latest).
    Show(super::model::Show),
    /// Change a version's description or tags.
    Update(super::model::Update),
    /// Delete a version (refused while a deployment uses it).
    Delete(super::model::Show),
}

#[derive(Debug, Args)]
pub struct Create {
    /// An environment YAML in Azure's schema, with a `runtime:` block (image, conda_file and build are not used).
    #[arg(long, short = 'f')]
    pub file: Option<PathBuf>,
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    #[arg(long, short = 'v')]
    pub version: Option<String>,
    #[arg(long, short = 'd')]
    pub description: Option<String>,
    #[arg(long = "tag", alias = "tags", value_name = "KEY=VALUE")]
    pub tags: Vec<String>,
    /// cpu (default) or cuda.
    #[arg(long)]
    pub execution_provider: Option<String>,
    /// Threads inside one model call.
    #[arg(long)]
    pub intra_op_num_threads: Option<usize>,
    /// disable_all, basic, extended or all.
    #[arg(long)]
    pub graph_optimization_level: Option<String>,
    /// The ONNX Runtime library file (libonnxruntime.so).
    #[arg(long)]
    pub onnxruntime_library: Option<String>,
    #[command(flatten)]
    pub common: Common,
}

fn create(a: &Create) -> Result<crate::workspace::assets::Environment, ServiceError> {
    let mut spec = match &a.file {
        Some(f) => EnvironmentSpec::from_file(f)?,
        None => EnvironmentSpec {
            runtime: crate::workspace::assets::Runtime { execution_provider: "cpu".into(), ..Default::default() },
            ..Default::default()
        },
    };
    if let Some(n) = &a.name {
        spec.name = n.clone();
    }
    if spec.name.is_empty() {
        return Err(ServiceError::invalid("environment create", "give --name, or --file env.yml"));
    }
    spec.version = a.version.clone().or(spec.version);
    spec.description = a.description.clone().or(spec.description);
    spec.tags.extend(parse_tags(&a.tags)?);
    let r = &mut spec.runtime;
    if let Some(p) = &a.execution_provider {
        r.execution_provider = p.clone();
    }
    r.intra_op_num_threads = a.intra_op_num_threads.or(r.intra_op_num_threads);
    r.graph_optimization_level = a.graph_optimization_level.clone().or(r.graph_optimization_level.take());
    r.onnxruntime_library = a.onnxruntime_library.clone().or(r.onnxruntime_library.take());
    warn(
        &spec
            .not_used
            .iter()
            .map(|k| format!("`{k}` is not used here: for ONNX models the environment is the runtime"))
            .collect::<Vec<_>>(),
    );
    environments::create(&mut a.common.open()?, spec)
}

pub fn run(cmd: &EnvironmentCommand) -> Exit {
    use crate::workspace::assets::Environment;
    match cmd {
        EnvironmentCommand::Create(a) => a.common.show(create(a)),
        EnvironmentCommand::List(a) => {
            a.common.show(a.common.open().and_then(|ws| Ok(ws.list::<Environment>(a.name.as_deref(), &[])?)))
        }
        EnvironmentCommand::Show(a) => a.common.show((|| {
            let v = version_or_label(&a.version, &a.label)?;
            environments::show(&a.common.open()?, &a.name, v.as_deref())
        })()),
        EnvironmentCommand::Update(a) => {
            a.common.show((|| environments::update(&mut a.common.open()?, &a.name, &a.version, a.change.change()?))())
        }
        EnvironmentCommand::Delete(a) => match (|| {
            let v = a.version.clone().ok_or_else(|| ServiceError::invalid("environment delete", "give --version"))?;
            environments::delete(&mut a.common.open()?, &a.name, &v)
        })() {
            Ok(()) => Exit::Completed,
            Err(e) => fail(&e),
        },
    }
}
