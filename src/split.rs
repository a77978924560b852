//! Splitting large tabular files below file level, so that one 5 GB file is not one unit of work.
//!
//! With `mini_batch_rows` or a size form of `mini_batch_size` (`64MB`), [`crate::plan`] cuts
//! files larger than the target into pieces; this module holds what it takes to plan, read and
//! decode those pieces:
//!
//! - **Parquet** files are cut by row groups (a row group is the smallest piece). The plan reads
//!   each large file's footer with ranged requests ([`read_footer`]); the read stage fetches only
//!   the column chunks of a piece's row groups, for the projected columns
//!   ([`fetch_row_groups`]), and the worker decodes them with parquet's synchronous reader over
//!   the fetched ranges ([`FetchedChunks`]), so decoding stays off the tokio threads.
//! - **CSV** files are cut by byte ranges at record boundaries: piece `k` holds the records that
//!   *start* inside its nominal byte range `[cuts[k], cuts[k+1])`. A [`CsvSplitter`] streams
//!   the file once, in order, finds record boundaries with the csv crate's own state machine
//!   (`csv_core`, so quoted fields holding newlines are handled exactly as the decoder will
//!   handle them), counts rows so that every piece knows the row number of its first record,
//!   and hands out each piece as the header line followed by its records. Memory holds the
//!   piece being assembled and pieces read ahead, never the whole file.
//!
//! Every request goes through [`with_retries`], as whole-file reads do.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use futures::{FutureExt, StreamExt};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResult, GetResultPayload, ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::MetadataFetch;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};

use crate::storage::{is_transient, retry_policy, with_retries};

// ---------------------------------------------------------------------------------------------
// CSV record boundaries

/// A record boundary found by [`RecordScanner`], as a byte offset in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// The first byte of a record.
    Start(u64),
    /// Just past the byte that ended a record (its terminator), or the end of the file.
    End(u64),
}

