//! Gatehouse deployment profiles.
//!
//! This crate will render, deterministically, the Kubernetes `hardened` profile from typed
//! objects, the standalone systemd units, and Envoy bootstraps; `deploy/profiles/` will hold
//! the rendered defaults that are checked in.
//!
//! Implemented so far: [`bootstrap`], the Envoy bootstrap of one gateway and the file-based SDS
//! resources it references (`gatehouse bootstrap`). The Kubernetes and systemd profiles are
//! not implemented yet: see the deployment-profiles issue.

#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod bootstrap;

pub use bootstrap::{
    AdminEndpoint, AdsMode, BootstrapError, BootstrapParams, RenderedBootstrap, XdsAddress,
    XdsHost, render as render_bootstrap,
};
