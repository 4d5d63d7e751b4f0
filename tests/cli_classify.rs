//! `bnn classify` end to end: every row it writes, in CSV or JSON, to stdout
//! or a file, from IDX (raw or gzip), PNG or PGM input, equals what the
//! library computes for the same pixels.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use bnn_core::DecisionRule;
use bnn_data::idx::{write_images, Images};
use common::{
    arg, assert_no_panic, assert_rows_match, bnn, first_test_images, gzip, load_seed, parse_csv,
    parse_json, random_images, run, seed_model, Row,
};

/// The first 300 MNIST test images as a raw IDX file in `dir`.
fn small_idx(dir: &Path) -> (PathBuf, Images) {
    let images = first_test_images(300);
    let path = dir.join("first300-idx3-ubyte");
    write_images(&path, &images).unwrap();
    (path, images)
}

fn classify(args: &[String]) -> common::Run {
    let mut all = vec!["classify".to_string(), arg(&seed_model())];
    all.extend(args.iter().cloned());
    run(all)
}

fn check_idx_rows(rows: &[Row], path: &Path, images: &Images, rule: Option<DecisionRule>) {
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row.source, arg(path), "row {i} source");
        assert_eq!(row.index, i, "row {i} index");
    }
    let mut model = load_seed();
    if let Some(rule) = rule {
        model.set_rule(rule);
    }
    assert_rows_match(rows, &model, &images.pixels);
}

#[test]
fn idx_rows_in_csv_equal_the_library() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let (path, images) = small_idx(dir.path());
    let out = classify(&[arg(&path)]);
    let rows = parse_csv(out.ok());
    assert_eq!(rows.len(), 300);
    check_idx_rows(&rows, &path, &images, None);
    assert!(
        out.stderr.contains("classified 300 images from 1 inputs"),
        "summary on stderr: {}",
        out.stderr
    );
    // Real digits: the output is not one constant class.
    let distinct: std::collections::BTreeSet<usize> = rows.iter().map(|r| r.class).collect();
    assert!(distinct.len() >= 8, "classes seen: {distinct:?}");

    // `--rule scores` changes the classes to the argmax, scores unchanged.
    let scores = classify(&[arg(&path), "--rule".into(), "scores".into()]);
    let by_scores = parse_csv(scores.ok());
    check_idx_rows(&by_scores, &path, &images, Some(DecisionRule::Scores));
    assert!(
        rows.iter().zip(&by_scores).any(|(a, b)| a.class != b.class),
        "the two decision rules never disagree on 300 digits"
    );
}

#[test]
fn idx_rows_in_json_equal_the_library_and_files_equal_stdout() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let (path, images) = small_idx(dir.path());
    let json = classify(&[arg(&path), "--format".into(), "json".into()]);
    let rows = parse_json(json.ok());
    assert_eq!(rows.len(), 300);
    check_idx_rows(&rows, &path, &images, None);

    let csv = classify(&[arg(&path)]);
    assert_eq!(parse_csv(csv.ok()), rows, "CSV and JSON rows agree");

    for (format, stdout) in [("csv", &csv.stdout), ("json", &json.stdout)] {
        let file = dir.path().join(format!("out.{format}"));
        // An existing file is replaced.
        std::fs::write(&file, "old contents\n").unwrap();
        let out = classify(&[
            arg(&path),
            "-o".into(),
            arg(&file),
            "--format".into(),
            format.into(),
        ]);
        assert_eq!(out.ok(), "", "-o leaves stdout empty");
        assert_eq!(&std::fs::read_to_string(&file).unwrap(), stdout, "{format}");
    }
    assert_eq!(
        bnn_testkit::files::listing(dir.path()),
        ["first300-idx3-ubyte", "out.csv", "out.json"],
        "only the input and the outputs remain"
    );
}

