//! `bnn info`: what a model file holds and what it costs in bytes.

use std::io::Write;
use std::path::PathBuf;

use bnn_core::Transform;

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
    for (i, layer) in model.layers().iter().enumerate() {
        let what = match layer.transform() {
            Transform::Sign(t) => {
                let flipped = t.iter().filter(|t| t.flip).count();
                format!("sign, integer thresholds ({flipped} flipped)")
            }
            Transform::Scores(_) => "scores = dot + f32 bias".to_string(),
        };
        writeln!(
            out,
            "layer {:<9} {} -> {}  {what}",
            i + 1,
            layer.inputs(),
            layer.outputs()
        )?;
    }
    writeln!(out, "decision rule   {}", model.rule())?;
    writeln!(
        out,
        "input           pixel >= {} is +1",
        model.input_threshold()
    )?;
    let weight_bits = model.weight_bits();
    let params: usize = model
        .layers()
        .iter()
        .map(|l| l.inputs() * l.outputs() + l.outputs())
        .sum();
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
        writeln!(
            out,
            "description     {}",
            file.description.replace('\n', " ")
        )?;
    }
    Ok(())
}
