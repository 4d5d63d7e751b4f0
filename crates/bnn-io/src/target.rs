//! What an output path really names, decided before anything is written.
//!
//! A path given to `-o` may be a regular file (replaced atomically), a
//! symbolic link (followed: the file it points to is replaced and the link
//! stays a link), a device or FIFO (written through: renaming over
//! `/dev/null` as root would replace the device with a regular file), or one
//! of the process's own descriptors such as `/dev/stdout` (written through,
//! appending, so `>> log` keeps what the log held; it must be open). A
//! socket cannot be opened at all. An output may also be an input of the
//! same run, which must be refused before the input is read: every command
//! runs [`check_outputs`] on all its outputs and inputs before its work.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Links followed before giving up, as the kernel's own limit.
const MAX_LINKS: usize = 40;

/// How an output path is written.
#[derive(Debug)]
pub(crate) enum Plan {
    /// Opened and written in place: no temporary, no rename. `append` keeps
    /// what a process's own descriptor already holds.
    Through { append: bool },
    /// A regular file (or nothing yet) at `target`, replaced by renaming a
    /// temporary over it. `existing` is what is there now.
    Replace {
        target: PathBuf,
        existing: Option<fs::Metadata>,
    },
}

/// Follows `path` through symbolic links to the name that is finally
/// opened, which need not exist. Also says whether the chain passed through
/// a process's descriptor table (`/dev/stdout`, `/dev/fd/N`,
/// `/proc/self/fd/N`), whose links name open files rather than paths.
fn follow(path: &Path) -> io::Result<(PathBuf, bool, Option<u32>)> {
    let is_descriptor = |p: &Path| p.starts_with("/proc") || p.starts_with("/dev/fd");
    let mut current = path.to_path_buf();
    let mut descriptor = is_descriptor(&current);
    let mut number = descriptor_number(&current);
    for _ in 0..MAX_LINKS {
        match fs::symlink_metadata(&current) {
            Ok(meta) if meta.file_type().is_symlink() => {
                let link = fs::read_link(&current)?;
                current = match current.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
                descriptor |= is_descriptor(&current);
                number = descriptor_number(&current).or(number);
            }
            _ => return Ok((current, descriptor, number)),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        "too many levels of symbolic links",
    ))
}

pub(crate) fn is_a_directory() -> io::Error {
    io::Error::new(io::ErrorKind::IsADirectory, "is a directory")
}

/// The error for a descriptor path (`/dev/fd/N`) whose descriptor is not
/// open, or is open for reading only: told apart from other errors, since
/// it lies in how the program was started (a redirection left out, or
/// `3< file` where `3> file` was meant), not in the system.
#[derive(Debug)]
enum DescriptorProblem {
    Closed,
    ReadOnly,
}

impl fmt::Display for DescriptorProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DescriptorProblem::Closed => "is not an open file descriptor of this process",
            DescriptorProblem::ReadOnly => {
                "is a file descriptor open for reading only (as `N< file` opens it), so it is not written"
            }
        })
    }
}

impl std::error::Error for DescriptorProblem {}

fn is_closed_descriptor(e: &io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<DescriptorProblem>())
}

/// The descriptor number `path` names in this process's table
/// (`/dev/fd/N`, `/proc/self/fd/N`), if it names one.
fn descriptor_number(path: &Path) -> Option<u32> {
    let table = path.parent()?;
    let own = ["/dev/fd", "/proc/self/fd", "/proc/thread-self/fd"];
    if !own.iter().any(|t| table == Path::new(t)) {
        return None;
    }
    path.file_name()?.to_str()?.parse().ok()
}

/// Whether descriptor `fd` of this process was opened for reading only,
/// from the access mode in `/proc/self/fdinfo` (`flags:` is octal; its low
/// two bits are 0 for `O_RDONLY`). Opening its `/dev/fd` path for writing
/// would reopen the file behind it writable, and write into a file the
/// caller handed over to be read, where writing to the descriptor itself
/// fails (`EBADF`), as it does in a shell.
fn read_only_descriptor(fd: u32) -> bool {
    let Ok(info) = fs::read_to_string(format!("/proc/self/fdinfo/{fd}")) else {
        return false;
    };
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 3 == 0)
}

