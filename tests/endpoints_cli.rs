//! The batch endpoint workflow through the binary, as an Azure ML user would run it: a
//! workspace, model versions, a datastore, a data asset, an endpoint and deployments, invoke,
//! and the jobs (show, list, stream, download, cancel), on a real SQLite catalog.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::catalog::{bs, bs_cmd, json, slow_endpoint};
use common::*;

/// A new workspace in a temporary folder.
fn workspace() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempdir();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    bs(&ws, &["workspace", "create", "--name", "test-ws"]).expect_code(0).no_panic();
    (tmp, ws)
}

/// Registers the iris model and an endpoint with one deployment `blue` (mini_batch_size 1).
fn iris_endpoint(ws: &Path) {
    bs(ws, &["model", "create", "--name", "iris", "--path", &model("iris_zipmap.onnx")]).expect_code(0);
    bs(ws, &["batch-endpoint", "create", "--name", "iris-ep"]).expect_code(0);
    let dep = ws.join("blue.yml");
    std::fs::write(
        &dep,
        "name: blue\nendpoint_name: iris-ep\nmodel: azureml:iris:1\nsettings:\n  mini_batch_size: 1\n  output_file_name: predictions.csv\nbatchscore:\n  passthrough: [id]\n",
    )
    .unwrap();
    bs(ws, &["batch-deployment", "create", "--file", dep.to_str().unwrap()]).expect_code(0).no_panic();
}

