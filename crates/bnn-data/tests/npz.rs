//! `.npz` weight import: the real seed file and generated good and bad files.

use std::path::{Path, PathBuf};

use bnn_data::npz::{read_seed_layers, NpyData, NpzArchive};
use bnn_data::DataError;
use bnn_testkit::expect::error as fails;
use bnn_testkit::files::write;
use bnn_testkit::npz::{f32s, f64s, i64s, npy, zip_bytes, CompressionMethod};

/// Writes an `.npz` holding `arrays` (name without `.npy`, .npy bytes).
fn npz(path: &Path, arrays: &[(&str, Vec<u8>)], method: CompressionMethod) {
    let entries: Vec<(String, Vec<u8>)> = arrays
        .iter()
        .map(|(name, bytes)| (format!("{name}.npy"), bytes.clone()))
        .collect();
    write(path, &zip_bytes(&entries, method));
}

/// ±1 pattern for an `rows x cols` matrix, deterministic.
fn pattern(rows: usize, cols: usize) -> Vec<i64> {
    (0..rows * cols)
        .map(|i| if (i * 7 + i / 3) % 5 < 2 { -1 } else { 1 })
        .collect()
}

/// A valid 3-layer file: 6 -> 4 -> 3 -> 2.
fn good_arrays() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("fc1_w", npy("<i8", "(4, 6)", &i64s(&pattern(4, 6)))),
        (
            "fc1_b",
            npy("<f8", "(1, 4)", &f64s(&[0.5, -0.25, 0.0, 3.0])),
        ),
        ("fc2_w", npy("<i8", "(3, 4)", &i64s(&pattern(3, 4)))),
        ("fc2_b", npy("<f8", "(3,)", &f64s(&[1.0, 2.0, -1.0]))),
        ("fc3_w", npy("<i8", "(2, 3)", &i64s(&pattern(2, 3)))),
        ("fc3_b", npy("<f8", "(1, 2)", &f64s(&[0.125, -0.125]))),
    ]
}

/// `good_arrays` with `name` replaced by `bytes` (or removed for `None`).
fn with(name: &str, bytes: Option<Vec<u8>>) -> Vec<(&'static str, Vec<u8>)> {
    good_arrays()
        .into_iter()
        .filter_map(|(n, b)| {
            if n == name {
                bytes.clone().map(|nb| (n, nb))
            } else {
                Some((n, b))
            }
        })
        .collect()
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    fn file(&self, name: &str, arrays: &[(&str, Vec<u8>)]) -> PathBuf {
        let p = self.0.path().join(name);
        npz(&p, arrays, CompressionMethod::Stored);
        p
    }
}

/// Asserts the error is about `array` in `path` and mentions every word.
fn assert_array_err(e: &DataError, path: &Path, array: &str, words: &[&str]) {
    let m = e.to_string();
    assert!(
        m.starts_with(&format!("{}: array '{array}'", path.display())),
        "{m}"
    );
    for w in words {
        assert!(m.contains(w), "{m} lacks {w:?}");
    }
    assert!(!m.contains('\n'), "{m}");
}

#[test]
fn good_file_stored_and_deflated() {
    let d = Dir::new();
    for method in [CompressionMethod::Stored, CompressionMethod::Deflated] {
        let p = d.0.path().join(format!("good-{method:?}.npz"));
        npz(&p, &good_arrays(), method);
        let layers = read_seed_layers(&p).unwrap();
        let dims: Vec<_> = layers
            .iter()
            .map(|l| (l.name.as_str(), l.rows, l.cols))
            .collect();
        assert_eq!(dims, [("fc1", 4, 6), ("fc2", 3, 4), ("fc3", 2, 3)]);
        let expected: Vec<i8> = pattern(4, 6).iter().map(|&x| x as i8).collect();
        assert_eq!(layers[0].weights, expected);
        assert_eq!(layers[0].bias, [0.5, -0.25, 0.0, 3.0]);
        assert_eq!(layers[1].bias, [1.0, 2.0, -1.0]);
        assert_eq!(layers[2].bias, [0.125, -0.125]);
    }
}

