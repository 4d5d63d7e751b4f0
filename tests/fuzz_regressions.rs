//! Every saved fuzz input, run on stable Rust through the checks the fuzz
//! targets run: no panic, memory within the parser's budget, a one-line
//! error naming the file, and models that load saving back to the same
//! bytes. `tests/fuzz/TARGET/` holds a small seed corpus and every input
//! that once broke a parser, so CI keeps testing them without a fuzzer.
//!
//! PNG and PGM inputs go through the `bnn classify` binary, whose readers
//! they exercise, and must give a result or a one-line error.

use std::ffi::OsStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../fuzz/src/budget.rs"]
mod budget;
#[path = "../fuzz/src/checks.rs"]
mod checks;
mod common;

#[global_allocator]
static ALLOC: budget::Counting = budget::Counting;

/// The saved inputs of `target`, sorted by name. A missing or empty
/// directory fails: the inputs are part of the repository.
fn saved_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = common::root().join("tests/fuzz").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; restore the saved fuzz inputs with `git checkout -- tests/fuzz`",
            dir.display()
        )
    });
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("listing saved fuzz inputs").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    assert!(
        !paths.is_empty(),
        "{} holds no inputs; restore them with `git checkout -- tests/fuzz`",
        dir.display()
    );
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("reading a saved fuzz input");
            (p, bytes)
        })
        .collect()
}

/// Runs `check` on every saved input of `target` within its memory budget,
/// naming the input that fails.
fn run_saved(target: &str, check: impl Fn(&[u8], &Path) + Sync) {
    let scratch = tempfile::tempdir().expect("creating a scratch directory");
    for (path, bytes) in saved_inputs(target) {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            budget::bounded(bytes.len(), || check(&bytes, scratch.path()))
        }));
        if let Err(panic) = outcome {
            let message = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            panic!("{}: {message}", path.display());
        }
    }
}

#[test]
fn bnn_model_inputs() {
    run_saved("bnn_model", |data, _| checks::bnn_model(data));
}

#[test]
fn f32_model_inputs() {
    run_saved("f32_model", |data, _| checks::f32_model(data));
}

#[test]
fn checkpoint_inputs() {
    run_saved("checkpoint", |data, _| checks::checkpoint(data));
}

#[test]
fn idx_inputs() {
    run_saved("idx", checks::idx);
}

#[test]
fn idx_gzip_inputs() {
    run_saved("idx_gzip", checks::idx_gzip);
}

#[test]
fn npz_inputs() {
    run_saved("npz", checks::npz);
}

#[test]
fn npy_inputs() {
    run_saved("npy", checks::npy);
}

#[test]
fn csv_inputs() {
    run_saved("csv", checks::csv);
}

#[test]
fn cifar_inputs() {
    run_saved("cifar", checks::cifar);
}

#[test]
fn image_folder_inputs() {
    run_saved("image_folder", checks::image_folder);
}

#[test]
fn onnx_inputs() {
    run_saved("onnx", |data, _| checks::onnx(data));
}

#[test]
fn image_inputs() {
    let model = common::seed_model();
    for (path, _) in saved_inputs("image") {
        let run = common::run([OsStr::new("classify"), model.as_os_str(), path.as_os_str()]);
        common::assert_no_panic(&run.stderr);
        match run.code {
            0 => assert!(
                run.stdout.lines().count() >= 2,
                "{}: classified but printed no result:\n{}",
                path.display(),
                run.stdout
            ),
            1 => {
                let message = run.stderr.trim_end();
                assert!(
                    message.starts_with("bnn: error: "),
                    "{}: {message}",
                    path.display()
                );
                checks::assert_one_line(message, &path.display().to_string());
            }
            code => panic!(
                "{}: exit code {code}, expected 0 or 1\n{}",
                path.display(),
                run.stderr
            ),
        }
    }
}

/// The saved inputs must keep testing something: the seeds include models
/// that load, so a parser that rejected everything would fail here.
#[test]
fn seeds_include_valid_models() {
    let name = Path::new(checks::MODEL_NAME);
    let loads = |target: &str, ok: &dyn Fn(&[u8]) -> bool| {
        saved_inputs(target)
            .iter()
            .filter(|(_, bytes)| ok(bytes))
            .count()
    };
    assert!(
        loads("bnn_model", &|b| bnn_core::format::from_bytes(b, name)
            .is_ok())
            > 0
    );
    // Models small enough to be run against the reference, of each kind:
    // dense, u8 first layer, and convolutions with a u8 and a binary input.
    let runs = |kind: &dyn Fn(&bnn_core::Model) -> bool| {
        loads("bnn_model", &|b| {
            bnn_core::format::from_bytes(b, name)
                .is_ok_and(|f| checks::runs_model(&f.model, b.len()) && kind(&f.model))
        })
    };
    assert!(runs(&|m| !m.is_convolutional() && m.pixel_layer().is_none()) >= 2);
    assert!(runs(&|m| !m.is_convolutional() && m.pixel_layer().is_some()) >= 1);
    assert!(runs(&|m| m.is_convolutional() && m.input_encoding().is_u8()) >= 1);
    assert!(runs(&|m| m.is_convolutional() && !m.input_encoding().is_u8()) >= 1);
    // Version 3: names, each encoding, and a section this build skips.
    assert!(runs(&|m| m.class_names().is_some() && !m.unknown_sections().is_empty()) >= 1);
    assert!(
        runs(&|m| matches!(
            m.feature_encoding(),
            Some(bnn_core::FeatureEncoding::Thermometer { .. })
        )) >= 1
    );
    assert!(
        runs(&|m| matches!(
            m.feature_encoding(),
            Some(bnn_core::FeatureEncoding::MinMax { .. })
        )) >= 1
    );
    // A zero-padded CNN (section ZPAD).
    assert!(
        runs(&|m| m
            .convs()
            .iter()
            .any(|s| s.conv().padding() == bnn_core::conv::Padding::Zero))
            >= 1
    );
    // A per-class score scale (section SCAL).
    assert!(runs(&|m| m.score_scale().is_some()) >= 1);
    // ONNX seeds that import: an MLP and a CNN.
    let imports = |kind: &dyn Fn(&bnn_core::Model) -> bool| {
        loads("onnx", &|b| {
            bnn_onnx::import_bytes(b, None).is_ok_and(|i| kind(&i.model))
        })
    };
    assert!(imports(&|m| !m.is_convolutional()) >= 1);
    assert!(imports(&|m| m.is_convolutional()) >= 1);
    assert!(
        loads("f32_model", &|b| bnn_fp32::format::from_bytes(b, name)
            .is_ok())
            > 0
    );
    assert!(
        loads("checkpoint", &|b| bnn_train::checkpoint::from_bytes(
            b, name
        )
        .is_ok())
            > 0
    );
}
