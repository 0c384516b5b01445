//! Evaluating rules on a schedule and moving them through their states:
//! ok → pending (while the condition has held for less than `for`) → firing → resolved (→ ok).
//! Every transition is a row in `alert_events`; firing and resolving also enqueue a webhook in
//! the same catalog transaction that records the new state.

use std::sync::Arc;
use std::time::Duration;

use plumb_store::catalog::alerts::{NewNotification, RuleState};
use plumb_store::records::{alert_events_batch, AlertEventRecord};
use plumb_store::{Store, Table};
use serde::Serialize;
use serde_json::{json, Value};

use super::rule::{AlertRule, Baseline, Direction, RuleKind};
use super::signals::{self, Window};
use super::webhook;
use crate::error::Result;
use crate::stats;

/// One evaluation of a rule.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// Whether the condition holds now.
    pub breached: bool,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub samples: u64,
    /// Window, baseline, test: what a person needs to trust the decision.
    pub details: Value,
}

fn nanos(d: Duration) -> i64 {
    d.as_nanos() as i64
}

fn baseline_window(baseline: &Baseline, length: Option<Duration>, current: Window) -> Window {
    match baseline {
        Baseline::Fixed { from, to } => Window {
            from: *from,
            to: *to,
        },
        Baseline::Named(_) => {
            let len = length.map(nanos).unwrap_or(current.to - current.from);
            Window {
                from: current.from - len,
                to: current.from,
            }
        }
    }
}

/// Measures `rule` over the window ending at `now` and decides whether it breaches.
pub async fn evaluate_rule(
    store: &Store,
    project: &str,
    rule: &AlertRule,
    now: i64,
) -> Result<Evaluation> {
    let current = Window {
        from: now - nanos(rule.window),
        to: now,
    };
    let window_json =
        json!({"from": current.from, "to": current.to, "seconds": rule.window.as_secs_f64()});
    Ok(match &rule.kind {
        RuleKind::Threshold { signal, op, value } => {
            let m = signals::measure(store, project, rule, *signal, current).await?;
            let enough = m.samples >= rule.min_samples;
            Evaluation {
                breached: enough && m.value.is_some_and(|v| op.holds(v, *value)),
                value: m.value,
                threshold: Some(*value),
                samples: m.samples,
                details: json!({"signal": signal, "window": window_json, "samples": m.samples, "min_samples": rule.min_samples, "enough_samples": enough}),
            }
        }
        RuleKind::Regression {
            signal,
            baseline,
            baseline_window: len,
            direction,
            alpha,
            min_change,
        } => {
            let base = baseline_window(baseline, *len, current);
            let (a, b) = (
                signals::measure(store, project, rule, *signal, base).await?,
                signals::measure(store, project, rule, *signal, current).await?,
            );
            let enough = a.samples >= rule.min_samples && b.samples >= rule.min_samples;
            let test = match signal.is_rate() {
                true => stats::two_proportions(a.hits, a.samples, b.hits, b.samples),
                false => stats::welch(a.moments, b.moments),
            };
            let worse = test.is_some_and(|d| match direction {
                Direction::Increase => d.diff > *min_change,
                Direction::Decrease => -d.diff > *min_change,
                Direction::Either => d.diff.abs() > *min_change,
            });
            let significant = test.is_some_and(|d| d.p_value < *alpha);
            Evaluation {
                breached: enough && worse && significant,
                value: b.value,
                threshold: a.value,
                samples: b.samples,
                details: json!({
                    "signal": signal, "window": window_json,
                    "baseline": {"from": base.from, "to": base.to, "value": a.value, "samples": a.samples},
                    "test": if signal.is_rate() { "two-proportion z-test" } else { "Welch t-test" },
                    "difference": test, "alpha": alpha, "min_change": min_change, "enough_samples": enough,
                }),
            }
        }
        RuleKind::Drift {
            signal,
            baseline,
            baseline_window: len,
            alpha,
            min_distance,
        } => {
            const SAMPLE: usize = 20_000;
            let base = baseline_window(baseline, *len, current);
            let a = signals::values(store, project, rule, *signal, base, SAMPLE).await?;
            let b = signals::values(store, project, rule, *signal, current, SAMPLE).await?;
            let enough = a.len() as u64 >= rule.min_samples && b.len() as u64 >= rule.min_samples;
            let ks = stats::kolmogorov_smirnov(&a, &b);
            Evaluation {
                breached: enough
                    && ks.is_some_and(|k| k.p_value < *alpha && k.statistic >= *min_distance),
                value: ks.map(|k| k.statistic),
                threshold: Some(*min_distance),
                samples: b.len() as u64,
                details: json!({
                    "signal": signal, "window": window_json, "test": "two-sample Kolmogorov-Smirnov",
                    "baseline": {"from": base.from, "to": base.to, "samples": a.len()},
                    "ks": ks, "alpha": alpha, "enough_samples": enough,
                }),
            }
        }
        RuleKind::Budget {
            measure,
            per,
            value,
        } => {
            let (max, groups, worst) =
                signals::budget(store, project, rule, *measure, *per, current).await?;
            Evaluation {
                breached: max.is_some_and(|m| m > *value),
                value: max,
                threshold: Some(*value),
                samples: groups,
                details: json!({"measure": measure, "per": per, "window": window_json, "worst": worst}),
            }
        }
        RuleKind::Sql { query, op, value } => {
            let v = signals::custom(store, project, query).await?;
            Evaluation {
                breached: v.is_some_and(|x| op.holds(x, *value)),
                value: v,
                threshold: Some(*value),
                samples: 1,
                details: json!({"query": query}),
            }
        }
    })
}

