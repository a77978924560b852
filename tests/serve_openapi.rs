//! `batchscore serve`'s contract with other programs: `/openapi.json` is a valid OpenAPI 3.1
//! document that lists every route the server answers (and nothing it does not), its examples
//! validate against their schemas and are taken by the server; models upload as a streamed
//! body with their own size limit; the README's Python client runs as written.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use common::catalog::bs;
use common::serve::{Serve, token, workspace};
use common::servers::request;
use common::*;
use serde_json::{Value, json as j};

/// The tools `make test-setup` installs beside the storage servers.
fn venv_bin(name: &str) -> std::path::PathBuf {
    let p = repo().join(".venv-servers/bin").join(name);
    assert!(p.exists(), "{} is missing: run `make test-setup` (scripts/test-servers.sh)", p.display());
    p
}

fn openapi(s: &Serve) -> Value {
    let r = request(s.port, "GET", "/openapi.json", &[], b"").unwrap();
    assert_eq!(r.status, 200, "/openapi.json needs no token");
    serde_json::from_slice(&r.body).expect("the document is JSON")
}

/// The example a request body declares: on the media type, or on its schema's component.
fn request_example(doc: &Value, media: &Value) -> Option<Value> {
    if let Some(e) = media.get("example") {
        return Some(e.clone());
    }
    let name = media["schema"]["$ref"].as_str()?.rsplit('/').next()?;
    doc["components"]["schemas"][name].get("example").cloned()
}

/// Validates `instance` against `schema`, resolving `#/components/...` in `doc`.
fn validate(doc: &Value, schema: &Value, instance: &Value, what: &str) {
    let root = j!({"allOf": [schema], "components": doc["components"]});
    let validator = jsonschema::validator_for(&root).unwrap_or_else(|e| panic!("{what}: the schema compiles: {e}"));
    let errors: Vec<String> =
        validator.iter_errors(instance).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{what}: the example does not validate: {errors:?}\n{instance}");
}

const METHODS: [&str; 5] = ["get", "put", "post", "patch", "delete"];

#[test]
fn the_openapi_document_lists_every_route_and_its_examples_validate() {
    let (tmp, ws) = workspace();
    let admin = token(&ws, "admin", "admin");
    let s = Serve::start(&ws, &[]);
    let doc = openapi(&s);
    // A valid OpenAPI 3.1 document, by an independent validator.
    let file = tmp.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let checked = std::process::Command::new(venv_bin("openapi-spec-validator")).arg(&file).output().unwrap();
    assert!(checked.status.success(), "{}", String::from_utf8_lossy(&checked.stdout));
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");

    // What the issue names, at least.
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("get", "/health"),
        ("get", "/models"),
        ("post", "/models/{name}/versions"),
        ("get", "/models/{name}/versions/{version}"),
        ("patch", "/models/{name}/versions/{version}"),
        ("delete", "/models/{name}/versions/{version}"),
        ("get", "/environments/{name}/versions/{version}"),
        ("put", "/datastores/{name}"),
        ("get", "/data/{name}/versions/{version}"),
        ("put", "/batchEndpoints/{name}"),
        ("put", "/batchEndpoints/{name}/deployments/{deployment}"),
        ("post", "/batchEndpoints/{name}/jobs"),
        ("get", "/batchEndpoints/{name}/jobs/{job}"),
        ("post", "/batchEndpoints/{name}/jobs/{job}/cancel"),
        ("get", "/jobs/{job}"),
        ("get", "/jobs/{job}/logs"),
        ("get", "/models/{name}/versions/{version}/content"),
        ("get", "/environments/{name}/versions"),
        ("get", "/data/{name}/versions"),
        ("get", "/batchEndpoints/{name}/deployments/{deployment}/jobs"),
        ("get", "/jobs/{job}/outputs/{output}"),
        ("get", "/jobs/{job}/outputs/{output}/content"),
        ("get", "/tokens"),
        ("get", "/metrics"),
        ("get", "/openapi.json"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not in /openapi.json");
    }

    // Every operation: the server routes it, with the scope the document gives; every method
    // the document leaves out of a path is answered 405. Names that exist nowhere keep the
    // calls harmless (a DELETE finds nothing).
    let mut operations = 0;
    for (path, item) in paths {
        let concrete = fill(path);
        for method in METHODS {
            let Some(op) = item.get(method) else {
                let r = request(s.port, &method.to_uppercase(), &concrete, &auth(&admin), b"{}").unwrap();
                assert_eq!(r.status, 405, "{method} {path} is not in the document, yet the server takes it");
                assert_eq!(json_body(&r.body)["error"]["code"], "MethodNotAllowed");
                continue;
            };
            operations += 1;
            let secured = op["security"].as_array().is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()));
            let mut body = b"{}".to_vec();
            if let Some(media) = op.pointer("/requestBody/content/application~1json")
                && let Some(example) = request_example(&doc, media)
            {
                validate(&doc, &media["schema"], &example, &format!("{method} {path}"));
                body = example.to_string().into_bytes();
            }
            let r = request(s.port, &method.to_uppercase(), &concrete, &auth(&admin), &body).unwrap();
            let v = json_body(&r.body);
            assert_ne!(r.status, 405, "{method} {path}: {v}");
            assert!(
                !(r.status == 404 && v["error"]["message"].as_str().unwrap_or("").starts_with("no such route")),
                "{method} {path} is in the document but not routed"
            );
            assert!(
                ![415, 422].contains(&r.status)
                    && !v["error"]["message"].as_str().unwrap_or("").starts_with("the request body"),
                "{method} {path}: the document's example is refused as a body: {v}"
            );
            if secured {
                let r = request(s.port, &method.to_uppercase(), &concrete, &[], &body).unwrap();
                assert_eq!(r.status, 401, "{method} {path} is documented as needing a token");
            }
        }
    }
    assert!(operations >= 40, "{operations} operations");
    // Response examples (the error body's) validate too.
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        if let Some(example) = schema.get("example") {
            validate(&doc, &j!({"$ref": format!("#/components/schemas/{name}")}), example, name);
        }
    }
    s.stop();
}

