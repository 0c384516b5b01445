//! Configuration: `plumb.toml` (optional), overridden by `PLUMB_*` environment variables and
//! command-line flags (clap reads both). Every option has a safe default: loopback addresses,
//! a local data directory, bounded memory.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use plumb_collector::Price;
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub collector: CollectorConfig,
    pub query: QueryConfig,
    pub pricing: PricingConfig,
    pub judge: plumb_serving::JudgeConfig,
    pub evals: EvalsConfig,
    pub alerts: AlertsConfig,
}

/// `[evals]`: the online evaluation runner.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EvalsConfig {
    /// Evaluators run on new spans. Judge-backed ones run only when a judge is reachable.
    pub enabled: Vec<String>,
    /// The judge server; the in-process judges when unset.
    pub judge_url: Option<String>,
    pub interval_ms: u64,
    pub max_spans_per_pass: usize,
    pub max_lateness_secs: u64,
    /// Judge requests in flight at once.
    pub concurrency: usize,
    /// Routes whose outputs are JSON even when spans do not say so.
    pub json_routes: Vec<String>,
    /// JSON Schemas of structured outputs, by route (as JSON text or a TOML table).
    pub json_schemas: BTreeMap<String, toml::Value>,
    /// Which spans each evaluator gets: `[evals.select.groundedness] sample_rate = 0.1`.
    pub select: BTreeMap<String, plumb_evaluators::registry::Selection>,
}

impl Default for EvalsConfig {
    fn default() -> Self {
        EvalsConfig {
            enabled: plumb_evaluators::registry::BUILT_IN
                .iter()
                .map(|s| s.to_string())
                .collect(),
            judge_url: None,
            interval_ms: 1000,
            max_spans_per_pass: 5000,
            max_lateness_secs: 3600,
            concurrency: 4,
            json_routes: Vec::new(),
            json_schemas: BTreeMap::new(),
            select: BTreeMap::new(),
        }
    }
}

/// `[alerts]`: how often rules are evaluated and how webhooks are signed.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    pub interval_secs: f64,
    /// HMAC-SHA256 key for webhook signatures of rules that set none.
    pub webhook_secret: Option<String>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            interval_secs: 30.0,
            webhook_secret: None,
        }
    }
}

impl EvalsConfig {
    /// The settings the evaluators are built from.
    pub fn settings(
        &self,
        judge_url: Option<String>,
    ) -> anyhow::Result<plumb_evaluators::registry::EvaluatorSettings> {
        let mut schemas = BTreeMap::new();
        for (route, v) in &self.json_schemas {
            let json: serde_json::Value = match v {
                toml::Value::String(text) => serde_json::from_str(text)
                    .with_context(|| format!("[evals] json_schemas.{route:?} is not JSON"))?,
                other => serde_json::to_value(other)?,
            };
            schemas.insert(route.clone(), json);
        }
        Ok(plumb_evaluators::registry::EvaluatorSettings {
            json_routes: self.json_routes.iter().cloned().collect(),
            json_schemas: schemas,
            judge_url: self.judge_url.clone().or(judge_url),
            task_completion: Default::default(),
        })
    }

    /// Judge-backed evaluators see a sample by default: on CPU a judge scores tens of items a
    /// second, far fewer than a busy service makes.
    pub fn selection(&self, name: &str, uses_judge: bool) -> plumb_evaluators::registry::Selection {
        self.select
            .get(name)
            .cloned()
            .unwrap_or_else(|| plumb_evaluators::registry::Selection {
                sample_rate: if uses_judge { 0.1 } else { 1.0 },
                ..Default::default()
            })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub otlp_grpc_addr: String,
    pub otlp_http_addr: String,
    pub http_addr: String,
    pub judge_addr: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            otlp_grpc_addr: "127.0.0.1:4317".into(),
            otlp_http_addr: "127.0.0.1:4318".into(),
            http_addr: "127.0.0.1:3000".into(),
            judge_addr: "127.0.0.1:3100".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `s3://bucket/prefix`, `file:///path`, `memory://`; default: `<data_dir>/objects`.
    pub object_store: Option<String>,
    /// `postgres://user@host/db` to keep the catalog in PostgreSQL; SQLite in the data dir
    /// otherwise.
    pub catalog: Option<String>,
    pub flush_bytes: usize,
    pub flush_age_secs: u64,
    pub max_buffered_bytes: usize,
    /// How long an export waits for a flush to make room before it gets 429.
    pub admission_wait_ms: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            object_store: None,
            catalog: None,
            flush_bytes: plumb_store::DEFAULT_FLUSH_BYTES,
            flush_age_secs: 60,
            max_buffered_bytes: plumb_store::DEFAULT_MAX_BUFFERED_BYTES,
            admission_wait_ms: plumb_store::DEFAULT_ADMISSION_WAIT.as_millis() as u64,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CollectorConfig {
    /// Largest request body (after decompression) or gRPC message accepted.
    pub max_body_bytes: usize,
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            max_body_bytes: 16 << 20,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    pub memory_limit_bytes: usize,
    pub timeout_secs: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            memory_limit_bytes: 1 << 30,
            timeout_secs: 30,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PricingConfig {
    /// Model name (or prefix) -> US$ per million tokens.
    pub models: BTreeMap<String, Price>,
}

impl FileConfig {
    /// Reads `path`; a missing file is an error only when the user named it.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (Path::new("plumb.toml").to_path_buf(), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("reading config {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(FileConfig::default())
            }
            Err(e) => Err(e).with_context(|| format!("reading config {}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_listen_on_loopback() {
        let c = FileConfig::default();
        for a in [
            &c.server.otlp_grpc_addr,
            &c.server.otlp_http_addr,
            &c.server.http_addr,
            &c.server.judge_addr,
        ] {
            assert!(a.starts_with("127.0.0.1:"), "{a}");
        }
    }

    #[test]
    fn toml_overrides_and_prices_parse() {
        let c: FileConfig = toml::from_str(
            r#"
            [storage]
            flush_age_secs = 5
            [pricing.models.my-llama]
            input = 0.1
            output = 0.2
            "#,
        )
        .unwrap();
        assert_eq!(c.storage.flush_age_secs, 5);
        assert_eq!(c.pricing.models["my-llama"].output, 0.2);
        assert!(toml::from_str::<FileConfig>("[storage]\nflush_agee = 1").is_err());
    }
}
