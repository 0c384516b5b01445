//! Deterministic evaluators' throughput on one core: `json_parse` (with a JSON Schema),
//! `truncated`, `empty_output` and `refusal` over synthetic structured outputs (some invalid),
//! next to Python's `json.loads` + `jsonschema` (the usual way to write such a check) on the
//! very same outputs, in the same run.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use clap::Parser;
use plumb_bench::gen::{Rng, WORDS};
use plumb_evaluators::checks::{EmptyOutput, JsonParse, Refusal, Truncated};
use plumb_evaluators::{Evaluator, SpanView};

#[derive(Parser)]
struct Args {
    /// Python with the `jsonschema` package (e.g. .venv-bench/bin/python).
    #[arg(long)]
    python: PathBuf,
    #[arg(long, default_value_t = 200_000)]
    spans: usize,
}

const SCHEMA: &str = r#"{"type": "object", "required": ["name", "score", "tags"],
  "properties": {"name": {"type": "string"}, "score": {"type": "number"},
                 "tags": {"type": "array", "items": {"type": "string"}}}}"#;

fn outputs(n: usize) -> Vec<String> {
    let mut rng = Rng::new(7);
    (0..n)
        .map(|i| {
            let word = |rng: &mut Rng| WORDS[rng.below(WORDS.len() as u64) as usize];
            let tags: Vec<String> = (0..5).map(|_| format!("\"{}\"", word(&mut rng))).collect();
            let text = format!(
                r#"{{"name": "{} {}", "score": {}, "tags": [{}], "summary": "{}"}}"#,
                word(&mut rng),
                word(&mut rng),
                rng.below(1000),
                tags.join(", "),
                (0..40)
                    .map(|_| word(&mut rng))
                    .collect::<Vec<_>>()
                    .join(" ")
            );
            match i % 10 {
                // One in ten cut off mid-output, one in ten with a wrongly typed field.
                0 => text[..text.len() / 2].to_string(),
                1 => text.replace(r#""score": "#, r#""score": "x"#),
                _ => text,
            }
        })
        .collect()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let outputs = outputs(args.spans);
    let evaluators: Vec<Box<dyn Evaluator>> = vec![
        Box::new(JsonParse::default()),
        Box::new(Truncated),
        Box::new(EmptyOutput),
        Box::new(Refusal),
    ];
    let started = Instant::now();
    let mut failed = 0usize;
    for out in &outputs {
        let mut span = SpanView {
            gen_ai_operation_name: Some("chat"),
            gen_ai_output_type: Some("json"),
            gen_ai_response_finish_reasons: vec!["stop"],
            status_code: "OK",
            output_text: Some(out),
            ..Default::default()
        };
        span.attributes.insert("plumb.output.schema", SCHEMA);
        for e in &evaluators {
            if e.applies_to(&span) && !e.evaluate(&span).passed {
                failed += 1;
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = outputs.len() as f64 / secs;

    let file = std::env::temp_dir().join(format!("plumb-eval-bench-{}.json", std::process::id()));
    std::fs::write(&file, serde_json::to_string(&outputs)?)?;
    let py = Command::new(&args.python)
        .arg("-c")
        .arg(PYTHON)
        .arg(&file)
        .arg(SCHEMA)
        .output()?;
    std::fs::remove_file(&file)?;
    anyhow::ensure!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&py.stdout)?;
    let py_rate = v["spans_per_sec"].as_f64().unwrap_or(f64::NAN);
    println!(
        "{} spans, one thread; failures found: Plumb {failed}, Python {}",
        outputs.len(),
        v["failed"]
    );
    println!("| evaluator set | spans/s | ratio |");
    println!("| --- | --- | --- |");
    println!(
        "| Plumb: json_parse (+schema), truncated, empty_output, refusal | {rate:.0} | {:.1} |",
        rate / py_rate
    );
    println!("| Python: json.loads + jsonschema validate | {py_rate:.0} | 1.0 |");
    Ok(())
}

const PYTHON: &str = r#"
import json, sys, time
import jsonschema
outputs = json.load(open(sys.argv[1]))
validator = jsonschema.Draft202012Validator(json.loads(sys.argv[2]))
failed = 0
start = time.perf_counter()
for out in outputs:
    try:
        value = json.loads(out)
    except ValueError:
        failed += 1
        continue
    if not validator.is_valid(value):
        failed += 1
print(json.dumps({"spans_per_sec": len(outputs) / (time.perf_counter() - start), "failed": failed}))
"#;
