//! Claims as Cedar: the entities they refer to (namespaces, tenants, exemptions, gateways,
//! listeners, hostnames and their zones, backends) and one request per claim.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr as _;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
};

use crate::claims::{
    AdmissionData, AuthnFacts, Claim, ClaimKind, JwtProviderFacts, ListenerFacts, PathFacts,
    RouteFacts, SourceFacts,
};
use crate::engine::schema;

/// The entity type names, parsed once.
#[derive(Debug)]
pub(crate) struct Types {
    tenant: EntityTypeName,
    exemption: EntityTypeName,
    namespace: EntityTypeName,
    gateway: EntityTypeName,
    listener: EntityTypeName,
    zone: EntityTypeName,
    hostname: EntityTypeName,
    backend: EntityTypeName,
    action: EntityTypeName,
}

impl Types {
    pub(crate) fn new() -> Self {
        #[allow(clippy::expect_used, reason = "constant names")]
        let t =
            |n: &str| EntityTypeName::from_str(&format!("Gatehouse::{n}")).expect("a type name");
        Self {
            tenant: t("Tenant"),
            exemption: t("Exemption"),
            namespace: t("Namespace"),
            gateway: t("Gateway"),
            listener: t("Listener"),
            zone: t("Zone"),
            hostname: t("Hostname"),
            backend: t("Backend"),
            action: t("Action"),
        }
    }
}

fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
}

fn s(v: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(v.to_owned())
}

fn b(v: bool) -> RestrictedExpression {
    RestrictedExpression::new_bool(v)
}

fn long(v: u64) -> RestrictedExpression {
    RestrictedExpression::new_long(i64::try_from(v).unwrap_or(i64::MAX))
}

fn strings<'a>(v: impl IntoIterator<Item = &'a String>) -> RestrictedExpression {
    RestrictedExpression::new_set(v.into_iter().map(|x| s(x)))
}

fn record(fields: Vec<(&str, RestrictedExpression)>) -> Result<RestrictedExpression, String> {
    RestrictedExpression::new_record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| e.to_string())
}

fn gateway_id(l: &ListenerFacts) -> String {
    format!("{}/{}", l.gateway_namespace, l.gateway_name)
}

fn backend_id(group: &str, kind: &str, ns: &str, name: &str) -> String {
    if group.is_empty() {
        format!("{kind}/{ns}/{name}")
    } else {
        format!("{group}/{kind}/{ns}/{name}")
    }
}

/// The zone a hostname covers and its parents: `a.b.c` → `a.b.c`; `*.b.c` → `b.c`; `*` → none.
fn hostname_zone(h: &str) -> Option<&str> {
    if h == "*" {
        None
    } else {
        Some(h.strip_prefix("*.").unwrap_or(h))
    }
}

/// A zone and every zone above it: `a.b.c`, `b.c`, `c`.
fn zone_chain(zone: &str) -> Vec<&str> {
    let mut out = vec![zone];
    let mut rest = zone;
    while let Some((_, parent)) = rest.split_once('.') {
        if parent.is_empty() {
            break;
        }
        out.push(parent);
        rest = parent;
    }
    out
}

