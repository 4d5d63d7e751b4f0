//! Criterion benches: the XNOR-popcount kernels per ISA, and 1-bit against
//! FP32 for 784-512-10 (batch of 10,000 images with 1 and 2 threads, and
//! single images), the FP32 engine running the same ±1 weights. Group names
//! carry the sizes so that reports read on their own; `bnn bench` tells the
//! same story on MNIST with accuracies.
//!
//! The `u8-784-512-10` groups time the u8-input first layer on the MNIST
//! test digits (their zero pixels are what the sparse kernels skip), against
//! the same weights on dense random pixels (every pixel group non-zero: the
//! cost of a dense sum) and against bit planes (8 binary passes, one per bit
//! of the pixel, through the fastest XNOR-popcount kernel).

use bnn_core::kernel::available;
use bnn_core::{BinaryDense, BitMatrix, DecisionRule, LayerMode, Model, RunOptions, Threshold};
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

/// The MNIST test digits; the bench fails, naming the fix, without them.
fn mnist_test_pixels() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let (images, _) = bnn_data::mnist::load_test(&dir).unwrap_or_else(|e| {
        panic!("{e}: run `cargo run --release -- fetch` in the workspace root first")
    });
    images.pixels
}

/// Σ p·w over u8 pixels by bit planes: plane `b` holds bit `b` of every
/// pixel, and with `d_b` its ±1 dot against the weights,
/// `Σ_i p_bi·w_i = |W| − (n − d_b)/2` (`|W|` = the +1 weights), so
/// `Σ p·w = Σ_b 2^b·(|W| − (n − d_b)/2)`: 8 binary layer passes per image.
fn bit_plane_dots(
    layer: &BinaryDense,
    plus: &[i32],
    kernel: bnn_core::Kernel,
    pixels: &[u8],
    planes: &mut Vec<u64>,
    dots: &mut Vec<i32>,
    out: &mut [i32],
) {
    let n = layer.inputs();
    let rows = pixels.len() / n;
    let wpr = n.div_ceil(64);
    planes.clear();
    planes.resize(8 * rows * wpr, 0);
    for (r, image) in pixels.chunks_exact(n).enumerate() {
        for b in 0..8 {
            let words = &mut planes[(b * rows + r) * wpr..][..wpr];
            kernel.pack_pixels(image, 1 << b, words);
            for (i, &p) in image.iter().enumerate() {
                // pack_pixels tests p >= 2^b; a plane needs bit b itself.
                if p >> b & 1 == 0 {
                    words[i / 64] &= !(1 << (i % 64));
                }
            }
        }
    }
    let m = layer.outputs();
    dots.resize(8 * rows * m, 0);
    layer.dots(kernel, planes, 8 * rows, dots);
    out.fill(0);
    for b in 0..8 {
        for (o, d) in out
            .chunks_exact_mut(m)
            .zip(dots[b * rows * m..].chunks_exact(m))
        {
            for ((o, &d), &w) in o.iter_mut().zip(d).zip(plus) {
                *o += (w - (n as i32 - d) / 2) << b;
            }
        }
    }
}

