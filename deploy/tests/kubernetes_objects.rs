//! Checks on the rendered objects of the hardened profile themselves: Pod Security, RBAC,
//! accounts and tokens, workloads, network policies, and refused parameters.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use gatehouse_deploy::kubernetes::{self, Object, Stage};
use gatehouse_deploy::{HardenedParams, hardened_objects, render_hardened};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::{Value, json};
use support::{find, of_kind, pod_spec, rule_resources, strings};

fn default_objects() -> Vec<Object> {
    hardened_objects(&HardenedParams::default(), &[]).unwrap()
}

/// Three gateways over two namespaces, backends and API server ranges.
fn wide_params() -> HardenedParams {
    let mut p = HardenedParams::default();
    p.gateways = vec![
        "edge/public".parse().unwrap(),
        "edge/internal".parse().unwrap(),
        "partners/api".parse().unwrap(),
    ];
    p.backend_namespaces = vec!["shop".into(), "blog".into()];
    p.api_server_cidrs = vec!["10.0.0.1/32".into()];
    p
}

fn every_variant() -> Vec<Vec<Object>> {
    vec![
        default_objects(),
        hardened_objects(&wide_params(), &[]).unwrap(),
    ]
}

fn rbac_rules(objects: &[Object]) -> Vec<(&Object, &Value)> {
    objects
        .iter()
        .filter(|o| o.kind == "ClusterRole" || o.kind == "Role")
        .flat_map(|o| {
            o.value["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |r| (o, r))
        })
        .collect()
}

#[test]
fn both_namespaces_enforce_pod_security_restricted_at_a_pinned_version() {
    for objects in every_variant() {
        let namespaces = of_kind(&objects, "Namespace");
        let names: BTreeSet<&str> = namespaces.iter().map(|n| n.name.as_str()).collect();
        assert!(names.contains("gatehouse-system"), "{names:?}");
        for ns in &namespaces {
            let labels = &ns.value["metadata"]["labels"];
            for mode in ["enforce", "audit", "warn"] {
                assert_eq!(
                    labels[format!("pod-security.kubernetes.io/{mode}")],
                    "restricted",
                    "{}",
                    ns.name
                );
            }
            assert_eq!(
                labels["pod-security.kubernetes.io/enforce-version"],
                kubernetes::KUBERNETES_VERSION
            );
        }
        // Every namespaced object is in one of them: none in default or kube-system.
        for o in &objects {
            if let Some(ns) = &o.namespace {
                assert!(names.contains(ns.as_str()), "{} is in {ns}", o.id());
            }
        }
    }
}

#[test]
fn control_plane_and_gateways_are_in_separate_namespaces() {
    for objects in every_variant() {
        let controller = find(
            &objects,
            "Deployment",
            Some("gatehouse-system"),
            "gatehouse-controller",
        );
        assert_eq!(controller.namespace.as_deref(), Some("gatehouse-system"));
        let envoys: Vec<&Object> = of_kind(&objects, "Deployment")
            .into_iter()
            .filter(|d| d.name.starts_with("gatehouse-envoy-"))
            .collect();
        assert!(!envoys.is_empty());
        for e in envoys {
            assert_ne!(
                e.namespace.as_deref(),
                Some("gatehouse-system"),
                "{}",
                e.id()
            );
        }
    }
}

#[test]
fn no_rbac_rule_has_a_wildcard_or_a_non_resource_url() {
    for objects in every_variant() {
        for (role, rule) in rbac_rules(&objects) {
            for field in ["apiGroups", "resources", "verbs", "resourceNames"] {
                assert!(
                    !strings(&rule[field]).iter().any(|s| s.contains('*')),
                    "{}: {rule}",
                    role.id()
                );
            }
            assert!(rule.get("nonResourceURLs").is_none(), "{}", role.id());
        }
        for role in of_kind(&objects, "ClusterRole") {
            assert!(role.value.get("aggregationRule").is_none(), "{}", role.id());
        }
    }
}

#[test]
fn no_cluster_role_grants_secrets() {
    for objects in every_variant() {
        for (role, rule) in rbac_rules(&objects) {
            if role.kind == "ClusterRole" {
                assert!(
                    !strings(&rule["resources"])
                        .iter()
                        .any(|r| r.starts_with("secrets")),
                    "{}: {rule}",
                    role.id()
                );
            }
        }
    }
}

/// The controller's rules are exactly the documented ones (docs/profiles.md, "RBAC").
#[test]
fn controller_rules_are_exactly_what_it_needs() {
    let objects = default_objects();
    let rules = |o: &Object| -> BTreeSet<(String, String, Vec<String>)> {
        o.value["rules"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                let verbs = strings(&r["verbs"]);
                let names = strings(&r["resourceNames"]);
                rule_resources(r)
                    .into_iter()
                    .map(move |res| (res, verbs.join(","), names.clone()))
            })
            .collect()
    };
    let expect = |items: &[(&str, &str, &[&str])]| -> BTreeSet<(String, String, Vec<String>)> {
        items
            .iter()
            .map(|(r, v, n)| {
                (
                    (*r).into(),
                    (*v).into(),
                    n.iter().map(|s| (*s).into()).collect(),
                )
            })
            .collect()
    };
    let read = "list,watch";
    let gw = "gateway.networking.k8s.io";
    assert_eq!(
        rules(find(&objects, "ClusterRole", None, "gatehouse-controller")),
        expect(&[
            (&format!("{gw}/gatewayclasses"), read, &[]),
            (&format!("{gw}/gateways"), read, &[]),
            (&format!("{gw}/httproutes"), read, &[]),
            (&format!("{gw}/grpcroutes"), read, &[]),
            (&format!("{gw}/referencegrants"), read, &[]),
            (&format!("{gw}/gatewayclasses/status"), "patch", &[]),
            (&format!("{gw}/gateways/status"), "patch", &[]),
            (&format!("{gw}/httproutes/status"), "patch", &[]),
            (&format!("{gw}/grpcroutes/status"), "patch", &[]),
            ("/services", read, &[]),
            ("/namespaces", read, &[]),
            ("discovery.k8s.io/endpointslices", read, &[]),
            ("gatehouse.dev/backends", read, &[]),
            ("gatehouse.dev/securitypolicies", read, &[]),
            ("gatehouse.dev/gatewaypolicies", read, &[]),
            ("gatehouse.dev/backends/status", "patch", &[]),
            ("gatehouse.dev/securitypolicies/status", "patch", &[]),
            ("gatehouse.dev/gatewaypolicies/status", "patch", &[]),
        ])
    );
    assert_eq!(
        rules(find(
            &objects,
            "Role",
            Some("gatehouse-system"),
            "gatehouse-controller-leader-election"
        )),
        expect(&[
            ("coordination.k8s.io/leases", "create", &[]),
            (
                "coordination.k8s.io/leases",
                "get,update",
                &[kubernetes::LEASE]
            ),
        ])
    );
    assert_eq!(
        rules(find(
            &objects,
            "Role",
            Some("gatehouse-gateways"),
            "gatehouse-controller"
        )),
        expect(&[
            ("/secrets", read, &[]),
            ("/secrets", "create", &[]),
            ("/secrets", "patch", &["gatehouse-xds-edge"]),
        ])
    );
}

