//! The training loop: epochs of shuffled mini-batches, evaluation of the
//! exported model on the validation split after each epoch, the best epoch
//! kept, a checkpoint written, and the test set evaluated once at the end.
//!
//! Every random draw comes from a ChaCha stream fixed by the seed and the
//! epoch number, so a run resumed from a checkpoint draws exactly what the
//! uninterrupted run would have.

use std::path::PathBuf;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::checkpoint::{self, Best, TrainState};
use crate::config::{ModelKind, TrainConfig};
use crate::data::{shift_image, warp_image, Dataset, Split};
use crate::error::{Result, TrainError};
use crate::eval::{accuracy, predict_exported, predict_float, predict_fp32, recompute_bn};
use crate::export::{fold, to_fp32, to_model};
use crate::metrics::EpochMetrics;
use crate::net::Network;
use crate::optim::OptimState;
use crate::progress::{Progress, RunInfo};
use crate::step::{ste_sites, step};

/// How a run is carried out (nothing here changes its result).
#[derive(Clone, Debug, Default)]
pub struct TrainOptions {
    /// Where to write the state after every epoch.
    pub checkpoint: Option<PathBuf>,
    /// Stop after this many epochs of this call (the state is returned
    /// unfinished; used to test resuming).
    pub stop_after: Option<usize>,
}

/// The trained model in its inference form.
#[derive(Clone, Debug)]
pub enum Trained {
    /// A 1-bit model for the engine (`.bnn`).
    Binary(Box<bnn_core::Model>),
    /// A float model for the FP32 baseline.
    Fp32(Box<bnn_fp32::Fp32Model>),
}

/// The chosen epoch's model and its numbers.
#[derive(Clone, Debug)]
pub struct TrainOutcome {
    /// The configuration the run trained with.
    pub config: TrainConfig,
    /// The chosen epoch's model, ready to save.
    pub model: Trained,
    /// The unfolded parameters of the chosen epoch.
    pub net: Network,
    /// 1-based epoch chosen on validation accuracy.
    pub best_epoch: usize,
    /// The exported model's validation accuracy, a fraction.
    pub val_accuracy: f64,
    /// The exported model's test accuracy, a fraction.
    pub test_accuracy: f64,
    /// Test images on which the trainer's unfolded forward pass and the
    /// exported model agree, and the number of test images.
    pub agreement: (usize, usize),
    /// Test-set predictions of the exported model.
    pub test_predictions: Vec<usize>,
    /// Every epoch's metrics, in order.
    pub history: Vec<EpochMetrics>,
    /// Training seconds over all epochs (resumed runs included).
    pub seconds: f64,
}

impl TrainOutcome {
    /// Mean wall time of an epoch over the history.
    pub fn seconds_per_epoch(&self) -> f64 {
        self.seconds / self.history.len().max(1) as f64
    }

    /// A deterministic description for the model file.
    pub fn description(&self) -> String {
        format!(
            "{}; best epoch {} of {} on validation {:.2}%; test {:.2}%",
            self.config.summary(),
            self.best_epoch,
            self.config.epochs,
            100.0 * self.val_accuracy,
            100.0 * self.test_accuracy
        )
    }
}

/// The random stream of `epoch` (0-based; the initialisation uses stream 0).
fn stream(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(epoch as u64 + 1);
    rng
}

/// Whether `data` has the image shape and class count the configuration
/// was made for ([`TrainConfig::for_data`]).
fn check_fits(config: &TrainConfig, data: &Dataset) -> Result<()> {
    let ((h, w, c), (dh, dw, dc)) = (config.input_map, data.input_map());
    if (h, w, c) != (dh, dw, dc) || config.classes != data.classes() {
        return Err(TrainError::Config(format!(
            "the configuration is for {h}x{w}x{c} inputs of {} classes, the data has {dh}x{dw}x{dc} of {}",
            config.classes,
            data.classes()
        )));
    }
    Ok(())
}

