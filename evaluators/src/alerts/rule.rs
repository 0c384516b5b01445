//! The alert rule document stored in the catalog and sent to `POST /api/v1/alerts/rules`.
//!
//! ```json
//! {"name": "checkout-json", "kind": "threshold", "signal": "parse_failure_rate",
//!  "route": "checkout/extract", "window": "5m", "op": ">", "value": 0.05, "min_samples": 50,
//!  "for": "2m", "webhook": "https://hooks.example/plumb"}
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{EvalError, Result};

/// What a rule measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    /// Share of `json_parse` verdicts that failed.
    ParseFailureRate,
    /// Share of `tool_call_args` verdicts that failed.
    ToolCallErrorRate,
    /// Share of spans with status ERROR.
    ErrorRate,
    TtftP95,
    TtftP99,
    LatencyP95,
    /// Mean score of `evaluator`'s verdicts.
    EvalScoreMean,
    /// Share of `evaluator`'s verdicts that passed.
    EvalPassRate,
    /// Sum of `cost_usd` per 1,000 model calls.
    #[serde(rename = "cost_per_1k_requests")]
    CostPer1kRequests,
    /// Characters of `output_text` (drift).
    ResponseLength,
    /// `gen_ai_usage_output_tokens` (drift).
    OutputTokens,
    /// Time to first chunk in seconds (drift).
    Ttft,
    /// `duration_ms` (drift).
    Latency,
    /// `evaluator`'s scores (drift).
    EvalScore,
}

impl Signal {
    /// Rates are tested as proportions, means with Welch's t-test.
    pub fn is_rate(self) -> bool {
        matches!(
            self,
            Signal::ParseFailureRate
                | Signal::ToolCallErrorRate
                | Signal::ErrorRate
                | Signal::EvalPassRate
        )
    }

    /// Signals whose per-span values form a distribution (drift rules).
    pub fn is_distribution(self) -> bool {
        matches!(
            self,
            Signal::ResponseLength
                | Signal::OutputTokens
                | Signal::Ttft
                | Signal::Latency
                | Signal::EvalScore
        )
    }

