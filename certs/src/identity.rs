//! Trust domains and the SPIFFE identities Gatehouse issues.

use std::fmt;
use std::str::FromStr;

use crate::error::CertsError;

/// The default trust domain of an installation.
pub const DEFAULT_TRUST_DOMAIN: &str = "gatehouse.local";

/// A SPIFFE trust domain (`spiffe://<trust-domain>/...`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustDomain(String);

impl TrustDomain {
    /// The trust domain as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for TrustDomain {
    fn default() -> Self {
        Self(DEFAULT_TRUST_DOMAIN.to_owned())
    }
}

impl FromStr for TrustDomain {
    type Err = CertsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: &str| CertsError::TrustDomain {
            input: s.to_owned(),
            reason: reason.to_owned(),
        };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s.len() > 255 {
            return Err(err("it is longer than 255 characters"));
        }
        // SPIFFE ID spec: the trust domain is lowercase letters, digits, dots, dashes and
        // underscores.
        if !s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
        {
            return Err(err("it contains a character outside `a-z0-9.-_`"));
        }
        Ok(Self(s.to_owned()))
    }
}

impl TryFrom<String> for TrustDomain {
    type Error = CertsError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<TrustDomain> for String {
    fn from(td: TrustDomain) -> Self {
        td.0
    }
}

impl fmt::Display for TrustDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A gateway (data-plane deployment), named like a Kubernetes object: `NAMESPACE/NAME`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GatewayName {
    namespace: String,
    name: String,
}

impl GatewayName {
    /// The gateway's namespace (a DNS-1123 label).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The gateway's name (a DNS-1123 subdomain).
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl FromStr for GatewayName {
    type Err = CertsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| CertsError::GatewayName {
            input: s.to_owned(),
            reason,
        };
        let Some((namespace, name)) = s.split_once('/') else {
            return Err(err("there is no `/` between namespace and name".to_owned()));
        };
        if name.contains('/') {
            return Err(err("it has more than one `/`".to_owned()));
        }
        check_dns_label(namespace).map_err(|r| err(format!("namespace {r}")))?;
        check_dns_subdomain(name).map_err(|r| err(format!("name {r}")))?;
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

impl fmt::Display for GatewayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// Checks a DNS-1123 label (Kubernetes namespace rules).
fn check_dns_label(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".to_owned());
    }
    if s.len() > 63 {
        return Err(format!("`{s}` is longer than 63 characters"));
    }
    let bytes = s.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if !bytes.iter().all(|b| alnum(b) || *b == b'-') {
        return Err(format!("`{s}` may contain only `a-z`, `0-9` and `-`"));
    }
    if !bytes.first().is_some_and(alnum) || !bytes.last().is_some_and(alnum) {
        return Err(format!("`{s}` must start and end with a letter or digit"));
    }
    Ok(())
}

/// Checks a DNS-1123 subdomain (Kubernetes object-name rules).
fn check_dns_subdomain(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("is empty".to_owned());
    }
    if s.len() > 253 {
        return Err(format!("`{s}` is longer than 253 characters"));
    }
    for label in s.split('.') {
        check_dns_label(label).map_err(|_| {
            format!("`{s}` must be lowercase DNS labels (`a-z`, `0-9`, `-`) separated by `.`")
        })?;
    }
    Ok(())
}

/// Checks a DNS name for a certificate SAN: a hostname or a `*.` wildcard.
pub(crate) fn check_dns_san(s: &str) -> Result<(), CertsError> {
    let bad = || CertsError::DnsName {
        input: s.to_owned(),
    };
    let rest = s.strip_prefix("*.").unwrap_or(s);
    if rest.is_empty() || rest.len() > 253 {
        return Err(bad());
    }
    for label in rest.split('.') {
        let b = label.as_bytes();
        let ok_char = |c: &u8| c.is_ascii_alphanumeric() || *c == b'-';
        if b.is_empty()
            || b.len() > 63
            || !b.iter().all(ok_char)
            || b.first() == Some(&b'-')
            || b.last() == Some(&b'-')
        {
            return Err(bad());
        }
    }
    Ok(())
}

/// The role of a workload identity, which decides its extended key usage.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The control plane's xDS server: EKU serverAuth.
    Server,
    /// A data-plane proxy connecting to the control plane: EKU clientAuth.
    Client,
}

