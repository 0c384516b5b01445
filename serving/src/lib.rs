//! `plumb-serving`: the judge-model runtime.
//!
//! This crate will own loading ONNX judge models from a model directory, tokenization, `ort`
//! sessions (CUDA when present, CPU otherwise), dynamic batching and the judge HTTP API on the
//! judge address. It depends on `plumb-store` only for shared types and reports its own
//! telemetry like any service.
