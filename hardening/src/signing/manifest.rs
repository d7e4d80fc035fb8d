//! Signed directory manifests: `DIR/SHA256SUMS` lists the SHA-256 of every regular file under
//! `DIR` (`sha256sum` format, sorted by path), and `DIR/SHA256SUMS.sig` signs it.
//!
//! Verification reports what it finds as [`Finding`]s with stable ids, so that `gatehouse
//! verify` can merge them with its other checks:
//!
//! | id | meaning |
//! |---|---|
//! | `SIG-001` | the manifest or its signature is missing, malformed or does not verify |
//! | `SIG-002` | a listed file changed (digest mismatch, or it is no longer a regular file) |
//! | `SIG-003` | a listed file is missing |
//! | `SIG-004` | a file is present but not listed |
//!
//! When `SIG-001` is reported nothing else is: an unverified manifest says nothing about the
//! files.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};

use super::blob;
use super::digest::{hex, sha256_file, unhex};
use super::error::SigningError;
use super::keys::{SigningKey, VerifyingKey};

/// The manifest's file name, at the top of the signed directory.
pub const MANIFEST_FILE: &str = "SHA256SUMS";
/// The manifest signature's file name, beside the manifest.
pub const MANIFEST_SIGNATURE_FILE: &str = "SHA256SUMS.sig";

/// The stable id of a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub enum FindingId {
    /// `SIG-001`: the manifest or its signature is missing, malformed or does not verify.
    #[serde(rename = "SIG-001")]
    BadManifestSignature,
    /// `SIG-002`: a listed file changed.
    #[serde(rename = "SIG-002")]
    FileChanged,
    /// `SIG-003`: a listed file is missing.
    #[serde(rename = "SIG-003")]
    FileMissing,
    /// `SIG-004`: a file is present but not listed.
    #[serde(rename = "SIG-004")]
    FileNotListed,
}

impl FindingId {
    /// The id as printed: `SIG-001` …
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadManifestSignature => "SIG-001",
            Self::FileChanged => "SIG-002",
            Self::FileMissing => "SIG-003",
            Self::FileNotListed => "SIG-004",
        }
    }
}

impl fmt::Display for FindingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem found verifying a signed directory.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// What kind of problem.
    pub id: FindingId,
    /// The file concerned, relative to the directory, `/`-separated.
    pub path: String,
    /// What is wrong, in one lowercase sentence.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.id, self.path, self.message)
    }
}

/// What [`sign_dir`] wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SignedManifest {
    /// `DIR/SHA256SUMS`.
    pub manifest: PathBuf,
    /// `DIR/SHA256SUMS.sig`.
    pub signature: PathBuf,
    /// How many files the manifest lists.
    pub files: usize,
}

/// Writes `DIR/SHA256SUMS` for every regular file under `dir` (except the manifest and its
/// signature), then signs it into `DIR/SHA256SUMS.sig`. Both are replaced atomically.
///
/// Symbolic links and other non-regular files are refused rather than skipped: a manifest
/// that silently left them out would let them change unnoticed.
pub fn sign_dir(dir: &Path, key: &SigningKey) -> Result<SignedManifest, SigningError> {
    let mut lines = String::new();
    let mut files = 0;
    for (rel, kind) in walk(dir)? {
        let rel = match (kind, rel) {
            (Kind::File, Name::Valid(rel)) => rel,
            (Kind::File, Name::Invalid(lossy)) => {
                return Err(SigningError::Unsignable {
                    path: dir.join(lossy),
                    reason: "its name is not UTF-8 or holds a newline or backslash, which a manifest line cannot carry".to_owned(),
                });
            }
            (Kind::Symlink, name) => {
                return Err(SigningError::Unsignable {
                    path: dir.join(name.display()),
                    reason: "it is a symbolic link; a manifest covers regular files only (replace the link by the file)".to_owned(),
                });
            }
            (Kind::Other, name) => {
                return Err(SigningError::Unsignable {
                    path: dir.join(name.display()),
                    reason: "it is not a regular file".to_owned(),
                });
            }
        };
        let digest = sha256_file(&dir.join(&rel))?;
        lines.push_str(&format!("{}  {rel}\n", hex(&digest)));
        files += 1;
    }
    let manifest = dir.join(MANIFEST_FILE);
    super::atomic::write(
        &manifest,
        lines.as_bytes(),
        0o644,
        super::atomic::Existing::Replace,
    )?;
    let signature = blob::sign_file(key, &manifest)?;
    Ok(SignedManifest {
        manifest,
        signature,
        files,
    })
}

