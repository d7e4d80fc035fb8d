//! Detached blob signatures, as `cosign sign-blob` writes them: `FILE.sig` holds the base64 of the
//! DER ECDSA signature over the SHA-256 of the file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::atomic::{self, Existing};
use super::error::SigningError;
use super::keys::{SigningKey, VerifyingKey};

/// `FILE.sig`, where `sign_file` writes the signature of `FILE`.
pub fn signature_path(file: &Path) -> PathBuf {
    let mut name = OsString::from(file.as_os_str());
    name.push(".sig");
    PathBuf::from(name)
}

/// Signs every file of `files` and writes each `FILE.sig`. Every file is read and signed
/// before any signature is written, so an unreadable file leaves no signature behind. Returns
/// the signatures' paths, in order.
pub fn sign_files(key: &SigningKey, files: &[PathBuf]) -> Result<Vec<PathBuf>, SigningError> {
    let signatures = files
        .iter()
        .map(|f| key.sign(&read(f)?))
        .collect::<Result<Vec<_>, _>>()?;
    files
        .iter()
        .zip(signatures)
        .map(|(f, sig)| write_signature(f, &sig))
        .collect()
}

/// Signs the contents of `file` and writes the base64 signature to `FILE.sig` (atomically,
/// replacing an older signature). Returns the signature's path.
pub fn sign_file(key: &SigningKey, file: &Path) -> Result<PathBuf, SigningError> {
    let contents = read(file)?;
    let signature = key.sign(&contents)?;
    write_signature(file, &signature)
}

/// Writes `signature` (DER) as the base64 `FILE.sig` of `file`, atomically, replacing an older
/// signature. Returns the signature's path.
pub fn write_signature(file: &Path, signature: &[u8]) -> Result<PathBuf, SigningError> {
    let path = signature_path(file);
    atomic::write(
        &path,
        STANDARD.encode(signature).as_bytes(),
        0o644,
        Existing::Replace,
    )?;
    Ok(path)
}

/// Verifies that `signature` (a base64 `.sig` file) is `key`'s signature of `file`.
pub fn verify_file(key: &VerifyingKey, signature: &Path, file: &Path) -> Result<(), SigningError> {
    let sig = read_signature(signature)?;
    let contents = read(file)?;
    if key.verify(&sig, &contents) {
        Ok(())
    } else {
        Err(SigningError::BadSignature {
            file: file.to_owned(),
            signature: signature.to_owned(),
            key: key.path().to_owned(),
        })
    }
}

/// Reads a `.sig` file: base64 (surrounding whitespace allowed) of a DER signature.
pub(crate) fn read_signature(path: &Path) -> Result<Vec<u8>, SigningError> {
    let text = read(path)?;
    let format_err = |reason: &str| SigningError::SignatureFormat {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let text = std::str::from_utf8(&text).map_err(|_| format_err("not base64 text"))?;
    let sig = STANDARD
        .decode(text.trim())
        .map_err(|_| format_err("not base64"))?;
    if sig.is_empty() {
        return Err(format_err("empty"));
    }
    Ok(sig)
}

fn read(path: &Path) -> Result<Vec<u8>, SigningError> {
    std::fs::read(path).map_err(|source| SigningError::Read {
        path: path.to_owned(),
        source,
    })
}
