//! ONNX Runtime, loaded at run time from a shared library (`load-dynamic`): the library comes
//! from the onnxruntime wheel on PyPI (CPU) or onnxruntime-gpu (CUDA), installed by
//! `scripts/setup.sh`, so nothing is downloaded when the binary is built or run.
//!
//! The library is loaded once per process; every model's session then picks its device.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::ep::ExecutionProvider;

use crate::error::{Result, ServingError};

/// Where `scripts/setup.sh` puts the library, relative to the repository root.
pub const DEFAULT_DYLIB: &str = ".tools/onnxruntime/libonnxruntime.so";

/// Which device to run judges on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    /// CUDA when the library has it and a GPU is there, else CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// The device a session actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ActiveDevice {
    Cpu,
    Cuda,
}

static ENVIRONMENT: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

/// The library to load: `explicit`, else `ORT_DYLIB_PATH`, else [`DEFAULT_DYLIB`].
pub fn dylib_path(explicit: Option<&Path>) -> PathBuf {
    explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("ORT_DYLIB_PATH").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DYLIB))
}

/// Loads ONNX Runtime (once; later calls return the same environment whatever path they name).
pub fn environment(dylib: &Path) -> Result<&'static Environment> {
    let env = ENVIRONMENT.get_or_init(|| {
        if !dylib.is_file() {
            return Err("no such file".to_string());
        }
        ort::init_from(dylib)
            .map_err(|e| e.to_string())?
            .with_name("plumb-judge")
            .build()
            .map_err(|e| e.to_string())
    });
    env.as_ref().map_err(|reason| ServingError::Runtime {
        path: dylib.to_path_buf(),
        reason: reason.clone(),
    })
}

/// Whether the loaded library can run CUDA here (the CUDA build and a visible GPU).
pub fn cuda_available() -> bool {
    ort::ep::CUDA::is_available().unwrap_or(false)
}

/// Resolves `Auto` against what this machine has.
pub fn resolve(device: Device) -> Result<ActiveDevice> {
    match device {
        Device::Cpu => Ok(ActiveDevice::Cpu),
        Device::Auto if cuda_available() => Ok(ActiveDevice::Cuda),
        Device::Auto => Ok(ActiveDevice::Cpu),
        Device::Cuda if cuda_available() => Ok(ActiveDevice::Cuda),
        Device::Cuda => Err(ServingError::Runtime {
            path: dylib_path(None),
            reason: "CUDA was asked for, but this ONNX Runtime has no CUDA execution provider or no GPU is visible (install onnxruntime-gpu's library and the CUDA runtime)".into(),
        }),
    }
}
