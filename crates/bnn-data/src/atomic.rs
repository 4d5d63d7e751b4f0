//! Writing files so that readers never see a half-written one.
//!
//! Data files are large and are read by other processes (training runs,
//! benchmarks). Writing to a temporary file in the same directory and then
//! renaming it over the target means a crash or a full disk leaves either
//! the old file or the new one, never a truncated mix.

use std::io::{self, BufWriter, Write};
use std::path::Path;

use crate::error::DataError;

/// Writes `path` atomically: `fill` writes the contents into a temporary file
/// next to `path`, which is synced and then renamed onto `path`. On any error
/// the temporary file is removed and `path` is left untouched.
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), DataError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| DataError::io(dir, "creating a temporary file", e))?;
    let mut writer = BufWriter::new(tmp);
    fill(&mut writer).map_err(|e| DataError::io(path, "writing", e))?;
    let tmp = writer
        .into_inner()
        .map_err(|e| DataError::io(path, "writing", e.into_error()))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| DataError::io(path, "syncing", e))?;
    tmp.persist(path)
        .map_err(|e| DataError::io(path, "renaming into place", e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_fill_leaves_target_and_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        std::fs::write(&target, b"old").unwrap();
        let err = write_atomic(&target, |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("boom"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("boom"));
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temporary file left behind");
    }

    #[test]
    fn writes_and_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        write_atomic(&target, |w| w.write_all(b"one")).unwrap();
        write_atomic(&target, |w| w.write_all(b"two")).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
    }
}