/// No row of the dangerous-RBAC table (reference/hardening.md (b)) beyond the documented
/// exceptions: reading Secrets and writing the xDS certificate Secrets, in the gateway
/// namespaces only.
#[test]
fn no_dangerous_rbac_beyond_the_documented_exceptions() {
    let dangerous_verbs = ["escalate", "bind", "impersonate", "approve", "sign", "*"];
    let dangerous_resources = [
        "pods",
        "pods/exec",
        "pods/attach",
        "pods/ephemeralcontainers",
        "pods/status",
        "pods/eviction",
        "nodes",
        "nodes/proxy",
        "nodes/status",
        "serviceaccounts",
        "serviceaccounts/token",
        "roles",
        "rolebindings",
        "clusterroles",
        "clusterrolebindings",
        "certificatesigningrequests",
        "certificatesigningrequests/approval",
        "signers",
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
        "validatingadmissionpolicies",
        "validatingadmissionpolicybindings",
        "customresourcedefinitions",
        "persistentvolumes",
        "services/status",
        "deployments",
        "daemonsets",
        "statefulsets",
        "replicasets",
        "jobs",
        "cronjobs",
        "replicationcontrollers",
        "networkpolicies",
        "ingresses",
        "endpoints",
        "users",
        "groups",
    ];
    let writes = ["create", "update", "patch", "delete", "deletecollection"];
    for objects in every_variant() {
        let gateway_namespaces: BTreeSet<String> = of_kind(&objects, "Namespace")
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| n != "gatehouse-system")
            .collect();
        for (role, rule) in rbac_rules(&objects) {
            let verbs = strings(&rule["verbs"]);
            let resources = strings(&rule["resources"]);
            for v in &verbs {
                assert!(
                    !dangerous_verbs.contains(&v.as_str()),
                    "{}: {rule}",
                    role.id()
                );
            }
            for r in &resources {
                assert!(
                    !dangerous_resources.contains(&r.as_str()),
                    "{}: {rule}",
                    role.id()
                );
            }
            // Writes only to status, events, the Lease, and (in gateway namespaces) Secrets.
            if verbs.iter().any(|v| writes.contains(&v.as_str())) {
                for r in &resources {
                    let ok = r.ends_with("/status")
                        || r == "events"
                        || (r == "leases" && role.namespace.as_deref() == Some("gatehouse-system"))
                        || (r == "secrets"
                            && role.kind == "Role"
                            && gateway_namespaces.contains(role.namespace.as_deref().unwrap()));
                    assert!(ok, "{} writes {r}: {rule}", role.id());
                }
            }
            // Namespaces are read, never written (row 21).
            if resources.iter().any(|r| r == "namespaces") {
                assert_eq!(verbs, ["list", "watch"], "{}", role.id());
            }
            // Secrets: only in gateway namespaces, and update/patch only by name.
            if resources.iter().any(|r| r == "secrets") {
                assert_eq!(role.kind, "Role");
                assert!(gateway_namespaces.contains(role.namespace.as_deref().unwrap()));
                if verbs.iter().any(|v| v == "update" || v == "patch") {
                    let names = strings(&rule["resourceNames"]);
                    assert!(!names.is_empty(), "{rule}");
                    assert!(
                        names.iter().all(|n| n.starts_with("gatehouse-xds-")),
                        "{rule}"
                    );
                }
            }
        }
        // Bindings: to the controller's account only, never to a group or a user, never to
        // cluster-admin.
        for b in of_kind(&objects, "ClusterRoleBinding")
            .into_iter()
            .chain(of_kind(&objects, "RoleBinding"))
        {
            assert_ne!(b.value["roleRef"]["name"], "cluster-admin");
            for s in b.value["subjects"].as_array().unwrap() {
                assert_eq!(s["kind"], "ServiceAccount", "{}", b.id());
                assert_eq!(s["name"], "gatehouse-controller", "{}", b.id());
                assert_eq!(s["namespace"], "gatehouse-system", "{}", b.id());
            }
            // A RoleBinding refers to a Role of its own namespace.
            if b.kind == "RoleBinding" {
                assert_eq!(b.value["roleRef"]["kind"], "Role");
                find(
                    &objects,
                    "Role",
                    b.namespace.as_deref(),
                    b.value["roleRef"]["name"].as_str().unwrap(),
                );
            }
        }
    }
}

