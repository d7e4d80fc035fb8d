//! The controller's and each gateway's workloads: Deployments, Services, PodDisruptionBudgets,
//! and Envoy's bootstrap ConfigMap.
//!
//! Every pod runs as uid/gid 65532 with `runAsNonRoot`, a read-only root filesystem, all
//! capabilities dropped, no privilege escalation and seccomp `RuntimeDefault`; every
//! container has CPU, memory and ephemeral-storage requests and limits, and probes; no
//! Service account token is automounted; no Service links are injected as environment.

use std::collections::BTreeMap;
use std::path::PathBuf;

use gatehouse_certs::GatewayName;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapProjection, ConfigMapVolumeSource, Container,
    ContainerPort, DownwardAPIProjection, DownwardAPIVolumeFile, EmptyDirVolumeSource, EnvVar,
    EnvVarSource, HTTPGetAction, KeyToPath, Lifecycle, LifecycleHandler, ObjectFieldSelector,
    PodAffinityTerm, PodAntiAffinity, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    ProjectedVolumeSource, ResourceRequirements, SeccompProfile, SecretVolumeSource,
    SecurityContext, Service, ServiceAccountTokenProjection, ServicePort, ServiceSpec, SleepAction,
    TCPSocketAction, Volume, VolumeMount, VolumeProjection, WeightedPodAffinityTerm,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::{Value, json};

use super::rbac::controller_labels;
use super::{
    CA_SECRET, CONTROLLER, CONTROLLER_PKI_DIR, Checked, ENVOY_CERTS_DIR, ENVOY_CONFIG_DIR,
    HEALTH_PORT, HTTP_PORT, HTTPS_PORT, Object, RUN_AS, XDS_PORT, envoy_name, meta,
    xds_secret_name,
};
use crate::bootstrap::{self, BootstrapParams, XdsAddress};
use crate::{ProfileError, yaml};

/// Replicas of the controller (one leader, one standby) and of each gateway's Envoy.
pub(crate) const REPLICAS: i32 = 2;

/// Envoy's CPU limit, in cores; Envoy runs as many worker threads (`--concurrency`), not one
/// per core of the node.
pub(crate) const ENVOY_CPUS: u32 = 2;
/// Envoy's memory limit in MiB.
pub(crate) const ENVOY_MEMORY_MIB: u64 = 1024;
/// The overload manager's heap limit: three quarters of the memory limit, so Envoy sheds load
/// before the kernel kills it.
pub(crate) const ENVOY_MAX_HEAP_BYTES: u64 = ENVOY_MEMORY_MIB * 3 / 4 * 1024 * 1024;

/// Annotation on Envoy's pod template: the SHA-256 of its ConfigMap, so that a new bootstrap
/// rolls the pods.
pub(crate) const CONFIG_HASH_ANNOTATION: &str = "gatehouse.dev/config-sha256";

/// The labels that select a gateway's Envoy pods.
pub(crate) fn envoy_labels(gateway: &GatewayName) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("app.kubernetes.io/name".into(), "gatehouse-envoy".into()),
        ("app.kubernetes.io/instance".into(), gateway.name().into()),
        ("app.kubernetes.io/component".into(), "data-plane".into()),
    ])
}

/// The labels a Deployment selects its pods by: immutable, so kept to name and instance.
fn selector(labels: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    labels
        .iter()
        .filter(|(k, _)| *k == "app.kubernetes.io/name" || *k == "app.kubernetes.io/instance")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn seccomp() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".into(),
        ..SeccompProfile::default()
    }
}

fn pod_security_context() -> PodSecurityContext {
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        fs_group: Some(RUN_AS),
        fs_group_change_policy: Some("OnRootMismatch".into()),
        seccomp_profile: Some(seccomp()),
        ..PodSecurityContext::default()
    }
}

fn container_security_context() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        privileged: Some(false),
        read_only_root_filesystem: Some(true),
        run_as_non_root: Some(true),
        run_as_user: Some(RUN_AS),
        run_as_group: Some(RUN_AS),
        capabilities: Some(Capabilities {
            drop: Some(strings(&["ALL"])),
            ..Capabilities::default()
        }),
        seccomp_profile: Some(seccomp()),
        ..SecurityContext::default()
    }
}

