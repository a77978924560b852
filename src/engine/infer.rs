//! Inference: ONNX Runtime sessions and model calls.
//!
//! Each worker owns its own [`Session`] (`run` takes `&mut self`; a shared session behind a
//! mutex serialises the workers), built from the same model bytes with `intra_threads` threads
//! so that workers × threads ≈ cores. [`ModelRunner::run_rows`] takes the decoded rows of
//! several files, packs them into calls of up to `batch_size` rows (only rows of equal shape
//! share a call), pads the last call of a model with a fixed batch dimension, and returns one
//! Arrow column per model output with exactly one value per row.
//!
//! Timeouts: every call of an attempt runs with that attempt's [`RunOptions`]; the [`Watchdog`]
//! thread calls `terminate()` on it when the attempt's deadline passes, which stops the call in
//! ONNX Runtime between two nodes. The session stays usable for the next attempt.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, BooleanArray, ListArray, PrimitiveArray, StringArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::Field;
use ort::session::{RunOptions, Session, SessionInputValue};
use ort::value::{DynMapValueType, DynValue, TensorRef};

use crate::engine::collect::JsonNumber;
use crate::engine::model::{Buffer, ElemType, ModelInfo, OutputSpec, column_values};
use crate::engine::preprocess::DecodedFile;
use crate::engine::settings::{Device, GraphOptimization};

/// Why a model call failed. Retried by the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    #[error("timed out after {seconds:.1} s (retry_settings.timeout); the model call was stopped")]
    Timeout { seconds: f64 },
    #[error("the job was cancelled")]
    Cancelled,
    #[error("ONNX Runtime failed: {0}")]
    Ort(String),
    #[error("model output {output:?}: {what}")]
    Output { output: String, what: String },
}

