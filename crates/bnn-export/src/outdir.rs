//! Writing an export as a whole directory or not at all: the files go into a
//! fresh temporary directory next to the target, are flushed, and the
//! directory is renamed into place. A reader never sees half an export, and
//! a failed export leaves the old one (if any) as it was.
//!
//! Replacing a non-empty directory takes `force`, and even then only a
//! directory holding an export's manifest is replaced, so that a mistyped
//! `-o` cannot delete unrelated files.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{ExportError, Result};
use crate::File;

/// The file every export writes; its presence marks a directory as one that
/// `force` may replace.
pub const MANIFEST: &str = "manifest.txt";

/// What is at the target path before writing.
enum Existing {
    Nothing,
    EmptyDir,
    Export,
}

/// Writes `files` as the complete contents of `dir`.
pub fn write_dir(dir: &Path, files: &[File], force: bool) -> Result<()> {
    let target = |problem: &str| ExportError::Target {
        path: dir.to_path_buf(),
        problem: problem.to_string(),
    };
    let name = dir
        .file_name()
        .ok_or_else(|| target("does not end in a directory name"))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let existing = match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Existing::Nothing,
        Err(e) => return Err(ExportError::io(dir, "inspecting the output directory", e)),
        Ok(meta) if !meta.is_dir() => {
            return Err(target("exists and is not a directory"));
        }
        Ok(_) => {
            let mut entries =
                fs::read_dir(dir).map_err(|e| ExportError::io(dir, "reading the directory", e))?;
            if entries.next().is_none() {
                Existing::EmptyDir
            } else if !force {
                return Err(target(
                    "exists and is not empty; pass --force to replace it",
                ));
            } else if !dir.join(MANIFEST).is_file() {
                return Err(target(&format!(
                    "holds no {MANIFEST}, so it is not an earlier export; refusing to replace it"
                )));
            } else {
                Existing::Export
            }
        }
    };
    fs::create_dir_all(&parent)
        .map_err(|e| ExportError::io(&parent, "creating the parent directory", e))?;
    let tmp = sibling(&parent, name, "tmp");
    fs::create_dir(&tmp)
        .map_err(|e| ExportError::io(&parent, "creating the export's temporary directory", e))?;
    let result = fill(&tmp, files).and_then(|()| install(&tmp, dir, &parent, name, existing));
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

/// `.NAME.PID.N.SUFFIX` in `parent`: hidden, and unique per process and call.
fn sibling(parent: &Path, name: &std::ffi::OsStr, suffix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    parent.join(format!(
        ".{}.{}.{n}.{suffix}",
        name.to_string_lossy(),
        std::process::id()
    ))
}

fn fill(tmp: &Path, files: &[File]) -> Result<()> {
    for f in files {
        let path = tmp.join(&f.name);
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            file.write_all(&f.contents)?;
            file.sync_all()
        };
        write().map_err(|e| ExportError::io(&path, "writing", e))?;
    }
    // Make the new entries durable before the rename publishes them.
    if let Ok(d) = fs::File::open(tmp) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn install(
    tmp: &Path,
    dir: &Path,
    parent: &Path,
    name: &std::ffi::OsStr,
    existing: Existing,
) -> Result<()> {
    let publish = |e| ExportError::io(dir, "moving the finished export into place", e);
    match existing {
        // rename(2) replaces an empty directory atomically.
        Existing::Nothing | Existing::EmptyDir => fs::rename(tmp, dir).map_err(publish),
        Existing::Export => {
            // Two renames: the old export steps aside, the new one takes its
            // name; only between them is the name briefly absent.
            let old = sibling(parent, name, "old");
            fs::rename(dir, &old)
                .map_err(|e| ExportError::io(dir, "moving the earlier export aside", e))?;
            if let Err(e) = fs::rename(tmp, dir) {
                let _ = fs::rename(&old, dir);
                return Err(publish(e));
            }
            fs::remove_dir_all(&old)
                .map_err(|e| ExportError::io(&old, "removing the replaced export", e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(tag: &str) -> Vec<File> {
        vec![
            File::text(MANIFEST, format!("manifest {tag}")),
            File::text("a.txt", format!("a {tag}")),
        ]
    }

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_then_replaces_only_with_force() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        write_dir(&dir, &files("1"), false).unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "a 1");
        let err = write_dir(&dir, &files("2"), false).unwrap_err().to_string();
        assert!(err.contains("--force"), "{err}");
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "a 1");
        write_dir(&dir, &files("3"), true).unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "a 3");
        // No temporary or replaced directory is left beside it.
        assert_eq!(listing(root.path()), vec!["out"]);
    }

    #[test]
    fn fills_an_empty_directory_and_creates_parents() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("empty");
        fs::create_dir(&dir).unwrap();
        write_dir(&dir, &files("1"), false).unwrap();
        assert_eq!(listing(&dir), vec!["a.txt", MANIFEST]);
        let deep = root.path().join("x/y/z");
        write_dir(&deep, &files("2"), false).unwrap();
        assert!(deep.join("a.txt").is_file());
    }

    #[test]
    fn refuses_what_is_not_an_export() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mine");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("thesis.tex"), "keep me").unwrap();
        let err = write_dir(&dir, &files("1"), true).unwrap_err().to_string();
        assert!(err.contains("not an earlier export"), "{err}");
        assert_eq!(
            fs::read_to_string(dir.join("thesis.tex")).unwrap(),
            "keep me"
        );
        let file = root.path().join("plain");
        fs::write(&file, "x").unwrap();
        let err = write_dir(&file, &files("1"), true).unwrap_err().to_string();
        assert!(err.contains("not a directory"), "{err}");
        assert_eq!(listing(root.path()), vec!["mine", "plain"]);
    }

    #[test]
    fn unwritable_location_is_a_clear_error_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        // A file where a parent directory should be fails even for root.
        let blocker = root.path().join("blocker");
        fs::write(&blocker, "").unwrap();
        let err = write_dir(&blocker.join("out"), &files("1"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("blocker"), "{err}");
        // A file that cannot be written (a name that is a directory path)
        // aborts the export and removes the temporary directory.
        let bad = vec![File::text("sub/x.txt", "x".to_string())];
        let dir = root.path().join("out");
        let err = write_dir(&dir, &bad, false).unwrap_err().to_string();
        assert!(err.contains("x.txt"), "{err}");
        assert!(!dir.exists());
        assert_eq!(listing(root.path()), vec!["blocker"]);
    }
}
