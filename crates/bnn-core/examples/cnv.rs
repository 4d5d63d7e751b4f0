//! Times FINN's CNV (`c3x64,c3x64,p2,c3x128,c3x128,p2,c3x256,c3x256,
//! d512,d512,d10`, u8 32×32×3 input, valid padding, random ±1 weights) and
//! its prefixes on random images, for a per-layer account: each prefix
//! ends in a `d10` output, so the difference between two prefixes is the
//! convolution added (plus a small output layer).
//!
//! ```text
//! cargo run --release -p bnn-core --example cnv -- KERNEL IMAGES REPEATS [PREFIX]
//! ```
//!
//! With `PREFIX` (1 to 6) only the network of that many convolutions runs,
//! for `perf stat -e cycles:u`, whose counts other load on the machine
//! does not inflate as it does wall times.
//!
//! One thread, batches through `classify_batch_with`; the best of
//! `REPEATS` runs is printed, so that other load on a shared machine
//! inflates the figures less.

use bnn_core::conv::Padding;
use bnn_core::{DecisionRule, InputEncoding, InputShape, Kernel, RunOptions};
use bnn_testkit::models::{random_cnn, rng, ConvPlan};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: cnv KERNEL IMAGES REPEATS [PREFIX]";
    if !(3..=4).contains(&args.len()) {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let kernel: Kernel = args[0].parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let number = |i: usize| -> usize {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("{usage}: '{}' is not a number", args[i]);
            std::process::exit(2)
        })
    };
    let (images, repeats) = (number(1), number(2).max(1));
    let plan = |k, channels, pool| ConvPlan { k, channels, pool };
    let convs = [
        plan(3, 64, false),
        plan(3, 64, true),
        plan(3, 128, false),
        plan(3, 128, true),
        plan(3, 256, false),
        plan(3, 256, false),
    ];
    let input = InputShape::new(32, 32, 3);
    let mut r = rng(5);
    let pixels: Vec<u8> = (0..images * 3072)
        .map(|i| ((i * 2_654_435_761) >> 13) as u8)
        .collect();
    let options = RunOptions {
        kernel: Some(kernel),
        threads: Some(1),
    };
    let only = (args.len() == 4).then(|| number(3));
    let mut before = 0.0;
    for n in 1..=convs.len() {
        if only.is_some_and(|o| o != n) {
            continue;
        }
        let dense: &[usize] = if n == convs.len() {
            &[512, 512, 10]
        } else {
            &[10]
        };
        let model = random_cnn(
            &mut r,
            input,
            InputEncoding::U8,
            &convs[..n],
            Padding::Valid,
            dense,
            DecisionRule::Scores,
        );
        let mut best = f64::INFINITY;
        for _ in 0..repeats {
            let start = std::time::Instant::now();
            std::hint::black_box(model.classify_batch_with(&pixels, options).unwrap());
            best = best.min(start.elapsed().as_secs_f64());
        }
        let us = best * 1e6 / images as f64;
        println!(
            "{:<60} {us:8.2} µs/image (+{:.2})",
            model.arch(),
            us - before
        );
        before = us;
    }
}
