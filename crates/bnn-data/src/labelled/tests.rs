//! Every source, read from files the tests write in the real layouts, and
//! each of their errors, which must name the file and the place.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;

fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(data);
    out
}

fn npz(dir: &Path, name: &str, entries: &[(&str, Vec<u8>)]) -> PathBuf {
    let path = dir.join(name);
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    for (name, bytes) in entries {
        zip.start_file(
            format!("{name}.npy"),
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    path
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn f64s(v: &[f64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn ucs4(names: &[&str], width: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for n in names {
        let mut chars: Vec<u32> = n.chars().map(|c| c as u32).collect();
        chars.resize(width, 0);
        out.extend(chars.iter().flat_map(|c| c.to_le_bytes()));
    }
    out
}

fn opts() -> SourceOptions {
    SourceOptions::default()
}

/// The error of opening `path`, checked to be one line naming the file.
fn error(path: &Path, opts: &SourceOptions) -> String {
    let e = open(path, opts).unwrap_err().to_string();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    assert!(e.contains(&name), "does not name {name}: {e}");
    assert!(!e.contains('\n') && e.len() <= 300, "{e}");
    e
}

fn assert_says(e: &str, says: &str) {
    assert!(e.contains(says), "expected {says:?} in: {e}");
}

// ---- .npz and .npy ----

#[test]
fn npz_keras_names_give_both_splits() {
    let dir = tempfile::tempdir().unwrap();
    let path = npz(
        dir.path(),
        "data.npz",
        &[
            ("x_train", npy("|u1", "(3, 2, 2)", &[1; 12])),
            ("y_train", npy("<i8", "(3,)", &i64s(&[0, 2, 1]))),
            ("x_test", npy("|u1", "(1, 2, 2)", &[9; 4])),
            ("y_test", npy("<i8", "(1,)", &i64s(&[4]))),
        ],
    );
    let set = open(&path, &opts()).unwrap();
    assert_eq!(set, read_npz(&path).unwrap());
    assert_eq!(set.input_map, (2, 2, 1));
    assert_eq!(set.classes, 5);
    assert_eq!(set.train.labels, [0, 2, 1]);
    assert_eq!(set.test.unwrap().values, Values::U8(vec![9; 4]));
}

#[test]
fn npz_float_features_class_names_and_channels_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = npz(
        dir.path(),
        "f.npz",
        &[
            ("x", npy("<f8", "(2, 2)", &f64s(&[0.5, -1.0, 2.0, 1e30]))),
            ("y", npy("<u2", "(2,)", &[1, 0, 0, 0])),
            ("class_names", npy("<U3", "(2,)", &ucs4(&["cat", "ox"], 3))),
        ],
    );
    let set = open(&path, &opts()).unwrap();
    assert_eq!(set.input_map, (1, 2, 1));
    assert_eq!(set.train.values, Values::F32(vec![0.5, -1.0, 2.0, 1e30]));
    assert_eq!(set.train.labels, [1, 0]);
    assert_eq!(set.class_names.unwrap(), ["cat", "ox"]);
    assert_eq!(set.classes, 2);
    // Bytes names, and labels below the names' count.
    let path = npz(
        dir.path(),
        "s.npz",
        &[
            ("x", npy("<f4", "(2, 1)", &[0; 8])),
            ("y", npy("|u1", "(2,)", &[0, 0])),
            ("class_names", npy("|S1", "(3,)", b"abc")),
        ],
    );
    let set = open(&path, &opts()).unwrap();
    assert_eq!(
        (set.classes, set.class_names.unwrap()),
        (3, vec!["a".into(), "b".into(), "c".into()])
    );
    // (N, C, H, W): sample 0 has red plane [1, 2], green [3, 4].
    let path = npz(
        dir.path(),
        "chw.npz",
        &[
            ("x", npy("|u1", "(2, 2, 1, 2)", &[1, 2, 3, 4, 5, 6, 7, 8])),
            ("y", npy("|u1", "(2,)", &[0, 1])),
        ],
    );
    let chw = SourceOptions {
        channels_first: true,
        ..opts()
    };
    let set = open(&path, &chw).unwrap();
    assert_eq!(set.input_map, (1, 2, 2));
    assert_eq!(set.train.values, Values::U8(vec![1, 3, 2, 4, 5, 7, 6, 8]));
    // Without the option the same array is (N, H, W, C).
    assert_eq!(open(&path, &opts()).unwrap().input_map, (2, 1, 2));
}

#[test]
fn npz_errors_name_the_file_and_array() {
    let dir = tempfile::tempdir().unwrap();
    type Entries = Vec<(&'static str, Vec<u8>)>;
    let u8x = |n: usize| npy("|u1", &format!("({n}, 1)"), &vec![0; n]);
    let cases: Vec<(Entries, &str)> = vec![
        (
            vec![
                ("x", npy("<f8", "(1, 2, 2)", &[0; 32])),
                ("y", npy("|u1", "(1,)", &[0])),
            ],
            "array 'x': dtype float64: images are uint8",
        ),
        (
            vec![
                ("x", npy("<i4", "(1, 1)", &[0; 4])),
                ("y", npy("|u1", "(1,)", &[0])),
            ],
            "array 'x': dtype int32: features are uint8, float32 or float64",
        ),
        (
            vec![
                (
                    "x",
                    npy("<f8", "(2, 3)", &f64s(&[0.0, 1.0, 2.0, 3.0, f64::NAN, 5.0])),
                ),
                ("y", npy("|u1", "(2,)", &[0, 1])),
            ],
            "array 'x': row 1, column 1: NaN is not a finite value",
        ),
        (
            vec![
                ("x", npy("<f8", "(1, 2)", &f64s(&[0.0, 1e300]))),
                ("y", npy("|u1", "(1,)", &[0])),
            ],
            "array 'x': row 0, column 1: 1e300, beyond float32 is not a finite value",
        ),
        (
            vec![("x", u8x(2)), ("y", npy("|u1", "(3,)", &[0; 3]))],
            "array 'y': 3 labels for the 2 images of x",
        ),
        (
            vec![("x", u8x(1)), ("y", npy("<i8", "(1,)", &i64s(&[-1])))],
            "array 'y': label 0 is -1, not a class 0..=65534",
        ),
        (
            vec![("x", u8x(2)), ("y", npy("<i8", "(2,)", &i64s(&[0, 65535])))],
            "array 'y': label 1 is 65535, not a class 0..=65534",
        ),
        (
            vec![("x", u8x(1)), ("y", npy("<f4", "(1,)", &[0; 4]))],
            "array 'y': dtype float32: labels are integers",
        ),
        (vec![("x", u8x(2))], "array 'y' is missing"),
        (
            vec![
                ("x", u8x(2)),
                ("y", npy("|u1", "(2,)", &[0, 1])),
                ("class_names", npy("|O", "(2,)", &[0; 16])),
            ],
            "array 'class_names': object arrays are not supported, save with dtype=str",
        ),
        (
            vec![
                ("x", u8x(2)),
                ("y", npy("|u1", "(2,)", &[0, 2])),
                ("class_names", npy("|S1", "(2,)", b"ab")),
            ],
            "label 1 is 2, but there are 2 classes",
        ),
        (
            vec![
                ("x", u8x(2)),
                ("y", npy("|u1", "(2,)", &[0, 1])),
                ("class_names", npy("|S1", "(2,)", b"aa")),
            ],
            "array 'class_names': classes 0 and 1 are both named 'a'",
        ),
        (
            vec![("x", u8x(2)), ("y", npy("|u1", "(2,)", &[0, 0]))],
            "1 class: a classifier needs at least 2 classes",
        ),
        (
            vec![
                ("x", npy("|u1", "(0, 1)", &[])),
                ("y", npy("|u1", "(0,)", &[])),
            ],
            "array 'x': holds no samples",
        ),
        (
            vec![
                ("x", npy("|u1", "(1, 0)", &[])),
                ("y", npy("|u1", "(1,)", &[0])),
            ],
            "array 'x': shape (1, 0): samples of no values",
        ),
        (
            vec![("weights", npy("|u1", "(1,)", &[0]))],
            "expected arrays x_train and y_train (Keras' names) or x and y, found weights",
        ),
        (
            vec![
                ("x_train", npy("|u1", "(2, 1, 1)", &[0; 2])),
                ("y_train", npy("|u1", "(2,)", &[0, 1])),
                ("x_test", npy("|u1", "(1, 2, 1)", &[0; 2])),
                ("y_test", npy("|u1", "(1,)", &[0])),
            ],
            "array 'x_test': holds samples of 2x1x1, x_train of 1x1x1",
        ),
    ];
    for (entries, says) in cases {
        let path = npz(dir.path(), "bad.npz", &entries);
        assert_says(&error(&path, &opts()), says);
    }
}

#[test]
fn npz_values_are_bounded_by_the_header_before_reading() {
    let dir = tempfile::tempdir().unwrap();
    // A header claiming 2^32 values, with no data behind it.
    let path = npz(
        dir.path(),
        "huge.npz",
        &[
            ("x", npy("|u1", "(65536, 65536)", &[])),
            ("y", npy("|u1", "(1,)", &[0])),
        ],
    );
    assert_says(
        &error(&path, &opts()),
        "array 'x': shape (65536, 65536) holds 4294967296 values, more than the 2147483648 accepted",
    );
}

#[test]
fn npz_unlabelled_without_y() {
    let dir = tempfile::tempdir().unwrap();
    let path = npz(dir.path(), "x.npz", &[("x", npy("|u1", "(2, 3)", &[1; 6]))]);
    let unlabelled = SourceOptions {
        unlabelled: true,
        ..opts()
    };
    let set = open(&path, &unlabelled).unwrap();
    assert!(set.train.labels.is_empty());
    assert_eq!((set.train.count(set.input_len()), set.classes), (2, 0));
}

#[test]
fn lone_npy_with_labels_from_another_npy() {
    let dir = tempfile::tempdir().unwrap();
    let x = dir.path().join("x.npy");
    std::fs::write(&x, npy("|u1", "(3, 2, 2, 3)", &[5; 36])).unwrap();
    let y = dir.path().join("y.npy");
    std::fs::write(
        &y,
        npy("<i4", "(3,)", &[0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0]),
    )
    .unwrap();
    let with = SourceOptions {
        labels: Some(y.clone()),
        ..opts()
    };
    let set = open(&x, &with).unwrap();
    assert_eq!((set.input_map, set.classes), ((2, 2, 3), 3));
    assert_eq!(set.train.labels, [0, 1, 2]);
    // No labels: an error that says what to give, unless unlabelled.
    assert_says(
        &error(&x, &opts()),
        "give its labels as another .npy of integers (--labels)",
    );
    let unlabelled = SourceOptions {
        unlabelled: true,
        ..opts()
    };
    assert!(open(&x, &unlabelled).unwrap().train.labels.is_empty());
    // Labels of another count name the labels file.
    std::fs::write(&y, npy("|u1", "(2,)", &[0, 1])).unwrap();
    let e = open(&x, &with).unwrap_err().to_string();
    assert!(e.starts_with(&y.display().to_string()), "{e}");
    assert_says(&e, "2 labels for the 3 samples of");
    // A truncated array names its file.
    std::fs::write(&x, npy("|u1", "(3, 2)", &[5; 4])).unwrap();
    assert_says(&error(&x, &with), "truncated data");
}

// ---- CSV ----

fn csv(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("d.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn csv_integer_and_string_labels() {
    let dir = tempfile::tempdir().unwrap();
    let path = csv(dir.path(), "a,b,label\r\n1, 2.5 ,3\r\n-1,0,0\r\n\r\n");
    let set = open(&path, &opts()).unwrap();
    assert_eq!(set.input_map, (1, 2, 1));
    assert_eq!(set.train.values, Values::F32(vec![1.0, 2.5, -1.0, 0.0]));
    assert_eq!((set.train.labels.clone(), set.classes), (vec![3, 0], 4));
    assert_eq!(set.class_names, None);
    // Strings: names sorted by bytes, a quoted one with a comma, and the
    // label column named, here the first.
    let path = csv(
        dir.path(),
        "species,x\n\"zebra, plains\",1\nant,2\n  \"Bee\" ,3\nant,4\n",
    );
    let named = SourceOptions {
        label_column: Some("species".into()),
        ..opts()
    };
    let set = open(&path, &named).unwrap();
    assert_eq!(
        set.class_names.clone().unwrap(),
        ["Bee", "ant", "zebra, plains"]
    );
    assert_eq!(set.train.labels, [2, 1, 0, 1]);
    assert_eq!(set.train.values, Values::F32(vec![1.0, 2.0, 3.0, 4.0]));
    // Unlabelled: every column a feature.
    let unlabelled = SourceOptions {
        unlabelled: true,
        ..opts()
    };
    let set = open(
        &path,
        &SourceOptions {
            label_column: None,
            ..unlabelled.clone()
        },
    );
    assert_says(
        &set.unwrap_err().to_string(),
        "line 2: column 'species': 'zebra, plains' is not a number",
    );
    let path = csv(dir.path(), "x,y\n1,2\n");
    let set = open(&path, &unlabelled).unwrap();
    assert_eq!((set.input_map, set.train.labels.len()), ((1, 2, 1), 0));
}

#[test]
fn csv_errors_name_the_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "a,b,label\n1,2,0\n1,1\n",
            "line 3: 2 cells, but the header names 3 columns",
        ),
        (
            "a,b,label\n1,x,0\n",
            "line 2: column 'b': 'x' is not a number",
        ),
        (
            "a,b,label\n1,2,0\n3,NaN,1\n",
            "line 3: column 'b': NaN is not a finite number",
        ),
        (
            "a,b,label\n1,inf,0\n",
            "line 2: column 'b': inf is not a finite number",
        ),
        (
            "a,b,label\n1,1e39,0\n",
            "line 2: column 'b': 1e39 is not a finite number",
        ),
        ("a,b,label\n1,,0\n", "line 2: column 'b': empty cell"),
        ("a,b,label\n1,2,\n", "line 2: column 'label': empty label"),
        (
            "a,b,label\n1,2,0\n\n3,4,1\n",
            "line 3: is blank, with rows after it",
        ),
        (
            "a,b,label\n1,2,\"0\n",
            "line 2: column 3: a quote is not closed on its line",
        ),
        (
            "a,b,label\n1,2,0\n1,2,0\n",
            "1 class: a classifier needs at least 2 classes",
        ),
        ("a,b,label\n", "rows: holds no samples"),
        ("", "is empty: a CSV needs a header row"),
        ("label\n1\n", "line 1: no feature columns"),
        (
            "a,b,label\n1,2,-3\n1,2,1\n",
            "line 2: column 'label': label -3 is not a class 0..=65534",
        ),
        (
            "a,b,label\n1,2,70000\n1,2,1\n",
            "label 70000 is not a class",
        ),
    ];
    for (text, says) in cases {
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, text.as_bytes()).unwrap();
        assert_says(&error(&path, &opts()), says);
    }
    let path = dir.path().join("latin1.csv");
    std::fs::write(&path, b"a,b,label\n1,2,caf\xe9\n").unwrap();
    assert_says(&error(&path, &opts()), "line 2: is not UTF-8 text");
    let path = csv(dir.path(), "a,b\n1,2\n");
    let named = SourceOptions {
        label_column: Some("y".into()),
        ..opts()
    };
    assert_says(
        &error(&path, &named),
        "line 1: no column named 'y' (columns: a, b)",
    );
}

// ---- IDX directories ----

fn idx(magic: u32, dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_be_bytes().to_vec();
    for d in dims {
        out.extend_from_slice(&d.to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn idx_directory_of_any_size_and_rank_4() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pixels: Vec<u8> = (0..2 * 3 * 2 * 3).collect();
    std::fs::write(
        d.join("train-images-idx4-ubyte.gz"),
        gz(&idx(0x804, &[2, 3, 2, 3], &pixels)),
    )
    .unwrap();
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(0x801, &[2], &[1, 0])).unwrap();
    std::fs::write(
        d.join("t10k-images-idx4-ubyte"),
        idx(0x804, &[1, 3, 2, 3], &[7; 18]),
    )
    .unwrap();
    std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx(0x801, &[1], &[2])).unwrap();
    let set = open(d, &opts()).unwrap();
    assert_eq!((set.input_map, set.classes), ((3, 2, 3), 3));
    assert_eq!(set.train.values, Values::U8(pixels));
    assert_eq!(set.test.unwrap().labels, [2]);

    // Rank 3 of another size; the label count must match.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("train-images-idx3-ubyte"),
        idx(0x803, &[2, 5, 4], &[1; 40]),
    )
    .unwrap();
    std::fs::write(
        d.join("train-labels-idx1-ubyte"),
        idx(0x801, &[3], &[0, 1, 1]),
    )
    .unwrap();
    let e = open(d, &opts()).unwrap_err().to_string();
    assert_says(&e, "train-images-idx3-ubyte: has 2 images but");
    std::fs::write(d.join("train-labels-idx1-ubyte"), idx(0x801, &[2], &[0, 1])).unwrap();
    assert_eq!(open(d, &opts()).unwrap().input_map, (5, 4, 1));
    // A header claiming more than the values accepted, refused before
    // anything is read.
    std::fs::write(
        d.join("train-images-idx3-ubyte"),
        idx(0x803, &[65536, 256, 256], &[]),
    )
    .unwrap();
    let e = open(d, &opts()).unwrap_err().to_string();
    assert_says(&e, "train-images-idx3-ubyte: bad dimensions");
    assert_says(&e, "more than the 2147483648 accepted");
    // Truncated data names the file.
    std::fs::write(
        d.join("train-images-idx3-ubyte"),
        idx(0x803, &[2, 5, 4], &[1; 39]),
    )
    .unwrap();
    assert_says(
        &open(d, &opts()).unwrap_err().to_string(),
        "train-images-idx3-ubyte: truncated",
    );
}

// ---- CIFAR ----

/// A CIFAR record: labels, then pixel `p` of plane `c` is `c * 100 + p % 100`.
fn cifar_record(labels: &[u8]) -> Vec<u8> {
    let mut out = labels.to_vec();
    for c in 0..3 {
        out.extend((0..1024).map(|p| (c * 100 + p % 100) as u8));
    }
    out
}

#[test]
fn cifar10_records_are_read_into_hwc() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let batch: Vec<u8> = [cifar_record(&[3]), cifar_record(&[9])].concat();
    std::fs::write(d.join("data_batch_1.bin"), &batch).unwrap();
    std::fs::write(d.join("data_batch_2.bin"), cifar_record(&[0])).unwrap();
    std::fs::write(d.join("test_batch.bin"), cifar_record(&[1])).unwrap();
    let set = open(d, &opts()).unwrap();
    assert_eq!((set.input_map, set.classes), ((32, 32, 3), 10));
    assert_eq!(set.train.labels, [3, 9, 0]);
    let Values::U8(v) = &set.train.values else {
        panic!()
    };
    assert_eq!(v.len(), 3 * 3072);
    // Pixel 101 (row 3, column 5): R 1, G 101, B 201.
    assert_eq!(&v[101 * 3..101 * 3 + 3], [1, 101, 201]);
    assert_eq!(set.test.unwrap().labels, [1]);
    assert_eq!(set.class_names, None);
    // Class names from batches.meta.txt, blank lines at its end.
    let names = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    std::fs::write(d.join("batches.meta.txt"), names).unwrap();
    let set = open(d, &opts()).unwrap();
    assert_eq!(set.class_names.unwrap()[9], "truck");
}