/// Finds where CSV records start and end, with the state machine the csv crate itself reads
/// with (`csv_core`, default dialect: `,` `"` and CR/LF terminators, as the decoder uses), so
/// that pieces cut at these boundaries parse into exactly the records of the whole file.
///
/// Between records, CR and LF bytes are skipped (csv_core ignores empty lines), so a record
/// starts at the first other byte; it ends at its unquoted terminator. A quoted field may hold
/// commas and newlines.
pub struct RecordScanner {
    parser: csv_core::Reader,
    delimiter: u8,
    /// Whether the scanner is between records: the next byte that is not CR/LF starts one.
    between: bool,
    /// Scratch space for field contents, which the scanner does not need.
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl Default for RecordScanner {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordScanner {
    pub fn new() -> RecordScanner {
        Self::with_delimiter(b',')
    }

    /// A scanner for fields separated by `delimiter` (`;`, tab, ...).
    pub fn with_delimiter(delimiter: u8) -> RecordScanner {
        RecordScanner {
            parser: csv_core::ReaderBuilder::new().delimiter(delimiter).build(),
            delimiter,
            between: true,
            out: vec![0; 32 * 1024],
            ends: vec![0; 1024],
        }
    }

    /// Scans `chunk`, which starts at file offset `offset`, pushing the boundaries found.
    pub fn feed(&mut self, chunk: &[u8], offset: u64, found: &mut Vec<Boundary>) {
        let mut i = 0;
        while i < chunk.len() {
            if self.between {
                while i < chunk.len() && (chunk[i] == b'\r' || chunk[i] == b'\n') {
                    i += 1;
                }
                if i == chunk.len() {
                    break;
                }
                found.push(Boundary::Start(offset + i as u64));
                self.between = false;
            }
            let (res, nin, _, _) = self.parser.read_record(&chunk[i..], &mut self.out, &mut self.ends);
            i += nin;
            match res {
                csv_core::ReadRecordResult::Record => {
                    found.push(Boundary::End(offset + i as u64));
                    self.between = true;
                }
                // The fields do not fit the scratch space: their contents are not needed, so
                // the same space is reused.
                csv_core::ReadRecordResult::OutputFull | csv_core::ReadRecordResult::OutputEndsFull => {}
                csv_core::ReadRecordResult::InputEmpty | csv_core::ReadRecordResult::End => {}
            }
        }
    }

    /// The end of the input at offset `size`: a last record without a terminator ends here.
    pub fn finish(&mut self, size: u64, found: &mut Vec<Boundary>) {
        if !self.between {
            found.push(Boundary::End(size));
            self.between = true;
        }
    }
}

/// One piece of a CSV file, as the read stage hands it to a worker.
#[derive(Debug, Clone)]
pub struct CsvPiece {
    /// The piece's index in its file.
    pub index: usize,
    /// The file's header record, then the piece's records, byte for byte.
    pub bytes: Bytes,
    /// The row number in the file (header excluded) of the piece's first record.
    pub first_row: u64,
    /// How many records the piece holds.
    pub rows: u64,
    /// Add to a line number in `bytes` to get the line number in the file.
    pub line_offset: u64,
}

/// Cuts a CSV file, fed in order, into pieces: piece `k` holds the records that start in
/// `[cuts[k], cuts[k+1])` (the header record excluded), each piece prefixed with the header.
///
/// This is the I/O-free core of [`CsvSplitter`]. It can be rewound to the start of the piece
/// being assembled (a record boundary) when the stream feeding it fails.
pub struct CsvCutter {
    cuts: Arc<[u64]>,
    scanner: RecordScanner,
    found: Vec<Boundary>,
    /// The header record with its terminator, once read.
    header: Option<Bytes>,
    /// File bytes from `buf_start` on that are not yet part of an emitted piece.
    buf: BytesMut,
    buf_start: u64,
    /// The piece being assembled, the offset its bytes start at (the end of the record before
    /// it, or of the header), and the row number of its first record.
    piece: usize,
    piece_start: u64,
    piece_first_row: u64,
    /// Newlines in the file before `piece_start`, and in the header.
    lines_before: u64,
    header_lines: u64,
    /// Data records seen so far, and the end of the last one (or of the header).
    rows: u64,
    last_end: u64,
    /// Set once every piece has been emitted.
    finished: bool,
    /// Set when the header record is longer than [`MAX_HEADER_BYTES`]: no piece can be made.
    pub header_too_long: bool,
}

/// The longest header a split CSV file may have (every piece carries a copy of it).
pub const MAX_HEADER_BYTES: u64 = crate::settings::limits::DEFAULT_MAX_RECORD_BYTES;

impl CsvCutter {
    /// `cuts` holds `n + 1` offsets for `n` pieces: `0`, the nominal starts of pieces 1..n, and
    /// the file's size.
    pub fn new(cuts: Arc<[u64]>, delimiter: u8) -> CsvCutter {
        let cuts_len = cuts.len();
        CsvCutter {
            cuts,
            scanner: RecordScanner::with_delimiter(delimiter),
            found: Vec::new(),
            header: None,
            buf: BytesMut::new(),
            buf_start: 0,
            piece: 0,
            piece_start: 0,
            piece_first_row: 0,
            lines_before: 0,
            header_lines: 0,
            rows: 0,
            last_end: 0,
            finished: cuts_len < 2,
            header_too_long: false,
        }
    }

    fn pieces(&self) -> usize {
        self.cuts.len().saturating_sub(1)
    }

    /// The offset to read from next after [`CsvCutter::rewind`].
    pub fn resume_offset(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    /// The index of the piece being assembled (every piece before it has been emitted).
    pub fn next_piece(&self) -> usize {
        self.piece
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Forgets what was fed since the last emitted piece, so that feeding can restart from
    /// [`CsvCutter::resume_offset`], a record boundary (or the start of the file, while the
    /// header is incomplete).
    pub fn rewind(&mut self) {
        if self.header.is_none() {
            *self = CsvCutter::new(self.cuts.clone(), self.scanner.delimiter);
            return;
        }
        self.buf.clear();
        self.buf_start = self.piece_start;
        self.rows = self.piece_first_row;
        self.last_end = self.piece_start;
        // A fresh scanner starts between records, which a piece start is.
        self.scanner = RecordScanner::with_delimiter(self.scanner.delimiter);
    }

    /// Feeds the next bytes of the file (starting at [`CsvCutter::resume_offset`]); returns the
    /// pieces completed.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<CsvPiece> {
        let offset = self.resume_offset();
        if self.header.is_none() && (self.buf.len() + chunk.len()) as u64 > MAX_HEADER_BYTES {
            self.header_too_long = true;
            self.finished = true;
            self.buf.clear();
            return Vec::new();
        }
        self.buf.extend_from_slice(chunk);
        let mut found = std::mem::take(&mut self.found);
        self.scanner.feed(chunk, offset, &mut found);
        let mut done = Vec::new();
        for b in found.drain(..) {
            self.on_boundary(b, &mut done);
        }
        self.found = found;
        done
    }

    /// The end of the file: returns the last pieces (empty ones for ranges no record starts in).
    pub fn finish(&mut self) -> Vec<CsvPiece> {
        let size = self.resume_offset();
        let mut found = std::mem::take(&mut self.found);
        self.scanner.finish(size, &mut found);
        let mut done = Vec::new();
        for b in found.drain(..) {
            self.on_boundary(b, &mut done);
        }
        self.found = found;
        while !self.finished {
            let end = if self.piece + 1 == self.pieces() { size } else { self.last_end };
            self.emit(end, &mut done);
        }
        done
    }

    fn on_boundary(&mut self, b: Boundary, done: &mut Vec<CsvPiece>) {
        match b {
            // The header's own start, or a data record's: the latter belongs to the piece whose
            // nominal range holds it; pieces before that one are complete.
            Boundary::Start(s) => {
                if self.header.is_some() {
                    while !self.finished && self.piece + 1 < self.pieces() && s >= self.cuts[self.piece + 1] {
                        self.emit(self.last_end, done);
                    }
                }
            }
            Boundary::End(e) => {
                if self.header.is_none() {
                    let len = (e - self.buf_start) as usize;
                    let header = self.buf.split_to(len).freeze();
                    self.header_lines = count_newlines(&header);
                    self.lines_before = self.header_lines;
                    self.header = Some(header);
                    self.buf_start = e;
                    self.piece_start = e;
                } else {
                    self.rows += 1;
                }
                self.last_end = e;
            }
        }
    }

    /// Emits the piece being assembled, made of the bytes up to `end`.
    fn emit(&mut self, end: u64, done: &mut Vec<CsvPiece>) {
        let header = self.header.clone().unwrap_or_default();
        let take = end.saturating_sub(self.buf_start).min(self.buf.len() as u64) as usize;
        let body = self.buf.split_to(take);
        self.buf_start += take as u64;
        let mut bytes = BytesMut::with_capacity(header.len() + body.len());
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&body);
        done.push(CsvPiece {
            index: self.piece,
            bytes: bytes.freeze(),
            first_row: self.piece_first_row,
            rows: self.rows - self.piece_first_row,
            line_offset: self.lines_before - self.header_lines,
        });
        self.lines_before += count_newlines(&body);
        self.piece += 1;
        self.piece_start = self.buf_start;
        self.piece_first_row = self.rows;
        if self.piece >= self.pieces() {
            self.finished = true;
        }
    }
}

fn count_newlines(b: &[u8]) -> u64 {
    b.iter().filter(|c| **c == b'\n').count() as u64
}

/// Streams one CSV file once, in order, and hands out its pieces on request.
///
/// Requests come from the read stage's mini-batch futures (in about piece order) and from
/// workers re-reading a piece whose read failed; a mutex serialises them. Pieces completed
/// before they are asked for wait in `ready`. When the stream breaks off, the cutter rewinds to
/// the last emitted piece and the stream is re-opened there with a ranged request (the rows
/// before it are already counted): at once for a transient error, up to the retry policy's
/// attempts; otherwise the request fails, and the next request for a piece tries again.
pub struct CsvSplitter {
    store: Arc<dyn ObjectStore>,
    path: Path,
    size: u64,
    state: tokio::sync::Mutex<SplitterState>,
}

struct SplitterState {
    cutter: CsvCutter,
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    ready: BTreeMap<usize, CsvPiece>,
    /// Streams broken off since the last piece was completed.
    broken: u32,
}

impl CsvSplitter {
    /// A splitter for the file at `path` (`size` bytes) cut at `cuts` (see [`CsvCutter::new`]).
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, size: u64, cuts: Arc<[u64]>, delimiter: u8) -> CsvSplitter {
        CsvSplitter {
            store,
            path,
            size,
            state: tokio::sync::Mutex::new(SplitterState {
                cutter: CsvCutter::new(cuts, delimiter),
                stream: None,
                ready: BTreeMap::new(),
                broken: 0,
            }),
        }
    }

    /// Piece `k`, reading the file up to its end if needed.
    pub async fn piece(&self, k: usize) -> Result<CsvPiece, String> {
        let mut st = self.state.lock().await;
        loop {
            if let Some(p) = st.ready.remove(&k) {
                return Ok(p);
            }
            if st.cutter.header_too_long {
                return Err(format!(
                    "the header record is longer than {}; a file with such a header cannot be split",
                    crate::settings::format_byte_size(MAX_HEADER_BYTES)
                ));
            }
            if k < st.cutter.next_piece() || st.cutter.is_finished() {
                // Each piece is handed out once; a failed read hands out nothing.
                return Err(format!("piece {k} was already handed out (an internal error; please report it)"));
            }
            let st = &mut *st;
            if st.stream.is_none() {
                let from = st.cutter.resume_offset();
                if from >= self.size {
                    for p in st.cutter.finish() {
                        st.ready.insert(p.index, p);
                    }
                    continue;
                }
                let what = format!("GET {} from byte {from}", self.path);
                let got = with_retries(&what, |_| {
                    let opts = GetOptions { range: Some(GetRange::Bounded(from..self.size)), ..Default::default() };
                    self.store.get_opts(&self.path, opts)
                })
                .await
                .map_err(|e| format!("cannot read: {}", crate::storage::describe(&e)))?;
                st.stream = Some(byte_stream(got));
            }
            let stream = st.stream.as_mut().expect("opened above");
            match stream.next().await {
                Some(Ok(chunk)) => {
                    let room = self.size - st.cutter.resume_offset();
                    let chunk = if chunk.len() as u64 > room { chunk.slice(..room as usize) } else { chunk };
                    for p in st.cutter.feed(&chunk) {
                        st.broken = 0;
                        st.ready.insert(p.index, p);
                    }
                }
                Some(Err(e)) => {
                    // Start again at the last piece boundary: the rows before it are counted.
                    st.stream = None;
                    st.cutter.rewind();
                    st.broken += 1;
                    let attempts = retry_policy().attempts;
                    if !is_transient(&e) || st.broken >= attempts {
                        st.broken = 0;
                        return Err(format!("cannot read: {}", crate::storage::describe(&e)));
                    }
                    tracing::warn!(
                        "GET {}: {}; reading again from byte {} (retry {} of {})",
                        self.path,
                        crate::storage::describe(&e),
                        st.cutter.resume_offset(),
                        st.broken,
                        attempts - 1
                    );
                }
                None => {
                    st.stream = None;
                    if st.cutter.resume_offset() < self.size {
                        let at = st.cutter.resume_offset();
                        st.cutter.rewind();
                        return Err(format!(
                            "cannot read: the file ended at byte {at}, before its listed size of {} bytes; \
                             was it changed while the job ran?",
                            self.size
                        ));
                    }
                }
            }
        }
    }
}

/// The body of a GET as a stream of chunks. object_store streams local files in 8 KiB reads,
/// each a blocking task; large sequential reads here read 1 MiB at a time instead.
fn byte_stream(got: GetResult) -> BoxStream<'static, object_store::Result<Bytes>> {
    const CHUNK: u64 = 1 << 20;
    match got.payload {
        GetResultPayload::File(file, path) => {
            let range = got.range;
            futures::stream::try_unfold((Some(file), range.start, range.end), move |(file, pos, end)| {
                let path = path.clone();
                async move {
                    let Some(mut file) = file else { return Ok(None) };
                    if pos >= end {
                        return Ok(None);
                    }
                    let read = tokio::task::spawn_blocking(move || {
                        use std::io::{Read, Seek, SeekFrom};
                        let want = (end - pos).min(CHUNK);
                        let mut buf = Vec::with_capacity(want as usize);
                        file.seek(SeekFrom::Start(pos))?;
                        (&mut file).take(want).read_to_end(&mut buf)?;
                        Ok::<_, std::io::Error>((file, buf))
                    })
                    .await;
                    let generic = |e: Box<dyn std::error::Error + Send + Sync>| object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: format!("{}: {e}", path.display()).into(),
                    };
                    let (file, buf) = read.map_err(|e| generic(e.into()))?.map_err(|e| generic(e.into()))?;
                    if buf.is_empty() {
                        // The file is shorter than it was: the caller reports it.
                        return Ok(None);
                    }
                    let next = pos + buf.len() as u64;
                    Ok(Some((Bytes::from(buf), (Some(file), next, end))))
                }
            })
            .boxed()
        }
        GetResultPayload::Stream(s) => s,
    }
}

