//! Artifact signing and signature verification, offline.
//!
//! - Key-based, cosign-compatible: [`keys`] makes and loads ECDSA P-256 key pairs (the private
//!   key encrypted the way `cosign generate-key-pair` does), [`blob`] writes and checks
//!   `FILE.sig` detached signatures (what `cosign sign-blob` / `verify-blob` use), and
//!   [`manifest`] signs a whole directory through a `SHA256SUMS` manifest and reports every
//!   difference as a [`manifest::Finding`] with a stable id (`SIG-001` … `SIG-004`).
//! - Keyless: [`keyless`] verifies a sigstore bundle (v0.3) against a supplied trusted root. The
//!   sigstore crate checks the certificate chain, the SCT, the identity and the signature; the
//!   transparency-log evidence it leaves unchecked (inclusion proof, checkpoint, signed entry
//!   timestamp, what the log entry says) is checked here, in [`keyless::entry`].
//!
//! Nothing here touches the network. Private keys and passwords are never printed: their
//! types redact `Debug`, and their bytes are zeroed on drop.

mod atomic;
pub mod blob;
mod digest;
mod error;
pub mod keyless;
pub mod keys;
pub mod manifest;
pub mod password;
mod pem;

pub use digest::Digest;
pub use error::SigningError;
