//! Gatehouse's own resources (`gatehouse.dev/v1alpha1`): `Backend` and `SecurityPolicy`.

use serde::Deserialize;

use super::gateway_api::BackendObjectReference;
use super::meta::ObjectMeta;

/// `Backend`: static endpoints (file mode), optionally reached over TLS.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Hash)]
pub struct Backend {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: BackendSpec,
}

/// `Backend.spec`.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendSpec {
    /// The endpoints.
    pub endpoints: Vec<BackendEndpoint>,
    /// Upstream TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<BackendTls>,
}

/// One endpoint.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendEndpoint {
    /// IP address (file mode resolves no names).
    pub address: String,
    /// Port.
    pub port: u16,
}

/// Upstream TLS to a backend.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendTls {
    /// Secrets (or ConfigMaps) holding `ca.crt` to verify the backend with.
    #[serde(default)]
    pub ca_certificate_refs: Vec<LocalRef>,
    /// SNI and the name the backend's certificate must carry.
    pub sni: String,
}

/// A reference to an object in the same namespace.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LocalRef {
    /// Kind (default `Secret`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
}

/// `SecurityPolicy`: authentication and authorization attached to a Gateway (optionally one
/// listener) or an HTTPRoute.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Hash)]
pub struct SecurityPolicy {
    /// Metadata.
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: SecurityPolicySpec,
}

/// `SecurityPolicy.spec`.
#[derive(
    Clone, Debug, Default, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SecurityPolicySpec {
    /// What the policy applies to (same namespace).
    pub target_refs: Vec<PolicyTargetRef>,
    /// JWT authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwt: Option<JwtAuth>,
    /// Client certificates on the listener (targets a Gateway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_certificate: Option<ClientCertificate>,
    /// External authorization over gRPC. Always fails closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext_auth: Option<ExtAuth>,
    /// Source addresses allowed (CIDRs); all others get 403.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_allow: Vec<String>,
    /// Source addresses denied (CIDRs) with 403.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_deny: Vec<String>,
    /// CORS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<Cors>,
    /// HTTP basic authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic_auth: Option<BasicAuth>,
    /// On a route: drop the authentication inherited from the Gateway (JWT, basic auth,
    /// extAuth). Admission policies decide who may do this.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_inherited_authentication: bool,
}

/// A policy target.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyTargetRef {
    /// Group (`gateway.networking.k8s.io`).
    pub group: String,
    /// `Gateway` or `HTTPRoute`.
    pub kind: String,
    /// Name.
    pub name: String,
    /// A Gateway listener name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section_name: Option<String>,
}

/// JWT authentication.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtAuth {
    /// Accepted providers; a request needs a valid token from one of them.
    pub providers: Vec<JwtProvider>,
}

/// A JWT provider.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtProvider {
    /// Name.
    pub name: String,
    /// Required `iss`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer: Option<String>,
    /// Accepted `aud` values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audiences: Vec<String>,
    /// Keys inline (a JWKS document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_jwks: Option<String>,
    /// Keys fetched from a JWKS endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_jwks: Option<RemoteJwks>,
    /// Claims copied into request headers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claim_to_headers: Vec<ClaimToHeader>,
}

/// A JWKS endpoint.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RemoteJwks {
    /// The URI.
    pub uri: String,
    /// The backend serving it.
    pub backend_ref: BackendRefSchema,
}

/// A claim copied to a header.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClaimToHeader {
    /// Claim name.
    pub claim: String,
    /// Header name.
    pub header: String,
}

/// Listener client-certificate validation.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCertificate {
    /// Secrets holding `ca.crt`.
    pub ca_certificate_refs: Vec<LocalRef>,
    /// If set, the client certificate must carry one of these SANs (exact).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required_sans: Vec<String>,
}

/// External authorization.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtAuth {
    /// The gRPC authorization service.
    pub backend_ref: BackendRefSchema,
    /// Per-check timeout (default `1s`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Must be `false` when set: Gatehouse never fails open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_open: Option<bool>,
}

/// A backend reference in our CRDs' schema.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BackendRefSchema {
    /// Group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name.
    pub name: String,
    /// Namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

impl BackendRefSchema {
    /// As a Gateway API backend reference.
    pub fn object_ref(&self) -> BackendObjectReference {
        BackendObjectReference {
            group: self.group.clone(),
            kind: self.kind.clone(),
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            port: self.port,
        }
    }
}

/// CORS.
#[derive(
    Clone, Debug, Default, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Cors {
    /// Allowed origins (exact, or `*`).
    #[serde(default)]
    pub allow_origins: Vec<String>,
    /// Allowed methods.
    #[serde(default)]
    pub allow_methods: Vec<String>,
    /// Allowed request headers.
    #[serde(default)]
    pub allow_headers: Vec<String>,
    /// Exposed response headers.
    #[serde(default)]
    pub expose_headers: Vec<String>,
    /// Preflight cache lifetime (e.g. `1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<String>,
    /// Whether credentials are allowed.
    #[serde(default)]
    pub allow_credentials: bool,
}

/// Basic authentication.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BasicAuth {
    /// A Secret with an `.htpasswd` key (SHA1 `{SHA}` entries, as Envoy requires).
    pub users: LocalRef,
}