/// Reads the head of a CSV file (at most `limit` bytes) and finds its record boundaries, to
/// count its rows (when the head is the whole file) or estimate its row width.
pub async fn sample_csv(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
    limit: u64,
    delimiter: u8,
) -> Result<CsvSample, String> {
    let len = size.min(limit);
    let bytes = if len == 0 {
        Bytes::new()
    } else {
        with_retries(&format!("GET {path} bytes 0-{}", len - 1), |_| store.get_range(path, 0..len))
            .await
            .map_err(|e| format!("cannot read: {}", crate::storage::describe(&e)))?
    };
    Ok(CsvSample::scan(&bytes, len == size, delimiter))
}

/// Record boundaries in the head of a CSV file.
#[derive(Debug, Clone, Default)]
pub struct CsvSample {
    /// The end of the header record (0 when the sample holds no complete record).
    pub header_end: u64,
    /// Where each complete data record starts.
    pub starts: Vec<u64>,
    /// The end of the last complete record.
    pub complete_end: u64,
    /// Whether the sample is the whole file: then `starts` holds every record.
    pub whole: bool,
    /// The sample's length.
    pub len: u64,
}

impl CsvSample {
    pub fn scan(bytes: &[u8], whole: bool, delimiter: u8) -> CsvSample {
        let mut scanner = RecordScanner::with_delimiter(delimiter);
        let mut found = Vec::new();
        scanner.feed(bytes, 0, &mut found);
        if whole {
            scanner.finish(bytes.len() as u64, &mut found);
        }
        let mut s = CsvSample { whole, len: bytes.len() as u64, ..Default::default() };
        let mut header_done = false;
        let mut open: Option<u64> = None;
        for b in found {
            match b {
                Boundary::Start(x) => open = Some(x),
                Boundary::End(e) => {
                    if header_done {
                        if let Some(x) = open {
                            s.starts.push(x);
                        }
                    } else {
                        header_done = true;
                        s.header_end = e;
                    }
                    open = None;
                    s.complete_end = e;
                }
            }
        }
        s
    }

