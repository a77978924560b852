//! Planning: check the output path, list and sort the input files, cut them into mini-batches.
//!
//! Everything here happens before any scoring, so that a job that cannot succeed (output
//! already there, no inputs, an unsupported file) exits 2 without having done work.
//!
//! Listing rules: files are sorted by their path relative to `--input`, so mini-batches and the
//! output order are the same on every run and every store. Names starting with `_` or `.` (in
//! any folder) are skipped, as Spark and Hadoop tools do (`_SUCCESS`, `.crc`), and so is
//! anything under the output folder when it lies inside the input.
//!
//! Mini-batches are made of [`Item`]s: whole files, or pieces of large tabular files when the
//! target is rows or bytes ([`MiniBatchTarget`]). With the default count of files, every item is
//! a whole file and a mini-batch is `mini_batch_size` consecutive files. With rows or bytes,
//! files are grouped whole until the target is reached, and a file larger than the target is cut
//! into pieces ([`crate::split`]): Parquet by row groups (its footer is read here), CSV by byte
//! ranges cut at record boundaries when it is read. Items stay in (file, row) order, so the
//! output does too.

use std::ops::Range;

use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::settings::MiniBatchTarget;
use crate::split::{CsvSample, read_footer, sample_csv};
use crate::storage::{Location, with_retries};

/// What a file holds, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    Csv,
    Parquet,
    Image,
}

/// Tabular or image inputs: one job scores one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataKind {
    Tabular,
    Image,
}

/// Image file extensions the `image` crate decodes with the features built here.
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp", "ico", "pnm", "pbm", "pgm", "ppm", "tga", "qoi", "hdr",
    "exr", "ff", "dds",
];

impl FileKind {
    pub fn from_name(name: &str) -> Option<FileKind> {
        let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(FileKind::Csv),
            "parquet" | "pq" => Some(FileKind::Parquet),
            e if IMAGE_EXTENSIONS.contains(&e) => Some(FileKind::Image),
            _ => None,
        }
    }

    pub fn data_kind(self) -> DataKind {
        match self {
            FileKind::Csv | FileKind::Parquet => DataKind::Tabular,
            FileKind::Image => DataKind::Image,
        }
    }
}

/// One input file.
#[derive(Debug, Clone)]
pub struct InputFile {
    /// Full path in the store.
    pub path: Path,
    /// Path relative to `--input`: what the output's `file` column holds.
    pub rel: String,
    pub size: u64,
    pub kind: FileKind,
}

/// One unit of work of a mini-batch: a whole file, or a piece of one.
#[derive(Debug, Clone)]
pub struct Item {
    /// Index into [`Plan::files`].
    pub file: usize,
    pub part: Part,
}

/// Which part of its file an [`Item`] is.
#[derive(Debug, Clone)]
pub enum Part {
    Whole,
    /// Row groups `groups` of a Parquet file, which hold rows `rows` of the file.
    RowGroups {
        groups: Range<usize>,
        rows: Range<u64>,
        /// The file's footer, read at plan time: the reader fetches the groups' column chunks
        /// from it and the worker decodes with it.
        footer: parquet::arrow::arrow_reader::ArrowReaderMetadata,
    },
    /// The records of a CSV file that start in byte range `bytes`; piece `piece` of the file's
    /// pieces, which the reader cuts while streaming the file once.
    CsvRecords {
        piece: usize,
        bytes: Range<u64>,
        /// The rows, when the plan counted them (a file small enough to be read whole at plan time).
        rows: Option<Range<u64>>,
    },
}

impl Part {
    /// The piece, as `mini_batches.csv` and `failures.jsonl` name it: `rows 0-24999`,
    /// `bytes 0-67108863` (inclusive ends); `None` for a whole file.
    pub fn describe(&self) -> Option<String> {
        match self {
            Part::Whole => None,
            Part::RowGroups { rows, .. } => Some(inclusive("rows", rows)),
            Part::CsvRecords { bytes, .. } => Some(inclusive("bytes", bytes)),
        }
    }

    /// The rows of the piece, when known before reading it.
    pub fn rows(&self) -> Option<Range<u64>> {
        match self {
            Part::Whole => None,
            Part::RowGroups { rows, .. } => Some(rows.clone()),
            Part::CsvRecords { rows, .. } => rows.clone(),
        }
    }
}

