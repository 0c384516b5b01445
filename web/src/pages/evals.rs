//! `/evals`: each evaluator's pass rate over time and its worst recent examples.

use leptos::prelude::*;

use super::chart::{color, time_axis, Lane, Stroke, XAxis};
use super::format;
use super::layout::{document, range_inputs, Picker, Section};
use crate::dashboard::evals::{EvalsFilter, EvalsOverview};

pub fn render(o: EvalsOverview, filter: &EvalsFilter) -> String {
    let axis = XAxis {
        from: o.range.from,
        to: o.range.to,
    };
    let width_ns = o.bucket_secs * 1_000_000_000;
    let empty = o.evaluators.is_empty();
    let charts = o
        .evaluators
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut lane = Lane::new(axis, 44.0, &o.buckets, width_ns, 1.0);
            lane.line(&e.pass_rates, Stroke { color: color(i), dashed: false });
            let href = format!("/evals?evaluator={}&{}", crate::time_range::url_encode(&e.evaluator), o.range.query());
            view! {
                <div class="lane-row">
                    <div class="lane-label">
                        <div class="chart-title"><a href=href>{e.evaluator.clone()}</a></div>
                        <div class="legend">{format!("{} verdicts · pass {} · mean score {}",
                            format::count(e.count), format::pct(e.pass_rate), format::num(e.mean_score))}</div>
                        <div class="scale">"pass rate 0–100%"</div>
                    </div>
                    <div class="lane-charts" inner_html=lane.render(&format!("eval-{}", e.evaluator))></div>
                </div>
            }
        })
        .collect_view();
    let worst_empty = o.worst.is_empty();
    let worst = o
        .worst
        .into_iter()
        .map(|w| {
            let (explanation, _) = format::clip(w.explanation.as_deref().unwrap_or_default(), 600);
            view! {
                <tr>
                    <td>{w.evaluator}</td>
                    <td class={if w.passed == Some(false) { "bad" } else { "" }}>
                        {match w.passed { Some(true) => "pass", Some(false) => "fail", None => "–" }}
                    </td>
                    <td class="num">{format::num(w.score)}</td>
                    <td>{w.route.unwrap_or_default()}</td>
                    <td>{w.model.unwrap_or_default()}</td>
                    <td>{format::time(w.span_start_time)}</td>
                    <td class="explanation">{explanation}</td>
                    <td class="mono"><a href=format!("/traces/{}", w.trace_id)>{w.trace_id[..12.min(w.trace_id.len())].to_string()}"…"</a></td>
                </tr>
            }
        })
        .collect_view();
    let val = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = view! {
        <h1>"Evals"</h1>
        <form class="filters" method="get" action="/evals">
            <input name="evaluator" value=val(&filter.evaluator) placeholder="evaluator" aria-label="evaluator"/>
            <input name="route" value=val(&filter.route) placeholder="route" aria-label="route"/>
            {range_inputs(&o.range)}
            <button type="submit">"Filter"</button>
        </form>
        {if empty {
            view! { <p class="empty">"No verdicts in this range. Enable evaluators under [evals] in plumb.toml, or run plumb eval run."</p> }.into_any()
        } else {
            view! {
                <section class="timeline">
                    {charts}
                    <div class="lane-row axis-row"><div class="lane-label"></div><div class="lane-charts" inner_html=time_axis(axis)></div></div>
                </section>
            }.into_any()
        }}
        <h2>"Worst recent examples"</h2>
        {if worst_empty {
            view! { <p class="hint">"No failed or scored verdicts."</p> }.into_any()
        } else {
            view! {
                <table class="worst">
                    <thead><tr><th>"Evaluator"</th><th>"Verdict"</th><th>"Score"</th><th>"Route"</th><th>"Model"</th><th>"Span start (UTC)"</th><th>"Explanation"</th><th>"Trace"</th></tr></thead>
                    <tbody>{worst}</tbody>
                </table>
            }.into_any()
        }}
    };
    let keep = [("evaluator", &filter.evaluator), ("route", &filter.route)]
        .into_iter()
        .filter_map(|(k, v)| {
            v.clone()
                .filter(|v| !v.is_empty())
                .map(|v| (k.to_string(), v))
        })
        .collect();
    let picker = Picker {
        path: "/evals".into(),
        keep,
        range: o.range.clone(),
    };
    document("Evals", Section::Evals, Some(picker), body)
}