#[test]
fn envoy_service_accounts_have_no_token_and_no_binding() {
    for objects in every_variant() {
        let bindings: Vec<&Object> = of_kind(&objects, "ClusterRoleBinding")
            .into_iter()
            .chain(of_kind(&objects, "RoleBinding"))
            .collect();
        for sa in of_kind(&objects, "ServiceAccount") {
            assert_eq!(
                sa.value["automountServiceAccountToken"],
                false,
                "{}",
                sa.id()
            );
            if !sa.name.starts_with("gatehouse-envoy-") {
                continue;
            }
            for b in &bindings {
                for s in b.value["subjects"].as_array().unwrap() {
                    assert!(
                        !(s["name"] == sa.name.as_str()
                            && s["namespace"] == sa.namespace.as_deref().unwrap()),
                        "{} binds {}",
                        b.id(),
                        sa.id()
                    );
                    assert_ne!(s["kind"], "Group", "{}", b.id());
                }
            }
        }
        for d in of_kind(&objects, "Deployment") {
            if !d.name.starts_with("gatehouse-envoy-") {
                continue;
            }
            let spec = pod_spec(d);
            assert_eq!(spec["serviceAccountName"], d.name.as_str());
            assert_eq!(spec["automountServiceAccountToken"], false);
            // Its account exists, dedicated, in its namespace.
            find(&objects, "ServiceAccount", d.namespace.as_deref(), &d.name);
            // No token reaches it by any volume.
            for v in spec["volumes"].as_array().unwrap() {
                assert!(v.get("projected").is_none(), "{}: {v}", d.id());
            }
        }
    }
}

