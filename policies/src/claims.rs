//! Claims: what one configuration object asks for, one Cedar request each. The control plane
//! builds them from its own model (this crate knows nothing of it) and computes the derived
//! facts they carry.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The effective authentication of a route on a listener (the Gateway's policy merged with
/// the route's).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AuthnFacts {
    /// A JWT is required.
    pub jwt: bool,
    /// HTTP basic authentication is required.
    pub basic_auth: bool,
    /// An external authorization service decides.
    pub ext_auth: bool,
    /// The listener requires a client certificate.
    pub client_certificate: bool,
    /// Only allowed source addresses get through.
    pub ip_allow_list: bool,
    /// The route dropped the authentication of its Gateway.
    pub disabled: bool,
    /// The issuers of the JWT providers.
    pub jwt_issuers: BTreeSet<String>,
}

impl AuthnFacts {
    /// Whether any authentication applies.
    pub fn authenticated(&self) -> bool {
        self.jwt || self.basic_auth || self.ext_auth || self.client_certificate
    }
}

/// The route making a claim.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct RouteFacts {
    /// `HTTPRoute` or `GRPCRoute`.
    pub kind: String,
    /// Its namespace (the principal of every claim it makes).
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The hostnames it serves on the listener (`*` for every host).
    pub hostnames: Vec<String>,
    /// Its effective authentication on the listener.
    pub authn: AuthnFacts,
}

/// The listener a claim is made on.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct ListenerFacts {
    /// The Gateway's namespace.
    pub gateway_namespace: String,
    /// The Gateway's name.
    pub gateway_name: String,
    /// The Gateway's labels.
    pub gateway_labels: BTreeMap<String, String>,
    /// The listener (section) name.
    pub name: String,
    /// Port.
    pub port: u16,
    /// `HTTP` or `HTTPS`.
    pub protocol: String,
    /// The listener's hostname, if any.
    pub hostname: Option<String>,
    /// Derived: reachable from outside (see [`is_public`]).
    pub public: bool,
}

impl Default for ListenerFacts {
    fn default() -> Self {
        Self {
            gateway_namespace: "default".into(),
            gateway_name: "gateway".into(),
            gateway_labels: BTreeMap::new(),
            name: "http".into(),
            port: 80,
            protocol: "HTTP".into(),
            hostname: None,
            public: true,
        }
    }
}

/// The label that marks a Gateway (all its listeners) as internal.
pub const EXPOSURE_LABEL: &str = "gatehouse.dev/exposure";

/// Whether a Gateway with these labels is public: it is unless labelled
/// `gatehouse.dev/exposure: internal`. Public is the safe default: forgetting the label makes
/// the guardrails for public listeners apply, not disappear.
pub fn is_public(gateway_labels: &BTreeMap<String, String>) -> bool {
    gateway_labels.get(EXPOSURE_LABEL).map(String::as_str) != Some("internal")
}

impl ListenerFacts {
    /// `NAMESPACE/GATEWAY/LISTENER`.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.gateway_namespace, self.gateway_name, self.name
        )
    }
}

/// A route on a listener: what every claim of that attachment shares.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Attachment {
    /// The route.
    pub route: RouteFacts,
    /// The listener.
    pub listener: ListenerFacts,
}

/// A path match.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct PathFacts {
    /// `Exact`, `PathPrefix` or `RegularExpression`.
    pub match_type: String,
    /// The path or expression.
    pub value: String,
}

impl Default for PathFacts {
    fn default() -> Self {
        Self {
            match_type: "PathPrefix".into(),
            value: "/".into(),
        }
    }
}

/// The SecurityPolicy a setting comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct SourceFacts {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// It targets the Gateway (the route inherits the setting).
    pub from_gateway: bool,
}

/// A backend reference.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct BackendFacts {
    /// API group (`""` for core).
    pub group: String,
    /// Kind (`Service`, `Backend`).
    pub kind: String,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Port (none: 0).
    pub port: Option<u16>,
}