#[test]
fn gzip_idx_gives_the_same_rows_and_inputs_keep_their_order() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let (raw, images) = small_idx(dir.path());
    let gz = dir.path().join("first300-idx3-ubyte.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&raw).unwrap())).unwrap();
    // A gzip file is recognised by content, whatever its name.
    let gz_unnamed = dir.path().join("compressed.bin");
    std::fs::copy(&gz, &gz_unnamed).unwrap();

    let out = classify(&[arg(&gz), arg(&raw), arg(&gz_unnamed)]);
    let rows = parse_csv(out.ok());
    assert_eq!(rows.len(), 900);
    check_idx_rows(&rows[..300], &gz, &images, None);
    check_idx_rows(&rows[300..600], &raw, &images, None);
    check_idx_rows(&rows[600..], &gz_unnamed, &images, None);
}

/// A 28×28 PNG of `color` type with the given 8-bit samples.
fn write_png(path: &Path, size: u32, color: png::ColorType, depth: png::BitDepth, data: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), size, size);
    enc.set_color(color);
    enc.set_depth(depth);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
}

fn write_pgm_p5(path: &Path, pixels: &[u8]) {
    let mut bytes = b"P5\n# an MNIST digit\n28 28\n255\n".to_vec();
    bytes.extend_from_slice(pixels);
    std::fs::write(path, bytes).unwrap();
}

/// A text PGM with maxval 15: sample `v / 17` must come back as `v / 17 * 17`.
fn write_pgm_p2(path: &Path, pixels: &[u8]) -> Vec<u8> {
    let mut text = String::from("P2\n28 28\n15\n");
    for row in pixels.chunks(28) {
        let line: Vec<String> = row.iter().map(|&p| (p / 17).to_string()).collect();
        text.push_str(&line.join(" "));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
    pixels.iter().map(|&p| p / 17 * 17).collect()
}

/// Image files of several kinds, each with the grey pixels a correct
/// decoder must produce; returned sorted by file name.
fn image_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let digits = first_test_images(6);
    let digit = |i: usize| digits.image(i).to_vec();
    let mut files = Vec::new();

    let p = dir.join("a_gray8.png");
    write_png(
        &p,
        28,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &digit(0),
    );
    files.push((p, digit(0)));

    let p = dir.join("b_gray16.png");
    let wide: Vec<u8> = digit(1).iter().flat_map(|&v| [v, v]).collect();
    write_png(
        &p,
        28,
        png::ColorType::Grayscale,
        png::BitDepth::Sixteen,
        &wide,
    );
    files.push((p, digit(1)));

    // Grey RGB: R = G = B = v has luma v.
    let p = dir.join("c_rgb_gray.png");
    let rgb: Vec<u8> = digit(2).iter().flat_map(|&v| [v, v, v]).collect();
    write_png(&p, 28, png::ColorType::Rgb, png::BitDepth::Eight, &rgb);
    files.push((p, digit(2)));

    // Coloured RGB: ink in pure green (luma 150, on), faint strokes in pure
    // red (luma 76, off). Reading one channel or averaging gets this wrong.
    let p = dir.join("d_rgb_color.png");
    let (mut rgb, mut luma) = (Vec::new(), Vec::new());
    for &v in &digit(3) {
        let (px, y) = match v {
            0 => ([0, 0, 0], 0),
            v if v >= 128 => ([0, 255, 0], 150),
            _ => ([255, 0, 0], 76),
        };
        rgb.extend_from_slice(&px);
        luma.push(y);
    }
    write_png(&p, 28, png::ColorType::Rgb, png::BitDepth::Eight, &rgb);
    files.push((p, luma));

    let p = dir.join("e_binary.pgm");
    write_pgm_p5(&p, &digit(4));
    files.push((p, digit(4)));

    let p = dir.join("f_text.pgm");
    let expected = write_pgm_p2(&p, &digit(5));
    files.push((p, expected));

    // Not an image: a directory listing must skip it.
    std::fs::write(dir.join("notes.txt"), "not an image\n").unwrap();
    files
}

