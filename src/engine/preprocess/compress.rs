//! Compressed text files (`.csv.gz`, `.csv.zst`, `.csv.bz2`, `.jsonl.gz`, ...), decompressed
//! in memory on the worker that decodes them, with a bound on the decompressed size so that a
//! small hostile file (a "zip bomb") cannot take the machine's memory.

use std::io::Read;

use bytes::Bytes;

use super::DecodeError;
use crate::engine::plan::Compression;
use crate::engine::settings::format_byte_size;

/// The most a compressed file of `compressed` bytes may decompress to: 100 times its size (text
/// compresses 5-50 times; a bomb, thousands), at least 256 MiB, at most 4 GiB (or four records
/// of `max_record_bytes`, if more).
pub fn max_decompressed(max_record_bytes: u64, compressed: u64) -> u64 {
    compressed.saturating_mul(100).clamp(256 << 20, 4 << 30).max(max_record_bytes.saturating_mul(4))
}

/// Decompresses a whole file, failing if it holds more than `limit` bytes.
pub fn decompress(c: Compression, name: &str, bytes: &[u8], limit: u64) -> Result<Bytes, DecodeError> {
    let reader: Box<dyn Read + '_> = match c {
        Compression::None => return Ok(Bytes::copy_from_slice(bytes)),
        // Concatenated gzip members (as `cat a.gz b.gz` makes) are one stream, as gzip reads them.
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(bytes)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::new(bytes)
                .map_err(|e| DecodeError(format!("{name}: not a readable zstd file: {e}")))?,
        ),
        Compression::Bzip2 => Box::new(bzip2::read::MultiBzDecoder::new(bytes)),
    };
    let what = match c {
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
        Compression::Bzip2 => "bzip2",
        Compression::None => unreachable!(),
    };
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(64 << 20));
    let read = reader.take(limit + 1).read_to_end(&mut out);
    match read {
        Ok(_) if out.len() as u64 > limit => Err(DecodeError(format!(
            "{name}: decompresses to more than {}, more than a compressed file of its size should (a \
             decompression bomb?); decompress it and split it into smaller files",
            format_byte_size(limit)
        ))),
        Ok(_) => Ok(Bytes::from(out)),
        Err(e) => Err(DecodeError(format!("{name}: not a readable {what} file (truncated or damaged?): {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn the_bound_follows_the_compressed_size() {
        assert_eq!(max_decompressed(32 << 20, 16 << 10), 256 << 20);
        assert_eq!(max_decompressed(32 << 20, 10 << 20), 1000 << 20);
        assert_eq!(max_decompressed(32 << 20, 1 << 30), 4 << 30);
    }

    #[test]
    fn every_format_round_trips_and_bombs_are_refused() {
        let text = b"a,b\n1,2\n".repeat(1000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&text[..], 3).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&text).unwrap();
        let bz = bz.finish().unwrap();
        for (c, data) in [(Compression::Gzip, &gz), (Compression::Zstd, &zst), (Compression::Bzip2, &bz)] {
            assert_eq!(&decompress(c, "x", data, 1 << 20).unwrap()[..], &text[..], "{c:?}");
            let e = decompress(c, "x.gz", data, 100).unwrap_err().0;
            assert!(e.contains("more than 100B"), "{e}");
            let e = decompress(c, "x.gz", &data[..data.len() / 2], 1 << 20).unwrap_err().0;
            assert!(e.contains("truncated"), "{c:?}: {e}");
        }
    }
}
