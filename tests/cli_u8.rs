//! u8-input models through the command line: `bnn info` names the input
//! encoding, `bnn eval --verify` checks every score against the float
//! reference and the scalar kernel, `bnn export` writes C and refuses
//! Verilog in one line, and `bnn bench` puts the model beside its FP32 twin.
//! The model is the u8 stand-in of the seed model (see
//! `bnn_bench::u8_stand_in`), saved as a version-2 file.

mod common;

use std::path::{Path, PathBuf};

use common::{arg, load_seed, mnist_dir, run};

fn u8_model(dir: &Path) -> PathBuf {
    let model = bnn_bench::u8_stand_in(&load_seed()).unwrap();
    let path = dir.join("seed-u8.bnn");
    bnn_core::format::save(&model, "u8 stand-in of the seed model", &path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2, "version 2");
    path
}

fn accuracy(stdout: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("accuracy"))
        .unwrap_or_else(|| panic!("no accuracy line in:\n{stdout}"));
    line.split_whitespace()
        .find_map(|w| w.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no number in {line}"))
}

#[test]
fn info_shows_the_input_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let path = u8_model(dir.path());
    let out = run(["info".to_string(), arg(&path)]);
    let stdout = out.ok();
    assert!(stdout.contains("shape           784-512-10"), "{stdout}");
    assert!(
        stdout.contains("input           u8, pixel values 0..=255"),
        "{stdout}"
    );
    assert!(stdout.contains("u8 pixels x ±1, sign"), "{stdout}");
    let seed = run(["info".to_string(), arg(&common::seed_model())]);
    assert!(
        seed.ok()
            .contains("input           binary, pixel >= 128 is +1"),
        "{}",
        seed.stdout
    );
}

#[test]
fn eval_verify_covers_u8_models() {
    let dir = tempfile::tempdir().unwrap();
    let path = u8_model(dir.path());
    for kernel in bnn_core::kernel::available() {
        let out = common::bnn()
            .env("BNN_KERNEL", kernel.name())
            .args([
                "eval",
                &arg(&path),
                "--data",
                &arg(&mnist_dir()),
                "--no-fetch",
                "--verify",
            ])
            .output()
            .unwrap();
        let out = common::Run::from_output(out);
        let stdout = out.ok();
        let verified: Vec<&str> = stdout.lines().filter(|l| l.starts_with("verify")).collect();
        assert_eq!(verified.len(), 2, "{kernel}: {stdout}");
        for line in &verified {
            assert!(
                line.contains("10000 / 10000 identical scores"),
                "{kernel}: {line}"
            );
        }
        // The stand-in is a real network: far above chance.
        assert!(accuracy(stdout) > 80.0, "{kernel}: {stdout}");
    }
}

#[test]
fn export_writes_c_and_refuses_verilog() {
    let dir = tempfile::tempdir().unwrap();
    let path = u8_model(dir.path());
    let rtl = dir.path().join("rtl");
    run([
        "export".to_string(),
        arg(&path),
        "--format".into(),
        "verilog".into(),
        "--output".into(),
        arg(&rtl),
    ])
    .fails(
        1,
        &["Verilog export takes binary-input models only", "u8 input"],
    );
    assert!(!rtl.exists());
    let c = dir.path().join("c");
    run([
        "export".to_string(),
        arg(&path),
        "--format".into(),
        "c".into(),
        "--output".into(),
        arg(&c),
    ])
    .ok();
    assert!(c.join("bnn.c").is_file());
}

#[test]
fn bench_puts_u8_models_beside_their_fp32_twin() {
    let dir = tempfile::tempdir().unwrap();
    let path = u8_model(dir.path());
    let json = dir.path().join("bench.json");
    let out = run([
        "bench".to_string(),
        arg(&common::seed_model()),
        arg(&path),
        "--repeat".into(),
        "1".into(),
        "--single".into(),
        "50".into(),
        "--threads".into(),
        "1".into(),
        "--data".into(),
        arg(&mnist_dir()),
        "--no-fetch".into(),
        "--json".into(),
        arg(&json),
    ]);
    let stdout = out.ok();
    assert!(
        stdout.contains("| seed-u8.bnn | 1-bit | 784-512-10 | u8 |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| seed-u8.bnn as fp32 | fp32 | 784-512-10 | u8 |"),
        "{stdout}"
    );
    assert!(stdout.contains("seed-u8.bnn (u8 input"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let models = report["models"].as_array().unwrap();
    let row = models.iter().find(|m| m["model"] == "seed-u8.bnn").unwrap();
    assert_eq!(row["input"], "u8");
    assert_eq!(row["compared_with"], "seed-u8.bnn as fp32");
    let twin = models
        .iter()
        .find(|m| m["model"] == "seed-u8.bnn as fp32")
        .unwrap();
    // The twin is exact: the same accuracy, to the image.
    assert_eq!(row["accuracy"], twin["accuracy"]);
}
