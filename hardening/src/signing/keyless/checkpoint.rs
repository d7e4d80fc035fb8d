//! Checkpoints: the signed tree heads of a transparency log, in the signed-note format
//! (c2sp.org/tlog-checkpoint, c2sp.org/signed-note).
//!
//! ```text
//! rekor.sigstore.dev - 1193050959916656506      origin
//! 1139201557                                    tree size
//! 5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXs=  root hash, base64
//!                                               blank line
//! — rekor.sigstore.dev wNI9ajBFAiEA…            — NAME base64(key id (4 bytes) || signature)
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::TransparencyError;
use super::merkle::Hash;
use super::trust::LogKey;

/// At most this many signature lines are read (c2sp.org/signed-note asks for at least 16).
const MAX_SIGNATURES: usize = 64;

/// A parsed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's origin line.
    pub origin: String,
    /// The size of the tree the root hash is for.
    pub tree_size: u64,
    /// The root hash.
    pub root_hash: Hash,
    /// The signed text: every line up to the blank line, each ending in a newline.
    pub note: String,
    /// The signature lines.
    pub signatures: Vec<NoteSignature>,
}

/// One signature line of a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteSignature {
    /// The key name.
    pub name: String,
    /// The 4-byte key id that starts the decoded signature.
    pub key_id: [u8; 4],
    /// The signature proper.
    pub signature: Vec<u8>,
}

impl Checkpoint {
    /// Parses a checkpoint envelope.
    pub fn parse(envelope: &str) -> Result<Self, TransparencyError> {
        let bad = |why: String| TransparencyError::CheckpointMalformed(why);
        if envelope.chars().any(|c| c.is_ascii_control() && c != '\n') {
            return Err(bad("it holds control characters".to_owned()));
        }
        // The text ends at the last blank line; the signatures follow.
        let split = envelope
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line between the text and the signatures".to_owned()))?;
        let note = envelope.get(..=split).unwrap_or_default();
        let signature_block = envelope.get(split + 2..).unwrap_or_default();

        let mut lines = note.lines();
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("no origin line".to_owned()))?;
        let size_line = lines
            .next()
            .ok_or_else(|| bad("no tree size line".to_owned()))?;
        let tree_size = parse_decimal(size_line)
            .ok_or_else(|| bad(format!("tree size `{size_line}` is not a decimal number")))?;
        let root_line = lines
            .next()
            .ok_or_else(|| bad("no root hash line".to_owned()))?;
        let root_hash: Hash = STANDARD
            .decode(root_line)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or_else(|| bad(format!("root hash `{root_line}` is not 32 bytes of base64")))?;

        if !signature_block.ends_with('\n') {
            return Err(bad(
                "the last signature line does not end in a newline".to_owned()
            ));
        }
        let signatures = signature_block
            .lines()
            .take(MAX_SIGNATURES + 1)
            .map(|line| parse_signature_line(line).map_err(bad))
            .collect::<Result<Vec<_>, _>>()?;
        if signatures.is_empty() {
            return Err(bad("no signature lines".to_owned()));
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(bad(format!("more than {MAX_SIGNATURES} signatures")));
        }
        Ok(Self {
            origin: origin.to_owned(),
            tree_size,
            root_hash,
            note: note.to_owned(),
            signatures,
        })
    }

    /// Checks that the log `key` signed this checkpoint. Signature lines by other keys are
    /// ignored; one by the log key that does not verify fails the whole checkpoint; at least
    /// one must verify.
    pub fn verify(&self, key: &LogKey) -> Result<(), TransparencyError> {
        let name = note_key_name(&key.base_url);
        let key_id = key.note_key_id(name);
        let mut verified = false;
        for sig in &self.signatures {
            if sig.name != name || sig.key_id != key_id {
                continue;
            }
            if !key.verify(self.note.as_bytes(), &sig.signature) {
                return Err(TransparencyError::CheckpointSignature {
                    name: sig.name.clone(),
                });
            }
            verified = true;
        }
        if verified {
            Ok(())
        } else {
            Err(TransparencyError::NoLogSignature {
                key_hint: format!("{name} {}", super::super::digest::hex(&key_id)),
            })
        }
    }
}

/// The key name a log signs its checkpoints with: its base URL without the scheme
/// (`https://rekor.sigstore.dev` signs as `rekor.sigstore.dev`).
fn note_key_name(base_url: &str) -> &str {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    rest.trim_end_matches('/')
}

/// `— NAME BASE64`
fn parse_signature_line(line: &str) -> Result<NoteSignature, String> {
    let rest = line
        .strip_prefix("\u{2014} ")
        .ok_or_else(|| format!("signature line `{line}` does not start with `— `"))?;
    let (name, b64) = rest
        .split_once(' ')
        .ok_or_else(|| format!("signature line `{line}` is not `— NAME SIGNATURE`"))?;
    if name.is_empty() || name.contains('+') || b64.contains(' ') {
        return Err(format!("signature line `{line}` is not `— NAME SIGNATURE`"));
    }
    let raw = STANDARD
        .decode(b64)
        .map_err(|_| format!("the signature by `{name}` is not base64"))?;
    match raw.as_slice() {
        [a, b, c, d, signature @ ..] if !signature.is_empty() => Ok(NoteSignature {
            name: name.to_owned(),
            key_id: [*a, *b, *c, *d],
            signature: signature.to_vec(),
        }),
        _ => Err(format!("the signature by `{name}` is too short")),
    }
}

/// A decimal number without sign or leading zeros.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CP: &str = "rekor.sigstore.dev - 1193050959916656506\n1139201557\n5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXs=\n\n\u{2014} rekor.sigstore.dev wNI9ajBFAiEA2ZtI6/Od0hQZ45WjHDtg7dzPOX6athjTQU9CwYBPClICIHaNmJ9dVWyL4pa8Za4VKB96uqFLjvMVsI7vOZl4Vq81\n";

    #[test]
    fn parses_a_rekor_checkpoint() {
        let cp = Checkpoint::parse(CP).unwrap();
        assert_eq!(cp.origin, "rekor.sigstore.dev - 1193050959916656506");
        assert_eq!(cp.tree_size, 1139201557);
        assert_eq!(
            cp.note,
            "rekor.sigstore.dev - 1193050959916656506\n1139201557\n5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXs=\n"
        );
        assert_eq!(cp.signatures.len(), 1);
        assert_eq!(cp.signatures[0].name, "rekor.sigstore.dev");
        assert_eq!(cp.signatures[0].key_id, [0xc0, 0xd2, 0x3d, 0x6a]);
        assert_eq!(
            note_key_name("https://rekor.sigstore.dev/"),
            "rekor.sigstore.dev"
        );
    }

    #[test]
    fn refuses_malformed_checkpoints() {
        for bad in [
            CP.replace("\n\n", "\n"),
            CP.replace("1139201557", "01139201557"),
            CP.replace("1139201557", "-1"),
            CP.replace("5TL0Mxvnr3yIzxCbPpqTBgL43oHrw/9aGPCWOwBEnXs=", "5TL0"),
            CP.replace('\u{2014}', "-"),
            CP.trim_end().to_owned(),
            CP.replace("wNI9ajBF", "wNI9!jBF"),
            CP.replace("\n\n", "\n\t\n"),
            format!("{}\n\u{2014} x AAAA\n", CP.trim_end()),
        ] {
            assert!(
                matches!(
                    Checkpoint::parse(&bad),
                    Err(TransparencyError::CheckpointMalformed(_))
                ),
                "{bad:?}"
            );
        }
    }
}
