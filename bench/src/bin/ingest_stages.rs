//! Where an ingested span's CPU goes, stage by stage, on one thread: protobuf decoding (the
//! baseline: every OTLP receiver pays it, rotel included), conversion to rows (validation,
//! GenAI normalization, message parsing, cost), building the Arrow batch, encoding the WAL frame,
//! and the flush to Parquet (sort, encode, zstd, trace-id filter, rollup) into an in-memory
//! object store. Each stage is timed over the same pre-encoded requests the ingest benchmark
//! sends; the fastest of `--runs` rounds is kept, because on a shared VM noise only ever adds
//! time. The end-to-end server figure (`ingest`) adds the network, HTTP/2 and the WAL's fsync.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use clap::Parser;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use plumb_bench::gen;
use plumb_collector::pricing::PriceTable;
use plumb_store::records::{spans_batch, SpanRecord};
use plumb_store::wal::WalEntry;
use plumb_store::{persister, Table};
use prost::Message;

#[derive(Parser)]
struct Args {
    /// Requests of `--batch-size` spans, as the ingest benchmark generates them.
    #[arg(long, default_value_t = 32)]
    batches: usize,
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    #[arg(long, default_value_t = 1000)]
    prompt_bytes: usize,
    /// Rounds per stage; the fastest is reported.
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

/// Runs `stage` `runs` times and keeps the fastest round.
fn fastest<T>(
    runs: usize,
    mut stage: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(Duration, T)> {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..runs.max(1) {
        let t = Instant::now();
        let out = stage()?;
        let took = t.elapsed();
        if best.as_ref().is_none_or(|(b, _)| took < *b) {
            best = Some((took, out));
        }
    }
    Ok(best.expect("at least one run"))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let step = 1_000_000;
    let payloads: Vec<Bytes> = (0..args.batches as u64)
        .map(|seq| {
            let start = 1_763_899_200_000_000_000 + seq * args.batch_size as u64 * step;
            Bytes::from(
                gen::batch(seq, args.batch_size, start, step, args.prompt_bytes).encode_to_vec(),
            )
        })
        .collect();
    let spans = (args.batches * args.batch_size) as f64;
    let prices = PriceTable::default();

    let (decode, requests) = fastest(args.runs, || {
        payloads
            .iter()
            .map(|p| Ok(ExportTraceServiceRequest::decode(p.clone())?))
            .collect::<anyhow::Result<Vec<_>>>()
    })?;
    let (convert, rows) = fastest(args.runs, || {
        requests
            .iter()
            .map(|r| Ok(plumb_collector::spans::convert(r.clone(), "default", &prices)?.0))
            .collect::<anyhow::Result<Vec<Vec<SpanRecord>>>>()
    })?;
    // `convert` consumes its request; the clone it needs here is not part of ingest.
    let (clone, _) = fastest(args.runs, || Ok(requests.clone()))?;
    let convert = convert.saturating_sub(clone);
    let (batch, batches) = fastest(args.runs, || {
        rows.iter()
            .map(|r| Ok(spans_batch(r)?))
            .collect::<anyhow::Result<Vec<RecordBatch>>>()
    })?;
    let (wal, _) = fastest(args.runs, || {
        batches
            .iter()
            .map(|b| {
                let entry = WalEntry {
                    table: Table::Spans,
                    project: "default".into(),
                    batch: b.clone(),
                };
                Ok(entry.encode_record()?.len())
            })
            .sum::<anyhow::Result<usize>>()
    })?;
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let mut flushes = Vec::new();
    for _ in 0..args.runs.max(1) {
        let t = Instant::now();
        persister::persist(&store, Table::Spans, "default", &batches).await?;
        flushes.push(t.elapsed());
    }
    let flush = *flushes.iter().min().expect("at least one run");

    let per_span = |d: Duration| d.as_secs_f64() * 1e6 / spans;
    let stages = [
        ("protobuf decode (baseline)", decode),
        ("convert to rows", convert),
        ("Arrow batch", batch),
        ("WAL frame", wal),
        ("flush to Parquet", flush),
    ];
    let total: Duration = stages.iter().map(|(_, d)| *d).sum();
    println!(
        "{} spans in {} requests, fastest of {} rounds per stage",
        spans, args.batches, args.runs
    );
    println!("| stage | µs per span | × decode |");
    println!("| --- | --- | --- |");
    for (name, d) in stages {
        println!(
            "| {name} | {:.2} | {:.2} |",
            per_span(d),
            d.as_secs_f64() / decode.as_secs_f64()
        );
    }
    println!(
        "| total | {:.2} | {:.2} |",
        per_span(total),
        total.as_secs_f64() / decode.as_secs_f64()
    );
    Ok(())
}
