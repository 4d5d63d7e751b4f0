//! `bnn bench` on a CNN: the model beside its FP32 twin, named by its
//! architecture, with the twin's accuracy equal to the image and the FP32
//! engine's GFLOP/s in the table and the JSON. The model is the bench's
//! `cnn-small` stand-in, saved as a `.bnn` file.

mod common;

use common::{arg, mnist_dir, run};

#[test]
fn bench_puts_a_cnn_beside_its_fp32_twin_with_gflops() {
    let dir = tempfile::tempdir().unwrap();
    let model = bnn_bench::cnn_small_stand_in().unwrap();
    let path = dir.path().join("cnn.bnn");
    bnn_core::format::save(&model, "cnn-small stand-in", &path).unwrap();
    let json = dir.path().join("bench.json");
    let out = run([
        "bench".to_string(),
        arg(&path),
        "--repeat".into(),
        "1".into(),
        "--single".into(),
        "20".into(),
        "--threads".into(),
        "1".into(),
        "--data".into(),
        arg(&mnist_dir()),
        "--no-fetch".into(),
        "--json".into(),
        arg(&json),
    ]);
    let stdout = out.ok();
    let arch = bnn_bench::CNN_SMALL_ARCH;
    assert!(
        stdout.contains(&format!("| cnn.bnn | 1-bit | {arch} | u8 |")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("| cnn.bnn as fp32 | fp32 | {arch} | u8 |")),
        "{stdout}"
    );
    // c3x32: 784·9·32, c3x64: 196·288·64, d256: 3136·256, d10: 2560
    // multiply-adds.
    let flops: u64 = 2 * (784 * 9 * 32 + 196 * 288 * 64 + 3136 * 256 + 2560);
    let line = format!(
        "cnn.bnn as fp32: {:.2} MFLOP per image, ",
        flops as f64 / 1e6
    );
    assert!(stdout.contains(&line), "{stdout}");
    assert!(stdout.contains("GFLOP/s at 1T"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let models = report["models"].as_array().unwrap();
    let row = models.iter().find(|m| m["model"] == "cnn.bnn").unwrap();
    let twin = models
        .iter()
        .find(|m| m["model"] == "cnn.bnn as fp32")
        .unwrap();
    assert_eq!(row["shape"], arch);
    assert_eq!(row["compared_with"], "cnn.bnn as fp32");
    // The twin is exact: the same accuracy, to the image.
    assert_eq!(row["accuracy"], twin["accuracy"]);
    assert_eq!(twin["flops_per_image"], flops);
    assert!(row["flops_per_image"].is_null());
    let rate = &twin["gflop_per_s"][0];
    assert_eq!(rate[0], 1);
    let ips = twin["images_per_s"][0][1].as_f64().unwrap();
    let gflops = rate[1].as_f64().unwrap();
    assert!(
        (gflops - ips * flops as f64 / 1e9).abs() <= 1e-9 * gflops.max(1.0),
        "{gflops} vs {ips} images/s"
    );
}
