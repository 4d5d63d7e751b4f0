//! npz (stub)
