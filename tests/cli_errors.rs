//! Bad input of every kind: each run must end with the documented exit code
//! (2 for usage errors, 1 otherwise), nothing on stdout, and one stderr line
//! `bnn: error: ...` naming the file and the problem; never a panic, and
//! never a half-written output file.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};

use bnn_data::idx::write_images;
use bnn_testkit::npz::{f32s, f64s, npy, zip_bytes, CompressionMethod};
use common::{arg, gzip, idx_bytes, random_images, run, seed_model, seed_npz};

const IMAGES: u32 = 0x0803;

fn classify(inputs: &[&Path]) -> common::Run {
    let mut args = vec!["classify".to_string(), arg(&seed_model())];
    args.extend(inputs.iter().map(|p| arg(p)));
    run(args)
}

/// A valid IDX file of 300 random images, as bytes.
fn good_idx() -> Vec<u8> {
    idx_bytes(IMAGES, [300, 28, 28], &random_images(300, 1).pixels)
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

// ---------------------------------------------------------------- models

#[test]
fn a_missing_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.bnn");
    let input = write(dir.path(), "in.idx", &good_idx());
    let m = arg(&missing);
    run(["info", &m]).fails(1, &[&m, "cannot load model", "No such file"]);
    run(["classify", &m, &arg(&input)]).fails(1, &[&m, "No such file"]);
    run(["eval", &m, "--data", &arg(dir.path()), "--no-fetch"]).fails(1, &[&m, "No such file"]);
}

#[test]
fn a_directory_is_not_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = arg(dir.path());
    run(["info", &d]).fails(1, &[&d, "is a directory, not a model file"]);
}

#[test]
fn a_corrupt_model_is_caught_by_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(seed_model()).unwrap();
    let input = write(dir.path(), "in.idx", &good_idx());
    // One bit in the weights, one in the stored checksum itself.
    for (name, at) in [("weights.bnn", good.len() / 2), ("crc.bnn", good.len() - 1)] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        let path = write(dir.path(), name, &bad);
        let p = arg(&path);
        run(["info", &p]).fails(1, &[&p, "checksum mismatch", "corrupt"]);
        run(["classify", &p, &arg(&input)]).fails(1, &[&p, "checksum mismatch"]);
    }
}

#[test]
fn a_truncated_or_foreign_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(seed_model()).unwrap();
    for len in [10, 200, good.len() - 1] {
        let path = write(dir.path(), &format!("cut{len}.bnn"), &good[..len]);
        run(["info", &arg(&path)]).fails(1, &[&arg(&path), "truncated"]);
    }
    let mut longer = good.clone();
    longer.extend_from_slice(b"extra");
    let path = write(dir.path(), "long.bnn", &longer);
    run(["info", &arg(&path)]).fails(1, &[&arg(&path), "5 bytes of trailing data"]);
    // A file of another kind (the NumPy weights) given as a model.
    let npz = arg(&seed_npz());
    run(["info", &npz]).fails(1, &[&npz, "not a .bnn model file"]);
}

// ---------------------------------------------------------------- IDX inputs

#[test]
fn truncated_idx_files_are_refused_at_every_offset() {
    let dir = tempfile::tempdir().unwrap();
    let full = good_idx();
    let total = full.len();
    assert_eq!(total, 16 + 300 * 784);
    // Cut inside the magic number: not recognisable as IDX at all.
    for len in [0, 3] {
        let path = write(dir.path(), &format!("cut{len}"), &full[..len]);
        classify(&[&path]).fails(1, &[&arg(&path), "not an IDX image file, PNG or PGM"]);
    }
    // Cut inside the header.
    for len in [4, 10, 15] {
        let path = write(dir.path(), &format!("cut{len}"), &full[..len]);
        let has = format!("header needs 16 bytes but file has only {len} bytes");
        classify(&[&path]).fails(1, &[&arg(&path), "truncated IDX image file", &has]);
    }
    // Cut inside the data, including right after the header.
    for len in [16, 17, 16 + 784 * 150 + 7, total - 1] {
        let path = write(dir.path(), &format!("cut{len}"), &full[..len]);
        let has =
            format!("header claims 300 images of 28x28 ({total} bytes) but file has {len} bytes");
        let out_file = dir.path().join("out.csv");
        let out = run([
            "classify",
            &arg(&seed_model()),
            &arg(&path),
            "-o",
            &arg(&out_file),
        ]);
        out.fails(1, &[&arg(&path), "truncated IDX image file", &has]);
        assert!(!out_file.exists(), "failed run left {}", out_file.display());
    }
}

