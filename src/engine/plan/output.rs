//! The output folder before a job: it must be new (or empty), and writable.
//!
//! [`check_output`] refuses an output that holds anything, and says what it holds: the
//! predictions and logs of a finished job, only the logs of a job that Failed (its predictions
//! were never published), or only `_staging/`, the leftovers of a job that was killed before it
//! could clean up (nothing of it was published). [`clean_staging`] removes such leftovers
//! (`--clean-staging`), never those of a job still running on this machine.
//!
//! Every process of a job marks the job's staging area with `_staging/<job id>/owners/<process>.json`
//! (who runs it: host, pid, start time; rewritten as its heartbeat when several processes share
//! the job), written create-only before any scoring: that write is also the probe that finds an
//! output that cannot be written (no permission, a read-only disk, a file in the way, a full
//! disk) while the job can still exit 2 having done no work.
//!
//! A job that may continue another ([`survey_output`]: `--resume`, or one of several processes)
//! accepts an output that holds staging areas and the logs of a job that Failed; which job it
//! continues is settled once its plan is known.

use futures::TryStreamExt;
use object_store::ObjectStoreExt;

use super::PlanError;
use crate::storage::{Location, with_retries};

/// Who takes part in a job: `_staging/<job id>/owners/<process>.json`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StagingOwner {
    pub job_id: String,
    pub host: String,
    pub pid: u32,
    pub started_at: String,
}

impl StagingOwner {
    /// This process, for the job `job_id`.
    pub fn this_process(job_id: &str) -> StagingOwner {
        StagingOwner {
            job_id: job_id.to_string(),
            host: hostname(),
            pid: std::process::id(),
            started_at: chrono::Utc::now().to_rfc3339(),
        }
    }

    /// Whether the owner is still running on this machine: this process (another job of a
    /// program that embeds batchscore), or a batchscore process of that pid.
    pub fn is_running_here(&self) -> bool {
        if self.host != hostname() {
            return false;
        }
        self.pid == std::process::id()
            || std::fs::read(format!("/proc/{}/cmdline", self.pid))
                .is_ok_and(|cmd| String::from_utf8_lossy(&cmd).contains("batchscore"))
    }
}

/// This machine's name (Linux), or `unknown`.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map_or_else(|_| "unknown".into(), |h| h.trim().to_string())
}

/// At most this many objects of an existing output are listed to say what it holds.
const LOOK: usize = 1000;

/// A local output that is a file, or has a file where a folder of its path should be.
fn local_checks(output: &Location) -> Result<(), PlanError> {
    let Some(local) = &output.local else { return Ok(()) };
    if local.is_file() {
        return Err(PlanError::OutputExists { output: output.display.clone(), existing: "a file of that name".into() });
    }
    match file_in_the_way(local) {
        Some(hint) => Err(PlanError::NotWritable { output: output.display.clone(), hint }),
        None => Ok(()),
    }
}

/// Fails if anything exists under the output folder, saying what it is.
pub async fn check_output(output: &Location) -> Result<(), PlanError> {
    local_checks(output)?;
    let rels = list_some(output).await?;
    if rels.is_empty() {
        return Ok(());
    }
    if rels.iter().all(|r| r.starts_with("_staging/")) {
        let jobs = staging_jobs(&rels);
        for job in &jobs {
            if let Some(o) = running_here(output, job).await {
                return Err(PlanError::InUse {
                    output: output.display.clone(),
                    job: format!("job {job} (pid {} on this machine, started {})", o.pid, o.started_at),
                });
            }
        }
        return Err(PlanError::StaleStaging {
            output: output.display.clone(),
            jobs: describe_jobs(output, &jobs).await,
        });
    }
    let has = |name: &str| rels.iter().any(|r| r == name);
    let only_logs = rels.iter().all(|r| r.starts_with("logs/") || r.starts_with("_staging/"));
    if only_logs && has("logs/job_result.json") {
        let report = read_report(output).await;
        if report.as_ref().and_then(|r| r["status"].as_str()) == Some("Failed") {
            let report = report.expect("read above");
            return Err(PlanError::FailedJobLogs {
                output: output.display.clone(),
                job_id: report["job_id"].as_str().unwrap_or("?").to_string(),
                error: report["error"].as_str().map(crate::text::excerpt_line),
            });
        }
    }
    let existing = rels.iter().find(|r| !r.starts_with("_staging/")).unwrap_or(&rels[0]).clone();
    Err(PlanError::OutputExists { output: output.display.clone(), existing })
}

