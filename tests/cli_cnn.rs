//! Convolutional models through the command line: `bnn info` prints the
//! architecture and every layer's shape, `bnn eval --verify` checks every
//! score of a CNN against the float reference and the scalar kernel on the
//! MNIST test set, the C export takes CNNs and the Verilog export refuses
//! them in one line.

mod common;

use std::path::{Path, PathBuf};

use bnn_core::conv::Padding;
use bnn_core::InputEncoding;
use bnn_testkit::models::{random_mnist_cnn, rng, ConvPlan, CNN_SMALL};
use common::{arg, mnist_dir, run};

/// A random CNN on 28×28×1 images, saved to `dir`.
fn cnn(dir: &Path, encoding: InputEncoding, plans: &[ConvPlan], dense: &[usize]) -> PathBuf {
    let model = random_mnist_cnn(&mut rng(21), encoding, plans, Padding::Same, dense);
    let path = dir.join("cnn.bnn");
    bnn_core::format::save(&model, "random cnn", &path).unwrap();
    path
}

#[test]
fn info_prints_every_layer_shape() {
    let dir = tempfile::tempdir().unwrap();
    let path = cnn(dir.path(), InputEncoding::U8, &CNN_SMALL, &[256, 10]);
    let out = run(["info".to_string(), arg(&path)]);
    let stdout = out.ok();
    for line in [
        "arch            c3x32,p2,c3x64,p2,d256,d10",
        "padding         same",
        "input shape     28x28x1",
        "layer 1         conv 3x3x1->32 same 28x28x32  u8 pixels x ±1, sign",
        "layer 2         maxpool 2x2 -> 14x14x32",
        "layer 3         conv 3x3x32->64 same 14x14x64  sign",
        "layer 4         maxpool 2x2 -> 7x7x64",
        "                flatten 3136 (NHWC)",
        "layer 5         dense 3136->256  sign",
        "layer 6         dense 256->10  scores",
    ] {
        assert!(stdout.contains(line), "no '{line}' in:\n{stdout}");
    }
    // 9·32 + 288·64 + 3136·256 + 256·10 weights.
    let field = "weight bits     824,096";
    assert!(stdout.contains(field), "no '{field}' in:\n{stdout}");
}

#[test]
fn eval_verify_covers_cnns() {
    let dir = tempfile::tempdir().unwrap();
    let plans = [
        ConvPlan {
            k: 3,
            channels: 4,
            pool: true,
        },
        ConvPlan {
            k: 5,
            channels: 6,
            pool: true,
        },
    ];
    // Binary-input CNNs are checked against the reference in bnn-core's
    // property tests; one u8 CNN end to end is enough here.
    let path = cnn(dir.path(), InputEncoding::U8, &plans, &[10]);
    let out = run([
        "eval",
        &arg(&path),
        "--data",
        &arg(&mnist_dir()),
        "--no-fetch",
        "--verify",
    ]);
    let stdout = out.ok();
    let verified: Vec<&str> = stdout.lines().filter(|l| l.starts_with("verify")).collect();
    assert_eq!(verified.len(), 2, "{stdout}");
    for line in &verified {
        assert!(line.contains("10000 / 10000 identical scores"), "{line}");
    }
}

/// The C export takes a CNN and prints the two numbers a microcontroller
/// user needs; the Verilog export refuses it in one line and writes
/// nothing.
#[test]
fn c_exports_cnns_and_verilog_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = cnn(dir.path(), InputEncoding::U8, &CNN_SMALL, &[256, 10]);
    let out_dir = dir.path().join("c");
    let out = run([
        "export",
        &arg(&path),
        "--format",
        "c",
        "--output",
        &arg(&out_dir),
    ]);
    let stdout = out.ok();
    // cnn-small with 64-bit words (see the C export's tests for the count).
    for fact in [
        "const data (flash): 104",
        "activations (static RAM): 1216 bytes",
    ] {
        assert!(stdout.contains(fact), "no '{fact}' in:\n{stdout}");
    }
    assert!(out_dir.join("bnn.c").exists() && out_dir.join("bnn.h").exists());
    let out_dir = dir.path().join("verilog");
    let out = run([
        "export",
        &arg(&path),
        "--format",
        "verilog",
        "--output",
        &arg(&out_dir),
    ]);
    out.fails(1, &["Verilog export does not support convolutional models"]);
    assert!(!out_dir.exists(), "nothing is written");
}

