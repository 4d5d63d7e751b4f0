//! Writing an export as a whole directory or not at all: the files go into a
//! fresh temporary directory next to the target, are flushed, and the
//! directory is renamed into place. A reader never sees half an export, and
//! a failed export leaves the old one (if any) as it was.
//!
//! Replacing a non-empty directory takes `force`, and even then only a
//! directory that holds nothing but what an earlier export wrote (its
//! manifest and the files the manifest lists) is replaced, so that a
//! mistyped `-o`, or a note or build folder added to an export, is never
//! deleted, and never one that holds an input of the run (the model file
//! exported). The temporary directories are `bnn_io`'s, removed on Ctrl-C.
//!
//! The directory is an output like any other `bnn` writes: a symbolic link
//! to it is followed, its parent must exist, and replacing a directory keeps
//! its owner and mode, and those of each file replaced by one of the same
//! name.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use bnn_io::cleanup::Temporary;
use bnn_io::target::{check_not_input, written_path, PathProblem, Problem};
use bnn_io::write::{keep_owner_and_mode, sibling};

use crate::error::{ExportError, Result};
use crate::File;

/// The file every export writes: it lists the export's files (after a
/// `files:` line, one `  NAME SIZE bytes` line each), which are all that
/// `force` may delete.
pub const MANIFEST: &str = "manifest.txt";

/// Largest manifest read back; a real one is a few hundred bytes.
const MAX_MANIFEST: u64 = 1 << 20;

/// What is at the target path before writing. The metadata is kept so that
/// the new directory, and each file that replaces one of the same name, gets
/// the old one's owner and mode: replacing a private (700) export must not
/// leave it world-readable, nor a user's export owned by root.
enum Existing {
    Nothing,
    EmptyDir(fs::Metadata),
    Export {
        dir: fs::Metadata,
        files: HashMap<OsString, fs::Metadata>,
    },
}

impl Existing {
    fn dir(&self) -> Option<&fs::Metadata> {
        match self {
            Existing::Nothing => None,
            Existing::EmptyDir(dir) | Existing::Export { dir, .. } => Some(dir),
        }
    }

    fn file(&self, name: &str) -> Option<&fs::Metadata> {
        match self {
            Existing::Export { files, .. } => files.get(std::ffi::OsStr::new(name)),
            _ => None,
        }
    }
}

/// Writes `files` as the complete contents of `dir`.
///
/// `dir` follows the rules of every other output: a symbolic link is
/// followed (the directory it names is written, the link stays), and its
/// parent directory must exist. `inputs` are the run's input files: a
/// directory holding one of them (the same file, after links, hard links
/// included) is never replaced, even with `force`.
pub fn write_dir(dir: &Path, files: &[File], force: bool, inputs: &[&Path]) -> Result<()> {
    let target = |problem: &str| ExportError::Target {
        path: dir.to_path_buf(),
        problem: problem.to_string(),
    };
    let real = resolve(dir).map_err(|problem| target(&problem))?;
    let parent = match real.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(ExportError::Path(PathProblem {
            path: dir.to_path_buf(),
            problem: Problem::NoDirectory(parent),
        }));
    }
    let existing = match fs::symlink_metadata(&real) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Existing::Nothing,
        Err(e) => return Err(ExportError::io(dir, "inspecting the output directory", e)),
        Ok(meta) if !meta.is_dir() => {
            return Err(target("exists and is not a directory"));
        }
        Ok(meta) => {
            let mut entries = fs::read_dir(&real)
                .map_err(|e| ExportError::io(dir, "reading the directory", e))?;
            if entries.next().is_none() {
                Existing::EmptyDir(meta)
            } else if !force {
                return Err(target(
                    "exists and is not empty; pass --force to replace it",
                ));
            } else {
                let files = only_an_export(&real, dir, inputs)?;
                Existing::Export { dir: meta, files }
            }
        }
    };
    let tmp = sibling(&real, "tmp")
        .map_err(|e| ExportError::io(dir, "naming the temporary directory", e))?;
    let (tmp, ()) = Temporary::create(tmp, true, |p| fs::create_dir(p))
        .map_err(|e| ExportError::io(&parent, "creating the export's temporary directory", e))?;
    if let Some(old) = existing.dir() {
        // While it is still empty: no access the old directory did not
        // give, and room for this process to fill it.
        let mode = fs::Permissions::from_mode(old.mode() & 0o777 | 0o700);
        fs::set_permissions(tmp.path(), mode)
            .map_err(|e| ExportError::io(tmp.path(), "setting the directory's mode", e))?;
    }
    fill(tmp.path(), files, &existing)?;
    install(tmp, &real, dir, existing)
}

