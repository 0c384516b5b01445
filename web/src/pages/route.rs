//! `/routes/{route}`: the reliability timeline. Lanes share one time axis: infra, route
//! decisions, latency and errors, evals, alerts, changes; then the changes with their
//! before/after comparisons. Hover shows a bucket's values, a click lists its traces, a drag
//! zooms (plumb.js, with the values embedded as JSON).

use leptos::prelude::*;

use super::chart::{color, max_of, time_axis, Lane, Stroke, XAxis};
use super::format;
use super::layout::{document, Picker, Section};
use crate::dashboard::timeline::{Change, ChangeMarker, Timeline};
use crate::time_range::{rfc3339, url_encode};

const SUB_LANE: f64 = 44.0;

/// One titled chart of a lane, with its legend (HTML, escaped) and scale label.
struct Chart {
    title: String,
    legend: Vec<(String, &'static str)>,
    scale: String,
    svg: String,
}

/// A lane: a group of charts under one name (`data-lane`), or a note when it has no data.
struct LaneView {
    name: &'static str,
    title: &'static str,
    charts: Vec<Chart>,
    empty_note: &'static str,
}

/// Builds lanes over the timeline's axis, with the change lines drawn through every chart.
struct Builder<'a> {
    t: &'a Timeline,
    axis: XAxis,
    width_ns: i64,
    /// Change points with their hover titles.
    marks: Vec<(i64, String)>,
}

fn marks(t: &Timeline) -> Vec<(i64, String)> {
    t.changes
        .iter()
        .map(|m| (m.time, change_title(m)))
        .collect()
}

impl Builder<'_> {
    fn lane(&self, y_max: f64) -> Lane {
        let mut lane = Lane::new(self.axis, SUB_LANE, &self.t.buckets, self.width_ns, y_max);
        for (t, _) in &self.marks {
            lane.rule(*t, "change-line");
        }
        lane
    }

    fn lines(
        &self,
        title: &str,
        series: &[(&str, &[Option<f64>], bool)],
        scale: impl Fn(f64) -> String,
    ) -> Option<Chart> {
        self.chart(title, series, scale, false)
    }

    /// Like [`Builder::lines`]; `bridge` draws across empty buckets (sparse gauges).
    fn chart(
        &self,
        title: &str,
        series: &[(&str, &[Option<f64>], bool)],
        scale: impl Fn(f64) -> String,
        bridge: bool,
    ) -> Option<Chart> {
        let max = max_of(series.iter().map(|s| s.1));
        if series.iter().all(|s| s.1.iter().all(Option::is_none)) {
            return None;
        }
        let mut lane = self.lane(max * 1.1);
        let mut legend = Vec::new();
        for (i, (label, values, dashed)) in series.iter().enumerate() {
            let c = color(i);
            let stroke = Stroke {
                color: c,
                dashed: *dashed,
            };
            if bridge {
                lane.line_through_gaps(values, stroke);
            } else {
                lane.line(values, stroke);
            }
            legend.push((label.to_string(), c));
        }
        Some(Chart {
            title: title.into(),
            legend,
            scale: format!("max {}", scale(max)),
            svg: lane.render(title),
        })
    }
}

fn what(c: &Change) -> String {
    match (&c.before, &c.after) {
        (Some(b), Some(a)) => format!("{}: {b} → {a}", c.kind),
        (None, Some(a)) => format!("{}: {a}", c.kind),
        _ => c.kind.clone(),
    }
}

fn change_title(m: &ChangeMarker) -> String {
    let items: Vec<String> = m.changes.iter().map(what).collect();
    format!("{} UTC\n{}", format::time(m.time), items.join("\n"))
}

fn as_f64(v: &[u64]) -> Vec<Option<f64>> {
    v.iter().map(|&x| Some(x as f64)).collect()
}