#[test]
fn cifar_errors_name_the_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut batch = [cifar_record(&[3]), cifar_record(&[4])].concat();
    batch.truncate(3073 + 100);
    std::fs::write(d.join("data_batch_1.bin"), &batch).unwrap();
    let e = error(&d.join("data_batch_1.bin"), &opts());
    // The file itself is not a source; the directory is.
    assert_says(&e, "not a .npz");
    let e = open(d, &opts()).unwrap_err().to_string();
    assert_says(
        &e,
        "data_batch_1.bin: 3173 bytes is not a whole number of 3073-byte CIFAR-10 records: record 1 (from byte 3073) is cut off after 100 bytes",
    );
    std::fs::write(d.join("data_batch_1.bin"), cifar_record(&[10])).unwrap();
    assert_says(
        &open(d, &opts()).unwrap_err().to_string(),
        "data_batch_1.bin: record 0: label 10 is not a class 0..=9",
    );
    std::fs::write(d.join("data_batch_1.bin"), cifar_record(&[1])).unwrap();
    std::fs::write(d.join("data_batch_3.bin"), cifar_record(&[1])).unwrap();
    assert_says(
        &open(d, &opts()).unwrap_err().to_string(),
        "data_batch_2.bin is missing but data_batch_3.bin is there",
    );
    std::fs::remove_file(d.join("data_batch_3.bin")).unwrap();
    std::fs::write(d.join("batches.meta.txt"), "a\nb\n").unwrap();
    assert_says(
        &open(d, &opts()).unwrap_err().to_string(),
        "batches.meta.txt: holds 2 class names, CIFAR-10 has 10",
    );
}

