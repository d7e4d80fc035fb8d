//! The one error type of this crate.

use std::path::PathBuf;

/// Everything that can go wrong in the certificate authority, its store and its TLS configs.
///
/// Messages are lowercase, name the file (and line where there is one) and, where the fix is
/// not obvious, say how to fix it. No message ever contains key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertsError {
    /// A directory that must exist does not.
    #[error("directory `{}` does not exist (create it, or check the path)", path.display())]
    MissingDir {
        /// The missing directory.
        path: PathBuf,
    },
    /// A path that must be a directory is something else.
    #[error("`{}` is not a directory", path.display())]
    NotADirectory {
        /// The offending path.
        path: PathBuf,
    },
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A file or directory could not be written.
    #[error("cannot write in `{}`: {source} (check that the directory exists and is writable by this user)", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file is malformed.
    #[error("`{}` line {line}: {reason}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending PEM block (or of the end of the file).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A certificate does not parse, or is not usable for what it was given for.
    #[error("`{}` line {line}: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// 1-based line where the certificate's PEM block starts.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A private key does not parse or is of an unsupported type.
    #[error("`{}` line {line}: {reason}", path.display())]
    Key {
        /// The file.
        path: PathBuf,
        /// 1-based line where the key's PEM block starts.
        line: usize,
        /// What is wrong (never the key itself).
        reason: String,
    },
    /// A private key does not belong to the certificate it was given with.
    #[error(
        "the private key in `{}` does not match the certificate in `{}` (pass the key that signed this certificate)",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A CA already exists where a new one would be written.
    #[error("a CA already exists in `{}` (pass --force to replace it; every issued certificate then stops being trusted)", dir.display())]
    CaExists {
        /// The store directory.
        dir: PathBuf,
    },
    /// No CA was found in a store directory.
    #[error("no CA in `{}` (run `gatehouse certs init --dir {}` first)", dir.display(), dir.display())]
    NoCa {
        /// The store directory.
        dir: PathBuf,
    },
    /// The store's metadata file is unreadable.
    #[error("`{}`: {reason}", path.display())]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A gateway name is not `NAMESPACE/NAME`.
    #[error(
        "`{input}` is not a gateway name: {reason} (expected NAMESPACE/NAME with lowercase DNS labels, e.g. `edge/public`)"
    )]
    GatewayName {
        /// What the user gave.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A trust domain is not a valid SPIFFE trust domain.
    #[error(
        "`{input}` is not a trust domain: {reason} (use lowercase letters, digits, `.`, `-` and `_`, e.g. `gatehouse.local`)"
    )]
    TrustDomain {
        /// What the user gave.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A SPIFFE URI is not one of Gatehouse's identities.
    #[error("`{input}` is not a Gatehouse identity: {reason}")]
    Identity {
        /// The URI.
        input: String,
        /// What is wrong.
        reason: String,
    },
    /// A DNS name or IP address for a SAN is invalid.
    #[error("`{input}` is not a valid DNS name for a certificate")]
    DnsName {
        /// What the user gave.
        input: String,
    },
    /// A validity period is unusable.
    #[error("validity `{requested}` {reason}")]
    Validity {
        /// The requested validity, human readable.
        requested: String,
        /// What is wrong, with the limit.
        reason: String,
    },
    /// The CA cannot issue (expired, not yet valid).
    #[error(
        "the CA certificate {reason} (renew or replace the CA with `gatehouse certs init --force`)"
    )]
    CaUnusable {
        /// What is wrong.
        reason: String,
    },
    /// Generating or signing a certificate or key failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// Building a TLS configuration failed.
    #[error("tls configuration failed: {0}")]
    Tls(#[from] rustls::Error),
    /// Building a certificate verifier failed.
    #[error("tls verifier configuration failed: {0}")]
    Verifier(String),
}

/// Shorthand for results in this crate.
pub type Result<T, E = CertsError> = std::result::Result<T, E>;
