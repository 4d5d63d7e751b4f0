//! The `.bnn` file: round trips, and every kind of damage gives a distinct,
//! clear error — never a panic or an allocation the file does not justify.

use std::path::Path;

use bnn_core::format::{self, from_bytes, load, save, to_bytes};
use bnn_core::{BinaryDense, BitMatrix, DecisionRule, Model, Threshold};
use bnn_testkit::child::{child_arg, rerun_with_file_size_limit};
use bnn_testkit::files::listing;
use bnn_testkit::models::random_model;

fn small_model() -> Model {
    let w1 = BitMatrix::from_pm1(
        3,
        70,
        &(0..210)
            .map(|i| if i % 3 == 0 { 1 } else { -1 })
            .collect::<Vec<i8>>(),
    )
    .unwrap();
    let t = vec![
        Threshold::at_least(-2),
        Threshold::at_most(4),
        Threshold::at_least(70),
    ];
    let w2 = BitMatrix::from_pm1(2, 3, &[1, -1, 1, -1, -1, 1]).unwrap();
    Model::new(
        70,
        100,
        vec![
            BinaryDense::hidden(w1, t).unwrap(),
            BinaryDense::output(w2, vec![0.5, -1.25]).unwrap(),
        ],
        DecisionRule::Seed,
    )
    .unwrap()
}

fn parse(bytes: &[u8]) -> Result<format::ModelFile, String> {
    from_bytes(bytes, Path::new("m.bnn")).map_err(|e| e.to_string())
}

#[test]
fn round_trip_through_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.bnn");
    let model = small_model();
    save(&model, "made by a test", &path).unwrap();
    let loaded = load(&path).unwrap();
    assert_eq!(loaded.model, model);
    assert_eq!(loaded.description, "made by a test");
    assert_eq!(loaded.file_bytes, std::fs::metadata(&path).unwrap().len());
    // Header, table, description, weight streams (210 bits → 4 words, 6 bits
    // → 1 word), thresholds (3 × i16) and flip bits (1 byte), biases, CRC.
    assert_eq!(
        loaded.file_bytes as usize,
        24 + 16 + 14 + 32 + 8 + 6 + 1 + 8 + 4
    );
    // Saving again over it gives the same bytes.
    save(&model, "made by a test", &path).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        to_bytes(&model, "made by a test")
    );
}

#[test]
fn every_truncation_is_an_error() {
    let bytes = to_bytes(&small_model(), "d");
    for len in 0..bytes.len() {
        let err = parse(&bytes[..len]).unwrap_err();
        assert!(err.starts_with("m.bnn: "), "{err}");
        if len == 0 {
            assert!(err.contains("empty"), "length {len}: {err}");
        } else {
            assert!(err.contains("truncated"), "length {len}: {err}");
        }
    }
}

#[test]
fn every_flipped_bit_is_an_error() {
    let bytes = to_bytes(&small_model(), "d");
    let table_end = format::HEADER_LEN + 2 * format::LAYER_ENTRY_LEN;
    for i in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[i / 8] ^= 1 << (i % 8);
        let err = parse(&damaged).unwrap_err();
        // Header bits may be caught earlier by the size or range checks;
        // everything after the layer table only by the CRC.
        if i / 8 >= table_end {
            assert!(err.contains("checksum mismatch"), "bit {i}: {err}");
        }
    }
}

#[test]
fn header_damage_has_distinct_messages() {
    let good = to_bytes(&small_model(), "d");
    let with = |offset: usize, patch: &[u8]| {
        let mut b = good.clone();
        b[offset..offset + patch.len()].copy_from_slice(patch);
        parse(&b).unwrap_err()
    };
    assert!(with(0, b"PK\x03\x04").contains("wrong magic"));
    assert!(with(8, &4u16.to_le_bytes())
        .contains("unsupported format version 4 (this build reads 1 to 3)"));
    assert!(with(10, &[7]).contains("unknown decision rule"));
    assert!(with(12, &0u32.to_le_bytes()).contains("input length 0"));
    assert!(with(16, &0u32.to_le_bytes()).contains("layer count 0"));
    assert!(with(29, &[3]).contains("threshold width"));
    // A header claiming 2^31 neurons in a small file: refused before allocating.
    let err = with(24, &(1u32 << 31).to_le_bytes());
    assert!(err.contains("out of range"), "{err}");
    let err = with(24, &(1u32 << 24).to_le_bytes());
    assert!(
        err.contains("truncated") && err.contains("header describes"),
        "{err}"
    );
    let err = with(12, &(1u32 << 24).to_le_bytes());
    assert!(err.contains("truncated"), "{err}");
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"junk");
    assert!(parse(&trailing)
        .unwrap_err()
        .contains("4 bytes of trailing data"));
}

#[test]
fn unreadable_paths_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let err = load(&dir.path().join("missing.bnn"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.bnn"), "{err}");
    let err = load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("is a directory"), "{err}");
    let bad_dir = dir.path().join("no/such/dir/m.bnn");
    let err = save(&small_model(), "", &bad_dir).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: ", bad_dir.display())),
        "{err}"
    );
    assert!(err.contains("No such file or directory"), "{err}");
    assert!(!dir.path().join("no").exists());
}

#[test]
fn an_oversized_description_is_refused_and_the_old_file_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.bnn");
    save(&small_model(), "old", &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = save(&small_model(), &"x".repeat(2 << 20), &path).unwrap_err();
    assert!(err.to_string().contains("description"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

/// A save whose write really fails half-way (the file-size limit stops it
/// after 4 KiB of a 50 kB model) is an error naming the file, and leaves the
/// old file as it was, with nothing else beside it.
#[test]
fn a_write_that_fails_keeps_the_old_file() {
    if let Some(dir) = child_arg() {
        let path = Path::new(&dir).join("m.bnn");
        let mut rng = bnn_testkit::models::rng(1);
        let big = random_model(&mut rng, &[784, 512, 10], DecisionRule::Scores, 128);
        let err = save(&big, "new", &path).unwrap_err().to_string();
        assert!(err.contains("m.bnn"), "{err}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.bnn");
    save(&small_model(), "old", &path).unwrap();
    let before = std::fs::read(&path).unwrap();
    rerun_with_file_size_limit(
        "a_write_that_fails_keeps_the_old_file",
        4096,
        dir.path().to_str().unwrap(),
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(
        listing(dir.path()),
        ["m.bnn"],
        "the failed save left files behind"
    );
}

#[test]
fn wide_thresholds_round_trip() {
    // 40,000 inputs: a threshold beyond the i16 range needs 4-byte storage.
    let n = 40_000;
    let w1 = BitMatrix::from_pm1(2, n, &vec![1i8; 2 * n]).unwrap();
    let t = vec![Threshold::at_least(39_000), Threshold::at_most(-35_000)];
    let w2 = BitMatrix::from_pm1(1, 2, &[1, -1]).unwrap();
    let model = Model::new(
        n,
        128,
        vec![
            BinaryDense::hidden(w1, t).unwrap(),
            BinaryDense::output(w2, vec![0.0]).unwrap(),
        ],
        DecisionRule::Scores,
    )
    .unwrap();
    let bytes = to_bytes(&model, "");
    assert_eq!(parse(&bytes).unwrap().model, model);
    let narrow = to_bytes(&small_model(), "");
    assert_eq!(narrow[29], 2, "small thresholds are stored as i16");
    assert_eq!(bytes[29], 4, "large thresholds are stored as i32");
}
