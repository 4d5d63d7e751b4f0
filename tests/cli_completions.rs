//! `bnn completions SHELL` and `bnn man` print what shells and `man` read,
//! generated from the same definitions as the parser.

mod common;

use common::run;

#[test]
fn completions_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let out = run(["completions", shell]).ok().to_string();
        for sub in ["train", "classify", "eval", "import", "export", "bench"] {
            assert!(out.contains(sub), "{shell}: no {sub}");
        }
    }
    // bash: the function a `source` defines, and the flags of `train`.
    let bash = run(["completions", "bash"]).ok().to_string();
    assert!(bash.contains("_bnn()") && bash.contains("--val-split"));
    run(["completions", "tcsh"]).fails(2, &["invalid value 'tcsh'"]);
}

#[test]
fn man_page_is_roff_with_every_subcommand() {
    let man = run(["man"]).ok().to_string();
    assert!(man.contains(".TH bnn 1"), "{}", &man[..200.min(man.len())]);
    for sub in ["train", "classify", "completions"] {
        assert!(man.contains(sub), "no {sub}");
    }
}