    /// Average bytes per data row in the sample; `None` when it holds no complete data row.
    pub fn bytes_per_row(&self) -> Option<f64> {
        let n = self.starts.len();
        (n > 0).then(|| (self.complete_end - self.header_end).max(1) as f64 / n as f64)
    }
}

// ---------------------------------------------------------------------------------------------
// Parquet row groups

/// Ranged reads of one object, for parquet's metadata loader.
struct StoreFetch {
    store: Arc<dyn ObjectStore>,
    path: Path,
}

impl MetadataFetch for StoreFetch {
    fn fetch(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        async move {
            let what = format!("GET {} bytes {}-{}", self.path, range.start, range.end.saturating_sub(1));
            with_retries(&what, |_| self.store.get_range(&self.path, range.clone()))
                .await
                .map_err(|e| parquet::errors::ParquetError::External(Box::new(e)))
        }
        .boxed()
    }
}

/// Reads a Parquet file's footer with ranged requests (the last 64 KiB first, which usually
/// holds all of it), with the options the whole-file decoder uses, so that a piece decodes to
/// the same Arrow schema as its file.
pub async fn read_footer(store: &Arc<dyn ObjectStore>, path: &Path, size: u64) -> Result<ArrowReaderMetadata, String> {
    let fetch = StoreFetch { store: store.clone(), path: path.clone() };
    let meta = ParquetMetaDataReader::new()
        .with_prefetch_hint(Some(64 * 1024))
        .load_and_finish(fetch, size)
        .await
        .map_err(|e| format!("cannot read the Parquet footer: {}", crate::secrets::summarize(&e.to_string())))?;
    ArrowReaderMetadata::try_new(Arc::new(meta), ArrowReaderOptions::new())
        .map_err(|e| format!("cannot read the Parquet schema: {e}"))
}

