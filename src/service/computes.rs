//! Compute targets: where a deployment's jobs run their `instance_count` processes. `local`
//! runs them as child processes of the invoking one (or of `batchscore serve`); `slurm` submits
//! them as one `sbatch --array` to a Slurm cluster this machine can submit to. As `az ml compute
//! create`: by flags, or from a YAML file (`name`, `type`, `description`, `max_instances`,
//! `partition`; Azure's other fields such as `size` are reported as not used).

use super::yaml::AssetFile;
use super::{Result, ServiceError};
use crate::workspace::assets::{BatchDeployment, Compute};
use crate::workspace::{CatalogError, Workspace, names, store};

/// The kinds of compute target.
pub const KINDS: &[&str] = &["local", "slurm"];

/// What `compute create` was given (flags over the file's fields).
#[derive(Debug, Clone, Default)]
pub struct ComputeSpec {
    pub file: Option<std::path::PathBuf>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub description: Option<String>,
    pub partition: Option<String>,
    pub max_instances: Option<String>,
}

/// Keys of a compute file read here.
const COMPUTE_KEYS: &[&str] = &["$schema", "name", "type", "description", "max_instances", "partition"];

/// The record `spec` describes, and warnings (file fields not used).
pub fn from_spec(spec: &ComputeSpec) -> Result<(Compute, Vec<String>)> {
    let file = spec.file.as_deref().map(AssetFile::load).transpose()?;
    let field =
        |k: &str| -> Result<Option<String>> { file.as_ref().map(|f| f.text(k)).transpose().map(Option::flatten) };
    let name = spec.name.clone().or(field("name")?);
    let name = name.ok_or_else(|| ServiceError::invalid("name", "missing: give --name or name: in the file"))?;
    names::check("compute", &name)?;
    let mut warnings = Vec::new();
    let mut kind = spec.kind.clone().or(field("type")?).unwrap_or_else(|| "local".into());
    if kind == "amlcompute" {
        // Azure's walkthroughs create one; on this machine it is local processes.
        warnings.push(
            "type amlcompute runs a job's processes here, as local ones; --type slurm submits them to a cluster".into(),
        );
        kind = "local".into();
    }
    if !KINDS.contains(&kind.as_str()) {
        return Err(ServiceError::invalid(
            format!("--type {kind}"),
            "batchscore runs a job's processes on `local` (child processes here) or `slurm` (sbatch --array); \
             Azure's amlcompute clusters are not reachable from here",
        ));
    }
    let partition = spec.partition.clone().or(field("partition")?);
    if partition.is_some() && kind != "slurm" {
        return Err(ServiceError::invalid("--partition", "is a Slurm partition: it applies to --type slurm only"));
    }
    let max = spec.max_instances.clone().or(field("max_instances")?);
    let max_instances = match max {
        None => default_max_instances(&kind),
        Some(m) => m.trim().parse::<usize>().ok().filter(|&n| n >= 1).ok_or_else(|| {
            ServiceError::invalid(format!("--max-instances {m}"), "expected a whole number of processes, 1 or more")
        })?,
    };
    if let Some(f) = &file {
        for k in f.others(COMPUTE_KEYS) {
            warnings.push(format!("`{k}` means nothing to batchscore and is not used"));
        }
    }
    let description = spec.description.clone().or(field("description")?);
    let compute = Compute {
        id: format!("azureml:{name}"),
        name,
        kind,
        description,
        partition,
        max_instances,
        created_at: crate::workspace::now(),
    };
    Ok((compute, warnings))
}

/// A local target runs at most one process per core by default; a Slurm one, as many as asked.
fn default_max_instances(kind: &str) -> usize {
    match kind {
        "local" => std::thread::available_parallelism().map_or(4, |n| n.get()),
        _ => 1000,
    }
}

/// Registers a compute target; a Slurm one needs `sbatch` here.
pub fn create(ws: &mut Workspace, compute: Compute) -> Result<Compute> {
    if compute.kind == "slurm" {
        super::jobs::launch::slurm_ready()?;
    }
    ws.write(|tx| store::insert(tx, &compute))?;
    Ok(compute)
}

/// Removes a compute target no deployment runs on.
pub fn delete(ws: &mut Workspace, name: &str) -> Result<()> {
    ws.write(|tx| {
        let mut rows = tx.prepare("SELECT doc FROM batch_deployments ORDER BY seq").map_err(store::sqlite)?;
        let docs = rows.query_map([], |r| r.get::<_, String>(0)).map_err(store::sqlite)?;
        let deployments: Vec<BatchDeployment> = docs.flatten().filter_map(|d| serde_json::from_str(&d).ok()).collect();
        if let Some(d) = deployments.iter().find(|d| d.compute.as_deref() == Some(name)) {
            return Err(CatalogError::InUse {
                kind: "compute",
                name: name.to_string(),
                by: format!("batch deployment {}/{}", d.endpoint_name, d.name),
                hint: format!(
                    "move it to another compute first (`batch-deployment update --name {} --endpoint-name {} --set \
                     compute=azureml:OTHER`)",
                    d.name, d.endpoint_name
                ),
            });
        }
        if store::delete::<Compute>(tx, name, "")? { Ok(()) } else { Err(CatalogError::not_found("compute", name)) }
    })?;
    Ok(())
}

/// A compute reference's name: `azureml:<name>`, an ARM id ending in `/computes/<name>`, or
/// the name.
pub fn name_of(given: &str) -> &str {
    let name = given.strip_prefix("azureml:").unwrap_or(given);
    name.rsplit('/').next().unwrap_or(name)
}

/// The compute target a deployment's `compute:` names, when the workspace has it.
pub fn find(ws: &Workspace, given: &str) -> Result<Option<Compute>> {
    Ok(ws.find(name_of(given), "")?)
}

/// Checks that `compute` allows `instance_count` processes.
pub fn check(compute: &Compute, instance_count: usize) -> Result<()> {
    if instance_count > compute.max_instances {
        return Err(ServiceError::invalid(
            "resources.instance_count",
            format!(
                "{instance_count} is more than compute {} allows (max_instances {}); lower it or raise the compute's",
                compute.name, compute.max_instances
            ),
        ));
    }
    Ok(())
}

/// What a deployment on a compute target the workspace does not have does instead.
pub fn missing_warning(name: &str) -> String {
    format!(
        "compute {name} is not in this workspace: its jobs run in the invoking process until it is \
         (`batchscore compute create --name {name} --type local|slurm`)"
    )
}
