//! Shared by the export tests: random models, the shipped model and MNIST,
//! and running external tools with their output in the failure message.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use bnn_core::{BinaryDense, BitMatrix, DecisionRule, Model, Threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random model: ±1 weights, thresholds near the dots' typical range
/// (some flipped, a few beyond reach), float biases.
pub fn random_model(
    seed: u64,
    input_len: usize,
    widths: &[usize],
    rule: DecisionRule,
    input_threshold: u8,
) -> Model {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut layers = Vec::new();
    let mut n = input_len;
    for (i, &m) in widths.iter().enumerate() {
        let values: Vec<i8> = (0..m * n)
            .map(|_| if rng.gen::<bool>() { 1 } else { -1 })
            .collect();
        let w = BitMatrix::from_pm1(m, n, &values).unwrap();
        let layer = if i + 1 < widths.len() {
            let spread = (n as f64).sqrt() as i32 + 1;
            let t = (0..m)
                .map(|_| {
                    let value = match rng.gen_range(0..10) {
                        0 => rng.gen_range(-(n as i32) - 3..=n as i32 + 3),
                        _ => rng.gen_range(-spread..=spread),
                    };
                    Threshold {
                        value,
                        flip: rng.gen_range(0..4) == 0,
                    }
                })
                .collect();
            BinaryDense::hidden(w, t).unwrap()
        } else {
            // Mostly fractional biases; some integers, so that exact ties
            // between scores and scores of exactly 0 occur.
            let bias = (0..m)
                .map(|_| match rng.gen_range(0..4) {
                    0 => rng.gen_range(-4i32..=4) as f32,
                    _ => rng.gen_range(-6.0f32..6.0),
                })
                .collect();
            BinaryDense::output(w, bias).unwrap()
        };
        layers.push(layer);
        n = m;
    }
    Model::new(input_len, input_threshold, layers, rule).unwrap()
}

/// Random pixels, with runs of 0 and 255 so that inputs near the threshold
/// and at the extremes both occur.
pub fn random_pixels(seed: u64, images: usize, input_len: usize) -> Vec<u8> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..images * input_len)
        .map(|_| match rng.gen_range(0..8) {
            0 => 0,
            1 => 255,
            _ => rng.gen(),
        })
        .collect()
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shipped seed model, `weights/seed.bnn`. Its absence is a failure,
/// not a skip: the export's claims are about this model.
pub fn seed_model() -> (Model, String) {
    let path = workspace_root().join("weights/seed.bnn");
    match bnn_core::format::load(&path) {
        Ok(file) => (file.model, file.description),
        Err(e) => panic!("the shipped model is needed for this test: {e}"),
    }
}

/// The MNIST test images from `data/mnist` (fetched by `.ci/run`). Their
/// absence is a failure, not a skip.
pub fn mnist_test_images() -> bnn_data::idx::Images {
    let dir = workspace_root().join("data/mnist");
    match bnn_data::mnist::load_test(&dir) {
        Ok((images, _)) => images,
        Err(e) => panic!("MNIST is needed for this test (fetch it into data/mnist): {e}"),
    }
}

/// Runs a command in `dir`; panics with its output when it fails. Returns
/// stdout and stderr.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}

/// Whether `program` can be started at all.
pub fn available(program: &str, version_arg: &str) -> bool {
    Command::new(program).arg(version_arg).output().is_ok()
}

/// A u8-input model: a random pixel layer of `widths[0]` neurons whose
/// thresholds sit within `±spread` (the dots' range on the images it is
/// meant for; some flipped, a few beyond reach), then a random binary model
/// over its outputs (or, with one width, the pixel layer emits the scores).
pub fn random_u8_model(
    seed: u64,
    input_len: usize,
    widths: &[usize],
    rule: DecisionRule,
    spread: i32,
) -> Model {
    use bnn_core::PixelDense;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let m = widths[0];
    let values: Vec<i8> = (0..m * input_len)
        .map(|_| if rng.gen::<bool>() { 1 } else { -1 })
        .collect();
    let w = BitMatrix::from_pm1(m, input_len, &values).unwrap();
    if widths.len() == 1 {
        let bias = (0..m).map(|_| rng.gen_range(-500.0f32..500.0)).collect();
        let first = PixelDense::output(w, bias).unwrap();
        return Model::with_pixel_layer(first, vec![], rule).unwrap();
    }
    let bound = PixelDense::dot_bound(input_len) as i32;
    let t = (0..m)
        .map(|_| {
            let value = match rng.gen_range(0..10) {
                0 => rng.gen_range(-bound - 3..=bound + 3),
                _ => rng.gen_range(-spread..=spread),
            };
            Threshold {
                value,
                flip: rng.gen_range(0..4) == 0,
            }
        })
        .collect();
    let first = PixelDense::hidden(w, t).unwrap();
    let rest = random_model(seed + 1, m, &widths[1..], rule, 128);
    Model::with_pixel_layer(first, rest.layers().to_vec(), rule).unwrap()
}
