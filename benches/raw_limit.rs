//! The raw limit: the model alone, called in a tight loop on tensors already in memory.
//!
//! Contender (b) of the comparison harness (`benches/compare/harness.py`, `make bench-compare`):
//! what ONNX Runtime does with this model, this batch size and these threads when nothing else
//! runs: no reading, no decoding, no output. batchscore's own decoders turn every input file
//! into model rows first (untimed), so the tensors are exactly the ones a job feeds; then
//! `--sessions` threads, each with its own session of `--intra` intra-op threads (as a job's
//! workers), take calls of `--batch-size` rows from a shared counter until all are done. Only
//! that loop is timed. It prints one JSON line: `{"items": N, "seconds": S, "per_second": R}`.
//!
//! ```text
//! cargo bench --bench raw_limit -- --model M --input DIR --kind tabular --batch-size 1024 \
//!     --sessions 2 --intra 1 [--passthrough id] [--image-size 128] [--max-items N] [--device cuda]
//! ```

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use batchscore::engine::infer::{ModelSource, build_session_on};
use batchscore::engine::model::{Buffer, ModelInfo};
use batchscore::engine::plan::{DataKind, list_inputs};
use batchscore::engine::preprocess::{DecodedFile, resolve_feeder};
use batchscore::engine::read::fetch_one;
use batchscore::engine::settings::{Device, RawSettings};
use batchscore::storage::Location;
use clap::Parser;
use ort::session::SessionInputValue;
use ort::value::TensorRef;
use rayon::prelude::*;

