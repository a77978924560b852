//! A bounded load test of `batchscore serve` (not a timed test; figures go to BENCHMARKS.md).
//!
//! `cargo bench --bench serve_load` starts the release binary on a fresh workspace with the iris
//! endpoint, then runs BENCH_CONCURRENCY clients (default 64), each on its own keep-alive connection,
//! for BENCH_SECONDS (default 30). Each client sends status polls (`GET
//! /batchEndpoints/iris-ep/jobs/{job}`) and, every 16th request, a small invoke (one CSV of
//! the iris sample). The executor runs one job at a time from a queue of 100, so invokes beyond it get 429
//! with Retry-After: that is the design, counted apart from errors. Prints p50/p99/max latency
//! and the answers by status, per kind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::io::{BufRead, BufReader};

const BIN: &str = env!("CARGO_BIN_EXE_batchscore");

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn bs(ws: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).current_dir(ws).env("BATCHSCORE_WORKSPACE", ws).output().unwrap();
    assert!(out.status.success(), "batchscore {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A workspace with `iris-ep` (deployment `blue` on iris_zipmap.onnx) and an invoke token.
fn workspace(ws: &Path) -> String {
    std::fs::create_dir_all(ws).unwrap();
    bs(ws, &["workspace", "create"]);
    let model = repo().join("models/iris_zipmap.onnx");
    bs(ws, &["model", "create", "-n", "iris", "-p", model.to_str().unwrap()]);
    bs(ws, &["batch-endpoint", "create", "-n", "iris-ep"]);
    std::fs::write(
        ws.join("blue.yml"),
        "name: blue\nendpoint_name: iris-ep\nmodel: azureml:iris:1\nbatchscore:\n  passthrough: [id]\n",
    )
    .unwrap();
    bs(ws, &["batch-deployment", "create", "-f", "blue.yml"]);
    bs(ws, &["token", "create", "-n", "load", "--scope", "invoke", "--query", "token", "-o", "tsv"]).trim().to_string()
}

fn serve(ws: &Path) -> (Child, u16) {
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(ws)
        .env("BATCHSCORE_WORKSPACE", ws)
        .env("BATCHSCORE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("serve printed its address").unwrap();
        if let Some(addr) = line.split("listening on ").nth(1) {
            break addr.rsplit(':').next().unwrap().trim().parse().unwrap();
        }
    };
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    (child, port)
}

#[derive(Default)]
struct Tally {
    /// (latency, status) per request.
    polls: Vec<(Duration, u16)>,
    invokes: Vec<(Duration, u16)>,
}

async fn client(port: u16, token: Arc<String>, input: Arc<String>, until: Instant, first_job: Arc<String>) -> Tally {
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut tally = Tally::default();
    let mut job = first_job.to_string();
    let mut i = 0u64;
    while Instant::now() < until {
        i += 1;
        let invoke = i.is_multiple_of(16);
        let request = if invoke {
            let body = format!(
                r#"{{"properties": {{"InputData": {{"iris": {{"JobInputType": "UriFile", "Uri": "{input}"}}}}}}}}"#
            );
            Request::post("/batchEndpoints/iris-ep/jobs")
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from(body)))
        } else {
            Request::get(format!("/batchEndpoints/iris-ep/jobs/{job}")).body(Full::new(Bytes::new()))
        }
        .unwrap();
        let mut request = request;
        let headers = request.headers_mut();
        headers.insert("host", "127.0.0.1".parse().unwrap());
        headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
        let started = Instant::now();
        let Ok(response) = send.send_request(request).await else {
            (if invoke { &mut tally.invokes } else { &mut tally.polls }).push((started.elapsed(), 0));
            break;
        };
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        let latency = started.elapsed();
        if invoke {
            if status == 202
                && let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body)
                && let Some(name) = v["name"].as_str()
            {
                job = name.to_string();
            }
            tally.invokes.push((latency, status));
        } else {
            tally.polls.push((latency, status));
        }
    }
    tally
}

fn report(kind: &str, mut v: Vec<(Duration, u16)>, seconds: f64) {
    v.sort();
    let at = |q: f64| v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1))).map(|x| x.0);
    let ms = |d: Option<Duration>| d.map(|d| format!("{:.1}", d.as_secs_f64() * 1000.0)).unwrap_or("-".into());
    let mut by_status = std::collections::BTreeMap::new();
    for (_, s) in &v {
        *by_status.entry(*s).or_insert(0u64) += 1;
    }
    println!(
        "| {kind} | {} | {:.0} | {} | {} | {} | {by_status:?} |",
        v.len(),
        v.len() as f64 / seconds,
        ms(at(0.50)),
        ms(at(0.99)),
        ms(v.last().map(|x| x.0)),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; this bench takes its knobs from the environment.
    let seconds = env_or("BENCH_SECONDS", 30);
    let concurrency = env_or("BENCH_CONCURRENCY", 64);
    let root = repo().join("target/bench-serve");
    let _ = std::fs::remove_dir_all(&root);
    let ws = root.join("ws");
    let token = Arc::new(workspace(&ws));
    let input = Arc::new(repo().join("sample-data/iris/part-0.csv").display().to_string());
    assert!(Path::new(input.as_str()).is_file(), "{input}");
    let (mut child, port) = serve(&ws);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (tallies, elapsed) = runtime.block_on(async {
        // One job to poll from the start.
        let queued =
            ["batch-endpoint", "invoke", "-n", "iris-ep", "-i", &input, "--input-type", "uri_file", "--no-wait"];
        let seed = Arc::new(bs(&ws, &[&queued[..], &["--query", "name", "-o", "tsv"]].concat()).trim().to_string());
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..concurrency)
            .map(|_| tokio::spawn(client(port, token.clone(), input.clone(), until, seed.clone())))
            .collect();
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.unwrap());
        }
        (all, started.elapsed().as_secs_f64())
    });
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let _ = child.wait();
    let (mut polls, mut invokes) = (Vec::new(), Vec::new());
    for t in tallies {
        polls.extend(t.polls);
        invokes.extend(t.invokes);
    }
    println!("serve_load: {concurrency} clients for {elapsed:.1} s on {} cores", num_cpus());
    println!("| requests | count | per second | p50 ms | p99 ms | max ms | answers by status |");
    println!("|---|---|---|---|---|---|---|");
    report("status polls", polls, elapsed);
    report("invokes", invokes, elapsed);
    // What became of the accepted jobs (queued ones stay Queued when the server stops).
    let mut statuses = std::collections::BTreeMap::new();
    for s in bs(&ws, &["job", "list", "--query", "[].status", "-o", "tsv"]).lines() {
        *statuses.entry(s.to_string()).or_insert(0u64) += 1;
    }
    println!("jobs by status after the run: {statuses:?}");
    assert!(!statuses.contains_key("Failed"), "jobs failed: see `batchscore job list -w {}`", ws.display());
}

fn num_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}
