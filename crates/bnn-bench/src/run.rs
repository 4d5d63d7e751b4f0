//! The measurement loop.

use std::sync::Arc;
use std::time::Instant;

use bnn_core::{Kernel, Model, RunOptions};
use bnn_fp32::Fp32Model;

use crate::report::{BenchReport, Latency, ModelSummary, Throughput};

/// An engine under test.
#[derive(Clone)]
pub enum Engine {
    /// The bit-packed engine with one kernel.
    OneBit(Arc<Model>, Kernel),
    /// The FP32 engine (sgemm through matrixmultiply).
    Fp32(Arc<Fp32Model>),
}

impl Engine {
    /// Inputs per image the engine's model takes.
    fn input_len(&self) -> usize {
        match self {
            Engine::OneBit(m, _) => m.input_len(),
            Engine::Fp32(m) => m.input_len(),
        }
    }

    fn kernel_name(&self) -> String {
        match self {
            Engine::OneBit(_, k) => k.name().to_string(),
            Engine::Fp32(_) => "sgemm".to_string(),
        }
    }

    /// Classifies the batch on the current rayon pool.
    fn batch(&self, pixels: &[u8]) -> Vec<usize> {
        match self {
            Engine::OneBit(m, k) => m
                .classify_batch_with(
                    pixels,
                    RunOptions {
                        kernel: Some(*k),
                        threads: None,
                    },
                )
                .expect("run checked the images and the kernel"),
            Engine::Fp32(m) => m
                .predict_batch(pixels, None)
                .expect("run checked the images"),
        }
    }

    /// Classifies images one at a time (the single-image path).
    fn singles(&self, pixels: &[u8], per: usize) -> usize {
        let mut sum = 0;
        match self {
            Engine::OneBit(m, k) => {
                let mut scores = vec![0f32; m.num_classes()];
                for image in pixels.chunks_exact(per) {
                    sum += m
                        .predict_scores_into(*k, image, &mut scores)
                        .expect("run checked the kernel");
                }
            }
            Engine::Fp32(m) => {
                let mut scores = vec![0f32; m.num_classes()];
                for image in pixels.chunks_exact(per) {
                    sum += m.predict_scores_into(image, &mut scores);
                }
            }
        }
        sum
    }
}

/// How long an engine runs, untimed, right before each of its timed runs.
///
/// A core that has just run other code (another engine, or nothing) runs
/// the next engine slowly for a few milliseconds, and a timed batch of the
/// 1-bit engine is short enough to fall inside that ramp: without this
/// every interleaved run would be measured below what a long stream of
/// batches gets (docs/PERFORMANCE.md, "Why each timed run is warmed",
/// has the ramp as measured). Each engine is warmed the same way, so the
/// ratios stay fair.
pub const WARM_UP: std::time::Duration = std::time::Duration::from_millis(25);

/// Runs `work` on successive slices of `images` (of `per` bytes each, up
/// to 1,000 at a time, round and round) until [`WARM_UP`] has passed.
fn warm_up(images: &[u8], per: usize, mut work: impl FnMut(&[u8])) {
    let start = Instant::now();
    let slices = images.chunks(1000 * per);
    for slice in slices.cycle() {
        if start.elapsed() >= WARM_UP {
            break;
        }
        work(slice);
    }
}

/// A model to measure: its 1-bit kernels or its FP32 engine, and what it
/// costs on disk.
pub struct Candidate {
    /// Display name, e.g. the file name.
    pub name: String,
    /// "1-bit" or "fp32".
    pub engine_kind: String,
    /// How pixels enter the network: `binary>=T`, `u8` or `float`.
    pub input: String,
    /// Layer widths, input first.
    pub shape: Vec<usize>,
    /// The layers in the architecture grammar (`c3x32,p2,...,d10`), shown
    /// instead of the widths for a network with convolutions.
    pub arch: Option<String>,
    /// The engines to time: one per kernel for 1-bit models.
    pub engines: Vec<Engine>,
    /// Bytes of the model file.
    pub file_bytes: u64,
    /// Bytes of an FP32 model file of the same topology.
    pub fp32_file_bytes: u64,
    /// The candidate (by name) whose FP32 speed this one is compared with:
    /// the same topology run by the FP32 engine.
    pub compare_with: Option<String>,
}

