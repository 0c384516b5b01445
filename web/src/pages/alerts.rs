//! `/alerts`: rules with their state, the newest transitions, and a form to create or edit a
//! rule (the same JSON document the API and `plumb alerts add` take).

use leptos::prelude::*;

use super::format;
use super::layout::{document, Section};
use crate::dashboard::alerts::{AlertEvent, RuleView};
use crate::time_range::url_encode;

/// What the form starts with when no rule is being edited.
pub const EXAMPLE_RULE: &str = r#"{
  "name": "chat-json-failures",
  "kind": "threshold",
  "signal": "parse_failure_rate",
  "op": ">",
  "value": 0.05,
  "route": "chat",
  "window": "10m",
  "for": "2m"
}"#;

pub struct Form {
    pub spec: String,
    pub error: Option<String>,
    pub editing: Option<String>,
}

pub fn render(rules: Vec<RuleView>, events: Vec<AlertEvent>, form: Form) -> String {
    let no_rules = rules.is_empty();
    let rule_rows = rules
        .into_iter()
        .map(|r| {
            let state = r
                .state
                .as_ref()
                .map(|s| s.state.clone())
                .unwrap_or_else(|| "ok".into());
            let since = r.state.as_ref().map(|s| format::time(s.since)).unwrap_or_default();
            let value = r.state.as_ref().and_then(|s| s.value);
            let edit = format!("/alerts?edit={}", url_encode(&r.name));
            let delete = format!("/alerts/{}/delete", url_encode(&r.name));
            view! {
                <tr data-rule=r.name.clone()>
                    <td>{r.name.clone()}</td>
                    <td>{r.kind.clone().unwrap_or_default()}</td>
                    <td>{r.route.clone().unwrap_or_else(|| "all routes".into())}</td>
                    <td><span class=format!("state {state}")>{state.clone()}</span>{(!r.enabled).then_some(" (disabled)")}</td>
                    <td>{since}</td>
                    <td class="num">{format::num(value)}</td>
                    <td class="actions">
                        <a href=edit>"Edit"</a>
                        <form method="post" action=delete class="inline">
                            <button type="submit" class="link">"Delete"</button>
                        </form>
                    </td>
                </tr>
            }
        })
        .collect_view();
    let no_events = events.is_empty();
    let event_rows = events
        .into_iter()
        .map(|e| {
            view! {
                <tr>
                    <td>{format::time(e.time)}</td>
                    <td>{e.rule_name}</td>
                    <td><span class=format!("state {}", e.state)>{e.state.clone()}</span></td>
                    <td class="num">{format::num(e.value)}</td>
                    <td class="num">{format::num(e.threshold)}</td>
                    <td class="explanation">{e.details.unwrap_or_default()}</td>
                </tr>
            }
        })
        .collect_view();
    let heading = match &form.editing {
        Some(name) => format!("Edit rule {name}"),
        None => "New rule".to_string(),
    };
    let body = view! {
        <h1>"Alerts"</h1>
        <h2>"Rules"</h2>
        {if no_rules {
            view! { <p class="empty">"No alert rules yet. Create one below, with the API, or with plumb alerts add."</p> }.into_any()
        } else {
            view! {
                <table class="rules">
                    <thead><tr><th>"Rule"</th><th>"Kind"</th><th>"Route"</th><th>"State"</th><th>"Since (UTC)"</th><th>"Last value"</th><th></th></tr></thead>
                    <tbody>{rule_rows}</tbody>
                </table>
            }.into_any()
        }}
        <h2>{heading}</h2>
        {form.error.map(|e| view! { <p class="error">{e}</p> })}
        <form class="rule-form" method="post" action="/alerts">
            <textarea name="spec" rows="12" cols="70" spellcheck="false" aria-label="rule">{form.spec}</textarea>
            <p class="hint">
                "Kinds: threshold, regression, drift, budget, sql. Signals: parse_failure_rate, tool_call_error_rate, "
                "error_rate, ttft_p95, ttft_p99, latency_p95, eval_score_mean, eval_pass_rate, cost_per_1k_requests. "
                "See docs/evals.md for every field."
            </p>
            <button type="submit">"Save rule"</button>
        </form>
        <h2>"History"</h2>
        {if no_events {
            view! { <p class="hint">"No transitions yet."</p> }.into_any()
        } else {
            view! {
                <table class="events">
                    <thead><tr><th>"Time (UTC)"</th><th>"Rule"</th><th>"State"</th><th>"Value"</th><th>"Threshold"</th><th>"Details"</th></tr></thead>
                    <tbody>{event_rows}</tbody>
                </table>
            }.into_any()
        }}
    };
    document("Alerts", Section::Alerts, None, body)
}
