//! Downloads and verifies MNIST into a directory (default `data/mnist`),
//! then loads it as a check.
//!
//! ```text
//! cargo run -p bnn-data --example fetch_mnist -- [DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("data/mnist"), PathBuf::from);
    let result = bnn_data::fetch::fetch(&dir, &mut |m| eprintln!("{m}"))
        .and_then(|outcome| Ok((outcome, bnn_data::mnist::load(&dir)?)));
    match result {
        Ok((outcome, mnist)) => {
            println!(
                "{outcome:?}: {} training and {} test images in {}",
                mnist.train_images.count,
                mnist.test_images.count,
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
