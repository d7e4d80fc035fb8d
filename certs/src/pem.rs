//! PEM files read with line numbers, so a bad file is reported as `file line N: reason`.

use std::path::Path;

use base64::Engine as _;

use crate::error::CertsError;

/// One PEM block: its label (`CERTIFICATE`, `PRIVATE KEY`, ...), DER contents and the 1-based
/// line of its `-----BEGIN` marker.
#[derive(Clone)]
pub(crate) struct PemBlock {
    pub(crate) label: String,
    pub(crate) der: Vec<u8>,
    pub(crate) line: usize,
}

impl std::fmt::Debug for PemBlock {
    // Never print the contents: a block may be a private key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PemBlock")
            .field("label", &self.label)
            .field("line", &self.line)
            .field("len", &self.der.len())
            .finish()
    }
}

/// Parses every PEM block of `text`. Text outside blocks (comments, openssl's `Bag Attributes`)
/// is ignored; a block that is not terminated or whose body is not base64 is an error.
pub(crate) fn parse(path: &Path, text: &str) -> Result<Vec<PemBlock>, CertsError> {
    let err = |line: usize, reason: String| CertsError::Pem {
        path: path.to_owned(),
        line,
        reason,
    };
    let mut blocks = Vec::new();
    let mut open: Option<(String, usize, String)> = None;
    let mut last_line = 0;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        last_line = n;
        let line = raw.trim();
        if let Some(label) = marker(line, "-----BEGIN ") {
            if let Some((label, start, _)) = &open {
                return Err(err(
                    *start,
                    format!("`{label}` block has no END line before the next BEGIN at line {n}"),
                ));
            }
            open = Some((label.to_owned(), n, String::new()));
        } else if let Some(label) = marker(line, "-----END ") {
            let Some((begin_label, start, body)) = open.take() else {
                return Err(err(n, format!("END `{label}` without a BEGIN line")));
            };
            if begin_label != label {
                return Err(err(
                    n,
                    format!("END `{label}` does not match BEGIN `{begin_label}` at line {start}"),
                ));
            }
            let der = base64::engine::general_purpose::STANDARD
                .decode(body.as_bytes())
                .map_err(|e| {
                    err(
                        start,
                        format!("`{begin_label}` block is not valid base64: {e}"),
                    )
                })?;
            if der.is_empty() {
                return Err(err(start, format!("`{begin_label}` block is empty")));
            }
            blocks.push(PemBlock {
                label: begin_label,
                der,
                line: start,
            });
        } else if let Some((_, _, body)) = &mut open {
            // Encapsulated headers (RFC 1421 `Proc-Type:`) mean an encrypted legacy key.
            if line.contains(':') {
                return Err(err(
                    n,
                    "encrypted PEM blocks are not supported (decrypt the key first, e.g. `openssl pkcs8 -topk8 -nocrypt`)".to_owned(),
                ));
            }
            body.push_str(line);
        }
    }
    if let Some((label, start, _)) = open {
        return Err(err(
            start,
            format!(
                "`{label}` block has no END line (the file ends at line {last_line}; is it truncated?)"
            ),
        ));
    }
    if blocks.is_empty() {
        return Err(err(
            last_line.max(1),
            "no PEM block found (expected `-----BEGIN CERTIFICATE-----` or a private key)"
                .to_owned(),
        ));
    }
    Ok(blocks)
}

fn marker<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    line.strip_prefix(prefix)?.strip_suffix("-----")
}

/// Reads a file as UTF-8 text.
pub(crate) fn read_text(path: &Path) -> Result<String, CertsError> {
    let bytes = std::fs::read(path).map_err(|source| CertsError::Read {
        path: path.to_owned(),
        source,
    })?;
    String::from_utf8(bytes).map_err(|e| CertsError::Pem {
        path: path.to_owned(),
        line: 1 + e
            .as_bytes()
            .get(..e.utf8_error().valid_up_to())
            .map_or(0, |b| b.iter().filter(|c| **c == b'\n').count()),
        reason: "the file is not text (is it DER? convert it with `openssl x509 -inform der`)"
            .to_owned(),
    })
}

/// Encodes DER as a PEM block.
pub(crate) fn encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<PemBlock>, CertsError> {
        parse(Path::new("f.pem"), text)
    }

    #[test]
    fn round_trip_with_lines() {
        let text = format!(
            "# comment\n{}{}",
            encode("CERTIFICATE", b"abc"),
            encode("PRIVATE KEY", b"k")
        );
        let blocks = p(&text).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(
            (blocks[0].label.as_str(), blocks[0].line),
            ("CERTIFICATE", 2)
        );
        assert_eq!(blocks[0].der, b"abc");
        assert_eq!(
            (blocks[1].label.as_str(), blocks[1].line),
            ("PRIVATE KEY", 5)
        );
        assert!(!format!("{:?}", blocks[1]).contains("107"));
    }

    #[test]
    fn errors_name_the_line() {
        let truncated = "x\n-----BEGIN CERTIFICATE-----\nAAAA\n";
        let e = p(truncated).unwrap_err().to_string();
        assert!(e.starts_with("`f.pem` line 2:"), "{e}");
        assert!(e.contains("no END line"), "{e}");

        let bad64 = "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        let e = p(bad64).unwrap_err().to_string();
        assert!(
            e.contains("line 1") && e.contains("not valid base64"),
            "{e}"
        );

        let e = p("hello\nworld\n").unwrap_err().to_string();
        assert!(e.contains("no PEM block"), "{e}");

        let mismatch = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(p(mismatch).unwrap_err().to_string().contains("line 3"));
    }
}
