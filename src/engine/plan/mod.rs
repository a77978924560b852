//! Planning: check the output path, list and sort the input files, cut them into mini-batches.
//!
//! Everything here happens before any scoring, so that a job that cannot succeed (output
//! already there or not writable, no inputs) exits 2 without having done work.
//!
//! - [`output`]: the output must be new and writable; leftovers of killed jobs are named and
//!   can be removed.
//! - [`list`]: which files are scored, and which are skipped and why.
//! - [`pieces`]: cutting large tabular files for mini-batches of rows or bytes.
//!
//! Mini-batches are made of [`Item`]s: whole files, or pieces of large tabular files when the
//! target is rows or bytes ([`MiniBatchTarget`]). With the default count of files, every item is
//! a whole file and a mini-batch is `mini_batch_size` consecutive files. With rows or bytes,
//! files are grouped whole until the target is reached, and a file larger than the target is cut
//! into pieces ([`crate::engine::split`]): Parquet by row groups (its footer is read here), CSV by byte
//! ranges cut at record boundaries when it is read. Items stay in (file, row) order, so the
//! output does too.

mod list;
mod output;
mod pieces;

use std::ops::Range;

use object_store::path::Path;

use crate::engine::settings::MiniBatchTarget;
use crate::storage::Location;

pub use list::list_inputs;
pub use output::{
    Cleaned, StagingJob, StagingOwner, Survey, check_output, clean_staging, ended_here, hostname, local_hint,
    probe_output, running_here, survey_output,
};
pub use pieces::make_split_plan;

/// What a file holds, from its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// CSV (`.csv`, `.tsv`), possibly compressed.
    Csv,
    /// JSON Lines (`.jsonl`, `.ndjson`): one JSON object per line, possibly compressed.
    Jsonl,
    Parquet,
    Image,
}

/// How a text file is compressed, from its last extension (`.csv.gz`, `.jsonl.zst`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Bzip2,
}

impl Compression {
    /// The compression named by a file's last extension.
    pub fn from_name(name: &str) -> Compression {
        let lower = name.to_ascii_lowercase();
        match lower.rsplit_once('.').map(|(_, e)| e) {
            Some("gz" | "gzip") => Compression::Gzip,
            Some("zst" | "zstd") => Compression::Zstd,
            Some("bz2") => Compression::Bzip2,
            _ => Compression::None,
        }
    }

    /// The name without a compression extension (`a.csv.gz` -> `a.csv`).
    pub fn strip(name: &str) -> &str {
        match Compression::from_name(name) {
            Compression::None => name,
            _ => name.rsplit_once('.').map_or(name, |(stem, _)| stem),
        }
    }
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
    "png", "jpg", "jpeg", "jpe", "jfif", "gif", "bmp", "tif", "tiff", "webp", "ico", "pnm", "pbm", "pgm", "ppm", "tga",
    "qoi", "hdr", "exr", "ff", "dds",
];

/// Tabular extensions, for messages.
pub const TABULAR_EXTENSIONS: &str = ".csv, .tsv, .jsonl, .ndjson (each also .gz, .zst or .bz2 compressed), .parquet";

impl FileKind {
    pub fn from_name(name: &str) -> Option<FileKind> {
        let stem = Compression::strip(name);
        let compressed = stem.len() != name.len();
        let ext = stem.rsplit_once('.')?.1.to_ascii_lowercase();
        match ext.as_str() {
            "csv" | "tsv" => Some(FileKind::Csv),
            "jsonl" | "ndjson" => Some(FileKind::Jsonl),
            _ if compressed => None,
            "parquet" | "pq" | "parq" => Some(FileKind::Parquet),
            e if IMAGE_EXTENSIONS.contains(&e) => Some(FileKind::Image),
            _ => None,
        }
    }