/// Verifies the manifest of `dir` with `key`, then every file against it. An empty list means
/// the directory is exactly what was signed. Errors are reserved for what stops the check
/// (an unreadable directory or file).
pub fn verify_dir(dir: &Path, key: &VerifyingKey) -> Result<Vec<Finding>, SigningError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let signature_path = dir.join(MANIFEST_SIGNATURE_FILE);
    let bad = |path: &str, message: String| {
        Ok(vec![Finding {
            id: FindingId::BadManifestSignature,
            path: path.to_owned(),
            message,
        }])
    };
    let manifest = match std::fs::read(&manifest_path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return bad(MANIFEST_FILE, "the manifest is missing".to_owned());
        }
        Err(source) => {
            return Err(SigningError::Read {
                path: manifest_path,
                source,
            });
        }
    };
    if !signature_path.exists() {
        return bad(
            MANIFEST_SIGNATURE_FILE,
            "the manifest signature is missing".to_owned(),
        );
    }
    let signature = match blob::read_signature(&signature_path) {
        Ok(s) => s,
        Err(SigningError::SignatureFormat { reason, .. }) => {
            return bad(
                MANIFEST_SIGNATURE_FILE,
                format!("the manifest signature is {reason}"),
            );
        }
        Err(e) => return Err(e),
    };
    if !key.verify(&signature, &manifest) {
        return bad(
            MANIFEST_FILE,
            format!(
                "the manifest signature does not verify with `{}`: the manifest or its signature was changed, or another key signed them",
                key.path().display()
            ),
        );
    }
    let listed = match parse_manifest(&manifest) {
        Ok(l) => l,
        Err(reason) => return bad(MANIFEST_FILE, reason),
    };

    let present: BTreeMap<String, Kind> = walk(dir)?
        .into_iter()
        .map(|(name, kind)| (name.display(), kind))
        .collect();
    let mut findings = Vec::new();
    for (rel, expected) in &listed {
        let finding = |id, message| Finding {
            id,
            path: rel.clone(),
            message,
        };
        match present.get(rel) {
            None => findings.push(finding(
                FindingId::FileMissing,
                "listed in the manifest but missing".to_owned(),
            )),
            Some(Kind::File) => {
                let actual = sha256_file(&dir.join(rel))?;
                if actual != *expected {
                    findings.push(finding(
                        FindingId::FileChanged,
                        format!(
                            "changed: its sha256 is {}, the manifest says {}",
                            hex(&actual),
                            hex(expected)
                        ),
                    ));
                }
            }
            Some(Kind::Symlink | Kind::Other) => findings.push(finding(
                FindingId::FileChanged,
                "changed: it is no longer a regular file".to_owned(),
            )),
        }
    }
    for (rel, kind) in &present {
        if !listed.contains_key(rel) {
            findings.push(Finding {
                id: FindingId::FileNotListed,
                path: rel.clone(),
                message: match kind {
                    Kind::File => "present but not listed in the manifest".to_owned(),
                    Kind::Symlink => {
                        "a symbolic link, present but not listed in the manifest".to_owned()
                    }
                    Kind::Other => {
                        "a special file, present but not listed in the manifest".to_owned()
                    }
                },
            });
        }
    }
    findings.sort_by(|a, b| (a.id, &a.path).cmp(&(b.id, &b.path)));
    Ok(findings)
}