/// Pod Security Standards "restricted", and the profile's own stricter rules
/// (reference/hardening.md (a)), on every Deployment.
#[test]
fn every_pod_meets_the_restricted_profile_and_more() {
    let allowed_volumes = [
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "persistentVolumeClaim",
        "projected",
        "secret",
    ];
    for objects in every_variant() {
        for d in of_kind(&objects, "Deployment") {
            let id = d.id();
            assert_eq!(d.value["spec"]["replicas"], 2, "{id}");
            let spec = pod_spec(d);
            for host in ["hostNetwork", "hostPID", "hostIPC", "hostUsers"] {
                assert!(spec.get(host).is_none(), "{id}: {host}");
            }
            assert_eq!(spec["automountServiceAccountToken"], false, "{id}");
            assert_eq!(spec["enableServiceLinks"], false, "{id}");
            assert_ne!(spec["serviceAccountName"], "default", "{id}");
            let psc = &spec["securityContext"];
            assert_eq!(psc["runAsNonRoot"], true, "{id}");
            for field in ["runAsUser", "runAsGroup", "fsGroup"] {
                assert_eq!(psc[field], 65532, "{id}: {field}");
            }
            assert_eq!(psc["seccompProfile"]["type"], "RuntimeDefault", "{id}");
            assert!(psc.get("sysctls").is_none());
            for v in spec["volumes"].as_array().unwrap() {
                let kinds: Vec<&String> = v
                    .as_object()
                    .unwrap()
                    .keys()
                    .filter(|k| *k != "name")
                    .collect();
                assert_eq!(kinds.len(), 1, "{id}: {v}");
                assert!(allowed_volumes.contains(&kinds[0].as_str()), "{id}: {v}");
                if let Some(e) = v.get("emptyDir") {
                    assert!(
                        e.get("sizeLimit").is_some(),
                        "{id}: an emptyDir without sizeLimit"
                    );
                }
            }
            assert!(
                spec.get("initContainers").is_none() && spec.get("ephemeralContainers").is_none()
            );
            // Spread over nodes, and a PDB.
            assert!(
                spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty()),
                "{id}"
            );
            let pdb = find(
                &objects,
                "PodDisruptionBudget",
                d.namespace.as_deref(),
                &d.name,
            );
            assert_eq!(
                pdb.value["spec"]["selector"], d.value["spec"]["selector"],
                "{id}"
            );
            assert_eq!(pdb.value["spec"]["minAvailable"], 1);

            for c in spec["containers"].as_array().unwrap() {
                let sc = &c["securityContext"];
                assert_eq!(sc["allowPrivilegeEscalation"], false, "{id}");
                assert_eq!(sc["privileged"], false, "{id}");
                assert_eq!(sc["readOnlyRootFilesystem"], true, "{id}");
                assert_eq!(sc["runAsNonRoot"], true, "{id}");
                assert_eq!(sc["runAsUser"], 65532, "{id}");
                assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{id}");
                assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"], "{id}");
                assert!(sc["capabilities"].get("add").is_none(), "{id}");
                for p in c["ports"].as_array().unwrap() {
                    assert!(p["containerPort"].as_u64().unwrap() >= 1024, "{id}: {p}");
                    assert!(p.get("hostPort").is_none(), "{id}: {p}");
                }
                for kind in ["requests", "limits"] {
                    for r in ["cpu", "memory", "ephemeral-storage"] {
                        assert!(c["resources"][kind][r].is_string(), "{id}: {kind}.{r}");
                    }
                }
                for probe in ["livenessProbe", "readinessProbe"] {
                    let p = &c[probe];
                    assert!(p.is_object(), "{id}: {probe}");
                    assert!(p.get("exec").is_none(), "{id}: {probe} uses exec");
                    for action in ["tcpSocket", "httpGet"] {
                        assert!(
                            p[action].get("host").is_none(),
                            "{id}: {probe}.{action}.host"
                        );
                    }
                }
                let image = c["image"].as_str().unwrap();
                assert!(image.contains("@sha256:"), "{id}: {image}");
                assert!(c.get("env").is_none_or(|env| {
                    env.as_array()
                        .unwrap()
                        .iter()
                        .all(|e| e["valueFrom"].get("secretKeyRef").is_none())
                }));
            }
        }
    }
}

