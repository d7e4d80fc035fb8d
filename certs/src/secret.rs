//! Private key material that cannot be printed by accident.

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

/// A PKCS#8 private key. `Debug` prints nothing of it, and the bytes are zeroed on drop.
pub struct SecretKey(zeroize::Zeroizing<Vec<u8>>);

impl SecretKey {
    /// Wraps PKCS#8 DER.
    pub fn from_pkcs8(der: Vec<u8>) -> Self {
        Self(zeroize::Zeroizing::new(der))
    }

    /// The key as a `PRIVATE KEY` PEM block, for writing to a 0600 file. Never log it.
    pub fn to_pem(&self) -> zeroize::Zeroizing<String> {
        zeroize::Zeroizing::new(crate::pem::encode("PRIVATE KEY", &self.0))
    }

    /// The key for rustls.
    pub fn to_rustls(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.0.to_vec()))
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_redacts() {
        let k = super::SecretKey::from_pkcs8(vec![0x42; 8]);
        assert_eq!(format!("{k:?}"), "SecretKey([redacted])");
    }
}
