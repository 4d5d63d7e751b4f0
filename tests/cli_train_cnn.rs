//! `bnn train --arch`: bad architecture strings and settings fail at once
//! with one line naming the problem; a small convolutional model trains to
//! the same bytes with 1 and 2 threads, and the engine runs the saved file
//! exactly as the trainer's forward passes predict.

mod common;

use common::{arg, bnn, Run};

fn train_args(args: &[&str]) -> Run {
    let mut cmd = bnn();
    cmd.args(["train", "--no-fetch", "--no-checkpoint"])
        .args(args);
    Run::from_output(cmd.output().unwrap())
}

/// Each bad string or setting is refused before any data is read (the
/// output directory does not even exist), with exit 2 and one line.
#[test]
fn bad_architectures_fail_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.bnn");
    let o = arg(&out);
    for (args, needle) in [
        (vec!["--arch", "c0x3,d10"], "kernel size must be odd"),
        (vec!["--arch", "c4x8,d10"], "kernel size must be odd"),
        (vec!["--arch", "c3x0,d10"], "channel count must be 1"),
        (vec!["--arch", "c3x8,p3,d10"], "only pool is p2"),
        (vec!["--arch", "c3x8,d0,d10"], "width must be 1"),
        (vec!["--arch", "p2,c3x8,d10"], "a pool cannot come first"),
        (
            vec!["--arch", "c3x8,p2,p2,d10"],
            "follow a convolution directly",
        ),
        (vec!["--arch", "c3x8,p2"], "no final dense layer"),
        (vec!["--arch", "c3x8,d64"], "ends in d64"),
        (vec!["--arch", "d64,d10"], "no convolution first"),
        (vec!["--arch", "c3x999999,d10"], "channel count must be 1"),
        (
            vec!["--arch", "c3x4096,c3x4096,d10"],
            "patch values per image",
        ),
        (
            vec!["--arch", "c5x8,p2,c5x8,p2,c5x8,d10", "--padding", "valid"],
            "smaller than the kernel",
        ),
        (vec!["--padding", "valid"], "--padding needs --arch"),
        (vec!["--arch", "c3x8,d10", "--no-bn"], "need batch norm"),
    ] {
        let mut all = args.clone();
        all.extend(["-o", &o]);
        train_args(&all).fails(2, &[needle]);
        assert!(!out.exists(), "{args:?} wrote a model");
    }
    // clap's own refusals: a padding it does not know, --hidden beside --arch.
    train_args(&["--arch", "c3x8,d10", "--padding", "full"]).usage_error(&["full"]);
    train_args(&["--arch", "c3x8,d10", "--hidden", "64"]).usage_error(&["--hidden"]);
}

/// The grammar is in `bnn train --help`.
#[test]
fn help_documents_the_grammar() {
    let run = common::run(["train", "--help"]);
    let help = run.ok();
    for needle in ["--arch", "cKxN", "p2", "dN", "--padding", "cnn-small"] {
        assert!(help.contains(needle), "--help lacks {needle}:\n{help}");
    }
}

fn train_small(threads: &str, out: &std::path::Path, extra: &[&str]) -> Run {
    let mut cmd = bnn();
    cmd.env("RAYON_NUM_THREADS", threads)
        .args([
            "train",
            "--recipe",
            "cnn-small",
            "--arch",
            "c3x8,p2,c5x8,p2,d32,d10",
            "--epochs",
            "2",
            "--limit-train",
            "3000",
            "--validation",
            "500",
            "--limit-test",
            "1000",
            "--progress",
            "none",
            "--no-checkpoint",
            "--no-fetch",
            "--data",
            &arg(&common::mnist_dir()),
            "-o",
            &arg(out),
        ])
        .args(extra);
    Run::from_output(cmd.output().unwrap())
}

/// A small convolutional model on real MNIST: the same bytes with 1 and 2
/// threads; the engine, loading the file, agrees with the trainer's forward
/// passes on every test image and finds the accuracy the report states; and
/// the file records the layers and the u8 input.
#[test]
fn small_cnn_same_bytes_whatever_the_threads_and_exact_export() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    for (name, extra) in [("same", &[][..]), ("valid", &["--padding", "valid"][..])] {
        let (a, b) = (
            dir.path().join(format!("{name}-a.bnn")),
            dir.path().join(format!("{name}-b.bnn")),
        );
        let out = train_small("1", &a, extra).ok().to_string();
        train_small("2", &b, extra).ok();
        assert!(
            std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
            "{name}: models differ between 1 and 2 threads"
        );
        assert!(
            out.contains("on 1000 of 1000"),
            "{name}: export does not agree with the trainer:\n{out}"
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(a.with_extension("json")).unwrap()).unwrap();
        assert_eq!(
            report["architecture"].as_str(),
            Some(format!("c3x8,p2,c5x8,p2,d32,d10 padding {name}").as_str())
        );
        let reported = report["test_accuracy"].as_f64().unwrap();
        // Far above chance after 2 short epochs (running batch-norm statistics).
        assert!(reported > 0.5, "{name}: {reported}");
        let file = bnn_core::format::load(&a).unwrap();
        assert!(file.model.input_encoding().is_u8(), "{name}");
        assert!(
            file.description.contains("c3x8,p2,c5x8,p2,d32,d10 padding"),
            "{name}: {}",
            file.description
        );
        let images = common::first_test_images(1000);
        let (_, labels) = bnn_data::mnist::load_test(&common::mnist_dir()).unwrap();
        let classes = file.model.predict_batch(&images.pixels).unwrap();
        assert_eq!(classes.len(), 1000);
        let correct = classes
            .iter()
            .zip(&labels.labels[..1000])
            .filter(|(&c, &l)| c == l as usize)
            .count();
        assert_eq!(correct as f64 / 1000.0, reported, "{name}");
    }
}
