//! `plumb-serving`: the judge-model runtime.
//!
//! A judge is an ONNX model in a directory with a `tokenizer.json` and a [`manifest`]. The
//! [`runtime`] loads ONNX Runtime from a shared library (CUDA when present, CPU otherwise), a
//! [`model`] tokenizes and runs batches, the [`batcher`] gathers concurrent requests into
//! length-sorted batches behind a bounded queue, [`segment`] splits long contexts into windows
//! and responses into sentences so nothing is silently truncated, [`judges`] turns scores into
//! verdicts, [`api`] serves them over HTTP on the judge address, and [`telemetry`] exports the
//! server's own metrics as OTLP. It depends on no other
//! Plumb crate: evaluators reach it in process or over HTTP.

pub mod api;
pub mod batcher;
pub mod error;
pub mod judges;
pub mod manifest;
pub mod model;
pub mod runtime;
pub mod segment;
pub mod telemetry;

pub use error::{Result, ServingError};
pub use judges::{JudgeConfig, Judges};
pub use manifest::{Manifest, Task};
pub use runtime::Device;
