//! Every check `gatehouse verify` runs: its stable id, severity, what it wants, why it matters
//! and how to fix a finding. `gatehouse verify list` and `gatehouse verify explain ID` print
//! this, offline. Ids are never reused: a retired check keeps its id out of circulation.

use super::{Category, Severity};

/// One check of the registry.
#[derive(Debug, PartialEq, Eq)]
pub struct Check {
    /// The stable id: `RBAC-003`, `POD-019` …
    pub id: &'static str,
    /// A PascalCase name (SARIF `reportingDescriptor.name`).
    pub name: &'static str,
    /// What a passing check means, in a few words ("no ClusterRole reads Secrets").
    pub title: &'static str,
    /// The family.
    pub category: Category,
    /// The severity of its findings.
    pub severity: Severity,
    /// Why it matters.
    pub why: &'static str,
    /// How to fix a finding.
    pub fix: &'static str,
    /// Where the rule comes from, and which other tools flag the same thing.
    pub references: &'static str,
}

impl Check {
    /// The text of `gatehouse verify explain ID`.
    #[must_use]
    pub fn explain(&self) -> String {
        format!(
            "{id}  {severity}  {category}\n{title}\n\nWhy it matters\n  {why}\n\nHow to fix it\n  {fix}\n\nReferences\n  {references}\n",
            id = self.id,
            severity = self.severity,
            category = self.category.title(),
            title = self.title,
            why = wrap(self.why),
            fix = wrap(self.fix),
            references = wrap(self.references),
        )
    }
}

/// Wraps text at 96 columns with a two-space hanging indent.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for word in text.split_whitespace() {
        if width > 0 && width + 1 + word.len() > 96 {
            out.push_str("\n  ");
            width = 0;
        } else if width > 0 {
            out.push(' ');
            width += 1;
        }
        out.push_str(word);
        width += word.len();
    }
    out
}

/// Every check, in id order within each family, families in report order.
#[must_use]
pub fn checks() -> &'static [&'static Check] {
    ALL
}

/// The check with this id (case-insensitive), if there is one.
#[must_use]
pub fn find(id: &str) -> Option<&'static Check> {
    ALL.iter().copied().find(|c| c.id.eq_ignore_ascii_case(id))
}

macro_rules! checks {
    ($($konst:ident = $id:literal $name:literal $category:ident $severity:ident
        title: $title:literal why: $why:literal fix: $fix:literal refs: $refs:literal;)*) => {
        $(
            #[doc = concat!("`", $id, "`: ", $title, ".")]
            pub const $konst: &Check = &Check {
                id: $id,
                name: $name,
                title: $title,
                category: Category::$category,
                severity: Severity::$severity,
                why: $why,
                fix: $fix,
                references: $refs,
            };
        )*
        const ALL: &[&Check] = &[$($konst),*];
    };
}

