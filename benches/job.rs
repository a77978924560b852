//! Criterion benchmarks: the pieces of a job (decode, model calls) and whole jobs.
//!
//! Run with `cargo bench --bench job` (or `scripts/bench.sh`); BENCHMARKS.md holds the figures
//! and how to read them. Every input is generated at start in a temporary folder from fixed
//! seeds, so two runs score the same bytes:
//!
//! - `decode/*`: [`Feeder::decode`] on one file: a 10k-row CSV and the same rows as Parquet
//!   (row groups of 1000), both in `wine_tensor.onnx`'s 13 columns plus an `id` pass-through
//!   column; one 8x8 digit PNG (`digits_mlp.onnx`'s flat [N, 64] input); one 320x240 RGB PNG
//!   resized into an NCHW [N, 3, 224, 224] input with ImageNet mean/std.
//! - `photos/*`: one photo after another decoded and resized into the NCHW [N, 3, 128, 128]
//!   input of bench-compare's W2-cnn: the JPEGs of bench-compare's W2 images (`BATCHSCORE_
//!   BENCH_PHOTOS`, default `target/bench-data/compare/small/w2`, made by `benches/compare/
//!   gen_data.py`; the group is skipped when the folder is missing). Three paths: zune-jpeg's
//!   full decode then the resize (the image crate, batchscore's JPEG path before libjpeg-turbo),
//!   libjpeg-turbo's full decode (`--jpeg-decode full`) and its DCT-scaled decode (the
//!   default). Throughput in photos per second of one core (one thread).
//! - `model/*`: [`ModelRunner::run_rows`] (packing rows into calls, the ONNX Runtime call, and
//!   the outputs into Arrow columns) on decoded rows, and the bare `Session::run` on a ready
//!   tensor of the same rows for comparison. Sessions have 1 intra-op thread: what each of the
//!   2 workers of a job gets on a 2-core machine.
//! - `job/*`: [`batchscore::engine::run`] end to end over 20 files x 5000 rows (CSV or Parquet),
//!   writing CSV or Parquet, with the CLI's defaults otherwise (workers = cores,
//!   `mini_batch_size` 10). Each iteration writes a new output folder (the output must not
//!   exist), removed again outside the timed part.
//!
//! Throughput is in rows (images for the image cases). Short settings (1 s warm-up, 3 s of
//! measurement, 10 samples) keep the whole run to a few minutes on 2 cores; criterion's own
//! flags (`-- --measurement-time 10`, a name filter) override them.

use std::hint::black_box;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use batchscore::engine::infer::{Attempt, InferTimings, ModelRunner, Watchdog, build_session};
use batchscore::engine::model::{Buffer, ElemType, ModelInfo, TensorSpec};
use batchscore::engine::plan::{DataKind, FileKind};
use batchscore::engine::preprocess::{DecodedFile, Feeder, ImageSpec, resolve_feeder};
use batchscore::engine::report::JobStatus;
use batchscore::engine::settings::{Deployment, ImageOptions, RawSettings, Settings};
use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ort::session::Session;
use ort::value::TensorRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

/// The repository root, where `models/` and `sample-data/` are.
fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `load_wine`'s 13 feature columns with (roughly) their minimum and maximum.
const WINE_COLUMNS: [(&str, f64, f64); 13] = [
    ("alcohol", 11.0, 14.9),
    ("malic_acid", 0.7, 5.8),
    ("ash", 1.3, 3.3),
    ("alcalinity_of_ash", 10.6, 30.0),
    ("magnesium", 70.0, 162.0),
    ("total_phenols", 0.98, 3.88),
    ("flavanoids", 0.34, 5.08),
    ("nonflavanoid_phenols", 0.13, 0.66),
    ("proanthocyanins", 0.41, 3.58),
    ("color_intensity", 1.28, 13.0),
    ("hue", 0.48, 1.71),
    ("od280/od315_of_diluted_wines", 1.27, 4.0),
    ("proline", 278.0, 1680.0),
];

/// splitmix64: a small, fixed-seed generator (no randomness from the environment).
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `rows` wine-like rows: ids from `first_id`, each feature uniform in its range, 3 decimals.
struct WineRows {
    ids: Vec<i64>,
    /// Column-major: `values[c][r]`.
    values: Vec<Vec<f64>>,
}

