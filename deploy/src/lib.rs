//! Gatehouse deployment profiles.
//!
//! This crate renders, deterministically (the same input gives the same bytes: no timestamps,
//! no generated keys), the deployment profiles of Gatehouse:
//!
//! - [`bootstrap`]: the Envoy bootstrap of one gateway and the file-based SDS resources it
//!   references (`gatehouse bootstrap`);
//! - [`kubernetes`]: the Kubernetes `hardened` profile, from typed k8s-openapi objects
//!   (`gatehouse render --profile hardened`), and [`install`], which applies it with
//!   server-side apply (`gatehouse install`);
//! - [`standalone`]: systemd units for the controller and Envoy on one host, with the Envoy
//!   bootstrap and the install steps (`gatehouse render --profile standalone`).
//!
//! `deploy/profiles/` holds the default renderings, checked in; a test fails when they are
//! not what the code renders.

#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

pub mod bootstrap;
mod error;
pub mod image;
pub mod install;
pub mod kubernetes;
pub mod output;
pub mod standalone;
mod yaml;

pub use bootstrap::{
    AdminEndpoint, AdsMode, BootstrapError, BootstrapParams, RenderedBootstrap, XdsAddress,
    XdsHost, render as render_bootstrap,
};
pub use error::ProfileError;
pub use image::ImageRef;
pub use kubernetes::{HardenedParams, hardened_objects, render_hardened};
pub use output::{CheckReport, Difference, RenderedFile, Rendering};
pub use standalone::{StandaloneParams, render_standalone};