/// What an output holds, for a job that may continue one there (see [`survey_output`]).
#[derive(Debug, Default)]
pub struct Survey {
    /// The jobs with a staging area, by id.
    pub staging_jobs: Vec<String>,
    /// The job report there: its job id, status and plan fingerprint.
    pub report: Option<(String, String, String)>,
    /// Anything else there (predictions, other files): the first such name.
    pub other: Option<String>,
}

/// Looks at the top of the output (and into `_staging/` and `logs/`) without listing every
/// staged object: a big job's staging area holds thousands.
pub async fn survey_output(output: &Location) -> Result<Survey, PlanError> {
    local_checks(output)?;
    let mut survey = Survey::default();
    let top = list_level(output, &output.path).await?;
    if let Some(o) = top.objects.first() {
        survey.other = Some(output.relative(&o.location).unwrap_or_else(|| o.location.to_string()));
    }
    for prefix in &top.common_prefixes {
        match prefix.filename() {
            Some("_staging") => {
                let jobs = list_level(output, prefix).await?;
                survey.staging_jobs =
                    jobs.common_prefixes.iter().filter_map(|p| p.filename().map(str::to_string)).collect();
            }
            Some("logs") => {
                survey.report = read_report(output).await.map(|r| {
                    let field = |k: &str| r[k].as_str().unwrap_or("?").to_string();
                    (field("job_id"), field("status"), field("plan_fingerprint"))
                });
            }
            Some(other) => {
                survey.other.get_or_insert_with(|| format!("{other}/"));
            }
            None => {}
        }
    }
    Ok(survey)
}

async fn list_level(output: &Location, at: &object_store::path::Path) -> Result<object_store::ListResult, PlanError> {
    match with_retries(&format!("list {}", output.display), |_| output.store.list_with_delimiter(Some(at))).await {
        Ok(l) => Ok(l),
        Err(object_store::Error::NotFound { .. }) => Ok(object_store::ListResult {
            common_prefixes: Vec::new(),
            objects: Vec::new(),
            extensions: Default::default(),
        }),
        Err(source) => Err(PlanError::Store { url: output.display.clone(), hint: output.hint(&source), source }),
    }
}

/// Up to [`LOOK`] objects under the output, as paths relative to it.
async fn list_some(output: &Location) -> Result<Vec<String>, PlanError> {
    let listed = with_retries(&format!("list {}", output.display), |_| async {
        let mut stream = output.store.list(Some(&output.path));
        let mut rels = Vec::new();
        while let Some(meta) = stream.try_next().await? {
            rels.push(output.relative(&meta.location).unwrap_or_else(|| meta.location.to_string()));
            if rels.len() >= LOOK {
                break;
            }
        }
        Ok(rels)
    })
    .await;
    match listed {
        Ok(mut rels) => {
            rels.sort();
            Ok(rels)
        }
        // A missing folder is the normal case for a new output.
        Err(object_store::Error::NotFound { .. }) => Ok(Vec::new()),
        Err(source) => Err(PlanError::Store { url: output.display.clone(), hint: output.hint(&source), source }),
    }
}

/// The job ids with a staging area among `rels` (`_staging/<id>/...`).
fn staging_jobs(rels: &[String]) -> Vec<String> {
    let mut jobs: Vec<String> =
        rels.iter().filter_map(|r| r.strip_prefix("_staging/")?.split('/').next().map(str::to_string)).collect();
    // A local folder lists in no particular order.
    jobs.sort();
    jobs.dedup();
    jobs
}

/// The processes a job's staging area names (at most a few are read).
async fn read_owners(output: &Location, job: &str) -> Vec<StagingOwner> {
    let dir = output.join(&format!("_staging/{job}/owners")).path;
    let listed: Vec<object_store::ObjectMeta> =
        with_retries("list owners", |_| output.store.list(Some(&dir)).try_collect()).await.unwrap_or_default();
    let mut owners = Vec::new();
    for meta in listed.iter().rev().take(8) {
        if let Ok(bytes) = crate::storage::get_bytes(&output.store, &meta.location).await
            && let Ok(o) = serde_json::from_slice::<StagingOwner>(&bytes)
        {
            owners.push(o);
        }
    }
    owners
}