#[test]
fn cifar100_uses_the_fine_label() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("train.bin"),
        [cifar_record(&[19, 99]), cifar_record(&[0, 5])].concat(),
    )
    .unwrap();
    std::fs::write(d.join("test.bin"), cifar_record(&[1, 7])).unwrap();
    let set = open(d, &opts()).unwrap();
    assert_eq!((set.classes, set.train.labels.clone()), (100, vec![99, 5]));
    assert_eq!(set.test.unwrap().labels, [7]);
    std::fs::write(d.join("test.bin"), [0u8; 3075]).unwrap();
    assert_says(
        &open(d, &opts()).unwrap_err().to_string(),
        "test.bin: 3075 bytes is not a whole number of 3074-byte CIFAR-100 records: record 1 (from byte 3074) is cut off after 1 bytes",
    );
    std::fs::write(d.join("test.bin"), cifar_record(&[1, 100])).unwrap();
    assert_says(
        &open(d, &opts()).unwrap_err().to_string(),
        "test.bin: record 0: label 100 is not a class 0..=99",
    );
}

// ---- image folders ----

fn png_file(path: &Path, w: u32, h: u32, colour: png::ColorType, data: &[u8]) {
    let file = std::fs::File::create(path).unwrap();
    let mut enc = png::Encoder::new(file, w, h);
    enc.set_color(colour);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().unwrap();
    writer.write_image_data(data).unwrap();
    writer.finish().unwrap();
}

