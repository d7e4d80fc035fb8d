//! ServiceAccounts and RBAC: the controller's least-privilege roles, and Envoy's accounts that
//! are bound to nothing.
//!
//! What the controller may do, and nothing else (see `docs/profiles.md`, "RBAC"):
//!
//! | where | rule |
//! |---|---|
//! | cluster (ClusterRole) | list/watch Gateway API objects; patch their `/status` |
//! | cluster (ClusterRole) | list/watch Services, Namespaces, EndpointSlices |
//! | cluster (ClusterRole) | list/watch our CRDs; patch their `/status` |
//! | its own namespace (Role) | Leases: create; get/update of its own Lease only |
//! | each gateway namespace (Role) | Secrets: list/watch; create; patch of the xDS client certificate Secrets only |
//!
//! These are exactly the requests `serve --source kubernetes` makes: `tests/kube_rbac.rs`
//! records every request of the Kubernetes-mode scenarios and checks both ways (each request is
//! granted; each grant is used).
//!
//! No wildcard anywhere, no Secret outside the gateway namespaces, no write to any object's
//! spec, no pods, no exec, no bindings, no escalate/bind/impersonate, no CSR, no webhooks.
//! Envoy's ServiceAccounts are bound to no role at all.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::{CONTROLLER, Checked, LEASE, Object, envoy_name, meta, xds_secret_name};
use crate::ProfileError;

/// The leader-election Role and RoleBinding in the control plane's namespace.
const LEADER_ELECTION: &str = "gatehouse-controller-leader-election";

/// What a watch needs: the initial (and every re-) list, then the watch. No `get`: the
/// controller reads only through its watches.
const READ: [&str; 2] = ["list", "watch"];

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(groups.iter().map(|s| (*s).to_owned()).collect()),
        resources: Some(resources.iter().map(|s| (*s).to_owned()).collect()),
        verbs: verbs.iter().map(|s| (*s).to_owned()).collect(),
        ..PolicyRule::default()
    }
}

fn named(mut rule: PolicyRule, names: Vec<String>) -> PolicyRule {
    rule.resource_names = Some(names);
    rule
}

/// The controller's cluster-wide rules. Every one is read-only or status-only, except Events.
pub(crate) fn controller_cluster_rules() -> Vec<PolicyRule> {
    vec![
        // The Gateway API objects it translates. Read-only: the controller never writes a
        // route or a gateway's spec (dangerous-RBAC row 19 is about writing them).
        rule(
            &["gateway.networking.k8s.io"],
            &[
                "gatewayclasses",
                "gateways",
                "grpcroutes",
                "httproutes",
                "referencegrants",
            ],
            &READ,
        ),
        // Their status (Accepted, ResolvedRefs, Programmed). ReferenceGrant has no status
        // subresource, so none is granted for it. Status only: `gateways/status` is not
        // `services/status` (row 18), nothing routes traffic by a Gateway's status.
        rule(
            &["gateway.networking.k8s.io"],
            &[
                "gatewayclasses/status",
                "gateways/status",
                "grpcroutes/status",
                "httproutes/status",
            ],
            &["patch"],
        ),
        // Backends of routes (Services and their EndpointSlices) and namespace labels for
        // `allowedRoutes.namespaces.selector`. Read-only (rows 19 and 21 are about writes).
        rule(&[""], &["namespaces", "services"], &READ),
        rule(&["discovery.k8s.io"], &["endpointslices"], &READ),
        // Our own CRDs: Backend, SecurityPolicy, GatewayPolicy.
        rule(
            &["gatehouse.dev"],
            &["backends", "gatewaypolicies", "securitypolicies"],
            &READ,
        ),
        rule(
            &["gatehouse.dev"],
            &[
                "backends/status",
                "gatewaypolicies/status",
                "securitypolicies/status",
            ],
            &["patch"],
        ),
    ]
}

/// Leader election, in the controller's own namespace only.
pub(crate) fn leader_election_rules() -> Vec<PolicyRule> {
    vec![
        // `create` cannot be limited by name: Kubernetes authorizes a create before the
        // object's name is known to the authorizer, so `resourceNames` never matches it.
        rule(&["coordination.k8s.io"], &["leases"], &["create"]),
        // Reading and renewing its own Lease, by name.
        named(
            rule(&["coordination.k8s.io"], &["leases"], &["get", "update"]),
            vec![LEASE.to_owned()],
        ),
    ]
}

