//! The Gatehouse certificate authority.
//!
//! Gatehouse runs its own small CA for the xDS connection between the control plane and Envoy:
//! the controller gets a serverAuth certificate with the URI SAN `spiffe://TD/controller`, and
//! each gateway a clientAuth certificate with `spiffe://TD/gateway/NAMESPACE/NAME`. Leaves are
//! short-lived (24 h by default) and renewed at half-life with jitter.
//!
//! This crate is sans-I/O apart from the file store: no sockets, and the clock is an input
//! ([`Clock`]), so rotation is tested on paused tokio time.
//!
//! - [`CertificateAuthority`]: a new ECDSA P-256 CA, or an existing one from files; issues leaves.
//! - [`CaStore`]: the on-disk layout, written atomically with keys at mode 0600.
//! - [`RotationSchedule`], [`rotate_store`], [`Rotator`]: when and how to renew.
//! - [`ReloadableCert`]: a certificate resolver swapped in place without a restart.
//! - [`server_config`], [`client_config`]: rustls, TLS 1.3 only, client certificates required.
//! - [`inspect_file`]: what `gatehouse certs inspect` shows.

#![deny(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod atomic;
mod ca;
mod clock;
mod error;
mod identity;
mod inspect;
mod leaf;
mod pem;
mod resolver;
mod rotation;
mod secret;
mod store;
mod tls;

pub use ca::{
    BACKDATE, CertificateAuthority, DEFAULT_CA_VALIDITY, DEFAULT_LEAF_VALIDITY,
    DEFAULT_MAX_LEAF_VALIDITY, LeafRequest,
};
pub use clock::{Clock, ManualClock, SystemClock, TokioClock, human_duration};
pub use error::{CertsError, Result};
pub use identity::{DEFAULT_TRUST_DOMAIN, GatewayName, Identity, Role, TrustDomain};
pub use inspect::{CertificateInfo, Sans, inspect_der, inspect_file, rfc3339};
pub use leaf::IssuedLeaf;
pub use resolver::ReloadableCert;
pub use rotation::{RotationOutcome, RotationSchedule, Rotator, rotate_store};
pub use secret::SecretKey;
pub use store::{BUNDLE_FILE, CERT_FILE, CHAIN_FILE, CaStore, KEY_FILE, StoredLeaf, read_leaf};
pub use tls::{client_config, provider, server_config};
