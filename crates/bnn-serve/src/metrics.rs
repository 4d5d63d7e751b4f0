//! Counters for `GET /metrics`, in the Prometheus text format (0.0.4).
//!
//! Written by hand on atomics: a handful of counters and three histograms
//! do not justify a metrics registry, and atomics keep the request path
//! free of locks (per-model batch histograms sit behind a mutex taken
//! once per batch, not per request).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of the batch-size buckets, in images.
const BATCH_BUCKETS: [f64; 14] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0, 10000.0,
];

/// A cumulative histogram: one count per bucket, then the sum and count.
#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; 14],
    /// The sum, in millionths of the unit (microseconds, micro-images).
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn observe(&self, bounds: &[f64; 14], v: f64) {
        if let Some(i) = bounds.iter().position(|&b| v <= b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micros
            .fetch_add((v * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str, bounds: &[f64; 14]) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (b, bound) in self.buckets.iter().zip(bounds) {
            cumulative += b.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by status code (100..=599).
    by_status: Vec<AtomicU64>,
    latency: Histogram,
    images: AtomicU64,
    batches: Mutex<BTreeMap<String, std::sync::Arc<Histogram>>>,
    connections: AtomicU64,
}

impl Metrics {
    pub fn new() -> Metrics {
        Metrics {
            by_status: (0..500).map(|_| AtomicU64::new(0)).collect(),
            ..Metrics::default()
        }
    }

    /// One request answered with `status` after `elapsed`.
    pub fn observe_request(&self, status: u16, elapsed: Duration) {
        if let Some(c) = self.by_status.get(usize::from(status).wrapping_sub(100)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.latency
            .observe(&LATENCY_BUCKETS, elapsed.as_secs_f64());
    }

    /// Images classified (counted when a request is answered with them).
    pub fn add_images(&self, n: usize) {
        self.images.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// One engine batch of `images` for `model`.
    pub fn observe_batch(&self, model: &str, images: usize) {
        let h = {
            let mut map = self.batches.lock().unwrap_or_else(|e| e.into_inner());
            // The name is copied once per model, not once per batch.
            match map.get(model) {
                Some(h) => h.clone(),
                None => map.entry(model.to_string()).or_default().clone(),
            }
        };
        h.observe(&BATCH_BUCKETS, images as f64);
    }

    pub fn connection_opened(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// The exposition text; `queues` gives each model's queued images.
    pub fn render(&self, queues: &[(String, usize)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP bnn_serve_requests_total HTTP requests answered, by status code.\n");
        out.push_str("# TYPE bnn_serve_requests_total counter\n");
        for (i, c) in self.by_status.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let _ = writeln!(out, "bnn_serve_requests_total{{code=\"{}\"}} {n}", i + 100);
            }
        }
        out.push_str(
            "# HELP bnn_serve_request_duration_seconds Time from request head to answer.\n",
        );
        out.push_str("# TYPE bnn_serve_request_duration_seconds histogram\n");
        self.latency.write(
            &mut out,
            "bnn_serve_request_duration_seconds",
            "",
            &LATENCY_BUCKETS,
        );
        out.push_str("# HELP bnn_serve_batch_size Images per engine batch, by model.\n");
        out.push_str("# TYPE bnn_serve_batch_size histogram\n");
        let batches = self
            .batches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (model, h) in &batches {
            h.write(
                &mut out,
                "bnn_serve_batch_size",
                &format!("model=\"{model}\""),
                &BATCH_BUCKETS,
            );
        }
        out.push_str("# HELP bnn_serve_images_total Images classified (rate() gives images/s).\n");
        out.push_str("# TYPE bnn_serve_images_total counter\n");
        let _ = writeln!(
            out,
            "bnn_serve_images_total {}",
            self.images.load(Ordering::Relaxed)
        );
        out.push_str("# HELP bnn_serve_queue_depth Images waiting for a batch, by model.\n");
        out.push_str("# TYPE bnn_serve_queue_depth gauge\n");
        for (model, n) in queues {
            let _ = writeln!(out, "bnn_serve_queue_depth{{model=\"{model}\"}} {n}");
        }
        out.push_str("# HELP bnn_serve_connections Open client connections.\n");
        out.push_str("# TYPE bnn_serve_connections gauge\n");
        let _ = writeln!(
            out,
            "bnn_serve_connections {}",
            self.connections.load(Ordering::Relaxed)
        );
        out
    }
}
