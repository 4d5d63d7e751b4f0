//! Reports that say what was done: counts that were really timed or
//! trained on, and size comparisons in the right direction.

mod common;

use std::path::Path;

use bnn_data::mnist::{TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS};
use bnn_testkit::files::{idx_bytes, images, labels, write};
use bnn_testkit::npz::{f32s, npy, zip_bytes, CompressionMethod};
use common::{arg, assert_no_panic, run};

/// An MNIST-format directory of `train` and `test` random 28×28 images.
fn small_mnist(dir: &Path, train: usize, test: usize) {
    for (images_name, labels_name, n, seed) in [
        (TRAIN_IMAGES, TRAIN_LABELS, train, 1),
        (TEST_IMAGES, TEST_LABELS, test, 2),
    ] {
        let im = images(n, 28, 28, seed);
        write(
            &dir.join(images_name),
            &idx_bytes(0x0803, [n as u32, 28, 28], &im.pixels),
        );
        write(
            &dir.join(labels_name),
            &idx_bytes(0x0801, [n as u32], &labels(n, seed).labels),
        );
    }
}

#[test]
fn limits_beyond_the_data_are_refused_not_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    small_mnist(&data, 60, 40);
    let out = dir.path().join("m.bnn");
    let base = |flag: &str, n: &str| {
        run([
            "train",
            "--no-fetch",
            "--data",
            &arg(&data),
            "--epochs",
            "1",
            "--hidden",
            "8",
            "--validation",
            "10",
            "--no-checkpoint",
            "--progress",
            "none",
            "-o",
            &arg(&out),
            flag,
            n,
        ])
    };
    base("--limit-test", "41").fails(2, &["--limit-test 41: the test set has 40 images"]);
    base("--limit-train", "61").fails(2, &["--limit-train 61: the training set has 60 images"]);
    assert!(!out.exists(), "a refused run wrote a model");
}

#[test]
fn single_image_runs_beyond_the_data_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    small_mnist(dir.path(), 1, 30);
    let run = run([
        "bench",
        &arg(&common::seed_model()),
        "--no-fetch",
        "--data",
        &arg(dir.path()),
        "--threads",
        "1",
        "--repeat",
        "1",
        "--single",
        "1000000000",
    ]);
    run.fails(2, &["--single 1000000000: the test set has 30 images"]);
    assert_no_panic(&run.stderr);
}

#[test]
fn import_says_smaller_when_the_npz_is_smaller() {
    let dir = tempfile::tempdir().unwrap();
    // All-equal weights deflate to almost nothing: the .npz is far smaller
    // than the packed model.
    let (outputs, inputs) = (64usize, 784usize);
    let npz = zip_bytes(
        &[
            (
                "fc1_w.npy",
                npy(
                    "<f4",
                    &format!("({outputs}, {inputs})"),
                    &f32s(&vec![1.0; outputs * inputs]),
                ),
            ),
            (
                "fc1_b.npy",
                npy("<f4", &format!("({outputs},)"), &f32s(&vec![0.5; outputs])),
            ),
        ],
        CompressionMethod::Deflated,
    );
    let src = dir.path().join("ones.npz");
    write(&src, &npz);
    let out = dir.path().join("ones.bnn");
    let text = run(["import-npz", &arg(&src), "-o", &arg(&out)])
        .ok()
        .to_string();
    let (npz_len, bnn_len) = (
        npz.len() as f64,
        std::fs::metadata(&out).unwrap().len() as f64,
    );
    assert!(npz_len < bnn_len, "the test's .npz is not smaller");
    let said = format!("{:.1}x smaller", bnn_len / npz_len);
    assert!(text.contains(&said) && !text.contains("larger"), "{text}");
}

/// `demo` compares the seed's published `.npz` only with a `seed.bnn` of
/// the seed's network; another model under that name is said to be one.
#[test]
fn demo_compares_with_the_seed_only_for_its_network() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(dir.path().join("weights")).unwrap();
    std::fs::create_dir(&data).unwrap();
    small_mnist(&data, 1, 50);
    let model = bnn_testkit::models::random_model(
        &mut bnn_testkit::models::rng(7),
        &[784, 16, 10],
        bnn_core::DecisionRule::Scores,
        128,
    );
    bnn_core::format::save(&model, "", &dir.path().join("weights/seed.bnn")).unwrap();
    let out = common::bnn()
        .current_dir(dir.path())
        .args(["demo", "--no-fetch", "--data", &arg(&data), "--repeat", "1"])
        .output()
        .unwrap();
    let run = common::Run::from_output(out);
    let text = run.ok();
    assert!(
        text.contains("seed.bnn here is 784-16-10, not the seed's 784-512-10 network")
            && !text.contains("larger than seed.bnn"),
        "{text}"
    );
}

/// A negative number for a numeric option reaches its own check, which
/// names the option, instead of clap's "unexpected argument '-0'".
#[test]
fn negative_numbers_reach_the_option_checks() {
    for (args, needle) in [
        (["train", "--dropout", "-0.1"], "dropout -0.1 must be in"),
        (
            ["train", "--epochs", "-3"],
            "invalid value '-3' for '--epochs <EPOCHS>'",
        ),
        (["train", "--rotate", "-5"], "rotation -5"),
        (
            ["bench", "--repeat", "-1"],
            "invalid value '-1' for '--repeat <N>'",
        ),
    ] {
        let run = run(args.iter().copied().chain(["--no-fetch"]));
        run.fails(2, &[needle]);
        assert!(
            !run.stderr.contains("unexpected argument"),
            "{}",
            run.stderr
        );
    }
}

/// A file where a directory should be is named as such, not as a missing
/// directory or as "File exists".
#[test]
fn a_file_in_place_of_a_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"mine\n").unwrap();
    let images = dir.path().join("x.idx");
    write(&images, &idx_bytes(0x0803, [1, 28, 28], &[0; 784]));
    let out = file.join("x.csv");
    run([
        "classify",
        &arg(&common::seed_model()),
        &arg(&images),
        "-o",
        &arg(&out),
    ])
    .fails(
        2,
        &[&format!("{}: {} is not a directory", arg(&out), arg(&file))],
    );
    let run = run(["fetch", "--dir", &arg(&file.join("mnist"))]);
    run.fails(
        1,
        &[&format!(
            "{}: creating the directory: a file of that name is in the way",
            arg(&file)
        )],
    );
    assert!(!run.stderr.contains("File exists"), "{}", run.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), b"mine\n");
}

/// `export --test-count` beyond the images given is refused, not clamped;
/// left out, the testbench carries up to 200 of them.
#[test]
fn export_test_count_beyond_the_images_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let idx = dir.path().join("three.idx");
    write(
        &idx,
        &idx_bytes(0x0803, [3, 28, 28], &images(3, 28, 28, 5).pixels),
    );
    let out = dir.path().join("rtl");
    let export = |extra: &[&str]| {
        let mut args = vec![
            "export".to_string(),
            arg(&common::seed_model()),
            "--format".into(),
            "verilog".into(),
            "--test-images".into(),
            arg(&idx),
            "-o".into(),
            arg(&out),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        run(args)
    };
    export(&["--test-count", "4"]).fails(
        2,
        &[&format!("--test-count 4: {} holds 3 images", arg(&idx))],
    );
    assert!(!out.exists(), "a refused export wrote {}", out.display());
    export(&["--test-count", "3"]).ok();
    assert!(out.is_dir());
}