#[test]
fn idx_headers_that_lie_are_refused_without_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = random_images(300, 2).pixels;
    // More images claimed than present.
    let path = write(
        dir.path(),
        "more",
        &idx_bytes(IMAGES, [1000, 28, 28], &pixels),
    );
    let more = "header claims 1000 images of 28x28 (784016 bytes) but file has 235216 bytes";
    classify(&[&path]).fails(1, &[&arg(&path), "truncated", more]);
    // The largest count the header can hold: refused at once, not allocated.
    let path = write(
        dir.path(),
        "huge",
        &idx_bytes(IMAGES, [u32::MAX, 28, 28], &pixels),
    );
    classify(&[&path]).fails(1, &[&arg(&path), "truncated", "4294967295 images"]);
    // Fewer claimed than present.
    let path = write(
        dir.path(),
        "fewer",
        &idx_bytes(IMAGES, [299, 28, 28], &pixels),
    );
    classify(&[&path]).fails(1, &[&arg(&path), "trailing data", "299 images"]);
}

#[test]
fn wrong_magic_numbers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = random_images(10, 3).pixels;
    // A label file's magic, raw: not recognised as an image file at all.
    let labels = idx_bytes(0x0801, [10, 28, 28], &pixels);
    let raw = write(dir.path(), "labels", &labels);
    classify(&[&raw]).fails(1, &[&arg(&raw), "not an IDX image file"]);
    // Compressed, the magic is seen after decompression and named.
    let gz = write(dir.path(), "labels.gz", &gzip(&labels));
    classify(&[&gz]).fails(
        1,
        &[&arg(&gz), "bad magic number", "0x00000803", "0x00000801"],
    );
}

#[test]
fn a_truncated_gzip_idx_is_refused_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let packed = gzip(&good_idx());
    for len in [10, packed.len() / 2, packed.len() - 4] {
        let path = write(dir.path(), &format!("cut{len}.gz"), &packed[..len]);
        let out_file = dir.path().join("out.json");
        let out = run([
            "classify",
            &arg(&seed_model()),
            &arg(&path),
            "-o",
            &arg(&out_file),
            "--format",
            "json",
        ]);
        out.fails(1, &[&arg(&path)]);
        assert!(
            ["truncated", "cut off", "incomplete"]
                .iter()
                .any(|w| out.stderr.contains(w)),
            "cut at {len}: {}",
            out.stderr
        );
        assert!(!out_file.exists());
    }
}

#[test]
fn images_of_the_wrong_size_name_both_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = vec![200u8; 5 * 400];
    let path = dir.path().join("small-idx3-ubyte");
    write_images(
        &path,
        &bnn_data::idx::Images {
            count: 5,
            rows: 20,
            cols: 20,
            pixels,
        },
    )
    .unwrap();
    classify(&[&path]).fails(1, &[&arg(&path), "20x20", "784"]);
}

// ---------------------------------------------------------------- other inputs