fn u8_first_layer(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let binary = random_model(&mut rng, &[784, 512, 10]);
    let model = bnn_bench::u8_stand_in(&binary).unwrap();
    let first = model.pixel_layer().unwrap();
    let digits = mnist_test_pixels();
    let images = 2000;
    let digits = &digits[..images * 784];
    let dense: Vec<u8> = (0..images * 784).map(|_| rng.gen_range(1..=255)).collect();
    let nonzero_pixels = digits.iter().filter(|&&p| p != 0).count();
    let nonzero_groups = digits
        .chunks_exact(4)
        .filter(|g| g.iter().any(|&p| p != 0))
        .count();
    eprintln!(
        "MNIST test digits: {:.1} % non-zero pixels, {:.1} % non-zero groups of 4",
        100.0 * nonzero_pixels as f64 / digits.len() as f64,
        400.0 * nonzero_groups as f64 / digits.len() as f64
    );
    let mut out = vec![0i32; images * 512];
    let mut g = c.benchmark_group("u8-784-512/first-layer-2000");
    g.throughput(Throughput::Elements(images as u64));
    g.sample_size(10);
    for k in available() {
        g.bench_function(format!("sparse-{}-mnist", k.name()), |bench| {
            bench.iter(|| first.dots(k, black_box(digits), images, &mut out))
        });
        g.bench_function(format!("dense-{}-random", k.name()), |bench| {
            bench.iter(|| first.dots(k, black_box(&dense), images, &mut out))
        });
    }
    // Bit planes through the binary layer of the same weights.
    let layer = BinaryDense::hidden(first.weights(), vec![Threshold::at_least(0); 512]).unwrap();
    let plus: Vec<i32> = first
        .weights()
        .to_pm1()
        .chunks_exact(784)
        .map(|row| row.iter().filter(|&&w| w > 0).count() as i32)
        .collect();
    let (mut planes, mut dots) = (Vec::new(), Vec::new());
    let mut check = vec![0i32; images * 512];
    first.dots(available()[0], digits, images, &mut check);
    bit_plane_dots(
        &layer,
        &plus,
        available()[0],
        digits,
        &mut planes,
        &mut dots,
        &mut out,
    );
    assert_eq!(out, check, "bit planes compute the same dots");
    for k in available() {
        g.bench_function(format!("planes-{}-mnist", k.name()), |bench| {
            bench.iter(|| {
                bit_plane_dots(
                    &layer,
                    &plus,
                    k,
                    black_box(digits),
                    &mut planes,
                    &mut dots,
                    &mut out,
                )
            })
        });
    }
    g.finish();

    // The whole model, beside the binary-input model and the FP32 twin.
    let twin = bnn_fp32::from_binary(&model);
    let all = mnist_test_pixels();
    let mut g = c.benchmark_group("u8-784-512-10/batch10000");
    g.throughput(Throughput::Elements(IMAGES as u64));
    g.sample_size(10);
    for threads in [1usize, 2] {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let opts = RunOptions {
            kernel: Some(available()[0]),
            threads: None,
        };
        let t = format!("{threads}t");
        g.bench_function(BenchmarkId::new("u8-1bit", &t), |bench| {
            bench.iter(|| pool.install(|| model.predict_batch_with(black_box(&all), opts).unwrap()))
        });
        g.bench_function(BenchmarkId::new("binary-1bit", &t), |bench| {
            bench
                .iter(|| pool.install(|| binary.predict_batch_with(black_box(&all), opts).unwrap()))
        });
        g.bench_function(BenchmarkId::new("u8-fp32-twin", &t), |bench| {
            bench.iter(|| pool.install(|| twin.predict_batch(black_box(&all), None).unwrap()))
        });
    }
    g.finish();
}

/// A hidden layer's bits for a chunk of 64 rows at a given share of 1
/// bits, by the dense and the sparse kernel: where the two cross is the
/// rule `LayerMode::Auto` follows (`bnn_core::sparse`).
fn sparse_against_dense(c: &mut Criterion) {
    const ROWS: usize = 64;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    for (n, m) in [(784usize, 512usize), (784, 1024), (1024, 512), (1024, 1024)] {
        let model = random_model(&mut rng, &[n, m, 10]);
        let layer = &model.layers()[0];
        for percent in [5u32, 13, 25, 50] {
            let mut xs = BitMatrix::new(ROWS, n);
            for r in 0..ROWS {
                for i in 0..n {
                    xs.set(r, i, rng.gen_ratio(percent, 100));
                }
            }
            let mut out = vec![0u64; ROWS * layer.output_words()];
            let mut g = c.benchmark_group(format!("sparse/{n}-{m}/{percent}%"));
            g.throughput(Throughput::Elements(ROWS as u64));
            g.sample_size(10);
            g.warm_up_time(std::time::Duration::from_millis(300));
            g.measurement_time(std::time::Duration::from_secs(1));
            for k in available() {
                for mode in [LayerMode::Dense, LayerMode::Sparse] {
                    g.bench_function(format!("{}-{}", k.name(), mode.name()), |bench| {
                        bench.iter(|| {
                            layer.fire_with(k, mode, black_box(xs.words()), ROWS, &mut out)
                        })
                    });
                }
            }
            g.finish();
        }
    }
}

criterion_group!(
    benches,
    dot_kernels,
    batch_784_512_10,
    single_784_512_10,
    u8_first_layer,
    sparse_against_dense
);
criterion_main!(benches);
