//! RBAC (`RBAC-0xx`): every row of the dangerous-RBAC table (`reference/hardening.md` (b)),
//! evaluated over **every** rule of every Role and ClusterRole (with aggregated ClusterRoles
//! resolved through their `aggregationRule` label selectors), bindings resolved to their
//! subjects, and the data plane's service account: no binding at all, no token.
//!
//! Ids `RBAC-001` to `RBAC-023` are the table's rows 1 to 23. Reading Secrets is split by
//! scope: cluster-wide is `RBAC-003` (error), one namespace `RBAC-027` (warning); writing
//! Secrets in a privileged namespace or cluster-wide is `RBAC-013`, elsewhere `RBAC-028`
//! (info).

use std::collections::{BTreeMap, BTreeSet};

use super::catalog::{self, Check};
use super::k8s::{Cluster, Object, is_data_plane_named};
use super::yaml::Node;
use super::{Ctx, ObjectRef};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// Namespaces whose service accounts run the cluster.
const PRIVILEGED_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];
const WRITE: &[&str] = &["create", "update", "patch", "delete"];

/// Verbs on resources of API groups: one permission of a row.
struct Perm {
    groups: &'static [&'static str],
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
}

const fn perm(
    groups: &'static [&'static str],
    resources: &'static [&'static str],
    verbs: &'static [&'static str],
) -> Perm {
    Perm {
        groups,
        resources,
        verbs,
    }
}

/// Rows 3 to 22 of the table that are permissions (rows 1, 2 and 23 are checked
/// separately), with the check each reports.
struct Row {
    check: &'static Check,
    perms: &'static [Perm],
}

const READ_SECRETS: &[Perm] = &[perm(&[""], &["secrets"], &["get", "list", "watch"])];
const WRITE_SECRETS: &[Perm] = &[perm(&[""], &["secrets"], &["create", "update", "patch"])];

