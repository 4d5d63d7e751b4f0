//! Criterion benches: the XNOR-popcount kernels per ISA, and 1-bit against
//! FP32 for 784-512-10 (batch of 10,000 images with 1 and 2 threads, and
//! single images), the FP32 engine running the same ±1 weights. Group names
//! carry the sizes so that reports read on their own; `bnn bench` tells the
//! same story on MNIST with accuracies.

use bnn_core::kernel::available;
use bnn_core::{BinaryDense, BitMatrix, DecisionRule, Model, RunOptions, Threshold};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const IMAGES: usize = 10_000;

fn random_model(rng: &mut ChaCha8Rng, shape: &[usize]) -> Model {
    let mut layers = Vec::new();
    for (i, pair) in shape.windows(2).enumerate() {
        let (n, m) = (pair[0], pair[1]);
        let values: Vec<i8> = (0..n * m)
            .map(|_| if rng.gen::<bool>() { 1 } else { -1 })
            .collect();
        let w = BitMatrix::from_pm1(m, n, &values).unwrap();
        layers.push(if i + 2 < shape.len() {
            let t = (0..m)
                .map(|_| Threshold::at_least(rng.gen_range(-8..=8)))
                .collect();
            BinaryDense::hidden(w, t).unwrap()
        } else {
            BinaryDense::output(w, (0..m).map(|_| rng.gen_range(-4.0..4.0)).collect()).unwrap()
        });
    }
    Model::new(shape[0], 128, layers, DecisionRule::Scores).unwrap()
}

fn dot_kernels(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for bits in [512usize, 784] {
        let words = bits.div_ceil(64);
        let a: Vec<u64> = (0..words).map(|_| rng.gen()).collect();
        let b: Vec<u64> = (0..words).map(|_| rng.gen()).collect();
        let mut g = c.benchmark_group(format!("dot/{bits}bits"));
        g.throughput(Throughput::Elements(1));
        for k in available() {
            g.bench_function(k.name(), |bench| {
                bench.iter(|| k.dot(black_box(&a), black_box(&b), bits))
            });
        }
        g.finish();
    }
}

fn batch_784_512_10(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let model = random_model(&mut rng, &[784, 512, 10]);
    let fp32 = bnn_fp32::from_binary(&model);
    let pixels: Vec<u8> = (0..IMAGES * 784).map(|_| rng.gen()).collect();
    let mut g = c.benchmark_group("784-512-10/batch10000");
    g.throughput(Throughput::Elements(IMAGES as u64));
    g.sample_size(20);
    for threads in [1usize, 2] {
        // One pool per thread count, built outside the timed loop.
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        for k in available() {
            let opts = RunOptions {
                kernel: Some(k),
                threads: None,
            };
            let id = BenchmarkId::new(format!("1bit-{}", k.name()), format!("{threads}t"));
            g.bench_function(id, |bench| {
                bench.iter(|| {
                    pool.install(|| model.predict_batch_with(black_box(&pixels), opts).unwrap())
                })
            });
        }
        let id = BenchmarkId::new("fp32-sgemm", format!("{threads}t"));
        g.bench_function(id, |bench| {
            bench.iter(|| pool.install(|| fp32.predict_batch(black_box(&pixels), None).unwrap()))
        });
    }
    g.finish();
}

fn single_784_512_10(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let model = random_model(&mut rng, &[784, 512, 10]);
    let fp32 = bnn_fp32::from_binary(&model);
    let image: Vec<u8> = (0..784).map(|_| rng.gen()).collect();
    let mut g = c.benchmark_group("784-512-10/single");
    g.throughput(Throughput::Elements(1));
    let mut scores = [0f32; 10];
    for k in available() {
        g.bench_function(format!("1bit-{}", k.name()), |bench| {
            bench.iter(|| model.predict_scores_into(k, black_box(&image), &mut scores))
        });
    }
    g.bench_function("fp32-sgemm", |bench| {
        bench.iter(|| fp32.predict_scores_into(black_box(&image), &mut scores))
    });
    g.finish();
}

criterion_group!(benches, dot_kernels, batch_784_512_10, single_784_512_10);
criterion_main!(benches);
