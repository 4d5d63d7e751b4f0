//! Writes a model's twin with every zero-padded convolution padded with −1
//! instead (`same`), the engine's own padding
//! ([`bnn_testkit::models::minus_one_twin`]): the same weights, thresholds
//! and shapes, so `bnn bench MODEL TWIN` in one run shows what zero
//! padding costs (docs/IMPORT.md, "Speed"). The twin is a speed reference,
//! not a model to use.
//!
//! `cargo run --release --example minus_one_twin -- z.bnn m1.bnn`
//!
//! The output must not exist yet: it is created, never overwritten.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use bnn_core::format;
use bnn_testkit::models::minus_one_twin;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [from, to] = &args[..] else {
        eprintln!("usage: minus_one_twin MODEL.bnn TWIN.bnn");
        return ExitCode::from(2);
    };
    match run(Path::new(from), Path::new(to)) {
        Ok(()) => {
            println!("wrote {to}: {from} padded with -1 where it pads with zero");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("minus_one_twin: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(from: &Path, to: &Path) -> anyhow::Result<()> {
    let file = format::load(from).with_context(|| format!("{}", from.display()))?;
    let Some(twin) = minus_one_twin(&file.model) else {
        anyhow::bail!("{}: no zero-padded convolution", from.display());
    };
    let description = format!("{} (twin padded with -1)", file.description);
    let bytes = format::to_bytes(&twin, &description);
    std::fs::File::create_new(to)
        .and_then(|mut f| f.write_all(&bytes))
        .with_context(|| format!("{}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bnn_core::conv::Padding;
    use bnn_core::InputEncoding;
    use bnn_testkit::models::{random_mnist_cnn, rng, CNN_SMALL};

    /// The twin keeps every weight and threshold and pads with −1; a model
    /// without zero padding is refused; an existing output is refused and
    /// left as it was.
    #[test]
    fn twin_pads_with_minus_one_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = rng(5);
        let model = random_mnist_cnn(
            &mut r,
            InputEncoding::U8,
            &CNN_SMALL,
            Padding::Zero,
            &[16, 10],
        );
        let (from, to) = (dir.path().join("z.bnn"), dir.path().join("m1.bnn"));
        format::save(&model, "", &from).unwrap();
        run(&from, &to).unwrap();
        let twin = format::load(&to).unwrap().model;
        let paddings: Vec<Padding> = twin.convs().iter().map(|s| s.conv().padding()).collect();
        assert_eq!(paddings, [Padding::Same, Padding::Same]);
        for (a, b) in model.convs().iter().zip(twin.convs()) {
            assert_eq!(a.conv().weights(), b.conv().weights());
            assert_eq!(a.conv().thresholds(), b.conv().thresholds());
        }
        assert_eq!(model.layers(), twin.layers());
        let written = std::fs::read(&to).unwrap();
        let err = format!("{:#}", run(&from, &to).unwrap_err());
        assert!(err.contains("m1.bnn") && err.contains("exists"), "{err}");
        assert_eq!(std::fs::read(&to).unwrap(), written);
        let same = random_mnist_cnn(
            &mut r,
            InputEncoding::U8,
            &CNN_SMALL,
            Padding::Same,
            &[16, 10],
        );
        let plain = dir.path().join("same.bnn");
        format::save(&same, "", &plain).unwrap();
        let err = format!(
            "{:#}",
            run(&plain, &dir.path().join("out.bnn")).unwrap_err()
        );
        assert!(
            err.ends_with("same.bnn: no zero-padded convolution"),
            "{err}"
        );
        assert!(!dir.path().join("out.bnn").exists());
    }
}
