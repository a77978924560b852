//! `batchscore serve` over a real socket: the batch endpoint workflow by REST with Azure's
//! invoke body, tokens and scopes, refusals as JSON, the bounded queue (429), idempotent
//! retries, cancel, and queued jobs surviving a restart.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::catalog::{bs, json, slow_endpoint};
use common::serve::{Serve, invoke_body, token, wait_for, workspace};
use common::servers::request;
use common::*;
use serde_json::{Value, json as j};

/// A job's output listed and downloaded, the model's file, the per-name and per-deployment
/// listings.
fn outputs_and_files_by_rest(s: &Serve, admin: &str, job: &str, predictions: &Path) {
    let (st, _, v) = s.call("GET", &format!("/jobs/{job}/outputs/score"), Some(admin), None);
    assert_eq!(st, 200, "{v}");
    let files: Vec<&str> = v["value"].as_array().unwrap().iter().map(|f| f["path"].as_str().unwrap()).collect();
    assert!(files.contains(&"predictions.csv") && files.contains(&"logs/job_result.json"), "{v}");
    assert!(!files.iter().any(|f| f.starts_with("_staging")), "{v}");
    let get = |path: &str| request(s.port, "GET", path, &[("Authorization", format!("Bearer {admin}"))], b"").unwrap();
    let content = v["value"][0]["content"].as_str().unwrap().to_string();
    let r = get(&format!("/jobs/{job}/outputs/score/content?path=predictions.csv"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, std::fs::read(predictions).unwrap(), "the predictions, byte for byte");
    assert!(r.head.to_ascii_lowercase().contains("content-disposition: attachment; filename=\"predictions.csv\""));
    assert_eq!(get(&content).status, 200, "{content}");
    let r = get(&format!("/jobs/{job}/outputs/score/content?path=logs%2Fjob_result.json"));
    let report: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(report["status"], "Completed");
    for hostile in ["..%2F..%2F..%2Fetc%2Fpasswd", "%2Fetc%2Fpasswd", "_staging%2Fjob.json", "logs"] {
        let r = get(&format!("/jobs/{job}/outputs/score/content?path={hostile}"));
        assert_eq!(r.status, 404, "{hostile}: {}", r.text());
    }
    assert_eq!(get(&format!("/jobs/{job}/outputs/nothing")).status, 400);
    let r = get("/models/iris/versions/latest/content");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, std::fs::read(model("iris_zipmap.onnx")).unwrap(), "the model, byte for byte");
    let (_, _, v) = s.call("GET", "/environments/batchscore-cpu/versions", Some(admin), None);
    assert_eq!(v["value"][0]["version"], "1", "{v}");
    let (_, _, v) = s.call("GET", "/batchEndpoints/iris-ep/deployments/blue/jobs", Some(admin), None);
    assert_eq!(v["value"].as_array().unwrap().len(), 2, "{v}");
    let (_, _, v) = s.call("GET", "/batchEndpoints/iris-ep/deployments/nodep/jobs", Some(admin), None);
    assert_eq!(v["value"].as_array().unwrap().len(), 0, "{v}");
}

/// An endpoint `iris-ep` with deployment `blue`, made over REST.
fn iris_by_rest(s: &Serve, admin: &str) {
    let (st, _, v) = s.call("PUT", "/batchEndpoints/iris-ep", Some(admin), Some(&j!({"description": "iris"})));
    assert_eq!(st, 201, "{v}");
    let (st, _, v) =
        s.call("POST", "/models/iris/versions", Some(admin), Some(&j!({"path": model("iris_zipmap.onnx")})));
    assert_eq!((st, v["version"].as_str()), (201, Some("1")), "{v}");
    let dep =
        j!({"model": "azureml:iris:1", "settings": {"mini_batch_size": 1}, "batchscore": {"passthrough": ["id"]}});
    let (st, _, v) = s.call("PUT", "/batchEndpoints/iris-ep/deployments/blue", Some(admin), Some(&dep));
    assert_eq!(st, 201, "{v}");
}