/// The leaf columns under the top-level columns named in `columns` (all when `None`). Names the
/// file lacks are skipped here; the decoder reports them.
pub fn projected_leaves(footer: &ArrowReaderMetadata, columns: Option<&[String]>) -> Vec<usize> {
    let schema = footer.parquet_schema();
    let Some(columns) = columns else { return (0..schema.num_columns()).collect() };
    let roots: Vec<usize> =
        columns.iter().filter_map(|c| footer.schema().fields().iter().position(|f| f.name() == c)).collect();
    (0..schema.num_columns()).filter(|l| roots.contains(&schema.get_column_root_idx(*l))).collect()
}

/// The byte ranges of the column chunks of `groups` for the leaf columns `leaves`, checked
/// against the file's size (a footer is user data: it may lie).
pub fn chunk_ranges(
    meta: &ParquetMetaData,
    groups: Range<usize>,
    leaves: &[usize],
    size: u64,
) -> Result<Vec<Range<u64>>, String> {
    let mut ranges = Vec::with_capacity(groups.len() * leaves.len());
    for g in groups {
        let rg = meta.row_groups().get(g).ok_or_else(|| format!("the footer has no row group {g}"))?;
        for &leaf in leaves {
            let col = rg.columns().get(leaf).ok_or_else(|| format!("row group {g} has no column {leaf}"))?;
            // As parquet's reader does: a chunk starts at its dictionary page, if any.
            let start = col.dictionary_page_offset().unwrap_or_else(|| col.data_page_offset());
            let len = col.compressed_size();
            let range = u64::try_from(start)
                .ok()
                .zip(u64::try_from(len).ok())
                .and_then(|(s, l)| s.checked_add(l).map(|e| s..e))
                .filter(|r| r.end <= size)
                .ok_or_else(|| {
                    format!(
                        "the footer places column {} of row group {g} at bytes {start}+{len}, outside the file's {size} \
                         bytes; the file is damaged",
                        col.column_path()
                    )
                })?;
            ranges.push(range);
        }
    }
    Ok(ranges)
}