fn pgm_file(path: &Path, w: usize, h: usize, v: u8) {
    let mut bytes = format!("P5 {w} {h} 255\n").into_bytes();
    bytes.extend(std::iter::repeat_n(v, w * h));
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn image_folder_classes_sorted_and_colour() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for class in ["dog", "Cat"] {
        std::fs::create_dir(root.join(class)).unwrap();
    }
    std::fs::write(root.join("README.txt"), "ignored").unwrap();
    pgm_file(&root.join("dog/b.pgm"), 2, 1, 10);
    pgm_file(&root.join("dog/a.PGM"), 2, 1, 20);
    png_file(
        &root.join("Cat/x.png"),
        2,
        1,
        png::ColorType::Rgb,
        &[4, 40, 16, 255, 0, 0],
    );
    std::fs::write(root.join("Cat/notes.txt"), "ignored").unwrap();
    let set = open(root, &opts()).unwrap();
    assert_eq!(set.class_names.clone().unwrap(), ["Cat", "dog"]);
    assert_eq!((set.input_map, set.classes), ((1, 2, 3), 2));
    assert_eq!(set.train.labels, [0, 1, 1]);
    assert_eq!(
        set.train.values,
        Values::U8(vec![
            4, 40, 16, 255, 0, 0, 20, 20, 20, 20, 20, 20, 10, 10, 10, 10, 10, 10
        ])
    );
    let grey = SourceOptions {
        channels: Some(1),
        ..opts()
    };
    let set = open(root, &grey).unwrap();
    assert_eq!(set.input_map, (1, 2, 1));
    assert_eq!(set.train.values, Values::U8(vec![27, 76, 20, 20, 10, 10]));
}

