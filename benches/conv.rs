//! Criterion benches of binary CNNs: the `cnn-small` shape
//! (`c3x32,p2,c3x64,p2,d256,d10`, u8 input, "same" padding, random ±1
//! weights) on the MNIST test digits, per kernel and with 1 and 2 threads;
//! each layer's share, timed as the difference between growing prefixes of
//! the network; single images; and the imported MNIST CNN fixture (zero
//! padding) beside its twin padded with −1. Group names carry the sizes.

use bnn_core::conv::Padding;
use bnn_core::kernel::available;
use bnn_core::{InputEncoding, Model, RunOptions};
use bnn_testkit::models::{minus_one_twin, random_mnist_cnn, rng, ConvPlan, CNN_SMALL};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const IMAGES: usize = 2000;

fn cnn(plans: &[ConvPlan], dense: &[usize], encoding: InputEncoding) -> Model {
    random_mnist_cnn(&mut rng(3), encoding, plans, Padding::Same, dense)
}

/// The first `IMAGES` MNIST test digits; the bench fails, naming the fix,
/// without them.
fn digits() -> Vec<u8> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist");
    let (images, _) = bnn_data::mnist::load_test(&dir).unwrap_or_else(|e| {
        panic!("{e}: run `cargo run --release -- fetch` in the workspace root first")
    });
    images.pixels[..IMAGES * 784].to_vec()
}

fn batch(c: &mut Criterion, group: &str, model: &Model, pixels: &[u8], threads: &[usize]) {
    let mut g = c.benchmark_group(group);
    g.throughput(Throughput::Elements(IMAGES as u64));
    g.sample_size(10);
    for &t in threads {
        for kernel in available() {
            let opts = RunOptions {
                kernel: Some(kernel),
                threads: Some(t),
            };
            let id = BenchmarkId::new(kernel.name(), format!("{t}t"));
            g.bench_function(id, |bench| {
                bench.iter(|| model.predict_batch_with(black_box(pixels), opts).unwrap())
            });
        }
    }
    g.finish();
}

/// The whole `cnn-small` network, u8 and binary input.
fn cnn_small(c: &mut Criterion) {
    let pixels = digits();
    let model = cnn(&CNN_SMALL, &[256, 10], InputEncoding::U8);
    batch(
        c,
        "cnn-small-u8-28x28x1/batch2000",
        &model,
        &pixels,
        &[1, 2],
    );
    let binary = cnn(
        &CNN_SMALL,
        &[256, 10],
        InputEncoding::Binary { threshold: 128 },
    );
    batch(
        c,
        "cnn-small-binary-28x28x1/batch2000",
        &binary,
        &pixels,
        &[1],
    );
}

/// Growing prefixes of `cnn-small`, one thread: c3x32,p2 then d10; both
/// convolutions then d10; the whole network. Differences are each layer's
/// time (less the small d10 head).
fn cnn_small_layers(c: &mut Criterion) {
    let pixels = digits();
    let prefixes = [
        (
            "1-c3x32-p2-d10",
            cnn(&CNN_SMALL[..1], &[10], InputEncoding::U8),
        ),
        (
            "2-c3x32-p2-c3x64-p2-d10",
            cnn(&CNN_SMALL, &[10], InputEncoding::U8),
        ),
        (
            "3-c3x32-p2-c3x64-p2-d256-d10",
            cnn(&CNN_SMALL, &[256, 10], InputEncoding::U8),
        ),
    ];
    for (name, model) in &prefixes {
        batch(
            c,
            &format!("cnn-small-prefix/{name}/batch2000"),
            model,
            &pixels,
            &[1],
        );
    }
}

/// One image at a time through `cnn-small`, per kernel.
fn cnn_small_single(c: &mut Criterion) {
    let pixels = digits();
    let model = cnn(&CNN_SMALL, &[256, 10], InputEncoding::U8);
    let mut g = c.benchmark_group("cnn-small-u8-28x28x1/single");
    g.throughput(Throughput::Elements(1));
    let mut scores = [0f32; 10];
    for kernel in available() {
        g.bench_function(kernel.name(), |bench| {
            let mut i = 0;
            bench.iter(|| {
                let image = &pixels[(i % IMAGES) * 784..][..784];
                i += 1;
                model
                    .predict_scores_into(kernel, black_box(image), &mut scores)
                    .unwrap()
            })
        });
    }
    g.finish();
}

/// The imported MNIST CNN (`tests/fixtures/onnx/mnist-cnn.onnx.gz`, zero
/// padding on its binary maps) and its twin padded with −1, the engine's
/// own padding, with the same weights and shapes
/// ([`minus_one_twin`]), one thread, per kernel: what zero padding costs
/// (docs/IMPORT.md, "Speed").
fn imported_zero_padding(c: &mut Criterion) {
    use std::io::Read;
    let pixels = digits();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx/mnist-cnn.onnx.gz");
    let mut onnx = Vec::new();
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut onnx)
        .unwrap();
    let zero = bnn_onnx::import_bytes(&onnx, None).unwrap().model;
    let twin = minus_one_twin(&zero).expect("the fixture pads with zero");
    let mut g = c.benchmark_group("imported-mnist-cnn/batch2000");
    g.throughput(Throughput::Elements(IMAGES as u64));
    g.sample_size(20);
    for kernel in available() {
        let opts = RunOptions {
            kernel: Some(kernel),
            threads: Some(1),
        };
        for (name, model) in [("zero", &zero), ("minus-one", &twin)] {
            g.bench_function(BenchmarkId::new(name, kernel.name()), |bench| {
                bench.iter(|| model.predict_batch_with(black_box(&pixels), opts).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    cnn_small,
    cnn_small_layers,
    cnn_small_single,
    imported_zero_padding
);
criterion_main!(benches);
