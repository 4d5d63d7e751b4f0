//! The helpers checked against hand-worked answers, so that a test relying
//! on them fails for the code under test and not for its helper.

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;

use bnn_core::{BinaryDense, BitMatrix, DecisionRule, Model, Threshold};
use bnn_testkit::need::MKNOD;
use bnn_testkit::{files, models, oracle, special};

/// 3 inputs → 2 hidden → 2 scores, small enough to work out by hand.
fn tiny(rule: DecisionRule) -> Model {
    let w1 = BitMatrix::from_pm1(2, 3, &[1, 1, 1, -1, 1, 1]).unwrap();
    let t = vec![Threshold::at_least(1), Threshold::at_most(-2)];
    let w2 = BitMatrix::from_pm1(2, 2, &[1, -1, 1, 1]).unwrap();
    Model::new(
        3,
        128,
        vec![
            BinaryDense::hidden(w1, t).unwrap(),
            BinaryDense::output(w2, vec![0.5, -0.25]).unwrap(),
        ],
        rule,
    )
    .unwrap()
}

#[test]
fn the_binary_oracle_gives_hand_computed_scores() {
    // [200, 10, 128] → x = [+1, −1, +1]; dots [1, −1]; 1 ≥ 1 fires, −1 ≤ −2
    // does not: h = [+1, −1]; scores [2 + 0.5, 0 − 0.25].
    // [0, 0, 0] → x = [−1, −1, −1]; dots [−3, −1]: neither fires, h = [−1, −1];
    // scores [0 + 0.5, −2 − 0.25].
    let pixels = [200, 10, 128, 0, 0, 0];
    let scores = oracle::binary_scores(&tiny(DecisionRule::Scores), &pixels);
    assert_eq!(scores, [2.5, -0.25, 0.5, -2.25]);
    assert_eq!(oracle::classes(DecisionRule::Scores, &scores, 2), [0, 0]);
    let engine = tiny(DecisionRule::Scores)
        .predict_batch_with(&pixels, Default::default())
        .unwrap();
    assert_eq!(engine.scores, scores);
}

#[test]
fn the_decision_rules_follow_their_definitions() {
    let scores = [-1.0, 3.0, 3.0, -2.0, -0.5, -0.25, 0.0, 7.0];
    // Scores: first maximum. Seed: first non-negative, else class 0.
    assert_eq!(oracle::classes(DecisionRule::Scores, &scores, 4), [1, 3]);
    assert_eq!(oracle::classes(DecisionRule::Seed, &scores, 4), [1, 2]);
    let negative = [-3.0, -1.0, -2.0];
    assert_eq!(oracle::classes(DecisionRule::Seed, &negative, 3), [0]);
    assert_eq!(oracle::classes(DecisionRule::Scores, &negative, 3), [1]);
}

#[test]
fn the_oracle_agrees_with_the_engine_on_random_models() {
    let mut rng = models::rng(4);
    for shape in [&[70, 33, 5][..], &[1, 1], &[130, 65, 64, 10]] {
        for rule in [DecisionRule::Scores, DecisionRule::Seed] {
            let model = models::random_model(&mut rng, shape, rule, 128);
            let pixels = models::random_pixels(&mut rng, 40, shape[0]);
            let engine = model
                .predict_batch_with(&pixels, Default::default())
                .unwrap();
            let naive = oracle::binary_scores(&model, &pixels);
            let bits = |s: &[f32]| s.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&engine.scores), bits(&naive), "{shape:?}");
            let classes = oracle::classes(rule, &naive, model.num_classes());
            assert_eq!(engine.classes, classes, "{shape:?}");
        }
    }
}

#[test]
fn clear_winners_need_the_margin() {
    assert_eq!(oracle::clear_winner(&[0.1, 0.5, 0.2], 0.25), Some(1));
    assert_eq!(oracle::clear_winner(&[0.1, 0.5, 0.3], 0.25), None);
    assert_eq!(oracle::clear_winner(&[0.5, 0.5], 0.0), None);
    assert_eq!(oracle::clear_winner(&[2.0], 1.0), Some(0));
}

#[test]
fn idx_and_gzip_builders() {
    let bytes = files::idx_bytes(0x0803, [2, 1, 3], &[9; 6]);
    assert_eq!(
        bytes,
        [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 3, 9, 9, 9, 9, 9, 9]
    );
    assert_eq!(files::image_header(2, 1, 3), bytes[..16]);
    let gz = files::gzip(&bytes);
    assert_eq!(gz[..2], [0x1f, 0x8b], "gzip magic");
    let mut back = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, bytes);
    let a = files::images(3, 2, 2, 7);
    assert_eq!((a.count, a.pixels.len()), (3, 12));
    assert_eq!(a, files::images(3, 2, 2, 7), "same seed, same images");
    assert_ne!(a.pixels, files::images(3, 2, 2, 8).pixels);
    assert!(files::labels(100, 1).labels.iter().all(|&l| l < 10));
}

#[test]
fn special_files_behave_like_the_systems() {
    bnn_testkit::need!(MKNOD);
    let dir = tempfile::tempdir().unwrap();
    let full = special::full(dir.path());
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(&full)
        .unwrap()
        .write_all(b"x")
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(28), "ENOSPC: {err}");
    let null = special::null(dir.path());
    std::fs::write(&null, b"gone").unwrap();
    assert_eq!(std::fs::read(&null).unwrap(), b"");
    let mut zeros = [1u8; 16];
    std::fs::File::open(special::zero(dir.path()))
        .unwrap()
        .read_exact(&mut zeros)
        .unwrap();
    assert_eq!(zeros, [0; 16]);
    let fifo = special::fifo(dir.path(), "pipe");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    for node in [&full, &null] {
        assert!(std::fs::metadata(node)
            .unwrap()
            .file_type()
            .is_char_device());
    }
}