/// A fresh state for `config`, checked against the data and against the
/// memory the machine has first.
pub fn init(config: &TrainConfig, data: &Dataset) -> Result<TrainState> {
    config.validate_for(data.train_len())?;
    check_fits(config, data)?;
    crate::memory::check(config, crate::memory::available())?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let net = Network::new(config, &mut rng);
    let optim = OptimState::new(&net, config.optimizer);
    Ok(TrainState {
        config: config.clone(),
        optim,
        net,
        epochs_done: 0,
        clips: vec![config.ste_clip; ste_sites(config)],
        best: None,
        history: Vec::new(),
    })
}

/// Trains from scratch to the end and evaluates the chosen epoch.
///
/// # Examples
///
/// ```
/// use bnn_train::{data, progress::Silent, recipe, train, TrainError, TrainOptions, Trained};
///
/// // A small binary MLP on learnable synthetic digits, for one epoch.
/// let mut config = recipe("seed")?;
/// config.hidden = vec![32];
/// config.epochs = 1;
/// config.validation = 100;
/// let data = data::synthetic(600, 200, 7);
/// let outcome = train(&config, &data, &mut Silent, &TrainOptions::default())?;
/// let Trained::Binary(model) = &outcome.model else { unreachable!("a binary recipe") };
/// assert_eq!(model.num_classes(), 10);
/// assert_eq!(outcome.test_predictions.len(), 200);
/// // The exported model agrees with the trainer's own forward pass.
/// assert_eq!(outcome.agreement, (200, 200));
///
/// // A setting that cannot train is refused before any work, and named.
/// config.epochs = 0;
/// let e = train(&config, &data, &mut Silent, &TrainOptions::default()).err().unwrap();
/// assert!(matches!(e, TrainError::Config(_)), "{e}");
/// # Ok::<(), TrainError>(())
/// ```
///
/// # Errors
///
/// [`TrainError::Config`] for settings that cannot train on this data
/// (checked by [`TrainConfig::validate_for`]) or that do not fit the
/// machine's memory, and the errors of a failed step.
pub fn train(
    config: &TrainConfig,
    data: &Dataset,
    progress: &mut dyn Progress,
    options: &TrainOptions,
) -> Result<TrainOutcome> {
    let state = init(config, data)?;
    let state = run_epochs(state, data, progress, options)?;
    finish(state, data, progress)
}

/// Runs the remaining epochs of `state` (or `options.stop_after` of them).
pub fn run_epochs(
    mut state: TrainState,
    data: &Dataset,
    progress: &mut dyn Progress,
    options: &TrainOptions,
) -> Result<TrainState> {
    let config = state.config.clone();
    config.validate_for(data.train_len())?;
    check_fits(&config, data)?;
    let (train_split, val) = data.train_and_validation(config.validation);
    let batches = train_split.len().div_ceil(config.batch);
    progress.start(&RunInfo {
        summary: config.summary(),
        first_epoch: state.epochs_done + 1,
        epochs: config.epochs,
        batches_per_epoch: batches,
    });
    let mut ran = 0;
    while state.epochs_done < config.epochs && options.stop_after.is_none_or(|limit| ran < limit) {
        let metrics = epoch(&mut state, train_split, val, progress)?;
        progress.epoch_end(&metrics);
        if let Some(path) = &options.checkpoint {
            checkpoint::save(&state, path)?;
        }
        ran += 1;
    }
    Ok(state)
}

