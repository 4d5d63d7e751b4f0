//! Version 3 of the `.bnn` file: class names and a feature encoding in
//! tagged sections, the zero-padded convolutions (section ZPAD) and the
//! per-class score scale (section SCAL). Models with metadata round trip
//! byte for byte, models without stay in versions 1 and 2, and every
//! damaged or hostile section is a one-line error naming the file and the
//! section.

use std::path::Path;

use bnn_core::conv::Padding;
use bnn_core::format::{self, from_bytes, load, save, to_bytes};
use bnn_core::{DecisionRule, FeatureEncoding, InputEncoding, InputShape, Model, RunOptions};
use bnn_testkit::models::{random_cnn, random_model, random_u8_model, rng, u8_spread, ConvPlan};

fn parse(bytes: &[u8]) -> Result<format::ModelFile, String> {
    from_bytes(bytes, Path::new("m.bnn")).map_err(|e| e.to_string())
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("class {i}")).collect()
}

/// 6 raw features, min-max encoded, into a binary MLP of 3 classes.
fn named_min_max() -> Model {
    let model = random_model(&mut rng(3), &[6, 16, 3], DecisionRule::Scores, 128);
    let x: Vec<f32> = (0..60)
        .map(|i| ((i * 37) % 23) as f32 * 0.5 - 3.0)
        .collect();
    let e = FeatureEncoding::fit_min_max(&x, 6).unwrap();
    model
        .with_class_names(vec![
            "benign".into(),
            "malignant".into(),
            "unsure ünïcode".into(),
        ])
        .unwrap()
        .with_feature_encoding(e)
        .unwrap()
}

/// 5 features, 4 thermometer levels each, into a u8 MLP of 4 classes.
fn thermometer_u8() -> Model {
    let model = random_u8_model(
        &mut rng(4),
        &[20, 8, 4],
        DecisionRule::Scores,
        u8_spread(20),
    );
    let x: Vec<f32> = (0..200).map(|i| ((i * 13) % 31) as f32 - 7.5).collect();
    let e = FeatureEncoding::fit_thermometer(&x, 5, 4).unwrap();
    model.with_feature_encoding(e).unwrap()
}

#[test]
fn metadata_round_trips_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    for (i, model) in [
        named_min_max(),
        thermometer_u8(),
        random_model(&mut rng(5), &[9, 4], DecisionRule::Seed, 7)
            .with_class_names(names(4))
            .unwrap(),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("m{i}.bnn"));
        save(&model, "described", &path).unwrap();
        let loaded = load(&path).unwrap();
        assert_eq!(loaded.version, 3);
        assert_eq!(loaded.model, model);
        assert_eq!(loaded.model.class_names(), model.class_names());
        assert_eq!(loaded.model.feature_encoding(), model.feature_encoding());
        assert_eq!(loaded.description, "described");
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(to_bytes(&loaded.model, &loaded.description), bytes);
        assert_eq!(loaded.file_bytes, bytes.len() as u64);
    }
    let file = parse(&to_bytes(&named_min_max(), "")).unwrap();
    let tags: Vec<(&str, bool, bool)> = file
        .sections
        .iter()
        .map(|s| (s.tag.as_str(), s.required, s.known))
        .collect();
    assert_eq!(tags, [("ENCD", true, true), ("NAME", false, true)]);
}

#[test]
fn models_without_metadata_keep_their_version() {
    let v1 = random_model(&mut rng(6), &[9, 4], DecisionRule::Seed, 7);
    assert_eq!(parse(&to_bytes(&v1, "")).unwrap().version, 1);
    let v2 = random_u8_model(&mut rng(7), &[9, 4], DecisionRule::Scores, u8_spread(9));
    assert_eq!(parse(&to_bytes(&v2, "")).unwrap().version, 2);
    // The size of a version-3 file is its version-2 layout's plus 4 header
    // bytes plus the sections: 12 + 4 + 2·(2 + 7) for two names.
    let named = v2.clone().with_class_names(names(4)).unwrap();
    let sections = 12 + 4 + 4 * (2 + 7);
    assert_eq!(
        to_bytes(&named, "").len(),
        to_bytes(&v2, "").len() + 4 + sections
    );
}

