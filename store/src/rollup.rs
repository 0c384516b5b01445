//! Per-minute summaries of spans, so that a dashboard over a long range reads a few thousand
//! summary rows instead of millions of spans.
//!
//! A [`RollupRow`] summarizes one route in one minute: counts, sums and log-bucketed
//! [`Histogram`]s of the latencies, and the requests per combination of service, model,
//! provider, engine and GPU pool (the route's decision mix). All of it is mergeable: the rows of
//! any set of minutes add up to the answer for the longer window, within the histograms' bucket
//! width for quantiles.
//!
//! Every flushed spans file gets the rollup of its own rows in its catalog entry, beside its
//! trace-id filter, so "the file is visible" and "its summary is visible" are one commit and a
//! row is never counted twice or missed. Rollups stay in the catalog until a query reads them
//! (they are a few bytes per span, too much to hold for every file). Buffered rows are
//! summarized at query time by the same [`RollupBuilder`]. Files written before rollups existed
//! get theirs at start-up; until then [`crate::Store::span_rollups`] answers `None` for ranges
//! that touch them and callers read the spans instead.

use std::sync::Arc;

use arrow::array::{
    new_null_array, Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray,
};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};

/// Building hashes every span's route, minute and mix: a fast hash, not a DoS-resistant one
/// (the keys come from at most a flush's worth of rows).
type HashMap<K, V> = foldhash::HashMap<K, V>;

pub const NANOS_PER_MINUTE: i64 = 60_000_000_000;

/// Buckets per doubling: each bucket is 2^(1/16) ≈ 4.4% wide, so a quantile read at the bucket's
/// geometric middle is within ~2.2% of the true value.
const BUCKETS_PER_OCTAVE: f64 = 16.0;
/// Zero and negative values (a cache hit's TTFT can be 0).
const ZERO_BUCKET: i16 = i16::MIN;

/// Counts of values in logarithmic buckets, sorted by bucket.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    buckets: Vec<(i16, u32)>,
}

impl Histogram {
    pub fn record(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        self.add(bucket_of(value), 1);
    }

    fn add(&mut self, bucket: i16, count: u32) {
        match self.buckets.binary_search_by_key(&bucket, |b| b.0) {
            Ok(i) => self.buckets[i].1 = self.buckets[i].1.saturating_add(count),
            Err(i) => self.buckets.insert(i, (bucket, count)),
        }
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.buckets.is_empty() {
            return;
        }
        if self.buckets.is_empty() {
            self.buckets = other.buckets.clone();
            return;
        }
        // Both are sorted: one pass, not an insertion per bucket.
        let (a, b) = (std::mem::take(&mut self.buckets), &other.buckets);
        let mut out = Vec::with_capacity(a.len().max(b.len()));
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].0.cmp(&b[j].0) {
                std::cmp::Ordering::Less => {
                    out.push(a[i]);
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push((a[i].0, a[i].1.saturating_add(b[j].1)));
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        self.buckets = out;
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.1 as u64).sum()
    }

    /// The nearest-rank `q` quantile (0..=1), at its bucket's geometric middle; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(b, n) in &self.buckets {
            seen += n as u64;
            if seen >= rank {
                return Some(value_of(b));
            }
        }
        self.buckets.last().map(|b| value_of(b.0))
    }
}

fn bucket_of(value: f64) -> i16 {
    if value <= 0.0 {
        return ZERO_BUCKET;
    }
    (value.log2() * BUCKETS_PER_OCTAVE)
        .floor()
        .clamp(ZERO_BUCKET as f64 + 1.0, i16::MAX as f64) as i16
}

fn value_of(bucket: i16) -> f64 {
    if bucket == ZERO_BUCKET {
        return 0.0;
    }
    ((bucket as f64 + 0.5) / BUCKETS_PER_OCTAVE).exp2()
}

/// The spans of one route in one minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RollupRow {
    pub route: Arc<str>,
    /// Start of the minute, Unix nanoseconds.
    pub minute: i64,
    pub traffic: Traffic,
    /// Requests per combination of service, model, provider, engine and pool.
    pub mix: Vec<MixCount>,
}

/// What a rollup row counts, sums and histograms: everything that merges by adding.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Traffic {
    pub requests: u64,
    pub errors: u64,
    pub retries: u64,
    pub fallbacks: u64,
    pub cache_hits: u64,
    /// Sum of the spans' cost, `None` when none had one.
    pub cost_usd: Option<f64>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Time to first token, seconds.
    pub ttft: Histogram,
    /// Time per output token, seconds.
    pub tpot: Histogram,
    pub duration_ms: Histogram,
    /// Queue time, seconds.
    pub queue_time: Histogram,
}

