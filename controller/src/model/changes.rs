//! What changed between two configurations, as a source knows it: the keys of the objects
//! that were added, modified or deleted. Translation uses it to redo only what those objects
//! feed; anything it cannot place precisely makes it translate everything.

use std::collections::BTreeSet;

use super::{Kind, ObjectKey};

/// A namespace and a name.
pub type NsName = (String, String);

/// The objects that changed since the configuration a source handed over last.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Something other than the sets below changed, or the source cannot tell what: everything
    /// is translated again.
    pub everything: bool,
    /// HTTPRoutes added, modified or deleted.
    pub http_routes: BTreeSet<NsName>,
    /// GRPCRoutes added, modified or deleted.
    pub grpc_routes: BTreeSet<NsName>,
    /// `gatehouse.dev` Backends added, modified or deleted.
    pub backends: BTreeSet<NsName>,
    /// Services whose EndpointSlices were added, modified or deleted (Kubernetes mode).
    pub service_endpoints: BTreeSet<NsName>,
}

impl Changes {
    /// Everything changed (a first load, a re-list, a source that cannot tell).
    pub fn everything() -> Self {
        Self {
            everything: true,
            ..Self::default()
        }
    }

    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        !self.everything
            && self.http_routes.is_empty()
            && self.grpc_routes.is_empty()
            && self.backends.is_empty()
            && self.service_endpoints.is_empty()
    }

    /// Adds what `other` changed.
    pub fn extend(&mut self, other: Changes) {
        self.everything |= other.everything;
        self.http_routes.extend(other.http_routes);
        self.grpc_routes.extend(other.grpc_routes);
        self.backends.extend(other.backends);
        self.service_endpoints.extend(other.service_endpoints);
    }

    /// The routes named, HTTPRoutes then GRPCRoutes.
    pub fn route_keys(&self) -> impl Iterator<Item = ObjectKey> + '_ {
        let http = self.http_routes.iter();
        let grpc = self.grpc_routes.iter();
        http.map(|(ns, n)| ObjectKey::new(Kind::HTTPRoute, ns, n))
            .chain(grpc.map(|(ns, n)| ObjectKey::new(Kind::GRPCRoute, ns, n)))
    }

    /// Names a route as changed (any other kind: everything changed).
    pub fn add_route(&mut self, key: &ObjectKey) {
        let id = (key.namespace.clone(), key.name.clone());
        match key.kind {
            Kind::HTTPRoute => {
                self.http_routes.insert(id);
            }
            Kind::GRPCRoute => {
                self.grpc_routes.insert(id);
            }
            _ => self.everything = true,
        }
    }

    /// Number of objects named (0 when `everything`).
    pub fn len(&self) -> usize {
        self.http_routes.len()
            + self.grpc_routes.len()
            + self.backends.len()
            + self.service_endpoints.len()
    }
}
