//! `bnn classify` with NumPy: `.npy` uint8 arrays in (streamed, checked
//! like IDX), `--format npy` out, and `--classes-only` rows.

mod common;

use std::path::Path;

use bnn_testkit::npz::npy;
use common::{arg, assert_rows_match, first_test_images, load_seed, parse_csv, run, seed_model};

/// `pixels` as a `.npy` of `shape`.
fn write_npy(path: &Path, shape: &str, pixels: &[u8]) {
    std::fs::write(path, npy("|u1", shape, pixels)).unwrap();
}

fn classify(args: &[String]) -> common::Run {
    let mut all = vec!["classify".to_string(), arg(&seed_model())];
    all.extend(args.iter().cloned());
    run(all)
}

/// `classify INPUT --format npy EXTRA... -o OUT`, which must succeed.
fn classify_to_npy(input: &Path, out: &Path, extra: &[&str]) {
    let mut all = vec![arg(input), "--format".into(), "npy".into()];
    all.extend(extra.iter().map(|s| s.to_string()));
    all.extend(["-o".into(), arg(out)]);
    classify(&all).ok();
}

/// Everything after the source column, line by line.
fn without_source(csv: &str) -> Vec<String> {
    csv.lines()
        .skip(1)
        .map(|l| l.split_once(',').unwrap().1.to_string())
        .collect()
}

#[test]
fn npy_rows_equal_the_library_and_the_same_images_as_idx() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let images = first_test_images(300);
    let idx = dir.path().join("first300-idx3-ubyte");
    bnn_data::idx::write_images(&idx, &images).unwrap();
    let from_idx = classify(&[arg(&idx)]);
    for (name, shape) in [
        ("flat.npy", "(300, 784)"),
        ("square.npy", "(300, 28, 28)"),
        ("channel.npy", "(300, 28, 28, 1)"),
    ] {
        let path = dir.path().join(name);
        write_npy(&path, shape, &images.pixels);
        let out = classify(&[arg(&path)]);
        let rows = parse_csv(out.ok());
        assert_eq!(rows.len(), 300, "{name}");
        assert!(rows.iter().all(|r| r.source == arg(&path)), "{name}");
        assert!(rows.iter().enumerate().all(|(i, r)| r.index == i), "{name}");
        assert_rows_match(&rows, &load_seed(), &images.pixels);
        assert_eq!(
            without_source(out.ok()),
            without_source(from_idx.ok()),
            "{name}"
        );
    }
}

#[test]
fn npy_through_a_fifo_streams_like_a_file() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let images = first_test_images(100);
    let bytes = npy("|u1", "(100, 784)", &images.pixels);
    let fifo = bnn_testkit::special::fifo(dir.path(), "images.npy");
    let writer = {
        let fifo = fifo.clone();
        let bytes = bytes.clone();
        std::thread::spawn(move || std::fs::write(fifo, bytes).unwrap())
    };
    let out = classify(&[arg(&fifo)]);
    writer.join().unwrap();
    let rows = parse_csv(out.ok());
    assert_rows_match(&rows, &load_seed(), &images.pixels);

    // Cut short in a FIFO: found while streaming, and no partial output.
    let cut = bnn_testkit::special::fifo(dir.path(), "cut.npy");
    let writer = {
        let cut = cut.clone();
        let short = bytes[..bytes.len() - 7].to_vec();
        std::thread::spawn(move || std::fs::write(cut, short).unwrap())
    };
    let target = dir.path().join("out.csv");
    std::fs::write(&target, "old").unwrap();
    classify(&[arg(&cut), "-o".into(), arg(&target)]).fails(1, &[&arg(&cut), "truncated"]);
    writer.join().unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "old");
}

#[test]
fn classes_only_csv_and_json_leave_the_scores_out() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let images = first_test_images(200);
    let path = dir.path().join("images.npy");
    write_npy(&path, "(200, 28, 28)", &images.pixels);
    let full = parse_csv(classify(&[arg(&path)]).ok());
    assert_eq!(full.len(), 200);
    let out = classify(&[arg(&path), "--classes-only".into()]);
    let mut lines = out.ok().lines();
    assert_eq!(lines.next(), Some("source,index,class"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 200);
    for (row, want) in rows.iter().zip(&full) {
        assert_eq!(
            *row,
            format!("{},{},{}", want.source, want.index, want.class)
        );
    }
    let json = classify(&[
        arg(&path),
        "--classes-only".into(),
        "--format".into(),
        "json".into(),
    ]);
    let value: serde_json::Value = serde_json::from_str(json.ok()).unwrap();
    let items = value.as_array().unwrap();
    assert_eq!(items.len(), 200);
    for (item, want) in items.iter().zip(&full) {
        let obj = item.as_object().unwrap();
        assert_eq!(obj.len(), 3, "{obj:?}");
        assert_eq!(obj["class"].as_u64(), Some(want.class as u64));
        assert_eq!(obj["index"].as_u64(), Some(want.index as u64));
    }
}

/// Splits a `.npy` written by `--format npy` into its header dict and data.
fn parse_npy(bytes: &[u8]) -> (String, &[u8]) {
    assert!(bytes.starts_with(b"\x93NUMPY\x01\x00"), "magic");
    let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + len) % 64, 0, "header padded to 64 bytes");
    let header = std::str::from_utf8(&bytes[10..10 + len]).unwrap();
    assert!(header.ends_with('\n'));
    (header.trim_end().to_string(), &bytes[10 + len..])
}

