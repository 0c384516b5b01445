//! One loaded judge model: its manifest, its tokenizer and its ONNX Runtime session.
//!
//! Tokenizing is separate from running so the batcher can sort inputs by length before it pads
//! them: a batch is padded only to its own longest input.
//!
//! A model whose manifest caps its batches at one input (dynamic int8: its activation scales span
//! the batch) gets one single-threaded session per CPU thread, its "lanes", instead of one session
//! that splits each small input's matrices across threads: measured on 2 cores at 128 tokens,
//! two lanes of one thread ran 52.9–54.1 pairs/s against 37.2–39.1 for one session of two
//! (Python ONNX Runtime 1.31.1, the shipped groundedness model). The lanes share their prepacked
//! weights.

use std::sync::Mutex;

use ndarray::{Array2, ArrayViewD, Axis, Ix2, Ix3};
use ort::session::builder::{GraphOptimizationLevel, PrepackedWeights};
use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;
use tokenizers::{Encoding, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use crate::error::{Result, ServingError};
use crate::manifest::{Architecture, Manifest, OutputKind, Pooling};
use crate::runtime::{self, ActiveDevice, Device};

pub struct OnnxModel {
    pub manifest: Manifest,
    pub device: ActiveDevice,
    tokenizer: Tokenizer,
    /// `Session::run` needs `&mut`: one batch runs on a lane at a time. One lane that uses every
    /// intra-op thread, or one single-threaded lane per thread (see the module's doc).
    lanes: Vec<Mutex<Session>>,
}

impl std::fmt::Debug for OnnxModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxModel")
            .field("name", &self.manifest.name)
            .field("device", &self.device)
            .finish()
    }
}

fn ort_err<E: std::fmt::Display>(e: E) -> ServingError {
    ServingError::Inference(e.to_string())
}

/// One ONNX Runtime session of the model, with `threads` intra-op threads (0 = one per core).
fn new_session(
    manifest: &Manifest,
    env: &ort::environment::Environment,
    device: ActiveDevice,
    threads: usize,
    shared: &PrepackedWeights,
) -> Result<Session> {
    let mut builder = Session::builder(env)
        .map_err(ort_err)?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(ort_err)?
        // On x86 CPUs without AVX-512 VNNI, ONNX Runtime multiplies int8 weights by uint8
        // activations with an instruction whose 16-bit partial sums saturate, so a dynamically
        // quantized model scores differently there (measured on an AVX2-only EPYC: up to 0.11
        // off the same model's scores on a VNNI machine). This option takes the exact path on
        // such CPUs (~20% slower there) and changes nothing elsewhere: a judge's scores, and
        // the threshold calibrated on them, must not depend on the CPU it runs on.
        .with_config_entry("session.x64quantprecision", "1")
        .map_err(ort_err)?
        .with_prepacked_weights(shared)
        .map_err(ort_err)?;
    if threads > 0 {
        builder = builder.with_intra_threads(threads).map_err(ort_err)?;
    }
    if device == ActiveDevice::Cuda {
        builder = builder
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(ort_err)?;
    }
    builder.commit_from_file(&manifest.model).map_err(ort_err)
}

impl OnnxModel {
    /// Loads the model described by `manifest` on `device`, with `threads` threads on CPU
    /// (0 = one per core): intra-op threads of one session, or as many single-threaded lanes
    /// for a model that runs one input at a time.
    pub fn load(
        manifest: Manifest,
        env: &ort::environment::Environment,
        device: Device,
        threads: usize,
    ) -> Result<OnnxModel> {
        let device = runtime::resolve(device)?;
        let mut tokenizer = Tokenizer::from_file(&manifest.tokenizer).map_err(|e| {
            ServingError::Tokenizer(format!("{}: {e}", manifest.tokenizer.display()))
        })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: manifest.max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|e| ServingError::Tokenizer(e.to_string()))?;
        tokenizer.with_padding(None);

