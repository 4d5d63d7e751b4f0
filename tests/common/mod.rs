//! Helpers shared by the end-to-end tests: running the `bnn` binary,
//! checking its error contract, and the files the tests read or write.
//!
//! Each test file compiles this module separately and uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bnn_core::{Model, RunOptions};
use bnn_data::idx::Images;

/// The workspace root, where `weights/`, `data/` and the seed live relative to.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The committed seed model.
pub fn seed_model() -> PathBuf {
    root().join("weights/seed.bnn")
}

/// The seed project's NumPy weights, shipped byte-identical in `weights/seed/`.
pub fn seed_npz() -> PathBuf {
    let path = root().join("weights/seed/bnn_weights_1bit.npz");
    assert!(
        path.is_file(),
        "{}: the seed weights are missing; the import tests need them",
        path.display()
    );
    path
}

/// The MNIST directory the tests use. A missing data set fails the test
/// (never skips it) with the command that fixes it.
pub fn mnist_dir() -> PathBuf {
    let dir = root().join("data/mnist");
    let names = [
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
    ];
    let missing: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !dir.join(n).is_file() && !dir.join(format!("{n}.gz")).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "MNIST is missing from {} (no {}): run `cargo run --release -- fetch` in the workspace root first",
        dir.display(),
        missing.join(", ")
    );
    dir
}

/// The MNIST test images (the test fails, with instructions, if absent).
pub fn test_images() -> Images {
    let (images, _labels) = bnn_data::mnist::load_test(&mnist_dir())
        .unwrap_or_else(|e| panic!("cannot load the MNIST test set: {e}"));
    images
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

/// The seed model, loaded in-process as the oracle for the binary's output.
pub fn load_seed() -> Model {
    bnn_core::format::load(&seed_model())
        .unwrap_or_else(|e| panic!("cannot load the committed seed model: {e}"))
        .model
}

/// Scores the library computes for `pixels` (many images, row-major).
pub fn library_scores(model: &Model, pixels: &[u8]) -> bnn_core::Predictions {
    model
        .predict_batch_with(pixels, RunOptions::default())
        .expect("library batch prediction")
}

/// A `bnn` command with the environment variables that change its choices
/// removed, so that every test sees the same defaults.
pub fn bnn() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_bnn"));
    cmd.env_remove("BNN_KERNEL")
        .env_remove("RAYON_NUM_THREADS")
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

/// A raw IDX3 file with the given header fields and exactly `data` after it,
/// whether or not they agree (for damaged-file tests).
pub fn idx_bytes(magic: u32, dims: [u32; 3], data: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(16 + data.len());
    bytes.extend_from_slice(&magic.to_be_bytes());
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(data);
    bytes
}

/// Gzip-compresses `bytes`.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// Deterministic pseudo-random bytes (SplitMix64), so that a failing run
/// can be reproduced exactly.
pub struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        let mut chunks = out.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let last = self.next_u64().to_le_bytes();
        rest.copy_from_slice(&last[..rest.len()]);
    }
}

/// `n` random 28×28 images.
pub fn random_images(n: usize, seed: u64) -> Images {
    let mut pixels = vec![0u8; n * 784];
    SplitMix(seed).fill(&mut pixels);
    Images {
        count: n,
        rows: 28,
        cols: 28,
        pixels,
    }
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
            model.predict(image),
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