#[test]
fn files_that_are_not_images_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = write(dir.path(), "readme.txt", b"hello, these are not pixels\n");
    classify(&[&text]).fails(1, &[&arg(&text), "not an IDX image file, PNG or PGM"]);

    let missing = dir.path().join("missing.idx");
    classify(&[&missing]).fails(1, &[&arg(&missing), "No such file"]);

    let empty_dir = dir.path().join("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    classify(&[&empty_dir]).fails(1, &[&arg(&empty_dir), "no .png or .pgm images"]);

    let mut fake_png = b"\x89PNG\r\n\x1a\n".to_vec();
    fake_png.extend_from_slice(&[0xAB; 100]);
    let png = write(dir.path(), "fake.png", &fake_png);
    classify(&[&png]).fails(1, &[&arg(&png), "invalid PNG"]);

    let pgm = write(dir.path(), "short.pgm", b"P5\n28 28\n255\n\x00\x01\x02");
    classify(&[&pgm]).fails(1, &[&arg(&pgm), "invalid PGM", "truncated"]);

    let pgm = write(dir.path(), "over.pgm", b"P2 28 28 10\n11");
    classify(&[&pgm]).fails(1, &[&arg(&pgm), "invalid PGM", "exceeds maxval"]);

    // A good input followed by a bad one: nothing is written for either.
    let good = write(dir.path(), "good", &good_idx());
    classify(&[&good, &text]).fails(1, &[&arg(&text)]);
}

// ---------------------------------------------------------------- options

#[test]
fn bad_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = write(dir.path(), "in", &good_idx());
    let (m, i) = (arg(&seed_model()), arg(&input));
    let data = arg(dir.path());

    run(["classify", &m, &i, "--rule", "vote"]).usage_error(&["vote", "--rule"]);
    run(["eval", &m, "--data", &data, "--no-fetch", "--rule", "vote"]).usage_error(&["--rule"]);
    run(["classify", &m, &i, "--format", "xml"]).usage_error(&["xml", "--format"]);
    run(["classify", &m, &i, "--threads", "many"]).usage_error(&["--threads"]);
    run(["classify", &m]).usage_error(&["INPUT"]);
    run(["frobnicate"]).usage_error(&["frobnicate"]);
    // No subcommand: the usage goes to stderr, with exit code 2.
    run(Vec::<String>::new()).usage_error(&["Usage: bnn <COMMAND>"]);

    run(["classify", &m, &i, "--kernel", "sse9"]).fails(
        2,
        &[
            "--kernel",
            "'sse9'",
            "possible values: scalar, avx2, avx512, simd128, neon",
        ],
    );
    run(["eval", &m, "--data", &data, "--no-fetch", "--kernel", "gpu"])
        .fails(2, &["'gpu'", "--kernel"]);
    run(["classify", &m, &i, "--threads", "0"]).fails(2, &["--threads", "0 is out of range"]);
    run(["eval", &m, "--data", &data, "--no-fetch", "--threads", "0"])
        .fails(2, &["--threads", "0 is out of range"]);

    let out = common::bnn()
        .args(["classify", &m, &i])
        .env("BNN_KERNEL", "sse9")
        .output()
        .unwrap();
    common::Run::from_output(out).fails(2, &["BNN_KERNEL", "sse9"]);

    let out = common::bnn()
        .args(["classify", &m, &i])
        .env("BNN_LAYER", "sparse-ish")
        .output()
        .unwrap();
    common::Run::from_output(out).fails(
        2,
        &[
            "BNN_LAYER",
            "unknown layer mode 'sparse-ish'",
            "auto, dense, sparse",
        ],
    );
}

#[test]
fn eval_without_mnist_and_without_fetching_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("no-mnist");
    std::fs::create_dir(&empty).unwrap();
    let d = arg(&empty);
    run(["eval", &arg(&seed_model()), "--data", &d, "--no-fetch"])
        .fails(1, &[&d, "MNIST not found", "bnn fetch", "--data"]);
    // Nothing was fetched or created there.
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn eval_with_a_damaged_test_set_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("mnist");
    std::fs::create_dir(&data).unwrap();
    // All four files exist, so no fetch is attempted; the test images are
    // cut short.
    let images = idx_bytes(IMAGES, [10_000, 28, 28], &[0u8; 784 * 10]);
    let images_path = write(&data, "t10k-images-idx3-ubyte", &images);
    let mut labels = 0x0801u32.to_be_bytes().to_vec();
    labels.extend_from_slice(&10_000u32.to_be_bytes());
    labels.extend_from_slice(&[0u8; 10_000]);
    write(&data, "t10k-labels-idx1-ubyte", &labels);
    write(&data, "train-images-idx3-ubyte", &images);
    write(&data, "train-labels-idx1-ubyte", &labels);
    run([
        "eval",
        &arg(&seed_model()),
        "--data",
        &arg(&data),
        "--no-fetch",
    ])
    .fails(1, &[&arg(&images_path), "truncated"]);
}

