//! Kubernetes objects as read from manifests, and what several families need: pod
//! templates, label selectors, which workloads are the data plane (Envoy) and which the
//! control plane.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::input::Source;
use super::yaml::{self, Node};
use super::{Location, ObjectRef};

/// One Kubernetes object.
#[derive(Debug)]
pub(crate) struct Object {
    pub(crate) src: Rc<Source>,
    pub(crate) node: Node,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: BTreeMap<String, String>,
}

/// Kinds without a namespace.
const CLUSTER_SCOPED: &[&str] = &[
    "Namespace",
    "Node",
    "PersistentVolume",
    "ClusterRole",
    "ClusterRoleBinding",
    "CustomResourceDefinition",
    "StorageClass",
    "PriorityClass",
    "RuntimeClass",
    "IngressClass",
    "GatewayClass",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
    "ValidatingAdmissionPolicy",
    "ValidatingAdmissionPolicyBinding",
    "MutatingAdmissionPolicy",
    "MutatingAdmissionPolicyBinding",
    "APIService",
    "CertificateSigningRequest",
    "PodSecurityPolicy",
    "CSIDriver",
    "CSINode",
    "VolumeAttachment",
    "FlowSchema",
    "PriorityLevelConfiguration",
    "ClusterIssuer",
    "ClusterPolicy",
];

/// Workload kinds and the path to their pod template's `spec` and `metadata`.
const WORKLOADS: &[(&str, &[&str])] = &[
    ("Pod", &[]),
    ("Deployment", &["spec", "template"]),
    ("StatefulSet", &["spec", "template"]),
    ("DaemonSet", &["spec", "template"]),
    ("ReplicaSet", &["spec", "template"]),
    ("ReplicationController", &["spec", "template"]),
    ("Job", &["spec", "template"]),
    ("CronJob", &["spec", "jobTemplate", "spec", "template"]),
    ("PodTemplate", &["template"]),
];

fn string_map(node: Option<&Node>) -> BTreeMap<String, String> {
    node.map(|n| {
        n.entries()
            .iter()
            .filter_map(|(k, v)| v.scalar_text().map(|v| (k.clone(), v)))
            .collect()
    })
    .unwrap_or_default()
}

impl Object {
    /// An object from a document with `kind`; `None` when it has no kind.
    pub(crate) fn new(src: &Rc<Source>, node: Node) -> Option<Self> {
        let kind = node.get("kind")?.as_str()?.to_owned();
        let metadata = node.get("metadata");
        let name = metadata
            .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
            .and_then(Node::scalar_text)
            .unwrap_or_else(|| "<unnamed>".to_owned());
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Node::scalar_text)
            .filter(|ns| !ns.is_empty());
        let labels = string_map(metadata.and_then(|m| m.get("labels")));
        Some(Self {
            src: Rc::clone(src),
            node,
            kind,
            name,
            namespace,
            labels,
        })
    }

    pub(crate) fn is_namespaced(&self) -> bool {
        !CLUSTER_SCOPED.contains(&self.kind.as_str())
    }

    /// The namespace it lands in: its own, or `default` when unset (what `kubectl apply`
    /// does with the default context).
    pub(crate) fn effective_namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or("default")
    }

    pub(crate) fn object_ref(&self) -> ObjectRef {
        ObjectRef {
            kind: self.kind.clone(),
            namespace: if self.is_namespaced() {
                Some(self.effective_namespace().to_owned())
            } else {
                None
            },
            name: self.name.clone(),
        }
    }

    pub(crate) fn at(&self, line: usize) -> Option<Location> {
        Some(Location::at(&self.src.path, line))
    }

    /// The object's own location (its first line).
    pub(crate) fn here(&self) -> Option<Location> {
        self.at(self.node.line)
    }

    /// The pod template of a workload.
    pub(crate) fn pod(&self) -> Option<Pod<'_>> {
        let (_, path) = WORKLOADS.iter().find(|(k, _)| *k == self.kind)?;
        let template = self.node.path(path)?;
        let spec = template.get("spec")?;
        if !spec.is_map() {
            return None;
        }
        let metadata = template.get("metadata");
        Some(Pod {
            object: self,
            spec,
            labels: string_map(metadata.and_then(|m| m.get("labels"))),
            annotations: string_map(metadata.and_then(|m| m.get("annotations"))),
        })
    }
}

/// A pod spec and the workload it belongs to.
#[derive(Debug, Clone)]
pub(crate) struct Pod<'a> {
    pub(crate) object: &'a Object,
    pub(crate) spec: &'a Node,
    /// The pod template's labels.
    pub(crate) labels: BTreeMap<String, String>,
    /// The pod template's annotations.
    pub(crate) annotations: BTreeMap<String, String>,
}

/// One container of a pod spec.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Container<'a> {
    /// `container`, `init container` or `ephemeral container`.
    pub(crate) role: &'static str,
    pub(crate) name: &'a str,
    pub(crate) node: &'a Node,
}

