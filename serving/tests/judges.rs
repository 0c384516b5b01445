//! The judges with the real ONNX Runtime and the models `scripts/setup.sh` installs
//! (`.tools/onnxruntime/`, `judges/models/`).

use std::path::PathBuf;

use plumb_serving::batcher::BatcherConfig;
use plumb_serving::{JudgeConfig, Judges, ServingError};

/// The checkout the tests run in. Read when the test runs (cargo sets it), not when it was
/// compiled: a shared target directory keeps test binaries built in another checkout.
fn repo() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .join("..")
}

fn judges(max_batch: usize) -> Judges {
    Judges::load(JudgeConfig {
        models_dir: repo().join("judges/models"),
        onnxruntime: Some(repo().join(".tools/onnxruntime/libonnxruntime.so")),
        threads: 2,
        batching: BatcherConfig {
            max_batch,
            ..Default::default()
        },
        ..Default::default()
    })
    .expect("judges load (run ./scripts/setup.sh first)")
}

const QUERY: &str = "When was the Eiffel Tower built?";
const DOCUMENTS: &[&str] = &[
    "The Eiffel Tower was constructed from 1887 to 1889 as the entrance arch to the 1889 World's Fair in Paris.",
    "Bananas are rich in potassium and grow in tropical climates.",
    "Gustave Eiffel's company designed and built the wrought-iron lattice tower on the Champ de Mars.",
    "The stock market closed higher on Tuesday as technology shares rallied.",
    "Construction of the tower started in January 1887 and finished in March 1889.",
    "A good sourdough needs a mature starter, flour, water and salt.",
];

#[test]
fn a_model_run_one_input_at_a_time_gets_a_lane_per_thread() {
    let j = judges(32);
    // The groundedness manifest caps batches at one input (int8), the relevance one does not.
    let grounded = &j.judge(plumb_serving::Task::Groundedness).unwrap().model;
    assert_eq!(grounded.manifest.max_batch, Some(1));
    assert_eq!(grounded.lanes(), 2);
    let relevance = &j
        .judge(plumb_serving::Task::ContextRelevance)
        .unwrap()
        .model;
    assert_eq!(relevance.manifest.max_batch, None);
    assert_eq!(relevance.lanes(), 1);
}

#[tokio::test]
async fn relevance_ranks_documents_about_the_query_first() {
    let j = judges(32);
    let mut scores = Vec::new();
    for d in DOCUMENTS {
        scores.push(j.context_relevance(QUERY, d).await.unwrap());
    }
    for (i, on_topic) in [0, 2, 4].iter().enumerate() {
        for off_topic in [1, 3, 5] {
            assert!(
                scores[*on_topic].score > scores[off_topic].score + 0.2,
                "#{i}: {scores:?}"
            );
        }
    }
    assert_eq!(scores[0].label, "relevant");
    assert_eq!(scores[1].label, "irrelevant");
}

#[tokio::test]
async fn scores_do_not_depend_on_how_requests_were_batched() {
    let one_by_one = judges(1);
    let together = judges(32);
    let mut alone = Vec::new();
    for d in DOCUMENTS {
        alone.push(one_by_one.context_relevance(QUERY, d).await.unwrap().score);
    }
    // All at once, so the batcher pads them into shared batches of mixed lengths.
    let batched = futures::future::join_all(
        DOCUMENTS
            .iter()
            .map(|d| together.context_relevance(QUERY, d)),
    )
    .await;
    for (a, b) in alone.iter().zip(batched) {
        let b = b.unwrap().score;
        assert!((a - b).abs() < 1e-4, "{a} alone vs {b} batched");
    }
}

#[tokio::test]
async fn long_documents_are_windowed_not_truncated() {
    let j = judges(32);
    // The answer sits at the end of ~600 words of filler: a 256-token model would never see it
    // if the document were truncated.
    let filler = "The committee discussed budgets, parking, and the schedule of the spring fair. "
        .repeat(50);
    let doc = format!("{filler}{}", DOCUMENTS[0]);
    let windowed = j.context_relevance(QUERY, &doc).await.unwrap();
    let filler_only = j.context_relevance(QUERY, &filler).await.unwrap();
    assert!(
        windowed.score > filler_only.score + 0.2,
        "{windowed:?} vs {filler_only:?}"
    );
}

