//! Running the external tools the export tests drive (`cc`, `nm`,
//! `iverilog`, `vvp`), with their output in the failure message.

#![allow(dead_code)]

use std::path::Path;
use std::process::Command;

/// Runs a command in `dir`; panics with its output when it fails. Returns
/// stdout and stderr.
pub fn run(dir: &Path, program: &str, args: &[&str]) -> (String, String) {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    (stdout, stderr)
}
