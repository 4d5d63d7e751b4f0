//! Writes random models whose widths are not multiples of the kernels'
//! vectors into a directory, for `web/test/node-test.mjs`: the shipped
//! models are all 256 neurons wide or more in whole vectors, so these reach
//! the simd128 kernel's partial vectors and padding neurons (a hidden layer
//! of 130 neurons is 3 words, one past the 2-word vector).
//!
//!     cargo run --release -p bnn-wasm --example odd_models -- DIR

use std::path::PathBuf;

use bnn_core::{format, DecisionRule, InputEncoding, Padding};
use bnn_testkit::models::{
    random_mnist_cnn, random_model, random_u8_model, rng, u8_spread, ConvPlan,
};

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).expect("usage: odd_models DIR"));
    std::fs::create_dir_all(&dir).expect("output directory");
    let mut r = rng(20);
    let convs = [
        ConvPlan {
            k: 3,
            channels: 20,
            pool: true,
        },
        ConvPlan {
            k: 3,
            channels: 24,
            pool: true,
        },
    ];
    let models = [
        (
            "odd-binary.bnn",
            random_model(&mut r, &[784, 100, 130, 70, 10], DecisionRule::Scores, 128),
        ),
        (
            "odd-u8.bnn",
            random_u8_model(
                &mut r,
                &[784, 40, 30, 10],
                DecisionRule::Scores,
                u8_spread(784),
            ),
        ),
        (
            "odd-cnn-u8.bnn",
            random_mnist_cnn(&mut r, InputEncoding::U8, &convs, Padding::Same, &[96, 10]),
        ),
        (
            "odd-cnn-binary.bnn",
            random_mnist_cnn(
                &mut r,
                InputEncoding::Binary { threshold: 100 },
                &convs,
                Padding::Valid,
                &[130, 10],
            ),
        ),
    ];
    for (name, model) in models {
        let path = dir.join(name);
        format::save(&model, "random weights, for tests", &path).expect("model written");
        println!("{}", path.display());
    }
}
