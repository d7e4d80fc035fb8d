//! cosign-compatible ECDSA P-256 key pairs: generation, the encrypted private key, the public key.
//!
//! The private key is cosign's `ENCRYPTED SIGSTORE PRIVATE KEY`: PKCS#8 sealed with NaCl
//! secretbox under a key derived from the password with scrypt. `cosign sign-blob --key` reads
//! it, and `cosign verify-blob --key` accepts the public key.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use sigstore::crypto::signing_key::kdf;
use sigstore::crypto::signing_key::{SIGSTORE_PRIVATE_KEY_PEM_LABEL, SigStoreKeyPair};
use sigstore::crypto::{CosignVerificationKey, SigStoreSigner, Signature, SigningScheme};
use zeroize::Zeroizing;

use super::atomic::{self, Existing};
use super::error::SigningError;
use super::password::Password;
use super::pem;

/// The PEM label of keys written by older cosign releases, still accepted.
const COSIGN_PRIVATE_KEY_PEM_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";
const PUBLIC_KEY_PEM_LABEL: &str = "PUBLIC KEY";
const SCHEME: SigningScheme = SigningScheme::ECDSA_P256_SHA256_ASN1;
const ONLY_P256: &str = "not an ECDSA P-256 key (cosign's default, the only kind Gatehouse uses)";

/// The two files of a key pair.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct KeyPairFiles {
    /// `PREFIX.key`: the encrypted private key, mode 0600.
    pub private_key: PathBuf,
    /// `PREFIX.pub`: the public key (PEM), mode 0644.
    pub public_key: PathBuf,
}

impl KeyPairFiles {
    /// `PREFIX.key` and `PREFIX.pub`.
    pub fn for_prefix(prefix: &Path) -> Self {
        let with = |suffix: &str| {
            let mut name = OsString::from(prefix.as_os_str());
            name.push(suffix);
            PathBuf::from(name)
        };
        Self {
            private_key: with(".key"),
            public_key: with(".pub"),
        }
    }
}

/// Generates an ECDSA P-256 key pair and writes `PREFIX.key` (encrypted with `password`, mode
/// 0600, atomically) and `PREFIX.pub`. Existing files are never replaced: if either exists,
/// nothing is written.
pub fn generate_key_pair(prefix: &Path, password: &Password) -> Result<KeyPairFiles, SigningError> {
    generate_key_pair_with(prefix, || Ok(Password::new(password.0.as_str())))
}

/// [`generate_key_pair`], asking `password` for the password only once it is known that
/// neither file exists.
pub fn generate_key_pair_with(
    prefix: &Path,
    password: impl FnOnce() -> Result<Password, SigningError>,
) -> Result<KeyPairFiles, SigningError> {
    let files = KeyPairFiles::for_prefix(prefix);
    for path in [&files.private_key, &files.public_key] {
        if path.symlink_metadata().is_ok() {
            return Err(SigningError::Exists { path: path.clone() });
        }
    }
    let password = password()?;
    let crypto = |what| {
        move |e: sigstore::errors::SigstoreError| SigningError::Crypto {
            what,
            reason: e.to_string(),
        }
    };
    let signer = SCHEME
        .create_signer()
        .map_err(crypto("generating a key pair"))?;
    let pair = signer
        .to_sigstore_keypair()
        .map_err(crypto("generating a key pair"))?;
    let lf = |what| move |reason: String| SigningError::Crypto { what, reason };
    let public_pem = pair
        .public_key_to_pem()
        .map_err(crypto("encoding the public key"))?;
    let public_pem = pem::normalize(&public_pem).map_err(lf("encoding the public key"))?;
    let private_pem = pair
        .private_key_to_encrypted_pem(password.as_bytes())
        .map_err(crypto("encrypting the private key"))?;
    let private_pem = pem::normalize(&private_pem).map_err(lf("encrypting the private key"))?;

    atomic::write(
        &files.private_key,
        private_pem.as_bytes(),
        0o600,
        Existing::Keep,
    )?;
    if let Err(e) = atomic::write(
        &files.public_key,
        public_pem.as_bytes(),
        0o644,
        Existing::Keep,
    ) {
        // Leave no private key without its public half.
        let _ = std::fs::remove_file(&files.private_key);
        return Err(e);
    }
    Ok(files)
}

/// The shape of the sealed private key inside the PEM block, checked before decryption: the
/// sigstore crate panics on a nonce of the wrong length instead of returning an error.
#[derive(Deserialize)]
struct SealedKey {
    kdf: SealedKdf,
    cipher: SealedCipher,
    #[allow(dead_code, reason = "only its presence is checked")]
    ciphertext: String,
}

#[derive(Deserialize)]
struct SealedKdf {
    name: String,
    params: ScryptParams,
}

#[derive(Deserialize)]
struct ScryptParams {
    #[serde(rename = "N")]
    n: u32,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct SealedCipher {
    name: String,
    nonce: String,
}

/// An ECDSA P-256 private key, ready to sign. `Debug` prints nothing of it.
pub struct SigningKey {
    signer: SigStoreSigner,
}

impl SigningKey {
    /// Reads and decrypts a cosign/sigstore encrypted private key.
    pub fn load(path: &Path, password: &Password) -> Result<Self, SigningError> {
        Self::load_with(path, || Ok(Password::new(password.0.as_str())))
    }

