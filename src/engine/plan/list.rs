//! Listing the input: which files a job scores, and which it leaves out (and why).
//!
//! Files are sorted by their path relative to `--input`, so mini-batches and the output order
//! are the same on every run and every store. Names starting with `_` or `.` (in any folder)
//! are left out silently, as Spark and Hadoop tools do (`_SUCCESS`, `.crc`), and so is anything
//! under the output folder when it lies inside the input.
//!
//! Everything else that cannot be scored is *skipped*: listed with its reason in the job report,
//! counted and warned about, never a reason to refuse the whole job. That covers files of a
//! type batchscore does not read (`Thumbs.db`, `desktop.ini`, a `labels.txt` next to images),
//! names that object_store cannot represent (invalid UTF-8, control characters), and the files
//! of the minority kind when a folder mixes tabular files and images (a `labels.csv` among
//! photos): one job scores one kind, the one most of the files are.
//!
//! A local folder is walked with the file system's own names, not through object_store's
//! listing, so that a name it cannot represent is seen and reported instead of failing the
//! listing or vanishing from it.

use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::{
    Compression, DataKind, FileKind, IMAGE_EXTENSIONS, InputFile, Listing, PlanError, Skipped, TABULAR_EXTENSIONS,
};
use crate::storage::{Location, with_retries};

/// Why a file of another type is skipped.
fn unsupported_reason() -> String {
    format!("not a file type batchscore reads (tabular: {TABULAR_EXTENSIONS}; images: {})", IMAGE_EXTENSIONS.join(", "))
}

