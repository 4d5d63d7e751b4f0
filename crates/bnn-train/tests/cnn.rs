//! Convolutional models end to end on small synthetic data: a seed gives
//! the same bytes for any thread count, a resumed run ends where an
//! uninterrupted one does, and the folded model (integer thresholds), the
//! unfolded one (batch norm in floating point) and the engine running the
//! saved file predict the same class for every image.

use bnn_train::checkpoint::{self, TrainState};
use bnn_train::data::synthetic;
use bnn_train::progress::Silent;
use bnn_train::{recipe, Dataset, TrainConfig, TrainOptions};

fn tiny(arch: &str) -> TrainConfig {
    let mut c = recipe("cnn-small").unwrap();
    c.arch = Some(arch.parse().unwrap());
    c.epochs = 2;
    c.batch = 50;
    c.validation = 200;
    c
}

fn data() -> Dataset {
    synthetic(700, 300, 5)
}

fn pool(n: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .unwrap()
}

fn trained(config: &TrainConfig, data: &Dataset, options: &TrainOptions) -> TrainState {
    let state = bnn_train::init(config, data).unwrap();
    bnn_train::run_epochs(state, data, &mut Silent, options).unwrap()
}

/// Every parameter, optimizer moment, statistic and clip is the same with 1 and 2 threads; for both paddings, u8 and
/// binary input, a 1×1 and a 5×5 kernel, with and without pooling, with
/// recomputed and running batch-norm statistics, dynamic clips, and with
/// and without dropout on the hidden dense layer.
#[test]
fn seed_fixes_the_bytes_for_any_thread_count() {
    let data = data();
    for (arch, padding, input, recompute, dropout) in [
        ("c3x6,p2,c3x8,p2,d16,d10", "same", "u8", false, 0.2),
        ("c5x4,p2,c1x6,d10", "valid", "binary", true, 0.0),
        ("c3x5,c3x4,p2,d12,d10", "valid", "u8", true, 0.0),
    ] {
        let mut config = tiny(arch);
        config.padding = padding.parse().unwrap();
        config.input = input.parse().unwrap();
        config.bn_recompute = recompute;
        config.dynamic_clip = Some(1.5);
        config.dropout = dropout;
        let state = |threads: usize, config: &TrainConfig| {
            let state = pool(threads).install(|| trained(config, &data, &TrainOptions::default()));
            assert_eq!(state.epochs_done, 2);
            state
        };
        let (one, two) = (state(1, &config), state(2, &config));
        assert!(one.net == two.net, "{arch}: 1 and 2 threads differ");
        assert!(one.optim == two.optim, "{arch}: optimizer moments differ");
        assert_eq!(one.clips, two.clips, "{arch}");
        if dropout > 0.0 {
            let plain = TrainConfig {
                dropout: 0.0,
                ..config.clone()
            };
            assert!(
                one.net != state(2, &plain).net,
                "{arch}: dropout changes nothing"
            );
        }
        config.seed += 1;
        assert!(
            one.net != state(2, &config).net,
            "{arch}: the seed changes nothing"
        );
    }
}

/// Stopping after one epoch and resuming from the checkpoint file gives the
/// uninterrupted run's state.
#[test]
fn resume_continues_to_the_same_result() {
    let data = data();
    let dir = tempfile::tempdir().unwrap();
    let ckpt = dir.path().join("run.ckpt");
    let mut config = tiny("c3x4,p2,c3x6,p2,d10");
    config.epochs = 3;
    let whole = trained(&config, &data, &TrainOptions::default());
    let options = TrainOptions {
        checkpoint: Some(ckpt.clone()),
        stop_after: Some(1),
    };
    let partial = trained(&config, &data, &options);
    assert_eq!(partial.epochs_done, 1);
    let loaded = checkpoint::load(&ckpt).unwrap();
    assert_eq!(loaded.config, partial.config);
    assert_eq!(loaded.net, partial.net);
    assert_eq!(loaded.optim, partial.optim);
    let done = bnn_train::run_epochs(loaded, &data, &mut Silent, &TrainOptions::default()).unwrap();
    assert_eq!(done.net, whole.net);
    assert_eq!(done.optim, whole.optim);
    assert_eq!(done.best, whole.best);
}

/// The folded model's integer thresholds predict exactly what the batch
/// norms in f64 and the engine predict, image by image, also with negative scales (whose
/// thresholds flip), and the network learns the synthetic classes.
#[test]
fn folded_thresholds_predict_what_batch_norm_does() {
    let data = data();
    for (arch, input) in [
        ("c3x6,p2,c3x8,p2,d16,d10", "u8"),
        ("c5x4,p2,c3x6,d10", "binary"),
    ] {
        let mut config = tiny(arch);
        config.input = input.parse().unwrap();
        config.bn_recompute = true;
        config.epochs = 3;
        let mut state = trained(&config, &data, &TrainOptions::default());
        let test = data.test();
        let rule = config.rule;
        let check = |net: &bnn_train::net::Network| {
            let folded = bnn_train::cnn::fold(net).unwrap();
            let a = bnn_train::cnn::predict_folded(net, &folded, rule, test.pixels);
            let b = bnn_train::cnn::predict_unfolded(net, rule, test.pixels);
            assert_eq!(a, b, "{arch}");
            // The engine, from the saved bytes, pools threshold bits (OR, or
            // AND for a flipped threshold) where the trainer pools dots.
            let model = bnn_train::cnn::to_model(net, &folded, rule).unwrap();
            let bytes = bnn_core::format::to_bytes(&model, "test");
            let loaded = bnn_core::format::from_bytes(&bytes, "m.bnn".as_ref()).unwrap();
            assert_eq!(loaded.model, model, "{arch}");
            assert_eq!(
                loaded.model.predict_batch(test.pixels).unwrap(),
                a,
                "{arch}"
            );
            bnn_train::eval::accuracy(&a, test.labels)
        };
        let accuracy = check(&state.net);
        // Far above chance (0.1) after 3 short epochs on 500 images.
        assert!(accuracy > 0.25, "{arch}: {accuracy}");
        // Negative scales on every other channel of every batch norm.
        for bn in state.net.bn_sites().into_iter().flatten() {
            for (j, g) in state.net.tensors[bn.gamma].data.iter_mut().enumerate() {
                if j % 2 == 1 {
                    *g = -*g;
                }
            }
        }
        check(&state.net);
    }
}
