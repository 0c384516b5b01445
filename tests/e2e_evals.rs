//! Evaluation and alerting through the real binary: spans exported with the Python SDK get
//! verdicts from the online runner (once each, across a restart); a regression rule fires when
//! parse failures rise from 1% to 10% and its webhook reaches a test server once, signed, while
//! a rule watching noise stays quiet; an offline run killed half-way and started again leaves
//! exactly one verdict per span.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{
    python, repo_root, run_exporter, temp_dir, wait_for, write_config, Plumb, Rows, PLUMB,
};
use serde_json::Value;

const NS_PER_MIN: i64 = 60_000_000_000;

fn export(
    endpoint: &str,
    run: &str,
    count: usize,
    bad_every: usize,
    route: &str,
    start_ns: i64,
    extras: bool,
) -> Value {
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("tests/python/export_eval_traffic.py"))
        .args([
            "--endpoint",
            endpoint,
            "--run",
            run,
            "--count",
            &count.to_string(),
            "--bad-every",
            &bad_every.to_string(),
            "--route",
            route,
            "--start-ns",
            &start_ns.to_string(),
            "--step-ns",
            "1000000",
        ]);
    if extras {
        cmd.arg("--extras");
    }
    run_exporter(cmd)
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

const VERDICTS: &str = "SELECT evaluator, count(*) AS n, count(*) FILTER (WHERE NOT passed) AS failed, \
    count(DISTINCT span_id) AS spans FROM evals WHERE source = 'online' GROUP BY evaluator ORDER BY evaluator";

fn verdicts(rows: &Rows, evaluator: &str) -> Option<(i64, i64, i64)> {
    (0..rows.rows.len())
        .find(|&i| rows.get(i, "evaluator") == evaluator)
        .map(|i| {
            (
                rows.get(i, "n").as_i64().unwrap(),
                rows.get(i, "failed").as_i64().unwrap(),
                rows.get(i, "spans").as_i64().unwrap(),
            )
        })
}

#[test]
fn online_runner_judges_new_spans_once_across_a_restart() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let config = write_config(dir.path(), "[evals]\ninterval_ms = 200\n");
    let plumb = Plumb::start(&data, &["--config", &config]);
    let summary = export(
        &plumb.otlp_http,
        "online",
        40,
        8,
        "shop/extract",
        now_ns(),
        true,
    );
    let agent_trace = summary["agent_trace"].as_str().unwrap().to_string();

    let complete = |r: &Rows| {
        verdicts(r, "json_parse").is_some_and(|v| v.0 == 40)
            && verdicts(r, "tool_call_args").is_some()
            && verdicts(r, "task_completion").is_some()
    };
    let rows = wait_for(&plumb, VERDICTS, complete);
    assert!(
        complete(&rows),
        "{:?}\nlog:\n{}",
        rows.rows,
        plumb.log_text()
    );
    assert_eq!(
        verdicts(&rows, "json_parse"),
        Some((40, 5, 40)),
        "every 8th of 40 outputs is broken JSON"
    );
    assert_eq!(verdicts(&rows, "tool_call_args"), Some((1, 1, 1)));
    assert_eq!(verdicts(&rows, "task_completion"), Some((1, 1, 1)));
    assert_eq!(
        verdicts(&rows, "truncated"),
        Some((41, 0, 41)),
        "chat spans with a finish reason"
    );

    let why = plumb.sql(&format!(
        "SELECT label, explanation, route, span_start_time IS NOT NULL AS timed FROM evals \
         WHERE evaluator = 'task_completion' AND trace_id = '{agent_trace}'"
    ));
    assert_eq!(why.get(0, "label"), "failed");
    assert!(
        why.get(0, "explanation")
            .as_str()
            .unwrap()
            .contains("tool `get_order` failed"),
        "{:?}",
        why.row(0)
    );
    assert_eq!(why.get(0, "route"), "agent/support");
    let tool = plumb.sql("SELECT label, explanation FROM evals WHERE evaluator = 'tool_call_args'");
    assert_eq!(tool.get(0, "label"), "schema_mismatch");
    assert!(
        tool.get(0, "explanation")
            .as_str()
            .unwrap()
            .contains("order_id"),
        "{:?}",
        tool.row(0)
    );

    // The runner says where it is.
    let lanes: Value = reqwest::blocking::get(format!("{}/api/v1/evals/runner", plumb.http))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(lanes["lanes"][0]["lane"], "checks", "{lanes}");
    assert!(
        lanes["lanes"][0]["evaluated"].as_u64().unwrap() >= 40,
        "{lanes}"
    );

    // A crash and a restart: nothing is evaluated twice, and new spans are still evaluated.
    plumb.kill9();
    let plumb = Plumb::start(&data, &["--config", &config]);
    export(
        &plumb.otlp_http,
        "online-2",
        10,
        0,
        "shop/extract",
        now_ns(),
        false,
    );
    let rows = wait_for(&plumb, VERDICTS, |r| {
        verdicts(r, "json_parse").is_some_and(|v| v.0 >= 50)
    });
    assert_eq!(
        verdicts(&rows, "json_parse"),
        Some((50, 5, 50)),
        "{:?}",
        rows.rows
    );
    assert_eq!(verdicts(&rows, "task_completion"), Some((1, 1, 1)));
}