/// Damaged convolution fields reach every command that loads a model as a
/// one-line error naming the file and the field, never a panic or a huge
/// allocation: entry 1 is the first convolution, entry 2 its pool.
#[test]
fn hostile_cnn_files_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = cnn(dir.path(), InputEncoding::U8, &CNN_SMALL, &[256, 10]);
    let good = std::fs::read(&path).unwrap();
    let cases: [(&str, usize, &[u8], &str); 6] = [
        ("even", 44, &[4], "kernel size 4 is not odd"),
        ("huge-k", 44, &[255], "kernel size 255 is not odd in 1..=15"),
        ("padding", 45, &[7], "unknown padding code 7"),
        (
            "channels",
            40,
            &(1u32 << 31).to_le_bytes(),
            "exceed the limits",
        ),
        (
            "pool",
            56,
            &[33],
            "max pool of 33 channels follows a convolution of 32",
        ),
        ("sides", 16, &(1u32 << 20).to_le_bytes(), "out of range"),
    ];
    for (name, offset, patch, want) in cases {
        let mut bytes = good.clone();
        bytes[offset..offset + patch.len()].copy_from_slice(patch);
        let bad = dir.path().join(format!("{name}.bnn"));
        std::fs::write(&bad, &bytes).unwrap();
        let file = arg(&bad);
        // `eval` loads the model before it looks for data.
        for args in [vec!["info", &file], vec!["eval", &file, "--no-fetch"]] {
            run(args).fails(1, &[&file, want]);
        }
    }
    // A table cut short inside the convolution entries.
    let short = dir.path().join("short.bnn");
    std::fs::write(&short, &good[..60]).unwrap();
    run(["info", &arg(&short)]).fails(1, &[&arg(&short), "truncated"]);
}

/// A CNN whose bit maps are zero-padded (as an imported PyTorch model):
/// `bnn info` names the padding of every convolution, `bnn eval --verify`
/// agrees with the float reference, and the C export refuses it in one
/// line, writing nothing.
#[test]
fn zero_padded_cnns_show_verify_and_refuse_the_c_export() {
    let dir = tempfile::tempdir().unwrap();
    let plans = [
        ConvPlan {
            k: 3,
            channels: 4,
            pool: true,
        },
        ConvPlan {
            k: 3,
            channels: 6,
            pool: true,
        },
    ];
    let encoding = InputEncoding::Binary { threshold: 128 };
    let model = random_mnist_cnn(&mut rng(22), encoding, &plans, Padding::Zero, &[10]);
    let path = dir.path().join("zero.bnn");
    bnn_core::format::save(&model, "zero padded", &path).unwrap();
    let out = run(["info".to_string(), arg(&path)]);
    let stdout = out.ok();
    for line in [
        "padding         zero",
        "layer 1         conv 3x3x1->4 zero 28x28x4  sign",
        "layer 3         conv 3x3x4->6 zero 14x14x6  sign",
    ] {
        assert!(stdout.contains(line), "no '{line}' in:\n{stdout}");
    }
    let out = run([
        "eval",
        &arg(&path),
        "--data",
        &arg(&mnist_dir()),
        "--no-fetch",
        "--verify",
    ]);
    let stdout = out.ok();
    let verified: Vec<&str> = stdout.lines().filter(|l| l.starts_with("verify")).collect();
    assert_eq!(verified.len(), 2, "{stdout}");
    for line in &verified {
        assert!(line.contains("10000 / 10000 identical scores"), "{line}");
    }
    let out_dir = dir.path().join("c");
    let out = run([
        "export",
        &arg(&path),
        "--format",
        "c",
        "--output",
        &arg(&out_dir),
    ]);
    out.fails(1, &["layer 1 pads its binary map with zeros"]);
    assert!(!out_dir.exists(), "nothing is written");
}
