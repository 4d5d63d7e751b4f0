//! `bnn import`: ONNX files built with `bnn_onnx::encode`, imported by the
//! binary; the model written must be the library's import, the tie count
//! the library's count, and a refused graph must write nothing.

mod common;

use bnn_onnx::encode::{self, attr_int, node, tensor, value_info};
use common::{arg, run};

fn pm1(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x & 1 == 1 {
                1.0
            } else {
                -1.0
            }
        })
        .collect()
}

/// Sign(x − 127.5) → Gemm 784→32 (+ `bias`) → `act` → Gemm 32→10.
fn mlp(bias: f32, act: &str) -> Vec<u8> {
    let nodes = [
        node("Sub", "shift", &["x", "half"], &["xs"], &[]),
        node("Sign", "in_sign", &["xs"], &["xb"], &[]),
        node(
            "Gemm",
            "fc1",
            &["xb", "w1", "b1"],
            &["h"],
            &[attr_int("transB", 1)],
        ),
        node(act, "act1", &["h"], &["hb"], &[]),
        node(
            "Gemm",
            "fc2",
            &["hb", "w2"],
            &["y"],
            &[attr_int("transB", 1)],
        ),
    ];
    let inits = [
        tensor("half", &[], &[127.5]),
        tensor("w1", &[32, 784], &pm1(32 * 784, 1)),
        tensor("b1", &[32], &[bias; 32]),
        tensor("w2", &[10, 32], &pm1(320, 2)),
    ];
    let g = encode::graph(
        &nodes,
        &inits,
        &[value_info("x", &[None, Some(784)])],
        &[value_info("y", &[None, Some(10)])],
    );
    encode::model(8, 13, &g)
}

#[test]
fn import_writes_the_library_model_and_counts_ties() {
    let dir = tempfile::tempdir().unwrap();
    let data = common::small_mnist(dir.path(), 1, 300);
    let onnx = dir.path().join("tie.onnx");
    std::fs::write(&onnx, mlp(0.0, "Sign")).unwrap();
    let out = dir.path().join("tie.bnn");
    let r = run([
        "import",
        &arg(&onnx),
        "-o",
        &arg(&out),
        "--data",
        &arg(&data),
    ]);
    let stdout = r.ok();
    assert!(
        r.stderr.contains("bnn: warning: node 'act1' ('Sign'): 32 of 32 neurons can have a pre-activation of exactly 0"),
        "{}",
        r.stderr
    );
    let imported = bnn_onnx::import_file(&onnx).unwrap();
    let loaded = bnn_core::format::load(&out).unwrap();
    assert_eq!(loaded.model, imported.model);
    assert!(loaded.description.contains("by `bnn import`"));
    let images = bnn_data::mnist::load_test(&data).unwrap().0;
    let count = &imported.count_ties(&images.pixels).unwrap()[0];
    assert!(count.values > 0, "the test needs ties to count");
    let line = format!(
        "ties at node 'act1' ('Sign') on the 300 MNIST test images of {}: {} images, {} values",
        data.display(),
        count.images,
        count.values
    );
    assert!(stdout.contains(&line), "{stdout}\nwanted: {line}");
}

#[test]
fn a_refused_graph_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("relu.onnx");
    std::fs::write(&onnx, mlp(0.5, "Relu")).unwrap();
    let out = dir.path().join("relu.bnn");
    run(["import", &arg(&onnx), "-o", &arg(&out)]).fails(
        1,
        &[
            &arg(&onnx),
            "node 'act1' ('Relu')",
            "float activation between binary layers",
        ],
    );
    assert!(!out.exists());
    // An existing output stays as it was.
    std::fs::write(&out, b"keep me").unwrap();
    run(["import", &arg(&onnx), "-o", &arg(&out)]).fails(1, &["node 'act1'"]);
    assert_eq!(std::fs::read(&out).unwrap(), b"keep me");
    // The output may not be the input.
    let before = std::fs::read(&onnx).unwrap();
    let r = run(["import", &arg(&onnx), "-o", &arg(&onnx)]);
    assert_ne!(r.code, 0);
    assert_eq!(std::fs::read(&onnx).unwrap(), before);
}

#[test]
fn an_exact_import_reports_no_ties() {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("exact.onnx");
    std::fs::write(&onnx, mlp(0.5, "Sign")).unwrap();
    let out = dir.path().join("exact.bnn");
    let r = run([
        "import",
        &arg(&onnx),
        "-o",
        &arg(&out),
        "--data",
        &arg(&dir.path().join("none")),
    ]);
    let stdout = r.ok();
    assert!(r.stderr.is_empty(), "{}", r.stderr);
    assert!(
        stdout.contains("(d32,d10, binary input), rule scores"),
        "{stdout}"
    );
    assert!(!stdout.contains("ties"), "{stdout}");
}

