//! Dynamic batching: concurrent requests' inputs are gathered for up to `max_wait` (or until a
//! batch is full), sorted by length so each batch pads little, and run batch by batch on one
//! worker thread per lane of the model (see `model`'s doc). The queue is bounded: past
//! `queue_capacity` waiting inputs a request is refused whole (the API answers 429) instead of
//! waiting without limit.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokenizers::Encoding;
use tokio::sync::oneshot;

use crate::error::{Result, ServingError};
use crate::model::OnnxModel;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatcherConfig {
    /// Inputs per model run.
    pub max_batch: usize,
    /// How long the first input of a batch waits for others.
    pub max_wait_ms: u64,
    /// Inputs that may wait; more are refused.
    pub queue_capacity: usize,
}

impl Default for BatcherConfig {
    fn default() -> Self {
        BatcherConfig {
            max_batch: 32,
            max_wait_ms: 5,
            queue_capacity: 8192,
        }
    }
}

/// Counters for the judge's own telemetry.
#[derive(Debug, Default)]
pub struct BatchStats {
    pub batches: AtomicU64,
    pub inputs: AtomicU64,
    /// Real tokens over padded tokens, in thousandths, summed over batches.
    pub fill_permille_sum: AtomicU64,
    pub run_micros: AtomicU64,
}

struct Job {
    encoding: Encoding,
    reply: oneshot::Sender<Result<Vec<f32>>>,
}

/// Handle to one model's batching worker. Cheap to clone.
#[derive(Clone)]
pub struct Batcher {
    tx: mpsc::Sender<Job>,
    queued: Arc<AtomicUsize>,
    capacity: usize,
    max_wait: Duration,
    pub stats: Arc<BatchStats>,
}

impl Batcher {
    pub fn start(model: Arc<OnnxModel>, config: BatcherConfig) -> Batcher {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let queued = Arc::new(AtomicUsize::new(0));
        let stats = Arc::new(BatchStats::default());
        for lane in 0..model.lanes() {
            let worker = Worker {
                model: model.clone(),
                rx: rx.clone(),
                queued: queued.clone(),
                stats: stats.clone(),
                max_batch: config.max_batch.max(1),
                max_wait: Duration::from_millis(config.max_wait_ms),
            };
            std::thread::Builder::new()
                .name(format!("judge-batcher-{lane}"))
                .spawn(move || worker.run())
                .expect("spawn the batching thread");
        }
        Batcher {
            tx,
            queued,
            capacity: config.queue_capacity.max(1),
            max_wait: Duration::from_millis(config.max_wait_ms),
            stats,
        }
    }

    /// Inputs waiting now.
    pub fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Runs every input and returns one output per input, in order. All or nothing: if the
    /// queue cannot take them all, none is queued.
    pub async fn run(&self, encodings: Vec<Encoding>) -> Result<Vec<Vec<f32>>> {
        let n = encodings.len();
        let before = self.queued.fetch_add(n, Ordering::AcqRel);
        if before + n > self.capacity && n > 0 {
            self.queued.fetch_sub(n, Ordering::AcqRel);
            // Roughly the time to drain what is queued at the last observed pace.
            let per_input = self.average_micros_per_input().max(100);
            return Err(ServingError::Overloaded {
                queued: before,
                retry_after_ms: ((before as u64 * per_input) / 1000).clamp(50, 10_000)
                    + self.max_wait.as_millis() as u64,
            });
        }
        let mut replies = Vec::with_capacity(n);
        for encoding in encodings {
            let (reply, rx) = oneshot::channel();
            if self.tx.send(Job { encoding, reply }).is_err() {
                return Err(ServingError::ShuttingDown);
            }
            replies.push(rx);
        }
        let mut out = Vec::with_capacity(n);
        for rx in replies {
            out.push(rx.await.map_err(|_| ServingError::ShuttingDown)??);
        }
        Ok(out)
    }

    fn average_micros_per_input(&self) -> u64 {
        let inputs = self.stats.inputs.load(Ordering::Relaxed).max(1);
        self.stats.run_micros.load(Ordering::Relaxed) / inputs
    }
}

struct Worker {
    model: Arc<OnnxModel>,
    /// Shared by the lanes' workers: one gathers a batch while the others run theirs.
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    queued: Arc<AtomicUsize>,
    stats: Arc<BatchStats>,
    max_batch: usize,
    max_wait: Duration,
}

impl Worker {
    fn run(self) {
        while let Some(jobs) = self.gather() {
            self.run_sorted(jobs);
        }
    }

    /// The next jobs to run, or `None` once every sender is gone.
    fn gather(&self) -> Option<Vec<Job>> {
        let rx = self.rx.lock().expect("batcher queue lock");
        let mut jobs = vec![rx.recv().ok()?];
        let deadline = Instant::now() + self.max_wait;
        while jobs.len() < self.max_batch {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => jobs.push(job),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Whatever else is already waiting joins, up to a few batches, so that sorting by
        // length has something to sort. Inputs run one at a time have nothing to sort, and
        // are left to the other lanes.
        let most = if self.max_batch > 1 {
            self.max_batch * 4
        } else {
            1
        };
        while jobs.len() < most {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        Some(jobs)
    }

    fn run_sorted(&self, mut jobs: Vec<Job>) {
        jobs.sort_by_key(|j| j.encoding.len());
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let batch: Vec<Job> = jobs.by_ref().take(self.max_batch).collect();
            let started = Instant::now();
            let encodings: Vec<&Encoding> = batch.iter().map(|j| &j.encoding).collect();
            let result = self.model.infer(&encodings);
            let real: usize = encodings.iter().map(|e| e.len()).sum();
            let padded = encodings.iter().map(|e| e.len()).max().unwrap_or(0) * encodings.len();
            self.stats.batches.fetch_add(1, Ordering::Relaxed);
            self.stats
                .inputs
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.stats
                .fill_permille_sum
                .fetch_add((real * 1000 / padded.max(1)) as u64, Ordering::Relaxed);
            self.stats
                .run_micros
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            self.queued.fetch_sub(batch.len(), Ordering::AcqRel);
            match result {
                Ok(outputs) => {
                    for (job, out) in batch.into_iter().zip(outputs) {
                        let _ = job.reply.send(Ok(out));
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    for job in batch {
                        let _ = job.reply.send(Err(ServingError::Inference(text.clone())));
                    }
                }
            }
        }
    }
}