/// Where sessions load a model from.
#[derive(Debug, Clone)]
pub enum ModelSource<'a> {
    /// The model's bytes: a model whose weights are all inside it.
    Bytes(&'a [u8]),
    /// A local file, with its external weights (if any) in the files beside it that it names:
    /// ONNX Runtime finds them relative to the model's folder, whatever the working directory.
    File(&'a std::path::Path),
}

/// Builds a CPU session for one worker from a model's bytes.
pub fn build_session(
    env: &ort::environment::Environment,
    model: &[u8],
    intra_threads: usize,
) -> Result<Session, String> {
    build_session_on(env, ModelSource::Bytes(model), intra_threads, Device::Cpu, GraphOptimization::All)
}

/// Builds a session for one worker on `device`. A CUDA device must register: ONNX Runtime
/// would otherwise fall back to the CPU without a word, and a job meant for a GPU would crawl.
pub fn build_session_on(
    env: &ort::environment::Environment,
    model: ModelSource,
    intra_threads: usize,
    device: Device,
    graph: GraphOptimization,
) -> Result<Session, String> {
    // Builder errors carry the builder and are not Send: turn them into text right here.
    fn inner(
        env: &ort::environment::Environment,
        model: ModelSource,
        intra: usize,
        device: Device,
        graph: GraphOptimization,
    ) -> ort::Result<Session> {
        use ort::session::builder::GraphOptimizationLevel as Level;
        let mut b = Session::builder(env)?
            .with_intra_threads(intra)
            .map_err(ort::Error::<()>::from)?
            .with_inter_threads(1)
            .map_err(ort::Error::<()>::from)?;
        let level = match graph {
            GraphOptimization::DisableAll => Some(Level::Disable),
            GraphOptimization::Basic => Some(Level::Level1),
            GraphOptimization::Extended => Some(Level::Level2),
            GraphOptimization::All => None,
        };
        if let Some(level) = level {
            b = b.with_optimization_level(level).map_err(ort::Error::<()>::from)?;
        }
        if let Device::Cuda(n) = device {
            let cuda = ort::ep::CUDA::default().with_device_id(n as i32).build().error_on_failure();
            b = b.with_execution_providers([cuda]).map_err(ort::Error::<()>::from)?;
        }
        match model {
            ModelSource::Bytes(b2) => b.commit_from_memory(b2),
            ModelSource::File(p) => b.commit_from_file(p),
        }
    }
    inner(env, model, intra_threads, device, graph).map_err(|e| match device {
        Device::Cpu => e.to_string(),
        Device::Cuda(_) => format!(
            "--device {device}: ONNX Runtime's CUDA execution provider could not start ({e}). It needs an NVIDIA \
             GPU at that index, CUDA 13 and cuDNN 9 libraries, and the onnxruntime-gpu build of ONNX Runtime \
             (libonnxruntime.so with libonnxruntime_providers_cuda.so beside it; point ORT_DYLIB_PATH at it). \
             Use --device cpu to score on the CPU"
        ),
    })
}

/// One worker's session and what it needs to run packed batches.
pub struct ModelRunner {
    session: Session,
    info: Arc<ModelInfo>,
    batch_size: usize,
    calls: u64,
}

/// Seconds spent per stage, summed over calls.
#[derive(Debug, Default, Clone, Copy)]
pub struct InferTimings {
    pub infer: f64,
}

impl ModelRunner {
    pub fn new(session: Session, info: Arc<ModelInfo>, batch_size: usize) -> ModelRunner {
        ModelRunner { session, info, batch_size, calls: 0 }
    }

    /// Model calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Runs every row of `files` (in order) and returns one column per output, one value per row.
    pub fn run_rows(
        &mut self,
        files: &[&DecodedFile],
        attempt: &Attempt,
        timings: &mut InferTimings,
    ) -> Result<Vec<ArrayRef>, InferError> {
        let total: usize = files.iter().map(|f| f.rows).sum();
        let mut pieces: Vec<Vec<ArrayRef>> = vec![Vec::new(); self.info.outputs.len()];
        // Walk the rows in order, cutting calls at batch_size and wherever the row shape changes.
        let mut cursor: Vec<(usize, usize)> = Vec::new(); // (file index, row) of the current call
        let mut shapes: Option<&Vec<Vec<i64>>> = None;
        for (fi, f) in files.iter().enumerate() {
            for r in 0..f.rows {
                if cursor.len() == self.batch_size || shapes.is_some_and(|s| s != &f.row_shapes) {
                    self.call(files, &cursor, shapes.expect("set with cursor"), attempt, &mut pieces, timings)?;
                    cursor.clear();
                }
                shapes = Some(&f.row_shapes);
                cursor.push((fi, r));
            }
        }
        if !cursor.is_empty() {
            self.call(files, &cursor, shapes.expect("set with cursor"), attempt, &mut pieces, timings)?;
        }
        let mut out = Vec::with_capacity(pieces.len());
        for (spec, parts) in self.info.outputs.iter().zip(pieces) {
            let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
            out.push(if refs.is_empty() {
                arrow::array::new_empty_array(&output_type(spec))
            } else {
                arrow::compute::concat(&refs)
                    .map_err(|e| InferError::Output { output: spec.name().to_string(), what: e.to_string() })?
            });
        }
        debug_assert!(out.iter().all(|a| a.len() == total));
        Ok(out)
    }

    fn call(
        &mut self,
        files: &[&DecodedFile],
        rows: &[(usize, usize)],
        row_shapes: &[Vec<i64>],
        attempt: &Attempt,
        pieces: &mut [Vec<ArrayRef>],
        timings: &mut InferTimings,
    ) -> Result<(), InferError> {
        let n = rows.len();
        let padded = self.info.fixed_batch.unwrap_or(n).max(n);
        let n_inputs = row_shapes.len();
        // A call that is one run of one file's rows (no padding) reads that file's buffers in
        // place; otherwise the rows are gathered into one contiguous buffer per input.
        let (f0, r0) = rows[0];
        let in_place = padded == n && rows[n - 1] == (f0, r0 + n - 1);
        let mut feeds: Vec<(Cow<'_, Buffer>, Range<usize>)> = Vec::with_capacity(n_inputs);
        for (i, row_shape) in row_shapes.iter().enumerate() {
            let row_len: usize = row_shape.iter().product::<i64>() as usize;
            if in_place {
                feeds.push((Cow::Borrowed(&files[f0].inputs[i]), r0 * row_len..(r0 + n) * row_len));
                continue;
            }
            let first = &files[f0].inputs[i];
            let mut buf = empty_like(first, padded * row_len);
            let mut k = 0;
            while k < n {
                // Extend by runs of consecutive rows of one file.
                let (fi, r0) = rows[k];
                let mut len = 1;
                while k + len < n && rows[k + len] == (fi, r0 + len) {
                    len += 1;
                }
                buf.extend_from(&files[fi].inputs[i], r0 * row_len..(r0 + len) * row_len);
                k += len;
            }
            // Pad to the model's fixed batch by repeating the last row; padded rows are dropped.
            if padded > n {
                let mut last = empty_like(&buf, row_len);
                last.extend_from(&buf, buf.len() - row_len..buf.len());
                for _ in n..padded {
                    buf.extend_from(&last, 0..row_len);
                }
            }
            let len = buf.len();
            feeds.push((Cow::Owned(buf), 0..len));
        }
        if attempt.expired() {
            return Err(attempt.expired_error());
        }
        let started = Instant::now();
        let mut values: Vec<(String, SessionInputValue<'_>)> = Vec::with_capacity(n_inputs);
        for (i, ((buf, range), row_shape)) in feeds.iter().zip(row_shapes).enumerate() {
            let mut shape: Vec<i64> = Vec::with_capacity(1 + row_shape.len());
            shape.push(padded as i64);
            shape.extend_from_slice(row_shape);
            let range = range.clone();
            let name = self.info.inputs[i].name.clone();
            let value: SessionInputValue<'_> = match buf.as_ref() {
                Buffer::F32(v) => TensorRef::from_array_view((shape, &v[range])).map(Into::into),
                Buffer::F64(v) => TensorRef::from_array_view((shape, &v[range])).map(Into::into),
                Buffer::I64(v) => TensorRef::from_array_view((shape, &v[range])).map(Into::into),
                Buffer::I32(v) => TensorRef::from_array_view((shape, &v[range])).map(Into::into),
                Buffer::U8(v) => TensorRef::from_array_view((shape, &v[range])).map(Into::into),
                Buffer::Bool(v) => TensorRef::from_array_view((shape, &v[range])).map(Into::into),
                Buffer::Str(v) => ort::value::Tensor::from_string_array((shape, &v[range])).map(Into::into),
                Buffer::Column(c) => column_tensor(c, shape, range),
            }
            .map_err(|e| InferError::Ort(e.to_string()))?;
            values.push((name, value));
        }
        self.calls += 1;
        let result = self.session.run_with_options(values, &attempt.run_options);
        let outputs = match result {
            Ok(o) => o,
            Err(e) => {
                timings.infer += started.elapsed().as_secs_f64();
                return Err(if attempt.cancelled() {
                    InferError::Cancelled
                } else if attempt.expired() {
                    attempt.expired_error()
                } else {
                    InferError::Ort(e.to_string())
                });
            }
        };
        for (o, spec) in self.info.outputs.iter().enumerate() {
            let value = outputs.get(spec.name()).ok_or_else(|| InferError::Output {
                output: spec.name().to_string(),
                what: "missing from the model's outputs".into(),
            })?;
            let array = to_arrow(spec, value, padded)?;
            pieces[o].push(array.slice(0, n));
        }
        timings.infer += started.elapsed().as_secs_f64();
        Ok(())
    }
}

/// A tensor over the values of an Arrow column, in place.
fn column_tensor<'a>(c: &'a ArrayRef, shape: Vec<i64>, range: Range<usize>) -> ort::Result<SessionInputValue<'a>> {
    use arrow::datatypes::{DataType, Float32Type, Float64Type, Int32Type, Int64Type, UInt8Type};
    match c.data_type() {
        DataType::Float32 => {
            TensorRef::from_array_view((shape, &column_values::<Float32Type>(c)[range])).map(Into::into)
        }
        DataType::Float64 => {
            TensorRef::from_array_view((shape, &column_values::<Float64Type>(c)[range])).map(Into::into)
        }
        DataType::Int64 => TensorRef::from_array_view((shape, &column_values::<Int64Type>(c)[range])).map(Into::into),
        DataType::Int32 => TensorRef::from_array_view((shape, &column_values::<Int32Type>(c)[range])).map(Into::into),
        DataType::UInt8 => TensorRef::from_array_view((shape, &column_values::<UInt8Type>(c)[range])).map(Into::into),
        other => unreachable!("Buffer::from_column takes primitive numeric columns only, not {other}"),
    }
}

