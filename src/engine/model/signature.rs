//! What a model file declares, for registering it: every input and output with its type and
//! shape, whatever batchscore can feed (a catalog lists models it may not score yet).

use bytes::Bytes;
use ort::value::ValueType;

use super::ModelError;
use crate::engine::infer::{ModelSource, build_session_on};
use crate::engine::settings::{Device, GraphOptimization};

/// One input or output: name, type (`float32`, `map(int64,float32)`, ...) and dimensions (a
/// number, a symbolic name, or `?`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outlet {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<String>,
}

/// Opens `model` (its bytes, or its local file when it has external weights) in ONNX Runtime
/// and reads its signature. `display` names it in errors.
pub fn read(
    bytes: &Bytes,
    file: Option<&std::path::Path>,
    display: &str,
) -> Result<(Vec<Outlet>, Vec<Outlet>), ModelError> {
    let env = crate::engine::runtime::environment()
        .map_err(|e| ModelError::Load { model: display.to_string(), reason: e.to_string() })?;
    let source = match file {
        Some(f) => ModelSource::File(f),
        None => ModelSource::Bytes(bytes),
    };
    let session = build_session_on(env, source, 1, Device::Cpu, GraphOptimization::All)
        .map_err(|reason| ModelError::Load { model: display.to_string(), reason })?;
    let outlets = |list: &[ort::value::Outlet]| list.iter().map(|o| outlet(o.name(), o.dtype())).collect();
    Ok((outlets(session.inputs()), outlets(session.outputs())))
}

fn outlet(name: &str, t: &ValueType) -> Outlet {
    let (dtype, shape) = match t {
        ValueType::Tensor { ty, shape, dimension_symbols } => {
            let dims = shape
                .iter()
                .enumerate()
                .map(|(i, d)| match (*d, dimension_symbols.get(i)) {
                    (d, _) if d >= 0 => d.to_string(),
                    (_, Some(sym)) if !sym.is_empty() => sym.clone(),
                    _ => "?".to_string(),
                })
                .collect();
            (format!("{ty:?}").to_ascii_lowercase(), dims)
        }
        other => (other.to_string(), Vec::new()),
    };
    Outlet { name: name.to_string(), dtype, shape }
}
