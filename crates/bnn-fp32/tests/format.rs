//! The model file: round trips, and every kind of bad file is a one-line
//! error naming the file.

mod common;

use std::path::Path;

use bnn_core::DecisionRule;
use bnn_fp32::format::{from_bytes, to_bytes, HEADER_LEN, MAGIC};
use bnn_fp32::{from_binary, Fp32Error, Fp32Model, Hidden, InputTransform, MapShape, Padding};
use bnn_testkit::models::{float_model, random_model, random_pixels, rng};
use common::{cnn, Values};

fn small_model() -> Fp32Model {
    let mut rng = rng(3);
    float_model(
        &mut rng,
        &[5, 3, 2],
        InputTransform::Binarize { threshold: 77 },
        Hidden::Relu,
        DecisionRule::Seed,
    )
}

/// The load error for these bytes, checked to be one line naming the file.
fn load_error(dir: &Path, bytes: &[u8]) -> String {
    let path = dir.join("bad.f32");
    std::fs::write(&path, bytes).unwrap();
    let e = Fp32Model::load(&path).expect_err("a bad file must not load");
    assert!(matches!(e, Fp32Error::Format { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    msg
}

/// Rewrites the checksum after a deliberate edit, so that the check behind
/// it is what rejects the file.
fn reseal(bytes: &mut [u8]) {
    let end = bytes.len() - 4;
    let crc = crc32fast::hash(&bytes[..end]);
    bytes[end..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn round_trips_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rng(4);
    let settings = [
        (
            InputTransform::Normalize,
            Hidden::Relu,
            DecisionRule::Scores,
        ),
        (
            InputTransform::Binarize { threshold: 0 },
            Hidden::Sign,
            DecisionRule::Seed,
        ),
        (
            InputTransform::Binarize { threshold: 255 },
            Hidden::Relu,
            DecisionRule::Scores,
        ),
    ];
    for (i, (input, hidden, rule)) in settings.into_iter().enumerate() {
        let model = float_model(&mut rng, &[70, 33, 9, 4], input, hidden, rule);
        let path = dir.path().join(format!("m{i}.f32"));
        model.save(&path).unwrap();
        let loaded = Fp32Model::load(&path).unwrap();
        assert_eq!(loaded, model);
        assert_eq!(std::fs::read(&path).unwrap(), to_bytes(&model));
        let px = random_pixels(&mut rng, 50, 70);
        assert_eq!(
            loaded.predict_batch_scores(&px, None).unwrap(),
            model.predict_batch_scores(&px, None).unwrap()
        );
    }
    // A converted binary model round-trips too.
    let binary = random_model(&mut rng, &[65, 20, 10], DecisionRule::Seed, 128);
    let model = from_binary(&binary);
    let path = dir.path().join("b.f32");
    model.save(&path).unwrap();
    assert_eq!(Fp32Model::load(&path).unwrap(), model);
}

#[test]
fn layout_is_as_documented() {
    let model = small_model();
    let bytes = to_bytes(&model);
    assert_eq!(&bytes[..8], b"\x89BNNF32\n");
    assert_eq!(&bytes[8..10], &[1, 0], "version");
    assert_eq!(&bytes[10..16], &[1, 77, 0, 1, 0, 0], "codes");
    assert_eq!(&bytes[16..20], &5u32.to_le_bytes(), "input length");
    assert_eq!(&bytes[20..24], &2u32.to_le_bytes(), "layer count");
    assert_eq!(&bytes[24..28], &3u32.to_le_bytes());
    assert_eq!(&bytes[28..32], &2u32.to_le_bytes());
    let first = model.layers()[0].weights[0];
    assert_eq!(&bytes[32..36], &first.to_le_bytes());
    let bias0 = 32 + 4 * 15;
    assert_eq!(
        &bytes[bias0..bias0 + 4],
        &model.layers()[0].bias[0].to_le_bytes()
    );
    assert_eq!(bytes.len(), 32 + 4 * (15 + 3 + 6 + 2) + 4);
    assert_eq!(bytes.len(), bnn_fp32::format::encoded_len(&model));
}

#[test]
fn save_replaces_whole_files_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.f32");
    std::fs::write(&path, b"an older, longer file that must be replaced whole").unwrap();
    let model = small_model();
    model.save(&path).unwrap();
    assert_eq!(Fp32Model::load(&path).unwrap(), model);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let e = model
        .save(&dir.path().join("no/such/dir/m.f32"))
        .unwrap_err();
    assert!(e.to_string().contains("no/such/dir/m.f32"), "{e}");
}

#[test]
fn every_truncation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = to_bytes(&small_model());
    for len in 0..bytes.len() {
        let msg = load_error(dir.path(), &bytes[..len]);
        assert!(msg.contains("truncated"), "length {len}: {msg}");
    }
}

#[test]
fn every_flipped_bit_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = to_bytes(&small_model());
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        let msg = load_error(dir.path(), &bad);
        // Past the header and table, only the checksum can notice.
        if bit / 8 >= HEADER_LEN + 8 {
            assert!(msg.contains("checksum mismatch"), "bit {bit}: {msg}");
        }
    }
}

