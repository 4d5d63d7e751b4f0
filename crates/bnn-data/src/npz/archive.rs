//! Opening a `.npz` (a zip of `.npy` files) and reading arrays by name.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use zip::result::ZipError;
use zip::ZipArchive;

use super::npy::{read_npy_limited, read_npy_strings};
use super::NpyArray;
use crate::error::DataError;

/// An open `.npz` archive.
///
/// `np.savez` stores array `x` as the zip entry `x.npy`, either stored or
/// deflated (`np.savez_compressed`); both are supported.
pub struct NpzArchive {
    path: PathBuf,
    zip: ZipArchive<Input>,
}

/// Largest `.npz` accepted from a pipe or a device, which is read into
/// memory first: a zip's directory sits at its end, so it cannot be read
/// from a stream that cannot seek.
const MAX_STREAMED: u64 = 1 << 30;

/// The bytes of an archive: a regular file read in place, or a pipe's or
/// device's bytes held in memory.
enum Input {
    File(BufReader<File>),
    Memory(io::Cursor<Vec<u8>>),
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Input::File(f) => f.read(buf),
            Input::Memory(m) => m.read(buf),
        }
    }
}

impl Seek for Input {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match self {
            Input::File(f) => f.seek(pos),
            Input::Memory(m) => m.seek(pos),
        }
    }
}

/// Opens `path` for the zip reader. A pipe or a device is read into memory,
/// after its first bytes show a zip signature, so `/dev/zero` or a stream of
/// text stops at once rather than filling memory.
fn input(path: &Path) -> Result<Input, DataError> {
    let mut file = File::open(path).map_err(|e| DataError::io(path, "opening", e))?;
    let meta = file
        .metadata()
        .map_err(|e| DataError::io(path, "reading metadata", e))?;
    if meta.is_file() {
        return Ok(Input::File(BufReader::new(file)));
    }
    let mut bytes = vec![0u8; 4];
    let got = bnn_io::read::read_full(&mut file, &mut bytes)
        .map_err(|e| DataError::io(path, "reading", e))?;
    bytes.truncate(got);
    // Local file header, or the end record of an empty archive.
    if bytes != b"PK\x03\x04" && bytes != b"PK\x05\x06" {
        return Err(DataError::Npz {
            path: path.to_path_buf(),
            detail: "not a zip archive (wrong first bytes), so not a .npz".into(),
        });
    }
    let n = bnn_io::read::read_bounded(&mut file, MAX_STREAMED, &mut bytes)
        .map_err(|e| DataError::io(path, "reading", e))?;
    if n > MAX_STREAMED {
        return Err(DataError::Npz {
            path: path.to_path_buf(),
            detail: format!("more than the {MAX_STREAMED} bytes accepted from a stream"),
        });
    }
    Ok(Input::Memory(io::Cursor::new(bytes)))
}

impl std::fmt::Debug for NpzArchive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpzArchive")
            .field("path", &self.path)
            .field("arrays", &self.names())
            .finish()
    }
}

impl NpzArchive {
    /// Opens `path` and reads the zip's central directory.
    ///
    /// Fails with [`DataError::Npz`] if the file is not a zip archive or is
    /// truncated (the directory sits at the end of the file, so any
    /// truncation is caught here).
    pub fn open(path: &Path) -> Result<NpzArchive, DataError> {
        let zip = ZipArchive::new(input(path)?).map_err(|e| match e {
            ZipError::Io(e) if e.kind() == io::ErrorKind::UnexpectedEof => DataError::Npz {
                path: path.to_path_buf(),
                detail: format!("truncated zip archive: {e}"),
            },
            ZipError::Io(e) => DataError::io(path, "reading zip directory", e),
            other => DataError::Npz {
                path: path.to_path_buf(),
                detail: format!("not a readable zip archive (truncated or not a .npz?): {other}"),
            },
        })?;
        Ok(NpzArchive {
            path: path.to_path_buf(),
            zip,
        })
    }

    /// The file this archive was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of the arrays in the archive (entry names without `.npy`).
    pub fn names(&self) -> Vec<String> {
        self.zip
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_string())
            .collect()
    }

    /// Whether the archive holds array `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.zip.index_for_name(&format!("{name}.npy")).is_some()
    }

    /// Reads array `name` (stored as `name.npy`).
    ///
    /// Fails with [`DataError::NpzMissingArray`] if there is no such array
    /// and with [`DataError::NpzArray`] if it is malformed, truncated,
    /// corrupt (checksum), or of an unsupported dtype.
    pub fn read(&mut self, name: &str) -> Result<NpyArray, DataError> {
        self.read_limited(name, u64::MAX)
    }

    /// [`NpzArchive::read`] of an array of at most `max` elements, refused
    /// from its header before its data is read.
    pub fn read_limited(&mut self, name: &str, max: u64) -> Result<NpyArray, DataError> {
        self.with_entry(name, |entry, declared| {
            read_npy_limited(entry, declared, max)
        })
    }

    /// Reads array `name` of strings (`<U..` or `|S..`, at most `max` of
    /// them) with its shape; see the `npy` module for the rules.
    pub fn read_strings(
        &mut self,
        name: &str,
        max: u64,
    ) -> Result<(Vec<usize>, Vec<String>), DataError> {
        self.with_entry(name, |entry, declared| {
            read_npy_strings(entry, declared, max)
        })
    }

    fn with_entry<T>(
        &mut self,
        name: &str,
        read: impl FnOnce(&mut dyn Read, u64) -> Result<T, String>,
    ) -> Result<T, DataError> {
        let array_err = |detail: String| DataError::NpzArray {
            path: self.path.clone(),
            array: name.to_string(),
            detail,
        };
        let entry_name = format!("{name}.npy");
        let Some(index) = self.zip.index_for_name(&entry_name) else {
            return Err(DataError::NpzMissingArray {
                path: self.path.clone(),
                array: name.to_string(),
            });
        };
        let mut entry = match self.zip.by_index(index) {
            Ok(entry) => entry,
            Err(e) => {
                return Err(array_err(format!(
                    "cannot open zip entry {entry_name}: {e}"
                )))
            }
        };
        let declared = entry.size();
        read(&mut entry, declared).map_err(array_err)
    }
}