/// The controller's rules in one gateway namespace.
///
/// Dangerous-RBAC rows 3 (reading Secrets) and 13 (writing Secrets) are granted here, and only
/// here, because the controller must:
/// - read listener TLS certificates (`kubernetes.io/tls` Secrets named by the Gateways'
///   `certificateRefs`) to serve them to Envoy over SDS. Their names are chosen by whoever
///   writes the Gateway, at run time, so this rule cannot name them: no `resourceNames`.
///   `list`/`watch` could be limited by name only for requests that carry a
///   `metadata.name` field selector for that one name, which is not how a controller watches
///   a namespace's Secrets;
/// - write each gateway's xDS client certificate Secret (the key Envoy authenticates with).
///   `update` and `patch` are limited to those Secrets by name; `create` cannot be (see
///   [`leader_election_rules`]).
pub(crate) fn gateway_namespace_rules(xds_secrets: Vec<String>) -> Vec<PolicyRule> {
    vec![
        rule(&[""], &["secrets"], &READ),
        rule(&[""], &["secrets"], &["create"]),
        named(rule(&[""], &["secrets"], &["patch"]), xds_secrets),
    ]
}

fn controller_subject(namespace: &str) -> Subject {
    Subject {
        kind: "ServiceAccount".into(),
        name: CONTROLLER.into(),
        namespace: Some(namespace.to_owned()),
        ..Subject::default()
    }
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: kind.into(),
        name: name.into(),
    }
}

pub(crate) fn controller_labels() -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), CONTROLLER.into()),
        ("app.kubernetes.io/component".into(), "control-plane".into()),
    ])
}

pub(super) fn objects(checked: &Checked<'_>) -> Result<Vec<Object>, ProfileError> {
    let cp = checked.params.namespace.as_str();
    let labels = controller_labels();
    let mut out = Vec::new();

    // The controller's account. Its token is not automounted: the pod mounts a projected,
    // expiring token into the controller container only (see workloads).
    out.push(Object::new(&ServiceAccount {
        metadata: meta(CONTROLLER, Some(cp), &labels),
        automount_service_account_token: Some(false),
        ..ServiceAccount::default()
    })?);
    // One account per gateway, bound to no role, with no token.
    for gateway in &checked.gateways {
        out.push(Object::new(&ServiceAccount {
            metadata: meta(
                &envoy_name(gateway),
                Some(gateway.namespace()),
                &super::workloads::envoy_labels(gateway),
            ),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        })?);
    }

    out.push(Object::new(&ClusterRole {
        metadata: meta(CONTROLLER, None, &labels),
        rules: Some(controller_cluster_rules()),
        ..ClusterRole::default()
    })?);
    out.push(Object::new(&ClusterRoleBinding {
        metadata: meta(CONTROLLER, None, &labels),
        role_ref: role_ref("ClusterRole", CONTROLLER),
        subjects: Some(vec![controller_subject(cp)]),
    })?);

    out.push(Object::new(&Role {
        metadata: meta(LEADER_ELECTION, Some(cp), &labels),
        rules: Some(leader_election_rules()),
    })?);
    out.push(Object::new(&RoleBinding {
        metadata: meta(LEADER_ELECTION, Some(cp), &labels),
        role_ref: role_ref("Role", LEADER_ELECTION),
        subjects: Some(vec![controller_subject(cp)]),
    })?);

    for (ns, gateways) in &checked.gateway_namespaces {
        let secrets = gateways.iter().map(xds_secret_name).collect();
        out.push(Object::new(&Role {
            metadata: meta(CONTROLLER, Some(ns), &labels),
            rules: Some(gateway_namespace_rules(secrets)),
        })?);
        out.push(Object::new(&RoleBinding {
            metadata: meta(CONTROLLER, Some(ns), &labels),
            role_ref: role_ref("Role", CONTROLLER),
            subjects: Some(vec![controller_subject(cp)]),
        })?);
    }
    Ok(out)
}