#[test]
fn the_whole_batch_endpoint_lifecycle() {
    let (_tmp, ws) = workspace();
    let w = &ws;
    // Model versions: the same name makes the next version.
    let m1 = json(w, &["model", "create", "-n", "iris", "-p", &model("iris_zipmap.onnx"), "--tag", "team=a"]);
    assert_eq!(m1["version"], "1");
    assert_eq!(m1["signature"]["inputs"][0]["type"], "float32");
    assert_eq!(m1["signature"]["inputs"][0]["shape"][1], "4");
    assert_eq!(m1["sha256"].as_str().unwrap().len(), 64);
    let m2 = json(w, &["model", "create", "-n", "iris", "-p", &model("iris_zipmap.onnx"), "-d", "second"]);
    assert_eq!(m2["version"], "2");
    assert_eq!(json(w, &["model", "show", "-n", "iris", "--label", "latest"])["version"], "2");
    assert_eq!(json(w, &["model", "list", "--name", "iris"]).as_array().unwrap().len(), 2);
    // Only description and tags change.
    let u = json(w, &["model", "update", "-n", "iris", "-v", "1", "--set", "description=first", "--tag", "stage=prod"]);
    assert_eq!(u["description"], "first");
    assert_eq!(u["tags"]["team"], "a");
    assert_eq!(u["tags"]["stage"], "prod");
    bs(w, &["model", "update", "-n", "iris", "-v", "1", "--set", "path=/elsewhere.onnx"])
        .expect_code(2)
        .stderr_has(&["path", "only the description and tags"]);

    // A datastore (local kind) and a data asset on a path in it.
    let store = ws.join("lake");
    std::fs::create_dir_all(store.join("iris")).unwrap();
    for f in ["part-0.csv", "part-1.csv", "part-2.csv"] {
        std::fs::copy(Path::new(&data("iris")).join(f), store.join("iris").join(f)).unwrap();
    }
    std::fs::write(ws.join("lake.yml"), "name: lake\ntype: local\npath: lake\ndescription: test lake\n").unwrap();
    let ds = json(w, &["datastore", "create", "--file", "lake.yml"]);
    assert_eq!(ds["url"], store.display().to_string(), "a path relative to the YAML file");
    let d = json(
        w,
        &[
            "data",
            "create",
            "-n",
            "iris-data",
            "--type",
            "uri_folder",
            "--path",
            "azureml://datastores/lake/paths/iris",
        ],
    );
    assert_eq!(d["version"], "1");

    // Endpoint and deployment, from Azure-shaped YAML.
    std::fs::write(ws.join("endpoint.yml"), "$schema: https://azuremlschemas.azureedge.net/latest/batchEndpoint.schema.json\nname: iris-ep\ndescription: Iris\nauth_mode: aad_token\n").unwrap();
    json(w, &["batch-endpoint", "create", "--file", "endpoint.yml"]);
    std::fs::write(
        ws.join("blue.yml"),
        "name: blue\nendpoint_name: iris-ep\ntype: model\nmodel: azureml:iris:1\ncompute: azureml:cpu-cluster\nresources:\n  instance_count: 1\nsettings:\n  mini_batch_size: 2\n  output_file_name: predictions.csv\n  retry_settings:\n    max_retries: 2\n    timeout: 60\nbatchscore:\n  passthrough: [id]\n",
    )
    .unwrap();
    let run = bs(w, &["batch-deployment", "create", "--file", "blue.yml", "-o", "json"]);
    run.expect_code(0).stderr_has(&["compute cpu-cluster is not in this workspace", "compute create"]);
    let ep = json(w, &["batch-endpoint", "show", "-n", "iris-ep"]);
    assert_eq!(ep["defaults"]["deployment_name"], "blue", "the first deployment is the default");
    assert_eq!(ep["scoring_uri"], "/batchEndpoints/iris-ep/jobs");

    // Invoke as Azure's examples do: the job name alone on stdout.
    let run = bs(
        w,
        &[
            "batch-endpoint",
            "invoke",
            "-n",
            "iris-ep",
            "--input",
            "azureml:iris-data@latest",
            "--query",
            "name",
            "-o",
            "tsv",
        ],
    );
    run.expect_code(0).no_panic();
    let job = run.stdout.trim().to_string();
    assert!(job.starts_with("batchjob-") && !job.contains('\n'), "{:?}", run.stdout);
    let shown = json(w, &["job", "show", "-n", &job]);
    assert_eq!(shown["status"], "Completed");
    assert_eq!(shown["deployment_name"], "blue");
    assert_eq!(shown["counts"]["rows_scored"], 150);
    assert_eq!(shown["settings"]["mini_batch_size"], "2");
    assert_eq!(shown["inputs"]["input_data"]["url"], store.join("iris").display().to_string());
    let out = ws.join(format!(".batchscore/workspaceblobstore/azureml/{job}/score"));
    assert_eq!(shown["log_location"], out.join("logs/job_result.json").display().to_string());
    assert_eq!(csv_preds(&out.join("predictions.csv")).1.len(), 150);
    assert_eq!(job_result(&out)["settings"]["mini_batch_size"], 2);

    // Stream a finished job: its lines, then its status.
    let stream = bs(w, &["job", "stream", "-n", &job]);
    stream.expect_code(0).stderr_has(&["Running", "Completed: 150 rows"]);
    // Download its output as az does.
    let dl = ws.join("dl");
    bs(w, &["job", "download", "-n", &job, "--output-name", "score", "--download-path", dl.to_str().unwrap()])
        .expect_code(0);
    let got = dl.join("named-outputs/score");
    assert_eq!(
        std::fs::read(got.join("predictions.csv")).unwrap(),
        std::fs::read(out.join("predictions.csv")).unwrap()
    );
    assert!(got.join("logs/job_result.json").is_file());

    // A second deployment on model version 2, made the default; the next job runs on it,
    // with settings overridden at invoke.
    std::fs::write(
        ws.join("green.yml"),
        "name: green\nendpoint_name: iris-ep\nmodel: azureml:iris@latest\nbatchscore:\n  passthrough: [id]\n",
    )
    .unwrap();
    let g = json(
        w,
        &["batch-deployment", "create", "-f", "green.yml", "--set-default", "--set", "settings.error_threshold=5"],
    );
    assert_eq!(g["model"]["version"], "2");
    assert_eq!(json(w, &["batch-endpoint", "show", "-n", "iris-ep"])["defaults"]["deployment_name"], "green");
    let j2 = json(
        w,
        &[
            "batch-endpoint",
            "invoke",
            "-n",
            "iris-ep",
            "--input",
            &data("iris"),
            "--mini-batch-size",
            "1",
            "--job-name",
            "second-job",
        ],
    );
    assert_eq!(j2["name"], "second-job");
    assert_eq!(j2["deployment_name"], "green");
    assert_eq!(j2["settings"]["mini_batch_size"], "1");
    assert_eq!(j2["settings"]["error_threshold"], "5");
    let listed = json(w, &["batch-endpoint", "list-jobs", "-n", "iris-ep"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let by_dep = json(w, &["batch-deployment", "list-jobs", "-n", "blue", "-e", "iris-ep"]);
    assert_eq!(by_dep.as_array().unwrap().len(), 1);
    assert_eq!(json(w, &["job", "list", "--status", "Completed"]).as_array().unwrap().len(), 2);

    // The default cannot be deleted while another deployment remains; a model in use cannot.
    bs(w, &["batch-deployment", "delete", "-n", "green", "-e", "iris-ep", "--yes"])
        .expect_code(2)
        .stderr_has(&["default"]);
    bs(w, &["model", "delete", "-n", "iris", "-v", "2"]).expect_code(2).stderr_has(&["in use", "iris-ep/green"]);
    bs(w, &["batch-endpoint", "update", "-n", "iris-ep", "--set", "defaults.deployment_name=blue"]).expect_code(0);
    bs(w, &["batch-deployment", "delete", "-n", "green", "-e", "iris-ep", "--yes"]).expect_code(0);
    bs(w, &["model", "delete", "-n", "iris", "-v", "2"]).expect_code(0);
    assert_eq!(json(w, &["model", "list", "-n", "iris"]).as_array().unwrap().len(), 1);

    // Deleting the endpoint removes its deployments and keeps its jobs.
    bs(w, &["batch-endpoint", "delete", "-n", "iris-ep"]).expect_code(2).stderr_has(&["--yes"]);
    bs(w, &["batch-endpoint", "delete", "-n", "iris-ep", "--yes"]).expect_code(0).stderr_has(&["1 deployment"]);
    assert_eq!(json(w, &["batch-endpoint", "list"]).as_array().unwrap().len(), 0);
    assert_eq!(json(w, &["job", "list"]).as_array().unwrap().len(), 2, "jobs stay listed");
    assert_eq!(json(w, &["job", "show", "-n", "second-job"])["status"], "Completed");
    bs(w, &["model", "delete", "-n", "iris", "-v", "1"]).expect_code(0);
}

#[test]
fn tables_tsv_yaml_and_queries_print_as_az_does() {
    let (_tmp, ws) = workspace();
    iris_endpoint(&ws);
    let table = bs(&ws, &["model", "list"]);
    table.expect_code(0);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("Name") && lines[0].contains("Version"), "{}", table.stdout);
    assert!(lines[1].starts_with("----"), "{}", table.stdout);
    assert!(lines[2].starts_with("iris "), "{}", table.stdout);
    let tsv = bs(&ws, &["model", "list", "--query", "[].[name,version]", "-o", "tsv"]);
    assert_eq!(tsv.stdout, "iris\t1\n");
    let yaml = bs(&ws, &["batch-endpoint", "show", "-n", "iris-ep", "-o", "yaml"]);
    assert!(yaml.stdout.contains("deployment_name: blue"), "{}", yaml.stdout);
    bs(&ws, &["model", "list", "--query", "[].{"]).expect_code(2).stderr_has(&["JMESPath", "[].{"]);
    // The workspace is found from a subfolder, like Azure's config.json.
    let sub = ws.join("a/b");
    std::fs::create_dir_all(&sub).unwrap();
    let mut cmd = bin_cmd();
    cmd.current_dir(&sub).env_remove("BATCHSCORE_WORKSPACE").args(["model", "list", "-o", "tsv", "--query", "[].name"]);
    assert_eq!(run_command(cmd).expect_code(0).stdout, "iris\n");
}

#[test]
fn bad_names_and_references_are_named_in_the_error() {
    let (_tmp, ws) = workspace();
    iris_endpoint(&ws);
    let w = &ws;
    bs(w, &["model", "create", "-n", "../evil", "-p", &model("iris_zipmap.onnx")])
        .expect_code(2)
        .stderr_has(&["../evil", "letter"]);
    bs(w, &["batch-endpoint", "create", "-n", "a/b"]).expect_code(2).stderr_has(&["a/b"]);
    bs(w, &["batch-endpoint", "invoke", "-n", "iris-ep", "--input", "azureml:nope:1"]).expect_code(2).stderr_has(&[
        "azureml:nope:1",
        "not found",
        "--input",
    ]);
    bs(w, &["batch-endpoint", "invoke", "-n", "iris-ep", "--input", "azureml://datastores/nostore/paths/x"])
        .expect_code(2)
        .stderr_has(&["datastore nostore not found"]);
    bs(w, &["batch-endpoint", "invoke", "-n", "no-such-ep", "--input", &data("iris")])
        .expect_code(2)
        .stderr_has(&["no-such-ep"]);
    bs(w, &["batch-endpoint", "invoke", "-n", "iris-ep", "-d", "purple", "--input", &data("iris")])
        .expect_code(2)
        .stderr_has(&["purple"]);
    std::fs::write(ws.join("bad.yml"), "name: red\nendpoint_name: iris-ep\nmodel: azureml:missing:3\n").unwrap();
    bs(w, &["batch-deployment", "create", "-f", "bad.yml"]).expect_code(2).stderr_has(&["missing:3"]);
    std::fs::write(
        ws.join("typo.yml"),
        "name: red\nendpoint_name: iris-ep\nmodel: azureml:iris:1\nsettings:\n  mini_batch_sise: 3\n",
    )
    .unwrap();
    bs(w, &["batch-deployment", "create", "-f", "typo.yml"])
        .expect_code(2)
        .stderr_has(&["mini_batch_sise", "mini_batch_size"]);
    std::fs::write(
        ws.join("val.yml"),
        "name: red\nendpoint_name: iris-ep\nmodel: azureml:iris:1\nsettings:\n  mini_batch_size: lots\n",
    )
    .unwrap();
    bs(w, &["batch-deployment", "create", "-f", "val.yml"]).expect_code(2).stderr_has(&["mini_batch_size", "lots"]);
    bs(w, &["model", "create", "-n", "iris", "-v", "1", "-p", &model("iris_zipmap.onnx")])
        .expect_code(2)
        .stderr_has(&["iris:1 already exists"]);
    bs(w, &["model", "create", "-n", "junk", "-p", &data("iris/part-0.csv")])
        .expect_code(2)
        .stderr_has(&["part-0.csv"]);
    let mut cmd = bin_cmd();
    cmd.current_dir(std::env::temp_dir()).env_remove("BATCHSCORE_WORKSPACE").args(["model", "list"]);
    run_command(cmd).expect_code(2).stderr_has(&["no workspace found", "workspace create"]);
}

#[test]
fn an_existing_output_fails_the_job_before_any_work() {
    let (_tmp, ws) = workspace();
    iris_endpoint(&ws);
    let taken = ws.join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("predictions.csv"), "keep me").unwrap();
    let run = bs(
        &ws,
        &[
            "batch-endpoint",
            "invoke",
            "-n",
            "iris-ep",
            "--input",
            &data("iris"),
            "--output-path",
            taken.to_str().unwrap(),
            "--job-name",
            "clash",
            "-o",
            "json",
        ],
    );
    run.expect_code(2).stderr_has(&["already"]);
    assert_eq!(std::fs::read_to_string(taken.join("predictions.csv")).unwrap(), "keep me");
    let job = json(&ws, &["job", "show", "-n", "clash"]);
    assert_eq!(job["status"], "Failed");
    assert!(job["error"].as_str().unwrap().contains("taken"), "{}", job["error"]);
}