/// The FP32 magic is defined in this crate; `bnn-core` repeats its bytes
/// only to name an FP32 file handed to the `.bnn` reader. Both readers name
/// the other kind, so a change of either magic is caught here.
#[test]
fn each_reader_names_the_other_kind_of_model() {
    let fp32 = to_bytes(&small_model());
    assert_eq!(&fp32[..8], &MAGIC);
    let e = bnn_core::format::from_bytes(&fp32, Path::new("m.f32")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("(wrong magic bytes); this is an FP32 model (.f32)"),
        "{msg}"
    );
    let binary = bnn_core::format::to_bytes(
        &random_model(&mut rng(5), &[5, 3, 2], DecisionRule::Seed, 1),
        "",
    );
    let e = from_bytes(&binary, Path::new("m.bnn")).unwrap_err();
    assert!(
        e.to_string().contains("this is a 1-bit model (.bnn)"),
        "{e}"
    );
}

#[test]
fn header_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = to_bytes(&small_model());
    let edit = |at: usize, with: &[u8]| {
        let mut b = good.clone();
        b[at..at + with.len()].copy_from_slice(with);
        reseal(&mut b);
        b
    };
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"PK\x03\x04 not a model at all".to_vec(), "wrong magic"),
        (b"\x89BN".to_vec(), "truncated"),
        (b"\x89BNN\r\n\x1a\n".to_vec(), "wrong magic"),
        (edit(0, b"\x89BNNF64"), "wrong magic"),
        (edit(8, &[3, 0]), "unsupported FP32 format version 3"),
        (edit(8, &[2, 0]), "input shape 3×2×"),
        (edit(10, &[7]), "unknown input transform code 7"),
        (edit(10, &[0, 5]), "nonzero threshold byte 5"),
        (edit(12, &[3]), "unknown hidden activation code 3"),
        (edit(13, &[9]), "unknown decision rule code 9"),
        (edit(14, &[0, 1]), "reserved header bytes"),
        (edit(16, &0u32.to_le_bytes()), "input length 0"),
        (edit(16, &6u32.to_le_bytes()), "truncated"),
        (edit(16, &4u32.to_le_bytes()), "trailing data"),
        (edit(20, &0u32.to_le_bytes()), "layer count 0"),
        (edit(20, &5000u32.to_le_bytes()), "layer count 5000"),
        (edit(24, &0u32.to_le_bytes()), "layer 1 has 0 neurons"),
        ([good.clone(), vec![0]].concat(), "1 bytes of trailing data"),
    ];
    for (bytes, want) in cases {
        let msg = load_error(dir.path(), &bytes);
        assert!(msg.contains(want), "want '{want}', got: {msg}");
    }
}

/// Headers that claim enormous layers are caught by size arithmetic before
/// anything is allocated from them.
#[test]
fn huge_claims_do_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = to_bytes(&small_model());
    bytes.resize(1024, 0);
    let claim = |at: usize, v: u32| {
        let mut b = bytes.clone();
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        reseal(&mut b);
        load_error(dir.path(), &b)
    };
    assert!(claim(24, 1 << 31).contains("2147483648 neurons, out of range"));
    assert!(claim(16, 1 << 31).contains("input length 2147483648"));
    // In range for the format but far beyond the file: caught by the size.
    assert!(claim(24, 1 << 24).contains("truncated: 1024 bytes"));
    let mut b = bytes.clone();
    b[16..20].copy_from_slice(&(1u32 << 24).to_le_bytes());
    b[24..28].copy_from_slice(&(1u32 << 24).to_le_bytes());
    reseal(&mut b);
    assert!(load_error(dir.path(), &b).contains("exceed the largest accepted file"));
}