/// `unit a-b` with an inclusive end, as people write ranges.
fn inclusive(unit: &str, r: &Range<u64>) -> String {
    if r.is_empty() {
        format!("{unit} {}-{} (none)", r.start, r.start)
    } else {
        format!("{unit} {}-{}", r.start, r.end - 1)
    }
}

/// The planned job: sorted files, the items they are cut into, and mini-batches of items.
#[derive(Debug, Clone)]
pub struct Plan {
    pub files: Vec<InputFile>,
    /// In (file, row) order; one per file unless large tabular files were split.
    pub items: Vec<Item>,
    /// Each mini-batch is a range of `items`.
    pub mini_batches: Vec<Range<usize>>,
    pub kind: DataKind,
    pub total_bytes: u64,
}

impl Plan {
    /// The file an item belongs to.
    pub fn file_of(&self, item: usize) -> &InputFile {
        &self.files[self.items[item].file]
    }

    /// An item as logs name it: the file's path relative to `--input`, with the piece in
    /// brackets for a piece (`big.parquet[rows 0-24999]`, `big.csv[bytes 0-67108863]`).
    pub fn label(&self, item: usize) -> String {
        let rel = &self.file_of(item).rel;
        match self.items[item].part.describe() {
            None => rel.clone(),
            Some(piece) => format!("{rel}[{piece}]"),
        }
    }

    /// A mini-batch's items, as `mini_batches.csv` lists them: labels joined by `;`.
    pub fn mini_batch_label(&self, id: usize) -> String {
        self.mini_batches[id].clone().map(|i| self.label(i)).collect::<Vec<_>>().join(";")
    }

    /// How many items each file was cut into.
    pub fn items_per_file(&self) -> Vec<usize> {
        let mut n = vec![0; self.files.len()];
        for it in &self.items {
            n[it.file] += 1;
        }
        n
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error(
        "output {output} already holds {existing}: a job never writes into an existing output. \
         Choose a new --output folder (or delete this one if you mean to)"
    )]
    OutputExists { output: String, existing: String },
    #[error("input {input} does not exist: check --input")]
    InputMissing { input: String },
    #[error("no input files under {input}{}: check --input and --pattern", pattern.as_ref().map(|p| format!(" match --pattern {p:?}")).unwrap_or_default())]
    NoFiles { input: String, pattern: Option<String> },
    #[error(
        "input file {file} has an unsupported type: batchscore reads .csv, .parquet and images ({}). \
         Use --pattern to select the files to score, e.g. --pattern '*.csv'",
        IMAGE_EXTENSIONS.join(", ")
    )]
    Unsupported { file: String },
    #[error(
        "input {input} mixes tabular files ({tabular}) and images ({image}); one job scores one kind. \
         Use --pattern to select one, e.g. --pattern '*.png'"
    )]
    Mixed { input: String, tabular: String, image: String },
    #[error(
        "{setting} splits tabular files into mini-batches of rows or bytes, but the inputs under {input} are \
         images: give --mini-batch-size as a number of images per mini-batch, e.g. --mini-batch-size 32"
    )]
    SplitImages { setting: String, input: String },
    #[error("cannot list {url}: {source}; {hint}")]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
        hint: &'static str,
    },
}

/// Fails if anything exists under the output folder.
pub async fn check_output(output: &Location) -> Result<(), PlanError> {
    if let Some(local) = &output.local
        && local.is_file()
    {
        return Err(PlanError::OutputExists { output: output.display.clone(), existing: "a file of that name".into() });
    }
    let first = with_retries(&format!("list {}", output.display), |_| async {
        output.store.list(Some(&output.path)).try_next().await
    })
    .await;
    match first {
        Ok(Some(meta)) => Err(PlanError::OutputExists {
            output: output.display.clone(),
            existing: output.relative(&meta.location).unwrap_or_else(|| meta.location.to_string()),
        }),
        Ok(None) => Ok(()),
        // A missing folder is the normal case for a new output.
        Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(source) => Err(PlanError::Store { url: output.display.clone(), hint: output.hint(&source), source }),
    }
}