/// Every entity the claims refer to, plus the zones named in the policies (so that
/// `Zone::"pay.example.com" in resource.zone` sees the zone's place in the tree).
pub(crate) fn build_entities(
    t: &Types,
    claims: &[Claim],
    data: &AdmissionData,
    policy_zones: &BTreeSet<String>,
) -> Result<Entities, String> {
    let mut namespaces: BTreeSet<&str> = BTreeSet::new();
    let mut gateways: BTreeMap<String, &ListenerFacts> = BTreeMap::new();
    let mut listeners: BTreeMap<String, &ListenerFacts> = BTreeMap::new();
    let mut hostnames: BTreeSet<&str> = BTreeSet::new();
    let mut zones: BTreeSet<String> = policy_zones.clone();
    let mut backends: BTreeMap<String, (&str, &str, &str, &str, u16)> = BTreeMap::new();
    for c in claims {
        let a = &c.attachment;
        namespaces.insert(&a.route.namespace);
        gateways
            .entry(gateway_id(&a.listener))
            .or_insert(&a.listener);
        listeners.entry(a.listener.id()).or_insert(&a.listener);
        match &c.kind {
            ClaimKind::ClaimHostname { hostname } => {
                hostnames.insert(hostname);
                if let Some(z) = hostname_zone(hostname) {
                    zones.insert(z.to_owned());
                }
            }
            ClaimKind::ReferenceBackend { backend, .. } => {
                namespaces.insert(&backend.namespace);
                backends.insert(
                    backend_id(
                        &backend.group,
                        &backend.kind,
                        &backend.namespace,
                        &backend.name,
                    ),
                    (
                        &backend.group,
                        &backend.kind,
                        &backend.namespace,
                        &backend.name,
                        backend.port.unwrap_or(0),
                    ),
                );
            }
            _ => {}
        }
    }
    let mut out: Vec<Entity> = Vec::new();
    let err = |e: cedar_policy::EntityAttrEvaluationError| e.to_string();
    // Tenants, exemptions, namespaces.
    let mut tenants: BTreeSet<&str> = BTreeSet::new();
    for ns in &namespaces {
        tenants.insert(data.tenant(ns));
    }
    for tenant in &tenants {
        out.push(
            Entity::new(
                uid(&t.tenant, tenant),
                [("name".to_owned(), s(tenant))].into(),
                Default::default(),
            )
            .map_err(err)?,
        );
    }
    for policy in data.exemptions.keys() {
        out.push(Entity::new_no_attrs(
            uid(&t.exemption, policy),
            Default::default(),
        ));
    }
    for ns in &namespaces {
        let tenant = uid(&t.tenant, data.tenant(ns));
        let mut parents: std::collections::HashSet<EntityUid> = [tenant.clone()].into();
        for (policy, exempt) in &data.exemptions {
            if exempt.contains(*ns) {
                parents.insert(uid(&t.exemption, policy));
            }
        }
        out.push(
            Entity::new(
                uid(&t.namespace, ns),
                [
                    ("name".to_owned(), s(ns)),
                    (
                        "tenant".to_owned(),
                        RestrictedExpression::new_entity_uid(tenant),
                    ),
                ]
                .into(),
                parents,
            )
            .map_err(err)?,
        );
    }
    // Gateways and listeners.
    for (id, l) in &gateways {
        out.push(
            Entity::new_with_tags(
                uid(&t.gateway, id),
                [
                    ("name".to_owned(), s(&l.gateway_name)),
                    ("namespace".to_owned(), s(&l.gateway_namespace)),
                    (
                        "exposure".to_owned(),
                        s(if l.public { "public" } else { "internal" }),
                    ),
                ],
                [],
                l.gateway_labels.iter().map(|(k, v)| (k.clone(), s(v))),
            )
            .map_err(err)?,
        );
    }
    for (id, l) in &listeners {
        let gw = uid(&t.gateway, &gateway_id(l));
        out.push(
            Entity::new(
                uid(&t.listener, id),
                [
                    ("name".to_owned(), s(&l.name)),
                    (
                        "gateway".to_owned(),
                        RestrictedExpression::new_entity_uid(gw.clone()),
                    ),
                    ("port".to_owned(), long(u64::from(l.port))),
                    ("protocol".to_owned(), s(&l.protocol)),
                    ("tls".to_owned(), b(l.protocol == "HTTPS")),
                    (
                        "hostname".to_owned(),
                        s(l.hostname.as_deref().unwrap_or("")),
                    ),
                    ("public".to_owned(), b(l.public)),
                ]
                .into(),
                [gw].into(),
            )
            .map_err(err)?,
        );
    }
    // Zones (each in the one above it) and hostnames.
    let mut all_zones: BTreeSet<&str> = BTreeSet::new();
    for z in &zones {
        all_zones.extend(zone_chain(z));
    }
    for z in &all_zones {
        let parents: std::collections::HashSet<EntityUid> = zone_chain(z)
            .get(1)
            .map(|p| uid(&t.zone, p))
            .into_iter()
            .collect();
        out.push(
            Entity::new(uid(&t.zone, z), [("name".to_owned(), s(z))].into(), parents)
                .map_err(err)?,
        );
    }
    // The catch-all's own zone, in no tree.
    if hostnames.contains("*") && !all_zones.contains("*") {
        out.push(
            Entity::new(
                uid(&t.zone, "*"),
                [("name".to_owned(), s("*"))].into(),
                Default::default(),
            )
            .map_err(err)?,
        );
    }
    for h in &hostnames {
        let zone = hostname_zone(h);
        let parents: std::collections::HashSet<EntityUid> =
            zone.map(|z| uid(&t.zone, z)).into_iter().collect();
        out.push(
            Entity::new(
                uid(&t.hostname, h),
                [
                    ("name".to_owned(), s(h)),
                    ("wildcard".to_owned(), b(h.starts_with('*'))),
                    ("catchAll".to_owned(), b(*h == "*")),
                    (
                        "zone".to_owned(),
                        RestrictedExpression::new_entity_uid(uid(&t.zone, zone.unwrap_or("*"))),
                    ),
                ]
                .into(),
                parents,
            )
            .map_err(err)?,
        );
    }
    for (id, (group, kind, ns, name, port)) in &backends {
        out.push(
            Entity::new(
                uid(&t.backend, id),
                [
                    ("group".to_owned(), s(group)),
                    ("kind".to_owned(), s(kind)),
                    ("name".to_owned(), s(name)),
                    ("namespace".to_owned(), s(ns)),
                    ("port".to_owned(), long(u64::from(*port))),
                ]
                .into(),
                [uid(&t.namespace, ns)].into(),
            )
            .map_err(err)?,
        );
    }
    // Debug builds (and so every test) check each entity against the schema; release builds
    // skip it for speed: our own code builds them, and an entity that did not conform would
    // make the policies that read it fail to evaluate, which denies.
    if cfg!(debug_assertions) {
        Entities::from_entities(out, Some(schema())).map_err(|e| chain(&e))
    } else {
        Entities::from_entities(out.into_iter().chain(action_entities()?), None)
            .map_err(|e| chain(&e))
    }
}

