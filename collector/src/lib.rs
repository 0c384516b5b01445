//! `plumb-collector`: the OTLP receivers.
//!
//! Requests arrive over gRPC ([`grpc`]) or HTTP ([`http`], protobuf or [`otlp_json`]), are
//! converted into rows ([`spans`], [`logs`], [`metrics`]; GenAI attributes through [`genai`] and
//! [`messages`],
//! cost through [`pricing`]) and handed to the store by [`ingest`], which answers only once the
//! rows are durable. Evaluation results the application sends itself become `evals` rows
//! ([`evaluation_results`]).

pub mod attributes;
pub mod convert;
pub mod error;
pub mod evaluation_results;
pub mod genai;
pub mod grpc;
pub mod http;
pub mod ingest;
pub mod logs;
pub mod messages;
pub mod metrics;
pub mod otlp_json;
pub mod pricing;
pub mod spans;

pub use error::IngestError;
pub use ingest::Ingest;
pub use pricing::{Price, PriceTable};