const ROWS: &[Row] = &[
    Row {
        check: catalog::RBAC_004,
        perms: &[perm(
            &["", "apps", "batch", "extensions"],
            &[
                "pods",
                "deployments",
                "daemonsets",
                "statefulsets",
                "replicasets",
                "jobs",
                "cronjobs",
                "replicationcontrollers",
            ],
            &["create", "update", "patch"],
        )],
    },
    Row {
        check: catalog::RBAC_005,
        perms: &[perm(&[""], &["pods/exec"], &["create", "get"])],
    },
    Row {
        check: catalog::RBAC_006,
        perms: &[perm(&[""], &["pods/attach"], &["create", "get"])],
    },
    Row {
        check: catalog::RBAC_007,
        perms: &[perm(
            &[""],
            &["pods/ephemeralcontainers"],
            &["update", "patch"],
        )],
    },
    Row {
        check: catalog::RBAC_008,
        perms: &[perm(
            &[""],
            &["nodes/proxy"],
            &["get", "create", "update", "patch", "delete"],
        )],
    },
    Row {
        check: catalog::RBAC_009,
        perms: &[perm(
            &[RBAC_GROUP],
            &["roles", "clusterroles"],
            &["escalate"],
        )],
    },
    Row {
        check: catalog::RBAC_010,
        perms: &[
            perm(&[RBAC_GROUP], &["roles", "clusterroles"], &["bind"]),
            perm(
                &[RBAC_GROUP],
                &["rolebindings", "clusterrolebindings"],
                &["create", "update", "patch"],
            ),
        ],
    },
    Row {
        check: catalog::RBAC_011,
        perms: &[perm(
            &["", "authentication.k8s.io"],
            &[
                "users",
                "groups",
                "serviceaccounts",
                "uids",
                "userextras/scopes",
            ],
            &["impersonate"],
        )],
    },
    Row {
        check: catalog::RBAC_012,
        perms: &[perm(&[""], &["serviceaccounts/token"], &["create"])],
    },
    Row {
        check: catalog::RBAC_014,
        perms: &[
            perm(
                &["certificates.k8s.io"],
                &["certificatesigningrequests/approval"],
                &["update", "patch"],
            ),
            perm(&["certificates.k8s.io"], &["signers"], &["approve"]),
        ],
    },
    Row {
        check: catalog::RBAC_015,
        perms: &[perm(
            &["admissionregistration.k8s.io"],
            &[
                "mutatingwebhookconfigurations",
                "validatingwebhookconfigurations",
            ],
            WRITE,
        )],
    },
    Row {
        check: catalog::RBAC_016,
        perms: &[
            perm(
                &["admissionregistration.k8s.io"],
                &[
                    "validatingadmissionpolicies",
                    "validatingadmissionpolicybindings",
                    "mutatingadmissionpolicies",
                    "mutatingadmissionpolicybindings",
                ],
                WRITE,
            ),
            perm(
                &["kyverno.io"],
                &[
                    "clusterpolicies",
                    "policies",
                    "policyexceptions",
                    "clustercleanuppolicies",
                    "cleanuppolicies",
                ],
                WRITE,
            ),
            perm(
                &["templates.gatekeeper.sh"],
                &["constrainttemplates"],
                WRITE,
            ),
            perm(&["constraints.gatekeeper.sh"], &["*"], WRITE),
        ],
    },
    Row {
        check: catalog::RBAC_017,
        perms: &[perm(
            &["apiextensions.k8s.io"],
            &["customresourcedefinitions"],
            WRITE,
        )],
    },
    Row {
        check: catalog::RBAC_018,
        perms: &[perm(&[""], &["services/status"], &["update", "patch"])],
    },
    Row {
        check: catalog::RBAC_019,
        perms: &[
            perm(&[""], &["services", "endpoints"], WRITE),
            perm(&["discovery.k8s.io"], &["endpointslices"], WRITE),
            perm(
                &["networking.k8s.io", "extensions"],
                &["networkpolicies", "ingresses"],
                WRITE,
            ),
            perm(
                &["gateway.networking.k8s.io"],
                &[
                    "gateways",
                    "httproutes",
                    "grpcroutes",
                    "tlsroutes",
                    "tcproutes",
                    "udproutes",
                    "referencegrants",
                    "backendtlspolicies",
                    "listenersets",
                ],
                WRITE,
            ),
        ],
    },
    Row {
        check: catalog::RBAC_020,
        perms: &[perm(&[""], &["persistentvolumes"], &["create"])],
    },
    Row {
        check: catalog::RBAC_021,
        perms: &[perm(&[""], &["namespaces"], &["update", "patch"])],
    },
    Row {
        check: catalog::RBAC_022,
        perms: &[
            perm(
                &[""],
                &["pods/status", "nodes/status"],
                &["update", "patch"],
            ),
            perm(&[""], &["pods"], &["delete", "deletecollection"]),
            perm(&[""], &["pods/eviction"], &["create"]),
            perm(&[""], &["nodes"], &["update", "patch"]),
        ],
    },
];

/// One rule of a Role or ClusterRole.
struct Rule<'a> {
    owner: &'a Object,
    /// 1-based position in its role's `rules`.
    index: usize,
    node: &'a Node,
    groups: Vec<String>,
    resources: Vec<String>,
    verbs: Vec<String>,
    names: Vec<String>,
    urls: Vec<String>,
}

impl<'a> Rule<'a> {
    fn parse(owner: &'a Object, index: usize, node: &'a Node) -> Self {
        let list = |key: &str| node.get(key).map(Node::strings).unwrap_or_default();
        Self {
            owner,
            index,
            node,
            groups: list("apiGroups"),
            resources: list("resources"),
            verbs: list("verbs"),
            names: list("resourceNames"),
            urls: list("nonResourceURLs"),
        }
    }

    fn has_group(&self, groups: &[&str]) -> bool {
        self.groups
            .iter()
            .any(|g| g == "*" || groups.contains(&g.as_str()))
    }

    /// Whether the rule's resource `pattern` covers `resource` (`pods/exec`): exact, `*`,
    /// `pods/*` or `*/exec`.
    fn covers(pattern: &str, resource: &str) -> bool {
        if pattern == "*" || pattern == resource {
            return true;
        }
        let (base, sub) = resource.split_once('/').unwrap_or((resource, ""));
        match pattern.split_once('/') {
            Some((b, "*")) => !sub.is_empty() && b == base,
            Some(("*", s)) => !sub.is_empty() && s == sub,
            _ => false,
        }
    }