#[test]
fn other_weight_and_bias_dtypes_are_accepted() {
    let d = Dir::new();
    let pat = pattern(4, 6);
    let signs: Vec<i8> = pat.iter().map(|&x| x as i8).collect();
    let as_bool: Vec<u8> = pat.iter().map(|&x| u8::from(x == 1)).collect();
    let as_i8: Vec<u8> = signs.iter().map(|&x| x as u8).collect();
    let as_i32: Vec<u8> = pat.iter().flat_map(|&x| (x as i32).to_le_bytes()).collect();
    let as_i16: Vec<u8> = pat.iter().flat_map(|&x| (x as i16).to_le_bytes()).collect();
    let as_f32 = f32s(&pat.iter().map(|&x| x as f32).collect::<Vec<_>>());
    let as_f64 = f64s(&pat.iter().map(|&x| x as f64).collect::<Vec<_>>());
    let as_f64_be: Vec<u8> = pat.iter().flat_map(|&x| (x as f64).to_be_bytes()).collect();
    for (descr, data) in [
        ("|b1", as_bool),
        ("|i1", as_i8),
        ("<i2", as_i16),
        ("<i4", as_i32),
        ("<f4", as_f32),
        ("<f8", as_f64),
        (">f8", as_f64_be),
    ] {
        let p = d.file("t.npz", &with("fc1_w", Some(npy(descr, "(4, 6)", &data))));
        let layers = read_seed_layers(&p).unwrap_or_else(|e| panic!("{descr}: {e}"));
        assert_eq!(layers[0].weights, signs, "{descr}");
    }
    // Bias as float32 and as int64.
    let p = d.file(
        "t.npz",
        &with(
            "fc2_b",
            Some(npy("<f4", "(1, 3)", &f32s(&[0.5, 1.5, -2.0]))),
        ),
    );
    assert_eq!(read_seed_layers(&p).unwrap()[1].bias, [0.5, 1.5, -2.0]);
    let p = d.file(
        "t.npz",
        &with("fc2_b", Some(npy("<i8", "(3,)", &i64s(&[3, -4, 0])))),
    );
    assert_eq!(read_seed_layers(&p).unwrap()[1].bias, [3.0, -4.0, 0.0]);
}

#[test]
fn bool_true_is_plus_one() {
    let d = Dir::new();
    let arrays = vec![
        ("fc1_w", npy("|b1", "(1, 3)", &[1, 0, 1])),
        ("fc1_b", npy("<f8", "(1,)", &f64s(&[0.0]))),
    ];
    let layers = read_seed_layers(&d.file("b.npz", &arrays)).unwrap();
    assert_eq!(layers[0].weights, [1, -1, 1]);
}

