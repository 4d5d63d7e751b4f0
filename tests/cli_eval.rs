//! `bnn import-npz`, `bnn eval` and `bnn info` end to end: the seed weights
//! imported from NumPy reproduce the committed model byte for byte and the
//! seed project's accuracy, whatever the kernel or thread count.

mod common;

use bnn_core::Kernel;
use common::{arg, mnist_dir, run, seed_model, seed_npz};

/// The accuracy line of an eval report.
fn accuracy_line(stdout: &str) -> &str {
    stdout
        .lines()
        .find(|l| l.starts_with("accuracy"))
        .unwrap_or_else(|| panic!("no accuracy line in:\n{stdout}"))
}

/// Checks an eval report of the seed model: its first line states `setting`
/// (the kernel or thread count asked for), its accuracy is the seed's.
fn assert_seed_report(stdout: &str, setting: &str) {
    let first = stdout.lines().next().unwrap_or("");
    assert!(
        first.contains(setting),
        "eval does not report {setting}:\n{stdout}"
    );
    assert!(accuracy_line(stdout).contains("90.19 % (9019 / 10000)"));
}

/// Everything an eval prints that must not depend on kernel or threads: the
/// accuracy, the per-class table and the confusion matrix (the first line
/// names the kernel and threads, and the speed line is a timing).
fn results_part(stdout: &str) -> String {
    stdout
        .lines()
        .filter(|l| !l.starts_with("model ") && !l.starts_with("speed "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn eval(model: &std::path::Path, extra: &[&str]) -> common::Run {
    let data = mnist_dir();
    let mut args = vec![
        "eval".to_string(),
        arg(model),
        "--data".into(),
        arg(&data),
        "--no-fetch".into(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run(args)
}

#[test]
fn imported_seed_weights_equal_the_committed_model_and_score_as_the_seed() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let imported = dir.path().join("seed.bnn");
    let out = run(["import-npz", &arg(&seed_npz()), "-o", &arg(&imported)]);
    let stdout = out.ok();
    assert!(stdout.contains("784-512-10"), "import report: {stdout}");
    assert!(stdout.contains("rule seed"), "import report: {stdout}");
    let written = std::fs::read(&imported).unwrap();
    let committed = std::fs::read(seed_model()).unwrap();
    assert!(
        written == committed,
        "import-npz wrote {} bytes that differ from the committed weights/seed.bnn ({} bytes)",
        written.len(),
        committed.len()
    );

    let seed = eval(&imported, &[]);
    let line = accuracy_line(seed.ok());
    assert!(line.contains("90.19 % (9019 / 10000)"), "{line}");
    assert!(seed.stdout.contains("rule seed"), "{}", seed.stdout);

    let scores = eval(&imported, &["--rule", "scores"]);
    let line = accuracy_line(scores.ok());
    assert!(line.contains("94.39 % (9439 / 10000)"), "{line}");
    assert!(scores.stdout.contains("rule scores"), "{}", scores.stdout);

    // The rule stored at import time is the one eval uses by default.
    let with_scores = dir.path().join("scores.bnn");
    run([
        "import-npz",
        &arg(&seed_npz()),
        "-o",
        &arg(&with_scores),
        "--rule",
        "scores",
    ])
    .ok();
    assert_ne!(std::fs::read(&with_scores).unwrap(), committed);
    let stored = eval(&with_scores, &[]);
    let line = accuracy_line(stored.ok());
    assert!(line.contains("94.39 %"), "{line}");
    // And `--rule seed` overrides it back.
    let back = eval(&with_scores, &["--rule", "seed"]);
    assert!(accuracy_line(back.ok()).contains("90.19 %"));
}

#[test]
fn verify_finds_every_score_identical_to_reference_and_scalar() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let out = eval(&seed_model(), &["--verify"]);
    let stdout = out.ok();
    let verified: Vec<&str> = stdout.lines().filter(|l| l.starts_with("verify")).collect();
    assert_eq!(verified.len(), 2, "two verify lines in:\n{stdout}");
    for line in &verified {
        assert!(
            line.contains("10000 / 10000 identical scores"),
            "verify line: {line}"
        );
    }
    assert!(verified[0].contains("float reference"), "{}", verified[0]);
    assert!(verified[1].contains("scalar kernel"), "{}", verified[1]);
    assert!(accuracy_line(stdout).contains("90.19 %"));
}

#[test]
fn every_kernel_the_cpu_runs_gives_the_same_results_and_others_are_refused() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let mut baseline: Option<String> = None;
    let mut ran = Vec::new();
    for kernel in Kernel::ALL {
        let name = kernel.name();
        let out = eval(&seed_model(), &["--kernel", name]);
        if out.code == 0 {
            let stdout = out.ok();
            assert_seed_report(stdout, &format!("kernel {name}"));
            let results = results_part(stdout);
            match &baseline {
                None => baseline = Some(results),
                Some(b) => assert_eq!(&results, b, "kernel {name} changes the report"),
            }
            ran.push(kernel);
        } else {
            out.fails(2, &["--kernel", name, "not supported by this CPU"]);
        }
        // The binary and the library must agree on what this CPU runs.
        assert_eq!(
            out.code == 0,
            kernel.is_available(),
            "bnn and bnn_core disagree about kernel {name}"
        );
    }
    assert!(
        ran.contains(&Kernel::Scalar),
        "the scalar kernel always runs"
    );
    eprintln!("kernels run: {ran:?}");
}

#[test]
fn thread_count_does_not_change_the_results() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let mut reports = Vec::new();
    for threads in ["1", "2"] {
        let out = eval(&seed_model(), &["--threads", threads]);
        let stdout = out.ok();
        assert_seed_report(stdout, &format!("{threads} threads"));
        reports.push(results_part(stdout));
    }
    assert_eq!(reports[0], reports[1]);
    // The report really holds a per-class table and a 10x10 matrix.
    let matrix_rows = reports[0]
        .lines()
        .skip_while(|l| !l.starts_with("confusion matrix"))
        .skip(2)
        .count();
    assert_eq!(matrix_rows, 10, "confusion matrix:\n{}", reports[0]);
}

#[test]
fn info_reports_shape_size_and_compression() {
    let out = run(["info", &arg(&seed_model())]);
    let stdout = out.ok();
    let field = |name: &str| -> String {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}"))[name.len()..]
            .trim()
            .to_string()
    };
    assert_eq!(field("shape"), "784-512-10");
    let file_bytes: u64 = field("file bytes").replace(',', "").parse().unwrap();
    assert_eq!(
        file_bytes,
        std::fs::metadata(seed_model()).unwrap().len(),
        "file bytes is the model's size on disk"
    );
    let ratio: f64 = field("compression")
        .split('x')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("compression line: {}", field("compression")));
    assert!(ratio > 31.0, "compression {ratio} is not above 31x");
    // The sparse kernel's copy: at least the packed weights (784·512 + 512·10
    // bits), at most twice them.
    let transposed: u64 = field("transposed")
        .split(' ')
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap();
    let packed = (784 * 512 + 512 * 10) / 8;
    assert!(
        (packed..=2 * packed).contains(&transposed),
        "transposed {transposed}"
    );
    assert_eq!(field("decision rule"), "seed");
}

/// CI reruns the suite with `BNN_KERNEL` forced; the binary must get it.
/// `bnn kernels` marks as default the kernel named by the suite's
/// `BNN_KERNEL` when it is set, and the best this CPU runs when not.
#[test]
fn the_binary_runs_the_kernel_the_suite_forces() {
    let out = run(["kernels"]);
    let stdout = out.ok();
    let marked: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("(default)"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let want = match std::env::var("BNN_KERNEL") {
        Ok(name) if !name.trim().is_empty() => name.trim().to_string(),
        _ => bnn_core::kernel::available()[0].name().to_string(),
    };
    assert_eq!(marked, [want.as_str()], "bnn kernels:\n{stdout}");
    let mode = match std::env::var("BNN_LAYER") {
        Ok(name) if !name.trim().is_empty() => name.trim().to_string(),
        _ => "auto".to_string(),
    };
    let line = format!("layers   {mode} (BNN_LAYER");
    assert!(
        stdout.contains(&line),
        "no '{line}' in bnn kernels:\n{stdout}"
    );
}
