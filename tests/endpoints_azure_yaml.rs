//! Azure-written YAML files, loaded verbatim: the files under tests/fixtures/azureml-examples
//! are byte-exact copies from Azure/azureml-examples (see SOURCES.md there). The tests put
//! ONNX models where the files point, create the assets, and check that what Azure-only
//! fields mean nothing here is reported rather than rejected, and that secrets in them are
//! never stored.

mod common;

use std::path::{Path, PathBuf};

use common::catalog::{bs, json};
use common::*;
use serde_json::Value;

/// A workspace, and a copy of the fixtures to place models in.
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempdir();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    bs(&ws, &["workspace", "create", "--name", "azure-yaml"]).expect_code(0);
    let examples = tmp.path().join("azureml-examples");
    copy_tree(&repo().join("tests/fixtures/azureml-examples"), &examples);
    (tmp, ws, examples)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.path().is_dir() {
            copy_tree(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn place(file: &Path, model_name: &str) {
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::copy(model(model_name), file).unwrap();
}

/// An MLflow model folder with the ONNX flavour, as `mlflow.onnx.save_model` writes it.
fn mlflow_onnx_folder(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    place(&dir.join("model.onnx"), "iris_zipmap.onnx");
    std::fs::write(
        dir.join("MLmodel"),
        "flavors:\n  onnx:\n    code: null\n    data: model.onnx\n    onnx_version: 1.16.0\n    providers:\n    - CUDAExecutionProvider\n    - CPUExecutionProvider\n  python_function:\n    data: model.onnx\n    env:\n      conda: conda.yaml\n      virtualenv: python_env.yaml\n    loader_module: mlflow.onnx\n    python_version: 3.10.12\nmlflow_version: 2.9.2\nmodel_uuid: 3c7d1f0e5a2b4c8d9e0f1a2b3c4d5e6f\nutc_time_created: '2024-01-01 00:00:00.000000'\n",
    )
    .unwrap();
}

#[test]
fn azure_batch_endpoint_and_deployment_files_load_and_run() {
    let (_tmp, ws, ex) = setup();
    let mnist = ex.join("cli/endpoints/batch/deploy-models/mnist-classifier");
    let ep = json(&ws, &["batch-endpoint", "create", "--file", mnist.join("endpoint.yml").to_str().unwrap()]);
    assert_eq!(ep["name"], "mnist-batch");
    assert_eq!(ep["tags"]["type"], "deep-learning");
    // An inline model {name, path} is registered on create, from the folder next to the file.
    place(&mnist.join("deployment-torch/model/model.onnx"), "digits_mlp.onnx");
    let run = bs(
        &ws,
        &[
            "batch-deployment",
            "create",
            "--file",
            mnist.join("deployment-torch/deployment.yml").to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    run.expect_code(0).no_panic().stderr_has(&["code_configuration", "compute", "inline environment"]);
    let dep: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(dep["model"]["name"], "mnist-classifier-torch");
    assert_eq!(dep["environment"]["name"], "batchscore-cpu");
    assert_eq!(dep["settings"]["max_concurrency"], "2");
    assert_eq!(dep["settings"]["max_retries"], "3");
    assert_eq!(dep["instance_count"], 1);
    let job = json(&ws, &["batch-endpoint", "invoke", "--name", "mnist-batch", "--input", &data("digits")]);
    assert_eq!(job["status"], "Completed", "{job}");
    assert!(job["counts"]["rows_scored"].as_u64().unwrap() > 0);

    // The older flat schema: settings at the top level, a model path with no name.
    let legacy = ex.join("cli/endpoints/batch");
    place(&legacy.join("mnist/model/digits.onnx"), "digits_mlp.onnx");
    let file = legacy.join("mnist-torch-deployment.yml");
    let models = json(&ws, &["model", "list"]).as_array().unwrap().len();
    bs(&ws, &["batch-deployment", "create", "--file", file.to_str().unwrap()])
        .expect_code(2)
        .stderr_has(&["mnist-batch/mnist-torch-dpl already exists"]);
    assert_eq!(
        json(&ws, &["model", "list"]).as_array().unwrap().len(),
        models,
        "no model registered for a refused deployment"
    );
    let run =
        bs(&ws, &["batch-deployment", "create", "--file", file.to_str().unwrap(), "--name", "legacy", "-o", "json"]);
    run.expect_code(0).no_panic();
    let dep: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(dep["settings"]["mini_batch_size"], "10");
    assert_eq!(dep["model"]["name"], "legacy-model");
}

#[test]
fn azure_model_references_and_mlflow_folders() {
    let (_tmp, ws, ex) = setup();
    // local-mlflow.yml: an MLflow folder; the ONNX flavour names the file.
    let assets = ex.join("cli/assets/model");
    mlflow_onnx_folder(&assets.join("mlflow-model"));
    let m = json(&ws, &["model", "create", "--file", assets.join("local-mlflow.yml").to_str().unwrap()]);
    assert_eq!(m["name"], "local-mlflow-example");
    assert_eq!(m["type"], "mlflow_model");
    assert!(m["path"].as_str().unwrap().ends_with("/model.onnx"), "{}", m["path"]);
    // `version: 1` and a path with a trailing space, as Microsoft wrote them.
    let schema = ex.join("cli/endpoints/online/managed/inference-schema");
    place(&schema.join("models/model.onnx"), "iris_zipmap.onnx");
    let m = json(&ws, &["model", "create", "--file", schema.join("model.yml").to_str().unwrap()]);
    assert_eq!((m["name"].as_str(), m["version"].as_str()), (Some("azureml-infschema"), Some("1")));
    // A real MLflow folder of another flavour is refused, naming it.
    let openai = ex.join("cli/endpoints/batch/deploy-models/openai-embeddings/model");
    bs(&ws, &["model", "create", "-n", "emb", "-p", openai.to_str().unwrap()])
        .expect_code(2)
        .stderr_has(&["MLmodel", "no onnx flavour"]);

    // `model: azureml:<name>@latest` and `azureml:<name>:<version>`.
    let heart = ex.join("cli/endpoints/batch/deploy-models/heart-classifier-mlflow");
    mlflow_onnx_folder(&ex.join("heart-mlflow"));
    let folder = ex.join("heart-mlflow");
    bs(
        &ws,
        &["model", "create", "-n", "heart-classifier-mlflow", "-p", folder.to_str().unwrap(), "--type", "mlflow_model"],
    )
    .expect_code(0);
    json(&ws, &["batch-endpoint", "create", "-f", heart.join("endpoint.yml").to_str().unwrap()]);
    let run = bs(
        &ws,
        &[
            "batch-deployment",
            "create",
            "-f",
            heart.join("deployment-simple/deployment.yml").to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    run.expect_code(0).no_panic();
    let dep: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(dep["model"]["version"], "1");
    assert_eq!(dep["instance_count"], 2);
    assert_eq!(dep["settings"]["timeout"], "300");
    // Its custom sibling names an environment and scoring code: reported, not rejected.
    let run = bs(
        &ws,
        &["batch-deployment", "create", "-f", heart.join("deployment-custom/deployment.yml").to_str().unwrap()],
    );
    run.expect_code(0).stderr_has(&["code_configuration", "inline environment"]);
    // An instance count above 1 is recorded and warned about at invoke.
    let input = ws.join("heart-data");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::copy(Path::new(&data("iris")).join("part-0.csv"), input.join("part-0.csv")).unwrap();
    let run = bs(
        &ws,
        &[
            "batch-endpoint",
            "invoke",
            "-n",
            "heart-classifier-batch",
            "-d",
            "classifier-xgboost-mlflow",
            "--input",
            input.to_str().unwrap(),
            "--set",
            "batchscore.passthrough=id",
            "-o",
            "json",
        ],
    );
    run.expect_code(0).stderr_has(&["compute batch-cluster is not in this workspace"]);
    let job: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(job["instance_count"], 2);

    let train = ex.join("cli/endpoints/batch/train-to-batch-score/batch-score/mlflow-deployment.yml");
    bs(&ws, &["batch-endpoint", "create", "-n", "mybatchedp"]).expect_code(0);
    bs(&ws, &["batch-deployment", "create", "-f", train.to_str().unwrap()])
        .expect_code(2)
        .stderr_has(&["mlflowmodel:1"]);
    bs(&ws, &["model", "create", "-n", "mlflowmodel", "-p", folder.to_str().unwrap()]).expect_code(0);
    bs(&ws, &["batch-deployment", "create", "-f", train.to_str().unwrap()]).expect_code(0).stderr_has(&["compute"]);
    // A pipeline deployment is refused with the reason.
    let pipe = ex.join("cli/endpoints/batch/deploy-pipelines/hello-batch/deployment.yml");
    bs(&ws, &["batch-endpoint", "create", "-n", "hello-pipeline-batch"]).expect_code(0);
    bs(&ws, &["batch-deployment", "create", "-f", pipe.to_str().unwrap()])
        .expect_code(2)
        .stderr_has(&["pipeline", "not supported"]);
}

#[test]
fn azure_data_datastore_and_environment_files() {
    let (_tmp, ws, ex) = setup();
    let data_dir = ex.join("cli/assets/data");
    let f = |name: &str| data_dir.join(name).display().to_string();
    let d = json(&ws, &["data", "create", "--file", &f("local-file.yml")]);
    assert_eq!(d["path"], data_dir.join("sample-data/titanic.csv").display().to_string(), "relative to the YAML file");
    assert_eq!(d["type"], "uri_file");
    assert_eq!(json(&ws, &["data", "create", "--file", &f("local-folder.yml")])["type"], "uri_folder");
    assert_eq!(
        json(&ws, &["data", "create", "--file", &f("cloud-folder.yml")])["path"],
        "azureml://datastores/workspaceblobstore/paths/example-data/"
    );
    json(&ws, &["data", "create", "--file", &f("cloud-file.yml")]);
    json(&ws, &["data", "create", "--file", &f("public-file-https.yml")]);
    json(&ws, &["data", "create", "--file", &f("cloud-folder-https.yml")]);
    bs(&ws, &["data", "create", "--file", &f("local-mltable.yml")]).expect_code(2).stderr_has(&["mltable"]);
    let u =
        json(&ws, &["data", "update", "-n", "local-file-example-titanic", "-v", "1", "--set", "description=changed"]);
    assert_eq!(u["description"], "changed");
    assert_eq!(json(&ws, &["data", "list"]).as_array().unwrap().len(), 6);

    // Datastores: the credentials in Microsoft's files are never stored.
    let ds_dir = ex.join("cli/resources/datastore");
    let secrets =
        ["XXXxxxXXXxXXXXxxXXXXXxXXXXXxXxxXxXXXxXXXxXXxxxXXxxXXXxXxXXXxxXxxXXXXxxxxxXXxxxxxxXXXxXXX", "xx=xxxx&xxx=xxx"];
    for (file, var) in [
        ("blob.yml", "AZURE_STORAGE_ACCOUNT_KEY"),
        ("blob-sas.yml", "AZURE_STORAGE_SAS_TOKEN"),
        ("adls-gen2.yml", "AZURE_CLIENT_SECRET"),
    ] {
        let run = bs(&ws, &["datastore", "create", "--file", ds_dir.join(file).to_str().unwrap(), "-o", "json"]);
        run.expect_code(0).no_panic().stderr_has(&["not stored", var]);
        for s in secrets {
            assert!(!run.stdout.contains(s) && !run.stderr.contains(s), "{file}: a secret was printed");
        }
    }
    let blob = json(&ws, &["datastore", "show", "-n", "blob_example"]);
    assert_eq!(blob["url"], "az://data-container");
    assert_eq!(blob["options"]["azure_storage_account_name"], "mytestblobstore");
    json(&ws, &["datastore", "create", "--file", ds_dir.join("blob-credless.yml").to_str().unwrap()]);
    bs(&ws, &["datastore", "create", "--file", ds_dir.join("file.yml").to_str().unwrap()])
        .expect_code(2)
        .stderr_has(&["azure_file"]);
    bs(&ws, &["datastore", "delete", "-n", "workspaceblobstore"]).expect_code(2).stderr_has(&["default datastore"]);
    let catalog = std::fs::read(ws.join(".batchscore/catalog.sqlite")).unwrap();
    let wal = std::fs::read(ws.join(".batchscore/catalog.sqlite-wal")).unwrap_or_default();
    for s in secrets {
        for bytes in [&catalog, &wal] {
            assert!(!bytes.windows(s.len()).any(|w| w == s.as_bytes()), "a secret reached the catalog");
        }
    }

    // Environments: image, conda_file and build are reported as not used.
    let env_dir = ex.join("cli/assets/environment");
    for file in ["docker-image.yml", "docker-image-plus-conda.yaml", "docker-context.yml"] {
        let run = bs(&ws, &["environment", "create", "--file", env_dir.join(file).to_str().unwrap(), "-o", "json"]);
        run.expect_code(0).no_panic().stderr_has(&["not used here"]);
        let env: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(env["version"], "1");
        assert_eq!(env["runtime"]["execution_provider"], "cpu");
    }
    let curated = json(&ws, &["environment", "show", "-n", "batchscore-cpu", "-v", "1"]);
    assert_eq!(curated["runtime"]["execution_provider"], "cpu");
    let u = json(&ws, &["environment", "update", "-n", "docker-context-example", "-v", "1", "--set", "tags.owner=me"]);
    assert_eq!(u["tags"]["owner"], "me");
    bs(
        &ws,
        &[
            "environment",
            "update",
            "-n",
            "docker-context-example",
            "-v",
            "1",
            "--set",
            "runtime.execution_provider=cuda",
        ],
    )
    .expect_code(2)
    .stderr_has(&["only the description and tags"]);
    bs(&ws, &["environment", "delete", "-n", "docker-context-example", "-v", "1"]).expect_code(0);
}

#[test]
fn an_environments_session_options_reach_the_job() {
    let tmp = tempdir();
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).unwrap();
    bs(&ws, &["workspace", "create"]).expect_code(0);
    std::fs::write(ws.join("env.yml"), "name: tuned\nimage: mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu20.04\nruntime:\n  execution_provider: cpu\n  intra_op_num_threads: 1\n  graph_optimization_level: basic\n").unwrap();
    json(&ws, &["environment", "create", "-f", "env.yml"]);
    std::fs::write(ws.join("bad-env.yml"), "name: typo\nruntime:\n  execution_provder: cpu\n").unwrap();
    bs(&ws, &["environment", "create", "-f", "bad-env.yml"]).expect_code(2).stderr_has(&["execution_provder"]);
    bs(&ws, &["model", "create", "-n", "iris", "-p", &model("iris_zipmap.onnx")]).expect_code(0);
    bs(&ws, &["batch-endpoint", "create", "-n", "tuned-ep"]).expect_code(0);
    std::fs::write(ws.join("d.yml"), "name: d\nendpoint_name: tuned-ep\nmodel: azureml:iris:1\nenvironment: azureml:tuned@latest\nbatchscore:\n  passthrough: [id]\n").unwrap();
    bs(&ws, &["batch-deployment", "create", "-f", "d.yml"]).expect_code(0);
    let job = json(&ws, &["batch-endpoint", "invoke", "-n", "tuned-ep", "--input", &data("iris")]);
    assert_eq!(job["status"], "Completed", "{job}");
    assert_eq!(job["environment"]["name"], "tuned");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(job["log_location"].as_str().unwrap()).unwrap()).unwrap();
    assert_eq!(report["settings"]["graph_optimization"], "basic");
    assert_eq!(report["model"]["intra_threads"], 1);
}