/// Parses `sha256sum` lines: 64 hex digits, two spaces, a relative path.
fn parse_manifest(text: &[u8]) -> Result<BTreeMap<String, [u8; 32]>, String> {
    let text =
        std::str::from_utf8(text).map_err(|_| "the manifest is not UTF-8 text".to_owned())?;
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let malformed = |why: &str| format!("manifest line {} is malformed: {why}", n + 1);
        let (digest, path) = line
            .split_once("  ")
            .ok_or_else(|| malformed("expected `SHA256  PATH`"))?;
        let digest: [u8; 32] = unhex(digest)
            .and_then(|d| d.try_into().ok())
            .ok_or_else(|| malformed("the digest is not 64 hex digits"))?;
        if !is_plain_relative(path) {
            return Err(malformed(&format!(
                "`{path}` is not a plain relative path inside the directory"
            )));
        }
        if out.insert(path.to_owned(), digest).is_some() {
            return Err(malformed(&format!("`{path}` is listed twice")));
        }
    }
    Ok(out)
}

/// `a/b/c`: no root, no `.` or `..`, no empty component, and not the manifest itself.
fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.ends_with('/')
        && !path.contains("//")
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && path != MANIFEST_FILE
        && path != MANIFEST_SIGNATURE_FILE
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    File,
    Symlink,
    Other,
}

/// A path relative to the directory, `/`-separated, if a manifest line can carry it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Name {
    Valid(String),
    /// Not UTF-8, or holding a newline, carriage return or backslash (lossy form kept for
    /// messages).
    Invalid(String),
}

impl Name {
    fn display(&self) -> String {
        match self {
            Self::Valid(s) | Self::Invalid(s) => s.clone(),
        }
    }
}

/// Every non-directory entry under `dir`, sorted by path, without following symbolic links.
/// The manifest and its signature at the top are left out.
fn walk(dir: &Path) -> Result<Vec<(Name, Kind)>, SigningError> {
    let read_err = |path: &Path| {
        let path = path.to_owned();
        move |source| SigningError::Read { path, source }
    };
    let mut out = Vec::new();
    // (directory, its path relative to `dir`, whether that path can go in a manifest line)
    let mut stack = vec![(dir.to_owned(), Vec::<String>::new(), true)];
    while let Some((abs, prefix, prefix_valid)) = stack.pop() {
        for entry in std::fs::read_dir(&abs).map_err(read_err(&abs))? {
            let entry = entry.map_err(read_err(&abs))?;
            let file_type = entry.file_type().map_err(read_err(&entry.path()))?;
            let raw = entry.file_name();
            let (component, valid) = match raw.to_str() {
                Some(s) => (
                    s.to_owned(),
                    prefix_valid && !s.contains(['\n', '\r', '\\']),
                ),
                None => (raw.to_string_lossy().into_owned(), false),
            };
            let mut components = prefix.clone();
            components.push(component);
            if file_type.is_dir() {
                stack.push((entry.path(), components, valid));
                continue;
            }
            let rel = components.join("/");
            if prefix.is_empty() && (rel == MANIFEST_FILE || rel == MANIFEST_SIGNATURE_FILE) {
                continue;
            }
            let kind = if file_type.is_file() {
                Kind::File
            } else if file_type.is_symlink() {
                Kind::Symlink
            } else {
                Kind::Other
            };
            let name = if valid {
                Name::Valid(rel)
            } else {
                Name::Invalid(rel)
            };
            out.push((name, kind));
        }
    }
    out.sort_by_key(|(name, _)| name.display());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths_must_stay_inside() {
        for ok in ["a", "a/b.yaml", ".hidden", "dir/.x"] {
            assert!(is_plain_relative(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../b",
            "./a",
            "a//b",
            "a/",
            "SHA256SUMS",
        ] {
            assert!(!is_plain_relative(bad), "{bad}");
        }
    }

    #[test]
    fn parse_rejects_malformed_lines() {
        let d = "ab".repeat(32);
        assert_eq!(
            parse_manifest(format!("{d}  a\n{d}  b/c\n").as_bytes())
                .unwrap()
                .len(),
            2
        );
        for bad in [
            format!("{d} a\n"),
            format!("{d}  a\n{d}  a\n"),
            "abcd  a\n".to_owned(),
            format!("{d}  ../a\n"),
        ] {
            assert!(parse_manifest(bad.as_bytes()).is_err(), "{bad}");
        }
    }
}
