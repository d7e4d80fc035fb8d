//! Where configuration comes from. The file source reads a directory and watches it; the
//! Kubernetes source comes with the Kubernetes issue.

mod file;

pub use file::{FileSource, Reload, Touched};
