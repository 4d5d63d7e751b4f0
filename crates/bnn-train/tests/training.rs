//! End-to-end properties of the trainer on small synthetic data: the
//! exported model reproduces the trainer's forward pass, a seed gives the
//! same bytes for any thread count, a resumed run ends where an
//! uninterrupted one does, and bad settings fail before any work.

use bnn_train::checkpoint;
use bnn_train::data::synthetic;
use bnn_train::metrics::EpochMetrics;
use bnn_train::progress::{Progress, RunInfo, Silent};
use bnn_train::{recipe, train, Dataset, TrainConfig, TrainError, TrainOptions, Trained};

fn small(name: &str) -> TrainConfig {
    let mut c = recipe(name).unwrap();
    c.hidden = vec![64];
    c.epochs = 2;
    c.batch = 50;
    c.validation = 500;
    c
}

fn data() -> Dataset {
    synthetic(2500, 10_000, 11)
}

fn model_bytes(outcome: &bnn_train::TrainOutcome) -> Vec<u8> {
    match &outcome.model {
        Trained::Binary(m) => bnn_core::format::to_bytes(m, &outcome.description()),
        Trained::Fp32(_) => panic!("binary expected"),
    }
}

fn run(config: &TrainConfig, data: &Dataset) -> bnn_train::TrainOutcome {
    train(config, data, &mut Silent, &TrainOptions::default()).unwrap()
}

/// The saved `.bnn`, loaded back and run by the engine, predicts exactly
/// what the trainer's own forward passes predict, on all 10,000 test
/// images; for batch norm (thresholds from running statistics) and for the
/// seed's biases and decision rule.
#[test]
fn exported_model_matches_trainer_forward_pass() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    for name in ["bn", "seed"] {
        let mut config = small(name);
        if name == "seed" {
            config.epochs = 3;
        }
        let outcome = run(&config, &data);
        assert_eq!(outcome.agreement, (10_000, 10_000), "{name}");
        let path = dir.path().join(format!("{name}.bnn"));
        let chart = format!("<svg>{name}</svg>\n");
        let written = bnn_train::output::write_outputs(&outcome, &path, "test", &chart).unwrap();
        let loaded = bnn_core::format::load(&path).unwrap();
        let engine = loaded.model.predict_batch(data.test().pixels).unwrap();
        assert_eq!(engine, outcome.test_predictions, "{name}");
        let float =
            bnn_train::eval::predict_float(&outcome.net, config.rule, data.test().pixels).unwrap();
        assert_eq!(float, engine, "{name}");
        // And both are right: the naive oracle computes the same classes
        // from the saved weights, and the accuracy is that of the labels.
        let naive = bnn_testkit::oracle::binary_scores(&loaded.model, data.test().pixels);
        let classes = bnn_testkit::oracle::classes(loaded.model.rule(), &naive, 10);
        assert_eq!(classes, engine, "{name}: engine vs naive oracle");
        assert_eq!(outcome.test_accuracy, accuracy(&engine, data.test().labels));
        assert!(loaded.description.contains(&format!("recipe {name}")));
        // The data are learnable: a broken trainer would sit near 10 %.
        assert!(
            outcome.test_accuracy > 0.9,
            "{name}: {}",
            outcome.test_accuracy
        );
        let report: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap()).unwrap();
        assert_eq!(report["best_epoch"], outcome.best_epoch);
        assert_eq!(report["history"].as_array().unwrap().len(), config.epochs);
        let chart_path = path.with_extension("svg");
        assert_eq!(written.chart.as_ref(), Some(&chart_path));
        assert_eq!(std::fs::read_to_string(&chart_path).unwrap(), chart);
    }
}

