//! Images into model rows: decode, convert channels, resize, scale and normalise, lay out.
//!
//! Every option defaults from the model's input shape ([`ImageSpec::resolve`]): a 4-D input
//! gives the layout (channels first when dimension 1 is 1, 3 or 4, else channels last), the
//! channels and, when fixed, the size; a dynamic height/width keeps each image's own size (and
//! such images are batched only with images of the same size). A 2-D input `[N, K]` takes flat
//! pixels in row-major HWC order, the way scikit-learn models over images (the digits) do: `K`
//! gives a square grayscale (or RGB) image unless `--image-size`/`--channels` say otherwise.
//!
//! Pixel values: `value = (pixel * scale - mean[c]) / std[c]`, with `scale` 1/255 by default, so
//! pixels land in [0, 1]. A `uint8` input takes raw pixels.

mod decode;
mod turbo;

pub use decode::{load, to_luma};

use fast_image_resize as fir;
use fir::{IntoImageView, ResizeAlg, ResizeOptions};
use image::{DynamicImage, GenericImageView};

use super::{DecodeError, DecodedFile, FeedError};
use crate::engine::model::{Buffer, ElemType, TensorSpec};
use crate::engine::settings::{ExifMode, ImageOptions, Layout, ResizeMode};

/// Fully resolved image preprocessing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ImageSpec {
    pub layout: Layout,
    pub channels: u32,
    /// Target `(width, height)`, or `None` to keep each image's size.
    pub size: Option<(u32, u32)>,
    pub resize: ResizeMode,
    pub scale: f32,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub dtype: ElemType,
    pub exif_orientation: ExifMode,
    pub max_pixels: u64,
    /// JPEGs decoded at a fraction of their size when the target is that much smaller.
    pub jpeg_scaled: bool,
}

fn dim(d: i64) -> Option<u32> {
    u32::try_from(d).ok().filter(|d| *d > 0)
}

/// The layout: from `--layout`, else from the shape (a 4-D input is channels first when
/// dimension 1 is 1, 3 or 4, else channels last when dimension 3 is; a 2-D input is flat).
fn layout_of(input: &TensorSpec, opts: &ImageOptions) -> Result<Layout, FeedError> {
    let (name, shape) = (&input.name, &input.shape);
    match (shape.len(), opts.layout) {
        (2, None | Some(Layout::Flat)) => Ok(Layout::Flat),
        (4, Some(l @ (Layout::Nchw | Layout::Nhwc))) => Ok(l),
        (4, None) => Ok(if !matches!(shape[1], 1 | 3 | 4) && matches!(shape[3], 1 | 3 | 4) {
            Layout::Nhwc
        } else {
            Layout::Nchw
        }),
        (_, Some(l)) => Err(FeedError(format!(
            "--layout {l:?} does not fit image input {name:?} of shape {shape:?} (nchw/nhwc need 4 dimensions, flat 2)"
        ))),
        _ => Err(FeedError(format!(
            "image input {name:?} has shape {shape:?}; batchscore feeds images as [N, C, H, W], [N, H, W, C] or flat [N, H*W*C]"
        ))),
    }
}

/// Channels and size of a 4-D input: the model's where it fixes them, the options' where not
/// (a dynamic size keeps each image's own).
fn tensor_geometry(
    input: &TensorSpec,
    layout: Layout,
    opts: &ImageOptions,
) -> Result<(u32, Option<(u32, u32)>), FeedError> {
    let (name, shape) = (&input.name, &input.shape);
    let (model_c, model_h, model_w) = match layout {
        Layout::Nhwc => (dim(shape[3]), dim(shape[1]), dim(shape[2])),
        _ => (dim(shape[1]), dim(shape[2]), dim(shape[3])),
    };
    let channels = match (model_c, opts.channels) {
        (Some(m), Some(o)) if m != o => {
            return Err(FeedError(format!("--channels {o} but image input {name:?} of shape {shape:?} takes {m}")));
        }
        (Some(m), _) => m,
        (None, Some(o)) => o,
        (None, None) => 3,
    };
    if !matches!(channels, 1 | 3 | 4) {
        return Err(FeedError(format!(
            "image input {name:?} of shape {shape:?} takes {channels} channels; batchscore makes 1 (gray), 3 (rgb) or 4 (rgba)"
        )));
    }
    let size = match (model_w.zip(model_h), opts.size) {
        (Some(m), Some(o)) if m != o => {
            return Err(FeedError(format!(
                "--image-size {}x{} but image input {name:?} of shape {shape:?} takes {}x{}",
                o.0, o.1, m.0, m.1
            )));
        }
        (Some(m), _) => Some(m),
        (None, o) => o,
    };
    Ok((channels, size))
}