/// Lists, filters and sorts the input files.
pub async fn list_inputs(
    input: &Location,
    pattern: Option<&str>,
    exclude: Option<&Location>,
) -> Result<Vec<InputFile>, PlanError> {
    let store_err = |source| PlanError::Store { url: input.display.clone(), hint: input.hint(&source), source };
    // A single file is a dataset of one (Azure ML's uri_file).
    let is_dir = input.local.as_ref().map(|l| l.is_dir());
    if is_dir != Some(true)
        && let Ok(meta) = with_retries(&format!("head {}", input.display), |_| input.store.head(&input.path)).await
    {
        let rel = meta.location.filename().unwrap_or_default().to_string();
        let kind = FileKind::from_name(&rel).ok_or_else(|| PlanError::Unsupported { file: input.display.clone() })?;
        return Ok(vec![InputFile { path: meta.location, rel, size: meta.size, kind }]);
    }
    if input.local.as_ref().is_some_and(|l| !l.exists()) {
        return Err(PlanError::InputMissing { input: input.display.clone() });
    }
    let matcher = pattern.map(|p| {
        let glob = globset::GlobBuilder::new(p).literal_separator(false).build().expect("validated in settings");
        glob.compile_matcher()
    });
    let mut files = Vec::new();
    // The whole listing is one operation to retry: a listing cut off half way starts again.
    let listed: Vec<object_store::ObjectMeta> =
        with_retries(&format!("list {}", input.display), |_| input.store.list(Some(&input.path)).try_collect())
            .await
            .map_err(store_err)?;
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
        let kind = FileKind::from_name(&rel).ok_or_else(|| PlanError::Unsupported {
            file: format!("{}/{}", input.display.trim_end_matches('/'), rel),
        })?;
        files.push(InputFile { path: meta.location, rel, size: meta.size, kind });
    }
    if files.is_empty() {
        return Err(PlanError::NoFiles { input: input.display.clone(), pattern: pattern.map(str::to_string) });
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

/// Plans the job for `target`: mini-batches of files ([`make_plan`]), or of rows or bytes, with
/// large tabular files cut into pieces ([`make_split_plan`]).
pub async fn plan_job(input: &Location, files: Vec<InputFile>, target: MiniBatchTarget) -> Result<Plan, PlanError> {
    match target {
        MiniBatchTarget::Files(n) => make_plan(input, files, n),
        _ => make_split_plan(input, files, target).await,
    }
}

/// Cuts sorted files into mini-batches of `mini_batch_size` files.
pub fn make_plan(input: &Location, files: Vec<InputFile>, mini_batch_size: usize) -> Result<Plan, PlanError> {
    let kind = data_kind(input, &files)?;
    let n = files.len();
    let mini_batches = (0..n).step_by(mini_batch_size).map(|s| s..(s + mini_batch_size).min(n)).collect();
    let total_bytes = files.iter().map(|f| f.size).sum();
    let items = (0..n).map(|file| Item { file, part: Part::Whole }).collect();
    Ok(Plan { files, items, mini_batches, kind, total_bytes })
}

/// How much of a CSV file's head is read at plan time to count or estimate its rows.
const CSV_SAMPLE_BYTES: u64 = 64 * 1024;
/// Plan-time requests (footers, samples) in flight at once.
const PROBE_CONCURRENCY: usize = 16;

/// What the plan learnt about one file before cutting it.
enum Probe {
    /// Not read: small enough to go whole, or its footer or head could not be read.
    None,
    Footer(parquet::arrow::arrow_reader::ArrowReaderMetadata),
    Sample(CsvSample),
}

/// Plans mini-batches of about `target` rows or bytes (tabular inputs only).
///
/// What is read at plan time: with a size target, the footer of each Parquet file larger than
/// it (CSV files are cut by bytes unread). With a row target, the first Parquet file's footer
/// and the first CSV file's head give each format an average row width; the files that by it
/// may hold more rows than the target are probed (the footer, or a CSV's first 64 KiB: exact
/// for a file that small, its row width otherwise), and the rows of the others are estimated.
/// A file that cannot be probed is planned whole: reading it later fails it as an item, with
/// its reason, as for any file.
pub async fn make_split_plan(
    input: &Location,
    files: Vec<InputFile>,
    target: MiniBatchTarget,
) -> Result<Plan, PlanError> {
    let kind = data_kind(input, &files)?;
    let (rows_mode, goal) = match target {
        MiniBatchTarget::Rows(n) => (true, n),
        MiniBatchTarget::Bytes(b) => (false, b),
        MiniBatchTarget::Files(n) => return make_plan(input, files, n),
    };
    if kind == DataKind::Image {
        let setting = format!("--{}", target.describe().replace('_', "-"));
        return Err(PlanError::SplitImages { setting, input: input.display.clone() });
    }
    let store = input.store.clone();
    let probe = |i: usize| {
        let f = &files[i];
        let (store, path, size, kind) = (store.clone(), f.path.clone(), f.size, f.kind);
        async move {
            let got = match kind {
                FileKind::Parquet => read_footer(&store, &path, size).await.map(Probe::Footer),
                _ => sample_csv(&store, &path, size, CSV_SAMPLE_BYTES).await.map(Probe::Sample),
            };
            (i, got)
        }
    };
    let run_probes = |wanted: Vec<usize>| {
        futures::stream::iter(wanted.into_iter().map(probe)).buffered(PROBE_CONCURRENCY).collect::<Vec<_>>()
    };
    let keep = |results: Vec<(usize, Result<Probe, String>)>, probes: &mut Vec<Probe>| {
        for (i, got) in results {
            match got {
                Ok(p) => probes[i] = p,
                Err(e) => tracing::warn!("{}: {e}; it is planned whole, not split", files[i].rel),
            }
        }
    };
    let mut probes: Vec<Probe> = (0..files.len()).map(|_| Probe::None).collect();

    // Bytes per row of each format, from its first (non-empty) file (row targets).
    let slot = |k: FileKind| usize::from(k == FileKind::Parquet);
    let mut width = [None::<f64>, None::<f64>];
    // ... and the bytes before the first row (a CSV header), taken to be alike in every file.
    let mut head = [0u64, 0u64];
    if rows_mode {
        let firsts: Vec<usize> = [FileKind::Csv, FileKind::Parquet]
            .iter()
            .filter_map(|k| files.iter().position(|f| f.kind == *k && f.size > 0))
            .collect();
        keep(run_probes(firsts.clone()).await, &mut probes);
        for i in firsts {
            width[slot(files[i].kind)] = match &probes[i] {
                Probe::Sample(s) => {
                    head[slot(files[i].kind)] = s.header_end;
                    s.bytes_per_row()
                }
                Probe::Footer(m) => {
                    let rows = m.metadata().file_metadata().num_rows();
                    (rows > 0).then(|| files[i].size as f64 / rows as f64)
                }
                Probe::None => None,
            };
        }
    }
    // The rows of a file not probed, estimated; a row takes at least one byte.
    let estimate = |f: &InputFile| -> u64 {
        let body = f.size.saturating_sub(head[slot(f.kind)]);
        match width[slot(f.kind)] {
            Some(w) => ((body as f64 / w).round() as u64).clamp(1, f.size.max(1)),
            None => f.size.max(1),
        }
    };
    let wanted: Vec<usize> = (0..files.len())
        .filter(|i| matches!(probes[*i], Probe::None))
        .filter(|i| {
            let f = &files[*i];
            if rows_mode { f.size > goal && estimate(f) > goal } else { f.kind == FileKind::Parquet && f.size > goal }
        })
        .collect();
    keep(run_probes(wanted).await, &mut probes);

    // Cut each file into weighted items: a weight is rows (row target) or bytes (size target).
    let mut weighted: Vec<(Item, u64)> = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let whole = |w: u64| (Item { file: i, part: Part::Whole }, w);
        let before = weighted.len();
        match &probes[i] {
            Probe::Footer(footer) => {
                let groups = footer.metadata().row_groups();
                let rows_of = |g: &parquet::file::metadata::RowGroupMetaData| g.num_rows().max(0) as u64;
                let weights: Vec<u64> = groups
                    .iter()
                    .map(|g| if rows_mode { rows_of(g) } else { g.compressed_size().max(0) as u64 })
                    .collect();
                let total = if rows_mode { groups.iter().map(rows_of).sum() } else { f.size };
                if total <= goal || groups.len() < 2 {
                    weighted.push(whole(total));
                } else {
                    let mut first_row = 0u64;
                    for r in group_runs(&weights, goal) {
                        let rows: u64 = groups[r.clone()].iter().map(rows_of).sum();
                        let w = weights[r.clone()].iter().sum();
                        let part =
                            Part::RowGroups { groups: r, rows: first_row..first_row + rows, footer: footer.clone() };
                        weighted.push((Item { file: i, part }, w));
                        first_row += rows;
                    }
                }
            }
            Probe::Sample(s) if s.whole => {
                let rows = s.starts.len() as u64;
                if rows <= goal {
                    weighted.push(whole(rows));
                } else {
                    // Counted: every piece holds `goal` rows, the last one the rest.
                    let mut cuts: Vec<u64> = vec![0];
                    cuts.extend(s.starts.iter().step_by(usize::try_from(goal).unwrap_or(usize::MAX)).skip(1).copied());
                    cuts.push(f.size);
                    for (k, w) in cuts.windows(2).enumerate() {
                        let first = k as u64 * goal;
                        let piece_rows = first..(first + goal).min(rows);
                        let n = piece_rows.end - piece_rows.start;
                        let part = Part::CsvRecords { piece: k, bytes: w[0]..w[1], rows: Some(piece_rows) };
                        weighted.push((Item { file: i, part }, n));
                    }
                }
            }
            Probe::Sample(s) => {
                // Larger than its sample: cut by bytes, `goal` rows of its own average width apart.
                let w = s.bytes_per_row().unwrap_or(s.len.saturating_sub(s.header_end).max(1) as f64);
                let step = ((goal as f64 * w).round() as u64).max(1);
                let cuts = byte_cuts(f.size, s.header_end, step);
                push_csv_pieces(&mut weighted, i, &cuts, |b| ((b as f64 / w).round() as u64).max(1));
            }
            Probe::None if !rows_mode && f.kind == FileKind::Csv && f.size > goal => {
                push_csv_pieces(&mut weighted, i, &byte_cuts(f.size, 0, goal), |b| b);
            }
            Probe::None => weighted.push(whole(if rows_mode { estimate(f) } else { f.size })),
        }
        if weighted.len() - before > 1 {
            tracing::debug!("{}: cut into {} pieces", f.rel, weighted.len() - before);
        }
    }

    let weights: Vec<u64> = weighted.iter().map(|(_, w)| *w).collect();
    let mini_batches = group_runs(&weights, goal);
    let items = weighted.into_iter().map(|(it, _)| it).collect();
    let total_bytes = files.iter().map(|f| f.size).sum();
    Ok(Plan { files, items, mini_batches, kind, total_bytes })
}

