//! Helpers shared by the end-to-end tests: running the `bnn` binary,
//! checking its error contract, and the files the tests read or write.
//!
//! Each test file compiles this module separately and uses only part of it
//! (hence the allowances); the helpers shared with the crates' tests live in
//! `bnn-testkit` and are re-exported here.
#![allow(dead_code, unused_imports)]

use std::path::Path;
use std::process::{Command, Output};

use bnn_core::{Model, RunOptions};
use bnn_data::idx::Images;

pub use bnn_testkit::bytes::SplitMix;
pub use bnn_testkit::files::{gzip, idx_bytes};
pub use bnn_testkit::paths::{load_seed, mnist_dir, root, seed_model, seed_npz};

/// The MNIST test images (the test fails, with instructions, if absent).
pub fn test_images() -> Images {
    bnn_testkit::paths::mnist_test_images()
}

/// The first `n` MNIST test images.
pub fn first_test_images(n: usize) -> Images {
    let all = test_images();
    Images {
        count: n,
        rows: all.rows,
        cols: all.cols,
        pixels: all.pixels[..n * all.image_len()].to_vec(),
    }
}

/// An 8-bit grayscale PNG, `width` × `height`, of `pixels`.
pub fn gray_png(width: u32, height: u32, pixels: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc.write_header().unwrap();
    w.write_image_data(pixels).unwrap();
    w.finish().unwrap();
    out
}

/// Scores the library computes for `pixels` (many images, row-major).
pub fn library_scores(model: &Model, pixels: &[u8]) -> bnn_core::Predictions {
    model
        .predict_batch_with(pixels, RunOptions::default())
        .expect("library batch prediction")
}

/// A `bnn` command run from the workspace root. `BNN_KERNEL` passes through,
/// so that CI's per-kernel reruns reach the binary (results never depend on
/// the kernel); the thread count and backtraces are the tests' own choice.
pub fn bnn() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bnn"));
    cmd.env_remove("RAYON_NUM_THREADS")
        .env_remove("RUST_BACKTRACE")
        .current_dir(root());
    cmd
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(out: Output) -> Run {
        Run {
            // A signal death has no code; -1 never matches an expected code.
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Fails unless the run exited 0; returns its stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "bnn failed\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert_no_panic(&self.stderr);
        &self.stdout
    }

    /// Checks the error contract: exit `code`, nothing on stdout, and exactly
    /// one stderr line `bnn: error: ...` holding every one of `needles`.
    pub fn fails(&self, code: i32, needles: &[&str]) -> &Run {
        assert_eq!(
            self.code, code,
            "expected exit code {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert_no_panic(&self.stderr);
        assert!(
            self.stdout.is_empty(),
            "a failed run wrote to stdout:\n{}",
            self.stdout
        );
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "expected a one-line error, got:\n{}",
            self.stderr
        );
        assert!(
            lines[0].starts_with("bnn: error: "),
            "error line lacks the `bnn: error: ` prefix: {}",
            lines[0]
        );
        for needle in needles {
            assert!(
                lines[0].contains(needle),
                "error line does not mention {needle:?}: {}",
                lines[0]
            );
        }
        self
    }

    /// A command-line parsing error (clap's own report): exit 2, nothing on
    /// stdout, an `error:` naming `needles`, and no panic.
    pub fn usage_error(&self, needles: &[&str]) -> &Run {
        assert_eq!(
            self.code, 2,
            "expected exit code 2\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        assert_no_panic(&self.stderr);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        assert!(
            self.stderr.contains("error:") || self.stderr.contains("Usage:"),
            "stderr: {}",
            self.stderr
        );
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "usage error does not mention {needle:?}: {}",
                self.stderr
            );
        }
        self
    }
}

/// Runs `bnn` with `args` to completion.
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out = bnn()
        .args(args)
        .output()
        .expect("cannot start the bnn binary");
    Run::from_output(out)
}

/// Fails if stderr shows a panic or a backtrace.
pub fn assert_no_panic(stderr: &str) {
    for bad in [
        "panicked",
        "internal error",
        "stack backtrace",
        "RUST_BACKTRACE",
    ] {
        assert!(!stderr.contains(bad), "bnn panicked:\n{stderr}");
    }
}

/// `p` as an argument string.
pub fn arg(p: &Path) -> String {
    p.display().to_string()
}

