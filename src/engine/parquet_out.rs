//! The Parquet predictions file, written so that its encoding overlaps scoring.
//!
//! A part of at least [`SPLICE_MIN_ROWS`] rows is encoded where it is scored, as a small
//! Parquet file ([`encode_part`]) with the output's writer settings; the assembly then copies its
//! row groups into the output as they are (their compressed pages, statistics and page index),
//! the way `parquet-concat` does, instead of decoding and encoding them again after the
//! scoring. Smaller parts stay Arrow and are gathered into row groups of up to
//! [`ROW_GROUP_ROWS`] here, so that a job of many small mini-batches does not make a file of
//! thousands of tiny row groups. A part whose schema differs from the file's (pass-through
//! columns typed differently) is decoded and cast, as an Arrow part would be.

use std::io::Write;
use std::sync::{Arc, Mutex};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Schema, SchemaRef};
use bytes::Bytes;
use object_store::buffered::BufWriter;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::arrow_writer::{ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::writer::ColumnCloseResult;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use tokio::io::AsyncWriteExt;

/// Rows per row group the output gathers small parts into (and a big part is cut into).
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// A part with at least this many rows is encoded as Parquet where it is scored.
pub const SPLICE_MIN_ROWS: usize = 8 * 1024;

/// The output's writer settings. A row group is held in memory until it is written: 64k rows
/// keep that to a few MB. Dictionaries pay off for the file names and text pass-through
/// columns (few distinct values); for scores, row numbers and ids they only cost a hash per
/// value before the writer gives up on them. Whole-number columns (row numbers, ids, class
/// labels, dates and times) are stored as `DELTA_BINARY_PACKED`: a column of consecutive row
/// numbers shrinks to a few bits per value before zstd sees it, which on bench-compare's
/// W1-gbdt output made the encode 40% cheaper and the file 23% smaller than plain pages
/// (BENCHMARKS.md). pyarrow, pandas, Polars, DuckDB and Spark 3.3+ read it.
pub fn properties(schema: &Schema) -> WriterProperties {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_dictionary_enabled(false);
    for f in schema.fields() {
        let path = || ColumnPath::from(f.name().as_str());
        let t = f.data_type();
        if matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) {
            props = props.set_column_dictionary_enabled(path(), true);
        } else if t.is_integer()
            || matches!(
                t,
                DataType::Date32
                    | DataType::Date64
                    | DataType::Timestamp(..)
                    | DataType::Time32(_)
                    | DataType::Time64(_)
            )
        {
            props = props.set_column_encoding(path(), Encoding::DELTA_BINARY_PACKED);
        }
    }
    props.build()
}

/// A part's rows as a Parquet file with the output's settings.
pub fn encode_part(rows: &RecordBatch) -> Result<Vec<u8>, String> {
    let schema = rows.schema();
    let mut w =
        ArrowWriter::try_new(Vec::new(), schema.clone(), Some(properties(&schema))).map_err(|e| e.to_string())?;
    w.write(rows).map_err(|e| e.to_string())?;
    w.into_inner().map_err(|e| e.to_string())
}

/// Whether a part's rows are stored as Parquet (rather than Arrow).
pub fn splices(rows: &RecordBatch) -> bool {
    rows.num_rows() >= SPLICE_MIN_ROWS
}

/// What the synchronous Parquet writer writes into; drained into the upload after each row group.
#[derive(Clone, Default)]
struct Shared(Arc<Mutex<Vec<u8>>>);

impl Shared {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Open {
    file: SerializedFileWriter<Shared>,
    factory: ArrowRowGroupWriterFactory,
    schema: SchemaRef,
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    buf: Shared,
}

type Error = Box<dyn std::error::Error + Send + Sync>;

/// The predictions file being written to its staging object.
pub struct ParquetOut {
    upload: BufWriter,
    open: Option<Box<Open>>,
}

impl ParquetOut {
    pub fn new(upload: BufWriter) -> ParquetOut {
        ParquetOut { upload, open: None }
    }

    fn opened(&mut self, schema: &SchemaRef) -> Result<&mut Open, Error> {
        if self.open.is_none() {
            let buf = Shared::default();
            let w = ArrowWriter::try_new(buf.clone(), schema.clone(), Some(properties(schema)))?;
            let (file, factory) = w.into_serialized_writer()?;
            let schema = schema.clone();
            self.open = Some(Box::new(Open { file, factory, schema, pending: Vec::new(), pending_rows: 0, buf }));
        }
        Ok(self.open.as_mut().expect("opened above"))
    }

