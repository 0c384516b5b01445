//! `plumb judge`: the judge server as a role of its own (e.g. on a GPU node), and one-off scoring
//! from the command line.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table};
use plumb_serving::{Device, JudgeConfig, Judges};

use crate::config::FileConfig;

#[derive(Debug, clap::Args)]
pub struct JudgeArgs {
    #[command(subcommand)]
    command: JudgeCommand,
    /// Directory with one subdirectory per judge model (each with plumb-judge.json).
    #[arg(long, global = true, env = "PLUMB_JUDGE_MODELS")]
    models: Option<PathBuf>,
    /// Where to run the models.
    #[arg(long, global = true, env = "PLUMB_JUDGE_DEVICE", value_enum)]
    device: Option<DeviceArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DeviceArg {
    Auto,
    Cpu,
    Cuda,
}

#[derive(Debug, Subcommand)]
enum JudgeCommand {
    /// Serve the judge HTTP API alone (the judge role of `plumb serve`).
    Serve {
        /// Judge API address (port 0 picks a free port).
        #[arg(long, env = "PLUMB_JUDGE_ADDR")]
        judge_addr: Option<String>,
        /// OTLP/HTTP endpoint of a Plumb (e.g. http://127.0.0.1:4318) that receives the judge
        /// server's own metrics; none are sent without it.
        #[arg(long, env = "PLUMB_JUDGE_OTLP_ENDPOINT")]
        otlp_endpoint: Option<String>,
    },
    /// Score one item and print the verdict.
    Score {
        #[command(subcommand)]
        item: ScoreItem,
        /// Output format.
        #[arg(long, global = true, value_enum, default_value = "table")]
        format: Format,
    },
}

#[derive(Debug, Subcommand)]
enum ScoreItem {
    /// Is every sentence of the response supported by the context?
    Groundedness {
        #[arg(long)]
        context: String,
        #[arg(long)]
        response: String,
    },
    /// Is the document relevant to the query?
    ContextRelevance {
        #[arg(long)]
        query: String,
        #[arg(long)]
        document: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

/// The judge configuration with command-line overrides applied.
pub fn judge_config(
    cfg: &FileConfig,
    models: Option<PathBuf>,
    device: Option<Device>,
) -> JudgeConfig {
    let mut c = cfg.judge.clone();
    if let Some(m) = models {
        c.models_dir = m;
    }
    if let Some(d) = device {
        c.device = d;
    }
    c
}

pub async fn run(cfg: FileConfig, args: JudgeArgs) -> anyhow::Result<()> {
    let device = args.device.map(|d| match d {
        DeviceArg::Auto => Device::Auto,
        DeviceArg::Cpu => Device::Cpu,
        DeviceArg::Cuda => Device::Cuda,
    });
    let config = judge_config(&cfg, args.models, device);
    let judges = Arc::new(
        tokio::task::spawn_blocking(move || Judges::load(config))
            .await?
            .context("loading the judge models")?,
    );
    match args.command {
        JudgeCommand::Serve {
            judge_addr,
            otlp_endpoint,
        } => {
            let addr: SocketAddr = judge_addr
                .unwrap_or(cfg.server.judge_addr.clone())
                .parse()
                .context("--judge-addr is not host:port")?;
            let listener = crate::serve::bind("judge", addr).await?;
            let _telemetry = otlp_endpoint.map(|endpoint| {
                let interval =
                    std::time::Duration::from_secs(judges.config().telemetry_interval_secs.max(1));
                plumb_serving::telemetry::spawn_exporter(judges.clone(), endpoint, interval)
            });
            axum::serve(listener, plumb_serving::api::router(judges))
                .with_graceful_shutdown(crate::serve::shutdown_signal())
                .await?;
            Ok(())
        }
        JudgeCommand::Score { item, format } => score(&judges, item, format).await,
    }
}

async fn score(judges: &Judges, item: ScoreItem, format: Format) -> anyhow::Result<()> {
    let (json, table) = match item {
        ScoreItem::Groundedness { context, response } => {
            judges.check_groundedness("item", &context, &response)?;
            let v = judges.groundedness(&context, &response).await?;
            let mut t = table(&["sentence", "score", "label"]);
            for s in &v.sentences {
                t.add_row(vec![
                    s.text.clone(),
                    format!("{:.3}", s.score),
                    s.label.to_string(),
                ]);
            }
            t.add_row(vec![
                "(response)".into(),
                format!("{:.3}", v.score),
                v.label.to_string(),
            ]);
            (serde_json::to_value(&v)?, t)
        }
        ScoreItem::ContextRelevance { query, document } => {
            judges.check_relevance("item", &query, &document)?;
            let v = judges.context_relevance(&query, &document).await?;
            let mut t = table(&["score", "label"]);
            t.add_row(vec![format!("{:.3}", v.score), v.label.to_string()]);
            (serde_json::to_value(&v)?, t)
        }
    };
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(&json)?),
        Format::Table => println!("{table}"),
    }
    Ok(())
}

fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_header(header.to_vec());
    t
}
