//! Reading: fetch the bytes of each mini-batch's files through `object_store`, on tokio.
//!
//! The reader walks the mini-batches it is given in order, fetching a few ahead (`ahead`, sized by the job to
//! about 128 MB of input) with a bounded number of requests in flight (`io_concurrency`), and
//! hands each mini-batch to the workers over a bounded channel: when the workers fall behind,
//! the channel fills and the reader waits, so memory holds at most `ahead + channel capacity +
//! workers` mini-batches, never the dataset.
//! A file that cannot be read is passed on as an error; the worker retries it.
//!
//! Items are whole files, or pieces of large tabular files ([`crate::engine::split`]): a Parquet piece
//! is the column chunks of its row groups for the projected columns (ranged reads), a CSV piece
//! comes from its file's [`CsvSplitter`], which streams the file once and cuts it at record
//! boundaries. Decoding is left to the workers.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::path::Path;

use crate::engine::plan::{Part, Plan};
use crate::engine::split::{CsvPiece, CsvSplitter, FetchedChunks, fetch_row_groups};

/// What reading one item gave.
pub enum ItemBytes {
    /// A whole file.
    Whole(Bytes),
    /// The column chunks of a Parquet piece's row groups.
    RowGroups(FetchedChunks),
    /// A CSV piece: the header and the piece's records.
    Csv(CsvPiece),
}

/// The bytes of one mini-batch's items, in item order.
pub struct Fetched {
    pub mini_batch: usize,
    pub bytes: Vec<Result<ItemBytes, String>>,
    /// Seconds from the first request to the last byte.
    pub seconds: f64,
}

/// Reads one whole object.
pub async fn fetch_one(store: &Arc<dyn ObjectStore>, path: &Path) -> Result<Bytes, String> {
    crate::storage::get_bytes(store, path).await.map_err(|e| format!("cannot read: {}", crate::storage::describe(&e)))
}

/// Reads the items of a plan. Shared by the reader task and the workers, which re-read an
/// item whose read failed.
pub struct ItemReader {
    store: Arc<dyn ObjectStore>,
    plan: Arc<Plan>,
    /// The columns to fetch from Parquet pieces; `None` for all.
    columns: Option<Vec<String>>,
    /// One per CSV file cut into pieces, by file index.
    splitters: HashMap<usize, CsvSplitter>,
}

impl ItemReader {
    /// `columns`: the columns the decoder needs (`None`: every column); `delimiter`: a CSV
    /// file's delimiter, from its name.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        plan: Arc<Plan>,
        columns: Option<Vec<String>>,
        delimiter: &dyn Fn(&str) -> u8,
    ) -> ItemReader {
        let mut cuts: HashMap<usize, Vec<u64>> = HashMap::new();
        for item in &plan.items {
            if let Part::CsvRecords { bytes, .. } = &item.part {
                cuts.entry(item.file).or_insert_with(|| vec![bytes.start]).push(bytes.end);
            }
        }
        let splitters = cuts
            .into_iter()
            .map(|(file, cuts)| {
                let f = &plan.files[file];
                (file, CsvSplitter::new(store.clone(), f.path.clone(), f.size, cuts.into(), delimiter(&f.rel)))
            })
            .collect();
        ItemReader { store, plan, columns, splitters }
    }

    /// Reads item `item` of the plan.
    pub async fn fetch(&self, item: usize) -> Result<ItemBytes, String> {
        let it = &self.plan.items[item];
        let file = &self.plan.files[it.file];
        match &it.part {
            Part::Whole => fetch_one(&self.store, &file.path).await.map(ItemBytes::Whole),
            Part::RowGroups { groups, footer, .. } => {
                fetch_row_groups(&self.store, &file.path, file.size, footer, groups.clone(), self.columns.as_deref())
                    .await
                    .map(ItemBytes::RowGroups)
            }
            Part::CsvRecords { piece, .. } => match self.splitters.get(&it.file) {
                Some(s) => s.piece(*piece).await.map(ItemBytes::Csv),
                None => Err(format!("no reader for the pieces of {} (an internal error; please report it)", file.rel)),
            },
        }
    }
}

/// Fetches the mini-batches `ids` names (in its order: the plan's, for a job in one process; as
/// they are claimed, for one of several) and sends them on `tx`; stops early on `cancel`.
pub async fn run_reader(
    reader: Arc<ItemReader>,
    ids: futures::stream::BoxStream<'static, usize>,
    tx: flume::Sender<Fetched>,
    cancel: Arc<AtomicBool>,
    ahead: usize,
    io_concurrency: usize,
) {
    let plan = reader.plan.clone();
    let mut stream = ids
        .map(|id| (id, plan.mini_batches[id].clone()))
        .map(|(id, range)| {
            let reader = reader.clone();
            let cancel = cancel.clone();
            async move {
                let started = Instant::now();
                if cancel.load(Ordering::Relaxed) {
                    return None;
                }
                let bytes = futures::stream::iter(range)
                    .map(|i| {
                        let reader = reader.clone();
                        async move { reader.fetch(i).await }
                    })
                    .buffered(io_concurrency)
                    .collect::<Vec<_>>()
                    .await;
                Some(Fetched { mini_batch: id, bytes, seconds: started.elapsed().as_secs_f64() })
            }
        })
        .buffered(ahead.max(1));
    while let Some(fetched) = stream.next().await {
        let Some(fetched) = fetched else { break };
        if cancel.load(Ordering::Relaxed) || tx.send_async(fetched).await.is_err() {
            break;
        }
    }
}
