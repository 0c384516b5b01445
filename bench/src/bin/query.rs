//! Query benchmark: N synthetic GenAI spans over one day (10 M by default) ingested through
//! Plumb's own OTLP path into Parquet, then five typical queries timed through Plumb's SQL API
//! next to DuckDB (PyPI `duckdb`) reading the very same Parquet files, in the same run.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use clap::Parser;
use plumb_bench::day;
use plumb_bench::server::dir_bytes;

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    day: day::DayArgs,
    /// Python with the `duckdb` package.
    #[arg(long)]
    python: PathBuf,
    #[arg(long, default_value_t = 5)]
    runs: usize,
}

struct Query {
    name: &'static str,
    plumb: String,
    duckdb: String,
}

fn queries(trace_id: &str) -> Vec<Query> {
    let hour = "start_time >= TIMESTAMP '2025-11-23T12:00:00Z' AND start_time < TIMESTAMP '2025-11-23T13:00:00Z'";
    let hour_duck = "start_time >= CAST('2025-11-23 12:00:00+00' AS TIMESTAMPTZ_NS) AND start_time < CAST('2025-11-23 13:00:00+00' AS TIMESTAMPTZ_NS)";
    let same = |name, q: String| Query {
        name,
        plumb: q.clone(),
        duckdb: q,
    };
    vec![
        Query {
            name: "p95 latency per route per minute, one hour",
            plumb: format!("SELECT route, date_bin(INTERVAL '1 minute', start_time) AS minute, approx_percentile_cont(duration_ms, 0.95) AS p95_ms FROM spans WHERE {hour} GROUP BY route, minute ORDER BY route, minute"),
            duckdb: format!("SELECT route, time_bucket(INTERVAL '1 minute', start_time::TIMESTAMPTZ) AS minute, approx_quantile(duration_ms, 0.95) AS p95_ms FROM spans WHERE {hour_duck} GROUP BY route, minute ORDER BY route, minute"),
        },
        same("error rate per model", "SELECT gen_ai_request_model, avg(CASE WHEN status_code = 'ERROR' THEN 1.0 ELSE 0.0 END) AS error_rate, count(*) AS n FROM spans GROUP BY gen_ai_request_model ORDER BY gen_ai_request_model".into()),
        same("token sum by service", "SELECT service_name, sum(gen_ai_usage_input_tokens) + sum(gen_ai_usage_output_tokens) AS tokens FROM spans GROUP BY service_name ORDER BY service_name".into()),
        same("one trace by id", format!("SELECT * FROM spans WHERE trace_id = '{trace_id}' ORDER BY start_time")),
        same("JSON parse failures (output type json)", "SELECT count(*) AS failures FROM spans WHERE gen_ai_output_type = 'json' AND NOT json_valid(output_text)".into()),
    ]
}

async fn plumb_query(
    client: &reqwest::Client,
    api: &str,
    sql: &str,
) -> anyhow::Result<(Duration, usize)> {
    let t = Instant::now();
    let resp = client
        .post(format!("{api}/api/v1/sql"))
        .json(&serde_json::json!({ "query": sql }))
        .send()
        .await?;
    let status = resp.status();
    let v: serde_json::Value = resp.json().await?;
    anyhow::ensure!(status.is_success(), "plumb: {v}");
    Ok((t.elapsed(), v["rows"].as_array().map_or(0, |r| r.len())))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

const DUCKDB_SCRIPT: &str = r#"
import duckdb, json, sys, time
glob, runs, queries = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
con.execute(f"CREATE VIEW spans AS SELECT * FROM read_parquet('{glob}', hive_partitioning = false)")
out = []
for q in queries:
    rows = len(con.execute(q).fetchall())  # warm-up
    times = []
    for _ in range(runs):
        t = time.perf_counter(); con.execute(q).fetchall(); times.append((time.perf_counter() - t) * 1000)
    times.sort()
    out.append({"median_ms": times[len(times) // 2], "rows": rows})
print(json.dumps({"version": duckdb.__version__, "threads": con.execute("SELECT current_setting('threads')").fetchone()[0], "results": out}))
"#;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.day.ensure_loaded().await?;
    let objects = args.day.data_dir.join("objects");
    let files = walk_count(&objects.join("spans"));
    eprintln!(
        "{} Parquet files, {:.2} GiB",
        files,
        dir_bytes(&objects, ".parquet") as f64 / (1u64 << 30) as f64
    );

    // A trace from the middle of the day.
    let seq = args.day.spans / day::BATCH as u64 / 2;
    let trace_id = format!("{:032x}", ((seq as u128) << 64) | 1);
    let qs = queries(&trace_id);

    let (server, api) = args.day.serve()?;
    let client = reqwest::Client::new();
    let mut plumb = Vec::new();
    for q in &qs {
        let (_, rows) = plumb_query(&client, &api, &q.plumb).await?; // warm-up
        let mut times = Vec::new();
        for _ in 0..args.runs {
            times.push(plumb_query(&client, &api, &q.plumb).await?.0.as_secs_f64() * 1e3);
        }
        plumb.push((median(times), rows));
    }
    let rss = server.peak_rss();
    server.stop()?;

    let glob = format!(
        "{}/spans/**/*.parquet",
        std::fs::canonicalize(&objects)?.display()
    );
    let duck_queries: Vec<&str> = qs.iter().map(|q| q.duckdb.as_str()).collect();
    let out = Command::new(&args.python)
        .args([
            "-c",
            DUCKDB_SCRIPT,
            &glob,
            &args.runs.to_string(),
            &serde_json::to_string(&duck_queries)?,
        ])
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "duckdb failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let duck: serde_json::Value = serde_json::from_slice(&out.stdout)?;

    println!("spans: {}, Parquet files: {files}, Plumb peak RSS while querying: {:.0} MiB, DuckDB {} with {} threads", args.day.spans, rss as f64 / 1048576.0, duck["version"], duck["threads"]);
    println!();
    println!(
        "| query | Plumb median ms | DuckDB median ms | Plumb / DuckDB | rows (Plumb, DuckDB) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (i, q) in qs.iter().enumerate() {
        let d = &duck["results"][i];
        let dm = d["median_ms"].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {:.1} | {:.1} | {:.2} | {}, {} |",
            q.name,
            plumb[i].0,
            dm,
            plumb[i].0 / dm,
            plumb[i].1,
            d["rows"]
        );
    }
    Ok(())
}

fn walk_count(dir: &std::path::Path) -> usize {
    let mut n = 0;
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                n += walk_count(&p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                n += 1;
            }
        }
    }
    n
}