checks! {
    RBAC_001 = "RBAC-001" "RbacWildcard" Rbac Error
        title: "no wildcard (*) in verbs, resources, API groups or non-resource URLs"
        why: "A wildcard grants every verb or type, including types and subresources added later (CRDs, pods/exec, nodes/proxy). It matches every other row of the dangerous-RBAC table."
        fix: "List the verbs, API groups and resources the subject needs, one rule per group of resources."
        refs: "Kubernetes RBAC good practices; checkov CKV_K8S_49 (first rule only); trivy KSV-0044/0045/0046/0112; KubiScan risky-any-*; hardening.md (b) row 1";
    RBAC_002 = "RBAC-002" "RbacClusterAdminBinding" Rbac Error
        title: "nothing is bound to cluster-admin or the system:masters group"
        why: "cluster-admin can do anything in every namespace; members of system:masters bypass RBAC and admission webhooks entirely."
        fix: "Bind a role with only the permissions needed; never name system:masters in a binding."
        refs: "Kubernetes RBAC good practices; Polaris clusterrolebindingClusterAdmin; trivy KSV-0111/0123; rbac-police cluster_admin; hardening.md (b) row 2";
    RBAC_003 = "RBAC-003" "RbacSecretsClusterWide" Rbac Error
        title: "no ClusterRole reads Secrets (cluster-wide)"
        why: "get, list or watch on Secrets across the cluster returns every Secret's contents, including service-account tokens and TLS keys of every namespace; list and watch return contents too."
        fix: "Read Secrets through a namespaced Role in the namespaces that hold the Secrets needed, or limit the rule with resourceNames."
        refs: "Kubernetes RBAC good practices; checkov CKV2_K8S_5; trivy KSV-0041; KubiScan risky-get/list-secrets; rbac-police list_secrets; hardening.md (b) row 3";
    RBAC_004 = "RBAC-004" "RbacWorkloadWriter" Rbac Error
        title: "no role creates or changes pods or workload controllers"
        why: "Whoever creates a pod (directly or through a Deployment, DaemonSet, StatefulSet, ReplicaSet, Job, CronJob or ReplicationController) can mount any Secret and run as any service account of the namespace."
        fix: "Remove create, update and patch on pods and workload controllers; deploy through a pipeline identity that is not a workload's."
        refs: "Kubernetes RBAC good practices; trivy KSV-0048; KubiScan risky-create/update-*; rbac-tool Workload Creators; rbac-police modify_pods; hardening.md (b) row 4";
    RBAC_005 = "RBAC-005" "RbacPodsExec" Rbac Error
        title: "no role can exec into pods (pods/exec)"
        why: "pods/exec runs commands in other pods, with their service accounts and Secrets. The websocket variant needs only get, so get counts as well."
        fix: "Remove pods/exec (both create and get)."
        refs: "checkov CKV2_K8S_2 (create only); Polaris *PodExecAttach; trivy KSV-0053; KubiScan risky-exec-pods; hardening.md (b) row 5";
    RBAC_006 = "RBAC-006" "RbacPodsAttach" Rbac Error
        title: "no role can attach to pods (pods/attach)"
        why: "Attaching to a running container gives its terminal: the same reach as exec."
        fix: "Remove pods/attach (create and get)."
        refs: "Polaris *PodExecAttach; trivy KSV-0054; KubiScan risky-attach-pods; hardening.md (b) row 6";
    RBAC_007 = "RBAC-007" "RbacEphemeralContainers" Rbac Error
        title: "no role can add ephemeral containers"
        why: "update or patch on pods/ephemeralcontainers injects a container, possibly privileged, into a running pod."
        fix: "Remove pods/ephemeralcontainers; debug with a dedicated, audited break-glass role."
        refs: "rbac-tool; rbac-police pods_ephemeral_ctrs; hardening.md (b) row 7";
    RBAC_008 = "RBAC-008" "RbacNodesProxy" Rbac Error
        title: "no role reaches the kubelet API (nodes/proxy)"
        why: "nodes/proxy talks to the kubelet: exec in every pod of a node, bypassing audit logging and admission. Even get is not read-only."
        fix: "Remove nodes/proxy; read metrics through the metrics API instead."
        refs: "Kubernetes RBAC good practices; checkov CKV2_K8S_2 (create only); trivy KSV-0047; rbac-police nodes_proxy; hardening.md (b) row 8";
    RBAC_009 = "RBAC-009" "RbacEscalate" Rbac Error
        title: "no role can escalate roles"
        why: "escalate on roles or clusterroles lifts RBAC's rule that nobody can grant a permission they do not hold: the holder can write itself any permission."
        fix: "Remove the escalate verb."
        refs: "Kubernetes RBAC good practices; checkov CKV_K8S_158; trivy KSV-0050; rbac-police escalate_roles; hardening.md (b) row 9";
    RBAC_010 = "RBAC-010" "RbacBind" Rbac Error
        title: "no role can bind roles or write role bindings"
        why: "bind on roles or clusterroles, or create/update/patch on rolebindings and clusterrolebindings, grants roles the holder does not have (cluster-admin included)."
        fix: "Remove bind and binding writes; if delegation is needed, limit bind to named roles with resourceNames and review it."
        refs: "Kubernetes RBAC good practices; checkov CKV_K8S_157, CKV2_K8S_1; trivy KSV-0050/0051/0052/0055; KubiScan risky-create-rolebinding-*; hardening.md (b) row 10";
    RBAC_011 = "RBAC-011" "RbacImpersonate" Rbac Error
        title: "no role can impersonate users, groups or service accounts"
        why: "impersonate acts as another identity, with all of its permissions."
        fix: "Remove the impersonate verb."
        refs: "Kubernetes RBAC good practices; checkov CKV2_K8S_3; trivy KSV-0043; KubiScan risky-impersonate-*; hardening.md (b) row 11";
    RBAC_012 = "RBAC-012" "RbacTokenRequest" Rbac Error
        title: "no role can mint service-account tokens"
        why: "create on serviceaccounts/token issues a token for any service account of the scope: its permissions, on demand."
        fix: "Remove serviceaccounts/token; let the kubelet project tokens into the pods that need them."
        refs: "Kubernetes RBAC good practices; rbac-police token_request; hardening.md (b) row 12";
    RBAC_013 = "RBAC-013" "RbacSecretWriterPrivileged" Rbac Error
        title: "no role writes Secrets in privileged namespaces or cluster-wide"
        why: "Creating a kubernetes.io/service-account-token Secret for an account of kube-system (or of any namespace, cluster-wide) mints a token with that account's rights."
        fix: "Write Secrets only through a namespaced Role in a namespace that holds no privileged service account; limit update and patch with resourceNames."
        refs: "rbac-police issue_token_secrets; hardening.md (b) row 13";
    RBAC_014 = "RBAC-014" "RbacApproveCsr" Rbac Error
        title: "no role can approve certificate signing requests"
        why: "Approving CSRs (update on certificatesigningrequests/approval, approve on signers) issues client certificates with any name, such as system components'."
        fix: "Remove CSR approval; let the cluster's own approvers handle CSRs."
        refs: "Kubernetes RBAC good practices; checkov CKV_K8S_156; rbac-police approve_csrs; hardening.md (b) row 14";
    RBAC_015 = "RBAC-015" "RbacWebhooks" Rbac Error
        title: "no role writes admission webhooks"
        why: "A mutating or validating webhook configuration sees, and can rewrite, every object admitted to the cluster."
        fix: "Remove write verbs on mutatingwebhookconfigurations and validatingwebhookconfigurations."
        refs: "Kubernetes RBAC good practices; checkov CKV_K8S_155; trivy KSV-0114; rbac-police control_webhooks; hardening.md (b) row 15";
    RBAC_016 = "RBAC-016" "RbacAdmissionPolicies" Rbac Error
        title: "no role writes admission policies (ValidatingAdmissionPolicy, Kyverno, Gatekeeper)"
        why: "Whoever writes admission policies can switch off the controls that keep pods restricted."
        fix: "Remove write verbs on admission policies and their bindings; manage them from the cluster's configuration pipeline."
        refs: "rbac-tool; hardening.md (b) row 16";
    RBAC_017 = "RBAC-017" "RbacCrdWriter" Rbac Error
        title: "no role writes CustomResourceDefinitions"
        why: "Changing a CRD alters or shadows an extension API that controllers trust (Gateway API, policies)."
        fix: "Remove write verbs on customresourcedefinitions; install CRDs with the cluster's configuration pipeline."
        refs: "rbac-tool; hardening.md (b) row 17";
    RBAC_018 = "RBAC-018" "RbacServiceStatus" Rbac Error
        title: "no role writes services/status (CVE-2020-8554)"
        why: "Setting status.loadBalancer.ingress.ip of a Service lets its holder intercept traffic to that address across the cluster (CVE-2020-8554, unfixed)."
        fix: "Remove update and patch on services/status."
        refs: "checkov CKV2_K8S_4; rbac-police modify_service_status_cve_2020_8554; hardening.md (b) row 18";
    RBAC_019 = "RBAC-019" "RbacTrafficObjects" Rbac Error
        title: "no role writes Services, Endpoints, NetworkPolicies, Ingresses or Gateway API objects"
        why: "These objects decide where traffic goes and which pods may talk: writing them intercepts traffic or opens lateral movement. For a gateway's control plane this is the core risk."
        fix: "Grant read verbs only; a controller writes the status subresource (for example httproutes/status), never the objects."
        refs: "trivy KSV-0056; rbac-tool Networking and Gateway API; hardening.md (b) row 19";
    RBAC_020 = "RBAC-020" "RbacPersistentVolumes" Rbac Error
        title: "no role creates PersistentVolumes"
        why: "A PersistentVolume can point at a host path: effectively hostPath for whoever can claim it."
        fix: "Remove create on persistentvolumes; use a StorageClass and PersistentVolumeClaims."
        refs: "Kubernetes RBAC good practices; rbac-tool Storage; hardening.md (b) row 20";
    RBAC_021 = "RBAC-021" "RbacNamespaceWriter" Rbac Error
        title: "no role changes Namespaces"
        why: "Relabelling a namespace weakens Pod Security admission (pod-security.kubernetes.io labels) and changes which NetworkPolicies select it."
        fix: "Remove update and patch on namespaces."
        refs: "Kubernetes RBAC good practices; hardening.md (b) row 21";
    RBAC_022 = "RBAC-022" "RbacPodStealing" Rbac Error
        title: "no role writes pod or node status, deletes or evicts pods, or cordons nodes"
        why: "Writing pods/status or nodes/status spoofs labels and readiness; deleting or evicting pods and cordoning nodes moves powerful pods onto a node the attacker controls."
        fix: "Remove write verbs on pods/status and nodes/status, delete on pods, create on pods/eviction and update/patch on nodes."
        refs: "rbac-police modify_pod_status, modify_node_status, steal_pods; hardening.md (b) row 22";
    RBAC_023 = "RBAC-023" "RbacUnauthenticatedBinding" Rbac Error
        title: "nothing is bound to anonymous, unauthenticated or all authenticated users"
        why: "system:anonymous and system:unauthenticated are anyone who can reach the API server; system:authenticated is every user and every service account of the cluster."
        fix: "Bind named users, groups or service accounts instead."
        refs: "kubesec BindingsToSystemAnonymous; trivy KSV-0122; krane unauthenticated-subject-access; hardening.md (b) row 23";
    RBAC_024 = "RBAC-024" "DataPlaneHasRbac" Rbac Error
        title: "the data plane's service account has no Role or ClusterRole binding"
        why: "Envoy faces the internet. Code execution in it must not reach the Kubernetes API: any binding to its service account (directly, or through system:serviceaccounts, system:serviceaccounts:NAMESPACE or system:authenticated) gives an attacker those permissions."
        fix: "Remove the binding or the subject; Envoy needs no Kubernetes permission (it gets everything over xDS)."
        refs: "SECURITY.md (adversary 1); docs/profiles.md (service accounts); hardening.md (a)";
    RBAC_025 = "RBAC-025" "DataPlaneAccountAutomount" Rbac Error
        title: "the data plane's ServiceAccount does not automount its token"
        why: "A token mounted into Envoy is a credential for the API server, readable by code running in Envoy."
        fix: "Set automountServiceAccountToken: false on the ServiceAccount (and on the pod)."
        refs: "NSA/CISA 1.11; trivy KSV-0036; hardening.md (a)";
    RBAC_026 = "RBAC-026" "DataPlanePodToken" Rbac Error
        title: "data-plane pods mount no service-account token"
        why: "The pod spec decides whether a token is mounted; without automountServiceAccountToken: false on the pod, or with a projected serviceAccountToken volume, Envoy holds an API credential."
        fix: "Set automountServiceAccountToken: false in the pod spec and remove projected serviceAccountToken sources."
        refs: "checkov CKV_K8S_38; trivy KSV-0036; hardening.md (a)";
    RBAC_027 = "RBAC-027" "RbacSecretsNamespaced" Rbac Warning
        title: "no Role reads the Secrets of a whole namespace"
        why: "Every Secret of the namespace (keys, tokens) is readable by the subject. Sometimes needed (a gateway's controller serves listener certificates), but then the namespace must hold nothing else."
        fix: "Limit the rule with resourceNames where the names are known; otherwise keep the namespace for the Secrets the subject needs and document the exception (docs/profiles.md does)."
        refs: "Kubernetes RBAC good practices; trivy KSV-0113; hardening.md (b) row 3";
    RBAC_028 = "RBAC-028" "RbacSecretWriterNamespaced" Rbac Info
        title: "no Role writes Secrets (non-privileged namespaces)"
        why: "create on Secrets in a namespace can mint a token Secret for any service account there; harmless only when those accounts hold no permission."
        fix: "Keep such namespaces free of privileged service accounts; limit update and patch with resourceNames."
        refs: "rbac-police issue_token_secrets; docs/profiles.md (row 13 exception)";

    POD_001 = "POD-001" "PodHostProcess" Pod Error
        title: "no Windows HostProcess containers"
        why: "A HostProcess container runs directly on the Windows host with full access to it."
        fix: "Remove windowsOptions.hostProcess (or set it false) on the pod and every container."
        refs: "Pod Security Standards baseline (HostProcess)";
    POD_002 = "POD-002" "PodHostNamespaces" Pod Error
        title: "no host network, PID or IPC namespace"
        why: "Sharing the host's namespaces exposes its network interfaces, processes and shared memory to the pod."
        fix: "Remove hostNetwork, hostPID and hostIPC (or set them false)."
        refs: "Pod Security Standards baseline; checkov CKV_K8S_17/18/19; NSA/CISA 1.3-1.5";
    POD_003 = "POD-003" "PodPrivileged" Pod Error
        title: "no privileged containers"
        why: "A privileged container has every capability and every device of the host: escaping it is trivial."
        fix: "Remove securityContext.privileged (or set it false)."
        refs: "Pod Security Standards baseline; checkov CKV_K8S_16; NSA/CISA 1.2";
    POD_004 = "POD-004" "PodCapabilitiesAdded" Pod Error
        title: "no capabilities added beyond NET_BIND_SERVICE"
        why: "Added capabilities (SYS_ADMIN, NET_ADMIN, NET_RAW …) give root-like powers over the kernel or the network."
        fix: "Remove capabilities.add; drop ALL."
        refs: "Pod Security Standards baseline and restricted; checkov CKV_K8S_25, CKV_K8S_39";
    POD_005 = "POD-005" "PodHostPath" Pod Error
        title: "no hostPath volumes"
        why: "A hostPath volume reads or writes the node's files: the container runtime socket, kubelet credentials, other pods' data."
        fix: "Use configMap, secret, emptyDir or persistent volume claims instead."
        refs: "Pod Security Standards baseline; checkov CKV_K8S_27 (docker socket)";
    POD_006 = "POD-006" "PodHostPort" Pod Error
        title: "no host ports"
        why: "hostPort binds the node's address, bypassing the Service and NetworkPolicies."
        fix: "Remove hostPort; expose the port through a Service."
        refs: "Pod Security Standards baseline; checkov CKV_K8S_26";
    POD_007 = "POD-007" "PodProbeHost" Pod Error
        title: "probes and lifecycle hooks do not target another host"
        why: "A probe or hook with host set makes the kubelet connect to an arbitrary address from the node's network."
        fix: "Remove the host field of httpGet and tcpSocket probes and hooks."
        refs: "Pod Security Standards baseline (v1.34+)";
    POD_008 = "POD-008" "PodAppArmor" Pod Error
        title: "AppArmor is not disabled"
        why: "An Unconfined AppArmor profile removes the mandatory access control the runtime applies by default."
        fix: "Use RuntimeDefault or a Localhost profile (appArmorProfile.type), or leave it unset."
        refs: "Pod Security Standards baseline";
    POD_009 = "POD-009" "PodSeLinux" Pod Error
        title: "SELinux options stay within the allowed types"
        why: "A custom SELinux type, user or role can lift the container's confinement."
        fix: "Leave seLinuxOptions unset, or use type container_t, container_init_t, container_kvm_t or container_engine_t without user and role."
        refs: "Pod Security Standards baseline";
    POD_010 = "POD-010" "PodProcMount" Pod Error
        title: "the default /proc mount"
        why: "procMount: Unmasked exposes kernel interfaces that the runtime masks by default."
        fix: "Remove procMount (or set it Default)."
        refs: "Pod Security Standards baseline";
    POD_011 = "POD-011" "PodSeccomp" Pod Error
        title: "seccomp profile RuntimeDefault or Localhost"
        why: "Without a seccomp profile every system call is reachable: the kernel's whole attack surface."
        fix: "Set securityContext.seccompProfile.type: RuntimeDefault on the pod (or on every container)."
        refs: "Pod Security Standards baseline and restricted; checkov CKV_K8S_31; NSA/CISA 1.10";
    POD_012 = "POD-012" "PodUnsafeSysctls" Pod Error
        title: "only safe sysctls"
        why: "Sysctls outside the safe list change kernel settings shared with other pods on the node."
        fix: "Remove the sysctl, or set it on the node."
        refs: "Pod Security Standards baseline";
    POD_013 = "POD-013" "PodVolumeTypes" Pod Error
        title: "only restricted volume types"
        why: "Volume types other than configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret reach node or network storage directly."
        fix: "Use one of the allowed volume types (a PersistentVolumeClaim for storage)."
        refs: "Pod Security Standards restricted";
    POD_014 = "POD-014" "PodPrivilegeEscalation" Pod Error
        title: "allowPrivilegeEscalation: false"
        why: "Without it a process can gain privileges through set-user-id binaries or file capabilities (no_new_privs is not set)."
        fix: "Set securityContext.allowPrivilegeEscalation: false on every container."
        refs: "Pod Security Standards restricted; checkov CKV_K8S_20; NSA/CISA 1.7";
    POD_015 = "POD-015" "PodRunAsNonRoot" Pod Error
        title: "runAsNonRoot: true"
        why: "Root in a container is root on the node's files after an escape; runAsNonRoot makes the kubelet refuse to start a container as uid 0."
        fix: "Set securityContext.runAsNonRoot: true on the pod (or every container)."
        refs: "Pod Security Standards restricted; checkov CKV_K8S_23; NSA/CISA 1.0";
    POD_016 = "POD-016" "PodRunAsRoot" Pod Error
        title: "no container runs as uid 0"
        why: "runAsUser: 0 runs the process as root."
        fix: "Set runAsUser to a non-zero uid above 10000 (65532, the distroless nonroot user)."
        refs: "Pod Security Standards restricted; checkov CKV_K8S_23";
    POD_017 = "POD-017" "PodDropAll" Pod Error
        title: "capabilities drop ALL"
        why: "Containers start with the runtime's default capabilities (NET_RAW, CHOWN, SETUID …) unless they drop them."
        fix: "Set securityContext.capabilities.drop: [ALL] on every container."
        refs: "Pod Security Standards restricted; checkov CKV_K8S_28, CKV_K8S_37";
    POD_018 = "POD-018" "PodHighUid" Pod Warning
        title: "uid and gid above 10000, fsGroup non-zero"
        why: "uids and gids of 10000 or less collide with host users and groups: a container escape acts as that user. An unset uid is the image's choice (Envoy's images have used 101 and 0)."
        fix: "Set runAsUser and runAsGroup to 65532 (pod or container) and fsGroup to a non-zero group."
        refs: "checkov CKV_K8S_40; trivy KSV-0020/0021; kubesec RunAsUser; hardening.md (a)";
    POD_019 = "POD-019" "PodReadOnlyRoot" Pod Error
        title: "read-only root filesystem"
        why: "A writable root lets an attacker drop tools and change binaries or configuration."
        fix: "Set securityContext.readOnlyRootFilesystem: true; mount an emptyDir with sizeLimit where writes are needed."
        refs: "checkov CKV_K8S_22; trivy KSV-0014; NSA/CISA 1.1; hardening.md (a)";
    POD_020 = "POD-020" "PodResources" Pod Warning
        title: "CPU, memory and ephemeral-storage requests and limits"
        why: "Without limits one pod can exhaust the node (memory, CPU, disk) and take its neighbours down."
        fix: "Set resources.requests and resources.limits for cpu, memory and ephemeral-storage."
        refs: "checkov CKV_K8S_10-13; kube-score; trivy KSV-0011/0015/0016/0018";
    POD_021 = "POD-021" "PodImageDigest" Pod Warning
        title: "images pinned by digest"
        why: "A tag can be moved to other bytes; only a digest (@sha256:…) pins what runs."
        fix: "Reference images as REPOSITORY:TAG@sha256:DIGEST."
        refs: "checkov CKV_K8S_43, CKV_K8S_14";
    POD_022 = "POD-022" "PodPlaceholderDigest" Pod Warning
        title: "image digests are not placeholders"
        why: "An all-zero digest is a placeholder that cannot be pulled: the profile must be rendered with the real digest."
        fix: "Render with --image-envoy/--image-controller REF@sha256:DIGEST (look the digest up with crane digest)."
        refs: "docs/profiles.md (Before installing)";
    POD_023 = "POD-023" "DefaultNamespace" Pod Warning
        title: "objects in their own namespace (not default, kube-system, or unset)"
        why: "The default namespace is where everything lands by accident; kube-system holds the cluster's most privileged accounts. An object without a namespace is applied wherever the current context points."
        fix: "Set metadata.namespace to a dedicated namespace."
        refs: "checkov CKV_K8S_21; trivy KSV-0110, KSV-0037; NSA/CISA 1.12";
    POD_024 = "POD-024" "NetworkPolicyCoverage" Pod Warning
        title: "every pod selected by NetworkPolicies for ingress and egress"
        why: "A pod no NetworkPolicy selects accepts and opens any connection: a compromise moves laterally unhindered."
        fix: "Add a default-deny NetworkPolicy to the namespace (podSelector: {}, policyTypes Ingress and Egress) and allow only the needed flows."
        refs: "checkov CKV2_K8S_6; NSA/CISA 2.0; kube-score pod-networkpolicy";
    POD_025 = "POD-025" "SecretsInEnv" Pod Warning
        title: "Secrets as files, never in environment variables"
        why: "Environment variables leak through /proc, crash dumps, logs and child processes."
        fix: "Mount the Secret as a volume and read the file."
        refs: "checkov CKV_K8S_35; kubesec";
    POD_026 = "POD-026" "PodTokenAutomount" Pod Warning
        title: "pods mount a token only when they need one"
        why: "Unless the pod spec says automountServiceAccountToken: false, every container gets an API token by default."
        fix: "Set automountServiceAccountToken: false on the pod; a pod that needs the API mounts the token explicitly (projected volume) into the one container that uses it."
        refs: "checkov CKV_K8S_38; trivy KSV-0036";
    POD_027 = "POD-027" "NamespacePodSecurity" Pod Warning
        title: "Namespaces enforce Pod Security restricted"
        why: "Without the label pod-security.kubernetes.io/enforce: restricted the API server admits pods that weaken isolation (root, host namespaces, capabilities) after any later edit."
        fix: "Label the namespace pod-security.kubernetes.io/enforce: restricted (with enforce-version, audit and warn)."
        refs: "Pod Security admission; hardening.md (a)";
    POD_028 = "POD-028" "DataPlaneWithControlPlane" Pod Error
        title: "the data plane does not share a namespace with the control plane"
        why: "Pods of one namespace share its Secrets and service accounts: a compromised Envoy next to its controller is one step from the controller's credentials and CA."
        fix: "Run gateways in their own namespaces (gatehouse render --gateway NS/NAME with NS not the control plane's)."
        refs: "DESIGN.md section 8; docs/profiles.md (Namespaces)";
    POD_029 = "POD-029" "DefaultServiceAccount" Pod Warning
        title: "pods use a dedicated service account, not default"
        why: "The default service account is shared by every pod of the namespace that names no other: a binding meant for one pod reaches all of them."
        fix: "Create a ServiceAccount per workload and set serviceAccountName."
        refs: "checkov CKV_K8S_41/42; hardening.md (a)";
    POD_030 = "POD-030" "PrivilegedContainerPort" Pod Warning
        title: "container ports 1024 and above"
        why: "Binding a port below 1024 needs NET_BIND_SERVICE (or root)."
        fix: "Listen on a port of 1024 or more and map 80/443 in the Service."
        refs: "trivy KSV-0117; docs/profiles.md (ports)";
    POD_031 = "POD-031" "PodNetBindService" Pod Warning
        title: "no capability added at all (not even NET_BIND_SERVICE)"
        why: "NET_BIND_SERVICE is allowed by restricted but only needed for ports below 1024, which a Service can map instead."
        fix: "Remove capabilities.add and listen on ports of 1024 or more."
        refs: "hardening.md (a); docs/profiles.md (pods)";

    ENVOY_001 = "ENVOY-001" "EnvoyAdminOffHost" Envoy Error
        title: "admin is not reachable off the host"
        why: "Envoy's admin interface can quit the process, change log levels and dump configuration (including secrets' names and clusters); it has no authentication."
        fix: "Bind admin to 127.0.0.1 or ::1, use a unix socket (pipe with mode 0600), or remove it."
        refs: "Envoy docs operations/admin; SECURITY.md";
    ENVOY_002 = "ENVOY-002" "EnvoyAdminSocketMode" Envoy Warning
        title: "the admin socket is private (mode 0600)"
        why: "A unix socket that other users can open gives them the admin interface."
        fix: "Set admin.address.pipe.mode: 384 (0600) and keep the socket in a 0700 directory."
        refs: "Envoy docs operations/admin; docs/profiles.md (standalone)";
    ENVOY_003 = "ENVOY-003" "EnvoyXdsTls" Envoy Error
        title: "xDS over TLS"
        why: "Without TLS a network attacker between Envoy and the control plane reads and rewrites its whole configuration, secrets included."
        fix: "Give the xDS cluster an envoy.transport_sockets.tls UpstreamTlsContext (gatehouse bootstrap does)."
        refs: "SECURITY.md (adversary 3)";
    ENVOY_004 = "ENVOY-004" "EnvoyXdsTls13" Envoy Error
        title: "xDS TLS 1.3 as minimum and maximum"
        why: "Pinning both ends keeps the connection on TLS 1.3 whatever Envoy's defaults become; the control plane refuses anything else."
        fix: "Set tls_params.tls_minimum_protocol_version and tls_maximum_protocol_version to TLSv1_3."
        refs: "SECURITY.md; README (bootstrap)";
    ENVOY_005 = "ENVOY-005" "EnvoyXdsServerVerified" Envoy Error
        title: "xDS server certificate verified against a trust bundle"
        why: "Without a validation context Envoy accepts any server certificate: anyone can pose as the control plane."
        fix: "Configure a validation context with the CA bundle (validation_context_sds_secret_config or trusted_ca)."
        refs: "SECURITY.md (adversary 3)";
    ENVOY_006 = "ENVOY-006" "EnvoyControllerSanPinned" Envoy Error
        title: "the controller's SPIFFE ID pinned (URI SAN)"
        why: "A trust bundle alone accepts every certificate of the CA, including gateways' certificates: a stolen gateway key could pose as the controller."
        fix: "Add match_typed_subject_alt_names with san_type URI and exact spiffe://TRUST-DOMAIN/controller."
        refs: "SECURITY.md; README (bootstrap)";
    ENVOY_007 = "ENVOY-007" "EnvoyOverloadManager" Envoy Warning
        title: "overload manager with heap and connection limits"
        why: "Without it a flood of connections or requests grows Envoy until the OOM killer ends it, with every connection."
        fix: "Configure overload_manager with the fixed_heap and global_downstream_max_connections monitors and shrink_heap/stop_accepting_requests actions (gatehouse bootstrap does)."
        refs: "Envoy best practices (edge); hardening.md (c)";
    ENVOY_008 = "ENVOY-008" "EnvoyHotRestart" Envoy Error
        title: "hot restart disabled in Kubernetes (--disable-hot-restart)"
        why: "Hot restart uses shared memory and a unix-socket domain for processes on one host; in Kubernetes pods are replaced instead, and the shared memory is attack surface."
        fix: "Add --disable-hot-restart to Envoy's container args."
        refs: "hardening.md (c); docs/profiles.md (Envoy specifics)";
    ENVOY_009 = "ENVOY-009" "EnvoyListenerBufferLimit" Envoy Warning
        title: "listener buffer limit 32 KiB"
        why: "The default connection buffer (1 MiB) lets few clients hold much memory."
        fix: "Set per_connection_buffer_limit_bytes: 32768 on the listener."
        refs: "Envoy best practices (edge); hardening.md (c)";
    ENVOY_010 = "ENVOY-010" "EnvoyRemoteAddress" Envoy Warning
        title: "client address is the peer address (use_remote_address, no trusted hops)"
        why: "Otherwise Envoy trusts X-Forwarded-For from clients, and IP-based rules and logs use an address the client chose."
        fix: "Set use_remote_address: true and leave xff_num_trusted_hops at 0 unless behind known load balancers."
        refs: "Envoy best practices (edge); hardening.md (c)";
    ENVOY_011 = "ENVOY-011" "EnvoyPathNormalisation" Envoy Warning
        title: "path normalisation (normalize_path, merge_slashes, escaped slashes)"
        why: "Un-normalised paths (/a/../b, //b, %2F) route differently from how authorisation rules read them."
        fix: "Set normalize_path: true, merge_slashes: true and path_with_escaped_slashes_action: UNESCAPE_AND_REDIRECT (browsers) or REJECT_REQUEST."
        refs: "Envoy best practices (edge); hardening.md (c)";
    ENVOY_012 = "ENVOY-012" "EnvoyUnderscoreHeaders" Envoy Warning
        title: "headers with underscores rejected"
        why: "Backends may treat X_Auth and X-Auth as one header: a client can smuggle a header a filter removed."
        fix: "Set common_http_protocol_options.headers_with_underscores_action: REJECT_REQUEST."
        refs: "Envoy best practices (edge); hardening.md (c)";
    ENVOY_013 = "ENVOY-013" "EnvoyTimeouts" Envoy Warning
        title: "idle, request-header and stream timeouts"
        why: "Without timeouts slow or idle clients hold connections and memory forever."
        fix: "Set common_http_protocol_options.idle_timeout, request_headers_timeout and stream_idle_timeout on the connection manager."
        refs: "Envoy best practices (edge), timeouts FAQ; hardening.md (c)";
    ENVOY_014 = "ENVOY-014" "EnvoyHttp2Limits" Envoy Warning
        title: "HTTP/2 stream and window limits"
        why: "Envoy's HTTP/2 defaults allow 2^31 concurrent streams and large windows per connection: one client can hold a great deal of memory."
        fix: "Set http2_protocol_options max_concurrent_streams: 100, initial_stream_window_size: 65536, initial_connection_window_size: 1048576."
        refs: "Envoy best practices (edge); hardening.md (c)";

    CERT_001 = "CERT-001" "CertValidNow" Certificate Error
        title: "certificates are valid now"
        why: "An expired (or not yet valid) certificate fails every handshake: the gateway loses its control plane."
        fix: "Renew it: gatehouse certs rotate --dir DIR (or certs issue); for the CA, certs init --force and reissue."
        refs: "README (certificates)";
    CERT_002 = "CERT-002" "CertExpiresSoon" Certificate Warning
        title: "no certificate expires within the warning threshold"
        why: "An expiring certificate takes its gateway (or, for the CA, everything) off the control plane. The threshold is --cert-warn (7 days), but at most half a certificate's lifetime: leaves are renewed at half-life, so a 24-hour leaf warns only once rotation is late."
        fix: "Check that gatehouse serve (which rotates) runs, or run gatehouse certs rotate --dir DIR."
        refs: "README (certificates); linkerd check identity";
    CERT_003 = "CERT-003" "CertLifetime" Certificate Error
        title: "leaf lifetime within the configured maximum"
        why: "There is no revocation: a stolen key is useful until its certificate expires. Short lifetimes bound that."
        fix: "Reissue with a shorter --validity (at most the CA's maximum leaf lifetime)."
        refs: "SECURITY.md (known limits)";
    CERT_004 = "CERT-004" "CertKeyStrength" Certificate Error
        title: "keys are ECDSA P-256/P-384, Ed25519 or RSA of 2048 bits or more"
        why: "Weak keys can be broken; unknown key types may not be supported by peers."
        fix: "Reissue with the default ECDSA P-256 key."
        refs: "README (certificates)";
    CERT_005 = "CERT-005" "CertExtendedKeyUsage" Certificate Error
        title: "EKU matches the role (controller serverAuth, gateways clientAuth)"
        why: "A gateway certificate usable as a server certificate lets a stolen gateway key pose as the controller; a missing EKU means any purpose."
        fix: "Reissue with gatehouse certs issue --controller or --gateway NS/NAME, which set exactly one EKU."
        refs: "SECURITY.md (guarantees)";
    CERT_006 = "CERT-006" "CertSpiffeId" Certificate Error
        title: "SPIFFE ID matches the role and the store's trust domain"
        why: "The URI SAN is the identity the control plane authorises: spiffe://TD/controller, spiffe://TD/gateway/NS/NAME for the gateway in that directory."
        fix: "Reissue the certificate with gatehouse certs issue."
        refs: "README (the xDS server: identity)";
    CERT_007 = "CERT-007" "CertKeyPermissions" Certificate Error
        title: "private keys mode 0600"
        why: "A key readable by group or others can be copied by any local user or process."
        fix: "chmod 0600 the key (gatehouse writes keys 0600 from their first byte)."
        refs: "SECURITY.md (assets)";
    CERT_008 = "CERT-008" "CertIssuer" Certificate Error
        title: "leaves issued by the store's CA"
        why: "A leaf from another CA fails the peers' verification: the store is inconsistent."
        fix: "Reissue the leaf from this store's CA."
        refs: "README (certificates)";

    UNIT_001 = "UNIT-001" "UnitRootWithCapabilities" Unit Error
        title: "a dedicated user (User= or DynamicUser=)"
        why: "Without User= the service runs as root, and with capabilities left in its bounding set root can undo every other restriction."
        fix: "Set User= (a dedicated static user) or DynamicUser=yes."
        refs: "systemd.exec(5); hardening.md (d); systemd-analyze security";
    UNIT_002 = "UNIT-002" "UnitRoot" Unit Warning
        title: "not root, even without capabilities"
        why: "Root without capabilities still owns root's files and can talk to root-only services (systemd's own socket)."
        fix: "Run as a dedicated user; if the service must be root (to ask systemd to restart another unit), keep its capabilities empty and document it."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_003 = "UNIT-003" "UnitNoNewPrivileges" Unit Error
        title: "NoNewPrivileges=yes"
        why: "Without no_new_privs a set-user-id binary or file capability gains privileges."
        fix: "Set NoNewPrivileges=yes."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_004 = "UNIT-004" "UnitCapabilities" Unit Error
        title: "no capabilities (CapabilityBoundingSet= and AmbientCapabilities= empty)"
        why: "Any capability is a privilege the kernel grants beyond the user's; the bounding set limits what any later program can gain."
        fix: "Set CapabilityBoundingSet= and AmbientCapabilities= (both empty); bind ports of 1024 and more."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_005 = "UNIT-005" "UnitProtectSystem" Unit Error
        title: "ProtectSystem=strict"
        why: "Otherwise the service can write the host's filesystem: binaries, configuration, other services' files."
        fix: "Set ProtectSystem=strict and give write access with StateDirectory=/RuntimeDirectory= or ReadWritePaths=."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_006 = "UNIT-006" "UnitHomeAndTmp" Unit Warning
        title: "ProtectHome=yes, PrivateTmp=yes"
        why: "Users' home directories and a shared /tmp are readable, or racy, without them."
        fix: "Set ProtectHome=yes and PrivateTmp=yes."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_007 = "UNIT-007" "UnitDevices" Unit Warning
        title: "PrivateDevices=yes, DevicePolicy=closed"
        why: "Raw devices (disks, memory) are reachable otherwise."
        fix: "Set PrivateDevices=yes and DevicePolicy=closed."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_008 = "UNIT-008" "UnitKernelProtection" Unit Warning
        title: "kernel, control groups, clock and hostname protected"
        why: "Kernel tunables, modules and logs, the cgroup tree, the clock and the hostname are host-wide: changing them affects everything."
        fix: "Set ProtectKernelTunables=yes, ProtectKernelModules=yes, ProtectKernelLogs=yes, ProtectControlGroups=yes, ProtectClock=yes, ProtectHostname=yes."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_009 = "UNIT-009" "UnitProc" Unit Warning
        title: "ProtectProc=invisible, ProcSubset=pid"
        why: "Other processes' details and /proc system files (kernel settings, hardware) are visible otherwise."
        fix: "Set ProtectProc=invisible and ProcSubset=pid."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_010 = "UNIT-010" "UnitRestrictions" Unit Warning
        title: "RestrictNamespaces, RestrictRealtime, RestrictSUIDSGID, LockPersonality, MemoryDenyWriteExecute"
        why: "Namespaces are kernel attack surface, realtime scheduling starves the host, set-id files outlive the service, personality changes confuse the ABI, and writable-executable memory runs injected code."
        fix: "Set RestrictNamespaces=yes, RestrictRealtime=yes, RestrictSUIDSGID=yes, LockPersonality=yes, MemoryDenyWriteExecute=yes (not with JIT: Lua or Wasm filters)."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_011 = "UNIT-011" "UnitAddressFamilies" Unit Warning
        title: "RestrictAddressFamilies limited to AF_INET, AF_INET6, AF_UNIX"
        why: "Netlink changes routes and firewalls, packet sockets sniff traffic: a network service needs neither."
        fix: "Set RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX (an allow list, not ~deny)."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_012 = "UNIT-012" "UnitSystemCallFilter" Unit Warning
        title: "system call filter (@system-service, ~@privileged @resources, native architecture)"
        why: "Every system call is kernel attack surface; privileged ones change the system, and foreign architectures' ABIs dodge filters."
        fix: "Set SystemCallFilter=@system-service, SystemCallFilter=~@privileged @resources and SystemCallArchitectures=native."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_013 = "UNIT-013" "UnitUmask" Unit Warning
        title: "UMask=0077"
        why: "Files the service creates would be readable by other users."
        fix: "Set UMask=0077."
        refs: "systemd.exec(5); hardening.md (d)";
    UNIT_014 = "UNIT-014" "UnitEnvoyCredentials" Unit Warning
        title: "Envoy's certificate as a credential or a read-only bind"
        why: "Envoy should read only its own key, handed to it read-only, not the control plane's store."
        fix: "Use LoadCredential= for its chain, key and CA bundle (or BindReadOnlyPaths= of its own certificate directory)."
        refs: "hardening.md (d); docs/profiles.md (standalone)";
    UNIT_015 = "UNIT-015" "UnitIpAllowList" Unit Info
        title: "IP address allow list"
        why: "An IPAddressDeny=any with IPAddressAllow= limits whom the service can talk to, where the deployment allows it."
        fix: "Set IPAddressDeny=any and IPAddressAllow= the addresses it needs (localhost for the controller)."
        refs: "systemd.resource-control(5); hardening.md (d)";

    SIG_001 = "SIG-001" "SignatureInvalid" Signature Error
        title: "the manifest and its signature verify"
        why: "A missing, malformed or failing SHA256SUMS signature means nothing about the files can be trusted."
        fix: "Re-sign with gatehouse sign --key KEY --manifest DIR, or find out who changed the manifest."
        refs: "SECURITY.md (adversary 4)";
    SIG_002 = "SIG-002" "SignedFileChanged" Signature Error
        title: "no signed file changed"
        why: "A file's digest differs from the signed manifest: it was modified after signing."
        fix: "Restore the signed file, or re-render and re-sign."
        refs: "SECURITY.md (adversary 4)";
    SIG_003 = "SIG-003" "SignedFileMissing" Signature Error
        title: "no signed file missing"
        why: "A file listed in the signed manifest is gone: part of the release was removed."
        fix: "Restore the file, or re-render and re-sign."
        refs: "SECURITY.md (adversary 4)";
    SIG_004 = "SIG-004" "UnsignedFile" Signature Error
        title: "no unsigned file"
        why: "A file is present that the signed manifest does not list: something was added after signing."
        fix: "Remove the file, or re-sign if it belongs to the release."
        refs: "SECURITY.md (adversary 4)";

    PROC_001 = "PROC-001" "ProcessRootUser" Process Error
        title: "not running as uid 0"
        why: "As the host sees it, root (real, effective, saved or filesystem uid 0) owns the host's files."
        fix: "Start Envoy through the sandbox (gatehouse up) or under User= in a unit."
        refs: "DESIGN.md section 8; inspect_process";
    PROC_002 = "PROC-002" "ProcessRootGroup" Process Error
        title: "not running as gid 0, nor with group 0"
        why: "Group root can read and write root-group files of the host."
        fix: "Start it with an unprivileged group and no supplementary groups (setpriv --clear-groups)."
        refs: "DESIGN.md section 8";
    PROC_003 = "PROC-003" "ProcessCapabilities" Process Error
        title: "no capabilities in any set"
        why: "Any capability (effective, permitted, inheritable, bounding or ambient) is a privilege the process has or can regain."
        fix: "Drop every set (setpriv --inh-caps=-all --ambient-caps=-all --bounding-set=-all)."
        refs: "DESIGN.md section 8";
    PROC_004 = "PROC-004" "ProcessNoNewPrivs" Process Error
        title: "no_new_privs set"
        why: "Without it, executing a set-user-id program can gain privileges."
        fix: "Set it (setpriv --no-new-privs, or NoNewPrivileges=yes)."
        refs: "DESIGN.md section 8";
    PROC_005 = "PROC-005" "ProcessWritableRoot" Process Error
        title: "read-only root filesystem"
        why: "A writable root lets a compromised process change binaries and configuration."
        fix: "Run it in the sandbox, whose root is read-only (or ProtectSystem=strict)."
        refs: "DESIGN.md section 8";
    PROC_006 = "PROC-006" "ProcessSeccomp" Process Info
        title: "seccomp filter"
        why: "A seccomp filter limits the kernel's attack surface. Gatehouse's sandbox does not install one yet (a known limit); the systemd unit does."
        fix: "Run Envoy under the standalone unit (SystemCallFilter=) or in Kubernetes with seccompProfile RuntimeDefault."
        refs: "SECURITY.md (known limits)";
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn ids_are_unique_well_formed_and_sorted_within_families() {
        let mut seen = BTreeSet::new();
        let mut names = BTreeSet::new();
        for check in checks() {
            assert!(seen.insert(check.id), "duplicate {}", check.id);
            assert!(names.insert(check.name), "duplicate name {}", check.name);
            let (prefix, number) = check.id.split_once('-').unwrap();
            assert_eq!(prefix, check.category.prefix(), "{}", check.id);
            assert_eq!(number.len(), 3, "{}", check.id);
            assert!(number.chars().all(|c| c.is_ascii_digit()), "{}", check.id);
            assert!(!check.why.is_empty() && !check.fix.is_empty());
            assert!(check.name.chars().all(|c| c.is_ascii_alphanumeric()));
        }
        for pair in checks().windows(2) {
            if pair[0].category == pair[1].category {
                assert!(
                    pair[0].id < pair[1].id,
                    "{} before {}",
                    pair[0].id,
                    pair[1].id
                );
            }
        }
    }

    #[test]
    fn every_dangerous_rbac_row_has_its_check() {
        for row in 1..=23 {
            let id = format!("RBAC-{row:03}");
            assert!(find(&id).is_some(), "{id}");
        }
        assert_eq!(find("rbac-003").map(|c| c.id), Some("RBAC-003"));
        assert!(find("RBAC-999").is_none());
    }

    #[test]
    fn explain_has_why_and_fix() {
        let text = RBAC_003.explain();
        assert!(text.starts_with("RBAC-003  error  rbac\n"), "{text}");
        assert!(text.contains("Why it matters"));
        assert!(text.contains("How to fix it"));
    }
}
