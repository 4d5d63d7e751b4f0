//! The fixed sets of words that options accept, as clap value enums: clap
//! lists them in `--help`, rejects anything else with one message that
//! names the option and the possible values, and each converts into the
//! library's own type. The tests below hold every set to the library's
//! spellings, so the two cannot drift apart.

use clap::ValueEnum;

/// `--rule`: how a class is chosen from the scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Rule {
    Seed,
    Scores,
}

impl From<Rule> for bnn_core::DecisionRule {
    fn from(r: Rule) -> Self {
        match r {
            Rule::Seed => bnn_core::DecisionRule::Seed,
            Rule::Scores => bnn_core::DecisionRule::Scores,
        }
    }
}

impl From<Rule> for bnn_train::Rule {
    fn from(r: Rule) -> Self {
        match r {
            Rule::Seed => bnn_train::Rule::Seed,
            Rule::Scores => bnn_train::Rule::Scores,
        }
    }
}

/// `--kernel`: whether this CPU runs it is checked when the run starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kernel {
    Scalar,
    Avx2,
    Avx512,
    Simd128,
    Neon,
}

impl From<Kernel> for bnn_core::Kernel {
    fn from(k: Kernel) -> Self {
        match k {
            Kernel::Scalar => bnn_core::Kernel::Scalar,
            Kernel::Avx2 => bnn_core::Kernel::Avx2,
            Kernel::Avx512 => bnn_core::Kernel::Avx512,
            Kernel::Simd128 => bnn_core::Kernel::Simd128,
            Kernel::Neon => bnn_core::Kernel::Neon,
        }
    }
}

/// `classify --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Rows {
    Csv,
    Json,
    Npy,
}

/// `export --format`: the code generators of `bnn-export`, or ONNX
/// (`bnn-onnx`, one file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    C,
    Verilog,
    Onnx,
}

impl ExportFormat {
    /// The code generator, `None` for ONNX.
    pub fn code(self) -> Option<bnn_export::Format> {
        match self {
            ExportFormat::C => Some(bnn_export::Format::C),
            ExportFormat::Verilog => Some(bnn_export::Format::Verilog),
            ExportFormat::Onnx => None,
        }
    }
}

/// `export --word-bits`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum WordBits {
    #[value(name = "64")]
    W64,
    #[value(name = "32")]
    W32,
}

impl From<WordBits> for bnn_export::WordBits {
    fn from(w: WordBits) -> Self {
        match w {
            WordBits::W64 => bnn_export::WordBits::W64,
            WordBits::W32 => bnn_export::WordBits::W32,
        }
    }
}

/// `train --recipe`: the starting configurations `bnn_train::recipe` knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Recipe {
    Seed,
    Bn,
    Deep,
    Fp32,
    /// 784-512-10 with u8 input.
    #[value(name = "bn-u8")]
    BnU8,
    /// 784-1024-1024-1024-10 with u8 input.
    #[value(name = "deep-u8")]
    DeepU8,
    /// Convolutional, exactly c3x32,p2,c3x64,p2,d256,d10, u8 input, same
    /// padding: the benchmark shape.
    #[value(name = "cnn-small")]
    CnnSmall,
    /// Convolutional: the accuracy model.
    Cnn,
    /// FINN's CNV for 32x32x3 images (CIFAR-10): c3x64,c3x64,p2,c3x128,
    /// c3x128,p2,c3x256,c3x256,d512,d512,d10, u8 input, valid padding.
    Cnv,
}

/// `train --padding`: how convolutions treat the border.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Padding {
    /// (k-1)/2 on each side: the map keeps its size.
    Same,
    /// No padding: the map shrinks by k-1.
    Valid,
}

impl From<Padding> for bnn_train::arch::Padding {
    fn from(p: Padding) -> Self {
        match p {
            Padding::Same => bnn_train::arch::Padding::Same,
            Padding::Valid => bnn_train::arch::Padding::Valid,
        }
    }
}

impl Recipe {
    pub fn name(self) -> String {
        self.to_possible_value()
            .expect("no hidden recipes")
            .get_name()
            .to_owned()
    }
}

/// `train --input`: how pixels enter the first layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Input {
    /// Pixel >= 128 is +1, then XNOR-popcount.
    Binary,
    /// The pixel value 0..=255 times the ±1 weights, an exact integer dot
    /// product; the layers after it stay binary.
    U8,
}

impl From<Input> for bnn_train::Input {
    fn from(i: Input) -> Self {
        match i {
            Input::Binary => bnn_train::Input::Binary,
            Input::U8 => bnn_train::Input::U8,
        }
    }
}

/// `train --loss`; `hinge` and `ce` are the short forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Loss {
    SignMse,
    Mse,
    #[value(alias = "hinge")]
    SquaredHinge,
    #[value(alias = "ce")]
    CrossEntropy,
}

impl From<Loss> for bnn_train::Loss {
    fn from(l: Loss) -> Self {
        match l {
            Loss::SignMse => bnn_train::Loss::SignMse,
            Loss::Mse => bnn_train::Loss::Mse,
            Loss::SquaredHinge => bnn_train::Loss::SquaredHinge,
            Loss::CrossEntropy => bnn_train::Loss::CrossEntropy,
        }
    }
}

