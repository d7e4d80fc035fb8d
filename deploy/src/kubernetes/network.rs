//! NetworkPolicies: deny everything in both namespaces, then allow only the flows the profile
//! needs.
//!
//! | from | to | port | why |
//! |---|---|---|---|
//! | anyone | Envoy | TCP 8080, 8443 | the data ports (the Service's 80 and 443) |
//! | Envoy pods of the gateway namespaces | controller | TCP 18000 | xDS over mTLS |
//! | controller | any address, or `--api-server-cidr` | TCP 443, 6443 | the Kubernetes API server |
//! | Envoy | kube-system's `k8s-app: kube-dns` pods | UDP/TCP 53 | resolving the controller's Service name (`STRICT_DNS` xDS cluster) |
//! | Envoy | pods of `--backend-namespace` namespaces | any | its backends; none by default |
//!
//! The kubelet's probes need no rule: NetworkPolicy always allows traffic between a pod and
//! its own node. The controller needs no DNS: its client reaches the API server by the
//! address in `KUBERNETES_SERVICE_HOST`.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::rbac::controller_labels;
use super::workloads::envoy_labels;
use super::{CONTROLLER, Checked, HTTP_PORT, HTTPS_PORT, Object, XDS_PORT, envoy_name, meta};
use crate::ProfileError;

/// The name of each namespace's deny-all policy.
pub(crate) const DEFAULT_DENY: &str = "default-deny";
/// The label every namespace carries with its own name (set by the API server).
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

fn labels_selector(labels: &[(&str, &str)]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        ),
        ..LabelSelector::default()
    }
}

fn pod_selector(labels: &BTreeMap<String, String>) -> LabelSelector {
    let pick = |key: &str| labels.get(key).map(String::as_str).unwrap_or_default();
    let mut keys = vec![("app.kubernetes.io/name", pick("app.kubernetes.io/name"))];
    if labels.contains_key("app.kubernetes.io/instance") {
        keys.push((
            "app.kubernetes.io/instance",
            pick("app.kubernetes.io/instance"),
        ));
    }
    labels_selector(&keys)
}

fn namespaces_selector(names: Vec<String>) -> LabelSelector {
    LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: NAMESPACE_NAME_LABEL.into(),
            operator: "In".into(),
            values: Some(names),
        }]),
        ..LabelSelector::default()
    }
}

fn ports(protocol: &str, numbers: &[u16]) -> Vec<NetworkPolicyPort> {
    numbers
        .iter()
        .map(|p| NetworkPolicyPort {
            port: Some(IntOrString::Int(i32::from(*p))),
            protocol: Some(protocol.into()),
            ..NetworkPolicyPort::default()
        })
        .collect()
}

fn policy_types() -> Option<Vec<String>> {
    Some(vec!["Ingress".into(), "Egress".into()])
}

/// Selects every pod of the namespace and allows nothing: whatever no other policy allows is
/// denied, in both directions.
fn default_deny(namespace: &str) -> NetworkPolicy {
    NetworkPolicy {
        metadata: meta(DEFAULT_DENY, Some(namespace), &BTreeMap::new()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector::default()),
            policy_types: policy_types(),
            ..NetworkPolicySpec::default()
        }),
    }
}

pub(super) fn objects(checked: &Checked<'_>) -> Result<Vec<Object>, ProfileError> {
    let cp = checked.params.namespace.as_str();
    let controller = controller_labels();
    let mut out = vec![Object::new(&default_deny(cp))?];

    let api_server_peers = if checked.api_server_cidrs.is_empty() {
        None
    } else {
        Some(
            checked
                .api_server_cidrs
                .iter()
                .map(|cidr| NetworkPolicyPeer {
                    ip_block: Some(IPBlock {
                        cidr: cidr.clone(),
                        ..IPBlock::default()
                    }),
                    ..NetworkPolicyPeer::default()
                })
                .collect(),
        )
    };
    out.push(Object::new(&NetworkPolicy {
        metadata: meta(CONTROLLER, Some(cp), &controller),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(pod_selector(&controller)),
            policy_types: policy_types(),
            // xDS, from the Envoy pods of the gateway namespaces only.
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespaces_selector(
                        checked.gateway_namespaces.keys().cloned().collect(),
                    )),
                    pod_selector: Some(labels_selector(&[(
                        "app.kubernetes.io/name",
                        "gatehouse-envoy",
                    )])),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(ports("TCP", &[XDS_PORT])),
            }]),
            // The API server. Its address is the cluster's; narrow it with
            // `--api-server-cidr`.
            egress: Some(vec![NetworkPolicyEgressRule {
                to: api_server_peers,
                ports: Some(ports("TCP", &[443, 6443])),
            }]),
        }),
    })?);

    for ns in checked.gateway_namespaces.keys() {
        out.push(Object::new(&default_deny(ns))?);
    }
    for gateway in &checked.gateways {
        let labels = envoy_labels(gateway);
        let mut egress = vec![
            // xDS to the controller pods.
            NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(labels_selector(&[(NAMESPACE_NAME_LABEL, cp)])),
                    pod_selector: Some(pod_selector(&controller)),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some(ports("TCP", &[XDS_PORT])),
            },
            // DNS: the xDS cluster is the controller's Service name, resolved by Envoy.
            NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(labels_selector(&[(
                        NAMESPACE_NAME_LABEL,
                        "kube-system",
                    )])),
                    pod_selector: Some(labels_selector(&[("k8s-app", "kube-dns")])),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: Some([ports("UDP", &[53]), ports("TCP", &[53])].concat()),
            },
        ];
        if !checked.backend_namespaces.is_empty() {
            egress.push(NetworkPolicyEgressRule {
                to: Some(vec![NetworkPolicyPeer {
                    namespace_selector: Some(namespaces_selector(
                        checked.backend_namespaces.clone(),
                    )),
                    ..NetworkPolicyPeer::default()
                }]),
                ports: None,
            });
        }
        out.push(Object::new(&NetworkPolicy {
            metadata: meta(&envoy_name(gateway), Some(gateway.namespace()), &labels),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(pod_selector(&labels)),
                policy_types: policy_types(),
                // Clients, from anywhere, on the data ports only.
                ingress: Some(vec![NetworkPolicyIngressRule {
                    from: None,
                    ports: Some(ports("TCP", &[HTTP_PORT, HTTPS_PORT])),
                }]),
                egress: Some(egress),
            }),
        })?);
    }
    Ok(out)
}
