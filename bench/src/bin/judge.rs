//! Judge speed: pairs per second and request latency of Plumb's judge server (ONNX Runtime,
//! dynamic batching) under concurrent load, at 128 and 256 tokens per model input, next to
//! PyTorch running the same model on the same inputs (bench/judge_torch.py), in the same run.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use plumb_bench::gen::{Rng, WORDS};
use plumb_bench::server::Server;
use serde_json::{json, Value};

#[derive(Parser, Clone)]
struct Args {
    #[arg(long)]
    plumb: PathBuf,
    /// Python with torch and tokenizers (e.g. .venv-train/bin/python).
    #[arg(long)]
    python: PathBuf,
    /// The groundedness model directory (plumb-judge.json, model.onnx, tokenizer.json).
    #[arg(long, default_value = "judges/models/groundedness")]
    model: PathBuf,
    /// The same model's fp32 PyTorch weights, for the baseline.
    #[arg(long)]
    torch_weights: PathBuf,
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Pairs per request.
    #[arg(long, default_value_t = 8)]
    items: usize,
    #[arg(long, value_delimiter = ',', default_value = "128,256")]
    tokens: Vec<usize>,
}

/// (context, claim) pairs whose encoding fills about `tokens` tokens (~1.3 per word).
fn pairs(tokens: usize, n: usize, seed: u64) -> Vec<(String, String)> {
    let mut rng = Rng::new(seed);
    let mut words = |k: usize| {
        (0..k)
            .map(|_| WORDS[rng.below(WORDS.len() as u64) as usize])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let claim_words = 12;
    let context_words = (tokens as f64 / 1.3) as usize - claim_words;
    (0..n)
        .map(|_| (words(context_words), format!("{}.", words(claim_words))))
        .collect()
}

/// A copy of the model directory that reads `tokens` tokens per input and never windows, so
/// each pair is exactly one model input of that length.
fn model_at(model: &Path, tokens: usize, dir: &Path) -> anyhow::Result<PathBuf> {
    let out = dir.join(format!("models-{tokens}/groundedness"));
    std::fs::create_dir_all(&out)?;
    let mut manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("plumb-judge.json"))?)?;
    // Every file, not only the model and tokenizer: ONNX Runtime looks for a model's external
    // data (the groundedness model's base weights) next to the path it was given.
    for entry in std::fs::read_dir(model)? {
        let entry = entry?;
        let target = out.join(entry.file_name());
        if entry.file_name() != "plumb-judge.json" && !target.exists() {
            std::os::unix::fs::symlink(std::fs::canonicalize(entry.path())?, target)?;
        }
    }
    manifest["max_length"] = json!(tokens);
    manifest["window_words"] = json!(100_000);
    std::fs::write(out.join("plumb-judge.json"), manifest.to_string())?;
    Ok(out.parent().expect("has a parent").to_path_buf())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

struct Load {
    pairs_per_sec: f64,
    p50_ms: f64,
    p95_ms: f64,
}

async fn load(url: &str, pairs: Arc<Vec<(String, String)>>, args: &Args) -> anyhow::Result<Load> {
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..args.clients {
        let (client, pairs, url, items) =
            (client.clone(), pairs.clone(), url.to_string(), args.items);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut done = 0usize;
            let mut i = c * 997;
            while Instant::now() < deadline {
                let batch: Vec<Value> = (0..items)
                    .map(|k| {
                        let (context, claim) = &pairs[(i + k) % pairs.len()];
                        json!({"context": context, "response": claim})
                    })
                    .collect();
                i += items;
                let t = Instant::now();
                let resp = client
                    .post(&url)
                    .json(&json!({ "items": batch }))
                    .send()
                    .await?;
                anyhow::ensure!(resp.status().is_success(), "judge said {}", resp.status());
                resp.bytes().await?;
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
                done += items;
            }
            Ok::<_, anyhow::Error>((latencies, done))
        }));
    }
    let mut latencies = Vec::new();
    let mut done = 0;
    for t in tasks {
        let (l, d) = t.await??;
        latencies.extend(l);
        done += d;
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    Ok(Load {
        pairs_per_sec: done as f64 / elapsed,
        p50_ms: percentile(&latencies, 0.5),
        p95_ms: percentile(&latencies, 0.95),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let work = tempfile_dir()?;
    println!(
        "judge speed: {} clients x {} pairs per request, {} s per run, model {}",
        args.clients,
        args.items,
        args.seconds,
        args.model.display()
    );
    println!("| tokens | Plumb pairs/s | Plumb p50 ms | Plumb p95 ms | PyTorch pairs/s | PyTorch p50 ms | PyTorch p95 ms | Plumb / PyTorch |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for &tokens in &args.tokens {
        let inputs = Arc::new(pairs(tokens, 4096, tokens as u64));
        let models = model_at(&args.model, tokens, &work)?;
        let (server, url) = Server::judge(&args.plumb, &models)?;
        // Warm up: the first batches allocate ONNX Runtime's arena.
        let warm = Args {
            seconds: 2,
            ..args.clone()
        };
        load(
            &format!("{url}/v1/judge/groundedness"),
            inputs.clone(),
            &warm,
        )
        .await?;
        let plumb = load(
            &format!("{url}/v1/judge/groundedness"),
            inputs.clone(),
            &args,
        )
        .await?;
        server.stop()?;

        let pairs_file = work.join(format!("pairs-{tokens}.json"));
        std::fs::write(&pairs_file, serde_json::to_string(&*inputs)?)?;
        let out = Command::new(&args.python)
            .arg("bench/judge_torch.py")
            .args(["--pairs", pairs_file.to_str().unwrap()])
            .args([
                "--tokenizer",
                args.model.join("tokenizer.json").to_str().unwrap(),
            ])
            .args(["--weights", args.torch_weights.to_str().unwrap()])
            .args(["--max-length", &tokens.to_string()])
            .args(["--seconds", &args.seconds.to_string()])
            .args(["--batch", "32"])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "judge_torch.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let torch: Value = serde_json::from_slice(&out.stdout)?;
        let torch_rate = torch["pairs_per_sec"].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {tokens} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
            plumb.pairs_per_sec,
            plumb.p50_ms,
            plumb.p95_ms,
            torch_rate,
            torch["p50_ms"].as_f64().unwrap_or(f64::NAN),
            torch["p95_ms"].as_f64().unwrap_or(f64::NAN),
            plumb.pairs_per_sec / torch_rate
        );
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("plumb-judge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