fn wine_rows(seed: u64, first_id: i64, rows: usize) -> WineRows {
    let mut rng = Rng(seed);
    let mut values = vec![Vec::with_capacity(rows); WINE_COLUMNS.len()];
    for _ in 0..rows {
        for (c, (_, lo, hi)) in WINE_COLUMNS.iter().enumerate() {
            let v = lo + (hi - lo) * rng.unit();
            values[c].push((v * 1000.0).round() / 1000.0);
        }
    }
    WineRows { ids: (first_id..first_id + rows as i64).collect(), values }
}

fn wine_csv(rows: &WineRows) -> Vec<u8> {
    use std::fmt::Write;
    let mut s = String::from("id");
    for (name, _, _) in WINE_COLUMNS {
        s.push(',');
        s.push_str(name);
    }
    s.push('\n');
    for (r, id) in rows.ids.iter().enumerate() {
        write!(s, "{id}").unwrap();
        for col in &rows.values {
            write!(s, ",{:.3}", col[r]).unwrap();
        }
        s.push('\n');
    }
    s.into_bytes()
}

/// The rows as Parquet: `id` int64 then the 13 features as float64, snappy, row groups of 1000.
fn wine_parquet(rows: &WineRows) -> Vec<u8> {
    let mut fields = vec![Field::new("id", DataType::Int64, false)];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(rows.ids.clone()))];
    for ((name, _, _), values) in WINE_COLUMNS.iter().zip(&rows.values) {
        fields.push(Field::new(*name, DataType::Float64, false));
        columns.push(Arc::new(Float64Array::from(values.clone())));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).expect("consistent columns");
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1000))
        .build();
    let mut out = Vec::new();
    let mut w = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).expect("parquet writer");
    w.write(&batch).expect("parquet write");
    w.close().expect("parquet close");
    out
}

/// A 320x240 RGB PNG: gradients plus fixed-seed noise (so it compresses like a photo, not a flat fill).
fn rgb_png(width: u32, height: u32) -> Vec<u8> {
    let mut rng = Rng(7);
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        let n = (rng.next_u64() & 0x3f) as u32;
        image::Rgb([
            ((x * 255 / width + n) % 256) as u8,
            ((y * 255 / height + n) % 256) as u8,
            (((x + y) * 2 + n) % 256) as u8,
        ])
    });
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(img).write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png).expect("png");
    png
}

/// Settings for a job (or just a feeder), with the CLI's defaults for what is not given.
fn settings(model: &Path, input: &str, output: &str, file_name: &str, passthrough: &[&str]) -> Settings {
    RawSettings {
        model: Some(model.display().to_string()),
        input: Some(input.to_string()),
        output: Some(output.to_string()),
        output_file_name: Some(file_name.to_string()),
        passthrough: (!passthrough.is_empty()).then(|| passthrough.iter().map(|s| s.to_string()).collect()),
        logging_level: Some("warning".into()),
        progress: Some("off".into()),
        ..Default::default()
    }
    .resolve("bench")
    .expect("valid bench settings")
}

/// A model loaded once: its bytes and what it takes and gives.
struct Model {
    bytes: Vec<u8>,
    info: Arc<ModelInfo>,
    path: PathBuf,
}

fn load_model(env: &ort::environment::Environment, name: &str) -> Model {
    let path = repo().join("models").join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let session = build_session(env, &bytes, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
    let facts = batchscore::engine::model::proto::read(&bytes).unwrap_or_default();
    let info = Arc::new(ModelInfo::from_session(&session, name, &facts).expect("supported model"));
    Model { bytes, info, path }
}

/// Everything the benchmarks share, made once.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    env: &'static ort::environment::Environment,
    watchdog: Arc<Watchdog>,
    wine: Model,
    digits: Model,
    wine_feeder: Feeder,
    digits_feeder: Feeder,
    csv_10k: Bytes,
    parquet_10k: Bytes,
}

const DECODE_ROWS: usize = 10_000;
const JOB_FILES: usize = 20;
const JOB_ROWS_PER_FILE: usize = 5_000;

