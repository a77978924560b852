//! Images as users' Python code sees them: every codec Pillow writes, phone photos with an
//! EXIF orientation, conversion to one channel, truncated and damaged files, decompression
//! bombs, and a real published model (PaddleOCR's text direction classifier). The references
//! are PIL's pixels (`models/generate_realworld.py`): `ImageOps.exif_transpose(...)` then
//! `convert("RGB")` / `convert("L")`, fed to identity models that return the pixels unchanged.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

fn images(name: &str) -> String {
    data(&format!("realworld/images/{name}"))
}

fn reference_by_file(name: &str) -> BTreeMap<String, Value> {
    let path = repo().join("models/reference/realworld").join(format!("{name}.jsonl"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["file"].as_str().unwrap().to_string(), v))
        .collect()
}

/// Scores a folder with an identity model at scale 1 (raw 0-255 values out).
fn pixels(tmp: &Path, model_name: &str, input: &str, out: &str, extra: &[&str]) -> (PathBuf, BTreeMap<String, Value>) {
    let out = tmp.join(out);
    let (m, o) = (model(model_name), out.display().to_string());
    let mut args = vec!["--model", m.as_str(), "--input", input, "--output", o.as_str(), "--scale", "1"];
    args.extend_from_slice(extra);
    let run = score(tmp, &args);
    run.no_panic();
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let preds =
        if out.join("predictions.csv").exists() { csv_preds(&out.join("predictions.csv")).1 } else { Vec::new() };
    (out, preds.into_iter().map(|p| (p.file, p.cols["pixels"].clone())).collect())
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().flat_map(flat).collect(),
        Value::Number(n) => vec![n.as_f64().unwrap()],
        other => panic!("not a pixel array: {other}"),
    }
}

fn shape(v: &Value) -> Vec<usize> {
    let mut s = Vec::new();
    let mut cur = v;
    while let Value::Array(a) = cur {
        s.push(a.len());
        match a.first() {
            Some(x) => cur = x,
            None => break,
        }
    }
    s
}

/// (max, mean) absolute pixel difference, with equal shapes.
fn pixel_error(got: &Value, want: &Value, what: &str) -> (f64, f64) {
    assert_eq!(shape(got), shape(want), "{what}: shape");
    let (g, w) = (flat(got), flat(want));
    let d: Vec<f64> = g.iter().zip(&w).map(|(a, b)| (a - b).abs()).collect();
    (d.iter().cloned().fold(0.0, f64::max), d.iter().sum::<f64>() / d.len() as f64)
}

/// JPEGs are decoded by libjpeg-turbo, as PIL's are: the same pixels, but for the CMYK one,
/// which libjpeg-turbo does not convert to RGB and the `image` crate (zune-jpeg) decodes, off
/// by 1 in a few pixels (README: Images). Before libjpeg-turbo, zune-jpeg's chroma upsampling
/// and IDCT rounding needed 8 and 0.6.
const JPEG_MAX: f64 = 1.0;
const JPEG_MEAN: f64 = 0.05;

fn is_jpeg(f: &str) -> bool {
    f.ends_with(".jpg") || f.ends_with(".jfif")
}

#[test]
fn exif_orientation_is_applied_as_pil_exif_transpose_does() {
    let tmp = tempdir();
    let want = reference_by_file("images-exif");
    let (_, got) = pixels(tmp.path(), "identity_rgb.onnx", &images("exif"), "apply", &[]);
    assert_eq!(got.len(), want.len());
    for (f, w) in &want {
        let (max, mean) = pixel_error(&got[f], &w["rgb"], f);
        eprintln!("{f}: max {max} mean {mean:.3}");
        if is_jpeg(f) {
            assert!(max <= JPEG_MAX && mean <= JPEG_MEAN, "{f}: max {max} mean {mean}");
        } else {
            assert_eq!(max, 0.0, "{f}");
        }
    }
    // Ignoring the tag leaves the pixels as stored: orientation 6 is a 90-degree turn.
    let (_, raw) =
        pixels(tmp.path(), "identity_rgb.onnx", &images("exif"), "ignore", &["--exif-orientation", "ignore"]);
    let (upright, stored) = (shape(&want["orient-6.jpg"]["rgb"]), shape(&raw["orient-6.jpg"]));
    assert_eq!(stored, [upright[0], upright[2], upright[1]], "stored pixels are the other way round");
    assert_eq!(shape(&raw["orient-1.jpg"]), upright);
}

