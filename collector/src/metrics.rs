//! OTLP metrics -> `metrics` rows, one per data point. Gauges and sums fill `value`;
//! histograms fill count, sum, min, max, bucket counts and bounds. Exponential histograms and
//! summaries keep count and sum (their buckets and quantiles stay out of this schema for now).

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Metric,
};
use plumb_store::records::MetricPoint;

use crate::attributes::to_attributes;
use crate::convert::{scope_name, Rejections, ResourceContext};
use crate::error::IngestError;

fn temporality(t: i32) -> Option<String> {
    match AggregationTemporality::try_from(t) {
        Ok(AggregationTemporality::Delta) => Some("delta".into()),
        Ok(AggregationTemporality::Cumulative) => Some("cumulative".into()),
        _ => None,
    }
}

fn nonzero(t: u64) -> Option<i64> {
    (t != 0).then_some(t as i64)
}

pub fn convert(
    req: &ExportMetricsServiceRequest,
    project: &str,
) -> Result<(Vec<MetricPoint>, Rejections), IngestError> {
    let mut rows = Vec::new();
    let mut rejected = Rejections::default();
    for (ri, rm) in req.resource_metrics.iter().enumerate() {
        let resource = ResourceContext::new(rm.resource.as_ref());
        for (si, sm) in rm.scope_metrics.iter().enumerate() {
            let scope_name = scope_name(sm.scope.as_ref());
            for (mi, metric) in sm.metrics.iter().enumerate() {
                let at = format!("resourceMetrics[{ri}].scopeMetrics[{si}].metrics[{mi}]");
                if metric.name.is_empty() {
                    return Err(IngestError::Invalid(format!("{at}: metric name is empty")));
                }
                let base = MetricPoint {
                    project: project.to_string(),
                    metric_name: metric.name.clone(),
                    unit: Some(metric.unit.clone()).filter(|u| !u.is_empty()),
                    description: Some(metric.description.clone()).filter(|d| !d.is_empty()),
                    service_name: resource.service_name.to_string(),
                    scope_name: scope_name.clone(),
                    resource_attributes: resource.attributes.clone(),
                    ..Default::default()
                };
                points(metric, base, &at, &mut rows, &mut rejected);
            }
        }
    }
    Ok((rows, rejected))
}

fn points(
    metric: &Metric,
    base: MetricPoint,
    at: &str,
    rows: &mut Vec<MetricPoint>,
    rejected: &mut Rejections,
) {
    let mut push = |p: MetricPoint, time: u64, idx: usize| {
        if time == 0 {
            rejected.add(format!("{at}.dataPoints[{idx}]: timeUnixNano is missing"));
        } else {
            rows.push(p);
        }
    };
    match &metric.data {
        Some(Data::Gauge(g)) => {
            for (i, dp) in g.data_points.iter().enumerate() {
                push(
                    number_point(&base, "gauge", dp, None, None),
                    dp.time_unix_nano,
                    i,
                );
            }
        }
        Some(Data::Sum(s)) => {
            for (i, dp) in s.data_points.iter().enumerate() {
                push(
                    number_point(
                        &base,
                        "sum",
                        dp,
                        Some(s.is_monotonic),
                        temporality(s.aggregation_temporality),
                    ),
                    dp.time_unix_nano,
                    i,
                );
            }
        }
        Some(Data::Histogram(h)) => {
            for (i, dp) in h.data_points.iter().enumerate() {
                let p = MetricPoint {
                    metric_type: "histogram".into(),
                    time_unix_nano: dp.time_unix_nano as i64,
                    start_time_unix_nano: nonzero(dp.start_time_unix_nano),
                    aggregation_temporality: temporality(h.aggregation_temporality),
                    histogram_count: Some(dp.count as i64),
                    histogram_sum: dp.sum,
                    histogram_min: dp.min,
                    histogram_max: dp.max,
                    histogram_bucket_counts: Some(
                        dp.bucket_counts.iter().map(|c| *c as i64).collect(),
                    ),
                    histogram_explicit_bounds: Some(dp.explicit_bounds.clone()),
                    attributes: to_attributes(&dp.attributes),
                    ..base.clone()
                };
                push(p, dp.time_unix_nano, i);
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            for (i, dp) in h.data_points.iter().enumerate() {
                let p = MetricPoint {
                    metric_type: "exponential_histogram".into(),
                    time_unix_nano: dp.time_unix_nano as i64,
                    start_time_unix_nano: nonzero(dp.start_time_unix_nano),
                    aggregation_temporality: temporality(h.aggregation_temporality),
                    histogram_count: Some(dp.count as i64),
                    histogram_sum: dp.sum,
                    histogram_min: dp.min,
                    histogram_max: dp.max,
                    attributes: to_attributes(&dp.attributes),
                    ..base.clone()
                };
                push(p, dp.time_unix_nano, i);
            }
        }
        Some(Data::Summary(s)) => {
            for (i, dp) in s.data_points.iter().enumerate() {
                let p = MetricPoint {
                    metric_type: "summary".into(),
                    time_unix_nano: dp.time_unix_nano as i64,
                    start_time_unix_nano: nonzero(dp.start_time_unix_nano),
                    histogram_count: Some(dp.count as i64),
                    histogram_sum: Some(dp.sum),
                    attributes: to_attributes(&dp.attributes),
                    ..base.clone()
                };
                push(p, dp.time_unix_nano, i);
            }
        }
        None => rejected.add(format!("{at}: metric {:?} has no data", metric.name)),
    }
}

fn number_point(
    base: &MetricPoint,
    kind: &str,
    dp: &opentelemetry_proto::tonic::metrics::v1::NumberDataPoint,
    is_monotonic: Option<bool>,
    aggregation_temporality: Option<String>,
) -> MetricPoint {
    MetricPoint {
        metric_type: kind.into(),
        time_unix_nano: dp.time_unix_nano as i64,
        start_time_unix_nano: nonzero(dp.start_time_unix_nano),
        value: match dp.value {
            Some(number_data_point::Value::AsDouble(d)) => Some(d),
            Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
            None => None,
        },
        is_monotonic,
        aggregation_temporality,
        attributes: to_attributes(&dp.attributes),
        ..base.clone()
    }
}