impl Fixture {
    fn new() -> Fixture {
        let env = batchscore::engine::runtime::environment().unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::Builder::new().prefix("batchscore-bench-").tempdir().expect("temp dir");
        let root = dir.path().to_path_buf();
        let wine = load_model(env, "wine_tensor.onnx");
        let digits = load_model(env, "digits_mlp.onnx");
        let dummy = root.join("unused");
        let dummy = dummy.to_str().expect("utf-8 temp path");
        let wine_feeder =
            resolve_feeder(&wine.info, DataKind::Tabular, &settings(&wine.path, dummy, dummy, "p.csv", &["id"]))
                .expect("wine feeder");
        let digits_feeder =
            resolve_feeder(&digits.info, DataKind::Image, &settings(&digits.path, dummy, dummy, "p.csv", &[]))
                .expect("digits feeder");
        let rows = wine_rows(1, 0, DECODE_ROWS);
        let csv_10k = Bytes::from(wine_csv(&rows));
        let parquet_10k = Bytes::from(wine_parquet(&rows));

        // Job inputs: file i holds rows i*5000.. from seed 100+i, as CSV and as Parquet.
        for (sub, ext) in [("csv", "csv"), ("parquet", "parquet")] {
            let folder = root.join("in").join(sub);
            std::fs::create_dir_all(&folder).expect("input folder");
            for i in 0..JOB_FILES {
                let rows = wine_rows(100 + i as u64, (i * JOB_ROWS_PER_FILE) as i64, JOB_ROWS_PER_FILE);
                let bytes = if ext == "csv" { wine_csv(&rows) } else { wine_parquet(&rows) };
                std::fs::write(folder.join(format!("part-{i:03}.{ext}")), bytes).expect("write input");
            }
        }
        Fixture {
            _dir: dir,
            root,
            env,
            watchdog: Watchdog::start(),
            wine,
            digits,
            wine_feeder,
            digits_feeder,
            csv_10k,
            parquet_10k,
        }
    }

    fn session(&self, model: &Model) -> Session {
        build_session(self.env, &model.bytes, 1).expect("session")
    }

    /// An attempt whose deadline is far away: the benchmarks never time out.
    fn attempt(&self) -> Attempt {
        self.watchdog.attempt(24.0 * 3600.0, Arc::new(AtomicBool::new(false))).expect("attempt")
    }

    fn digit_pngs(&self, n: usize) -> Vec<Bytes> {
        (0..n)
            .map(|i| {
                let p = repo().join(format!("sample-data/digits/digit-{i:04}.png"));
                Bytes::from(std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
            })
            .collect()
    }
}

fn bench_decode(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Elements(DECODE_ROWS as u64));
    let check = fx.wine_feeder.decode(FileKind::Csv, "bench.csv", fx.csv_10k.clone()).expect("csv decodes");
    assert_eq!((check.rows, check.failed_rows.len()), (DECODE_ROWS, 0));
    g.bench_function("csv_10k_rows", |b| {
        b.iter(|| fx.wine_feeder.decode(FileKind::Csv, "bench.csv", black_box(fx.csv_10k.clone())).unwrap())
    });
    let check = fx.wine_feeder.decode(FileKind::Parquet, "bench.parquet", fx.parquet_10k.clone()).expect("pq decodes");
    assert_eq!((check.rows, check.failed_rows.len()), (DECODE_ROWS, 0));
    g.bench_function("parquet_10k_rows", |b| {
        b.iter(|| fx.wine_feeder.decode(FileKind::Parquet, "bench.parquet", black_box(fx.parquet_10k.clone())).unwrap())
    });

    g.throughput(Throughput::Elements(1));
    let digit = fx.digit_pngs(1).remove(0);
    g.bench_function("png_digit_8x8_gray_flat64", |b| {
        b.iter(|| fx.digits_feeder.decode(FileKind::Image, "digit.png", black_box(digit.clone())).unwrap())
    });
    let input = TensorSpec { name: "image".into(), dtype: ElemType::F32, shape: vec![-1, 3, 224, 224] };
    let opts = ImageOptions {
        mean: Some(vec![0.485, 0.456, 0.406]),
        std: Some(vec![0.229, 0.224, 0.225]),
        ..Default::default()
    };
    let spec = ImageSpec::resolve(&input, &opts).expect("image spec");
    let feeder = Feeder::Image { input, spec };
    let photo = Bytes::from(rgb_png(320, 240));
    let check = feeder.decode(FileKind::Image, "photo.png", photo.clone()).expect("png decodes");
    assert_eq!(check.row_shapes, vec![vec![3, 224, 224]]);
    g.bench_function("png_rgb_320x240_to_nchw_224", |b| {
        b.iter(|| feeder.decode(FileKind::Image, "photo.png", black_box(photo.clone())).unwrap())
    });
    g.finish();
}