#[test]
fn non_finite_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = to_bytes(&small_model());
    let start = HEADER_LEN + 8;
    let mut nan = good.clone();
    // Layer 1, weight 7: neuron 1, input 2.
    nan[start + 28..start + 32].copy_from_slice(&f32::NAN.to_le_bytes());
    reseal(&mut nan);
    let msg = load_error(dir.path(), &nan);
    assert!(
        msg.contains("layer 1 weight 7 (neuron 1, input 2) is NaN"),
        "{msg}"
    );
    let mut inf = good.clone();
    // Layer 2's biases follow its 6 weights, after layer 1's 15 + 3 values.
    let at = start + 4 * (18 + 6 + 1);
    inf[at..at + 4].copy_from_slice(&f32::NEG_INFINITY.to_le_bytes());
    reseal(&mut inf);
    let msg = load_error(dir.path(), &inf);
    assert!(msg.contains("layer 2 bias 1 is -inf"), "{msg}");
}

#[test]
fn operating_system_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.f32");
    let e = Fp32Model::load(&missing).unwrap_err();
    assert!(matches!(e, Fp32Error::Io { .. }));
    assert!(e.to_string().starts_with(&missing.display().to_string()));
    let e = Fp32Model::load(dir.path()).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
}

#[test]
fn bytes_parse_without_a_file() {
    let model = small_model();
    let bytes = to_bytes(&model);
    assert_eq!(from_bytes(&bytes, Path::new("x")).unwrap(), model);
    assert_eq!(MAGIC.len(), 8);
}

/// 6×5×2 pixels → c3x3 (same, pooled) → c1x2 (valid) → d4: a version-2
/// file small enough to corrupt byte by byte.
fn small_cnn() -> Fp32Model {
    let mut rng = rng(8);
    cnn(
        &mut rng,
        MapShape::new(6, 5, 2),
        &[(3, 3, Padding::Same, true), (1, 2, Padding::Valid, false)],
        &[4],
        InputTransform::Pixel,
        Hidden::Sign,
        Values::Fraction,
    )
}

/// Where the version-2 layer table starts: after the header and the input
/// shape.
const TABLE: usize = HEADER_LEN + 12;

#[test]
fn convolutional_models_round_trip_as_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let model = small_cnn();
    let bytes = to_bytes(&model);
    assert_eq!(&bytes[8..10], &[2, 0], "version");
    assert_eq!(&bytes[10..16], &[2, 0, 1, 0, 0, 0], "codes");
    assert_eq!(&bytes[16..20], &60u32.to_le_bytes(), "input length");
    assert_eq!(&bytes[20..24], &3u32.to_le_bytes(), "layer count");
    let shape: Vec<u8> = [6u32, 5, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    assert_eq!(&bytes[24..36], &shape[..], "input shape");
    // kind, kernel, padding, pool, channels, pad value.
    let entry = |kind: u8, k: u8, pad: u8, pool: u8, n: u32, v: f32| {
        let mut e = vec![kind, k, pad, pool];
        e.extend(n.to_le_bytes());
        e.extend(v.to_le_bytes());
        e
    };
    assert_eq!(&bytes[36..48], &entry(1, 3, 0, 1, 3, 0.0)[..]);
    assert_eq!(&bytes[48..60], &entry(1, 1, 1, 0, 2, -1.0)[..]);
    assert_eq!(&bytes[60..72], &entry(0, 0, 0, 0, 4, 0.0)[..]);
    let c = &model.convs()[0];
    assert_eq!(&bytes[72..76], &c.weights[0].to_le_bytes());
    let scale0 = 72 + 4 * 54;
    assert_eq!(&bytes[scale0..scale0 + 4], &c.scale[0].to_le_bytes());
    // Parameters: 3·(18 + 2) + 2·(3 + 2) + 4·(3·2·2 + 1).
    assert_eq!(bytes.len(), 72 + 4 * (60 + 10 + 52) + 4);
    assert_eq!(bytes.len(), bnn_fp32::format::encoded_len(&model));
    let path = dir.path().join("c.f32");
    model.save(&path).unwrap();
    let loaded = Fp32Model::load(&path).unwrap();
    assert_eq!(loaded, model);
    assert_eq!(loaded.arch(), "c3x3,p2,c1x2,d4");
    let px = random_pixels(&mut rng(9), 20, 60);
    assert_eq!(
        loaded.predict_batch_scores(&px, None).unwrap(),
        model.predict_batch_scores(&px, None).unwrap()
    );
}

