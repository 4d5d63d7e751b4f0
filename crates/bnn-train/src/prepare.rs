//! The user's labelled data made ready for training: a test set (the
//! source's own, another source, or a stratified fifth held out), a
//! stratified validation split at the end of the training set (where
//! [`crate::data::Dataset::train_and_validation`] takes it), float features
//! encoded to engine input by an encoding fitted on the training set, and
//! class names kept. One implementation for the command line and Python.
//!
//! Stratified splits keep every class in the validation and test sets of a
//! small data set; a fixed count (MNIST's 5,000) would leave nothing to
//! train on in a set of 1,437.

use std::str::FromStr;

use bnn_core::FeatureEncoding;
use bnn_data::labelled::{stratified_split, LabelledSet, Samples, Values};

use crate::config::{Input, TrainConfig};
use crate::data::Dataset;
use crate::error::{Result, TrainError};

/// How float features reach the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Each feature scaled min-max to 0..=255, then a u8 first layer.
    U8,
    /// K bits per feature from K quantile cut points, then a binary first
    /// layer.
    Thermometer(usize),
}

/// Thermometer bits per feature without `:K`.
pub const THERMOMETER_LEVELS: usize = 8;
/// Most thermometer bits per feature.
pub const MAX_LEVELS: usize = 255;

/// Float features without a named encoding: min-max to u8, which keeps
/// each feature's order and needs no choice of K (docs/DATA.md has the
/// figures of both).
pub const DEFAULT_ENCODING: Encoding = Encoding::U8;

/// Share of a source without a test split held out as its test set.
pub const TEST_SHARE: f64 = 0.2;
/// Share of the training set held out for validation by default.
pub const VALIDATION_SHARE: f64 = 0.1;

impl FromStr for Encoding {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let bad =
            || format!("'{text}': give u8, thermometer or thermometer:K (K 1 to {MAX_LEVELS})");
        match text.split_once(':') {
            None if text == "u8" => Ok(Encoding::U8),
            None if text == "thermometer" => Ok(Encoding::Thermometer(THERMOMETER_LEVELS)),
            Some(("thermometer", k)) => match k.parse::<usize>() {
                Ok(k) if (1..=MAX_LEVELS).contains(&k) => Ok(Encoding::Thermometer(k)),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        }
    }
}

impl std::fmt::Display for Encoding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Encoding::U8 => write!(f, "u8"),
            Encoding::Thermometer(k) => write!(f, "thermometer:{k}"),
        }
    }
}

/// What [`prepare`] is asked for.
#[derive(Clone, Debug, Default)]
pub struct PrepareOptions {
    /// Validation share, stratified; `None` for [`VALIDATION_SHARE`].
    pub val_split: Option<f64>,
    /// `--validation N` was given: keep the plain tail of N samples.
    pub fixed_validation: bool,
    /// `None` for [`DEFAULT_ENCODING`] on float features.
    pub encoding: Option<Encoding>,
    /// Names replacing the data's own (`--class-names`).
    pub class_names: Option<Vec<String>>,
    /// Draws the stratified splits.
    pub seed: u64,
}

/// The user's data, ready for the trainer.
#[derive(Debug)]
pub struct Prepared {
    /// Images (or encoded features) and labels in the trainer's form.
    pub data: Dataset,
    /// Samples at the end of the training split held out for validation,
    /// stratified; `None` when `fixed_validation` keeps the plain tail.
    pub validation: Option<usize>,
    /// How raw features became u8 inputs, stored in the model so that
    /// inference encodes alike; `None` for u8 data (pixels or byte features).
    pub encoding: Option<FeatureEncoding>,
    /// Names of the classes, when the data set gives them; stored in the
    /// model.
    pub class_names: Option<Vec<String>>,
    /// What was chosen for the user, one line each.
    pub said: Vec<String>,
}

