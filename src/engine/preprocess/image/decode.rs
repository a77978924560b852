//! Image files into pixels, as users' Python code sees them.
//!
//! - **Orientation.** A photo's EXIF orientation is applied (as viewers, PIL's
//!   `ImageOps.exif_transpose` and OpenCV's `imread` do) unless `--exif-orientation ignore`.
//! - **One channel** is ITU-R 601 luma, `L = R*299/1000 + G*587/1000 + B*114/1000`, computed
//!   the way PIL's `convert("L")` does (fixed point, rounded), which OpenCV's and torchvision's
//!   grayscale conversions also use; not the Rec.709 weights of the `image` crate.
//! - **Damaged files fail alone**, naming the file. A JPEG that ends before its end-of-image
//!   marker is refused as truncated: its decoder would otherwise fill the missing part with grey
//!   and score it as if it were whole (PIL refuses it too).
//! - **JPEG through libjpeg-turbo**, PIL's own decoder, and at 1/2, 1/4 or 1/8 of its size
//!   when the model's input is that much smaller (`fit`, as PIL's `Image.draft` does): see
//!   [`super::turbo`]. A JPEG libjpeg-turbo refuses or warns about goes to the `image` crate's
//!   decoder (zune-jpeg) as before.
//! - **Bounded.** The size in the header is checked against `--max-image-pixels` (PIL's
//!   decompression-bomb limit by default) before any pixel is decoded, and the decoder's
//!   allocations are capped to match.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, metadata::Orientation};

use super::super::DecodeError;
use super::turbo;
use crate::engine::settings::ExifMode;

/// Bytes a decoder may allocate per pixel of the limit (16-bit RGBA and its scratch space).
const ALLOC_PER_PIXEL: u64 = 16;

/// Decodes `bytes` (the file `name`), upright unless `exif` says to ignore the orientation.
/// `fit` is the size the pixels will be resized to, if any: a JPEG may then be decoded smaller,
/// but never smaller than that on either side.
pub fn load(
    name: &str,
    bytes: &[u8],
    exif: ExifMode,
    max_pixels: u64,
    fit: Option<(u32, u32)>,
) -> Result<DynamicImage, DecodeError> {
    let fail = |what: String| DecodeError(format!("{name}: {what}"));
    if bytes.is_empty() {
        return Err(fail("the file is empty".into()));
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF])
        && let Some(img) = jpeg_turbo(name, bytes, exif, max_pixels, fit)?
    {
        return Ok(img);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| fail(format!("cannot read the image: {e}")))?;
    // Formats without a signature (TGA) are known by their extension.
    if reader.format().is_none() && ImageFormat::from_path(name).is_ok_and(|f| f == ImageFormat::Tga) {
        reader.set_format(ImageFormat::Tga);
    }
    let format = reader.format().ok_or_else(|| {
        let head: String = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ");
        fail(format!("not an image format batchscore reads (the file starts with bytes {head})"))
    })?;
    if format == ImageFormat::Ico
        && let Some(png) = ico_png(bytes)
    {
        return load(name, png, exif, max_pixels, fit);
    }
    let mut decoder = reader.into_decoder().map_err(|e| fail(format!("cannot decode the image: {e}")))?;
    let (w, h) = decoder.dimensions();
    within_limit(name, w, h, max_pixels)?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(ALLOC_PER_PIXEL).max(64 << 20));
    decoder.set_limits(limits).map_err(|e| fail(format!("cannot decode the image: {e}")))?;
    let orientation = match exif {
        // An unreadable EXIF block leaves the pixels as stored, as viewers do.
        ExifMode::Apply => decoder.orientation().unwrap_or(Orientation::NoTransforms),
        ExifMode::Ignore => Orientation::NoTransforms,
    };
    if let Err(why) = complete(format, bytes) {
        return Err(fail(format!("the file is truncated or damaged: {why}")));
    }
    let mut img = DynamicImage::from_decoder(decoder).map_err(|e| fail(format!("cannot decode the image: {e}")))?;
    img.apply_orientation(orientation);
    Ok(img)
}

/// A JPEG through libjpeg-turbo, at a fraction of its size when `fit` allows; `None` for the
/// `image` crate's decoder to try (and to name what is wrong with the file).
fn jpeg_turbo(
    name: &str,
    bytes: &[u8],
    exif: ExifMode,
    max_pixels: u64,
    fit: Option<(u32, u32)>,
) -> Result<Option<DynamicImage>, DecodeError> {
    let orientation = match exif {
        ExifMode::Apply => jpeg_orientation(bytes),
        ExifMode::Ignore => Orientation::NoTransforms,
    };
    // The target in the stored frame: a quarter turn swaps its sides.
    let stored = fit.map(|(tw, th)| if swaps_sides(orientation) { (th, tw) } else { (tw, th) });
    let reduce = |w, h| within_limit(name, w, h, max_pixels).map(|()| turbo::reduction(w, h, stored));
    Ok(turbo::decode_rgb(bytes, reduce)?.map(|rgb| {
        let mut img = DynamicImage::ImageRgb8(rgb);
        img.apply_orientation(orientation);
        img
    }))
}

