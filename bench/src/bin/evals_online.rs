//! Online evaluation benchmark: GenAI spans at a fixed rate (5,000/s by default) over
//! OTLP/HTTP into a release `plumb serve` with the default deterministic evaluators on, while the
//! online runner's lag (`GET /api/v1/evals/runner`: now minus the checks lane's cursor) is
//! sampled twice a second. Then one alert rule whose window crosses its line: the time from the
//! crossing (first seen by polling the rule's own query every 100 ms) to the `firing` row in
//! `alert_events`, against the evaluation interval.
//!
//! Baselines measured in the same run: the 5 s lag target, and the time from acknowledgement to
//! a span being visible in SQL (what the runner cannot beat).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Parser;
use plumb_bench::gen;
use plumb_bench::server::Server;
use prost::Message;

#[derive(Parser)]
struct Args {
    /// The plumb binary (release build).
    #[arg(long)]
    plumb: PathBuf,
    #[arg(long, default_value_t = 5000)]
    spans_per_second: u64,
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    #[arg(long, default_value_t = 1000)]
    prompt_bytes: usize,
    /// Seconds between alert evaluations.
    #[arg(long, default_value_t = 5.0)]
    alert_interval: f64,
    #[arg(long, default_value = "bench-data/evals")]
    data_dir: PathBuf,
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn sql(client: &reqwest::Client, api: &str, q: &str) -> anyhow::Result<serde_json::Value> {
    Ok(client
        .post(format!("{api}/api/v1/sql"))
        .json(&serde_json::json!({"query": q}))
        .send()
        .await?
        .json()
        .await?)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let _ = std::fs::remove_dir_all(&args.data_dir);
    std::fs::create_dir_all(&args.data_dir)?;
    let config = args.data_dir.with_extension("toml");
    std::fs::write(
        &config,
        format!("[alerts]\ninterval_secs = {}\n", args.alert_interval),
    )?;
    let (server, [_, otlp_http, api]) = Server::plumb(
        &args.plumb,
        &args.data_dir.join("data"),
        &[],
        Some(config.to_str().unwrap()),
    )?;
    let client = reqwest::Client::new();

    // Load at a fixed rate: one batch every batch_size / rate seconds, its spans starting now.
    let batches = args.spans_per_second * args.seconds / args.batch_size as u64;
    let period = Duration::from_secs_f64(args.batch_size as f64 / args.spans_per_second as f64);
    let started = Instant::now();
    let sender = {
        let (client, otlp_http) = (client.clone(), otlp_http.clone());
        let (n, prompt) = (args.batch_size, args.prompt_bytes);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            for seq in 0..batches {
                tick.tick().await;
                let body = gen::batch(seq + 1, n, now_ns(), 20_000, prompt).encode_to_vec();
                let resp = client
                    .post(format!("{otlp_http}/v1/traces"))
                    .header("Content-Type", "application/x-protobuf")
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(
                    resp.status().is_success(),
                    "export refused: {}",
                    resp.status()
                );
            }
            Ok::<_, anyhow::Error>(())
        })
    };
    let mut lags = Vec::new();
    let mut visible = Vec::new();
    let mut marker = 1u64 << 40;
    while !sender.is_finished() {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let v: serde_json::Value = client
            .get(format!("{api}/api/v1/evals/runner"))
            .send()
            .await?
            .json()
            .await?;
        if let Some(lag) = v["lanes"][0]["lag_seconds"].as_f64() {
            if started.elapsed() > Duration::from_secs(5) {
                lags.push(lag);
            }
        }
        // Ack-to-visible of a marker span, every few seconds.
        if lags.len() % 6 == 1 {
            marker += 1;
            let req = gen::batch(marker, 1, now_ns(), 1, 100);
            let trace_id = format!("{:032x}", ((marker as u128) << 64) | 1);
            client
                .post(format!("{otlp_http}/v1/traces"))
                .header("Content-Type", "application/x-protobuf")
                .body(req.encode_to_vec())
                .send()
                .await?;
            let acked = Instant::now();
            loop {
                let r = sql(
                    &client,
                    &api,
                    &format!("SELECT count(*) FROM spans WHERE trace_id = '{trace_id}'"),
                )
                .await?;
                if r["rows"][0][0] == 1 {
                    visible.push(acked.elapsed().as_secs_f64());
                    break;
                }
            }
        }
    }
    sender.await??;
    let load_secs = started.elapsed().as_secs_f64();
    let sent = batches * args.batch_size as u64;
    // Let the runner finish, then check it judged every JSON span once.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let spans = sql(
        &client,
        &api,
        "SELECT count(*) FROM spans WHERE gen_ai_output_type = 'json'",
    )
    .await?["rows"][0][0]
        .as_u64()
        .unwrap_or(0);
    let verdicts = sql(
        &client,
        &api,
        "SELECT count(*), count(DISTINCT span_id) FROM evals WHERE evaluator = 'json_parse'",
    )
    .await?;
    lags.sort_by(f64::total_cmp);
    visible.sort_by(f64::total_cmp);

    // Alert latency: the generator breaks 1 in 20 JSON outputs; a rule at 3% over the last
    // minute crosses as soon as its window holds enough verdicts.
    let rule = serde_json::json!({"name": "bench-json", "kind": "threshold", "signal": "parse_failure_rate",
        "window": "30s", "op": ">", "value": 0.03, "min_samples": 100});
    let resp = client
        .post(format!("{api}/api/v1/alerts/rules"))
        .body(rule.to_string())
        .send()
        .await?;
    anyhow::ensure!(
        resp.status().is_success(),
        "rule refused: {}",
        resp.text().await?
    );
    // New traffic so the window fills after the rule exists.
    let window_sql = "SELECT count(*), count(*) FILTER (WHERE NOT passed) FROM evals WHERE evaluator = 'json_parse' \
        AND span_start_time >= now() - INTERVAL '30 seconds'";
    let mut crossed = None;
    let mut fired = None;
    let alert_started = Instant::now();
    let mut seq = 1u64 << 30;
    while fired.is_none() && alert_started.elapsed() < Duration::from_secs(120) {
        seq += 1;
        let body =
            gen::batch(seq, args.batch_size, now_ns(), 20_000, args.prompt_bytes).encode_to_vec();
        client
            .post(format!("{otlp_http}/v1/traces"))
            .header("Content-Type", "application/x-protobuf")
            .body(body)
            .send()
            .await?;
        let r = sql(&client, &api, window_sql).await?;
        let (n, bad) = (
            r["rows"][0][0].as_f64().unwrap_or(0.0),
            r["rows"][0][1].as_f64().unwrap_or(0.0),
        );
        if crossed.is_none() && n >= 100.0 && bad / n > 0.03 {
            crossed = Some(Instant::now());
        }
        let e = sql(
            &client,
            &api,
            "SELECT count(*) FROM alert_events WHERE rule_name = 'bench-json' AND state = 'firing'",
        )
        .await?;
        if e["rows"][0][0].as_u64().unwrap_or(0) > 0 {
            fired = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss = server.peak_rss();
    server.stop()?;

    let p = |x: f64| format!("{x:.2}");
    println!(
        "online evaluation at {} spans/s offered for {:.0} s ({} spans sent)",
        args.spans_per_second, load_secs, sent
    );
    println!(
        "  achieved rate            {:.0} spans/s",
        sent as f64 / load_secs
    );
    println!(
        "  runner lag (s)           p50 {}  p95 {}  max {}  ({} samples)",
        p(percentile(&lags, 0.5)),
        p(percentile(&lags, 0.95)),
        p(lags.last().copied().unwrap_or(f64::NAN)),
        lags.len()
    );
    println!(
        "  lag p95 / 5 s target     {:.3}",
        percentile(&lags, 0.95) / 5.0
    );
    println!(
        "  ack -> visible (s)       p50 {}  max {}  (baseline)",
        p(percentile(&visible, 0.5)),
        p(visible.last().copied().unwrap_or(f64::NAN))
    );
    println!(
        "  lag p50 / ack->visible   {:.1}",
        percentile(&lags, 0.5) / percentile(&visible, 0.5)
    );
    println!(
        "  json spans {}  json_parse verdicts {} (distinct spans {})",
        spans, verdicts["rows"][0][0], verdicts["rows"][0][1]
    );
    match (crossed, fired) {
        (Some(c), Some(f)) => {
            let d = f.saturating_duration_since(c).as_secs_f64();
            println!(
                "  alert: window crossed -> firing {:.2} s; evaluation interval {} s; ratio {:.2}",
                d,
                args.alert_interval,
                d / args.alert_interval
            );
        }
        _ => println!(
            "  alert: crossed {:?}, fired {:?} (did not complete)",
            crossed.map(|c| c.duration_since(alert_started)),
            fired.map(|f| f.duration_since(alert_started))
        ),
    }
    println!("  peak RSS {:.0} MiB", rss as f64 / (1 << 20) as f64);
    Ok(())
}
