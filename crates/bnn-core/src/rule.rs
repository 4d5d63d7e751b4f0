//! How a class is chosen from the output scores: shared by the model, the
//! kernels that decide a row's class beside its scores, and the file format,
//! in a module of its own so that none of them depends on another for it.

use crate::error::{Error, Result};

/// How a class is chosen from the output scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecisionRule {
    /// Argmax of the scores; ties go to the lowest index.
    Scores,
    /// The seed project's rule: take the sign of every score (`sign(0) = +1`)
    /// and pick the first maximum, so the first non-negative score wins and
    /// class 0 wins when all are negative.
    Seed,
}

impl DecisionRule {
    /// The lowercase name `--rule` takes and reports show.
    pub fn name(self) -> &'static str {
        match self {
            DecisionRule::Scores => "scores",
            DecisionRule::Seed => "seed",
        }
    }

    /// Applies the rule to one image's scores.
    #[inline]
    pub fn decide(self, scores: &[f32]) -> usize {
        match self {
            DecisionRule::Scores => {
                // Selects, not branches: which score wins is data, and a
                // mispredicted branch per class cost 5 % of a 784-512-10
                // single-image call.
                let (mut best, mut top) = (0, scores[0]);
                for (i, &s) in scores.iter().enumerate().skip(1) {
                    let better = s > top;
                    best = if better { i } else { best };
                    top = if better { s } else { top };
                }
                best
            }
            DecisionRule::Seed => scores.iter().position(|&s| s >= 0.0).unwrap_or(0),
        }
    }
}

impl std::str::FromStr for DecisionRule {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "scores" => Ok(DecisionRule::Scores),
            "seed" => Ok(DecisionRule::Seed),
            other => Err(Error::InvalidModel(format!(
                "unknown decision rule '{other}' (known: seed, scores)"
            ))),
        }
    }
}

impl std::fmt::Display for DecisionRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
