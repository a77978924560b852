//! Mini-batches of rows or bytes: small tabular files grouped whole, large ones cut into pieces
//! (Parquet by row groups, uncompressed CSV by byte ranges at record boundaries). Compressed
//! files and JSON Lines files go whole: they cannot be cut without reading them from the start.

use std::ops::Range;

use futures::StreamExt;

use super::{FileKind, InputFile, Item, Listing, Part, Plan, PlanError};
use crate::engine::plan::DataKind;
use crate::engine::settings::MiniBatchTarget;
use crate::engine::split::{CsvSample, read_footer, sample_csv};
use crate::storage::Location;

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
    listing: Listing,
    target: MiniBatchTarget,
    delimiter: &(dyn Fn(&str) -> u8 + Sync),
) -> Result<Plan, PlanError> {
    let (rows_mode, goal) = match target {
        MiniBatchTarget::Rows(n) => (true, n),
        MiniBatchTarget::Bytes(b) => (false, b),
        MiniBatchTarget::Files(n) => return super::make_plan(input, listing, n),
    };
    let (kind, Listing { files, skipped }) = listing.one_kind(input)?;
    if kind == DataKind::Image {
        let setting = format!("--{}", target.describe().replace('_', "-"));
        return Err(PlanError::SplitImages { setting, input: input.display.clone() });
    }
    let mut prober = Prober { input, files: &files, delimiter, probes: files.iter().map(|_| Probe::None).collect() };
    // Row targets: each format's bytes per row, from its first (non-empty) file.
    let mut widths = Widths::default();
    if rows_mode {
        let firsts: Vec<usize> = [FileKind::Csv, FileKind::Parquet]
            .iter()
            .filter_map(|k| files.iter().position(|f| f.kind == *k && f.size > 0 && f.splittable()))
            .collect();
        prober.run(firsts.clone()).await;
        for i in firsts {
            widths.learn(&files[i], &prober.probes[i]);
        }
    }
    let wanted: Vec<usize> = (0..files.len())
        .filter(|i| matches!(prober.probes[*i], Probe::None) && files[*i].splittable())
        .filter(|i| {
            let f = &files[*i];
            if rows_mode {
                f.size > goal && widths.estimate(f) > goal
            } else {
                f.kind == FileKind::Parquet && f.size > goal
            }
        })
        .collect();
    prober.run(wanted).await;

    // Cut each file into weighted items: a weight is rows (row target) or bytes (size target).
    let cutter = Cutter { rows_mode, goal, widths };
    let mut weighted: Vec<(Item, u64)> = Vec::new();
    for (i, (f, probe)) in files.iter().zip(&prober.probes).enumerate() {
        let before = weighted.len();
        cutter.cut(i, f, probe, &mut weighted);
        if weighted.len() - before > 1 {
            tracing::debug!("{}: cut into {} pieces", f.rel, weighted.len() - before);
        }
    }
    let weights: Vec<u64> = weighted.iter().map(|(_, w)| *w).collect();
    let mini_batches = group_runs(&weights, goal);
    let items = weighted.into_iter().map(|(it, _)| it).collect();
    let total_bytes = files.iter().map(|f| f.size).sum();
    Ok(Plan { files, items, mini_batches, kind, total_bytes, skipped })
}

/// Reads footers and CSV heads at plan time, a few at once.
struct Prober<'a> {
    input: &'a Location,
    files: &'a [InputFile],
    delimiter: &'a (dyn Fn(&str) -> u8 + Sync),
    probes: Vec<Probe>,
}

impl Prober<'_> {
    /// Probes the files `wanted`; one that cannot be read stays unprobed (planned whole).
    async fn run(&mut self, wanted: Vec<usize>) {
        let files = self.files;
        let results = futures::stream::iter(wanted.into_iter().map(|i| {
            let f = &files[i];
            let (store, delimiter) = (self.input.store.clone(), (self.delimiter)(&f.rel));
            async move {
                let got = match f.kind {
                    FileKind::Parquet => read_footer(&store, &f.path, f.size).await.map(Probe::Footer),
                    _ => sample_csv(&store, &f.path, f.size, CSV_SAMPLE_BYTES, delimiter).await.map(Probe::Sample),
                };
                (i, got)
            }
        }))
        .buffered(PROBE_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
        for (i, got) in results {
            match got {
                Ok(p) => self.probes[i] = p,
                Err(e) => tracing::warn!("{}: {e}; it is planned whole, not split", files[i].rel),
            }
        }
    }
}

/// Bytes per row of each format (CSV, Parquet), and the bytes before the first row (a CSV
/// header), taken to be alike in every file of the format.
#[derive(Default, Clone, Copy)]
struct Widths {
    width: [Option<f64>; 2],
    head: [u64; 2],
}

impl Widths {
    fn slot(k: FileKind) -> usize {
        usize::from(k == FileKind::Parquet)
    }

    /// Learns a format's row width from one probed file.
    fn learn(&mut self, f: &InputFile, probe: &Probe) {
        let slot = Self::slot(f.kind);
        self.width[slot] = match probe {
            Probe::Sample(s) => {
                self.head[slot] = s.header_end;
                s.bytes_per_row()
            }
            Probe::Footer(m) => {
                let rows = m.metadata().file_metadata().num_rows();
                (rows > 0).then(|| f.size as f64 / rows as f64)
            }
            Probe::None => None,
        };
    }

