//! `gatehouse verify` and the data-plane sandbox.
//!
//! This crate will own the verify checks (RBAC, pod security, Envoy, certificates, systemd
//! units, signatures), the findings model and its reporters (table, JSON, SARIF, JUnit), the
//! sandbox that runs the standalone Envoy without privileges, and artifact signing.
//!
//! Signing lives in [`signing`].

#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod sandbox;
pub mod signing;
pub mod verify;