/// `n` random 28×28 images.
pub fn random_images(n: usize, seed: u64) -> Images {
    bnn_testkit::files::images(n, 28, 28, seed)
}

/// One row of `bnn classify` CSV output.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub source: String,
    pub index: usize,
    pub class: usize,
    pub scores: Vec<f32>,
}

/// The header `bnn classify` must write for a 10-class model.
pub fn csv_header() -> String {
    let mut h = String::from("source,index,class");
    for i in 0..10 {
        h.push_str(&format!(",score_{i}"));
    }
    h
}

/// Parses `bnn classify` CSV (unquoted sources only: the tests' paths have
/// no commas), checking the header.
pub fn parse_csv(text: &str) -> Vec<Row> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(csv_header().as_str()), "CSV header");
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 13, "CSV row has 13 fields: {line}");
            Row {
                source: f[0].to_string(),
                index: f[1].parse().unwrap_or_else(|_| panic!("index in {line}")),
                class: f[2].parse().unwrap_or_else(|_| panic!("class in {line}")),
                scores: f[3..]
                    .iter()
                    .map(|s| s.parse().unwrap_or_else(|_| panic!("score {s} in {line}")))
                    .collect(),
            }
        })
        .collect()
}

/// Parses `bnn classify --format json` output into the same rows.
pub fn parse_json(text: &str) -> Vec<Row> {
    let value: serde_json::Value = serde_json::from_str(text).expect("output is valid JSON");
    let items = value.as_array().expect("output is a JSON array");
    items
        .iter()
        .map(|item| {
            let obj = item.as_object().expect("each item is an object");
            let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
            keys.sort_unstable();
            let mut want: Vec<String> = ["source", "index", "class"]
                .iter()
                .map(|s| s.to_string())
                .chain((0..10).map(|i| format!("score_{i}")))
                .collect();
            want.sort_unstable();
            assert_eq!(keys, want, "JSON object keys");
            Row {
                source: obj["source"].as_str().expect("source is a string").into(),
                index: obj["index"].as_u64().expect("index is an integer") as usize,
                class: obj["class"].as_u64().expect("class is an integer") as usize,
                // The number's own digits, parsed straight to f32, so that
                // no rounding through f64 can hide or invent a difference.
                scores: (0..10)
                    .map(|i| {
                        let n = obj[&format!("score_{i}")]
                            .as_number()
                            .expect("score is a number");
                        n.to_string().parse::<f32>().expect("score parses as f32")
                    })
                    .collect(),
            }
        })
        .collect()
}

/// Checks rows against the library: every class equals `model.predict`,
/// every score is bit-identical to the batch scores.
pub fn assert_rows_match(rows: &[Row], model: &Model, pixels: &[u8]) {
    let per = model.input_len();
    assert_eq!(rows.len() * per, pixels.len(), "one row per image");
    let expected = library_scores(model, pixels);
    for (i, row) in rows.iter().enumerate() {
        let image = &pixels[i * per..(i + 1) * per];
        assert_eq!(
            row.class,
            model.predict(image).unwrap(),
            "row {i} ({}:{}): class differs from Model::predict",
            row.source,
            row.index
        );
        let want = expected.scores_of(i);
        let same = row
            .scores
            .iter()
            .zip(want)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(
            same && row.scores.len() == want.len(),
            "row {i}: scores {:?} differ from the library's {:?}",
            row.scores,
            want
        );
    }
}

/// A small MNIST-shaped data set (random images and labels, `train` and
/// `test` of them) in a new directory `dir/mnist`, under the standard raw
/// names: enough for `train`, `bench` and `eval` to run in seconds without
/// the real data set.
pub fn small_mnist(dir: &Path, train: usize, test: usize) -> std::path::PathBuf {
    let data = dir.join("mnist");
    std::fs::create_dir(&data).unwrap();
    for (prefix, n, seed) in [("train", train, 1), ("t10k", test, 2)] {
        let images = random_images(n, seed);
        let labels = bnn_testkit::files::labels(n, seed);
        bnn_testkit::files::write(
            &data.join(format!("{prefix}-images-idx3-ubyte")),
            &idx_bytes(0x803, [n as u32, 28, 28], &images.pixels),
        );
        bnn_testkit::files::write(
            &data.join(format!("{prefix}-labels-idx1-ubyte")),
            &idx_bytes(0x801, [n as u32], &labels.labels),
        );
    }
    data
}