#[test]
fn every_truncation_and_flipped_bit_of_a_convolutional_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = to_bytes(&small_cnn());
    for len in 0..bytes.len() {
        let msg = load_error(dir.path(), &bytes[..len]);
        assert!(msg.contains("truncated"), "length {len}: {msg}");
    }
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        load_error(dir.path(), &bad);
    }
}

#[test]
fn convolutional_header_errors_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let good = to_bytes(&small_cnn());
    let edit = |at: usize, with: &[u8]| {
        let mut b = good.clone();
        b[at..at + with.len()].copy_from_slice(with);
        reseal(&mut b);
        b
    };
    let (first, second, third) = (TABLE, TABLE + 12, TABLE + 24);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            edit(24, &7u32.to_le_bytes()),
            "input shape 7×5×2 does not hold the input length 60",
        ),
        (edit(28, &0u32.to_le_bytes()), "input shape 6×0×2"),
        (edit(first + 1, &[4]), "kernel size 4 is not an odd number"),
        (edit(first + 1, &[0]), "kernel size 0"),
        (edit(first + 1, &[255]), "kernel size 255"),
        (edit(first + 1, &[7]), "truncated"),
        (
            edit(first + 1, &[7, 1]),
            "a 7×7 kernel does not fit the 6×5×2 input",
        ),
        (edit(first + 2, &[2]), "unknown padding code 2"),
        (edit(first + 3, &[2]), "pool flag 2"),
        (edit(first, &[5]), "layer 1 has unknown kind code 5"),
        (edit(first, &[0]), "starts with a convolution"),
        (
            edit(first + 4, &0u32.to_le_bytes()),
            "layer 1 has 0 channels",
        ),
        (
            edit(first + 8, &f32::NAN.to_le_bytes()),
            "layer 1 pad value is NaN",
        ),
        (
            edit(second + 1, &[5]),
            "a 5×5 kernel does not fit the 3×2×3 input",
        ),
        (edit(24, &[1, 0, 0, 0, 30]), "cannot pool a 1×30 map"),
        (
            edit(third, &[1, 1, 0, 0]),
            "the last layer is not a dense layer",
        ),
        (edit(third + 1, &[1]), "dense layer 3 has nonzero kernel"),
        (
            edit(third + 8, &1f32.to_le_bytes()),
            "dense layer 3 has nonzero",
        ),
        (edit(second, &[0, 0, 1, 0]), "dense layer 2 has nonzero"),
    ];
    for (bytes, want) in cases {
        let msg = load_error(dir.path(), &bytes);
        assert!(msg.contains(want), "want '{want}', got: {msg}");
    }
    // A convolution after a dense layer: make layer 2 dense, layer 3 a conv.
    let mut b = good.clone();
    b[second..second + 4].copy_from_slice(&[0, 0, 0, 0]);
    b[second + 8..second + 12].copy_from_slice(&[0; 4]);
    b[third..third + 4].copy_from_slice(&[1, 1, 0, 0]);
    reseal(&mut b);
    assert!(load_error(dir.path(), &b).contains("layer 3 is a convolution after a dense layer"));
}

/// Channel counts, kernels and input shapes that claim huge layers are
/// caught by the shape and size checks before anything is allocated.
#[test]
fn huge_convolutional_claims_do_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = to_bytes(&small_cnn());
    bytes.resize(4096, 0);
    let claim = |edits: &[(usize, u32)]| {
        let mut b = bytes.clone();
        for &(at, v) in edits {
            b[at..at + 4].copy_from_slice(&v.to_le_bytes());
        }
        reseal(&mut b);
        load_error(dir.path(), &b)
    };
    assert!(claim(&[(TABLE + 4, 1 << 31)]).contains("2147483648 channels, out of range"));
    // 2^24 channels of a 6×5 map: an output map far past the limit.
    assert!(claim(&[(TABLE + 4, 1 << 24)]).contains("has more than 16777216 values"));
    // A 4096×4096 input: 2^24 pixels, and an im2col matrix past its limit.
    let big = [
        (16, 1 << 24),
        (24, 4096),
        (28, 4096),
        (32, 1),
        (TABLE + 4, 1),
    ];
    assert!(claim(&big).contains("exceed 67108864 values"));
    // Within every limit but far beyond the file: caught by the size.
    assert!(claim(&[(TABLE + 4, 1 << 16)]).contains("truncated: 4096 bytes"));
}
