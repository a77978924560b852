//! What a model takes and gives: its inputs and outputs as ONNX Runtime reports them, in the
//! few shapes batch scoring supports, and the typed row buffers that feed it.
//!
//! The first dimension of every input and output is the batch. A model whose batch dimension
//! is fixed (many exported models have batch 1) is fed in calls of exactly that size, the last
//! one padded; [`ModelInfo::fixed_batch`] says so.

pub mod proto;
pub mod signature;

use ort::session::Session;
use ort::value::{TensorElementType, ValueType};

/// The element types batchscore feeds and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ElemType {
    F32,
    F64,
    I64,
    I32,
    U8,
    Bool,
    Str,
}

impl ElemType {
    /// The Arrow type of one value.
    pub fn arrow(self) -> arrow::datatypes::DataType {
        use arrow::datatypes::DataType;
        match self {
            ElemType::F32 => DataType::Float32,
            ElemType::F64 => DataType::Float64,
            ElemType::I64 => DataType::Int64,
            ElemType::I32 => DataType::Int32,
            ElemType::U8 => DataType::UInt8,
            ElemType::Bool => DataType::Boolean,
            ElemType::Str => DataType::Utf8,
        }
    }

    pub fn from_ort(t: TensorElementType) -> Option<ElemType> {
        Some(match t {
            TensorElementType::Float32 => ElemType::F32,
            TensorElementType::Float64 => ElemType::F64,
            TensorElementType::Int64 => ElemType::I64,
            TensorElementType::Int32 => ElemType::I32,
            TensorElementType::Uint8 => ElemType::U8,
            TensorElementType::Bool => ElemType::Bool,
            TensorElementType::String => ElemType::Str,
            _ => return None,
        })
    }
}

/// A tensor input or output: name, element type and shape (-1 for a dynamic dimension).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TensorSpec {
    pub name: String,
    pub dtype: ElemType,
    pub shape: Vec<i64>,
}

impl TensorSpec {
    /// Elements per row (all dimensions after the batch), when they are all fixed.
    pub fn row_len(&self) -> Option<usize> {
        self.shape[1..].iter().try_fold(1usize, |acc, d| (*d >= 0).then(|| acc * *d as usize))
    }
}

/// One model output, in a form batchscore can turn into a column.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OutputSpec {
    /// A tensor whose first dimension is the batch.
    Tensor(TensorSpec),
    /// A sequence of maps, one per row (scikit-learn's ZipMap): written as JSON objects.
    SequenceOfMaps { name: String, key: ElemType, value: ElemType },
}

impl OutputSpec {
    pub fn name(&self) -> &str {
        match self {
            OutputSpec::Tensor(t) => &t.name,
            OutputSpec::SequenceOfMaps { name, .. } => name,
        }
    }
}

/// The inputs and outputs of a model.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<OutputSpec>,
    /// The batch size every call must have, when the model fixes it.
    pub fixed_batch: Option<usize>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {model}: cannot read it: {reason}. Check --model")]
    Read { model: String, reason: String },
    #[error("model {model}: ONNX Runtime cannot load it: {reason}")]
    Load { model: String, reason: String },
    #[error("model {model}: {what}")]
    Unsupported { model: String, what: String },
}

/// The largest fixed batch dimension fed (the same bound as `--batch-size`).
pub const MAX_FIXED_BATCH: usize = crate::engine::settings::limits::MAX_BATCH_SIZE;
/// The most values one row of an input may take: 256M (1 GiB of float32).
pub const MAX_ROW_VALUES: u64 = 1 << 28;