/// A u8-input model (the first layer multiplies pixel values by ±1
/// weights), folded and run by the engine, predicts exactly what the
/// trainer's forward passes predict on all 10,000 test images: with batch
/// norm, with plain biases (thresholds far beyond the ±784 of binary
/// input), and as a one-layer model whose pixel layer emits the scores.
#[test]
fn u8_input_model_matches_trainer_forward_pass() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let bn = small("bn-u8");
    // Without batch norm, pre-activations are pixel sums in the thousands:
    // the STE clip must let them through. Two epochs of plain digits, as
    // the recipe's warps and dropout need many more to pay off.
    let bias = TrainConfig {
        batch_norm: false,
        bn_recompute: false,
        ste_clip: 5000.0,
        dropout: 0.0,
        rotate: 0.0,
        scale: 0.0,
        ..small("bn-u8")
    };
    // Scores of pixel dots are thousands: a small output scale keeps the
    // softmax out of saturation.
    let one_layer = TrainConfig {
        hidden: vec![],
        output_scale: 1.0 / 4096.0,
        ..bias.clone()
    };
    // The slowest learner (biases move by the learning rate, dots by
    // thousands) still beats chance (10 %) by far.
    for (what, config, floor) in [
        ("bn", bn, 0.9),
        ("bias", bias, 0.5),
        ("one layer", one_layer, 0.5),
    ] {
        let outcome = run(&config, &data);
        assert_eq!(outcome.agreement, (10_000, 10_000), "{what}");
        let Trained::Binary(model) = &outcome.model else {
            panic!("binary expected")
        };
        assert!(model.input_encoding().is_u8(), "{what}");
        assert_eq!(model.shape(), config.shape(), "{what}");
        let path = dir.path().join("u8.bnn");
        bnn_train::output::write_outputs(&outcome, &path, "test", "<svg/>").unwrap();
        let loaded = bnn_core::format::load(&path).unwrap().model;
        assert_eq!(
            &loaded,
            model.as_ref(),
            "{what}: the file changed the model"
        );
        let engine = loaded.predict_batch(data.test().pixels).unwrap();
        assert_eq!(engine, outcome.test_predictions, "{what}");
        let float =
            bnn_train::eval::predict_float(&outcome.net, config.rule, data.test().pixels).unwrap();
        assert_eq!(float, engine, "{what}");
        assert!(
            outcome.test_accuracy > floor,
            "{what}: {}",
            outcome.test_accuracy
        );
    }
}

/// Same seed, same model bytes, whether rayon has one thread or two, for
/// binary and u8 input, with and without rotated and scaled training images
/// (deep-u8); a different seed gives a different model (so the comparison
/// can fail).
#[test]
fn seed_fixes_the_bytes_for_any_thread_count() {
    let data = data();
    assert!(recipe("deep-u8").unwrap().warps());
    for name in ["bn", "bn-u8", "deep-u8"] {
        let mut config = small(name);
        config.hidden = vec![40, 72];
        config.dropout = 0.1;
        config.dynamic_clip = Some(1.5);
        let pool = |n| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .unwrap()
        };
        let one = pool(1).install(|| run(&config, &data));
        let two = pool(2).install(|| run(&config, &data));
        assert_eq!(model_bytes(&one), model_bytes(&two), "{name}");
        assert_eq!(one.net, two.net, "{name}: latent parameters too");
        config.seed += 1;
        let other = pool(2).install(|| run(&config, &data));
        assert_ne!(model_bytes(&one), model_bytes(&other), "{name}");
    }
}

