//! Pod security (`POD-0xx`): the Pod Security Standards `restricted` profile (all baseline
//! and restricted controls, over `containers`, `initContainers` and `ephemeralContainers`)
//! and the beyond-restricted list of `reference/hardening.md` (a): uid and gid above 10000,
//! read-only root filesystem, resources, digests, own namespace, NetworkPolicy coverage,
//! Secrets as files, tokens, Pod Security labels, and the data plane apart from the control
//! plane.

use std::collections::BTreeMap;

use super::catalog::{self, Check};
use super::k8s::{Cluster, Container, Object, Pod, selector_matches};
use super::yaml::Node;
use super::{Ctx, ObjectRef};

/// Capabilities `restricted` allows to add.
const RESTRICTED_ADD: [&str; 1] = ["NET_BIND_SERVICE"];
/// Volume types `restricted` allows.
const VOLUME_TYPES: [&str; 8] = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];
/// The baseline's safe sysctls (prefixes for the `*` families).
const SAFE_SYSCTLS: [&str; 9] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_",
];
const SELINUX_TYPES: [&str; 4] = [
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

pub(crate) fn check(ctx: &mut Ctx, cluster: &Cluster<'_>) {
    let pods: Vec<Pod<'_>> = cluster.pods().collect();
    for pod in &pods {
        check_pod(ctx, pod);
    }
    check_namespaces(ctx, cluster);
    check_network_policies(ctx, cluster, &pods);
    check_colocation(ctx, &pods);
}

struct Emit<'c, 'p> {
    ctx: &'c mut Ctx,
    object: &'p Object,
}

impl Emit<'_, '_> {
    fn at(&mut self, check: &'static Check, line: usize, message: String) {
        let object = self.object;
        self.ctx.report(
            check,
            object.object_ref(),
            object.at(line),
            format!("{} {}: {message}", object.kind, object.name),
        );
    }
}

/// A securityContext field: the container's if set, else the pod's (for the fields a
/// container inherits).
fn effective<'a>(pod: &'a Node, container: &'a Node, path: &[&str]) -> Option<&'a Node> {
    let mut in_container = vec!["securityContext"];
    in_container.extend_from_slice(path);
    container
        .path(&in_container)
        .or_else(|| pod.path(&in_container))
}

fn check_pod(ctx: &mut Ctx, pod: &Pod<'_>) {
    let spec = pod.spec;
    let mut e = Emit {
        ctx,
        object: pod.object,
    };
    let containers = pod.containers();

    // POD-002: host namespaces.
    for key in ["hostNetwork", "hostPID", "hostIPC"] {
        if let Some(node) = spec.get(key).filter(|n| n.as_bool() == Some(true)) {
            e.at(catalog::POD_002, node.line, format!("{key}: true"));
        }
    }
    // POD-001: HostProcess.
    let host_process = |n: &Node| {
        n.path(&["securityContext", "windowsOptions", "hostProcess"])
            .filter(|h| h.as_bool() == Some(true))
            .map(|h| h.line)
    };
    if let Some(line) = host_process(spec) {
        e.at(
            catalog::POD_001,
            line,
            "pod securityContext windowsOptions.hostProcess: true".to_owned(),
        );
    }
    // POD-005, POD-013: volumes.
    for volume in spec.get("volumes").map(Node::items).unwrap_or_default() {
        let name = volume.get("name").and_then(Node::as_str).unwrap_or("?");
        for (kind, node) in volume.entries() {
            if kind == "name" {
                continue;
            }
            if kind == "hostPath" {
                let path = node.get("path").and_then(Node::as_str).unwrap_or("?");
                e.at(
                    catalog::POD_005,
                    node.line,
                    format!("volume \"{name}\" mounts the node's {path} (hostPath)"),
                );
            } else if !VOLUME_TYPES.contains(&kind.as_str()) {
                e.at(
                    catalog::POD_013,
                    node.line,
                    format!("volume \"{name}\" is of type {kind}, which restricted does not allow"),
                );
            }
        }
    }
    // POD-012: sysctls.
    for sysctl in spec
        .path(&["securityContext", "sysctls"])
        .map(Node::items)
        .unwrap_or_default()
    {
        let name = sysctl.get("name").and_then(Node::as_str).unwrap_or("?");
        if !SAFE_SYSCTLS
            .iter()
            .any(|s| name == *s || (s.ends_with('_') && name.starts_with(s)))
        {
            e.at(
                catalog::POD_012,
                sysctl.line,
                format!("sysctl {name} is not in the safe list"),
            );
        }
    }
    // POD-008: AppArmor annotations (legacy).
    for (key, value) in &pod.annotations {
        if let Some(container) = key.strip_prefix("container.apparmor.security.beta.kubernetes.io/")
            && value != "runtime/default"
            && !value.starts_with("localhost/")
        {
            e.at(
                catalog::POD_008,
                spec.line,
                format!("annotation sets AppArmor profile {value} for container \"{container}\""),
            );
        }
    }
    for (what, node) in std::iter::once(("pod".to_owned(), spec))
        .chain(containers.iter().map(|c| (c.label(), c.node)))
    {
        if let Some(t) = node
            .path(&["securityContext", "appArmorProfile", "type"])
            .filter(|t| t.as_str() == Some("Unconfined"))
        {
            e.at(
                catalog::POD_008,
                t.line,
                format!("{what}: appArmorProfile type Unconfined"),
            );
        }
        if let Some(se) = node.path(&["securityContext", "seLinuxOptions"]) {
            let bad_type = se
                .get("type")
                .and_then(Node::as_str)
                .filter(|t| !t.is_empty() && !SELINUX_TYPES.contains(t));
            if let Some(t) = bad_type {
                e.at(
                    catalog::POD_009,
                    se.line,
                    format!("{what}: seLinuxOptions type {t}"),
                );
            }
            for key in ["user", "role"] {
                if se
                    .get(key)
                    .and_then(Node::as_str)
                    .is_some_and(|v| !v.is_empty())
                {
                    e.at(
                        catalog::POD_009,
                        se.line_of(key),
                        format!("{what}: seLinuxOptions {key} is set"),
                    );
                }
            }
        }
    }

    // Pod-level seccomp, non-root, uid.
    let pod_seccomp = spec.path(&["securityContext", "seccompProfile", "type"]);
    let pod_non_root = spec.path(&["securityContext", "runAsNonRoot"]);
    if let Some(n) = spec
        .path(&["securityContext", "runAsUser"])
        .filter(|n| n.as_int() == Some(0))
    {
        e.at(
            catalog::POD_016,
            n.line,
            "pod securityContext runAsUser: 0".to_owned(),
        );
    }
    if let Some(n) = spec
        .path(&["securityContext", "fsGroup"])
        .filter(|n| n.as_int() == Some(0))
    {
        e.at(
            catalog::POD_018,
            n.line,
            "pod securityContext fsGroup: 0 (root group)".to_owned(),
        );
    }

    for c in &containers {
        check_container(&mut e, spec, c, pod_seccomp, pod_non_root);
    }

    // POD-026/POD-029: tokens and service accounts (data-plane tokens are RBAC-026).
    if !pod.is_data_plane() {
        let automount = spec.get("automountServiceAccountToken");
        if automount.and_then(Node::as_bool) != Some(false) {
            e.at(
                catalog::POD_026,
                automount.map_or(spec.line, |n| n.line),
                "the pod spec does not set automountServiceAccountToken: false, so every container gets an API token".to_owned(),
            );
        }
    }
    if pod.service_account() == "default" {
        let line = spec
            .get("serviceAccountName")
            .or_else(|| spec.get("serviceAccount"))
            .map_or(spec.line, |n| n.line);
        e.at(
            catalog::POD_029,
            line,
            "runs as the namespace's default service account".to_owned(),
        );
    }
}

fn check_container(
    e: &mut Emit<'_, '_>,
    spec: &Node,
    c: &Container<'_>,
    pod_seccomp: Option<&Node>,
    pod_non_root: Option<&Node>,
) {
    let node = c.node;
    let who = c.label();
    let sc = node.get("securityContext");
    let sc_line = sc.map_or(node.line, |n| n.line);
    let field = |key: &str| sc.and_then(|s| s.get(key));

    if let Some(h) = node
        .path(&["securityContext", "windowsOptions", "hostProcess"])
        .filter(|h| h.as_bool() == Some(true))
    {
        e.at(
            catalog::POD_001,
            h.line,
            format!("{who}: windowsOptions.hostProcess: true"),
        );
    }
    if let Some(p) = field("privileged").filter(|p| p.as_bool() == Some(true)) {
        e.at(catalog::POD_003, p.line, format!("{who}: privileged: true"));
    }
    // Capabilities.
    let caps = sc.and_then(|s| s.get("capabilities"));
    let added = caps.and_then(|c| c.get("add"));
    for cap in added.map(Node::items).unwrap_or_default() {
        let name = cap.scalar_text().unwrap_or_default();
        let bare = name.trim_start_matches("CAP_");
        if RESTRICTED_ADD.contains(&bare) {
            e.at(
                catalog::POD_031,
                cap.line,
                format!("{who}: adds capability {name}"),
            );
        } else {
            e.at(
                catalog::POD_004,
                cap.line,
                format!("{who}: adds capability {name}"),
            );
        }
    }
    let drops_all = caps
        .and_then(|c| c.get("drop"))
        .map(Node::strings)
        .unwrap_or_default()
        .iter()
        .any(|d| d.eq_ignore_ascii_case("ALL"));
    if !drops_all {
        e.at(
            catalog::POD_017,
            caps.map_or(sc_line, |n| n.line),
            format!("{who}: capabilities.drop does not include ALL"),
        );
    }
    // Host ports and low ports.
    for port in node.get("ports").map(Node::items).unwrap_or_default() {
        if let Some(hp) = port
            .get("hostPort")
            .filter(|p| p.as_int().is_some_and(|v| v != 0))
        {
            e.at(
                catalog::POD_006,
                hp.line,
                format!("{who}: hostPort {}", hp.scalar_text().unwrap_or_default()),
            );
        }
        if let Some(cp) = port
            .get("containerPort")
            .filter(|p| p.as_int().is_some_and(|v| v < 1024))
        {
            e.at(
                catalog::POD_030,
                cp.line,
                format!(
                    "{who}: containerPort {} is below 1024",
                    cp.scalar_text().unwrap_or_default()
                ),
            );
        }
    }
    // Probes and hooks with a host.
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        for handler in ["httpGet", "tcpSocket"] {
            if let Some(h) = node
                .path(&[probe, handler, "host"])
                .filter(|h| h.as_str().is_some_and(|s| !s.is_empty()))
            {
                e.at(
                    catalog::POD_007,
                    h.line,
                    format!(
                        "{who}: {probe}.{handler}.host is {}",
                        h.as_str().unwrap_or_default()
                    ),
                );
            }
        }
    }
    for hook in ["postStart", "preStop"] {
        for handler in ["httpGet", "tcpSocket"] {
            if let Some(h) = node
                .path(&["lifecycle", hook, handler, "host"])
                .filter(|h| h.as_str().is_some_and(|s| !s.is_empty()))
            {
                e.at(
                    catalog::POD_007,
                    h.line,
                    format!(
                        "{who}: lifecycle.{hook}.{handler}.host is {}",
                        h.as_str().unwrap_or_default()
                    ),
                );
            }
        }
    }
    if let Some(pm) = field("procMount").filter(|p| p.as_str().is_some_and(|s| s != "Default")) {
        e.at(
            catalog::POD_010,
            pm.line,
            format!("{who}: procMount {}", pm.as_str().unwrap_or_default()),
        );
    }
    // Seccomp: the container's, else the pod's; must be RuntimeDefault or Localhost.
    let seccomp = field("seccompProfile")
        .and_then(|s| s.get("type"))
        .or(pod_seccomp);
    match seccomp.and_then(Node::as_str) {
        Some("RuntimeDefault" | "Localhost") => {}
        Some(other) => e.at(
            catalog::POD_011,
            seccomp.map_or(sc_line, |n| n.line),
            format!("{who}: seccompProfile type {other}"),
        ),
        None => e.at(
            catalog::POD_011,
            sc_line,
            format!("{who}: no seccompProfile (pod or container): every system call is allowed"),
        ),
    }
    if c.role != "ephemeral container" {
        if field("allowPrivilegeEscalation").and_then(Node::as_bool) != Some(false) {
            e.at(
                catalog::POD_014,
                field("allowPrivilegeEscalation").map_or(sc_line, |n| n.line),
                format!("{who}: allowPrivilegeEscalation is not false"),
            );
        }
        if field("readOnlyRootFilesystem").and_then(Node::as_bool) != Some(true) {
            e.at(
                catalog::POD_019,
                field("readOnlyRootFilesystem").map_or(sc_line, |n| n.line),
                format!("{who}: readOnlyRootFilesystem is not true"),
            );
        }
    }
    // Non-root.
    let non_root = field("runAsNonRoot").or(pod_non_root);
    if non_root.and_then(Node::as_bool) != Some(true) {
        e.at(
            catalog::POD_015,
            non_root.map_or(sc_line, |n| n.line),
            format!("{who}: runAsNonRoot is not true (pod or container)"),
        );
    }
    if let Some(u) = field("runAsUser").filter(|u| u.as_int() == Some(0)) {
        e.at(catalog::POD_016, u.line, format!("{who}: runAsUser: 0"));
    }
    // Beyond restricted: uid and gid above 10000.
    let mut low = Vec::new();
    for key in ["runAsUser", "runAsGroup"] {
        match effective(spec, node, &[key]).and_then(Node::as_int) {
            Some(v) if v > 10000 => {}
            Some(v) => low.push(format!("{key} {v}")),
            None => low.push(format!("{key} unset (the image decides)")),
        }
    }
    if !low.is_empty() {
        e.at(
            catalog::POD_018,
            effective(spec, node, &["runAsUser"]).map_or(sc_line, |n| n.line),
            format!("{who}: {} (want more than 10000)", low.join(", ")),
        );
    }
    // Resources (not for ephemeral containers, which have none).
    if c.role != "ephemeral container" {
        let mut missing = Vec::new();
        for kind in ["requests", "limits"] {
            for resource in ["cpu", "memory", "ephemeral-storage"] {
                if node.path(&["resources", kind, resource]).is_none() {
                    missing.push(format!("{kind}.{resource}"));
                }
            }
        }
        if !missing.is_empty() {
            e.at(
                catalog::POD_020,
                node.line_of("resources"),
                format!("{who}: no {}", missing.join(", ")),
            );
        }
        // Images.
        if let Some(image) = node.get("image") {
            let text = image.as_str().unwrap_or_default();
            match text.split_once("@sha256:") {
                None => e.at(
                    catalog::POD_021,
                    image.line,
                    format!("{who}: image {text} is not pinned by digest"),
                ),
                Some((_, digest)) => {
                    if digest.len() != 64 || !digest.chars().all(|c| c.is_ascii_hexdigit()) {
                        e.at(
                            catalog::POD_021,
                            image.line,
                            format!("{who}: image {text} has a malformed sha256 digest"),
                        );
                    } else if digest.chars().all(|c| c == '0') {
                        e.at(
                            catalog::POD_022,
                            image.line,
                            format!("{who}: image {text} has a placeholder digest (all zeros)"),
                        );
                    }
                }
            }
        }
        // Secrets in the environment.
        for env in node.get("env").map(Node::items).unwrap_or_default() {
            if let Some(r) = env.path(&["valueFrom", "secretKeyRef"]) {
                e.at(
                    catalog::POD_025,
                    r.line,
                    format!(
                        "{who}: environment variable {} comes from Secret {}",
                        env.get("name").and_then(Node::as_str).unwrap_or("?"),
                        r.get("name").and_then(Node::as_str).unwrap_or("?")
                    ),
                );
            }
        }
        for from in node.get("envFrom").map(Node::items).unwrap_or_default() {
            if let Some(r) = from.get("secretRef") {
                e.at(
                    catalog::POD_025,
                    r.line,
                    format!(
                        "{who}: envFrom Secret {}",
                        r.get("name").and_then(Node::as_str).unwrap_or("?")
                    ),
                );
            }
        }
    }
}