#[derive(Debug, Clone)]
pub struct AlertEngineConfig {
    /// Time between evaluations of every rule.
    pub interval: Duration,
    /// HMAC key for webhooks of rules that set none.
    pub webhook_secret: Option<String>,
    /// Base URL of the web UI, for links in notifications.
    pub ui_url: Option<String>,
}

impl Default for AlertEngineConfig {
    fn default() -> Self {
        AlertEngineConfig {
            interval: Duration::from_secs(30),
            webhook_secret: None,
            ui_url: None,
        }
    }
}

/// Evaluates every enabled rule of every project each interval, and delivers webhooks.
pub struct AlertEngine {
    store: Store,
    config: AlertEngineConfig,
    http: reqwest::Client,
}

impl AlertEngine {
    pub fn new(store: Store, config: AlertEngineConfig) -> Arc<AlertEngine> {
        Arc::new(AlertEngine {
            store,
            config,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("HTTP client"),
        })
    }

    /// Runs until aborted: rules every `interval`, webhooks every second.
    pub fn spawn(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        let rules = {
            let engine = self.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(engine.config.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if let Err(e) = engine.tick(now_nanos()).await {
                        tracing::warn!(error = %e, "alert evaluation failed");
                    }
                }
            })
        };
        let hooks = {
            let engine = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if let Err(e) = engine.deliver().await {
                        tracing::warn!(error = %e, "webhook delivery failed");
                    }
                }
            })
        };
        vec![rules, hooks]
    }

    pub async fn deliver(&self) -> plumb_store::Result<usize> {
        let rules = self.store.catalog().alert_rules(None).await?;
        let default = self.config.webhook_secret.clone();
        webhook::deliver_due(self.store.catalog(), &self.http, |n| {
            rules
                .iter()
                .find(|r| r.project == n.project && r.name == n.rule_name)
                .and_then(|r| AlertRule::parse(&r.spec).ok())
                .and_then(|r| r.webhook_secret)
                .or_else(|| default.clone())
        })
        .await
    }

    /// Evaluates every enabled rule once, as of `now`.
    pub async fn tick(&self, now: i64) -> Result<()> {
        for stored in self.store.catalog().alert_rules(None).await? {
            if !stored.enabled {
                continue;
            }
            let rule = match AlertRule::parse(&stored.spec) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(rule = %stored.name, error = %e, "skipping an alert rule that no longer parses");
                    continue;
                }
            };
            if let Err(e) = self.step(&stored.project, &rule, now).await {
                tracing::warn!(rule = %rule.name, error = %e, "alert rule evaluation failed");
            }
        }
        Ok(())
    }

    async fn step(&self, project: &str, rule: &AlertRule, now: i64) -> Result<()> {
        let eval = evaluate_rule(&self.store, project, rule, now).await?;
        let catalog = self.store.catalog();
        let prev = catalog
            .alert_state(project, &rule.name)
            .await?
            .unwrap_or(RuleState {
                project: project.into(),
                name: rule.name.clone(),
                state: "ok".into(),
                since: now,
                fired_at: None,
                value: None,
                evaluated_at: now,
            });
        let pending_for = rule.pending_for.map(nanos).unwrap_or(0);
        // (new state, event to record)
        let (state, event): (&str, Option<&str>) = match (prev.state.as_str(), eval.breached) {
            ("ok", true) if pending_for == 0 => ("firing", Some("firing")),
            ("ok", true) => ("pending", Some("pending")),
            ("pending", true) if now - prev.since >= pending_for => ("firing", Some("firing")),
            ("pending", true) => ("pending", None),
            ("pending", false) => ("ok", Some("ok")),
            ("firing", true) => ("firing", None),
            ("firing", false) => ("ok", Some("resolved")),
            _ => ("ok", None),
        };
        let changed = state != prev.state;
        let fired_at = match (state, event) {
            ("firing", Some("firing")) => Some(now),
            ("firing", _) => prev.fired_at,
            _ => None,
        };
        let next = RuleState {
            project: project.into(),
            name: rule.name.clone(),
            state: state.into(),
            since: if changed { now } else { prev.since },
            fired_at,
            value: eval.value,
            evaluated_at: now,
        };
        let mut notify = Vec::new();
        if let Some(event) = event {
            let record = AlertEventRecord {
                project: project.into(),
                rule_name: rule.name.clone(),
                rule_kind: rule.kind_name().into(),
                state: event.into(),
                time_unix_nano: now,
                value: eval.value,
                threshold: eval.threshold,
                fired_at_unix_nano: if event == "resolved" {
                    prev.fired_at
                } else {
                    fired_at
                },
                resolved_at_unix_nano: (event == "resolved").then_some(now),
                details: Some(eval.details.to_string()),
            };
            self.store
                .write(
                    Table::AlertEvents,
                    project,
                    alert_events_batch(std::slice::from_ref(&record))?,
                )
                .await?;
            tracing::info!(rule = %rule.name, project, state = event, value = ?eval.value, "alert state changed");
            if let (Some(url), "firing" | "resolved") = (&rule.webhook, event) {
                let link = self
                    .config
                    .ui_url
                    .as_ref()
                    .map(|u| format!("{}/alerts", u.trim_end_matches('/')));
                let body = json!({
                    "rule": rule.name, "kind": rule.kind_name(), "project": project, "state": event,
                    "value": eval.value, "threshold": eval.threshold, "samples": eval.samples,
                    "fired_at": record.fired_at_unix_nano, "resolved_at": record.resolved_at_unix_nano,
                    "time": now, "route": rule.route, "model": rule.model, "details": eval.details, "link": link,
                });
                notify.push(NewNotification {
                    transition_key: format!("{project}/{}/{event}/{now}", rule.name),
                    url: url.clone(),
                    body: body.to_string(),
                });
            }
        }
        catalog.save_alert_state(&next, &notify).await?;
        Ok(())
    }
}

