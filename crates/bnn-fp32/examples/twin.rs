//! Writes the FP32 twin of a `.bnn` model as an `.f32` file, so that tools
//! outside this workspace (such as `benches/peers/onnxruntime.py`) can run
//! the very network the 1-bit engine runs.
//!
//! `cargo run --release -p bnn-fp32 --example twin -- MODEL.bnn OUT.f32`

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = &args[..] else {
        eprintln!("usage: twin MODEL.bnn OUT.f32");
        return ExitCode::from(2);
    };
    if input == output {
        eprintln!("{}: the output would replace its input", output.display());
        return ExitCode::from(2);
    }
    let file = match bnn_core::format::load(input) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match bnn_fp32::from_binary(&file.model).save(output) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