/// One of the job's processes that is still running on this machine.
pub async fn running_here(output: &Location, job: &str) -> Option<StagingOwner> {
    read_owners(output, job).await.into_iter().find(StagingOwner::is_running_here)
}

/// Whether every process a job's staging area names ran on this machine and has ended: then
/// nothing of it runs anywhere, and a staging area without a plan holds nothing to keep.
pub async fn ended_here(output: &Location, job: &str) -> bool {
    let owners = read_owners(output, job).await;
    if owners.is_empty() {
        return output.local.is_some() && killed_while_marking(output, job).await;
    }
    owners.iter().all(|o| o.host == hostname() && !o.is_running_here())
}

/// Whether a job's staging area on a local disk holds nothing but owner markers that cannot be
/// read (none, or one cut short): its process was killed while it wrote its marker, the first
/// thing a process writes, so before it planned or scored anything. Not for object stores,
/// where a marker that cannot be read may be a failed request of a job that still runs.
async fn killed_while_marking(output: &Location, job: &str) -> bool {
    let dir = output.join(&format!("_staging/{job}")).path;
    let owners = format!("_staging/{job}/owners/");
    let listed: Result<Vec<object_store::ObjectMeta>, _> =
        with_retries("list staging", |_| output.store.list(Some(&dir)).try_collect()).await;
    listed.is_ok_and(|l| l.iter().all(|m| output.relative(&m.location).is_some_and(|r| r.starts_with(&owners))))
}

/// `job X (started ..., pid N on host H, still running)` for each job.
async fn describe_jobs(output: &Location, jobs: &[String]) -> String {
    let mut out = Vec::new();
    for job in jobs {
        out.push(match read_owners(output, job).await.first() {
            Some(o) => format!("job {job} (started {}, pid {} on {})", o.started_at, o.pid, o.host),
            None => format!("job {job}"),
        });
    }
    out.join("; ")
}

async fn read_report(output: &Location) -> Option<serde_json::Value> {
    let path = output.join("logs/job_result.json").path;
    let bytes = crate::storage::get_bytes(&output.store, &path).await.ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What `--clean-staging` (or `job cleanup`) found and did.
#[derive(Debug, Default)]
pub struct Cleaned {
    /// Staging areas removed (or, for a dry run, that would be), by job id.
    pub removed: Vec<String>,
    /// Staging areas kept because their job still runs (here, or elsewhere by its activity).
    pub running: Vec<String>,
    /// Every staging area there was.
    pub jobs: Vec<StagingJob>,
}

/// One job's staging area.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StagingJob {
    pub job: String,
    pub objects: usize,
    pub bytes: u64,
    /// Scored mini-batches kept (what `--resume` would not score again).
    pub parts: usize,
    /// When anything in it was last written.
    pub last_activity: Option<String>,
    /// `running here` (a live process on this machine), `active` (written within
    /// [`ACTIVE_WITHIN`] by a process of another machine, which may still run it) or `abandoned`.
    pub state: String,
}

/// A staging area written this recently may belong to a job running on another machine: its
/// processes renew their leases every quarter of the lease (60 s by default).
pub const ACTIVE_WITHIN: std::time::Duration = std::time::Duration::from_secs(180);

