//! The model file: round trips, and every kind of bad file is a one-line
//! error naming the file.

use std::path::Path;

use bnn_core::DecisionRule;
use bnn_fp32::format::{from_bytes, to_bytes, HEADER_LEN, MAGIC};
use bnn_fp32::{from_binary, Fp32Error, Fp32Model, Hidden, InputTransform};
use bnn_testkit::models::{float_model, random_model, random_pixels, rng};

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
        (edit(8, &[2, 0]), "unsupported FP32 format version 2"),
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