impl Container<'_> {
    pub(crate) fn label(&self) -> String {
        format!("{} \"{}\"", self.role, self.name)
    }

    pub(crate) fn image(&self) -> Option<&str> {
        self.node.get("image").and_then(Node::as_str)
    }

    /// `command` then `args`.
    pub(crate) fn argv(&self) -> Vec<String> {
        let mut argv = self
            .node
            .get("command")
            .map(Node::strings)
            .unwrap_or_default();
        argv.extend(self.node.get("args").map(Node::strings).unwrap_or_default());
        argv
    }

    /// Whether it runs Envoy: an Envoy image (`…/envoy`, `envoy-distroless`, Istio's
    /// `proxyv2`), an `envoy` command, or a container named `envoy`.
    pub(crate) fn is_envoy(&self) -> bool {
        self.image().is_some_and(is_envoy_image)
            || self
                .node
                .get("command")
                .and_then(|c| c.items().first())
                .and_then(Node::as_str)
                .is_some_and(|c| c.rsplit('/').next() == Some("envoy"))
            || self.name == "envoy"
    }
}

/// The repository name of an image reference: `docker.io/envoyproxy/envoy:v1@sha256:…` →
/// `envoy`.
pub(crate) fn image_repository_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    let last = without_digest.rsplit('/').next().unwrap_or(without_digest);
    last.split(':').next().unwrap_or(last)
}

pub(crate) fn is_envoy_image(image: &str) -> bool {
    let repo = image_repository_name(image);
    repo == "envoy" || repo.starts_with("envoy-") || repo.starts_with("envoy_") || repo == "proxyv2"
}

const DATA_PLANE_COMPONENTS: [&str; 3] = ["gateway", "data-plane", "proxy"];
const CONTROL_PLANE_COMPONENTS: [&str; 2] = ["control-plane", "controller"];

/// Whether labels or a name say "data plane": `app.kubernetes.io/component` gateway,
/// data-plane or proxy, or a name (or `app.kubernetes.io/name`) starting `gatehouse-envoy`.
pub(crate) fn is_data_plane_named(name: &str, labels: &BTreeMap<String, String>) -> bool {
    labels
        .get("app.kubernetes.io/component")
        .is_some_and(|c| DATA_PLANE_COMPONENTS.contains(&c.as_str()))
        || name.starts_with("gatehouse-envoy")
        || labels
            .get("app.kubernetes.io/name")
            .is_some_and(|n| n.starts_with("gatehouse-envoy"))
}

impl<'a> Pod<'a> {
    /// Every container: `containers`, `initContainers`, `ephemeralContainers`.
    pub(crate) fn containers(&self) -> Vec<Container<'a>> {
        let mut out = Vec::new();
        for (key, role) in [
            ("containers", "container"),
            ("initContainers", "init container"),
            ("ephemeralContainers", "ephemeral container"),
        ] {
            for node in self.spec.get(key).map(Node::items).unwrap_or_default() {
                out.push(Container {
                    role,
                    name: node
                        .get("name")
                        .and_then(Node::as_str)
                        .unwrap_or("<unnamed>"),
                    node,
                });
            }
        }
        out
    }

    /// The service account the pod runs as (`default` when unset).
    pub(crate) fn service_account(&self) -> String {
        self.spec
            .get("serviceAccountName")
            .or_else(|| self.spec.get("serviceAccount"))
            .and_then(Node::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default")
            .to_owned()
    }

    /// Whether it is the data plane: labelled or named so (on the workload or the pod
    /// template), or running an Envoy container.
    pub(crate) fn is_data_plane(&self) -> bool {
        is_data_plane_named(&self.object.name, &self.object.labels)
            || is_data_plane_named(&self.object.name, &self.labels)
            || self.containers().iter().any(Container::is_envoy)
    }

    /// Whether it is a control plane: labelled `app.kubernetes.io/component: control-plane`
    /// (or `controller`), named `gatehouse-controller…`, or running `gatehouse serve`.
    pub(crate) fn is_control_plane(&self) -> bool {
        if self.is_data_plane() {
            return false;
        }
        let labelled = |labels: &BTreeMap<String, String>| {
            labels
                .get("app.kubernetes.io/component")
                .is_some_and(|c| CONTROL_PLANE_COMPONENTS.contains(&c.as_str()))
                || labels
                    .get("app.kubernetes.io/name")
                    .is_some_and(|n| n.starts_with("gatehouse-controller"))
        };
        labelled(&self.object.labels)
            || labelled(&self.labels)
            || self.object.name.starts_with("gatehouse-controller")
            || self.containers().iter().any(|c| {
                c.image()
                    .is_some_and(|i| image_repository_name(i) == "gatehouse")
                    && c.argv().first().is_some_and(|a| a == "serve")
            })
    }
}

