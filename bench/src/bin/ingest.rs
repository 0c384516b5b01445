//! Ingest benchmark: batches of 512 GenAI spans (~1 KB of prompt text each) over OTLP gRPC and
//! HTTP/protobuf from concurrent clients on this machine, against Plumb (durable: every
//! acknowledgement follows a WAL fsync) and, in the same run, rotel with its blackhole exporter
//! (an OTLP collector that decodes and drops: the ceiling for receiving alone).
//!
//! Prints spans/s, Plumb/rotel ratio, time from acknowledgement to visible in SQL, peak RSS and
//! bytes on disk per byte of OTLP protobuf received.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use plumb_bench::gen;
use plumb_bench::raw_grpc;
use plumb_bench::server::{dir_bytes, Server};
use prost::Message;

#[derive(Parser)]
struct Args {
    /// The plumb binary (release build).
    #[arg(long)]
    plumb: PathBuf,
    /// rotel's agent binary (from the `rotel` PyPI package); skipped when absent.
    #[arg(long)]
    rotel: Option<PathBuf>,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Python with `arize-phoenix` installed; Phoenix is skipped when absent.
    #[arg(long)]
    phoenix_python: Option<PathBuf>,
    /// Distinct pre-encoded batches, sent in a cycle.
    #[arg(long, default_value_t = 240)]
    batches: usize,
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    #[arg(long, default_value_t = 1000)]
    prompt_bytes: usize,
    /// A plumb.toml for the server under test (defaults otherwise).
    #[arg(long)]
    plumb_config: Option<String>,
    /// Where Plumb's data goes (emptied first).
    #[arg(long, default_value = "bench-data/ingest")]
    data_dir: PathBuf,
}

#[derive(Clone, Copy, PartialEq)]
enum Proto {
    Grpc,
    Http,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    bytes: AtomicU64,
    refused: AtomicU64,
}

struct LoadResult {
    spans_per_sec: f64,
    batches: u64,
    proto_bytes: u64,
    refused: u64,
}

