//! # bnn-io: files in and out, without losing data
//!
//! Every crate of the workspace writes its outputs through [`write`] and
//! reads untrusted lengths through [`read`], so the rules that keep a user's
//! files safe (never a half-written output, never an unbounded allocation
//! from a lying header) live in one place. The crate depends on nothing but
//! the standard library, so the inference core can use it without pulling
//! in gzip, zip or network code.

pub mod read;
pub mod write;