/// Decides how `path` is written.
pub(crate) fn plan(path: &Path) -> io::Result<Plan> {
    let (target, descriptor, number) = follow(path)?;
    if descriptor {
        // The descriptor's file itself, through the kernel's link (which
        // works for pipes and deleted files, whose link text names no path).
        return match fs::metadata(path) {
            Ok(meta) if meta.is_dir() => Err(is_a_directory()),
            Ok(_) if number.is_some_and(read_only_descriptor) => Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                DescriptorProblem::ReadOnly,
            )),
            Ok(_) => Ok(Plan::Through { append: true }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(io::Error::new(
                io::ErrorKind::NotFound,
                DescriptorProblem::Closed,
            )),
            Err(e) => Err(e),
        };
    }
    match fs::metadata(&target) {
        Ok(meta) if meta.is_dir() => Err(is_a_directory()),
        Ok(meta) if !meta.is_file() => Ok(Plan::Through { append: false }),
        Ok(meta) => Ok(Plan::Replace {
            target,
            existing: Some(meta),
        }),
        // Nothing there yet (or a file where a directory should be, which
        // creating the temporary reports).
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            if target.file_name().is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "does not name a file",
                ));
            }
            Ok(Plan::Replace {
                target,
                existing: None,
            })
        }
        Err(e) => Err(e),
    }
}

/// The directory a file named `path` lives in (`.` for a bare name).
pub(crate) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Whether `a` and `b` are the same existing file (same device and inode,
/// after following links): hard links and different spellings included.
/// A path that does not exist is the same as nothing. Off Unix, where
/// metadata carries no device and inode, the canonical paths are compared
/// (which misses hard links).
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (fs::metadata(a), fs::metadata(b)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The absolute name of the file an output path ends up writing: links
/// followed and the directory made canonical, so that two spellings of one
/// output compare equal before either file exists.
pub fn written_path(path: &Path) -> PathBuf {
    let (target, ..) = follow(path).unwrap_or_else(|_| (path.to_path_buf(), false, None));
    let dir = fs::canonicalize(parent_of(&target)).unwrap_or_else(|_| parent_of(&target).into());
    match target.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

/// Whether `path` is written through (a device, FIFO, socket or a
/// descriptor of this process) rather than replaced: such an output has no
/// "beside" where companion files could go (`/dev/null.json`).
pub fn is_written_through(path: &Path) -> bool {
    matches!(plan(path), Ok(Plan::Through { .. }))
}

/// For an output written through, what it writes into, in words ("a
/// character device", "a FIFO"...): a summary must not report the size of
/// `/dev/null` (0 bytes) as what was written. `None` for a file that is
/// replaced.
pub fn special_kind(path: &Path) -> Option<&'static str> {
    if !is_written_through(path) {
        return None;
    }
    Some(fs::metadata(path).map_or("a special file", |meta| kind_of(&meta)))
}

/// What kind of file `meta` describes, in words for messages: "a regular
/// file", "a directory", "a character device"... (off Unix, anything but a
/// file or a directory is "a special file").
pub fn kind_of(meta: &fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        return "a regular file";
    } else if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        } else if t.is_block_device() {
            return "a block device";
        } else if t.is_fifo() {
            return "a FIFO";
        } else if t.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

/// Whether two outputs would replace the same file. Outputs written
/// through (a terminal, a pipe, `/dev/null`) may be shared: `--json
/// /dev/stdout --chart /dev/stderr` on one terminal is fine.
pub fn same_output(a: &Path, b: &Path) -> bool {
    let replaced = |p: &Path| !matches!(plan(p), Ok(Plan::Through { .. }));
    replaced(a) && replaced(b) && (same_file(a, b) || written_path(a) == written_path(b))
}

/// Why an output path cannot be used, found before any work is done.
#[derive(Debug)]
pub struct PathProblem {
    pub path: PathBuf,
    pub problem: Problem,
}

#[derive(Debug)]
pub enum Problem {
    /// The path is a directory.
    Directory,
    /// The directory the file would go into does not exist.
    NoDirectory(PathBuf),
    /// What the file would go into exists but is not a directory
    /// (`-o notes.txt/x.csv`).
    NotADirectory(PathBuf),
    /// The output is the same file as this input.
    IsInput(PathBuf),
    /// Two outputs of the run, by role ("model", "report"...), are one file.
    SameAs { first: String, second: String },
    /// A special file that cannot be written: a descriptor path
    /// (`/dev/fd/5`) whose descriptor is not open or is open for reading
    /// only, a socket (which cannot be opened as a file).
    Unopenable(String),
    /// The file cannot be created there (permissions, read-only file system...).
    Unwritable(io::Error),
}

impl PathProblem {
    /// Whether the problem lies in how the program was called (a directory,
    /// a missing directory, colliding paths) rather than in the system.
    pub fn is_usage(&self) -> bool {
        !matches!(self.problem, Problem::Unwritable(_))
    }
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.path.display())?;
        match &self.problem {
            Problem::Directory => write!(f, "is a directory"),
            Problem::NoDirectory(dir) => write!(f, "directory {} does not exist", dir.display()),
            Problem::NotADirectory(dir) => write!(f, "{} is not a directory", dir.display()),
            Problem::IsInput(input) => write!(
                f,
                "is the same file as the input {}; refusing to overwrite an input",
                input.display()
            ),
            Problem::SameAs { first, second } => write!(
                f,
                "both the {first} and the {second} would be written to this file; give each its own path"
            ),
            Problem::Unopenable(why) => write!(f, "{why}"),
            Problem::Unwritable(e) => write!(f, "cannot be written: {e}"),
        }
    }
}

