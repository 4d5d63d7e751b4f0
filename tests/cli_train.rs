//! `bnn train` end to end on real MNIST, small enough to run in seconds:
//! the same seed gives the same model bytes with 1 and 2 threads, the
//! exported model agrees with the trainer's own forward pass, `bnn eval`
//! reproduces the accuracy the trainer reported, and a resumed run equals an
//! uninterrupted one.

mod common;

use common::{arg, assert_no_panic, bnn, mnist_dir, Run};

fn train(threads: &str, out: &std::path::Path, extra: &[&str]) -> Run {
    train_epochs(threads, "2", out, extra)
}

fn train_epochs(threads: &str, epochs: &str, out: &std::path::Path, extra: &[&str]) -> Run {
    let data = mnist_dir();
    let mut cmd = bnn();
    cmd.env("RAYON_NUM_THREADS", threads).args([
        "train",
        "--recipe",
        "bn",
        "--hidden",
        "96",
        "--epochs",
        epochs,
        "--limit-train",
        "8000",
        "--limit-test",
        "2000",
        "--validation",
        "2000",
        "--progress",
        "none",
        "--no-fetch",
        "--data",
        &arg(&data),
        "-o",
        &arg(out),
    ]);
    cmd.args(extra);
    Run::from_output(cmd.output().unwrap())
}

/// Trains with `extra` options on 1 and 2 threads and with another seed,
/// and checks the bytes, the export's agreement and the reported accuracy;
/// returns the model.
fn same_bytes_and_exact_export(extra: &[&str]) -> bnn_core::Model {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.bnn"), dir.path().join("b.bnn"));
    let with = |more: &[&'static str]| -> Vec<&str> {
        let mut v = vec!["--no-checkpoint"];
        v.extend_from_slice(extra);
        v.extend_from_slice(more);
        v
    };
    let run_a = train("1", &a, &with(&[]));
    let out = run_a.ok().to_string();
    train("2", &b, &with(&[])).ok();
    let (bytes_a, bytes_b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert!(bytes_a == bytes_b, "models differ between 1 and 2 threads");
    assert!(
        out.contains("on 2000 of 2000"),
        "export does not agree with the trainer:\n{out}"
    );

    // A different seed gives a different model.
    let c = dir.path().join("c.bnn");
    train("2", &c, &with(&["--seed", "7"])).ok();
    assert_ne!(std::fs::read(&c).unwrap(), bytes_a);

    // The report beside the model holds the test accuracy that eval finds
    // on the same 2000 images (the first 2000 of the test set).
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("a.json")).unwrap()).unwrap();
    let reported = report["test_accuracy"].as_f64().unwrap();
    assert!(
        reported > 0.8,
        "a 2-epoch model should already classify most digits: {reported}"
    );
    let model = bnn_core::format::load(&a).unwrap().model;
    let images = common::first_test_images(2000);
    let (_, labels) = bnn_data::mnist::load_test(&mnist_dir()).unwrap();
    let classes = model.predict_batch(&images.pixels).unwrap();
    assert_eq!(classes.len(), 2000);
    let correct = classes
        .iter()
        .zip(&labels.labels[..2000])
        .filter(|(&c, &l)| c == l as usize)
        .count();
    assert_eq!(correct as f64 / 2000.0, reported);
    model
}

#[test]
fn same_seed_same_bytes_whatever_the_threads_and_exact_export() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let model = same_bytes_and_exact_export(&[]);
    assert!(!model.input_encoding().is_u8());
}

/// The same for a u8-input first layer: pixel values times ±1 weights, its
/// dot products in f32 while training and in integers in the engine.
#[test]
fn u8_input_same_bytes_whatever_the_threads_and_exact_export() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let model = same_bytes_and_exact_export(&["--input", "u8"]);
    assert!(model.input_encoding().is_u8(), "the model is not u8-input");
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full.bnn");
    train("2", &full, &["--no-checkpoint"]).ok();
    // One epoch with a checkpoint, then resume to two.
    let part = dir.path().join("part.bnn");
    let ckpt = dir.path().join("part.ckpt");
    train_epochs("2", "1", &part, &["--checkpoint", &arg(&ckpt)]).ok();
    assert!(ckpt.is_file(), "no checkpoint written");
    let resumed = dir.path().join("resumed.bnn");
    let data = mnist_dir();
    let mut cmd = bnn();
    cmd.env("RAYON_NUM_THREADS", "1").args([
        "train",
        "--resume",
        &arg(&ckpt),
        "--epochs",
        "2",
        "--limit-train",
        "8000",
        "--limit-test",
        "2000",
        "--progress",
        "log",
        "--no-fetch",
        "--data",
        &arg(&data),
        "--no-checkpoint",
        "-o",
        &arg(&resumed),
    ]);
    let run = Run::from_output(cmd.output().unwrap());
    let log = format!("{}{}", run.ok(), run.stderr);
    // It really continued: only epoch 2 was trained.
    assert!(
        log.contains("epoch   2") && !log.contains("epoch   1 "),
        "{log}"
    );
    assert!(
        std::fs::read(&full).unwrap() == std::fs::read(&resumed).unwrap(),
        "resume changed the model"
    );
}

#[test]
fn bad_configurations_fail_before_work() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.bnn");
    for (args, needle) in [
        (vec!["--lr", "-0.1"], "learning rate"),
        (vec!["--hidden", "0"], "width"),
        (vec!["--batch", "100000"], "batch"),
        (vec!["--input", "u16"], "invalid value 'u16' for '--input"),
    ] {
        let run = train("2", &out, &args);
        assert_ne!(run.code, 0, "{args:?} was accepted");
        assert!(
            run.stderr.starts_with("bnn: error: ") && run.stderr.to_lowercase().contains(needle),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!out.exists(), "{args:?} wrote a model");
    }
    for (args, needle) in [
        (["--recipe", "huge"], "invalid value 'huge' for '--recipe"),
        (["--recipe", "fp32"], "u8 input is only for binary models"),
    ] {
        let mut cmd = bnn();
        cmd.args(["train", "--no-fetch", "--input", "u8"])
            .args(args);
        let run = Run::from_output(cmd.output().unwrap());
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(needle), "{}", run.stderr);
    }
}

/// `--recipe` with `--resume` would name a configuration the run does not
/// use (the checkpoint's), and the default output after it: refused before
/// anything is read, like every other knob.
#[test]
fn resume_refuses_a_recipe() {
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("missing.ckpt");
    let run = common::run([
        "train",
        "--no-fetch",
        "--resume",
        &arg(&ckpt),
        "--recipe",
        "deep",
    ]);
    run.fails(
        2,
        &["'--resume <CHECKPOINT>' cannot be used with '--recipe <RECIPE>'"],
    );
    assert_no_panic(&run.stderr);
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "wrote a file"
    );
}