    /// Reads a cosign/sigstore encrypted private key, checks its format, and only then asks
    /// `password` for the password that decrypts it (so a wrong path fails before a prompt).
    pub fn load_with(
        path: &Path,
        password: impl FnOnce() -> Result<Password, SigningError>,
    ) -> Result<Self, SigningError> {
        let key_err = |reason: String| SigningError::Key {
            path: path.to_owned(),
            reason,
        };
        let text =
            Zeroizing::new(
                std::fs::read_to_string(path).map_err(|source| SigningError::Read {
                    path: path.to_owned(),
                    source,
                })?,
            );
        let (label, sealed) = pem::decode(&text).map_err(key_err)?;
        if label != SIGSTORE_PRIVATE_KEY_PEM_LABEL && label != COSIGN_PRIVATE_KEY_PEM_LABEL {
            return Err(key_err(format!(
                "a `{label}` PEM block, not an `{SIGSTORE_PRIVATE_KEY_PEM_LABEL}`"
            )));
        }
        check_sealed(&sealed).map_err(key_err)?;
        let password = password()?;
        let der = Zeroizing::new(kdf::decrypt(&sealed, password.as_bytes()).map_err(|_| {
            SigningError::WrongPassword {
                path: path.to_owned(),
            }
        })?);
        let pair = SigStoreKeyPair::from_der(&der)
            .map_err(|_| key_err("the decrypted key is not PKCS#8".to_owned()))?;
        let signer = pair
            .to_sigstore_signer(&SCHEME)
            .map_err(|_| key_err(ONLY_P256.to_owned()))?;
        Ok(Self { signer })
    }

    /// Signs `message`: ECDSA P-256 over its SHA-256, DER-encoded, as `cosign sign-blob` does.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SigningError> {
        self.signer.sign(message).map_err(|e| SigningError::Crypto {
            what: "signing",
            reason: e.to_string(),
        })
    }

    /// The matching public key.
    pub fn verifying_key(&self) -> Result<VerifyingKey, SigningError> {
        let key = self
            .signer
            .to_verification_key()
            .map_err(|e| SigningError::Crypto {
                what: "deriving the public key",
                reason: e.to_string(),
            })?;
        Ok(VerifyingKey {
            key,
            path: PathBuf::new(),
        })
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey([redacted])")
    }
}

fn check_sealed(sealed: &[u8]) -> Result<(), String> {
    let s: SealedKey = serde_json::from_slice(sealed)
        .map_err(|e| format!("the encrypted key is not in the sigstore format: {e}"))?;
    if s.kdf.name != kdf::NAME_SCRYPT || s.cipher.name != kdf::NAME_SECRET_BOX {
        return Err(format!(
            "unsupported encryption `{}`/`{}` (expected `{}`/`{}`)",
            s.kdf.name,
            s.cipher.name,
            kdf::NAME_SCRYPT,
            kdf::NAME_SECRET_BOX
        ));
    }
    let params = &s.kdf.params;
    if !matches!(params.n, kdf::SCRYPT_N_LOW | kdf::SCRYPT_N_HIGH)
        || params.r != kdf::SCRYPT_R
        || params.p != kdf::SCRYPT_P
    {
        return Err(format!(
            "unsupported scrypt parameters N={} r={} p={}",
            params.n, params.r, params.p
        ));
    }
    use base64::Engine as _;
    let nonce = base64::engine::general_purpose::STANDARD
        .decode(&s.cipher.nonce)
        .map_err(|_| "the encrypted key's nonce is not base64".to_owned())?;
    if nonce.len() != kdf::BOX_NONCE_SIZE as usize {
        return Err(format!(
            "the encrypted key's nonce is {} bytes, not {}",
            nonce.len(),
            kdf::BOX_NONCE_SIZE
        ));
    }
    Ok(())
}

/// An ECDSA P-256 public key (a cosign `.pub` file).
#[derive(Debug)]
pub struct VerifyingKey {
    key: CosignVerificationKey,
    path: PathBuf,
}

impl VerifyingKey {
    /// Reads a `PUBLIC KEY` PEM file.
    pub fn load(path: &Path) -> Result<Self, SigningError> {
        let key_err = |reason: String| SigningError::Key {
            path: path.to_owned(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|source| SigningError::Read {
            path: path.to_owned(),
            source,
        })?;
        let (label, der) = pem::decode(&text).map_err(key_err)?;
        if label != PUBLIC_KEY_PEM_LABEL {
            return Err(key_err(format!(
                "a `{label}` PEM block, not a `{PUBLIC_KEY_PEM_LABEL}`"
            )));
        }
        let key = CosignVerificationKey::try_from_der(&der)
            .map_err(|e| key_err(format!("not a public key: {e}")))?;
        if !matches!(key, CosignVerificationKey::ECDSA_P256_SHA256_ASN1(_)) {
            return Err(key_err(ONLY_P256.to_owned()));
        }
        Ok(Self {
            key,
            path: path.to_owned(),
        })
    }

    /// The file the key was read from (empty for a key derived from a private key).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether `signature` (DER ECDSA) is this key's signature over `message`.
    pub fn verify(&self, signature: &[u8], message: &[u8]) -> bool {
        self.key
            .verify_signature(Signature::Raw(signature), message)
            .is_ok()
    }
}