fn empty_like(b: &Buffer, capacity: usize) -> Buffer {
    Buffer::new(b.dtype(), capacity)
}

/// How deep an output's rows nest: 0 for one value per row (`[N]`, `[N,1]`, `[N,1,1]`), 1 for a
/// list per row (`[N,K]`, or a shape the model does not declare: each row flattened), 2 for a
/// list of lists (`[N,A,B]`), and so on: each dimension after the batch is one level.
pub fn output_depth(t: &crate::engine::model::TensorSpec) -> usize {
    if t.shape.is_empty() {
        return 1;
    }
    if t.shape[1..].iter().all(|d| *d == 1) { 0 } else { t.shape.len() - 1 }
}

/// The Arrow type of the column an output becomes.
pub fn output_type(spec: &OutputSpec) -> arrow::datatypes::DataType {
    use arrow::datatypes::DataType;
    match spec {
        OutputSpec::SequenceOfMaps { .. } => DataType::Utf8,
        OutputSpec::Tensor(t) => {
            let mut ty = t.dtype.arrow();
            for _ in 0..output_depth(t) {
                ty = DataType::List(Arc::new(Field::new("item", ty, true)));
            }
            ty
        }
    }
}

/// Converts one output value of a call with `n` rows into an Arrow column of `n` values.
fn to_arrow(spec: &OutputSpec, value: &DynValue, n: usize) -> Result<ArrayRef, InferError> {
    let err = |what: String| InferError::Output { output: spec.name().to_string(), what };
    match spec {
        OutputSpec::SequenceOfMaps { key, value: vt, .. } => {
            let maps = value
                .try_extract_sequence::<DynMapValueType>()
                .map_err(|e| err(format!("cannot read the sequence of maps: {e}")))?;
            if maps.len() != n {
                return Err(err(format!("has {} maps for {n} rows", maps.len())));
            }
            let mut out = Vec::with_capacity(n);
            for m in &maps {
                out.push(map_to_json(m, *key, *vt).map_err(|e| err(format!("cannot read a map: {e}")))?);
            }
            Ok(Arc::new(StringArray::from(out)))
        }
        OutputSpec::Tensor(t) => {
            macro_rules! prim {
                ($rust:ty, $arrow:ty) => {{
                    let (shape, data) = value.try_extract_tensor::<$rust>().map_err(|e| err(e.to_string()))?;
                    let dims = row_dims(t, shape, data.len(), n).map_err(err)?;
                    nest(Arc::new(PrimitiveArray::<$arrow>::from_iter_values(data.iter().copied())), &dims, n)
                }};
            }
            Ok(match t.dtype {
                ElemType::F32 => prim!(f32, arrow::datatypes::Float32Type),
                ElemType::F64 => prim!(f64, arrow::datatypes::Float64Type),
                ElemType::I64 => prim!(i64, arrow::datatypes::Int64Type),
                ElemType::I32 => prim!(i32, arrow::datatypes::Int32Type),
                ElemType::U8 => prim!(u8, arrow::datatypes::UInt8Type),
                ElemType::Bool => {
                    let (shape, data) = value.try_extract_tensor::<bool>().map_err(|e| err(e.to_string()))?;
                    let dims = row_dims(t, shape, data.len(), n).map_err(err)?;
                    nest(Arc::new(BooleanArray::from(data.to_vec())), &dims, n)
                }
                ElemType::Str => {
                    let (shape, data) = value.try_extract_strings().map_err(|e| err(e.to_string()))?;
                    let dims = row_dims(t, shape, data.len(), n).map_err(err)?;
                    nest(Arc::new(StringArray::from(data)), &dims, n)
                }
            })
        }
    }
}