#[test]
fn weights_other_than_plus_minus_one_are_rejected() {
    let d = Dir::new();
    for (bad, shown) in [(0i64, "is 0"), (2, "is 2"), (-2, "is -2")] {
        let mut w = pattern(3, 4);
        w[5] = bad;
        let p = d.file(
            "w.npz",
            &with("fc2_w", Some(npy("<i8", "(3, 4)", &i64s(&w)))),
        );
        let e = fails(read_seed_layers(&p));
        assert!(matches!(e, DataError::NpzArray { .. }), "{e}");
        assert_array_err(&e, &p, "fc2_w", &["flat index 5", shown]);
    }
    let mut w: Vec<f32> = pattern(4, 6).iter().map(|&x| x as f32).collect();
    w[23] = 0.5;
    let p = d.file(
        "w.npz",
        &with("fc1_w", Some(npy("<f4", "(4, 6)", &f32s(&w)))),
    );
    assert_array_err(
        &fails(read_seed_layers(&p)),
        &p,
        "fc1_w",
        &["flat index 23", "0.5"],
    );
    w[23] = f32::NAN;
    let p = d.file(
        "w.npz",
        &with("fc1_w", Some(npy("<f4", "(4, 6)", &f32s(&w)))),
    );
    assert_array_err(
        &fails(read_seed_layers(&p)),
        &p,
        "fc1_w",
        &["flat index 23", "NaN"],
    );
    let w = vec![1u8; 24];
    let p = d.file("w.npz", &with("fc1_w", Some(npy("|u1", "(4, 6)", &w))));
    // All-+1 uint8 weights are valid, and read as +1.
    let layers = read_seed_layers(&p).unwrap();
    assert_eq!(layers.len(), 3);
    assert_eq!((layers[0].rows, layers[0].cols), (4, 6));
    assert_eq!(layers[0].weights, vec![1i8; 24]);
    let mut w = w;
    w[0] = 255;
    let p = d.file("w.npz", &with("fc1_w", Some(npy("|u1", "(4, 6)", &w))));
    assert_array_err(
        &fails(read_seed_layers(&p)),
        &p,
        "fc1_w",
        &["flat index 0", "255"],
    );
}

#[test]
fn non_finite_bias_is_rejected() {
    let d = Dir::new();
    for (bad, shown) in [
        (f64::NAN, "NaN"),
        (f64::INFINITY, "inf"),
        (f64::NEG_INFINITY, "-inf"),
    ] {
        let p = d.file(
            "b.npz",
            &with(
                "fc1_b",
                Some(npy("<f8", "(1, 4)", &f64s(&[0.0, 1.0, bad, 2.0]))),
            ),
        );
        let e = fails(read_seed_layers(&p));
        assert_array_err(&e, &p, "fc1_b", &["flat index 2", shown, "finite"]);
    }
    let p = d.file(
        "b.npz",
        &with("fc1_b", Some(npy("|b1", "(4,)", &[0, 1, 0, 1]))),
    );
    assert_array_err(&fails(read_seed_layers(&p)), &p, "fc1_b", &["bool"]);
}

#[test]
fn missing_arrays_are_named() {
    let d = Dir::new();
    let p = d.file("m.npz", &with("fc1_w", None));
    let e = fails(read_seed_layers(&p));
    assert!(
        matches!(&e, DataError::NpzMissingArray { array, .. } if array == "fc1_w"),
        "{e}"
    );
    assert!(e.to_string().starts_with(&p.display().to_string()), "{e}");

    let p = d.file("m.npz", &with("fc2_b", None));
    let e = fails(read_seed_layers(&p));
    assert!(
        matches!(&e, DataError::NpzMissingArray { array, .. } if array == "fc2_b"),
        "{e}"
    );
    assert!(e.to_string().contains("'fc2_b' is missing"), "{e}");

    // A missing fcK_w with a later layer present is a gap, named; fc3 is
    // never dropped silently.
    let p = d.file("m.npz", &with("fc2_w", None));
    let e = fails(read_seed_layers(&p));
    assert!(
        matches!(&e, DataError::NpzMissingArray { array, .. } if array == "fc2_w"),
        "{e}"
    );
    // Without fc3 at all, the layers simply end after fc2.
    let two: Vec<_> = good_arrays()
        .into_iter()
        .filter(|(n, _)| !n.starts_with("fc3"))
        .collect();
    let p = d.file("m.npz", &two);
    assert_eq!(read_seed_layers(&p).unwrap().len(), 2);

    let p = d.file("empty.npz", &[]);
    assert!(matches!(
        fails(read_seed_layers(&p)),
        DataError::NpzMissingArray { .. }
    ));
}