#[test]
fn the_batch_endpoint_workflow_over_rest_with_azures_invoke_body() {
    let (_tmp, ws) = workspace();
    let admin = token(&ws, "ops", "admin");
    let s = Serve::start(&ws, &[]);
    iris_by_rest(&s, &admin);
    let (st, _, ep) = s.call("GET", "/batchEndpoints/iris-ep", Some(&admin), None);
    assert_eq!((st, ep["defaults"]["deployment_name"].as_str()), (200, Some("blue")));
    let (st, head, job) =
        s.call("POST", "/batchEndpoints/iris-ep/jobs", Some(&admin), Some(&invoke_body(&data("iris"))));
    assert_eq!(st, 202, "{job}");
    let name = job["name"].as_str().unwrap().to_string();
    let location = format!("/batchEndpoints/iris-ep/jobs/{name}");
    assert!(head.to_ascii_lowercase().contains(&format!("location: {}", location.to_ascii_lowercase())), "{head}");
    let done = wait_for(&s, &location, &admin);
    assert_eq!(done["properties"]["status"], "Completed", "{done}");
    assert_eq!(done["properties"]["counts"]["rows_scored"], 150);
    // The same job from the CLI gives the same predictions.
    let cli = json(&ws, &["batch-endpoint", "invoke", "-n", "iris-ep", "--input", &data("iris")]);
    let out = |job: &str| ws.join(format!(".batchscore/workspaceblobstore/azureml/{job}/score/predictions.csv"));
    assert_eq!(std::fs::read(out(&name)).unwrap(), std::fs::read(out(cli["name"].as_str().unwrap())).unwrap());
    // Listings, logs, and the job under /jobs too.
    let (_, _, jobs) = s.call("GET", "/batchEndpoints/iris-ep/jobs", Some(&admin), None);
    assert_eq!(jobs["value"].as_array().unwrap().len(), 2);
    let logs =
        request(s.port, "GET", &format!("/jobs/{name}/logs"), &[("Authorization", format!("Bearer {admin}"))], b"")
            .unwrap();
    assert_eq!(logs.status, 200);
    assert!(logs.text().contains("Completed: 150 rows"), "{}", logs.text());
    let (st, _, v) = s.call("GET", &format!("/jobs/{name}"), Some(&admin), None);
    assert_eq!((st, v["properties"]["status"].as_str()), (200, Some("Completed")));
    let (st, _, v) = s.call("GET", "/models", Some(&admin), None);
    assert_eq!((st, v["value"][0]["name"].as_str()), (200, Some("iris")));
    outputs_and_files_by_rest(&s, &admin, &name, &out(&name));
    // A deployment header picks another deployment; a missing one is named.
    let mut headers =
        vec![("Authorization", format!("Bearer {admin}")), ("azureml-model-deployment", "green".to_string())];
    headers.push(("Content-Type", "application/json".into()));
    let (st, _, v) =
        s.raw("POST", "/batchEndpoints/iris-ep/jobs", &headers, invoke_body(&data("iris")).to_string().as_bytes());
    assert_eq!(st, 404, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("green"), "{v}");
    // Monitoring: Prometheus text, and a request id on every answer.
    let m = request(s.port, "GET", "/metrics", &[("Authorization", format!("Bearer {admin}"))], b"").unwrap();
    let text = m.text();
    assert_eq!(m.status, 200, "{text}");
    assert!(m.head.to_ascii_lowercase().contains("x-request-id:"), "{}", m.head);
    for needle in [
        "batchscore_jobs{status=\"Completed\"} 2",
        "batchscore_queue_length 0",
        "batchscore_rows_scored_total 300",
        "batchscore_http_requests_total{code=\"202\",method=\"POST\",route=\"/batchEndpoints/{name}/jobs\"} 1",
        "batchscore_http_request_duration_seconds_bucket{method=\"GET\",route=\"/batchEndpoints/{name}/jobs/{job}\",le=\"+Inf\"}",
        "# TYPE batchscore_http_request_duration_seconds histogram",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
    assert!(!text.contains(&admin), "no token in the metrics");
    s.stop();
}

#[test]
fn tokens_scopes_and_refusals() {
    let (_tmp, ws) = workspace();
    let admin = token(&ws, "ops", "admin");
    let reader = token(&ws, "reader", "read");
    let invoker = token(&ws, "app", "invoke");
    let s = Serve::start(&ws, &[]);
    assert_eq!(s.call("GET", "/health", None, None).0, 200, "health needs no token");
    let (st, head, v) = s.call("GET", "/models", None, None);
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("Unauthorized")));
    assert!(head.to_ascii_lowercase().contains("www-authenticate: bearer"), "{head}");
    assert_eq!(s.call("GET", "/models", Some("bst_0000"), None).0, 401);
    assert_eq!(s.call("GET", "/models", Some(&reader), None).0, 200);
    iris_by_rest(&s, &admin);
    let (st, _, v) = s.call("POST", "/batchEndpoints/iris-ep/jobs", Some(&reader), Some(&invoke_body(&data("iris"))));
    assert_eq!((st, v["error"]["code"].as_str()), (403, Some("Forbidden")), "{v}");
    assert_eq!(s.call("PUT", "/batchEndpoints/other-ep", Some(&invoker), Some(&j!({}))).0, 403, "invoke cannot create");
    let (st, _, job) =
        s.call("POST", "/batchEndpoints/iris-ep/jobs", Some(&invoker), Some(&invoke_body(&data("iris"))));
    assert_eq!(st, 202, "{job}");
    bs(&ws, &["token", "revoke", "-n", "app"]).expect_code(0);
    assert_eq!(s.call("GET", "/models", Some(&invoker), None).0, 401, "revoked");
    // Bad requests are JSON refusals naming what is wrong; nothing is a 500.
    let (st, _, v) = s.call("GET", "/no/such/route", Some(&admin), None);
    assert_eq!((st, v["error"]["code"].as_str()), (404, Some("NotFound")));
    let bad = s.raw(
        "POST",
        "/batchEndpoints/iris-ep/jobs",
        &[("Authorization", format!("Bearer {admin}")), ("Content-Type", "application/json".into())],
        b"{\"properties\": ",
    );
    assert_eq!(bad.0, 400, "{}", bad.2);
    assert!(bad.2["error"]["message"].as_str().unwrap().contains("request body"), "{}", bad.2);
    let (st, _, v) =
        s.call("POST", "/batchEndpoints/iris-ep/jobs", Some(&admin), Some(&j!({"properties": {"InputData": {}}})));
    assert!(st == 400 && v["error"]["message"].as_str().unwrap().contains("InputData"), "{st} {v}");
    let (st, _, v) = s.call("PUT", "/batchEndpoints/a..b", Some(&admin), Some(&j!({})));
    assert!(st == 400 && v["error"]["message"].as_str().unwrap().contains("a..b"), "{st} {v}");
    let big = vec![b' '; 2 << 20];
    let (st, _, _) = s.raw(
        "PUT",
        "/batchEndpoints/big-ep",
        &[("Authorization", format!("Bearer {admin}")), ("Content-Type", "application/json".into())],
        &big,
    );
    assert_eq!(st, 413);
    let (st, _, v) = s.call("POST", "/batchEndpoints/iris-ep/jobs", Some(&admin), Some(&invoke_body("azureml:nope:1")));
    assert!(st == 404 && v["error"]["message"].as_str().unwrap().contains("azureml:nope:1"), "{st} {v}");
    assert_eq!(s.call("GET", "/health", None, None).0, 200, "still serving");
    let log = s.log.lock().unwrap().clone();
    assert!(log.contains("\"request_id\"") && log.contains("\"status\":403"), "{log}");
    for t in [&admin, &reader, &invoker] {
        assert!(!log.contains(t.as_str()), "a token reached the log");
    }
    s.stop();
}

