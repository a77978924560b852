//! A mini-batch's output rows encoded for its part, where it was scored: on the session's own
//! thread, so that encoding runs on every core side by side instead of on the collector's one
//! thread (which then only writes finished bytes, and the assembly only appends them in order).
//!
//! For a CSV output the rows become CSV text (header line first); for Parquet a part of
//! [`crate::engine::parquet_out::SPLICE_MIN_ROWS`] rows or more becomes a small Parquet file
//! whose row groups the assembly copies as they are, and smaller ones stay Arrow, which the
//! assembly gathers into row groups. A summary-only job keeps no rows.

use arrow::array::RecordBatch;
use bytes::Bytes;

use crate::engine::settings::{OutputAction, OutputFormat, Settings};

/// A mini-batch's rows on their way into its part.
#[derive(Debug)]
pub(super) enum PartRows {
    /// As scored: not encoded yet, or (a small Parquet part) kept as Arrow.
    Arrow(RecordBatch),
    Parquet(Vec<u8>),
    /// CSV text (`text[room..]`, after room for the part's head) and the length of its header
    /// line.
    Csv {
        text: Vec<u8>,
        room: usize,
        header: usize,
    },
}

impl PartRows {
    /// The rows as the part stores them, and the length of a CSV header line.
    pub fn into_part(self) -> (crate::engine::state::part::Rows, Option<usize>) {
        use crate::engine::state::part::Rows;
        match self {
            PartRows::Arrow(b) => (Rows::Arrow(b), None),
            PartRows::Parquet(file) => (Rows::Parquet(Bytes::from(file)), None),
            PartRows::Csv { text, room, header } => (Rows::Csv(Bytes::from(text).slice(room..)), Some(header)),
        }
    }
}

/// Encodes rows as scored the way the output stores them (rows already encoded stay as they
/// are); `None` for a summary-only job, which keeps no rows.
pub(super) fn encode_rows(settings: &Settings, rows: Option<PartRows>) -> Result<Option<PartRows>, String> {
    if settings.output_action != OutputAction::AppendRow {
        return Ok(None);
    }
    let Some(PartRows::Arrow(batch)) = rows else { return Ok(rows) };
    Ok(Some(match settings.output_format {
        OutputFormat::Csv => {
            let room = crate::engine::state::part::HEAD_ROOM;
            let (text, header) = crate::engine::collect::csv_bytes(&batch, room);
            PartRows::Csv { text, room, header }
        }
        OutputFormat::Parquet if crate::engine::parquet_out::splices(&batch) => {
            PartRows::Parquet(crate::engine::parquet_out::encode_part(&batch)?)
        }
        OutputFormat::Parquet => PartRows::Arrow(batch),
    }))
}
