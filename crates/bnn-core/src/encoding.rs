//! Feature encodings: how a row of real-valued features becomes the u8
//! values a model's first layer reads.
//!
//! A model trained on tabular data (say 30 measurements of a tumour) takes
//! its features through constants fitted on the training set. Stored with
//! the model (section `ENCD` of a version-3 file, see `docs/FORMAT.md`),
//! the constants travel with the weights, so that every reader (the CLI,
//! Python, the C export) encodes a raw row exactly as training did, instead
//! of each caller re-deriving them and getting them subtly wrong.
//!
//! Encoding is f32 arithmetic in a fixed order, written out in the docs and
//! in the C export, so that every implementation produces the same bytes.

use crate::error::{Error, Result};
use crate::input::InputShape;

/// The most levels of a thermometer code: one byte per level and feature,
/// and more cut points than this say nothing a u8 input could not.
pub const MAX_LEVELS: usize = 255;

/// How `D` real features become the model's u8 inputs.
#[derive(Clone, Debug, PartialEq)]
pub enum FeatureEncoding {
    /// D features → D u8 values `round(255·(x−min)/(max−min))`, clamped to
    /// 0..=255 (`max == min` → 0). Exactly: `q = (x − min) · 255 / (max −
    /// min)` in f32, then 0 when `q <= 0`, 255 when `q >= 255`, else
    /// `floor(q + 0.5)` (in f32).
    MinMax {
        /// Per feature, the value that maps to 0.
        min: Vec<f32>,
        /// Per feature, the value that maps to 255.
        max: Vec<f32>,
    },
    /// D features → D·K values: value `(d, k)` is 255 when
    /// `x_d >= cuts[d·K + k]`, else 0 (a thermometer code, read by a binary
    /// first layer with input threshold 128; input shape 1×D×K).
    Thermometer {
        /// `K`: values per feature, 1..=[`MAX_LEVELS`].
        levels: usize,
        /// `D·K` cut points, feature after feature.
        cuts: Vec<f32>,
    },
}

impl FeatureEncoding {
    /// Min-max constants from a training set `x` of rows of `features`
    /// values each: each feature's smallest and largest value.
    pub fn fit_min_max(x: &[f32], features: usize) -> Result<Self> {
        let rows = check_rows(x, features)?;
        let mut min = vec![f32::INFINITY; features];
        let mut max = vec![f32::NEG_INFINITY; features];
        for row in x.chunks_exact(features) {
            for (d, &v) in row.iter().enumerate() {
                min[d] = min[d].min(v);
                max[d] = max[d].max(v);
            }
        }
        debug_assert!(rows > 0);
        Ok(FeatureEncoding::MinMax { min, max })
    }

    /// A thermometer code of `levels` cut points per feature, fitted on a
    /// training set: cut `k` of a feature is its `(k+1)/(K+1)` quantile, the
    /// sorted column's value at index `⌊(k+1)·N/(K+1)⌋` (at most `N − 1`),
    /// which depends on nothing but the data.
    pub fn fit_thermometer(x: &[f32], features: usize, levels: usize) -> Result<Self> {
        if levels == 0 || levels > MAX_LEVELS {
            return Err(Error::Features(format!(
                "{levels} thermometer levels, out of range 1..={MAX_LEVELS}"
            )));
        }
        let rows = check_rows(x, features)?;
        let mut cuts = Vec::with_capacity(features * levels);
        let mut column = Vec::with_capacity(rows);
        for d in 0..features {
            column.clear();
            column.extend(x.iter().skip(d).step_by(features).copied());
            column.sort_by(f32::total_cmp);
            for k in 0..levels {
                let i = ((k + 1) * rows / (levels + 1)).min(rows - 1);
                cuts.push(column[i]);
            }
        }
        Ok(FeatureEncoding::Thermometer { levels, cuts })
    }

    /// The number of features a row holds, `D`.
    pub fn features(&self) -> usize {
        match self {
            FeatureEncoding::MinMax { min, .. } => min.len(),
            FeatureEncoding::Thermometer { levels, cuts } => cuts.len() / (*levels).max(1),
        }
    }

    /// The u8 values a row becomes: the model's input length.
    pub fn encoded_len(&self) -> usize {
        match self {
            FeatureEncoding::MinMax { min, .. } => min.len(),
            FeatureEncoding::Thermometer { cuts, .. } => cuts.len(),
        }
    }