fn now_nanos() -> i64 {
    chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use plumb_store::records::{spans_batch, EvalRecord, GenAiFields, SpanRecord};
    use plumb_store::StoreConfig;

    use super::*;

    const MIN: i64 = 60_000_000_000;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = Store::open(StoreConfig::new(dir.path())).await.unwrap();
        (dir, store)
    }

    async fn verdicts(store: &Store, at: i64, n: usize, failed: usize) {
        let rows: Vec<EvalRecord> = (0..n)
            .map(|i| EvalRecord {
                project: "p".into(),
                trace_id: format!("{at}-{i}"),
                span_id: Some(format!("{i}")),
                evaluator: "json_parse".into(),
                evaluator_version: 1,
                passed: Some(i >= failed),
                score: Some(if i >= failed { 1.0 } else { 0.0 }),
                source: "online".into(),
                evaluated_at_unix_nano: at,
                span_start_time_unix_nano: at + i as i64,
                route: "r".into(),
                ..Default::default()
            })
            .collect();
        store.write_evals(&rows).await.unwrap();
    }

    async fn spans(store: &Store, at: i64, traces: &[(&str, i64, f64)]) {
        let rows: Vec<SpanRecord> = traces
            .iter()
            .enumerate()
            .map(|(i, (trace, tokens, ms))| SpanRecord {
                project: "p".into(),
                trace_id: trace.to_string(),
                span_id: format!("{i:016x}"),
                service_name: "s".into(),
                span_name: "chat".into(),
                span_kind: "CLIENT",
                start_time_unix_nano: at + i as i64 * 1000,
                end_time_unix_nano: at + i as i64 * 1000 + (*ms * 1e6) as i64,
                status_code: "UNSET",
                gen_ai: GenAiFields {
                    route: "r".into(),
                    operation_name: Some("chat".into()),
                    usage_output_tokens: Some(*tokens),
                    ..Default::default()
                },
                ..Default::default()
            })
            .collect();
        store
            .write(Table::Spans, "p", spans_batch(&rows).unwrap())
            .await
            .unwrap();
    }

    fn rule(json: &str) -> AlertRule {
        AlertRule::parse(json).unwrap()
    }

    #[tokio::test]
    async fn threshold_budget_sql_and_drift_rules_measure_their_windows() {
        let (_dir, store) = store().await;
        let now = 100 * MIN;
        verdicts(&store, now - MIN, 100, 12).await;
        let r = rule(
            r#"{"name":"t","kind":"threshold","signal":"parse_failure_rate","op":">","value":0.1,"window":"5m","min_samples":50}"#,
        );
        let e = evaluate_rule(&store, "p", &r, now).await.unwrap();
        assert_eq!((e.breached, e.value, e.samples), (true, Some(0.12), 100));
        let r = rule(
            r#"{"name":"t","kind":"threshold","signal":"parse_failure_rate","op":">","value":0.1,"window":"5m","min_samples":500}"#,
        );
        assert!(
            !evaluate_rule(&store, "p", &r, now).await.unwrap().breached,
            "too few samples never breach"
        );

        // One trace burns 9,000 tokens over its spans: a retry loop no error rate shows.
        let mut traffic: Vec<(&str, i64, f64)> = (0..30).map(|_| ("loop", 300, 50.0)).collect();
        traffic.extend([("a", 100, 50.0), ("b", 200, 50.0)]);
        spans(&store, now - 2 * MIN, &traffic).await;
        let r = rule(
            r#"{"name":"b","kind":"budget","measure":"tokens","per":"trace","value":5000,"window":"5m"}"#,
        );
        let e = evaluate_rule(&store, "p", &r, now).await.unwrap();
        assert_eq!((e.breached, e.value), (true, Some(9000.0)));
        assert_eq!(e.details["worst"], "loop");

        let r = rule(
            r#"{"name":"s","kind":"sql","query":"SELECT count(*) FROM spans","op":">=","value":32}"#,
        );
        assert!(evaluate_rule(&store, "p", &r, now).await.unwrap().breached);
        let r = rule(
            r#"{"name":"s","kind":"sql","query":"SELECT route, count(*) FROM spans GROUP BY route","op":">","value":1}"#,
        );
        let err = evaluate_rule(&store, "p", &r, now).await.unwrap_err();
        assert!(err.to_string().contains("one row with one number"), "{err}");

        // Latency doubles from one window to the next.
        let before: Vec<(&str, i64, f64)> = (0..200)
            .map(|i| ("x", 10, 100.0 + (i % 50) as f64))
            .collect();
        let after: Vec<(&str, i64, f64)> = (0..200)
            .map(|i| ("y", 10, 200.0 + (i % 50) as f64))
            .collect();
        let earlier: Vec<(&str, i64, f64)> = (0..200)
            .map(|i| ("w", 10, 100.0 + ((i * 7) % 50) as f64))
            .collect();
        spans(&store, now - 28 * MIN, &earlier).await;
        spans(&store, now - 18 * MIN, &before).await;
        spans(&store, now - 8 * MIN, &after).await;
        let r =
            rule(r#"{"name":"d","kind":"drift","signal":"latency","window":"10m","route":"r"}"#);
        let e = evaluate_rule(&store, "p", &r, now - 5 * MIN).await.unwrap();
        assert!(e.breached, "{:?}", e.details);
        let same = evaluate_rule(&store, "p", &r, now - 15 * MIN + MIN)
            .await
            .unwrap();
        assert!(!same.breached || same.details["ks"]["statistic"].as_f64().unwrap() < 1.0);
    }

    #[tokio::test]
    async fn a_rule_goes_pending_then_firing_then_resolved_with_one_event_each() {
        let (_dir, store) = store().await;
        let engine = AlertEngine::new(store.clone(), AlertEngineConfig::default());
        let spec = r#"{"name":"json","kind":"threshold","signal":"parse_failure_rate","op":">","value":0.05,"window":"5m","min_samples":10,"for":"2m"}"#;
        store
            .catalog()
            .put_alert_rule("p", "json", spec, true)
            .await
            .unwrap();
        let t0 = 1000 * MIN;
        verdicts(&store, t0 - MIN, 100, 20).await;
        engine.tick(t0).await.unwrap();
        engine.tick(t0 + 30_000_000_000).await.unwrap();
        verdicts(&store, t0 + MIN, 100, 20).await;
        engine.tick(t0 + 2 * MIN).await.unwrap();
        engine.tick(t0 + 3 * MIN).await.unwrap();
        // Ten minutes later the window holds no failures.
        engine.tick(t0 + 10 * MIN).await.unwrap();
        let out = store.sql("p", "SELECT state, CAST(fired_at AS BIGINT) AS f, CAST(resolved_at AS BIGINT) AS r FROM alert_events ORDER BY time").await.unwrap();
        let rows = plumb_store::query::to_json_rows(&out).unwrap().rows;
        let states: Vec<&str> = rows.iter().map(|r| r[0].as_str().unwrap()).collect();
        assert_eq!(states, ["pending", "firing", "resolved"]);
        assert_eq!(rows[1][1], serde_json::json!(t0 + 2 * MIN));
        assert_eq!(
            (rows[2][1].clone(), rows[2][2].clone()),
            (
                serde_json::json!(t0 + 2 * MIN),
                serde_json::json!(t0 + 10 * MIN)
            )
        );
        assert_eq!(
            store
                .catalog()
                .alert_state("p", "json")
                .await
                .unwrap()
                .unwrap()
                .state,
            "ok"
        );
    }
}
