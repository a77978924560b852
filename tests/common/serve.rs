//! A running `batchscore serve` for the REST tests, and what they share: a workspace, tokens,
//! Azure's invoke body, polling a job to its end.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json as j};

use super::catalog::{bs, bs_cmd, json};
use super::servers::request;
use super::tempdir;

/// A running `batchscore serve` on a free port.
pub struct Serve {
    child: Child,
    pub port: u16,
    /// What it printed on stderr (its request log).
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Serve {
    pub fn start(ws: &Path, extra: &[&str]) -> Serve {
        let mut args = vec!["serve", "--bind", "127.0.0.1:0"];
        args.extend(extra);
        let mut cmd = bs_cmd(ws, &args);
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let port = loop {
            let line = lines.next().expect("serve printed its address").unwrap();
            if let Some(addr) = line.split("listening on ").nth(1) {
                break addr.rsplit(':').next().unwrap().trim().parse().unwrap();
            }
        };
        // Keep reading its log so it never blocks on a full pipe.
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.by_ref().map_while(Result::ok) {
                let mut l = sink.lock().unwrap();
                l.push_str(&line);
                l.push('\n');
            }
        });
        Serve { child, port, log }
    }

    /// A request; returns the status, the headers and the body as JSON (Null if not JSON).
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, String, Value) {
        let mut headers = vec![("Content-Type", "application/json".to_string())];
        if let Some(t) = token {
            headers.push(("Authorization", format!("Bearer {t}")));
        }
        self.raw(method, path, &headers, body.map(|b| b.to_string()).unwrap_or_default().as_bytes())
    }

    pub fn raw(&self, method: &str, path: &str, headers: &[(&str, String)], body: &[u8]) -> (u16, String, Value) {
        let r = request(self.port, method, path, headers, body).unwrap();
        (r.status, r.head.clone(), serde_json::from_slice(&r.body).unwrap_or(Value::Null))
    }

    pub fn stop(mut self) {
        let _ = std::process::Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exits cleanly on SIGTERM: {status:?}");
        std::mem::forget(self);
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn workspace() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempdir();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    bs(&ws, &["workspace", "create"]).expect_code(0);
    (tmp, ws)
}

pub fn token(ws: &Path, name: &str, scope: &str) -> String {
    json(ws, &["token", "create", "-n", name, "--scope", scope])["token"].as_str().unwrap().to_string()
}

pub fn invoke_body(input: &str) -> Value {
    j!({"properties": {"InputData": {"iris": {"JobInputType": "UriFolder", "Uri": input}}}})
}

/// Polls a job until it ends; returns its view.
pub fn wait_for(s: &Serve, path: &str, token: &str) -> Value {
    let started = Instant::now();
    loop {
        let (status, _, v) = s.call("GET", path, Some(token), None);
        assert_eq!(status, 200, "{v}");
        if ["Completed", "Failed", "Canceled"].contains(&v["properties"]["status"].as_str().unwrap_or_default()) {
            return v;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "the job did not end: {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