async fn load(
    proto: Proto,
    endpoint: &str,
    payloads: Arc<Vec<Bytes>>,
    args: &Args,
) -> anyhow::Result<LoadResult> {
    let counters = Arc::new(Counters::default());
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for w in 0..args.concurrency {
        let (payloads, counters, endpoint) =
            (payloads.clone(), counters.clone(), endpoint.to_string());
        let channel = match proto {
            Proto::Grpc => Some(
                tonic::transport::Endpoint::from_shared(endpoint.clone())?
                    .connect()
                    .await?,
            ),
            Proto::Http => None,
        };
        let http = reqwest::Client::new();
        let concurrency = args.concurrency;
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while Instant::now() < deadline {
                let body = payloads[i % payloads.len()].clone();
                let len = body.len() as u64;
                let ok = match &channel {
                    Some(ch) => raw_grpc::export(ch, body).await.is_ok(),
                    None => http
                        .post(format!("{endpoint}/v1/traces"))
                        .header("Content-Type", "application/x-protobuf")
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().is_success())
                        .unwrap_or(false),
                };
                if ok {
                    counters.batches.fetch_add(1, Ordering::Relaxed);
                    counters.bytes.fetch_add(len, Ordering::Relaxed);
                    i += concurrency;
                } else {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    let start = Instant::now();
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let batches = counters.batches.load(Ordering::Relaxed);
    Ok(LoadResult {
        spans_per_sec: (batches * args.batch_size as u64) as f64 / elapsed,
        batches,
        proto_bytes: counters.bytes.load(Ordering::Relaxed),
        refused: counters.refused.load(Ordering::Relaxed),
    })
}

/// Exports one marker span and measures the time from its acknowledgement until SQL sees it.
async fn ack_to_visible(otlp_http: &str, api: &str, seq: u64) -> anyhow::Result<Duration> {
    let req = gen::batch(seq, 1, 1_763_899_200_000_000_000, 1, 100);
    let trace_id = format!("{:032x}", ((seq as u128) << 64) | 1);
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("{otlp_http}/v1/traces"))
        .header("Content-Type", "application/x-protobuf")
        .body(req.encode_to_vec())
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "marker export refused: {}",
        resp.status()
    );
    let acked = Instant::now();
    loop {
        let v: serde_json::Value = client
            .post(format!("{api}/api/v1/sql"))
            .json(&serde_json::json!({"query": format!("SELECT count(*) FROM spans WHERE trace_id = '{trace_id}'")}))
            .send()
            .await?
            .json()
            .await?;
        if v["rows"][0][0] == 1 {
            return Ok(acked.elapsed());
        }
        anyhow::ensure!(
            acked.elapsed() < Duration::from_secs(30),
            "marker span never became visible"
        );
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    eprintln!(
        "generating {} batches of {} spans...",
        args.batches, args.batch_size
    );
    let step = 1_000_000; // 1 ms between spans: a realistic spread over the hour
    let payloads: Arc<Vec<Bytes>> = Arc::new(
        (0..args.batches as u64)
            .map(|seq| {
                let start = 1_763_899_200_000_000_000 + seq * args.batch_size as u64 * step;
                Bytes::from(
                    gen::batch(seq, args.batch_size, start, step, args.prompt_bytes)
                        .encode_to_vec(),
                )
            })
            .collect(),
    );
    let avg = payloads.iter().map(|p| p.len()).sum::<usize>() as f64 / payloads.len() as f64;
    eprintln!(
        "average batch: {:.0} bytes of OTLP protobuf ({:.0} bytes/span)",
        avg,
        avg / args.batch_size as f64
    );

    let mut rows = Vec::new();
    let mut phoenix_rows: Vec<(&str, f64, f64, u64)> = Vec::new();
    for proto in [Proto::Grpc, Proto::Http] {
        let name = if proto == Proto::Grpc {
            "grpc"
        } else {
            "http/protobuf"
        };
        // Plumb, durable.
        let _ = std::fs::remove_dir_all(&args.data_dir);
        let (server, [grpc, otlp_http, api]) = Server::plumb(
            &args.plumb,
            &args.data_dir,
            &[],
            args.plumb_config.as_deref(),
        )?;
        let endpoint = if proto == Proto::Grpc {
            grpc
        } else {
            otlp_http.clone()
        };
        let probe = {
            let (otlp_http, api) = (otlp_http.clone(), api.clone());
            let seconds = args.seconds;
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let start = Instant::now();
                let mut seq = 10_000_000;
                while start.elapsed() < Duration::from_secs(seconds.saturating_sub(1)) {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    if let Ok(d) = ack_to_visible(&otlp_http, &api, seq).await {
                        lat.push(d);
                    }
                    seq += 1;
                }
                lat
            })
        };
        let r = load(proto, &endpoint, payloads.clone(), &args).await?;
        let mut lat = probe.await?;
        lat.sort();
        let rss = server.peak_rss();
        let cpu = server.cpu_seconds();
        server.stop()?;
        let parquet = dir_bytes(&args.data_dir.join("objects"), ".parquet");
        let p50 = lat.get(lat.len() / 2).copied().unwrap_or_default();
        let max = lat.last().copied().unwrap_or_default();
        println!(
            "plumb {name}: {:.0} spans/s ({} batches, {} refused), ack->visible p50 {:.1} ms max {:.1} ms ({} probes), peak RSS {:.0} MiB, server CPU {:.1} µs/span, parquet {:.1} MiB for {:.1} MiB OTLP = 1/{:.1}",
            r.spans_per_sec, r.batches, r.refused, p50.as_secs_f64() * 1e3, max.as_secs_f64() * 1e3, lat.len(),
            mib(rss), cpu * 1e6 / (r.batches * args.batch_size as u64).max(1) as f64, mib(parquet), mib(r.proto_bytes), r.proto_bytes as f64 / parquet.max(1) as f64
        );
        let plumb_rate = r.spans_per_sec;

        // rotel, decode and drop.
        let rotel_rate = match &args.rotel {
            Some(bin) if bin.exists() => {
                let (server, [grpc, http]) = Server::rotel(bin)?;
                let endpoint = if proto == Proto::Grpc { grpc } else { http };
                let r = load(proto, &endpoint, payloads.clone(), &args).await?;
                let rss = server.peak_rss();
                let cpu = server.cpu_seconds();
                server.stop()?;
                println!(
                    "rotel {name} (blackhole): {:.0} spans/s ({} refused), peak RSS {:.0} MiB, CPU {:.1} µs/span",
                    r.spans_per_sec,
                    r.refused,
                    mib(rss),
                    cpu * 1e6 / (r.batches * args.batch_size as u64).max(1) as f64
                );
                Some(r.spans_per_sec)
            }
            _ => None,
        };
        // Arize Phoenix: acknowledged spans, and spans actually stored in its SQLite database.
        if let Some(python) = args.phoenix_python.as_ref().filter(|p| p.exists()) {
            let dir = args.data_dir.with_extension("phoenix");
            let _ = std::fs::remove_dir_all(&dir);
            let (server, [grpc, http]) = Server::phoenix(python, &dir)?;
            let endpoint = if proto == Proto::Grpc { grpc } else { http };
            let started = Instant::now();
            let r = load(proto, &endpoint, payloads.clone(), &args).await?;
            let elapsed = started.elapsed().as_secs_f64();
            let stored = phoenix_span_count(python, &dir);
            let rss = server.peak_rss();
            server.stop()?;
            println!(
                "phoenix {name}: {:.0} spans/s acknowledged, {:.0} spans/s stored in SQLite ({stored} spans in {elapsed:.0} s), peak RSS {:.0} MiB",
                r.spans_per_sec, stored as f64 / elapsed, mib(rss)
            );
            phoenix_rows.push((name, r.spans_per_sec, stored as f64 / elapsed, rss));
        }
        rows.push((
            name,
            plumb_rate,
            rotel_rate,
            p50,
            max,
            rss,
            r.proto_bytes,
            parquet,
        ));
    }

    println!();
    println!("| protocol | Plumb spans/s (durable) | rotel spans/s (blackhole) | Plumb / rotel | ack->visible p50 / max | Plumb peak RSS | OTLP bytes / Parquet bytes |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, plumb, rotel, p50, max, rss, proto, parquet) in rows {
        println!(
            "| {name} | {plumb:.0} | {} | {} | {:.1} ms / {:.1} ms | {:.0} MiB | {:.1} |",
            rotel.map_or("-".into(), |r| format!("{r:.0}")),
            rotel.map_or("-".into(), |r| format!("{:.2}", plumb / r)),
            p50.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3,
            mib(rss),
            proto as f64 / parquet.max(1) as f64
        );
    }
    for (name, acked, stored, rss) in phoenix_rows {
        println!("| {name}, Arize Phoenix | acknowledged {acked:.0}, stored {stored:.0} | | | | {:.0} MiB | |", mib(rss));
    }
    Ok(())
}

/// Spans Phoenix has written to its SQLite database so far.
fn phoenix_span_count(python: &std::path::Path, dir: &std::path::Path) -> u64 {
    let script = "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM spans').fetchone()[0])";
    std::process::Command::new(python)
        .args(["-c", script, &dir.join("phoenix.db").to_string_lossy()])
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(0)
}
