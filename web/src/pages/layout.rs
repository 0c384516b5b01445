//! The page shell every page shares: head, navigation, the time-range picker, and the response
//! headers (a Content-Security-Policy that allows no inline script, so text from spans can never
//! run even if it slipped past escaping).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use leptos::prelude::*;

use crate::error::WebError;
use crate::time_range::{url_encode, TimeRange, PRESETS};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
    img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Which top-level section a page belongs to (highlighted in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Traces,
    Evals,
    Alerts,
    Sql,
}

/// The range picker: presets and an absolute from/to form, keeping the page's other parameters.
#[derive(Debug, Clone)]
pub struct Picker {
    pub path: String,
    /// Other query parameters as `(name, value)`, kept by every picker link.
    pub keep: Vec<(String, String)>,
    pub range: TimeRange,
}

impl Picker {
    fn href(&self, from: &str, to: &str) -> String {
        let mut q: Vec<String> = self
            .keep
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect();
        q.push(format!("from={}&to={}", url_encode(from), url_encode(to)));
        format!("{}?{}", self.path, q.join("&"))
    }
}

/// Renders a full page.
pub fn document(
    title: &str,
    section: Section,
    picker: Option<Picker>,
    body: impl IntoView + 'static,
) -> String {
    let nav = [
        (Section::Overview, "/", "Routes"),
        (Section::Traces, "/traces", "Traces"),
        (Section::Evals, "/evals", "Evals"),
        (Section::Alerts, "/alerts", "Alerts"),
        (Section::Sql, "/sql", "SQL"),
    ];
    let title = format!("{title} · Plumb");
    let view = view! {
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <title>{title}</title>
                <link rel="icon" href="/assets/plumb.svg" type="image/svg+xml"/>
                <link rel="stylesheet" href="/assets/plumb.css"/>
                <script src="/assets/plumb.js" defer=true></script>
            </head>
            <body>
                <header class="top">
                    <a class="brand" href="/">"Plumb"</a>
                    <nav>
                        {nav
                            .into_iter()
                            .map(|(s, href, label)| {
                                let class = if s == section { "active" } else { "" };
                                view! { <a class=class href=href>{label}</a> }
                            })
                            .collect_view()}
                    </nav>
                    {picker.map(picker_view)}
                </header>
                <main>{body}</main>
            </body>
        </html>
    };
    format!("<!DOCTYPE html>{}", view.to_html())
}

fn picker_view(p: Picker) -> impl IntoView {
    let current = (p.range.from_param.clone(), p.range.to_param.clone());
    let presets = PRESETS
        .iter()
        .map(|(label, from)| {
            let active = current.0 == *from && current.1 == "now";
            view! {
                <a class={if active { "preset active" } else { "preset" }} href=p.href(from, "now")>
                    {*label}
                </a>
            }
        })
        .collect_view();
    let hidden = p
        .keep
        .iter()
        .map(|(k, v)| view! { <input type="hidden" name=k.clone() value=v.clone()/> })
        .collect_view();
    view! {
        <form class="picker" method="get" action=p.path.clone()>
            {presets}
            {hidden}
            <input name="from" value=current.0 size="20" aria-label="from"/>
            <span>"→"</span>
            <input name="to" value=current.1 size="20" aria-label="to"/>
            <button type="submit">"Apply"</button>
        </form>
    }
}

/// The current range as hidden `from`/`to` inputs, so a filter form keeps it.
pub fn range_inputs(range: &TimeRange) -> impl IntoView {
    view! {
        <input type="hidden" name="from" value=range.from_param.clone()/>
        <input type="hidden" name="to" value=range.to_param.clone()/>
    }
}

/// A rendered page as a response, with the security headers.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    res
}

/// An error as a page: what went wrong, in words, with the status it deserves.
pub fn error_page(section: Section, e: &WebError) -> Response {
    let message = e.to_string();
    let body = view! {
        <h1>"Something went wrong"</h1>
        <p class="error">{message}</p>
    };
    html(e.status(), document("Error", section, None, body))
}

/// A page result: the rendered page, or the error page.
pub fn respond(section: Section, page: Result<String, WebError>) -> Response {
    match page {
        Ok(body) => html(StatusCode::OK, body),
        Err(e) => error_page(section, &e),
    }
}
