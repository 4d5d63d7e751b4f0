//! Which kernel each XNOR layer of a model runs on the MNIST test digits
//! under `LayerMode::Auto`, per chunk of 64 images as the batch path splits
//! them, with the minority share of each layer's input bits that decides it:
//! `cargo run --release --example layer_choice -- weights/mnist-512.bnn`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use bnn_core::{kernel::available, BitMatrix, LayerMode};

const CHUNK: usize = 64;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("layer_choice: {e:#}");
            ExitCode::from(if e.is::<Usage>() { 2 } else { 1 })
        }
    }
}

#[derive(Debug)]
struct Usage;

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("usage: layer_choice MODEL.bnn [MNIST_DIR (default data/mnist)]")
    }
}

impl std::error::Error for Usage {}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.is_empty() || args.len() > 2 {
        bail!(Usage);
    }
    let path = Path::new(&args[0]);
    let model = bnn_core::format::load(path)
        .with_context(|| format!("{}: cannot load model", path.display()))?
        .model;
    let dir = Path::new(args.get(1).map_or("data/mnist", String::as_str));
    let (images, _) = bnn_data::mnist::load_test(dir)
        .with_context(|| format!("{}: cannot load the MNIST test set", dir.display()))?;
    if images.rows * images.cols != model.input_len() {
        bail!(
            "{}: the model takes {} inputs, MNIST images have {}",
            path.display(),
            model.input_len(),
            images.rows * images.cols
        );
    }
    let n = images.count;
    let kernel = available()[0];
    let mut inputs = Vec::new();
    if model.pixel_layer().is_none() {
        let mut x = BitMatrix::new(n, model.input_len());
        for (r, image) in images.pixels.chunks_exact(model.input_len()).enumerate() {
            kernel.pack_pixels(image, model.input_threshold(), x.row_mut(r));
        }
        inputs.push(x);
    }
    inputs.extend(model.hidden_activations(kernel, &images.pixels)?);
    let first = model.layer_count() - model.layers().len();
    for (i, (layer, x)) in model.layers().iter().zip(&inputs).enumerate() {
        let mut shares: Vec<f64> = (0..n)
            .map(|r| {
                let ones: usize = x.row(r).iter().map(|w| w.count_ones() as usize).sum();
                ones.min(layer.inputs() - ones) as f64 / layer.inputs() as f64
            })
            .collect();
        shares.sort_by(f64::total_cmp);
        let mean = shares.iter().sum::<f64>() / n as f64;
        let wpr = layer.inputs().div_ceil(64);
        let choices: Vec<String> = available()
            .into_iter()
            .map(|k| {
                let sparse = (0..n)
                    .step_by(CHUNK)
                    .filter(|&c| {
                        let rows = (n - c).min(CHUNK);
                        layer.runs_sparse(k, LayerMode::Auto, &x.words()[c * wpr..], rows)
                    })
                    .count();
                format!("{k} {sparse}/{}", n.div_ceil(CHUNK))
            })
            .collect();
        println!(
            "layer {} ({}->{}): minority share mean {:.1} %, median {:.1} %, range {:.1}-{:.1} %; sparse chunks: {}",
            first + i + 1,
            layer.inputs(),
            layer.outputs(),
            100.0 * mean,
            100.0 * shares[n / 2],
            100.0 * shares[0],
            100.0 * shares[n - 1],
            choices.join(", ")
        );
    }
    Ok(())
}