/// The directory `dir` finally names: itself, or where its links lead
/// (canonical when it exists; a dangling link names the directory it
/// creates). Returns the problem otherwise.
fn resolve(dir: &Path) -> std::result::Result<PathBuf, String> {
    let no_name = || "does not end in a directory name".to_string();
    let name = dir.file_name().ok_or_else(no_name)?;
    // Without a trailing `/` or `.`, so that a final link is seen as one.
    let given = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(name),
        _ => PathBuf::from(name),
    };
    let real = match fs::metadata(&given) {
        Ok(meta) if meta.is_dir() => {
            fs::canonicalize(&given).map_err(|e| format!("resolving the path: {e}"))?
        }
        Ok(_) => return Err("exists and is not a directory".into()),
        // Nothing there yet, a dangling link, or a missing parent (which
        // the caller reports).
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            written_path(&given)
        }
        Err(e) => return Err(format!("inspecting the output directory: {e}")),
    };
    if real.file_name().is_none() {
        return Err(no_name());
    }
    Ok(real)
}

/// Checks that `dir` holds only what the export recorded in its manifest
/// wrote: the manifest and the regular files it lists, none of them one of
/// `inputs`. Returns each file's metadata by name. `shown` is the directory
/// as the user named it, for messages.
fn only_an_export(
    dir: &Path,
    shown: &Path,
    inputs: &[&Path],
) -> Result<HashMap<OsString, fs::Metadata>> {
    let refuse = |what: String| {
        Err(ExportError::Target {
            path: shown.to_path_buf(),
            problem: format!(
                "{what}, so it is not an earlier export alone; refusing to replace it (move it away or choose another directory)"
            ),
        })
    };
    let reading = |e| ExportError::io(shown, "reading the directory", e);
    let mut entries: Vec<fs::DirEntry> = fs::read_dir(dir)
        .map_err(reading)?
        .collect::<io::Result<_>>()
        .map_err(reading)?;
    entries.sort_by_key(|e| e.file_name());
    // Before anything else: an input found here is never deleted, whatever
    // the manifest says.
    for entry in &entries {
        check_not_input(&dir.join(entry.file_name()), inputs.iter().copied()).map_err(
            |problem| {
                ExportError::Path(PathProblem {
                    path: shown.join(entry.file_name()),
                    ..problem
                })
            },
        )?;
    }
    let listed = match read_manifest(&dir.join(MANIFEST)) {
        Some(names) => names,
        None => return refuse(format!("holds no export {MANIFEST}")),
    };
    let mut files = HashMap::new();
    for entry in entries {
        let name = entry.file_name();
        let meta = entry
            .metadata()
            .map_err(|e| ExportError::io(entry.path(), "inspecting", e))?;
        let recorded = name == MANIFEST || listed.iter().any(|n| name == n.as_str());
        if !recorded {
            return refuse(format!(
                "holds {}, which is not in its {MANIFEST}",
                name.to_string_lossy()
            ));
        }
        if !meta.is_file() {
            return refuse(format!(
                "holds {}, which is not a regular file",
                name.to_string_lossy()
            ));
        }
        files.insert(name, meta);
    }
    Ok(files)
}

