//! `plumb eval`: offline runs of an evaluator over stored spans (`eval run`), and cohort
//! comparisons (`eval compare`), printed as aligned tables or JSON.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table as PrettyTable};
use indicatif::{ProgressBar, ProgressStyle};
use plumb_evaluators::compare::{compare, Cohort};
use plumb_evaluators::offline::{self, OfflineRun};
use plumb_evaluators::registry::{self, Configured};
use plumb_store::{Store, StoreConfig, DEFAULT_PROJECT};

use crate::config::FileConfig;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    #[command(subcommand)]
    command: EvalCommand,
}

#[derive(Debug, clap::Subcommand)]
enum EvalCommand {
    /// Evaluate stored spans of a time range with one evaluator (a backfill, or a new evaluator
    /// on old traffic). Spans that already have its verdict are skipped, so an interrupted run
    /// can simply be started again. Needs the data dir (stop `plumb serve` first).
    Run(RunArgs),
    /// Compare two cohorts of verdicts per evaluator: pass rates and mean scores, with 95%
    /// confidence intervals and significance tests.
    Compare(CompareArgs),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// One of: json_parse, tool_call_args, truncated, empty_output, refusal, groundedness,
    /// context_relevance, task_completion.
    #[arg(long)]
    evaluator: String,
    #[arg(long)]
    route: Option<String>,
    /// Start of the range: RFC 3339 (2026-11-24T10:00:00Z) or an age (24h, 30m). Default: 24h.
    #[arg(long)]
    from: Option<String>,
    /// End of the range (exclusive), same forms. Default: now.
    #[arg(long)]
    to: Option<String>,
    /// Spans per batch; each batch's verdicts are durable before the next is read.
    #[arg(long, default_value_t = 500)]
    batch_size: usize,
    /// Spans per second at most (leaves the judge to live traffic).
    #[arg(long)]
    rate: Option<f64>,
    /// Judge server for judge-backed evaluators.
    #[arg(long, env = "PLUMB_JUDGE_URL", default_value = "http://127.0.0.1:3100")]
    judge_url: String,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// Only this evaluator (default: every evaluator with verdicts).
    #[arg(long)]
    evaluator: Option<String>,
    #[arg(long)]
    a_route: Option<String>,
    #[arg(long)]
    a_model: Option<String>,
    #[arg(long)]
    b_route: Option<String>,
    #[arg(long)]
    b_model: Option<String>,
    /// Before/after: cohort a is before this time, cohort b from it on (RFC 3339 or an age).
    #[arg(long)]
    split_at: Option<String>,
    /// Only verdicts on spans since (RFC 3339 or an age).
    #[arg(long)]
    from: Option<String>,
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Ask a running Plumb (its HTTP address) instead of opening the data dir.
    #[arg(long, env = "PLUMB_URL")]
    url: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
}

/// RFC 3339, or an age like `90m` / `24h` meaning that long before now.
pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return t.timestamp_nanos_opt().context("time out of range");
    }
    let age = humantime::parse_duration(text)
        .with_context(|| format!("{text:?} is neither an RFC 3339 time nor an age like 24h"))?;
    Ok(now_nanos() - age.as_nanos() as i64)
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

async fn open_store(data_dir: PathBuf, cfg: &FileConfig) -> anyhow::Result<Store> {
    if !data_dir.exists() {
        bail!(
            "data directory {} does not exist; pass --data-dir",
            data_dir.display()
        );
    }
    let config = StoreConfig {
        object_store_url: cfg.storage.object_store.clone(),
        catalog_url: cfg.storage.catalog.clone(),
        ..StoreConfig::new(&data_dir)
    };
    Ok(Store::open(config).await?.0)
}

pub async fn run(data_dir: PathBuf, cfg: FileConfig, args: EvalArgs) -> anyhow::Result<()> {
    match args.command {
        EvalCommand::Run(a) => run_offline(data_dir, cfg, a).await,
        EvalCommand::Compare(a) => run_compare(data_dir, cfg, a).await,
    }
}

async fn run_offline(data_dir: PathBuf, cfg: FileConfig, a: RunArgs) -> anyhow::Result<()> {
    let settings = cfg.evals.settings(Some(a.judge_url.clone()))?;
    let evaluator = registry::build(&a.evaluator, &settings)?;
    let configured = Configured {
        selection: Default::default(),
        evaluator,
    };
    let from = parse_time(a.from.as_deref().unwrap_or("24h"))?;
    let to =
        a.to.as_deref()
            .map(parse_time)
            .transpose()?
            .unwrap_or_else(now_nanos);
    let store = open_store(data_dir, &cfg).await?;
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} spans ({per_sec}, eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(a.evaluator.clone());
    let run = OfflineRun {
        project: DEFAULT_PROJECT.into(),
        evaluator: configured,
        from,
        to,
        route: a.route.clone(),
        batch_size: a.batch_size,
        max_spans_per_second: a.rate,
        concurrency: cfg.evals.concurrency,
    };
    let summary = offline::run(&store, &run, |p| {
        bar.set_length(p.total);
        bar.set_position(p.scanned);
        // Without a terminal the bar is hidden: leave a line per batch for logs and scripts.
        if bar.is_hidden() && p.scanned > 0 {
            eprintln!(
                "progress {} {}/{} evaluated {}",
                a.evaluator, p.scanned, p.total, p.evaluated
            );
        }
    })
    .await;
    bar.finish_and_clear();
    let summary = summary?;
    store.shutdown().await?;
    match a.format {
        Format::Json => println!("{}", serde_json::to_string(&summary)?),
        Format::Table => {
            let mut t = PrettyTable::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header([
                "evaluator",
                "scanned",
                "evaluated now",
                "failed",
                "verdicts in range",
                "passed",
                "pass rate",
                "mean score",
                "seconds",
            ]);
            let pct = |x: Option<f64>| {
                x.map(|v| format!("{:.1}%", v * 100.0))
                    .unwrap_or_else(|| "-".into())
            };
            t.add_row([
                format!("{} v{}", summary.evaluator, summary.version),
                summary.scanned.to_string(),
                summary.evaluated_now.to_string(),
                summary.failed.to_string(),
                summary.verdicts.to_string(),
                summary.passed.to_string(),
                pct(summary.pass_rate),
                summary
                    .mean_score
                    .map(|m| format!("{m:.3}"))
                    .unwrap_or_else(|| "-".into()),
                format!("{:.1}", summary.elapsed_seconds),
            ]);
            println!("{t}");
        }
    }
    Ok(())
}