#[test]
fn eight_processes_registering_one_model_get_eight_distinct_versions() {
    let (_tmp, ws) = workspace();
    let m = model("iris_zipmap.onnx");
    let children: Vec<Child> = (0..8)
        .map(|_| {
            let mut cmd =
                bs_cmd(&ws, &["model", "create", "-n", "shared", "-p", &m, "-o", "tsv", "--query", "version"]);
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let mut versions: Vec<u32> = children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        })
        .collect();
    versions.sort();
    assert_eq!(versions, (1..=8).collect::<Vec<_>>(), "no duplicate or missing version");
    assert_eq!(json(&ws, &["model", "list", "-n", "shared"]).as_array().unwrap().len(), 8);
}

/// Starts a job on the slow model (an 80 s call) and waits until it runs.
fn start_slow_job(ws: &Path, name: &str) -> Child {
    slow_endpoint(ws);
    let mut cmd = bs_cmd(
        ws,
        &["batch-endpoint", "invoke", "-n", "slow-ep", "--input", &data("broken/tabular/good.csv"), "--job-name", name],
    );
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let started = Instant::now();
    loop {
        let status = bs(ws, &["job", "show", "-n", name, "--query", "status", "-o", "tsv"]);
        if status.stdout.trim() == "Running" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "the job did not start: {}", status.stderr);
        std::thread::sleep(Duration::from_millis(300));
    }
    child
}

