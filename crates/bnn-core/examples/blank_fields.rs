//! The share of each convolution's output positions that the engine
//! computes on the 10,000 MNIST test digits: those whose receptive field
//! holds a non-zero pixel. The others copy the blank image's bits (see the
//! conv module docs). Counted here position by position, the obvious way,
//! from the model's public shapes.
//!
//! ```text
//! cargo run --release -p bnn-core --example blank_fields -- MODEL.bnn
//! ```

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: blank_fields MODEL.bnn");
        std::process::exit(2);
    };
    let model = bnn_core::format::load(std::path::Path::new(&path))
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(1)
        })
        .model;
    if !model.is_convolutional() {
        eprintln!("{path}: not a convolutional model");
        std::process::exit(1);
    }
    let shape = model.input_shape();
    let (h, w, c) = (
        shape.height as usize,
        shape.width as usize,
        shape.channels as usize,
    );
    let pixels = bnn_testkit::paths::mnist_test_images().pixels;
    if h * w * c != pixels.len() / 10_000 {
        eprintln!("{path}: takes {shape}, not the 28×28 MNIST digits");
        std::process::exit(1);
    }
    let mut live_counts = vec![0usize; model.convs().len()];
    let mut totals = vec![0usize; model.convs().len()];
    for image in pixels.chunks_exact(h * w * c) {
        // Live input positions: a non-zero pixel in any channel.
        let mut live: Vec<Vec<bool>> = (0..h)
            .map(|y| {
                (0..w)
                    .map(|x| image[(y * w + x) * c..][..c].iter().any(|&p| p != 0))
                    .collect()
            })
            .collect();
        for (i, stage) in model.convs().iter().enumerate() {
            let k = stage.conv().k();
            let pad = stage.conv().padding().before(k);
            let out = stage.conv_shape();
            let (ho, wo) = (out.height as usize, out.width as usize);
            let (hi, wi) = (live.len(), live[0].len());
            let conv: Vec<Vec<bool>> = (0..ho)
                .map(|oy| {
                    (0..wo)
                        .map(|ox| {
                            (0..k * k).any(|t| {
                                let (y, x) = (oy + t / k, ox + t % k);
                                y >= pad
                                    && x >= pad
                                    && y - pad < hi
                                    && x - pad < wi
                                    && live[y - pad][x - pad]
                            })
                        })
                        .collect()
                })
                .collect();
            live_counts[i] += conv.iter().flatten().filter(|&&l| l).count();
            totals[i] += ho * wo;
            live = if stage.pooled() {
                (0..ho / 2)
                    .map(|y| {
                        (0..wo / 2)
                            .map(|x| (0..4).any(|t| conv[2 * y + t / 2][2 * x + t % 2]))
                            .collect()
                    })
                    .collect()
            } else {
                conv
            };
        }
    }
    for (i, (live, total)) in live_counts.iter().zip(&totals).enumerate() {
        println!(
            "convolution {}: {:.1} % of {} positions computed ({:.1} per image)",
            i + 1,
            100.0 * *live as f64 / *total as f64,
            total / 10_000,
            *live as f64 / 10_000.0
        );
    }
}
