//! Gatehouse deployment profiles.
//!
//! This crate will render, deterministically, the Kubernetes `hardened` profile from typed
//! objects, the standalone systemd units, and Envoy bootstraps; `deploy/profiles/` will hold
//! the rendered defaults that are checked in.
//!
//! Nothing is implemented yet: see the deployment-profiles issue.