/// The list lengths of each nesting level of one row of an output of a call with `n` rows,
/// checked against the declaration: the batch first, the declared rank, the declared fixed
/// dimensions. Dynamic dimensions (a detection map's size) take this call's values.
fn row_dims(
    t: &crate::engine::model::TensorSpec,
    shape: &ort::value::Shape,
    len: usize,
    n: usize,
) -> Result<Vec<usize>, String> {
    let got: Vec<i64> = shape.iter().copied().collect();
    let disagree = || format!("has shape {got:?}, which disagrees with its declared shape {:?}", t.shape);
    if got.first().map(|d| *d as usize) != Some(n) || got.iter().any(|d| *d < 0) {
        return Err(format!("has shape {got:?}, whose first dimension is not the batch of {n} rows"));
    }
    let dims: Vec<usize> = got[1..].iter().map(|d| *d as usize).collect();
    if dims.iter().try_fold(n, |acc, d| acc.checked_mul(*d)) != Some(len) {
        return Err(format!("has shape {got:?} but {len} values"));
    }
    if t.shape.is_empty() {
        // Not declared: each row flattened into one list.
        return Ok(vec![dims.iter().product()]);
    }
    if got.len() != t.shape.len() || t.shape[1..].iter().zip(&dims).any(|(want, g)| *want >= 0 && *want as usize != *g)
    {
        return Err(disagree());
    }
    Ok(if output_depth(t) == 0 { Vec::new() } else { dims })
}

