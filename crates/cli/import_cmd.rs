//! `bnn import-npz`: the seed project's NumPy weights as a `.bnn` model;
//! `bnn import`: an ONNX binary network as a `.bnn` model (`bnn-onnx`).

use std::path::PathBuf;

use anyhow::Context;
use bnn_core::{BinaryDense, BitMatrix, DecisionRule, Model, Threshold};

use crate::choices;
use bnn_data::npz::DenseParams;

use crate::output::thousands;

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// A NumPy .npz with fc1_w, fc1_b, ..., fcN_w, fcN_b (weights ±1).
    pub npz: PathBuf,
    /// The .bnn file to write.
    #[arg(short, long, value_name = "MODEL")]
    pub output: PathBuf,
    /// Decision rule stored in the model.
    #[arg(long, value_enum, default_value = "seed")]
    pub rule: choices::Rule,
}

pub fn run(args: ImportArgs) -> anyhow::Result<()> {
    crate::check_outputs(&[("model", &args.output)], &[&args.npz])?;
    let layers = bnn_data::npz::read_seed_layers(&args.npz).context("cannot import weights")?;
    let rule = DecisionRule::from(args.rule);
    let model =
        model_from_dense(&layers, rule).with_context(|| format!("{}", args.npz.display()))?;
    // A pipe has no size to report.
    let npz_bytes = std::fs::metadata(&args.npz)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let name = args
        .npz
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let size = npz_bytes.map_or(String::new(), |n| format!(" ({n} bytes)"));
    let description = format!(
        "imported from {name}{size} by `bnn import-npz`: sign weights packed, hidden biases folded into integer thresholds (x.w >= ceil(-b)), output biases as f32"
    );
    bnn_core::format::save(&model, &description, &args.output).context("cannot write model")?;
    let written = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    let shape: Vec<String> = model.shape().iter().map(|w| w.to_string()).collect();
    crate::output::summary(|out| {
        writeln!(
            out,
            "imported {} ({}), rule {}",
            args.npz.display(),
            shape.join("-"),
            model.rule()
        )?;
        match npz_bytes {
            Some(npz_bytes) => writeln!(
                out,
                "wrote {}: {} bytes (the .npz is {} bytes, {})",
                args.output.display(),
                thousands(written),
                thousands(npz_bytes),
                crate::output::size_ratio(npz_bytes, written)
            ),
            None => writeln!(
                out,
                "wrote {}: {} bytes",
                args.output.display(),
                thousands(written)
            ),
        }
    });
    Ok(())
}

/// Hidden layers get `sign(x·w + b)` as the exact integer threshold
/// `x·w >= ⌈−b⌉`; the last layer keeps its bias (as f32) for the scores.
pub fn model_from_dense(layers: &[DenseParams], rule: DecisionRule) -> anyhow::Result<Model> {
    let mut built = Vec::with_capacity(layers.len());
    for (i, l) in layers.iter().enumerate() {
        let weights =
            BitMatrix::from_pm1(l.rows, l.cols, &l.weights).with_context(|| l.name.clone())?;
        let layer = if i + 1 < layers.len() {
            let thresholds = l
                .bias
                .iter()
                .map(|&b| Threshold::from_bias(b, l.cols))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| l.name.clone())?;
            BinaryDense::hidden(weights, thresholds)?
        } else {
            let mut bias = Vec::with_capacity(l.bias.len());
            for (j, &b) in l.bias.iter().enumerate() {
                let narrow = b as f32;
                anyhow::ensure!(
                    narrow.is_finite(),
                    "{}_b: bias at flat index {j} is {b:e}, beyond the range of the f32 output scores",
                    l.name
                );
                bias.push(narrow);
            }
            BinaryDense::output(weights, bias)?
        };
        built.push(layer);
    }
    let input_len = layers.first().map(|l| l.cols).unwrap_or(0);
    Ok(Model::new(input_len, 128, built, rule)?)
}

#[derive(clap::Args, Debug)]
pub struct OnnxArgs {
    /// An ONNX file of a binary network (see docs/IMPORT.md); external
    /// data must sit beside it.
    pub onnx: PathBuf,
    /// The .bnn file to write.
    #[arg(short, long, value_name = "MODEL")]
    pub output: PathBuf,
    /// MNIST directory whose test images count how often a possible tie
    /// (a pre-activation of exactly 0 under Sign) happens; used only when
    /// the import warns of one, and only if the files are there.
    #[arg(long, value_name = "DIR", default_value = "data/mnist")]
    pub data: PathBuf,
}

/// `bnn import`: nothing is written unless the whole graph matched.
pub fn run_onnx(args: OnnxArgs) -> anyhow::Result<()> {
    crate::check_outputs(&[("model", &args.output)], &[&args.onnx])?;
    let imported = bnn_onnx::import_file(&args.onnx)
        .with_context(|| format!("cannot import {}", args.onnx.display()))?;
    for warning in &imported.warnings {
        crate::output::note!("bnn: warning: {warning}");
    }
    let mut tie_lines = Vec::new();
    if imported.may_tie() {
        let found = bnn_data::mnist::find_file(&args.data, bnn_data::mnist::TEST_IMAGES).is_ok();
        if found && imported.model.input_len() == 784 {
            let (images, _) = bnn_data::mnist::load_test(&args.data)
                .with_context(|| format!("cannot count ties on {}", args.data.display()))?;
            let counts = imported
                .count_ties(&images.pixels)
                .context("cannot count ties")?;
            for c in counts {
                tie_lines.push(format!(
                    "ties at {} on the {} MNIST test images of {}: {} images, {} values (ONNX gives 0 there, bnn +1)",
                    c.node,
                    thousands(images.count as u64),
                    args.data.display(),
                    thousands(c.images as u64),
                    thousands(c.values)
                ));
            }
        } else {
            tie_lines.push(format!(
                "ties not counted: no 784-pixel MNIST test images in {} (give --data DIR)",
                args.data.display()
            ));
        }
    }
    let onnx_bytes = std::fs::metadata(&args.onnx)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    let name = args
        .onnx
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let description = imported.description(&name, onnx_bytes, "`bnn import`");
    let model = &imported.model;
    bnn_core::format::save(model, &description, &args.output).context("cannot write model")?;
    let written = std::fs::metadata(&args.output)
        .map(|m| m.len())
        .unwrap_or(0);
    crate::output::summary(|out| {
        writeln!(
            out,
            "imported {} ({}, {} input), rule {}",
            args.onnx.display(),
            model.arch(),
            if model.input_encoding().is_u8() {
                "u8"
            } else {
                "binary"
            },
            model.rule()
        )?;
        for line in imported.notes.iter().chain(&tie_lines) {
            writeln!(out, "{line}")?;
        }
        writeln!(
            out,
            "wrote {}: {} bytes",
            args.output.display(),
            thousands(written)
        )
    });
    Ok(())
}
