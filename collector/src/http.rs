//! OTLP/HTTP receiver (axum): `/v1/traces`, `/v1/metrics`, `/v1/logs` with protobuf or JSON
//! bodies, optionally gzip'd. Answers in the request's content type: the export response on
//! success (with partial success when items were dropped), a `google.rpc.Status` on error.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::IngestError;
use crate::ingest::Ingest;
use crate::otlp_json;

#[derive(Clone)]
struct AppState {
    ingest: Ingest,
    project: String,
    max_body_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// `google.rpc.Status`, the error body OTLP/HTTP specifies.
#[derive(Clone, PartialEq, Message, Serialize)]
struct RpcStatus {
    #[prost(int32, tag = "1")]
    code: i32,
    #[prost(string, tag = "2")]
    message: String,
}

pub fn router(ingest: Ingest, project: &str, max_body_bytes: usize) -> Router {
    let state = AppState {
        ingest,
        project: project.to_string(),
        max_body_bytes,
    };
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/metrics", post(metrics))
        .route("/v1/logs", post(logs))
        // The limit is enforced while reading, with an OTLP-shaped error.
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

fn encoding(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        _ => Err(IngestError::UnsupportedMediaType(ct.to_string())),
    }
}

/// The request body, gunzipped if it was sent compressed. An uncompressed body is passed on as
/// received, without a copy.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, IngestError> {
    let raw = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| IngestError::TooLarge {
            size: headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse().ok())
                .unwrap_or(limit + 1),
            limit,
        })?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "" | "identity" => Ok(raw),
        "gzip" => gunzip(&raw, limit).map(Bytes::from),
        other => Err(IngestError::Invalid(format!(
            "unsupported Content-Encoding {other:?}; use gzip or none"
        ))),
    }
}

/// Decompresses with the same limit on the decompressed size, so a small gzip bomb cannot
/// allocate without bound.
fn gunzip(raw: &Bytes, limit: usize) -> Result<Vec<u8>, IngestError> {
    let mut out = Vec::with_capacity(raw.len() * 4);
    flate2::read::GzDecoder::new(&raw[..])
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| IngestError::Invalid(format!("body is not valid gzip: {e}")))?;
    if out.len() > limit {
        return Err(IngestError::TooLarge {
            size: out.len(),
            limit,
        });
    }
    Ok(out)
}

fn decode<T: Message + Default + DeserializeOwned>(
    enc: Encoding,
    body: &[u8],
) -> Result<T, IngestError> {
    match enc {
        Encoding::Protobuf => {
            T::decode(body).map_err(|e| IngestError::Invalid(format!("invalid OTLP protobuf: {e}")))
        }
        Encoding::Json => otlp_json::decode(body),
    }
}

fn respond<T: Message + Serialize>(enc: Encoding, msg: &T) -> Response {
    let body = match enc {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(msg).unwrap_or_default(),
    };
    ([(header::CONTENT_TYPE, enc.content_type())], body).into_response()
}

fn error_response(enc: Encoding, e: IngestError) -> Response {
    let (status, code) = match &e {
        IngestError::Invalid(_) => (StatusCode::BAD_REQUEST, 3),
        IngestError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, 3),
        IngestError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, 3),
        IngestError::Overloaded { .. } => (StatusCode::TOO_MANY_REQUESTS, 8),
        IngestError::Storage(_) => (StatusCode::SERVICE_UNAVAILABLE, 14),
    };
    tracing::debug!(status = %status, error = %e, "OTLP/HTTP export refused");
    let mut resp = respond(
        enc,
        &RpcStatus {
            code,
            message: e.to_string(),
        },
    );
    *resp.status_mut() = status;
    if let IngestError::Overloaded { retry_after, .. } = e {
        let secs = retry_after.as_secs().max(1).to_string();
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from_str(&secs).expect("digits"),
        );
    }
    resp
}

async fn decoded<T: Message + Default + DeserializeOwned>(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Encoding, T), (Encoding, IngestError)> {
    // Errors about the content type itself are answered in JSON, the one a person can read.
    let enc = encoding(headers).map_err(|e| (Encoding::Json, e))?;
    s.ingest.admit().await.map_err(|e| (enc, e))?;
    let bytes = read_body(headers, body, s.max_body_bytes)
        .await
        .map_err(|e| (enc, e))?;
    let req = decode::<T>(enc, &bytes).map_err(|e| (enc, e))?;
    Ok((enc, req))
}

async fn traces(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (enc, req) = match decoded::<ExportTraceServiceRequest>(&s, &headers, body).await {
        Ok(v) => v,
        Err((enc, e)) => return error_response(enc, e),
    };
    match s.ingest.traces(&s.project, req).await {
        Ok(r) => respond(
            enc,
            &ExportTraceServiceResponse {
                partial_success: (r.count > 0).then(|| ExportTracePartialSuccess {
                    rejected_spans: r.count,
                    error_message: r.message(),
                }),
            },
        ),
        Err(e) => error_response(enc, e),
    }
}

async fn logs(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (enc, req) = match decoded::<ExportLogsServiceRequest>(&s, &headers, body).await {
        Ok(v) => v,
        Err((enc, e)) => return error_response(enc, e),
    };
    match s.ingest.logs(&s.project, &req).await {
        Ok(r) => respond(
            enc,
            &ExportLogsServiceResponse {
                partial_success: (r.count > 0).then(|| ExportLogsPartialSuccess {
                    rejected_log_records: r.count,
                    error_message: r.message(),
                }),
            },
        ),
        Err(e) => error_response(enc, e),
    }
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let (enc, req) = match decoded::<ExportMetricsServiceRequest>(&s, &headers, body).await {
        Ok(v) => v,
        Err((enc, e)) => return error_response(enc, e),
    };
    match s.ingest.metrics(&s.project, &req).await {
        Ok(r) => respond(
            enc,
            &ExportMetricsServiceResponse {
                partial_success: (r.count > 0).then(|| ExportMetricsPartialSuccess {
                    rejected_data_points: r.count,
                    error_message: r.message(),
                }),
            },
        ),
        Err(e) => error_response(enc, e),
    }
}