/// Channels and size of a flat `[N, K]` input: from `--image-size` and `--channels`, or guessed
/// from `K` (a square, grayscale or RGB).
fn flat_geometry(input: &TensorSpec, opts: &ImageOptions) -> Result<(u32, Option<(u32, u32)>), FeedError> {
    let name = &input.name;
    let k = input.shape[1];
    if k <= 0 && opts.size.is_none() {
        return Err(FeedError(format!(
            "flat image input {name:?} has a dynamic width; pass --image-size and --channels"
        )));
    }
    if let Some((w, h)) = opts.size {
        let per = (w * h) as i64;
        let c = opts.channels.map(i64::from).unwrap_or(if k > 0 { k / per } else { 1 });
        if k > 0 && per * c != k {
            return Err(FeedError(format!(
                "--image-size {w}x{h} with {c} channel(s) gives {} values but input {name:?} takes {k}",
                per * c
            )));
        }
        return Ok((c as u32, Some((w, h))));
    }
    let square = |n: i64| {
        let s = (n as f64).sqrt().round() as i64;
        (s * s == n).then_some(s as u32)
    };
    let (c, side) = match opts.channels {
        Some(c) if k % i64::from(c) == 0 => (c, square(k / i64::from(c))),
        Some(_) => (0, None),
        None => match square(k) {
            Some(s) => (1, Some(s)),
            None => (3, if k % 3 == 0 { square(k / 3) } else { None }),
        },
    };
    let side = side.ok_or_else(|| {
        FeedError(format!(
            "cannot tell the image size of flat input {name:?} ({k} values per row); pass --image-size WxH and --channels"
        ))
    })?;
    // A guess below 8x8 is far more likely a tabular model given images by mistake than a real
    // image model: say so rather than score nonsense.
    if side < 8 && opts.channels.is_none() {
        return Err(FeedError(format!(
            "input {name:?} takes {k} values per row, which looks like a tabular model, not an image \
             model; check --input (images given) and --model, or pass --image-size WxH and --channels \
             if it really takes {side}x{side} images"
        )));
    }
    Ok((c, Some((side, side))))
}

/// `value = (pixel * scale - mean[c]) / std[c]`, one mean and std per channel; a uint8 input
/// takes raw pixels.
fn normalisation(
    input: &TensorSpec,
    opts: &ImageOptions,
    channels: u32,
) -> Result<(f32, Vec<f32>, Vec<f32>), FeedError> {
    let n = channels as usize;
    if input.dtype == ElemType::U8 {
        if opts.scale.is_some() || opts.mean.is_some() || opts.std.is_some() {
            return Err(FeedError(format!(
                "image input {:?} takes uint8 pixels; --scale, --mean and --std apply to float32 inputs",
                input.name
            )));
        }
        return Ok((1.0, vec![0.0; n], vec![1.0; n]));
    }
    let per_channel = |v: &Option<Vec<f32>>, default: f32, what: &str| -> Result<Vec<f32>, FeedError> {
        match v {
            None => Ok(vec![default; n]),
            Some(l) if l.len() == 1 => Ok(vec![l[0]; n]),
            Some(l) if l.len() == n => Ok(l.clone()),
            Some(l) => Err(FeedError(format!(
                "--{what} has {} values but the images have {channels} channel(s); give 1 or {channels}",
                l.len()
            ))),
        }
    };
    Ok((opts.scale.unwrap_or(1.0 / 255.0), per_channel(&opts.mean, 0.0, "mean")?, per_channel(&opts.std, 1.0, "std")?))
}