#[derive(Parser, Debug)]
#[command(about = "The raw ONNX Runtime limit on in-memory tensors (contender (b) of the comparison bench)")]
struct Args {
    #[arg(long)]
    model: PathBuf,
    /// A folder of input files (Parquet/CSV, or images): the files a job would list.
    #[arg(long)]
    input: PathBuf,
    /// tabular or image.
    #[arg(long)]
    kind: String,
    #[arg(long, default_value_t = 1024)]
    batch_size: usize,
    #[arg(long, default_value_t = 2)]
    sessions: usize,
    #[arg(long, default_value_t = 1)]
    intra: usize,
    /// Columns that are not features (as batchscore's --passthrough).
    #[arg(long, value_delimiter = ',')]
    passthrough: Vec<String>,
    #[arg(long)]
    image_size: Option<String>,
    /// Load only this many rows or images (the model's speed does not depend on the count).
    #[arg(long)]
    max_items: Option<usize>,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn main() {
    // `cargo test --all-targets` runs this without arguments: check it on the sample data.
    let args = if std::env::args().len() <= 1 {
        let repo = env!("CARGO_MANIFEST_DIR");
        Args::parse_from([
            "raw_limit".to_string(),
            format!("--model={repo}/models/wine_tensor.onnx"),
            format!("--input={repo}/sample-data/wine"),
            "--kind=tabular".into(),
            "--passthrough=id".into(),
            "--batch-size=64".into(),
        ])
    } else {
        Args::parse()
    };
    if let Err(e) = run(&args) {
        eprintln!("raw_limit: {e}");
        std::process::exit(2);
    }
}

fn run(args: &Args) -> Result<(), String> {
    let kind = match args.kind.as_str() {
        "tabular" => DataKind::Tabular,
        "image" => DataKind::Image,
        other => return Err(format!("--kind {other}: use tabular or image")),
    };
    let settings = RawSettings {
        model: Some(args.model.display().to_string()),
        input: Some(args.input.display().to_string()),
        output: Some("unused-output".into()),
        passthrough: (!args.passthrough.is_empty()).then(|| args.passthrough.clone()),
        image_size: args.image_size.clone(),
        device: Some(args.device.clone()),
        ..Default::default()
    }
    .resolve("raw_limit")
    .map_err(|e| e.to_string())?;
    let device: Device = settings.device;
    let env = batchscore::engine::runtime::environment().map_err(|e| e.to_string())?;
    let model = std::fs::read(&args.model).map_err(|e| format!("{}: {e}", args.model.display()))?;
    let first = build_session_on(
        env,
        ModelSource::Bytes(&model),
        args.intra,
        device,
        batchscore::engine::settings::GraphOptimization::All,
    )?;
    let facts = batchscore::engine::model::proto::read(&model).unwrap_or_default();
    let info = ModelInfo::from_session(&first, &args.model.display().to_string(), &facts).map_err(|e| e.to_string())?;
    let feeder = resolve_feeder(&info, kind, &settings).map_err(|e| e.to_string())?;
    if info.inputs.len() != 1 {
        return Err("the raw limit takes models with one input".into());
    }
    let input_name = info.inputs[0].name.clone();

    // Load and decode every file (untimed), in parallel; the files a job would list.
    let input = Location::open(&settings.input, &settings.storage_options).map_err(|e| e.to_string())?;
    let io = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let files = io.block_on(list_inputs(&input, None, None)).map_err(|e| e.to_string())?.files;
    let decoded: Vec<DecodedFile> = files
        .par_iter()
        .map(|f| {
            let bytes = io.block_on(fetch_one(&input.store, &f.path)).map_err(|e| format!("{}: {e}", f.rel))?;
            feeder.decode(f.kind, &f.rel, bytes).map_err(|e| e.to_string())
        })
        .collect::<Result<_, String>>()?;
    let shapes = decoded.first().ok_or("no input files")?.row_shapes[0].clone();
    let row_len: usize = shapes.iter().product::<i64>() as usize;
    let mut rows: usize = decoded.iter().map(|d| d.rows).sum();
    if let Some(m) = args.max_items {
        rows = rows.min(m);
    }
    let mut all = Buffer::new(decoded[0].inputs[0].dtype(), rows * row_len);
    for d in &decoded {
        if d.row_shapes[0] != shapes {
            return Err("rows of different shapes: the raw limit needs one shape".into());
        }
        let take = (rows - all.len() / row_len).min(d.rows);
        all.extend_from(&d.inputs[0], 0..take * row_len);
    }
    drop(decoded);
    let Buffer::F32(all) = all else {
        return Err("the raw limit takes float32 inputs".into());
    };
    let all = Arc::new(all);

    // Sessions, built before the clock starts.
    let mut sessions = vec![first];
    for _ in 1..args.sessions {
        sessions.push(build_session_on(
            env,
            ModelSource::Bytes(&model),
            args.intra,
            device,
            batchscore::engine::settings::GraphOptimization::All,
        )?);
    }
    let calls = rows.div_ceil(args.batch_size);
    let next = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(std::sync::Barrier::new(args.sessions + 1));
    let mut handles = Vec::new();
    for mut session in sessions {
        let (all, next, barrier, name, shapes) =
            (all.clone(), next.clone(), barrier.clone(), input_name.clone(), shapes.clone());
        let batch = args.batch_size;
        handles.push(std::thread::spawn(move || -> Result<(), String> {
            barrier.wait();
            loop {
                let c = next.fetch_add(1, Ordering::Relaxed);
                if c >= calls {
                    return Ok(());
                }
                let (start, end) = (c * batch, ((c + 1) * batch).min(rows));
                let mut shape = vec![(end - start) as i64];
                shape.extend(&shapes);
                let t = TensorRef::from_array_view((shape, &all[start * row_len..end * row_len]))
                    .map_err(|e| e.to_string())?;
                let inputs: Vec<(String, SessionInputValue)> = vec![(name.clone(), t.into())];
                let out = session.run(inputs).map_err(|e| e.to_string())?;
                std::hint::black_box(out.len());
            }
        }));
    }
    barrier.wait();
    let started = Instant::now();
    for h in handles {
        h.join().map_err(|_| "a session thread panicked".to_string())??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "items": rows,
            "seconds": seconds,
            "per_second": rows as f64 / seconds,
            "batch_size": args.batch_size,
            "sessions": args.sessions,
            "intra": args.intra,
            "device": device.to_string(),
        })
    );
    Ok(())
}