#[test]
fn cancel_from_another_process_stops_the_job_and_publishes_nothing() {
    let (_tmp, ws) = workspace();
    let child = start_slow_job(&ws, "to-cancel");
    // Another terminal follows it meanwhile.
    let mut follow = bs_cmd(&ws, &["job", "stream", "-n", "to-cancel"]);
    follow.stdout(Stdio::piped()).stderr(Stdio::piped());
    let follower = follow.spawn().unwrap();
    let asked = Instant::now();
    let c = json(&ws, &["job", "cancel", "-n", "to-cancel"]);
    assert_eq!(c["status"], "CancelRequested");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        asked.elapsed() < Duration::from_secs(60),
        "stopped in the model call, not after it: {:?}",
        asked.elapsed()
    );
    let job = json(&ws, &["job", "show", "-n", "to-cancel"]);
    assert_eq!(job["status"], "Canceled", "{job}");
    let score = ws.join(".batchscore/workspaceblobstore/azureml/to-cancel/score");
    assert!(!score.join("predictions.csv").exists(), "nothing published");
    // Kept for `job resume`: the plan (and any scored parts), nothing published.
    assert!(score.join("_staging/to-cancel/plan.json").exists(), "the canceled job can be resumed");
    bs(&ws, &["job", "cancel", "-n", "to-cancel"]).expect_code(2).stderr_has(&["already ended"]);
    let followed = follower.wait_with_output().unwrap();
    let lines = String::from_utf8_lossy(&followed.stderr);
    assert_eq!(followed.status.code(), Some(1), "{lines}");
    assert!(
        lines.contains("planned 1 files") && lines.contains("Running") && lines.contains("job to-cancel: Canceled"),
        "{lines}"
    );
}

