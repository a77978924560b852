//! Job state in the store: a job's progress as create-only objects in its output's staging
//! area, so that a rerun (resume) or other processes (scale-out) pick up where it left off.
//!
//! ```text
//! <output>/_staging/<job id>/plan.json              what the job scores ([`plan_doc`]), create-only
//! <output>/_staging/<job id>/owners/<process>.json  each process taking part; rewritten as its heartbeat
//! <output>/_staging/<job id>/leases/<mb>/<n>        the n-th lease of mini-batch <mb>: whose it is (create-only)
//! <output>/_staging/<job id>/parts/<mb>.part        a scored mini-batch: its record and rows ([`part`]), create-only
//! <output>/_staging/<job id>/parts/<a>-<b>.part     mini-batches a to b, scored by a process alone, in one object
//! <output>/_staging/<job id>/failed/<mb>-<items>    beside a part with failed items: the job-wide threshold
//! <output>/_staging/<job id>/assembly/<n>         who assembles the output (as a lease)
//! <output>/_staging/<job id>/stop.json              the job was stopped (threshold, Ctrl-C, cancel): why
//! ```
//!
//! Scoring is deterministic, so two processes that score one mini-batch make the same part;
//! parts are create-only, so each mini-batch is in the output exactly once whoever wins. Object
//! names are zero-padded so that listings come back in mini-batch order. One listing of the
//! staging area ([`JobState::view`]) tells a process everything it needs: which mini-batches
//! are done, leased, or failed, who is alive, and whether the job was stopped.

pub mod lease;
pub mod part;
pub mod plan_doc;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::engine::commit::{CommitError, Staging, put_create};
use crate::storage::{Location, with_retries};

/// One job's state in its output's staging area, as one process sees it.
pub struct JobState {
    pub output: Location,
    pub job_id: String,
    /// This process's name among the job's processes: `<host>-<pid>-<random>`.
    pub process: String,
    dir: Location,
}

/// What one listing of a job's staging area shows.
#[derive(Debug, Default, Clone)]
pub struct View {
    pub plan: bool,
    /// The mini-batches that have a part.
    pub parts: BTreeSet<usize>,
    /// The part objects: the first and last mini-batch each holds.
    pub objects: BTreeSet<(usize, usize)>,
    /// Each mini-batch's newest lease number.
    pub leases: BTreeMap<usize, u32>,
    /// When each process last wrote its heartbeat (the store's clock).
    pub owners: HashMap<String, DateTime<Utc>>,
    /// Failed items of each part that has some.
    pub failed: BTreeMap<usize, u64>,
    pub stopped: bool,
    /// The newest assembly lease.
    pub assembly: Option<u32>,
}

impl View {
    /// Failed items over the whole job, as far as this view knows.
    pub fn failed_items(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// Why a job was stopped, as `stop.json` records it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stop {
    pub reason: String,
    pub by: String,
    pub at: String,
}

/// The first and last mini-batch a part object holds, from its file name
/// (`<mb>.part` or `<first>-<last>.part`); `None` for anything else.
pub fn part_range(file_name: &str) -> Option<(usize, usize)> {
    let stem = file_name.strip_suffix(".part")?;
    let (first, last) = stem.split_once('-').unwrap_or((stem, stem));
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first <= last).then_some((first, last))
}

/// A name for this process, unique among a job's processes.
pub fn process_name() -> String {
    let host: String = crate::engine::plan::hostname()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' })
        .take(40)
        .collect();
    format!("{host}-{}-{}", std::process::id(), &uuid::Uuid::new_v4().simple().to_string()[..6])
}

impl JobState {
    pub fn new(output: &Location, job_id: &str, process: &str) -> JobState {
        JobState {
            output: output.clone(),
            job_id: job_id.to_string(),
            process: process.to_string(),
            dir: output.join(&format!("_staging/{job_id}")),
        }
    }

    /// The staging area, for the assembled files and the commit.
    pub fn staging(&self) -> Staging {
        Staging::new(&self.output, &self.job_id)
    }

    fn rel(&self, name: &str) -> String {
        format!("_staging/{}/{name}", self.job_id)
    }

    fn path(&self, name: &str) -> Path {
        self.dir.join(name).path
    }

