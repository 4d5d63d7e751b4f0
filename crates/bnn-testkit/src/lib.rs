//! Helpers for the workspace's tests, kept in one place so that every test
//! builds its inputs, and treats a missing tool, the same way. Used only as a
//! dev-dependency; never published.

pub mod bytes;
pub mod child;
pub mod expect;
pub mod files;
pub mod models;
pub mod need;
pub mod npz;
pub mod oracle;
pub mod paths;
pub mod special;