/// Whether a label selector (`matchLabels`, `matchExpressions`) selects `labels`. An empty
/// selector selects everything.
pub(crate) fn selector_matches(selector: &Node, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector
        .get("matchLabels")
        .map(Node::entries)
        .unwrap_or_default()
        .iter()
        .all(|(k, v)| v.scalar_text().is_some_and(|v| labels.get(k) == Some(&v)));
    let expressions = selector
        .get("matchExpressions")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .all(|e| {
            let key = e.get("key").and_then(Node::as_str).unwrap_or_default();
            let values = e.get("values").map(Node::strings).unwrap_or_default();
            let value = labels.get(key);
            match e.get("operator").and_then(Node::as_str).unwrap_or_default() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        });
    match_labels && expressions
}

/// The objects of a run, with lookups the families share.
pub(crate) struct Cluster<'a> {
    pub(crate) objects: &'a [Object],
}

impl<'a> Cluster<'a> {
    pub(crate) fn new(objects: &'a [Object]) -> Self {
        Self { objects }
    }

    pub(crate) fn of_kind(&self, kinds: &'a [&'a str]) -> impl Iterator<Item = &'a Object> + 'a {
        self.objects
            .iter()
            .filter(move |o| kinds.contains(&o.kind.as_str()))
    }

    pub(crate) fn pods(&self) -> impl Iterator<Item = Pod<'a>> + 'a {
        self.objects.iter().filter_map(Object::pod)
    }

    /// Envoy bootstraps inside ConfigMaps (`data` values that parse as a mapping with
    /// `static_resources`, `dynamic_resources` or `admin`), their lines those of the
    /// manifest.
    pub(crate) fn embedded_bootstraps(&self) -> Vec<(&'a Object, String, Node)> {
        let mut out = Vec::new();
        for object in self.of_kind(&["ConfigMap"]) {
            for (key, value) in object
                .node
                .get("data")
                .map(Node::entries)
                .unwrap_or_default()
            {
                let Some(text) = value.as_str() else { continue };
                if !["static_resources", "dynamic_resources", "admin"]
                    .iter()
                    .any(|k| text.contains(k))
                {
                    continue;
                }
                let Ok(docs) = yaml::parse_documents(text) else {
                    continue;
                };
                let Some(mut node) = docs.into_iter().next() else {
                    continue;
                };
                if node.get("kind").is_some()
                    || !["static_resources", "dynamic_resources", "admin"]
                        .iter()
                        .any(|k| node.get(k).is_some())
                {
                    continue;
                }
                // A block scalar (`key: |`) starts on the line after its indicator: the
                // node's line is its first content line, so line N of the text is
                // node.line + N - 1. Other scalars get the value's line throughout.
                let block = value.line > 1
                    && object
                        .src
                        .line_text(value.line - 1)
                        .map(str::trim_end)
                        .is_some_and(|l| {
                            let l = l.trim_end_matches([
                                '-', '+', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9',
                            ]);
                            l.ends_with('|') || l.ends_with('>')
                        });
                if block {
                    node.shift_lines(value.line - 1);
                } else {
                    flatten_lines(&mut node, value.line);
                }
                out.push((object, key.clone(), node));
            }
        }
        out
    }
}

fn flatten_lines(node: &mut Node, line: usize) {
    node.line = line;
    match &mut node.value {
        yaml::Value::Seq(items) => items.iter_mut().for_each(|n| flatten_lines(n, line)),
        yaml::Value::Map(entries) => entries.iter_mut().for_each(|(_, n)| flatten_lines(n, line)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(
            image_repository_name("docker.io/envoyproxy/envoy:distroless-v1.40.0@sha256:00"),
            "envoy"
        );
        assert!(is_envoy_image("envoyproxy/envoy-distroless:v1"));
        assert!(is_envoy_image("istio/proxyv2:1.20"));
        assert!(!is_envoy_image("envoyproxy/gateway:v1.2"));
        assert!(!is_envoy_image("ghcr.io/gatehouse-dev/gatehouse:0.1.0"));
        assert!(is_envoy_image("localhost:5000/envoy"));
    }

    #[test]
    fn selectors() {
        let labels: BTreeMap<String, String> = [
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "2".to_owned()),
        ]
        .into();
        let sel = |text: &str| yaml::parse_documents(text).unwrap().remove(0);
        assert!(selector_matches(&sel("{}"), &labels));
        assert!(selector_matches(&sel("matchLabels: {a: \"1\"}"), &labels));
        assert!(!selector_matches(&sel("matchLabels: {a: \"2\"}"), &labels));
        assert!(selector_matches(
            &sel("matchExpressions: [{key: b, operator: In, values: [\"2\", \"3\"]}]"),
            &labels
        ));
        assert!(!selector_matches(
            &sel("matchExpressions: [{key: c, operator: Exists}]"),
            &labels
        ));
        assert!(selector_matches(
            &sel("matchExpressions: [{key: c, operator: DoesNotExist}]"),
            &labels
        ));
    }
}