/// The file names an export manifest lists, or `None` if `path` is not a
/// regular file holding one.
fn read_manifest(path: &Path) -> Option<Vec<String>> {
    if !fs::symlink_metadata(path).ok()?.is_file() {
        return None;
    }
    let mut text = String::new();
    fs::File::open(path)
        .ok()?
        .take(MAX_MANIFEST)
        .read_to_string(&mut text)
        .ok()?;
    if !text.starts_with("bnn export") {
        return None;
    }
    let files = text.lines().skip_while(|l| *l != "files:").skip(1);
    let names = files
        .map_while(|l| l.strip_prefix("  "))
        .filter_map(|l| l.split(' ').next())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect();
    Some(names)
}

/// Writes the files into the temporary directory; a file that replaces one
/// of the same name takes its owner and mode before any byte is written,
/// and the directory takes the old one's last.
fn fill(tmp: &Path, files: &[File], existing: &Existing) -> Result<()> {
    for f in files {
        let path = tmp.join(&f.name);
        let write = || -> io::Result<()> {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)?;
            if let Some(old) = existing.file(&f.name) {
                keep_owner_and_mode(&file, old)?;
            }
            file.write_all(&f.contents)?;
            file.sync_all()
        };
        write().map_err(|e| ExportError::io(&path, "writing", e))?;
    }
    let d = fs::File::open(tmp).map_err(|e| ExportError::io(tmp, "opening", e))?;
    if let Some(old) = existing.dir() {
        keep_owner_and_mode(&d, old)
            .map_err(|e| ExportError::io(tmp, "keeping the directory's owner and mode", e))?;
    }
    // Make the new entries durable before the rename publishes them.
    let _ = d.sync_all();
    Ok(())
}