// ---------------------------------------------------------------- import-npz

/// A zip of the seed's arrays, keeping only those `keep` accepts, plus
/// `extra` entries.
fn npz_from_seed(keep: impl Fn(&str) -> bool, extra: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut seed = zip::ZipArchive::new(std::fs::File::open(seed_npz()).unwrap()).unwrap();
    let names: Vec<String> = seed.file_names().map(String::from).collect();
    let mut entries: Vec<(String, Vec<u8>)> = Vec::new();
    for name in names.into_iter().filter(|n| keep(n)) {
        let mut bytes = Vec::new();
        seed.by_name(&name)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        entries.push((name, bytes));
    }
    entries.extend(extra.iter().map(|(n, b)| (n.to_string(), b.clone())));
    zip_bytes(&entries, CompressionMethod::Stored)
}

fn import(npz: &Path, out: &Path) -> common::Run {
    run(["import-npz", &arg(npz), "-o", &arg(out)])
}

#[test]
fn bad_npz_files_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.bnn");

    let text = write(dir.path(), "text.npz", b"fc1_w = [[1, -1]]\n");
    import(&text, &out).fails(1, &[&arg(&text), "bad .npz archive"]);

    let seed = std::fs::read(seed_npz()).unwrap();
    for len in [0, 100, seed.len() / 2, seed.len() - 10] {
        let cut = write(dir.path(), &format!("cut{len}.npz"), &seed[..len]);
        import(&cut, &out).fails(1, &[&arg(&cut)]);
    }

    let no_bias = write(
        dir.path(),
        "no_bias.npz",
        &npz_from_seed(|n| n != "fc1_b.npy", &[]),
    );
    import(&no_bias, &out).fails(1, &[&arg(&no_bias), "'fc1_b'", "missing"]);

    let unrelated = write(
        dir.path(),
        "unrelated.npz",
        &npz_from_seed(
            |_| false,
            &[("weights.npy", npy("<f4", "(2,)", &f32s(&[1.0, -1.0])))],
        ),
    );
    import(&unrelated, &out).fails(1, &[&arg(&unrelated), "'fc1_w'", "missing"]);

    // A weight that is not ±1 is named with its index and value.
    let zero = write(
        dir.path(),
        "zero.npz",
        &npz_from_seed(
            |_| false,
            &[
                (
                    "fc1_w.npy",
                    npy("<f4", "(2, 3)", &f32s(&[1.0, -1.0, 1.0, 1.0, 0.0, -1.0])),
                ),
                ("fc1_b.npy", npy("<f4", "(2,)", &f32s(&[0.5, -0.5]))),
            ],
        ),
    );
    import(&zero, &out).fails(1, &[&arg(&zero), "'fc1_w'", "flat index 4", "not -1 or +1"]);

    assert!(!out.exists(), "a failed import wrote {}", out.display());
    // A good import into a directory that does not exist fails cleanly too,
    // as a usage error found before the weights are read.
    let nowhere = dir.path().join("no/such/dir/model.bnn");
    import(&seed_npz(), &nowhere).fails(2, &[&arg(&nowhere), "does not exist"]);
}