/// A webhook receiver on a free port: every request's headers and body go to the channel.
fn webhook_server() -> (String, mpsc::Receiver<(String, String)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let _ = stream.write_all(
                b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            let _ = tx.send((head, String::from_utf8_lossy(&body).into_owned()));
        }
    });
    (url, rx)
}

#[test]
fn a_regression_alert_fires_on_a_tenfold_parse_failure_rate_and_not_on_noise() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        "[evals]\ninterval_ms = 200\n[alerts]\ninterval_secs = 1\nwebhook_secret = \"s3cret\"\n",
    );
    let plumb = Plumb::start(&data, &["--config", &config]);
    let (hook, received) = webhook_server();
    let rule = |name: &str, route: &str| {
        format!(
            r#"{{"name":"{name}","kind":"regression","signal":"parse_failure_rate","route":"{route}","window":"10m","min_samples":200,"alpha":0.001,"webhook":"{hook}"}}"#
        )
    };
    for (name, route) in [
        ("checkout-json", "shop/checkout"),
        ("search-json", "shop/search"),
    ] {
        let out = Command::new(PLUMB)
            .args(["alerts", "--url", &plumb.http, "add", &rule(name, route)])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Baseline: the previous ten minutes, 1% broken on both routes. Now: 10% on checkout,
    // 1.25% (noise) on search.
    let now = now_ns();
    let base = now - 15 * NS_PER_MIN;
    let current = now - 5 * NS_PER_MIN;
    export(
        &plumb.otlp_http,
        "b1",
        800,
        100,
        "shop/checkout",
        base,
        false,
    );
    export(&plumb.otlp_http, "b2", 800, 100, "shop/search", base, false);
    export(
        &plumb.otlp_http,
        "c1",
        800,
        10,
        "shop/checkout",
        current,
        false,
    );
    export(
        &plumb.otlp_http,
        "c2",
        800,
        80,
        "shop/search",
        current,
        false,
    );
    let rows = wait_for(&plumb, VERDICTS, |r| {
        verdicts(r, "json_parse").is_some_and(|v| v.0 == 3200)
    });
    assert_eq!(
        verdicts(&rows, "json_parse"),
        Some((3200, 8 + 8 + 80 + 10, 3200)),
        "{:?}",
        rows.rows
    );

    let (head, body) = received
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no webhook; log:\n{}", plumb.log_text()));
    let body_json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body_json["rule"], "checkout-json", "{body}");
    assert_eq!(body_json["state"], "firing");
    assert!(body_json["value"].as_f64().unwrap() > 0.09, "{body}");
    let expected = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(body.as_bytes());
        format!(
            "x-plumb-signature: sha256={}",
            hex::encode(mac.finalize().into_bytes())
        )
    };
    assert!(head.to_ascii_lowercase().contains(&expected), "{head}");

    // Several more evaluations: the noisy route stays quiet and the firing is not sent again.
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        received.try_recv().is_err(),
        "a second notification was sent"
    );
    let events = plumb.sql("SELECT rule_name, state FROM alert_events ORDER BY time");
    let names: Vec<(String, String)> = events
        .rows
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                r[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        vec![("checkout-json".to_string(), "firing".to_string())]
    );
    let rules: Value = reqwest::blocking::get(format!("{}/api/v1/alerts/rules", plumb.http))
        .unwrap()
        .json()
        .unwrap();
    let states: Vec<&str> = rules["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"]["state"].as_str().unwrap_or("ok"))
        .collect();
    assert_eq!(states, vec!["firing", "ok"], "{rules}");
}

