//! The alerts page: every rule with its current state, and the newest transitions.

use plumb_evaluators::alerts::AlertRule;
use plumb_store::catalog::alerts::RuleState;
use plumb_store::Store;
use serde::Serialize;
use serde_json::Value;

use super::{f64_at, i64_at, rows, str_at};
use crate::error::WebError;

const EVENTS: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub name: String,
    pub enabled: bool,
    pub kind: Option<String>,
    pub route: Option<String>,
    /// The rule document, pretty-printed (what the edit form starts from).
    pub spec: String,
    pub state: Option<RuleState>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    pub time: i64,
    pub rule_name: String,
    pub rule_kind: Option<String>,
    pub state: String,
    pub value: Option<f64>,
    pub threshold: Option<f64>,
    pub details: Option<String>,
}

pub async fn rules(store: &Store, project: &str) -> Result<Vec<RuleView>, WebError> {
    let catalog = store.catalog();
    let mut out = Vec::new();
    for r in catalog.alert_rules(Some(project)).await? {
        let parsed = AlertRule::parse(&r.spec).ok();
        let spec = serde_json::from_str::<Value>(&r.spec)
            .and_then(|v| serde_json::to_string_pretty(&v))
            .unwrap_or(r.spec.clone());
        out.push(RuleView {
            state: catalog.alert_state(project, &r.name).await?,
            kind: parsed.as_ref().map(|p| p.kind_name().to_string()),
            route: parsed.and_then(|p| p.route),
            name: r.name,
            enabled: r.enabled,
            spec,
        });
    }
    Ok(out)
}

pub async fn events(store: &Store, project: &str) -> Result<Vec<AlertEvent>, WebError> {
    let out = rows(
        store,
        project,
        &format!(
            "SELECT CAST(time AS BIGINT) AS t, rule_name, rule_kind, state, value, threshold, details \
             FROM alert_events ORDER BY time DESC LIMIT {EVENTS}"
        ),
    )
    .await?;
    Ok(out
        .rows
        .iter()
        .filter_map(|r| {
            Some(AlertEvent {
                time: i64_at(r, 0)?,
                rule_name: str_at(r, 1)?,
                rule_kind: str_at(r, 2),
                state: str_at(r, 3)?,
                value: f64_at(r, 4),
                threshold: f64_at(r, 5),
                details: str_at(r, 6),
            })
        })
        .collect())
}
