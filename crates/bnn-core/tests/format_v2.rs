//! Version 2 of the `.bnn` file: u8-input models and recorded input shapes
//! round trip; version-1 models stay in version 1, byte for byte, shipped
//! weights included; and every new header field, damaged, is a clear error.

use std::path::{Path, PathBuf};

use bnn_core::format::{self, from_bytes, load, to_bytes};
use bnn_core::{
    BinaryDense, BitMatrix, DecisionRule, InputEncoding, InputShape, Model, PixelDense, Threshold,
};

fn bits(rows: usize, cols: usize, salt: usize) -> BitMatrix {
    let v: Vec<i8> = (0..rows * cols)
        .map(|i| {
            if (i * 7 + salt).is_multiple_of(3) {
                1
            } else {
                -1
            }
        })
        .collect();
    BitMatrix::from_pm1(rows, cols, &v).unwrap()
}

/// 12 pixels (a 2×3×2 image) into 5 pixel neurons, then 3 scores.
fn u8_model() -> Model {
    let t = vec![
        Threshold::at_least(-700),
        Threshold::at_most(40_000),
        Threshold::at_least(3),
        Threshold::at_most(-1),
        Threshold::at_least(0),
    ];
    let first = PixelDense::hidden(bits(5, 12, 1), t).unwrap();
    let out = BinaryDense::output(bits(3, 5, 2), vec![0.5, -1.5, 2.0]).unwrap();
    let mut m = Model::with_pixel_layer(first, vec![out], DecisionRule::Scores).unwrap();
    m.set_input_shape(InputShape::new(2, 3, 2)).unwrap();
    m
}

fn parse(bytes: &[u8]) -> Result<format::ModelFile, String> {
    from_bytes(bytes, Path::new("m.bnn")).map_err(|e| e.to_string())
}

#[test]
fn u8_models_round_trip_in_version_2() {
    let model = u8_model();
    let bytes = to_bytes(&model, "u8 test");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
    assert_eq!(bytes[11], 1, "input encoding u8");
    assert_eq!(&bytes[16..28], &[2, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0]);
    // The pixel layer's thresholds exceed i16: stored 4 bytes wide.
    assert_eq!(bytes[36 + 2], 4);
    let loaded = parse(&bytes).unwrap();
    assert_eq!(loaded.model, model);
    assert_eq!(loaded.model.input_encoding(), InputEncoding::U8);
    assert_eq!(loaded.model.input_shape(), InputShape::new(2, 3, 2));
    assert_eq!(loaded.description, "u8 test");
    // Header 36, table 2·16, description 7, pixel layer (60 bits → 1 word,
    // 5 i32 thresholds, 1 flip byte), output layer (15 bits → 1 word, 3
    // biases), CRC.
    assert_eq!(bytes.len(), 36 + 32 + 7 + (8 + 20 + 1) + (8 + 12) + 4);
    assert_eq!(to_bytes(&loaded.model, "u8 test"), bytes);

    // A one-layer u8 model: the pixel layer emits the scores.
    let one = Model::with_pixel_layer(
        PixelDense::output(bits(4, 9, 3), vec![1.0, -2.0, 0.25, 7.5]).unwrap(),
        vec![],
        DecisionRule::Seed,
    )
    .unwrap();
    let bytes = to_bytes(&one, "");
    assert_eq!(parse(&bytes).unwrap().model, one);
}

#[test]
fn a_recorded_shape_needs_version_2_and_a_flat_one_does_not() {
    let layer = BinaryDense::output(bits(2, 6, 0), vec![0.0, 1.0]).unwrap();
    let mut model = Model::new(6, 128, vec![layer], DecisionRule::Scores).unwrap();
    let v1 = to_bytes(&model, "");
    assert_eq!(u16::from_le_bytes([v1[8], v1[9]]), 1);
    model.set_input_shape(InputShape::flat(6)).unwrap();
    assert_eq!(to_bytes(&model, ""), v1, "a flat shape is no shape");
    model.set_input_shape(InputShape::new(3, 2, 1)).unwrap();
    let v2 = to_bytes(&model, "");
    assert_eq!(u16::from_le_bytes([v2[8], v2[9]]), 2);
    assert_eq!(&v2[11..13], &[0, 128], "binary at 128");
    assert_eq!(parse(&v2).unwrap().model, model);
    assert!(model.set_input_shape(InputShape::new(4, 2, 1)).is_err());
}

