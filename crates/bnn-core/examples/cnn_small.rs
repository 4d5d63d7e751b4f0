//! Times `cnn-small` (`c3x32,p2,c3x64,p2,d256,d10`, u8 input, "same"
//! padding, random ±1 weights) and its prefixes on the 10,000 MNIST test
//! digits, for a per-layer account that a shared machine does not blur:
//! run it under `perf stat -e task-clock` and divide the CPU time by the
//! images it prints.
//!
//! ```text
//! cargo run --release -p bnn-core --example cnn_small -- LAYERS KERNEL THREADS REPEATS [single]
//! ```
//!
//! `LAYERS` 1 runs `c3x32,p2,d10`, 2 `c3x32,p2,c3x64,p2,d10`, 3 the whole
//! network, and a path to a `.bnn` file of a 28×28 u8-input model runs that
//! model instead (trained weights fire differently from random ones, which
//! moves the sparse layers' choices); `single` runs one image at a time
//! instead of batches.

use bnn_core::conv::Padding;
use bnn_core::{InputEncoding, Kernel, RunOptions};
use bnn_testkit::models::{random_mnist_cnn, rng, CNN_SMALL};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: cnn_small LAYERS(1|2|3|FILE.bnn) KERNEL THREADS REPEATS [single]";
    if !(4..=5).contains(&args.len()) {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    let number = |i: usize| -> usize {
        args[i].parse().unwrap_or_else(|_| {
            eprintln!("{usage}: '{}' is not a number", args[i]);
            std::process::exit(2)
        })
    };
    let (threads, repeats) = (number(2), number(3));
    let kernel: Kernel = args[1].parse().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    let single = args.get(4).is_some_and(|a| a == "single");
    let model = if args[0].ends_with(".bnn") {
        let file = bnn_core::format::load(std::path::Path::new(&args[0]));
        file.unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        })
        .model
    } else {
        let (convs, dense): (&[_], &[usize]) = match number(0) {
            1 => (&CNN_SMALL[..1], &[10]),
            2 => (&CNN_SMALL, &[10]),
            3 => (&CNN_SMALL, &[256, 10]),
            _ => {
                eprintln!("{usage}");
                std::process::exit(2)
            }
        };
        random_mnist_cnn(&mut rng(3), InputEncoding::U8, convs, Padding::Same, dense)
    };
    let pixels = bnn_testkit::paths::mnist_test_images().pixels;
    let options = RunOptions {
        kernel: Some(kernel),
        threads: Some(threads),
    };
    let start = std::time::Instant::now();
    let mut checksum = 0;
    for _ in 0..repeats {
        if single {
            let mut scores = [0f32; 10];
            for image in pixels.chunks_exact(784) {
                checksum += model
                    .predict_scores_into(kernel, image, &mut scores)
                    .unwrap();
            }
        } else {
            let p = model.predict_batch_with(&pixels, options).unwrap();
            checksum += p.classes.iter().sum::<usize>();
        }
    }
    let images = repeats * pixels.len() / 784;
    let seconds = start.elapsed().as_secs_f64();
    println!(
        "{} on {kernel}, {threads} threads{}: {images} images in {seconds:.3} s wall, {:.0} images/s (checksum {checksum})",
        model.arch(),
        if single { ", one at a time" } else { "" },
        images as f64 / seconds
    );
}