/// The staging areas under the output, with what each holds and whether its job may run.
async fn staging_areas(
    output: &Location,
) -> Result<(Vec<StagingJob>, Vec<(object_store::ObjectMeta, String)>), PlanError> {
    let store_err = |source| PlanError::Store { url: output.display.clone(), hint: output.hint(&source), source };
    let staging = output.join("_staging");
    let listed: Vec<object_store::ObjectMeta> =
        match with_retries("list staging", |_| output.store.list(Some(&staging.path)).try_collect()).await {
            Ok(v) => v,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(store_err(e)),
        };
    let listed: Vec<(object_store::ObjectMeta, String)> =
        listed.into_iter().filter_map(|m| output.relative(&m.location).map(|r| (m, r))).collect();
    let rels: Vec<String> = listed.iter().map(|(_, r)| r.clone()).collect();
    let mut jobs = Vec::new();
    for job in staging_jobs(&rels) {
        let prefix = format!("_staging/{job}/");
        let mine: Vec<&(object_store::ObjectMeta, String)> =
            listed.iter().filter(|(_, r)| r.starts_with(&prefix)).collect();
        let last = mine.iter().map(|(m, _)| m.last_modified).max();
        let recent = last.is_some_and(|t| (chrono::Utc::now() - t).to_std().map_or(true, |age| age < ACTIVE_WITHIN));
        let owners = read_owners(output, &job).await;
        // A process on this machine is known dead or alive; one elsewhere only by its writes.
        let elsewhere = owners.is_empty() || owners.iter().any(|o| o.host != hostname());
        let state = if owners.iter().any(StagingOwner::is_running_here) {
            "running here"
        } else if recent && elsewhere {
            "active"
        } else {
            "abandoned"
        };
        jobs.push(StagingJob {
            parts: mine
                .iter()
                .filter_map(|(_, r)| r.strip_prefix(&format!("{prefix}parts/")))
                .filter_map(crate::engine::state::part_range)
                .map(|(first, last)| last - first + 1)
                .sum(),
            objects: mine.len(),
            bytes: mine.iter().map(|(m, _)| m.size).sum(),
            last_activity: last.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
            state: state.to_string(),
            job,
        });
    }
    Ok((jobs, listed))
}

/// Removes the staging areas of jobs that are not running (on this machine, or by their
/// recent activity elsewhere); a dry run only says which it would remove.
pub async fn clean_staging(output: &Location, dry_run: bool) -> Result<Cleaned, PlanError> {
    let store_err = |source| PlanError::Store { url: output.display.clone(), hint: output.hint(&source), source };
    let (jobs, listed) = staging_areas(output).await?;
    let mut cleaned = Cleaned::default();
    for j in &jobs {
        if j.state != "abandoned" {
            cleaned.running.push(j.job.clone());
            continue;
        }
        cleaned.removed.push(j.job.clone());
        if dry_run {
            continue;
        }
        let prefix = format!("_staging/{}/", j.job);
        for (meta, rel) in &listed {
            if rel.starts_with(&prefix) {
                match with_retries("delete staging", |_| output.store.delete(&meta.location)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(store_err(e)),
                }
            }
        }
        if let Some(local) = &output.local {
            let _ = std::fs::remove_dir_all(local.join("_staging").join(&j.job));
        }
    }
    if let (Some(local), false) = (&output.local, dry_run) {
        let _ = std::fs::remove_dir(local.join("_staging"));
    }
    cleaned.jobs = jobs;
    Ok(cleaned)
}

/// Writes this process's marker in the job's staging area create-only (`rel`, under the
/// output): the probe that the output can be written.
pub async fn probe_output(output: &Location, rel: &str, json: Vec<u8>) -> Result<(), PlanError> {
    if let Some(local) = &output.local {
        return probe_local(local, &local.join(rel), &json)
            .map_err(|hint| PlanError::NotWritable { output: output.display.clone(), hint });
    }
    crate::engine::commit::put_create(output, rel, bytes::Bytes::from(json)).await.map_err(|e| PlanError::NotWritable {
        output: output.display.clone(),
        hint: format!("{e}; check the credentials and that the bucket or container exists"),
    })
}

/// The probe on a local disk, with std::fs for exact errors; returns what to do on failure.
fn probe_local(root: &std::path::Path, file: &std::path::Path, json: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let dir = file.parent().expect("a staging file has a folder");
    // Name the output folder, or the nearest folder above it that exists when it does not.
    let at = root.ancestors().find(|a| a.exists()).unwrap_or(root);
    let why = |e: std::io::Error| local_hint(&e, at);
    if let Some(hint) = file_in_the_way(dir) {
        return Err(hint);
    }
    std::fs::create_dir_all(dir).map_err(why)?;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(file).map_err(why)?;
    f.write_all(json).and_then(|()| f.sync_all()).map_err(why)
}