/// A JWT provider.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct JwtProviderFacts {
    /// Name.
    pub name: String,
    /// The required issuer, if pinned.
    pub issuer: Option<String>,
    /// The accepted audiences.
    pub audiences: Vec<String>,
    /// The JWKS URI, when keys are fetched.
    pub jwks_uri: Option<String>,
}

/// What is claimed: one Cedar action each.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase", deny_unknown_fields)]
pub enum ClaimKind {
    /// The route attaches to the listener.
    AttachRoute,
    /// The route serves `hostname` on the listener.
    #[serde(rename_all = "camelCase")]
    ClaimHostname {
        /// Exact, `*.` wildcard, or `*` (every host).
        hostname: String,
    },
    /// The route exposes a path (one match).
    #[serde(rename_all = "camelCase")]
    ExposePath {
        /// The path match.
        #[serde(default)]
        path: PathFacts,
        /// The method matched, if any.
        #[serde(default)]
        method: Option<String>,
        /// How many header matches narrow it.
        #[serde(default)]
        header_matches: usize,
    },
    /// The route drops its Gateway's authentication for a path.
    #[serde(rename_all = "camelCase")]
    DisableAuthn {
        /// The path.
        #[serde(default)]
        path: PathFacts,
        /// What it would have inherited.
        #[serde(default)]
        inherited: AuthnFacts,
    },
    /// The route refers to a backend.
    #[serde(rename_all = "camelCase")]
    ReferenceBackend {
        /// The backend.
        #[serde(default)]
        backend: BackendFacts,
        /// A ReferenceGrant allows it (cross-namespace).
        #[serde(default)]
        reference_grant: bool,
        /// It is a mirror target.
        #[serde(default)]
        mirror: bool,
    },
    /// The route requires a JWT from a provider.
    #[serde(rename_all = "camelCase")]
    UseJwtProvider {
        /// Where the setting comes from.
        #[serde(default)]
        source: SourceFacts,
        /// The provider.
        #[serde(default)]
        provider: JwtProviderFacts,
    },
    /// The listener requires client certificates.
    #[serde(rename_all = "camelCase")]
    RequireClientCertificate {
        /// Where the setting comes from.
        #[serde(default)]
        source: SourceFacts,
        /// How many CA references validate clients.
        #[serde(default)]
        ca_certificates: usize,
        /// SANs a client certificate must carry (one of).
        #[serde(default)]
        required_sans: Vec<String>,
    },
    /// An external service authorizes requests.
    #[serde(rename_all = "camelCase")]
    UseExtAuth {
        /// Where the setting comes from.
        #[serde(default)]
        source: SourceFacts,
        /// Whether a failing authorizer lets requests through.
        #[serde(default)]
        fail_open: bool,
        /// Per-check timeout, in milliseconds.
        #[serde(default)]
        timeout_ms: u64,
        /// `NAMESPACE/NAME` of its backend.
        #[serde(default)]
        backend: String,
    },
    /// Source address rules.
    #[serde(rename_all = "camelCase")]
    SetIpRules {
        /// Allowed CIDRs.
        #[serde(default)]
        allow: Vec<String>,
        /// Denied CIDRs.
        #[serde(default)]
        deny: Vec<String>,
    },
    /// CORS.
    #[serde(rename_all = "camelCase")]
    ConfigureCors {
        /// Allowed origins.
        #[serde(default)]
        allow_origins: Vec<String>,
        /// Credentials allowed.
        #[serde(default)]
        allow_credentials: bool,
        /// Allowed methods.
        #[serde(default)]
        allow_methods: Vec<String>,
        /// Allowed request headers.
        #[serde(default)]
        allow_headers: Vec<String>,
    },
    /// HTTP basic authentication.
    #[serde(rename_all = "camelCase")]
    UseBasicAuth {
        /// Where the setting comes from.
        #[serde(default)]
        source: SourceFacts,
    },
}