fn epoch(
    state: &mut TrainState,
    train: Split<'_>,
    val: Split<'_>,
    progress: &mut dyn Progress,
) -> Result<EpochMetrics> {
    let config = state.config.clone();
    let started = Instant::now();
    let e = state.epochs_done;
    let lr = config.schedule.lr(config.lr, e, config.epochs);
    let mut rng = stream(config.seed, e);
    let mut order: Vec<u32> = (0..train.len() as u32).collect();
    order.shuffle(&mut rng);
    let sites = ste_sites(&config);
    let mut preact = vec![(0f64, 0u64); sites];
    let (mut loss, mut correct, mut seen) = (0f64, 0usize, 0usize);
    let inputs = config.inputs();
    let mut pixels = Vec::with_capacity(config.batch * inputs);
    let mut labels = Vec::with_capacity(config.batch);
    for (b, batch) in order.chunks(config.batch).enumerate() {
        pixels.clear();
        labels.clear();
        for &i in batch {
            let i = i as usize;
            let image = train.image(i);
            if config.shift > 0 || config.warps() {
                let s = config.shift as i32;
                let (dx, dy) = if s > 0 {
                    (rng.gen_range(-s..=s), rng.gen_range(-s..=s))
                } else {
                    (0, 0)
                };
                let start = pixels.len();
                pixels.resize(start + inputs, 0);
                if config.warps() {
                    let (r, k) = (config.rotate, config.scale);
                    let angle = rng.gen_range(-r..=r).to_radians();
                    let factor = 1.0 + rng.gen_range(-k..=k);
                    let at = (dx as f32, dy as f32);
                    warp_image(
                        image,
                        config.input_map,
                        angle,
                        factor,
                        at,
                        &mut pixels[start..],
                    );
                } else {
                    shift_image(image, config.input_map, dx, dy, &mut pixels[start..]);
                }
            } else {
                pixels.extend_from_slice(image);
            }
            labels.push(train.labels[i]);
        }
        let out = step(
            &state.net,
            &config,
            &state.clips,
            &pixels,
            &labels,
            &mut rng,
        )?;
        if !out.loss.is_finite() {
            return Err(TrainError::Diverged(format!(
                "loss is {} in epoch {}, batch {}",
                out.loss,
                e + 1,
                b + 1
            )));
        }
        state
            .optim
            .apply(&mut state.net, &out.grads, config.optimizer, lr);
        if !config.bn_recompute {
            update_running_stats(&mut state.net, &out.batch_stats, &config, batch.len());
        }
        for (acc, (s, n)) in preact.iter_mut().zip(&out.preact) {
            acc.0 += s;
            acc.1 += n;
        }
        loss += out.loss;
        correct += out.correct;
        seen += batch.len();
        progress.batch(
            e + 1,
            b + 1,
            loss / seen as f64,
            correct as f64 / seen as f64,
        );
    }
    if let Some(name) = state.net.first_non_finite() {
        return Err(TrainError::Diverged(format!(
            "{name} is not finite after epoch {}",
            e + 1
        )));
    }
    let cnn = !state.net.convs.is_empty();
    if config.bn_recompute {
        if cnn {
            crate::cnn::recompute_bn(&mut state.net, train.pixels)?;
        } else {
            recompute_bn(&mut state.net, train.pixels)?;
        }
    }
    let val_accuracy = match config.kind {
        ModelKind::Binary if cnn => {
            let folded = crate::cnn::fold(&state.net)?;
            let predicted =
                crate::cnn::predict_folded(&state.net, &folded, config.rule, val.pixels);
            accuracy(&predicted, val.labels)
        }
        ModelKind::Binary => {
            let folded = fold(&state.net, config.rule.to_core())?;
            accuracy(&predict_exported(&folded, val.pixels), val.labels)
        }
        ModelKind::Fp32 => accuracy(&predict_fp32(&state.net, val.pixels), val.labels),
    };
    let clips_used = state.clips.clone();
    if let Some(factor) = config.dynamic_clip {
        for (clip, &(sum, n)) in state.clips.iter_mut().zip(&preact) {
            if n > 0 && sum > 0.0 {
                *clip = (f64::from(factor) * (sum / n as f64).sqrt()) as f32;
            }
        }
    }
    state.epochs_done += 1;
    if state
        .best
        .as_ref()
        .is_none_or(|b| val_accuracy > b.val_accuracy)
    {
        state.best = Some(Best {
            epoch: state.epochs_done,
            val_accuracy,
            net: state.net.clone(),
        });
    }
    let metrics = EpochMetrics {
        epoch: state.epochs_done,
        lr,
        loss: loss / seen.max(1) as f64,
        train_accuracy: correct as f64 / seen.max(1) as f64,
        val_accuracy,
        clips: clips_used,
        seconds: started.elapsed().as_secs_f64(),
    };
    state.history.push(metrics.clone());
    Ok(metrics)
}