#[test]
fn an_offline_run_interrupted_and_started_again_writes_each_verdict_once() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    // No online evaluation: the offline run is the only writer of verdicts.
    let config = write_config(dir.path(), "[evals]\nenabled = []\n");
    let plumb = Plumb::start(&data, &["--config", &config]);
    export(
        &plumb.otlp_http,
        "offline",
        3000,
        20,
        "shop/extract",
        now_ns() - 30 * NS_PER_MIN,
        false,
    );
    plumb.stop();

    let run = || {
        let mut cmd = Command::new(PLUMB);
        cmd.args(["--data-dir", data.to_str().unwrap(), "--config", &config])
            .args([
                "eval",
                "run",
                "--evaluator",
                "json_parse",
                "--from",
                "2h",
                "--batch-size",
                "100",
                "--rate",
                "600",
                "--format",
                "json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    };
    // Interrupt it (SIGKILL) after its second batch is durable.
    let mut child = run().spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    for line in stderr.lines() {
        if line.unwrap().starts_with("progress json_parse 200/") {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let out = run().output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["scanned"], 3000, "{summary}");
    let now = summary["evaluated_now"].as_u64().unwrap();
    assert!(
        now > 0 && now < 3000,
        "the second run only did what the first had not: {summary}"
    );
    assert_eq!(summary["verdicts"], 3000, "{summary}");
    assert_eq!(summary["passed"], 3000 - 150, "{summary}");

    let plumb = Plumb::start(&data, &["--config", &config]);
    let rows = plumb
        .sql("SELECT count(*) AS n, count(DISTINCT span_id) AS d, min(source) AS s FROM evals");
    assert_eq!(
        (rows.get(0, "n"), rows.get(0, "d"), rows.get(0, "s")),
        (
            &Value::from(3000),
            &Value::from(3000),
            &Value::from("offline")
        )
    );
}

#[test]
fn judges_score_groundedness_and_retrieval_relevance_online_beside_client_results() {
    let dir = temp_dir();
    let data = dir.path().join("data");
    let config = write_config(
        dir.path(),
        "[evals]\ninterval_ms = 200\n[evals.select.groundedness]\nsample_rate = 1.0\n[evals.select.context_relevance]\nsample_rate = 1.0\n",
    );
    let plumb = Plumb::start_with_judges(&data, &["--config", &config]);
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("tests/python/export_eval_traffic.py"))
        .args([
            "--endpoint",
            &plumb.otlp_http,
            "--run",
            "rag",
            "--count",
            "0",
            "--rag",
        ]);
    let summary = run_exporter(cmd);
    let query = "SELECT evaluator, span_id, label, passed, score, judge_model, explanation, source FROM evals ORDER BY evaluator, span_id";
    let rows = wait_for(&plumb, query, |r| {
        let n = |e: &str| r.rows.iter().filter(|row| row[0] == e).count();
        n("groundedness") == 2 && n("context_relevance") == 2
    });
    let find = |evaluator: &str, span: &Value| {
        (0..rows.rows.len())
            .find(|&i| {
                rows.get(i, "evaluator") == evaluator
                    && (span.is_null() || rows.get(i, "span_id") == span)
            })
            .map(|i| rows.row(i))
            .unwrap_or_else(|| {
                panic!(
                    "no {evaluator} verdict on {span} in {:?}\nlog:\n{}",
                    rows.rows,
                    plumb.log_text()
                )
            })
    };
    let grounded = find("groundedness", &summary["rag"]["grounded"]);
    assert_eq!(grounded["label"], "grounded", "{grounded:?}");
    assert!(
        grounded["judge_model"]
            .as_str()
            .unwrap()
            .contains("groundedness"),
        "{grounded:?}"
    );
    let ungrounded = find("groundedness", &summary["rag"]["ungrounded"]);
    assert_eq!(ungrounded["label"], "ungrounded", "{ungrounded:?}");
    assert!(
        ungrounded["explanation"]
            .as_str()
            .unwrap()
            .contains("not supported"),
        "{ungrounded:?}"
    );
    let relevance = find("context_relevance", &Value::Null);
    assert_eq!(relevance["passed"], true, "{relevance:?}");
    let client = find("user_feedback", &summary["rag"]["grounded"]);
    assert_eq!(
        (client["source"].as_str(), client["passed"].as_bool()),
        (Some("client"), Some(true)),
        "{client:?}"
    );
}
