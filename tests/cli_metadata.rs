//! Models with metadata (format version 3) through the CLI: `bnn info`
//! lists the names, the encoding and the sections; `bnn classify` adds a
//! `label` column; `bnn eval` names each class.

mod common;

use std::path::{Path, PathBuf};

use bnn_core::{FeatureEncoding, Model};
use common::{arg, idx_bytes, load_seed, run, small_mnist};

const NAMES: [&str; 10] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine, or 9",
];

fn named_seed(dir: &Path) -> (PathBuf, Model) {
    let model = load_seed()
        .with_class_names(NAMES.iter().map(|s| s.to_string()).collect())
        .unwrap();
    let path = dir.join("named.bnn");
    bnn_core::format::save(&model, "seed with names", &path).unwrap();
    (path, model)
}

fn field<'a>(stdout: &'a str, name: &str) -> Vec<&'a str> {
    stdout
        .lines()
        .filter(|l| l.starts_with(name))
        .map(|l| l[name.len()..].trim())
        .collect()
}

#[test]
fn info_lists_names_encoding_and_sections() {
    let dir = tempfile::tempdir().unwrap();
    // 30 features, thermometer-coded, into 25 named classes.
    let model = bnn_testkit::models::random_model(
        &mut bnn_testkit::models::rng(1),
        &[120, 16, 25],
        bnn_core::DecisionRule::Scores,
        128,
    );
    let x: Vec<f32> = (0..300).map(|i| (i % 17) as f32).collect();
    let model = model
        .with_class_names((0..25).map(|i| format!("c{i}")).collect())
        .unwrap()
        .with_feature_encoding(FeatureEncoding::fit_thermometer(&x, 30, 4).unwrap())
        .unwrap();
    let path = dir.path().join("m.bnn");
    bnn_core::format::save(&model, "", &path).unwrap();
    let out = run(["info", &arg(&path)]);
    let stdout = out.ok();
    let names: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
    assert_eq!(
        field(stdout, "classes"),
        [format!("25: {}, … 5 more", names.join(", "))]
    );
    assert_eq!(
        field(stdout, "features"),
        ["thermometer:4 over 30 features, stored: raw rows of 30 values are encoded before layer 1"]
    );
    assert_eq!(field(stdout, "format"), ["version 3"]);
    let encd = 8 + 4 * 120;
    assert_eq!(
        field(stdout, "section "),
        [
            format!("ENCD ({encd} bytes, required)"),
            // The count, then a 2-byte length and 2 or 3 bytes per name.
            format!("NAME ({} bytes)", 4 + 25 * 2 + 10 * 2 + 15 * 3)
        ]
    );

    // A section of a newer writer is listed as skipped.
    let seed = common::root().join("tests/fuzz/bnn_model/v3-minmax-names.bnn");
    let out = run(["info", &arg(&seed)]);
    let stdout = out.ok();
    assert_eq!(field(stdout, "skipped section"), ["ZZZ0 (3 bytes)"]);
    assert_eq!(
        field(stdout, "classes"),
        ["3: setosa, versicolor, virginica"]
    );

    // The shipped model: no names, version 1, no sections.
    let out = run(["info", &arg(&common::seed_model())]);
    let stdout = out.ok();
    assert_eq!(field(stdout, "classes"), ["10 (unnamed: shown by index)"]);
    assert_eq!(field(stdout, "format"), ["version 1"]);
    assert!(field(stdout, "section").is_empty(), "{stdout}");
}

#[test]
fn classify_adds_a_label_column_after_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let (model_path, model) = named_seed(dir.path());
    let images = common::random_images(40, 7);
    let input = dir.path().join("images.idx");
    bnn_testkit::files::write(&input, &idx_bytes(0x803, [40, 28, 28], &images.pixels));
    let classes = model.predict_batch(&images.pixels).unwrap();

    let out = run(["classify", &arg(&model_path), &arg(&input)]);
    let stdout = out.ok();
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next().unwrap(),
        format!("{},label", common::csv_header())
    );
    for (line, &class) in lines.zip(&classes) {
        let want = if class == 9 {
            "\"nine, or 9\"".to_string()
        } else {
            NAMES[class].to_string()
        };
        assert!(line.ends_with(&format!(",{want}")), "{line}");
        assert!(line.contains(&format!(",{class},")), "{line}");
    }

    let out = run([
        "classify",
        &arg(&model_path),
        &arg(&input),
        "--format",
        "json",
    ]);
    let text = out.ok();
    let value: serde_json::Value = serde_json::from_str(text).unwrap();
    let rows = value.as_array().unwrap();
    assert_eq!(rows.len(), 40);
    for (row, &class) in rows.iter().zip(&classes) {
        assert_eq!(row["class"].as_u64().unwrap() as usize, class);
        assert_eq!(row["label"].as_str().unwrap(), NAMES[class]);
    }
    // The label comes last in each object.
    let objects: Vec<&str> = text.lines().filter(|l| l.contains("\"source\"")).collect();
    for (line, &class) in objects.iter().zip(&classes) {
        let end = format!(", \"label\": \"{}\"}}", NAMES[class]);
        assert!(line.trim_end_matches(',').ends_with(&end), "{line}");
    }

    // A .npy keeps its layout: the same bytes as for the unnamed model.
    let named_npy = dir.path().join("named.npy");
    let plain_npy = dir.path().join("plain.npy");
    let npy = |model: &Path, out: &Path| {
        run([
            "classify",
            &arg(model),
            &arg(&input),
            "--format",
            "npy",
            "-o",
            &arg(out),
        ])
        .ok()
        .to_string()
    };
    npy(&model_path, &named_npy);
    npy(&common::seed_model(), &plain_npy);
    assert_eq!(
        std::fs::read(&named_npy).unwrap(),
        std::fs::read(&plain_npy).unwrap()
    );
}

#[test]
fn eval_names_each_class() {
    let dir = tempfile::tempdir().unwrap();
    let (model_path, _) = named_seed(dir.path());
    let data = small_mnist(dir.path(), 10, 200);
    let run_eval = |model: &Path| {
        run(["eval", &arg(model), "--data", &arg(&data), "--no-fetch"])
            .ok()
            .to_string()
    };
    let named = run_eval(&model_path);
    let plain = run_eval(&common::seed_model());
    let per_class = |out: &str| -> Vec<String> {
        out.lines()
            .skip_while(|l| *l != "per class")
            .skip(1)
            .take(10)
            .map(str::to_string)
            .collect()
    };
    let (named_rows, plain_rows) = (per_class(&named), per_class(&plain));
    for (i, (n, p)) in named_rows.iter().zip(&plain_rows).enumerate() {
        // The same figures, the row named by index and name.
        let width = "nine, or 9".len();
        let label = format!("{i:>2} {:<width$}", NAMES[i]);
        assert!(n.starts_with(&format!("  {label}  ")), "{n}");
        assert_eq!(
            n.split_whitespace().rev().take(4).collect::<Vec<_>>(),
            p.split_whitespace().rev().take(4).collect::<Vec<_>>()
        );
        assert!(p.starts_with(&format!("  {i:>2}  ")), "{p}");
    }
    let matrix_row = named
        .lines()
        .skip_while(|l| !l.starts_with("confusion matrix"))
        .find(|l| l.starts_with("   3 three"))
        .unwrap_or_else(|| panic!("no named matrix row:\n{named}"));
    assert_eq!(
        matrix_row.split_whitespace().count(),
        2 + 10,
        "{matrix_row}"
    );
}