/// Makes `set` ready for training, with `test` (another source's samples)
/// as the test set and `validation` as the validation set where given; see
/// the module documentation. Errors are
/// [`TrainError::Config`] for options that do not fit the data and
/// [`TrainError::Data`] for data that do not fit together.
pub fn prepare(
    set: LabelledSet,
    test: Option<LabelledSet>,
    validation: Option<LabelledSet>,
    options: &PrepareOptions,
) -> Result<Prepared> {
    let config = |m: String| TrainError::Config(m);
    if let Some(f) = options.val_split {
        if !(f > 0.0 && f < 1.0) {
            return Err(config(format!(
                "validation share {f}: give a fraction above 0 and below 1"
            )));
        }
        if options.fixed_validation || validation.is_some() {
            return Err(config(
                "give one of a validation share, a validation count and a validation set".into(),
            ));
        }
    }
    if options.fixed_validation && validation.is_some() {
        return Err(config(
            "give one of a validation share, a validation count and a validation set".into(),
        ));
    }
    let mut said = Vec::new();
    let LabelledSet {
        train,
        test: own_test,
        input_map,
        classes,
        class_names,
    } = set;
    let class_names = match &options.class_names {
        Some(names) if names.len() != classes => {
            return Err(config(format!(
                "{} class names for {classes} classes",
                names.len()
            )))
        }
        Some(names) => Some(names.clone()),
        None => class_names,
    };
    let len = input_len(input_map);
    let names = class_names.as_deref();
    let (train, test) = match (test, own_test) {
        (Some(other), _) => (train, other_set(other, "test", input_map, names, classes)?),
        (None, Some(test)) => (train, test),
        (None, None) => {
            let (kept, held) = stratified_split(&train.labels, TEST_SHARE, options.seed);
            said.push(format!(
                "no test split: {} of the {} samples, a stratified fifth, are the test set",
                held.len(),
                train.labels.len()
            ));
            (train.select(&kept, len), train.select(&held, len))
        }
    };
    let (train, validation) = if let Some(other) = validation {
        let mut train = train;
        let held = other_set(other, "validation", input_map, names, classes)?;
        let n = held.labels.len();
        append(&mut train, held)?;
        (train, Some(n))
    } else if options.fixed_validation {
        (train, None)
    } else {
        let share = options.val_split.unwrap_or(VALIDATION_SHARE);
        let (mut order, held) = stratified_split(&train.labels, share, options.seed);
        if held.is_empty() || order.is_empty() {
            return Err(TrainError::Data(format!(
                "{} training samples are too few to hold out a validation set by class; \
                 give more data, or a validation set",
                train.labels.len()
            )));
        }
        said.push(format!(
            "validation: {} of {} training samples, stratified by class",
            held.len(),
            train.labels.len()
        ));
        order.extend_from_slice(&held);
        (train.select(&order, len), Some(held.len()))
    };
    let (map, train_values, test_values, encoding) = match (train.values, test.values) {
        (Values::U8(a), Values::U8(b)) => {
            if let Some(e) = options.encoding {
                return Err(config(format!(
                    "encoding {e}: the data hold u8 values, which the engine takes as they \
                     are; an encoding is for float features"
                )));
            }
            (input_map, a, b, None)
        }
        (Values::F32(a), Values::F32(b)) => {
            let choice = options.encoding.unwrap_or(DEFAULT_ENCODING);
            let encoding = fit(choice, &a, len)?;
            if options.encoding.is_none() {
                said.push(format!("float features: encoding {choice}, the default"));
            }
            let (mut x, mut t) = (Vec::new(), Vec::new());
            encoding
                .encode(&a, &mut x)
                .map_err(|e| TrainError::Data(format!("training features: {e}")))?;
            encoding
                .encode(&b, &mut t)
                .map_err(|e| TrainError::Data(format!("test features: {e}")))?;
            let shape = encoding.input_shape();
            let map = (
                shape.height as usize,
                shape.width as usize,
                shape.channels as usize,
            );
            (map, x, t, Some(encoding))
        }
        _ => return Err(TrainError::Data(
            "the test set holds another kind of values (u8 against float) than the training set"
                .into(),
        )),
    };
    let data = Dataset::with_shape(
        map,
        classes,
        train_values,
        train.labels,
        test_values,
        test.labels,
    )?;
    Ok(Prepared {
        data,
        validation,
        encoding,
        class_names,
        said,
    })
}

