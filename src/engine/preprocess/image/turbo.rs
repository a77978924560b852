//! JPEG through libjpeg-turbo (the decoder inside PIL, OpenCV and torchvision): its SIMD
//! decoder, and its DCT-domain downscaling when the model takes images much smaller than the
//! photo.
//!
//! A JPEG stores 8x8 blocks of DCT coefficients. Decoding at 1/2, 1/4 or 1/8 of the size runs a
//! 4x4, 2x2 or 1x1 inverse transform per block instead of an 8x8 one, and converts colours and
//! upsamples chroma for a quarter, a sixteenth or a sixty-fourth of the pixels; only the entropy
//! decoding stays whole. The reduction is chosen as PIL's `Image.draft` chooses it: the largest
//! of 1/8, 1/4 and 1/2 that leaves the image at least as large as the target on both sides, so
//! the resize that follows still only shrinks (by less than 2x on the tighter side, unless the
//! photo is 16 or more times the target).

use std::cell::RefCell;

use image::RgbImage;
use turbojpeg::{Decompressor, Image, PixelFormat, ScalingFactor};

thread_local! {
    /// One decompressor per thread: it keeps libjpeg's state and buffers between images.
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// The reduction (1, 2, 4 or 8) for a `w` x `h` JPEG that will be resized to `target`, in the
/// JPEG's stored orientation: the largest that keeps both sides at least the target's.
pub fn reduction(w: u32, h: u32, target: Option<(u32, u32)>) -> usize {
    let Some((tw, th)) = target else { return 1 };
    let fit = (w / tw.max(1)).min(h / th.max(1));
    [8, 4, 2].into_iter().find(|d| fit >= *d).unwrap_or(1) as usize
}

/// Decodes a JPEG into 8-bit RGB at 1/`reduce(width, height)` of its size (the size rounded
/// up, as libjpeg does); `reduce` sees the stored size first and may refuse it. `Ok(None)` when
/// libjpeg-turbo refuses the file or warns about it (a colour space it does not convert to RGB,
/// 12-bit or lossless data, a file cut short, extraneous bytes): the caller then decodes it as
/// before, which gives the same error or the same leniency as without this path.
pub fn decode_rgb<E>(bytes: &[u8], reduce: impl FnOnce(u32, u32) -> Result<usize, E>) -> Result<Option<RgbImage>, E> {
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let d = match slot {
            Some(d) => d,
            None => match Decompressor::new() {
                Ok(d) => slot.insert(d),
                Err(_) => return Ok(None),
            },
        };
        let Ok(header) = d.read_header(bytes) else { return Ok(None) };
        let (Ok(w), Ok(h)) = (u32::try_from(header.width), u32::try_from(header.height)) else { return Ok(None) };
        let factor = ScalingFactor::new(1, reduce(w, h)?);
        if header.is_lossless || d.set_scaling_factor(factor).is_err() {
            return Ok(None);
        }
        Ok(decompress(d, bytes, header.scaled(factor)))
    })
}

fn decompress(d: &mut Decompressor, bytes: &[u8], size: turbojpeg::DecompressHeader) -> Option<RgbImage> {
    let (w, h) = (size.width, size.height);
    let mut pixels = vec![0u8; w.checked_mul(h)?.checked_mul(3)?];
    let out = Image { pixels: &mut pixels[..], width: w, pitch: 3 * w, height: h, format: PixelFormat::RGB };
    d.decompress(bytes, out).ok()?;
    RgbImage::from_raw(u32::try_from(w).ok()?, u32::try_from(h).ok()?, pixels)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{DynamicImage, ImageFormat};
    use std::io::Cursor;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Vec::new();
        DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg).unwrap();
        out
    }

    /// `decode_rgb` at a fixed reduction.
    fn at(bytes: &[u8], reduction: usize) -> Option<RgbImage> {
        decode_rgb(bytes, |_, _| Ok::<_, ()>(reduction)).unwrap()
    }

    #[test]
    fn the_reduction_keeps_the_image_at_least_as_large_as_the_target() {
        assert_eq!(reduction(1024, 768, Some((128, 128))), 4, "768 / 128 = 6: 1/4 keeps 192 rows");
        assert_eq!(reduction(1024, 1024, Some((128, 128))), 8);
        assert_eq!(reduction(255, 400, Some((128, 128))), 1, "255 / 128 < 2");
        assert_eq!(reduction(4000, 300, Some((128, 128))), 2, "the shorter side decides");
        assert_eq!(reduction(4000, 3000, Some((224, 224))), 8);
        assert_eq!(reduction(4000, 3000, None), 1, "a model that keeps each image's size");
    }

    #[test]
    fn a_scaled_decode_is_the_photo_at_a_fraction_of_its_size() {
        let bytes = jpeg(200, 120);
        let full = at(&bytes, 1).unwrap();
        assert_eq!(full.dimensions(), (200, 120));
        let quarter = at(&bytes, 4).unwrap();
        assert_eq!(quarter.dimensions(), (50, 30));
        // Each pixel of the quarter is about the mean of its 4x4 block at full size.
        let (x, y) = (20, 10);
        let mean = |c: usize| {
            let s: u32 = (0..4)
                .flat_map(|dy| (0..4).map(move |dx| (dx, dy)))
                .map(|(dx, dy)| u32::from(full.get_pixel(4 * x + dx, 4 * y + dy).0[c]))
                .sum();
            s as f64 / 16.0
        };
        for c in 0..3 {
            let got = f64::from(quarter.get_pixel(x, y).0[c]);
            assert!((got - mean(c)).abs() <= 3.0, "channel {c}: {got} against {}", mean(c));
        }
        // Sizes that do not divide round up, as libjpeg's do.
        assert_eq!(at(&jpeg(201, 121), 8).unwrap().dimensions(), (26, 16));
        // The size is offered before any pixel is decoded, and may be refused.
        assert_eq!(decode_rgb(&bytes, |w, h| Err::<usize, _>((w, h))), Err((200, 120)));
    }

    #[test]
    fn files_libjpeg_turbo_refuses_are_left_to_the_other_decoder() {
        assert!(at(b"not a jpeg", 1).is_none());
        let bytes = jpeg(64, 64);
        assert!(at(&bytes[..bytes.len() / 2], 2).is_none(), "a truncated file warns");
    }
}