pub fn render(t: Timeline) -> String {
    let axis = XAxis {
        from: t.range.from,
        to: t.range.to,
    };
    let b = Builder {
        t: &t,
        axis,
        width_ns: t.bucket_secs * 1_000_000_000,
        marks: marks(&t),
    };
    let mut lanes = Vec::new();

    // Infra: one chart per metric (their units differ).
    let mut infra: Vec<Chart> = t
        .infra
        .iter()
        .filter_map(|s| {
            let unit = s.unit.clone().unwrap_or_default();
            b.chart(
                &s.name,
                &[(s.name.as_str(), &s.values, false)],
                |m| format!("{} {unit}", format::num(Some(m))),
                true,
            )
        })
        .collect();
    infra.extend(b.lines(
        "queue time (spans)",
        &[("queue time p95", &t.latency.queue_time_p95, false)],
        |m| format::secs(Some(m)),
    ));
    lanes.push(LaneView {
        name: "infra",
        title: "Infra",
        charts: infra,
        empty_note:
            "No serving metrics from this route's services in the range (send GPU and engine \
                     metrics over OTLP with the same service.name, or a plumb.route attribute).",
    });

    // Decisions: the mix of each dimension with more than nothing, then retries/fallbacks/cache.
    let mut decisions = Vec::new();
    for dim in ["model", "provider", "engine", "gpu_pool"] {
        let values: Vec<_> = t
            .decisions
            .mix
            .iter()
            .filter(|m| m.dimension == dim)
            .collect();
        if values.is_empty() {
            continue;
        }
        let totals: Vec<u64> = (0..t.buckets.len())
            .map(|i| values.iter().map(|m| m.counts[i]).sum())
            .collect();
        let max = totals.iter().copied().max().unwrap_or(0) as f64;
        let mut lane = b.lane(max);
        let layers: Vec<(&'static str, &[u64])> = values
            .iter()
            .enumerate()
            .map(|(i, m)| (color(i), m.counts.as_slice()))
            .collect();
        lane.stacked_bars(&layers);
        decisions.push(Chart {
            title: format!("{} mix", dim.replace('_', " ")),
            legend: values
                .iter()
                .enumerate()
                .map(|(i, m)| (m.value.clone(), color(i)))
                .collect(),
            scale: format!("max {} req/bucket", format::count(max as u64)),
            svg: lane.render(&format!("mix-{dim}")),
        });
    }
    let (retries, fallbacks, hits) = (
        as_f64(&t.decisions.retries),
        as_f64(&t.decisions.fallbacks),
        as_f64(&t.decisions.cache_hits),
    );
    if [
        &t.decisions.retries,
        &t.decisions.fallbacks,
        &t.decisions.cache_hits,
    ]
    .iter()
    .any(|v| v.iter().any(|&x| x > 0))
    {
        if let Some(c) = b.lines(
            "retries, fallbacks, cache hits",
            &[
                ("retries", &retries, false),
                ("fallbacks", &fallbacks, false),
                ("cache hits", &hits, true),
            ],
            |m| format!("{} /bucket", format::num(Some(m))),
        ) {
            decisions.push(c);
        }
    }
    lanes.push(LaneView {
        name: "decisions",
        title: "Route decisions",
        charts: decisions,
        empty_note: "No model, provider, engine or pool recorded on this route's spans.",
    });

    // Latency and errors.
    let l = &t.latency;
    let requests = as_f64(&l.requests);
    let mut latency = Vec::new();
    latency.extend(b.lines("requests", &[("requests", &requests, false)], |m| {
        format!("{} /bucket", format::num(Some(m)))
    }));
    latency.extend(b.lines(
        "TTFT",
        &[
            ("TTFT p50", &l.ttft_p50, false),
            ("TTFT p95", &l.ttft_p95, true),
        ],
        |m| format::secs(Some(m)),
    ));
    latency.extend(b.lines(
        "TPOT",
        &[
            ("TPOT p50", &l.tpot_p50, false),
            ("TPOT p95", &l.tpot_p95, true),
        ],
        |m| format::secs(Some(m)),
    ));
    if l.ttft_p95.iter().all(Option::is_none) {
        latency.extend(b.lines(
            "latency p95",
            &[("latency p95", &l.latency_p95_ms, false)],
            |m| format::ms(Some(m)),
        ));
    }
    latency.extend(b.lines(
        "errors",
        &[
            ("error rate", &l.error_rate, false),
            ("parse failures", &l.parse_failure_rate, true),
        ],
        |m| format::pct(Some(m)),
    ));
    lanes.push(LaneView {
        name: "latency",
        title: "Latency and errors",
        charts: latency,
        empty_note: "No requests on this route in the range.",
    });

    // Evals: pass rate with its 95 % band, per evaluator.
    let evals = t
        .evals
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut lane = b.lane(1.0);
            let c = color(i);
            lane.band(&e.pass_low, &e.pass_high, c);
            let has_pass = e.pass_rate.iter().any(Option::is_some);
            if has_pass {
                lane.line(
                    &e.pass_rate,
                    Stroke {
                        color: c,
                        dashed: false,
                    },
                );
            } else {
                lane.line(
                    &e.mean_score,
                    Stroke {
                        color: c,
                        dashed: true,
                    },
                );
            }
            let n: u64 = e.count.iter().sum();
            Chart {
                title: e.evaluator.clone(),
                legend: vec![(
                    format!(
                        "{} {} ({} verdicts)",
                        e.evaluator,
                        if has_pass { "pass rate" } else { "mean score" },
                        format::count(n)
                    ),
                    c,
                )],
                scale: "0–100%".into(),
                svg: lane.render(&format!("eval-{}", e.evaluator)),
            }
        })
        .collect();
    lanes.push(LaneView {
        name: "evals",
        title: "Evals",
        charts: evals,
        empty_note: "No eval verdicts on this route in the range.",
    });

    // Alerts: firing intervals.
    let mut alerts = Vec::new();
    if !t.alerts.is_empty() {
        let mut lane = b.lane(1.0);
        let mut names: Vec<String> = Vec::new();
        for iv in &t.alerts {
            if !names.contains(&iv.rule_name) {
                names.push(iv.rule_name.clone());
            }
            let end = iv.resolved_at.unwrap_or(t.range.to);
            let title = format!(
                "{} fired {}{} (value {}, threshold {})",
                iv.rule_name,
                format::time(iv.fired_at),
                iv.resolved_at
                    .map(|r| format!(", resolved {}", format::time(r)))
                    .unwrap_or_else(|| ", still firing".into()),
                format::num(iv.value),
                format::num(iv.threshold)
            );
            lane.interval(iv.fired_at.max(t.range.from), end, "alert-interval", &title);
        }
        alerts.push(Chart {
            title: "firing".into(),
            legend: names.into_iter().map(|n| (n, "#dc2626")).collect(),
            scale: String::new(),
            svg: lane.render("alerts"),
        });
    }
    lanes.push(LaneView {
        name: "alerts",
        title: "Alerts",
        charts: alerts,
        empty_note: "No alert on this route fired in the range.",
    });

    // Changes: markers.
    let mut changes = Vec::new();
    if !t.changes.is_empty() {
        let mut lane = Lane::new(axis, 28.0, &t.buckets, b.width_ns, 1.0);
        for (time, title) in &b.marks {
            lane.marker(*time, "change-marker", title);
        }
        changes.push(Chart {
            title: "changes".into(),
            legend: vec![(format!("{} detected", t.changes.len()), "#7c3aed")],
            scale: String::new(),
            svg: lane.render("changes"),
        });
    }
    lanes.push(LaneView {
        name: "changes",
        title: "Changes",
        charts: changes,
        empty_note:
            "No model, provider, engine or pool change and no plumb.deploy event in the range.",
    });

    let data = tooltip_json(&t);
    let route = t.route.clone();
    let range = t.range.clone();
    let total: u64 = t.latency.requests.iter().sum();
    let errors: u64 = t.latency.errors.iter().sum();
    let traces_href = super::traces::traces_href(&route, &range);
    let change_rows = t.changes.iter().rev().map(change_row).collect_view();
    let has_changes = !t.changes.is_empty();
    let body = view! {
        <h1><span class="muted">"Route "</span>{route.clone()}</h1>
        <p class="summary">
            {format!(
                "{} requests, {} errors ({}), bucket {} s. ",
                format::count(total),
                format::count(errors),
                format::pct((total > 0).then(|| errors as f64 / total as f64)),
                t.bucket_secs
            )}
            <a href=traces_href>"List traces"</a>
            <span class="muted">" · Hover for values, click a bucket for its traces, drag to zoom."</span>
        </p>
        <section
            class="timeline"
            data-route=route.clone()
            data-from=range.from.to_string()
            data-to=range.to.to_string()
        >
            {lanes.into_iter().map(lane_view).collect_view()}
            <div class="lane-row axis-row">
                <div class="lane-label"></div>
                <div class="lane-charts" inner_html=time_axis(axis)></div>
            </div>
            <div class="tooltip" hidden=true></div>
        </section>
        <h2>"Changes"</h2>
        {if has_changes {
            view! {
                <table class="changes">
                    <thead><tr>
                        <th>"When"</th><th>"What"</th><th>"Requests before → after"</th>
                        <th>"Errors"</th><th>"TTFT p95"</th><th>"Evals (after − before, 95% CI)"</th>
                    </tr></thead>
                    <tbody>{change_rows}</tbody>
                </table>
            }.into_any()
        } else {
            view! { <p class="hint">"No changes detected in this range."</p> }.into_any()
        }}
        <script type="application/json" id="timeline-data" inner_html=data></script>
    };
    let picker = Picker {
        path: format!("/routes/{}", url_encode(&t.route)),
        keep: vec![],
        range,
    };
    document(
        &format!("{} timeline", t.route),
        Section::Overview,
        Some(picker),
        body,
    )
}