impl ImageSpec {
    /// Derives the preprocessing from the model input and the options given.
    pub fn resolve(input: &TensorSpec, opts: &ImageOptions) -> Result<ImageSpec, FeedError> {
        let (name, shape) = (&input.name, &input.shape);
        if !matches!(input.dtype, ElemType::F32 | ElemType::U8) {
            return Err(FeedError(format!(
                "image input {name:?} takes {:?}; batchscore feeds images as float32 or uint8",
                input.dtype
            )));
        }
        let layout = layout_of(input, opts)?;
        let (channels, size) = match layout {
            Layout::Flat => flat_geometry(input, opts)?,
            _ => tensor_geometry(input, layout, opts)?,
        };
        let (scale, mean, std) = normalisation(input, opts, channels)?;
        if let Some((w, h)) = size
            && u64::from(w) * u64::from(h) > opts.max_pixels
        {
            return Err(FeedError(format!(
                "image input {name:?} of shape {shape:?} takes {w}x{h} images ({} pixels), more than \
                 max_image_pixels ({}); pass --image-size for a smaller size or raise --max-image-pixels",
                u64::from(w) * u64::from(h),
                opts.max_pixels
            )));
        }
        Ok(ImageSpec {
            layout,
            channels,
            size,
            resize: opts.resize.unwrap_or(ResizeMode::Stretch),
            scale,
            mean,
            std,
            dtype: input.dtype,
            exif_orientation: opts.exif,
            max_pixels: opts.max_pixels,
            jpeg_scaled: opts.jpeg_scaled,
        })
    }

    /// Decodes and preprocesses one image into one row.
    pub fn preprocess(&self, name: &str, bytes: &[u8]) -> Result<(Buffer, Vec<i64>), DecodeError> {
        let fit = self.size.filter(|_| self.jpeg_scaled);
        let img = load(name, bytes, self.exif_orientation, self.max_pixels, fit)?;
        // The model's channels first, then the size: resizing works on 8-bit pixels.
        let img = match self.channels {
            1 => DynamicImage::ImageLuma8(to_luma(img)),
            3 => DynamicImage::ImageRgb8(img.into_rgb8()),
            _ => DynamicImage::ImageRgba8(img.into_rgba8()),
        };
        let (w, h, pixels) = self.fit(img).map_err(|e| DecodeError(format!("{name}: cannot resize the image: {e}")))?;
        let c = self.channels as usize;
        let (w, h) = (w as usize, h as usize);
        let row_shape: Vec<i64> = match self.layout {
            Layout::Nchw => vec![c as i64, h as i64, w as i64],
            Layout::Nhwc => vec![h as i64, w as i64, c as i64],
            Layout::Flat => vec![(h * w * c) as i64],
        };
        if self.dtype == ElemType::U8 {
            let out = match self.layout {
                Layout::Nchw => (0..c).flat_map(|ch| pixels.iter().skip(ch).step_by(c).copied()).collect(),
                _ => pixels,
            };
            return Ok((Buffer::U8(out), row_shape));
        }
        // Per channel, the value of each of the 256 pixel levels: value = pixel * a + b.
        let lut: Vec<[f32; 256]> = (0..c)
            .map(|ch| {
                let (a, b) = (self.scale / self.std[ch], -self.mean[ch] / self.std[ch]);
                std::array::from_fn(|v| v as f32 * a + b)
            })
            .collect();
        let mut out = Vec::with_capacity(pixels.len());
        match self.layout {
            // Plane after plane: channel `ch` is every c-th pixel value from `ch`.
            Layout::Nchw => {
                for (ch, lut) in lut.iter().enumerate() {
                    out.extend(pixels.iter().skip(ch).step_by(c).map(|p| lut[usize::from(*p)]));
                }
            }
            Layout::Nhwc | Layout::Flat => {
                out.extend(
                    pixels.chunks_exact(c).flat_map(|px| px.iter().zip(&lut).map(|(p, lut)| lut[usize::from(*p)])),
                );
            }
        }
        Ok((Buffer::F32(out), row_shape))
    }

