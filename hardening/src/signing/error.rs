//! The error of key-based signing: keys, passwords, blob signatures and manifests.

use std::path::PathBuf;

/// Everything that can go wrong creating keys, signing and verifying with them.
///
/// Messages are lowercase, put user input in backticks and never contain key material or a
/// password.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SigningError {
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write `{}`: {source} (check that the directory exists and is writable by this user)", path.display())]
    Write {
        /// The file (or its directory).
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A file that would be created exists already.
    #[error("`{}` already exists (remove it, or choose another output prefix)", path.display())]
    Exists {
        /// The existing file.
        path: PathBuf,
    },
    /// No password was given and none can be asked for.
    #[error(
        "no signing password: set GATEHOUSE_SIGNING_PASSWORD (or COSIGN_PASSWORD), or run on a terminal to be asked for it"
    )]
    NoPassword,
    /// The terminal prompt failed.
    #[error("cannot read the password from the terminal: {source}")]
    Prompt {
        /// The reason.
        #[source]
        source: std::io::Error,
    },
    /// The password and its confirmation differ.
    #[error("the two passwords differ")]
    PasswordMismatch,
    /// A new key would be protected by an empty password.
    #[error("refusing to protect a new key with an empty password")]
    EmptyPassword,
    /// The password does not decrypt the key.
    #[error("cannot decrypt the private key in `{}`: wrong password", path.display())]
    WrongPassword {
        /// The key file.
        path: PathBuf,
    },
    /// A key file is not a key we can use.
    #[error("`{}` is not a usable key: {reason}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong (never the key itself).
        reason: String,
    },
    /// The cryptographic library failed to make or use a key.
    #[error("{what} failed: {reason}")]
    Crypto {
        /// What was being done.
        what: &'static str,
        /// The library's reason.
        reason: String,
    },
    /// A signature file is not a base64 signature.
    #[error("`{}` is not a signature: {reason}", path.display())]
    SignatureFormat {
        /// The signature file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The signature does not verify.
    #[error(
        "the signature `{}` does not verify `{}` with the key `{}`",
        signature.display(),
        file.display(),
        key.display()
    )]
    BadSignature {
        /// The signed file.
        file: PathBuf,
        /// The signature file.
        signature: PathBuf,
        /// The public key.
        key: PathBuf,
    },
    /// A directory cannot be covered by a manifest.
    #[error("cannot sign `{}`: {reason}", path.display())]
    Unsignable {
        /// The offending path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}