/// The recipe for the user's data when none is named, and why: FINN's CNV
/// for 32×32 colour images (CIFAR's shape), and otherwise `bn` (batch
/// norm, Adam, cross-entropy) with u8 input, which on small images and on
/// features trains in seconds to minutes.
pub fn default_recipe(map: (usize, usize, usize)) -> (&'static str, String) {
    match map {
        (32, 32, 3) => (
            "cnv",
            "FINN's CNV, the binary CNN of the field for 32x32 colour images".into(),
        ),
        (1, _, _) => ("bn", "a batch-normalised MLP for feature vectors".into()),
        _ => (
            "bn",
            format!(
                "a batch-normalised MLP with u8 input for {} images",
                map_text(map)
            ),
        ),
    }
}

/// A recipe made for MNIST, sized for the prepared data: its shape and
/// classes, its validation split, u8 input (a binary first layer for a
/// thermometer code) and no shift when the recipe is the default, and no
/// image augmentation for feature vectors. Knobs applied after it override it.
pub fn fit_config(config: &mut TrainConfig, prepared: &Prepared, default: bool) {
    let data = &prepared.data;
    *config = config.clone().for_data(data.input_map(), data.classes());
    if let Some(n) = prepared.validation {
        config.validation = n;
    }
    let thermometer = matches!(prepared.encoding, Some(FeatureEncoding::Thermometer { .. }));
    if default || thermometer {
        config.input = match thermometer {
            true => Input::Binary,
            false => Input::U8,
        };
    }
    // MNIST's one-pixel shift is a twenty-eighth of a digit; on the small
    // images of other sets (digits' 8x8) it is an eighth, and costs points.
    if default {
        config.shift = 0;
    }
    if data.input_map().0 == 1 {
        config.shift = 0;
        config.rotate = 0.0;
        config.scale = 0.0;
    }
}

/// All the samples of `other`, a separate `what` set, with its labels as
/// the training set's classes.
fn other_set(
    other: LabelledSet,
    what: &str,
    input_map: (usize, usize, usize),
    names: Option<&[String]>,
    classes: usize,
) -> Result<Samples> {
    if other.input_map != input_map {
        return Err(TrainError::Data(format!(
            "the {what} set holds values of {}, the training set {}",
            map_text(other.input_map),
            map_text(input_map)
        )));
    }
    let mut all = other.train;
    if let Some(more) = other.test {
        append(&mut all, more)?;
    }
    align_labels(
        all,
        other.class_names.as_deref(),
        names,
        classes,
        "the training set",
    )
}

/// An encoding of `choice` fitted on `x`, rows of `features` values.
pub fn fit(choice: Encoding, x: &[f32], features: usize) -> Result<FeatureEncoding> {
    match choice {
        Encoding::U8 => FeatureEncoding::fit_min_max(x, features),
        Encoding::Thermometer(k) => FeatureEncoding::fit_thermometer(x, features, k),
    }
    .map_err(|e| TrainError::Data(format!("cannot fit encoding {choice}: {e}")))
}

/// Values per sample.
fn input_len((h, w, c): (usize, usize, usize)) -> usize {
    h * w * c
}

/// `H x W x C`, as messages write a shape.
pub fn map_text((h, w, c): (usize, usize, usize)) -> String {
    format!("{h}x{w}x{c}")
}