fn resources(
    cpu: (&str, &str),
    memory: (&str, &str),
    ephemeral: (&str, &str),
) -> ResourceRequirements {
    let map = |request: bool| {
        let pick = |(r, l): (&str, &str)| if request { r.to_owned() } else { l.to_owned() };
        BTreeMap::from([
            ("cpu".to_owned(), Quantity(pick(cpu))),
            ("memory".to_owned(), Quantity(pick(memory))),
            ("ephemeral-storage".to_owned(), Quantity(pick(ephemeral))),
        ])
    };
    ResourceRequirements {
        requests: Some(map(true)),
        limits: Some(map(false)),
        ..ResourceRequirements::default()
    }
}

fn port(name: &str, port: u16) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: i32::from(port),
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn tcp_probe(port: &str, period: i32, failures: i32) -> Probe {
    Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String(port.into()),
            ..TCPSocketAction::default()
        }),
        period_seconds: Some(period),
        timeout_seconds: Some(2),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

/// Prefer spreading the replicas over nodes; `required` would leave a replica pending on a
/// one-node cluster.
fn spread(labels: &BTreeMap<String, String>) -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_labels: Some(selector(labels)),
                            ..LabelSelector::default()
                        }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..PodAffinityTerm::default()
                    },
                },
            ]),
            ..PodAntiAffinity::default()
        }),
        ..Affinity::default()
    }
}