    /// The rows of a file not probed, estimated; a row takes at least one byte.
    fn estimate(&self, f: &InputFile) -> u64 {
        let slot = Self::slot(f.kind);
        let body = f.size.saturating_sub(self.head[slot]);
        match self.width[slot] {
            Some(w) => ((body as f64 / w).round() as u64).clamp(1, f.size.max(1)),
            None => f.size.max(1),
        }
    }
}

/// Cuts one file into weighted items.
struct Cutter {
    rows_mode: bool,
    goal: u64,
    widths: Widths,
}

impl Cutter {
    fn cut(&self, i: usize, f: &InputFile, probe: &Probe, weighted: &mut Vec<(Item, u64)>) {
        let whole = |w: u64| (Item { file: i, part: Part::Whole }, w);
        let goal = self.goal;
        match probe {
            Probe::Footer(footer) => self.cut_row_groups(i, f, footer, weighted),
            Probe::Sample(s) if s.whole => {
                let rows = s.starts.len() as u64;
                if rows <= goal {
                    weighted.push(whole(rows));
                } else {
                    cut_counted_csv(i, f, s, goal, weighted);
                }
            }
            Probe::Sample(s) => {
                // Larger than its sample: cut by bytes, `goal` rows of its own average width apart.
                let w = s.bytes_per_row().unwrap_or(s.len.saturating_sub(s.header_end).max(1) as f64);
                let step = ((goal as f64 * w).round() as u64).max(1);
                let cuts = byte_cuts(f.size, s.header_end, step);
                push_csv_pieces(weighted, i, &cuts, |b| ((b as f64 / w).round() as u64).max(1));
            }
            Probe::None if !self.rows_mode && f.kind == FileKind::Csv && f.splittable() && f.size > goal => {
                push_csv_pieces(weighted, i, &byte_cuts(f.size, 0, goal), |b| b);
            }
            Probe::None => weighted.push(whole(if self.rows_mode { self.widths.estimate(f) } else { f.size })),
        }
    }

    /// A Parquet file by runs of row groups.
    fn cut_row_groups(
        &self,
        i: usize,
        f: &InputFile,
        footer: &parquet::arrow::arrow_reader::ArrowReaderMetadata,
        weighted: &mut Vec<(Item, u64)>,
    ) {
        let groups = footer.metadata().row_groups();
        let rows_of = |g: &parquet::file::metadata::RowGroupMetaData| g.num_rows().max(0) as u64;
        let weights: Vec<u64> = groups
            .iter()
            .map(|g| if self.rows_mode { rows_of(g) } else { g.compressed_size().max(0) as u64 })
            .collect();
        let total = if self.rows_mode { groups.iter().map(rows_of).sum() } else { f.size };
        if total <= self.goal || groups.len() < 2 {
            weighted.push((Item { file: i, part: Part::Whole }, total));
            return;
        }
        let mut first_row = 0u64;
        for r in group_runs(&weights, self.goal) {
            let rows: u64 = groups[r.clone()].iter().map(rows_of).sum();
            let w = weights[r.clone()].iter().sum();
            let part = Part::RowGroups { groups: r, rows: first_row..first_row + rows, footer: footer.clone() };
            weighted.push((Item { file: i, part }, w));
            first_row += rows;
        }
    }
}

/// A CSV file whose rows were all counted: every piece holds `goal` rows, the last one the rest.
fn cut_counted_csv(i: usize, f: &InputFile, s: &CsvSample, goal: u64, weighted: &mut Vec<(Item, u64)>) {
    let rows = s.starts.len() as u64;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::list_inputs;

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
        let comma = |_: &str| b',';

        let plan = make_split_plan(&input, files.clone(), MiniBatchTarget::Rows(6), &comma).await.unwrap();
        let labels: Vec<String> = (0..plan.items.len()).map(|i| plan.label(i)).collect();
        // Rows are counted (small files): c.csv's records start at 5, 13, 21, ... (8 bytes each).
        assert_eq!(labels, ["a.csv", "b.csv", "c.csv[bytes 0-52]", "c.csv[bytes 53-84]"]);
        assert_eq!(plan.items[3].part.rows(), Some(6..10));
        assert_eq!(plan.mini_batches, vec![0..2, 2..3, 3..4]);
        assert_eq!(plan.mini_batch_label(0), "a.csv;b.csv");

        let plan = make_split_plan(&input, files.clone(), MiniBatchTarget::Bytes(40), &comma).await.unwrap();
        let labels: Vec<String> = (0..plan.items.len()).map(|i| plan.label(i)).collect();
        assert_eq!(labels, ["a.csv", "b.csv", "c.csv[bytes 0-39]", "c.csv[bytes 40-79]", "c.csv[bytes 80-84]"]);
        assert_eq!(plan.mini_batches.len(), 5);
        assert_eq!(plan.items_per_file(), [1, 1, 3]);

        std::fs::write(dir.path().join("d.png"), b"not really").unwrap();
        let images = list_inputs(&input, Some("*.png"), None).await.unwrap();
        let e = make_split_plan(&input, images, MiniBatchTarget::Rows(5), &comma).await.unwrap_err().to_string();
        assert!(e.contains("--mini-batch-rows 5") && e.contains("images"), "{e}");
    }
}
