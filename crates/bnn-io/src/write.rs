//! The one way every bnn crate writes an output file.
//!
//! A regular file is never seen half-written: the bytes go to a hidden
//! temporary beside it, are flushed to disk, and the temporary is renamed
//! over the target, keeping the old file's permission bits (and owner, where
//! the process may set it). Devices, FIFOs, sockets and the process's own
//! descriptors (`/dev/stdout`) are written through instead, since renaming
//! over them would replace them. A symbolic link is followed: the file it
//! points to is replaced and the link stays. The rules are decided in
//! [`crate::target`]; temporaries are registered with [`crate::cleanup`] so
//! that an interrupted run leaves none behind.
//!
//! Errors are the operating system's, unchanged (so that callers can tell a
//! full disk or a closed pipe by kind); every caller names the path.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::cleanup::Temporary;
use crate::target::{parent_of, plan, Plan};

/// Writes `bytes` as the whole of `path`.
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut out = OutputFile::create(path)?;
    out.write_all(bytes)?;
    out.commit()
}

/// Streams `fill`'s output (buffered) into `path`: for outputs too large to
/// hold in memory. `path` changes only if `fill` succeeds.
pub fn write_with<T>(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> io::Result<T>,
) -> io::Result<T> {
    let mut out = OutputFile::create(path)?;
    let value = {
        let mut buffered = BufWriter::new(&mut out);
        let value = fill(&mut buffered)?;
        buffered.flush()?;
        value
    };
    out.commit()?;
    Ok(value)
}

/// An output being written. Dropping it without [`commit`](Self::commit)
/// leaves a replaced file as it was (the temporary is removed); bytes
/// already written through a special file stay written.
#[derive(Debug)]
pub struct OutputFile {
    file: File,
    path: PathBuf,
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    temporary: Temporary,
    target: PathBuf,
}

impl OutputFile {
    /// Opens `path` for writing by the rules above. Fails before anything
    /// is written when `path` is a directory, its directory is missing, or
    /// links loop.
    pub fn create(path: &Path) -> io::Result<OutputFile> {
        let (file, pending) = match plan(path)? {
            Plan::Through { append } => {
                let file = OpenOptions::new().write(true).append(append).open(path)?;
                (file, None)
            }
            Plan::Replace { target, existing } => {
                let (temporary, file) = Temporary::create_beside(&target, "tmp", false, |tmp| {
                    // The default mode (0o666 less the umask), as a plain
                    // create would give a new file.
                    OpenOptions::new().write(true).create_new(true).open(tmp)
                })?;
                if let Some(old) = &existing {
                    keep_owner_and_mode(&file, old)?;
                }
                (file, Some(Pending { temporary, target }))
            }
        };
        Ok(OutputFile {
            file,
            path: path.to_path_buf(),
            pending,
        })
    }

    /// The path as given to [`create`](Self::create).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the output is written in place (a device, FIFO, socket or
    /// descriptor) rather than replaced atomically.
    pub fn is_through(&self) -> bool {
        self.pending.is_none()
    }

    /// Finishes the output: a replaced file is synced and renamed into place.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.flush()?;
        let Some(Pending { temporary, target }) = self.pending.take() else {
            return Ok(());
        };
        self.file.sync_all()?;
        temporary.publish(|tmp| fs::rename(tmp, &target))?;
        // Make the rename itself durable; a file system that cannot sync a
        // directory still has the complete file.
        if let Ok(dir) = File::open(parent_of(&target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Gives the replacement the old file's permission bits, and its owner where
/// the process is allowed to (as root, a replaced file keeps its user).
/// `file` may be a directory opened for reading: an export directory that
/// replaces an old one keeps its owner and mode the same way.
/// Elsewhere files have no Unix owner, and only the permissions are kept.
pub fn keep_owner_and_mode(file: &File, old: &fs::Metadata) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let new = file.metadata()?;
        if (new.uid(), new.gid()) != (old.uid(), old.gid()) {
            // Best effort: an ordinary user cannot give a file away, and the
            // file is still theirs to replace.
            let _ = std::os::unix::fs::fchown(file, Some(old.uid()), Some(old.gid()));
        }
    }
    // After the chown, which clears set-id bits.
    file.set_permissions(old.permissions())
}

/// Longest part of the target's name kept in a temporary's name, so that
/// the temporary's name stays within the usual 255-byte limit.
const NAME_KEPT: usize = 200;

/// A fresh hidden name beside `path`: `.NAME.PID.RANDOM.SUFFIX`, where
/// RANDOM is 16 hex digits. Every temporary of the workspace is named this
/// way. The PID says which run made it; the random part is what keeps the
/// name unique: a process killed by SIGKILL leaves its temporary behind,
/// and in a container the next run often has the same PID (1), so a name
/// made of the PID and a counter would collide with the stale file on
/// every later run. Callers that create the file with `create_new` still
/// retry on a collision (see [`Temporary::create_beside`]).
pub fn sibling(path: &Path, suffix: &str) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "does not name a file"))?
        .to_string_lossy();
    let mut end = name.len().min(NAME_KEPT);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let tmp = format!(
        ".{}.{}.{:016x}.{suffix}",
        &name[..end],
        std::process::id(),
        random_u64()
    );
    Ok(path.with_file_name(tmp))
}