#[test]
fn every_codec_decodes_to_pils_pixels() {
    let tmp = tempdir();
    let want = reference_by_file("images-codecs");
    let (_, rgb) = pixels(tmp.path(), "identity_rgb.onnx", &images("codecs"), "rgb", &[]);
    let (_, gray) = pixels(tmp.path(), "identity_gray.onnx", &images("codecs"), "gray", &[]);
    for (f, w) in &want {
        // PIL clips 16-bit values to 255 when it converts them; batchscore scales them to
        // 8 bits (value / 257), as OpenCV does: a documented difference.
        if f == "png-i16.png" {
            continue;
        }
        for (got, key) in [(&rgb, "rgb"), (&gray, "gray")] {
            let g = got.get(f).unwrap_or_else(|| panic!("{f} was not scored ({key})"));
            let (max, mean) = pixel_error(g, &w[key], &format!("{f} {key}"));
            eprintln!("{f} {key}: max {max} mean {mean:.3}");
            if is_jpeg(f) || f.contains("webp-lossy") {
                assert!(max <= JPEG_MAX && mean <= JPEG_MEAN, "{f} {key}: max {max} mean {mean}");
            } else {
                assert_eq!(max, 0.0, "{f} {key}: lossless formats decode exactly");
            }
        }
    }
    assert!(rgb.contains_key("photo.jfif") && rgb.contains_key("tga-rle.tga") && rgb.contains_key("ico-rgb.ico"));
}

#[test]
fn one_channel_is_itu_601_luma_as_pil_opencv_and_torchvision_compute_it() {
    let tmp = tempdir();
    let want = reference_by_file("images-gray");
    let (_, got) = pixels(tmp.path(), "identity_gray.onnx", &images("gray"), "gray", &[]);
    let mut differs_from_709 = 0;
    for (f, w) in &want {
        assert_eq!(pixel_error(&got[f], &w["gray"], f).0, 0.0, "{f}: PIL's convert('L')");
        if pixel_error(&got[f], &w["gray_rec709"], f).0 > 0.0 {
            differs_from_709 += 1;
        }
    }
    assert!(differs_from_709 >= 4, "the colour images tell 601 from 709 weights");
}

#[test]
fn truncated_or_damaged_images_fail_alone_naming_the_file() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    for e in std::fs::read_dir(images("broken")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), input.join(e.file_name())).unwrap();
    }
    std::fs::copy(Path::new(&images("codecs")).join("png-rgb.png"), input.join("good.png")).unwrap();
    let (out, got) = pixels(tmp.path(), "identity_rgb.onnx", &input.display().to_string(), "out", &[]);
    assert!(got.contains_key("good.png"), "the good image is scored");
    let failed: BTreeMap<String, String> = failures(&out)
        .into_iter()
        .map(|f| (f["file"].as_str().unwrap().to_string(), f["error"].as_str().unwrap().to_string()))
        .collect();
    for (f, verdict) in reference_by_file("images-broken") {
        if verdict.get("pil_error").is_some() {
            let err = failed
                .get(&f)
                .unwrap_or_else(|| panic!("{f}: PIL refuses it ({}), batchscore scored it", verdict["pil_error"]));
            assert!(err.starts_with(&format!("{f}: ")), "{f}: the error names the file: {err}");
        }
        assert!(got.contains_key(&f) || failed.contains_key(&f), "{f} is accounted for");
    }
    assert!(failed.keys().any(|f| f.starts_with("trunc-jpeg")), "truncated JPEGs fail");
    let jr = job_result(&out);
    assert_eq!(jr["status"], "Completed");
}