impl std::error::Error for PathProblem {}

/// Whether writing `output` would overwrite `input`: the same existing
/// file, or, for an input that does not exist yet (MNIST that will be
/// fetched before it is read), the same name.
fn overwrites(output: &Path, input: &Path) -> bool {
    same_file(output, input) || (fs::metadata(input).is_err() && same_output(output, input))
}

/// Refuses `output` when it is the same file as any of `inputs` (see
/// [`check_outputs`], which every command uses).
pub fn check_not_input<'a>(
    output: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<(), PathProblem> {
    match inputs.into_iter().find(|input| overwrites(output, input)) {
        Some(input) => Err(PathProblem {
            path: output.to_path_buf(),
            problem: Problem::IsInput(input.to_path_buf()),
        }),
        None => Ok(()),
    }
}

/// Refuses any two of `outputs` (each a role, such as "model", and a path)
/// that would write the same file.
pub fn check_distinct(outputs: &[(&str, &Path)]) -> Result<(), PathProblem> {
    for (i, (role, path)) in outputs.iter().enumerate() {
        if let Some((first, _)) = outputs[..i].iter().find(|(_, b)| same_output(path, b)) {
            return Err(PathProblem {
                path: path.to_path_buf(),
                problem: Problem::SameAs {
                    first: first.to_string(),
                    second: role.to_string(),
                },
            });
        }
    }
    Ok(())
}

/// The part of `dir` that exists but is not a directory, if any: the file
/// in `notes.txt/a/b`. Below a file nothing exists (`stat` fails with
/// ENOTDIR), so the nearest part that exists is the one to name: saying
/// that `notes.txt/a` does not exist would send the user looking for a
/// missing directory.
pub fn file_in_the_way(dir: &Path) -> Option<&Path> {
    dir.ancestors()
        .find(|a| !a.as_os_str().is_empty() && a.exists())
        .filter(|a| !a.is_dir())
}

/// Checks, without changing anything visible, that `path` can be written:
/// not a directory, its directory exists, and a file can be created there;
/// for a special file, that it can be opened at all: a descriptor path
/// (`/dev/fd/N`, `/dev/stdout`) must name an open descriptor, and a socket
/// is refused (`open` cannot open one). Devices and FIFOs are not opened
/// here: opening a FIFO waits for a reader, and opening some devices acts
/// (a tape rewinds).
pub fn check_writable(path: &Path) -> Result<(), PathProblem> {
    let problem = |problem| PathProblem {
        path: path.to_path_buf(),
        problem,
    };
    let target = match plan(path) {
        Ok(Plan::Through { .. }) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::FileTypeExt;
                if fs::metadata(path).is_ok_and(|meta| meta.file_type().is_socket()) {
                    return Err(problem(Problem::Unopenable(
                        "is a socket, which cannot be opened as a file".into(),
                    )));
                }
            }
            return Ok(());
        }
        Ok(Plan::Replace { target, .. }) => target,
        Err(e) if e.kind() == io::ErrorKind::IsADirectory => {
            return Err(problem(Problem::Directory))
        }
        Err(e) if is_closed_descriptor(&e) => {
            return Err(problem(Problem::Unopenable(e.to_string())))
        }
        Err(e) => return Err(problem(Problem::Unwritable(e))),
    };
    let dir = parent_of(&target);
    if !dir.is_dir() {
        return Err(problem(match file_in_the_way(dir) {
            Some(file) => Problem::NotADirectory(file.to_path_buf()),
            None => Problem::NoDirectory(dir.to_path_buf()),
        }));
    }
    let created = crate::cleanup::Temporary::create_beside(&target, "tmp", false, |p| {
        fs::OpenOptions::new().write(true).create_new(true).open(p)
    });
    match created {
        Ok(_probe_removed_on_drop) => Ok(()),
        Err(e) => Err(problem(Problem::Unwritable(e))),
    }
}

