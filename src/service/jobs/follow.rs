//! Following a job: its progress lines (`job stream`) and its output (`job download`).

use std::path::Path;
use std::time::Duration;

use object_store::ObjectStoreExt;

use super::show;
use crate::service::datastores::{self, StoredFile};
use crate::service::{Result, ServiceError};
use crate::storage::Location;
use crate::workspace::Workspace;
use crate::workspace::assets::Job;

/// Progress lines after `after`, with their sequence numbers.
pub fn events(ws: &Workspace, name: &str, after: i64) -> Result<Vec<(i64, String)>> {
    let mut stmt = ws
        .conn
        .prepare("SELECT seq, line FROM job_events WHERE job = ?1 AND seq > ?2 ORDER BY seq")
        .map_err(|e| ws.sql(e))?;
    let rows = stmt
        .query_map(rusqlite::params![name, after], |r| Ok((r.get(0)?, r.get(1)?)))
        .and_then(|r| r.collect())
        .map_err(|e| ws.sql(e))?;
    Ok(rows)
}

/// Prints a job's progress lines as they come until it ends; returns it.
pub fn stream(ws: &mut Workspace, name: &str, mut print: impl FnMut(&str)) -> Result<Job> {
    let mut after = 0;
    loop {
        for (seq, line) in events(ws, name, after)? {
            print(&line);
            after = seq;
        }
        let job = show(ws, name)?;
        if job.status.is_terminal() {
            for (_, line) in events(ws, name, after)? {
                print(&line);
            }
            return Ok(job);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A job's output folder and its files, relative to it (predictions and logs; never the
/// staging area), in name order.
pub fn output_files(ws: &mut Workspace, name: &str, output: &str) -> Result<(Location, Vec<StoredFile>)> {
    let job = show(ws, name)?;
    let out = job.outputs.get(output).ok_or_else(|| {
        ServiceError::invalid(
            format!("output {output}"),
            format!("job {name} has the outputs: {}", job.outputs.keys().cloned().collect::<Vec<_>>().join(", ")),
        )
    })?;
    let loc = datastores::locate(ws, &out.path)?;
    let (mut files, _) = datastores::files_under(&loc, usize::MAX)?;
    files.retain(|f| !f.path.is_empty() && f.path.split('/').next() != Some("_staging"));
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok((loc, files))
}

/// Copies a job's output (`score`: predictions and logs) into `dir/named-outputs/<output>/`.
pub fn download(ws: &mut Workspace, name: &str, output: &str, dir: &Path) -> Result<Vec<std::path::PathBuf>> {
    let (loc, files) = output_files(ws, name, output)?;
    if files.is_empty() {
        return Err(ServiceError::invalid(
            format!("job {name}"),
            format!("output {output} at {} holds nothing (yet)", loc.display),
        ));
    }
    let to = dir.join("named-outputs").join(output);
    let io = crate::service::io_runtime()?;
    let mut written = Vec::new();
    for f in files {
        let bytes = io
            .block_on(async { loc.store.get(&f.location).await?.bytes().await })
            .map_err(|e| ServiceError::store(&loc, &e))?;
        let file = f.path.split('/').fold(to.clone(), |p, part| p.join(part));
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|source| ServiceError::Io { path: parent.to_path_buf(), source })?;
        }
        std::fs::write(&file, &bytes).map_err(|source| ServiceError::Io { path: file.clone(), source })?;
        written.push(file);
    }
    Ok(written)
}
