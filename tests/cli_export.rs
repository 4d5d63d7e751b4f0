//! `bnn export -o DIR` follows the rules of every other output: the
//! directory keeps its owner and mode (and each replaced file its own), a
//! symbolic link to it is followed, its parent must exist, and an input of
//! the run is never deleted, even with `--force`. Names the Verilog tools
//! reserve are refused before anything is written.
//!
//! The ownership cases hand files to a uid that is not root's, in a
//! temporary directory: they need root, as the other tests that make their
//! own device nodes do.

mod common;

use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use bnn_testkit::files::listing;
use common::{arg, idx_bytes, random_images, run, seed_model, Run};

/// A user and group that are not root's (no account needs to exist).
const OTHER: u32 = 4321;

fn export(model: &Path, out: &Path, extra: &[&str]) -> Run {
    let mut args = vec![
        "export".to_string(),
        arg(model),
        "--format".into(),
        "c".into(),
        "-o".into(),
        arg(out),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    run(args)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().mode() & 0o7777
}

fn owner(path: &Path) -> (u32, u32) {
    let meta = fs::metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

fn chmod(path: &Path, bits: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(bits)).unwrap();
}

/// Gives `path` to [`OTHER`]; fails the test, saying why, unless root.
fn give_away(path: &Path) {
    std::os::unix::fs::chown(path, Some(OTHER), Some(OTHER)).unwrap_or_else(|e| {
        panic!(
            "chown {} to {OTHER}: {e}; the export ownership tests must run as root",
            path.display()
        )
    });
}

#[test]
fn an_existing_directory_keeps_its_mode_and_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let model = seed_model();
    // One of these differs from what a plain mkdir gives under any umask
    // that leaves the owner rwx.
    for (i, bits) in [0o700, 0o750, 0o711].into_iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        fs::create_dir(&out).unwrap();
        chmod(&out, bits);
        give_away(&out);
        export(&model, &out, &[]).ok();
        assert_eq!(listing(&out), ["bnn.c", "bnn.h", "manifest.txt"]);
        assert_eq!(mode(&out), bits, "{}: mode changed", out.display());
        assert_eq!(owner(&out), (OTHER, OTHER), "{}", out.display());
    }
}

#[test]
fn force_keeps_the_modes_and_owners_of_what_it_replaces() {
    let tmp = tempfile::tempdir().unwrap();
    let model = seed_model();
    let out = tmp.path().join("out");
    export(&model, &out, &[]).ok();
    chmod(&out, 0o750);
    give_away(&out);
    chmod(&out.join("bnn.c"), 0o600);
    give_away(&out.join("bnn.h"));
    chmod(&out.join("bnn.h"), 0o640);
    let manifest_owner = owner(&out.join("manifest.txt"));
    fs::write(out.join("bnn.c"), "stale").unwrap();

    export(&model, &out, &["--force"]).ok();
    assert_ne!(
        fs::read(out.join("bnn.c")).unwrap(),
        b"stale",
        "not replaced"
    );
    assert_eq!(listing(&out), ["bnn.c", "bnn.h", "manifest.txt"]);
    assert_eq!(mode(&out), 0o750);
    assert_eq!(owner(&out), (OTHER, OTHER));
    assert_eq!(mode(&out.join("bnn.c")), 0o600);
    assert_eq!(mode(&out.join("bnn.h")), 0o640);
    assert_eq!(owner(&out.join("bnn.h")), (OTHER, OTHER));
    assert_eq!(owner(&out.join("manifest.txt")), manifest_owner);
    // Nothing left beside it.
    assert_eq!(listing(tmp.path()), ["out"]);
}

/// An export directory whose manifest has been made to list `name`.
fn list_in_manifest(out: &Path, name: &str) {
    let manifest = out.join("manifest.txt");
    let mut text = fs::read_to_string(&manifest).unwrap();
    text.push_str(&format!("  {name} 1 bytes\n"));
    fs::write(&manifest, text).unwrap();
}