/// What to measure.
pub struct Config {
    /// Thread counts for the batch runs.
    pub threads: Vec<usize>,
    /// Timed repetitions per engine (after one warm-up run, and each
    /// right after [`WARM_UP`] of the same engine's work).
    pub repeat: usize,
    /// Images for the single-image latency runs.
    pub single_images: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn accuracy(classes: &[usize], labels: &[u8]) -> f64 {
    let ok = classes
        .iter()
        .zip(labels)
        .filter(|(&c, &l)| c == l as usize)
        .count();
    100.0 * ok as f64 / labels.len().max(1) as f64
}

/// Refuses what would make the measurement meaningless or impossible
/// before any timing starts: nothing to repeat, no images, images of
/// another size than a model takes, labels that are not one an image, a
/// kernel this CPU lacks.
fn check(
    candidates: &[Candidate],
    pixels: &[u8],
    labels: Option<&[u8]>,
    per_image: usize,
    config: &Config,
) -> Result<(), String> {
    if config.repeat == 0 {
        return Err("repeat must be at least 1".into());
    }
    if config.single_images == 0 {
        return Err("the single-image run needs at least 1 image".into());
    }
    if config.threads.is_empty() || config.threads.contains(&0) {
        return Err("thread counts must be at least 1".into());
    }
    if pixels.is_empty() {
        return Err("no images to measure".into());
    }
    let images = match labels {
        Some(labels) => labels.len(),
        None => pixels.len() / per_image.max(1),
    };
    if per_image == 0 || pixels.len() != images.saturating_mul(per_image) {
        return Err(format!(
            "{} pixel bytes are not {images} images of {per_image} pixels",
            pixels.len(),
        ));
    }
    for c in candidates {
        for e in &c.engines {
            if e.input_len() != per_image {
                return Err(format!(
                    "{} takes {} inputs but the images have {per_image} pixels",
                    c.name,
                    e.input_len()
                ));
            }
            if let Engine::OneBit(_, k) = e {
                k.require().map_err(|err| format!("{}: {err}", c.name))?;
            }
        }
    }
    Ok(())
}

/// Runs every engine of every candidate, interleaved, and summarises.
/// `labels`, one an image, give each run's accuracy; without them (images
/// that are no data set's, such as random ones) there is none to give.
/// `data` says what the images are, for the report.
pub fn run(
    candidates: &[Candidate],
    (pixels, labels): (&[u8], Option<&[u8]>),
    per_image: usize,
    data: &str,
    config: &Config,
    log: &mut dyn FnMut(&str),
) -> Result<BenchReport, String> {
    check(candidates, pixels, labels, per_image, config)?;
    let images = pixels.len() / per_image;
    // (candidate index, engine)
    let mut engines: Vec<(usize, Engine)> = Vec::new();
    for (i, c) in candidates.iter().enumerate() {
        engines.extend(c.engines.iter().cloned().map(|e| (i, e)));
    }
    let mut throughput = Vec::new();
    for &threads in &config.threads {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| format!("cannot start {threads} threads: {e}"))?;
        log(&format!(
            "batch of {images} images, {threads} thread(s), {} engines",
            engines.len()
        ));
        let mut times = vec![Vec::new(); engines.len()];
        let mut acc = vec![None; engines.len()];
        pool.install(|| {
            for (j, (_, e)) in engines.iter().enumerate() {
                let classes = e.batch(pixels);
                acc[j] = labels.map(|labels| accuracy(&classes, labels));
            }
            for _ in 0..config.repeat {
                for (j, (_, e)) in engines.iter().enumerate() {
                    warm_up(pixels, per_image, |slice| {
                        std::hint::black_box(e.batch(slice));
                    });
                    let start = Instant::now();
                    std::hint::black_box(e.batch(pixels));
                    times[j].push(start.elapsed().as_secs_f64());
                }
            }
        });
        for (j, (i, e)) in engines.iter().enumerate() {
            throughput.push(Throughput {
                model: candidates[*i].name.clone(),
                engine: candidates[*i].engine_kind.clone(),
                kernel: e.kernel_name(),
                threads,
                images_per_s: images as f64 / median(times[j].clone()),
                accuracy: acc[j],
            });
        }
    }

    let single = &pixels[..config.single_images.min(images) * per_image];
    let count = single.len() / per_image;
    log(&format!("single-image latency, {count} images, 1 thread"));
    let mut times = vec![Vec::new(); engines.len()];
    for (_, e) in &engines {
        std::hint::black_box(e.singles(single, per_image));
    }
    for _ in 0..config.repeat {
        for (j, (_, e)) in engines.iter().enumerate() {
            warm_up(single, per_image, |slice| {
                std::hint::black_box(e.singles(slice, per_image));
            });
            let start = Instant::now();
            std::hint::black_box(e.singles(single, per_image));
            times[j].push(start.elapsed().as_secs_f64() / count as f64);
        }
    }
    let latency: Vec<Latency> = engines
        .iter()
        .zip(times)
        .map(|((i, e), t)| Latency {
            model: candidates[*i].name.clone(),
            engine: candidates[*i].engine_kind.clone(),
            kernel: e.kernel_name(),
            us_per_image: median(t) * 1e6,
        })
        .collect();

