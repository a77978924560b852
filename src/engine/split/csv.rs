//! Reading CSV files in pieces: streaming a file once and handing out its pieces
//! ([`CsvSplitter`]), and sampling a file's head at plan time ([`sample_csv`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{GetOptions, GetRange, GetResult, GetResultPayload, ObjectStore, ObjectStoreExt};

use super::records::{Boundary, CsvCutter, CsvPiece, MAX_HEADER_BYTES, RecordScanner};
use crate::storage::{is_transient, retry_policy, with_retries};

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
                    crate::engine::settings::format_byte_size(MAX_HEADER_BYTES)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_count_rows_and_estimate_width() {
        let s = CsvSample::scan(b"a,b\n1,2\n3,\"4\n5\"\n", true, b',');
        assert_eq!((s.header_end, s.starts.clone(), s.whole), (4, vec![4, 8], true));
        assert_eq!(s.bytes_per_row(), Some(6.0));
        let partial = CsvSample::scan(b"a,b\n1,2\n3,4", false, b',');
        assert_eq!(partial.starts, vec![4], "the last record may be cut off");
    }
}
