//! The CustomResourceDefinitions of Gatehouse's own kinds, generated from the same spec types
//! the configuration is read into (kube's derive), so the YAML schema is exact.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{CustomResource, CustomResourceExt as _};
use serde::{Deserialize, Serialize};

use super::gatehouse::{BackendSpec, SecurityPolicySpec};
use super::gateway_policy::GatewayPolicySpec;

/// The status Gatehouse writes on its own kinds (the `status` subresource): conditions the
/// Kubernetes way.
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GatehouseStatus {
    /// `Accepted` (with `Invalid` when the spec cannot be used), with `observedGeneration`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<StatusCondition>,
}

/// One condition (the shape of `metav1.Condition`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusCondition {
    /// The condition's type, e.g. `Accepted`.
    #[serde(rename = "type")]
    pub condition_type: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// A CamelCase reason.
    pub reason: String,
    /// For people.
    pub message: String,
    /// The generation the condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// When the status last changed (RFC 3339).
    pub last_transition_time: String,
}

/// `gatehouse.dev/v1alpha1 Backend`.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "Backend",
    root = "BackendResource",
    status = "GatehouseStatus",
    namespaced
)]
pub struct BackendResourceSpec {
    /// The spec.
    #[serde(flatten)]
    pub spec: BackendSpec,
}

/// `gatehouse.dev/v1alpha1 SecurityPolicy`.
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "SecurityPolicy",
    root = "SecurityPolicyResource",
    status = "GatehouseStatus",
    namespaced
)]
pub struct SecurityPolicyResourceSpec {
    /// The spec.
    #[serde(flatten)]
    pub spec: SecurityPolicySpec,
}

/// `gatehouse.dev/v1alpha1 GatewayPolicy` (cluster-scoped).
#[derive(CustomResource, Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "GatewayPolicy",
    root = "GatewayPolicyResource",
    status = "GatehouseStatus"
)]
pub struct GatewayPolicyResourceSpec {
    /// The spec.
    #[serde(flatten)]
    pub spec: GatewayPolicySpec,
}

/// Every CRD of Gatehouse, in a stable order.
pub fn crds() -> Vec<CustomResourceDefinition> {
    vec![
        BackendResource::crd(),
        SecurityPolicyResource::crd(),
        GatewayPolicyResource::crd(),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn crds_carry_the_spec_schema() {
        let crds = super::crds();
        assert_eq!(crds.len(), 3);
        assert_eq!(crds[2].spec.scope, "Cluster");
        let yaml = serde_json::to_string(&crds[1]).unwrap();
        assert!(
            yaml.contains("ipAllow")
                && yaml.contains("targetRefs")
                && yaml.contains("disableInheritedAuthentication")
        );
        assert_eq!(crds[0].spec.group, "gatehouse.dev");
    }
}