    /// Thermometer levels per feature; 1 for min-max.
    pub fn levels(&self) -> usize {
        match self {
            FeatureEncoding::MinMax { .. } => 1,
            FeatureEncoding::Thermometer { levels, .. } => *levels,
        }
    }

    /// The input shape a model over these values takes: `1×D×1`, or
    /// `1×D×K` for a thermometer code (its levels as channels).
    pub fn input_shape(&self) -> InputShape {
        InputShape::new(1, self.features() as u32, self.levels() as u32)
    }

    /// Checks the constants: at least one feature, as many minima as
    /// maxima, each pair finite with `min <= max`; cut points finite,
    /// `levels` of them per feature and non-decreasing within it. What a
    /// file's `ENCD` section must satisfy, and what every constructor
    /// gives.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Features(m));
        match self {
            FeatureEncoding::MinMax { min, max } => {
                if min.is_empty() || min.len() != max.len() {
                    return bad(format!(
                        "min-max encoding of {} minima and {} maxima (at least one feature, as many of each)",
                        min.len(),
                        max.len()
                    ));
                }
                for (d, (&lo, &hi)) in min.iter().zip(max).enumerate() {
                    if !lo.is_finite() || !hi.is_finite() || lo > hi {
                        return bad(format!(
                            "feature {d}: min {lo} and max {hi} are not finite with min <= max"
                        ));
                    }
                }
            }
            FeatureEncoding::Thermometer { levels, cuts } => {
                if *levels == 0 || *levels > MAX_LEVELS {
                    return bad(format!(
                        "{levels} thermometer levels, out of range 1..={MAX_LEVELS}"
                    ));
                }
                if cuts.is_empty() || !cuts.len().is_multiple_of(*levels) {
                    return bad(format!(
                        "{} cut points are not a positive multiple of {levels} levels",
                        cuts.len()
                    ));
                }
                for (d, feature) in cuts.chunks_exact(*levels).enumerate() {
                    if let Some(k) = feature.iter().position(|c| !c.is_finite()) {
                        return bad(format!("feature {d}: cut point {k} is not finite"));
                    }
                    if let Some(k) = feature.windows(2).position(|w| w[0] > w[1]) {
                        return bad(format!(
                            "feature {d}: cut point {} is below cut point {k}",
                            k + 1
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Encodes rows of [`FeatureEncoding::features`] values each,
    /// appending [`FeatureEncoding::encoded_len`] bytes a row to `out`.
    ///
    /// # Errors
    ///
    /// [`Error::Features`] when `x` is not whole rows, or for a value that
    /// is NaN or infinite, naming its row and column (counted from 0).
    pub fn encode(&self, x: &[f32], out: &mut Vec<u8>) -> Result<()> {
        let d = self.features();
        let rows = whole_rows(x, d)?;
        if let Some(i) = x.iter().position(|v| !v.is_finite()) {
            return Err(Error::Features(format!(
                "feature row {}, column {} is {}, not a finite number",
                i / d,
                i % d,
                x[i]
            )));
        }
        out.reserve(rows * self.encoded_len());
        match self {
            FeatureEncoding::MinMax { min, max } => {
                for row in x.chunks_exact(d) {
                    out.extend(
                        row.iter()
                            .zip(min.iter().zip(max))
                            .map(|(&v, (&lo, &hi))| min_max_value(v, lo, hi)),
                    );
                }
            }
            FeatureEncoding::Thermometer { levels, cuts } => {
                for row in x.chunks_exact(d) {
                    for (&v, feature) in row.iter().zip(cuts.chunks_exact(*levels)) {
                        out.extend(feature.iter().map(|&c| if v >= c { 255 } else { 0 }));
                    }
                }
            }
        }
        Ok(())
    }

    /// A short description for reports: `u8 (min-max over 30 features)`,
    /// `thermometer:8 over 30 features`.
    pub fn describe(&self) -> String {
        match self {
            FeatureEncoding::MinMax { .. } => {
                format!("u8 (min-max over {} features)", self.features())
            }
            FeatureEncoding::Thermometer { levels, .. } => {
                format!("thermometer:{levels} over {} features", self.features())
            }
        }
    }
}

/// One min-max value, in the order the docs and the C export give.
fn min_max_value(x: f32, min: f32, max: f32) -> u8 {
    if max == min {
        return 0;
    }
    let q = (x - min) * 255.0 / (max - min);
    if q <= 0.0 {
        0
    } else if q >= 255.0 {
        255
    } else {
        // 0 < q < 255, so the floor is in 0..=255.
        (q + 0.5).floor() as u8
    }
}

/// The number of rows of `features` values in `x`, an error when it is not
/// whole rows.
fn whole_rows(x: &[f32], features: usize) -> Result<usize> {
    if features == 0 || !x.len().is_multiple_of(features) {
        return Err(Error::Features(format!(
            "{} values are not whole rows of {features} features",
            x.len()
        )));
    }
    Ok(x.len() / features)
}

/// A training set for fitting: whole rows, at least one, every value finite.
fn check_rows(x: &[f32], features: usize) -> Result<usize> {
    let rows = whole_rows(x, features)?;
    if rows == 0 {
        return Err(Error::Features("no rows to fit an encoding on".to_string()));
    }
    if let Some(i) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::Features(format!(
            "feature row {}, column {} is {}, not a finite number",
            i / features,
            i % features,
            x[i]
        )));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_max_scales_clamps_and_rounds() {
        let e = FeatureEncoding::fit_min_max(&[0.0, 5.0, 10.0, 5.0], 2).unwrap();
        assert_eq!(
            e,
            FeatureEncoding::MinMax {
                min: vec![0.0, 5.0],
                max: vec![10.0, 5.0]
            }
        );
        let mut out = Vec::new();
        e.encode(&[5.0, 7.0, -3.0, 1.0, 20.0, 5.0, 0.02, 0.0], &mut out)
            .unwrap();
        // 127.5 rounds up; a constant feature is 0; out of range clamps;
        // 0.51 rounds to 1.
        assert_eq!(out, [128, 0, 0, 0, 255, 0, 1, 0]);
        assert_eq!(e.describe(), "u8 (min-max over 2 features)");
        assert_eq!(e.input_shape(), InputShape::new(1, 2, 1));
    }

    #[test]
    fn thermometer_cuts_are_quantiles_and_code_is_monotone() {
        let x: Vec<f32> = (0..10).map(|i| i as f32).collect();
        let e = FeatureEncoding::fit_thermometer(&x, 1, 3).unwrap();
        // Indices ⌊(k+1)·10/4⌋ = 2, 5, 7.
        assert_eq!(
            e,
            FeatureEncoding::Thermometer {
                levels: 3,
                cuts: vec![2.0, 5.0, 7.0]
            }
        );
        let mut out = Vec::new();
        e.encode(&[1.0, 2.0, 6.0, 9.5], &mut out).unwrap();
        assert_eq!(out, [0, 0, 0, 255, 0, 0, 255, 255, 0, 255, 255, 255]);
        assert_eq!(e.describe(), "thermometer:3 over 1 features");
        assert_eq!(e.encoded_len(), 3);
        assert_eq!(e.input_shape(), InputShape::new(1, 1, 3));
        e.check().unwrap();
    }

    #[test]
    fn bad_values_are_named_by_row_and_column() {
        let e = FeatureEncoding::fit_min_max(&[0.0, 1.0], 2).unwrap();
        let mut out = Vec::new();
        let m = e
            .encode(&[0.0, 1.0, 2.0, f32::NAN], &mut out)
            .unwrap_err()
            .to_string();
        assert_eq!(m, "feature row 1, column 1 is NaN, not a finite number");
        let m = e
            .encode(&[0.0, 1.0, 2.0], &mut out)
            .unwrap_err()
            .to_string();
        assert_eq!(m, "3 values are not whole rows of 2 features");
        let m = FeatureEncoding::fit_thermometer(&[f32::INFINITY], 1, 2)
            .unwrap_err()
            .to_string();
        assert!(m.contains("row 0, column 0 is inf"), "{m}");
        assert!(FeatureEncoding::fit_thermometer(&[1.0], 1, 0).is_err());
        assert!(FeatureEncoding::fit_min_max(&[], 3).is_err());
    }

    #[test]
    fn checks_refuse_what_no_fit_gives() {
        let bad = FeatureEncoding::MinMax {
            min: vec![1.0],
            max: vec![0.0],
        };
        assert!(bad.check().unwrap_err().to_string().contains("feature 0"));
        let bad = FeatureEncoding::Thermometer {
            levels: 2,
            cuts: vec![1.0, 0.0],
        };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "feature 0: cut point 1 is below cut point 0"
        );
    }
}