#[test]
fn png_and_pgm_files_and_directories_classify_like_the_library() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let files = image_files(dir.path());
    let pixels: Vec<u8> = files.iter().flat_map(|(_, p)| p.clone()).collect();
    let model = load_seed();

    // The coloured image would binarise differently under a naive decoder.
    let (_, luma) = &files[3];
    assert!(luma.contains(&150) && luma.contains(&76));

    let from_dir = parse_csv(classify(&[arg(dir.path())]).ok());
    let names: Vec<String> = from_dir.iter().map(|r| r.source.clone()).collect();
    let want: Vec<String> = files.iter().map(|(p, _)| arg(p)).collect();
    assert_eq!(
        names, want,
        "directory entries, sorted by name, notes.txt skipped"
    );
    assert!(from_dir.iter().all(|r| r.index == 0));
    assert_rows_match(&from_dir, &model, &pixels);

    // The same files given one by one, in reverse order.
    let mut reversed: Vec<String> = files.iter().map(|(p, _)| arg(p)).collect();
    reversed.reverse();
    let one_by_one =
        parse_json(classify(&[reversed, vec!["--format".into(), "json".into()]].concat()).ok());
    let mut rev_pixels = Vec::new();
    for (_, p) in files.iter().rev() {
        rev_pixels.extend_from_slice(p);
    }
    assert_rows_match(&one_by_one, &model, &rev_pixels);
    for (row, (path, _)) in one_by_one.iter().zip(files.iter().rev()) {
        assert_eq!(row.source, arg(path));
    }
}

#[test]
fn images_of_the_wrong_size_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.png");
    write_png(
        &big,
        32,
        png::ColorType::Grayscale,
        png::BitDepth::Eight,
        &[0u8; 32 * 32],
    );
    classify(&[arg(&big)]).fails(1, &[&arg(&big), "32x32", "28x28"]);

    let pgm = dir.path().join("small.pgm");
    let mut bytes = b"P5 20 20 255\n".to_vec();
    bytes.extend_from_slice(&[7u8; 400]);
    std::fs::write(&pgm, bytes).unwrap();
    classify(&[arg(&pgm)]).fails(1, &[&arg(&pgm), "20x20", "28x28"]);

    // One bad file in a directory fails the run and names that file.
    let folder = dir.path().join("mixed");
    std::fs::create_dir(&folder).unwrap();
    let good = folder.join("a.pgm");
    write_pgm_p5(&good, &[0u8; 784]);
    let bad = folder.join("b.png");
    std::fs::copy(&big, &bad).unwrap();
    let out_file = dir.path().join("out.csv");
    classify(&[arg(&folder), "-o".into(), arg(&out_file)]).fails(1, &[&arg(&bad), "32x32"]);
    assert!(
        !out_file.exists(),
        "a failed run must not leave its output file"
    );
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("random-idx3-ubyte");
    // 10,000 rows of CSV are far more than a pipe buffer holds, so the
    // writer is still writing when the reader goes away.
    write_images(&path, &random_images(10_000, 7)).unwrap();
    for format in ["csv", "json"] {
        let mut child = bnn()
            .args([
                "classify",
                &arg(&seed_model()),
                &arg(&path),
                "--format",
                format,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start bnn");
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut head = String::new();
        for _ in 0..2 {
            assert!(
                reader.read_line(&mut head).unwrap() > 0,
                "{format}: too few lines"
            );
        }
        drop(reader);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_no_panic(&stderr);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: a closed stdout must exit 0 quietly; stderr: {stderr}"
        );
        assert!(!stderr.contains("error"), "{format}: stderr: {stderr}");
        // The run ended at the closed pipe, not after writing everything.
        assert!(
            !stderr.contains("classified"),
            "{format}: the writer never met the closed pipe: {stderr}"
        );
        let first = head.lines().next().unwrap();
        if format == "csv" {
            assert_eq!(first, common::csv_header());
        } else {
            assert_eq!(first, "[");
        }
    }
}