/// Refuses an image of more than `max_pixels` before any pixel is decoded.
fn within_limit(name: &str, w: u32, h: u32, max_pixels: u64) -> Result<(), DecodeError> {
    let pixels = u64::from(w) * u64::from(h);
    if pixels > max_pixels {
        return Err(DecodeError(format!(
            "{name}: the image is {w}x{h} ({pixels} pixels), more than max_image_pixels ({max_pixels}); it may be a \
             decompression bomb. Raise --max-image-pixels if it is a real image"
        )));
    }
    Ok(())
}

/// The orientation in a JPEG's Exif block (the first APP1 segment that holds one), as the
/// `image` crate reads it; none (or an unreadable one) leaves the pixels as stored.
fn jpeg_orientation(b: &[u8]) -> Orientation {
    let mut pos = 2;
    while let Some([0xFF, marker, hi, lo]) = b.get(pos..pos + 4).map(|m| [m[0], m[1], m[2], m[3]]) {
        match marker {
            0xDA | 0xD9 => break,
            // Fill bytes before a marker.
            0xFF => {
                pos += 1;
                continue;
            }
            _ => {}
        }
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        let Some(payload) = b.get(pos + 4..pos + 2 + len.max(2)) else { break };
        if marker == 0xE1 && payload.starts_with(b"Exif\0\0") {
            return Orientation::from_exif_chunk(&payload[6..]).unwrap_or(Orientation::NoTransforms);
        }
        pos += 2 + len;
    }
    Orientation::NoTransforms
}

fn swaps_sides(o: Orientation) -> bool {
    matches!(
        o,
        Orientation::Rotate90 | Orientation::Rotate270 | Orientation::Rotate90FlipH | Orientation::Rotate270FlipH
    )
}

/// The largest image of an ICO file when it is stored as a PNG: the `image` crate's ICO
/// decoder reads only RGBA ones, PIL reads them all.
fn ico_png(b: &[u8]) -> Option<&[u8]> {
    let count = usize::from(u16::from_le_bytes([*b.get(4)?, *b.get(5)?]));
    let mut best: Option<(u32, &[u8])> = None;
    for i in 0..count {
        let e = b.get(6 + 16 * i..6 + 16 * (i + 1))?;
        let side = |x: u8| if x == 0 { 256 } else { u32::from(x) };
        let area = side(e[0]) * side(e[1]);
        let size = u32::from_le_bytes([e[8], e[9], e[10], e[11]]) as usize;
        let offset = u32::from_le_bytes([e[12], e[13], e[14], e[15]]) as usize;
        let data = b.get(offset..offset.checked_add(size)?)?;
        if data.starts_with(b"\x89PNG\r\n\x1a\n") && best.is_none_or(|(a, _)| area > a) {
            best = Some((area, data));
        }
    }
    best.map(|(_, d)| d)
}

/// Checks what a lenient decoder would not: that the file holds the whole image.
fn complete(format: ImageFormat, bytes: &[u8]) -> Result<(), String> {
    match format {
        ImageFormat::Jpeg => jpeg_complete(bytes),
        _ => Ok(()),
    }
}

/// Walks a JPEG's segments and entropy-coded scans to its end-of-image marker.
fn jpeg_complete(b: &[u8]) -> Result<(), String> {
    let mut pos = 2; // after SOI
    loop {
        // Markers may be padded with 0xFF fill bytes.
        while pos < b.len() && b[pos] != 0xFF {
            pos += 1;
        }
        while pos + 1 < b.len() && b[pos + 1] == 0xFF {
            pos += 1;
        }
        if pos + 1 >= b.len() {
            return Err("it ends before its end-of-image marker".into());
        }
        let marker = b[pos + 1];
        match marker {
            0xD9 => return Ok(()),
            0xD8 | 0x01 | 0xD0..=0xD7 => pos += 2,
            _ => {
                let len = b.get(pos + 2..pos + 4).map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])));
                let Some(len) = len.filter(|l| *l >= 2) else {
                    return Err(format!("a segment header at byte {pos} is cut off"));
                };
                pos += 2 + len;
                if pos > b.len() {
                    return Err(format!("a segment runs {} bytes past the end of the file", pos - b.len()));
                }
                if marker == 0xDA {
                    // Entropy-coded data: 0xFF is followed by 0x00 (a stuffed byte) or a restart
                    // marker inside it; any other marker ends it.
                    loop {
                        match b.get(pos..pos + 2) {
                            None => return Err("it ends inside the image data".into()),
                            Some([0xFF, 0x00 | 0xD0..=0xD7]) => pos += 2,
                            Some([0xFF, _]) => break,
                            Some(_) => pos += 1,
                        }
                    }
                }
            }
        }
    }
}