/// The schema's actions (`attachRoute in admission`, ...), as entities.
fn action_entities() -> Result<Vec<Entity>, String> {
    static ACTIONS: std::sync::OnceLock<Result<Vec<Entity>, String>> = std::sync::OnceLock::new();
    ACTIONS
        .get_or_init(|| {
            schema()
                .action_entities()
                .map(|e| e.into_iter().collect())
                .map_err(|e| chain(&e))
        })
        .clone()
}

/// An error and its causes, on one line.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        cur = c.source();
    }
    out
}

fn authn(a: &AuthnFacts) -> Result<RestrictedExpression, String> {
    record(vec![
        ("authenticated", b(a.authenticated())),
        ("jwt", b(a.jwt)),
        ("basicAuth", b(a.basic_auth)),
        ("extAuth", b(a.ext_auth)),
        ("clientCertificate", b(a.client_certificate)),
        ("ipAllowList", b(a.ip_allow_list)),
        ("disabled", b(a.disabled)),
        ("jwtIssuers", strings(&a.jwt_issuers)),
    ])
}

fn route(r: &RouteFacts) -> Result<RestrictedExpression, String> {
    record(vec![
        ("kind", s(&r.kind)),
        ("name", s(&r.name)),
        ("namespace", s(&r.namespace)),
        ("hostnames", strings(&r.hostnames)),
        ("authn", authn(&r.authn)?),
    ])
}

fn path(p: &PathFacts) -> Result<RestrictedExpression, String> {
    record(vec![
        ("matchType", s(&p.match_type)),
        ("value", s(&p.value)),
        ("lower", s(&p.value.to_lowercase())),
    ])
}

fn source(p: &SourceFacts) -> Result<RestrictedExpression, String> {
    record(vec![
        ("namespace", s(&p.namespace)),
        ("name", s(&p.name)),
        ("fromGateway", b(p.from_gateway)),
    ])
}

fn provider(p: &JwtProviderFacts) -> Result<RestrictedExpression, String> {
    record(vec![
        ("name", s(&p.name)),
        ("issuer", s(p.issuer.as_deref().unwrap_or(""))),
        ("audiences", strings(&p.audiences)),
        ("remoteJwks", b(p.jwks_uri.is_some())),
        ("jwksUri", s(p.jwks_uri.as_deref().unwrap_or(""))),
    ])
}

/// Whether a CIDR has prefix length 0 (`0.0.0.0/0`, `::/0`): it allows every address.
pub(crate) fn any_address(cidr: &str) -> bool {
    cidr.split_once('/')
        .is_some_and(|(_, len)| len.trim().parse::<u32>() == Ok(0))
}