/// The repository's `weights/` directory.
fn weights_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../weights")
}

#[test]
fn shipped_models_save_back_byte_for_byte() {
    let mut seen = 0;
    let dir = weights_dir();
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (run from a full checkout)", dir.display()));
    for entry in entries {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("bnn") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let file = load(&path).unwrap();
        assert_eq!(
            to_bytes(&file.model, &file.description),
            bytes,
            "{} does not save back byte for byte",
            path.display()
        );
        seen += 1;
    }
    assert!(
        seen >= 3,
        "expected the shipped .bnn models in {}",
        dir.display()
    );
}

#[test]
fn every_truncation_and_flipped_bit_is_an_error() {
    let bytes = to_bytes(&u8_model(), "d");
    for len in 0..bytes.len() {
        let err = parse(&bytes[..len]).unwrap_err();
        assert!(err.starts_with("m.bnn: "), "{err}");
        if len >= 8 {
            assert!(err.contains("truncated"), "length {len}: {err}");
        }
    }
    let table_end = format::v2::HEADER_LEN + 2 * format::v2::LAYER_ENTRY_LEN;
    for i in 0..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[i / 8] ^= 1 << (i % 8);
        let err = parse(&damaged).unwrap_err();
        if i / 8 >= table_end {
            assert!(err.contains("checksum mismatch"), "bit {i}: {err}");
        }
    }
}

#[test]
fn new_header_fields_have_distinct_messages() {
    let good = to_bytes(&u8_model(), "d");
    let with = |offset: usize, patch: &[u8]| {
        let mut b = good.clone();
        b[offset..offset + patch.len()].copy_from_slice(patch);
        parse(&b).unwrap_err()
    };
    let expect = |err: String, want: &str| assert!(err.contains(want), "want '{want}': {err}");
    expect(with(11, &[2]), "unknown input encoding code 2");
    expect(with(12, &[128]), "input threshold 128 given for u8 input");
    expect(with(14, &[1]), "reserved header bytes");
    expect(
        with(16, &0u32.to_le_bytes()),
        "input shape 0x3x2 is out of range",
    );
    // Sides whose product overflows, or exceeds the widest input.
    expect(
        with(
            16,
            &[u32::MAX.to_le_bytes(), u32::MAX.to_le_bytes()].concat(),
        ),
        "out of range",
    );
    expect(with(20, &(1u32 << 24).to_le_bytes()), "out of range");
    // A shape of more pixels than the file's layer bodies hold: caught by
    // the size check before anything is allocated.
    expect(with(16, &(1000u32).to_le_bytes()), "truncated");
    expect(with(28, &0u32.to_le_bytes()), "layer count 0");
    expect(with(28, &(1u32 << 30).to_le_bytes()), "out of range");
    expect(with(32, &(1u32 << 30).to_le_bytes()), "description length");
    // The layer table: kinds this build does not know (convolution and
    // pooling will take these codes), output codes, widths, parameters.
    expect(with(36, &[1]), "layer 1 has unknown kind 1");
    expect(with(36 + 16, &[3]), "layer 2 has unknown kind 3");
    expect(with(37, &[1]), "layer 1 has output code 1");
    expect(with(38, &[3]), "threshold width 3");
    expect(with(39, &[1]), "parameter bytes");
    expect(with(44, &[9]), "parameter bytes");
    expect(with(40, &0u32.to_le_bytes()), "layer 1 has 0 neurons");
    expect(with(40, &(1u32 << 31).to_le_bytes()), "out of range");
    expect(with(8, &3u16.to_le_bytes()), "unsupported format version 3");
}

#[test]
fn u8_input_wider_than_a_pixel_layer_takes_is_refused() {
    // 2^23 + 2^22 pixels: within the file's input limit, beyond what an i32
    // dot product of u8 pixels can hold.
    let mut b = to_bytes(&u8_model(), "");
    b[16..20].copy_from_slice(&(3u32 << 22).to_le_bytes());
    b[20..28].copy_from_slice(&[1, 0, 0, 0, 1, 0, 0, 0]);
    let err = parse(&b).unwrap_err();
    assert!(err.contains("u8 input of 12582912 pixels exceeds"), "{err}");
}
