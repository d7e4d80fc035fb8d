//! The Gatehouse control plane.
//!
//! ```text
//! translator ──set()──▶ SnapshotCache ──watch()──▶ xDS server ──delta/SotW ADS over mTLS──▶ Envoy
//!                        (DiscoverSnapshots)        (per-proxy identity, ACK/NACK, coalescing)
//! ```
//!
//! - [`Snapshot`]: one gateway's resources by type, encoded once, versioned by content hash.
//! - [`DiscoverSnapshots`]: the seam the xDS server is generic over; it never sees files or
//!   Kubernetes. [`SnapshotCache`] is the in-memory implementation.
//! - [`xds`]: the ADS server (delta and state-of-the-world) with per-proxy authorization.
//!
//! - [`model`], [`source`], [`kube`]: the configuration model and its two sources (a directory,
//!   or the Kubernetes API); [`run::Pipeline`]: admission, translation and publication, shared
//!   by both.

pub mod admission;
mod discover;
pub mod kube;
pub mod model;
pub mod run;
mod snapshot;
pub mod source;
pub mod status_file;
pub mod translate;
pub mod xds;

pub use discover::{DiscoverSnapshots, SnapshotCache};
pub use snapshot::{Resource, ResourceType, Snapshot, SnapshotBuilder, Table};
