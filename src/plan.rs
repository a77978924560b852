//! Planning: check the output path, list and sort the input files, cut them into mini-batches.
//!
//! Everything here happens before any scoring, so that a job that cannot succeed (output
//! already there, no inputs, an unsupported file) exits 2 without having done work.
//!
//! Listing rules: files are sorted by their path relative to `--input`, so mini-batches and the
//! output order are the same on every run and every store. Names starting with `_` or `.` (in
//! any folder) are skipped, as Spark and Hadoop tools do (`_SUCCESS`, `.crc`), and so is
//! anything under the output folder when it lies inside the input.

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::storage::Location;

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

/// The planned job: sorted files and their mini-batches.
#[derive(Debug, Clone)]
pub struct Plan {
    pub files: Vec<InputFile>,
    /// Each mini-batch is a range of `files`.
    pub mini_batches: Vec<std::ops::Range<usize>>,
    pub kind: DataKind,
    pub total_bytes: u64,
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
    let mut listing = output.store.list(Some(&output.path));
    match listing.try_next().await {
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
        && let Ok(meta) = input.store.head(&input.path).await
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
    let mut listing = input.store.list(Some(&input.path));
    while let Some(meta) = listing.try_next().await.map_err(store_err)? {
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

/// Cuts sorted files into mini-batches of `mini_batch_size` files.
pub fn make_plan(input: &Location, files: Vec<InputFile>, mini_batch_size: usize) -> Result<Plan, PlanError> {
    let tabular = files.iter().find(|f| f.kind.data_kind() == DataKind::Tabular);
    let image = files.iter().find(|f| f.kind.data_kind() == DataKind::Image);
    let kind = match (tabular, image) {
        (Some(t), Some(i)) => {
            return Err(PlanError::Mixed {
                input: input.display.clone(),
                tabular: t.rel.clone(),
                image: i.rel.clone(),
            });
        }
        (Some(_), None) => DataKind::Tabular,
        _ => DataKind::Image,
    };
    let n = files.len();
    let mini_batches = (0..n).step_by(mini_batch_size).map(|s| s..(s + mini_batch_size).min(n)).collect();
    let total_bytes = files.iter().map(|f| f.size).sum();
    Ok(Plan { files, mini_batches, kind, total_bytes })
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
}