#[test]
fn force_never_deletes_an_input() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    export(&seed_model(), &out, &[]).ok();
    let before = listing(&out);

    // The model itself in the directory, listed by the old manifest.
    let model_bytes = fs::read(seed_model()).unwrap();
    let model = out.join("model.bnn");
    fs::write(&model, &model_bytes).unwrap();
    list_in_manifest(&out, "model.bnn");
    let listed = listing(&out);
    export(&model, &out, &["--force"])
        .fails(2, &[&arg(&model), "same file as the input", "refusing"]);
    assert_eq!(fs::read(&model).unwrap(), model_bytes, "the model was lost");
    assert_eq!(listing(&out), listed);

    // Reached through a link, or as a hard link under an export's name.
    let link = tmp.path().join("link.bnn");
    symlink(&model, &link).unwrap();
    export(&link, &out, &["--force"]).fails(2, &["model.bnn", "same file as the input"]);
    fs::remove_file(&model).unwrap();
    let elsewhere = tmp.path().join("m.bnn");
    fs::write(&elsewhere, &model_bytes).unwrap();
    fs::hard_link(&elsewhere, out.join("model.bnn")).unwrap();
    export(&elsewhere, &out, &["--force"]).fails(2, &["model.bnn", "same file as the input"]);
    assert_eq!(fs::read(out.join("model.bnn")).unwrap(), model_bytes);

    // The Verilog testbench's images are an input too.
    fs::remove_file(out.join("model.bnn")).unwrap();
    let images = random_images(2, 7);
    let idx = out.join("images.idx");
    fs::write(&idx, idx_bytes(0x0803, [2, 28, 28], &images.pixels)).unwrap();
    list_in_manifest(&out, "images.idx");
    let verilog = run([
        "export",
        &arg(&seed_model()),
        "--format",
        "verilog",
        "-o",
        &arg(&out),
        "--force",
        "--test-images",
        &arg(&idx),
        "--test-count",
        "2",
    ]);
    verilog.fails(2, &[&arg(&idx), "same file as the input"]);
    assert!(idx.is_file());
    // With the inputs gone, the same export goes through.
    fs::remove_file(&idx).unwrap();
    export(&elsewhere, &out, &["--force"]).ok();
    assert_eq!(listing(&out), before);
}

#[test]
fn a_link_to_a_directory_is_followed_and_stays_a_link() {
    let tmp = tempfile::tempdir().unwrap();
    let model = seed_model();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    chmod(&real, 0o700);
    let link = tmp.path().join("link");
    symlink("real", &link).unwrap();
    export(&model, &link, &[]).ok();
    assert_eq!(listing(&real), ["bnn.c", "bnn.h", "manifest.txt"]);
    assert_eq!(mode(&real), 0o700);
    // Replaced through the link as well; with a trailing slash too.
    fs::write(real.join("bnn.c"), "stale").unwrap();
    let slash = format!("{}/", arg(&link));
    export(&model, Path::new(&slash), &["--force"]).ok();
    assert_ne!(fs::read(real.join("bnn.c")).unwrap(), b"stale");
    assert!(fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(fs::read_link(&link).unwrap(), Path::new("real"));
    // A dangling link makes the directory it names.
    let dangling = tmp.path().join("dangling");
    symlink("made", &dangling).unwrap();
    export(&model, &dangling, &[]).ok();
    assert_eq!(
        listing(&tmp.path().join("made")),
        ["bnn.c", "bnn.h", "manifest.txt"]
    );
    assert_eq!(listing(tmp.path()), ["dangling", "link", "made", "real"]);
    // A link to a file is still no directory.
    let file = tmp.path().join("made/bnn.c");
    let to_file = tmp.path().join("to-file");
    symlink(&file, &to_file).unwrap();
    export(&model, &to_file, &[]).fails(1, &["exists and is not a directory"]);
}

#[test]
fn a_missing_parent_is_refused_not_created() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("a");
    let out = missing.join("b");
    export(&seed_model(), &out, &[]).fails(
        2,
        &[
            &arg(&out),
            &format!("directory {} does not exist", arg(&missing)),
        ],
    );
    assert!(listing(tmp.path()).is_empty());
}

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

#[test]
fn a_test_count_that_would_be_ignored_is_refused() {
    // `--test-count 5` without --test-images gave the 16 synthetic images,
    // and with --format c it was ignored; both exited 0.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let model = arg(&seed_model());
    let with = |format: &str, extra: &[&str]| {
        let mut args = vec!["export", &model, "--format", format, "-o"];
        let o = arg(&out);
        args.push(&o);
        args.extend_from_slice(extra);
        run(args)
    };
    with("c", &["--test-count", "5"]).fails(2, &["--test-count", "--format verilog only"]);
    with("verilog", &["--test-count", "5"]).fails(2, &["--test-count", "--test-images"]);
    assert!(!out.exists(), "a refused export wrote {}", out.display());
    // With the images it counts them.
    let images = random_images(3, 11);
    let idx = dir.path().join("images.idx");
    fs::write(&idx, idx_bytes(0x0803, [3, 28, 28], &images.pixels)).unwrap();
    let text = with(
        "verilog",
        &["--test-images", &arg(&idx), "--test-count", "2"],
    );
    assert!(text.ok().contains("testbench: 2 images"), "{}", text.stdout);
}