/// The JPEGs that `photos/*` decodes, or `None` (with a note) when there are none.
fn bench_photos_files() -> Option<Vec<Bytes>> {
    let dir = std::env::var_os("BATCHSCORE_BENCH_PHOTOS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target/bench-data/compare/small/w2"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "jpg")).collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        eprintln!("photos/*: skipped, no .jpg files in {} (benches/compare/gen_data.py makes them)", dir.display());
        return None;
    }
    Some(files.iter().map(|f| Bytes::from(std::fs::read(f).expect("photo"))).collect())
}

/// The JPEG path before libjpeg-turbo: the image crate's (zune-jpeg's) full decode, then the
/// same bilinear resize and scaling to [0, 1] as batchscore's.
fn zune_then_resize(bytes: &[u8], side: u32) -> Vec<f32> {
    use fast_image_resize as fir;
    let img = image::DynamicImage::ImageRgb8(image::load_from_memory(bytes).expect("jpeg").into_rgb8());
    let mut dst = fir::images::Image::new(side, side, fir::PixelType::U8x3);
    let opts = fir::ResizeOptions::new().resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
    fir::Resizer::new().resize(&img, &mut dst, &opts).expect("resize");
    let px = dst.into_vec();
    let plane = (side * side) as usize;
    let mut out = vec![0f32; px.len()];
    for (i, p) in px.chunks_exact(3).enumerate() {
        for ch in 0..3 {
            out[ch * plane + i] = f32::from(p[ch]) / 255.0;
        }
    }
    out
}

fn bench_photos(c: &mut Criterion) {
    let Some(photos) = bench_photos_files() else { return };
    let mut g = c.benchmark_group("photos");
    g.throughput(Throughput::Elements(photos.len() as u64));
    g.bench_function("zune_full_decode_then_resize_to_128", |b| {
        b.iter(|| photos.iter().map(|p| zune_then_resize(black_box(p), 128).len()).sum::<usize>())
    });
    let input = TensorSpec { name: "input".into(), dtype: ElemType::F32, shape: vec![-1, 3, 128, 128] };
    for (name, jpeg_scaled) in
        [("turbo_full_decode_then_resize_to_128", false), ("turbo_scaled_decode_then_resize_to_128", true)]
    {
        let spec = ImageSpec::resolve(&input, &ImageOptions { jpeg_scaled, ..Default::default() }).expect("spec");
        let feeder = Feeder::Image { input: input.clone(), spec };
        g.bench_function(name, |b| {
            b.iter(|| {
                photos
                    .iter()
                    .map(|p| feeder.decode(FileKind::Image, "p.jpg", black_box(p.clone())).unwrap().rows)
                    .sum::<usize>()
            })
        });
    }
    g.finish();
}

