//! Finding and loading the ONNX Runtime library, once per process.
//!
//! batchscore links ONNX Runtime dynamically (`ort`'s `load-dynamic`): the library comes from
//! PyPI's `onnxruntime` wheel, which ships only a versioned file
//! (`onnxruntime/capi/libonnxruntime.so.1.31.1`). We look for it in this order:
//!
//! 1. `ORT_DYLIB_PATH` (a file; a folder is searched for `libonnxruntime.so*`);
//! 2. the project's own virtual environment, `.venv/`, in the current directory or a folder
//!    above it, or in a folder above the executable (so `target/release/batchscore` finds the
//!    repo's `.venv`, and so does a build under a `CARGO_TARGET_DIR` outside the repository run
//!    from inside it);
//! 3. the site-packages of `python3` on `PATH` are *not* probed: starting Python is slow and
//!    surprising; the error message says how to point at it instead.
//!
//! When nothing is found the error says exactly how to install it. We never let `ort` dlopen
//! a bare `libonnxruntime.so` on its own: that panics when the file is missing.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The ONNX Runtime version batchscore is built and tested against.
pub const ORT_VERSION: &str = "1.31.1";

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(
        "ONNX Runtime library not found (looked in: {searched}).\n  Install it with `make setup` (or \
         `python3 -m pip install onnxruntime=={ORT_VERSION}`) and point ORT_DYLIB_PATH at the library file, e.g.\n  \
         export ORT_DYLIB_PATH=$(python3 -c 'import onnxruntime, pathlib; \
         print(next((pathlib.Path(onnxruntime.__file__).parent / \"capi\").glob(\"libonnxruntime.so*\")))')"
    )]
    NotFound { searched: String },
    #[error(
        "cannot load ONNX Runtime from {path}: {reason}.\n  Point ORT_DYLIB_PATH at libonnxruntime.so.{ORT_VERSION} from \
         `pip install onnxruntime=={ORT_VERSION}` (run `make setup`)"
    )]
    Load { path: PathBuf, reason: String },
    #[error("cannot create the ONNX Runtime environment: {0}")]
    Environment(String),
}

static ENVIRONMENT: OnceLock<Result<(ort::environment::Environment, PathBuf), String>> = OnceLock::new();

/// The process-wide ONNX Runtime environment, loading the library on first use.
pub fn environment() -> Result<&'static ort::environment::Environment, RuntimeError> {
    let path = locate_library()?;
    let loaded = ENVIRONMENT.get_or_init(|| {
        // Do not build an ort::Error when loading fails: that calls into the missing library.
        let builder = ort::init_from(&path).map_err(|e| format!("load:{e}"))?;
        let env = builder.with_name("batchscore").build().map_err(|e| format!("env:{e}"))?;
        Ok((env, path.clone()))
    });
    match loaded {
        Ok((env, _)) => Ok(env),
        Err(e) => match e.split_once(':') {
            Some(("load", reason)) => Err(RuntimeError::Load { path, reason: reason.to_string() }),
            _ => Err(RuntimeError::Environment(e.clone())),
        },
    }
}

/// The library file that was (or would be) loaded.
pub fn library_path() -> Option<PathBuf> {
    ENVIRONMENT.get().and_then(|r| r.as_ref().ok()).map(|(_, p)| p.clone())
}

/// The version of the loaded ONNX Runtime, read from the library file name.
pub fn loaded_version() -> Option<String> {
    let path = library_path()?;
    let name = path.file_name()?.to_string_lossy().to_string();
    name.strip_prefix("libonnxruntime.so.").map(str::to_string).or(Some(name))
}

static PREFERRED: OnceLock<PathBuf> = OnceLock::new();

/// Makes `path` the library to load, before ORT_DYLIB_PATH and the search (an environment's
/// `onnxruntime_library`). The library is loaded once per process: a later call, or one after
/// it was loaded, has no effect and says so in the log.
pub fn prefer_library(path: &std::path::Path) {
    if PREFERRED.set(path.to_path_buf()).is_err() || ENVIRONMENT.get().is_some() {
        tracing::warn!("ONNX Runtime is loaded once per process; {} is not used", path.display());
    }
}

/// Where ONNX Runtime is, per the order in the module docs.
pub fn locate_library() -> Result<PathBuf, RuntimeError> {
    let mut searched = Vec::new();
    if let Some(p) = PREFERRED.get() {
        if p.is_file() {
            return Ok(p.clone());
        }
        searched.push(format!("the environment's onnxruntime_library {}", p.display()));
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        if p.is_file() {
            return Ok(p);
        }
        if p.is_dir()
            && let Some(f) = find_in_dir(&p)
        {
            return Ok(f);
        }
        return Err(RuntimeError::Load { path: p, reason: "ORT_DYLIB_PATH names no such file".into() });
    }
    searched.push("ORT_DYLIB_PATH (unset)".to_string());
    let mut roots: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        roots.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Ok(exe) = std::env::current_exe() {
        roots.extend(exe.ancestors().skip(1).map(Path::to_path_buf));
    }
    roots.dedup();
    for root in roots {
        let venv = root.join(".venv");
        if let Some(found) = find_in_venv(&venv) {
            return Ok(found);
        }
        searched.push(venv.display().to_string());
    }
    Err(RuntimeError::NotFound { searched: searched.join(", ") })
}

fn find_in_venv(venv: &Path) -> Option<PathBuf> {
    let lib = venv.join("lib");
    let entries = std::fs::read_dir(&lib).ok()?;
    let mut pythons: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    pythons.sort();
    pythons.iter().rev().find_map(|py| find_in_dir(&py.join("site-packages/onnxruntime/capi")))
}

fn find_in_dir(dir: &Path) -> Option<PathBuf> {
    let mut libs: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("libonnxruntime.so")
                    || n == "onnxruntime.dll"
                    || n.starts_with("libonnxruntime.") && n.ends_with(".dylib")
            })
        })
        .collect();
    libs.sort();
    libs.pop()
}