/// Running batch-norm statistics: an exponential average of batch means and
/// unbiased batch variances.
fn update_running_stats(
    net: &mut Network,
    stats: &[Option<(Vec<f32>, Vec<f32>)>],
    config: &TrainConfig,
    rows: usize,
) {
    let m = config.bn_momentum;
    let unbias = if rows > 1 {
        rows as f32 / (rows - 1) as f32
    } else {
        1.0
    };
    for (site, s) in net.bn_sites().into_iter().zip(stats) {
        let (Some(bn), Some((mean, var))) = (site, s) else {
            continue;
        };
        for (r, &b) in net.tensors[bn.mean].data.iter_mut().zip(mean) {
            *r = (1.0 - m) * *r + m * b;
        }
        for (r, &b) in net.tensors[bn.var].data.iter_mut().zip(var) {
            *r = (1.0 - m) * *r + m * b * unbias;
        }
    }
}

/// Evaluates the best epoch on the test set (once) and checks the exported
/// model against the trainer's own forward pass.
pub fn finish(
    state: TrainState,
    data: &Dataset,
    progress: &mut dyn Progress,
) -> Result<TrainOutcome> {
    let config = state.config.clone();
    let best = state
        .best
        .clone()
        .ok_or_else(|| TrainError::Other("no epoch has been trained".into()))?;
    let test = data.test();
    let (model, test_predictions, agreement) = match config.kind {
        ModelKind::Binary if !best.net.convs.is_empty() => {
            let folded = crate::cnn::fold(&best.net)?;
            let model = crate::cnn::to_model(&best.net, &folded, config.rule)?;
            let exported = crate::cnn::predict_folded(&best.net, &folded, config.rule, test.pixels);
            let engine = model.predict_batch(test.pixels)?;
            let float = crate::cnn::predict_unfolded(&best.net, config.rule, test.pixels);
            let agree = all_agree(&exported, &float, &engine);
            (
                Trained::Binary(Box::new(model)),
                exported,
                (agree, test.len()),
            )
        }
        ModelKind::Binary => {
            let folded = fold(&best.net, config.rule.to_core())?;
            let model = to_model(&folded)?;
            let exported = predict_exported(&folded, test.pixels);
            let engine = model.predict_batch(test.pixels)?;
            let float = predict_float(&best.net, config.rule, test.pixels)?;
            let agree = all_agree(&exported, &float, &engine);
            (
                Trained::Binary(Box::new(model)),
                exported,
                (agree, test.len()),
            )
        }
        ModelKind::Fp32 => {
            let model = to_fp32(&best.net)?;
            let trainer = predict_fp32(&best.net, test.pixels);
            let engine = model
                .predict_batch(test.pixels, None)
                .map_err(|e| TrainError::Other(format!("FP32 engine: {e}")))?;
            let agree = trainer.iter().zip(&engine).filter(|(a, b)| a == b).count();
            (Trained::Fp32(Box::new(model)), engine, (agree, test.len()))
        }
    };
    let test_accuracy = accuracy(&test_predictions, test.labels);
    let seconds = state.history.iter().map(|m| m.seconds).sum();
    let outcome = TrainOutcome {
        config,
        model,
        net: best.net,
        best_epoch: best.epoch,
        val_accuracy: best.val_accuracy,
        test_accuracy,
        agreement,
        test_predictions,
        history: state.history,
        seconds,
    };
    progress.finish(&format!(
        "best epoch {} of {}: validation {:.2}%, test {:.2}%",
        outcome.best_epoch,
        outcome.config.epochs,
        100.0 * outcome.val_accuracy,
        100.0 * outcome.test_accuracy
    ));
    Ok(outcome)
}

/// Images on which three forward passes predict the same class.
fn all_agree(a: &[usize], b: &[usize], c: &[usize]) -> usize {
    a.iter()
        .zip(b)
        .zip(c)
        .filter(|((a, b), c)| a == b && b == c)
        .count()
}
