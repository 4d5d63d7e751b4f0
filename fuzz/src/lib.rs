//! Fuzz targets for every parser of the workspace: the `.bnn` and `.f32`
//! models, training checkpoints, IDX (raw and gzip), `.npz`/`.npy` and the
//! PNG/PGM images `bnn classify` reads. See `docs/FUZZING.md`.
//!
//! The invariants live in [`checks`] and the memory budget in [`budget`];
//! `tests/fuzz_regressions.rs` compiles the same two files on stable Rust and
//! runs them over every saved input.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub mod budget;
pub mod checks;

#[global_allocator]
static ALLOC: budget::Counting = budget::Counting;

/// This process's scratch directory, for the parsers that read from a
/// path. Each process has its own, so parallel jobs never share a file.
pub fn scratch_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bnn-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cannot create the fuzz scratch directory");
        dir
    })
}