/// Kinds `POD-023` looks at: namespaced objects people create (what checkov's CKV_K8S_21
/// covers, and more).
fn check_namespaces(ctx: &mut Ctx, cluster: &Cluster<'_>) {
    for object in cluster.objects {
        if !object.is_namespaced() {
            continue;
        }
        // The namespace's own default account and the API's Service live in default by design.
        if (object.kind == "ServiceAccount" && object.name == "default")
            || (object.kind == "Service" && object.name == "kubernetes")
        {
            continue;
        }
        let line = object
            .node
            .path(&["metadata", "namespace"])
            .map_or(object.node.line, |n| n.line);
        let message = match object.namespace.as_deref() {
            None => Some("has no namespace: it is applied in the current context's namespace, usually default".to_owned()),
            Some("default") => Some("is in the default namespace".to_owned()),
            Some("kube-system") => Some("is in kube-system, with the cluster's most privileged accounts".to_owned()),
            Some(_) => None,
        };
        if let Some(message) = message {
            ctx.report(
                catalog::POD_023,
                object.object_ref(),
                object.at(line),
                format!("{} {} {message}", object.kind, object.name),
            );
        }
    }
    for object in cluster.of_kind(&["Namespace"]) {
        let enforce = object.labels.get("pod-security.kubernetes.io/enforce");
        if enforce.map(String::as_str) != Some("restricted") {
            let line = object
                .node
                .path(&["metadata", "labels"])
                .map_or(object.node.line, |n| n.line);
            ctx.report(
                catalog::POD_027,
                object.object_ref(),
                object.at(line),
                format!(
                    "Namespace {} {}",
                    object.name,
                    match enforce {
                        Some(level) => format!("enforces Pod Security {level}, not restricted"),
                        None => "has no pod-security.kubernetes.io/enforce label".to_owned(),
                    }
                ),
            );
        }
    }
}