impl ModelInfo {
    /// Reads inputs and outputs from a session; `model` names the model in errors; `facts`
    /// are what the model file declares (see [`proto`]).
    pub fn from_session(session: &Session, model: &str, facts: &proto::ProtoFacts) -> Result<ModelInfo, ModelError> {
        let unsupported = |what: String| ModelError::Unsupported { model: model.to_string(), what };
        let mut inputs = Vec::new();
        for outlet in session.inputs() {
            match outlet.dtype() {
                ValueType::Tensor { ty, shape, .. } => {
                    let dtype = ElemType::from_ort(*ty).ok_or_else(|| {
                        unsupported(format!(
                            "input {:?} has element type {ty}, which batchscore cannot feed",
                            outlet.name()
                        ))
                    })?;
                    let shape: Vec<i64> = shape.iter().copied().collect();
                    if shape.is_empty() {
                        return Err(unsupported(format!(
                            "input {:?} is a scalar; batchscore feeds inputs whose first dimension is the batch",
                            outlet.name()
                        )));
                    }
                    let spec = TensorSpec { name: outlet.name().to_string(), dtype, shape };
                    check_input_size(&spec).map_err(unsupported)?;
                    inputs.push(spec);
                }
                other => {
                    return Err(unsupported(format!(
                        "input {:?} is a {other}, not a tensor; batchscore feeds tensor inputs",
                        outlet.name()
                    )));
                }
            }
        }
        let mut outputs = Vec::new();
        for outlet in session.outputs() {
            let name = outlet.name().to_string();
            let spec = match outlet.dtype() {
                ValueType::Tensor { ty, shape, .. } => OutputSpec::Tensor(TensorSpec {
                    dtype: ElemType::from_ort(*ty).ok_or_else(|| {
                        unsupported(format!("output {name:?} has element type {ty}, which batchscore cannot write"))
                    })?,
                    shape: shape.iter().copied().collect(),
                    name,
                }),
                ValueType::Sequence(inner) => match inner.as_ref() {
                    ValueType::Map { key, value } => OutputSpec::SequenceOfMaps {
                        key: ElemType::from_ort(*key)
                            .ok_or_else(|| unsupported(format!("output {name:?} has map keys of type {key}")))?,
                        value: ElemType::from_ort(*value)
                            .ok_or_else(|| unsupported(format!("output {name:?} has map values of type {value}")))?,
                        name,
                    },
                    other => {
                        return Err(unsupported(format!(
                            "output {name:?} is a sequence of {other}; batchscore writes sequences of maps"
                        )));
                    }
                },
                other => {
                    return Err(unsupported(format!("output {name:?} is a {other}, which batchscore cannot write")));
                }
            };
            outputs.push(spec);
        }
        let batch_dims: Vec<i64> = inputs.iter().map(|i| i.shape[0]).collect();
        let fixed_batch = match batch_dims.iter().find(|d| **d > 0) {
            Some(&d) if batch_dims.iter().all(|x| *x == d) => Some(d as usize),
            Some(_) => {
                return Err(unsupported(format!(
                    "inputs disagree on the batch dimension ({batch_dims:?}); batchscore needs one batch dimension for all inputs"
                )));
            }
            None => None,
        };
        if let Some(b) = fixed_batch.filter(|b| *b > MAX_FIXED_BATCH) {
            let i = inputs.iter().find(|i| i.shape[0] > 0).expect("a fixed batch comes from an input");
            return Err(unsupported(format!(
                "input {:?} has a fixed batch dimension of {b} (shape {:?}); batchscore feeds at most {MAX_FIXED_BATCH} \
                 rows per call. Export the model with a dynamic batch dimension",
                i.name, i.shape
            )));
        }
        for o in &mut outputs {
            declared_rank(o, facts, fixed_batch).map_err(unsupported)?;
        }
        Ok(ModelInfo { inputs, outputs, fixed_batch })
    }
}

/// Refuses an input whose rows would need absurd memory ([N, 3, 100000, 100000]).
fn check_input_size(spec: &TensorSpec) -> Result<(), String> {
    let per_row = spec.shape[1..].iter().filter(|d| **d > 0).try_fold(1u64, |acc, d| acc.checked_mul(*d as u64));
    match per_row {
        Some(n) if n <= MAX_ROW_VALUES => Ok(()),
        _ => Err(format!(
            "input {:?} has shape {:?}: one row would take more than {MAX_ROW_VALUES} values, more than batchscore \
             feeds; check the model's input shape",
            spec.name, spec.shape
        )),
    }
}

/// Settles an output's rank with what the file declares: ONNX Runtime reports a declared
/// scalar and a missing shape both as `[]`. A scalar cannot hold one value per row, unless each
/// call has exactly one row (a fixed batch of 1); a missing shape is left `[]` (unknown: each
/// row's values are written as one flat list).
fn declared_rank(o: &mut OutputSpec, facts: &proto::ProtoFacts, fixed_batch: Option<usize>) -> Result<(), String> {
    let OutputSpec::Tensor(t) = o else { return Ok(()) };
    if !t.shape.is_empty() {
        return Ok(());
    }
    let declared = facts.output_ranks.iter().find(|(n, _)| *n == t.name).and_then(|(_, r)| *r);
    match (declared, fixed_batch) {
        (Some(0), Some(1)) => {
            t.shape = vec![1];
            Ok(())
        }
        (Some(0), _) => Err(format!(
            "output {:?} is a scalar (shape []), one value for a whole call; batchscore writes outputs whose first \
             dimension is the batch, one value per row. Export the model with a batch dimension on this output",
            t.name
        )),
        _ => Ok(()),
    }
}

/// Row-major values for one model input, for some number of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Buffer {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    I32(Vec<i32>),
    U8(Vec<u8>),
    Bool(Vec<bool>),
    Str(Vec<String>),
    /// A column of the input file as Arrow decoded it, one value per row: a primitive array of
    /// the input's numeric type without nulls. Model calls read its values in place, so nothing
    /// is copied between the file's reader and the tensor.
    Column(arrow::array::ArrayRef),
}