#[test]
fn wrong_shapes_are_rejected() {
    let d = Dir::new();
    let w = i64s(&pattern(4, 6));
    for shape in ["(24,)", "(2, 2, 6)", "(1, 4, 6)"] {
        let p = d.file("s.npz", &with("fc1_w", Some(npy("<i8", shape, &w))));
        let e = fails(read_seed_layers(&p));
        assert_array_err(&e, &p, "fc1_w", &[shape, "(out, in)"]);
    }
    let p = d.file("s.npz", &with("fc1_w", Some(npy("<i8", "(0, 6)", &[]))));
    assert_array_err(&fails(read_seed_layers(&p)), &p, "fc1_w", &["(0, 6)"]);
    for shape in ["(5,)", "(4, 1)", "(1, 5)", "(2, 2)", "()"] {
        let n: usize = if shape == "()" {
            1
        } else {
            shape
                .trim_matches(|c| c == '(' || c == ')' || c == ',')
                .split(", ")
                .map(|s| s.parse::<usize>().unwrap())
                .product()
        };
        let p = d.file(
            "s.npz",
            &with("fc1_b", Some(npy("<f8", shape, &f64s(&vec![0.0; n])))),
        );
        let e = fails(read_seed_layers(&p));
        assert_array_err(&e, &p, "fc1_b", &[shape, "(1, 4) or (4,)"]);
    }
}

#[test]
fn shape_chain_must_agree() {
    let d = Dir::new();
    // fc2 takes 5 inputs but fc1 has 4 outputs.
    let p = d.file(
        "c.npz",
        &with("fc2_w", Some(npy("<i8", "(3, 5)", &i64s(&pattern(3, 5))))),
    );
    let e = fails(read_seed_layers(&p));
    assert_array_err(&e, &p, "fc2_w", &["5 inputs", "fc1_w has 4 outputs"]);
}

#[test]
fn data_shorter_or_longer_than_shape_is_rejected() {
    let d = Dir::new();
    let p = d.file(
        "d.npz",
        &with("fc1_b", Some(npy("<f8", "(1, 4)", &f64s(&[0.0; 3])))),
    );
    assert_array_err(
        &fails(read_seed_layers(&p)),
        &p,
        "fc1_b",
        &["truncated", "needs 32 bytes", "24"],
    );
    let p = d.file(
        "d.npz",
        &with("fc1_b", Some(npy("<f8", "(1, 4)", &f64s(&[0.0; 5])))),
    );
    assert_array_err(
        &fails(read_seed_layers(&p)),
        &p,
        "fc1_b",
        &["trailing", "40"],
    );
    let p = d.file(
        "d.npz",
        &with(
            "fc1_b",
            Some(npy("<f8", "(100000000000, 4)", &f64s(&[0.0; 4]))),
        ),
    );
    assert_array_err(&fails(read_seed_layers(&p)), &p, "fc1_b", &["truncated"]);
}

#[test]
fn unsupported_dtypes_are_rejected() {
    let d = Dir::new();
    for descr in ["<c16", "<U4", ">M8", "<f2"] {
        let p = d.file("t.npz", &with("fc1_b", Some(npy(descr, "(4,)", &[0; 64]))));
        let e = fails(read_seed_layers(&p));
        assert_array_err(&e, &p, "fc1_b", &["unsupported dtype", descr]);
    }
    let mut structured = npy("<f8", "(4,)", &f64s(&[0.0; 4]));
    let h = String::from_utf8_lossy(&structured).replace("'<f8'", "[('a', '<f8')]");
    structured = h.into_bytes();
    let p = d.file("t.npz", &with("fc1_b", Some(structured)));
    assert_array_err(&fails(read_seed_layers(&p)), &p, "fc1_b", &[]);
}

#[test]
fn not_a_zip() {
    let d = Dir::new();
    let p = d.0.path().join("x.npz");
    std::fs::write(&p, b"\x93NUMPY this is a bare .npy, not an archive").unwrap();
    let e = fails(read_seed_layers(&p));
    let m = e.to_string();
    assert!(matches!(e, DataError::Npz { .. }), "{m}");
    assert!(
        m.starts_with(&format!("{}: bad .npz archive", p.display())),
        "{m}"
    );
    let e = fails(read_seed_layers(&d.0.path().join("absent.npz")));
    assert!(matches!(e, DataError::Io { .. }), "{e}");
}