    /// Appends rows; the first rows fix the file's schema, later ones are cast to it.
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<(), Error> {
        let open = self.opened(&batch.schema())?;
        let batch = super::collect::conform(batch, &open.schema)?;
        open.pending_rows += batch.num_rows();
        open.pending.push(batch);
        if open.pending_rows >= ROW_GROUP_ROWS {
            open.flush_pending()?;
            self.drain().await?;
        }
        Ok(())
    }

    /// Appends a part's Parquet rows ([`encode_part`]): their row groups as they are when the
    /// part's schema is the file's, else decoded and cast.
    pub async fn splice(&mut self, part: Bytes) -> Result<(), Error> {
        let meta =
            ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Optional).parse_and_finish(&part)?;
        let fm = meta.file_metadata();
        let schema = Arc::new(parquet::arrow::parquet_to_arrow_schema(fm.schema_descr(), fm.key_value_metadata())?);
        let open = self.opened(&schema)?;
        if open.schema.fields() != schema.fields() || open.file.schema_descr() != fm.schema_descr() {
            let reader = ParquetRecordBatchReaderBuilder::try_new(part)?.build()?;
            for batch in reader {
                self.write(&batch?).await?;
            }
            return Ok(());
        }
        open.flush_pending()?;
        let index = meta.page_index();
        for (g, group) in meta.row_groups().iter().enumerate() {
            let mut out = open.file.next_row_group()?;
            for (c, column) in group.columns().iter().enumerate() {
                let close = ColumnCloseResult {
                    bytes_written: column.compressed_size() as u64,
                    rows_written: group.num_rows() as u64,
                    metadata: column.clone(),
                    bloom_filter: None,
                    column_index: index.and_then(|i| i.column_index(g, c)).cloned(),
                    offset_index: index.and_then(|i| i.offset_index(g, c)).cloned(),
                };
                out.append_column(&part, close)?;
            }
            out.close()?;
        }
        self.drain().await
    }

    async fn drain(&mut self) -> Result<(), Error> {
        let Some(open) = &self.open else { return Ok(()) };
        let bytes = open.buf.take();
        if !bytes.is_empty() {
            self.upload.write_all(&bytes).await?;
        }
        Ok(())
    }

    /// Completes the file and its upload. Returns false when no rows ever came.
    pub async fn finish(mut self) -> Result<bool, Error> {
        let Some(open) = self.open.as_mut() else {
            self.upload.abort().await?;
            return Ok(false);
        };
        open.flush_pending()?;
        open.file.finish()?;
        self.drain().await?;
        self.upload.shutdown().await?;
        Ok(true)
    }

    pub async fn abort(mut self) {
        let _ = self.upload.abort().await;
    }
}

impl Open {
    /// Writes the gathered batches as row groups of up to [`ROW_GROUP_ROWS`].
    fn flush_pending(&mut self) -> Result<(), Error> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let all = arrow::compute::concat_batches(&self.schema, &std::mem::take(&mut self.pending))?;
        self.pending_rows = 0;
        let mut start = 0;
        while start < all.num_rows() {
            let rows = all.slice(start, (all.num_rows() - start).min(ROW_GROUP_ROWS));
            start += rows.num_rows();
            let mut writers = self.factory.create_column_writers(self.file.flushed_row_groups().len())?.into_iter();
            let mut chunks = Vec::new();
            for (field, column) in self.schema.fields().iter().zip(rows.columns()) {
                for leaf in compute_leaves(field, column)? {
                    let mut w = writers.next().ok_or("fewer column writers than leaves")?;
                    w.write(&leaf)?;
                    chunks.push(w.close()?);
                }
            }
            let mut group = self.file.next_row_group()?;
            for chunk in chunks {
                chunk.append_to_row_group(&mut group)?;
            }
            group.close()?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{ArrayRef, Float32Array, Int64Array, StringArray};

    use super::*;

    fn rows(from: usize, n: usize) -> RecordBatch {
        let file: ArrayRef = Arc::new(StringArray::from_iter_values((from..from + n).map(|i| format!("f{}", i % 7))));
        let row: ArrayRef = Arc::new(Int64Array::from_iter_values((from..from + n).map(|i| i as i64)));
        let score: ArrayRef =
            Arc::new(Float32Array::from_iter((from..from + n).map(|i| (i % 5 == 0).then_some(i as f32))));
        RecordBatch::try_from_iter([("file", file), ("row", row), ("score", score)]).unwrap()
    }

    /// A writer of `dir/p.parquet`.
    fn out_in(dir: &std::path::Path) -> ParquetOut {
        let store: Arc<dyn object_store::ObjectStore> =
            Arc::new(object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap());
        ParquetOut::new(BufWriter::new(store, "p.parquet".into()))
    }

    #[tokio::test]
    async fn spliced_and_gathered_rows_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = out_in(dir.path());
        // Small parts gathered, big ones spliced (one of them bigger than a row group), mixed.
        let sizes = [10, 20_000, 5, 3, 70_000, 9_000, 1];
        let mut from = 0;
        for n in sizes {
            let part = rows(from, n);
            if splices(&part) {
                out.splice(Bytes::from(encode_part(&part).unwrap())).await.unwrap();
            } else {
                out.write(&part).await.unwrap();
            }
            from += n;
        }
        assert!(out.finish().await.unwrap());
        let file = std::fs::File::open(dir.path().join("p.parquet")).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let groups: Vec<i64> = builder.metadata().row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(groups, [10, 20_000, 8, 65_536, 4_464, 9_000, 1], "small parts are gathered, big ones kept");
        let got: Vec<RecordBatch> = builder.build().unwrap().map(Result::unwrap).collect();
        let got = arrow::compute::concat_batches(&got[0].schema(), &got).unwrap();
        assert_eq!(got, rows(0, from), "every row once, in order, with its nulls");
    }

