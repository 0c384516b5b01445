//! The judge server's own telemetry: request latency per task, batch size and padding, queue
//! depth, exported periodically as OTLP metrics (HTTP/protobuf) to a Plumb collector, so the
//! judges appear on the reliability timeline like any other service (`service.name` =
//! `plumb-judge`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use crate::judges::Judges;
use crate::manifest::Task;

pub const SERVICE_NAME: &str = "plumb-judge";

/// Upper bounds (seconds) of the request latency histogram.
const LATENCY_BOUNDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A cumulative latency histogram, updated without locks.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl LatencyHistogram {
    pub fn record(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = LATENCY_BOUNDS.partition_point(|b| *b < secs);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// Request latencies of both tasks.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    pub groundedness: LatencyHistogram,
    pub context_relevance: LatencyHistogram,
}

impl RequestMetrics {
    pub fn for_task(&self, task: Task) -> &LatencyHistogram {
        match task {
            Task::Groundedness => &self.groundedness,
            Task::ContextRelevance => &self.context_relevance,
        }
    }
}

fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn point(attributes: Vec<KeyValue>, start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, description: &str, data: metric::Data) -> Metric {
    Metric {
        name: name.into(),
        unit: unit.into(),
        description: description.into(),
        data: Some(data),
        ..Default::default()
    }
}

/// One snapshot of every judge metric as an OTLP export request.
pub fn snapshot(judges: &Judges, started: u64) -> ExportMetricsServiceRequest {
    let now = now_nanos();
    let mut queue = Vec::new();
    let mut batches = Vec::new();
    let mut inputs = Vec::new();
    let mut fill = Vec::new();
    let mut latency = Vec::new();
    for task in [Task::Groundedness, Task::ContextRelevance] {
        let h = judges.requests.for_task(task);
        let count = h.count.load(Ordering::Relaxed);
        if count > 0 {
            latency.push(HistogramDataPoint {
                attributes: vec![attr("plumb.judge.task", task.name())],
                start_time_unix_nano: started,
                time_unix_nano: now,
                count,
                sum: Some(h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6),
                bucket_counts: h
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect(),
                explicit_bounds: LATENCY_BOUNDS.to_vec(),
                ..Default::default()
            });
        }
        let Ok(judge) = judges.judge(task) else {
            continue;
        };
        let attrs = || {
            vec![
                attr("plumb.judge.task", task.name()),
                attr("plumb.judge.model", &judge.model.manifest.name),
            ]
        };
        let s = &judge.batcher.stats;
        let n = s.batches.load(Ordering::Relaxed);
        queue.push(point(attrs(), 0, now, judge.batcher.queue_depth() as f64));
        batches.push(point(attrs(), started, now, n as f64));
        inputs.push(point(
            attrs(),
            started,
            now,
            s.inputs.load(Ordering::Relaxed) as f64,
        ));
        if n > 0 {
            let mean_fill = s.fill_permille_sum.load(Ordering::Relaxed) as f64 / n as f64 / 1000.0;
            fill.push(point(attrs(), 0, now, mean_fill));
        }
    }
    let cumulative = |points| {
        metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })
    };
    let mut metrics = vec![
        metric(
            "plumb.judge.queue.depth",
            "{input}",
            "Model inputs waiting for a batch.",
            metric::Data::Gauge(Gauge { data_points: queue }),
        ),
        metric(
            "plumb.judge.batches",
            "{batch}",
            "Batches run.",
            cumulative(batches),
        ),
        metric(
            "plumb.judge.inputs",
            "{input}",
            "Model inputs scored.",
            cumulative(inputs),
        ),
        metric(
            "plumb.judge.batch.fill",
            "1",
            "Real tokens over padded tokens per batch, mean since start.",
            metric::Data::Gauge(Gauge { data_points: fill }),
        ),
    ];
    if !latency.is_empty() {
        metrics.push(metric(
            "plumb.judge.request.duration",
            "s",
            "Time to answer one judge API request.",
            metric::Data::Histogram(Histogram {
                data_points: latency,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        ));
    }
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attr("service.name", SERVICE_NAME)],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "plumb-serving".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Sends a snapshot to `endpoint` (an OTLP/HTTP base URL, e.g. `http://127.0.0.1:4318`) every
/// `interval`, until the task is aborted. A failed export is logged and retried next time;
/// cumulative values lose nothing by a skipped export.
pub fn spawn_exporter(
    judges: Arc<Judges>,
    endpoint: String,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let started = now_nanos();
        let url = format!("{}/v1/metrics", endpoint.trim_end_matches('/'));
        let client = reqwest::Client::new();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let body = snapshot(&judges, started).encode_to_vec();
            let sent = client
                .post(&url)
                .header("content-type", "application/x-protobuf")
                .body(body)
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(status = %r.status(), %url, "judge telemetry refused"),
                Err(e) => tracing::warn!(error = %e, %url, "judge telemetry not sent"),
            }
        }
    })
}