/// The column chunks of some row groups of a Parquet file, fetched with ranged requests; the
/// rest of the file is absent. Parquet's synchronous reader decodes from it (on a worker
/// thread), asking only for the chunks of the row groups and columns it was told to read.
#[derive(Debug, Clone)]
pub struct FetchedChunks {
    /// The file's size.
    len: u64,
    /// (offset in the file, bytes), sorted by offset.
    chunks: Vec<(u64, Bytes)>,
}

impl FetchedChunks {
    pub fn new(len: u64, ranges: &[Range<u64>], data: Vec<Bytes>) -> FetchedChunks {
        let mut chunks: Vec<(u64, Bytes)> = ranges.iter().map(|r| r.start).zip(data).collect();
        chunks.sort_by_key(|(s, _)| *s);
        FetchedChunks { len, chunks }
    }

    /// Bytes fetched, for reports.
    pub fn fetched_bytes(&self) -> u64 {
        self.chunks.iter().map(|(_, b)| b.len() as u64).sum()
    }

    fn slice(&self, start: u64, length: Option<usize>) -> parquet::errors::Result<Bytes> {
        let missing = || {
            parquet::errors::ParquetError::General(format!(
                "bytes {start}..{} were not fetched for this piece",
                length.map_or("".to_string(), |l| (start + l as u64).to_string())
            ))
        };
        let i = self.chunks.partition_point(|(s, _)| *s <= start);
        let (s, b) = self.chunks.get(i.checked_sub(1).ok_or_else(missing)?).ok_or_else(missing)?;
        let off = (start - s) as usize;
        let end = match length {
            Some(l) => off.checked_add(l).ok_or_else(missing)?,
            None => b.len(),
        };
        if off > b.len() || end > b.len() {
            return Err(missing());
        }
        Ok(b.slice(off..end))
    }
}

impl Length for FetchedChunks {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for FetchedChunks {
    type T = bytes::buf::Reader<Bytes>;

