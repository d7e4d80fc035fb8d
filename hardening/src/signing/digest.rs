//! SHA-256 and SHA-512 of files, streamed, and their hex and `ALG:HEX` forms.

use std::fmt;
use std::io::Read as _;
use std::path::Path;
use std::str::FromStr;

use aws_lc_rs::digest::{self, Context, SHA256, SHA512};

use super::error::SigningError;

/// A digest of an artifact, tagged with its algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Digest {
    /// SHA-256.
    Sha256([u8; 32]),
    /// SHA-512.
    Sha512([u8; 64]),
}

impl Digest {
    /// The algorithm's name as in-toto and `sha256sum` spell it: `sha256` or `sha512`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            Self::Sha256(_) => "sha256",
            Self::Sha512(_) => "sha512",
        }
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Sha256(d) => d,
            Self::Sha512(d) => d,
        }
    }

    /// The digest in lowercase hex.
    pub fn to_hex(&self) -> String {
        hex(self.as_bytes())
    }

    /// Parses `HEX` as a digest of the algorithm named `algorithm` (`sha256` or `sha512`).
    /// Returns `None` for any other algorithm or a value of the wrong length.
    pub fn from_hex(algorithm: &str, value: &str) -> Option<Self> {
        let bytes = unhex(value)?;
        match algorithm {
            "sha256" => bytes.try_into().ok().map(Self::Sha256),
            "sha512" => bytes.try_into().ok().map(Self::Sha512),
            _ => None,
        }
    }
}

/// `sha256:HEX`
impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm(), self.to_hex())
    }
}

/// Parses `sha256:HEX` or `sha512:HEX`.
impl FromStr for Digest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, value) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not `sha256:HEX` or `sha512:HEX`"))?;
        Self::from_hex(alg, value).ok_or_else(|| {
            format!("`{s}` is not `sha256:HEX` (64 hex digits) or `sha512:HEX` (128 hex digits)")
        })
    }
}

/// The SHA-256 and SHA-512 of a file, computed in one read.
pub(crate) fn file_digests(path: &Path) -> Result<(Digest, Digest), SigningError> {
    let mut sha256 = Context::new(&SHA256);
    let mut sha512 = Context::new(&SHA512);
    hash_file(path, |chunk| {
        sha256.update(chunk);
        sha512.update(chunk);
    })?;
    Ok((
        Digest::Sha256(to_array(sha256.finish().as_ref())),
        Digest::Sha512(to_array(sha512.finish().as_ref())),
    ))
}

/// The SHA-256 of a file.
pub(crate) fn sha256_file(path: &Path) -> Result<[u8; 32], SigningError> {
    let mut ctx = Context::new(&SHA256);
    hash_file(path, |chunk| ctx.update(chunk))?;
    Ok(to_array(ctx.finish().as_ref()))
}

/// The SHA-256 of bytes.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    to_array(digest::digest(&SHA256, data).as_ref())
}

fn hash_file(path: &Path, mut update: impl FnMut(&[u8])) -> Result<(), SigningError> {
    let read_err = |source| SigningError::Read {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(read_err)?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file.read(&mut buf).map_err(read_err)?;
        match buf.get(..n) {
            Some([]) | None => return Ok(()),
            Some(chunk) => update(chunk),
        }
    }
}

/// Copies a digest output into a fixed-size array (the lengths always match the algorithm).
fn to_array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    for (o, b) in out.iter_mut().zip(bytes) {
        *o = *b;
    }
    out
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Decodes hex (either case); `None` if it is not an even number of hex digits.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.as_bytes()
        .chunks(2)
        .map(|pair| {
            let text = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(text, 16).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_digest_parsing() {
        assert_eq!(hex(&[0, 0xab, 0xff]), "00abff");
        assert_eq!(unhex("00ABff"), Some(vec![0, 0xab, 0xff]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        let d: Digest = format!("sha256:{}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(d, Digest::Sha256([0xab; 32]));
        assert_eq!(d.to_string(), format!("sha256:{}", "ab".repeat(32)));
        assert!("sha256:abcd".parse::<Digest>().is_err());
        assert!(
            format!("md5:{}", "ab".repeat(16))
                .parse::<Digest>()
                .is_err()
        );
    }

    #[test]
    fn file_digests_match_known_values() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        let (s256, s512) = file_digests(&p).unwrap();
        assert_eq!(
            s256.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(s512.to_hex().starts_with("ddaf35a193617aba"));
        assert_eq!(sha256_file(&p).unwrap().to_vec(), s256.as_bytes());
    }
}
