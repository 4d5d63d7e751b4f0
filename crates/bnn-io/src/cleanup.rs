//! Temporary files and directories that must not outlive the process.
//!
//! An atomic write leaves a hidden temporary beside its target until the
//! final rename. An interrupted run (Ctrl-C, `kill`, a closed terminal)
//! would strand it, and for a long `classify -o` that is tens of megabytes
//! the user never asked for. Every temporary is therefore registered here
//! while it exists, and [`remove_on_signals`] installs a handler that
//! removes the registered paths before the process exits.
//!
//! Creating, publishing (renaming into place) and removing a temporary all
//! hold the same lock as the signal handler, so the handler sees each
//! temporary either before it exists, while it is registered, or after it
//! has been renamed: never a file on disk that it does not know about, and
//! never a half-done pair of renames.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use crate::write::sibling;

/// Fresh names tried by [`Temporary::create_beside`] before giving up: with
/// 64 random bits a name, a second collision means something other than
/// chance (a file system that ignores `O_EXCL`, say).
const MAX_TRIES: usize = 8;

/// Live temporaries: the path and whether it is a directory.
static LIVE: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<(PathBuf, bool)>> {
    // A panic while the lock was held leaves the list itself intact.
    LIVE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn remove(path: &Path, dir: bool) {
    let _ = if dir {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
}

/// A temporary file or directory, removed when dropped unless it was
/// [published](Temporary::publish).
#[derive(Debug)]
pub struct Temporary {
    path: PathBuf,
    dir: bool,
    armed: bool,
}

impl Temporary {
    /// Registers `path` and calls `create` to make it, as one step for the
    /// signal handler. `dir` says how to remove it.
    pub fn create<T>(
        path: PathBuf,
        dir: bool,
        create: impl FnOnce(&Path) -> io::Result<T>,
    ) -> io::Result<(Temporary, T)> {
        let mut live = live();
        let made = create(&path)?;
        live.push((path.clone(), dir));
        drop(live);
        Ok((
            Temporary {
                path,
                dir,
                armed: true,
            },
            made,
        ))
    }

    /// Like [`create`](Self::create), at a fresh [`sibling`] name beside
    /// `target` ending in `suffix`. `create` must refuse an existing path
    /// (`create_new`, `create_dir`): a name that is taken is never reused,
    /// and a fresh one is tried instead, so that no stale temporary (left by
    /// a killed run) can block a write.
    pub fn create_beside<T>(
        target: &Path,
        suffix: &str,
        dir: bool,
        mut create: impl FnMut(&Path) -> io::Result<T>,
    ) -> io::Result<(Temporary, T)> {
        let mut tries = 0;
        loop {
            match Temporary::create(sibling(target, suffix)?, dir, &mut create) {
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && tries < MAX_TRIES => {
                    tries += 1;
                }
                result => return result,
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `publish` (the rename that moves the temporary into place) with
    /// the signal handler held off. On success the temporary is forgotten;
    /// on failure it is removed.
    pub fn publish<T, E>(mut self, publish: impl FnOnce(&Path) -> Result<T, E>) -> Result<T, E> {
        let mut live = live();
        let result = publish(&self.path);
        if result.is_ok() {
            forget(&mut live, &self.path);
            self.armed = false;
        }
        drop(live);
        result
    }
}

fn forget(live: &mut Vec<(PathBuf, bool)>, path: &Path) {
    if let Some(i) = live.iter().rposition(|(p, _)| p == path) {
        live.swap_remove(i);
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if self.armed {
            let mut live = live();
            remove(&self.path, self.dir);
            forget(&mut live, &self.path);
        }
    }
}

/// The temporaries registered now (for tests and diagnostics).
pub fn registered() -> Vec<PathBuf> {
    live().iter().map(|(p, _)| p.clone()).collect()
}

/// The signals whose default action ends the process and that a handler
/// may catch: on any of them, [`remove_on_signals`] removes the temporaries
/// and exits. Left out, and why:
///
/// - SIGKILL and SIGSTOP cannot be caught. A temporary left by SIGKILL is
///   harmless: names are random (see [`sibling`]), so it never blocks a
///   later write, and it is hidden.
/// - SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGSYS and SIGABRT report a
///   fault of the process itself (or `abort`); running cleanup code in a
///   process in that state is not safe, and most cannot be resumed.
/// - SIGPIPE is ignored by the Rust runtime before `main`: a write to a
///   reader that left fails with `EPIPE` and goes through the program's
///   ordinary error path, which removes the temporaries as it unwinds
///   (`bnn ... | head` ends quietly). Catching it would turn every early
///   `| head` into an exit by signal.
/// - SIGXFSZ (a write past `ulimit -f`) is caught and then ignored, so that
///   the write fails with `EFBIG` and is reported, naming the file, like a
///   full disk, instead of killing the process.
///
/// Off Unix there are no signals to catch, and the list is empty.
#[cfg(unix)]
pub fn terminating_signals() -> Vec<i32> {
    use signal_hook::consts::signal::*;
    let mut signals = vec![
        SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF, SIGXCPU,
        SIGIO,
    ];
    #[cfg(target_os = "linux")]
    {
        signals.extend([libc::SIGPWR, libc::SIGSTKFLT]);
        // Real-time signals end the process by default too; the C library
        // reserves the first few for itself, which SIGRTMIN accounts for.
        signals.extend(libc::SIGRTMIN()..=libc::SIGRTMAX());
    }
    signals
}

/// Off Unix there are no signals to catch (see the Unix form).
#[cfg(not(unix))]
pub fn terminating_signals() -> Vec<i32> {
    Vec::new()
}

/// On any of the [`terminating_signals`] (Ctrl-C, `kill`, a closed
/// terminal, `timeout`'s SIGALRM...): remove every registered temporary and
/// exit with status 128 + the signal number, as a shell reports a killed
/// command. SIGXFSZ is caught and ignored (see [`terminating_signals`]).
///
/// Meant for programs (the `bnn` binary), not libraries: it takes over these
/// signals for the whole process. Installing it twice is harmless.
#[cfg(unix)]
pub fn remove_on_signals() -> io::Result<()> {
    use signal_hook::consts::signal::SIGXFSZ;
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    let mut result = Ok(());
    INSTALLED.call_once(|| {
        result = (|| {
            let mut caught = terminating_signals();
            caught.push(SIGXFSZ);
            let mut signals = signal_hook::iterator::Signals::new(caught)?;
            std::thread::Builder::new()
                .name("bnn-signals".into())
                .spawn(move || {
                    for signal in signals.forever() {
                        if signal == SIGXFSZ {
                            continue;
                        }
                        // The lock is never released: no temporary can be
                        // created or published between cleanup and exit.
                        let live = live();
                        for (path, dir) in live.iter() {
                            remove(path, *dir);
                        }
                        std::process::exit(128 + signal);
                    }
                })?;
            Ok(())
        })();
    });
    result
}

/// Off Unix there are no signals to catch, so there is nothing to install
/// (a temporary is still removed when its owner is dropped).
#[cfg(not(unix))]
pub fn remove_on_signals() -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn dropped_temporary_is_removed_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".x.tmp");
        let (tmp, ()) =
            Temporary::create(path.clone(), false, |p| fs::write(p, b"partial")).unwrap();
        assert!(path.is_file());
        assert!(registered().contains(&path));
        drop(tmp);
        assert!(!path.exists());
        assert!(!registered().contains(&path));
    }

    #[test]
    fn published_temporary_stays_where_publish_put_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".d.tmp");
        let target = dir.path().join("d");
        let (tmp, ()) = Temporary::create(path.clone(), true, |p| fs::create_dir(p)).unwrap();
        fs::write(path.join("f"), b"x").unwrap();
        tmp.publish(|p| fs::rename(p, &target)).unwrap();
        assert_eq!(fs::read(target.join("f")).unwrap(), b"x");
        assert!(!registered().contains(&path));
    }

    #[test]
    fn failed_publish_removes_the_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".f.tmp");
        let (tmp, ()) = Temporary::create(path.clone(), false, |p| fs::write(p, b"x")).unwrap();
        let err = tmp
            .publish(|p| fs::rename(p, dir.path().join("missing/f")))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!path.exists());
        assert!(!registered().contains(&path));
    }

    #[test]
    fn failed_create_registers_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing/.f.tmp");
        let err = Temporary::create(path.clone(), false, |p| fs::write(p, b"x")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
        assert!(!registered().contains(&path));
    }

    #[test]
    fn every_catchable_terminating_signal_is_handled() {
        use signal_hook::consts::signal::*;
        let handled = terminating_signals();
        for signal in [
            SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM, SIGVTALRM, SIGPROF,
            SIGXCPU, SIGIO,
        ] {
            assert!(handled.contains(&signal), "signal {signal} is not handled");
        }
        // Ignored by the runtime, caught only to be ignored, uncatchable, or
        // a fault of the process itself: see terminating_signals.
        for signal in [
            SIGPIPE, SIGXFSZ, SIGKILL, SIGSTOP, SIGSEGV, SIGABRT, SIGCHLD,
        ] {
            assert!(!handled.contains(&signal), "signal {signal} is handled");
        }
        #[cfg(target_os = "linux")]
        {
            assert!(handled.contains(&libc::SIGRTMIN()));
            assert!(handled.contains(&libc::SIGRTMAX()));
        }
    }
}
