//! The Gatehouse control plane.
//!
//! This crate will own the configuration model (Gateway API and `gatehouse.dev` resources), the
//! file and Kubernetes sources, the incremental translator to Envoy resources, the snapshot
//! cache, and the delta/state-of-the-world ADS server with SDS over mTLS. The xDS server is
//! generic over a snapshot trait and never sees files or Kubernetes.
//!
//! Nothing is implemented yet: see the xDS and translation issues.