fn fill(path: &str) -> String {
    [("{name}", "nowhere"), ("{version}", "7"), ("{deployment}", "nodep"), ("{job}", "nojob")]
        .iter()
        .fold(path.to_string(), |p, (param, value)| p.replace(param, value))
}

fn auth(token: &str) -> Vec<(&'static str, String)> {
    vec![("Authorization", format!("Bearer {token}")), ("Content-Type", "application/json".into())]
}

fn json_body(b: &[u8]) -> Value {
    serde_json::from_slice(b).unwrap_or(Value::Null)
}

/// A POST with a chunked body (no Content-Length), read to the end.
fn chunked_post(port: u16, path: &str, token: &str, chunks: impl Iterator<Item = Vec<u8>>) -> (u16, Value) {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(
        c,
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    for chunk in chunks {
        // The server may answer and close before the whole body is sent.
        if write!(c, "{:x}\r\n", chunk.len())
            .and_then(|_| c.write_all(&chunk))
            .and_then(|_| c.write_all(b"\r\n"))
            .is_err()
        {
            break;
        }
    }
    let _ = c.write_all(b"0\r\n\r\n");
    let mut answer = Vec::new();
    let _ = c.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("");
    // A chunked answer: the JSON is between the chunk sizes.
    let json = body.find('{').and_then(|a| body.rfind('}').map(|b| &body[a..=b])).unwrap_or("");
    (status, serde_json::from_str(json).unwrap_or(Value::Null))
}

#[test]
fn models_upload_as_a_streamed_body_checked_and_limited() {
    let (_tmp, ws) = workspace();
    let admin = token(&ws, "admin", "admin");
    let reader = token(&ws, "reader", "read");
    let onnx = std::fs::read(model("digits_mlp.onnx")).unwrap();
    let s = Serve::start(&ws, &["--max-upload-size", "64K"]);
    let upload = |path: &str, t: &str, body: &[u8]| {
        let headers = [("Authorization", format!("Bearer {t}")), ("Content-Type", "application/octet-stream".into())];
        let r = request(s.port, "POST", path, &headers, body).unwrap();
        (r.status, json_body(&r.body))
    };
    // An upload registers the file, with its signature, as the CLI's `model create` would.
    let (st, v) = upload("/models/digits/versions?description=uploaded&file_name=digits.onnx", &admin, &onnx);
    assert_eq!(st, 201, "{v}");
    assert_eq!((v["version"].as_str(), v["description"].as_str()), (Some("1"), Some("uploaded")), "{v}");
    assert_eq!(v["size_bytes"], onnx.len());
    assert!(v["path"].as_str().unwrap().ends_with("/digits.onnx"), "{v}");
    assert!(v["source"].as_str().unwrap().starts_with("upload"), "{v}");
    assert!(!v["signature"]["inputs"].as_array().unwrap().is_empty(), "{v}");
    // The stored copy is the uploaded file, byte for byte.
    let dl = ws.join("dl");
    bs(&ws, &["model", "download", "-n", "digits", "-v", "1", "--download-path", dl.to_str().unwrap()]).expect_code(0);
    let stored = walk_files(&dl).into_iter().find(|p| p.extension().is_some_and(|e| e == "onnx")).unwrap();
    assert_eq!(std::fs::read(stored).unwrap(), onnx);
    // The same bytes chunked, without a Content-Length: version 2.
    let (st, v) = chunked_post(s.port, "/models/digits/versions", &admin, onnx.chunks(4096).map(<[u8]>::to_vec));
    assert_eq!((st, v["version"].as_str()), (201, Some("2")), "{v}");

    // Not ONNX: refused before anything is registered, naming what is wrong.
    let (st, v) = upload("/models/junk/versions", &admin, b"this is not a model at all");
    assert_eq!(st, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("upload"), "{v}");
    let (st, v) = upload("/models/junk/versions", &admin, b"");
    assert_eq!(st, 400, "{v}");
    // Over the limit: with a Content-Length, refused at once; chunked, refused once it passes.
    let big = vec![0u8; 100 * 1024];
    let (st, v) = upload("/models/big/versions", &admin, &big);
    assert_eq!((st, v["error"]["code"].as_str()), (413, Some("PayloadTooLarge")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("--max-upload-size"), "{v}");
    let (st, v) = chunked_post(s.port, "/models/big/versions", &admin, (0..200).map(|_| vec![0u8; 8192]));
    assert_eq!(st, 413, "{v}");
    // A file name with a path in it, and a reader's upload, are refused.
    let (st, _) = upload("/models/x/versions?file_name=..%2F..%2Fevil.onnx", &admin, &onnx);
    assert_eq!(st, 400);
    let (st, _) = upload("/models/x/versions", &reader, &onnx);
    assert_eq!(st, 403);
    // Nothing of the refused uploads is left behind or registered.
    let (st, _, v) = s.call("GET", "/models", Some(&admin), None);
    assert_eq!(st, 200);
    let names: Vec<&str> = v["value"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["digits", "digits"], "{v}");
    let leftovers: Vec<_> = std::fs::read_dir(ws.join(".batchscore"))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("upload-"))
        .collect();
    assert!(leftovers.is_empty(), "upload folders left: {leftovers:?}");
    s.stop();
}

fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

/// The README's Python client, as written there, against a live server.
#[test]
fn the_readme_python_client_invokes_an_endpoint_and_polls_the_job() {
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let client = readme
        .split("```python\n")
        .find(|b| b.contains("requests.post") && b.contains("/jobs"))
        .and_then(|b| b.split("```").next())
        .expect("README has the Python client");
    assert!(client.lines().count() <= 25, "the README's client stays short");
    let (tmp, ws) = workspace();
    // The README's walkthrough made `iris-ep`; make it the same way here.
    bs(&ws, &["model", "create", "-n", "iris", "--path", &model("iris_zipmap.onnx")]).expect_code(0);
    bs(&ws, &["batch-endpoint", "create", "-n", "iris-ep"]).expect_code(0);
    let yaml = "name: blue\nendpoint_name: iris-ep\nmodel: azureml:iris:1\nbatchscore:\n  passthrough: [id]\n";
    std::fs::write(ws.join("blue.yml"), yaml).unwrap();
    bs(&ws, &["batch-deployment", "create", "-f", "blue.yml"]).expect_code(0);
    let invoker = token(&ws, "pipeline", "invoke");
    let s = Serve::start(&ws, &[]);
    let run = tmp.path().join("client");
    std::fs::create_dir(&run).unwrap();
    std::os::unix::fs::symlink(repo().join("sample-data"), run.join("sample-data")).unwrap();
    std::fs::write(run.join("client.py"), client).unwrap();
    let out = std::process::Command::new(venv_bin("python"))
        .arg("client.py")
        .current_dir(&run)
        .env("TOKEN", &invoker)
        .env("BATCHSCORE_URL", format!("http://127.0.0.1:{}", s.port))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(" Completed ") && stdout.contains("'rows_scored': 150"), "{stdout}");
    // Its predictions are where it asked, published once.
    let outputs: Vec<_> = std::fs::read_dir(run.join("out")).unwrap().filter_map(|e| e.ok()).collect();
    assert_eq!(outputs.len(), 1);
    assert!(outputs[0].path().join("predictions.csv").is_file());
    s.stop();
}