/// Lists, filters and sorts the input files; what cannot be scored is in [`Listing::skipped`].
pub async fn list_inputs(
    input: &Location,
    pattern: Option<&str>,
    exclude: Option<&Location>,
) -> Result<Listing, PlanError> {
    let store_err = |source| PlanError::Store { url: input.display.clone(), hint: input.hint(&source), source };
    // A single file is a dataset of one (Azure ML's uri_file): it must be one we read.
    let is_dir = input.local.as_ref().map(|l| l.is_dir());
    if is_dir != Some(true)
        && let Ok(meta) = with_retries(&format!("head {}", input.display), |_| input.store.head(&input.path)).await
    {
        let rel = meta.location.filename().unwrap_or_default().to_string();
        let kind = FileKind::from_name(&rel).ok_or_else(|| PlanError::Unsupported { file: input.display.clone() })?;
        let compression = Compression::from_name(&rel);
        let version = file_version(&meta);
        let file = InputFile { path: meta.location, rel, size: meta.size, kind, compression, version };
        return Ok(Listing { files: vec![file], skipped: Vec::new() });
    }
    if input.local.as_ref().is_some_and(|l| !l.exists()) {
        return Err(PlanError::InputMissing { input: input.display.clone() });
    }
    let matcher = pattern.map(|p| {
        let glob = globset::GlobBuilder::new(p).literal_separator(false).build().expect("validated in settings");
        glob.compile_matcher()
    });
    let (listed, mut skipped) = match &input.local {
        Some(root) => {
            let root = root.clone();
            tokio::task::spawn_blocking(move || walk_local(&root))
                .await
                .map_err(|e| store_err(object_store::Error::JoinError { source: e }))?
        }
        None => (list_store(input).await.map_err(store_err)?, Vec::new()),
    };
    let mut files = Vec::new();
    for meta in listed {
        if let Some(ex) = exclude
            && ex.root == input.root
            && meta.location.prefix_matches(&ex.path)
        {
            continue;
        }
        let Some(rel) = input.relative(&meta.location) else { continue };
        if rel.split('/').any(|seg| seg.starts_with('_') || seg.starts_with('.')) {
            continue;
        }
        if let Some(m) = &matcher {
            let name = rel.rsplit('/').next().unwrap_or(&rel);
            if !m.is_match(&rel) && !m.is_match(name) {
                continue;
            }
        }
        match FileKind::from_name(&rel) {
            Some(kind) => {
                let compression = Compression::from_name(&rel);
                let version = file_version(&meta);
                files.push(InputFile { path: meta.location, rel, size: meta.size, kind, compression, version });
            }
            None => skipped.push(Skipped { file: rel, reason: unsupported_reason() }),
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    skipped.sort_by(|a, b| a.file.cmp(&b.file));
    if files.is_empty() {
        return Err(PlanError::NoFiles {
            input: input.display.clone(),
            pattern: pattern.map(str::to_string),
            skipped: skipped.len(),
        });
    }
    Ok(Listing { files, skipped })
}

/// A remote listing, as one operation to retry (a listing cut off half way starts again).
/// Entries whose key is not a valid path are left out by object_store's own listing.
async fn list_store(input: &Location) -> Result<Vec<object_store::ObjectMeta>, object_store::Error> {
    with_retries(&format!("list {}", input.display), |_| async {
        let entries: Vec<_> = input.store.list(Some(&input.path)).collect().await;
        let mut metas = Vec::with_capacity(entries.len());
        for e in entries {
            match e {
                Ok(m) => metas.push(m),
                Err(object_store::Error::InvalidPath { source }) => {
                    tracing::warn!("listing {}: an entry with an unusable name was left out: {source}", input.display);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(metas)
    })
    .await
}

/// Walks a local folder (following links), returning the files object_store can reach and the
/// ones it cannot, with the reason. Folders named `_*` or `.*` are not entered.
/// What identifies this version of a file: its ETag, else its modification time.
fn file_version(meta: &object_store::ObjectMeta) -> String {
    meta.e_tag.clone().unwrap_or_else(|| meta.last_modified.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
}

fn walk_local(root: &std::path::Path) -> (Vec<object_store::ObjectMeta>, Vec<Skipped>) {
    let local = object_store::local::LocalFileSystem::new();
    let mut metas = Vec::new();
    let mut skipped = Vec::new();
    let hidden = |e: &walkdir::DirEntry| {
        e.depth() > 0 && e.file_name().as_encoded_bytes().first().is_some_and(|b| *b == b'_' || *b == b'.')
    };
    for entry in walkdir::WalkDir::new(root).follow_links(true).min_depth(1).into_iter().filter_entry(|e| !hidden(e)) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let file = e
                    .path()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map_or_else(|| "(a folder)".to_string(), |p| p.to_string_lossy().into_owned());
                skipped.push(Skipped { file, reason: format!("cannot be listed: {e}") });
                continue;
            }
        };
        if entry.file_type().is_dir() {
            continue;
        }
        let rel_os = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let rel = rel_os.to_string_lossy().into_owned();
        let reason = |why: String| Skipped { file: rel.clone(), reason: why };
        if rel_os.to_str().is_none() {
            skipped
                .push(reason("the name is not valid UTF-8, which object stores cannot hold; rename the file".into()));
            continue;
        }
        if let Some(c) = rel.chars().find(|c| c.is_control()) {
            skipped.push(reason(format!(
                "the name holds the control character {c:?}, which object stores cannot hold reliably; rename the file"
            )));
            continue;
        }
        let location = match Path::from_absolute_path(entry.path()) {
            Ok(p) => p,
            Err(e) => {
                skipped.push(reason(format!("object_store cannot represent the name ({e}); rename the file")));
                continue;
            }
        };
        // The name must lead back to this file (object_store escapes some characters).
        if local.path_to_filesystem(&location).ok().as_deref() != Some(entry.path()) {
            skipped.push(reason("object_store cannot reach a file of this name; rename the file".into()));
            continue;
        }
        match entry.metadata() {
            Ok(m) if m.is_file() => metas.push(object_store::ObjectMeta {
                location,
                last_modified: m.modified().map(Into::into).unwrap_or_default(),
                size: m.len(),
                e_tag: None,
                version: None,
            }),
            Ok(_) => skipped.push(reason("not a regular file".into())),
            Err(e) => skipped.push(reason(format!("cannot be read: {e}"))),
        }
    }
    (metas, skipped)
}

impl Listing {
    /// Keeps one kind of file, the one most files are; the others are skipped. A tie is an
    /// error: which kind the user meant cannot be guessed.
    pub fn one_kind(mut self, input: &Location) -> Result<(DataKind, Listing), PlanError> {
        let tabular: Vec<&InputFile> = self.files.iter().filter(|f| f.kind.data_kind() == DataKind::Tabular).collect();
        let images = self.files.len() - tabular.len();
        let kind = match (tabular.len(), images) {
            (_, 0) => return Ok((DataKind::Tabular, self)),
            (0, _) => return Ok((DataKind::Image, self)),
            (t, i) if t == i => {
                let image = self.files.iter().find(|f| f.kind == FileKind::Image).expect("counted");
                return Err(PlanError::Mixed {
                    input: input.display.clone(),
                    tabular: tabular[0].rel.clone(),
                    image: image.rel.clone(),
                });
            }
            (t, i) if t > i => DataKind::Tabular,
            _ => DataKind::Image,
        };
        let (keep, other): (Vec<InputFile>, Vec<InputFile>) =
            self.files.into_iter().partition(|f| f.kind.data_kind() == kind);
        let (what, others) = match kind {
            DataKind::Tabular => ("tabular files", "an image"),
            DataKind::Image => ("images", "a tabular file"),
        };
        let reason = format!(
            "{others} among {} {what}: one job scores one kind, the one most files are (choose with --pattern)",
            keep.len()
        );
        self.skipped.extend(other.into_iter().map(|f| Skipped { file: f.rel, reason: reason.clone() }));
        self.skipped.sort_by(|a, b| a.file.cmp(&b.file));
        Ok((kind, Listing { files: keep, skipped: self.skipped }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::make_plan;

    fn touch(dir: &std::path::Path, names: &[&str]) {
        for name in names {
            let p = dir.join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x\n1\n").unwrap();
        }
    }

    #[tokio::test]
    async fn lists_sorted_and_batches() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), &["b.csv", "a.csv", "c.csv", "_SUCCESS", ".hidden.csv", "sub/d.csv", "_tmp/e.csv"]);
        let input = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let listing = list_inputs(&input, None, None).await.unwrap();
        let names: Vec<_> = listing.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(names, ["a.csv", "b.csv", "c.csv", "sub/d.csv"]);
        assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
        let plan = make_plan(&input, listing, 3).unwrap();
        assert_eq!(plan.mini_batches, vec![0..3, 3..4]);
        let only = list_inputs(&input, Some("b*"), None).await.unwrap();
        assert_eq!(only.files.len(), 1);
    }

    #[tokio::test]
    async fn strays_are_skipped_with_their_reason() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), &["a.csv", "b.csv.gz", "c.jsonl", "Thumbs.db", "notes.txt", "x.png"]);
        std::fs::write(dir.path().join("tab\there.csv"), "a\n1\n").unwrap();
        std::fs::write(dir.path().join("new\nline.csv"), "a\n1\n").unwrap();
        std::fs::write(dir.path().join(std::ffi::OsStr::from_bytes(b"bad\xffname.csv")), "a\n1\n").unwrap();
        let input = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let (kind, listing) = list_inputs(&input, None, None).await.unwrap().one_kind(&input).unwrap();
        assert_eq!(kind, DataKind::Tabular);
        let names: Vec<_> = listing.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(names, ["a.csv", "b.csv.gz", "c.jsonl"]);
        assert_eq!(listing.files[1].compression, Compression::Gzip);
        let skipped: Vec<(&str, &str)> =
            listing.skipped.iter().map(|s| (s.file.as_str(), s.reason.split(' ').next().unwrap())).collect();
        assert_eq!(
            skipped,
            [
                ("Thumbs.db", "not"),
                ("bad\u{FFFD}name.csv", "the"),
                ("new\nline.csv", "the"),
                ("notes.txt", "not"),
                ("tab\there.csv", "the"),
                ("x.png", "an")
            ],
            "{:?}",
            listing.skipped
        );
    }

    #[tokio::test]
    async fn a_tie_between_kinds_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        touch(dir.path(), &["a.csv", "x.png"]);
        let input = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let e = list_inputs(&input, None, None).await.unwrap().one_kind(&input).unwrap_err().to_string();
        assert!(e.contains("mixes") && e.contains("--pattern"), "{e}");
    }
}
