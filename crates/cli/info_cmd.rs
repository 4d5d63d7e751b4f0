//! `bnn info`: what a model file holds and what it costs in bytes.

use std::io::Write;
use std::path::PathBuf;

use bnn_core::{InputEncoding, Transform};

use crate::output::thousands;

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// A .bnn model file.
    pub model: PathBuf,
}

pub fn run(args: InfoArgs) -> anyhow::Result<()> {
    let file = crate::args::load_model(&args.model)?;
    let model = &file.model;
    let mut out = std::io::stdout().lock();
    let shape: Vec<String> = model.shape().iter().map(|w| w.to_string()).collect();
    writeln!(out, "model           {}", args.model.display())?;
    writeln!(out, "shape           {}", shape.join("-"))?;
    writeln!(out, "arch            {}", model.arch())?;
    // Each padding the convolutions use, in order: an imported CNN may pad
    // its u8 input `same` and its bit maps `zero`.
    let mut paddings: Vec<String> = Vec::new();
    for stage in model.convs() {
        let name = stage.conv().padding().to_string();
        if !paddings.contains(&name) {
            paddings.push(name);
        }
    }
    if !paddings.is_empty() {
        writeln!(out, "padding         {}", paddings.join(", "))?;
    }
    let sign = |t: &Transform, over: &str| match t {
        Transform::Sign(t) => {
            let flipped = t.iter().filter(|t| t.flip).count();
            format!("{over}sign, integer thresholds ({flipped} flipped)")
        }
        Transform::Scores(_) if model.score_scale().is_some() => {
            format!("{over}scores = dot x f32 scale per class + f32 bias")
        }
        Transform::Scores(_) => format!("{over}scores = dot + f32 bias"),
    };
    let mut params = 0;
    let mut n = 0;
    let mut layer = |out: &mut dyn Write, text: String| {
        n += 1;
        writeln!(out, "layer {n:<9} {text}")
    };
    const U8: &str = "u8 pixels x ±1, ";
    for stage in model.convs() {
        let conv = stage.conv();
        let over = if stage.takes_pixels() { U8 } else { "" };
        let (k, s) = (conv.k(), stage.conv_shape());
        let what = sign(conv.transform(), over);
        let text = format!(
            "conv {k}x{k}x{}->{} {} {s}  {what}",
            conv.in_channels(),
            conv.out_channels(),
            conv.padding()
        );
        layer(&mut out, text)?;
        if stage.pooled() {
            let text = format!(
                "maxpool 2x2 -> {}  on bits: OR per channel, AND where flipped",
                stage.output_shape()
            );
            layer(&mut out, text)?;
        }
        params += (conv.window() + 1) * conv.out_channels();
    }
    if let Some(last) = model.convs().last() {
        writeln!(out, "{:<16}flatten {} (NHWC)", "", last.output_len())?;
    }
    // A u8 MLP's pixel layer comes first (it has no convolutions).
    let pixel = model
        .pixel_layer()
        .map(|l| (l.inputs(), l.outputs(), l.transform(), U8));
    let dense = model
        .layers()
        .iter()
        .map(|l| (l.inputs(), l.outputs(), l.transform(), ""));
    for (inputs, outputs, transform, over) in pixel.into_iter().chain(dense) {
        let what = sign(transform, over);
        layer(&mut out, format!("dense {inputs}->{outputs}  {what}"))?;
        params += (inputs + 1) * outputs;
    }
    writeln!(out, "decision rule   {}", model.rule())?;
    let input = match model.input_encoding() {
        InputEncoding::Binary { threshold } => format!("binary, pixel >= {threshold} is +1"),
        InputEncoding::U8 => "u8, pixel values 0..=255 enter the first layer".to_string(),
    };
    writeln!(out, "input           {input}")?;
    writeln!(out, "input shape     {} (HxWxC)", model.input_shape())?;
    if let Some(encoding) = model.feature_encoding() {
        writeln!(
            out,
            "features        {}, stored: raw rows of {} values are encoded before layer 1",
            encoding.describe(),
            encoding.features()
        )?;
    }
    writeln!(out, "classes         {}", classes_line(model))?;
    writeln!(out, "format          version {}", file.version)?;
    for s in &file.sections {
        let required = if s.required { ", required" } else { "" };
        if s.known {
            writeln!(out, "section         {} ({} bytes{required})", s.tag, s.len)?;
        } else {
            writeln!(out, "skipped section {} ({} bytes)", s.tag, s.len)?;
        }
    }
    let weight_bits = model.weight_bits();
    let fp32 = params * 4;
    writeln!(
        out,
        "weight bits     {} ({} bytes packed)",
        thousands(weight_bits as u64),
        thousands(weight_bits.div_ceil(8) as u64)
    )?;
    writeln!(out, "file bytes      {}", thousands(file.file_bytes))?;
    writeln!(
        out,
        "memory bytes    {} (weights interleaved for the kernels, popcount limits, thresholds or biases)",
        thousands(model.memory_bytes() as u64)
    )?;
    let transposed: usize = model.layers().iter().map(|l| l.transposed_bytes()).sum();
    writeln!(
        out,
        "transposed      {} bytes more (the weights as columns for the sparse kernel, with its cuts)",
        thousands(transposed as u64)
    )?;
    writeln!(
        out,
        "fp32 bytes      {} (same shape: {} weights and biases as f32)",
        thousands(fp32 as u64),
        thousands(params as u64)
    )?;
    writeln!(
        out,
        "compression     {:.2}x smaller than fp32",
        fp32 as f64 / file.file_bytes as f64
    )?;
    writeln!(out, "checksum        CRC-32 ok")?;
    if !file.description.is_empty() {
        // Whoever made the file wrote the description: its line breaks
        // become spaces and any other control byte (ESC, CR, BEL) is shown
        // escaped, never sent to the terminal.
        let description = file.description.replace('\n', " ");
        writeln!(
            out,
            "description     {}",
            bnn_io::text::printable(&description)
        )?;
    }
    Ok(())
}

/// How many names a report lists before summing up the rest.
const NAMES_SHOWN: usize = 20;

/// The class count and, when the model has them, the first names:
/// `3: benign, malignant, unsure`, `100: a, b, … 80 more`.
fn classes_line(model: &bnn_core::Model) -> String {
    let n = model.num_classes();
    let Some(names) = model.class_names() else {
        return format!("{n} (unnamed: shown by index)");
    };
    let shown: Vec<String> = names
        .iter()
        .take(NAMES_SHOWN)
        .map(|name| bnn_io::text::printable(name).to_string())
        .collect();
    let more = match names.len().saturating_sub(NAMES_SHOWN) {
        0 => String::new(),
        rest => format!(", … {rest} more"),
    };
    format!("{n}: {}{more}", shown.join(", "))
}
