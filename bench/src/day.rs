//! One day of synthetic traffic (10 M spans by default) loaded through Plumb's own OTLP/gRPC path
//! into a data directory once, and reused by the benchmarks that query it (`query`, `timeline`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use prost::Message;

use crate::server::Server;
use crate::{gen, raw_grpc};

// Where the day comes from and goes, as the benchmarks that query it take it on the command
// line. (A plain comment: clap would show a doc comment as each benchmark's description.)
#[derive(Debug, clap::Args)]
pub struct DayArgs {
    /// The `plumb` binary to load and serve the day with.
    #[arg(long)]
    pub plumb: PathBuf,
    #[arg(long, default_value_t = 10_000_000)]
    pub spans: u64,
    #[arg(long, default_value = "bench-data/query")]
    pub data_dir: PathBuf,
    #[arg(long, default_value_t = 1000)]
    pub prompt_bytes: usize,
}

impl DayArgs {
    /// Loads the day unless a previous run did.
    pub async fn ensure_loaded(&self) -> anyhow::Result<()> {
        ensure_loaded(&self.plumb, &self.data_dir, self.spans, self.prompt_bytes).await
    }

    /// Starts Plumb on the loaded day; returns it with its HTTP address.
    pub fn serve(&self) -> anyhow::Result<(Server, String)> {
        let config = config(&self.data_dir)?;
        let (server, [_, _, api]) = Server::plumb(&self.plumb, &self.data_dir, &[], Some(&config))?;
        Ok((server, api))
    }
}

/// 2025-11-23T00:00:00Z, the start of the day.
pub const DAY_START: u64 = 1_763_856_000_000_000_000;
pub const DAY_NANOS: u64 = 86_400_000_000_000;
pub const BATCH: usize = 512;

/// Loads `spans` spans over the day into `data_dir` unless a previous run did (a marker file
/// says so). Large flushes leave few, large files, as compaction would.
pub async fn ensure_loaded(
    plumb: &Path,
    data_dir: &Path,
    spans: u64,
    prompt_bytes: usize,
) -> anyhow::Result<()> {
    let marker = data_dir.join(format!("loaded-{spans}"));
    if marker.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(data_dir);
    std::fs::create_dir_all(data_dir)?;
    let config_arg = config(data_dir)?;
    let (server, [grpc, _, _]) = Server::plumb(
        plumb,
        data_dir,
        &["--flush-age-secs", "600"],
        Some(&config_arg),
    )?;
    eprintln!("loading {spans} spans over one day through OTLP/gRPC...");
    load(spans, prompt_bytes, &grpc).await?;
    server.stop()?;
    std::fs::write(&marker, "")?;
    Ok(())
}

/// Writes the servers' config beside the data dir and returns its path: large flushes, and no
/// online evaluation. A day loaded in minutes is a backlog of millions of new spans that the
/// evaluators would work through for half an hour, competing with the load and the queries
/// being measured; at a steady rate they keep up with ingest instead.
pub fn config(data_dir: &Path) -> anyhow::Result<String> {
    let config = data_dir.with_extension("toml");
    std::fs::write(
        &config,
        "[storage]\nflush_bytes = 536870912\nmax_buffered_bytes = 2147483648\n\n[evals]\nenabled = []\n",
    )?;
    Ok(config.to_string_lossy().into_owned())
}

async fn load(spans: u64, prompt_bytes: usize, grpc: &str) -> anyhow::Result<()> {
    let batches = spans.div_ceil(BATCH as u64);
    let step = DAY_NANOS / spans.max(1);
    let workers = 4u64;
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let channel = tonic::transport::Endpoint::from_shared(grpc.to_string())?
            .connect()
            .await?;
        let (next, prompt) = (next.clone(), prompt_bytes);
        tasks.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if seq >= batches {
                    return Ok::<_, anyhow::Error>(());
                }
                let start = DAY_START + seq * BATCH as u64 * step;
                let body = Bytes::from(gen::batch(seq, BATCH, start, step, prompt).encode_to_vec());
                loop {
                    match raw_grpc::export(&channel, body.clone()).await {
                        Ok(()) => break,
                        Err(s) if s.code() == tonic::Code::ResourceExhausted => {
                            tokio::time::sleep(Duration::from_millis(200)).await
                        }
                        Err(s) => anyhow::bail!("export failed: {s}"),
                    }
                }
                if seq % 2000 == 0 {
                    eprintln!(
                        "  {} / {batches} batches, {:.0} s",
                        seq,
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    eprintln!(
        "loaded {} spans in {:.0} s",
        batches * BATCH as u64,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