#[tokio::test]
async fn a_full_queue_refuses_instead_of_waiting() {
    let j = Judges::load(JudgeConfig {
        models_dir: repo().join("judges/models"),
        onnxruntime: Some(repo().join(".tools/onnxruntime/libonnxruntime.so")),
        batching: BatcherConfig {
            queue_capacity: 4,
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    // One document of ~12 windows needs 12 inputs at once: more than the queue holds.
    let doc = "word ".repeat(1500);
    match j.context_relevance(QUERY, &doc).await {
        Err(ServingError::Overloaded { retry_after_ms, .. }) => assert!(retry_after_ms > 0),
        other => panic!("expected Overloaded, got {other:?}"),
    }
}

/// The fixture `judges/train/parity.py` wrote with the Python `tokenizers` library and ONNX
/// Runtime's Python API, for the model directory `name`.
fn parity_fixture(name: &str) -> serde_json::Value {
    let path = repo().join("judges/models").join(name).join("parity.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// How far a score may be from the fixture's: written by judges/train/parity.py, which says why
/// int8 models get more room than float ones.
fn tolerance(fixture: &serde_json::Value) -> f32 {
    fixture["tolerance"]
        .as_f64()
        .expect("parity.json has a tolerance") as f32
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[tokio::test]
async fn relevance_tokens_and_scores_match_python() {
    let j = judges(32);
    let model = &j
        .judge(plumb_serving::Task::ContextRelevance)
        .unwrap()
        .model;
    let fixture = parity_fixture("context-relevance");
    for c in fixture["cases"].as_array().unwrap() {
        let (query, document) = (
            c["query"].as_str().unwrap(),
            c["document"].as_str().unwrap(),
        );
        // The manifest's pair order: the query first, as in training.
        let enc = model.encode_pair(query, document).unwrap();
        assert_eq!(enc.get_ids(), ids(&c["input_ids"]), "{query} / {document}");
        assert_eq!(
            enc.get_type_ids(),
            ids(&c["token_type_ids"]),
            "{query} / {document}"
        );
        assert_eq!(
            enc.get_attention_mask(),
            ids(&c["attention_mask"]),
            "{query} / {document}"
        );
        let got = model.infer(&[&enc]).unwrap()[0][0];
        let want = c["score"].as_f64().unwrap() as f32;
        assert!(
            (got - want).abs() < tolerance(&fixture),
            "{query} / {document}: {got} vs {want}"
        );
    }
}

#[tokio::test]
async fn groundedness_tokens_and_scores_match_python() {
    let j = judges(32);
    let model = &j.judge(plumb_serving::Task::Groundedness).unwrap().model;
    let fixture = parity_fixture("groundedness");
    let cases = fixture["cases"].as_array().unwrap();
    let mut encodings = Vec::new();
    for c in cases {
        let (context, claim) = (c["context"].as_str().unwrap(), c["claim"].as_str().unwrap());
        let enc = model.encode_pair(context, claim).unwrap();
        assert_eq!(enc.get_ids(), ids(&c["input_ids"]), "{claim}");
        assert_eq!(enc.get_type_ids(), ids(&c["token_type_ids"]), "{claim}");
        assert_eq!(
            enc.get_attention_mask(),
            ids(&c["attention_mask"]),
            "{claim}"
        );
        encodings.push(enc);
    }
    // Python scored each case alone, and so does this: the same input gives the same score.
    for (c, enc) in cases.iter().zip(&encodings) {
        let got = model.infer(&[enc]).unwrap()[0][0];
        let want = c["score"].as_f64().unwrap() as f32;
        assert!(
            (got - want).abs() < tolerance(&fixture),
            "{}: {got} vs {want}",
            c["claim"]
        );
    }
    // Through the batcher, concurrently: the manifest caps this model's batches at one input
    // (int8 dynamic quantization scales activations over the whole batch), so scores stay
    // exactly those of inputs run alone.
    let items: Vec<_> = cases
        .iter()
        .map(|c| (c["context"].as_str().unwrap(), c["claim"].as_str().unwrap()))
        .filter(|(context, _)| !context.trim().is_empty())
        .collect();
    let verdicts =
        futures::future::join_all(items.iter().map(|(ctx, claim)| j.groundedness(ctx, claim)))
            .await;
    let alone = judges(1);
    for ((ctx, claim), v) in items.iter().zip(verdicts) {
        let want = alone.groundedness(ctx, claim).await.unwrap().score;
        let got = v.unwrap().score;
        assert!(
            (got - want).abs() < 1e-4,
            "{claim}: {got} concurrent vs {want} alone"
        );
    }
}