/// Requests that one route sent through one combination of service, model (the response
/// model, else the requested one), provider, engine and GPU pool in one minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MixCount {
    pub service: Arc<str>,
    pub model: Option<Arc<str>>,
    pub provider: Option<Arc<str>>,
    pub engine: Option<Arc<str>>,
    pub gpu_pool: Option<Arc<str>>,
    pub requests: u64,
}

impl Traffic {
    /// Adds another row's counts, sums and histograms to these.
    pub fn absorb(&mut self, other: &Traffic) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.retries += other.retries;
        self.fallbacks += other.fallbacks;
        self.cache_hits += other.cache_hits;
        if let Some(c) = other.cost_usd {
            *self.cost_usd.get_or_insert(0.0) += c;
        }
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.ttft.merge(&other.ttft);
        self.tpot.merge(&other.tpot);
        self.duration_ms.merge(&other.duration_ms);
        self.queue_time.merge(&other.queue_time);
    }
}

/// The rollup of one spans file (or of buffered rows), sorted by route and minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanRollup {
    pub rows: Vec<RollupRow>,
}

/// The encoding's version, first byte of every stored rollup.
const FORMAT_VERSION: u8 = 1;

/// The stored form: every string once, rows referring to them by index (0 is "none", `i + 1`
/// is `strings[i]`), since a minute's mix repeats the same few names many times over.
#[derive(Serialize, Deserialize)]
struct Stored {
    strings: Vec<String>,
    rows: Vec<StoredRow>,
}

#[derive(Serialize, Deserialize)]
struct StoredRow {
    route: u32,
    minute: i64,
    traffic: Traffic,
    /// (service, model, provider, engine, pool, requests).
    mix: Vec<(u32, u32, u32, u32, u32, u64)>,
}

/// Strings to indices (encoding) or `Arc`s shared by every row (building, decoding).
#[derive(Default)]
struct Interner {
    index: HashMap<Arc<str>, u32>,
    strings: Vec<Arc<str>>,
}

impl Interner {
    fn arc(&mut self, s: &str) -> Arc<str> {
        let i = self.id(s);
        self.strings[i as usize - 1].clone()
    }

    fn id(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let a: Arc<str> = Arc::from(s);
        self.strings.push(a.clone());
        let i = self.strings.len() as u32;
        self.index.insert(a, i);
        i
    }

    fn opt_id(&mut self, s: &Option<Arc<str>>) -> u32 {
        s.as_deref().map_or(0, |s| self.id(s))
    }
}

impl SpanRollup {
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut names = Interner::default();
        let rows = self
            .rows
            .iter()
            .map(|r| StoredRow {
                route: names.id(&r.route),
                minute: r.minute,
                traffic: r.traffic.clone(),
                mix: r
                    .mix
                    .iter()
                    .map(|m| {
                        (
                            names.id(&m.service),
                            names.opt_id(&m.model),
                            names.opt_id(&m.provider),
                            names.opt_id(&m.engine),
                            names.opt_id(&m.gpu_pool),
                            m.requests,
                        )
                    })
                    .collect(),
            })
            .collect();
        let stored = Stored {
            strings: names.strings.iter().map(|s| s.to_string()).collect(),
            rows,
        };
        let mut out = vec![FORMAT_VERSION];
        out.extend(
            postcard::to_stdvec(&stored)
                .map_err(|e| StoreError::Corrupt(format!("encoding a rollup: {e}")))?,
        );
        Ok(out)
    }

    /// `None` for a rollup in an encoding this version does not know (it is rebuilt).
    pub fn from_bytes(bytes: &[u8]) -> Result<Option<SpanRollup>> {
        let stored: Stored = match bytes.split_first() {
            Some((&FORMAT_VERSION, rest)) => postcard::from_bytes(rest)
                .map_err(|e| StoreError::Corrupt(format!("decoding a rollup: {e}")))?,
            _ => return Ok(None),
        };
        let strings: Vec<Arc<str>> = stored
            .strings
            .iter()
            .map(|s| Arc::from(s.as_str()))
            .collect();
        let name = |i: u32| -> Result<Option<Arc<str>>> {
            match i {
                0 => Ok(None),
                i => strings
                    .get(i as usize - 1)
                    .cloned()
                    .map(Some)
                    .ok_or_else(|| StoreError::Corrupt("a rollup names a missing string".into())),
            }
        };
        let required = |i: u32| -> Result<Arc<str>> {
            name(i)?.ok_or_else(|| StoreError::Corrupt("a rollup lacks a route or service".into()))
        };
        let mut rows = Vec::with_capacity(stored.rows.len());
        for r in stored.rows {
            let mut mix = Vec::with_capacity(r.mix.len());
            for (service, model, provider, engine, gpu_pool, requests) in r.mix {
                mix.push(MixCount {
                    service: required(service)?,
                    model: name(model)?,
                    provider: name(provider)?,
                    engine: name(engine)?,
                    gpu_pool: name(gpu_pool)?,
                    requests,
                });
            }
            rows.push(RollupRow {
                route: required(r.route)?,
                minute: r.minute,
                traffic: r.traffic,
                mix,
            });
        }
        Ok(Some(SpanRollup { rows }))
    }

    /// Summarizes spans batches (in the stored or the query schema).
    pub fn of_batches<'a>(batches: impl IntoIterator<Item = &'a RecordBatch>) -> Result<Self> {
        let mut b = RollupBuilder::new(None);
        for batch in batches {
            b.add(batch)?;
        }
        Ok(b.finish())
    }
}

