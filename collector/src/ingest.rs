//! The receivers' common path: convert a decoded export request into rows and store them
//! durably. gRPC and HTTP differ only in how they decode and how they answer.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use plumb_store::records::{logs_batch, metrics_batch, spans_batch};
use plumb_store::{Store, Table};

use crate::convert::Rejections;
use crate::error::IngestError;
use crate::pricing::PriceTable;
use crate::{evaluation_results, logs, metrics, spans};

/// Shared by all receivers.
#[derive(Clone)]
pub struct Ingest {
    store: Store,
    prices: Arc<PriceTable>,
}

impl Ingest {
    pub fn new(store: Store, prices: PriceTable) -> Self {
        Ingest {
            store,
            prices: Arc::new(prices),
        }
    }

    /// Holds a request before it is read and decoded until the store has room for it, and
    /// refuses it when none comes in time (see [`plumb_store::Store::admit`]).
    pub async fn admit(&self) -> Result<(), IngestError> {
        Ok(self.store.admit().await?)
    }

    pub async fn traces(
        &self,
        project: &str,
        req: ExportTraceServiceRequest,
    ) -> Result<Rejections, IngestError> {
        let (rows, rejected) = spans::convert(req, project, &self.prices)?;
        if !rows.is_empty() {
            let batch = spans_batch(&rows).map_err(|e| IngestError::Storage(e.to_string()))?;
            let evals = evaluation_results::from_spans(&rows);
            // The rows are now in `batch`: freed here, not held (about 2 KB a span) by every
            // request while it waits for the WAL's fsync.
            drop(rows);
            self.store.write(Table::Spans, project, batch).await?;
            self.store.write_evals(&evals).await?;
        }
        Ok(rejected)
    }

    pub async fn logs(
        &self,
        project: &str,
        req: &ExportLogsServiceRequest,
    ) -> Result<Rejections, IngestError> {
        let (rows, rejected) = logs::convert(req, project)?;
        if !rows.is_empty() {
            let batch = logs_batch(&rows).map_err(|e| IngestError::Storage(e.to_string()))?;
            self.store.write(Table::Logs, project, batch).await?;
            self.store
                .write_evals(&evaluation_results::from_logs(&rows))
                .await?;
        }
        Ok(rejected)
    }

    pub async fn metrics(
        &self,
        project: &str,
        req: &ExportMetricsServiceRequest,
    ) -> Result<Rejections, IngestError> {
        let (rows, rejected) = metrics::convert(req, project)?;
        if !rows.is_empty() {
            let batch = metrics_batch(&rows).map_err(|e| IngestError::Storage(e.to_string()))?;
            self.store.write(Table::Metrics, project, batch).await?;
        }
        Ok(rejected)
    }
}
