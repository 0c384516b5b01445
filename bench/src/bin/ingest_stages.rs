//! Where an ingested span's CPU goes, stage by stage, on one thread: protobuf decoding (the
//! baseline: every OTLP receiver pays it, rotel included), conversion to rows (validation,
//! GenAI normalization, message parsing, cost), building the Arrow batch, encoding the WAL frame,
//! and the flush to Parquet (sort, encode, zstd, trace-id filter, rollup) into an in-memory
//! object store. Each stage is timed over the same pre-encoded requests the ingest benchmark
//! sends; the fastest of `--runs` rounds is kept, because on a shared VM noise only ever adds
//! time. The end-to-end server figure (`ingest`) adds the network, HTTP/2 and the WAL's fsync.
//! Allocations are counted too: unlike time, the count is exact on any machine, and in the
//! server, with its large working set, each allocation tends to touch memory that is no longer
//! in cache.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};
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

/// The system allocator, counting allocations.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

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

/// A stage's fastest round and how many allocations one round makes.
#[derive(Clone, Copy)]
struct Cost {
    time: Duration,
    allocations: u64,
}

/// Runs `stage` `runs` times and keeps the fastest round.
fn fastest<T>(
    runs: usize,
    mut stage: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<(Cost, T)> {
    let mut best: Option<(Cost, T)> = None;
    for _ in 0..runs.max(1) {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let t = Instant::now();
        let out = stage()?;
        let time = t.elapsed();
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        if best.as_ref().is_none_or(|(b, _)| time < b.time) {
            best = Some((Cost { time, allocations }, out));
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
    let convert = Cost {
        time: convert.time.saturating_sub(clone.time),
        allocations: convert.allocations.saturating_sub(clone.allocations),
    };
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
    let mut flush: Option<Cost> = None;
    for _ in 0..args.runs.max(1) {
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let t = Instant::now();
        persister::persist(&store, Table::Spans, "default", &batches).await?;
        let cost = Cost {
            time: t.elapsed(),
            allocations: ALLOCATIONS.load(Ordering::Relaxed) - before,
        };
        if flush.is_none_or(|f| cost.time < f.time) {
            flush = Some(cost);
        }
    }
    let flush = flush.expect("at least one run");

    let per_span = |d: Duration| d.as_secs_f64() * 1e6 / spans;
    let stages = [
        ("protobuf decode (baseline)", decode),
        ("convert to rows", convert),
        ("Arrow batch", batch),
        ("WAL frame", wal),
        ("flush to Parquet", flush),
    ];
    let total = Cost {
        time: stages.iter().map(|(_, c)| c.time).sum(),
        allocations: stages.iter().map(|(_, c)| c.allocations).sum(),
    };
    println!(
        "{} spans in {} requests, fastest of {} rounds per stage",
        spans, args.batches, args.runs
    );
    println!("| stage | µs per span | × decode | allocations per span | × decode |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, c) in stages.into_iter().chain([("total", total)]) {
        println!(
            "| {name} | {:.2} | {:.2} | {:.1} | {:.2} |",
            per_span(c.time),
            c.time.as_secs_f64() / decode.time.as_secs_f64(),
            c.allocations as f64 / spans,
            c.allocations as f64 / decode.allocations.max(1) as f64
        );
    }
    Ok(())
}