fn deployment(
    name: &str,
    namespace: &str,
    labels: &BTreeMap<String, String>,
    annotations: Option<BTreeMap<String, String>>,
    spec: PodSpec,
) -> Deployment {
    let mut template_meta = meta(name, None, labels);
    template_meta.name = None;
    template_meta.annotations = annotations;
    Deployment {
        metadata: meta(name, Some(namespace), labels),
        spec: Some(DeploymentSpec {
            replicas: Some(REPLICAS),
            revision_history_limit: Some(5),
            selector: LabelSelector {
                match_labels: Some(selector(labels)),
                ..LabelSelector::default()
            },
            // Never below the desired replicas during a rollout.
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::Int(1)),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            template: PodTemplateSpec {
                metadata: Some(template_meta),
                spec: Some(PodSpec {
                    automount_service_account_token: Some(false),
                    enable_service_links: Some(false),
                    security_context: Some(pod_security_context()),
                    affinity: Some(spread(labels)),
                    termination_grace_period_seconds: Some(30),
                    ..spec
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

fn pdb(name: &str, namespace: &str, labels: &BTreeMap<String, String>) -> PodDisruptionBudget {
    PodDisruptionBudget {
        metadata: meta(name, Some(namespace), labels),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(1)),
            selector: Some(LabelSelector {
                match_labels: Some(selector(labels)),
                ..LabelSelector::default()
            }),
            // A pod that is not ready protects nothing: let it be evicted.
            unhealthy_pod_eviction_policy: Some("AlwaysAllow".into()),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

fn field_env(name: &str, path: &str) -> EnvVar {
    EnvVar {
        name: name.into(),
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                field_path: path.into(),
                ..ObjectFieldSelector::default()
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The controller: `gatehouse serve --source kubernetes`, two replicas with leader election.
fn controller(checked: &Checked<'_>) -> Result<Vec<Object>, ProfileError> {
    let ns = checked.params.namespace.as_str();
    let labels = controller_labels();
    let container = Container {
        name: "controller".into(),
        image: Some(checked.params.controller_image.to_string()),
        // The digest pins the bytes; see docs/profiles.md on CKV_K8S_15.
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some({
            let mut args = strings(&[
                "serve",
                "--source",
                "kubernetes",
                "--certs",
                CONTROLLER_PKI_DIR,
                "--listen",
                &format!("0.0.0.0:{XDS_PORT}"),
            ]);
            // The namespaces whose Secrets it may read (its Roles): one watch each.
            for ns in checked.gateway_namespaces.keys() {
                args.push("--secret-namespace".into());
                args.push(ns.clone());
            }
            args
        }),
        env: Some(vec![
            EnvVar {
                name: "GATEHOUSE_LOG_FORMAT".into(),
                value: Some("json".into()),
                ..EnvVar::default()
            },
            // Its identity as a leader-election candidate, and its namespace.
            field_env("POD_NAME", "metadata.name"),
            field_env("POD_NAMESPACE", "metadata.namespace"),
        ]),
        ports: Some(vec![port("xds", XDS_PORT)]),
        // The xDS port accepts TCP once the server runs. The controller has no plain-text
        // health endpoint (its only listener requires mTLS), so the probe is a TCP connect.
        readiness_probe: Some(tcp_probe("xds", 10, 3)),
        liveness_probe: Some(tcp_probe("xds", 20, 3)),
        resources: Some(resources(
            ("100m", "1"),
            ("128Mi", "512Mi"),
            ("32Mi", "64Mi"),
        )),
        security_context: Some(container_security_context()),
        volume_mounts: Some(vec![
            mount(
                "kube-api-access",
                "/var/run/secrets/kubernetes.io/serviceaccount",
            ),
            VolumeMount {
                read_only: Some(false),
                ..mount("pki", CONTROLLER_PKI_DIR)
            },
            mount("ca", &format!("{CONTROLLER_PKI_DIR}/ca")),
        ]),
        ..Container::default()
    };
    let volumes = vec![
        // What automounting would give, written out and mounted into this container only:
        // an expiring, audience-bound token (rotated by the kubelet), the cluster CA and the
        // namespace. The pod spec says `automountServiceAccountToken: false`.
        Volume {
            name: "kube-api-access".into(),
            projected: Some(ProjectedVolumeSource {
                default_mode: Some(0o444),
                sources: Some(vec![
                    VolumeProjection {
                        service_account_token: Some(ServiceAccountTokenProjection {
                            path: "token".into(),
                            expiration_seconds: Some(3600),
                            ..ServiceAccountTokenProjection::default()
                        }),
                        ..VolumeProjection::default()
                    },
                    VolumeProjection {
                        config_map: Some(ConfigMapProjection {
                            name: "kube-root-ca.crt".into(),
                            items: Some(vec![KeyToPath {
                                key: "ca.crt".into(),
                                path: "ca.crt".into(),
                                ..KeyToPath::default()
                            }]),
                            ..ConfigMapProjection::default()
                        }),
                        ..VolumeProjection::default()
                    },
                    VolumeProjection {
                        downward_api: Some(DownwardAPIProjection {
                            items: Some(vec![DownwardAPIVolumeFile {
                                path: "namespace".into(),
                                field_ref: Some(ObjectFieldSelector {
                                    field_path: "metadata.namespace".into(),
                                    ..ObjectFieldSelector::default()
                                }),
                                ..DownwardAPIVolumeFile::default()
                            }]),
                        }),
                        ..VolumeProjection::default()
                    },
                ]),
            }),
            ..Volume::default()
        },
        // The store the controller writes its own serving certificate into: in memory, so
        // its key never reaches the node's disk.
        Volume {
            name: "pki".into(),
            empty_dir: Some(EmptyDirVolumeSource {
                medium: Some("Memory".into()),
                size_limit: Some(Quantity("16Mi".into())),
            }),
            ..Volume::default()
        },
        // The CA, created by the operator (docs/profiles.md); the pod waits until it exists.
        Volume {
            name: "ca".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(CA_SECRET.into()),
                default_mode: Some(0o440),
                optional: Some(false),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let spec = PodSpec {
        service_account_name: Some(CONTROLLER.into()),
        containers: vec![container],
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    Ok(vec![
        Object::new(&Service {
            metadata: meta(CONTROLLER, Some(ns), &labels),
            spec: Some(ServiceSpec {
                type_: Some("ClusterIP".into()),
                selector: Some(selector(&labels)),
                ports: Some(vec![ServicePort {
                    name: Some("xds".into()),
                    port: i32::from(XDS_PORT),
                    target_port: Some(IntOrString::String("xds".into())),
                    protocol: Some("TCP".into()),
                    ..ServicePort::default()
                }]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        })?,
        Object::new(&deployment(CONTROLLER, ns, &labels, None, spec))?,
        Object::new(&pdb(CONTROLLER, ns, &labels))?,
    ])
}

/// The health listener added to Envoy's bootstrap: `GET /ready` answers 200 while Envoy is
/// serving and 503 while it drains (Envoy's health_check filter); anything else 404. Static
/// listeners open only once Envoy has initialised (its first xDS response, or the initial
/// fetch timeout), so a pod is ready only then.
pub(crate) fn health_listener() -> Value {
    json!({
        "name": "gatehouse_health",
        "address": { "socket_address": { "address": "0.0.0.0", "port_value": HEALTH_PORT } },
        "per_connection_buffer_limit_bytes": 32768,
        "filter_chains": [{
            "filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                    "stat_prefix": "gatehouse_health",
                    "codec_type": "HTTP1",
                    "request_headers_timeout": "5s",
                    "stream_idle_timeout": "10s",
                    "common_http_protocol_options": {
                        "idle_timeout": "60s",
                        "headers_with_underscores_action": "REJECT_REQUEST",
                    },
                    "route_config": {
                        "name": "gatehouse_health",
                        "virtual_hosts": [{
                            "name": "gatehouse_health",
                            "domains": ["*"],
                            "routes": [{
                                "match": { "prefix": "/" },
                                "direct_response": { "status": 404 },
                            }],
                        }],
                    },
                    "http_filters": [
                        {
                            "name": "envoy.filters.http.health_check",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck",
                                "pass_through_mode": false,
                                "headers": [{ "name": ":path", "string_match": { "exact": "/ready" } }],
                            },
                        },
                        {
                            "name": "envoy.filters.http.router",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
                            },
                        },
                    ],
                },
            }],
        }],
    })
}

/// A gateway's Envoy bootstrap and SDS files as they go into its ConfigMap.
pub(crate) fn envoy_config(
    checked: &Checked<'_>,
    gateway: &GatewayName,
) -> Result<BTreeMap<String, String>, ProfileError> {
    let xds: XdsAddress =
        format!("{CONTROLLER}.{}.svc:{XDS_PORT}", checked.params.namespace).parse()?;
    let mut params = BootstrapParams::new(
        gateway.clone(),
        xds,
        PathBuf::from(ENVOY_CERTS_DIR),
        PathBuf::from(ENVOY_CONFIG_DIR),
    );
    params.trust_domain = checked.params.trust_domain.clone();
    params.max_heap_bytes = ENVOY_MAX_HEAP_BYTES;
    let rendered = bootstrap::render(&params)?;

    let mut boot = yaml::from_yaml(&rendered.bootstrap).map_err(ProfileError::ReadBack)?;
    let statics = boot
        .get_mut("static_resources")
        .and_then(Value::as_object_mut)
        .ok_or_else(|| ProfileError::ReadBack("no static_resources".into()))?;
    statics.insert("listeners".into(), json!([health_listener()]));
    let bootstrap = format!(
        "# Envoy bootstrap of gateway {gateway}: `gatehouse bootstrap` plus the health listener on\n# port {HEALTH_PORT}. Rendered by `gatehouse render --profile hardened`: re-render it, do not edit it.\n{}",
        yaml::to_yaml(&boot)?
    );
    let mut data = BTreeMap::from([("envoy.yaml".to_owned(), bootstrap)]);
    for (name, contents) in rendered.sds_files() {
        data.insert(name.to_owned(), contents.to_owned());
    }
    Ok(data)
}

/// A gateway's Envoy: ConfigMap, Service, Deployment, PDB.
fn envoy(checked: &Checked<'_>, gateway: &GatewayName) -> Result<Vec<Object>, ProfileError> {
    let ns = gateway.namespace();
    let name = envoy_name(gateway);
    let labels = envoy_labels(gateway);
    let data = envoy_config(checked, gateway)?;
    let hash = config_hash(&data);

    let container = Container {
        name: "envoy".into(),
        image: Some(checked.params.envoy_image.to_string()),
        image_pull_policy: Some("IfNotPresent".into()),
        // The distroless image's entrypoint is /usr/local/bin/envoy. Hot restart is for
        // processes on a host; Kubernetes replaces pods instead, and it would need shared
        // memory and a unix socket domain.
        args: Some(strings(&[
            "-c",
            &format!("{ENVOY_CONFIG_DIR}/envoy.yaml"),
            "--disable-hot-restart",
            "--concurrency",
            &ENVOY_CPUS.to_string(),
            "--log-level",
            "info",
        ])),
        ports: Some(vec![
            port("http", HTTP_PORT),
            port("https", HTTPS_PORT),
            port("health", HEALTH_PORT),
        ]),
        // Up to a minute to get the first configuration from the controller.
        startup_probe: Some(tcp_probe("health", 2, 30)),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/ready".into()),
                port: IntOrString::String("health".into()),
                scheme: Some("HTTP".into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(5),
            timeout_seconds: Some(2),
            failure_threshold: Some(2),
            ..Probe::default()
        }),
        // Liveness is a TCP connect, not /ready: a draining Envoy is alive.
        liveness_probe: Some(tcp_probe("health", 10, 3)),
        // Let the endpoint be removed from the Service before Envoy stops.
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                sleep: Some(SleepAction { seconds: 5 }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        resources: Some(resources(
            ("250m", &ENVOY_CPUS.to_string()),
            ("256Mi", &format!("{ENVOY_MEMORY_MIB}Mi")),
            ("32Mi", "64Mi"),
        )),
        security_context: Some(container_security_context()),
        volume_mounts: Some(vec![
            mount("config", ENVOY_CONFIG_DIR),
            mount("xds-certificate", ENVOY_CERTS_DIR),
        ]),
        ..Container::default()
    };
    let volumes = vec![
        Volume {
            name: "config".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: name.clone(),
                default_mode: Some(0o444),
                optional: Some(false),
                ..ConfigMapVolumeSource::default()
            }),
            ..Volume::default()
        },
        // chain.pem, key.pem, ca.pem, written by the controller. The kubelet swaps the files
        // with one rename of `..data`, which Envoy's watched directory picks up.
        Volume {
            name: "xds-certificate".into(),
            secret: Some(SecretVolumeSource {
                secret_name: Some(xds_secret_name(gateway)),
                default_mode: Some(0o440),
                optional: Some(false),
                ..SecretVolumeSource::default()
            }),
            ..Volume::default()
        },
    ];
    let spec = PodSpec {
        service_account_name: Some(name.clone()),
        containers: vec![container],
        volumes: Some(volumes),
        ..PodSpec::default()
    };
    let service_port = |port_name: &str, port: i32| ServicePort {
        name: Some(port_name.into()),
        port,
        target_port: Some(IntOrString::String(port_name.into())),
        protocol: Some("TCP".into()),
        ..ServicePort::default()
    };
    Ok(vec![
        Object::new(&ConfigMap {
            metadata: meta(&name, Some(ns), &labels),
            data: Some(data),
            ..ConfigMap::default()
        })?,
        Object::new(&Service {
            metadata: meta(&name, Some(ns), &labels),
            spec: Some(ServiceSpec {
                type_: Some("LoadBalancer".into()),
                // Keep the client's address: Envoy uses it (`use_remote_address`).
                external_traffic_policy: Some("Local".into()),
                selector: Some(selector(&labels)),
                ports: Some(vec![service_port("http", 80), service_port("https", 443)]),
                ..ServiceSpec::default()
            }),
            ..Service::default()
        })?,
        Object::new(&deployment(
            &name,
            ns,
            &labels,
            Some(BTreeMap::from([(CONFIG_HASH_ANNOTATION.to_owned(), hash)])),
            spec,
        ))?,
        Object::new(&pdb(&name, ns, &labels))?,
    ])
}

/// SHA-256 over the ConfigMap's keys and values, hex.
fn config_hash(data: &BTreeMap<String, String>) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    for (key, value) in data {
        for part in [key.as_bytes(), value.as_bytes()] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
    }
    ctx.finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn objects(checked: &Checked<'_>) -> Result<Vec<Object>, ProfileError> {
    let mut out = controller(checked)?;
    for gateway in &checked.gateways {
        out.extend(envoy(checked, gateway)?);
    }
    Ok(out)
}
