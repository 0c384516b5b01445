//! The model directory's manifest, `plumb-judge.json`: everything the runtime must know to use an
//! ONNX export without code changes (architecture, input and output names, which label means
//! "supported", pooling, lengths, the calibrated threshold). Plumb's own judges use it too, so
//! a user's HHEM, MiniCheck, NLI or MS MARCO export is a drop-in.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Result, ServingError};

/// The manifest's file name inside a model directory.
pub const MANIFEST_FILE: &str = "plumb-judge.json";

/// What a judge decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Is a claim supported by a context?
    Groundedness,
    /// Is a document relevant to a query?
    ContextRelevance,
}

impl Task {
    pub fn name(self) -> &'static str {
        match self {
            Task::Groundedness => "groundedness",
            Task::ContextRelevance => "context_relevance",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Architecture {
    /// Both texts in one input; the model outputs a score for the pair.
    CrossEncoder,
    /// Each text embedded alone; the score is the cosine of the two embeddings.
    BiEncoder,
}

/// How to read the model's output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputKind {
    /// `[batch, classes]`: softmax over classes, then the `positive_index` class.
    Logits,
    /// `[batch]` or `[batch, 1]`: one logit, through a sigmoid.
    Logit,
    /// `[batch]`, `[batch, 1]` or `[batch, classes]` (with `positive_index`): already 0..1.
    Probability,
    /// Bi-encoders: `[batch, seq, dim]` token embeddings (pooled here) or `[batch, dim]`.
    Embedding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pooling {
    /// Mean of the token embeddings, weighted by the attention mask.
    Mean,
    /// The first token's embedding.
    Cls,
}

/// ONNX input names. A graph without token type ids says `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputNames {
    pub input_ids: String,
    pub attention_mask: String,
    #[serde(default)]
    pub token_type_ids: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputSpec {
    pub name: String,
    pub kind: OutputKind,
    #[serde(default)]
    pub positive_index: Option<usize>,
}

/// One text of a pair, as named in `pair_order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    Context,
    Claim,
    Query,
    Document,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub task: Task,
    pub architecture: Architecture,
    /// ONNX file, relative to the model directory.
    pub model: PathBuf,
    /// `tokenizer.json` (Hugging Face tokenizers format), relative to the model directory.
    pub tokenizer: PathBuf,
    /// Tokens per input (both texts of a pair together for cross-encoders).
    pub max_length: usize,
    pub inputs: InputNames,
    pub output: OutputSpec,
    #[serde(default)]
    pub pooling: Option<Pooling>,
    #[serde(default)]
    pub normalize: bool,
    /// Which text is the first segment and which the second.
    pub pair_order: [Segment; 2],
    /// Scores at or above it mean supported / relevant (calibrated on a dev split).
    pub threshold: f32,
    /// Bi-encoders: maps cosine `[lo, hi]` linearly onto 0..1, clamped.
    #[serde(default)]
    pub score_scale: Option<[f32; 2]>,
    /// Words of context per window when a context is longer than one input holds. Defaults to
    /// what fits in `max_length` next to a sentence.
    #[serde(default)]
    pub window_words: Option<usize>,
    /// Most inputs per run for this model, below the server's `max_batch`. 1 for models whose
    /// output depends on the rest of the batch (int8 with dynamic quantization scales
    /// activations over the whole batch), so that a score never depends on its neighbours.
    #[serde(default)]
    pub max_batch: Option<usize>,
}

impl Manifest {
    /// Reads and checks `dir/plumb-judge.json`; model and tokenizer paths come back absolute.
    pub fn load(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| ServingError::Model {
            dir: dir.to_path_buf(),
            reason: format!("cannot read {}: {e}", path.display()),
        })?;
        let mut m: Manifest = serde_json::from_str(&text).map_err(|e| ServingError::Model {
            dir: dir.to_path_buf(),
            reason: format!("{MANIFEST_FILE} is invalid: {e}"),
        })?;
        m.model = dir.join(&m.model);
        m.tokenizer = dir.join(&m.tokenizer);
        m.check().map_err(|reason| ServingError::Model {
            dir: dir.to_path_buf(),
            reason,
        })?;
        Ok(m)
    }