#[test]
fn envoy_runs_from_the_configmap_and_the_controller_written_secret() {
    let objects = default_objects();
    let d = find(
        &objects,
        "Deployment",
        Some("gatehouse-gateways"),
        "gatehouse-envoy-edge",
    );
    let c = &pod_spec(d)["containers"][0];
    assert_eq!(
        strings(&c["args"]),
        [
            "-c",
            "/etc/gatehouse/envoy/envoy.yaml",
            "--disable-hot-restart",
            "--concurrency",
            "2",
            "--log-level",
            "info"
        ]
    );
    let volumes = pod_spec(d)["volumes"].as_array().unwrap();
    assert_eq!(
        volumes[0],
        json!({"name": "config", "configMap": {"name": "gatehouse-envoy-edge", "defaultMode": 0o444, "optional": false}})
    );
    assert_eq!(
        volumes[1],
        json!({"name": "xds-certificate", "secret": {"secretName": "gatehouse-xds-edge", "defaultMode": 0o440, "optional": false}})
    );
    let cm = find(
        &objects,
        "ConfigMap",
        Some("gatehouse-gateways"),
        "gatehouse-envoy-edge",
    );
    let keys: Vec<&String> = cm.value["data"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "envoy.yaml",
            "xds-client-certificate.sds.yaml",
            "xds-trust-bundle.sds.yaml"
        ]
    );
    // The pods roll when the bootstrap changes.
    let hash =
        d.value["spec"]["template"]["metadata"]["annotations"]["gatehouse.dev/config-sha256"]
            .as_str()
            .unwrap();
    assert_eq!(hash.len(), 64);
    let mut other = HardenedParams::default();
    other.trust_domain = "prod.example".parse().unwrap();
    let objects2 = hardened_objects(&other, &[]).unwrap();
    let d2 = find(
        &objects2,
        "Deployment",
        Some("gatehouse-gateways"),
        "gatehouse-envoy-edge",
    );
    assert_ne!(
        d2.value["spec"]["template"]["metadata"]["annotations"]["gatehouse.dev/config-sha256"],
        hash
    );
    // The profile holds no Secret and no key.
    assert!(of_kind(&objects, "Secret").is_empty());
    let rendering = render_hardened(&HardenedParams::default(), &[]).unwrap();
    for f in &rendering.files {
        assert!(
            !f.contents.contains("PRIVATE KEY") && !f.contents.contains("BEGIN "),
            "{}",
            f.name
        );
    }
}

