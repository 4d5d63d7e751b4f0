//! # bnn-onnx: ONNX binary networks as bnn models
//!
//! Reads an ONNX file ([`wire`]: a bounded protobuf reader), checks its
//! versions and wiring ([`graph`]), and matches the graph, node by node in
//! topological order, onto the layers of a [`bnn_core::Model`]
//! ([`lower`]): sign activations, ±1 (or ±α per row) weights, biases,
//! batch norms and constant arithmetic folded into integer thresholds, the
//! input's preprocessing folded into the first layer. Anything the engine
//! cannot run exactly is refused with one line naming the node, its op and
//! why. `docs/IMPORT.md` lists the patterns and the refusals.
//!
//! [`export`] writes a model the other way, as a standard ONNX graph in
//! the patterns the importer reads.
//!
//! The crate stands apart from the engine, as an ONNX loader beside an
//! inference engine usually does: the engine's build and its file format
//! know nothing of ONNX.

use std::path::Path;

pub mod encode;
pub mod export;
pub mod graph;
pub mod lower;
pub mod wire;

pub use lower::{Imported, TieCount};

/// Largest ONNX file read.
pub const MAX_FILE: u64 = 256 << 20;

/// Why an import failed: one line, naming the node or tensor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    message: String,
}

impl Error {
    pub fn new(message: String) -> Error {
        Error { message }
    }

    /// Places a message found inside `what` at byte `at`.
    pub(crate) fn at(self, what: &str, at: usize) -> Error {
        Error::new(format!("{what} at byte {at}: {}", self.message))
    }

    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// A name from the file, quoted and cut to 60 characters, so that a
/// hostile name cannot make an error line long.
pub(crate) fn quote(name: &str) -> String {
    let mut s: String = name
        .chars()
        .take(60)
        .flat_map(char::escape_default)
        .collect();
    if name.chars().count() > 60 {
        s.push_str("...");
    }
    format!("'{s}'")
}

/// Imports the ONNX model at `path`. External data must sit in the same
/// directory (or below it). Errors do not name the file: the caller does.
pub fn import_file(path: &Path) -> Result<Imported, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::new(e.to_string()))?;
    let meta = file.metadata().map_err(|e| Error::new(e.to_string()))?;
    if meta.is_dir() {
        return Err(Error::new("is a directory, not an ONNX file".into()));
    }
    let mut bytes = Vec::new();
    let read = bnn_io::read::read_bounded(&mut std::io::BufReader::new(file), MAX_FILE, &mut bytes)
        .map_err(|e| Error::new(e.to_string()))?;
    if read > MAX_FILE {
        return Err(Error::new(format!(
            "larger than {} MiB, the most an ONNX file may be here",
            MAX_FILE >> 20
        )));
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    import_bytes(&bytes, Some(&dir))
}

/// Imports an ONNX model from its bytes; `dir` is where external data may
/// be read from (`None` refuses external data).
pub fn import_bytes(bytes: &[u8], dir: Option<&Path>) -> Result<Imported, Error> {
    if bytes.is_empty() {
        return Err(Error::new("empty file, not an ONNX model".into()));
    }
    let model = wire::parse_model(bytes)?;
    let (graph, order) = graph::check(&model)?;
    lower::lower(graph, &order, dir)
}