/// Every check on a command's outputs, made before it reads or computes
/// anything, so that no work ends in a lost result and no output replaces
/// an input: no two `outputs` (each a role, such as "model", and a path)
/// are one file, none is one of `inputs` (every file the command will read:
/// models, data files found in a directory, checkpoints, labels; see
/// [`check_not_input`]), and each can be written ([`check_writable`]).
pub fn check_outputs(outputs: &[(&str, &Path)], inputs: &[&Path]) -> Result<(), PathProblem> {
    check_distinct(outputs)?;
    for (_, output) in outputs {
        check_not_input(output, inputs.iter().copied())?;
    }
    outputs
        .iter()
        .try_for_each(|(_, output)| check_writable(output))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    use crate::write::tests::listing;

    #[test]
    fn plans_follow_links_and_spare_special_files() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        let link = dir.path().join("link");
        symlink("f", &link).unwrap();
        match plan(&link).unwrap() {
            Plan::Replace { target, existing } => {
                assert_eq!(target, dir.path().join("f"));
                assert!(existing.is_some());
            }
            other => panic!("{other:?}"),
        }
        let dangling = dir.path().join("dangling");
        symlink("sub/new", &dangling).unwrap();
        match plan(&dangling).unwrap() {
            Plan::Replace { target, existing } => {
                assert_eq!(target, dir.path().join("sub/new"));
                assert!(existing.is_none());
            }
            other => panic!("{other:?}"),
        }
        let fifo = dir.path().join("fifo");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo (coreutils) is needed by this test");
        assert!(status.success());
        assert!(matches!(
            plan(&fifo).unwrap(),
            Plan::Through { append: false }
        ));
        assert!(matches!(
            plan(Path::new("/proc/self/fd/1")).unwrap(),
            Plan::Through { append: true }
        ));
        assert_eq!(
            plan(dir.path()).unwrap_err().kind(),
            io::ErrorKind::IsADirectory
        );
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        symlink("b", &a).unwrap();
        symlink("a", &b).unwrap();
        assert!(plan(&a).unwrap_err().to_string().contains("symbolic links"));
    }

    #[test]
    fn same_file_sees_links_and_other_spellings() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        fs::write(&file, b"x").unwrap();
        let hard = dir.path().join("hard");
        fs::hard_link(&file, &hard).unwrap();
        let soft = dir.path().join("soft");
        symlink(&file, &soft).unwrap();
        let other = dir.path().join("other");
        fs::write(&other, b"x").unwrap();
        assert!(same_file(&file, &hard));
        assert!(same_file(&soft, &file));
        assert!(same_file(&dir.path().join(".").join("f"), &file));
        assert!(!same_file(&file, &other));
        assert!(!same_file(&file, &dir.path().join("missing")));
        let err = check_not_input(&hard, [other.as_path(), soft.as_path()]).unwrap_err();
        assert!(
            matches!(err.problem, Problem::IsInput(ref p) if p == &soft),
            "{err}"
        );
        assert!(err.to_string().contains("refusing to overwrite"), "{err}");
        check_not_input(&dir.path().join("new"), [file.as_path()]).unwrap();
    }

    #[test]
    fn outputs_collide_before_they_exist() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        let a = dir.path().join("sub/m.json");
        let b = dir.path().join("sub/../sub/m.json");
        let c = dir.path().join("sub/m.svg");
        assert!(same_output(&a, &b));
        assert!(!same_output(&a, &c));
        let link = dir.path().join("l.json");
        symlink("sub/m.json", &link).unwrap();
        let err = check_distinct(&[("chart", &c), ("report", &a), ("copy", &link)]).unwrap_err();
        assert_eq!(err.path, link);
        assert!(
            err.to_string().ends_with(
                "both the report and the copy would be written to this file; give each its own path"
            ),
            "{err}"
        );
        assert!(err.is_usage());
        check_distinct(&[("report", &a), ("chart", &c)]).unwrap();
        // Two outputs written through one device may share it.
        let fd = Path::new("/proc/self/fd/1");
        check_distinct(&[("report", fd), ("chart", fd)]).unwrap();
    }

    #[test]
    fn writability_is_checked_without_leaving_anything() {
        let dir = tempfile::tempdir().unwrap();
        check_writable(&dir.path().join("new.bnn")).unwrap();
        let err = check_writable(dir.path()).unwrap_err();
        assert!(matches!(err.problem, Problem::Directory), "{err}");
        let err = check_writable(&dir.path().join("missing/m.bnn")).unwrap_err();
        assert!(matches!(err.problem, Problem::NoDirectory(_)), "{err}");
        assert!(err.to_string().contains("does not exist"), "{err}");
        // A file where the directory should be: fails even for root.
        fs::write(dir.path().join("file"), b"").unwrap();
        let err = check_writable(&dir.path().join("file/m.bnn")).unwrap_err();
        assert!(matches!(err.problem, Problem::NotADirectory(_)), "{err}");
        assert!(
            err.to_string().ends_with("file is not a directory"),
            "{err}"
        );
        // Deeper below the file, the file is still the one named.
        let err = check_writable(&dir.path().join("file/a/b/m.bnn")).unwrap_err();
        assert!(
            err.to_string().ends_with("file is not a directory"),
            "{err}"
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn special_outputs_are_checked_for_what_can_be_opened() {
        let dir = tempfile::tempdir().unwrap();
        // A descriptor that is not open: refused as a usage problem.
        let closed = Path::new("/proc/self/fd/987654");
        let err = check_writable(closed).unwrap_err();
        assert!(matches!(err.problem, Problem::Unopenable(_)), "{err}");
        assert!(err.is_usage());
        assert!(
            err.to_string()
                .ends_with("is not an open file descriptor of this process"),
            "{err}"
        );
        // Nor one open for reading only: writing would reopen its file writable.
        fs::write(dir.path().join("kept"), b"kept").unwrap();
        let read = fs::File::open(dir.path().join("kept")).unwrap();
        let reading = PathBuf::from(format!("/dev/fd/{}", read.as_raw_fd()));
        let err = check_writable(&reading).unwrap_err();
        assert!(err.is_usage(), "{err}");
        assert!(err.to_string().contains("open for reading only"), "{err}");
        // Nor a name beside a descriptor (`/dev/fd/1.json`).
        let err = check_writable(Path::new("/proc/self/fd/1.json")).unwrap_err();
        assert!(matches!(err.problem, Problem::Unopenable(_)), "{err}");
        assert_eq!(
            err.to_string(),
            "/proc/self/fd/1.json: is not an open file descriptor of this process"
        );
        // An open one passes and is written through.
        let file = fs::File::create(dir.path().join("f")).unwrap();
        use std::os::fd::AsRawFd;
        let open = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        check_writable(&open).unwrap();
        assert!(is_written_through(&open));
        assert_eq!(special_kind(&open), Some("a regular file"));
        assert_eq!(special_kind(&dir.path().join("f")), None);
        assert!(!is_written_through(&dir.path().join("new")));
        // A socket cannot be opened at all.
        let socket = dir.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        let err = check_writable(&socket).unwrap_err();
        assert!(err.to_string().contains("is a socket"), "{err}");
        assert_eq!(kind_of(&fs::metadata(&socket).unwrap()), "a socket");
    }

    #[test]
    fn outputs_are_checked_against_inputs_that_do_not_exist_yet() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("mnist");
        fs::create_dir(&data).unwrap();
        // MNIST that a fetch will put there before it is read.
        let later = data.join("t10k-images-idx3-ubyte");
        let chart = dir.path().join("mnist/../mnist/t10k-images-idx3-ubyte");
        let err = check_outputs(&[("chart", &chart)], &[&later]).unwrap_err();
        assert!(matches!(err.problem, Problem::IsInput(_)), "{err}");
        let model = dir.path().join("m.bnn");
        fs::write(&model, b"model").unwrap();
        let json = dir.path().join("r.json");
        let err =
            check_outputs(&[("json", &json), ("chart", &model)], &[&later, &model]).unwrap_err();
        assert_eq!(err.path, model);
        let err = check_outputs(&[("json", &json), ("chart", &json)], &[]).unwrap_err();
        assert!(matches!(err.problem, Problem::SameAs { .. }), "{err}");
        check_outputs(&[("json", &json)], &[&later, &model]).unwrap();
        assert_eq!(listing(dir.path()), ["m.bnn", "mnist"]);
    }
}