    fn get_read(&self, start: u64) -> parquet::errors::Result<Self::T> {
        Ok(self.slice(start, None)?.reader())
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        self.slice(start, Some(length))
    }
}

/// Fetches the column chunks of row groups `groups` for `columns` (all when `None`).
pub async fn fetch_row_groups(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    size: u64,
    footer: &ArrowReaderMetadata,
    groups: Range<usize>,
    columns: Option<&[String]>,
) -> Result<FetchedChunks, String> {
    let leaves = projected_leaves(footer, columns);
    let ranges = chunk_ranges(footer.metadata(), groups, &leaves, size)?;
    let data = if ranges.is_empty() {
        Vec::new()
    } else {
        with_retries(&format!("GET {path} ({} column chunks)", ranges.len()), |_| store.get_ranges(path, &ranges))
            .await
            .map_err(|e| format!("cannot read: {}", crate::storage::describe(&e)))?
    };
    Ok(FetchedChunks::new(size, &ranges, data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every piece of `text` cut at `cuts`, feeding it in chunks of `chunk` bytes.
    fn cut(text: &str, cuts: &[u64], chunk: usize) -> Vec<CsvPiece> {
        let mut c = CsvCutter::new(cuts.into(), b',');
        let mut out = Vec::new();
        for part in text.as_bytes().chunks(chunk.max(1)) {
            out.extend(c.feed(part));
        }
        out.extend(c.finish());
        out
    }

    /// The records of a CSV text as the csv crate reads them (header excluded).
    fn records(bytes: &[u8]) -> Vec<Vec<String>> {
        let mut r = csv::ReaderBuilder::new().flexible(true).from_reader(bytes);
        r.byte_records().map(|x| x.unwrap().iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect()).collect()
    }

    fn even_cuts(size: u64, step: u64) -> Vec<u64> {
        let mut v: Vec<u64> = (0..size).step_by(step as usize).collect();
        v.push(size);
        v
    }

    #[test]
    fn scanner_finds_records_across_quotes_and_chunks() {
        let text = b"a,b\r\n1,\"x\ny\"\n\n2,\"p,\"\"q\"\"\"\n3,z";
        for chunk in 1..text.len() {
            let mut s = RecordScanner::new();
            let mut found = Vec::new();
            for (i, part) in text.chunks(chunk).enumerate() {
                s.feed(part, (i * chunk) as u64, &mut found);
            }
            s.finish(text.len() as u64, &mut found);
            use Boundary::*;
            // The \n after \r, and the empty line, are skipped between records.
            assert_eq!(
                found,
                [Start(0), End(4), Start(5), End(13), Start(14), End(26), Start(26), End(29)],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn a_header_too_long_to_copy_into_every_piece_stops_the_cutter() {
        let mut c = CsvCutter::new(vec![0, 10, 20].into(), b',');
        let chunk = vec![b'a'; 1 << 20];
        for _ in 0..=(MAX_HEADER_BYTES >> 20) {
            assert!(c.feed(&chunk).is_empty());
        }
        assert!(c.header_too_long && c.is_finished());
    }

    #[test]
    fn pieces_hold_the_records_starting_in_their_range() {
        let text = "h1,h2\n0,a\n1,\"multi\nline, with comma\"\n2,c\n3,d\n";
        // Records start at 6, 10, 37, 41.
        let pieces = cut(text, &[0, 8, 38, text.len() as u64], 3);
        assert_eq!(pieces.len(), 3);
        let rows: Vec<(u64, u64)> = pieces.iter().map(|p| (p.first_row, p.rows)).collect();
        assert_eq!(rows, [(0, 1), (1, 2), (3, 1)]);
        assert_eq!(&pieces[0].bytes[..], b"h1,h2\n0,a\n");
        assert_eq!(&pieces[1].bytes[..], b"h1,h2\n1,\"multi\nline, with comma\"\n2,c\n");
        assert_eq!(&pieces[2].bytes[..], b"h1,h2\n3,d\n");
    }

    #[test]
    fn any_cuts_give_back_every_record_once_in_order() {
        let text = "id,t\r\n0,\"a\nb\"\r\n1,plain\r\n\r\n2,\"q \"\"x\"\" ,\n\"\r\n3,\r\n4,last";
        let want = records(text.as_bytes());
        assert_eq!(want.len(), 5);
        let size = text.len() as u64;
        for step in 1..=size {
            for chunk in [1, 2, 7, 64] {
                let pieces = cut(text, &even_cuts(size, step), chunk);
                assert_eq!(pieces.len(), size.div_ceil(step) as usize, "step {step}");
                let mut got = Vec::new();
                let mut next_row = 0;
                for (k, p) in pieces.iter().enumerate() {
                    assert_eq!(p.index, k);
                    assert_eq!(p.first_row, next_row, "step {step} chunk {chunk} piece {k}");
                    let recs = records(&p.bytes);
                    assert_eq!(recs.len() as u64, p.rows, "step {step} chunk {chunk} piece {k}: {:?}", p.bytes);
                    next_row += p.rows;
                    got.extend(recs);
                }
                assert_eq!(got, want, "step {step} chunk {chunk}");
            }
        }
    }

    #[test]
    fn a_rewind_restarts_at_the_last_piece() {
        let text = "h\n1\n2\n3\n4\n5\n";
        let cuts = [0u64, 4, 8, text.len() as u64];
        let mut c = CsvCutter::new(cuts.as_slice().into(), b',');
        // Feed up to the middle of piece 1, then fail.
        let first = c.feed(&text.as_bytes()[..7]);
        assert_eq!(first.len(), 1);
        assert_eq!((first[0].first_row, first[0].rows), (0, 1));
        c.rewind();
        let from = c.resume_offset() as usize;
        assert_eq!(from, 4, "piece 1 starts after record 0");
        let mut rest = c.feed(&text.as_bytes()[from..]);
        rest.extend(c.finish());
        let got: Vec<(usize, u64, u64)> = rest.iter().map(|p| (p.index, p.first_row, p.rows)).collect();
        assert_eq!(got, [(1, 1, 2), (2, 3, 2)]);
        assert_eq!(&rest[0].bytes[..], b"h\n2\n3\n");
    }

    #[test]
    fn header_only_and_empty_ranges_give_empty_pieces() {
        let pieces = cut("a,b\n", &[0, 2, 4], 1);
        assert_eq!(pieces.iter().map(|p| p.rows).collect::<Vec<_>>(), [0, 0]);
        assert!(pieces.iter().all(|p| &p.bytes[..] == b"a,b\n"));
        // One long quoted record spans three nominal ranges: the middle ones are empty.
        let text = "h\n\"long long long\"\nx\n";
        let pieces = cut(text, &even_cuts(text.len() as u64, 5), 4);
        let rows: Vec<u64> = pieces.iter().map(|p| p.rows).collect();
        assert_eq!(rows, [1, 0, 0, 1, 0]);
        assert_eq!(pieces[3].first_row, 1);
    }

    #[test]
    fn samples_count_rows_and_estimate_width() {
        let s = CsvSample::scan(b"a,b\n1,2\n3,\"4\n5\"\n", true, b',');
        assert_eq!((s.header_end, s.starts.clone(), s.whole), (4, vec![4, 8], true));
        assert_eq!(s.bytes_per_row(), Some(6.0));
        let partial = CsvSample::scan(b"a,b\n1,2\n3,4", false, b',');
        assert_eq!(partial.starts, vec![4], "the last record may be cut off");
    }

    #[tokio::test]
    async fn row_group_pieces_fetch_and_decode_only_their_columns() {
        use arrow::array::{Array, AsArray, Float64Array, Int64Array, RecordBatch, StringArray};
        use arrow::datatypes::Int64Type;
        use parquet::arrow::ArrowWriter;
        use parquet::arrow::ProjectionMask;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        use parquet::file::properties::WriterProperties;

        let n = 100i64;
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from_iter_values(0..n)) as Arc<dyn Array>),
            ("x", Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64 / 2.0))) as _),
            ("text", Arc::new(StringArray::from_iter_values((0..n).map(|i| "t".repeat(50 + i as usize)))) as _),
        ])
        .unwrap();
        let mut buf = Vec::new();
        let props = WriterProperties::builder().set_max_row_group_row_count(Some(20)).build();
        let mut w = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let size = buf.len() as u64;
        let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
        let path = Path::from("t.parquet");
        store.put(&path, Bytes::from(buf).into()).await.unwrap();