    pub fn needs_evaluator(self) -> bool {
        matches!(
            self,
            Signal::EvalScoreMean | Signal::EvalPassRate | Signal::EvalScore
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Comparison {
    #[serde(rename = ">")]
    Above,
    #[serde(rename = ">=")]
    AtLeast,
    #[serde(rename = "<")]
    Below,
    #[serde(rename = "<=")]
    AtMost,
}

impl Comparison {
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Comparison::Above => value > threshold,
            Comparison::AtLeast => value >= threshold,
            Comparison::Below => value < threshold,
            Comparison::AtMost => value <= threshold,
        }
    }
}

/// What the current window is compared with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Baseline {
    /// `"previous"`: the window just before the current one, of `baseline_window` (default: the
    /// rule's window) length.
    Named(String),
    /// A fixed period, Unix nanoseconds.
    Fixed { from: i64, to: i64 },
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline::Named("previous".into())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The signal got worse by going up (failure rates, latency).
    Increase,
    /// The signal got worse by going down (scores, pass rates).
    Decrease,
    Either,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetMeasure {
    Tokens,
    Cost,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetPer {
    Trace,
    Route,
}

/// The kinds of rule and their own settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleKind {
    Threshold {
        signal: Signal,
        op: Comparison,
        value: f64,
    },
    Regression {
        signal: Signal,
        #[serde(default)]
        baseline: Baseline,
        /// Length of the "previous" baseline window; the rule's window when unset.
        #[serde(default, with = "humantime_serde")]
        baseline_window: Option<Duration>,
        #[serde(default = "default_direction")]
        direction: Direction,
        /// Significance level of the test.
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Smallest change that matters, in the signal's unit (absolute).
        #[serde(default)]
        min_change: f64,
    },
    Drift {
        signal: Signal,
        #[serde(default)]
        baseline: Baseline,
        #[serde(default, with = "humantime_serde")]
        baseline_window: Option<Duration>,
        #[serde(default = "default_alpha")]
        alpha: f64,
        /// Smallest Kolmogorov–Smirnov distance that matters (0..1).
        #[serde(default = "default_min_distance")]
        min_distance: f64,
    },
    Budget {
        measure: BudgetMeasure,
        per: BudgetPer,
        value: f64,
    },
    Sql {
        query: String,
        op: Comparison,
        value: f64,
    },
}

fn default_direction() -> Direction {
    Direction::Increase
}
fn default_alpha() -> f64 {
    0.01
}
fn default_min_distance() -> f64 {
    0.1
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub name: String,
    #[serde(flatten)]
    pub kind: RuleKind,
    pub route: Option<String>,
    pub model: Option<String>,
    /// The evaluator of `eval_*` signals.
    pub evaluator: Option<String>,
    #[serde(with = "humantime_serde", default = "default_window")]
    pub window: Duration,
    /// Windows with fewer samples than this never breach: one failure in three calls is not a
    /// 33% failure rate anyone should be woken for.
    #[serde(default = "default_min_samples")]
    pub min_samples: u64,
    /// How long the condition must hold before the alert fires (pending until then).
    #[serde(rename = "for", with = "humantime_serde", default)]
    pub pending_for: Option<Duration>,
    pub webhook: Option<String>,
    /// Key of the HMAC-SHA256 signature of webhook bodies; the server's default when unset.
    pub webhook_secret: Option<String>,
    #[serde(default = "default_enabled")]
    pub enabled: bool,
}

fn default_window() -> Duration {
    Duration::from_secs(300)
}
fn default_min_samples() -> u64 {
    20
}
fn default_enabled() -> bool {
    true
}

impl AlertRule {
    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            RuleKind::Threshold { .. } => "threshold",
            RuleKind::Regression { .. } => "regression",
            RuleKind::Drift { .. } => "drift",
            RuleKind::Budget { .. } => "budget",
            RuleKind::Sql { .. } => "sql",
        }
    }

    /// Parses and checks a rule document; errors say what to fix.
    pub fn parse(json: &str) -> Result<AlertRule> {
        let rule: AlertRule = serde_json::from_str(json)
            .map_err(|e| EvalError::Invalid(format!("invalid alert rule: {e}")))?;
        rule.validate()?;
        Ok(rule)
    }

    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| {
            Err(EvalError::Invalid(format!(
                "alert rule `{}`: {m}",
                self.name
            )))
        };
        if self.name.trim().is_empty() || self.name.len() > 200 {
            return bad("name must be 1 to 200 characters".into());
        }
        if self.window.is_zero() {
            return bad("window must be longer than zero".into());
        }
        let signal = match &self.kind {
            RuleKind::Threshold { signal, .. } => Some(*signal),
            RuleKind::Regression { signal, .. } => {
                if signal.is_distribution()
                    || matches!(
                        signal,
                        Signal::TtftP95
                            | Signal::TtftP99
                            | Signal::LatencyP95
                            | Signal::CostPer1kRequests
                    )
                {
                    return bad(format!(
                        "regression rules test rates and means; for {signal:?} use a drift rule"
                    ));
                }
                Some(*signal)
            }
            RuleKind::Drift { signal, .. } => {
                if !signal.is_distribution() {
                    return bad(format!("drift rules compare distributions: response_length, output_tokens, ttft, latency or eval_score, not {signal:?}"));
                }
                Some(*signal)
            }
            RuleKind::Sql { query, .. } => {
                if query.trim().is_empty() {
                    return bad("query is empty".into());
                }
                None
            }
            RuleKind::Budget { .. } => None,
        };
        if let Some(s) = signal {
            if s.needs_evaluator() && self.evaluator.is_none() {
                return bad(format!("signal {s:?} needs `evaluator`"));
            }
            if matches!(s, Signal::ParseFailureRate | Signal::ToolCallErrorRate)
                && self.evaluator.is_some()
            {
                return bad("parse_failure_rate and tool_call_error_rate take no evaluator".into());
            }
        }
        if let Some(w) = &self.webhook {
            if !(w.starts_with("http://") || w.starts_with("https://")) {
                return bad(format!("webhook `{w}` is not an http(s) URL"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_and_bad_ones_say_why() {
        let r = AlertRule::parse(
            r#"{"name":"json","kind":"threshold","signal":"parse_failure_rate","op":">","value":0.05,"window":"5m","for":"1m"}"#,
        )
        .unwrap();
        assert_eq!(r.window, Duration::from_secs(300));
        assert_eq!(r.pending_for, Some(Duration::from_secs(60)));
        let r = AlertRule::parse(
            r#"{"name":"reg","kind":"regression","signal":"parse_failure_rate","window":"10m"}"#,
        )
        .unwrap();
        assert!(
            matches!(r.kind, RuleKind::Regression { baseline: Baseline::Named(_), alpha, .. } if alpha == 0.01)
        );
        let e =
            AlertRule::parse(r#"{"name":"x","kind":"drift","signal":"error_rate"}"#).unwrap_err();
        assert!(e.to_string().contains("distributions"), "{e}");
        let e = AlertRule::parse(
            r#"{"name":"x","kind":"threshold","signal":"eval_score_mean","op":"<","value":0.5}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("evaluator"), "{e}");
        let e = AlertRule::parse(
            r#"{"name":"x","kind":"threshold","signal":"nope","op":"<","value":0.5}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("unknown variant"), "{e}");
        // Every signal's documented spelling parses.
        for signal in [
            "parse_failure_rate",
            "tool_call_error_rate",
            "error_rate",
            "ttft_p95",
            "ttft_p99",
            "latency_p95",
            "cost_per_1k_requests",
        ] {
            let doc = format!(
                r#"{{"name":"x","kind":"threshold","signal":"{signal}","op":">","value":1}}"#
            );
            assert!(AlertRule::parse(&doc).is_ok(), "{signal}");
        }
    }
}
