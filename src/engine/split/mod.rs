//! Splitting large tabular files below file level, so that one 5 GB file is not one unit of work.
//!
//! With `mini_batch_rows` or a size form of `mini_batch_size` (`64MB`), [`crate::engine::plan`] cuts
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
//! Every request goes through [`crate::storage::with_retries`], as whole-file reads do.
//!
//! - [`records`]: record boundaries and the cutting of a CSV text into pieces (no I/O);
//! - [`mod@csv`]: streaming a CSV file once into its pieces, and sampling its head;
//! - [`parquet`]: footers and the column chunks of row groups.

pub mod csv;
pub mod parquet;
pub mod records;

pub use self::csv::{CsvSample, CsvSplitter, sample_csv};
pub use self::parquet::{FetchedChunks, chunk_ranges, fetch_row_groups, projected_leaves, read_footer};
pub use self::records::{Boundary, CsvCutter, CsvPiece, MAX_HEADER_BYTES, RecordScanner};
