//! Preparing a job: everything that can refuse it (exit 2) before any scoring.
//!
//! In order: the locations parse; the output is new (leftovers of killed jobs are named, and
//! removed with `--clean-staging`), or, for a run that may continue a job, holds nothing but
//! staging areas and a Failed job's logs; the output can be written (this process's marker is
//! written create-only: the probe); the inputs are listed and planned; the model loads (with its
//! external weights, from any store) and fits the data; then the job is settled (see
//! [`super::resume`]). Anything refused after a plain run's probe removes the probe again, so a
//! job that could not start leaves nothing behind.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::DataType;
use bytes::Bytes;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use ort::session::Session;
use sha2::Digest;

use super::PrepareError;
use super::resume::{self, Joining, Settled};
use crate::engine::collect::OutputLayout;
use crate::engine::infer::{ModelSource, build_session_on};
use crate::engine::model::{ModelError, ModelInfo, proto};
use crate::engine::plan::{FileKind, Part, Plan, check_output, clean_staging, list_inputs, plan_job, survey_output};
use crate::engine::preprocess::{Feeder, resolve_feeder};
use crate::engine::read::fetch_one;
use crate::engine::report::ModelReport;
use crate::engine::settings::{Device, MiniBatchTarget, OutputFormat, Settings, format_byte_size};
use crate::engine::state::JobState;
use crate::engine::state::lease::DEFAULT_LEASE_SECONDS;
use crate::storage::Location;

/// A job ready to run.
pub(super) struct Prepared {
    pub input: Location,
    pub output: Location,
    pub plan: Arc<Plan>,
    pub model: Arc<LoadedModel>,
    /// The session opened to learn the model's inputs; the first session thread takes it.
    pub first_session: Option<Session>,
    pub info: Arc<ModelInfo>,
    pub feeder: Feeder,
    pub layout: OutputLayout,
    pub threads: Threads,
    pub model_report: ModelReport,
    pub plan_seconds: f64,
}

/// How the job's threads are laid out.
#[derive(Debug, Clone, Copy)]
pub(super) struct Threads {
    pub workers: usize,
    pub sessions: usize,
    pub intra_threads: usize,
    pub batch_size: usize,
}

/// The model, as the sessions load it.
pub(super) struct LoadedModel {
    pub display: String,
    /// The model file's bytes.
    pub bytes: Bytes,
    /// What the file declares that ONNX Runtime does not report (external weights, output ranks).
    pub facts: proto::ProtoFacts,
    /// A local copy with its external weights beside it, when it has any.
    pub file: Option<PathBuf>,
    /// The folder holding a downloaded copy, removed when the job ends.
    _downloaded: Option<tempfile::TempDir>,
}

impl LoadedModel {
    pub fn source(&self) -> ModelSource<'_> {
        match &self.file {
            Some(p) => ModelSource::File(p),
            None => ModelSource::Bytes(&self.bytes),
        }
    }
}

/// Model sessions on a GPU by default: two, so that one's copies and CPU work overlap the
/// other's kernels.
const GPU_SESSIONS: usize = 2;

/// How [`prepare`] meets the job's state in the store.
pub(super) struct Meeting<'a> {
    /// The id a new plain job takes.
    pub job_id: &'a str,
    /// The job's name when the caller gives one (the catalog).
    pub named: Option<&'a str>,
    pub options: &'a super::JobOptions,
}