/// `more` after `all`: a training set and another source's samples, or a
/// source's own train and test splits read as one.
pub fn append(all: &mut Samples, more: Samples) -> Result<()> {
    all.labels.extend(more.labels);
    match (&mut all.values, more.values) {
        (Values::U8(a), Values::U8(b)) => a.extend(b),
        (Values::F32(a), Values::F32(b)) => a.extend(b),
        _ => {
            return Err(TrainError::Data(
                "u8 and float values mixed across the sets".into(),
            ))
        }
    }
    Ok(())
}

/// `samples`' labels as classes of a model or training set (`against`,
/// for messages): by name where both sides have names, else as numbers,
/// which must be among its `classes`. A class it lacks is an error naming
/// the class.
pub fn align_labels(
    mut samples: Samples,
    names: Option<&[String]>,
    known: Option<&[String]>,
    classes: usize,
    against: &str,
) -> Result<Samples> {
    if let (Some(names), Some(known)) = (names, known) {
        let mut map = Vec::with_capacity(names.len());
        for name in names {
            match known.iter().position(|k| k == name) {
                Some(i) => map.push(i as u16),
                None => {
                    return Err(TrainError::Data(format!(
                        "class '{name}' is not among the {} classes of {against}",
                        known.len()
                    )))
                }
            }
        }
        for label in &mut samples.labels {
            *label = map[usize::from(*label)];
        }
        return Ok(samples);
    }
    if let Some(i) = samples
        .labels
        .iter()
        .position(|&l| usize::from(l) >= classes)
    {
        return Err(TrainError::Data(format!(
            "sample {i} is class {}, which the {classes} classes of {against} lack",
            samples.labels[i]
        )));
    }
    Ok(samples)
}