/// Moves the finished export into place at `real` (`shown` as the user
/// named it). The renames run with the signal handler held off, so an
/// interrupt never strands the old export under its temporary name.
fn install(tmp: Temporary, real: &Path, shown: &Path, existing: Existing) -> Result<()> {
    let publish = |e| ExportError::io(shown, "moving the finished export into place", e);
    match existing {
        // rename(2) replaces an empty directory atomically.
        Existing::Nothing | Existing::EmptyDir(_) => {
            tmp.publish(|t| fs::rename(t, real)).map_err(publish)
        }
        Existing::Export { .. } => {
            // Two renames: the old export steps aside, the new one takes its
            // name; only between them is the name briefly absent.
            let old = sibling(real, "old").map_err(|e| ExportError::io(shown, "naming", e))?;
            tmp.publish(|t| {
                fs::rename(real, &old)
                    .map_err(|e| ExportError::io(shown, "moving the earlier export aside", e))?;
                if let Err(e) = fs::rename(t, real) {
                    let _ = fs::rename(&old, real);
                    return Err(publish(e));
                }
                fs::remove_dir_all(&old)
                    .map_err(|e| ExportError::io(&old, "removing the replaced export", e))
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An export's files with a manifest listing them, as `generate` makes.
    fn files(tag: &str) -> Vec<File> {
        vec![
            File::text("a.txt", format!("a {tag}")),
            File::text(
                MANIFEST,
                "bnn export, format c\nname: bnn\nfiles:\n  a.txt 3 bytes\n".to_string(),
            ),
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
        write_dir(&dir, &files("1"), false, &[]).unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "a 1");
        let err = write_dir(&dir, &files("2"), false, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--force"), "{err}");
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "a 1");
        write_dir(&dir, &files("3"), true, &[]).unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "a 3");
        // No temporary or replaced directory is left beside it.
        assert_eq!(listing(root.path()), vec!["out"]);
    }

    #[test]
    fn fills_an_empty_directory_but_creates_no_parents() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("empty");
        fs::create_dir(&dir).unwrap();
        write_dir(&dir, &files("1"), false, &[]).unwrap();
        assert_eq!(listing(&dir), vec!["a.txt", MANIFEST]);
        let deep = root.path().join("x/y/z");
        let err = write_dir(&deep, &files("2"), false, &[]).unwrap_err();
        assert!(
            matches!(&err, ExportError::Path(p) if matches!(&p.problem, Problem::NoDirectory(d) if d == &root.path().join("x/y"))),
            "{err}"
        );
        assert_eq!(listing(root.path()), vec!["empty"]);
    }

    #[test]
    fn force_deletes_only_what_the_manifest_lists() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("out");
        write_dir(&dir, &files("1"), false, &[]).unwrap();
        // Something the user added beside the export: a file, then a folder.
        fs::write(dir.join("thesis.txt"), "keep me").unwrap();
        let err = write_dir(&dir, &files("2"), true, &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("thesis.txt") && err.contains("refusing"),
            "{err}"
        );
        assert_eq!(listing(&dir), vec!["a.txt", MANIFEST, "thesis.txt"]);
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "a 1");
        fs::remove_file(dir.join("thesis.txt")).unwrap();
        fs::create_dir(dir.join("src")).unwrap();
        fs::write(dir.join("src/main.c"), "keep me too").unwrap();
        let err = write_dir(&dir, &files("3"), true, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("src") && err.contains("refusing"), "{err}");
        assert_eq!(
            fs::read_to_string(dir.join("src/main.c")).unwrap(),
            "keep me too"
        );
        // A directory under a listed name is not the export's either.
        fs::remove_dir_all(dir.join("src")).unwrap();
        fs::remove_file(dir.join("a.txt")).unwrap();
        fs::create_dir(dir.join("a.txt")).unwrap();
        let err = write_dir(&dir, &files("4"), true, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a regular file"), "{err}");
        assert!(dir.join("a.txt").is_dir());
        fs::remove_dir(dir.join("a.txt")).unwrap();
        // Only the export's own files: replaced.
        write_dir(&dir, &files("5"), true, &[]).unwrap();
        assert_eq!(fs::read_to_string(dir.join("a.txt")).unwrap(), "a 5");
        assert_eq!(listing(root.path()), vec!["out"]);
    }

    #[test]
    fn refuses_what_is_not_an_export() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("mine");
        fs::create_dir(&dir).unwrap();
        fs::write(dir.join("thesis.tex"), "keep me").unwrap();
        let err = write_dir(&dir, &files("1"), true, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no export manifest.txt"), "{err}");
        // A manifest that is not an export's does not make it one.
        fs::write(dir.join(MANIFEST), "files:\n  thesis.tex 7 bytes\n").unwrap();
        let err = write_dir(&dir, &files("1"), true, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds no export manifest.txt"), "{err}");
        assert_eq!(
            fs::read_to_string(dir.join("thesis.tex")).unwrap(),
            "keep me"
        );
        let file = root.path().join("plain");
        fs::write(&file, "x").unwrap();
        let err = write_dir(&file, &files("1"), true, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a directory"), "{err}");
        assert_eq!(listing(root.path()), vec!["mine", "plain"]);
    }

    #[test]
    fn unwritable_location_is_a_clear_error_and_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        // A file where a parent directory should be fails even for root.
        let blocker = root.path().join("blocker");
        fs::write(&blocker, "").unwrap();
        let err = write_dir(&blocker.join("out"), &files("1"), false, &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("blocker"), "{err}");
        // A file that cannot be written (a name that is a directory path)
        // aborts the export and removes the temporary directory.
        let bad = vec![File::text("sub/x.txt", "x".to_string())];
        let dir = root.path().join("out");
        let err = write_dir(&dir, &bad, false, &[]).unwrap_err().to_string();
        assert!(err.contains("x.txt"), "{err}");
        assert!(!dir.exists());
        assert_eq!(listing(root.path()), vec!["blocker"]);
    }
}