#[test]
fn stored_encoding_gives_the_classes_of_encoding_by_hand() {
    for model in [named_min_max(), thermometer_u8()] {
        let e = model.feature_encoding().unwrap().clone();
        let d = e.features();
        let x: Vec<f32> = (0..d * 50)
            .map(|i| ((i * 29) % 41) as f32 * 0.4 - 8.0)
            .collect();
        let mut by_hand = Vec::new();
        e.encode(&x, &mut by_hand).unwrap();
        let want = model.predict_batch(&by_hand).unwrap();
        assert_eq!(model.predict_features_batch(&x).unwrap(), want);
        let p = model
            .predict_features_batch_with(&x, RunOptions::default())
            .unwrap();
        assert_eq!(
            p,
            model
                .predict_batch_with(&by_hand, RunOptions::default())
                .unwrap()
        );
        for (row, &class) in x.chunks_exact(d).zip(&want) {
            assert_eq!(model.predict_features(row).unwrap(), class);
        }
        let err = model.predict_features(&x[..d - 1]).unwrap_err().to_string();
        assert!(
            err.contains(&format!("where the encoding takes {d}")),
            "{err}"
        );
    }
    // A model without an encoding says so rather than guessing one.
    let plain = random_model(&mut rng(8), &[9, 4], DecisionRule::Seed, 7);
    let err = plain.predict_features(&[0.0; 9]).unwrap_err().to_string();
    assert_eq!(
        err,
        "the model stores no feature encoding: give it u8 inputs"
    );
}

#[test]
fn metadata_that_does_not_fit_the_model_is_refused() {
    let m = random_model(&mut rng(9), &[6, 3], DecisionRule::Scores, 128);
    let err = m
        .clone()
        .with_class_names(names(2))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "invalid model: 2 class names for a model of 3 classes");
    let dup = vec!["a".into(), "b".into(), "a".into()];
    let err = m.clone().with_class_names(dup).unwrap_err().to_string();
    assert_eq!(err, "invalid model: class names 0 and 2 are both \"a\"");
    let err = m
        .clone()
        .with_class_names(vec!["a".into(), "b\u{1b}[31m".into(), "c".into()])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class name 1 holds a control character"),
        "{err}"
    );
    let long = vec!["a".into(), "b".repeat(257), "c".into()];
    assert!(m.clone().with_class_names(long).is_err());
    let e = FeatureEncoding::fit_thermometer(&[1.0, 2.0, 3.0], 3, 3).unwrap();
    let err = m.with_feature_encoding(e).unwrap_err().to_string();
    assert_eq!(
        err,
        "invalid model: feature encoding thermometer:3 over 3 features gives 9 values, where the model takes 6"
    );
}

/// A section as raw bytes: tag, flags, reserved, length, payload.
fn section(tag: &[u8; 4], flags: u16, payload: &[u8]) -> Vec<u8> {
    let mut s = tag.to_vec();
    s.extend_from_slice(&flags.to_le_bytes());
    s.extend_from_slice(&[0, 0]);
    s.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    s.extend_from_slice(payload);
    s
}

fn names_payload(names: &[&[u8]]) -> Vec<u8> {
    let mut p = (names.len() as u32).to_le_bytes().to_vec();
    for n in names {
        p.extend_from_slice(&(n.len() as u16).to_le_bytes());
        p.extend_from_slice(n);
    }
    p
}

