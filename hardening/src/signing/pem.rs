//! The one-block PEM files of cosign keys: `-----BEGIN LABEL-----`, base64, `-----END LABEL-----`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Rewrites a one-block PEM text with LF line ends (the sigstore crate writes CRLF; cosign and
/// OpenSSL write LF).
pub(crate) fn normalize(text: &str) -> Result<String, String> {
    let (label, bytes) = decode(text)?;
    Ok(encode(&label, &bytes))
}

/// Decodes the first PEM block of `text`: its label and its bytes.
pub(crate) fn decode(text: &str) -> Result<(String, Vec<u8>), String> {
    let start = text
        .find("-----BEGIN ")
        .ok_or("no PEM block (`-----BEGIN ...-----`)")?;
    let rest = text.get(start + "-----BEGIN ".len()..).unwrap_or_default();
    let (label, rest) = rest.split_once("-----").ok_or("malformed PEM header")?;
    let end_marker = format!("-----END {label}-----");
    let (body, _) = rest
        .split_once(&end_marker)
        .ok_or_else(|| format!("no `{end_marker}` line"))?;
    let b64: String = body.split_ascii_whitespace().collect();
    let bytes = STANDARD
        .decode(b64)
        .map_err(|e| format!("PEM body is not base64: {e}"))?;
    Ok((label.to_owned(), bytes))
}

/// Encodes `der` as a PEM block with 64-character lines and LF line ends.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let der: Vec<u8> = (0..100).collect();
        let pem = encode("PUBLIC KEY", &der);
        assert_eq!(decode(&pem).unwrap(), ("PUBLIC KEY".to_owned(), der));
        assert!(decode("nothing").is_err());
        assert!(decode("-----BEGIN X-----\nAAAA\n").is_err());
        assert!(decode("-----BEGIN X-----\n!!!!\n-----END X-----\n").is_err());
    }
}