/// The columns a rollup reads, for readers that project a spans file.
pub const COLUMNS: &[&str] = &[
    "route",
    "start_time",
    "service_name",
    "gen_ai_response_model",
    "gen_ai_request_model",
    "gen_ai_provider_name",
    "engine",
    "gpu_pool",
    "status_code",
    "retry_count",
    "fallback",
    "cache_hit",
    "cost_usd",
    "gen_ai_usage_input_tokens",
    "gen_ai_usage_output_tokens",
    "gen_ai_response_time_to_first_chunk",
    "time_per_output_token",
    "duration_ms",
    "queue_time",
];

/// (service, model, provider, engine, pool) of a mix entry.
type MixKey<S> = (S, [Option<S>; 4]);

/// A row being built: its mix as a map until it is finished.
#[derive(Default)]
struct Building {
    row: RollupRow,
    mix: HashMap<MixKey<Arc<str>>, u64>,
}

/// Accumulates spans into rollup rows.
pub struct RollupBuilder {
    only_route: Option<String>,
    names: Interner,
    rows: HashMap<(Arc<str>, i64), Building>,
}

impl RollupBuilder {
    /// With `only_route`, rows of other routes are skipped (query-time rollups of one route).
    pub fn new(only_route: Option<&str>) -> Self {
        RollupBuilder {
            only_route: only_route.map(str::to_string),
            names: Interner::default(),
            rows: HashMap::default(),
        }
    }

    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        // The key columns must be there; the others may predate the file.
        for required in ["route", "start_time", "service_name", "status_code"] {
            column(batch, required)?;
        }
        let s = |name| strings(batch, name);
        let (route, service, response_model, request_model) = (
            s("route")?,
            s("service_name")?,
            s("gen_ai_response_model")?,
            s("gen_ai_request_model")?,
        );
        let (provider, engine, gpu_pool, status) = (
            s("gen_ai_provider_name")?,
            s("engine")?,
            s("gpu_pool")?,
            s("status_code")?,
        );
        let start = column(batch, "start_time")?.as_primitive::<TimestampNanosecondType>();
        let (retries, input_tokens, output_tokens) = (
            ints(batch, "retry_count")?,
            ints(batch, "gen_ai_usage_input_tokens")?,
            ints(batch, "gen_ai_usage_output_tokens")?,
        );
        let (fallback, cache_hit) = (bools(batch, "fallback")?, bools(batch, "cache_hit")?);
        let (cost, ttft, tpot, duration, queue) = (
            floats(batch, "cost_usd")?,
            floats(batch, "gen_ai_response_time_to_first_chunk")?,
            floats(batch, "time_per_output_token")?,
            floats(batch, "duration_ms")?,
            floats(batch, "queue_time")?,
        );
        let count = |a: &Int64Array, i: usize| match a.is_valid(i) {
            true => a.value(i).max(0) as u64,
            false => 0,
        };