/// Stopping after one epoch and resuming from the checkpoint file gives the
/// uninterrupted run's model and history.
#[test]
fn resume_continues_to_the_same_result() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("run.ckpt");
    let mut config = small("bn");
    config.epochs = 3;
    config.bn_recompute = false;
    config.dynamic_clip = Some(2.0);
    let whole = run(&config, &data);

    let state = bnn_train::init(&config, &data).unwrap();
    let options = TrainOptions {
        checkpoint: Some(ckpt.clone()),
        stop_after: Some(1),
    };
    let partial = bnn_train::run_epochs(state, &data, &mut Silent, &options).unwrap();
    assert_eq!(partial.epochs_done, 1);
    let loaded = checkpoint::load(&ckpt).unwrap();
    // Everything that steers the rest of the run comes back bit for bit
    // (the history is a report; text may round its last digit).
    assert_eq!(loaded.config, partial.config);
    assert_eq!(loaded.net, partial.net);
    assert_eq!(loaded.optim, partial.optim);
    assert_eq!(loaded.clips, partial.clips);
    assert_eq!(loaded.best, partial.best);
    assert_eq!(loaded.epochs_done, 1);
    assert_eq!(loaded.history.len(), 1);
    let done = bnn_train::run_epochs(loaded, &data, &mut Silent, &TrainOptions::default()).unwrap();
    let resumed = bnn_train::finish(done, &data, &mut Silent).unwrap();
    assert_eq!(model_bytes(&resumed), model_bytes(&whole));
    let vals = |o: &bnn_train::TrainOutcome| -> Vec<f64> {
        o.history.iter().map(|m| m.val_accuracy).collect()
    };
    assert_eq!(resumed.history.len(), whole.history.len(), "epochs");
    for (a, b) in vals(&resumed).iter().zip(vals(&whole)) {
        assert!((a - b).abs() < 1e-12, "{a} vs {b}");
    }
    assert_eq!(resumed.best_epoch, whole.best_epoch);
}

#[test]
fn damaged_checkpoints_are_rejected_with_the_path() {
    let data = synthetic(600, 100, 3);
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("c.ckpt");
    let mut config = small("seed");
    config.epochs = 1;
    config.validation = 100;
    train(
        &config,
        &data,
        &mut Silent,
        &TrainOptions {
            checkpoint: Some(ckpt.clone()),
            stop_after: None,
        },
    )
    .unwrap();
    let bytes = std::fs::read(&ckpt).unwrap();
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x10;
    let e = checkpoint::from_bytes(&flipped, &ckpt)
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.ckpt") && e.contains("checksum"), "{e}");
    let e = checkpoint::from_bytes(&bytes[..40], &ckpt)
        .unwrap_err()
        .to_string();
    assert!(e.contains("c.ckpt"), "{e}");
    let e = checkpoint::from_bytes(b"hello world, not a checkpoint", &ckpt).unwrap_err();
    assert!(e.to_string().contains("magic"), "{e}");
    let missing = dir.path().join("missing.ckpt");
    let e = checkpoint::load(&missing).unwrap_err().to_string();
    assert!(e.starts_with(&format!("{}: ", missing.display())), "{e}");
    assert!(e.contains("No such file or directory"), "{e}");
}

/// Counts the progress reports a run makes: a run that fails before any
/// work reports nothing.
#[derive(Default)]
struct Watch {
    calls: usize,
}

impl Progress for Watch {
    fn start(&mut self, _: &RunInfo) {
        self.calls += 1;
    }
    fn batch(&mut self, _: usize, _: usize, _: f64, _: f64) {
        self.calls += 1;
    }
    fn epoch_end(&mut self, _: &EpochMetrics) {
        self.calls += 1;
    }
    fn finish(&mut self, _: &str) {
        self.calls += 1;
    }
}

