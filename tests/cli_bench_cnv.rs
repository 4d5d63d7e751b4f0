//! `bnn bench` on models MNIST does not fit: FINN's CNV (the `cnv`
//! recipe's shape, 32×32×3) runs on random images of its shape, beside its
//! FP32 twin, with no accuracy, and the table and the JSON say what the
//! images were; every field the JSON had is still there.

mod common;

use common::{arg, mnist_dir, run};

/// Every field of the JSON report and of its model rows, as before the
/// `data` field was added.
const REPORT_FIELDS: [&str; 6] = [
    "images",
    "repeat",
    "threads",
    "throughput",
    "latency",
    "models",
];
const MODEL_FIELDS: [&str; 16] = [
    "model",
    "engine",
    "shape",
    "input",
    "accuracy",
    "best_kernel",
    "images_per_s",
    "us_per_image",
    "file_bytes",
    "fp32_file_bytes",
    "compression",
    "compared_with",
    "speedup",
    "latency_speedup",
    "flops_per_image",
    "gflop_per_s",
];

fn short(extra: &[String]) -> Vec<String> {
    let mut args: Vec<String> = ["bench", "--repeat", "1", "--single", "2", "--threads", "1"]
        .map(String::from)
        .to_vec();
    args.extend_from_slice(extra);
    args
}

#[test]
fn bench_times_a_cifar_shaped_model_on_random_images() {
    let dir = tempfile::tempdir().unwrap();
    let model = bnn_bench::cnv_stand_in(10).unwrap();
    let path = dir.path().join("cnv.bnn");
    bnn_core::format::save(&model, "cnv stand-in", &path).unwrap();
    let json = dir.path().join("bench.json");
    // No MNIST at all: `--data` names a directory that does not exist, and
    // `--no-fetch` forbids the download; random images need neither.
    let out = run(short(&[
        arg(&path),
        "--images".into(),
        "20".into(),
        "--data".into(),
        arg(&dir.path().join("no-mnist-here")),
        "--no-fetch".into(),
        "--json".into(),
        arg(&json),
    ]));
    let stdout = out.ok();
    let arch = bnn_bench::CNV_ARCH;
    assert!(
        stdout.contains("20 random u8 32x32x3 images (no data set given), median of 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("| cnv.bnn | 1-bit | {arch} | u8 | n/a |")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("| cnv.bnn as fp32 | fp32 | {arch} | u8 | n/a |")),
        "{stdout}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for field in REPORT_FIELDS {
        assert!(report.get(field).is_some(), "report lacks {field}");
    }
    assert_eq!(
        report["data"],
        "random u8 32x32x3 images (no data set given)"
    );
    assert_eq!(report["images"], 20);
    let models = report["models"].as_array().unwrap();
    assert_eq!(models.len(), 2);
    for m in models {
        for field in MODEL_FIELDS {
            assert!(m.get(field).is_some(), "model row lacks {field}: {m}");
        }
        // No labels, so no accuracy: null, never a number.
        assert!(m["accuracy"].is_null(), "{m}");
        assert_eq!(m["shape"], arch);
    }
    assert!(report["throughput"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["accuracy"].is_null() && t["images_per_s"].as_f64().unwrap() > 0.0));
    let row = models.iter().find(|m| m["model"] == "cnv.bnn").unwrap();
    assert_eq!(row["compared_with"], "cnv.bnn as fp32");
    assert!(row["speedup"][0][1].as_f64().unwrap() > 0.0);
}

/// `--cnv` times the stand-in alone (the shipped models take MNIST's
/// digits); models of two input sizes in one run, and more single images
/// than the random set holds, are refused before any timing.
#[test]
fn cnv_flag_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let out = run(short(&[
        "--cnv".into(),
        "--images".into(),
        "8".into(),
        "--json".into(),
        arg(&json),
    ]));
    let stdout = out.ok();
    assert!(
        stdout.contains("| cnv stand-in (random weights) | 1-bit |"),
        "{stdout}"
    );
    assert!(!stdout.contains("mnist-"), "{stdout}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(
        report["data"],
        "random u8 32x32x3 images (no data set given)"
    );

    // A plain vector of another length than MNIST's is timed the same way.
    let flat = dir.path().join("flat.bnn");
    let w = bnn_core::BitMatrix::from_pm1(3, 100, &[1i8; 300]).unwrap();
    let layer = bnn_core::BinaryDense::output(w, vec![0.0; 3]).unwrap();
    let model = bnn_core::Model::new(100, 128, vec![layer], bnn_core::DecisionRule::Scores);
    bnn_core::format::save(&model.unwrap(), "", &flat).unwrap();
    let stdout = run(short(&[arg(&flat), "--images".into(), "10".into()]))
        .ok()
        .to_string();
    assert!(
        stdout.contains("10 random u8 100 inputs (no data set given), median"),
        "{stdout}"
    );
    assert!(stdout.contains("| flat.bnn | 1-bit | 100-3 | binary>=128 | n/a |"));

    let mnist = dir.path().join("cnn.bnn");
    bnn_core::format::save(&bnn_bench::cnn_small_stand_in().unwrap(), "", &mnist).unwrap();
    run(short(&[arg(&mnist), "--cnv".into()])).fails(
        2,
        &[
            "cnn.bnn takes 28x28x1 images",
            "cnv stand-in (random weights) takes 32x32x3 images",
            "one input size at a time",
        ],
    );
    run([
        "bench",
        "--cnv",
        "--images",
        "4",
        "--single",
        "5",
        "--threads",
        "1",
    ])
    .fails(2, &["--single 5: the random set has 4 images"]);
    run(["bench", "--cnv", "--images", "0"]).fails(2, &["--images"]);
    run(["bench", "--cnv", "--images", "400000"]).fails(2, &["--images 400000", "MiB"]);
    // The MNIST path still names its own limit.
    run(short(&[
        arg(&mnist),
        "--images".into(),
        "10001".into(),
        "--data".into(),
        arg(&mnist_dir()),
        "--no-fetch".into(),
    ]))
    .fails(2, &["--images 10001: the test set has 10,000 images"]);
}
