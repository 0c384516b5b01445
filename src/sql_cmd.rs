//! `plumb sql`: one read-only query, against a data directory or a running server (`--url`),
//! printed as an aligned table, JSON or CSV.

use std::path::PathBuf;

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table as PrettyTable};
use plumb_store::query::{cell_text, to_csv, to_json_rows, JsonRows};
use plumb_store::{Store, StoreConfig, DEFAULT_PROJECT};

use crate::config::FileConfig;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Debug, clap::Args)]
pub struct SqlArgs {
    /// The query, e.g. "SELECT route, count(*) FROM spans GROUP BY route".
    query: String,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Query a running Plumb (its HTTP address, e.g. http://127.0.0.1:3000) instead of the data dir.
    #[arg(long, env = "PLUMB_URL")]
    url: Option<String>,
}

pub async fn run(data_dir: PathBuf, cfg: FileConfig, args: SqlArgs) -> anyhow::Result<()> {
    let rows = match &args.url {
        Some(url) => remote(url, &args.query).await?,
        None => local(data_dir, cfg, &args.query).await?,
    };
    print(&rows, args.format)
}

async fn local(data_dir: PathBuf, cfg: FileConfig, query: &str) -> anyhow::Result<JsonRows> {
    if !data_dir.exists() {
        bail!(
            "data directory {} does not exist; run `plumb serve` first, or pass --data-dir or --url",
            data_dir.display()
        );
    }
    let config = StoreConfig {
        object_store_url: cfg.storage.object_store.clone(),
        catalog_url: cfg.storage.catalog.clone(),
        ..StoreConfig::new(&data_dir)
    };
    let (store, _) = Store::open(config).await?;
    let out = store.sql(DEFAULT_PROJECT, query).await?;
    Ok(to_json_rows(&out)?)
}

async fn remote(url: &str, query: &str) -> anyhow::Result<JsonRows> {
    let endpoint = format!("{}/api/v1/sql", url.trim_end_matches('/'));
    let resp = reqwest::Client::new()
        .post(&endpoint)
        .json(&serde_json::json!({ "query": query }))
        .send()
        .await
        .with_context(|| format!("connecting to {endpoint}"))?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.context("reading the server's answer")?;
    if !status.is_success() {
        let msg = body
            .get("error")
            .and_then(|e| e.as_str())
            .unwrap_or("unknown error");
        bail!("{msg}");
    }
    serde_json::from_value(body).context("unexpected answer from the server")
}

fn print(rows: &JsonRows, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string(rows)?),
        Format::Csv => print!("{}", to_csv(rows)?),
        Format::Table => {
            let mut t = PrettyTable::new();
            t.load_preset(UTF8_FULL_CONDENSED);
            t.set_header(&rows.columns);
            for r in &rows.rows {
                t.add_row(r.iter().map(cell_text));
            }
            println!("{t}");
            eprintln!("{} row(s)", rows.rows.len());
        }
    }
    Ok(())
}