#[test]
fn envoy_resources_match_its_flags() {
    let objects = default_objects();
    let d = find(
        &objects,
        "Deployment",
        Some("gatehouse-gateways"),
        "gatehouse-envoy-edge",
    );
    let c = &pod_spec(d)["containers"][0];
    // --concurrency is the CPU limit, the overload manager's heap limit 3/4 of the memory limit.
    assert_eq!(c["resources"]["limits"]["cpu"], "2");
    assert_eq!(c["resources"]["limits"]["memory"], "1024Mi");
    let cm = find(
        &objects,
        "ConfigMap",
        Some("gatehouse-gateways"),
        "gatehouse-envoy-edge",
    );
    let boot: Value =
        serde_saphyr::from_str(cm.value["data"]["envoy.yaml"].as_str().unwrap()).unwrap();
    assert_eq!(
        boot["overload_manager"]["resource_monitors"][0]["typed_config"]["max_heap_size_bytes"],
        768u64 << 20
    );
    // The xDS address is the controller's Service, the node id the gateway's SPIFFE ID.
    assert_eq!(
        boot["node"]["id"],
        "spiffe://gatehouse.local/gateway/gatehouse-gateways/edge"
    );
    let sa = &boot["static_resources"]["clusters"][0]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        [0]["endpoint"]["address"]["socket_address"];
    assert_eq!(sa["address"], "gatehouse-controller.gatehouse-system.svc");
    assert_eq!(sa["port_value"], 18000);
    // Admin on loopback only; the health listener is the only other static listener.
    assert_eq!(
        boot["admin"]["address"]["socket_address"]["address"],
        "127.0.0.1"
    );
    let listeners = boot["static_resources"]["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 1);
    assert_eq!(
        listeners[0]["address"]["socket_address"]["port_value"],
        19001
    );
}

#[test]
fn services_map_80_and_443_to_unprivileged_ports() {
    let objects = default_objects();
    let svc = find(
        &objects,
        "Service",
        Some("gatehouse-gateways"),
        "gatehouse-envoy-edge",
    );
    let ports: Vec<(u64, String)> = svc.value["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["port"].as_u64().unwrap(),
                p["targetPort"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(ports, [(80, "http".to_owned()), (443, "https".to_owned())]);
    let d = find(
        &objects,
        "Deployment",
        Some("gatehouse-gateways"),
        "gatehouse-envoy-edge",
    );
    let named: BTreeMap<String, u64> = pod_spec(d)["containers"][0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_owned(),
                p["containerPort"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(named["http"], 8080);
    assert_eq!(named["https"], 8443);
    // The health port is not in the Service.
    assert!(!ports.iter().any(|(_, t)| t == "health"));
}

/// Default-deny in every namespace, and only the flows of docs/profiles.md.
#[test]
fn network_policies_deny_by_default_and_allow_only_the_needed_flows() {
    for (objects, backends, cidrs) in [
        (default_objects(), vec![], vec![]),
        (
            hardened_objects(&wide_params(), &[]).unwrap(),
            vec!["blog", "shop"],
            vec!["10.0.0.1/32"],
        ),
    ] {
        let namespaces: Vec<String> = of_kind(&objects, "Namespace")
            .iter()
            .map(|n| n.name.clone())
            .collect();
        for ns in &namespaces {
            let deny = find(&objects, "NetworkPolicy", Some(ns), "default-deny");
            assert_eq!(
                deny.value["spec"],
                json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
            );
        }
        // Every pod is selected by a policy of its own besides the default deny.
        for d in of_kind(&objects, "Deployment") {
            let np = find(&objects, "NetworkPolicy", d.namespace.as_deref(), &d.name);
            assert_eq!(
                np.value["spec"]["podSelector"]["matchLabels"],
                d.value["spec"]["selector"]["matchLabels"]
            );
            assert_eq!(
                strings(&np.value["spec"]["policyTypes"]),
                ["Ingress", "Egress"]
            );
        }
        let cp = find(
            &objects,
            "NetworkPolicy",
            Some("gatehouse-system"),
            "gatehouse-controller",
        );
        let ingress = cp.value["spec"]["ingress"].as_array().unwrap();
        assert_eq!(ingress.len(), 1);
        assert_eq!(
            ingress[0]["ports"],
            json!([{"port": 18000, "protocol": "TCP"}])
        );
        let from = &ingress[0]["from"][0];
        assert_eq!(
            from["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
            "gatehouse-envoy"
        );
        let gateway_namespaces: Vec<String> = namespaces
            .iter()
            .filter(|n| *n != "gatehouse-system")
            .cloned()
            .collect();
        assert_eq!(
            strings(&from["namespaceSelector"]["matchExpressions"][0]["values"]),
            gateway_namespaces
        );
        let egress = cp.value["spec"]["egress"].as_array().unwrap();
        assert_eq!(egress.len(), 1);
        assert_eq!(
            egress[0]["ports"],
            json!([{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}])
        );
        let to: Vec<String> = egress[0]["to"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|p| p["ipBlock"]["cidr"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(to, cidrs);

        for d in of_kind(&objects, "Deployment")
            .into_iter()
            .filter(|d| d.name.starts_with("gatehouse-envoy-"))
        {
            let np = find(&objects, "NetworkPolicy", d.namespace.as_deref(), &d.name);
            let ingress = np.value["spec"]["ingress"].as_array().unwrap();
            assert_eq!(ingress.len(), 1);
            assert!(
                ingress[0].get("from").is_none(),
                "clients come from anywhere"
            );
            assert_eq!(
                ingress[0]["ports"],
                json!([{"port": 8080, "protocol": "TCP"}, {"port": 8443, "protocol": "TCP"}])
            );
            let egress = np.value["spec"]["egress"].as_array().unwrap();
            assert_eq!(
                egress[0]["ports"],
                json!([{"port": 18000, "protocol": "TCP"}])
            );
            assert_eq!(
                egress[0]["to"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
                "gatehouse-system"
            );
            assert_eq!(
                egress[0]["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
                "gatehouse-controller"
            );
            assert_eq!(
                egress[1]["ports"],
                json!([{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}])
            );
            assert_eq!(
                egress[1]["to"][0]["podSelector"]["matchLabels"]["k8s-app"],
                "kube-dns"
            );
            if backends.is_empty() {
                assert_eq!(egress.len(), 2);
            } else {
                assert_eq!(egress.len(), 3);
                assert_eq!(
                    strings(
                        &egress[2]["to"][0]["namespaceSelector"]["matchExpressions"][0]["values"]
                    ),
                    backends
                );
            }
        }
    }
}

#[test]
fn shared_namespace_objects_are_rendered_once_per_namespace() {
    let objects = hardened_objects(&wide_params(), &[]).unwrap();
    let names =
        |kind: &str| -> Vec<String> { of_kind(&objects, kind).iter().map(|o| o.id()).collect() };
    assert_eq!(
        names("Namespace"),
        [
            "Namespace/gatehouse-system",
            "Namespace/edge",
            "Namespace/partners"
        ]
    );
    let role = find(&objects, "Role", Some("edge"), "gatehouse-controller");
    assert_eq!(
        strings(&role.value["rules"][2]["resourceNames"]),
        ["gatehouse-xds-internal", "gatehouse-xds-public"]
    );
    assert_eq!(
        names("NetworkPolicy")
            .iter()
            .filter(|n| n.ends_with("/default-deny"))
            .count(),
        3
    );
    assert_eq!(names("Deployment").len(), 4);
}

fn crd(name: &str) -> CustomResourceDefinition {
    let (plural, group) = name.split_once('.').unwrap();
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: group.into(),
            names: CustomResourceDefinitionNames {
                kind: "Backend".into(),
                plural: plural.into(),
                ..CustomResourceDefinitionNames::default()
            },
            scope: "Namespaced".into(),
            versions: vec![CustomResourceDefinitionVersion {
                name: "v1alpha1".into(),
                served: true,
                storage: true,
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        ..CustomResourceDefinition::default()
    }
}

#[test]
fn extra_crds_come_first() {
    let crds = [crd("backends.gatehouse.dev")];
    let objects = hardened_objects(&HardenedParams::default(), &crds).unwrap();
    assert_eq!(objects[0].kind, "CustomResourceDefinition");
    assert_eq!(objects[0].stage, Stage::Crds);
    assert!(objects.iter().skip(1).all(|o| o.stage > Stage::Crds));
    let r = render_hardened(&HardenedParams::default(), &crds).unwrap();
    assert_eq!(r.files[0].name, "00-customresourcedefinitions.yaml");
    assert!(r.files[0].contents.contains("name: backends.gatehouse.dev"));
    // Without CRDs there is no CRD file at all.
    let r = render_hardened(&HardenedParams::default(), &[]).unwrap();
    assert_eq!(r.files[0].name, "01-namespaces.yaml");

    let e = hardened_objects(
        &HardenedParams::default(),
        &[crds[0].clone(), crds[0].clone()],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("given twice"), "{e}");
    let mut namespaced = crd("gatewaypolicies.gatehouse.dev");
    namespaced.metadata.namespace = Some("x".into());
    let e = hardened_objects(&HardenedParams::default(), &[namespaced])
        .unwrap_err()
        .to_string();
    assert!(e.contains("cluster-scoped but has a namespace"), "{e}");
}

#[test]
fn objects_are_in_stage_order() {
    let objects = hardened_objects(&wide_params(), &[]).unwrap();
    assert!(objects.windows(2).all(|w| w[0].stage <= w[1].stage));
    let first_of = |stage: Stage| objects.iter().position(|o| o.stage == stage).unwrap();
    assert!(first_of(Stage::Namespaces) < first_of(Stage::Rbac));
    assert!(first_of(Stage::Rbac) < first_of(Stage::Config));
    assert!(first_of(Stage::Config) < first_of(Stage::Workloads));
    // NetworkPolicies are in force before any Deployment.
    let last_np = objects
        .iter()
        .rposition(|o| o.kind == "NetworkPolicy")
        .unwrap();
    let first_deployment = objects.iter().position(|o| o.kind == "Deployment").unwrap();
    assert!(last_np < first_deployment);
}

#[test]
fn images_are_pinned_by_digest_and_overridable() {
    let objects = default_objects();
    let images: Vec<String> = of_kind(&objects, "Deployment")
        .iter()
        .map(|d| {
            pod_spec(d)["containers"][0]["image"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        images,
        [
            gatehouse_deploy::image::DEFAULT_CONTROLLER_IMAGE,
            gatehouse_deploy::image::DEFAULT_ENVOY_IMAGE
        ]
    );
    let mut p = HardenedParams::default();
    let envoy = format!("registry.local/envoy@sha256:{}", "ab".repeat(32));
    p.envoy_image = envoy.parse().unwrap();
    let objects = hardened_objects(&p, &[]).unwrap();
    let d = find(
        &objects,
        "Deployment",
        Some("gatehouse-gateways"),
        "gatehouse-envoy-edge",
    );
    assert_eq!(pod_spec(d)["containers"][0]["image"], envoy.as_str());
}

#[test]
fn bad_parameters_are_refused_with_the_reason() {
    type Change = Box<dyn Fn(&mut HardenedParams)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|p| p.namespace = "kube-system".into()),
            "invalid namespace `kube-system`: the control plane's namespace must be Gatehouse's own",
        ),
        (
            Box::new(|p| p.namespace = "Bad_NS".into()),
            "invalid namespace `Bad_NS`",
        ),
        (
            Box::new(|p| p.gateways = vec!["default/edge".parse().unwrap()]),
            "invalid gateway `default/edge`",
        ),
        (
            Box::new(|p| p.gateways = vec!["gatehouse-system/edge".parse().unwrap()]),
            "its namespace is the control plane's",
        ),
        (
            Box::new(|p| p.gateways = vec!["edge/web.v1".parse().unwrap()]),
            "must start with a letter",
        ),
        (
            Box::new(|p| p.gateways = vec!["edge/1web".parse().unwrap()]),
            "must start with a letter",
        ),
        (
            Box::new(|p| p.gateways = vec![format!("edge/{}", "a".repeat(48)).parse().unwrap()]),
            "at most 47 characters",
        ),
        (
            Box::new(|p| p.gateways = vec!["edge/a".parse().unwrap(), "edge/a".parse().unwrap()]),
            "given twice",
        ),
        (Box::new(|p| p.gateways = vec![]), "at least one gateway"),
        (
            Box::new(|p| p.backend_namespaces = vec!["gatehouse-system".into()]),
            "may not live in the control plane's namespace",
        ),
        (
            Box::new(|p| p.backend_namespaces = vec!["kube-system".into()]),
            "kube-system",
        ),
        (
            Box::new(|p| p.api_server_cidrs = vec!["10.0.0.1".into()]),
            "invalid CIDR `10.0.0.1`",
        ),
    ];
    for (change, message) in cases {
        let mut p = HardenedParams::default();
        change(&mut p);
        let e = hardened_objects(&p, &[]).unwrap_err().to_string();
        assert!(e.contains(message), "expected `{message}` in `{e}`");
    }
    // At the limit: a 47-character name works.
    let mut p = HardenedParams::default();
    p.gateways = vec![format!("edge/{}", "a".repeat(47)).parse().unwrap()];
    hardened_objects(&p, &[]).unwrap();
}