    /// Lists the staging area once. A missing area is an empty view.
    pub async fn view(&self) -> Result<View, object_store::Error> {
        let store = &self.output.store;
        let listed = with_retries(&format!("list {}", self.dir.display), |_| {
            store.list(Some(&self.dir.path)).try_collect::<Vec<_>>()
        })
        .await;
        let listed = match listed {
            Ok(v) => v,
            Err(object_store::Error::NotFound { .. }) => Vec::new(),
            Err(e) => return Err(e),
        };
        let mut view = View::default();
        let base: Vec<_> = self.dir.path.parts().collect();
        for meta in listed {
            let parts: Vec<_> = meta.location.parts().skip(base.len()).collect();
            let names: Vec<&str> = parts.iter().map(|p| p.as_ref()).collect();
            match names.as_slice() {
                ["plan.json"] => view.plan = true,
                ["stop.json"] => view.stopped = true,
                ["assembly", n] => {
                    if let Ok(n) = n.parse::<u32>() {
                        view.assembly = Some(view.assembly.map_or(n, |m| m.max(n)));
                    }
                }
                ["parts", name] => {
                    if let Some((first, last)) = part_range(name) {
                        view.parts.extend(first..=last);
                        view.objects.insert((first, last));
                    }
                }
                ["leases", mb, n] => {
                    if let (Ok(mb), Ok(n)) = (mb.parse::<usize>(), n.parse::<u32>()) {
                        let newest = view.leases.entry(mb).or_insert(n);
                        *newest = (*newest).max(n);
                    }
                }
                ["owners", name] => {
                    if let Some(p) = name.strip_suffix(".json") {
                        view.owners.insert(p.to_string(), meta.last_modified);
                    }
                }
                ["failed", name] => {
                    if let Some((mb, items)) = name.split_once('-')
                        && let (Ok(mb), Ok(items)) = (mb.parse(), items.parse())
                    {
                        view.failed.insert(mb, items);
                    }
                }
                _ => {}
            }
        }
        Ok(view)
    }

    /// Creates `name` in the staging area, create-only: `Ok(false)` when another process's
    /// object is there already.
    pub async fn create(&self, name: &str, bytes: Bytes) -> Result<bool, CommitError> {
        match put_create(&self.output, &self.rel(name), bytes).await {
            Ok(()) => Ok(true),
            Err(CommitError::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Writes `name`, replacing what is there (this process's heartbeat).
    pub async fn overwrite(&self, name: &str, bytes: Bytes) -> Result<(), object_store::Error> {
        let store = &self.output.store;
        let path = self.path(name);
        with_retries(&format!("write {}", self.dir.join(name).display), |_| {
            store.put(&path, PutPayload::from_bytes(bytes.clone()))
        })
        .await
        .map(|_| ())
    }

    /// Reads `name` from the staging area.
    pub async fn read(&self, name: &str) -> Result<Bytes, object_store::Error> {
        crate::storage::get_bytes(&self.output.store, &self.path(name)).await
    }

    /// Removes `name` (best effort).
    pub async fn remove(&self, name: &str) {
        let store: &dyn ObjectStore = self.output.store.as_ref();
        let path = self.path(name);
        let _ = with_retries("delete staging", |_| store.delete(&path)).await;
    }

    /// Where `name` is, for messages.
    pub fn display(&self, name: &str) -> String {
        self.dir.join(name).display
    }

    pub fn part_name(mb: usize) -> String {
        format!("parts/{mb:08}.part")
    }

    /// The part object of mini-batches `first` to `last`.
    pub fn run_name((first, last): (usize, usize)) -> String {
        if first == last { Self::part_name(first) } else { format!("parts/{first:08}-{last:08}.part") }
    }

    pub fn lease_name(mb: usize, n: u32) -> String {
        format!("leases/{mb:08}/{n:04}")
    }

    pub fn assembly_name(n: u32) -> String {
        format!("assembly/{n:04}")
    }

    pub fn owner_name(process: &str) -> String {
        format!("owners/{process}.json")
    }

    pub fn failed_name(mb: usize, items: u64) -> String {
        format!("failed/{mb:08}-{items}")
    }

    /// Records that the job stopped, create-only: `Ok(true)` when this process was first.
    pub async fn stop(&self, reason: &str) -> Result<bool, CommitError> {
        let stop = Stop { reason: reason.to_string(), by: self.process.clone(), at: Utc::now().to_rfc3339() };
        self.create("stop.json", Bytes::from(serde_json::to_vec_pretty(&stop).expect("serialisable"))).await
    }

    /// The failed items of each part that has some (a listing of `failed/` alone).
    pub async fn failed_items(&self) -> Result<BTreeMap<usize, u64>, object_store::Error> {
        let store = &self.output.store;
        let dir = self.dir.join("failed").path;
        let listed = with_retries("list failed", |_| store.list(Some(&dir)).try_collect::<Vec<_>>()).await?;
        Ok(listed
            .iter()
            .filter_map(|m| {
                let (mb, items) = m.location.filename()?.split_once('-')?;
                Some((mb.parse().ok()?, items.parse().ok()?))
            })
            .collect())
    }

    /// Why the job stopped, when it did.
    pub async fn stop_reason(&self) -> Option<Stop> {
        serde_json::from_slice(&self.read("stop.json").await.ok()?).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names_read_back_as_their_mini_batches() {
        for range in [(0, 0), (7, 7), (3, 41), (99_999_999, 100_000_000)] {
            let name = JobState::run_name(range);
            assert_eq!(part_range(name.strip_prefix("parts/").unwrap()), Some(range), "{name}");
        }
        assert_eq!(JobState::run_name((5, 5)), JobState::part_name(5));
        for other in ["5", "5.part.tmp", "x.part", "9-3.part", "-3.part", "3-.part", "1-2-3.part"] {
            assert_eq!(part_range(other), None, "{other}");
        }
    }
}