    pub fn data_kind(self) -> DataKind {
        match self {
            FileKind::Csv | FileKind::Jsonl | FileKind::Parquet => DataKind::Tabular,
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
    pub compression: Compression,
    /// The store's ETag, or the modification time where there is none: what tells a resumed
    /// job that the file changed.
    pub version: String,
}

impl InputFile {
    /// Whether the file can be cut into pieces (uncompressed CSV, Parquet).
    pub fn splittable(&self) -> bool {
        self.compression == Compression::None && matches!(self.kind, FileKind::Csv | FileKind::Parquet)
    }
}

/// A file the listing found and the job leaves out, with the reason: reported, never silent.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Skipped {
    /// The path relative to `--input` (lossily decoded when it is not UTF-8).
    pub file: String,
    pub reason: String,
}

/// What listing the input found: the files to score, and those left out.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub files: Vec<InputFile>,
    pub skipped: Vec<Skipped>,
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
    /// Files found and left out, with the reason.
    pub skipped: Vec<Skipped>,
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
    #[error(
        "output {output} holds only `_staging/`, left by {jobs}: a job that did not finish (killed or crashed, \
         or still running on another machine) leaves its staged files there, and none of them was published. \
         Finish it with --resume (the same inputs, model and settings score only what is missing), remove it with \
         --clean-staging (or delete {output}/_staging), or choose a new --output"
    )]
    StaleStaging { output: String, jobs: String },
    #[error(
        "output {output} holds the unfinished job {job}, which planned something else: {differences}. \
         Resume it with the inputs, model and settings it was started with, remove it with --clean-staging, \
         or choose a new --output"
    )]
    PlanDiffers { output: String, job: String, differences: String },
    #[error("job {job} already completed into {output}: there is nothing left to score")]
    AlreadyCompleted { output: String, job: String },
    #[error(
        "output {output} is being written by {job}: a job never writes into another's output. Choose a new --output"
    )]
    InUse { output: String, job: String },
    #[error(
        "output {output} holds only the logs of job {job_id}, which Failed{}: its predictions were never \
         published. Run again with --resume to score only what it did not, choose a new --output, or delete \
         {output} to run into it again",
        error.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    )]
    FailedJobLogs { output: String, job_id: String, error: Option<String> },
    #[error("output {output} cannot be written: {hint}")]
    NotWritable { output: String, hint: String },
    #[error(
        "no input files under {input}{}{}: check --input and --pattern",
        pattern.as_ref().map(|p| format!(" match --pattern {p:?}")).unwrap_or_default(),
        if *skipped > 0 { format!(" (skipped {skipped} of other types)") } else { String::new() }
    )]
    NoFiles { input: String, pattern: Option<String>, skipped: usize },
    #[error(
        "input file {file} has an unsupported type: batchscore reads {TABULAR_EXTENSIONS} and images ({}). \
         Use --pattern to select the files to score, e.g. --pattern '*.csv'",
        IMAGE_EXTENSIONS.join(", ")
    )]
    Unsupported { file: String },
    #[error(
        "input {input} mixes as many tabular files ({tabular}, ...) as images ({image}, ...); one job scores \
         one kind. Use --pattern to select one, e.g. --pattern '*.png'"
    )]
    Mixed { input: String, tabular: String, image: String },
    #[error(
        "{setting} splits tabular files into mini-batches of rows or bytes, but the inputs under {input} are \
         images: give --mini-batch-size as a number of images per mini-batch, e.g. --mini-batch-size 32"
    )]
    SplitImages { setting: String, input: String },
    #[error("cannot list {url}: {}; {hint}", crate::storage::describe(source))]
    Store {
        url: String,
        #[source]
        source: object_store::Error,
        hint: &'static str,
    },
}

/// Plans the job for `target`: mini-batches of files ([`make_plan`]), or of rows or bytes, with
/// large tabular files cut into pieces ([`make_split_plan`]). `delimiter` gives each CSV file's
/// delimiter, to find its records.
pub async fn plan_job(
    input: &Location,
    listing: Listing,
    target: MiniBatchTarget,
    delimiter: &(dyn Fn(&str) -> u8 + Sync),
) -> Result<Plan, PlanError> {
    match target {
        MiniBatchTarget::Files(n) => make_plan(input, listing, n),
        _ => make_split_plan(input, listing, target, delimiter).await,
    }
}

/// Cuts sorted files into mini-batches of `mini_batch_size` files.
pub fn make_plan(input: &Location, listing: Listing, mini_batch_size: usize) -> Result<Plan, PlanError> {
    let (kind, Listing { files, skipped }) = listing.one_kind(input)?;
    let n = files.len();
    let mini_batches = (0..n).step_by(mini_batch_size).map(|s| s..(s + mini_batch_size).min(n)).collect();
    let total_bytes = files.iter().map(|f| f.size).sum();
    let items = (0..n).map(|file| Item { file, part: Part::Whole }).collect();
    Ok(Plan { files, items, mini_batches, kind, total_bytes, skipped })
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
        assert_eq!(FileKind::from_name("a.csv.gz"), Some(FileKind::Csv));
        assert_eq!(FileKind::from_name("a.TSV.ZST"), Some(FileKind::Csv));
        assert_eq!(FileKind::from_name("a.ndjson.bz2"), Some(FileKind::Jsonl));
        assert_eq!(FileKind::from_name("photo.jfif"), Some(FileKind::Image));
        assert_eq!(FileKind::from_name("a.parquet.gz"), None);
        assert_eq!(FileKind::from_name("archive.tar.gz"), None);
        assert_eq!(Compression::from_name("x.CSV.BZ2"), Compression::Bzip2);
        assert_eq!(Compression::strip("x.csv.zst"), "x.csv");
    }
}
