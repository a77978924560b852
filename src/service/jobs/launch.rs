//! Launching a job's processes on its deployment's compute target, telling whether they still
//! run, and canceling the ones a scheduler has not started.
//!
//! Every process runs the same worker command, `batchscore job worker --name JOB --workspace
//! DIR`, with its index given (`--instance-index`, local) or taken from the scheduler
//! (`SLURM_ARRAY_TASK_ID`): it reads the job's record from the catalog (so no setting and no
//! secret is on a command line or in a script) and joins the job through the output's staging
//! area. A local target starts them as child processes in their own process group (Ctrl-C on
//! the invoking terminal does not reach them: `job cancel` stops them, within a second); a
//! Slurm one submits one `sbatch --array=0-(N-1)` whose environment (`--export=ALL`, Slurm's
//! default) carries the credentials' variables.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::service::{Result, ServiceError};
use crate::workspace::Workspace;
use crate::workspace::assets::{Compute, Job, Launch};

/// The folder a job's process logs go to: `<workspace>/jobs/<job>/`.
pub fn logs_dir(ws: &Workspace, job: &str) -> PathBuf {
    ws.root.join("jobs").join(job)
}

/// Checks that Slurm's `sbatch` runs here.
pub fn slurm_ready() -> Result<()> {
    match Command::new("sbatch").arg("--version").output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(ServiceError::invalid(
            "--type slurm",
            format!("`sbatch --version` failed here: {}", String::from_utf8_lossy(&o.stderr).trim()),
        )),
        Err(e) => Err(ServiceError::invalid(
            "--type slurm",
            format!("Slurm's sbatch cannot run on this machine ({e}); install Slurm's client (or use --type local)"),
        )),
    }
}

/// Starts the job's `count` processes on `compute`; returns how, to record with the job.
pub fn launch(ws: &Workspace, job: &str, compute: &Compute, count: usize) -> Result<Launch> {
    let logs = logs_dir(ws, job);
    std::fs::create_dir_all(&logs).map_err(|source| ServiceError::Io { path: logs.clone(), source })?;
    let exe = std::env::current_exe().map_err(|source| ServiceError::Io { path: "batchscore".into(), source })?;
    let mut launch = Launch {
        compute: compute.name.clone(),
        kind: compute.kind.clone(),
        host: super::run::host_name(),
        logs: logs.display().to_string(),
        ..Default::default()
    };
    match compute.kind.as_str() {
        "local" => launch.pids = start_local(&exe, &ws.root, job, count, &logs)?,
        "slurm" => launch.slurm_job_id = Some(submit_slurm(&exe, &ws.root, job, count, compute, &logs)?),
        other => {
            return Err(ServiceError::invalid(format!("compute {}", compute.name), format!("unknown type {other}")));
        }
    }
    Ok(launch)
}

fn worker_command(exe: &Path, root: &Path, job: &str) -> Command {
    let mut cmd = Command::new(exe);
    cmd.args(["job", "worker", "--name", job, "--workspace"]).arg(root);
    cmd
}

fn start_local(exe: &Path, root: &Path, job: &str, count: usize, logs: &Path) -> Result<Vec<u32>> {
    use std::os::unix::process::CommandExt;
    let mut pids = Vec::with_capacity(count);
    for index in 0..count {
        let path = logs.join(format!("worker-{index}.log"));
        let log = std::fs::File::create(&path).map_err(|source| ServiceError::Io { path: path.clone(), source })?;
        let err = log.try_clone().map_err(|source| ServiceError::Io { path: path.clone(), source })?;
        let mut cmd = worker_command(exe, root, job);
        cmd.args(["--instance-index", &index.to_string()]);
        cmd.stdin(Stdio::null()).stdout(log).stderr(err).process_group(0);
        let mut child = cmd.spawn().map_err(|source| ServiceError::Io { path: exe.to_path_buf(), source })?;
        pids.push(child.id());
        // Reaped when it ends, so that a finished process is not taken for a running one.
        std::thread::spawn(move || child.wait());
    }
    Ok(pids)
}

fn submit_slurm(exe: &Path, root: &Path, job: &str, count: usize, compute: &Compute, logs: &Path) -> Result<String> {
    let mut script = String::from("#!/bin/sh\n");
    script.push_str(&format!("#SBATCH --job-name=batchscore-{job}\n"));
    script.push_str(&format!("#SBATCH --array=0-{}\n", count.saturating_sub(1)));
    script.push_str(&format!("#SBATCH --output={}\n", logs.join("worker-%a.log").display()));
    if let Some(p) = &compute.partition {
        script.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    let root = root.display().to_string();
    script.push_str(&format!(
        "exec {} job worker --name {} --workspace {}\n",
        shell_quote(&exe.display().to_string()),
        shell_quote(job),
        shell_quote(&root)
    ));
    let path = logs.join("submit.sbatch");
    std::fs::write(&path, script).map_err(|source| ServiceError::Io { path: path.clone(), source })?;
    let out =
        Command::new("sbatch").arg("--parsable").arg(&path).output().map_err(|e| {
            ServiceError::invalid(format!("compute {}", compute.name), format!("sbatch cannot run: {e}"))
        })?;
    if !out.status.success() {
        return Err(ServiceError::invalid(
            format!("compute {}", compute.name),
            format!("sbatch refused the job: {}", String::from_utf8_lossy(&out.stderr).trim()),
        ));
    }
    // `--parsable` prints `<id>` or `<id>;<cluster>`.
    let text = String::from_utf8_lossy(&out.stdout);
    let id = text.trim().split(';').next().unwrap_or_default().to_string();
    if id.is_empty() || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ServiceError::invalid(format!("compute {}", compute.name), format!("sbatch printed {text:?}")));
    }
    Ok(id)
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Whether any of a job's launched processes may still run: `None` when this machine cannot
/// tell (local processes of another machine, or Slurm not answering).
pub fn alive(launch: &Launch) -> Option<bool> {
    match launch.kind.as_str() {
        "local" if launch.host == super::run::host_name() => Some(launch.pids.iter().any(|&p| running(p))),
        "slurm" => {
            let id = launch.slurm_job_id.as_deref()?;
            let out = Command::new("squeue").args(["-h", "-j", id, "-o", "%i"]).output().ok()?;
            // squeue refuses a job id it no longer knows: gone.
            let text = String::from_utf8_lossy(&out.stdout);
            Some(out.status.success() && !text.trim().is_empty())
        }
        _ => None,
    }
}

/// A process that exists and is not a zombie.
fn running(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // `pid (comm) state ...`: comm may hold spaces and parentheses; the state follows the last `)`.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).is_some_and(|s| s != "Z")
}

/// Cancels what a scheduler holds for the job and has not started (running processes stop on
/// the catalog's cancel request, publishing the Canceled report).
pub fn cancel_pending(job: &Job) {
    let Some(launch) = &job.launch else { return };
    if let (Some(id), "slurm") = (&launch.slurm_job_id, launch.kind.as_str()) {
        match Command::new("scancel").args(["--state=PENDING", id]).output() {
            Ok(o) if o.status.success() => {}
            Ok(o) => tracing::warn!("scancel {id}: {}", String::from_utf8_lossy(&o.stderr).trim()),
            Err(e) => tracing::warn!("scancel {id} cannot run: {e}"),
        }
    }
}
