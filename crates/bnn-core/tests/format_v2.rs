//! Version 2 of the `.bnn` file: u8-input models and recorded input shapes
//! round trip; version-1 models stay in version 1, byte for byte, shipped
//! weights included; and every new header field, damaged, is a clear error.

use std::path::{Path, PathBuf};

use bnn_core::conv::{Conv2d, Layer, Padding};
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
    assert_eq!(
        model
            .set_input_shape(InputShape::new(4, 2, 1))
            .unwrap_err()
            .to_string(),
        "invalid model: input shape 4x2x1 does not hold 6 inputs"
    );
    assert_eq!(model.input_shape(), InputShape::new(3, 2, 1), "kept");
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
    // The layer table: kinds this build does not know, output codes,
    // widths, parameters.
    expect(with(36, &[3]), "layer 1 has unknown kind 3");
    expect(with(36 + 16, &[3]), "layer 2 has unknown kind 3");
    expect(with(37, &[1]), "layer 1 has output code 1");
    expect(with(38, &[3]), "threshold width 3");
    expect(with(39, &[1]), "parameter bytes");
    expect(with(44, &[9]), "parameter bytes");
    expect(with(40, &0u32.to_le_bytes()), "layer 1 has 0 neurons");
    expect(with(40, &(1u32 << 31).to_le_bytes()), "out of range");
    expect(with(8, &4u16.to_le_bytes()), "unsupported format version 4");
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

/// A 5×6×2 image through c3x3 (pooled), c1x4, then 2 dense layers; u8 or
/// binary input.
fn cnn(encoding: InputEncoding, padding: Padding) -> Model {
    let t = |n: usize, big: bool| -> Vec<Threshold> {
        (0..n)
            .map(|j| Threshold {
                value: if big { 40_000 } else { j as i32 - 1 },
                flip: j % 2 == 1,
            })
            .collect()
    };
    let c1 = Conv2d::new(3, 2, padding, bits(3, 18, 4), t(3, encoding.is_u8())).unwrap();
    let c2 = Conv2d::new(1, 3, padding, bits(4, 3, 5), t(4, false)).unwrap();
    let (h, w) = match padding {
        Padding::Same | Padding::Zero => (2, 3),
        Padding::Valid => (1, 2),
    };
    let d1 = BinaryDense::hidden(bits(5, h * w * 4, 6), t(5, false)).unwrap();
    let d2 = BinaryDense::output(bits(2, 5, 7), vec![0.25, -3.0]).unwrap();
    let layers = vec![
        Layer::Conv(c1),
        Layer::MaxPool,
        Layer::Conv(c2),
        Layer::Dense(d1),
        Layer::Dense(d2),
    ];
    Model::from_layers(
        InputShape::new(5, 6, 2),
        encoding,
        layers,
        DecisionRule::Seed,
    )
    .unwrap()
}

#[test]
fn cnn_models_round_trip() {
    for encoding in [InputEncoding::U8, InputEncoding::Binary { threshold: 77 }] {
        for padding in [Padding::Same, Padding::Valid] {
            let model = cnn(encoding, padding);
            let bytes = to_bytes(&model, "cnn");
            assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 2);
            assert_eq!(&bytes[28..32], &5u32.to_le_bytes(), "5 table entries");
            // Entry 1: conv, hidden, 3 channels, k 3 and the padding code.
            let pad = u8::from(padding == Padding::Valid);
            assert_eq!(bytes[36], 1);
            assert_eq!(&bytes[40..46], &[3, 0, 0, 0, 3, pad]);
            // Entry 2: the pool, 3 channels, window side 2, no body.
            assert_eq!(&bytes[52..62], &[2, 0, 0, 0, 3, 0, 0, 0, 2, 0]);
            let loaded = parse(&bytes).unwrap();
            assert_eq!(loaded.model, model);
            assert_eq!(loaded.model.input_encoding(), encoding);
            assert_eq!(to_bytes(&loaded.model, "cnn"), bytes);
            // Damage anywhere is an error, never a panic.
            // A cut file is named truncated, whatever part the cut falls in.
            assert_eq!(
                parse(&[]).unwrap_err(),
                "m.bnn: truncated: the file is empty"
            );
            for len in 1..bytes.len() {
                let err = parse(&bytes[..len]).unwrap_err();
                assert!(
                    err.starts_with(&format!("m.bnn: truncated: {len} bytes, ")),
                    "{len}: {err}"
                );
            }
        }
    }
}

