//! Pieces shared by the span, log and metric converters.

use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use plumb_store::records::ResourceAttributes;

use crate::attributes::{to_attributes, AttrView};
use crate::error::IngestError;

/// `service.name` of a resource, or OpenTelemetry's `unknown_service`.
pub fn service_name(resource: &[KeyValue]) -> String {
    AttrView::new(resource)
        .string("service.name")
        .unwrap_or_else(|| "unknown_service".to_string())
}

/// What every row of one resource shares: its service and its attributes.
pub struct ResourceContext {
    /// Shared by the rows of this resource.
    pub service_name: std::sync::Arc<str>,
    pub attributes: ResourceAttributes,
}

impl ResourceContext {
    pub fn new(resource: Option<&Resource>) -> Self {
        let kvs = resource.map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        ResourceContext {
            service_name: service_name(kvs).into(),
            attributes: ResourceAttributes::new(to_attributes(kvs)),
        }
    }
}

/// An instrumentation scope's name, when it has one.
pub fn scope_name(scope: Option<&InstrumentationScope>) -> Option<String> {
    scope.map(|s| s.name.clone()).filter(|s| !s.is_empty())
}

/// A required id of `len` bytes as lowercase hex; all-zero ids are invalid per OTLP.
pub fn hex_id(
    bytes: &[u8],
    len: usize,
    field: &str,
    at: &dyn Fn() -> String,
) -> Result<String, IngestError> {
    if bytes.len() != len {
        return Err(IngestError::Invalid(format!(
            "{}: {field} must be {len} bytes ({} hex characters), got {} bytes",
            at(),
            len * 2,
            bytes.len()
        )));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(IngestError::Invalid(format!(
            "{}: {field} is all zeros, which OTLP forbids",
            at()
        )));
    }
    Ok(hex::encode(bytes))
}

/// An optional id: empty means absent.
pub fn optional_hex_id(
    bytes: &[u8],
    len: usize,
    field: &str,
    at: &dyn Fn() -> String,
) -> Result<Option<String>, IngestError> {
    if bytes.is_empty() || bytes.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    hex_id(bytes, len, field, at).map(Some)
}

/// Items dropped from an otherwise accepted request (OTLP partial success).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rejections {
    pub count: i64,
    /// The first few reasons; enough to find the problem without echoing a huge request.
    reasons: Vec<String>,
}

impl Rejections {
    const MAX_REASONS: usize = 5;

    pub fn add(&mut self, reason: String) {
        self.count += 1;
        if self.reasons.len() < Self::MAX_REASONS {
            self.reasons.push(reason);
        }
    }

    pub fn message(&self) -> String {
        let mut m = self.reasons.join("; ");
        if self.count as usize > self.reasons.len() {
            m.push_str(&format!(
                " (and {} more)",
                self.count as usize - self.reasons.len()
            ));
        }
        m
    }
}
