//! The dashboard through the real binary: pages render server-side with no data and with an
//! hour of seeded traffic (sent as OTLP JSON), stay under 150 KB, escape span text, answer bad
//! input with clear errors; then headless Chromium (Debian's chromium and chromedriver, driven
//! by Selenium) checks each page for console errors, the timeline's lanes, change marker and
//! alert interval, hover values and a `<script>` prompt shown as text.
//!
//! `PLUMB_SCREENSHOTS=<dir>` saves the browser's screenshots of the main pages there
//! (docs/screenshots/ holds the committed ones).

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{python, repo_root, temp_dir, wait_for, write_config, Plumb};
use serde_json::Value;

/// Every page's HTML plus the stylesheet and script it loads must stay under this.
const PAGE_BUDGET: usize = 150 * 1024;

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn get(url: &str) -> (u16, String) {
    let r = client().get(url).send().unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

fn assets_size(plumb: &Plumb) -> usize {
    ["/assets/plumb.css", "/assets/plumb.js"]
        .iter()
        .map(|p| {
            let (status, body) = get(&format!("{}{p}", plumb.http));
            assert_eq!(status, 200, "{p}");
            body.len()
        })
        .sum()
}

fn page(plumb: &Plumb, path: &str) -> String {
    let (status, body) = get(&format!("{}{path}", plumb.http));
    assert_eq!(status, 200, "{path}: {body}");
    assert!(body.starts_with("<!DOCTYPE html>"), "{path}");
    body
}

#[test]
fn pages_render_with_no_data_and_explain_bad_input() {
    let dir = temp_dir();
    let plumb = Plumb::start(&dir.path().join("data"), &[]);
    for path in [
        "/",
        "/routes/chat",
        "/traces",
        "/evals",
        "/alerts",
        "/sql",
        "/sql?q=SELECT+1+AS+one",
    ] {
        let body = page(&plumb, path);
        assert!(body.contains("<nav>"), "{path}");
    }
    assert!(page(&plumb, "/").contains("No spans in this range yet"));
    let route = page(&plumb, "/routes/chat");
    for lane in [
        "infra",
        "decisions",
        "latency",
        "evals",
        "alerts",
        "changes",
    ] {
        assert!(route.contains(&format!("data-lane=\"{lane}\"")), "{lane}");
    }
    // Security headers on every page: no inline script may run.
    let r = client().get(format!("{}/", plumb.http)).send().unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");

    // Bad input: a clear error, in the page and in the API.
    let (status, body) = get(&format!("{}/traces?from=yesterday", plumb.http));
    assert_eq!(status, 400);
    assert!(body.contains("bad time `yesterday`"), "{body}");
    let (status, body) = get(&format!(
        "{}/api/v1/timeline?route=chat&from=now&to=now-1h",
        plumb.http
    ));
    assert_eq!(status, 400);
    assert!(body.contains("must be before"), "{body}");
    let (status, body) = get(&format!("{}/api/v1/timeline", plumb.http));
    assert_eq!(status, 400, "{body}");
    let (status, _) = get(&format!("{}/traces/{}", plumb.http, "ab".repeat(16)));
    assert_eq!(status, 404);
    let (status, _) = get(&format!("{}/api/v1/traces/not-hex", plumb.http));
    assert_eq!(status, 400);
    let sql = page(&plumb, "/sql?q=DELETE+FROM+spans");
    assert!(sql.contains("read-only"), "{sql}");
}

/// Seeds an hour of traffic and an alert rule, then waits until the alert fires and the online
/// evaluators have judged the seeded spans.
fn seeded() -> (tempfile::TempDir, Plumb, Value) {
    let dir = temp_dir();
    let config = write_config(
        dir.path(),
        "[evals]\ninterval_ms = 200\n[alerts]\ninterval_secs = 1\n",
    );
    let plumb = Plumb::start(&dir.path().join("data"), &["--config", &config]);
    let out = Command::new(python())
        .arg(repo_root().join("tests/python/seed_dashboard.py"))
        .args(["--otlp-http", &plumb.otlp_http])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "seed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rule = r#"{"name":"chat-errors","kind":"threshold","signal":"error_rate","op":">","value":0.2,
        "route":"chat","window":"10m","min_samples":5}"#;
    let r = client()
        .post(format!("{}/api/v1/alerts/rules", plumb.http))
        .body(rule)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let spans = seed["spans"].as_i64().unwrap();
    let judged = wait_for(
        &plumb,
        "SELECT count(*) FROM evals WHERE evaluator = 'json_parse'",
        |r| r.scalar().as_i64() >= Some(spans / 2),
    );
    assert!(
        judged.scalar().as_i64().unwrap() > 0,
        "no json_parse verdicts"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let rows = wait_for(
            &plumb,
            "SELECT count(*) FROM alert_events WHERE rule_name = 'chat-errors' AND state = 'firing'",
            |r| r.scalar().as_i64() >= Some(1),
        );
        if rows.scalar().as_i64() >= Some(1) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the alert never fired: {}",
            plumb.log_text()
        );
    }
    (dir, plumb, seed)
}

