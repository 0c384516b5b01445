//! Dashboard benchmark: the reliability timeline page of one route over 24 hours of 10 M spans
//! (the `query` benchmark's day, loaded once through OTLP/gRPC), rendered server-side and timed
//! end to end over HTTP; next to it, in the same run, its baseline: the timeline's main
//! aggregation alone (per-bucket count, errors and TTFT/TPOT percentiles of the route) through
//! `POST /api/v1/sql`. Also the size of each page (HTML + CSS + JS).

use std::time::{Duration, Instant};

use clap::Parser;
use plumb_bench::day;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    day: day::DayArgs,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    #[arg(long, default_value = "support/answer")]
    route: String,
}

const FROM: &str = "2025-11-23T00:00:00Z";
const TO: &str = "2025-11-24T00:00:00Z";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<(Duration, usize)> {
    let t = Instant::now();
    let resp = client.get(url).send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "{url}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok((t.elapsed(), body.len()))
}

async fn sql(client: &reqwest::Client, api: &str, q: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let resp = client
        .post(format!("{api}/api/v1/sql"))
        .json(&serde_json::json!({ "query": q }))
        .send()
        .await?;
    let status = resp.status();
    let body = resp.text().await?;
    anyhow::ensure!(status.is_success(), "sql: {body}");
    Ok(t.elapsed())
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.day.ensure_loaded().await?;
    let (server, api) = args.day.serve()?;
    let client = reqwest::Client::new();
    let range = format!("from={FROM}&to={TO}");
    let route = encode(&args.route);
    let page = format!("{api}/routes/{route}?{range}");
    let json = format!("{api}/api/v1/timeline?route={route}&{range}");
    // 15-minute buckets over the day, as the page uses.
    let baseline = format!(
        "SELECT date_bin(INTERVAL '900 seconds', start_time, TIMESTAMP '1970-01-01T00:00:00Z') AS b, count(*), \
         count(*) FILTER (WHERE status_code = 'ERROR'), \
         approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.5), \
         approx_percentile_cont(gen_ai_response_time_to_first_chunk, 0.95), \
         approx_percentile_cont(time_per_output_token, 0.5), approx_percentile_cont(time_per_output_token, 0.95) \
         FROM spans WHERE route = '{}' AND start_time >= '{FROM}' AND start_time < '{TO}' GROUP BY 1",
        args.route.replace('\'', "''")
    );

    let (_, page_bytes) = get(&client, &page).await?; // warm-up
    let (_, json_bytes) = get(&client, &json).await?;
    sql(&client, &api, &baseline).await?;
    let (mut page_ms, mut json_ms, mut base_ms) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..args.runs {
        page_ms.push(get(&client, &page).await?.0.as_secs_f64() * 1e3);
        json_ms.push(get(&client, &json).await?.0.as_secs_f64() * 1e3);
        base_ms.push(sql(&client, &api, &baseline).await?.as_secs_f64() * 1e3);
    }
    let mut assets = 0;
    for a in ["/assets/plumb.css", "/assets/plumb.js"] {
        assets += get(&client, &format!("{api}{a}")).await?.1;
    }
    let mut sizes = Vec::new();
    for (name, path) in [
        ("overview", format!("/?{range}")),
        ("timeline", format!("/routes/{route}?{range}")),
        ("traces", format!("/traces?route={route}&{range}")),
        ("evals", format!("/evals?{range}")),
        ("alerts", "/alerts".to_string()),
        ("sql", "/sql?q=SELECT+*+FROM+spans+LIMIT+1000".to_string()),
    ] {
        let (t, bytes) = get(&client, &format!("{api}{path}")).await?;
        sizes.push((name, bytes, t.as_secs_f64() * 1e3));
    }
    let rss = server.peak_rss();
    server.stop()?;

    let (p, j, b) = (median(page_ms.clone()), median(json_ms), median(base_ms));
    println!(
        "route {} over {FROM}..{TO}, {} spans in the day, {} runs (median), Plumb peak RSS {:.0} MiB",
        args.route,
        args.day.spans,
        args.runs,
        rss as f64 / 1048576.0
    );
    println!();
    println!("| what | median ms | / baseline |");
    println!("| --- | --- | --- |");
    println!(
        "| timeline page (HTML, {page_bytes} bytes) | {p:.1} | {:.2} |",
        p / b
    );
    println!(
        "| timeline JSON ({json_bytes} bytes) | {j:.1} | {:.2} |",
        j / b
    );
    println!("| baseline: the main aggregation alone, POST /api/v1/sql | {b:.1} | 1.00 |");
    println!();
    println!(
        "page runs (ms): {:?}",
        page_ms
            .iter()
            .map(|v| format!("{v:.1}"))
            .collect::<Vec<_>>()
    );
    println!();
    println!("| page | HTML bytes | + CSS/JS bytes | total | render ms (one run) |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, bytes, ms) in sizes {
        println!(
            "| {name} | {bytes} | {assets} | {} | {ms:.1} |",
            bytes + assets
        );
    }
    Ok(())
}