/// 64 unpredictable bits from the standard library's per-process random
/// hash keys (seeded by the operating system), mixed with a counter and the
/// clock so that two calls never repeat.
fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(now);
    hasher.finish()
}

#[cfg(all(test, unix))]
pub(crate) mod tests {
    use super::*;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::process::Command;

    /// The names in `dir`, sorted (shared with the other modules' tests).
    pub(crate) fn listing(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    /// A device node of our own (root only; the test fails otherwise).
    fn mknod(dir: &Path, name: &str, major: u32, minor: u32) -> PathBuf {
        let path = dir.join(name);
        let status = Command::new("mknod")
            .arg(&path)
            .args(["c", &major.to_string(), &minor.to_string()])
            .status()
            .expect("mknod (coreutils) is needed by this test");
        assert!(
            status.success(),
            "mknod {} failed: these tests make their own device nodes and must run as root",
            path.display()
        );
        path
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.bin");
        write_file(&target, b"first").unwrap();
        write_file(&target, b"second, longer").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"second, longer");
        write_file(&target, b"3").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"3");
        assert_eq!(listing(dir.path()), vec!["m.bin"]);
    }

    #[test]
    fn a_failed_stream_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        fs::write(&target, b"old").unwrap();
        let err = write_with(&target, |w| {
            w.write_all(&[7u8; 100_000])?;
            Err::<(), _>(io::Error::other("boom"))
        })
        .unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(listing(dir.path()), vec!["f"]);
        // The temporary held the partial bytes while the stream ran.
        let seen = write_with(&target, |w| {
            w.write_all(b"new")?;
            w.flush()?;
            Ok(listing(dir.path()))
        })
        .unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen
            .iter()
            .any(|n| n.starts_with(".f.") && n.ends_with(".tmp")));
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(listing(dir.path()), vec!["f"]);
    }

    #[test]
    fn dropping_without_commit_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        fs::write(&target, b"old").unwrap();
        let mut out = OutputFile::create(&target).unwrap();
        out.write_all(b"half").unwrap();
        assert_eq!(listing(dir.path()).len(), 2);
        drop(out);
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(listing(dir.path()), vec!["f"]);
    }

    #[test]
    fn errors_leave_targets_and_directories_as_they_were() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        fs::create_dir(&sub).unwrap();
        fs::write(sub.join("x"), b"inside").unwrap();
        let err = write_file(&sub, b"nope").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::IsADirectory);
        assert_eq!(fs::read(sub.join("x")).unwrap(), b"inside");
        let err = write_file(&dir.path().join("missing/m.bin"), b"x").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert_eq!(listing(dir.path()), vec!["sub"]);
        assert_eq!(listing(&sub), vec!["x"]);
    }

    #[test]
    fn existing_permissions_are_kept_and_new_files_get_the_umask_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        fs::write(&target, b"old").unwrap();
        for bits in [0o640, 0o600, 0o755, 0o444] {
            fs::set_permissions(&target, fs::Permissions::from_mode(bits)).unwrap();
            write_file(&target, b"new").unwrap();
            assert_eq!(mode(&target), bits, "mode {bits:o} changed");
        }
        // A new file gets what a plain create gives under this umask (not
        // the 0o600 of a private temporary).
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let fresh = dir.path().join("fresh");
        write_file(&fresh, b"x").unwrap();
        assert_eq!(mode(&fresh), mode(&plain));
    }

    #[test]
    fn a_symlink_is_followed_and_stays_a_link() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("real")).unwrap();
        let target = dir.path().join("real/model.bnn");
        fs::write(&target, b"old").unwrap();
        fs::set_permissions(&target, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.path().join("link.bnn");
        symlink("real/model.bnn", &link).unwrap();
        write_file(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        assert_eq!(fs::read_link(&link).unwrap(), Path::new("real/model.bnn"));
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(mode(&target), 0o640);
        assert_eq!(listing(dir.path()), vec!["link.bnn", "real"]);
        assert_eq!(listing(&dir.path().join("real")), vec!["model.bnn"]);
        // A dangling link creates the file it names.
        let dangling = dir.path().join("dangling");
        symlink("real/new.bnn", &dangling).unwrap();
        write_file(&dangling, b"made").unwrap();
        assert_eq!(fs::read(dir.path().join("real/new.bnn")).unwrap(), b"made");
        assert!(fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn devices_are_written_through_and_a_full_one_fails() {
        let dir = tempfile::tempdir().unwrap();
        let null = mknod(dir.path(), "null", 1, 3);
        let full = mknod(dir.path(), "full", 1, 7);
        write_file(&null, b"discarded").unwrap();
        write_with(&null, |w| w.write_all(&[1u8; 1 << 20])).unwrap();
        let err = write_file(&full, b"x").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC expected: {err}");
        let err = write_with(&full, |w| w.write_all(&[1u8; 1 << 20])).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(28), "ENOSPC expected: {err}");
        // Still device nodes, and nothing was created beside them.
        use std::os::unix::fs::FileTypeExt;
        for dev in [&null, &full] {
            assert!(fs::metadata(dev).unwrap().file_type().is_char_device());
        }
        assert_eq!(listing(dir.path()), vec!["full", "null"]);
        // Through a link as well.
        let link = dir.path().join("to-null");
        symlink(&null, &link).unwrap();
        let out = OutputFile::create(&link).unwrap();
        assert!(out.is_through());
        out.commit().unwrap();
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn a_fifo_is_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let status = Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils) is needed by this test");
        assert!(status.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || fs::read(fifo).unwrap())
        };
        write_file(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(listing(dir.path()), vec!["fifo"]);
    }

    #[test]
    fn temporary_names_are_hidden_unique_and_short_enough() {
        let a = sibling(Path::new("d/m.bnn"), "tmp").unwrap();
        let b = sibling(Path::new("d/m.bnn"), "tmp").unwrap();
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(Path::new("d")));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with(".m.bnn.") && name.ends_with(".tmp"),
            "{name}"
        );
        let err = sibling(Path::new("/"), "tmp").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert_eq!(err.to_string(), "does not name a file");
        // A 250-byte name (legal) still gets a temporary it can create.
        let dir = tempfile::tempdir().unwrap();
        let long = dir.path().join(format!("{}é", "x".repeat(248)));
        write_file(&long, b"ok").unwrap();
        assert_eq!(fs::read(&long).unwrap(), b"ok");
    }

    #[test]
    fn stale_temporaries_never_block_a_write() {
        // What a run killed by SIGKILL leaves, named as temporaries once
        // were (PID and a counter from 0): in a container the next run has
        // the same PID, and each of these blocked its write ("File exists").
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.csv");
        let pid = std::process::id();
        for n in 0..2000 {
            File::create(dir.path().join(format!(".out.csv.{pid}.{n}.tmp"))).unwrap();
        }
        write_file(&target, b"written").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"written");
        assert_eq!(listing(dir.path()).len(), 2001);
    }

    #[test]
    fn a_taken_temporary_name_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("f");
        let mut tried = Vec::new();
        // Every name the first three times is "taken": a fresh one follows.
        let (tmp, ()) = Temporary::create_beside(&target, "tmp", false, |p| {
            tried.push(p.to_path_buf());
            if tried.len() <= 3 {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            fs::write(p, b"x")
        })
        .unwrap();
        assert_eq!(tried.len(), 4);
        tried.sort();
        tried.dedup();
        assert_eq!(tried.len(), 4, "a name was tried twice");
        assert_eq!(tmp.path(), tried.iter().find(|p| p.exists()).unwrap());
        drop(tmp);
        // Other errors, and endless collisions, are reported as they are.
        let err = Temporary::create_beside(&target, "tmp", false, |_| {
            Err::<(), _>(io::Error::from(io::ErrorKind::AlreadyExists))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        let err = Temporary::create_beside(&target, "tmp", false, |_| {
            Err::<(), _>(io::Error::from(io::ErrorKind::PermissionDenied))
        })
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::PermissionDenied);
        assert!(listing(dir.path()).is_empty());
    }
}
