//! What a bench run found, as data (serialised to JSON) and as a table.

use serde::Serialize;

use crate::run::{Candidate, Engine};

/// Batch throughput of one engine, kernel and thread count.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    pub model: String,
    pub engine: String,
    pub kernel: String,
    pub threads: usize,
    pub images_per_s: f64,
    /// Test accuracy (%) of the same run's predictions; `None` (JSON
    /// `null`) for images without labels.
    pub accuracy: Option<f64>,
}

/// Single-image latency, one thread.
#[derive(Clone, Debug, Serialize)]
pub struct Latency {
    pub model: String,
    pub engine: String,
    pub kernel: String,
    pub us_per_image: f64,
}

/// One row of the results table: a model with its best kernel.
#[derive(Clone, Debug, Serialize)]
pub struct ModelSummary {
    pub model: String,
    pub engine: String,
    pub shape: String,
    /// How pixels enter the network: `binary>=T`, `u8` or `float`.
    pub input: String,
    /// As [`Throughput::accuracy`].
    pub accuracy: Option<f64>,
    pub best_kernel: String,
    /// `(threads, images/s)` with the best kernel.
    pub images_per_s: Vec<(usize, f64)>,
    pub us_per_image: f64,
    pub file_bytes: u64,
    pub fp32_file_bytes: u64,
    /// `fp32_file_bytes / file_bytes`.
    pub compression: f64,
    pub compared_with: Option<String>,
    /// `(threads, this / FP32 twin)` throughput ratios.
    pub speedup: Vec<(usize, f64)>,
    /// Latency ratio FP32 twin / this.
    pub latency_speedup: Option<f64>,
    /// FP32 engine only: floating-point operations per image (a
    /// multiply-add counts two).
    pub flops_per_image: Option<u64>,
    /// FP32 engine only: `(threads, GFLOP/s)` at the batch throughput.
    pub gflop_per_s: Vec<(usize, f64)>,
}

impl ModelSummary {
    pub(crate) fn from_runs(
        c: &Candidate,
        t: &[Throughput],
        l: &[Latency],
        threads: &[usize],
    ) -> Self {
        let best_at = |name: &str, th: usize| {
            t.iter()
                .filter(|r| r.model == name && r.threads == th)
                .max_by(|a, b| a.images_per_s.total_cmp(&b.images_per_s))
        };
        let max_threads = threads.iter().copied().max().unwrap_or(1);
        let best_kernel = best_at(&c.name, max_threads)
            .map(|r| r.kernel.clone())
            .unwrap_or_default();
        let images_per_s: Vec<(usize, f64)> = threads
            .iter()
            .filter_map(|&th| best_at(&c.name, th).map(|r| (th, r.images_per_s)))
            .collect();
        let accuracy = t
            .iter()
            .find(|r| r.model == c.name)
            .and_then(|r| r.accuracy);
        let fastest = |name: &str| {
            l.iter()
                .filter(|r| r.model == name)
                .map(|r| r.us_per_image)
                .min_by(f64::total_cmp)
        };
        let us_per_image = fastest(&c.name).unwrap_or(f64::NAN);
        let speedup = match &c.compare_with {
            Some(other) => images_per_s
                .iter()
                .filter_map(|&(th, ips)| best_at(other, th).map(|o| (th, ips / o.images_per_s)))
                .collect(),
            None => Vec::new(),
        };
        let latency_speedup = c
            .compare_with
            .as_deref()
            .and_then(fastest)
            .map(|o| o / us_per_image);
        let flops_per_image = c.engines.iter().find_map(|e| match e {
            Engine::Fp32(m) => Some(m.flops_per_image()),
            Engine::OneBit(..) => None,
        });
        let gflop_per_s = flops_per_image
            .map(|f| {
                images_per_s
                    .iter()
                    .map(|&(th, ips)| (th, ips * f as f64 / 1e9))
                    .collect()
            })
            .unwrap_or_default();
        ModelSummary {
            model: c.name.clone(),
            engine: c.engine_kind.clone(),
            shape: c.arch.clone().unwrap_or_else(|| {
                c.shape
                    .iter()
                    .map(|w| w.to_string())
                    .collect::<Vec<_>>()
                    .join("-")
            }),
            input: c.input.clone(),
            accuracy,
            best_kernel,
            images_per_s,
            us_per_image,
            file_bytes: c.file_bytes,
            fp32_file_bytes: c.fp32_file_bytes,
            compression: c.fp32_file_bytes as f64 / c.file_bytes.max(1) as f64,
            compared_with: c.compare_with.clone(),
            speedup,
            latency_speedup,
            flops_per_image,
            gflop_per_s,
        }
    }
}

