//! The client side of the judge server (`plumb judge serve`, or the judges `plumb serve` runs
//! in-process on its judge port): the only way evaluators reach a model. Speaking HTTP even
//! in-process keeps one code path, lets a team point Plumb at a GPU box, and keeps this crate
//! free of `plumb-serving`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::{EvalError, Result};

/// Items per request: the server's limit.
const MAX_ITEMS_PER_REQUEST: usize = 256;

/// One scored item.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct JudgeScore {
    pub score: f64,
    pub label: String,
    /// Per-sentence verdicts (groundedness).
    #[serde(default)]
    pub sentences: Vec<SentenceScore>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SentenceScore {
    pub text: String,
    pub score: f64,
    pub label: String,
}

/// Scores from one model.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeScores {
    pub model: String,
    pub items: Vec<JudgeScore>,
}

#[async_trait]
pub trait JudgeClient: Send + Sync {
    /// Is `response` supported by `context`? One (context, response) pair per item.
    async fn groundedness(&self, items: &[(String, String)]) -> Result<JudgeScores>;
    /// Does `document` bear on `query`? One (query, document) pair per item.
    async fn context_relevance(&self, items: &[(String, String)]) -> Result<JudgeScores>;
}

/// A judge server reached over HTTP.
#[derive(Debug, Clone)]
pub struct HttpJudge {
    base: String,
    http: reqwest::Client,
}

impl HttpJudge {
    /// `base` is the server's address, e.g. `http://127.0.0.1:3100`.
    pub fn new(base: &str) -> HttpJudge {
        HttpJudge {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("a default HTTP client builds"),
        }
    }

    async fn call(
        &self,
        task: &str,
        key: (&str, &str),
        items: &[(String, String)],
    ) -> Result<JudgeScores> {
        let mut out = JudgeScores {
            model: String::new(),
            items: Vec::with_capacity(items.len()),
        };
        for chunk in items.chunks(MAX_ITEMS_PER_REQUEST) {
            let body = json!({
                "items": chunk.iter().map(|(a, b)| json!({key.0: a, key.1: b})).collect::<Vec<_>>()
            });
            let url = format!("{}/v1/judge/{task}", self.base);
            let resp = self.http.post(&url).json(&body).send().await.map_err(|e| {
                EvalError::JudgeUnavailable {
                    message: format!("{url}: {e}"),
                    retry_after: None,
                }
            })?;
            let status = resp.status();
            let retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                .map(Duration::from_secs);
            let text = resp.text().await.unwrap_or_default();
            if status.as_u16() == 429 || status.is_server_error() {
                return Err(EvalError::JudgeUnavailable {
                    message: format!("{url}: {status}: {text}"),
                    retry_after,
                });
            }
            if !status.is_success() {
                return Err(EvalError::Judge(format!("{url}: {status}: {text}")));
            }
            let v: Value = serde_json::from_str(&text)
                .map_err(|e| EvalError::Judge(format!("{url}: unreadable answer: {e}")))?;
            out.model = v["model"].as_str().unwrap_or_default().to_string();
            let scores: Vec<JudgeScore> = serde_json::from_value(v["items"].clone())
                .map_err(|e| EvalError::Judge(format!("{url}: unreadable items: {e}")))?;
            if scores.len() != chunk.len() {
                return Err(EvalError::Judge(format!(
                    "{url}: {} answers to {} items",
                    scores.len(),
                    chunk.len()
                )));
            }
            out.items.extend(scores);
        }
        Ok(out)
    }
}

#[async_trait]
impl JudgeClient for HttpJudge {
    async fn groundedness(&self, items: &[(String, String)]) -> Result<JudgeScores> {
        self.call("groundedness", ("context", "response"), items)
            .await
    }

    async fn context_relevance(&self, items: &[(String, String)]) -> Result<JudgeScores> {
        self.call("context_relevance", ("query", "document"), items)
            .await
    }
}