#[test]
fn image_folder_with_train_and_test() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for split in ["train", "test"] {
        for class in ["a", "b"] {
            std::fs::create_dir_all(root.join(split).join(class)).unwrap();
            pgm_file(&root.join(split).join(class).join("1.pgm"), 3, 2, 1);
        }
    }
    let set = open(root, &opts()).unwrap();
    assert_eq!((set.input_map, set.classes), ((2, 3, 1), 2));
    assert_eq!(set.test.unwrap().labels, [0, 1]);
    std::fs::create_dir_all(root.join("test/c")).unwrap();
    pgm_file(&root.join("test/c/1.pgm"), 3, 2, 1);
    assert_says(
        &error(root, &opts()),
        "class c is in test/ but not in train/",
    );
}

#[test]
fn image_folder_errors_name_the_folder_or_image() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir(root.join("a")).unwrap();
    pgm_file(&root.join("a/1.pgm"), 2, 2, 1);
    assert_says(
        &error(root, &opts()),
        "holds one class folder (a/): a classifier needs at least 2 classes",
    );
    std::fs::create_dir(root.join("b")).unwrap();
    let e = open(root, &opts()).unwrap_err().to_string();
    assert!(e.starts_with(&root.join("b").display().to_string()), "{e}");
    assert_says(&e, "class folder holds no .png or .pgm images");
    pgm_file(&root.join("b/1.pgm"), 3, 2, 1);
    let e = open(root, &opts()).unwrap_err().to_string();
    assert!(
        e.starts_with(&root.join("b/1.pgm").display().to_string()),
        "{e}"
    );
    assert_says(
        &e,
        &format!(
            "image is 3x2 (WxH), but {} is 2x2",
            root.join("a/1.pgm").display()
        ),
    );
    std::fs::write(root.join("b/1.pgm"), b"P5 2 2 255\n\x01").unwrap();
    let e = open(root, &opts()).unwrap_err().to_string();
    assert_says(&e, "b/1.pgm: invalid PGM: truncated");
    std::fs::write(root.join("b/1.pgm"), b"GIF89a").unwrap();
    assert_says(
        &open(root, &opts()).unwrap_err().to_string(),
        "b/1.pgm: not a PNG or PGM image",
    );
    std::fs::remove_file(root.join("b/1.pgm")).unwrap();
    std::fs::create_dir(root.join("b/2.png")).unwrap();
    assert_says(
        &open(root, &opts()).unwrap_err().to_string(),
        "b/2.png: a directory, not an image file",
    );
    let five = SourceOptions {
        channels: Some(5),
        ..opts()
    };
    assert_says(&error(root, &five), "5 channels asked for");
}