        // Keys borrow from the batch first; names are interned once per distinct key.
        type Local<'a> = (Traffic, HashMap<MixKey<&'a str>, u64>);
        let mut local: HashMap<(&str, i64), Local> = HashMap::default();
        for i in 0..batch.num_rows() {
            let r = route.value(i);
            if self.only_route.as_deref().is_some_and(|only| only != r) {
                continue;
            }
            let minute = start.value(i).div_euclid(NANOS_PER_MINUTE) * NANOS_PER_MINUTE;
            let (row, mix) = local.entry((r, minute)).or_default();
            row.requests += 1;
            row.errors += (status.value(i) == "ERROR") as u64;
            row.retries += count(&retries, i);
            row.fallbacks += (fallback.is_valid(i) && fallback.value(i)) as u64;
            row.cache_hits += (cache_hit.is_valid(i) && cache_hit.value(i)) as u64;
            if cost.is_valid(i) {
                *row.cost_usd.get_or_insert(0.0) += cost.value(i);
            }
            row.input_tokens += count(&input_tokens, i);
            row.output_tokens += count(&output_tokens, i);
            for (h, a) in [
                (&mut row.ttft, &ttft),
                (&mut row.tpot, &tpot),
                (&mut row.duration_ms, &duration),
                (&mut row.queue_time, &queue),
            ] {
                if a.is_valid(i) {
                    h.record(a.value(i));
                }
            }
            let model = opt(&response_model, i).or_else(|| opt(&request_model, i));
            let dims = [model, opt(&provider, i), opt(&engine, i), opt(&gpu_pool, i)];
            *mix.entry((service.value(i), dims)).or_default() += 1;
        }
        for ((r, minute), (part, mix)) in local {
            let route = self.names.arc(r);
            let b = self.rows.entry((route.clone(), minute)).or_default();
            b.row.route = route;
            b.row.minute = minute;
            b.row.traffic.absorb(&part);
            for ((service, dims), n) in mix {
                let key = (
                    self.names.arc(service),
                    dims.map(|d| d.map(|d| self.names.arc(d))),
                );
                *b.mix.entry(key).or_default() += n;
            }
        }
        Ok(())
    }

    pub fn finish(self) -> SpanRollup {
        let mut rows: Vec<RollupRow> = self
            .rows
            .into_values()
            .map(|b| {
                let mut row = b.row;
                row.mix = b
                    .mix
                    .into_iter()
                    .map(
                        |((service, [model, provider, engine, gpu_pool]), requests)| MixCount {
                            service,
                            model,
                            provider,
                            engine,
                            gpu_pool,
                            requests,
                        },
                    )
                    .collect();
                row.mix.sort_by_key(|m| std::cmp::Reverse(m.requests));
                row
            })
            .collect();
        rows.sort_by(|a, b| (&a.route, a.minute).cmp(&(&b.route, b.minute)));
        SpanRollup { rows }
    }
}

/// Summarizes a spans Parquet file, reading only the columns a rollup needs (for files written
/// before rollups were kept).
pub fn read_from_parquet(file: bytes::Bytes) -> Result<SpanRollup> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)?;
    let mask = ProjectionMask::columns(reader.parquet_schema(), COLUMNS.iter().copied());
    let mut builder = RollupBuilder::new(None);
    for batch in reader.with_projection(mask).build()? {
        builder.add(&batch?)?;
    }
    Ok(builder.finish())
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef> {
    batch
        .column_by_name(name)
        .ok_or_else(|| StoreError::Corrupt(format!("a spans batch has no `{name}` column")))
}

/// An optional column, or nulls where a file predates it.
fn column_or_nulls(batch: &RecordBatch, name: &str, data_type: &DataType) -> Result<ArrayRef> {
    let c = match batch.column_by_name(name) {
        Some(c) => c.clone(),
        None => new_null_array(data_type, batch.num_rows()),
    };
    Ok(match c.data_type() == data_type {
        true => c,
        // Query batches and some readers give `Utf8View` for strings.
        false => cast(&c, data_type)?,
    })
}

fn opt(a: &StringArray, i: usize) -> Option<&str> {
    a.is_valid(i).then(|| a.value(i))
}

fn strings(batch: &RecordBatch, name: &str) -> Result<StringArray> {
    Ok(column_or_nulls(batch, name, &DataType::Utf8)?
        .as_string::<i32>()
        .clone())
}

fn ints(batch: &RecordBatch, name: &str) -> Result<Int64Array> {
    Ok(column_or_nulls(batch, name, &DataType::Int64)?
        .as_primitive()
        .clone())
}

