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
use tonic::codec::CompressionEncoding;
use tonic::service::interceptor::InterceptedService;
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

/// The three OTLP services as one tonic router, ready to serve. Each request passes the
/// store's admission check before its message is decoded, so overload costs little CPU.
pub fn router(ingest: Ingest, project: &str, max_message_bytes: usize) -> tonic::service::Routes {
    let admit = {
        let ingest = ingest.clone();
        move |req: Request<()>| ingest.admit().map(|()| req).map_err(status)
    };
    let svc = OtlpGrpc {
        ingest,
        project: project.to_string(),
    };
    tonic::service::Routes::new(InterceptedService::new(
        TraceServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes),
        admit.clone(),
    ))
    .add_service(InterceptedService::new(
        MetricsServiceServer::new(svc.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes),
        admit.clone(),
    ))
    .add_service(InterceptedService::new(
        LogsServiceServer::new(svc)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip)
            .max_decoding_message_size(max_message_bytes),
        admit,
    ))
}