    /// The verbs and resources of `perm` this rule grants, if any.
    fn grants(&self, perm: &Perm) -> Option<(Vec<String>, Vec<String>)> {
        if !self.has_group(perm.groups) {
            return None;
        }
        let resources: Vec<String> = if perm.resources == ["*"] {
            self.resources
                .iter()
                .filter(|r| !r.contains('/'))
                .cloned()
                .collect()
        } else {
            perm.resources
                .iter()
                .filter(|r| self.resources.iter().any(|p| Self::covers(p, r)))
                .map(|r| (*r).to_owned())
                .collect()
        };
        let verbs: Vec<String> = perm
            .verbs
            .iter()
            .filter(|v| self.verbs.iter().any(|rv| rv == "*" || rv == *v))
            .map(|v| (*v).to_owned())
            .collect();
        (!resources.is_empty() && !verbs.is_empty()).then_some((verbs, resources))
    }

    fn wildcards(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (field, values) in [
            ("verbs", &self.verbs),
            ("resources", &self.resources),
            ("apiGroups", &self.groups),
            ("nonResourceURLs", &self.urls),
        ] {
            let wild: Vec<&String> = values.iter().filter(|v| v.contains('*')).collect();
            if !wild.is_empty() {
                out.push(format!(
                    "{field} [{}]",
                    wild.iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        out
    }
}

struct Role<'a> {
    object: &'a Object,
    cluster: bool,
    rules: Vec<Rule<'a>>,
    selectors: Vec<&'a Node>,
}

struct Subject {
    kind: String,
    name: String,
    namespace: Option<String>,
    line: usize,
}

impl Subject {
    fn describe(&self) -> String {
        match &self.namespace {
            Some(ns) if self.kind == "ServiceAccount" => {
                format!("{} {ns}/{}", self.kind, self.name)
            }
            _ => format!("{} {}", self.kind, self.name),
        }
    }
}

struct Binding<'a> {
    object: &'a Object,
    cluster: bool,
    role_kind: String,
    role_name: String,
    role_line: usize,
    subjects: Vec<Subject>,
}

impl Binding<'_> {
    fn refers_to(&self, role: &Role<'_>) -> bool {
        self.role_name == role.object.name
            && self.role_kind == role.object.kind
            && (role.cluster
                || self.object.effective_namespace() == role.object.effective_namespace())
    }
}

/// Where a role's permissions apply.
enum Scope {
    /// Cluster-wide (a ClusterRoleBinding), or a ClusterRole nothing binds yet: any
    /// ClusterRoleBinding would make it cluster-wide.
    Cluster,
    /// The namespaces of its Role or of the RoleBindings of a ClusterRole.
    Namespaces(BTreeSet<String>),
}

/// A service account of the data plane, and why we think it is.
struct DataPlaneAccount {
    namespace: String,
    name: String,
    why: String,
}

impl DataPlaneAccount {
    fn is_subject(&self, subject: &Subject, binding_namespace: &str) -> bool {
        match subject.kind.as_str() {
            "ServiceAccount" => {
                subject.name == self.name
                    && subject.namespace.as_deref().unwrap_or(binding_namespace) == self.namespace
            }
            "User" => {
                subject.name == format!("system:serviceaccount:{}:{}", self.namespace, self.name)
            }
            "Group" => {
                subject.name == "system:serviceaccounts"
                    || subject.name == "system:authenticated"
                    || subject.name == format!("system:serviceaccounts:{}", self.namespace)
            }
            _ => false,
        }
    }
}

pub(crate) fn check(ctx: &mut Ctx, cluster: &Cluster<'_>) {
    let roles: Vec<Role<'_>> = cluster
        .of_kind(&["Role", "ClusterRole"])
        .map(|object| Role {
            object,
            cluster: object.kind == "ClusterRole",
            rules: object
                .node
                .get("rules")
                .map(Node::items)
                .unwrap_or_default()
                .iter()
                .enumerate()
                .map(|(i, node)| Rule::parse(object, i + 1, node))
                .collect(),
            selectors: object
                .node
                .path(&["aggregationRule", "clusterRoleSelectors"])
                .map(|s| s.items().iter().collect())
                .unwrap_or_default(),
        })
        .collect();
    let bindings: Vec<Binding<'_>> = cluster
        .of_kind(&["RoleBinding", "ClusterRoleBinding"])
        .map(|object| {
            let role_ref = object.node.get("roleRef");
            let text = |key: &str| {
                role_ref
                    .and_then(|r| r.get(key))
                    .and_then(Node::scalar_text)
                    .unwrap_or_default()
            };
            Binding {
                object,
                cluster: object.kind == "ClusterRoleBinding",
                role_kind: text("kind"),
                role_name: text("name"),
                role_line: role_ref.map_or(object.node.line, |r| r.line_of("name")),
                subjects: object
                    .node
                    .get("subjects")
                    .map(Node::items)
                    .unwrap_or_default()
                    .iter()
                    .map(|s| Subject {
                        kind: s
                            .get("kind")
                            .and_then(Node::scalar_text)
                            .unwrap_or_default(),
                        name: s
                            .get("name")
                            .and_then(Node::scalar_text)
                            .unwrap_or_default(),
                        namespace: s.get("namespace").and_then(Node::scalar_text),
                        line: s.line,
                    })
                    .collect(),
            }
        })
        .collect();

    // Aggregation: which ClusterRoles each aggregating ClusterRole picks up.
    let aggregated_into: Vec<Vec<usize>> = roles
        .iter()
        .map(|role| {
            if !role.cluster || role.selectors.is_empty() {
                return Vec::new();
            }
            roles
                .iter()
                .enumerate()
                .filter(|(_, other)| {
                    other.cluster
                        && !std::ptr::eq(other.object, role.object)
                        && role
                            .selectors
                            .iter()
                            .any(|s| super::k8s::selector_matches(s, &other.object.labels))
                })
                .map(|(i, _)| i)
                .collect()
        })
        .collect();

    for (index, role) in roles.iter().enumerate() {
        // The bindings that give this role to someone: its own, and those of every
        // aggregating ClusterRole that includes it.
        let mut role_bindings: Vec<&Binding<'_>> =
            bindings.iter().filter(|b| b.refers_to(role)).collect();
        for (agg, members) in aggregated_into.iter().enumerate() {
            if members.contains(&index)
                && let Some(aggregate) = roles.get(agg)
            {
                role_bindings.extend(bindings.iter().filter(|b| b.refers_to(aggregate)));
            }
        }
        let scope = if !role.cluster {
            Scope::Namespaces([role.object.effective_namespace().to_owned()].into())
        } else if role_bindings.is_empty() || role_bindings.iter().any(|b| b.cluster) {
            Scope::Cluster
        } else {
            Scope::Namespaces(
                role_bindings
                    .iter()
                    .map(|b| b.object.effective_namespace().to_owned())
                    .collect(),
            )
        };
        let subjects: Vec<String> = role_bindings
            .iter()
            .flat_map(|b| b.subjects.iter().map(Subject::describe))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let related: Vec<ObjectRef> = role_bindings
            .iter()
            .map(|b| b.object.object_ref())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let bound = if subjects.is_empty() {
            "; no binding in these manifests gives it to anyone yet".to_owned()
        } else {
            format!("; bound to {}", subjects.join(", "))
        };

        let mut rules: Vec<&Rule<'_>> = role.rules.iter().collect();
        for member in aggregated_into.get(index).into_iter().flatten() {
            if let Some(other) = roles.get(*member) {
                rules.extend(other.rules.iter());
            }
        }
        for rule in rules {
            let via = if std::ptr::eq(rule.owner, role.object) {
                String::new()
            } else {
                format!(" (aggregated from ClusterRole {})", rule.owner.name)
            };
            let mut emit = |check: &'static Check, what: String| {
                ctx.report(
                    check,
                    role.object.object_ref(),
                    rule.owner.at(rule.node.line),
                    format!(
                        "{} {} rule {}{via} {what}{bound}",
                        role.object.kind, role.object.name, rule.index
                    ),
                )
                .related
                .clone_from(&related);
            };
            let wild = rule.wildcards();
            if !wild.is_empty() {
                emit(
                    catalog::RBAC_001,
                    format!("has wildcards: {}", wild.join(", ")),
                );
            }
            let grant_text = |perms: &[Perm]| -> Option<String> {
                let mut verbs = BTreeSet::new();
                let mut resources = Vec::new();
                for p in perms {
                    if let Some((v, r)) = rule.grants(p) {
                        verbs.extend(v);
                        for r in r {
                            if !resources.contains(&r) {
                                resources.push(r);
                            }
                        }
                    }
                }
                (!verbs.is_empty()).then(|| {
                    format!(
                        "grants {} on {}",
                        verbs.into_iter().collect::<Vec<_>>().join(", "),
                        resources.join(", ")
                    )
                })
            };
            // Row 3: reading Secrets. A rule limited by resourceNames reads only those.
            if rule.names.is_empty()
                && let Some(text) = grant_text(READ_SECRETS)
            {
                match &scope {
                    Scope::Cluster => emit(catalog::RBAC_003, format!("{text}, cluster-wide")),
                    Scope::Namespaces(ns) => emit(
                        catalog::RBAC_027,
                        format!(
                            "{text} in namespace{} {}",
                            if ns.len() == 1 { "" } else { "s" },
                            ns.iter().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ),
                }
            }
            // Row 13: writing Secrets.
            if let Some(text) = grant_text(WRITE_SECRETS) {
                match &scope {
                    Scope::Cluster => emit(
                        catalog::RBAC_013,
                        format!("{text}, cluster-wide (kube-system included)"),
                    ),
                    Scope::Namespaces(ns) => {
                        let privileged: Vec<&String> = ns
                            .iter()
                            .filter(|n| PRIVILEGED_NAMESPACES.contains(&n.as_str()))
                            .collect();
                        if privileged.is_empty() {
                            emit(
                                catalog::RBAC_028,
                                format!(
                                    "{text} in {}",
                                    ns.iter().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            );
                        } else {
                            emit(
                                catalog::RBAC_013,
                                format!(
                                    "{text} in privileged namespace {}",
                                    privileged
                                        .iter()
                                        .map(|s| s.as_str())
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            );
                        }
                    }
                }
            }
            for row in ROWS {
                if let Some(text) = grant_text(row.perms) {
                    emit(row.check, text);
                }
            }
        }
    }

    check_bindings(ctx, cluster, &bindings);
}

fn check_bindings(ctx: &mut Ctx, cluster: &Cluster<'_>, bindings: &[Binding<'_>]) {
    let accounts = data_plane_accounts(cluster);
    for binding in bindings {
        let object = binding.object;
        let role = format!("{} {}", binding.role_kind, binding.role_name);
        if binding.role_kind == "ClusterRole" && binding.role_name == "cluster-admin" {
            ctx.report(
                catalog::RBAC_002,
                object.object_ref(),
                object.at(binding.role_line),
                format!(
                    "{} {} binds ClusterRole cluster-admin{}",
                    object.kind,
                    object.name,
                    if binding.cluster { " cluster-wide" } else { "" }
                ),
            );
        }
        for subject in &binding.subjects {
            if subject.kind == "Group" && subject.name == "system:masters" {
                ctx.report(
                    catalog::RBAC_002,
                    object.object_ref(),
                    object.at(subject.line),
                    format!(
                        "{} {} binds {role} to Group system:masters",
                        object.kind, object.name
                    ),
                );
            }
            if matches!(subject.kind.as_str(), "Group" | "User")
                && [
                    "system:anonymous",
                    "system:unauthenticated",
                    "system:authenticated",
                ]
                .contains(&subject.name.as_str())
            {
                ctx.report(
                    catalog::RBAC_023,
                    object.object_ref(),
                    object.at(subject.line),
                    format!(
                        "{} {} binds {role} to {}",
                        object.kind,
                        object.name,
                        subject.describe()
                    ),
                );
            }
            for account in &accounts {
                if account.is_subject(subject, object.effective_namespace()) {
                    ctx.report(
                        catalog::RBAC_024,
                        object.object_ref(),
                        object.at(subject.line),
                        format!(
                            "{} {} binds {role} to {}, which covers the data plane's service account {}/{} ({}): Envoy must hold no Kubernetes permission",
                            object.kind,
                            object.name,
                            subject.describe(),
                            account.namespace,
                            account.name,
                            account.why
                        ),
                    )
                    .related
                    .push(ObjectRef {
                        kind: "ServiceAccount".to_owned(),
                        namespace: Some(account.namespace.clone()),
                        name: account.name.clone(),
                    });
                }
            }
        }
    }

    // RBAC-025: the data plane's ServiceAccounts do not automount.
    for object in cluster.of_kind(&["ServiceAccount"]) {
        let Some(account) = accounts
            .iter()
            .find(|a| a.name == object.name && a.namespace == object.effective_namespace())
        else {
            continue;
        };
        let automount = object.node.get("automountServiceAccountToken");
        if automount.and_then(Node::as_bool) != Some(false) {
            ctx.report(
                catalog::RBAC_025,
                object.object_ref(),
                object.at(automount.map_or(object.node.line, |n| n.line)),
                format!(
                    "ServiceAccount {}/{} is the data plane's ({}) and {}",
                    account.namespace,
                    account.name,
                    account.why,
                    if automount.is_some() {
                        "sets automountServiceAccountToken to something other than false"
                    } else {
                        "does not set automountServiceAccountToken: false"
                    }
                ),
            );
        }
    }

    // RBAC-026: data-plane pods mount no token.
    for pod in cluster.pods().filter(|p| p.is_data_plane()) {
        let object = pod.object;
        let automount = pod.spec.get("automountServiceAccountToken");
        if automount.and_then(Node::as_bool) != Some(false) {
            ctx.report(
                catalog::RBAC_026,
                object.object_ref(),
                object.at(automount.map_or(pod.spec.line, |n| n.line)),
                format!(
                    "{} {} runs the data plane and its pod spec {}: a service-account token is mounted into Envoy",
                    object.kind,
                    object.name,
                    if automount.is_some() {
                        "sets automountServiceAccountToken to something other than false"
                    } else {
                        "does not set automountServiceAccountToken: false"
                    }
                ),
            );
        }
        for volume in pod.spec.get("volumes").map(Node::items).unwrap_or_default() {
            let token = volume
                .path(&["projected", "sources"])
                .map(Node::items)
                .unwrap_or_default()
                .iter()
                .find(|s| s.get("serviceAccountToken").is_some());
            if let Some(source) = token {
                ctx.report(
                    catalog::RBAC_026,
                    object.object_ref(),
                    object.at(source.line),
                    format!(
                        "{} {} runs the data plane and projects a service-account token (volume \"{}\")",
                        object.kind,
                        object.name,
                        volume.get("name").and_then(Node::as_str).unwrap_or("?")
                    ),
                );
            }
        }
    }
}

/// The data plane's service accounts: ServiceAccounts labelled or named so, and those of
/// data-plane pods.
fn data_plane_accounts(cluster: &Cluster<'_>) -> Vec<DataPlaneAccount> {
    let mut out: BTreeMap<(String, String), String> = BTreeMap::new();
    for object in cluster.of_kind(&["ServiceAccount"]) {
        if is_data_plane_named(&object.name, &object.labels) {
            out.entry((object.effective_namespace().to_owned(), object.name.clone()))
                .or_insert_with(|| "labelled or named as the data plane".to_owned());
        }
    }
    for pod in cluster.pods().filter(|p| p.is_data_plane()) {
        out.entry((
            pod.object.effective_namespace().to_owned(),
            pod.service_account(),
        ))
        .or_insert_with(|| format!("used by {} {}", pod.object.kind, pod.object.name));
    }
    out.into_iter()
        .map(|((namespace, name), why)| DataPlaneAccount {
            namespace,
            name,
            why,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::yaml::parse_documents;

    fn rule(text: &str) -> (Object, usize) {
        let src = std::rc::Rc::new(crate::verify::input::Source {
            path: "t.yaml".to_owned(),
            text: text.to_owned(),
        });
        let node = parse_documents(text).unwrap().remove(0);
        (Object::new(&src, node).unwrap(), 0)
    }

    #[test]
    fn resource_patterns() {
        assert!(Rule::covers("*", "pods/exec"));
        assert!(Rule::covers("pods/*", "pods/exec"));
        assert!(Rule::covers("*/exec", "pods/exec"));
        assert!(!Rule::covers("pods", "pods/exec"));
        assert!(!Rule::covers("pods/*", "pods"));
        assert!(Rule::covers("pods", "pods"));
    }

    #[test]
    fn grants_needs_group_resource_and_verb() {
        let (object, _) = rule(
            "kind: Role\napiVersion: v1\nmetadata: {name: r}\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [\"*\"]\n",
        );
        let node = object.node.get("rules").unwrap().items().first().unwrap();
        let r = Rule::parse(&object, 1, node);
        assert_eq!(
            r.grants(&READ_SECRETS[0]),
            Some((
                vec!["get".to_owned(), "list".to_owned(), "watch".to_owned()],
                vec!["secrets".to_owned()]
            ))
        );
        assert_eq!(r.grants(&perm(&["apps"], &["secrets"], &["get"])), None);
        assert_eq!(r.wildcards(), vec!["verbs [*]".to_owned()]);
    }
}
