//! OTLP/gRPC receiver (tonic): the trace, metrics and logs services, gzip accepted.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codec::CompressionEncoding;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::{Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::error::IngestError;
use crate::ingest::Ingest;

#[derive(Clone)]
pub struct OtlpGrpc {
    ingest: Ingest,
    project: String,
}

fn status(e: IngestError) -> Status {
    match e {
        IngestError::Invalid(ref m) => Status::invalid_argument(m.clone()),
        IngestError::TooLarge { .. } | IngestError::UnsupportedMediaType(_) => {
            Status::invalid_argument(e.to_string())
        }
        IngestError::Overloaded { retry_after, .. } => Status::with_error_details(
            tonic::Code::ResourceExhausted,
            e.to_string(),
            ErrorDetails::with_retry_info(Some(retry_after)),
        ),
        IngestError::Storage(_) => Status::unavailable(e.to_string()),
    }
}

#[tonic::async_trait]
impl TraceService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let rejected = self
            .ingest
            .traces(&self.project, request.into_inner())
            .await
            .map_err(status)?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: rejected.count,
                error_message: rejected.message(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let rejected = self
            .ingest
            .logs(&self.project, request.get_ref())
            .await
            .map_err(status)?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: rejected.count,
                error_message: rejected.message(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpc {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let rejected = self
            .ingest
            .metrics(&self.project, request.get_ref())
            .await
            .map_err(status)?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (rejected.count > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: rejected.count,
                error_message: rejected.message(),
            }),
        }))
    }
}

/// The three OTLP services as one tonic router, ready to serve. Each request waits for room in
/// the store before its message is read and decoded (see [`Ingest::admit`]), so overload
/// costs little CPU.
pub fn router(ingest: Ingest, project: &str, max_message_bytes: usize) -> tonic::service::Routes {
    let svc = OtlpGrpc {
        ingest: ingest.clone(),
        project: project.to_string(),
    };
    tonic::service::Routes::new(Admitted {
        ingest: ingest.clone(),
        inner: TraceServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes),
    })
    .add_service(Admitted {
        ingest: ingest.clone(),
        inner: MetricsServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes),
    })
    .add_service(Admitted {
        ingest,
        inner: LogsServiceServer::new(svc)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes),
    })
}

/// A gRPC service behind the store's admission: the request's body stays unread (held back by
/// HTTP/2 flow control) until there is room, and RESOURCE_EXHAUSTED with a retry hint answers
/// it when none comes in time. A tonic interceptor cannot wait, hence a service.
#[derive(Clone)]
struct Admitted<S> {
    inner: S,
    ingest: Ingest,
}

impl<S: NamedService> NamedService for Admitted<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Admitted<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that serves this request.
        let fresh = self.inner.clone();
        let ready = std::mem::replace(&mut self.inner, fresh);
        let ingest = self.ingest.clone();
        Box::pin(async move {
            match ingest.admit().await {
                Ok(()) => {
                    let mut ready = ready;
                    ready.call(req).await
                }
                Err(e) => Ok(status(e).into_http()),
            }
        })
    }
}
