//! `bnn export` refuses, before anything is written, names that the
//! Verilog tools reserve.

mod common;

use bnn_testkit::files::listing;
use common::{arg, run, seed_model};

#[test]
fn verilog_and_systemverilog_reserved_words_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let model = arg(&seed_model());
    // SystemVerilog (1800-2017) words, one Verilog-2005 word, and one of
    // Verilog-2001 that was always refused.
    for name in [
        "logic",
        "bit",
        "class",
        "interface",
        "always_ff",
        "nettype",
        "uwire",
        "module",
    ] {
        for format in ["verilog", "c"] {
            run([
                "export",
                &model,
                "--format",
                format,
                "-o",
                &arg(&out),
                "--name",
                name,
            ])
            .fails(2, &[&format!("'{name}'"), "reserved word of Verilog"]);
        }
    }
    assert!(listing(tmp.path()).is_empty());
}