/// Flat row-major values of `n` rows into nested lists, one level per dimension in `dims`
/// (none: one value per row).
fn nest(values: ArrayRef, dims: &[usize], n: usize) -> ArrayRef {
    // How many lists each level holds: n, n*d1, n*d1*d2, ...
    let mut counts = vec![n];
    for d in &dims[..dims.len().saturating_sub(1)] {
        counts.push(counts.last().expect("starts with n") * d);
    }
    let mut array = values;
    for (d, count) in dims.iter().zip(counts).rev() {
        array = Arc::new(ListArray::new(
            Arc::new(Field::new("item", array.data_type().clone(), true)),
            OffsetBuffer::from_lengths(std::iter::repeat_n(*d, count)),
            array,
            None,
        ));
    }
    array
}

/// A JSON object of one map, keys in the map's order, floats at full precision.
fn map_to_json(m: &ort::value::Value<DynMapValueType>, key: ElemType, value: ElemType) -> ort::Result<String> {
    let mut s = String::from("{");
    macro_rules! pairs {
        ($k:ty, $v:ty) => {{
            let kv = m.try_extract_key_values::<$k, $v>()?;
            for (i, (k, v)) in kv.iter().enumerate() {
                if i > 0 {
                    s.push(',');
                }
                s.push_str(&serde_json::to_string(&k.to_string()).expect("string"));
                s.push(':');
                s.push_str(&v.json());
            }
        }};
    }
    match (key, value) {
        (ElemType::I64, ElemType::F32) => pairs!(i64, f32),
        (ElemType::I64, ElemType::F64) => pairs!(i64, f64),
        (ElemType::Str, ElemType::F32) => pairs!(String, f32),
        (ElemType::Str, ElemType::F64) => pairs!(String, f64),
        (ElemType::I64, ElemType::I64) => {
            let kv = m.try_extract_key_values::<i64, i64>()?;
            s.push_str(&kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect::<Vec<_>>().join(","));
        }
        (ElemType::Str, ElemType::I64) => {
            let kv = m.try_extract_key_values::<String, i64>()?;
            let parts: Vec<String> =
                kv.iter().map(|(k, v)| format!("{}:{v}", serde_json::to_string(k).expect("string"))).collect();
            s.push_str(&parts.join(","));
        }
        (k, v) => {
            return Err(ort::Error::new(format!("maps from {k:?} to {v:?} are not supported")));
        }
    }
    s.push('}');
    Ok(s)
}

/// One attempt at a mini-batch: its deadline and the run options the watchdog can terminate.
pub struct Attempt {
    pub run_options: Arc<RunOptions>,
    deadline: Instant,
    timeout: f64,
    cancel: Arc<std::sync::atomic::AtomicBool>,
    watchdog: Option<(Arc<Watchdog>, u64)>,
}

impl Attempt {
    pub fn expired(&self) -> bool {
        Instant::now() >= self.deadline
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn expired_error(&self) -> InferError {
        if self.cancelled() { InferError::Cancelled } else { InferError::Timeout { seconds: self.timeout } }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Some((w, id)) = &self.watchdog {
            w.remove(*id);
        }
    }
}

/// Terminates model calls whose attempt outlived its deadline, or all of them on cancel.
pub struct Watchdog {
    state: Mutex<WatchState>,
    wake: Condvar,
}

struct WatchState {
    next_id: u64,
    entries: Vec<(u64, Instant, Arc<RunOptions>)>,
    stopped: bool,
}

impl Watchdog {
    /// Starts the watchdog thread.
    pub fn start() -> Arc<Watchdog> {
        let w = Arc::new(Watchdog {
            state: Mutex::new(WatchState { next_id: 0, entries: Vec::new(), stopped: false }),
            wake: Condvar::new(),
        });
        let w2 = w.clone();
        std::thread::Builder::new()
            .name("batchscore-watchdog".into())
            .spawn(move || w2.watch())
            .expect("spawn watchdog thread");
        w
    }