/// Prepares the job: checks the output, plans, loads the model, then settles which job this
/// run is ([`resume::settle`]). `--clean-staging` removes the leftovers of killed jobs first.
pub(super) fn prepare(
    io: &tokio::runtime::Runtime,
    settings: &Settings,
    meet: Meeting<'_>,
) -> Result<(Prepared, Settled), PrepareError> {
    let started = Instant::now();
    let opts = &settings.storage_options;
    let input = Location::open(&settings.input, opts).map_err(PrepareError::from)?;
    let output = Location::open(&settings.output, opts).map_err(PrepareError::from)?;
    let model_loc = Location::open(&settings.model, opts).map_err(PrepareError::from)?;
    let instance = meet.options.instance(settings);
    let joins = meet.options.resume || instance.is_some();
    if meet.options.clean_staging && joins {
        return Err(PrepareError::Setting(
            "--clean-staging removes unfinished jobs, which --resume and --instance-count join: use one or the other"
                .into(),
        ));
    }
    if meet.options.clean_staging {
        let cleaned = io.block_on(clean_staging(&output, false)).map_err(PrepareError::from)?;
        for job in &cleaned.removed {
            tracing::info!("removed the staging files of job {job} from {}", output.display);
        }
        for job in &cleaned.running {
            tracing::warn!(
                "job {job} is still running into {} (or was written to in the last minutes); its staging files were left \
                 alone",
                output.display
            );
        }
    }
    // One that may join a job looks at the output when it meets the job, after planning (the
    // output may change meanwhile); here only for what would refuse it anyway.
    if joins {
        io.block_on(survey_output(&output)).map_err(PrepareError::from)?;
    } else {
        io.block_on(check_output(&output)).map_err(PrepareError::from)?;
    }
    let existed = output.local.as_ref().is_some_and(|l| l.exists());
    let process = crate::engine::state::process_name();
    let fresh = JobState::new(&output, meet.job_id, &process);
    // A plain run probes the output before it plans; one that may join a job learns which
    // job (and so where to probe) from its plan.
    if !joins {
        io.block_on(resume::probe(&fresh, None))?;
    }
    let undo = |io: &tokio::runtime::Runtime| {
        if !joins {
            io.block_on(fresh.staging().cleanup());
            if let Some(local) = output.local.as_ref().filter(|_| !existed) {
                let _ = std::fs::remove_dir(local);
            }
        }
    };
    let prepared = match prepare_after_probe(io, settings, input, output.clone(), model_loc, started) {
        Ok(p) => p,
        Err(e) => {
            undo(io);
            return Err(e);
        }
    };
    let how = Joining {
        settings,
        process: &process,
        named: meet.named,
        fresh_id: meet.job_id,
        resume: meet.options.resume,
        instance,
        lease_seconds: meet.options.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS),
        joins,
    };
    match io.block_on(resume::settle(&prepared, how)) {
        Ok(settled) => Ok((prepared, settled)),
        Err(e) => {
            undo(io);
            Err(e)
        }
    }
}