/// A workload identity in a trust domain: what the URI SAN of a leaf certificate names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Identity {
    /// The control plane (`spiffe://TD/controller`).
    Controller,
    /// A gateway's proxies (`spiffe://TD/gateway/NAMESPACE/NAME`).
    Gateway(GatewayName),
}

impl Identity {
    /// The SPIFFE ID of this identity in `td`.
    pub fn spiffe_id(&self, td: &TrustDomain) -> String {
        match self {
            Self::Controller => format!("spiffe://{td}/controller"),
            Self::Gateway(gw) => format!("spiffe://{td}/gateway/{}/{}", gw.namespace, gw.name),
        }
    }

    /// The role (and so the EKU) of certificates for this identity.
    pub fn role(&self) -> Role {
        match self {
            Self::Controller => Role::Server,
            Self::Gateway(_) => Role::Client,
        }
    }

    /// Parses a SPIFFE ID issued in `td` back into an identity.
    pub fn from_spiffe_id(uri: &str, td: &TrustDomain) -> Result<Self, CertsError> {
        let err = |reason: String| CertsError::Identity {
            input: uri.to_owned(),
            reason,
        };
        let prefix = format!("spiffe://{td}/");
        let Some(path) = uri.strip_prefix(&prefix) else {
            return Err(err(format!("it is not in trust domain `{td}`")));
        };
        if path == "controller" {
            return Ok(Self::Controller);
        }
        if let Some(gw) = path.strip_prefix("gateway/") {
            return gw
                .parse()
                .map(Self::Gateway)
                .map_err(|e| err(e.to_string()));
        }
        Err(err(
            "the path is neither `controller` nor `gateway/NAMESPACE/NAME`".to_owned(),
        ))
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Controller => f.write_str("controller"),
            Self::Gateway(gw) => write!(f, "gateway {gw}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_names() {
        let gw: GatewayName = "edge/public".parse().unwrap();
        assert_eq!((gw.namespace(), gw.name()), ("edge", "public"));
        assert!("edge/api.v2".parse::<GatewayName>().is_ok());
        for bad in [
            "edge",
            "edge/",
            "/public",
            "a/b/c",
            "Edge/public",
            "edge/Public",
            "-edge/public",
            "edge/public-",
            "ed_ge/public",
        ] {
            let e = bad.parse::<GatewayName>().unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
            assert!(e.contains("NAMESPACE/NAME"), "{e}");
        }
        let long = format!("{}/x", "a".repeat(64));
        assert!(long.parse::<GatewayName>().is_err());
    }

    #[test]
    fn spiffe_ids_round_trip() {
        let td = TrustDomain::default();
        let gw = Identity::Gateway("edge/public".parse().unwrap());
        let id = gw.spiffe_id(&td);
        assert_eq!(id, "spiffe://gatehouse.local/gateway/edge/public");
        assert_eq!(Identity::from_spiffe_id(&id, &td).unwrap(), gw);
        assert_eq!(
            Identity::from_spiffe_id("spiffe://gatehouse.local/controller", &td).unwrap(),
            Identity::Controller
        );
        let other: TrustDomain = "other.example".parse().unwrap();
        assert!(Identity::from_spiffe_id(&id, &other).is_err());
        assert!(Identity::from_spiffe_id("spiffe://gatehouse.local/admin", &td).is_err());
    }

    #[test]
    fn trust_domains() {
        assert!("prod.example.com".parse::<TrustDomain>().is_ok());
        assert!("".parse::<TrustDomain>().is_err());
        assert!("Prod".parse::<TrustDomain>().is_err());
        assert!("a/b".parse::<TrustDomain>().is_err());
    }

    #[test]
    fn dns_sans() {
        assert!(check_dns_san("xds.gatehouse-system.svc").is_ok());
        assert!(check_dns_san("*.example.com").is_ok());
        assert!(check_dns_san("bad..name").is_err());
        assert!(check_dns_san("-x.com").is_err());
        assert!(check_dns_san("a b").is_err());
    }
}