    /// A new attempt with a deadline `timeout` seconds from now.
    pub fn attempt(
        self: &Arc<Self>,
        timeout: f64,
        cancel: Arc<std::sync::atomic::AtomicBool>,
    ) -> Result<Attempt, InferError> {
        let run_options = Arc::new(RunOptions::new().map_err(|e| InferError::Ort(e.to_string()))?);
        let deadline = Instant::now() + Duration::from_secs_f64(timeout);
        let mut st = self.state.lock().expect("watchdog lock");
        let id = st.next_id;
        st.next_id += 1;
        st.entries.push((id, deadline, run_options.clone()));
        drop(st);
        self.wake.notify_all();
        Ok(Attempt { run_options, deadline, timeout, cancel, watchdog: Some((self.clone(), id)) })
    }

    fn remove(&self, id: u64) {
        let mut st = self.state.lock().expect("watchdog lock");
        st.entries.retain(|(i, _, _)| *i != id);
    }

    /// Terminates every running call now (the job was cancelled).
    pub fn terminate_all(&self) {
        let st = self.state.lock().expect("watchdog lock");
        for (_, _, ro) in &st.entries {
            let _ = ro.terminate();
        }
    }

    /// Stops the watchdog thread.
    pub fn stop(&self) {
        self.state.lock().expect("watchdog lock").stopped = true;
        self.wake.notify_all();
    }

    fn watch(&self) {
        let mut st = self.state.lock().expect("watchdog lock");
        loop {
            if st.stopped {
                return;
            }
            let now = Instant::now();
            let mut next: Option<Instant> = None;
            st.entries.retain(|(_, deadline, ro)| {
                if *deadline <= now {
                    let _ = ro.terminate();
                    false
                } else {
                    next = Some(next.map_or(*deadline, |n: Instant| n.min(*deadline)));
                    true
                }
            });
            st = match next {
                Some(n) => self.wake.wait_timeout(st, n.saturating_duration_since(now)).expect("watchdog lock").0,
                None => self.wake.wait(st).expect("watchdog lock"),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::TensorSpec;
    use arrow::array::AsArray;

    fn spec(shape: Vec<i64>) -> TensorSpec {
        TensorSpec { name: "y".into(), dtype: ElemType::F32, shape }
    }

    #[test]
    fn outputs_are_checked_against_their_declaration() {
        let s = |d: &[i64]| ort::value::Shape::new(d.iter().copied());
        // Dynamic dimensions take this call's values; fixed ones must match.
        assert_eq!(row_dims(&spec(vec![-1, -1, 6]), &s(&[2, 5, 6]), 60, 2).unwrap(), [5, 6]);
        let e = row_dims(&spec(vec![-1, 3]), &s(&[2, 4]), 8, 2).unwrap_err();
        assert!(e.contains("[2, 4]") && e.contains("declared shape [-1, 3]"), "{e}");
        let e = row_dims(&spec(vec![-1, 3]), &s(&[2, 3, 1]), 6, 2).unwrap_err();
        assert!(e.contains("disagrees"), "{e}");
        assert!(row_dims(&spec(vec![-1, 3]), &s(&[3, 3]), 9, 2).unwrap_err().contains("batch of 2"));
        // Not declared: each row one flat list; [N, 1]: one value per row.
        assert_eq!(row_dims(&spec(vec![]), &s(&[2, 2, 2]), 8, 2).unwrap(), [4]);
        assert!(row_dims(&spec(vec![-1, 1]), &s(&[2, 1]), 2, 2).unwrap().is_empty());
        // Zero-sized dimensions (no detections) nest without dividing by zero.
        let a = nest(Arc::new(arrow::array::Float32Array::from(Vec::<f32>::new())), &[0, 6], 2);
        assert_eq!(a.len(), 2);
        assert_eq!(a.as_list::<i32>().value(0).len(), 0);
    }
}
