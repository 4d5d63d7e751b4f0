//! Bad options and bad output locations: a clear one-line error, and no
//! export directory (half-written or otherwise) left behind.

mod common;

use std::fs;

use bnn_core::DecisionRule;
use bnn_export::{Format, Options, WordBits};
use bnn_testkit::files::listing;
use bnn_testkit::models::{random_model, rng};

fn options(format: Format, name: &str) -> Options {
    Options {
        format,
        name: name.into(),
        word: WordBits::W64,
        force: false,
        inputs: Vec::new(),
        parallel: 1,
    }
}

#[test]
fn unknown_format_and_word_size() {
    let err = "vhdl".parse::<Format>().unwrap_err().to_string();
    assert_eq!(err, "unknown export format 'vhdl' (known: c, verilog)");
    assert_eq!("verilog".parse::<Format>().unwrap(), Format::Verilog);
    let err = "16".parse::<WordBits>().unwrap_err().to_string();
    assert_eq!(err, "unknown word size '16' (known: 32, 64)");
}

#[test]
fn invalid_names_write_nothing() {
    let model = random_model(&mut rng(1), &[20, 5, 3], DecisionRule::Scores, 128);
    let tmp = tempfile::tempdir().unwrap();
    for format in [Format::C, Format::Verilog] {
        // `logic` and `uwire` are reserved by SystemVerilog and Verilog-2005:
        // Verilator and Icarus reject a module of that name.
        for name in [
            "3net", "my-net", "int", "module", "logic", "uwire", "", "_x",
        ] {
            let dir = tmp.path().join("out");
            let err = bnn_export::export(&model, "", &options(format, name), None, &dir)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("invalid export name"), "{err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }
    assert!(listing(tmp.path()).is_empty());
}

/// Zero words per cycle is no design; the error names the option.
#[test]
fn zero_parallel_writes_nothing() {
    let model = random_model(&mut rng(3), &[20, 5, 3], DecisionRule::Scores, 128);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let opts = Options {
        parallel: 0,
        ..options(Format::Verilog, "bnn")
    };
    let err = bnn_export::export(&model, "", &opts, None, &dir)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "--parallel must be at least 1 (weight words per cycle)"
    );
    assert!(listing(tmp.path()).is_empty());
}

#[test]
fn bad_output_locations_are_named_and_leave_nothing() {
    let model = random_model(&mut rng(2), &[20, 5, 3], DecisionRule::Seed, 128);
    let tmp = tempfile::tempdir().unwrap();
    // A file where a directory must go (fails even when run as root).
    let file = tmp.path().join("file");
    fs::write(&file, "x").unwrap();
    let err = bnn_export::export(
        &model,
        "",
        &options(Format::C, "bnn"),
        None,
        &file.join("out"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("file"), "{err}");
    let err = bnn_export::export(&model, "", &options(Format::C, "bnn"), None, &file)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a directory"), "{err}");
    // A non-empty directory is kept unless forced, and even forced unless
    // it holds an earlier export.
    let dir = tmp.path().join("out");
    bnn_export::export(&model, "", &options(Format::C, "bnn"), None, &dir).unwrap();
    let err = bnn_export::export(&model, "", &options(Format::Verilog, "bnn"), None, &dir)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--force"), "{err}");
    assert_eq!(listing(&dir), ["bnn.c", "bnn.h", "manifest.txt"]);
    let mut forced = options(Format::Verilog, "bnn");
    forced.force = true;
    bnn_export::export(&model, "", &forced, None, &dir).unwrap();
    assert!(listing(&dir).contains(&"bnn.v".to_string()));
    assert!(!listing(&dir).contains(&"bnn.c".to_string()));
    let other = tmp.path().join("notes");
    fs::create_dir(&other).unwrap();
    fs::write(other.join("todo.txt"), "keep").unwrap();
    let err = bnn_export::export(&model, "", &forced, None, &other)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an earlier export"), "{err}");
    assert_eq!(listing(&other), ["todo.txt"]);
    // Nothing temporary is left anywhere.
    assert_eq!(listing(tmp.path()), ["file", "notes", "out"]);
}

#[test]
fn test_images_of_the_wrong_size_are_refused() {
    let model = random_model(&mut rng(3), &[20, 5, 3], DecisionRule::Seed, 128);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("out");
    let err = bnn_export::export(
        &model,
        "",
        &options(Format::Verilog, "bnn"),
        Some(&[0u8; 30]),
        &dir,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("30 bytes") && err.contains("20-pixel"),
        "{err}"
    );
    assert!(!dir.exists());
}

/// The Verilog export takes binary-input models only: a u8-input model is
/// refused with one line saying so, and nothing is written.
#[test]
fn verilog_refuses_u8_models() {
    let model = bnn_testkit::models::random_u8_model(
        &mut bnn_testkit::models::rng(5),
        &[20, 9, 3],
        DecisionRule::Scores,
        300,
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rtl");
    let err = bnn_export::export(&model, "", &options(Format::Verilog, "net"), None, &dir)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Verilog export takes binary-input models only")
            && err.contains("u8 input")
            && !err.contains('\n'),
        "{err}"
    );
    assert!(!dir.exists(), "nothing is written");
    assert!(listing(tmp.path()).is_empty());
    // The C export of the same model works.
    bnn_export::export(&model, "", &options(Format::C, "net"), None, &dir).unwrap();
    assert_eq!(listing(&dir), ["manifest.txt", "net.c", "net.h"]);
}

/// The Verilog export's scores are `dot + bias`: a model with a per-class
/// score scale is refused in one line, writing nothing, while its C export
/// carries the scale.
#[test]
fn verilog_refuses_a_per_class_score_scale() {
    let model = random_model(&mut rng(6), &[40, 9, 3], DecisionRule::Scores, 128)
        .with_score_scale(vec![0.5, 1.0, 2.25])
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("rtl");
    let err = bnn_export::export(&model, "", &options(Format::Verilog, "net"), None, &dir)
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "cannot export this model: the model scales its class scores per class (an imported model's SCAL section), which the Verilog export does not support yet; the C and ONNX exports carry the scale"
    );
    assert!(err.len() <= 300);
    assert!(listing(tmp.path()).is_empty(), "nothing is written");
    bnn_export::export(&model, "", &options(Format::C, "net"), None, &dir).unwrap();
    let source = fs::read_to_string(dir.join("net.c")).unwrap();
    assert!(
        source.contains("static const float net_scale2[3] = {"),
        "{source}"
    );
}