async fn run_compare(data_dir: PathBuf, cfg: FileConfig, a: CompareArgs) -> anyhow::Result<()> {
    let from = a.from.as_deref().map(parse_time).transpose()?;
    let split = a.split_at.as_deref().map(parse_time).transpose()?;
    let cohort_a = Cohort {
        route: a.a_route.clone(),
        model: a.a_model.clone(),
        from,
        to: split,
    };
    let cohort_b = Cohort {
        route: a.b_route.clone(),
        model: a.b_model.clone(),
        from: split.or(from),
        to: None,
    };
    if cohort_a == cohort_b {
        bail!("the two cohorts are the same: give --a-model/--b-model, --a-route/--b-route or --split-at");
    }
    let rows = match &a.url {
        Some(url) => {
            let mut q: Vec<(String, String)> = vec![("alpha".into(), a.alpha.to_string())];
            let mut add = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    q.push((k.into(), v));
                }
            };
            add("evaluator", a.evaluator.clone());
            add("a_route", cohort_a.route.clone());
            add("a_model", cohort_a.model.clone());
            add("a_from", cohort_a.from.map(|t| t.to_string()));
            add("a_to", cohort_a.to.map(|t| t.to_string()));
            add("b_route", cohort_b.route.clone());
            add("b_model", cohort_b.model.clone());
            add("b_from", cohort_b.from.map(|t| t.to_string()));
            let endpoint = format!("{}/api/v1/evals/compare", url.trim_end_matches('/'));
            let resp = reqwest::Client::new()
                .get(&endpoint)
                .query(&q)
                .send()
                .await
                .with_context(|| format!("connecting to {endpoint}"))?;
            let status = resp.status();
            let body: serde_json::Value = resp.json().await?;
            if !status.is_success() {
                bail!("{}", body["error"].as_str().unwrap_or("unknown error"));
            }
            body["evaluators"].clone()
        }
        None => {
            let store = open_store(data_dir, &cfg).await?;
            let rows = compare(
                &store,
                DEFAULT_PROJECT,
                &cohort_a,
                &cohort_b,
                a.evaluator.as_deref(),
                a.alpha,
            )
            .await?;
            serde_json::to_value(rows)?
        }
    };
    match a.format {
        Format::Json => println!("{}", serde_json::to_string(&rows)?),
        Format::Table => {
            println!("a: {}\nb: {}", cohort_a.describe(), cohort_b.describe());
            let mut t = PrettyTable::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header([
                "evaluator",
                "n a",
                "n b",
                "pass rate a",
                "pass rate b",
                "diff (95% CI)",
                "p",
                "mean score a",
                "mean score b",
                "diff (95% CI)",
                "p",
                "significant",
            ]);
            let f =
                |v: &serde_json::Value, k: &str, pct: bool| match v.get(k).and_then(|x| x.as_f64())
                {
                    Some(x) if pct => format!("{:.1}%", x * 100.0),
                    Some(x) => format!("{x:.3}"),
                    None => "-".into(),
                };
            let ci = |v: &serde_json::Value, pct: bool| match (
                v.get("diff"),
                v.get("ci_low"),
                v.get("ci_high"),
            ) {
                (Some(d), Some(l), Some(h)) => {
                    let s = if pct { 100.0 } else { 1.0 };
                    let u = if pct { "pp" } else { "" };
                    format!(
                        "{:+.2}{u} ({:+.2}, {:+.2})",
                        d.as_f64().unwrap_or(f64::NAN) * s,
                        l.as_f64().unwrap_or(f64::NAN) * s,
                        h.as_f64().unwrap_or(f64::NAN) * s
                    )
                }
                _ => "-".into(),
            };
            let p = |v: &serde_json::Value| {
                v.get("p_value")
                    .and_then(|x| x.as_f64())
                    .map(|x| format!("{x:.2e}"))
                    .unwrap_or_else(|| "-".into())
            };
            for r in rows.as_array().into_iter().flatten() {
                let (pr, ms) = (&r["pass_rate"], &r["mean_score"]);
                t.add_row([
                    r["evaluator"].as_str().unwrap_or_default().to_string(),
                    r["a_count"].to_string(),
                    r["b_count"].to_string(),
                    f(pr, "a", true),
                    f(pr, "b", true),
                    ci(pr, true),
                    p(pr),
                    f(ms, "a", false),
                    f(ms, "b", false),
                    ci(ms, false),
                    p(ms),
                    if r["significant"].as_bool() == Some(true) {
                        "yes"
                    } else {
                        "no"
                    }
                    .into(),
                ]);
            }
            println!("{t}");
        }
    }
    // Keep the runtime from exiting under an unfinished flush of nothing.
    tokio::time::sleep(Duration::from_millis(0)).await;
    Ok(())
}
