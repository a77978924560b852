//! Criterion benchmarks of the batch endpoint layer (BENCHMARKS.md, "Batch endpoints"):
//!
//! - `catalog/*`: `model list`, `job list` and `job show` with 10,000 rows of each in the
//!   catalog, through the service layer the CLI calls (the CLI adds its process start and the
//!   printing; `scripts/bench.sh catalog` times the commands themselves on the same catalog,
//!   which this bench leaves in `target/bench-catalog/ws`).
//! - `invoke_vs_score/*`: the same job (20 CSV files x 5000 iris rows, mini-batches of 1 file,
//!   iris_zipmap.onnx) run by `engine::run` as `score` does, and by invoke (the job record,
//!   the effective settings, the heartbeat thread, the final record), so the difference is what
//!   invoke adds.
//!
//! Run with `cargo bench --bench catalog`.

use std::path::PathBuf;
use std::time::Duration;

use batchscore::engine::settings::{Deployment, RawSettings};
use batchscore::engine::{JobControl, JobSpec};
use batchscore::service::jobs::InvokeSpec;
use batchscore::service::{endpoints, jobs, models, workspaces};
use batchscore::workspace::assets::{AssetRef, Job, JobStatus, Model, Signature, TensorSignature};
use batchscore::workspace::{Workspace, store};
use criterion::{Criterion, criterion_group, criterion_main};

const ROWS: usize = 10_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A workspace at `target/bench-catalog/ws` with 10,000 model versions and 10,000 jobs.
fn seeded() -> Workspace {
    let root = repo().join("target/bench-catalog/ws");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let mut ws = workspaces::create(&root, "bench", None).unwrap();
    let sig =
        |n: &str| TensorSignature { name: n.into(), dtype: "float32".into(), shape: vec!["?".into(), "4".into()] };
    ws.write(|tx| {
        for i in 0..ROWS {
            let m = Model {
                id: format!("azureml:model-{}:{}", i % 100, i / 100 + 1),
                name: format!("model-{}", i % 100),
                version: (i / 100 + 1).to_string(),
                kind: "custom_model".into(),
                description: Some("a model version for the benchmark".into()),
                tags: [("team".to_string(), "bench".to_string())].into(),
                path: format!("azureml://datastores/workspaceblobstore/paths/LocalUpload/{i:032x}/model.onnx"),
                url: format!("/data/LocalUpload/{i:032x}/model.onnx"),
                source: "/data/model.onnx".into(),
                signature: Signature { inputs: vec![sig("input")], outputs: vec![sig("label"), sig("probabilities")] },
                size_bytes: 43_900,
                sha256: format!("{i:064x}"),
                created_at: batchscore::workspace::now(),
            };
            store::insert(tx, &m)?;
            store::insert(tx, &job(i))?;
        }
        Ok(())
    })
    .unwrap();
    ws
}

fn job(i: usize) -> Job {
    let now = batchscore::workspace::now();
    Job {
        id: format!("azureml:batchjob-{i}"),
        name: format!("batchjob-{i}"),
        kind: "pipeline".into(),
        endpoint_name: format!("endpoint-{}", i % 10),
        deployment_name: "blue".into(),
        status: if i.is_multiple_of(7) { JobStatus::Failed } else { JobStatus::Completed },
        created_at: now.clone(),
        started_at: Some(now.clone()),
        finished_at: Some(now),
        heartbeat_at: None,
        runner: None,
        launch: None,
        instances: Default::default(),
        inputs: Default::default(),
        outputs: Default::default(),
        model: AssetRef { name: "model-1".into(), version: "1".into() },
        environment: AssetRef { name: "batchscore-cpu".into(), version: "1".into() },
        settings: RawSettings { mini_batch_size: Some("10".into()), ..Default::default() },
        instance_count: 1,
        progress: None,
        counts: Some(serde_json::json!({"rows_scored": 150, "items_failed": 0})),
        first_failure: None,
        error: None,
        log_location: Some(format!("/data/azureml/batchjob-{i}/score/logs/job_result.json")),
        warnings: Vec::new(),
    }
}

