//! Flush cost of the per-minute rollups: the benchmark's synthetic GenAI spans (converted by the
//! collector as on ingest) are flushed to Parquet in memory the way a flush writes them, which
//! includes building each spans file's rollup; in the same run, the rollup alone over the same
//! batches. The ratio is the share of a flush that rollups cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use plumb_bench::gen;
use plumb_collector::pricing::PriceTable;
use plumb_store::records::spans_batch;
use plumb_store::rollup::SpanRollup;
use plumb_store::{persister, Table};

#[derive(Parser)]
struct Args {
    /// Spans per flush (the default flush of 16 MiB holds about 12k of these spans).
    #[arg(long, default_value_t = 16_384)]
    spans: usize,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long, default_value_t = 1000)]
    prompt_bytes: usize,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let prices = PriceTable::default();
    let (per_batch, mut batches) = (512, Vec::new());
    let step_ns = 86_400_000_000_000 / 10_000_000;
    for seq in 0..args.spans.div_ceil(per_batch) as u64 {
        let start = 1_763_856_000_000_000_000 + seq * per_batch as u64 * step_ns;
        let req = gen::batch(seq, per_batch, start, step_ns, args.prompt_bytes);
        let (rows, _) = plumb_collector::spans::convert(req, "default", &prices)?;
        batches.push(spans_batch(&rows)?);
    }
    let n: usize = batches.iter().map(|b| b.num_rows()).sum();
    let store: Arc<dyn object_store::ObjectStore> = Arc::new(object_store::memory::InMemory::new());

    let (mut flush, mut rollup) = (Vec::new(), Vec::new());
    let mut rows = 0;
    for _ in 0..args.runs + 1 {
        let t = Instant::now();
        let files = persister::persist(&store, Table::Spans, "default", &batches).await?;
        flush.push(t.elapsed());
        let t = Instant::now();
        let r = SpanRollup::of_batches(&batches)?;
        rollup.push(t.elapsed());
        rows = r.rows.len();
        anyhow::ensure!(files.iter().all(|f| f.rollup.is_some()));
    }
    // The first run warms allocators and caches.
    let (flush, rollup) = (median(flush[1..].to_vec()), median(rollup[1..].to_vec()));
    println!(
        "{n} spans per flush, {rows} rollup rows, {} runs (median)\n",
        args.runs
    );
    println!("| what | median ms | / baseline |\n| --- | --- | --- |");
    println!(
        "| rollup alone | {:.1} | {:.3} |",
        rollup.as_secs_f64() * 1e3,
        rollup.as_secs_f64() / flush.as_secs_f64()
    );
    println!(
        "| baseline: the flush (sort, Parquet encoding with its rollup) | {:.1} | 1.000 |",
        flush.as_secs_f64() * 1e3
    );
    Ok(())
}
