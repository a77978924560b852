//! CSV record boundaries, and cutting a CSV file fed in order into pieces at them: the I/O-free
//! core of the CSV splitter ([`super::csv`]).

use std::sync::Arc;

use bytes::{Bytes, BytesMut};

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
/// This is the I/O-free core of [`super::CsvSplitter`]. It can be rewound to the start of the piece
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
pub const MAX_HEADER_BYTES: u64 = crate::engine::settings::limits::DEFAULT_MAX_RECORD_BYTES;

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
}