/// Nominal piece starts of a CSV file: 0, then `first + step`, `first + 2 step`, ... below
/// `size`, then `size`. `first` is where the data starts (after the header), when known.
fn byte_cuts(size: u64, first: u64, step: u64) -> Vec<u64> {
    let mut cuts = vec![0];
    let mut at = first.saturating_add(step);
    while at < size {
        cuts.push(at);
        at = at.saturating_add(step);
    }
    cuts.push(size);
    cuts
}

/// The pieces of a CSV file cut at `cuts`, weighed by `weight(bytes)`; one piece is the file.
fn push_csv_pieces(weighted: &mut Vec<(Item, u64)>, file: usize, cuts: &[u64], weight: impl Fn(u64) -> u64) {
    if cuts.len() <= 2 {
        weighted.push((Item { file, part: Part::Whole }, weight(cuts.last().copied().unwrap_or(0))));
        return;
    }
    for (k, w) in cuts.windows(2).enumerate() {
        let part = Part::CsvRecords { piece: k, bytes: w[0]..w[1], rows: None };
        weighted.push((Item { file, part }, weight(w[1] - w[0])));
    }
}

/// Consecutive runs of `weights` adding up to at most `goal` each; a run holds at least one.
fn group_runs(weights: &[u64], goal: u64) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut sum = 0u64;
    for (i, w) in weights.iter().enumerate() {
        if i > start && sum.saturating_add(*w) > goal {
            runs.push(start..i);
            start = i;
            sum = 0;
        }
        sum = sum.saturating_add(*w);
    }
    if start < weights.len() {
        runs.push(start..weights.len());
    }
    runs
}

