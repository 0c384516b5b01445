//! The judges a server offers, one per task, and how a model's scores become verdicts:
//! groundedness scores every response sentence against every context window (a sentence is
//! supported if some window supports it; a response is as grounded as its least supported
//! sentence), relevance scores a query against every window of a document (relevant if some
//! part of it is).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use tokenizers::Encoding;

use crate::batcher::{Batcher, BatcherConfig};
use crate::error::{Result, ServingError};
use crate::manifest::{Architecture, Manifest, Segment, Task, MANIFEST_FILE};
use crate::model::{cosine, OnnxModel};
use crate::runtime::{self, ActiveDevice, Device};
use crate::segment;
use crate::telemetry::RequestMetrics;

/// Where Plumb's own judges live in the repository (`scripts/setup.sh` completes them).
pub const DEFAULT_MODELS_DIR: &str = "judges/models";

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JudgeConfig {
    /// Each subdirectory with a `plumb-judge.json` is a model.
    pub models_dir: PathBuf,
    /// libonnxruntime; `ORT_DYLIB_PATH` or `.tools/onnxruntime/` when unset.
    pub onnxruntime: Option<PathBuf>,
    pub device: Device,
    /// Threads per model on CPU; 0 = one per core. A model that runs one input at a time gets
    /// that many single-threaded sessions instead of one session of that many threads.
    pub threads: usize,
    pub batching: BatcherConfig,
    /// Largest text accepted in one field, in bytes.
    pub max_text_bytes: usize,
    /// Largest number of model inputs one item may expand to (sentences × windows).
    pub max_pairs_per_item: usize,
    /// How often the judge server exports its own metrics, when it has somewhere to send them.
    pub telemetry_interval_secs: u64,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            models_dir: PathBuf::from(DEFAULT_MODELS_DIR),
            onnxruntime: None,
            device: Device::Auto,
            threads: 0,
            batching: BatcherConfig::default(),
            max_text_bytes: 256 << 10,
            max_pairs_per_item: 4096,
            telemetry_interval_secs: 10,
        }
    }
}

/// One loaded model behind its batcher.
pub struct Judge {
    pub model: Arc<OnnxModel>,
    pub batcher: Batcher,
}