/// The values of a primitive Arrow array (its slice, when sliced).
pub fn column_values<T: arrow::datatypes::ArrowPrimitiveType>(c: &arrow::array::ArrayRef) -> &[T::Native] {
    use arrow::array::AsArray;
    c.as_primitive::<T>().values()
}

impl Buffer {
    pub fn new(dtype: ElemType, capacity: usize) -> Buffer {
        match dtype {
            ElemType::F32 => Buffer::F32(Vec::with_capacity(capacity)),
            ElemType::F64 => Buffer::F64(Vec::with_capacity(capacity)),
            ElemType::I64 => Buffer::I64(Vec::with_capacity(capacity)),
            ElemType::I32 => Buffer::I32(Vec::with_capacity(capacity)),
            ElemType::U8 => Buffer::U8(Vec::with_capacity(capacity)),
            ElemType::Bool => Buffer::Bool(Vec::with_capacity(capacity)),
            ElemType::Str => Buffer::Str(Vec::with_capacity(capacity)),
        }
    }

    /// An Arrow column as a buffer without copying it, where its type allows: a primitive
    /// numeric array without nulls. `None` otherwise.
    pub fn from_column(c: &arrow::array::ArrayRef) -> Option<Buffer> {
        use arrow::datatypes::DataType;
        let numeric = matches!(
            c.data_type(),
            DataType::Float32 | DataType::Float64 | DataType::Int64 | DataType::Int32 | DataType::UInt8
        );
        (numeric && c.null_count() == 0).then(|| Buffer::Column(c.clone()))
    }

    pub fn dtype(&self) -> ElemType {
        use arrow::datatypes::DataType;
        match self {
            Buffer::F32(_) => ElemType::F32,
            Buffer::F64(_) => ElemType::F64,
            Buffer::I64(_) => ElemType::I64,
            Buffer::I32(_) => ElemType::I32,
            Buffer::U8(_) => ElemType::U8,
            Buffer::Bool(_) => ElemType::Bool,
            Buffer::Str(_) => ElemType::Str,
            Buffer::Column(c) => match c.data_type() {
                DataType::Float32 => ElemType::F32,
                DataType::Float64 => ElemType::F64,
                DataType::Int64 => ElemType::I64,
                DataType::Int32 => ElemType::I32,
                DataType::UInt8 => ElemType::U8,
                other => unreachable!("from_column takes primitive numeric columns only, not {other}"),
            },
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Buffer::F32(v) => v.len(),
            Buffer::F64(v) => v.len(),
            Buffer::I64(v) => v.len(),
            Buffer::I32(v) => v.len(),
            Buffer::U8(v) => v.len(),
            Buffer::Bool(v) => v.len(),
            Buffer::Str(v) => v.len(),
            Buffer::Column(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends `other[range]`; both must hold the same type.
    pub fn extend_from(&mut self, other: &Buffer, range: std::ops::Range<usize>) {
        use arrow::datatypes::{Float32Type, Float64Type, Int32Type, Int64Type, UInt8Type};
        match (self, other) {
            (Buffer::F32(a), Buffer::Column(c)) => a.extend_from_slice(&column_values::<Float32Type>(c)[range]),
            (Buffer::F64(a), Buffer::Column(c)) => a.extend_from_slice(&column_values::<Float64Type>(c)[range]),
            (Buffer::I64(a), Buffer::Column(c)) => a.extend_from_slice(&column_values::<Int64Type>(c)[range]),
            (Buffer::I32(a), Buffer::Column(c)) => a.extend_from_slice(&column_values::<Int32Type>(c)[range]),
            (Buffer::U8(a), Buffer::Column(c)) => a.extend_from_slice(&column_values::<UInt8Type>(c)[range]),
            (Buffer::F32(a), Buffer::F32(b)) => a.extend_from_slice(&b[range]),
            (Buffer::F64(a), Buffer::F64(b)) => a.extend_from_slice(&b[range]),
            (Buffer::I64(a), Buffer::I64(b)) => a.extend_from_slice(&b[range]),
            (Buffer::I32(a), Buffer::I32(b)) => a.extend_from_slice(&b[range]),
            (Buffer::U8(a), Buffer::U8(b)) => a.extend_from_slice(&b[range]),
            (Buffer::Bool(a), Buffer::Bool(b)) => a.extend_from_slice(&b[range]),
            (Buffer::Str(a), Buffer::Str(b)) => a.extend_from_slice(&b[range]),
            (a, b) => panic!("buffer types differ: {a:?} vs {b:?}"),
        }
    }
}
