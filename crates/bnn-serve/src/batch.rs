//! Dynamic batching: concurrent requests for one model become one engine
//! batch.
//!
//! Each model name has a queue and a task that empties it. The task first
//! waits for a free compute slot (one per rayon thread), then takes the
//! oldest request and every request queued behind it for the same model,
//! up to `max_batch` images, waiting at most `max_delay` for more. While
//! every slot is busy, requests pile up in the queue, so batches grow with
//! the load and cost nothing in latency when the server is idle (Triton's
//! dynamic batcher with a queue delay of `max_delay`). A request larger
//! than `max_batch` runs as a batch of its own; the engine splits it across
//! the rayon threads in chunks.
//!
//! The queue is bounded by images, not requests: past `max_queue` images a
//! request is refused at once (the caller answers `503` with
//! `Retry-After`), so memory never grows with the backlog. A request whose
//! client left (deadline passed, connection closed) is dropped from its
//! batch before it runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bnn_core::{Model, Predictions, RunOptions};
use tokio::sync::{mpsc, oneshot, Semaphore};

use crate::metrics::Metrics;

/// One request's images, waiting for its batch.
pub struct Job {
    pub model: Arc<Model>,
    /// `count` images, `model.input_len()` bytes each.
    pub pixels: Vec<u8>,
    pub count: usize,
    pub reply: oneshot::Sender<Result<Predictions, String>>,
}

/// Why a request was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// The queue holds `max_queue` images already.
    Full,
    /// The batching task has ended (the server is stopping).
    Closed,
}

/// The queue of one model name.
pub struct Batcher {
    tx: mpsc::UnboundedSender<Job>,
    queued: Arc<AtomicUsize>,
    max_queue: usize,
}

/// Settings shared by every batcher.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub max_batch: usize,
    pub max_delay: Duration,
    pub max_queue: usize,
}

impl Batcher {
    /// Starts the batching task of one model (on the current runtime);
    /// `slots` bounds the batches running at once, over every model.
    pub fn start(
        name: String,
        settings: Settings,
        slots: Arc<Semaphore>,
        metrics: Arc<Metrics>,
    ) -> Batcher {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        tokio::spawn(run(name, rx, settings, slots, metrics, queued.clone()));
        Batcher {
            tx,
            queued,
            max_queue: settings.max_queue,
        }
    }

    /// Queues a job, unless the queue is full. A request larger than the
    /// whole queue is still taken when the queue is empty: the limit on
    /// images per request bounds it, and it could never be served else.
    pub fn submit(&self, job: Job) -> Result<(), Refused> {
        let n = job.count;
        let before = self.queued.fetch_add(n, Ordering::SeqCst);
        if before > 0 && before + n > self.max_queue {
            self.queued.fetch_sub(n, Ordering::SeqCst);
            return Err(Refused::Full);
        }
        self.tx.send(job).map_err(|_| {
            self.queued.fetch_sub(n, Ordering::SeqCst);
            Refused::Closed
        })
    }

    /// Images waiting, not yet in a batch.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::SeqCst)
    }
}

async fn run(
    name: String,
    mut rx: mpsc::UnboundedReceiver<Job>,
    settings: Settings,
    slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    queued: Arc<AtomicUsize>,
) {
    let mut held: Option<Job> = None;
    loop {
        // The semaphore is never closed.
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let first = match held.take() {
            Some(job) => job,
            None => match rx.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut images = first.count;
        let mut jobs = vec![first];
        let deadline = tokio::time::Instant::now() + settings.max_delay;
        while images < settings.max_batch {
            let next = match rx.try_recv() {
                Ok(job) => job,
                Err(mpsc::error::TryRecvError::Empty) if !settings.max_delay.is_zero() => {
                    match tokio::time::timeout_at(deadline, rx.recv()).await {
                        Ok(Some(job)) => job,
                        _ => break,
                    }
                }
                Err(_) => break,
            };
            // One batch runs one model: a request that arrived after a
            // reload waits for the next batch, on the new model.
            if !Arc::ptr_eq(&next.model, &jobs[0].model) || images + next.count > settings.max_batch
            {
                held = Some(next);
                break;
            }
            images += next.count;
            jobs.push(next);
        }
        queued.fetch_sub(images, Ordering::SeqCst);
        jobs.retain(|j| !j.reply.is_closed());
        if jobs.is_empty() {
            continue;
        }
        let batch: usize = jobs.iter().map(|j| j.count).sum();
        metrics.observe_batch(&name, batch);
        rayon::spawn(move || {
            run_batch(jobs);
            drop(permit);
        });
    }
}

/// Runs one batch and hands each request its rows.
fn run_batch(mut jobs: Vec<Job>) {
    let model = jobs[0].model.clone();
    if jobs.len() == 1 {
        let job = jobs.pop().expect("one job");
        let result = model
            .predict_batch_with(&job.pixels, RunOptions::default())
            .map_err(|e| e.to_string());
        let _ = job.reply.send(result);
        return;
    }
    let mut pixels = Vec::with_capacity(jobs.iter().map(|j| j.pixels.len()).sum());
    for job in &jobs {
        pixels.extend_from_slice(&job.pixels);
    }
    match model.predict_batch_with(&pixels, RunOptions::default()) {
        Ok(all) => {
            let c = all.num_classes;
            let mut start = 0;
            for job in jobs {
                let end = start + job.count;
                let part = Predictions {
                    classes: all.classes[start..end].to_vec(),
                    scores: all.scores[start * c..end * c].to_vec(),
                    num_classes: c,
                };
                start = end;
                let _ = job.reply.send(Ok(part));
            }
        }
        Err(e) => {
            let message = e.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(message.clone()));
            }
        }
    }
}