    let summaries = candidates
        .iter()
        .map(|c| ModelSummary::from_runs(c, &throughput, &latency, &config.threads))
        .collect();
    Ok(BenchReport {
        images,
        data: data.to_string(),
        repeat: config.repeat,
        threads: config.threads.clone(),
        throughput,
        latency,
        models: summaries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_core::bits::BitMatrix;
    use bnn_core::{BinaryDense, DecisionRule};

    fn model(inputs: usize) -> Arc<Model> {
        let w = BitMatrix::from_pm1(2, inputs, &vec![1i8; 2 * inputs]).unwrap();
        let layer = BinaryDense::output(w, vec![0.0, 1.0]).unwrap();
        Arc::new(Model::new(inputs, 128, vec![layer], DecisionRule::Scores).unwrap())
    }

    fn candidate(name: &str, inputs: usize) -> Candidate {
        Candidate {
            name: name.into(),
            engine_kind: "1-bit".into(),
            input: "binary>=128".into(),
            shape: vec![inputs, 2],
            arch: None,
            engines: vec![Engine::OneBit(model(inputs), Kernel::Scalar)],
            file_bytes: 1,
            fp32_file_bytes: 1,
            compare_with: None,
        }
    }

    fn config(repeat: usize) -> Config {
        Config {
            threads: vec![1],
            repeat,
            single_images: 2,
        }
    }

    #[test]
    fn bad_settings_are_errors_not_panics() {
        let pixels = [0u8; 8];
        let labels = [0u8, 1];
        let c = [candidate("a", 4)];
        let run = |c: &[Candidate], px: &[u8], labels: &[u8], config: &Config| {
            run(c, (px, Some(labels)), 4, "test", config, &mut |_| {}).map(|r| r.repeat)
        };
        assert_eq!(run(&c, &pixels, &labels, &config(1)), Ok(1));
        assert_eq!(
            run(&c, &pixels, &labels, &config(0)),
            Err("repeat must be at least 1".into())
        );
        let mixed = [candidate("a", 4), candidate("b", 5)];
        assert_eq!(
            run(&mixed, &pixels, &labels, &config(1)),
            Err("b takes 5 inputs but the images have 4 pixels".into())
        );
        assert_eq!(
            run(&c, &pixels[..7], &labels, &config(1)),
            Err("7 pixel bytes are not 2 images of 4 pixels".into())
        );
        assert_eq!(
            run(&c, &[], &[], &config(1)),
            Err("no images to measure".into())
        );
        let mut no_threads = config(1);
        no_threads.threads = vec![0];
        assert_eq!(
            run(&c, &pixels, &labels, &no_threads),
            Err("thread counts must be at least 1".into())
        );
        no_threads.threads = vec![];
        assert_eq!(
            run(&c, &pixels, &labels, &no_threads),
            Err("thread counts must be at least 1".into())
        );
        let mut no_single = config(1);
        no_single.single_images = 0;
        assert_eq!(
            run(&c, &pixels, &labels, &no_single),
            Err("the single-image run needs at least 1 image".into())
        );
    }

    /// Without labels the images are still timed, and every accuracy is
    /// absent rather than a number no labels gave.
    #[test]
    fn images_without_labels_have_no_accuracy() {
        let pixels = [7u8; 12];
        let c = [candidate("a", 4)];
        let report = run(&c, (&pixels, None), 4, "random", &config(1), &mut |_| {}).unwrap();
        assert_eq!((report.images, report.data.as_str()), (3, "random"));
        assert!(report.throughput.iter().all(|t| t.accuracy.is_none()));
        assert_eq!(report.models[0].accuracy, None);
        let table = report.summary_table();
        assert!(
            table.contains("| a | 1-bit | 4-2 | binary>=128 | n/a |"),
            "{table}"
        );
        assert!(report.kernel_table().contains("| n/a |"));
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert!(json["models"][0]["accuracy"].is_null());
        assert_eq!(json["data"], "random");
        let e = run(
            &c,
            (&pixels[..11], None),
            4,
            "random",
            &config(1),
            &mut |_| {},
        );
        assert_eq!(
            e.unwrap_err(),
            "11 pixel bytes are not 2 images of 4 pixels"
        );
    }
}