/// Everything one `bnn bench` run measured.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    pub images: usize,
    /// What the images are: the MNIST test set, or random pixels of the
    /// models' shape when no data set fits them (then without accuracy).
    pub data: String,
    pub repeat: usize,
    pub threads: Vec<usize>,
    pub throughput: Vec<Throughput>,
    pub latency: Vec<Latency>,
    pub models: Vec<ModelSummary>,
}

/// An accuracy for the tables: `97.48 %`, or `n/a` without labels.
pub fn percent(accuracy: Option<f64>) -> String {
    match accuracy {
        Some(a) => format!("{a:.2} %"),
        None => "n/a".into(),
    }
}

/// A count with thousands separators: `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// [`BenchReport::data`] for the MNIST test set.
pub const MNIST_DATA: &str = "MNIST test images";

impl BenchReport {
    /// The images timed, for headings: `10000 MNIST test images`.
    pub fn images_text(&self) -> String {
        format!("{} {}", self.images, self.data)
    }

    /// The results table (Markdown), one row per model.
    pub fn summary_table(&self) -> String {
        let mut s = String::from("| model | engine | shape | input | test acc. |");
        for th in &self.threads {
            s += &format!(" images/s {th}T |");
        }
        s += " µs/image | bytes on disk | vs FP32 size |";
        for th in &self.threads {
            s += &format!(" speed-up {th}T |");
        }
        s += "\n|---|---|---|---|---|";
        s += &"---|".repeat(self.threads.len() * 2 + 3);
        s += "\n";
        for m in &self.models {
            s += &format!(
                "| {} | {} | {} | {} | {} |",
                m.model,
                m.engine,
                m.shape,
                m.input,
                percent(m.accuracy)
            );
            for th in &self.threads {
                match m.images_per_s.iter().find(|(t, _)| t == th) {
                    Some((_, v)) => s += &format!(" {} |", thousands(*v as u64)),
                    None => s += " – |",
                }
            }
            s += &format!(
                " {:.2} | {} | {:.1}x smaller |",
                m.us_per_image,
                thousands(m.file_bytes),
                m.compression
            );
            for th in &self.threads {
                match m.speedup.iter().find(|(t, _)| t == th) {
                    Some((_, v)) => s += &format!(" {v:.1}x |"),
                    None => s += " – |",
                }
            }
            s += "\n";
        }
        s
    }

    /// The FP32 engine's arithmetic rate per model: the figure that says how
    /// strong the baseline is, independent of the network's size.
    pub fn fp32_rates(&self) -> String {
        let mut s = String::new();
        for m in &self.models {
            let Some(flops) = m.flops_per_image else {
                continue;
            };
            let rates: Vec<String> = m
                .gflop_per_s
                .iter()
                .map(|(th, g)| format!("{g:.1} GFLOP/s at {th}T"))
                .collect();
            s += &format!(
                "{}: {:.2} MFLOP per image, {}\n",
                m.model,
                flops as f64 / 1e6,
                rates.join(", ")
            );
        }
        s
    }

    /// Every engine and kernel: throughput per thread count and latency.
    pub fn kernel_table(&self) -> String {
        let mut s = String::from("| model | engine | kernel |");
        for th in &self.threads {
            s += &format!(" images/s {th}T |");
        }
        s += " µs/image | accuracy |\n|---|---|---|";
        s += &"---|".repeat(self.threads.len() + 2);
        s += "\n";
        let mut seen = Vec::new();
        for r in &self.throughput {
            let key = (r.model.clone(), r.kernel.clone());
            if seen.contains(&key) {
                continue;
            }
            seen.push(key);
            s += &format!("| {} | {} | {} |", r.model, r.engine, r.kernel);
            for th in &self.threads {
                match self
                    .throughput
                    .iter()
                    .find(|x| x.model == r.model && x.kernel == r.kernel && x.threads == *th)
                {
                    Some(x) => s += &format!(" {} |", thousands(x.images_per_s as u64)),
                    None => s += " – |",
                }
            }
            let lat = self
                .latency
                .iter()
                .find(|x| x.model == r.model && x.kernel == r.kernel);
            s += &format!(
                " {} | {} |\n",
                lat.map(|x| format!("{:.2}", x.us_per_image))
                    .unwrap_or_else(|| "–".into()),
                percent(r.accuracy)
            );
        }
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plain data serialises")
    }
}