/// Tabular or images, refusing a mix.
fn data_kind(input: &Location, files: &[InputFile]) -> Result<DataKind, PlanError> {
    let tabular = files.iter().find(|f| f.kind.data_kind() == DataKind::Tabular);
    let image = files.iter().find(|f| f.kind.data_kind() == DataKind::Image);
    match (tabular, image) {
        (Some(t), Some(i)) => {
            Err(PlanError::Mixed { input: input.display.clone(), tabular: t.rel.clone(), image: i.rel.clone() })
        }
        (Some(_), None) => Ok(DataKind::Tabular),
        _ => Ok(DataKind::Image),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_from_extensions() {
        assert_eq!(FileKind::from_name("a/b.CSV"), Some(FileKind::Csv));
        assert_eq!(FileKind::from_name("x.parquet"), Some(FileKind::Parquet));
        assert_eq!(FileKind::from_name("x.JPeG"), Some(FileKind::Image));
        assert_eq!(FileKind::from_name("README"), None);
    }

    #[tokio::test]
    async fn lists_sorted_and_batches() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["b.csv", "a.csv", "c.csv", "_SUCCESS", ".hidden.csv", "sub/d.csv"] {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x\n1\n").unwrap();
        }
        let input = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let files = list_inputs(&input, None, None).await.unwrap();
        let names: Vec<_> = files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(names, ["a.csv", "b.csv", "c.csv", "sub/d.csv"]);
        let plan = make_plan(&input, files, 3).unwrap();
        assert_eq!(plan.mini_batches, vec![0..3, 3..4]);
        let only = list_inputs(&input, Some("b*"), None).await.unwrap();
        assert_eq!(only.len(), 1);
    }

    #[test]
    fn runs_and_cuts() {
        assert_eq!(group_runs(&[5, 5, 5, 20, 1, 1], 10), vec![0..2, 2..3, 3..4, 4..6]);
        assert_eq!(group_runs(&[], 10), Vec::<Range<usize>>::new());
        assert_eq!(byte_cuts(10, 0, 4), vec![0, 4, 8, 10]);
        assert_eq!(byte_cuts(10, 3, 4), vec![0, 7, 10]);
        assert_eq!(byte_cuts(4, 0, 4), vec![0, 4]);
    }

    #[tokio::test]
    async fn split_plans_group_small_files_and_cut_large_ones() {
        let dir = tempfile::tempdir().unwrap();
        let rows = |n: usize| (0..n).map(|i| format!("{i},\"x\ny\"\n")).collect::<String>();
        std::fs::write(dir.path().join("a.csv"), format!("id,t\n{}", rows(3))).unwrap();
        std::fs::write(dir.path().join("b.csv"), format!("id,t\n{}", rows(3))).unwrap();
        std::fs::write(dir.path().join("c.csv"), format!("id,t\n{}", rows(10))).unwrap();
        let input = Location::parse(dir.path().to_str().unwrap()).unwrap();
        let files = list_inputs(&input, None, None).await.unwrap();

        let plan = make_split_plan(&input, files.clone(), MiniBatchTarget::Rows(6)).await.unwrap();
        let labels: Vec<String> = (0..plan.items.len()).map(|i| plan.label(i)).collect();
        // Rows are counted (small files): c.csv's records start at 5, 13, 21, ... (8 bytes each).
        assert_eq!(labels, ["a.csv", "b.csv", "c.csv[bytes 0-52]", "c.csv[bytes 53-84]"]);
        assert_eq!(plan.items[3].part.rows(), Some(6..10));
        assert_eq!(plan.mini_batches, vec![0..2, 2..3, 3..4]);
        assert_eq!(plan.mini_batch_label(0), "a.csv;b.csv");

        let plan = make_split_plan(&input, files.clone(), MiniBatchTarget::Bytes(40)).await.unwrap();
        let labels: Vec<String> = (0..plan.items.len()).map(|i| plan.label(i)).collect();
        assert_eq!(labels, ["a.csv", "b.csv", "c.csv[bytes 0-39]", "c.csv[bytes 40-79]", "c.csv[bytes 80-84]"]);
        assert_eq!(plan.mini_batches.len(), 5);
        assert_eq!(plan.items_per_file(), [1, 1, 3]);

        std::fs::write(dir.path().join("d.png"), b"not really").unwrap();
        let images = list_inputs(&input, Some("*.png"), None).await.unwrap();
        let e = make_split_plan(&input, images, MiniBatchTarget::Rows(5)).await.unwrap_err().to_string();
        assert!(e.contains("--mini-batch-rows 5") && e.contains("images"), "{e}");
    }
}