/// A version-3 file of the u8 model of 9 inputs and 4 classes, with
/// `sections` as given (raw, so that they can be anything), and a valid
/// checksum: only the sections can be wrong.
fn v3_with(sections: &[Vec<u8>]) -> Vec<u8> {
    let model = random_u8_model(&mut rng(7), &[9, 4], DecisionRule::Scores, u8_spread(9));
    let v2 = to_bytes(&model, "");
    let body = &v2[..v2.len() - 4];
    let all: Vec<u8> = sections.concat();
    let mut out = body[..36].to_vec();
    out[8..10].copy_from_slice(&3u16.to_le_bytes());
    out.extend_from_slice(&(all.len() as u32).to_le_bytes());
    out.extend_from_slice(&body[36..]);
    out.extend_from_slice(&all);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn min_max_payload(features: u32, min: f32, max: f32) -> Vec<u8> {
    let mut p = vec![0, 0, 0, 0];
    p.extend_from_slice(&features.to_le_bytes());
    for _ in 0..features {
        p.extend_from_slice(&min.to_le_bytes());
    }
    for _ in 0..features {
        p.extend_from_slice(&max.to_le_bytes());
    }
    p
}

#[test]
fn hand_made_sections_load_and_unknown_optional_ones_are_kept() {
    let four: [&[u8]; 4] = [b"zero", b"one", b"two", b"three"];
    let good = v3_with(&[
        section(b"ENCD", 1, &min_max_payload(9, -1.0, 1.0)),
        section(b"NAME", 0, &names_payload(&four)),
        section(b"ZZZ9", 0, b"from a newer writer"),
    ]);
    let file = parse(&good).unwrap();
    assert_eq!(file.model.class_names().unwrap()[3], "three");
    assert_eq!(
        file.model.feature_encoding().unwrap().describe(),
        "u8 (min-max over 9 features)"
    );
    let unknown = file.model.unknown_sections();
    assert_eq!(unknown.len(), 1);
    assert_eq!(unknown[0].tag_text(), "ZZZ9");
    assert_eq!(unknown[0].payload, b"from a newer writer");
    assert!(!file.sections[2].known);
    assert_eq!(file.sections[2].len, 19);
    // Saving keeps the section this build does not read.
    assert_eq!(to_bytes(&file.model, ""), good);
}

#[test]
fn every_bad_section_is_a_one_line_error() {
    let four: [&[u8]; 4] = [b"a", b"b", b"c", b"d"];
    let name = || section(b"NAME", 0, &names_payload(&four));
    let cases: Vec<(Vec<Vec<u8>>, &str)> = vec![
        (vec![], "a version-3 file with no sections"),
        (
            vec![section(b"na\x01e", 0, b"")],
            "section 1 has tag 0x6e610165",
        ),
        (
            vec![section(b"name", 0, b"")],
            "section 1 has tag name (tags are 4 ASCII capitals or digits)",
        ),
        (vec![name(), name()], "duplicate section NAME"),
        (
            vec![name(), section(b"ENCD", 1, &min_max_payload(9, 0.0, 1.0))],
            "section ENCD after NAME: sections are in ascending tag order",
        ),
        (
            vec![section(b"QUAN", 1, b"scales")],
            "unknown required section QUAN: this build cannot use the model",
        ),
        (vec![section(b"XTRA", 2, b"")], "section XTRA: flags 0x0002"),
        (
            vec![section(b"NAME", 0, &names_payload(&[b"a", b"b"]))],
            "section NAME: 2 class names for a model of 4 classes",
        ),
        (
            vec![section(
                b"NAME",
                0,
                &names_payload(&[b"a", b"\xff\xfe", b"c", b"d"]),
            )],
            "section NAME: class name 1 is not valid UTF-8",
        ),
        (
            vec![section(
                b"NAME",
                0,
                &names_payload(&[b"a", b"b", b"c\n", b"d"]),
            )],
            "section NAME: class name 2 holds a control character",
        ),
        (
            vec![section(
                b"NAME",
                0,
                &names_payload(&[b"a", b"b", b"c", &[b'x'; 257]]),
            )],
            "section NAME: class name 3 is 257 bytes long, more than 256",
        ),
        (
            vec![section(
                b"NAME",
                0,
                &names_payload(&[b"a", b"b", b"c", b""]),
            )],
            "section NAME: class name 3 is 0 bytes long",
        ),
        (
            vec![section(b"NAME", 1, &names_payload(&four))],
            "section NAME is marked required",
        ),
        (
            vec![section(b"ENCD", 0, &min_max_payload(9, 0.0, 1.0))],
            "section ENCD is not marked required",
        ),
        (
            vec![section(b"ENCD", 1, &min_max_payload(8, 0.0, 1.0))],
            "section ENCD: u8 (min-max over 8 features) gives 8 values, where the model takes 9",
        ),
        (
            vec![section(b"ENCD", 1, &min_max_payload(9, 0.0, f32::NAN))],
            "section ENCD: feature 0: min 0 and max NaN are not finite with min <= max",
        ),
        (
            vec![section(b"ENCD", 1, &min_max_payload(9, 0.0, 1.0)[..40])],
            "section ENCD: 40 bytes, where 9 features need 80",
        ),
        (
            vec![section(b"ENCD", 1, &[7, 0, 0, 0, 9, 0, 0, 0])],
            "section ENCD: unknown encoding kind 7",
        ),
    ];
    for (sections, want) in cases {
        let err = parse(&v3_with(&sections)).unwrap_err();
        assert!(err.starts_with("m.bnn: "), "{err}");
        assert!(err.contains(want), "want {want:?}, got {err}");
        assert!(!err.contains('\n') && err.len() <= 300, "{err}");
    }
    // A payload length beyond the sections, however large: refused before
    // anything is allocated from it.
    let mut big = section(b"XTRA", 0, b"");
    big[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = parse(&v3_with(&[big])).unwrap_err();
    assert!(
        err.contains(
            "section XTRA: payload of 4294967295 bytes overruns the sections (0 bytes left)"
        ),
        "{err}"
    );
    // A section header cut off by the end of the sections.
    let err = parse(&v3_with(&[b"NAM".to_vec()])).unwrap_err();
    assert!(
        err.contains("section 1: 3 bytes left of the sections"),
        "{err}"
    );
    // More than 64 sections.
    let many: Vec<Vec<u8>> = (0..65u32)
        .map(|i| section(format!("X{i:03}").as_bytes().try_into().unwrap(), 0, b""))
        .collect();
    let err = parse(&v3_with(&many)).unwrap_err();
    assert!(err.contains("more than 64 sections"), "{err}");
    let sixty_four = parse(&v3_with(&many[..64])).unwrap();
    assert_eq!(sixty_four.sections.len(), 64);
}

#[test]
fn a_sections_length_beyond_the_file_is_a_truncation() {
    let mut bytes = to_bytes(&named_min_max(), "");
    bytes[36..40].copy_from_slice(&(1u32 << 30).to_le_bytes());
    let err = parse(&bytes).unwrap_err();
    assert!(
        err.contains("truncated") && err.contains("header describes"),
        "{err}"
    );
    bytes[36..40].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = parse(&bytes).unwrap_err();
    assert!(
        err.ends_with("sections of 4294967295 bytes exceed the largest accepted file"),
        "{err}"
    );
    // Every truncation of a version-3 file is an error.
    let bytes = to_bytes(&named_min_max(), "d");
    for len in 0..bytes.len() {
        let err = parse(&bytes[..len]).unwrap_err();
        assert!(
            err.contains("truncated") || err.contains("empty"),
            "{len}: {err}"
        );
    }
}

#[test]
fn staged_reads_take_the_sections_too() {
    // Through a FIFO the reader must know the size from the header: a
    // version-3 file read that way loads whole.
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo.bnn");
    let status = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "mkfifo is needed for this test"
    );
    let bytes = to_bytes(&named_min_max(), "through a pipe");
    let writer = {
        let (fifo, bytes) = (fifo.clone(), bytes.clone());
        std::thread::spawn(move || std::fs::write(fifo, bytes))
    };
    let loaded = load(&fifo).unwrap();
    writer.join().unwrap().unwrap();
    assert_eq!(loaded.model, named_min_max());
    assert_eq!(loaded.file_bytes, bytes.len() as u64);
}

/// A binary-input CNN on a 5×6×2 image: c3x3 (pooled), c1x4, d5, d2, so
/// that layer 1 and 3 are convolutions, 2 a pool, 4 and 5 dense layers.
fn small_cnn(padding: Padding) -> Model {
    let plans = [
        ConvPlan {
            k: 3,
            channels: 3,
            pool: true,
        },
        ConvPlan {
            k: 1,
            channels: 4,
            pool: false,
        },
    ];
    let input = InputShape::new(5, 6, 2);
    let encoding = InputEncoding::Binary { threshold: 9 };
    random_cnn(
        &mut rng(3),
        input,
        encoding,
        &plans,
        padding,
        &[5, 2],
        DecisionRule::Scores,
    )
}

/// The ZPAD payload listing `layers`.
fn zpad_payload(layers: &[u32]) -> Vec<u8> {
    let mut p = (layers.len() as u32).to_le_bytes().to_vec();
    for n in layers {
        p.extend_from_slice(&n.to_le_bytes());
    }
    p
}

/// A version-3 file of `model` (saved without sections, so version 2) with
/// `sections` appended as given, and a valid checksum.
fn v3_of(model: &Model, sections: &[Vec<u8>]) -> Vec<u8> {
    let v2 = to_bytes(model, "");
    assert_eq!(u16::from_le_bytes([v2[8], v2[9]]), 2);
    let body = &v2[..v2.len() - 4];
    let all: Vec<u8> = sections.concat();
    let mut out = body[..36].to_vec();
    out[8..10].copy_from_slice(&3u16.to_le_bytes());
    out.extend_from_slice(&(all.len() as u32).to_le_bytes());
    out.extend_from_slice(&body[36..]);
    out.extend_from_slice(&all);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn zero_padding_is_a_required_section_and_round_trips() {
    let model = small_cnn(Padding::Zero);
    let bytes = to_bytes(&model, "zero");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 3);
    // The table gives the convolutions same's geometry (padding code 0).
    assert_eq!(bytes[40 + 4], 3, "layer 1: kernel 3");
    assert_eq!(bytes[40 + 5], 0, "layer 1: padding code of same");
    // The section: ZPAD, required, listing layers 1 and 3.
    let zpad = section(b"ZPAD", 1, &zpad_payload(&[1, 3]));
    let end = bytes.len() - 4;
    assert_eq!(&bytes[end - zpad.len()..end], &zpad[..]);
    let file = parse(&bytes).unwrap();
    assert_eq!(file.model, model);
    let paddings: Vec<Padding> = file
        .model
        .convs()
        .iter()
        .map(|s| s.conv().padding())
        .collect();
    assert_eq!(paddings, [Padding::Zero, Padding::Zero]);
    assert_eq!(file.sections.len(), 1);
    assert!(file.sections[0].required && file.sections[0].known);
    assert_eq!(file.sections[0].tag, "ZPAD");
    assert_eq!(to_bytes(&file.model, "zero"), bytes);
    // The same file as a hand-made section: the writer's spelling.
    assert_eq!(
        parse(&v3_of(&small_cnn(Padding::Same), &[zpad]))
            .unwrap()
            .model,
        model
    );
    // The same model with -1 padding stays in version 2, and differs.
    let same = to_bytes(&small_cnn(Padding::Same), "zero");
    assert_eq!(u16::from_le_bytes([same[8], same[9]]), 2);
    assert_ne!(parse(&same).unwrap().model, model);
    // With class names too, sections in tag order: NAME, then ZPAD.
    let named = model.clone().with_class_names(names(2)).unwrap();
    let bytes = to_bytes(&named, "");
    let file = parse(&bytes).unwrap();
    let tags: Vec<&str> = file.sections.iter().map(|s| s.tag.as_str()).collect();
    assert_eq!(tags, ["NAME", "ZPAD"]);
    assert_eq!(file.model, named);
    assert_eq!(to_bytes(&file.model, ""), bytes);
    // Every truncation is an error, never a panic.
    for len in 0..bytes.len() {
        assert!(parse(&bytes[..len]).is_err(), "{len}");
    }
}

#[test]
fn bad_zero_padding_sections_are_one_line_errors() {
    let same = small_cnn(Padding::Same);
    let valid = small_cnn(Padding::Valid);
    let zpad = |layers: &[u32]| section(b"ZPAD", 1, &zpad_payload(layers));
    let cases: Vec<(&Model, Vec<u8>, &str)> = vec![
        (
            &same,
            zpad(&[6]),
            "section ZPAD: layer 6 is out of range (the model has 5 layers)",
        ),
        (
            &same,
            zpad(&[0]),
            "section ZPAD: layer 0 is out of range (the model has 5 layers)",
        ),
        (
            &same,
            zpad(&[1, 2]),
            "section ZPAD: layer 2 is a max pool, not a convolution",
        ),
        (
            &same,
            zpad(&[4]),
            "section ZPAD: layer 4 is a dense layer, not a convolution",
        ),
        (
            &valid,
            zpad(&[1]),
            "section ZPAD: layer 1 is a valid convolution (zero padding has same's geometry, padding code 0)",
        ),
        (
            &same,
            zpad(&[3, 1]),
            "section ZPAD: layer 1 listed after layer 3 (the list is strictly ascending)",
        ),
        (
            &same,
            zpad(&[1, 1]),
            "section ZPAD: layer 1 listed after layer 1",
        ),
        (
            &same,
            zpad(&[]),
            "section ZPAD: 0 layers listed, out of range 1..=1024",
        ),
        (
            &same,
            section(b"ZPAD", 1, &[1, 0, 0, 0, 1, 0, 0]),
            "section ZPAD: 7 bytes, where 1 layer numbers need 8",
        ),
        (
            &same,
            section(b"ZPAD", 1, &[1, 0]),
            "section ZPAD: 2 bytes, too few for the count",
        ),
        (
            &same,
            section(b"ZPAD", 1, &u32::MAX.to_le_bytes()),
            "section ZPAD: 4294967295 layers listed, out of range",
        ),
        (
            &same,
            section(b"ZPAD", 0, &zpad_payload(&[1])),
            "section ZPAD is not marked required",
        ),
    ];
    for (model, section, want) in cases {
        let err = parse(&v3_of(model, &[section])).unwrap_err();
        assert!(err.starts_with("m.bnn: "), "{err}");
        assert!(err.contains(want), "want {want:?}, got {err}");
        assert!(!err.contains('\n') && err.len() <= 300, "{err}");
    }
}

/// The SCAL payload: the count, then each scale.
fn scal_payload(count: u32, scales: &[f32]) -> Vec<u8> {
    let mut p = count.to_le_bytes().to_vec();
    for s in scales {
        p.extend_from_slice(&s.to_le_bytes());
    }
    p
}

#[test]
fn score_scale_is_a_required_section_and_round_trips() {
    // A binary-input MLP, version 1 without a scale, goes to version 3.
    let plain = random_model(&mut rng(11), &[12, 7, 3], DecisionRule::Scores, 100);
    assert_eq!(u16::from_le_bytes([to_bytes(&plain, "")[8], 0]), 1);
    let scale = vec![0.5, 0.0, 3.25];
    let model = plain.clone().with_score_scale(scale.clone()).unwrap();
    let bytes = to_bytes(&model, "scaled");
    assert_eq!(u16::from_le_bytes([bytes[8], bytes[9]]), 3);
    let scal = section(b"SCAL", 1, &scal_payload(3, &scale));
    let end = bytes.len() - 4;
    assert_eq!(&bytes[end - scal.len()..end], &scal[..]);
    let file = parse(&bytes).unwrap();
    assert_eq!(file.model, model);
    assert_ne!(file.model, plain);
    assert_eq!(file.model.score_scale(), Some(&scale[..]));
    let tags: Vec<(&str, bool, bool)> = file
        .sections
        .iter()
        .map(|s| (s.tag.as_str(), s.required, s.known))
        .collect();
    assert_eq!(tags, [("SCAL", true, true)]);
    assert_eq!(to_bytes(&file.model, "scaled"), bytes);
    // The scale changes the scores: class 1 scores its bias alone.
    let image = [200u8; 12];
    let mut plain_scores = [0f32; 3];
    let mut scores = [0f32; 3];
    let kernel = bnn_core::kernel::active();
    plain
        .predict_scores_into(kernel, &image, &mut plain_scores)
        .unwrap();
    file.model
        .predict_scores_into(kernel, &image, &mut scores)
        .unwrap();
    let bias = match file.model.layers().last().unwrap().transform() {
        bnn_core::Transform::Scores(b) => b.clone(),
        _ => unreachable!(),
    };
    for k in 0..3 {
        let dot = plain_scores[k] - bias[k];
        assert_eq!(scores[k], dot * scale[k] + bias[k], "class {k}");
    }
    assert_eq!(scores[1], bias[1]);
    // A zero-padded CNN with names and a scale: NAME, SCAL, ZPAD.
    let cnn = small_cnn(Padding::Zero)
        .with_class_names(names(2))
        .unwrap()
        .with_score_scale(vec![2.0, 2.0])
        .unwrap();
    let bytes = to_bytes(&cnn, "");
    let file = parse(&bytes).unwrap();
    let tags: Vec<&str> = file.sections.iter().map(|s| s.tag.as_str()).collect();
    assert_eq!(tags, ["NAME", "SCAL", "ZPAD"]);
    assert_eq!(file.model, cnn);
    assert_eq!(to_bytes(&file.model, ""), bytes);
    for len in 0..bytes.len() {
        assert!(parse(&bytes[..len]).is_err(), "{len}");
    }
    // Scales of 1 are no scale: the model keeps its version.
    let ones = plain.clone().with_score_scale(vec![1.0; 3]).unwrap();
    assert_eq!(ones.score_scale(), None);
    assert_eq!(ones, plain);
    assert_eq!(to_bytes(&ones, ""), to_bytes(&plain, ""));
}

#[test]
fn score_scales_out_of_range_are_refused_when_set() {
    let model = random_model(&mut rng(12), &[5, 3], DecisionRule::Scores, 100);
    let err = |scale: Vec<f32>| {
        model
            .clone()
            .with_score_scale(scale)
            .unwrap_err()
            .to_string()
    };
    assert!(err(vec![1.0; 2]).contains("2 score scales for a model of 3 classes"));
    assert!(err(vec![1.0, -2.0, 1.0]).contains("score scale of class 1 is -2.0"));
    assert!(err(vec![1.0, 1.0, -0.0]).contains("score scale of class 2 is -0.0"));
    assert!(err(vec![f32::NAN, 1.0, 1.0]).contains("score scale of class 0 is NaN"));
    assert!(err(vec![1.0, f32::INFINITY, 1.0]).contains("score scale of class 1 is inf"));
}

#[test]
fn bad_score_scale_sections_are_one_line_errors() {
    // v3_with's model has 4 classes.
    let scal = |count: u32, scales: &[f32]| section(b"SCAL", 1, &scal_payload(count, scales));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            scal(3, &[1.0, 2.0, 3.0]),
            "section SCAL: 3 scales for a model of 4 classes",
        ),
        (
            scal(5, &[1.0; 5]),
            "section SCAL: 5 scales for a model of 4 classes",
        ),
        (
            scal(u32::MAX, &[]),
            "section SCAL: 4294967295 scales for a model of 4 classes",
        ),
        (
            scal(4, &[1.0, 2.0, 3.0]),
            "section SCAL: 16 bytes, where 4 scales need 20",
        ),
        (
            scal(4, &[1.0, 2.0, 3.0, 4.0, 5.0]),
            "section SCAL: 24 bytes, where 4 scales need 20",
        ),
        (
            section(b"SCAL", 1, &[4, 0]),
            "section SCAL: 2 bytes, too few for the count",
        ),
        (
            scal(4, &[1.0, f32::NAN, 3.0, 4.0]),
            "section SCAL: score scale of class 1 is NaN",
        ),
        (
            scal(4, &[1.0, 2.0, f32::INFINITY, 4.0]),
            "section SCAL: score scale of class 2 is inf",
        ),
        (
            scal(4, &[1.0, 2.0, 3.0, f32::NEG_INFINITY]),
            "section SCAL: score scale of class 3 is -inf",
        ),
        (
            scal(4, &[-1.0, 2.0, 3.0, 4.0]),
            "section SCAL: score scale of class 0 is -1.0; scales are finite and non-negative",
        ),
        (
            scal(4, &[0.0, -0.0, 3.0, 4.0]),
            "section SCAL: score scale of class 1 is -0.0",
        ),
        (
            scal(4, &[1.0; 4]),
            "section SCAL: every scale is 1 (a model without per-class scales has no SCAL section)",
        ),
        (
            section(b"SCAL", 0, &scal_payload(4, &[2.0; 4])),
            "section SCAL is not marked required",
        ),
    ];
    for (section, want) in cases {
        let err = parse(&v3_with(&[section])).unwrap_err();
        assert!(err.starts_with("m.bnn: "), "{err}");
        assert!(err.contains(want), "want {want:?}, got {err}");
        assert!(!err.contains('\n') && err.len() <= 300, "{err}");
    }
    // A valid one loads, ahead of ZPAD-less files' other sections in tag
    // order (NAME before SCAL).
    let names = section(b"NAME", 0, &names_payload(&[b"a", b"b", b"c", b"d"]));
    let file = parse(&v3_with(&[names, scal(4, &[0.0, 0.5, 1.0, 7.0])])).unwrap();
    assert_eq!(file.model.score_scale(), Some(&[0.0, 0.5, 1.0, 7.0][..]));
    let out_of_order = [
        scal(4, &[2.0; 4]),
        section(b"NAME", 0, &names_payload(&[b"a", b"b", b"c", b"d"])),
    ];
    assert!(parse(&v3_with(&out_of_order))
        .unwrap_err()
        .contains("section NAME after SCAL"));
}