    #[test]
    fn whole_numbers_are_delta_packed_and_read_back_exactly() {
        use arrow::array::{TimestampMicrosecondArray, UInt64Array};
        use parquet::file::reader::{FileReader, SerializedFileReader};
        // Extremes, wrapping deltas and nulls, next to a float column that stays plain.
        let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(i64::MIN), Some(i64::MAX), None, Some(-1), Some(0)]));
        let rows: ArrayRef = Arc::new(UInt64Array::from(vec![u64::MAX, 0, 1, u64::MAX - 1, 7]));
        let at: ArrayRef = Arc::new(TimestampMicrosecondArray::from(vec![0, -5, 1 << 50, 3, 3]).with_timezone("UTC"));
        let score: ArrayRef = Arc::new(Float32Array::from(vec![0.5, f32::NAN, 1.0, -0.0, 2.0]));
        let batch = RecordBatch::try_from_iter([("id", ids), ("row", rows), ("at", at), ("score", score)]).unwrap();
        let bytes = Bytes::from(encode_part(&batch).unwrap());
        let meta = SerializedFileReader::new(bytes.clone()).unwrap().metadata().clone();
        let encodings: Vec<Vec<Encoding>> =
            meta.row_group(0).columns().iter().map(|c| c.encodings().collect()).collect();
        for (c, e) in encodings[..3].iter().enumerate() {
            assert!(e.contains(&Encoding::DELTA_BINARY_PACKED), "column {c}: {e:?}");
        }
        assert!(!encodings[3].contains(&Encoding::DELTA_BINARY_PACKED), "floats stay plain: {:?}", encodings[3]);
        let got: Vec<RecordBatch> =
            ParquetRecordBatchReaderBuilder::try_new(bytes).unwrap().build().unwrap().map(Result::unwrap).collect();
        let got = arrow::compute::concat_batches(&got[0].schema(), &got).unwrap();
        for c in 0..3 {
            assert_eq!(got.column(c), batch.column(c), "column {c}");
        }
        let s = got.column(3).as_any().downcast_ref::<Float32Array>().unwrap();
        assert!(s.value(1).is_nan() && s.value(3).is_sign_negative() && s.value(4) == 2.0);
    }

    #[tokio::test]
    async fn a_part_typed_otherwise_is_cast_to_the_files_schema() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = out_in(dir.path());
        out.splice(Bytes::from(encode_part(&rows(0, 10_000)).unwrap())).await.unwrap();
        let other = rows(10_000, 10_000);
        let row32: ArrayRef = Arc::new(arrow::compute::cast(other.column(1), &DataType::Int32).unwrap());
        let other = RecordBatch::try_from_iter([
            ("file", other.column(0).clone()),
            ("row", row32),
            ("score", other.column(2).clone()),
        ])
        .unwrap();
        out.splice(Bytes::from(encode_part(&other).unwrap())).await.unwrap();
        assert!(out.finish().await.unwrap());
        let file = std::fs::File::open(dir.path().join("p.parquet")).unwrap();
        let got: Vec<RecordBatch> =
            ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(Result::unwrap).collect();
        let got = arrow::compute::concat_batches(&got[0].schema(), &got).unwrap();
        assert_eq!(got, rows(0, 20_000));
    }
}