#[test]
fn hostile_cnn_fields_are_clear_errors() {
    let good = to_bytes(&cnn(InputEncoding::U8, Padding::Same), "d");
    let with = |patches: &[(usize, &[u8])]| {
        let mut b = good.clone();
        for (offset, patch) in patches {
            b[*offset..offset + patch.len()].copy_from_slice(patch);
        }
        parse(&b).unwrap_err()
    };
    let expect = |err: String, want: &str| assert!(err.contains(want), "want '{want}': {err}");
    // Entry 1 (offset 36) is the first convolution, entry 2 (52) its pool,
    // entry 3 (68) the second convolution, entry 4 (84) a dense layer.
    expect(with(&[(44, &[0])]), "layer 1: kernel size 0 is not odd");
    expect(with(&[(44, &[4])]), "kernel size 4 is not odd");
    expect(
        with(&[(44, &[255])]),
        "kernel size 255 is not odd in 1..=15",
    );
    expect(with(&[(45, &[2])]), "unknown padding code 2");
    expect(with(&[(46, &[1])]), "parameter bytes 2..8 of a convolution");
    expect(with(&[(39, &[1])]), "parameter bytes 2..8 of a convolution");
    expect(with(&[(37, &[1])]), "a convolution has output code 1");
    expect(with(&[(38, &[0])]), "threshold width 0");
    // Channel counts: none, or beyond any map the engine allocates.
    expect(with(&[(40, &0u32.to_le_bytes())]), "layer 1: 0 channels");
    expect(
        with(&[(40, &(1u32 << 30).to_le_bytes())]),
        "exceed the limits",
    );
    // A huge claimed input with a convolution: refused before allocating.
    expect(
        with(&[(16, &4096u32.to_le_bytes()), (20, &4096u32.to_le_bytes())]),
        "out of range",
    );
    expect(
        with(&[
            (16, &2048u32.to_le_bytes()),
            (20, &2048u32.to_le_bytes()),
            (24, &3u32.to_le_bytes()),
        ]),
        "exceed",
    );
    // Shapes that do not chain: a valid kernel larger than the map, a pool
    // after a pool or of another channel count, a convolution after a
    // dense layer, a map too small to pool, a convolution last.
    expect(with(&[(44, &[7]), (45, &[1])]), "does not fit a 5x6 map");
    expect(
        with(&[(68, &[2, 0, 0, 0, 4, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0])]),
        "layer 3: max pooling must follow a convolution",
    );
    expect(
        with(&[(56, &4u32.to_le_bytes())]),
        "max pool of 4 channels follows a convolution of 3",
    );
    expect(
        with(&[(60, &[3])]),
        "layer 2: a max pool has output code 0, width 0 and parameters [2, 0, ...], \
         not parameters [3, 0, 0, 0, 0, 0, 0, 0]",
    );
    expect(
        with(&[(53, &[7, 2])]),
        "a max pool has output code 0, width 0 and parameters [2, 0, ...], not output code 7, width 2",
    );
    let conv_entry = [1, 0, 2, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
    expect(
        with(&[(100, &conv_entry)]),
        "layer 5: a convolution cannot follow a dense layer",
    );
    expect(with(&[(16, &[1, 0, 0, 0])]), "at least 2x2");
    expect(
        with(&[(28, &3u32.to_le_bytes())]),
        "layer 3, the last, must be a dense layer",
    );
}