fn catalog(c: &mut Criterion) {
    let mut ws = seeded();
    let mut g = c.benchmark_group("catalog");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    g.bench_function("model_list_10k", |b| b.iter(|| assert_eq!(models::list(&ws, None).unwrap().len(), ROWS)));
    g.bench_function("job_list_10k", |b| {
        b.iter(|| assert_eq!(jobs::list(&mut ws, None, None, None).unwrap().len(), ROWS))
    });
    g.bench_function("job_show_of_10k", |b| b.iter(|| jobs::show(&mut ws, "batchjob-5000").unwrap()));
    g.finish();
}

/// 20 CSV files of 5000 iris rows (the sample's rows, repeated), made once.
fn iris_data() -> PathBuf {
    let dir = repo().join("target/bench-catalog/iris");
    if dir.join("part-19.csv").exists() {
        return dir;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(repo().join("sample-data/iris/part-0.csv")).unwrap();
    let (header, rows) = text.split_once('\n').unwrap();
    let rows: Vec<&str> = rows.lines().filter(|l| !l.is_empty()).collect();
    for f in 0..20 {
        let mut out = format!("{header}\n");
        for r in 0..5000 {
            out.push_str(rows[r % rows.len()]);
            out.push('\n');
        }
        std::fs::write(dir.join(format!("part-{f:02}.csv")), out).unwrap();
    }
    dir
}

fn invoke_vs_score(c: &mut Criterion) {
    let input = iris_data();
    let root = repo().join("target/bench-catalog/invoke");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let mut ws = workspaces::create(&root, "bench", None).unwrap();
    let model = repo().join("models/iris_zipmap.onnx").display().to_string();
    models::create(&mut ws, models::ModelSpec { name: "iris".into(), path: model.clone(), ..Default::default() })
        .unwrap();
    endpoints::create_endpoint(&mut ws, endpoints::EndpointSpec { name: "iris-ep".into(), ..Default::default() })
        .unwrap();
    let file = root.join("dep.yml");
    std::fs::write(&file, "name: blue\nendpoint_name: iris-ep\nmodel: azureml:iris:1\nsettings:\n  mini_batch_size: 1\n  logging_level: warning\nbatchscore:\n  passthrough: [id]\n").unwrap();
    endpoints::create_deployment(&mut ws, endpoints::DeploymentSpec { file: Some(file), ..Default::default() })
        .unwrap();
    let outs = root.join("outs");
    let mut n = 0;
    let mut next = |what: &str| {
        n += 1;
        outs.join(format!("{what}-{n}")).display().to_string()
    };
    let mut g = c.benchmark_group("invoke_vs_score");
    g.sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(8));
    g.bench_function("score", |b| {
        b.iter(|| {
            let settings = RawSettings {
                model: Some(model.clone()),
                input: Some(input.display().to_string()),
                output: Some(next("score")),
                mini_batch_size: Some("1".into()),
                passthrough: Some(vec!["id".into()]),
                progress: Some("off".into()),
                logging_level: Some("warning".into()),
                ..Default::default()
            }
            .resolve("bench")
            .unwrap();
            let o = batchscore::engine::run(JobSpec::new(settings, Deployment::default()), &JobControl::new()).unwrap();
            assert_eq!(o.result.counts.rows_scored, 100_000);
        })
    });
    g.bench_function("invoke", |b| {
        b.iter(|| {
            let spec = InvokeSpec {
                endpoint: "iris-ep".into(),
                input: input.display().to_string(),
                output_path: Some(next("invoke")),
                ..Default::default()
            };
            let (job, mut spec) = jobs::create(&mut ws, spec).unwrap();
            spec.options.signals = false;
            let ran = jobs::run(&mut ws, &job.name, spec, None).unwrap();
            assert_eq!(ran.job.status, JobStatus::Completed);
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&outs);
}

criterion_group!(benches, catalog, invoke_vs_score);
criterion_main!(benches);
