//! `plumb alerts`: manage alert rules and read their events, on a running server (`--url`) or in
//! the data dir's catalog (which a running server re-reads at every evaluation).

use std::path::PathBuf;

use anyhow::{bail, Context};
use comfy_table::{presets::UTF8_FULL_CONDENSED, Table as PrettyTable};
use plumb_evaluators::alerts::AlertRule;
use plumb_store::{Catalog, DEFAULT_PROJECT};

#[derive(Debug, clap::Args)]
pub struct AlertsArgs {
    /// A running Plumb's HTTP address; without it the data dir's catalog is used.
    #[arg(long, global = true, env = "PLUMB_URL")]
    url: Option<String>,
    #[command(subcommand)]
    command: AlertsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AlertsCommand {
    /// List rules with their state.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create or replace a rule from a JSON document (a file path, or the JSON itself).
    Add { rule: String },
    /// Delete a rule.
    Delete { name: String },
    /// State changes, newest first (needs --url).
    Events {
        #[arg(long)]
        rule: Option<String>,
    },
}

async fn catalog(data_dir: &std::path::Path, url: Option<&str>) -> anyhow::Result<Catalog> {
    if let Some(url) = url {
        return Ok(Catalog::open_url(url).await?);
    }
    if !data_dir.exists() {
        bail!(
            "data directory {} does not exist; pass --data-dir or --url",
            data_dir.display()
        );
    }
    Ok(Catalog::open_sqlite(&data_dir.join("catalog.db")).await?)
}

pub async fn run(
    data_dir: PathBuf,
    cfg: crate::config::FileConfig,
    args: AlertsArgs,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let api = |path: &str| {
        format!(
            "{}/api/v1/alerts/{path}",
            args.url
                .as_deref()
                .unwrap_or_default()
                .trim_end_matches('/')
        )
    };
    match args.command {
        AlertsCommand::Add { rule } => {
            let text = match std::path::Path::new(&rule).is_file() {
                true => {
                    std::fs::read_to_string(&rule).with_context(|| format!("reading {rule}"))?
                }
                false => rule,
            };
            let parsed = AlertRule::parse(&text)?;
            match &args.url {
                Some(_) => {
                    let r = http.post(api("rules")).body(text).send().await?;
                    if !r.status().is_success() {
                        bail!("{}", r.text().await?);
                    }
                }
                None => {
                    let spec = serde_json::to_string(&parsed)?;
                    catalog(&data_dir, cfg.storage.catalog.as_deref())
                        .await?
                        .put_alert_rule(DEFAULT_PROJECT, &parsed.name, &spec, parsed.enabled)
                        .await?;
                }
            }
            println!("saved alert rule {}", parsed.name);
        }
        AlertsCommand::Delete { name } => {
            let found = match &args.url {
                Some(_) => http
                    .delete(api(&format!("rules/{name}")))
                    .send()
                    .await?
                    .status()
                    .is_success(),
                None => {
                    catalog(&data_dir, cfg.storage.catalog.as_deref())
                        .await?
                        .delete_alert_rule(DEFAULT_PROJECT, &name)
                        .await?
                }
            };
            if !found {
                bail!("no alert rule named {name}");
            }
            println!("deleted alert rule {name}");
        }
        AlertsCommand::List { json } => {
            let rules: Vec<serde_json::Value> = match &args.url {
                Some(_) => http
                    .get(api("rules"))
                    .send()
                    .await?
                    .json::<serde_json::Value>()
                    .await?["rules"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default(),
                None => {
                    let c = catalog(&data_dir, cfg.storage.catalog.as_deref()).await?;
                    let mut out = Vec::new();
                    for r in c.alert_rules(Some(DEFAULT_PROJECT)).await? {
                        let state = c.alert_state(DEFAULT_PROJECT, &r.name).await?;
                        out.push(serde_json::json!({"name": r.name, "enabled": r.enabled, "rule": serde_json::from_str::<serde_json::Value>(&r.spec)?, "state": state}));
                    }
                    out
                }
            };
            if json {
                println!("{}", serde_json::to_string(&rules)?);
            } else {
                let mut t = PrettyTable::new();
                t.load_preset(UTF8_FULL_CONDENSED);
                t.set_header([
                    "name", "kind", "signal", "route", "window", "state", "value", "enabled",
                ]);
                for r in &rules {
                    let s = |v: &serde_json::Value| match v {
                        serde_json::Value::Null => "-".to_string(),
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    t.add_row([
                        s(&r["name"]),
                        s(&r["rule"]["kind"]),
                        s(&r["rule"]["signal"]),
                        s(&r["rule"]["route"]),
                        s(&r["rule"]["window"]),
                        r["state"]["state"].as_str().unwrap_or("ok").to_string(),
                        s(&r["state"]["value"]),
                        s(&r["enabled"]),
                    ]);
                }
                println!("{t}");
            }
        }
        AlertsCommand::Events { rule } => {
            let Some(_) = &args.url else {
                bail!("alert events are a table of the store: pass --url, or query them with `plumb sql \"SELECT * FROM alert_events\"`");
            };
            let mut req = http.get(api("events"));
            if let Some(r) = &rule {
                req = req.query(&[("rule", r)]);
            }
            let body: serde_json::Value = req.send().await?.json().await?;
            println!("{}", serde_json::to_string_pretty(&body)?);
        }
    }
    Ok(())
}