fn bench_model(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("model");
    let attempt = fx.attempt();
    let mut timings = InferTimings::default();

    // Wine: 10k decoded rows in calls of 1024, then one call of 1024 rows, then the bare call.
    let wine_10k = fx.wine_feeder.decode(FileKind::Parquet, "bench.parquet", fx.parquet_10k.clone()).unwrap();
    let mut runner = ModelRunner::new(fx.session(&fx.wine), fx.wine.info.clone(), 1024);
    g.throughput(Throughput::Elements(DECODE_ROWS as u64));
    g.bench_function("run_rows_wine_10k_rows_batch_1024", |b| {
        b.iter(|| runner.run_rows(&[black_box(&wine_10k)], &attempt, &mut timings).unwrap())
    });
    let wine_1024 = first_rows(&wine_10k, 1024);
    g.throughput(Throughput::Elements(1024));
    g.bench_function("run_rows_wine_1024_rows", |b| {
        b.iter(|| runner.run_rows(&[black_box(&wine_1024)], &attempt, &mut timings).unwrap())
    });
    let Buffer::F32(features) = &wine_1024.inputs[0] else { panic!("wine takes float32") };
    let mut session = fx.session(&fx.wine);
    g.bench_function("session_run_wine_1024_rows", |b| {
        b.iter(|| {
            let t = TensorRef::from_array_view(([1024usize, 13], black_box(features.as_slice()))).unwrap();
            let out = session.run(ort::inputs!["input" => t]).unwrap();
            black_box(out.len());
        })
    });

    // Digits: 256 decoded 8x8 images, in calls of 32 (the image default) and of 256.
    let digits: Vec<DecodedFile> = fx
        .digit_pngs(256)
        .into_iter()
        .map(|b| fx.digits_feeder.decode(FileKind::Image, "digit.png", b).unwrap())
        .collect();
    let refs: Vec<&DecodedFile> = digits.iter().collect();
    g.throughput(Throughput::Elements(256));
    for batch in [32, 256] {
        let mut runner = ModelRunner::new(fx.session(&fx.digits), fx.digits.info.clone(), batch);
        g.bench_function(format!("run_rows_digits_256_images_batch_{batch}"), |b| {
            b.iter(|| runner.run_rows(black_box(&refs), &attempt, &mut timings).unwrap())
        });
    }
    let pixels: Vec<f32> = digits
        .iter()
        .flat_map(|d| match &d.inputs[0] {
            Buffer::F32(v) => v.iter().copied(),
            _ => panic!("digits take float32"),
        })
        .collect();
    let mut session = fx.session(&fx.digits);
    g.bench_function("session_run_digits_256_images", |b| {
        b.iter(|| {
            let t = TensorRef::from_array_view(([256usize, 64], black_box(pixels.as_slice()))).unwrap();
            let out = session.run(ort::inputs!["input" => t]).unwrap();
            black_box(out.len());
        })
    });
    g.finish();
}

/// The first `n` rows of a decoded single-input file (no pass-through needed for the model call).
fn first_rows(d: &DecodedFile, n: usize) -> DecodedFile {
    let row_len = d.row_shapes[0].iter().product::<i64>() as usize;
    let mut buf = Buffer::new(d.inputs[0].dtype(), n * row_len);
    buf.extend_from(&d.inputs[0], 0..n * row_len);
    DecodedFile {
        rows: n,
        row_numbers: d.row_numbers.as_ref().map(|r| r[..n].to_vec()),
        inputs: vec![buf],
        row_shapes: d.row_shapes.clone(),
        passthrough: Vec::new(),
        failed_rows: Vec::new(),
        notes: Vec::new(),
    }
}

fn bench_job(c: &mut Criterion, fx: &Fixture) {
    let mut g = c.benchmark_group("job");
    let total = (JOB_FILES * JOB_ROWS_PER_FILE) as u64;
    g.throughput(Throughput::Elements(total));
    let mut n = 0u64;
    for (input, output_name) in
        [("csv", "predictions.csv"), ("parquet", "predictions.parquet"), ("parquet", "predictions.csv")]
    {
        let out_ext = output_name.rsplit_once('.').unwrap().1;
        let in_dir = fx.root.join("in").join(input);
        g.bench_function(format!("{input}_to_{out_ext}_{JOB_FILES}x{JOB_ROWS_PER_FILE}_rows"), |b| {
            b.iter_custom(|iters| {
                let mut spent = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let out = fx.root.join("out").join(format!("job-{n}"));
                    let s =
                        settings(&fx.wine.path, in_dir.to_str().unwrap(), out.to_str().unwrap(), output_name, &["id"]);
                    let t = Instant::now();
                    let outcome = batchscore::engine::run(
                        batchscore::engine::JobSpec::new(s, Deployment::default()),
                        &Default::default(),
                    )
                    .unwrap_or_else(|e| panic!("{e}"));
                    spent += t.elapsed();
                    let r = &outcome.result;
                    assert!(r.status == JobStatus::Completed && r.counts.rows_scored == total, "{r:?}");
                    std::fs::remove_dir_all(&out).expect("remove output");
                }
                spent
            })
        });
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let fx = Fixture::new();
    bench_decode(c, &fx);
    bench_photos(c);
    bench_model(c, &fx);
    bench_job(c, &fx);
    fx.watchdog.stop();
}

criterion_group! {
    name = all;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = benches
}
criterion_main!(all);
