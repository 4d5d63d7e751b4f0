//! `train --data FILE.npz` and `eval --data FILE.npz`: the user's own
//! images and labels, any shape and class count, end to end.

mod common;

use std::path::{Path, PathBuf};

use bnn_testkit::npz::{npy, zip_bytes, CompressionMethod};
use common::{arg, assert_no_panic, run};
use rand::{Rng, SeedableRng};

/// Learnable images of `map` in `classes` classes: each class a random
/// prototype, each image its prototype with a tenth of the values flipped
/// between dark and bright.
fn images(map: (usize, usize, usize), classes: usize, n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let len = map.0 * map.1 * map.2;
    let mut protos = rand_chacha::ChaCha8Rng::seed_from_u64(99);
    let prototypes: Vec<Vec<bool>> = (0..classes)
        .map(|_| (0..len).map(|_| protos.gen_bool(0.4)).collect())
        .collect();
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let c = rng.gen_range(0..classes);
        y.push(c as u8);
        x.extend(prototypes[c].iter().map(|&on| {
            if on ^ rng.gen_bool(0.1) {
                rng.gen_range(150..=255)
            } else {
                rng.gen_range(0..100)
            }
        }));
    }
    (x, y)
}

fn shape_text(n: usize, map: (usize, usize, usize)) -> String {
    format!("({n}, {}, {}, {})", map.0, map.1, map.2)
}

/// A `.npz` with Keras' four arrays; labels as int64, as NumPy saves them.
fn keras_npz(dir: &Path, map: (usize, usize, usize), classes: usize) -> PathBuf {
    let (xt, yt) = images(map, classes, 1500, 1);
    let (xs, ys) = images(map, classes, 300, 2);
    let labels =
        |y: &[u8]| -> Vec<u8> { y.iter().flat_map(|&l| i64::from(l).to_le_bytes()).collect() };
    let bytes = zip_bytes(
        &[
            ("x_train.npy", npy("|u1", &shape_text(1500, map), &xt)),
            ("y_train.npy", npy("<i8", "(1500,)", &labels(&yt))),
            ("x_test.npy", npy("|u1", &shape_text(300, map), &xs)),
            ("y_test.npy", npy("<i8", "(300,)", &labels(&ys))),
        ],
        CompressionMethod::Deflated,
    );
    let path = dir.join("mine.npz");
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn train_and_eval_on_a_npz_of_any_shape() {
    let dir = tempfile::tempdir().unwrap();
    let data = keras_npz(dir.path(), (6, 5, 3), 4);
    let model = dir.path().join("mine.bnn");
    let trained = run([
        "train",
        "--data",
        &arg(&data),
        "-o",
        &arg(&model),
        "--epochs",
        "8",
        "--progress",
        "none",
    ]);
    let text = trained.ok().to_string();
    assert!(
        trained
            .stderr
            .contains("1,500 samples of 6x5x3 in 4 classes; recipe bn"),
        "{}",
        trained.stderr
    );
    assert!(
        text.contains("agrees with the trainer's forward pass on 300 of 300"),
        "{text}"
    );
    let loaded = bnn_core::format::load(&model).unwrap().model;
    assert_eq!(loaded.num_classes(), 4);
    let s = loaded.input_shape();
    assert_eq!((s.height, s.width, s.channels), (6, 5, 3));
    let eval = run(["eval", &arg(&model), "--data", &arg(&data)]);
    let report = eval.ok();
    let accuracy: f64 = report
        .lines()
        .find_map(|l| l.strip_prefix("accuracy"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no accuracy in {report}"));
    assert!(accuracy > 90.0, "{report}");
    assert!(report.contains("/ 300)"), "{report}");
}

#[test]
fn bad_data_files_are_one_line_errors_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.bnn");
    let write = |name: &str, entries: &[(&str, Vec<u8>)]| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, zip_bytes(entries, CompressionMethod::Stored)).unwrap();
        path
    };
    let no_test = write(
        "no-test.npz",
        &[
            ("x_train.npy", npy("|u1", "(4, 2, 2)", &[1; 16])),
            ("y_train.npy", npy("|u1", "(4,)", &[0, 1, 0, 1])),
        ],
    );
    let mut nan = [0u8; 16];
    nan[14..].copy_from_slice(&[0xf8, 0x7f]);
    let floats = write(
        "floats.npz",
        &[
            ("x_train.npy", npy("<f8", "(2, 1)", &nan)),
            ("y_train.npy", npy("|u1", "(2,)", &[0, 1])),
            ("x_test.npy", npy("<f8", "(1, 1)", &[0; 8])),
            ("y_test.npy", npy("|u1", "(1,)", &[1])),
        ],
    );
    let float_images = write(
        "float-images.npz",
        &[
            ("x_train.npy", npy("<f8", "(1, 1, 1)", &[0; 8])),
            ("y_train.npy", npy("|u1", "(1,)", &[0])),
        ],
    );
    let short = write(
        "short.npz",
        &[
            ("x_train.npy", npy("|u1", "(2, 1)", &[0; 2])),
            ("y_train.npy", npy("|u1", "(3,)", &[0; 3])),
        ],
    );
    let one_class = write(
        "one-class.npz",
        &[
            ("x_train.npy", npy("|u1", "(2, 1)", &[0; 2])),
            ("y_train.npy", npy("|u1", "(2,)", &[0; 2])),
            ("x_test.npy", npy("|u1", "(1, 1)", &[0])),
            ("y_test.npy", npy("|u1", "(1,)", &[0])),
        ],
    );
    for (file, code, says) in [
        (
            &no_test,
            1,
            "2 training samples are too few to hold out a validation set by class",
        ),
        (&floats, 1, "x_train"),
        (
            &float_images,
            1,
            "array 'x_train': dtype float64: images are uint8",
        ),
        (
            &short,
            1,
            "array 'y_train': 3 labels for the 2 images of x_train",
        ),
        (
            &one_class,
            1,
            "1 class: a classifier needs at least 2 classes",
        ),
    ] {
        let r = run([
            "train",
            "--data",
            &arg(file),
            "-o",
            &arg(&out),
            "--progress",
            "none",
        ]);
        r.fails(code, &[&arg(file), says]);
        assert_no_panic(&r.stderr);
        assert!(!out.exists(), "{} wrote a model", file.display());
    }
    // A test set with a class the model lacks.
    let data = keras_npz(dir.path(), (2, 2, 1), 3);
    let model = bnn_testkit::models::random_u8_model(
        &mut bnn_testkit::models::rng(3),
        &[4, 2],
        bnn_core::DecisionRule::Scores,
        bnn_testkit::models::u8_spread(4),
    );
    let path = dir.path().join("two.bnn");
    bnn_core::format::save(&model, "", &path).unwrap();
    run(["eval", &arg(&path), "--data", &arg(&data)]).fails(
        2,
        &[
            &arg(&data),
            "is class 2, which the 2 classes of model",
            "lack",
        ],
    );
}
