//! The judge API of the real binary, in process (`plumb serve`) and as its own role
//! (`plumb judge serve`), and one-off scoring with `plumb judge score`.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::{Plumb, PLUMB};
use serde_json::{json, Value};

const QUERY: &str = "When was the Eiffel Tower built?";
const ON_TOPIC: &str = "The Eiffel Tower was constructed from 1887 to 1889 as the entrance arch to the 1889 World's Fair.";
const CONTEXT: &str = "The Eiffel Tower was finished in 1889 for the World's Fair in Paris. It is made of wrought iron and was designed by the company of Gustave Eiffel.";
/// Two sentences the context supports and two it does not. The supported ones score well clear of
/// the threshold: "Gustave Eiffel's company designed it." scored 0.7034 against the shipped model's
/// 0.703, closer than int8 scores of one file differ between CPUs (up to 7e-4), so it could flip.
const RESPONSE: &str = "The tower was completed in 1889. It is made of bronze. It was designed by Gustave Eiffel's company. The tower is in Berlin.";
const OFF_TOPIC: &str = "Bananas are rich in potassium and grow in tropical climates.";

fn post(url: &str, body: &str) -> (u16, Value) {
    let resp = reqwest::blocking::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
    )
}

#[test]
fn judge_api_in_process_scores_and_refuses_bad_input_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("plumb.toml");
    std::fs::write(&config, "[judge]\ntelemetry_interval_secs = 1\n").unwrap();
    let plumb = Plumb::start_with_judges(
        &dir.path().join("data"),
        &["--config", config.to_str().unwrap()],
    );
    let judge = plumb.judge.clone().expect("the judge role is listening");

    let models: Value = reqwest::blocking::get(format!("{judge}/v1/models"))
        .unwrap()
        .json()
        .unwrap();
    let tasks: Vec<&str> = models["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["task"].as_str().unwrap())
        .collect();
    assert!(tasks.contains(&"context_relevance"), "{models}");
    assert!(tasks.contains(&"groundedness"), "{models}");
    assert_eq!(models["models"][0]["device"], "cpu");

    let url = format!("{judge}/v1/judge/context_relevance");
    let body = json!({"items": [
        {"query": QUERY, "document": ON_TOPIC},
        {"query": QUERY, "document": OFF_TOPIC},
    ]});
    let (status, v) = post(&url, &body.to_string());
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["items"][0]["label"], "relevant", "{v}");
    assert_eq!(v["items"][1]["label"], "irrelevant", "{v}");
    assert!(v["items"][0]["score"].as_f64().unwrap() > v["items"][1]["score"].as_f64().unwrap());

    let (status, v) = post(
        &format!("{judge}/v1/judge/groundedness"),
        &json!({"items": [{"context": CONTEXT, "response": RESPONSE}]}).to_string(),
    );
    assert_eq!(status, 200, "{v}");
    let labels: Vec<&str> = v["items"][0]["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["label"].as_str().unwrap())
        .collect();
    assert_eq!(
        labels,
        ["supported", "unsupported", "supported", "unsupported"],
        "{v}"
    );
    assert_eq!(v["items"][0]["label"], "unsupported", "{v}");

    let huge = "a ".repeat(512 << 10);
    for (body, says) in [
        ("{\"items\": [", "invalid request body"),
        ("{\"items\": []}", "items is empty"),
        (
            &json!({"items": [{"query": " ", "document": ON_TOPIC}]}).to_string(),
            "items[0].query is empty",
        ),
        (
            &json!({"items": [{"query": QUERY, "document": ON_TOPIC}, {"query": QUERY, "document": huge}]})
                .to_string(),
            "items[1].document is 1048576 bytes; the limit is 262144",
        ),
        (
            &json!({"items": [{"query": QUERY, "doc": ON_TOPIC}]}).to_string(),
            "unknown field `doc`",
        ),
    ] {
        let (status, v) = post(&url, body);
        assert_eq!(status, 400, "{v}");
        let error = v["error"].as_str().unwrap();
        assert!(error.contains(says), "{error:?} should say {says:?}");
    }

    // The judge reports its own metrics into this Plumb, like any service: requests (the one
    // good and five refused above), batches and the queue.
    let query = "SELECT histogram_count FROM metrics WHERE service_name = 'plumb-judge' \
                 AND metric_name = 'plumb.judge.request.duration' \
                 AND attributes['plumb.judge.task'] = 'context_relevance' \
                 ORDER BY time DESC LIMIT 1";
    let mut requests = None;
    for _ in 0..300 {
        let rows = plumb.sql(query);
        if let Some(r) = rows.rows.first() {
            if r[0].as_i64() == Some(6) {
                requests = Some(6);
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(requests, Some(6), "judge request metrics never arrived");
    let batches = plumb.sql(
        "SELECT max(value) FROM metrics WHERE service_name = 'plumb-judge' \
         AND metric_name = 'plumb.judge.inputs'",
    );
    assert_eq!(
        batches.scalar().as_f64(),
        Some(2.0 * 2.0),
        "query and document of two items"
    );
    plumb.stop();
}

#[test]
fn judge_serve_runs_alone_and_judge_score_prints_a_verdict() {
    let mut child = Command::new(PLUMB)
        .args(["judge", "serve", "--judge-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .strip_prefix("listening judge ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim()
        .to_string();
    let health: Value = reqwest::blocking::get(format!("http://{addr}/health"))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(health["status"], "ok");
    child.kill().unwrap();
    child.wait().unwrap();

    let out = Command::new(PLUMB)
        .args(["judge", "score", "--format", "json", "context-relevance"])
        .args(["--query", QUERY, "--document", OFF_TOPIC])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["label"], "irrelevant", "{v}");
}