    /// Resizes to the model's size (when it has one): a bilinear (triangle) filter whose support
    /// grows with the scale, as PIL's and the image crate's, with SIMD (fast_image_resize), on
    /// the 8-bit pixels. Returns the width, height and pixels.
    fn fit(&self, img: DynamicImage) -> Result<(u32, u32, Vec<u8>), String> {
        let (w, h) = img.dimensions();
        let Some((tw, th)) = self.size.filter(|s| *s != (w, h)) else {
            return Ok((w, h, img.into_bytes()));
        };
        let mut opts = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(fir::FilterType::Bilinear));
        if self.resize == ResizeMode::Crop {
            // Cut the centre of the source to the target's aspect ratio, then scale: the same
            // as scaling to cover the target and cutting its centre.
            opts = opts.fit_into_destination(Some((0.5, 0.5)));
        }
        let pixel_type = img.pixel_type().ok_or("unsupported pixel type")?;
        let mut dst = fir::images::Image::new(tw, th, pixel_type);
        RESIZER.with_borrow_mut(|r| r.resize(&img, &mut dst, &opts)).map_err(|e| e.to_string())?;
        Ok((tw, th, dst.into_vec()))
    }
}

thread_local! {
    /// One resizer per thread: it keeps its scratch buffers between images.
    static RESIZER: std::cell::RefCell<fir::Resizer> = std::cell::RefCell::new(fir::Resizer::new());
}

