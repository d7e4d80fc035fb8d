//! `gatehouse verify` and the data-plane sandbox.
//!
//! This crate will own the verify checks (RBAC, pod security, Envoy, certificates, systemd
//! units, signatures), the findings model and its reporters (table, JSON, SARIF, JUnit), the
//! sandbox that runs the standalone Envoy without privileges, and artifact signing.
//!
//! Nothing is implemented yet: see the verify and signing issues.
