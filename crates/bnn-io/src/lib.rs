//! # bnn-io: files in and out, without losing data
//!
//! Every crate of the workspace writes its outputs through [`write`](mod@write) and
//! reads untrusted lengths through [`read`], so the rules that keep a user's
//! files safe (never a half-written output, never a device replaced by a
//! regular file, never an input overwritten by an output, never a stray
//! temporary after Ctrl-C or `kill`, never an unbounded allocation from a
//! lying header) live in one place. The crate depends on nothing but the
//! standard library, a signal handler and `libc` (for the signal numbers
//! the handler takes over), so the inference core can use it without
//! pulling in gzip, zip or network code. The handler and the owner, device
//! and file-type checks are Unix-only; on other targets (the WebAssembly
//! engine, which reads models from bytes and writes no file) the crate
//! builds with plain equivalents, described where each is defined.

pub mod cleanup;
pub mod read;
pub mod records;
pub mod target;
pub mod text;
pub mod write;