fn prepare_after_probe(
    io: &tokio::runtime::Runtime,
    settings: &Settings,
    input: Location,
    output: Location,
    model_loc: Location,
    started: Instant,
) -> Result<Prepared, PrepareError> {
    let listing =
        io.block_on(list_inputs(&input, settings.pattern.as_deref(), Some(&output))).map_err(PrepareError::from)?;
    let tabular = settings.tabular.clone();
    let delimiter = move |name: &str| tabular.delimiter_for(name);
    let plan =
        Arc::new(io.block_on(plan_job(&input, listing, settings.mini_batch, &delimiter)).map_err(PrepareError::from)?);
    let (workers, sessions, intra_threads) = thread_layout(settings, plan.mini_batches.len());

    // The model: read it, open the first session, learn its inputs and outputs.
    let env = crate::engine::runtime::environment().map_err(PrepareError::from)?;
    let model = io.block_on(load_model(&model_loc))?;
    let facts = &model.facts;
    let first_session =
        build_session_on(env, model.source(), intra_threads, settings.device, settings.graph_optimization).map_err(
            |reason| {
                if reason.starts_with("--device") {
                    PrepareError::Setting(reason)
                } else {
                    PrepareError::Model(ModelError::Load { model: model.display.clone(), reason })
                }
            },
        )?;
    let info = Arc::new(ModelInfo::from_session(&first_session, &model.display, facts).map_err(PrepareError::from)?);
    let feeder = resolve_feeder(&info, plan.kind, settings)
        .map_err(|source| PrepareError::Feed { model: model.display.clone(), source })?;
    let batch_size = match (info.fixed_batch, settings.batch_size) {
        (Some(fixed), Some(asked)) if fixed != asked => {
            return Err(PrepareError::Setting(format!(
                "--batch-size {asked}: model {} has a fixed batch dimension of {fixed}; leave --batch-size out or set it to {fixed}",
                model.display
            )));
        }
        (Some(fixed), _) => fixed,
        (None, Some(asked)) => asked,
        (None, None) => feeder.default_batch_size(),
    };
    let pass_names = feeder.passthrough().iter().map(|p| p.name.clone()).collect();
    let mut layout = OutputLayout::new(feeder.has_row_numbers(), pass_names, &info.outputs);
    if let Some(name) = layout.clash() {
        return Err(PrepareError::Setting(format!(
            "the output would have two columns named {name:?}; rename the pass-through column or leave it out of --passthrough"
        )));
    }
    if settings.output_format == OutputFormat::Parquet && !feeder.passthrough().is_empty() {
        layout.pass_types = io.block_on(pass_types(&input, &plan, &feeder));
    }
    let threads = Threads { workers, sessions, intra_threads, batch_size };
    log_layout(settings, &plan, threads);
    let model_report = ModelReport {
        path: model.display.clone(),
        sha256: format!("{:x}", sha2::Sha256::digest(&model.bytes)),
        bytes: model.bytes.len() as u64,
        external_data: facts.external_files.iter().cloned().collect(),
        info: (*info).clone(),
        feeder: feeder.clone(),
        batch_size,
        workers,
        sessions,
        intra_threads,
    };
    Ok(Prepared {
        input,
        output,
        plan,
        model: Arc::new(model),
        first_session: Some(first_session),
        info,
        feeder,
        layout,
        threads,
        model_report,
        plan_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Workers read and decode; sessions run the model, never more of them than workers. On the
/// CPU each worker has a session and sessions × intra-op threads ≈ cores; a GPU gets a few
/// sessions fed by many workers.
fn thread_layout(settings: &Settings, mini_batches: usize) -> (usize, usize, usize) {
    let workers = settings.max_concurrency.min(mini_batches).max(1);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let sessions = settings
        .sessions
        .unwrap_or(match settings.device {
            Device::Cpu => workers,
            Device::Cuda(_) => GPU_SESSIONS,
        })
        .min(workers)
        .max(1);
    if let Some(asked) = settings.sessions.filter(|n| *n > workers) {
        tracing::warn!(
            "--sessions {asked}: only {workers} worker(s) feed the sessions, and more sessions than workers would only wait; using {sessions} (raise --max-concurrency for more)"
        );
    }
    let intra_threads = settings.intra_threads.unwrap_or(match settings.device {
        Device::Cpu => (cores / sessions).max(1),
        Device::Cuda(_) => 1,
    });
    (workers, sessions, intra_threads)
}

fn log_layout(settings: &Settings, plan: &Plan, t: Threads) {
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    let session_threads = plural(t.intra_threads, "thread", "threads");
    let threads_layout = if t.sessions < t.workers {
        format!(
            "{} decoding for {} of {session_threads} each",
            plural(t.workers, "worker", "workers"),
            plural(t.sessions, "session", "sessions")
        )
    } else {
        let each = if t.sessions == 1 { " with its own session" } else { ", each with its own session" };
        format!("{}{each} of {session_threads}", plural(t.sessions, "worker", "workers"))
    };
    let per_mini_batch = match settings.mini_batch {
        MiniBatchTarget::Files(n) => format!("up to {n} files"),
        MiniBatchTarget::Rows(n) => format!("about {n} rows"),
        MiniBatchTarget::Bytes(b) => format!("about {} of input", format_byte_size(b)),
    };
    let pieces = if plan.items.len() > plan.files.len() {
        format!(", cut into {} pieces,", plan.items.len())
    } else {
        String::new()
    };
    tracing::info!(
        "{} files ({} bytes){pieces} in {} mini-batches of {per_mini_batch}; {threads_layout} on {}; batch {}",
        plan.files.len(),
        plan.total_bytes,
        plan.mini_batches.len(),
        settings.device,
        t.batch_size
    );
    if !plan.skipped.is_empty() {
        let first = &plan.skipped[0];
        tracing::warn!(
            "{} file(s) under the input are skipped (listed in logs/job_result.json), e.g. {}: {}",
            plan.skipped.len(),
            crate::text::excerpt(&first.file),
            first.reason
        );
    }
}

/// Reads the model. A model whose weights are in external files (every model over 2 GB) is
/// loaded from a local file with its weights beside it: the model's own path when it is local,
/// else a download of the model and its weight files into a temporary folder.
async fn load_model(loc: &Location) -> Result<LoadedModel, PrepareError> {
    let display = loc.display.clone();
    let read_err = |e: String| {
        PrepareError::Model(ModelError::Read {
            model: display.clone(),
            reason: e.trim_start_matches("cannot read: ").to_string(),
        })
    };
    let bytes = fetch_one(&loc.store, &loc.path).await.map_err(read_err)?;
    // A file the reader cannot make sense of is left to ONNX Runtime to refuse, by name.
    let facts = proto::read(&bytes).unwrap_or_else(|e| {
        tracing::debug!("model {}: {e}", loc.display);
        proto::ProtoFacts::default()
    });
    let external = facts.external_files.clone();
    if external.is_empty() {
        return Ok(LoadedModel { display, bytes, facts, file: None, _downloaded: None });
    }
    if let Some(bad) = external.iter().find(|l| !proto::safe_location(l)) {
        return Err(PrepareError::Model(ModelError::Load {
            model: display,
            reason: format!(
                "its external weights are at {:?}, outside the model's folder; keep them beside the model",
                crate::text::excerpt(bad)
            ),
        }));
    }
    if let Some(local) = &loc.local {
        return Ok(LoadedModel { display, bytes, facts, file: Some(local.clone()), _downloaded: None });
    }
    let dir = tempfile::Builder::new().prefix("batchscore-model-").tempdir().map_err(|e| read_err(e.to_string()))?;
    let name = loc.path.filename().unwrap_or("model.onnx").to_string();
    let file = dir.path().join(&name);
    std::fs::write(&file, &bytes).map_err(|e| read_err(format!("cannot write a local copy: {e}")))?;
    let folder: Vec<_> = loc.path.parts().collect();
    let folder = object_store::path::Path::from_iter(folder[..folder.len().saturating_sub(1)].iter().cloned());
    for rel in &external {
        let mut path = folder.clone();
        for part in rel.split('/').filter(|p| !p.is_empty() && *p != ".") {
            path = path.join(part);
        }
        let to = dir.path().join(rel);
        download(loc, &path, &to)
            .await
            .map_err(|e| read_err(format!("its external weights {rel:?} (beside the model) cannot be read: {e}")))?;
    }
    tracing::info!("model {}: downloaded with {} external weight file(s)", loc.display, external.len());
    Ok(LoadedModel { display, bytes, facts, file: Some(file), _downloaded: Some(dir) })
}

/// Streams one object into a local file.
async fn download(loc: &Location, from: &object_store::path::Path, to: &std::path::Path) -> Result<(), String> {
    use std::io::Write;
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
    }
    let got = crate::storage::with_retries(&format!("GET {from}"), |_| loc.store.get(from))
        .await
        .map_err(|e| e.to_string())?;
    let mut stream = got.into_stream();
    let mut f = std::fs::File::create(to).map_err(|e| e.to_string())?;
    while let Some(chunk) = stream.next().await {
        f.write_all(&chunk.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The type each pass-through column gets in a Parquet output, over every file of the job:
/// the type asked for, else the types the files store, unified ([`crate::engine::collect::unify`]).
/// Parquet footers are read for it (those a split plan read are reused).
async fn pass_types(input: &Location, plan: &Plan, feeder: &Feeder) -> Vec<Option<DataType>> {
    let mut footers: Vec<Option<arrow::datatypes::SchemaRef>> = vec![None; plan.files.len()];
    for it in &plan.items {
        if let Part::RowGroups { footer, .. } = &it.part {
            footers[it.file] = Some(footer.schema().clone());
        }
    }
    let wanted: Vec<usize> =
        (0..plan.files.len()).filter(|i| plan.files[*i].kind == FileKind::Parquet && footers[*i].is_none()).collect();
    let read = futures::stream::iter(wanted.into_iter().map(|i| {
        let f = &plan.files[i];
        let store = input.store.clone();
        async move { (i, crate::engine::split::read_footer(&store, &f.path, f.size).await) }
    }))
    .buffered(16)
    .collect::<Vec<_>>()
    .await;
    for (i, got) in read {
        // A file whose footer cannot be read fails when it is decoded; it types nothing.
        footers[i] = got.ok().map(|m| m.schema().clone());
    }
    feeder
        .passthrough()
        .iter()
        .map(|p| {
            if let Some(kind) = p.kind {
                return Some(kind.arrow());
            }
            let mut types = plan.files.iter().zip(&footers).filter_map(|(f, footer)| match f.kind {
                FileKind::Parquet => footer.as_ref()?.field_with_name(&p.name).ok().map(|x| x.data_type().clone()),
                _ => Some(DataType::Utf8),
            });
            let first = types.next()?;
            Some(types.fold(first, |a, b| crate::engine::collect::unify(&a, &b)))
        })
        .collect()
}