fn check_network_policies(ctx: &mut Ctx, cluster: &Cluster<'_>, pods: &[Pod<'_>]) {
    struct Policy<'a> {
        object: &'a Object,
        selector: Option<&'a Node>,
        ingress: bool,
        egress: bool,
    }
    let policies: Vec<Policy<'_>> = cluster
        .of_kind(&["NetworkPolicy"])
        .map(|object| {
            let spec = object.node.get("spec");
            let types = spec.and_then(|s| s.get("policyTypes")).map(Node::strings);
            let (ingress, egress) = match types {
                Some(t) if !t.is_empty() => (
                    t.iter().any(|x| x == "Ingress"),
                    t.iter().any(|x| x == "Egress"),
                ),
                _ => (true, spec.and_then(|s| s.get("egress")).is_some()),
            };
            Policy {
                object,
                selector: spec.and_then(|s| s.get("podSelector")),
                ingress,
                egress,
            }
        })
        .collect();
    for pod in pods {
        let namespace = pod.object.effective_namespace();
        let selecting: Vec<&Policy<'_>> = policies
            .iter()
            .filter(|p| {
                p.object.effective_namespace() == namespace
                    && p.selector.is_some_and(|s| selector_matches(s, &pod.labels))
            })
            .collect();
        let mut missing = Vec::new();
        if !selecting.iter().any(|p| p.ingress) {
            missing.push("ingress");
        }
        if !selecting.iter().any(|p| p.egress) {
            missing.push("egress");
        }
        if !missing.is_empty() {
            let object = pod.object;
            ctx.report(
                catalog::POD_024,
                object.object_ref(),
                object.here(),
                format!(
                    "{} {}: no NetworkPolicy in namespace {namespace} selects its pods for {}",
                    object.kind,
                    object.name,
                    missing.join(" or ")
                ),
            )
            .related = selecting.iter().map(|p| p.object.object_ref()).collect();
        }
    }
}

fn check_colocation(ctx: &mut Ctx, pods: &[Pod<'_>]) {
    let mut control: BTreeMap<&str, Vec<&Pod<'_>>> = BTreeMap::new();
    for pod in pods.iter().filter(|p| p.is_control_plane()) {
        control
            .entry(pod.object.effective_namespace())
            .or_default()
            .push(pod);
    }
    for pod in pods.iter().filter(|p| p.is_data_plane()) {
        let namespace = pod.object.effective_namespace();
        if let Some(controllers) = control.get(namespace) {
            let related: Vec<ObjectRef> =
                controllers.iter().map(|c| c.object.object_ref()).collect();
            let object = pod.object;
            let names = related
                .iter()
                .map(ObjectRef::target)
                .collect::<Vec<_>>()
                .join(", ");
            ctx.report(
                catalog::POD_028,
                object.object_ref(),
                object.here(),
                format!(
                    "{} {} runs the data plane in namespace {namespace}, beside the control plane ({})",
                    object.kind,
                    object.name,
                    names
                ),
            )
            .related = related;
        }
    }
}
