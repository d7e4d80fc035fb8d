//! The configuration model: Gateway API and `gatehouse.dev` objects as read from files (or, in
//! Kubernetes mode, from the API), each with where it came from.

mod changes;
mod crds;
mod gatehouse;
mod gateway_api;
mod gateway_policy;
mod load;
mod meta;

use std::collections::BTreeMap;

pub use changes::{Changes, NsName};
pub use crds::{
    BackendResource, GatehouseStatus, GatewayPolicyResource, SecurityPolicyResource,
    StatusCondition, crds,
};
pub use gatehouse::*;
pub use gateway_api::*;
pub use gateway_policy::*;
pub use load::{Diagnostic, Objects, config_files, load_dir, load_text, walk_files};
pub use meta::{Kind, ObjectKey, ObjectMeta, Origin};

/// Every object of the configuration, by kind, namespace and name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    /// GatewayClasses (cluster-scoped: namespace is empty).
    pub gateway_classes: Objects<GatewayClass>,
    /// Gateways.
    pub gateways: Objects<Gateway>,
    /// HTTPRoutes.
    pub http_routes: Objects<HttpRoute>,
    /// GRPCRoutes.
    pub grpc_routes: Objects<GrpcRoute>,
    /// ReferenceGrants.
    pub reference_grants: Objects<ReferenceGrant>,
    /// Secrets.
    pub secrets: Objects<Secret>,
    /// Backends.
    pub backends: Objects<Backend>,
    /// SecurityPolicies.
    pub security_policies: Objects<SecurityPolicy>,
    /// GatewayPolicies (cluster-scoped: namespace is empty).
    pub gateway_policies: Objects<GatewayPolicy>,
    /// Services (Kubernetes mode): backends of routes.
    pub services: Objects<Service>,
    /// EndpointSlices (Kubernetes mode): the endpoints of Services.
    pub endpoint_slices: Objects<EndpointSlice>,
    /// The labels of each namespace (Kubernetes mode), for `allowedRoutes.namespaces.selector`.
    /// Empty in file mode, where a selector can only name namespaces by
    /// `kubernetes.io/metadata.name`.
    pub namespace_labels: BTreeMap<String, BTreeMap<String, String>>,
}

/// A Kubernetes Service, as the API serves it.
pub type Service = k8s_openapi::api::core::v1::Service;
/// A Kubernetes EndpointSlice, as the API serves it.
pub type EndpointSlice = k8s_openapi::api::discovery::v1::EndpointSlice;

/// The label of an EndpointSlice naming its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

macro_rules! inserter {
    ($fn:ident, $field:ident, $ty:ty, $kind:expr, $namespaced:expr) => {
        pub(crate) fn $fn(&mut self, o: $ty, origin: Origin) -> Option<Origin> {
            let ns = if $namespaced {
                o.metadata.ns().to_owned()
            } else {
                String::new()
            };
            let key = ObjectKey::new($kind, &ns, &o.metadata.name);
            load::insert(&mut self.$field, key, o, origin)
        }
    };
}

fn merge_map<T>(
    into: &mut Objects<T>,
    from: Objects<T>,
    kind: Kind,
    dups: &mut Vec<(ObjectKey, Origin)>,
) {
    for ((ns, name), (v, origin)) in from {
        match into.entry((ns.clone(), name.clone())) {
            std::collections::btree_map::Entry::Occupied(_) => {
                dups.push((ObjectKey::new(kind, &ns, &name), origin))
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert((v, origin));
            }
        }
    }
}

impl Config {
    /// Adds every object of `other`; returns the ones already present (and so not added).
    pub fn merge(&mut self, other: Config) -> Vec<(ObjectKey, Origin)> {
        let mut dups = Vec::new();
        merge_map(
            &mut self.gateway_classes,
            other.gateway_classes,
            Kind::GatewayClass,
            &mut dups,
        );
        merge_map(&mut self.gateways, other.gateways, Kind::Gateway, &mut dups);
        merge_map(
            &mut self.http_routes,
            other.http_routes,
            Kind::HTTPRoute,
            &mut dups,
        );
        merge_map(
            &mut self.grpc_routes,
            other.grpc_routes,
            Kind::GRPCRoute,
            &mut dups,
        );
        merge_map(
            &mut self.reference_grants,
            other.reference_grants,
            Kind::ReferenceGrant,
            &mut dups,
        );
        merge_map(&mut self.secrets, other.secrets, Kind::Secret, &mut dups);
        merge_map(&mut self.backends, other.backends, Kind::Backend, &mut dups);
        merge_map(
            &mut self.security_policies,
            other.security_policies,
            Kind::SecurityPolicy,
            &mut dups,
        );
        merge_map(
            &mut self.gateway_policies,
            other.gateway_policies,
            Kind::GatewayPolicy,
            &mut dups,
        );
        self.services.extend(other.services);
        self.endpoint_slices.extend(other.endpoint_slices);
        self.namespace_labels.extend(other.namespace_labels);
        dups
    }

    inserter!(
        insert_gateway_class,
        gateway_classes,
        GatewayClass,
        Kind::GatewayClass,
        false
    );
    inserter!(insert_gateway, gateways, Gateway, Kind::Gateway, true);
    inserter!(
        insert_http_route,
        http_routes,
        HttpRoute,
        Kind::HTTPRoute,
        true
    );
    inserter!(
        insert_grpc_route,
        grpc_routes,
        GrpcRoute,
        Kind::GRPCRoute,
        true
    );
    inserter!(
        insert_reference_grant,
        reference_grants,
        ReferenceGrant,
        Kind::ReferenceGrant,
        true
    );
    inserter!(insert_secret, secrets, Secret, Kind::Secret, true);
    inserter!(insert_backend, backends, Backend, Kind::Backend, true);
    inserter!(
        insert_security_policy,
        security_policies,
        SecurityPolicy,
        Kind::SecurityPolicy,
        true
    );
    inserter!(
        insert_gateway_policy,
        gateway_policies,
        GatewayPolicy,
        Kind::GatewayPolicy,
        false
    );

    /// Whether a ReferenceGrant in `to_ns` lets `from_kind` objects in `from_ns` refer to the
    /// `to_kind` object `to_name` (group `to_group`).
    #[allow(
        clippy::too_many_arguments,
        reason = "the six coordinates of a reference grant"
    )]
    pub fn reference_granted(
        &self,
        from_group: &str,
        from_kind: &str,
        from_ns: &str,
        to_group: &str,
        to_kind: &str,
        to_ns: &str,
        to_name: &str,
    ) -> bool {
        if from_ns == to_ns {
            return true;
        }
        self.reference_grants
            .iter()
            .filter(|((ns, _), _)| ns == to_ns)
            .any(|(_, (g, _))| {
                g.spec
                    .from
                    .iter()
                    .any(|f| f.group == from_group && f.kind == from_kind && f.namespace == from_ns)
                    && g.spec.to.iter().any(|t| {
                        t.group == to_group
                            && t.kind == to_kind
                            && t.name.as_deref().is_none_or(|n| n == to_name)
                    })
            })
    }
}