/// A model as `GET /v1/models` describes it.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub task: Task,
    pub architecture: Architecture,
    pub device: ActiveDevice,
    pub max_length: usize,
    pub threshold: f32,
    pub dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SentenceVerdict {
    pub text: String,
    pub score: f32,
    pub label: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroundednessVerdict {
    pub score: f32,
    pub label: &'static str,
    pub sentences: Vec<SentenceVerdict>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RelevanceVerdict {
    pub score: f32,
    pub label: &'static str,
}

pub struct Judges {
    config: JudgeConfig,
    /// Latency of API requests, for the server's own telemetry.
    pub requests: RequestMetrics,
    groundedness: Option<Judge>,
    relevance: Option<Judge>,
}

impl Judges {
    /// Loads every model under `config.models_dir`; at most one per task (the first by name).
    pub fn load(config: JudgeConfig) -> Result<Judges> {
        let env = runtime::environment(&runtime::dylib_path(config.onnxruntime.as_deref()))?;
        let mut judges = Judges {
            groundedness: None,
            relevance: None,
            requests: RequestMetrics::default(),
            config: config.clone(),
        };
        for dir in model_dirs(&config.models_dir)? {
            let manifest = Manifest::load(&dir)?;
            let slot = match manifest.task {
                Task::Groundedness => &mut judges.groundedness,
                Task::ContextRelevance => &mut judges.relevance,
            };
            if let Some(loaded) = slot {
                tracing::warn!(
                    skipped = %dir.display(),
                    kept = %loaded.model.manifest.name,
                    "two models for one task; the first by directory name is used"
                );
                continue;
            }
            let model = Arc::new(OnnxModel::load(
                manifest,
                env,
                config.device,
                config.threads,
            )?);
            tracing::info!(
                model = %model.manifest.name,
                task = model.manifest.task.name(),
                device = ?model.device,
                "judge model loaded"
            );
            let mut batching = config.batching.clone();
            if let Some(cap) = model.manifest.max_batch {
                batching.max_batch = batching.max_batch.min(cap.max(1));
            }
            *slot = Some(Judge {
                batcher: Batcher::start(model.clone(), batching),
                model,
            });
        }
        Ok(judges)
    }

    pub fn models(&self) -> Vec<ModelInfo> {
        [&self.groundedness, &self.relevance]
            .into_iter()
            .flatten()
            .map(|j| {
                let m = &j.model.manifest;
                ModelInfo {
                    name: m.name.clone(),
                    version: m.version.clone(),
                    task: m.task,
                    architecture: m.architecture,
                    device: j.model.device,
                    max_length: m.max_length,
                    threshold: m.threshold,
                    dir: m.model.parent().map(Path::to_path_buf).unwrap_or_default(),
                }
            })
            .collect()
    }

    pub fn config(&self) -> &JudgeConfig {
        &self.config
    }

    pub fn judge(&self, task: Task) -> Result<&Judge> {
        match task {
            Task::Groundedness => self.groundedness.as_ref(),
            Task::ContextRelevance => self.relevance.as_ref(),
        }
        .ok_or(ServingError::NoJudge(task.name()))
    }

    fn check_text(&self, field: &str, text: &str) -> Result<()> {
        if text.trim().is_empty() {
            return Err(ServingError::BadRequest(format!("{field} is empty")));
        }
        if text.len() > self.config.max_text_bytes {
            return Err(ServingError::BadRequest(format!(
                "{field} is {} bytes; the limit is {} (judge.max_text_bytes)",
                text.len(),
                self.config.max_text_bytes
            )));
        }
        Ok(())
    }

    /// Checks an item's texts before any work is queued; `field` names the item in errors.
    pub fn check_groundedness(&self, field: &str, context: &str, response: &str) -> Result<()> {
        self.check_text(&format!("{field}.context"), context)?;
        self.check_text(&format!("{field}.response"), response)
    }

    pub fn check_relevance(&self, field: &str, query: &str, document: &str) -> Result<()> {
        self.check_text(&format!("{field}.query"), query)?;
        self.check_text(&format!("{field}.document"), document)
    }

    pub async fn groundedness(&self, context: &str, response: &str) -> Result<GroundednessVerdict> {
        let judge = self.judge(Task::Groundedness)?;
        let m = &judge.model.manifest;
        let claims: Vec<String> = segment::sentences(response)
            .into_iter()
            .map(String::from)
            .collect();
        let windows = segment::windows(context, m.window_words());
        self.check_pairs(claims.len(), windows.len())?;
        let pairs: Vec<(String, String)> = claims
            .iter()
            .flat_map(|c| windows.iter().map(move |w| (w.clone(), c.clone())))
            .collect();
        let scores = pair_scores(judge, pairs).await?;
        let sentences: Vec<SentenceVerdict> = claims
            .into_iter()
            .zip(scores.chunks(windows.len()))
            .map(|(text, s)| {
                let score = s.iter().copied().fold(0.0, f32::max);
                SentenceVerdict {
                    text,
                    score,
                    label: label(score, m.threshold, "supported", "unsupported"),
                }
            })
            .collect();
        let score = sentences.iter().map(|s| s.score).fold(1.0, f32::min);
        Ok(GroundednessVerdict {
            score,
            label: label(score, m.threshold, "supported", "unsupported"),
            sentences,
        })
    }

    pub async fn context_relevance(&self, query: &str, document: &str) -> Result<RelevanceVerdict> {
        let judge = self.judge(Task::ContextRelevance)?;
        let m = &judge.model.manifest;
        let windows = segment::windows(document, m.window_words());
        self.check_pairs(1, windows.len())?;
        let pairs = windows
            .into_iter()
            .map(|w| (query.to_string(), w))
            .collect();
        let score = pair_scores(judge, pairs)
            .await?
            .into_iter()
            .fold(0.0, f32::max);
        Ok(RelevanceVerdict {
            score,
            label: label(score, m.threshold, "relevant", "irrelevant"),
        })
    }

    fn check_pairs(&self, sentences: usize, windows: usize) -> Result<()> {
        if sentences == 0 {
            return Err(ServingError::BadRequest(
                "the response has no sentence to judge".into(),
            ));
        }
        let n = sentences.saturating_mul(windows);
        if n > self.config.max_pairs_per_item {
            return Err(ServingError::BadRequest(format!(
                "{sentences} sentences × {windows} context windows = {n} model inputs; the limit per item is {} (judge.max_pairs_per_item): send shorter items",
                self.config.max_pairs_per_item
            )));
        }
        Ok(())
    }
}

fn label(score: f32, threshold: f32, yes: &'static str, no: &'static str) -> &'static str {
    if score >= threshold {
        yes
    } else {
        no
    }
}

/// Subdirectories of `dir` that hold a manifest, sorted by name.
fn model_dirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| ServingError::Model {
        dir: dir.to_path_buf(),
        reason: format!("cannot list the judge models directory: {e}"),
    })?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join(MANIFEST_FILE).is_file())
        .collect();
    dirs.sort();
    Ok(dirs)
}

/// Scores (context or query, claim or document) pairs in 0..1, whatever the architecture.
async fn pair_scores(judge: &Judge, pairs: Vec<(String, String)>) -> Result<Vec<f32>> {
    let model = judge.model.clone();
    let m = &model.manifest;
    match m.architecture {
        Architecture::CrossEncoder => {
            let swap = matches!(m.pair_order[0], Segment::Claim | Segment::Document);
            let encodings = tokenize(model.clone(), move |model| {
                pairs
                    .iter()
                    .map(|(a, b)| match swap {
                        false => model.encode_pair(a, b),
                        true => model.encode_pair(b, a),
                    })
                    .collect()
            })
            .await?;
            Ok(judge
                .batcher
                .run(encodings)
                .await?
                .into_iter()
                .map(|o| o[0])
                .collect())
        }
        Architecture::BiEncoder => {
            let n = pairs.len();
            let encodings = tokenize(model.clone(), move |model| {
                pairs
                    .iter()
                    .flat_map(|(a, b)| [a, b])
                    .map(|t| model.encode_one(t))
                    .collect()
            })
            .await?;
            let embeddings = judge.batcher.run(encodings).await?;
            let scale = m.score_scale;
            Ok((0..n)
                .map(|i| {
                    let c = cosine(&embeddings[2 * i], &embeddings[2 * i + 1]);
                    match scale {
                        Some([lo, hi]) => ((c - lo) / (hi - lo).max(1e-6)).clamp(0.0, 1.0),
                        None => c.clamp(0.0, 1.0),
                    }
                })
                .collect())
        }
    }
}

/// Tokenizing long inputs is CPU work: keep it off the async threads.
async fn tokenize<F>(model: Arc<OnnxModel>, f: F) -> Result<Vec<Encoding>>
where
    F: FnOnce(&OnnxModel) -> Result<Vec<Encoding>> + Send + 'static,
{
    tokio::task::spawn_blocking(move || f(&model))
        .await
        .map_err(|e| ServingError::Inference(format!("tokenizer task failed: {e}")))?
}