fn lane_view(l: LaneView) -> impl IntoView {
    let empty = l.charts.is_empty();
    let charts = l
        .charts
        .into_iter()
        .map(|c| {
            let legend = c
                .legend
                .into_iter()
                .map(|(label, col)| {
                    view! { <span class="key"><i style=format!("background:{col}")></i>{label}</span> }
                })
                .collect_view();
            view! {
                <div class="lane-row">
                    <div class="lane-label">
                        <div class="chart-title">{c.title}</div>
                        <div class="legend">{legend}</div>
                        <div class="scale">{c.scale}</div>
                    </div>
                    <div class="lane-charts" inner_html=c.svg></div>
                </div>
            }
        })
        .collect_view();
    view! {
        <div class="lane" data-lane=l.name>
            <h3 class="lane-title">{l.title}</h3>
            {charts}
            {empty.then(|| view! { <p class="lane-empty">{l.empty_note}</p> })}
        </div>
    }
}

fn change_row(c: &ChangeMarker) -> impl IntoView {
    let what = c
        .changes
        .iter()
        .map(|x| view! { <div>{what(x)}</div> })
        .collect_view();
    let evals = c
        .evals
        .iter()
        .filter_map(|cmp| {
            let d = cmp.pass_rate.as_ref().or(cmp.mean_score.as_ref())?;
            let class = if cmp.significant { "pill bad" } else { "pill" };
            Some(view! {
                <span class=class title=format!("p = {:.3}", d.p_value)>
                    {format!(
                        "{} {:+.1} pts [{:+.1}, {:+.1}]{}",
                        cmp.evaluator,
                        d.diff * 100.0,
                        d.ci_low * 100.0,
                        d.ci_high * 100.0,
                        if cmp.significant { " significant" } else { "" }
                    )}
                </span>
            })
        })
        .collect_view();
    view! {
        <tr class="change-row">
            <td>{format::time(c.time)}</td>
            <td>{what}</td>
            <td class="num">{format!("{} → {}", format::count(c.before_window.requests), format::count(c.after_window.requests))}</td>
            <td class="num">{format!("{} → {}", format::pct(c.before_window.error_rate), format::pct(c.after_window.error_rate))}</td>
            <td class="num">{format!("{} → {}", format::secs(c.before_window.ttft_p95), format::secs(c.after_window.ttft_p95))}</td>
            <td>{evals}</td>
        </tr>
    }
}