        let cpu_threads = match threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let lane_count = if device == ActiveDevice::Cpu && manifest.max_batch == Some(1) {
            cpu_threads
        } else {
            1
        };
        let shared = PrepackedWeights::new();
        let lanes = (0..lane_count)
            .map(|_| {
                let lane_threads = if lane_count > 1 { 1 } else { threads };
                new_session(&manifest, env, device, lane_threads, &shared)
            })
            .collect::<Result<Vec<Session>>>()?;
        let session = &lanes[0];
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for wanted in [
            Some(&manifest.inputs.input_ids),
            Some(&manifest.inputs.attention_mask),
            manifest.inputs.token_type_ids.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if !names.contains(&wanted.as_str()) {
                return Err(ServingError::Model {
                    dir: manifest.model.clone(),
                    reason: format!("the graph has no input {wanted:?} (it has {names:?})"),
                });
            }
        }
        if !session
            .outputs()
            .iter()
            .any(|o| o.name() == manifest.output.name)
        {
            return Err(ServingError::Model {
                dir: manifest.model.clone(),
                reason: format!("the graph has no output {:?}", manifest.output.name),
            });
        }
        Ok(OnnxModel {
            manifest,
            device,
            tokenizer,
            lanes: lanes.into_iter().map(Mutex::new).collect(),
        })
    }

    /// How many batches can run at once (see the module's doc).
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Tokenizes a pair (cross-encoders), truncated to `max_length` as in training.
    pub fn encode_pair(&self, first: &str, second: &str) -> Result<Encoding> {
        self.tokenizer
            .encode((first, second), true)
            .map_err(|e| ServingError::Tokenizer(e.to_string()))
    }

    /// Tokenizes one text (bi-encoders).
    pub fn encode_one(&self, text: &str) -> Result<Encoding> {
        self.tokenizer
            .encode(text, true)
            .map_err(|e| ServingError::Tokenizer(e.to_string()))
    }

    /// Runs one batch. A cross-encoder gives one score in 0..1 per input; a bi-encoder one
    /// embedding per input.
    pub fn infer(&self, batch: &[&Encoding]) -> Result<Vec<Vec<f32>>> {
        if batch.is_empty() {
            return Ok(vec![]);
        }
        let width = batch.iter().map(|e| e.len()).max().unwrap_or(0).max(1);
        let mut ids = Array2::<i64>::zeros((batch.len(), width));
        let mut mask = Array2::<i64>::zeros((batch.len(), width));
        let mut types = Array2::<i64>::zeros((batch.len(), width));
        for (row, e) in batch.iter().enumerate() {
            for (col, ((&id, &m), &t)) in e
                .get_ids()
                .iter()
                .zip(e.get_attention_mask())
                .zip(e.get_type_ids())
                .enumerate()
            {
                ids[[row, col]] = i64::from(id);
                mask[[row, col]] = i64::from(m);
                types[[row, col]] = i64::from(t);
            }
        }
        let m = &self.manifest;
        let mut inputs: Vec<(String, SessionInputValue)> = vec![
            (
                m.inputs.input_ids.clone(),
                Tensor::from_array(ids).map_err(ort_err)?.into(),
            ),
            (
                m.inputs.attention_mask.clone(),
                Tensor::from_array(mask.clone()).map_err(ort_err)?.into(),
            ),
        ];
        if let Some(name) = &m.inputs.token_type_ids {
            inputs.push((
                name.clone(),
                Tensor::from_array(types).map_err(ort_err)?.into(),
            ));
        }
        // The batcher runs one worker per lane, so a free lane is there unless someone else
        // calls `infer` too; then wait for the first.
        let mut session = self
            .lanes
            .iter()
            .find_map(|lane| lane.try_lock().ok())
            .unwrap_or_else(|| self.lanes[0].lock().expect("session lock"));
        let outputs = session.run(inputs).map_err(ort_err)?;
        let out = outputs
            .get(&m.output.name)
            .ok_or_else(|| ServingError::Inference(format!("no output {}", m.output.name)))?
            .try_extract_array::<f32>()
            .map_err(ort_err)?;
        match m.architecture {
            Architecture::CrossEncoder => self.scores(out, batch.len()),
            Architecture::BiEncoder => self.embeddings(out, &mask),
        }
    }

    fn scores(&self, out: ArrayViewD<f32>, n: usize) -> Result<Vec<Vec<f32>>> {
        let spec = &self.manifest.output;
        let rows: Vec<Vec<f32>> = match out.ndim() {
            1 => out.iter().map(|v| vec![*v]).collect(),
            2 => out
                .outer_iter()
                .map(|r| r.iter().copied().collect())
                .collect(),
            d => {
                return Err(ServingError::Inference(format!(
                    "a score output of {d} dimensions"
                )))
            }
        };
        if rows.len() != n {
            return Err(ServingError::Inference(format!(
                "{} scores for {n} inputs",
                rows.len()
            )));
        }
        rows.into_iter()
            .map(|r| {
                let pick = |i: Option<usize>| -> Result<f32> {
                    let i = i.unwrap_or(r.len() - 1);
                    r.get(i).copied().ok_or_else(|| {
                        ServingError::Inference(format!(
                            "positive_index {i} but {} classes",
                            r.len()
                        ))
                    })
                };
                let score = match spec.kind {
                    OutputKind::Logits => softmax_at(&r, spec.positive_index.unwrap_or(1))?,
                    OutputKind::Logit => sigmoid(pick(Some(0))?),
                    OutputKind::Probability => pick(spec.positive_index)?,
                    OutputKind::Embedding => unreachable!("checked by the manifest"),
                };
                Ok(vec![score])
            })
            .collect()
    }

    fn embeddings(&self, out: ArrayViewD<f32>, mask: &Array2<i64>) -> Result<Vec<Vec<f32>>> {
        let pooled: Vec<Vec<f32>> = if let Ok(tokens) = out.view().into_dimensionality::<Ix3>() {
            tokens
                .outer_iter()
                .zip(mask.outer_iter())
                .map(
                    |(t, m)| match self.manifest.pooling.unwrap_or(Pooling::Mean) {
                        Pooling::Cls => t.index_axis(Axis(0), 0).to_vec(),
                        Pooling::Mean => {
                            let mut sum = vec![0f32; t.shape()[1]];
                            let mut count = 0f32;
                            for (tok, &on) in t.outer_iter().zip(m.iter()) {
                                if on != 0 {
                                    count += 1.0;
                                    sum.iter_mut().zip(tok.iter()).for_each(|(s, v)| *s += v);
                                }
                            }
                            sum.iter().map(|s| s / count.max(1.0)).collect()
                        }
                    },
                )
                .collect()
        } else if let Ok(sentences) = out.view().into_dimensionality::<Ix2>() {
            sentences.outer_iter().map(|r| r.to_vec()).collect()
        } else {
            return Err(ServingError::Inference(format!(
                "an embedding output of shape {:?}",
                out.shape()
            )));
        };
        Ok(pooled
            .into_iter()
            .map(|v| {
                if self.manifest.normalize {
                    l2_normalize(v)
                } else {
                    v
                }
            })
            .collect())
    }
}

fn softmax_at(logits: &[f32], index: usize) -> Result<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    logits
        .get(index)
        .map(|l| (l - max).exp() / sum)
        .ok_or_else(|| {
            ServingError::Inference(format!(
                "positive_index {index} but {} classes",
                logits.len()
            ))
        })
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn l2_normalize(v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.into_iter().map(|x| x / norm).collect()
}

/// Cosine similarity of two embeddings.
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb).max(1e-12)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_picks_the_positive_class() {
        let p = softmax_at(&[0.0, 2.0], 1).unwrap();
        assert!((p - 0.880797).abs() < 1e-5);
        assert!(softmax_at(&[0.0, 2.0], 2).is_err());
        assert!((sigmoid(0.0) - 0.5).abs() < 1e-7);
        assert!((cosine(&[1.0, 0.0], &[1.0, 1.0]) - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }
}