pub(super) fn decode(
    spec: &ImageSpec,
    _input: &TensorSpec,
    name: &str,
    bytes: &[u8],
) -> Result<DecodedFile, DecodeError> {
    let (buf, shape) = spec.preprocess(name, bytes)?;
    Ok(DecodedFile {
        rows: 1,
        row_numbers: None,
        inputs: vec![buf],
        row_shapes: vec![shape],
        passthrough: Vec::new(),
        failed_rows: Vec::new(),
        notes: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_for(shape: Vec<i64>, opts: ImageOptions) -> Result<ImageSpec, FeedError> {
        ImageSpec::resolve(&TensorSpec { name: "x".into(), dtype: ElemType::F32, shape }, &opts)
    }

    #[test]
    fn defaults_come_from_the_shape() {
        let s = spec_for(vec![-1, 3, 224, 224], ImageOptions::default()).unwrap();
        assert_eq!((s.layout, s.channels, s.size), (Layout::Nchw, 3, Some((224, 224))));
        let s = spec_for(vec![-1, 32, 32, 1], ImageOptions::default()).unwrap();
        assert_eq!((s.layout, s.channels, s.size), (Layout::Nhwc, 1, Some((32, 32))));
        let s = spec_for(vec![-1, 3, -1, -1], ImageOptions::default()).unwrap();
        assert_eq!(s.size, None);
        let s = spec_for(vec![-1, 64], ImageOptions::default()).unwrap();
        assert_eq!((s.layout, s.channels, s.size), (Layout::Flat, 1, Some((8, 8))));
        let s = spec_for(vec![-1, 3 * 16 * 16], ImageOptions::default()).unwrap();
        assert_eq!((s.channels, s.size), (3, Some((16, 16))));
        // Too small to be a guessed image (a tabular model given images); explicit channels
        // say it is one.
        assert!(spec_for(vec![-1, 27], ImageOptions::default()).unwrap_err().0.contains("tabular"));
        let o = ImageOptions { channels: Some(3), ..Default::default() };
        assert_eq!(spec_for(vec![-1, 27], o).unwrap().size, Some((3, 3)));
        assert!(spec_for(vec![-1, 50], ImageOptions::default()).is_err());
    }

    #[test]
    fn conflicting_options_are_errors() {
        let o = ImageOptions { channels: Some(1), ..Default::default() };
        assert!(spec_for(vec![-1, 3, 8, 8], o).unwrap_err().0.contains("--channels 1"));
        let o = ImageOptions { mean: Some(vec![0.1, 0.2]), ..Default::default() };
        assert!(spec_for(vec![-1, 3, 8, 8], o).unwrap_err().0.contains("--mean"));
    }

    #[test]
    fn nchw_normalises_per_channel() {
        let mut img = image::RgbImage::new(2, 1);
        img.put_pixel(0, 0, image::Rgb([255, 0, 51]));
        img.put_pixel(1, 0, image::Rgb([0, 255, 102]));
        let mut png = Vec::new();
        DynamicImage::ImageRgb8(img).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        let spec = spec_for(
            vec![-1, 3, -1, -1],
            ImageOptions { mean: Some(vec![0.5]), std: Some(vec![0.5]), ..Default::default() },
        )
        .unwrap();
        let (buf, shape) = spec.preprocess("t.png", &png).unwrap();
        assert_eq!(shape, vec![3, 1, 2]);
        let Buffer::F32(v) = buf else { panic!() };
        let want = [1.0, -1.0, -1.0, 1.0, -0.6, -0.2];
        for (g, w) in v.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{v:?}");
        }
    }

    #[test]
    fn a_scaled_jpeg_decode_gives_the_full_decodes_pixels_within_jpeg_noise() {
        // A smooth 400x240 photo-like JPEG for a 32x32 input: decoded at 1/4 (100x60).
        let img = image::RgbImage::from_fn(400, 240, |x, y| {
            image::Rgb([(x * 255 / 400) as u8, (y * 255 / 240) as u8, ((x + y) % 256) as u8 / 2])
        });
        let mut jpg = Vec::new();
        DynamicImage::ImageRgb8(img).write_to(&mut std::io::Cursor::new(&mut jpg), image::ImageFormat::Jpeg).unwrap();
        let run = |jpeg_scaled| {
            let spec = spec_for(vec![-1, 3, 32, 32], ImageOptions { jpeg_scaled, ..Default::default() }).unwrap();
            let (buf, shape) = spec.preprocess("p.jpg", &jpg).unwrap();
            assert_eq!(shape, vec![3, 32, 32]);
            let Buffer::F32(v) = buf else { panic!() };
            v
        };
        let (scaled, full) = (run(true), run(false));
        let diff: Vec<f32> = scaled.iter().zip(&full).map(|(a, b)| (a - b).abs()).collect();
        let max = diff.iter().cloned().fold(0.0, f32::max);
        let mean = diff.iter().sum::<f32>() / diff.len() as f32;
        assert!(max < 12.0 / 255.0 && mean < 2.0 / 255.0, "max {max}, mean {mean}");
        assert!(scaled != full, "the scaled path decodes differently (it ran)");
    }

    /// A 40x20 gray image: black quarters left and right, white in the middle half.
    fn bars_png() -> Vec<u8> {
        let img = image::GrayImage::from_fn(40, 20, |x, _| image::Luma([if (10..30).contains(&x) { 255 } else { 0 }]));
        let mut png = Vec::new();
        DynamicImage::ImageLuma8(img).write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png).unwrap();
        png
    }

    fn resized(resize: ResizeMode) -> Vec<f32> {
        let spec = spec_for(vec![-1, 1, 10, 10], ImageOptions { resize: Some(resize), ..Default::default() }).unwrap();
        let (buf, shape) = spec.preprocess("bars.png", &bars_png()).unwrap();
        assert_eq!(shape, vec![1, 10, 10]);
        let Buffer::F32(v) = buf else { panic!() };
        v
    }

    #[test]
    fn stretch_scales_the_whole_image_and_crop_keeps_its_centre() {
        // Stretch: 40 -> 10 columns, so the black quarters stay at the sides (about 2.5 px).
        let v = resized(ResizeMode::Stretch);
        for row in v.chunks(10) {
            assert!(row[0] < 0.05 && row[9] < 0.05, "{row:?}");
            assert!(row[4] > 0.95 && row[5] > 0.95, "{row:?}");
            // Symmetric, and a smooth (filtered) edge, not nearest-neighbour.
            assert!((row[2] - row[7]).abs() < 1e-6, "{row:?}");
            assert!(row[2] > 0.05 && row[2] < 0.95, "{row:?}");
        }
        // Crop: the centre 20x20 of the source is the white half: white, but for the filter
        // reaching a little past the cut at the outer columns.
        let v = resized(ResizeMode::Crop);
        for row in v.chunks(10) {
            assert!(row[1..9].iter().all(|x| *x > 0.99), "{row:?}");
            assert!(row[0] > 0.8 && row[9] > 0.8, "{row:?}");
        }
    }
}