/// One channel, as PIL's `convert("L")`: ITU-R 601 luma in 16-bit fixed point, rounded.
pub fn to_luma(img: DynamicImage) -> image::GrayImage {
    match img {
        DynamicImage::ImageLuma8(g) => g,
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLuma16(_) | DynamicImage::ImageLumaA16(_) => img.into_luma8(),
        other => {
            let rgb = other.into_rgb8();
            let (w, h) = rgb.dimensions();
            let luma = rgb
                .pixels()
                .map(|p| {
                    let [r, g, b] = p.0.map(u32::from);
                    ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16) as u8
                })
                .collect();
            image::GrayImage::from_raw(w, h, luma).expect("one value per pixel")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 128]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg).unwrap();
        out
    }

    #[test]
    fn truncated_jpegs_are_refused() {
        let full = jpeg(40, 30);
        assert!(jpeg_complete(&full).is_ok());
        for cut in [full.len() - 2, full.len() * 3 / 4, full.len() / 2, 20, 3] {
            let e = load("t.jpg", &full[..cut], ExifMode::Apply, 1 << 20, None).unwrap_err().0;
            assert!(e.starts_with("t.jpg: ") && (e.contains("truncated") || e.contains("decode")), "{cut}: {e}");
        }
        // Bytes after the end marker (camera data) are fine.
        let mut trailing = full.clone();
        trailing.extend_from_slice(b"trailing junk");
        assert!(load("t.jpg", &trailing, ExifMode::Apply, 1 << 20, None).is_ok());
    }

    #[test]
    fn a_scaled_decode_of_a_turned_photo_keeps_the_upright_target() {
        // Stored 16x24 with orientation 6 (a quarter turn): upright 24x16.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/sample-data/realworld/images/exif/orient-6.jpg");
        let bytes = std::fs::read(path).unwrap();
        let full = load("o.jpg", &bytes, ExifMode::Apply, 1 << 20, None).unwrap();
        assert_eq!((full.width(), full.height()), (24, 16));
        // An upright 12x8 target is 8x12 in the stored frame: half the size on both sides.
        let half = load("o.jpg", &bytes, ExifMode::Apply, 1 << 20, Some((12, 8))).unwrap();
        assert_eq!((half.width(), half.height()), (12, 8));
        // Taken the other way round, 12x8 would not fit twice into 16x24: no reduction.
        let stored = load("o.jpg", &bytes, ExifMode::Ignore, 1 << 20, Some((12, 8))).unwrap();
        assert_eq!((stored.width(), stored.height()), (16, 24));
        // The half-size decode is about the full one averaged over 2x2 blocks: 9.6 of 255 on
        // average for this small, sharp image, exactly what PIL's `draft` gives; a flip or a
        // turn the wrong way gives 56 or more.
        let (f, h) = (full.into_rgb8(), half.into_rgb8());
        let mut total = 0.0;
        for (x, y, p) in h.enumerate_pixels() {
            for c in 0..3 {
                let block: u32 = [(0, 0), (1, 0), (0, 1), (1, 1)]
                    .iter()
                    .map(|(dx, dy)| u32::from(f.get_pixel(2 * x + dx, 2 * y + dy).0[c]))
                    .sum();
                total += (f64::from(p.0[c]) - f64::from(block) / 4.0).abs();
            }
        }
        let mean = total / (12.0 * 8.0 * 3.0);
        assert!(mean <= 16.0, "mean difference {mean}");
    }

    #[test]
    fn huge_images_are_refused_before_decoding() {
        let e = load("big.jpg", &jpeg(40, 30), ExifMode::Apply, 1000, None).unwrap_err().0;
        assert!(e.contains("40x30 (1200 pixels)") && e.contains("--max-image-pixels"), "{e}");
        let e = load("x.png", b"this is not an image at all", ExifMode::Apply, 1000, None).unwrap_err().0;
        assert!(e.contains("not an image format"), "{e}");
    }

    #[test]
    fn luma_is_itu_601_as_pil_computes_it() {
        let img = image::RgbImage::from_fn(3, 1, |x, _| match x {
            0 => image::Rgb([255, 0, 0]),
            1 => image::Rgb([0, 255, 0]),
            _ => image::Rgb([0, 0, 255]),
        });
        // PIL: Image.new("RGB", ...).convert("L") gives 76, 150, 29 for pure red, green, blue.
        assert_eq!(to_luma(DynamicImage::ImageRgb8(img)).into_raw(), [76, 150, 29]);
    }
}
