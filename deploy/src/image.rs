//! Container image references pinned by digest.
//!
//! Every image of a profile is pinned by its `sha256` digest, so that what runs is exactly what
//! was reviewed: a tag can be moved, a digest cannot. The defaults here are **placeholders**
//! (an all-zero digest) because no digest of the images could be verified when this was
//! written: `gatehouse install` refuses them, and an operator overrides them with
//! `--image-envoy` and `--image-controller`.

use std::fmt;
use std::str::FromStr;

use crate::ProfileError;

/// The all-zero digest of the placeholder defaults.
pub const PLACEHOLDER_DIGEST: &str =
    "0000000000000000000000000000000000000000000000000000000000000000";

/// The default Envoy image: the distroless Envoy 1.40.0 image (uid 65532, no shell), with a
/// **placeholder digest** that must be overridden (`--image-envoy`) before installing.
pub const DEFAULT_ENVOY_IMAGE: &str = "docker.io/envoyproxy/envoy:distroless-v1.40.0@sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// The default controller image, with a **placeholder digest** that must be overridden
/// (`--image-controller`) before installing. Its entrypoint is the `gatehouse` binary.
pub const DEFAULT_CONTROLLER_IMAGE: &str = concat!(
    "ghcr.io/gatehouse-dev/gatehouse:",
    env!("CARGO_PKG_VERSION"),
    "@sha256:0000000000000000000000000000000000000000000000000000000000000000"
);

/// An image reference with a `sha256` digest: `REPOSITORY[:TAG]@sha256:HEX`.
///
/// The tag, when present, is informational (the runtime pulls by digest).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ImageRef {
    repository: String,
    tag: Option<String>,
    digest: String,
}

impl ImageRef {
    /// The repository, e.g. `docker.io/envoyproxy/envoy`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest's 64 hex digits (without `sha256:`).
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Whether the digest is the all-zero placeholder of the defaults.
    pub fn is_placeholder(&self) -> bool {
        self.digest == PLACEHOLDER_DIGEST
    }

    /// The default Envoy image (placeholder digest).
    pub fn default_envoy() -> Self {
        Self::parse_const(DEFAULT_ENVOY_IMAGE)
    }

    /// The default controller image (placeholder digest).
    pub fn default_controller() -> Self {
        Self::parse_const(DEFAULT_CONTROLLER_IMAGE)
    }

    /// Parses one of our constants, which the tests prove valid.
    fn parse_const(s: &str) -> Self {
        s.parse().unwrap_or_else(|_| Self {
            repository: s.to_owned(),
            tag: None,
            digest: PLACEHOLDER_DIGEST.to_owned(),
        })
    }
}

impl FromStr for ImageRef {
    type Err = ProfileError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| ProfileError::Image {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        let Some((name, digest)) = s.split_once('@') else {
            return Err(err(
                "it has no digest: pin the image by digest, not by tag alone",
            ));
        };
        let Some(hex) = digest.strip_prefix("sha256:") else {
            return Err(err("the digest does not start with `sha256:`"));
        };
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(err(
                "the digest is not 64 lowercase hexadecimal digits after `sha256:`",
            ));
        }
        // A tag is after the last `:` that follows the last `/` (a registry may have a port).
        let last_slash = name.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = match name.get(last_slash..).and_then(|last| last.rfind(':')) {
            Some(colon) => {
                let at = last_slash + colon;
                (
                    name.get(..at).unwrap_or_default(),
                    name.get(at + 1..).map(str::to_owned),
                )
            }
            None => (name, None),
        };
        if repository.is_empty() {
            return Err(err("the repository is empty"));
        }
        let repo_ok = repository
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/:".contains(&b))
            && !repository.starts_with('/')
            && !repository.ends_with('/')
            && !repository.contains("//");
        if !repo_ok {
            return Err(err(
                "the repository may contain only lowercase letters, digits and `._-/` (and a registry `:PORT`)",
            ));
        }
        if let Some(tag) = &tag {
            let tag_ok = !tag.is_empty()
                && tag.len() <= 128
                && tag
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !tag.starts_with(['.', '-']);
            if !tag_ok {
                return Err(err(
                    "the tag must be 1 to 128 letters, digits, `_`, `.` or `-`, not starting with `.` or `-`",
                ));
            }
        }
        Ok(Self {
            repository: repository.to_owned(),
            tag,
            digest: hex.to_owned(),
        })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        write!(f, "@sha256:{}", self.digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse_and_are_placeholders() {
        for (text, image) in [
            (DEFAULT_ENVOY_IMAGE, ImageRef::default_envoy()),
            (DEFAULT_CONTROLLER_IMAGE, ImageRef::default_controller()),
        ] {
            let parsed: ImageRef = text.parse().unwrap();
            assert_eq!(parsed, image);
            assert!(image.is_placeholder());
            assert_eq!(image.to_string(), text);
        }
        assert_eq!(
            ImageRef::default_envoy().repository(),
            "docker.io/envoyproxy/envoy"
        );
        assert_eq!(ImageRef::default_envoy().tag(), Some("distroless-v1.40.0"));
    }

    #[test]
    fn references_round_trip() {
        let d = "a".repeat(64);
        for ok in [
            format!("envoy@sha256:{d}"),
            format!("registry.local:5000/team/envoy@sha256:{d}"),
            format!("registry.local:5000/team/envoy:v1.40.0@sha256:{d}"),
        ] {
            let image: ImageRef = ok.parse().unwrap();
            assert_eq!(image.to_string(), ok);
            assert!(!image.is_placeholder());
        }
        let image: ImageRef = format!("registry.local:5000/envoy@sha256:{d}")
            .parse()
            .unwrap();
        assert_eq!(image.repository(), "registry.local:5000/envoy");
        assert_eq!(image.tag(), None);
    }

    #[test]
    fn bad_references_say_why() {
        let d = "a".repeat(64);
        for (input, reason) in [
            ("envoyproxy/envoy:v1.40.0".to_owned(), "no digest"),
            (format!("envoy@sha512:{d}"), "`sha256:`"),
            ("envoy@sha256:abc".to_owned(), "64 lowercase"),
            (format!("envoy@sha256:{}", "A".repeat(64)), "64 lowercase"),
            (format!("@sha256:{d}"), "repository is empty"),
            (format!("Envoy@sha256:{d}"), "lowercase letters"),
            (format!("envoy:@sha256:{d}"), "the tag must be"),
            (format!("envoy:-x@sha256:{d}"), "the tag must be"),
        ] {
            let e = input.parse::<ImageRef>().unwrap_err().to_string();
            assert!(e.starts_with(&format!("invalid image `{input}`: ")), "{e}");
            assert!(e.contains(reason), "{input}: {e}");
        }
    }
}