/// `train --progress`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ProgressMode {
    /// Bars on a terminal, nothing otherwise.
    Auto,
    /// Bars, wherever stderr goes.
    Bar,
    /// A line per epoch.
    Log,
    /// Nothing.
    None,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every spelling clap accepts, aliases included.
    fn names<T: ValueEnum>() -> Vec<(T, String)> {
        T::value_variants()
            .iter()
            .flat_map(|v| {
                let pv = v.to_possible_value().expect("no hidden variants");
                pv.get_name_and_aliases()
                    .map(|n| (v.clone(), n.to_string()))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[derive(clap::Parser)]
    struct Train {
        #[command(flatten)]
        knobs: crate::train_cmd::Knobs,
    }

    #[derive(clap::Parser)]
    struct Run {
        #[command(flatten)]
        run: crate::args::RunArgs,
    }

    /// `option value` is a rejected value (not help, not a missing
    /// argument), and the message names both.
    fn rejects<T: clap::Parser>(option: &str, value: &str) {
        use clap::error::ErrorKind::{InvalidValue, ValueValidation};
        let err = parse::<T>(&[option, value]).err().expect("rejected");
        assert!(
            matches!(err.kind(), InvalidValue | ValueValidation) && err.use_stderr(),
            "{option} {value}: {:?}",
            err.kind()
        );
        let text = err.to_string();
        assert!(text.contains(option) && text.contains(value), "{text}");
    }

    fn parse<T: clap::Parser>(args: &[&str]) -> Result<T, clap::Error> {
        T::try_parse_from(std::iter::once("bnn").chain(args.iter().copied()))
    }

    /// Short forms, parameters and case reach the library as its values;
    /// bad ones are clap's usage errors, naming the option.
    #[test]
    fn options_parse_into_library_values() {
        let k: Train = parse(&[
            "--loss",
            "ce",
            "--optimizer",
            "momentum:0.5",
            "--schedule",
            "step:3:0.5",
            "--rule",
            "scores",
        ])
        .unwrap();
        assert_eq!(
            k.knobs.loss.map(bnn_train::Loss::from),
            Some(bnn_train::Loss::CrossEntropy)
        );
        assert_eq!(
            k.knobs.optimizer,
            Some(bnn_train::Optimizer::Momentum { momentum: 0.5 })
        );
        assert_eq!(
            k.knobs.schedule,
            Some(bnn_train::Schedule::Step {
                every: 3,
                gamma: 0.5
            })
        );
        assert_eq!(k.knobs.rule, Some(Rule::Scores));
        let r: Run = parse(&["--kernel", "SCALAR", "--rule", "seed"]).unwrap();
        assert_eq!(
            (r.run.kernel, r.run.rule),
            (Some(Kernel::Scalar), Some(Rule::Seed))
        );
        rejects::<Train>("--loss", "l1");
        rejects::<Train>("--optimizer", "rmsprop");
        rejects::<Train>("--schedule", "linear");
        rejects::<Run>("--kernel", "sse9");
        rejects::<Run>("--rule", "vote");
    }

    #[test]
    fn spellings_are_the_libraries() {
        for (v, name) in names::<Rule>() {
            let core: bnn_core::DecisionRule = name.parse().unwrap();
            assert_eq!(core, v.into());
            assert_eq!(bnn_core::DecisionRule::from(v).name(), name);
            assert_eq!(name.parse::<bnn_train::Rule>().unwrap(), v.into());
        }
        let kernels: Vec<_> = names::<Kernel>()
            .into_iter()
            .map(|(v, name)| {
                let k = bnn_core::Kernel::from(v);
                assert_eq!(k.name(), name);
                k
            })
            .collect();
        assert_eq!(kernels.len(), bnn_core::Kernel::ALL.len());
        assert!(bnn_core::Kernel::ALL.iter().all(|k| kernels.contains(k)));
        for (v, name) in names::<ExportFormat>() {
            match v.code() {
                Some(code) => assert_eq!(name.parse::<bnn_export::Format>().unwrap(), code),
                None => assert_eq!(name, "onnx"),
            }
        }
        for (v, name) in names::<WordBits>() {
            assert_eq!(name.parse::<bnn_export::WordBits>().unwrap(), v.into());
            assert_eq!(bnn_export::WordBits::from(v).bits().to_string(), name);
        }
        for (v, name) in names::<Loss>() {
            assert_eq!(name.parse::<bnn_train::Loss>().unwrap(), v.into());
        }
        assert_eq!(names::<Loss>().len(), 6, "four losses, two short forms");
        let recipes: Vec<String> = names::<Recipe>().into_iter().map(|(_, n)| n).collect();
        assert_eq!(recipes, bnn_train::RECIPES);
        for r in Recipe::value_variants() {
            assert_eq!(bnn_train::recipe(&r.name()).unwrap().recipe, r.name());
        }
    }
}