impl ClaimKind {
    /// The Cedar action's name.
    pub fn action(&self) -> &'static str {
        match self {
            Self::AttachRoute => "attachRoute",
            Self::ClaimHostname { .. } => "claimHostname",
            Self::ExposePath { .. } => "exposePath",
            Self::DisableAuthn { .. } => "disableAuthn",
            Self::ReferenceBackend { .. } => "referenceBackend",
            Self::UseJwtProvider { .. } => "useJwtProvider",
            Self::RequireClientCertificate { .. } => "requireClientCertificate",
            Self::UseExtAuth { .. } => "useExtAuth",
            Self::SetIpRules { .. } => "setIpRules",
            Self::ConfigureCors { .. } => "configureCors",
            Self::UseBasicAuth { .. } => "useBasicAuth",
        }
    }
}

/// One claim: a route on a listener, and what it asks for. As JSON or YAML:
/// `{route: {...}, listener: {...}, claim: {action: exposePath, path: {...}}}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// The route and listener.
    #[serde(flatten)]
    pub attachment: Arc<Attachment>,
    /// What is claimed.
    #[serde(rename = "claim")]
    pub kind: ClaimKind,
}

impl Claim {
    /// The principal's namespace.
    pub fn namespace(&self) -> &str {
        &self.attachment.route.namespace
    }
}

fn path(p: &PathFacts) -> String {
    match p.match_type.as_str() {
        "Exact" => format!("`{}` (exact)", p.value),
        "RegularExpression" => format!("`{}` (regular expression)", p.value),
        _ => format!("`{}`", p.value),
    }
}

impl fmt::Display for Claim {
    /// For people: `exposePath `/admin` on listener quickstart/edge/http (public)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.attachment.listener;
        let on = format!(
            "on listener {} ({})",
            l.id(),
            if l.public { "public" } else { "internal" }
        );
        let what = match &self.kind {
            ClaimKind::AttachRoute => String::new(),
            ClaimKind::ClaimHostname { hostname } => format!(" `{hostname}`"),
            ClaimKind::ExposePath {
                path: p, method, ..
            } => format!(
                " {}{}",
                path(p),
                method
                    .as_deref()
                    .map(|m| format!(" {m}"))
                    .unwrap_or_default()
            ),
            ClaimKind::DisableAuthn { path: p, .. } => format!(" for {}", path(p)),
            ClaimKind::ReferenceBackend {
                backend, mirror, ..
            } => format!(
                " {}{} `{}/{}`",
                if *mirror { "(mirror) " } else { "" },
                backend.kind,
                backend.namespace,
                backend.name
            ),
            ClaimKind::UseJwtProvider { provider, .. } => format!(
                " `{}` (issuer {}, audiences [{}])",
                provider.name,
                provider.issuer.as_deref().unwrap_or("not pinned"),
                provider.audiences.join(", ")
            ),
            ClaimKind::RequireClientCertificate { .. } => String::new(),
            ClaimKind::UseExtAuth {
                backend, fail_open, ..
            } => format!(" `{backend}` (failOpen {fail_open})"),
            ClaimKind::SetIpRules { allow, deny } => {
                format!(" allow [{}] deny [{}]", allow.join(", "), deny.join(", "))
            }
            ClaimKind::ConfigureCors {
                allow_origins,
                allow_credentials,
                ..
            } => format!(
                " origins [{}], credentials {allow_credentials}",
                allow_origins.join(", ")
            ),
            ClaimKind::UseBasicAuth { .. } => String::new(),
        };
        write!(f, "{}{what} {on}", self.kind.action())
    }
}

/// Data the policies judge claims against, kept apart from the policies so that exempting a
/// namespace never means editing a policy.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct AdmissionData {
    /// Namespace → tenant. A namespace not listed is its own tenant.
    pub tenants: BTreeMap<String, String>,
    /// Policy id → the namespaces exempted from it (members of `Exemption::"<policy-id>"`).
    pub exemptions: BTreeMap<String, BTreeSet<String>>,
}

impl AdmissionData {
    /// The tenant of `namespace`.
    pub fn tenant<'a>(&'a self, namespace: &'a str) -> &'a str {
        self.tenants
            .get(namespace)
            .map_or(namespace, String::as_str)
    }
}