/// `values` of `map` as the engine input of `model`: u8 values as they
/// are (they must fit its input), float features (or u8 ones) through its
/// stored encoding. Float features for a model without an encoding are
/// refused: it was trained on other values.
pub fn values_for_model(
    values: Values,
    map: (usize, usize, usize),
    model: &bnn_core::Model,
) -> Result<Vec<u8>> {
    let misfit = |takes: String| {
        TrainError::Data(format!(
            "the data hold values of {}, but the model takes {takes}",
            map_text(map)
        ))
    };
    match (model.feature_encoding(), values) {
        (Some(encoding), values) => {
            if input_len(map) != encoding.features() {
                return Err(misfit(format!(
                    "{} features ({})",
                    encoding.features(),
                    encoding.describe()
                )));
            }
            let floats = match values {
                Values::F32(v) => v,
                Values::U8(v) => v.into_iter().map(f32::from).collect(),
            };
            let mut out = Vec::new();
            encoding
                .encode(&floats, &mut out)
                .map_err(|e| TrainError::Data(format!("cannot encode the features: {e}")))?;
            Ok(out)
        }
        (None, Values::U8(v)) => {
            let shape = model.input_shape();
            let takes = (
                shape.height as usize,
                shape.width as usize,
                shape.channels as usize,
            );
            if map != takes && !(shape.is_flat() && input_len(map) == model.input_len()) {
                return Err(misfit(map_text(takes)));
            }
            Ok(v)
        }
        (None, Values::F32(_)) => Err(TrainError::Data(
            "the data hold float features, but the model has no stored feature encoding \
             and takes u8 values"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(rows: &[(f32, u16)]) -> Samples {
        Samples {
            values: Values::F32(rows.iter().map(|r| r.0).collect()),
            labels: rows.iter().map(|r| r.1).collect(),
        }
    }

    fn set(train: Samples, test: Option<Samples>) -> LabelledSet {
        LabelledSet {
            train,
            test,
            input_map: (1, 1, 1),
            classes: 2,
            class_names: Some(vec!["no".into(), "yes".into()]),
        }
    }

    #[test]
    fn encodings_parse_and_refuse() {
        assert_eq!("u8".parse(), Ok(Encoding::U8));
        assert_eq!("thermometer".parse(), Ok(Encoding::Thermometer(8)));
        assert_eq!("thermometer:3".parse(), Ok(Encoding::Thermometer(3)));
        for bad in [
            "",
            "U8",
            "thermometer:0",
            "thermometer:256",
            "thermometer:",
            "x:2",
        ] {
            let e = bad.parse::<Encoding>().unwrap_err();
            assert!(e.contains("thermometer:K"), "{bad}: {e}");
        }
    }

    #[test]
    fn features_are_split_stratified_and_encoded() {
        // 40 samples, class = value >= 20: the held-out fifth and the
        // validation tenth both hold both classes.
        let rows: Vec<(f32, u16)> = (0..40).map(|i| (i as f32, u16::from(i >= 20))).collect();
        let p = prepare(
            set(features(&rows), None),
            None,
            None,
            &PrepareOptions::default(),
        )
        .unwrap();
        assert_eq!(p.data.test().len(), 8);
        assert_eq!(p.validation, Some(4));
        let (train, val) = p.data.train_and_validation(4);
        assert_eq!(train.len(), 28);
        for split in [train, val, p.data.test()] {
            assert!(split.labels.contains(&0) && split.labels.contains(&1));
        }
        // Min-max over the training set: the encoded value orders as the
        // feature, and the class follows it.
        for split in [train, val, p.data.test()] {
            for i in 0..split.len() {
                assert_eq!(split.image(i)[0] >= 128, split.labels[i] == 1, "sample {i}");
            }
        }
        assert!(matches!(p.encoding, Some(FeatureEncoding::MinMax { .. })));
        assert_eq!(
            p.class_names.as_deref(),
            Some(&["no".to_string(), "yes".to_string()][..])
        );
        assert_eq!(p.said.len(), 3, "{:?}", p.said);
    }

    #[test]
    fn a_test_source_is_aligned_by_name() {
        let rows: Vec<(f32, u16)> = (0..20).map(|i| (i as f32, u16::from(i >= 10))).collect();
        let mut test = set(features(&[(1.0, 0), (15.0, 1)]), None);
        // The test source names its classes the other way round.
        test.class_names = Some(vec!["yes".into(), "no".into()]);
        let p = prepare(
            set(features(&rows), None),
            Some(test.clone()),
            None,
            &PrepareOptions::default(),
        )
        .unwrap();
        assert_eq!(p.data.test().labels, [1, 0]);
        test.class_names = Some(vec!["yes".into(), "maybe".into()]);
        let e = prepare(
            set(features(&rows), None),
            Some(test),
            None,
            &PrepareOptions::default(),
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("class 'maybe' is not among the 2 classes"),
            "{e}"
        );
    }

    #[test]
    fn options_that_do_not_fit_are_refused() {
        let u8s = Samples {
            values: Values::U8(vec![0; 10]),
            labels: vec![0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
        };
        let options = PrepareOptions {
            encoding: Some(Encoding::Thermometer(4)),
            ..Default::default()
        };
        let e = prepare(set(u8s, None), None, None, &options).unwrap_err();
        assert!(
            e.to_string()
                .contains("encoding thermometer:4: the data hold u8 values"),
            "{e}"
        );
        let rows: Vec<(f32, u16)> = (0..20).map(|i| (i as f32, u16::from(i >= 10))).collect();
        for share in [0.0, 1.0, -0.5, f64::NAN] {
            let options = PrepareOptions {
                val_split: Some(share),
                ..Default::default()
            };
            let e = prepare(set(features(&rows), None), None, None, &options).unwrap_err();
            assert!(
                e.to_string().contains("above 0 and below 1"),
                "{share}: {e}"
            );
        }
        let options = PrepareOptions {
            class_names: Some(vec!["a".into()]),
            ..Default::default()
        };
        let e = prepare(set(features(&rows), None), None, None, &options).unwrap_err();
        assert!(e.to_string().contains("1 class names for 2 classes"), "{e}");
    }
}