fn floats(batch: &RecordBatch, name: &str) -> Result<Float64Array> {
    Ok(column_or_nulls(batch, name, &DataType::Float64)?
        .as_primitive()
        .clone())
}

fn bools(batch: &RecordBatch, name: &str) -> Result<BooleanArray> {
    Ok(column_or_nulls(batch, name, &DataType::Boolean)?
        .as_boolean()
        .clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{spans_batch, GenAiFields, SpanRecord};

    #[test]
    fn quantiles_are_within_the_bucket_width() {
        let mut h = Histogram::default();
        let values: Vec<f64> = (1..=1000).map(|i| i as f64 * 0.001).collect();
        for v in &values {
            h.record(*v);
        }
        h.record(f64::NAN);
        assert_eq!(h.count(), 1000);
        for (q, exact) in [(0.5, 0.5), (0.95, 0.95), (0.99, 0.99), (1.0, 1.0)] {
            let got = h.quantile(q).unwrap();
            assert!(
                (got - exact).abs() / exact < 0.025,
                "q{q}: {got} vs {exact}"
            );
        }
        let mut zeros = Histogram::default();
        zeros.record(0.0);
        assert_eq!(zeros.quantile(0.5), Some(0.0));
        assert_eq!(Histogram::default().quantile(0.5), None);
    }

    #[test]
    fn merged_histograms_equal_one_over_all_values() {
        let (mut a, mut b, mut all) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for i in 0..500 {
            let v = 0.01 * (i % 37) as f64 + 0.001 * i as f64;
            if i % 3 == 0 { &mut a } else { &mut b }.record(v);
            all.record(v);
        }
        a.merge(&b);
        assert_eq!(a, all);
    }

    fn span(route: &str, minute: i64, model: &str, ttft: f64, error: bool) -> SpanRecord {
        let start = 1_763_899_200_000_000_000 + minute * NANOS_PER_MINUTE + 1_000;
        SpanRecord {
            project: "p".into(),
            trace_id: format!("{:032x}", 1),
            span_id: format!("{:016x}", 1),
            service_name: "svc".into(),
            span_name: "chat".into(),
            span_kind: "CLIENT",
            start_time_unix_nano: start,
            end_time_unix_nano: start + 2_000_000,
            status_code: if error { "ERROR" } else { "OK" },
            gen_ai: GenAiFields {
                route: route.into(),
                request_model: Some(model.into()),
                response_time_to_first_chunk: Some(ttft),
                cost_usd: Some(0.5),
                retry_count: Some(2),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn spans_roll_up_by_route_minute_and_dimensions_and_survive_encoding() {
        let rows = vec![
            span("a", 0, "m1", 0.1, false),
            span("a", 0, "m1", 0.3, true),
            span("a", 0, "m2", 0.2, false),
            span("a", 1, "m1", 0.1, false),
            span("b", 0, "m1", 0.1, false),
        ];
        let batch = spans_batch(&rows).unwrap();
        let rollup = SpanRollup::of_batches([&batch, &batch]).unwrap();
        assert_eq!(rollup.rows.len(), 3, "a at minutes 0 and 1, b at 0");
        let first = &rollup.rows[0];
        assert_eq!((&*first.route, first.minute % NANOS_PER_MINUTE), ("a", 0));
        let t = &first.traffic;
        assert_eq!((t.requests, t.errors, t.retries), (6, 2, 12));
        assert_eq!(t.cost_usd, Some(3.0));
        assert_eq!(t.ttft.count(), 6);
        assert_eq!(t.duration_ms.quantile(1.0).map(|v| v.round()), Some(2.0));
        let mix: Vec<(Option<&str>, &str, u64)> = first
            .mix
            .iter()
            .map(|m| (m.model.as_deref(), &*m.service, m.requests))
            .collect();
        assert_eq!(mix, vec![(Some("m1"), "svc", 4), (Some("m2"), "svc", 2)]);

        let mut only_b = RollupBuilder::new(Some("b"));
        only_b.add(&batch).unwrap();
        assert_eq!(only_b.finish().rows.len(), 1);

        let bytes = rollup.to_bytes().unwrap();
        assert_eq!(SpanRollup::from_bytes(&bytes).unwrap(), Some(rollup));
        assert_eq!(SpanRollup::from_bytes(&[99, 1, 2]).unwrap(), None);
    }
}