// ---- what every source shares ----

#[test]
fn unrecognised_files_and_missing_paths_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("blob.bin");
    std::fs::write(&bin, [0u8, 159, 146, 150, 1, 2]).unwrap();
    assert_says(&error(&bin, &opts()), "not a .npz, a .npy or a CSV file");
    let idx_file = dir.path().join("imgs.idx");
    std::fs::write(&idx_file, idx(0x803, &[1, 1, 1], &[0])).unwrap();
    assert_says(
        &error(&idx_file, &opts()),
        "give the directory that holds the IDX files",
    );
    let missing = dir.path().join("missing.csv");
    assert_says(&error(&missing, &opts()), "opening");
}

#[test]
fn stratified_split_holds_a_share_of_every_class() {
    let labels: Vec<u16> = [vec![0; 10], vec![1; 3], vec![2; 1], vec![3; 2]].concat();
    let (kept, held) = stratified_split(&labels, 0.2, 7);
    let held_of = |c: u16| held.iter().filter(|&&i| labels[i] == c).count();
    // ⌊0.2·10⌉ = 2, ⌊0.6⌉ = 1, a lone sample stays, ⌊0.4⌉ = 0 but at least 1.
    assert_eq!(
        [held_of(0), held_of(1), held_of(2), held_of(3)],
        [2, 1, 0, 1]
    );
    assert_eq!(kept.len() + held.len(), labels.len());
    let mut all: Vec<usize> = kept.iter().chain(&held).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..labels.len()).collect::<Vec<_>>());
    assert!(kept.windows(2).all(|w| w[0] < w[1]) && held.windows(2).all(|w| w[0] < w[1]));
    // Deterministic, and the seed matters.
    assert_eq!(
        stratified_split(&labels, 0.2, 7),
        (kept.clone(), held.clone())
    );
    let other = (1..20).any(|s| stratified_split(&labels, 0.2, s).1 != held);
    assert!(other, "every seed held the same samples");
    assert_eq!(stratified_split(&labels, 0.0, 7).1, Vec::<usize>::new());
    assert_eq!(stratified_split(&labels, 1.0, 7).0, Vec::<usize>::new());
}

#[test]
fn selecting_samples_keeps_their_labels() {
    let s = Samples {
        values: Values::F32(vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0]),
        labels: vec![0, 1, 2],
    };
    let picked = s.select(&[2, 0], 2);
    assert_eq!(picked.values, Values::F32(vec![4.0, 5.0, 0.0, 1.0]));
    assert_eq!(picked.labels, [2, 0]);
    assert_eq!(s.count(2), 3);
}