#[test]
fn a_gap_between_layers_and_a_bias_beyond_f32_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("model.bnn");
    // fc1 and fc3 without fc2: fc3 would otherwise be dropped silently.
    let gap = write(
        dir.path(),
        "gap.npz",
        &npz_from_seed(
            |n| !n.starts_with("fc2"),
            &[
                ("fc3_w.npy", npy("<f4", "(10, 512)", &f32s(&[1.0; 5120]))),
                ("fc3_b.npy", npy("<f4", "(10,)", &f32s(&[0.0; 10]))),
            ],
        ),
    );
    import(&gap, &out).fails(1, &[&arg(&gap), "'fc2_w'", "missing"]);

    // An f64 output bias that no f32 score can hold.
    let mut bias = [0.5f64; 10];
    bias[3] = 1e300;
    let huge = write(
        dir.path(),
        "huge.npz",
        &npz_from_seed(
            |n| n != "fc2_b.npy",
            &[("fc2_b.npy", npy("<f8", "(10,)", &f64s(&bias)))],
        ),
    );
    import(&huge, &out).fails(1, &[&arg(&huge), "fc2_b", "flat index 3", "1e300", "f32"]);
    assert!(!out.exists(), "a failed import wrote {}", out.display());
}

// ---------------------------------------------------------------- wording

/// The `: `-separated parts of an error line that repeat the part before
/// them, as when a cause is printed both inside its wrapper's message and
/// again as the next link of the chain.
fn repeated_parts(line: &str) -> Vec<String> {
    let parts: Vec<&str> = line.split(": ").collect();
    parts
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0].to_string())
        .collect()
}

#[test]
fn error_lines_say_each_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let missing_model = dir.path().join("nope.bnn");
    let missing_input = dir.path().join("nope.idx");
    let cut_gz = write(dir.path(), "cut.gz", &gzip(&good_idx())[..10]);
    let runs = [
        run(["info", &arg(&missing_model)]),
        classify(&[&missing_input]),
        classify(&[&cut_gz]),
    ];
    let mut repeats = Vec::new();
    for out in &runs {
        out.fails(1, &[]);
        let line = out.stderr.trim_end();
        let parts = repeated_parts(line);
        if !parts.is_empty() {
            repeats.push(format!("{line}\n    (repeats {parts:?})"));
        }
    }
    assert!(
        repeats.is_empty(),
        "error lines repeat their cause:\n  {}",
        repeats.join("\n  ")
    );
}

#[test]
fn a_data_path_that_is_a_file_is_named_as_one() {
    // It used to be "MNIST not found", with advice to fetch into the file;
    // without --no-fetch it printed that a fetch was starting, then failed.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "keep").unwrap();
    let (m, f) = (arg(&seed_model()), arg(&file));
    // A text file is read as a CSV of your data, and named with its line.
    run(["eval", &m, "--data", &f, "--no-fetch"]).fails(1, &[&format!("{f}: line 1: ")]);
    let below = arg(&file.join("mnist"));
    run(["eval", &m, "--data", &below])
        .fails(1, &[&below, &format!("{f} is a file and not a directory")]);
    assert_eq!(std::fs::read(&file).unwrap(), b"keep");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn usage_errors_are_escaped_and_short() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("x.idx");
    std::fs::write(&input, idx_bytes(0x803, [1, 28, 28], &[0; 784])).unwrap();
    let (m, i) = (arg(&seed_model()), arg(&input));
    // A carriage return in a refused value would overwrite the line.
    let r = run(["classify", &m, &i, "--threads", "4\r2"]);
    r.fails(2, &["--threads", "'4\\r2'"]);
    assert!(!r.stderr.contains('\r'), "{:?}", r.stderr);
    // A value of 5,000 characters: one line of at most 300, naming the flag.
    let long = "9".repeat(5000);
    let r = run(["classify", &m, &i, "--threads", &long]);
    r.fails(2, &["for '--threads <N>'", "999…999", "give 1 to 1024"]);
    let line = r.stderr.trim_end();
    assert!(line.chars().count() <= 300, "{line}");
}