#[test]
fn a_killed_job_is_marked_failed_by_the_next_read() {
    let (_tmp, ws) = workspace();
    let mut child = start_slow_job(&ws, "to-kill");
    child.kill().unwrap();
    child.wait().unwrap();
    let job = json(&ws, &["job", "show", "-n", "to-kill"]);
    assert_eq!(job["status"], "Failed", "{job}");
    let error = job["error"].as_str().unwrap();
    assert!(error.contains("stopped without finishing") && error.contains("killed"), "{error}");
    assert_eq!(json(&ws, &["job", "list", "--status", "Running"]).as_array().unwrap().len(), 0);
}

#[test]
fn an_s3_datastore_feeds_and_receives_a_job_with_credentials_from_the_environment() {
    use common::servers::{Moto, upload_dir_blocking};
    let (_tmp, ws) = workspace();
    iris_endpoint(&ws);
    let moto = Moto::start();
    moto.create_bucket("lake");
    upload_dir_blocking(&*moto.store("lake"), Path::new(&data("iris")), &"iris".into());
    let secret = "lake-secret-5c1f0e7a9b";
    let yaml = format!(
        "name: s3lake\ntype: s3\nurl: s3://lake\noptions:\n  aws_endpoint: {}\n  aws_allow_http: 'true'\n  aws_region: us-east-1\n  aws_virtual_hosted_style_request: 'false'\n  aws_conditional_put: etag\n  aws_copy_if_not_exists: multipart\ncredentials_from_env:\n  aws_access_key_id: LAKE_KEY_ID\n  aws_secret_access_key: LAKE_SECRET\n",
        moto.endpoint
    );
    std::fs::write(ws.join("s3.yml"), yaml).unwrap();
    json(&ws, &["datastore", "create", "-f", "s3.yml"]);
    let mut cmd = bs_cmd(
        &ws,
        &[
            "batch-endpoint",
            "invoke",
            "-n",
            "iris-ep",
            "--input",
            "azureml://datastores/s3lake/paths/iris",
            "--output-path",
            "azureml://datastores/s3lake/paths/out/job1",
            "--job-name",
            "on-s3",
            "-o",
            "json",
        ],
    );
    cmd.env("LAKE_KEY_ID", "lake-key").env("LAKE_SECRET", secret);
    let run = run_command(cmd);
    run.expect_code(0).no_panic();
    assert!(!run.stdout.contains(secret) && !run.stderr.contains(secret), "the secret was printed");
    let mut cmd = bs_cmd(&ws, &["job", "download", "-n", "on-s3", "--download-path", ws.join("dl").to_str().unwrap()]);
    cmd.env("LAKE_KEY_ID", "lake-key").env("LAKE_SECRET", secret);
    run_command(cmd).expect_code(0);
    assert_eq!(csv_preds(&ws.join("dl/named-outputs/score/predictions.csv")).1.len(), 150);
    let shown = bs(&ws, &["job", "show", "-n", "on-s3", "-o", "json"]);
    assert!(shown.stdout.contains("s3://lake/out/job1") && !shown.stdout.contains(secret), "{}", shown.stdout);
    for file in ["catalog.sqlite", "catalog.sqlite-wal"] {
        let bytes = std::fs::read(ws.join(".batchscore").join(file)).unwrap_or_default();
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()), "the secret reached {file}");
    }
}