#[test]
fn seeded_dashboard_renders_escapes_and_passes_the_browser_checks() {
    let (_dir, plumb, seed) = seeded();
    let assets = assets_size(&plumb);
    let xss = seed["xss_trace_id"].as_str().unwrap();
    let long = seed["long_trace_id"].as_str().unwrap();
    for path in [
        "/".to_string(),
        "/routes/chat".into(),
        "/routes/chat?from=now-24h&to=now".into(),
        "/traces".into(),
        "/traces?route=chat&status=error".into(),
        format!("/traces/{xss}"),
        format!("/traces/{long}"),
        "/evals".into(),
        "/alerts".into(),
        "/sql?q=SELECT+*+FROM+spans+LIMIT+1000".into(),
    ] {
        let body = page(&plumb, &path);
        assert!(
            body.len() + assets < PAGE_BUDGET,
            "{path}: {} bytes of HTML + {assets} of CSS/JS",
            body.len()
        );
    }

    // Span text is escaped wherever it appears.
    let trace = page(&plumb, &format!("/traces/{xss}"));
    assert!(
        trace.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "{trace}"
    );
    assert!(!trace.contains("<script>alert(1)"));
    let sql = page(
        &plumb,
        "/sql?q=SELECT+input_text+FROM+spans+WHERE+input_text+LIKE+'%25alert%25'",
    );
    assert!(sql.contains("&lt;script&gt;alert(1)") && !sql.contains("<script>alert(1)"));

    // The timeline's data: every lane filled, the model switch and the firing alert present.
    let (status, body) = get(&format!(
        "{}/api/v1/timeline?route=chat&from=now-1h&to=now",
        plumb.http
    ));
    assert_eq!(status, 200, "{body}");
    let t: Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = t["infra"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"DCGM_FI_DEV_GPU_UTIL") && names.contains(&"vllm:num_requests_waiting"),
        "{names:?}"
    );
    let changes = t["changes"].to_string();
    assert!(
        changes.contains("llama-3.1-70b") && changes.contains("plumb.deploy"),
        "{changes}"
    );
    assert_eq!(t["alerts"][0]["rule_name"], "chat-errors");
    assert!(t["evals"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["evaluator"] == "json_parse"));
    let requests: u64 = t["latency"]["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(requests > 200, "{requests}");

    // Over a day the buckets are whole minutes and traffic comes from the per-minute rollups
    // (flushed files' and buffered rows'): it must count every span of the route, see the model
    // switch in the decision mix and give latency percentiles.
    let (status, body) = get(&format!(
        "{}/api/v1/timeline?route=chat&from=now-24h&to=now",
        plumb.http
    ));
    assert_eq!(status, 200, "{body}");
    let day: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(day["bucket_secs"], 900);
    let per_bucket =
        |field: &str| -> Vec<Value> { day["latency"][field].as_array().unwrap().clone() };
    let requests: u64 = per_bucket("requests")
        .iter()
        .map(|v| v.as_u64().unwrap())
        .sum();
    let stored = plumb.sql(
        "SELECT count(*) FROM spans WHERE route = 'chat' AND start_time >= now() - INTERVAL '1 day'",
    );
    assert_eq!(requests, stored.scalar().as_u64().unwrap());
    assert!(per_bucket("ttft_p95").iter().any(|v| v.as_f64().is_some()));
    let models: Vec<&str> = day["decisions"]["mix"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["dimension"] == "model")
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert!(models.contains(&"llama-3.1-70b"), "{models:?}");

    // The routes API and trace search agree with what was sent.
    let (_, body) = get(&format!("{}/api/v1/routes", plumb.http));
    let o: Value = serde_json::from_str(&body).unwrap();
    let chat = o["routes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["route"] == "chat")
        .unwrap()
        .clone();
    assert_eq!(chat["alert_state"], "firing");
    assert!(chat["errors"].as_u64().unwrap() > 0);
    let (_, body) = get(&format!("{}/api/v1/traces?q=alert(1)", plumb.http));
    let found: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(found["traces"][0]["trace_id"], xss, "{found}");
    let (_, body) = get(&format!(
        "{}/api/v1/traces?evaluator=json_parse&verdict=fail&limit=5",
        plumb.http
    ));
    let failed: Value = serde_json::from_str(&body).unwrap();
    assert!(!failed["traces"].as_array().unwrap().is_empty(), "{failed}");

    // A rule saved from the page's form lands in the catalog; a bad one is explained.
    let r = client()
        .post(format!("{}/alerts", plumb.http))
        .form(&[(
            "spec",
            r#"{"name":"from-form","kind":"threshold","signal":"ttft_p95","op":">","value":2}"#,
        )])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200, "followed the redirect to /alerts");
    assert!(r.text().unwrap().contains("from-form"));
    let r = client()
        .post(format!("{}/alerts", plumb.http))
        .form(&[(
            "spec",
            r#"{"name":"bad","kind":"threshold","signal":"nope"}"#,
        )])
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body = r.text().unwrap();
    assert!(
        body.contains("unknown variant") && body.contains(r#""signal":"nope""#),
        "{body}"
    );

    // The same pages in a real browser.
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("tests/python/browser_check.py"))
        .args(["--url", &plumb.http, "--seed", &seed.to_string()]);
    if let Ok(dir) = std::env::var("PLUMB_SCREENSHOTS") {
        cmd.args(["--screenshots", &dir]);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "browser checks failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