        let footer = read_footer(&store, &path, size).await.unwrap();
        assert_eq!(footer.metadata().num_row_groups(), 5);
        let columns = ["id".to_string()];
        let chunks = fetch_row_groups(&store, &path, size, &footer, 2..4, Some(&columns)).await.unwrap();
        // Only the `id` chunks of two row groups out of five: far less than the file.
        assert!(chunks.fetched_bytes() * 10 < size, "{} of {size} bytes", chunks.fetched_bytes());
        let mask = ProjectionMask::roots(footer.parquet_schema(), [0]);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(chunks, footer.clone())
            .with_row_groups(vec![2, 3])
            .with_projection(mask)
            .build()
            .unwrap();
        let ids: Vec<i64> =
            reader.flat_map(|b| b.unwrap().column(0).as_primitive::<Int64Type>().values().to_vec()).collect();
        assert_eq!(ids, (40..80).collect::<Vec<_>>());

        // A footer that places a chunk outside the file is refused with a message, not a panic.
        let e = chunk_ranges(footer.metadata(), 0..1, &[0], 10).unwrap_err();
        assert!(e.contains("outside the file") && e.contains("damaged"), "{e}");
    }

    #[test]
    fn fetched_chunks_serve_only_what_was_fetched() {
        let f =
            FetchedChunks::new(100, &[10..20, 40..50], vec![Bytes::from(vec![1u8; 10]), Bytes::from(vec![2u8; 10])]);
        assert_eq!(f.get_bytes(12, 3).unwrap(), Bytes::from(vec![1u8; 3]));
        assert_eq!(f.get_bytes(40, 10).unwrap().len(), 10);
        assert!(f.get_bytes(15, 10).is_err());
        assert!(f.get_bytes(5, 1).is_err());
        assert!(f.get_bytes(25, 1).is_err());
        let mut r = f.get_read(45).unwrap();
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut v).unwrap();
        assert_eq!(v, vec![2u8; 5]);
        assert_eq!(Length::len(&f), 100);
    }
}
