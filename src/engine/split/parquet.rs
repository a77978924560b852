//! Reading Parquet files in pieces: footers with ranged requests at plan time, and the column
//! chunks of some row groups, decoded from what was fetched.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::arrow::async_reader::MetadataFetch;
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};

use crate::storage::with_retries;

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