#[test]
fn decompression_bombs_are_refused_before_decoding() {
    let tmp = tempdir();
    let input = tmp.path().join("in");
    std::fs::create_dir_all(&input).unwrap();
    // 4000 x 4000 pixels of one colour: 16 M pixels in a few KB.
    let big = image::GrayImage::new(4000, 4000);
    big.save(input.join("bomb.png")).unwrap();
    std::fs::copy(Path::new(&images("codecs")).join("png-rgb.png"), input.join("good.png")).unwrap();
    let (out, got) = pixels(
        tmp.path(),
        "identity_rgb.onnx",
        &input.display().to_string(),
        "out",
        &["--max-image-pixels", "1000000", "--mini-batch-size", "1"],
    );
    assert!(got.contains_key("good.png"));
    let f = failures(&out);
    let bomb = f.iter().find(|x| x["file"] == "bomb.png").expect("the bomb fails");
    let e = bomb["error"].as_str().unwrap();
    assert!(e.contains("4000x4000") && e.contains("max_image_pixels") && e.contains("--max-image-pixels"), "{e}");
}

#[test]
fn a_real_published_model_paddleocr_text_direction() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let (m, i, o) = (model("ppocr_cls.onnx"), images("textlines"), out.display().to_string());
    score(tmp.path(), &["--model", &m, "--input", &i, "--output", &o, "--mean", "0.5", "--std", "0.5"]).expect_code(0);
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    let reference: Vec<RefRow> = reference_by_file("ppocr_cls__textlines")
        .into_values()
        .map(|v| RefRow {
            file: v["file"].as_str().unwrap().into(),
            row: None,
            outputs: v["outputs"].as_object().unwrap().clone(),
        })
        .collect();
    assert_parity(&preds, &reference, Tol { abs: 1e-4, rel: 0.0 });
}

#[test]
fn outputs_with_dynamic_dimensions_keep_each_rows_shape() {
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let (m, i, o) = (model("dynamic_map.onnx"), images("gray"), out.display().to_string());
    score(tmp.path(), &["--model", &m, "--input", &i, "--output", &o, "--scale", "1"]).expect_code(0).no_panic();
    let (_, preds) = csv_preds(&out.join("predictions.csv"));
    let want = reference_by_file("images-gray");
    for p in &preds {
        // A 2x2 average pool: a [1, H/2, W/2] map per image, whatever its size.
        let s = shape(&want[&p.file]["gray"]);
        assert_eq!(shape(&p.cols["map"]), [1, s[1] / 2, s[2] / 2], "{}", p.file);
    }
    let sizes: std::collections::BTreeSet<Vec<usize>> = preds.iter().map(|p| shape(&p.cols["map"])).collect();
    assert!(sizes.len() >= 3, "images of several sizes: {sizes:?}");
    // Parquet: nested lists of each row's own lengths.
    let out = tmp.path().join("pq");
    let o = out.display().to_string();
    score(
        tmp.path(),
        &["--model", &m, "--input", &i, "--output", &o, "--scale", "1", "--output-file-name", "p.parquet"],
    )
    .expect_code(0);
    let (_, pq) = parquet_preds(&out.join("p.parquet"));
    for (a, b) in pq.iter().zip(&preds) {
        assert_eq!(shape(&a.cols["map"]), shape(&b.cols["map"]), "{}", a.file);
    }
}

/// The figure in README ("Images as PIL sees them"): every JPEG of the corpus (codecs and EXIF
/// photos) against PIL, in RGB. `cargo test --test realworld_images jpeg -- --nocapture`.
#[test]
fn jpeg_differences_from_pil_over_the_corpus() {
    let tmp = tempdir();
    let (mut max, mut sum, mut n, mut files) = (0f64, 0f64, 0usize, 0usize);
    for folder in ["codecs", "exif"] {
        let want = reference_by_file(&format!("images-{folder}"));
        let (_, got) = pixels(tmp.path(), "identity_rgb.onnx", &images(folder), folder, &[]);
        for (f, w) in want.iter().filter(|(f, _)| is_jpeg(f)) {
            let (g, r) = (flat(&got[f]), flat(&w["rgb"]));
            assert_eq!(g.len(), r.len(), "{f}");
            for (a, b) in g.iter().zip(&r) {
                max = max.max((a - b).abs());
                sum += (a - b).abs();
            }
            n += g.len();
            files += 1;
        }
    }
    let mean = sum / n as f64;
    eprintln!("JPEG against PIL over {files} files: max {max} of 255, mean {mean:.3}");
    assert!(files >= 14 && max <= JPEG_MAX && mean <= JPEG_MEAN, "{files} files: max {max}, mean {mean}");
}