    fn check(&self) -> std::result::Result<(), String> {
        let expected = match self.task {
            Task::Groundedness => [Segment::Context, Segment::Claim],
            Task::ContextRelevance => [Segment::Query, Segment::Document],
        };
        let mut order = self.pair_order;
        order.sort_by_key(|s| *s as u8);
        if order != expected {
            return Err(format!(
                "pair_order must name {:?} and {:?} for task {}",
                expected[0],
                expected[1],
                self.task.name()
            ));
        }
        match (self.architecture, self.output.kind) {
            (Architecture::BiEncoder, OutputKind::Embedding) => {}
            (Architecture::BiEncoder, k) => {
                return Err(format!(
                    "a bi-encoder's output kind must be embedding, not {k:?}"
                ))
            }
            (Architecture::CrossEncoder, OutputKind::Embedding) => {
                return Err("a cross-encoder cannot output embeddings".into())
            }
            (Architecture::CrossEncoder, OutputKind::Logits)
                if self.output.positive_index.is_none() =>
            {
                return Err("output.positive_index is required for logits".into())
            }
            _ => {}
        }
        if self.max_length < 8 {
            return Err(format!("max_length {} is too small", self.max_length));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(format!("threshold {} is not within 0..1", self.threshold));
        }
        for p in [&self.model, &self.tokenizer] {
            if !p.is_file() {
                return Err(format!("{} does not exist", p.display()));
            }
        }
        Ok(())
    }

    /// Words of context per window.
    pub fn window_words(&self) -> usize {
        // ~1.3 tokens per English word, and room for a sentence of ~30 tokens plus specials.
        self.window_words
            .unwrap_or_else(|| (self.max_length.saturating_sub(40) * 3 / 4).max(16))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, manifest: &str) {
        std::fs::write(dir.join("model.onnx"), b"x").unwrap();
        std::fs::write(dir.join("tokenizer.json"), b"{}").unwrap();
        std::fs::write(dir.join(MANIFEST_FILE), manifest).unwrap();
    }

    const GOOD: &str = r#"{
        "name": "g", "version": "1", "task": "groundedness", "architecture": "cross-encoder",
        "model": "model.onnx", "tokenizer": "tokenizer.json", "max_length": 128,
        "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask", "token_type_ids": null},
        "output": {"name": "logits", "kind": "logits", "positive_index": 1},
        "pooling": null, "normalize": false, "pair_order": ["context", "claim"],
        "threshold": 0.5, "score_scale": null
    }"#;

    #[test]
    fn reads_a_manifest_with_absolute_paths() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), GOOD);
        let m = Manifest::load(dir.path()).unwrap();
        assert_eq!(m.task, Task::Groundedness);
        assert_eq!(m.inputs.token_type_ids, None);
        assert_eq!(m.model, dir.path().join("model.onnx"));
        assert_eq!(m.window_words(), 66);
    }

    #[test]
    fn refuses_manifests_that_cannot_work() {
        for (from, to, says) in [
            (
                r#""kind": "logits", "positive_index": 1"#,
                r#""kind": "logits""#,
                "positive_index",
            ),
            (
                r#"["context", "claim"]"#,
                r#"["query", "claim"]"#,
                "pair_order",
            ),
            (r#""threshold": 0.5"#, r#""threshold": 2.0"#, "threshold"),
            (r#""model.onnx""#, r#""missing.onnx""#, "does not exist"),
            (r#""cross-encoder""#, r#""bi-encoder""#, "embedding"),
            (r#""max_length": 128"#, r#""max_length": "long""#, "invalid"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            write(dir.path(), &GOOD.replace(from, to));
            let err = Manifest::load(dir.path()).unwrap_err().to_string();
            assert!(err.contains(says), "{to}: {err}");
        }
    }
}