/// The values the tooltip shows, formatted once here: `{"first", "width", "route", "rows":
/// [[label, [value per bucket]]]}`, escaped for a `<script>` data block.
fn tooltip_json(t: &Timeline) -> String {
    let mut rows: Vec<(String, Vec<Option<String>>)> = Vec::new();
    let fmt = |v: &[Option<f64>], f: fn(Option<f64>) -> String| -> Vec<Option<String>> {
        v.iter().map(|x| x.map(|x| f(Some(x)))).collect()
    };
    let counts = |v: &[u64]| -> Vec<Option<String>> {
        v.iter()
            .map(|&x| (x > 0).then(|| format::count(x)))
            .collect()
    };
    let l = &t.latency;
    rows.push(("requests".into(), counts(&l.requests)));
    rows.push(("errors".into(), fmt(&l.error_rate, format::pct)));
    rows.push(("TTFT p50".into(), fmt(&l.ttft_p50, format::secs)));
    rows.push(("TTFT p95".into(), fmt(&l.ttft_p95, format::secs)));
    rows.push(("TPOT p95".into(), fmt(&l.tpot_p95, format::secs)));
    rows.push((
        "parse failures".into(),
        fmt(&l.parse_failure_rate, format::pct),
    ));
    for s in &t.infra {
        rows.push((s.name.clone(), fmt(&s.values, format::num)));
    }
    for m in &t.decisions.mix {
        rows.push((format!("{} {}", m.dimension, m.value), counts(&m.counts)));
    }
    rows.push(("retries".into(), counts(&t.decisions.retries)));
    rows.push(("fallbacks".into(), counts(&t.decisions.fallbacks)));
    for e in &t.evals {
        rows.push((
            format!("{} pass", e.evaluator),
            fmt(&e.pass_rate, format::pct),
        ));
    }
    rows.retain(|(_, v)| v.iter().any(Option::is_some));
    let json = serde_json::json!({
        "first": t.buckets.first().copied().unwrap_or(t.range.from),
        "width": t.bucket_secs * 1_000_000_000,
        "from": rfc3339(t.range.from),
        "route": t.route,
        "rows": rows,
    });
    // `<` can never start a tag inside the data block, whatever the span text says.
    json.to_string()
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::timeline::{Decisions, Latency, Mix, Series, Window};
    use crate::time_range::{RangeParams, TimeRange};

    const EVIL: &str = "\"><script>alert(1)</script>";

    fn timeline() -> Timeline {
        let range = TimeRange::resolve(&RangeParams::default(), 7_200_000_000_000).unwrap();
        let n = 3;
        let some = vec![Some(0.5); n];
        Timeline {
            route: EVIL.into(),
            bucket_secs: 1200,
            buckets: (0..n as i64)
                .map(|i| range.from + i * 1_200_000_000_000)
                .collect(),
            range,
            infra: vec![Series {
                name: EVIL.into(),
                unit: Some(EVIL.into()),
                values: some.clone(),
            }],
            decisions: Decisions {
                mix: vec![Mix {
                    dimension: "model".into(),
                    value: EVIL.into(),
                    counts: vec![1, 2, 3],
                }],
                retries: vec![0; n],
                fallbacks: vec![0; n],
                cache_hits: vec![0; n],
            },
            latency: Latency {
                requests: vec![1, 2, 3],
                errors: vec![0, 1, 0],
                error_rate: some.clone(),
                ttft_p50: some.clone(),
                ttft_p95: some.clone(),
                tpot_p50: some.clone(),
                tpot_p95: some.clone(),
                latency_p95_ms: some.clone(),
                parse_failure_rate: some.clone(),
                queue_time_p95: some.clone(),
                cost_usd: some,
            },
            evals: vec![],
            alerts: vec![],
            changes: vec![ChangeMarker {
                time: 3_600_000_000_000,
                changes: vec![Change {
                    time: 3_600_000_000_000,
                    kind: "model".into(),
                    before: Some(EVIL.into()),
                    after: Some("b".into()),
                }],
                before_window: Window::default(),
                after_window: Window::default(),
                evals: vec![],
            }],
        }
    }

    #[test]
    fn span_text_is_escaped_everywhere_on_the_timeline() {
        let html = render(timeline());
        assert!(!html.contains("<script>alert"), "{html}");
        // In attributes the quote is escaped, so the value cannot end early.
        assert!(html.contains("data-route=\"&quot;"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        // The data block for the tooltip cannot close its script element either.
        let data = html.split("id=\"timeline-data\">").nth(1).unwrap();
        let data = data.split("</script>").next().unwrap();
        assert!(
            !data.contains('<') && data.contains("\\u003cscript"),
            "{data}"
        );
        for lane in [
            "infra",
            "decisions",
            "latency",
            "evals",
            "alerts",
            "changes",
        ] {
            assert!(html.contains(&format!("data-lane=\"{lane}\"")), "{lane}");
        }
        assert!(html.contains("class=\"change-marker\""));
    }
}