/// A file where a folder of `dir`'s path should be (`dir` itself or above it), named.
fn file_in_the_way(dir: &std::path::Path) -> Option<String> {
    let file = dir.ancestors().find(|a| a.is_file())?;
    Some(format!("{} is a file, where the output needs a folder; choose another --output", file.display()))
}

/// A hint for an I/O error writing `at` on a local disk.
pub fn local_hint(e: &std::io::Error, at: &std::path::Path) -> String {
    const ENOSPC: i32 = 28;
    const EROFS: i32 = 30;
    const EDQUOT: i32 = 122;
    match (e.kind(), e.raw_os_error()) {
        (_, Some(ENOSPC | EDQUOT)) => {
            format!(
                "the disk holding {} is full (or over quota); free some space or choose another --output",
                at.display()
            )
        }
        (_, Some(EROFS)) => format!("{} is on a read-only file system; choose another --output", at.display()),
        (std::io::ErrorKind::PermissionDenied, _) => {
            format!("permission denied writing {}; choose an --output folder you can write to", at.display())
        }
        _ => format!("cannot write {}: {e}; choose another --output", at.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn probe(out: &Location, owner: StagingOwner) {
        let rel = format!("_staging/{}/owners/p{}.json", owner.job_id, owner.pid);
        probe_output(out, &rel, serde_json::to_vec(&owner).unwrap()).await.unwrap();
    }

    #[tokio::test]
    async fn says_what_an_existing_output_holds() {
        let dir = tempfile::tempdir().unwrap();
        let out = Location::parse(dir.path().join("out").to_str().unwrap()).unwrap();
        check_output(&out).await.unwrap();
        probe(&out, StagingOwner { pid: 1, host: "elsewhere".into(), ..StagingOwner::this_process("j1") }).await;
        let e = check_output(&out).await.unwrap_err().to_string();
        assert!(e.contains("job j1") && e.contains("--clean-staging") && e.contains("elsewhere"), "{e}");
        // Our own staging area, while we run, is not removed; nor one another machine wrote
        // minutes ago (it may be running there), until it has been quiet for long.
        probe(&out, StagingOwner::this_process("j2")).await;
        let cleaned = clean_staging(&out, false).await.unwrap();
        assert_eq!((cleaned.removed, cleaned.running), (vec![], vec!["j1".to_string(), "j2".to_string()]));
        assert_eq!(cleaned.jobs.iter().map(|j| j.state.as_str()).collect::<Vec<_>>(), ["active", "running here"]);
        let quiet = std::time::SystemTime::now() - ACTIVE_WITHIN * 2;
        let marker = dir.path().join("out/_staging/j1/owners/p1.json");
        std::fs::File::options().write(true).open(&marker).unwrap().set_modified(quiet).unwrap();
        let cleaned = clean_staging(&out, false).await.unwrap();
        assert_eq!((cleaned.removed, cleaned.running), (vec!["j1".to_string()], vec!["j2".to_string()]));
        let e = check_output(&out).await.unwrap_err().to_string();
        assert!(e.contains("is being written by job j2") && e.contains("this machine"), "{e}");
        std::fs::remove_dir_all(dir.path().join("out/_staging")).unwrap();
        check_output(&out).await.unwrap();

        std::fs::create_dir_all(dir.path().join("out/logs")).unwrap();
        std::fs::write(
            dir.path().join("out/logs/job_result.json"),
            r#"{"job_id":"j3","status":"Failed","error":"boom"}"#,
        )
        .unwrap();
        let e = check_output(&out).await.unwrap_err().to_string();
        assert!(e.contains("j3") && e.contains("Failed") && e.contains("boom") && e.contains("never published"), "{e}");
        std::fs::write(dir.path().join("out/predictions.csv"), "x").unwrap();
        let e = check_output(&out).await.unwrap_err().to_string();
        assert!(e.contains("already holds logs/job_result.json"), "{e}");
    }

    #[tokio::test]
    async fn unwritable_outputs_are_found_by_the_probe() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), "x").unwrap();
        let out = Location::parse(dir.path().join("file/out").to_str().unwrap()).unwrap();
        let e = probe_output(&out, "_staging/j/owners/p.json", b"{}".to_vec()).await.unwrap_err().to_string();
        assert!(e.contains("is a file") && e.contains("file"), "{e}");
    }
}
