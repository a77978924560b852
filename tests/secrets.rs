//! Secrets stay out of error text: a server (or a proxy) that answers every request with 403
//! and echoes it back whole (request line with its query string, `Authorization` header, and
//! the XML in which S3 and Azure repeat what was signed) must not get any credential into
//! stderr, the log or the job's files.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use common::*;

/// A server on 127.0.0.1 that answers 403 with the request in the body; keeps the requests.
struct EchoServer {
    port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl EchoServer {
    fn start() -> EchoServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = Vec::new();
                s.set_read_timeout(Some(std::time::Duration::from_secs(5))).ok();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let req = String::from_utf8_lossy(&got).into_owned();
                seen.lock().unwrap().push(req.clone());
                let body = format!(
                    "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code><Message>echo of your request: \
                     {req}</Message><StringToSign>{req}</StringToSign><SignatureProvided>{req}</SignatureProvided>\
                     <AuthenticationErrorDetail>{req}</AuthenticationErrorDetail></Error>"
                );
                let head = format!(
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = s.write_all(head.as_bytes());
                let _ = s.write_all(body.as_bytes());
            }
        });
        EchoServer { port, requests }
    }

    /// Every `Authorization` value and query string the server saw.
    fn credentials_seen(&self) -> Vec<String> {
        let mut out = Vec::new();
        for r in self.requests.lock().unwrap().iter() {
            for line in r.lines() {
                if let Some(v) = line.strip_prefix("authorization: ").or_else(|| line.strip_prefix("Authorization: ")) {
                    out.push(v.trim().to_string());
                    // The signature alone, too.
                    if let Some(sig) = v.rsplit(['=', ':']).next() {
                        out.push(sig.trim().to_string());
                    }
                }
                if let Some(q) = line.split_whitespace().nth(1).and_then(|u| u.split_once('?')).map(|(_, q)| q) {
                    for pair in q.split('&') {
                        if let Some((k, v)) = pair.split_once('=')
                            && ["sig", "X-Amz-Signature", "X-Amz-Credential"].contains(&k)
                        {
                            out.push(v.to_string());
                        }
                    }
                }
            }
        }
        out.retain(|s| s.len() >= 8);
        out
    }
}

/// Everything a job run left where a user or a log collector would look.
fn everything_written(run: &Run, out: &std::path::Path) -> String {
    let mut all = format!("{}\n{}", run.stdout, run.stderr);
    for bytes in snapshot(out).values() {
        all.push_str(&String::from_utf8_lossy(bytes));
    }
    all
}

#[track_caller]
fn assert_clean(all: &str, secrets: &[&str], seen: &[String]) {
    for s in secrets {
        assert!(!all.contains(s), "secret {s:?} leaked:\n{all}");
    }
    for s in seen {
        assert!(!all.contains(s.as_str()), "a credential the server saw leaked ({s:?}):\n{all}");
    }
}

#[test]
fn s3_credentials_echoed_by_the_server_never_reach_the_output() {
    let echo = EchoServer::start();
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let (m, o) = (model("iris_zipmap.onnx"), out.display().to_string());
    let (key_id, secret, token) =
        ("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "FQoGZXIvYXdzEXAMPLESESSIONTOKEN");
    let endpoint = format!("aws_endpoint=http://127.0.0.1:{}", echo.port);
    let mut cmd = score_cmd(
        tmp.path(),
        &[
            "--model",
            &m,
            "--input",
            "s3://bucket/in",
            "--output",
            &o,
            "--storage-option",
            &endpoint,
            "--storage-option",
            "aws_region=us-east-1",
        ],
    );
    cmd.env("AWS_ACCESS_KEY_ID", key_id).env("AWS_SECRET_ACCESS_KEY", secret).env("AWS_SESSION_TOKEN", token);
    let run = run_command(cmd);
    run.expect_code(2).no_panic().stderr_has(&["s3://bucket/in", "403"]);
    let seen = echo.credentials_seen();
    assert!(!seen.is_empty(), "the server saw the signed request");
    assert_clean(&everything_written(&run, &out), &[key_id, secret, token], &seen);
}

#[test]
fn azure_keys_and_sas_tokens_echoed_by_the_server_never_reach_the_output() {
    let echo = EchoServer::start();
    let tmp = tempdir();
    let key = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1sZWFr";
    let sas = "sv=2024-11-04&ss=b&srt=sco&sp=rl&se=2030-01-01T00:00:00Z&sig=SeCrEtSiGnAtUrE%2FxyzABC123%3D";
    let endpoint = format!("azure_storage_endpoint=http://127.0.0.1:{}/acct", echo.port);
    let (m, i) = (model("iris_zipmap.onnx"), "az://container/in".to_string());
    for (name, cred) in
        [("key", format!("azure_storage_account_key={key}")), ("sas", format!("azure_storage_sas_key={sas}"))]
    {
        let out = tmp.path().join(name);
        let o = out.display().to_string();
        let run = score(
            tmp.path(),
            &[
                "--model",
                &m,
                "--input",
                &i,
                "--output",
                &o,
                "--storage-option",
                "azure_storage_account_name=acct",
                "--storage-option",
                &cred,
                "--storage-option",
                &endpoint,
                "--storage-option",
                "azure_allow_http=true",
            ],
        );
        run.expect_code(2).no_panic().stderr_has(&["az://container/in"]);
        assert_clean(&everything_written(&run, &out), &[key, "SeCrEtSiGnAtUrE", "xyzABC123"], &echo.credentials_seen());
    }
}

#[test]
fn a_presigned_url_keeps_its_signature_out_of_messages() {
    let echo = EchoServer::start();
    let tmp = tempdir();
    let out = tmp.path().join("out");
    let i = format!(
        "http://127.0.0.1:{}/data/iris.csv?X-Amz-Credential=AKIAZZZZZZZZZZZZZZZZ%2F20241&X-Amz-Signature=feedfacecafebeef0123",
        echo.port
    );
    let (m, o) = (model("iris_zipmap.onnx"), out.display().to_string());
    let run = score(tmp.path(), &["--model", &m, "--input", &i, "--output", &o, "--storage-option", "allow_http=true"]);
    assert!(run.code == 1 || run.code == 2, "{}", run.stderr);
    run.no_panic();
    assert_clean(
        &everything_written(&run, &out),
        &["feedfacecafebeef0123", "AKIAZZZZZZZZZZZZZZZZ"],
        &echo.credentials_seen(),
    );
}