/// Bad settings are configuration errors, raised before training starts.
#[test]
fn bad_configuration_fails_first() {
    let data = synthetic(300, 50, 5);
    let expect = |c: TrainConfig, needle: &str| {
        let mut progress = Watch::default();
        match train(&c, &data, &mut progress, &TrainOptions::default()) {
            Err(TrainError::Config(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected a configuration error about {needle}, got {other:?}"),
        }
        assert_eq!(
            progress.calls, 0,
            "{needle}: failed only after starting to train"
        );
    };
    let base = || {
        let mut c = small("seed");
        c.validation = 50;
        c
    };
    expect(
        TrainConfig {
            hidden: vec![64, 0],
            ..base()
        },
        "width 0",
    );
    expect(TrainConfig { lr: -0.1, ..base() }, "learning rate");
    expect(
        TrainConfig {
            batch: 251,
            ..base()
        },
        "larger than the 250",
    );
    expect(TrainConfig { batch: 0, ..base() }, "batch size");
    expect(
        TrainConfig {
            epochs: 0,
            ..base()
        },
        "epochs",
    );
    expect(
        TrainConfig {
            validation: 300,
            ..base()
        },
        "validation",
    );
    expect(
        TrainConfig {
            ste_clip: 0.0,
            ..base()
        },
        "clip",
    );
    for rotate in [-1.0, 46.0, f32::NAN] {
        expect(TrainConfig { rotate, ..base() }, "rotation");
    }
    for scale in [-0.1, 0.6, f32::INFINITY] {
        expect(TrainConfig { scale, ..base() }, "scale");
    }
    assert!(matches!(recipe("nope"), Err(TrainError::Config(_))));
}

/// The FP32 recipe learns, and its saved file, run by the FP32 engine,
/// predicts what the trainer's forward pass predicts.
#[test]
fn fp32_model_round_trips_through_its_file() {
    let data = synthetic(2500, 2000, 13);
    let dir = tempfile::tempdir().unwrap();
    let config = small("fp32");
    let outcome = run(&config, &data);
    assert!(outcome.test_accuracy > 0.9, "{}", outcome.test_accuracy);
    let path = dir.path().join("m.f32");
    bnn_train::output::write_outputs(&outcome, &path, "test", "<svg/>").unwrap();
    let loaded = bnn_fp32::Fp32Model::load(&path).unwrap();
    assert_eq!(loaded.shape(), vec![784, 64, 10]);
    let test = data.test();
    let engine = loaded.predict_batch(test.pixels, Some(1)).unwrap();
    assert_eq!(engine, outcome.test_predictions);
    assert_eq!(outcome.test_accuracy, accuracy(&engine, test.labels));
    // Where the f64 oracle's top two scores are clearly apart, the engine
    // and the trainer's forward pass both give its class; so the agreement
    // the trainer reports covers at least those images.
    let trainer = bnn_train::eval::predict_fp32(&outcome.net, test.pixels);
    let (scores, _) = bnn_testkit::oracle::fp32_scores(&loaded, test.pixels);
    let mut clear = 0;
    for (i, s) in scores.chunks_exact(10).enumerate() {
        if let Some(best) = bnn_testkit::oracle::clear_winner(s, 1e-3) {
            assert_eq!(engine[i], best, "image {i}: engine");
            assert_eq!(trainer[i], best, "image {i}: trainer");
            clear += 1;
        }
    }
    assert!(clear >= 1990, "{clear} of 2000 images clearly decided");
    let (agree, total) = outcome.agreement;
    assert_eq!(total, 2000);
    assert!((clear..=2000).contains(&agree), "agreement {agree}");
}

/// The share of `predicted` equal to `labels`.
fn accuracy(predicted: &[usize], labels: &[u16]) -> f64 {
    assert_eq!(predicted.len(), labels.len());
    let hits = predicted
        .iter()
        .zip(labels)
        .filter(|(&p, &l)| p == usize::from(l))
        .count();
    hits as f64 / labels.len() as f64
}

/// Data of any shape and class count: an MLP on 4×4 colour images of 3
/// classes, a u8-input MLP on 30 features of 2 classes, a CNN on 8×8
/// grey images of 5 classes and one on 6×6 colour images of 4 (its first
/// map one row a position with 3 channels, not 3 positions). Each exported
/// model records its shape (or is flat), has the data's classes, and the
/// engine predicts exactly what the trainer does; the data are learnable,
/// so each beats chance by far.
#[test]
fn any_shape_and_class_count() {
    use bnn_train::data::synthetic_shaped;
    type Map = (usize, usize, usize);
    let cases: [(&str, Map, usize, Option<&str>); 4] = [
        ("bn", (4, 4, 3), 3, None),
        ("bn-u8", (1, 30, 1), 2, None),
        ("cnn-small", (8, 8, 1), 5, Some("c3x8,p2,d16,d5")),
        ("cnn-small", (6, 6, 3), 4, Some("c3x8,p2,d16,d4")),
    ];
    for (name, map, classes, arch) in cases {
        let data = synthetic_shaped(map, classes, 1200, 400, 21);
        let mut config = recipe(name).unwrap().for_data(map, classes);
        config.epochs = 3;
        config.batch = 50;
        config.validation = 200;
        config.shift = 0;
        config.rotate = 0.0;
        config.scale = 0.0;
        if let Some(a) = arch {
            config.arch = Some(a.parse().unwrap());
        } else {
            config.hidden = vec![32];
        }
        let outcome = run(&config, &data);
        let Trained::Binary(model) = &outcome.model else {
            panic!("{name}: binary expected")
        };
        assert_eq!(model.num_classes(), classes, "{name}");
        assert_eq!(model.input_len(), map.0 * map.1 * map.2, "{name}");
        let shape = model.input_shape();
        if map.0 == 1 && map.2 == 1 {
            assert!(shape.is_flat() || shape.width as usize == map.1, "{name}");
        } else {
            assert_eq!(
                (
                    shape.height as usize,
                    shape.width as usize,
                    shape.channels as usize
                ),
                map,
                "{name}"
            );
        }
        let bytes = model_bytes(&outcome);
        let loaded = bnn_core::format::from_bytes(&bytes, std::path::Path::new("m.bnn")).unwrap();
        let engine = loaded.model.predict_batch(data.test().pixels).unwrap();
        assert_eq!(engine, outcome.test_predictions, "{name}");
        assert!(
            outcome.test_accuracy > 0.8,
            "{name}: {} on {classes} classes",
            outcome.test_accuracy
        );
    }
    // A configuration made for other data is refused before any work.
    let data = synthetic_shaped((4, 4, 3), 3, 1200, 50, 1);
    let config = small("bn");
    let e = train(&config, &data, &mut Silent, &TrainOptions::default()).unwrap_err();
    assert!(
        e.to_string().contains(
            "the configuration is for 28x28x1 inputs of 10 classes, the data has 4x4x3 of 3"
        ),
        "{e}"
    );
}

/// The `cnv` recipe (FINN's CNV, valid padding, u8 input) trains on any
/// 32×32×3 data: one epoch on a few random images gives a model of the
/// recipe's shape whose saved file the engine runs, predicting what the
/// trainer does.
#[test]
fn cnv_trains_on_cifar_shaped_data() {
    use bnn_train::data::synthetic_shaped;
    let map = bnn_train::recipe::CNV_INPUT_MAP;
    let data = synthetic_shaped(map, 10, 80, 20, 5);
    let mut config = recipe("cnv").unwrap().for_data(map, 10);
    config.epochs = 1;
    config.batch = 20;
    config.validation = 20;
    config.limit_train = Some(60);
    let data = data.truncated(60, usize::MAX).unwrap();
    let outcome = run(&config, &data);
    let Trained::Binary(model) = &outcome.model else {
        panic!("binary expected")
    };
    assert_eq!(model.arch(), bnn_train::recipe::CNV_ARCH);
    let shape = model.input_shape();
    assert_eq!((shape.height, shape.width, shape.channels), (32, 32, 3));
    assert!(model.input_encoding().is_u8());
    assert_eq!(model.num_classes(), 10);
    let convs = model.convs();
    assert_eq!(convs.len(), 6);
    assert!(convs
        .iter()
        .all(|s| s.conv().padding() == bnn_core::Padding::Valid));
    let last = convs.last().unwrap().output_shape();
    assert_eq!((last.height, last.width, last.channels), (1, 1, 256));
    let bytes = model_bytes(&outcome);
    let loaded = bnn_core::format::from_bytes(&bytes, std::path::Path::new("cnv.bnn")).unwrap();
    let engine = loaded.model.predict_batch(data.test().pixels).unwrap();
    assert_eq!(engine, outcome.test_predictions);
    assert_eq!(outcome.agreement, (20, 20));
}
