//! Special files made inside a test's own temporary directory, so that no
//! test ever writes to the system's `/dev/null`, `/dev/full` or `/dev/zero`.
//! Device nodes need root: tests that use them state `need!(need::MKNOD)`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn make(program: &str, path: &Path, args: &[&str]) -> PathBuf {
    let out = Command::new(program)
        .arg(path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    path.to_path_buf()
}

/// A character device `dir/name` with the given major and minor numbers.
pub fn char_device(dir: &Path, name: &str, major: u32, minor: u32) -> PathBuf {
    make(
        "mknod",
        &dir.join(name),
        &["c", &major.to_string(), &minor.to_string()],
    )
}

/// `dir/null`: discards what is written, reads as empty.
pub fn null(dir: &Path) -> PathBuf {
    char_device(dir, "null", 1, 3)
}

/// `dir/zero`: endless zero bytes.
pub fn zero(dir: &Path) -> PathBuf {
    char_device(dir, "zero", 1, 5)
}

/// `dir/full`: every write fails with ENOSPC.
pub fn full(dir: &Path) -> PathBuf {
    char_device(dir, "full", 1, 7)
}

/// A FIFO `dir/name`.
pub fn fifo(dir: &Path, name: &str) -> PathBuf {
    make("mkfifo", &dir.join(name), &[])
}
