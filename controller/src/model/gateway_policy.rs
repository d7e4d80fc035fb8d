//! `gatehouse.dev/v1alpha1 GatewayPolicy` (cluster-scoped): Cedar admission policies, the
//! enforcement of those that do not say, and the data policies judge with (exemptions,
//! tenants). In file mode, `*.cedar` files of the configuration directory are read too.

use serde::Deserialize;

use super::meta::ObjectMeta;

/// `GatewayPolicy`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq, Hash)]
pub struct GatewayPolicy {
    /// Metadata (the namespace is ignored: the object is cluster-scoped).
    pub metadata: ObjectMeta,
    /// Spec.
    pub spec: GatewayPolicySpec,
}

/// `GatewayPolicy.spec`.
#[derive(
    Clone, Debug, Default, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayPolicySpec {
    /// Cedar policies (each with `@id`, and `@message`, `@enforcement` as needed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<String>,
    /// `deny` (the default), `warn` or `dryrun`: the enforcement of these policies when they
    /// carry no `@enforcement`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enforcement: Option<String>,
    /// Namespaces exempted from a policy: they become members of `Exemption::"<policy>"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exemptions: Vec<PolicyExemption>,
    /// Tenants: groups of namespaces (`Tenant::"<name>"`). A namespace in none is its own
    /// tenant.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<TenantSpec>,
}

/// An exemption.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyExemption {
    /// The policy id (`@id`).
    pub policy: String,
    /// The namespaces exempted.
    pub namespaces: Vec<String>,
    /// Why (for the audit trail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A tenant.
#[derive(
    Clone, Debug, Deserialize, PartialEq, Eq, Hash, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TenantSpec {
    /// The tenant's name.
    pub name: String,
    /// Its namespaces.
    pub namespaces: Vec<String>,
}