/// `bnn export --format onnx` then `bnn import`: the same model; the
/// options of the directory exports are refused, and the output may not
/// be the model it reads.
#[test]
fn export_to_onnx_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("weights/seed.bnn");
    let onnx = dir.path().join("seed.onnx");
    let r = run(["export", &arg(&seed), "--format", "onnx", "-o", &arg(&onnx)]);
    let stdout = r.ok();
    assert!(
        stdout.contains("ONNX opset 13") && stdout.contains("input pixels: uint8 (N, 784)"),
        "{stdout}"
    );
    let back = dir.path().join("back.bnn");
    run(["import", &arg(&onnx), "-o", &arg(&back)]).ok();
    let original = bnn_core::format::load(&seed).unwrap().model;
    assert_eq!(bnn_core::format::load(&back).unwrap().model, original);
    for extra in [
        &["--force"][..],
        &["--word-bits", "32"],
        &["--parallel", "2"],
        &["--test-count", "3"],
    ] {
        let mut args = vec!["export", seed.to_str().unwrap(), "--format", "onnx"];
        args.extend(["-o", onnx.to_str().unwrap()]);
        args.extend(extra);
        run(&args).fails(2, &[extra[0], "applies to --format c and verilog"]);
    }
    let before = std::fs::read(&seed).unwrap();
    let copy = dir.path().join("copy.bnn");
    std::fs::write(&copy, &before).unwrap();
    let r = run(["export", &arg(&copy), "--format", "onnx", "-o", &arg(&copy)]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

/// A score layer scaled per class (a `Mul` after the last `Gemm`) imports
/// with the model's per-class score scale: `bnn info` lists the required
/// SCAL section and says how the scores are made, the ONNX and C exports
/// carry it, and the Verilog export refuses it in one line, writing nothing.
#[test]
fn classes_scaled_differently_import_and_show_their_scale() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = [
        node("Sub", "shift", &["x", "half"], &["xs"], &[]),
        node("Sign", "in_sign", &["xs"], &["xb"], &[]),
        node("Gemm", "fc", &["xb", "w"], &["z"], &[attr_int("transB", 1)]),
        node("Mul", "per_class", &["z", "k"], &["y"], &[]),
    ];
    let k: Vec<f32> = (0..10).map(|c| 0.5 + c as f32 * 0.25).collect();
    let inits = [
        tensor("half", &[], &[127.5]),
        tensor("w", &[10, 784], &pm1(7840, 3)),
        tensor("k", &[10], &k),
    ];
    let g = encode::graph(
        &nodes,
        &inits,
        &[value_info("x", &[None, Some(784)])],
        &[value_info("y", &[None, Some(10)])],
    );
    let onnx = dir.path().join("scaled.onnx");
    std::fs::write(&onnx, encode::model(8, 13, &g)).unwrap();
    let out = dir.path().join("scaled.bnn");
    let r = run(["import", &arg(&onnx), "-o", &arg(&out)]);
    let stdout = r.ok();
    assert!(stdout.contains("score scale per class"), "{stdout}");
    let loaded = bnn_core::format::load(&out).unwrap();
    assert_eq!(loaded.model.score_scale(), Some(&k[..]));
    let r = run(["info", &arg(&out)]);
    let info = r.ok();
    assert!(
        info.contains("section         SCAL (44 bytes, required)"),
        "{info}"
    );
    assert!(
        info.contains("scores = dot x f32 scale per class + f32 bias"),
        "{info}"
    );
    let back_onnx = dir.path().join("back.onnx");
    run([
        "export",
        &arg(&out),
        "--format",
        "onnx",
        "-o",
        &arg(&back_onnx),
    ])
    .ok();
    let back = bnn_onnx::import_file(&back_onnx).unwrap();
    assert_eq!(back.model, loaded.model);
    let c_dir = dir.path().join("c");
    run(["export", &arg(&out), "--format", "c", "-o", &arg(&c_dir)]).ok();
    let c_files: Vec<String> = std::fs::read_dir(&c_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".c"))
        .collect();
    assert_eq!(c_files.len(), 1, "{c_files:?}");
    let source = std::fs::read_to_string(c_dir.join(&c_files[0])).unwrap();
    assert!(source.contains("_scale1[10] = {"), "{source}");
    assert!(source.contains("volatile float product;"), "{source}");
    let v_dir = dir.path().join("v");
    run([
        "export",
        &arg(&out),
        "--format",
        "verilog",
        "-o",
        &arg(&v_dir),
    ])
    .fails(
        1,
        &[
            "scales its class scores per class",
            "the Verilog export does not support yet",
        ],
    );
    assert!(!v_dir.exists());
}