#[test]
fn a_bounded_queue_idempotent_retries_cancel_and_a_restart() {
    let (_tmp, ws) = workspace();
    let admin = token(&ws, "ops", "admin");
    slow_endpoint(&ws);
    let s = Serve::start(&ws, &["--max-queued-jobs", "1"]);
    iris_by_rest(&s, &admin);
    let slow =
        j!({"properties": {"InputData": {"d": {"JobInputType": "UriFile", "Uri": data("broken/tabular/good.csv")}}}});
    let (st, _, first) = s.call("POST", "/batchEndpoints/slow-ep/jobs", Some(&admin), Some(&slow));
    assert_eq!(st, 202, "{first}");
    let first = first["name"].as_str().unwrap().to_string();
    // Wait until the executor took it, so the queue is empty again.
    let started = Instant::now();
    while s.call("GET", &format!("/jobs/{first}"), Some(&admin), None).2["properties"]["status"] != "Running" {
        assert!(started.elapsed() < Duration::from_secs(90), "the first job did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    // One may wait; a retry with the same key is the same job; the next is refused with 429.
    let keyed = |key: &str| {
        let headers = [
            ("Authorization", format!("Bearer {admin}")),
            ("Content-Type", "application/json".into()),
            ("Idempotency-Key", key.to_string()),
        ];
        s.raw("POST", "/batchEndpoints/iris-ep/jobs", &headers, invoke_body(&data("iris")).to_string().as_bytes())
    };
    let (st, _, queued) = keyed("k-1");
    assert_eq!((st, queued["properties"]["status"].as_str()), (202, Some("Queued")), "{queued}");
    let (st, _, again) = keyed("k-1");
    assert_eq!((st, &again["name"]), (202, &queued["name"]), "a retried POST returns the same job");
    let (st, head, v) = keyed("k-2");
    assert_eq!((st, v["error"]["code"].as_str()), (429, Some("TooManyRequests")), "{v}");
    assert!(head.to_ascii_lowercase().contains("retry-after:"), "{head}");
    assert_eq!(
        bs(&ws, &["job", "list", "-o", "json"]).stdout.matches("\"name\": \"batchjob-").count(),
        2,
        "none lost, none doubled"
    );
    // SIGTERM: the running job is canceled, the queued one stays queued...
    s.stop();
    let shown = |name: &str| json(&ws, &["job", "show", "-n", name]);
    assert_eq!(shown(&first)["status"], "Canceled");
    let queued = queued["name"].as_str().unwrap().to_string();
    assert_eq!(shown(&queued)["status"], "Queued");
    // ...and runs when the server starts again.
    let s = Serve::start(&ws, &[]);
    let done = wait_for(&s, &format!("/jobs/{queued}"), &admin);
    assert_eq!(done["properties"]["status"], "Completed", "{done}");
    // Cancel by REST.
    let (_, _, third) = s.call("POST", "/batchEndpoints/slow-ep/jobs", Some(&admin), Some(&slow));
    let third = third["name"].as_str().unwrap().to_string();
    let (st, _, v) = s.call("POST", &format!("/jobs/{third}/cancel"), Some(&admin), None);
    assert_eq!(st, 200, "{v}");
    assert_eq!(wait_for(&s, &format!("/jobs/{third}"), &admin)["properties"]["status"], "Canceled");
    s.stop();
}

#[test]
fn invoke_no_wait_queues_for_a_running_server() {
    let (_tmp, ws) = workspace();
    let admin = token(&ws, "ops", "admin");
    let s = Serve::start(&ws, &[]);
    iris_by_rest(&s, &admin);
    let run = bs(
        &ws,
        &[
            "batch-endpoint",
            "invoke",
            "-n",
            "iris-ep",
            "--input",
            &data("iris"),
            "--no-wait",
            "--query",
            "name",
            "-o",
            "tsv",
        ],
    );
    run.expect_code(0).stderr_has(&["queued"]);
    let name = run.stdout.trim().to_string();
    assert_eq!(wait_for(&s, &format!("/jobs/{name}"), &admin)["properties"]["status"], "Completed");
    s.stop();
}

#[test]
fn the_registry_over_rest_and_patches_that_only_change_description_and_tags() {
    let (_tmp, ws) = workspace();
    let admin = token(&ws, "ops", "admin");
    let s = Serve::start(&ws, &[]);
    iris_by_rest(&s, &admin);
    let a = Some(admin.as_str());
    let (st, _, v) =
        s.call("PATCH", "/models/iris/versions/1", a, Some(&j!({"description": "d", "tags": {"team": "x"}})));
    assert_eq!((st, v["tags"]["team"].as_str()), (200, Some("x")), "{v}");
    let (st, _, v) = s.call("PATCH", "/models/iris/versions/1", a, Some(&j!({"path": "/elsewhere.onnx"})));
    assert!(st == 400 && v["error"]["message"].as_str().unwrap().contains("only the description and tags"), "{st} {v}");
    let env = j!({"image": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04", "runtime": {"execution_provider": "cpu", "intra_op_num_threads": 1}});
    let (st, _, v) = s.call("POST", "/environments/tuned/versions", a, Some(&env));
    assert_eq!((st, v["version"].as_str()), (201, Some("1")), "{v}");
    let ds = j!({"type": "azure_blob", "account_name": "acct", "container_name": "c", "credentials": {"account_key": "SECRET-KEY-123"}});
    let (st, _, v) = s.call("PUT", "/datastores/blobby", a, Some(&ds));
    assert_eq!(st, 201, "{v}");
    assert!(
        !v.to_string().contains("SECRET-KEY-123") && v["warnings"][0].as_str().unwrap().contains("not stored"),
        "{v}"
    );
    let (st, _, v) =
        s.call("POST", "/data/iris-data/versions", a, Some(&j!({"type": "uri_folder", "path": data("iris")})));
    assert_eq!(st, 201, "{v}");
    let (st, _, v) =
        s.call("PATCH", "/batchEndpoints/iris-ep", a, Some(&j!({"defaults": {"deployment_name": "nope"}})));
    assert!(st == 404 && v["error"]["message"].as_str().unwrap().contains("nope"), "{st} {v}");
    let (st, _, v) = s.call("POST", "/tokens", a, Some(&j!({"name": "ci", "scope": "read", "expires": "1d"})));
    assert_eq!(st, 201, "{v}");
    let ci = v["token"].as_str().unwrap().to_string();
    assert_eq!(s.call("GET", "/models", Some(&ci), None).0, 200);
    let (_, _, listed) = s.call("GET", "/tokens", a, None);
    assert!(!listed.to_string().contains(&ci), "tokens are never listed");
    assert_eq!(s.call("DELETE", "/tokens/ci", a, None).0, 200);
    assert_eq!(s.call("GET", "/models", Some(&ci), None).0, 401);
    assert_eq!(s.call("DELETE", "/models/iris/versions/1", a, None).0, 409, "in use by blue");
    assert_eq!(s.call("DELETE", "/batchEndpoints/iris-ep", a, None).0, 204);
    assert_eq!(s.call("DELETE", "/models/iris/versions/1", a, None).0, 204);
    s.stop();
}

#[test]
fn hundreds_of_hostile_requests_get_clean_refusals_and_the_server_keeps_serving() {
    let (_tmp, ws) = workspace();
    let admin = token(&ws, "ops", "admin");
    let s = Serve::start(&ws, &[]);
    iris_by_rest(&s, &admin);
    let names = [
        "..",
        "..%2F..%2Fetc%2Fpasswd",
        "%2e%2e%2f%2e%2e",
        "a%00b",
        "a'%3B%20DROP%20TABLE%20models%3B--",
        "%3Cscript%3E",
        "%7B%7B7*7%7D%7D",
        "%F0%9F%92%A9",
        "x%20y",
        "-leading",
        "$(id)",
        "a.b",
        "name%0D%0AX-Injected:%201",
    ];
    let long = "n".repeat(300);
    let mut paths = Vec::new();
    for n in names.iter().copied().chain([long.as_str()]) {
        for p in [
            format!("/models/{n}/versions"),
            format!("/models/{n}/versions/{n}"),
            format!("/batchEndpoints/{n}"),
            format!("/batchEndpoints/{n}/jobs"),
            format!("/batchEndpoints/iris-ep/deployments/{n}"),
            format!("/jobs/{n}"),
            format!("/jobs/{n}/cancel"),
            format!("/datastores/{n}"),
        ] {
            paths.push(p);
        }
    }
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: [&[u8]; 5] =
        [b"", b"{", b"{\"path\": \"/etc/passwd\", \"properties\": 1}", b"\xff\xfe\x00", deep.as_bytes()];
    let mut sent = 0;
    for (i, path) in paths.iter().enumerate() {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let b = bodies[(i + sent) % bodies.len()];
            let headers = [("Authorization", format!("Bearer {admin}")), ("Content-Type", "application/json".into())];
            let r = request(s.port, method, path, &headers, b).unwrap();
            sent += 1;
            assert!(r.status < 500, "{method} {path}: {} {}", r.status, r.text());
            if r.status >= 400 && r.status != 405 && !r.body.is_empty() {
                let v: Value = serde_json::from_slice(&r.body)
                    .unwrap_or_else(|_| panic!("{method} {path}: not JSON: {}", r.text()));
                assert!(v["error"]["code"].is_string(), "{method} {path}: {v}");
            }
            assert!(!r.head.contains("X-Injected"), "header injection through {path}");
        }
    }
    assert!(sent >= 500, "{sent} requests");
    assert_eq!(s.call("GET", "/health", None, None).0, 200, "still serving");
    let (st, _, v) = s.call("GET", "/models", Some(&admin), None);
    assert_eq!((st, v["value"].as_array().map(Vec::len)), (200, Some(1)), "the catalog is intact: {v}");
    s.stop();
}

#[test]
fn https_with_a_certificate_and_a_deadline_for_slow_clients() {
    use std::io::{Read, Write};
    let (tmp, ws) = workspace();
    let (cert, key) = (tmp.path().join("cert.pem"), tmp.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let admin = token(&ws, "ops", "admin");
    let s = Serve::start(
        &ws,
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap(), "--client-timeout", "1"],
    );
    let url = format!("https://127.0.0.1:{}/models", s.port);
    let curl = std::process::Command::new("curl")
        .args(["-s", "--cacert", cert.to_str().unwrap(), "-H", &format!("Authorization: Bearer {admin}"), &url])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&curl.stdout);
    assert!(curl.status.success() && body.contains("\"value\""), "{body} {}", String::from_utf8_lossy(&curl.stderr));
    // Plain HTTP to the TLS port gets nothing useful, and the server goes on.
    assert!(request(s.port, "GET", "/health", &[], b"").map(|r| r.status != 200).unwrap_or(true));
    // A client that connects and says nothing is dropped after the deadline.
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 16];
    let _ = idle.write_all(b"");
    let n = idle.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server closed the stalled connection");
    assert!(started.elapsed() < Duration::from_secs(15), "closed after the deadline: {:?}", started.elapsed());
    // --bind on another address needs TLS or --insecure-http.
    bs(&ws, &["serve", "--bind", "0.0.0.0:0"]).expect_code(2).stderr_has(&["--insecure-http"]);
    s.stop();
}

#[test]
fn lists_page_a_token_knows_its_scope_and_datastore_paths_list_their_files() {
    let (_tmp, ws) = workspace();
    let reader = token(&ws, "reader", "read");
    for _ in 0..7 {
        bs(&ws, &["model", "create", "-n", "iris", "-p", &model("iris_zipmap.onnx")]).expect_code(0);
    }
    let s = Serve::start(&ws, &[]);
    // Pages: the total, and a link to the next page that gives it.
    let (st, _, v) = s.call("GET", "/models/iris/versions?top=3&skip=0&order=newest", Some(&reader), None);
    assert_eq!(st, 200, "{v}");
    let versions = |v: &Value| {
        v["value"].as_array().unwrap().iter().map(|m| m["version"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    assert_eq!((versions(&v), v["count"].as_u64()), (vec!["7".to_string(), "6".into(), "5".into()], Some(7)), "{v}");
    let next = v["nextLink"].as_str().unwrap().to_string();
    let (_, _, v) = s.call("GET", &next, Some(&reader), None);
    assert_eq!(versions(&v), ["4", "3", "2"], "{v}");
    let (_, _, v) = s.call("GET", "/models?top=3&skip=6", Some(&reader), None);
    assert_eq!((versions(&v), v.get("nextLink")), (vec!["7".to_string()], None), "{v}");
    // Bad paging, as JSON errors naming the parameter.
    for (q, needle) in [("top=0", "top"), ("top=abc", "top"), ("order=sideways", "order"), ("bogus=1", "bogus")] {
        let (st, _, v) = s.call("GET", &format!("/models?{q}"), Some(&reader), None);
        assert_eq!(st, 400, "{q}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(needle), "{q}: {v}");
    }
    // The token knows itself (never the secret).
    let (st, _, v) = s.call("GET", "/whoami", Some(&reader), None);
    assert_eq!((st, v["name"].as_str(), v["scope"].as_str()), (200, Some("reader"), Some("read")), "{v}");
    assert!(!v.to_string().contains(&reader));
    // Files under a datastore path: empty for a new output, the files for a used one.
    let (st, _, v) = s.call("GET", "/datastores/workspaceblobstore/files?path=nothing/here", Some(&reader), None);
    assert_eq!((st, v["value"].as_array().map(Vec::len), v["more"].as_bool()), (200, Some(0), Some(false)), "{v}");
    let (st, _, v) = s.call("GET", "/datastores/workspaceblobstore/files?path=LocalUpload&top=1", Some(&reader), None);
    assert_eq!(st, 200, "{v}");
    assert!(v["value"][0]["path"].as_str().unwrap().ends_with("iris_zipmap.onnx"), "{v}");
    let (st, _, v) = s.call("GET", "/datastores/nowhere/files", Some(&reader), None);
    assert_eq!(st, 404, "{v}");
    s.stop();
}