#[test]
fn format_npy_holds_classes_and_scores_bit_for_bit() {
    bnn_testkit::need!(bnn_testkit::need::MNIST);
    let dir = tempfile::tempdir().unwrap();
    let images = first_test_images(300);
    let path = dir.path().join("images.npy");
    write_npy(&path, "(300, 784)", &images.pixels);
    let model = load_seed();
    let want = common::library_scores(&model, &images.pixels);

    let out = dir.path().join("out.npy");
    classify_to_npy(&path, &out, &[]);
    let bytes = std::fs::read(&out).unwrap();
    let (header, data) = parse_npy(&bytes);
    assert_eq!(
        header,
        "{'descr': [('class', '<i8'), ('scores', '<f4', (10,))], 'fortran_order': False, 'shape': (300,), }"
    );
    assert_eq!(data.len(), 300 * (8 + 40));
    for (i, record) in data.chunks_exact(48).enumerate() {
        let class = i64::from_le_bytes(record[..8].try_into().unwrap());
        assert_eq!(class as usize, want.classes[i], "image {i}");
        for (c, s) in record[8..].chunks_exact(4).enumerate() {
            let s = f32::from_le_bytes(s.try_into().unwrap());
            assert_eq!(
                s.to_bits(),
                want.scores_of(i)[c].to_bits(),
                "image {i} score {c}"
            );
        }
    }

    let classes = dir.path().join("classes.npy");
    classify_to_npy(&path, &classes, &["--classes-only"]);
    let bytes = std::fs::read(&classes).unwrap();
    let (header, data) = parse_npy(&bytes);
    assert_eq!(
        header,
        "{'descr': '<i8', 'fortran_order': False, 'shape': (300,), }"
    );
    let got: Vec<usize> = data
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as usize)
        .collect();
    assert_eq!(got, want.classes);
}

/// An array of no images classifies into an empty `.npy` of records with
/// its header, which NumPy reads as shape `(0,)`.
#[test]
fn an_empty_array_gives_an_empty_result() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.npy");
    write_npy(&path, "(0, 784)", &[]);
    let out = dir.path().join("none-out.npy");
    classify_to_npy(&path, &out, &[]);
    let bytes = std::fs::read(&out).unwrap();
    let header = String::from_utf8_lossy(&bytes[10..]);
    assert!(header.contains("'shape': (0,)"), "{header}");
    assert_eq!(bytes.len() % 64, 0, "records after the header");
}

#[test]
fn hostile_npy_files_are_refused_with_one_line_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let pixels = vec![0u8; 3 * 784];
    let mut fortran = npy("|u1", "(3, 784)", &pixels);
    let at = fortran.windows(5).position(|w| w == b"False").unwrap();
    fortran.splice(at..at + 5, b"True ".iter().copied());
    let cases: Vec<(&str, Vec<u8>, Vec<&str>)> = vec![
        (
            "float.npy",
            npy("<f4", "(3, 196)", &pixels),
            vec!["dtype '<f4' is not uint8"],
        ),
        (
            "int16.npy",
            npy("<u2", "(3, 392)", &pixels),
            vec!["dtype '<u2' is not uint8"],
        ),
        ("fortran.npy", fortran, vec!["Fortran order"]),
        (
            "flat.npy",
            npy("|u1", "(2352,)", &pixels),
            vec!["shape (2352,)", "(N, inputs)"],
        ),
        (
            "five.npy",
            npy("|u1", "(3, 1, 28, 28, 1)", &pixels),
            vec!["shape (3, 1, 28, 28, 1)"],
        ),
        ("nothing.npy", npy("|u1", "(3, 0)", &[]), vec!["no pixels"]),
        (
            "wide.npy",
            npy("|u1", "(3, 783)", &pixels[..3 * 783]),
            vec!["783 values", "784 inputs"],
        ),
        (
            "short.npy",
            npy("|u1", "(3, 784)", &pixels[..100]),
            vec!["truncated"],
        ),
        (
            "long.npy",
            npy("|u1", "(2, 784)", &pixels),
            vec!["trailing data"],
        ),
        (
            "huge.npy",
            npy("|u1", "(1000000000000, 784)", &pixels),
            vec!["truncated", "1000000000000"],
        ),
        (
            "overflow.npy",
            npy("|u1", "(99999999999999999, 99999999999, 784)", &pixels),
            vec!["overflows"],
        ),
        (
            "magic.npy",
            b"\x93NUMPY\x09\x00\x10\x00".to_vec(),
            vec!["unsupported .npy format version 9.0"],
        ),
        (
            "cut.npy",
            b"\x93NUMPY\x01\x00\x76\x00{'descr'".to_vec(),
            vec!["header needs"],
        ),
        (
            "tiny.npy",
            b"\x93NUMPY\x01".to_vec(),
            vec!["shorter than the 10-byte minimum"],
        ),
        (
            "text.npy",
            npy("|u1", "'many'", &pixels),
            vec!["bad .npy header: shape is"],
        ),
    ];
    let target = dir.path().join("out.csv");
    std::fs::write(&target, "old").unwrap();
    for (name, bytes, needles) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let mut all = needles.clone();
        let shown = arg(&path);
        all.push(&shown);
        classify(&[arg(&path), "-o".into(), arg(&target)]).fails(1, &all);
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "old", "{name}");
    }
}