#[test]
fn truncated_zip_is_rejected_at_every_cut() {
    let d = Dir::new();
    let full = d.file("full.npz", &good_arrays());
    let bytes = std::fs::read(&full).unwrap();
    let n = bytes.len();
    for cut in [0, 1, 4, 30, 100, n / 3, n / 2, n - 30, n - 22, n - 1] {
        let p = d.0.path().join(format!("cut{cut}.npz"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let e = fails(read_seed_layers(&p));
        let m = e.to_string();
        assert!(m.starts_with(&p.display().to_string()), "cut {cut}: {m}");
        assert!(matches!(e, DataError::Npz { .. }), "cut {cut}: {m}");
    }
}

#[test]
fn corrupted_entry_fails_its_checksum() {
    let d = Dir::new();
    let p = d.file("c.npz", &good_arrays());
    let mut bytes = std::fs::read(&p).unwrap();
    // Flip the last byte of fc1_b's data (stored, so the bytes are visible).
    let needle = f64s(&[0.5, -0.25, 0.0, 3.0]);
    let at = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .unwrap();
    bytes[at + needle.len() - 1] ^= 0x01;
    std::fs::write(&p, &bytes).unwrap();
    let e = fails(read_seed_layers(&p));
    assert_array_err(&e, &p, "fc1_b", &["checksum"]);
}

#[test]
fn archive_api() {
    let d = Dir::new();
    let p = d.file("a.npz", &good_arrays());
    let mut a = NpzArchive::open(&p).unwrap();
    assert_eq!(a.path(), p);
    let mut names = a.names();
    names.sort();
    assert_eq!(
        names,
        ["fc1_b", "fc1_w", "fc2_b", "fc2_w", "fc3_b", "fc3_w"]
    );
    assert!(a.contains("fc2_b") && !a.contains("fc4_w"));
    let b = a.read("fc2_b").unwrap();
    assert_eq!(b.shape, [3]);
    assert_eq!(b.data, NpyData::F64(vec![1.0, 2.0, -1.0]));
    assert!(matches!(
        fails(a.read("nope")),
        DataError::NpzMissingArray { .. }
    ));
}

/// The real seed weights, shipped in `weights/seed/`.
#[test]
fn seed_file_parses() {
    let p = bnn_testkit::paths::seed_npz();
    let layers = read_seed_layers(&p).unwrap();
    assert_eq!(layers.len(), 2);
    let (l1, l2) = (&layers[0], &layers[1]);
    assert_eq!((l1.name.as_str(), l1.rows, l1.cols), ("fc1", 512, 784));
    assert_eq!((l2.name.as_str(), l2.rows, l2.cols), ("fc2", 10, 512));
    assert_eq!((l1.weights.len(), l1.bias.len()), (512 * 784, 512));
    assert_eq!((l2.weights.len(), l2.bias.len()), (5120, 10));
    // Checksums computed independently from the raw file.
    let sum = |w: &[i8]| w.iter().map(|&x| i64::from(x)).sum::<i64>();
    assert_eq!(sum(&l1.weights), -174);
    assert_eq!(sum(&l2.weights), -8);
    assert_eq!(&l1.weights[..3], &[1, 1, -1]);
    assert_eq!(&l2.weights[..3], &[-1, -1, -1]);
    assert_eq!(l1.bias[0], -0.006562499999999999);
    assert_eq!(l1.bias[511], 0.002249999999999998);
    assert_eq!(l2.bias[0], -0.019312500000000014);
    assert_eq!(l2.bias[9], -0.02137500000000001);
    let b2: f64 = l2.bias.iter().sum();
    assert!((b2 - -0.175625).abs() < 1e-12, "{b2}");
}
