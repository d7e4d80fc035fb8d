//! Cedar admission for Gatehouse.
//!
//! This crate will own the Cedar schema for gateway configuration, the decomposition of every
//! object into claims (one Cedar request each), evaluation with `deny`/`warn`/`dryrun`
//! enforcement, exemptions as data, declarative policy tests, and the shipped guardrail library
//! under `policies/library/`. It depends on nothing else of Gatehouse's.
//!
//! Nothing is implemented yet: see the Cedar issue.