/// The Cedar request of one claim. `Err` when the claim cannot be expressed (for example a
/// CIDR Cedar's `ip()` does not accept): the caller counts that as a deny.
pub(crate) fn request(t: &Types, c: &Claim) -> Result<Request, String> {
    let a = &c.attachment;
    let principal = uid(&t.namespace, &a.route.namespace);
    let listener = uid(&t.listener, &a.listener.id());
    let listener_ref = RestrictedExpression::new_entity_uid(listener.clone());
    let route = route(&a.route)?;
    let (resource, fields): (EntityUid, Vec<(&str, RestrictedExpression)>) = match &c.kind {
        ClaimKind::AttachRoute => (
            listener,
            vec![
                ("route", route),
                (
                    "crossNamespace",
                    b(a.route.namespace != a.listener.gateway_namespace),
                ),
            ],
        ),
        ClaimKind::ClaimHostname { hostname } => (
            uid(&t.hostname, hostname),
            vec![("route", route), ("listener", listener_ref)],
        ),
        ClaimKind::ExposePath {
            path: p,
            method,
            header_matches,
        } => (
            listener,
            vec![
                ("route", route),
                ("path", path(p)?),
                ("method", s(method.as_deref().unwrap_or(""))),
                ("headerMatches", long(*header_matches as u64)),
            ],
        ),
        ClaimKind::DisableAuthn { path: p, inherited } => (
            listener,
            vec![
                ("route", route),
                ("path", path(p)?),
                ("inherited", authn(inherited)?),
            ],
        ),
        ClaimKind::ReferenceBackend {
            backend,
            reference_grant,
            mirror,
        } => (
            uid(
                &t.backend,
                &backend_id(
                    &backend.group,
                    &backend.kind,
                    &backend.namespace,
                    &backend.name,
                ),
            ),
            vec![
                ("route", route),
                ("listener", listener_ref),
                ("crossNamespace", b(backend.namespace != a.route.namespace)),
                ("referenceGrant", b(*reference_grant)),
                ("mirror", b(*mirror)),
            ],
        ),
        ClaimKind::UseJwtProvider {
            source: src,
            provider: p,
        } => (
            listener,
            vec![
                ("route", route),
                ("source", source(src)?),
                ("provider", provider(p)?),
            ],
        ),
        ClaimKind::RequireClientCertificate {
            source: src,
            ca_certificates,
            required_sans,
        } => (
            listener,
            vec![
                ("route", route),
                ("source", source(src)?),
                ("caCertificates", long(*ca_certificates as u64)),
                ("requiredSans", strings(required_sans)),
            ],
        ),
        ClaimKind::UseExtAuth {
            source: src,
            fail_open,
            timeout_ms,
            backend,
        } => (
            listener,
            vec![
                ("route", route),
                ("source", source(src)?),
                ("failOpen", b(*fail_open)),
                ("timeoutMs", long(*timeout_ms)),
                ("backend", s(backend)),
            ],
        ),
        ClaimKind::SetIpRules { allow, deny } => (
            listener,
            vec![
                ("route", route),
                ("allow", strings(allow)),
                ("deny", strings(deny)),
                (
                    "allowRanges",
                    RestrictedExpression::new_set(allow.iter().map(RestrictedExpression::new_ip)),
                ),
                (
                    "denyRanges",
                    RestrictedExpression::new_set(deny.iter().map(RestrictedExpression::new_ip)),
                ),
                ("allowsAnyAddress", b(allow.iter().any(|c| any_address(c)))),
            ],
        ),
        ClaimKind::ConfigureCors {
            allow_origins,
            allow_credentials,
            allow_methods,
            allow_headers,
        } => (
            listener,
            vec![
                ("route", route),
                ("allowOrigins", strings(allow_origins)),
                ("anyOrigin", b(allow_origins.iter().any(|o| o == "*"))),
                ("allowCredentials", b(*allow_credentials)),
                ("allowMethods", strings(allow_methods)),
                ("allowHeaders", strings(allow_headers)),
            ],
        ),
        ClaimKind::UseBasicAuth { source: src } => {
            (listener, vec![("route", route), ("source", source(src)?)])
        }
    };
    let context = Context::from_pairs(fields.into_iter().map(|(k, v)| (k.to_owned(), v)))
        .map_err(|e| chain(&e))?;
    let action = uid(&t.action, c.kind.action());
    // Same as the entities: validated against the schema in debug builds only.
    let schema = cfg!(debug_assertions).then(schema);
    Request::new(principal, action, resource, context, schema).map_err(|e| chain(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_and_prefix_zero() {
        assert_eq!(zone_chain("a.b.c"), vec!["a.b.c", "b.c", "c"]);
        assert_eq!(hostname_zone("*.b.c"), Some("b.c"));
        assert_eq!(hostname_zone("*"), None);
        assert!(any_address("0.0.0.0/0"));
        assert!(any_address("::/0"));
        assert!(!any_address("10.0.0.0/8"));
        assert!(!any_address("10.0.0.1"));
    }
}
